// distributed.tf32 and distributed.cudnn_benchmark reach LibTorch's global context for a GPU run (the settings
// cuBLAS and cuDNN read), in either direction, and a CPU run leaves the context as it was. No GPU needed: the
// context is the same object in CPU builds; the GPU check runs the kernels themselves.
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "core/config.pb.h"
#include "trainer/device_math.h"

namespace facetrain {
namespace {

TEST(DeviceMath, GpuRunsSetTf32AndTheAutotunerBothWays) {
  struct Case {
    bool tf32, benchmark;
    at::Float32MatmulPrecision matmul;
    const char* line;
  };
  for (const Case& want : {Case{true, true, at::Float32MatmulPrecision::HIGH,  // the defaults a user gets
                                "TF32 matmuls and convolutions, cuDNN autotuner on"},
                           Case{false, false, at::Float32MatmulPrecision::HIGHEST,
                                "true FP32 matmuls and convolutions (TF32 off), cuDNN autotuner off"}}) {
    proto::DistributedConfig c;
    if (!want.tf32) c.set_tf32(false);
    if (!want.benchmark) c.set_cudnn_benchmark(false);
    EXPECT_EQ(apply_device_math(c, /*on_gpu=*/true), want.line);
    EXPECT_EQ(at::globalContext().float32MatmulPrecision(), want.matmul);
    EXPECT_EQ(at::globalContext().allowTF32CuDNN(), want.tf32);
    EXPECT_EQ(at::globalContext().benchmarkCuDNN(), want.benchmark);
  }
}

TEST(DeviceMath, CpuRunsChangeNothing) {
  at::globalContext().setFloat32MatmulPrecision("highest");
  at::globalContext().setBenchmarkCuDNN(false);
  const std::string line = apply_device_math(proto::DistributedConfig(), /*on_gpu=*/false);
  EXPECT_EQ(at::globalContext().float32MatmulPrecision(), at::Float32MatmulPrecision::HIGHEST);
  EXPECT_FALSE(at::globalContext().benchmarkCuDNN());
  EXPECT_NE(line.find("CPU"), std::string::npos) << line;
}

}  // namespace
}  // namespace facetrain
