// How an epoch divides into optimizer steps at this run's number of ranks, and how a TrainingPosition moves
// through it. The epoch is counted in images of its order (all ranks together), so a run resumes on any
// number of ranks where it stopped: the images left are those no rank has seen yet (datastore/loader.h).
#pragma once

#include <cstdint>

#include "core/config.pb.h"
#include "models/checkpoint.h"

namespace facetrain {

struct EpochSteps {
  int accumulation = 1;         // schedule.accumulation_steps: micro-batches per optimizer step
  int64_t images_per_step = 0;  // data.batch_size x ranks x accumulation
  int64_t epoch_images = 0;     // images in one epoch's order (the loader's source_images)
  int64_t steps_per_epoch = 0;  // whole optimizer steps in a fresh epoch (> 0)

  // Whole steps left in an epoch of which `images_done` images (all ranks) were trained on.
  int64_t steps_left(int64_t images_done) const { return (epoch_images - images_done) / images_per_step; }

  // Whether `pos` stands at the end of its epoch (no whole step left in it).
  bool epoch_ends(const TrainingPosition& pos) const { return steps_left(pos.images_in_epoch) == 0; }

  // The step this run ends at: schedule.max_steps, else the steps of schedule.epochs counted at this run's
  // number of ranks from where training stands.
  int64_t total_steps(const TrainingPosition& pos, const proto::ScheduleConfig& schedule) const {
    if (schedule.max_steps() > 0) return schedule.max_steps();
    if (pos.epoch >= schedule.epochs()) return pos.step;
    return pos.step + steps_left(pos.images_in_epoch) + (schedule.epochs() - pos.epoch - 1) * steps_per_epoch;
  }

  // After one optimizer step.
  void advance_one_step(TrainingPosition* pos) const {
    pos->step += 1;
    pos->batch_in_epoch += accumulation;
    pos->images_in_epoch += images_per_step;
  }
};

// The start of the next epoch.
inline void start_next_epoch(TrainingPosition* pos) {
  ++pos->epoch;
  pos->batch_in_epoch = 0;
  pos->images_in_epoch = 0;
}

}  // namespace facetrain
