// Learning-rate schedule: linear warmup from 0 over warmup_steps, then cosine decay to min_lr_ratio * lr
// at total_steps (or constant). A pure function of the step, so resuming needs no schedule state.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

namespace facetrain {

inline double learning_rate_at(int64_t step, int64_t total_steps, double lr, int64_t warmup_steps,
                               const std::string& decay, double min_lr_ratio) {
  if (warmup_steps > 0 && step < warmup_steps) return lr * static_cast<double>(step + 1) / warmup_steps;
  if (decay != "cosine" || total_steps <= warmup_steps) return lr;
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / (total_steps - warmup_steps));
  const double floor = lr * min_lr_ratio;
  return floor + (lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace facetrain
