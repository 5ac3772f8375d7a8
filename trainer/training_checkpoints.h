// A training run's checkpoints: rank 0 writes them into RUN_DIR/checkpoints (in the background with
// checkpoint.background_write), and a resumed run reads one back with every rank agreeing on which. Owns
// the store, the background writer and the timings of the pauses checkpoints cost training.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "runtime/process_context.h"
#include "core/data_description.h"
#include "models/checkpoint.h"
#include "models/checkpoint_store.h"
#include "trainer/epoch_steps.h"
#include "trainer/task.h"

namespace facetrain {

class CheckpointWriter;

// Between epoch ends each rank's BatchNorm statistics are its own (averaged at each epoch end): a checkpoint
// holds their mean as the model's (what eval and export use) and every rank's own beside it, which a resume
// on the same number of ranks restores, so it continues bit for bit.
//
// Used by the training thread only. Every rank makes one, after the task's setup; save() and resume() are
// collective: every rank calls them at the same point of the run.
class TrainingCheckpoints {
 public:
  // The store RUN_DIR/checkpoints keeping checkpoint.keep_last. `model_name` (the config's name of the model
  // kind) goes into each file's metadata. config, store and task must outlive this object.
  TrainingCheckpoints(const proto::RunConfig& config, const StoreInfo& store, std::string model_name,
                      TrainingTask& task, ProcessContext& ctx);
  ~TrainingCheckpoints();  // waits for a background write still running (its error is dropped: see finish())
  TrainingCheckpoints(const TrainingCheckpoints&) = delete;
  TrainingCheckpoints& operator=(const TrainingCheckpoints&) = delete;

  // (collective) every rank, once before the first step. which: "none", "auto" (the store's newest valid
  // checkpoint, if any) or the path --resume named, whose file rank 0 read and verified during setup
  // (`named`, moved from). Rank 0 picks the checkpoint and broadcasts its bytes, so ranks need no shared file
  // system and can never disagree on which they resumed from; the task loads it. Returns where training
  // goes on: the start when nothing was resumed, the next epoch's start when the checkpoint closed its epoch.
  TrainingPosition resume(const std::string& which, Checkpoint* named, const EpochSteps& epochs);

  // (collective) every rank at the same step boundary: rank 0 writes the checkpoint of `pos` (pauses are
  // timed on every rank). With `durable` (a stop, the run's end) or without background writes it waits for
  // the file, and every rank waits for rank 0, so no rank exits or races ahead before the checkpoint is on
  // disk. Throws UserError when rank 0 cannot write it (its error may surface at the next save or finish()).
  void save(const TrainingPosition& pos, bool durable);

  // Every rank, after the last save: rank 0 waits for its last file and rethrows a background write's error.
  void finish();

  const std::string& directory() const { return store_.directory(); }
  // Seconds training stood still for each save() on this rank.
  const std::vector<double>& pause_seconds() const { return pause_seconds_; }
  // Seconds each background write took on rank 0 (empty elsewhere and without background writes); after finish().
  const std::vector<double>& background_write_seconds() const;

 private:
  void log_schedule_on_new_world_size(const TrainingPosition& pos, const EpochSteps& epochs) const;

  const proto::RunConfig& config_;
  const StoreInfo& store_info_;
  std::string model_name_;
  TrainingTask& task_;
  ProcessContext& ctx_;
  CheckpointStore store_;
  std::unique_ptr<CheckpointWriter> writer_;  // after store_: it writes into it until destroyed
  std::vector<double> pause_seconds_;
};

}  // namespace facetrain
