// runtime/blas_kernels.h: the CPU's vector units agree with what the kernel reports in /proc/cpuinfo, the
// choice of OpenBLAS kernels per CPU, the BLAS found under LibTorch, and the start-up matmul rates.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "runtime/blas_kernels.h"

namespace facetrain {
namespace {

// The first CPU's "flags" and "model name" lines of /proc/cpuinfo (Linux's own cpuid reading).
struct CpuInfo {
  std::set<std::string> flags;
  std::string model;
};
CpuInfo read_cpuinfo() {
  CpuInfo info;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string value = line.substr(std::min(line.size(), colon + 2));
    if (line.rfind("model name", 0) == 0 && info.model.empty()) info.model = value;
    if (line.rfind("flags", 0) == 0 && info.flags.empty()) {
      std::istringstream words(value);
      for (std::string w; words >> w;) info.flags.insert(w);
    }
  }
  return info;
}

TEST(CpuFeatures, AgreeWithProcCpuinfo) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "cpuid is x86's";
#endif
  const CpuInfo info = read_cpuinfo();
  if (info.flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags";
  const CpuFeatures cpu = cpu_features();
  EXPECT_EQ(cpu.avx2, info.flags.count("avx2") == 1);
  EXPECT_EQ(cpu.fma, info.flags.count("fma") == 1);
  EXPECT_EQ(cpu.avx512f, info.flags.count("avx512f") == 1);
  EXPECT_EQ(cpu.avx512_bf16, info.flags.count("avx512_bf16") == 1);
  EXPECT_EQ(cpu.amx_bf16, info.flags.count("amx_bf16") == 1);
  EXPECT_EQ(cpu.name, info.model);
  std::string flags;
  for (const char* f : {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}) {
    if (info.flags.count(f)) flags += (flags.empty() ? "" : " ") + std::string(f);
  }
  EXPECT_EQ(cpu.flags(), flags.empty() ? "no avx2" : flags);
}

TEST(OpenBlasKernels, GenericCoresAndTheKernelsForEachCpu) {
  for (const char* generic : {"Prescott", "Core2", "Katmai", "Nehalem", "Sandybridge", "Barcelona", "PRESCOTT"}) {
    EXPECT_TRUE(is_generic_openblas_core(generic)) << generic;
  }
  for (const char* fit : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", "Excavator", ""}) {
    EXPECT_FALSE(is_generic_openblas_core(fit)) << fit;
  }
  CpuFeatures cpu;
  EXPECT_EQ(openblas_core_for(cpu), "");
  cpu.avx2 = true;
  EXPECT_EQ(openblas_core_for(cpu), "");  // AVX2 without FMA: Haswell's kernels would not run
  cpu.fma = true;
  EXPECT_EQ(openblas_core_for(cpu), "Haswell");
  cpu.avx512f = true;
  EXPECT_EQ(openblas_core_for(cpu), "SkylakeX");
  cpu.avx512_bf16 = true;
  EXPECT_EQ(openblas_core_for(cpu), "SkylakeX");
}

// The BLAS this test binary's LibTorch calls: OpenBLAS names itself and its kernels; another names itself
// and leaves the kernels empty. Either way the description says which.
TEST(BlasKernels, NameTheLibraryAndForOpenBlasItsKernels) {
  const BlasKernels blas = blas_kernels();
  ASSERT_FALSE(blas.library.empty());
  if (blas.library.rfind("OpenBLAS ", 0) == 0) {
    EXPECT_FALSE(blas.core.empty());
    EXPECT_NE(describe(blas).find(", " + blas.core + " kernels"), std::string::npos) << describe(blas);
  } else {
    EXPECT_TRUE(blas.core.empty());
    EXPECT_NE(describe(blas).find("its kernels are its own choice"), std::string::npos) << describe(blas);
  }
}

TEST(MatmulRates, MeasuredInBothPrecisions) {
  torch::set_num_threads(1);
  const MatmulRates rates = measure_matmul_rates(1);
  EXPECT_EQ(rates.threads, 1);
  EXPECT_GT(rates.fp32_gflops, 0);
  EXPECT_GT(rates.bf16_gflops, 0);
  ASSERT_TRUE(rates.bf16_size == 128 || rates.bf16_size == MatmulRates::kMatmulSize) << rates.bf16_size;
  const std::string line = describe(rates);
  EXPECT_EQ(line.rfind("matmul 256^3 on 1 thread: fp32 ", 0), 0u) << line;
  // A gain is claimed only at the same size.
  if (rates.bf16_size == MatmulRates::kMatmulSize) {
    EXPECT_DOUBLE_EQ(rates.bf16_gain(), rates.bf16_gflops / rates.fp32_gflops);
  } else {
    EXPECT_EQ(rates.bf16_gain(), 0);
    EXPECT_NE(line.find("(at 128^3: too slow for 256^3)"), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace facetrain
