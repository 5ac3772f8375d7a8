// A TrainingTask is the model-specific half of training (any classifier, the DCGAN, the VAE): it owns the modules,
// optimizers and gradient sync (DataParallel), and runs one optimizer step on a set of micro-batches. The generic loop
// in trainer.cpp owns data, schedule, checkpoints, signals, logs and the run summary.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "datastore/loader.h"
#include "comm/data_parallel.h"
#include "core/config.pb.h"
#include "runtime/process_context.h"
#include "models/model_spec.h"

namespace facetrain {

class RunLog;

// Where training steps' time goes, in seconds summed over the steps it covers. The task adds forward_backward,
// communication and optimizer (train_step); the loop adds data_wait, copy, its per-step agreement's wait and
// step (trainer.cpp; bench step the same without a loader). phases() is the one list of the phases and their
// names: the perf/* scalars, the run summary and `facetrain bench step` all print these. Host-side times, with
// no synchronisation added: on a GPU a step reads nothing back (StepOutput), so a phase is the time to queue its
// kernels and the wait shows where the host next waits for the device (a gradient bucket, a log step's read).
struct StepTimes {
  double data_wait = 0;            // waiting for the loader (its prefetch fell behind)
  double copy = 0;                 // the batches' images to the device, normalized there (data.normalize_on device)
  double forward_backward = 0;     // forward + backward, the phase "compute" (communication overlapped inside)
  double communication = 0;        // exposed: waiting for gradient sync after backward, and for the step agreement
  double optimizer = 0;            // optimizer steps (unscaling, clipping, the update)
  double step = 0;                 // whole steps, first load to agreement; the rest of it is the phase "other"
  int64_t buckets = 0;             // gradient buckets synced
  int64_t buckets_overlapped = 0;  // of those, all-reduced while backward still ran (gradient_sync.h)

  struct Phase {
    const char* name;  // data_wait, copy, compute, communication, optimizer, other
    double seconds;
  };
  // The phases in the step's order; "other" is step minus the rest (at least 0).
  std::vector<Phase> phases() const;
  // The steps between two running totals (this one the later).
  StepTimes since(const StepTimes& earlier) const;
};

// What a training step gives the loop. Its values stay on the device: the loop reads them at log steps only
// (core/host_reads.h), so a step never waits for its own kernels.
struct StepOutput {
  torch::Tensor loss;  // this rank's main loss (mean over its micro-batches), 0-dim; NaN/inf stops the run
  std::vector<std::pair<std::string, torch::Tensor>> scalars;  // extra per-step values (d_loss, kl, ...), 0-dim
  std::vector<std::pair<std::string, double>> host_scalars;    // values the host holds (fp16 loss scale, ...)
};

class TrainingTask {
 public:
  virtual ~TrainingTask() = default;
  // (collective) Makes every rank's parameters and buffers equal to rank 0's.
  virtual void broadcast_state() = 0;
  // Before each epoch's first step (also the first after a resume): fine-tuning's unfreeze schedule
  // (trainer/trainable.h) takes effect here. Every rank calls it with the same epoch; no collective.
  virtual void start_epoch(int64_t epoch) { (void)epoch; }
  // The input normalization the task's pretrained file implies (models/model_spec.h pretrained_normalization),
  // read when the task loaded it; "" without one. The trainer resolves data.normalization "auto" with it.
  virtual std::string pretrained_normalization(std::string* why) const {
    (void)why;
    return "";
  }
  // "N of M parameters train (...)" when the run freezes anything, for the run summary; "" otherwise.
  virtual std::string trainable_summary() const { return ""; }
  // (collective) One optimizer step: forward/backward on each micro-batch, gradient sync, step(s) at lr.
  virtual StepOutput train_step(const std::vector<Batch>& micro_batches, double lr, int64_t step, StepTimes* times) = 0;
  // (collective) After each epoch, once the loop has averaged rank_local_buffers() over the ranks: validation
  // metrics, sample grids (rank 0 writes files and logs).
  virtual void end_of_epoch(int64_t epoch, int64_t step, RunLog& log) = 0;
  // The floating-point buffers each rank updates on its own between epoch ends (BatchNorm running
  // statistics), in a fixed order: a checkpoint keeps every rank's so a resumed run continues exactly.
  virtual std::vector<torch::Tensor> rank_local_buffers() const = 0;
  // Model(s) and optimizer state(s) for checkpoints; load() after construction, before training. save()
  // writes copies of the tensors (save_training_state, save_module_copy), never the live ones: the archive
  // is serialised by a background thread while training changes them.
  virtual void save(torch::serialize::OutputArchive& archive) = 0;
  virtual void load(torch::serialize::InputArchive& archive) = 0;
  // Store indices this task trains on instead of the whole train split (the VAE's model.vae.subset); empty
  // for all of them.
  virtual std::vector<int64_t> training_subset() const { return {}; }
  // Model FLOPs of one image's share of a training step (forward and backward, 2 per multiply-add of the
  // matrix products, convolutions and attention: models/flop_count.h), counted once when the task is made:
  // the numerator of perf/tflops and perf/mfu (trainer/perf_meter.h). Backward counts twice its forward, and
  // once where the network is frozen (input gradients only).
  virtual double train_flops_per_image() const = 0;
};

struct TaskInputs {
  const proto::RunConfig& config;
  ProcessContext& ctx;
  const StoreInfo& store;
  std::string run_dir;
  const DataParallelOptions& parallel;  // every DataParallel a task makes uses these (trainer: from `distributed`)
  Communicator& gradient;               // the gradient communicator its DataParallels sync over
};

// The task for the config's model: the classifier task for any classifier (models/model_spec.h), else the
// recipe registered for the model's name in trainer/task.cpp.
std::unique_ptr<TrainingTask> make_task(const TaskInputs& inputs);
// Whether make_task has a recipe for `spec` (every spec must: tests/trainer/task_test.cpp).
bool has_training_task(const ModelSpec& spec);

// The data-parallel options of a run config's `distributed` section.
DataParallelOptions data_parallel_options(const proto::RunConfig& config);

// distributed.sync_batchnorm: every BatchNorm layer of `module` normalises its training batches over all ranks'
// batches on the task's gradient communicator (comm/sync_batch_norm.h); nothing with one rank or without the
// field. Returns the log line that says so, naming the model `name`; "" when the field is off.
std::string sync_batchnorm_over_ranks(const TaskInputs& inputs, torch::nn::Module& module, const std::string& name);

// (collective) every rank: agrees on distributed.backend for this placement (a backend that cannot run here
// is one line on every rank: comm/communicator.h choose_gradient_backend), then opens the gradient
// communicator with the config's collective timeout. `description` says which, for the log.
std::unique_ptr<Communicator> open_gradient_communicator(const proto::RunConfig& config, ProcessContext& ctx,
                                                         std::string* description);

}  // namespace facetrain
