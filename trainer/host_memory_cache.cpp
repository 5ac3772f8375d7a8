// The host memory cache (see host_memory_cache.h).
#include "trainer/host_memory_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <atomic>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/torch_compat.h"

namespace facetrain {
namespace {

constexpr size_t kMinBytes = 256 * 1024;  // below: glibc's own free lists are fast and fault-free
constexpr size_t kPage = 4096;

class HostMemoryCache final : public c10::Allocator {
 public:
  explicit HostMemoryCache(c10::Allocator* system) : system_(system) {}

  c10::DataPtr allocate(size_t n) FACETRAIN_ALLOCATOR_CONST override {
    if (n < kMinBytes) return system_->allocate(n);
    void* p = take((n + kPage - 1) / kPage * kPage);
    return {p, p, &release_block, c10::Device(c10::DeviceType::CPU)};
  }
  // raw_allocate/raw_deallocate (some kernels' scratch): blocks of either origin come back through here.
  c10::DeleterFnPtr raw_deleter() const override { return &release_block; }
#if FACETRAIN_TORCH_AT_LEAST(2, 0)
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#endif

  void set_limit(int64_t limit) {
    std::lock_guard<std::mutex> lock(mu_);
    limit_ = static_cast<size_t>(limit);
    trim_locked();
  }
  HostMemoryCacheStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {hits_, misses_, static_cast<int64_t>(kept_), static_cast<int64_t>(limit_)};
  }

  static std::atomic<HostMemoryCache*> instance;

 private:
  // Best fit among kept blocks within 1/8 of the size (a step asks for the same sizes again), else new.
  void* take(size_t size) const {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = kept_blocks_.lower_bound(size);
      if (it != kept_blocks_.end() && it->first <= size + size / 8) {
        void* p = it->second;
        live_[p] = it->first;
        kept_ -= it->first;
        kept_blocks_.erase(it);
        ++hits_;
        return p;
      }
      ++misses_;
    }
    void* p = c10::alloc_cpu(size);  // throws c10::Error when the system has no memory left
    std::lock_guard<std::mutex> lock(mu_);
    live_[p] = size;
    return p;
  }

  static void release_block(void* p) {
    HostMemoryCache* cache = instance.load();
    {
      std::lock_guard<std::mutex> lock(cache->mu_);
      auto it = cache->live_.find(p);
      if (it != cache->live_.end()) {
        const size_t size = it->second;
        cache->live_.erase(it);
        if (cache->kept_ + size <= cache->limit_) {
          cache->kept_blocks_.emplace(size, p);
          cache->kept_ += size;
          return;
        }
      }
    }
    c10::free_cpu(p);  // over the limit, or a small block of the system allocator's (raw_deallocate)
  }

  // Frees the largest kept blocks until the kept bytes fit the limit (caller holds mu_).
  void trim_locked() {
    while (kept_ > limit_ && !kept_blocks_.empty()) {
      auto last = std::prev(kept_blocks_.end());
      kept_ -= last->first;
      c10::free_cpu(last->second);
      kept_blocks_.erase(last);
    }
  }

  // mutable: LibTorch 1.13's allocate() is const.
  c10::Allocator* system_;
  mutable std::mutex mu_;
  mutable std::unordered_map<void*, size_t> live_;    // handed out: size
  mutable std::multimap<size_t, void*> kept_blocks_;  // freed, kept: size -> block
  mutable size_t kept_ = 0;
  size_t limit_ = 0;
  mutable int64_t hits_ = 0, misses_ = 0;
};

std::atomic<HostMemoryCache*> HostMemoryCache::instance{nullptr};
std::mutex install_mu;

}  // namespace

void install_host_memory_cache(int64_t limit_bytes) {
  std::lock_guard<std::mutex> lock(install_mu);
  HostMemoryCache* cache = HostMemoryCache::instance.load();
  if (cache == nullptr) {
    // Never destroyed: tensors it handed out may outlive every other object (static destructors included).
    cache = new HostMemoryCache(c10::GetCPUAllocator());
    HostMemoryCache::instance.store(cache);
    c10::SetCPUAllocator(cache, /*priority=*/1);  // above the default allocator's 0
  }
  cache->set_limit(limit_bytes);
}

bool host_memory_cache_installed() { return HostMemoryCache::instance.load() != nullptr; }

HostMemoryCacheStats host_memory_cache_stats() {
  HostMemoryCache* cache = HostMemoryCache::instance.load();
  return cache != nullptr ? cache->stats() : HostMemoryCacheStats{};
}

std::string describe_host_memory_cache() {
  const HostMemoryCacheStats s = host_memory_cache_stats();
  return std::to_string(s.hits) + " of " + std::to_string(s.hits + s.misses) +
         " allocations of 256 kB or more reused, " + std::to_string(s.kept_bytes >> 20) + " MB kept now (at most " +
         std::to_string(s.limit_bytes >> 20) + ")";
}

}  // namespace facetrain
