// Out-of-memory errors of a training step as one line (see out_of_memory.h).
#include "trainer/out_of_memory.h"

#include <c10/util/Exception.h>

#include <new>

namespace facetrain {

bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr) return true;
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) return true;
  // LibTorch's CPU allocator (c10 alloc_cpu, 1.13 and 2.x) throws a plain c10::Error with this text.
  const auto* error = dynamic_cast<const c10::Error*>(&e);
  if (error == nullptr) return false;
  const std::string what = error->what_without_backtrace();
  return what.find("can't allocate memory") != std::string::npos ||
         what.find("not enough memory") != std::string::npos || what.find("out of memory") != std::string::npos;
}

std::string out_of_memory_message(int64_t step, int rank, const torch::Device& device, int batch_size, int accumulation,
                                  const MemoryPeaks& peaks, const std::exception& error) {
  std::string line = "step " + std::to_string(step) + ": out of memory on rank " + std::to_string(rank) + " (" +
                     device.str() + ") with data.batch_size " + std::to_string(batch_size) +
                     " x schedule.accumulation_steps " + std::to_string(accumulation) + " per rank (" +
                     describe(peaks) + "). ";
  if (batch_size > 1) {
    const int half = (batch_size + 1) / 2;
    const int images = batch_size * accumulation, halved_images = half * 2 * accumulation;
    line += "The smallest change that halves a micro-batch: --set data.batch_size=" + std::to_string(half) +
            " --set schedule.accumulation_steps=" + std::to_string(2 * accumulation) + " (" +
            (halved_images == images
                 ? std::to_string(images) + " images per rank and step as before"
                 : std::to_string(halved_images) + " images per rank and step instead of " + std::to_string(images)) +
            ").";
  } else {
    line +=
        "A micro-batch of one image does not fit: a smaller model, distributed.precision bf16 or fp16, or a "
        "device with more memory.";
  }
  const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
  const std::string what = c10_error != nullptr ? c10_error->what_without_backtrace() : error.what();
  const std::string first_line = what.substr(0, what.find('\n'));
  return line + " The allocator: " + first_line;
}

}  // namespace facetrain
