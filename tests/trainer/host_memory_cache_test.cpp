// The host memory cache: LibTorch's CPU tensors of 256 kB and more come from it once installed; a freed
// block is handed to the next request of its size (same address, no system call), the kept bytes never pass
// the limit, and small or raw allocations still work.
#include <gtest/gtest.h>

#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include <thread>
#include <vector>

#include "trainer/host_memory_cache.h"

namespace facetrain {
namespace {

TEST(HostMemoryCache, FreedBlocksAreReusedWithinTheLimit) {
  install_host_memory_cache(int64_t{8} << 20);
  ASSERT_TRUE(host_memory_cache_installed());
  const HostMemoryCacheStats start = host_memory_cache_stats();
  void* first = nullptr;
  {
    torch::Tensor a = torch::ones({1 << 18});  // 1 MB
    first = a.data_ptr();
  }
  EXPECT_EQ(host_memory_cache_stats().kept_bytes - start.kept_bytes, int64_t{1} << 20);
  torch::Tensor b = torch::zeros({1 << 18});
  EXPECT_EQ(b.data_ptr(), first);  // the kept block, zeroed by the op that asked for it
  EXPECT_EQ(b.sum().item<float>(), 0.0f);
  EXPECT_EQ(host_memory_cache_stats().hits - start.hits, 1);

  // A size 1/8 or more larger does not take a smaller block; small tensors never reach the cache.
  const HostMemoryCacheStats before = host_memory_cache_stats();
  torch::Tensor c = torch::empty({(1 << 18) + (1 << 16)});
  torch::Tensor small = torch::ones({100});
  EXPECT_EQ(host_memory_cache_stats().misses - before.misses, 1);

  // 12 MB of freed blocks: only 8 MB are kept.
  {
    std::vector<torch::Tensor> many;
    for (int i = 0; i < 12; ++i) many.push_back(torch::ones({1 << 18}));
  }
  EXPECT_LE(host_memory_cache_stats().kept_bytes, int64_t{8} << 20);
  EXPECT_GE(host_memory_cache_stats().kept_bytes, int64_t{7} << 20);

  // Limit 0: nothing kept from now on (the kept blocks are freed at once).
  install_host_memory_cache(0);
  EXPECT_EQ(host_memory_cache_stats().kept_bytes, 0);
  { torch::Tensor d = torch::ones({1 << 18}); }
  EXPECT_EQ(host_memory_cache_stats().kept_bytes, 0);
  install_host_memory_cache(int64_t{8} << 20);
}

TEST(HostMemoryCache, RawAllocationsOfEitherSizeComeBack) {
  install_host_memory_cache(int64_t{8} << 20);
  c10::Allocator* allocator = c10::GetCPUAllocator();
  for (size_t bytes : {size_t{64}, size_t{1} << 20}) {
    void* p = allocator->raw_allocate(bytes);
    ASSERT_NE(p, nullptr);
    static_cast<char*>(p)[bytes - 1] = 1;
    allocator->raw_deallocate(p);
  }
}

TEST(HostMemoryCache, ConcurrentAllocationsAreSafe) {
  install_host_memory_cache(int64_t{64} << 20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) {
        torch::Tensor x = torch::full({(1 << 16) * (1 + (i + t) % 3)}, static_cast<float>(t));
        ASSERT_EQ(x[0].item<float>(), static_cast<float>(t));
      }
    });
  }
  for (auto& th : threads) th.join();
}

}  // namespace
}  // namespace facetrain
