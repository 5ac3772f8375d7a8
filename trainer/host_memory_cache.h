// A caching allocator for LibTorch's CPU tensors (flashlight's CachingMemoryManager, PyTorch's CUDA caching
// allocator, for host memory). A training step allocates the same large activation and gradient buffers
// every step; glibc maps blocks above its mmap threshold fresh and unmaps them on free, so every step
// page-faults them in again: about 10 % of the ViT step here (tools/bench/README.md). Freed blocks of at
// least 256 kB are kept and handed to the next request of their size instead; smaller ones stay glibc's.
#pragma once

#include <cstdint>
#include <string>

namespace facetrain {

struct HostMemoryCacheStats {
  int64_t hits = 0;         // requests served from kept blocks
  int64_t misses = 0;       // requests that went to the system
  int64_t kept_bytes = 0;   // freed blocks kept for reuse now
  int64_t limit_bytes = 0;  // the most kept; beyond it freed blocks go back to the system
};

// Makes the cache LibTorch's CPU allocator for the rest of the process; a later call only sets the limit.
// limit_bytes 0 keeps nothing (every block goes back to the system, as without the cache).
void install_host_memory_cache(int64_t limit_bytes);
bool host_memory_cache_installed();
HostMemoryCacheStats host_memory_cache_stats();
// "N of M large allocations reused, K MB kept", for logs.
std::string describe_host_memory_cache();

}  // namespace facetrain
