// Wall-clock seconds since a steady_clock time point (the step-time split of the run summary), and the
// median that every figure made of repeated measurements reports.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace facetrain {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The middle value (the mean of the two middle ones for an even count); 0 for none.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace facetrain
