// Parallel production of items in windows with in-order consumption, used by ingest and synth: decode or
// draw a window of images on all cores while one background thread appends the previous window to the
// store in sample order. Output therefore depends only on the items, never on the thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <future>
#include <mutex>

#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>

#include "core/error.h"

namespace facetrain {

// Sets OpenCV's worker count (its TBB arena here) for a scope and restores the previous one.
class OpenCvThreadsScope {
 public:
  explicit OpenCvThreadsScope(int threads) : previous_(cv::getNumThreads()) {
    if (threads > 0) cv::setNumThreads(threads);
  }
  ~OpenCvThreadsScope() { cv::setNumThreads(previous_); }
  OpenCvThreadsScope(const OpenCvThreadsScope&) = delete;
  OpenCvThreadsScope& operator=(const OpenCvThreadsScope&) = delete;

 private:
  int previous_;
};

// For i in [0, n): produce(i, slot) runs in parallel (cv::parallel_for_) and consume(i, slot) runs in order
// on one writer thread; slot is in [0, 2 * window) — two sets of `window` slots alternate, so window k is
// consumed while window k+1 is produced. after_window(done) runs on the calling thread after each window is
// produced. A set *stop flag ends the run with UserError(stop_message) between windows. Exceptions from
// produce or consume propagate to the caller after the writer thread has stopped.
template <class Produce, class Consume, class AfterWindow>
void run_ordered_pipeline(int64_t n, int64_t window, Produce&& produce, Consume&& consume, AfterWindow&& after_window,
                          const std::atomic<bool>* stop, const std::string& stop_message) {
  FT_CHECK(window > 0, "window " << window);
  std::future<void> writing;
  for (int64_t begin = 0, w = 0; begin < n; begin += window, ++w) {
    const int64_t end = std::min(n, begin + window);
    const int64_t base = (w % 2) * window;
    std::exception_ptr failure;
    std::mutex failure_mutex;
    cv::parallel_for_(cv::Range(static_cast<int>(0), static_cast<int>(end - begin)), [&](const cv::Range& r) {
      for (int k = r.start; k < r.end; ++k) {
        try {
          produce(begin + k, base + k);
        } catch (...) {
          std::lock_guard<std::mutex> lock(failure_mutex);
          if (!failure) failure = std::current_exception();
        }
      }
    });
    if (writing.valid()) writing.get();  // window w-1 is in the store; its slots are free again
    if (failure) std::rethrow_exception(failure);
    if (stop != nullptr && stop->load()) throw UserError(stop_message);
    writing = std::async(std::launch::async, [&consume, begin, end, base] {
      for (int64_t i = begin; i < end; ++i) consume(i, base + (i - begin));
    });
    after_window(end);
  }
  if (writing.valid()) writing.get();
}

}  // namespace facetrain
