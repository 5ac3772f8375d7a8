// Wall-clock seconds since a steady_clock time point: the step-time split of the run summary.
#pragma once

#include <chrono>

namespace facetrain {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace facetrain
