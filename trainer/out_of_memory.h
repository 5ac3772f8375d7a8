// An allocator's out-of-memory error in a training step, as the one line a user acts on: which step, the
// batch each rank ran, the memory peaks, and the smallest change that halves what a micro-batch needs
// (half the batch in twice the micro-batches: the same images per optimizer step, the same training).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <exception>
#include <string>

#include "runtime/device_peaks.h"

namespace facetrain {

// Whether `e` is an allocation failure: LibTorch's OutOfMemoryError (the CUDA caching allocator's), its CPU
// allocator's "can't allocate memory", or std::bad_alloc.
bool is_out_of_memory(const std::exception& e);

// "step 12: out of memory on rank 1 (cuda:0) with data.batch_size 128 x schedule.accumulation_steps 1 per rank
// (host peak 812 MB; GPU peak ...). The smallest change that halves a micro-batch: --set data.batch_size=64
// --set schedule.accumulation_steps=2 (128 images per rank and step as before). The allocator: <its message>".
// `error` is the allocator's (is_out_of_memory); the first line of its message is kept.
std::string out_of_memory_message(int64_t step, int rank, const torch::Device& device, int batch_size, int accumulation,
                                  const MemoryPeaks& peaks, const std::exception& error);

}  // namespace facetrain
