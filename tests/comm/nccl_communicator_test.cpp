// The NCCL communicator and the CUDA paths around it, on a GPU: collectives, the GPU-side wait, the
// watchdog, and gradient buckets whose hooks run on autograd's device thread. Built
// in every CUDA build (CI's LibTorch 2.x pass compiles and links it); on a machine without a GPU each test
// skips with one line. tools/scripts/gpu-check.sh runs it where a GPU is lent.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "comm/gradient_sync.h"
#include "core/error.h"

#ifdef FACETRAIN_TEST_CUDA
#include <ATen/cuda/Sleep.h>
#endif

namespace facetrain {
namespace {

// Why a test cannot run here, or empty when it can.
std::string gpu_unavailable() {
#ifndef FACETRAIN_TEST_CUDA
  return "this LibTorch has no CUDA (Debian's 1.13): the CUDA build compiles and runs these";
#else
  if (!nccl_available()) return "NCCL is not in this build";
  if (!torch::cuda::is_available()) return "no CUDA device visible: runs on a GPU (tools/scripts/gpu-check.sh)";
  return "";
#endif
}

#define SKIP_WITHOUT_GPU()                     \
  do {                                         \
    const std::string why = gpu_unavailable(); \
    if (!why.empty()) GTEST_SKIP() << why;     \
  } while (0)

torch::TensorOptions on_gpu(torch::ScalarType type = torch::kFloat) {
  return torch::TensorOptions().dtype(type).device(torch::kCUDA, 0);
}

TEST(NcclCommunicator, CollectivesOnTheGpu) {
  SKIP_WITHOUT_GPU();
  auto nccl = make_nccl_communicator(0, 60.0);
  const int n = nccl->size(), r = nccl->rank();
  EXPECT_EQ(nccl->backend(), "nccl");

  torch::Tensor x = torch::full({1000}, static_cast<float>(r + 1), on_gpu());
  nccl->all_reduce_sum_(x, "sum");
  EXPECT_TRUE(torch::allclose(x.cpu(), torch::full({1000}, n * (n + 1) / 2.0f)));

  torch::Tensor m = torch::full({257}, static_cast<float>(r), on_gpu(torch::kBFloat16));
  nccl->all_reduce_mean_(m, "mean");
  EXPECT_NEAR(m.to(torch::kFloat).cpu()[0].item<float>(), (n - 1) / 2.0f, 1e-2);

  torch::Tensor b = torch::full({3, 5}, static_cast<int64_t>(r == 0 ? 42 : -1), on_gpu(torch::kInt64));
  nccl->broadcast_(b, 0, "broadcast");
  EXPECT_EQ(b.cpu().min().item<int64_t>(), 42);

  // Uneven dim 0: rank r sends r + 1 rows.
  torch::Tensor rows = torch::full({r + 1, 2}, static_cast<float>(r), on_gpu());
  torch::Tensor all = nccl->all_gather(rows, "gather").cpu();
  EXPECT_EQ(all.size(0), n * (n + 1) / 2);
  nccl->barrier("barrier");
}

// wait() returns without blocking the host, yet work queued after it on the caller's stream sees the result.
TEST(NcclCommunicator, WaitOrdersTheCallersStream) {
  SKIP_WITHOUT_GPU();
  auto nccl = make_nccl_communicator(0, 60.0);
  torch::Tensor x = torch::ones({1 << 20}, on_gpu());
  auto work = nccl->all_reduce_sum_async_(x, "async");
  work->wait();
  torch::Tensor y = x * 2;  // queued on the caller's stream after the wait
  EXPECT_FLOAT_EQ(y.sum().item<float>(), 2.0f * nccl->size() * (1 << 20));
  EXPECT_TRUE(work->test());
}

// Gradient buckets over CUDA parameters: the hooks run on autograd's device thread, launch NCCL there, and
// finalize() on this thread leaves the average (one rank: the local gradient) in every .grad.
TEST(NcclCommunicator, GradientBucketsFromTheDeviceThread) {
  SKIP_WITHOUT_GPU();
  auto nccl = make_nccl_communicator(0, 60.0);
  torch::manual_seed(1);
  torch::nn::Sequential net(torch::nn::Linear(64, 128), torch::nn::ReLU(), torch::nn::Linear(128, 10));
  net->to(torch::Device(torch::kCUDA, 0));
  std::vector<torch::Tensor> params = net->parameters();
  torch::Tensor input = torch::randn({32, 64}, on_gpu());

  // The reference: plain autograd without buckets, scaled the way averaging scales it.
  net->zero_grad();
  net->forward(input).square().mean().backward();
  std::vector<torch::Tensor> expected;
  for (auto& p : params) expected.push_back(p.grad().clone());

  GradientBuckets buckets(*nccl, params, /*bucket_cap_bytes=*/4096, "test");
  EXPECT_GT(buckets.bucket_count(), 1);
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  for (int step = 0; step < 3; ++step) {
    for (auto& p : params) {
      if (p.grad().defined()) p.grad().zero_();
    }
    net->forward(input).square().mean().backward();
    buckets.finalize();
  }
  for (size_t i = 0; i < params.size(); ++i) {
    // Every rank has the same input, so the mean over ranks is the local gradient.
    EXPECT_TRUE(torch::allclose(params[i].grad(), expected[i], 1e-5, 1e-6)) << "parameter " << i;
  }
}

#ifdef FACETRAIN_TEST_CUDA
// Last in this file (it leaves an aborted communicator behind). The watchdog: the collective cannot start while the
// caller's stream sleeps, so it outlives a 0.5 s timeout; the watchdog aborts the communicator and the next call throws
// CollectiveTimeout naming the operation.
TEST(NcclCommunicator, WatchdogAbortsALateCollective) {
  SKIP_WITHOUT_GPU();
  auto nccl = make_nccl_communicator(0, 60.0);
  nccl->set_timeout_seconds(0.5);
  nccl->set_step(7);
  at::cuda::sleep(int64_t{4} * 1000 * 1000 * 1000);  // ~2-3 s of GPU clock cycles on the current stream
  torch::Tensor x = torch::ones({16}, on_gpu());
  auto work = nccl->all_reduce_sum_async_(x, "allreduce of the late bucket");
  try {
    for (int i = 0; i < 100; ++i) {
      work->test();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "no CollectiveTimeout within 5 s";
  } catch (const CollectiveTimeout& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("allreduce of the late bucket"), std::string::npos) << what;
    EXPECT_NE(what.find("step 7"), std::string::npos) << what;
  }
  // No synchronize: the aborted communicator's kernel may still be queued behind the sleep; the process ends.
}
#endif

}  // namespace
}  // namespace facetrain
