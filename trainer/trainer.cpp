// The generic training loop (see trainer.h) as a recipe: set up, resume, epochs and steps, stop, summary.
// Per step, one tiny host all-reduce agrees on a stop request; at log steps, checkpoints, stops and epoch ends
// the losses are read from the device once and agreed on too (step_agreement.h), so every rank decides on a
// NaN and a stop at the same step boundary, and the steps in between never wait for the device.
#include "trainer/trainer.h"

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.h"
#include "comm/gradient_sync.h"
#include "core/error.h"
#include "core/host_reads.h"
#include "core/log.h"
#include "runtime/device_peaks.h"
#include "core/stop_signal.h"
#include "core/stopwatch.h"
#include "trainer/epoch_steps.h"
#include "trainer/out_of_memory.h"
#include "trainer/perf_meter.h"
#include "trainer/records/progress.h"
#include "trainer/run_log.h"
#include "trainer/run_setup.h"
#include "trainer/run_summary.h"
#include "trainer/schedule.h"
#include "trainer/step_agreement.h"
#include "trainer/step_profiler.h"
#include "trainer/stragglers.h"
#include "trainer/training_checkpoints.h"

namespace facetrain {
namespace {

// Before the step after `steps_done`, every rank: its random seed (the same on a resumed run) and the step
// that collective timeouts name, here and in the peers' answers.
void begin_step(const RunSetup& run, int64_t steps_done) {
  torch::manual_seed(run.config.data().seed() * 1000003ULL + static_cast<uint64_t>(steps_done) * 7919ULL +
                     static_cast<uint64_t>(run.ctx.rank));
  run.ctx.comm->set_step(steps_done + 1);
  run.gradient->set_step(steps_done + 1);
}

// The losses since the last agreement on them, agreed on (collective) every rank: this rank's last loss, its
// first non-finite step and, with `task_scalars`, the task's device scalars come from the device in ONE host
// read; `task_scalars` gets those as doubles.
StepAgreement agree_on_losses(Communicator& comm, const torch::Tensor& last_loss, NonfiniteLosses& nonfinite, bool stop,
                              const StepOutput* task_scalars, std::vector<double>* scalar_values) {
  std::vector<torch::Tensor> device_values{last_loss, nonfinite.first_step()};
  if (task_scalars != nullptr) {
    for (const auto& s : task_scalars->scalars) device_values.push_back(s.second);
  }
  std::vector<double> values = read_to_host(device_values);
  nonfinite.reset();
  if (scalar_values != nullptr) scalar_values->assign(values.begin() + 2, values.end());
  return agree_on_step(comm, values[0], stop, static_cast<int64_t>(values[1]));
}

// A log step's scalars for the run log: the agreed loss, the learning rate, the throughput and the task's own
// (`device_values`: its device scalars as read, in order).
std::vector<std::pair<std::string, double>> step_scalars(double mean_loss, double lr, double images_per_s,
                                                         const StepOutput& out,
                                                         const std::vector<double>& device_values) {
  std::vector<std::pair<std::string, double>> values{
      {"train/loss", mean_loss}, {"train/lr", lr}, {"train/images_per_s", images_per_s}};
  for (size_t i = 0; i < out.scalars.size(); ++i)
    values.emplace_back("train/" + out.scalars[i].first, device_values[i]);
  for (const auto& s : out.host_scalars) values.emplace_back("train/" + s.first, s.second);
  return values;
}

// (collective) every rank: an epoch's end. BatchNorm running statistics are averaged over the ranks first,
// for every model in this one place, so the validation, the sample grids and the checkpoint all see the
// model that is saved, the same on every rank; then the task's validation and samples.
void end_epoch(const RunSetup& run, const TrainingPosition& pos, RunLog& run_log) {
  const std::vector<torch::Tensor> buffers = run.task->rank_local_buffers();
  if (!buffers.empty()) average_tensors(*run.gradient, buffers);
  run.task->end_of_epoch(pos.epoch, pos.step, run_log);
}

// (collective) every rank, once the step agreement asked to stop after step pos->step. Returns the exit code.
// On the final step nothing is left to resume: the run finishes as an unstopped one does (its epoch end, its
// checkpoint, exit 0). Otherwise, when it was its epoch's last step, the epoch's end runs first (validation,
// samples, BatchNorm averaging, so a resumed run has lost none of them and starts the next epoch); then a
// durable checkpoint and kExitStopped.
int stop_at_step_boundary(TrainingPosition* pos, int64_t total_steps, const RunSetup& run,
                          TrainingCheckpoints& checkpoints, RunLog& run_log, Progress& progress) {
  progress.finish_line();
  if (pos->step == total_steps) {
    log("stop requested (" + signal_name(stop_signal()) + ") on the final step " + std::to_string(pos->step) +
        ": finishing the run");
    return 0;
  }
  if (run.epochs.epoch_ends(*pos)) {
    end_epoch(run, *pos, run_log);
    start_next_epoch(pos);
  }
  log("stop requested (" + signal_name(stop_signal()) + "): checkpointing at step " + std::to_string(pos->step));
  checkpoints.save(*pos, /*durable=*/true);
  run_log.flush();
  return kExitStopped;
}

// `part` of step `step` (the load, the task's step); an allocator's out-of-memory error in it becomes the one
// line of out_of_memory.h, a UserError: this rank's, which ends the job (launcher/main.cpp).
template <typename Part>
auto explaining_out_of_memory(const RunSetup& run, int64_t step, Part&& part) -> decltype(part()) {
  try {
    return part();
  } catch (const std::exception& e) {
    if (!is_out_of_memory(e)) throw;
    throw UserError(out_of_memory_message(step, run.ctx.rank, run.ctx.device, run.config.data().batch_size(),
                                          run.epochs.accumulation, memory_peaks(run.ctx.device), e));
  }
}

// Rank 0 says where the --profile window's traces went (`written`: this rank's file, "" when none).
void log_profile(const std::string& written, const ProcessContext& ctx) {
  if (written.empty() || ctx.rank != 0) return;
  const std::string dir = std::filesystem::path(written).parent_path().string();
  log("profile: " + written + (ctx.world_size > 1 ? " and the other ranks' beside it" : "") +
      " (Chrome trace: Perfetto, chrome://tracing); `facetrain doctor --trace " + dir + "` merges them");
}

}  // namespace

int run_training(const proto::RunConfig& user_config, ProcessContext& ctx, const TrainOptions& options) {
  // Set up (collective) every rank: the data, the model and the run directory, agreed on (run_setup.h)
  RunSetup run(user_config, ctx, options.resume, options.resume_name);
  const proto::RunConfig& config = run.config;
  TrainingTask& task = *run.task;
  // Resume (collective) every rank: rank 0's initial parameters, then the checkpoint's when there is one
  task.broadcast_state();
  TrainingCheckpoints checkpoints(config, run.store, run.model_name, task, ctx);
  TrainingPosition pos = checkpoints.resume(options.resume, &run.named_checkpoint, run.epochs);
  const int64_t total_steps = run.epochs.total_steps(pos, config.schedule());
  const LearningRateSchedule schedule{config.schedule(), config.optimizer().lr(), run.epochs.epoch_images};
  RunLog run_log(config.logging().run_dir(), pos.step, ctx.rank == 0);
  Progress progress(total_steps, stdout_is_terminal() && ctx.rank == 0 && !options.quiet,
                    config.logging().progress_seconds());
  run.log_plan(total_steps);

  // Model FLOPs and the peak MFU is measured against, every rank (a GPU's is measured now: tens of ms)
  PerfMeter perf(PerfModel{task.train_flops_per_image(), int64_t{config.data().batch_size()} * run.epochs.accumulation,
                           matmul_peak(config, ctx), ctx.device},
                 pos.step);
  log("perf: " + fixed_decimals(perf.model().train_flops_per_image / 1e6, 2) +
      " MFLOP of model FLOPs per image and training step; MFU (perf/mfu) against " +
      fixed_decimals(perf.model().peak.tflops, 4) + " TFLOP/s (" + perf.model().peak.source + ")");
  RunSummary summary(config, ctx, pos.step);
  StepTimes* times = summary.step_times();
  const int64_t every_checkpoint = config.checkpoint().every_steps();
  const int log_every = std::max(1, config.logging().every_steps());
  StepProfiler profiler(run.profile_window, config.logging().run_dir() + "/profile", *ctx.comm, ctx.device);
  StragglerWatch stragglers(config.logging().straggler_threshold(), *ctx.comm, ctx.host,
                            config.logging().run_dir() + "/ranks.jsonl");
  NonfiniteLosses nonfinite;  // since the last agreement on the losses
  torch::Tensor last_loss;    // the last step's, on the device
  bool losses_agreed = true;  // on every step so far
  double mean_loss = 0;       // the last agreed
  int exit_code = 0;
  while (pos.step < total_steps) {
    run.start_epoch(pos);
    std::vector<Batch> micro(run.epochs.accumulation);
    bool epoch_done = false;
    while (pos.step < total_steps) {
      options.faults.before_step(ctx.rank, pos.step + 1);
      profiler.before_step(pos.step + 1);  // (collective) every rank, at the --profile window's first step
      const auto t0 = Clock::now();
      const double lr = schedule.at(pos);
      StepOutput out;
      const StepTimes before = *times;
      const int64_t reads_before = host_read_count();
      {
        RECORD_USER_SCOPE("step " + std::to_string(pos.step + 1));  // a range on the profiler's timeline
        // 1. load (a whole optimizer step's micro-batches, onto the device; an epoch ends on a step boundary)
        const bool loaded = explaining_out_of_memory(run, pos.step + 1, [&] { return run.load_step(&micro, times); });
        if (!loaded) {
          epoch_done = true;
          break;
        }
        // 2-4. forward, backward + sync, optimizer step: the task's recipe (collective) every rank
        begin_step(run, pos.step);
        out = explaining_out_of_memory(run, pos.step + 1, [&] {
          options.faults.during_step(ctx.rank, pos.step + 1, ctx.device);
          return task.train_step(micro, lr, pos.step, times);
        });
      }
      run.epochs.advance_one_step(&pos);
      options.faults.after_step(ctx.rank, pos.step);
      const double worked = seconds_since(t0);  // the step up to the agreement, as the straggler watch counts it
      const StepTimes this_step = times->since(before);
      stragglers.add_step(worked, worked - this_step.communication, this_step.data_wait);
      // 5. agree (collective) every rank: on a stop request, every step (a host flag); on the losses, read from
      // the device, at a log step, a checkpoint, a stop and the last step. The wait in it is exposed
      // communication (a slower peer's step shows here)
      last_loss = options.faults.reported_loss(ctx.rank, pos.step, out.loss);
      nonfinite.add(last_loss, pos.step);
      const bool log_step = pos.step % log_every == 0 || pos.step == total_steps;
      const bool checkpoint_step = every_checkpoint > 0 && pos.step % every_checkpoint == 0;
      const auto agreement = Clock::now();
      std::vector<double> scalar_values;
      StepAgreement agreed;
      if (log_step || checkpoint_step) {
        agreed = agree_on_losses(*ctx.comm, last_loss, nonfinite, stop_requested(), log_step ? &out : nullptr,
                                 &scalar_values);
      } else {
        agreed.stop = any_rank(*ctx.comm, stop_requested());
        if (agreed.stop) agreed = agree_on_losses(*ctx.comm, last_loss, nonfinite, true, nullptr, nullptr);
      }
      const bool agreed_now = log_step || checkpoint_step || agreed.stop;
      if (agreed_now) mean_loss = agreed.mean_loss;
      losses_agreed = agreed_now;
      times->communication += seconds_since(agreement);
      const double seconds = seconds_since(t0);
      summary.add_step(seconds, run.epochs.images_per_step, out.host_scalars);
      summary.add_host_reads(host_read_count() - reads_before, agreed_now);
      agreed.check_finite(pos.step, checkpoints.directory());
      // 6. diagnostics (rank 0 writes): the scalars, perf/* among them, every logging.every_steps and at the
      // last step; progress (with the last agreed loss)
      const double images_per_s = static_cast<double>(run.epochs.images_per_step) / seconds;
      if (log_step) {
        std::vector<std::pair<std::string, double>> scalars =
            step_scalars(agreed.mean_loss, lr, images_per_s, out, scalar_values);
        perf.append_interval(*times, pos.step, &scalars);
        run_log.scalars(pos.step, scalars);
        stragglers.end_interval(pos.step);  // (collective) every rank: starts one small all-reduce, no wait
      }
      progress.update(pos.epoch, pos.step, images_per_s, mean_loss);
      log_profile(profiler.after_step(pos.step), ctx);  // (collective) every rank, at the window's last step
      // 7. stop, agreed on: every rank ends the run at this step boundary (collective) every rank
      if (agreed.stop) {
        exit_code = stop_at_step_boundary(&pos, total_steps, run, checkpoints, run_log, progress);
        break;
      }
      // Every checkpoint.every_steps (collective) every rank; an epoch's last step is checkpointed at its end
      if (every_checkpoint > 0 && pos.step % every_checkpoint == 0 && pos.step < total_steps &&
          !run.epochs.epoch_ends(pos)) {
        progress.finish_line();
        RECORD_USER_SCOPE("checkpoint pause");
        checkpoints.save(pos, /*durable=*/false);
      }
    }
    if (exit_code != 0) break;
    progress.finish_line();
    // The epoch's end (collective) every rank: the losses since the last log step agreed on (a NaN stops the
    // run before its checkpoint), validation, samples, BatchNorm averaging, then its checkpoint
    if (epoch_done || pos.step == total_steps) {
      if (!losses_agreed) {
        agree_on_losses(*ctx.comm, last_loss, nonfinite, false, nullptr, nullptr)
            .check_finite(pos.step, checkpoints.directory());
        losses_agreed = true;
      }
      end_epoch(run, pos, run_log);
      if (epoch_done) start_next_epoch(&pos);
      RECORD_USER_SCOPE("checkpoint pause");
      checkpoints.save(pos, /*durable=*/pos.step == total_steps);
      run_log.flush();
    }
  }
  // Summary (collective) every rank: the last checkpoint is durable already; finish() rethrows a late error
  log_profile(profiler.finish(), ctx);  // a --profile window the run ended inside
  stragglers.finish();
  checkpoints.finish();
  summary.log(pos.step, task, checkpoints, perf);
  if (ctx.rank == 0 && ctx.world_size > 1) log("summary: " + stragglers.describe_cost());
  run_log.flush();
  return exit_code;
}

}  // namespace facetrain
