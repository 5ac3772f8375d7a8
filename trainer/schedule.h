// Learning-rate schedule: linear warm-up from 0 over schedule.warmup_steps, then cosine decay to
// min_lr_ratio * lr at the run's end (or constant). A function of how far training has come, measured in
// images for an `epochs` schedule (so a resume on another number of ranks continues the same curve) and in
// optimizer steps for a `max_steps` one; resuming needs only the checkpoint's position.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/config.pb.h"
#include "models/checkpoint.h"

namespace facetrain {

// `done`: how far training stands before the step; `step_unit`: what one step of warmup_steps is worth;
// `total`: where the run ends; all three in one unit. With step_unit 1 and steps as the unit this is the
// classic per-step schedule: step s (0-based) of the warm-up runs at lr * (s + 1) / warmup_steps.
inline double learning_rate_at(double done, double step_unit, double total, double lr, int64_t warmup_steps,
                               const std::string& decay, double min_lr_ratio) {
  const double warmup = static_cast<double>(warmup_steps) * step_unit;
  if (warmup > 0 && done < warmup) return lr * std::min(1.0, (done + step_unit) / warmup);
  if (decay != "cosine" || total <= warmup) return lr;
  const double progress = std::min(1.0, (done - warmup) / (total - warmup));
  const double floor = lr * min_lr_ratio;
  return floor + (lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

// The run's schedule over its positions. An `epochs` schedule counts images: the position's images of the
// data order (epoch x images per epoch + the epoch's images consumed) out of epochs x images per epoch, the
// same on any number of ranks; its warm-up is warmup_steps steps of the size the run started with
// (TrainingPosition::schedule_step_images), so a resume during the warm-up goes on along it too. A
// `max_steps` schedule counts optimizer steps: on another number of ranks each step holds another number of
// images, and the curve stays a function of the step (the resume says so in the log).
struct LearningRateSchedule {
  proto::ScheduleConfig schedule;
  double lr = 0;
  int64_t epoch_images = 0;  // images in one epoch's order (all ranks)

  bool counts_steps() const { return schedule.max_steps() > 0; }

  // The learning rate of the step that starts at `pos`.
  double at(const TrainingPosition& pos) const {
    if (counts_steps()) {
      return learning_rate_at(static_cast<double>(pos.step), 1.0, static_cast<double>(schedule.max_steps()), lr,
                              schedule.warmup_steps(), schedule.decay(), schedule.min_lr_ratio());
    }
    return learning_rate_at(images_done(pos), static_cast<double>(pos.schedule_step_images), total_images(), lr,
                            schedule.warmup_steps(), schedule.decay(), schedule.min_lr_ratio());
  }

  // Images of the run's data order consumed before `pos` (all ranks together), and all of the run's.
  double images_done(const TrainingPosition& pos) const {
    return static_cast<double>(pos.epoch) * static_cast<double>(epoch_images) +
           static_cast<double>(pos.images_in_epoch);
  }
  double total_images() const { return static_cast<double>(schedule.epochs()) * static_cast<double>(epoch_images); }
};

}  // namespace facetrain
