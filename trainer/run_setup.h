// The setup agreement of a training run: the file --resume names, the gradient communicator, the store, task
// and loader (data.normalization resolved), the run directory and the flight recorder. Each part is checked
// on every rank and agreed on, so bad input is one line and leaves no half-made run directory behind.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/data_parallel.h"
#include "core/config.pb.h"
#include "runtime/process_context.h"
#include "datastore/loader.h"
#include "core/data_description.h"
#include "models/checkpoint_store.h"
#include "trainer/epoch_steps.h"
#include "trainer/step_profiler.h"
#include "trainer/task.h"

namespace facetrain {

// What a run trains with, made once by its constructor. The task holds references into it (config, store,
// gradient communicator), so it is neither copied nor moved, and outlives everything made from it.
struct RunSetup {
  // (collective) every rank, first thing in a run (run_training): installs the run's stop handlers and host
  // memory cache, sets the collective timeout, then builds and agrees on the parts below in that order.
  // Throws the agreed JobUserError on bad input (no run directory is made then). `resume` is TrainOptions'
  // resume, named `resume_name` in errors.
  RunSetup(const proto::RunConfig& user_config, ProcessContext& ctx, const std::string& resume,
           const std::string& resume_name);
  RunSetup(const RunSetup&) = delete;
  RunSetup& operator=(const RunSetup&) = delete;

  ProcessContext& ctx;
  proto::RunConfig config;       // the user's, with data.normalization resolved (as RUN_DIR/config.pbtxt)
  std::string model_name;        // the config's name of the model kind (log lines, checkpoint metadata)
  Checkpoint named_checkpoint;   // the file a resume PATH names, read and verified by rank 0 (else empty)
  DataParallelOptions parallel;  // from `distributed`: every DataParallel of the task uses these
  std::string gradient_sync;     // which gradient communicator, for the log
  std::string device_math;       // TF32 and the cuDNN autotuner on a GPU (device_math.h), for the log
  std::unique_ptr<Communicator> gradient;
  StoreInfo store;
  std::unique_ptr<TrainingTask> task;  // rank 0's initial state is not broadcast yet (broadcast_state)
  std::unique_ptr<ShardLoader> loader;
  std::string normalization_source;  // why data.normalization is what it is
  EpochSteps epochs;
  ProfileWindow profile_window;  // logging.profile (--profile): the steps LibTorch's profiler records
  // data.normalize_on device: the loader hands uint8 batches that load_step() normalizes on the device with
  // these (x * scale + shift, one fused pass); undefined when the loader normalizes on the host.
  torch::Tensor input_scale, input_shift;

  // Before an epoch's first step (also the first after a resume), every rank, no collective: the task's
  // start_epoch (fine-tuning's unfreeze schedule) and the loader's order of `pos.epoch` from where pos stands.
  void start_epoch(const TrainingPosition& pos);

  // 1. load, on every rank (no collective): one optimizer step's micro-batches (schedule.accumulation_steps,
  // `micro` sized to it), their images on the device; false at the epoch's end (an epoch ends on a step
  // boundary). Adds the wait for the loader and the copy to the device to `times`.
  bool load_step(std::vector<Batch>* micro, StepTimes* times);

  // (rank 0 logs) The run's plan, once resumed: images and steps, the gradient sync, where the input is
  // normalized, and the bf16 hint where this rank measured bf16 matmuls faster than fp32 (precision.h).
  void log_plan(int64_t total_steps) const;
};

}  // namespace facetrain
