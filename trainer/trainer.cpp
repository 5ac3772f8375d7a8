// The generic training loop (see trainer.h). Per step, one tiny all-reduce carries the loss, the
// non-finite flag and the stop request, so every rank agrees at the same step boundary on all three.
#include "trainer/trainer.h"

#include <sys/resource.h>

#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "datastore/loader.h"
#include "comm/communicator.h"
#include "comm/flight_recorder.h"
#include "core/config.h"
#include "models/checkpoint.h"
#include "models/checkpoint_store.h"
#include "models/registry.h"
#include "trainer/records/progress.h"
#include "trainer/host_memory_cache.h"
#include "trainer/precision.h"
#include "trainer/run_log.h"
#include "trainer/schedule.h"
#include "core/stop_signal.h"
#include "core/stopwatch.h"
#include "trainer/task.h"

namespace facetrain {
namespace {

namespace fs = std::filesystem;

// data.normalize_on: whether the loader hands uint8 batches that the trainer normalizes on the device.
bool normalizes_on_device(const proto::RunConfig& c, const ProcessContext& ctx) {
  const std::string& where = c.data().normalize_on();
  return where == "device" || (where == "auto" && ctx.device.is_cuda());
}

LoaderOptions loader_options(const proto::RunConfig& c, const ProcessContext& ctx, const TrainingTask& task) {
  LoaderOptions o;
  o.uint8_images = normalizes_on_device(c, ctx);
  o.split = parse_split(c.data().train_split(), "data.train_split");
  o.batch_size = c.data().batch_size();
  o.rank = ctx.rank;
  o.world_size = ctx.world_size;
  o.seed = c.data().seed();
  o.threads = c.data().loader_threads();
  o.prefetch_batches = c.data().prefetch_batches();
  o.chunk_shuffle = c.data().chunk_shuffle();
  o.normalization = run_normalization(c);
  o.subset = task.training_subset();
  const auto& a = c.augmentation();
  o.augment.rotation_range = a.rotation_range();
  o.augment.width_shift_range = a.width_shift_range();
  o.augment.height_shift_range = a.height_shift_range();
  o.augment.shear_range = a.shear_range();
  o.augment.zoom_range = a.zoom_range();
  o.augment.horizontal_flip = a.horizontal_flip();
  o.augment.vertical_flip = a.vertical_flip();
  o.augment.fill_mode = parse_fill_mode(a.fill_mode(), "augmentation.fill_mode");
  o.augment.cval = a.cval();
  o.augment.random_grayscale = a.random_grayscale();
  return o;
}

using Position = TrainingPosition;  // models/checkpoint.h owns the checkpoint's contents

// Every rank's BatchNorm running statistics, one row per rank (float64 holds float32 values exactly).
constexpr const char* kRankBuffersKey = "trainer.rank_buffers";

torch::Tensor flatten_buffers(const std::vector<torch::Tensor>& buffers) {
  std::vector<torch::Tensor> flat;
  for (const auto& b : buffers) flat.push_back(b.detach().to(torch::kCPU, torch::kFloat64).reshape({-1}));
  return torch::cat(flat);
}

void copy_into_buffers(const torch::Tensor& flat, const std::vector<torch::Tensor>& buffers) {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (const auto& b : buffers) {
    b.copy_(flat.narrow(0, offset, b.numel()).reshape(b.sizes()));
    offset += b.numel();
  }
}

// Rank 0's checkpoint files (checkpoint.background_write): with it, write() hands the state (an archive of
// copies, made at the step boundary) to a thread that serialises it and writes, fsyncs and renames the file
// while training goes on; the next write(), and wait(), wait for the one before and rethrow its error.
// CheckpointStore's durability contract holds either way.
class CheckpointWriter {
 public:
  CheckpointWriter(CheckpointStore* store, bool background) : store_(store), background_(background) {}
  ~CheckpointWriter() {
    if (thread_.joinable()) thread_.join();
  }
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  void write(int64_t step, std::shared_ptr<torch::serialize::OutputArchive> archive, std::string meta) {
    wait();
    if (!background_) {
      log("checkpoint " + store_->write(step, serialize_archive(*archive), meta));
      return;
    }
    thread_ = std::thread([this, step, archive = std::move(archive), meta = std::move(meta)] {
      try {
        const auto start = Clock::now();
        const std::string path = store_->write(step, serialize_archive(*archive), meta);
        write_seconds_.push_back(seconds_since(start));
        log("checkpoint " + path + " (written in the background in " + fixed_decimals(1e3 * write_seconds_.back(), 0) +
            " ms)");
      } catch (...) {
        error_ = std::current_exception();
      }
    });
  }
  // Until the last write is on disk; rethrows its error.
  void wait() {
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }
  bool background() const { return background_; }
  const std::vector<double>& write_seconds() const { return write_seconds_; }  // after wait()

 private:
  CheckpointStore* store_;
  bool background_;
  std::thread thread_;
  std::exception_ptr error_;
  std::vector<double> write_seconds_;
};

// (collective) Rank 0 serialises the state and hands it to the writer. With `durable` (a stop, the run's
// end) or without background writes it waits for the file, and every rank waits for rank 0, so no rank
// exits or races ahead before the checkpoint is on disk.
// Between epoch ends each rank's BatchNorm statistics are its own (averaged at each epoch end): the checkpoint
// holds their mean as the model's (what eval and export use) and every rank's own under kRankBuffersKey,
// which a resume on the same number of ranks restores, so it continues bit for bit.
void save_checkpoint(TrainingTask& task, CheckpointWriter* writer, Position pos, const proto::RunConfig& config,
                     const StoreInfo& store_info, ProcessContext& ctx, bool durable) {
  pos.world_size = ctx.world_size;
  pos.batch_in_epoch = pos.images_in_epoch / (static_cast<int64_t>(config.data().batch_size()) * ctx.world_size);
  const std::vector<torch::Tensor> buffers = task.rank_local_buffers();
  torch::Tensor per_rank, own;
  if (!buffers.empty()) {
    own = flatten_buffers(buffers);
    per_rank = ctx.comm->all_gather(own.reshape({1, -1}), "allgather of BatchNorm statistics for a checkpoint");
    if (ctx.rank == 0) copy_into_buffers(per_rank.mean(0), buffers);
  }
  if (ctx.rank == 0) {
    std::ostringstream meta;
    meta << "{\"step\": " << pos.step << ", \"epoch\": " << pos.epoch << ", \"batch_in_epoch\": " << pos.batch_in_epoch
         << ", \"model\": \"" << model_kind_name(model_kind_of(config)) << "\", \"world_size\": " << ctx.world_size << "}";
    auto archive = make_checkpoint_archive(
        [&](torch::serialize::OutputArchive& archive) {
          task.save(archive);  // copies (TrainingTask::save): serialised later, maybe on the writer's thread
          if (per_rank.defined()) archive.write(kRankBuffersKey, per_rank);
        },
        pos, config, store_info);
    if (own.defined()) copy_into_buffers(own, buffers);  // rank 0 trains on with its own statistics
    writer->write(pos.step, std::move(archive), meta.str());
    if (durable) writer->wait();
  }
  if (durable || !writer->background()) ctx.comm->barrier();
}

// (collective) Rank 0 picks the checkpoint and broadcasts its bytes, so ranks need no shared file system
// and can never disagree on which checkpoint they resumed from.
// `named` is the checkpoint file --resume PATH names, already read and verified by rank 0 during setup.
bool resume_from(const std::string& resume, Checkpoint* named, CheckpointStore* store, TrainingTask& task,
                 ProcessContext& ctx, Position* pos) {
  if (resume == "none") return false;
  std::string payload;
  std::string source;
  if (ctx.rank == 0) {
    if (resume == "auto") {
      std::vector<std::string> skipped;
      auto found = store->latest_valid(&skipped);
      for (const auto& s : skipped) log("resume: " + s);
      if (found) {
        payload = std::move(found->payload);
        source = found->path;
      }
    } else {
      FT_CHECK(named != nullptr, "--resume " << resume << " was not read during setup");
      payload = std::move(named->payload);
      source = resume;
    }
  }
  torch::Tensor size = torch::tensor(static_cast<int64_t>(payload.size()));
  ctx.comm->broadcast_(size, 0);
  const int64_t bytes = size.item<int64_t>();
  if (bytes == 0) {
    log("resume auto: no checkpoint in " + store->directory() + ", starting from scratch");
    return false;
  }
  torch::Tensor data = torch::empty({bytes}, torch::kUInt8);
  if (ctx.rank == 0) std::memcpy(data.data_ptr<uint8_t>(), payload.data(), payload.size());
  ctx.comm->broadcast_(data, 0);
  if (ctx.rank != 0) payload.assign(reinterpret_cast<const char*>(data.data_ptr<uint8_t>()), bytes);
  bool own_buffers = false;
  *pos = read_checkpoint_payload(payload, ctx.rank == 0 ? source : std::string("checkpoint"),
                                 [&](torch::serialize::InputArchive& archive) {
                                   task.load(archive);
                                   torch::Tensor per_rank;
                                   const std::vector<torch::Tensor> buffers = task.rank_local_buffers();
                                   if (!buffers.empty() && archive.try_read(kRankBuffersKey, per_rank) &&
                                       per_rank.size(0) == ctx.world_size) {
                                     copy_into_buffers(per_rank[ctx.rank], buffers);
                                     own_buffers = true;
                                   }
                                 });
  if (!own_buffers && !task.rank_local_buffers().empty()) {
    log("resume: every rank starts from the checkpoint's mean BatchNorm statistics (saved on another number of "
        "ranks, or by an older version)");
  }
  log("resumed from " + (ctx.rank == 0 ? source : std::string("checkpoint")) + " at step " +
      std::to_string(pos->step) + " (epoch " + std::to_string(pos->epoch) + ", batch " +
      std::to_string(pos->batch_in_epoch) + ")");
  return true;
}

// Fault injection for the tests: RANK_VAR=r and STEP_VAR=s in the environment pick the rank and the step.
bool fault_hits(const char* rank_var, const char* step_var, int rank, int64_t step) {
  const char* r = std::getenv(rank_var);
  const char* s = std::getenv(step_var);
  return r != nullptr && s != nullptr && *r != '\0' && *s != '\0' && std::atoi(r) == rank && std::atoll(s) == step;
}

// The watchdog tests (tests/slurm, the flight recorder's): rank r stops making progress before step s, as a
// rank stuck in I/O would (FACETRAIN_FAULT_STALL_*), or dies by SIGKILL there, as one the OOM killer takes
// (FACETRAIN_FAULT_KILL_*).
void maybe_fail_for_fault_test(int rank, int64_t step) {
  if (fault_hits("FACETRAIN_FAULT_STALL_RANK", "FACETRAIN_FAULT_STALL_STEP", rank, step)) {
    log_all("fault injection: rank " + std::to_string(rank) + " stalls before step " + std::to_string(step));
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(60));
  }
  if (fault_hits("FACETRAIN_FAULT_KILL_RANK", "FACETRAIN_FAULT_KILL_STEP", rank, step)) {
    log_all("fault injection: rank " + std::to_string(rank) + " dies (SIGKILL) before step " + std::to_string(step));
    std::raise(SIGKILL);
  }
}

// The stop tests (tests/trainer/e2e): FACETRAIN_FAULT_SIGNAL_* make rank r send itself SIGUSR1 right after
// step s, so a stop lands on an exact step (the last of an epoch, the final one) instead of wherever a signal
// from outside happens to arrive.
void maybe_signal_for_fault_test(int rank, int64_t step) {
  if (fault_hits("FACETRAIN_FAULT_SIGNAL_RANK", "FACETRAIN_FAULT_SIGNAL_STEP", rank, step)) std::raise(SIGUSR1);
}

}  // namespace

double measure_matmul_gflops() {
  torch::NoGradGuard no_grad;
  auto a = torch::randn({1024, 1024});
  auto b = torch::randn({1024, 1024});
  auto c = torch::matmul(a, b);  // warm-up
  std::vector<double> rates;
  for (int i = 0; i < 5; ++i) {
    const auto t = Clock::now();
    c = torch::matmul(a, b);
    rates.push_back(2.0 * 1024 * 1024 * 1024 / seconds_since(t) / 1e9);
  }
  return median(rates);
}

int run_training(const proto::RunConfig& user_config, ProcessContext& ctx, const TrainOptions& options) {
  proto::RunConfig config = user_config;  // with data.normalization resolved (recorded in config.pbtxt)
  install_stop_handlers(preemption_signal_number(config.checkpoint().preemption_signal()));
  install_host_memory_cache(int64_t{config.distributed().host_memory_cache_mb()} << 20);
  ctx.comm->set_timeout_seconds(config.distributed().collective_timeout_s());
  const fs::path run_dir = config.logging().run_dir();
  const std::string kind = model_kind_name(model_kind_of(config));
  const DataParallelOptions parallel = data_parallel_options(config);
  // A checkpoint named by --resume is read first, by rank 0 alone (the only rank that needs the file: its bytes
  // are broadcast), and agreed on before anything else, so a missing or damaged file is one line and leaves
  // no run directory behind. (Its own agreement: the setup below runs collectives while it builds the model.)
  Checkpoint named_checkpoint;
  std::string normalization_source;
  run_setup_on_every_rank(*ctx.comm, [&] {
    if (ctx.rank == 0 && options.resume != "none" && options.resume != "auto") {
      const std::string why = verify_checkpoint_file(options.resume, &named_checkpoint);
      FT_USER_CHECK(why.empty(), "--resume: " << options.resume << " " << why);
    }
  });
  std::string gradient_sync;
  const std::unique_ptr<Communicator> gradient = open_gradient_communicator(config, ctx, &gradient_sync);
  const int accumulation = config.schedule().accumulation_steps();
  StoreInfo store_info;
  std::unique_ptr<TrainingTask> task;
  std::unique_ptr<ShardLoader> loader_holder;
  int64_t steps_per_epoch = 0;
  // The data and the model, checked on every rank with no collective inside (a failure may hit one rank
  // only: a store missing on one node) and agreed on: a bad store or field is one line, no aborted job.
  run_setup_on_every_rank(*ctx.comm, [&] {
    store_info = StoreReader(config.data().store()).info();
    torch::manual_seed(config.data().seed());  // model initialisation (rank 0's is broadcast to all)
    task = make_task(TaskInputs{config, ctx, store_info, run_dir.string(), parallel, *gradient});
    std::string convention_why;
    const std::string convention = task->pretrained_normalization(&convention_why);
    resolve_normalization(&config, convention, convention_why, &normalization_source);  // before the loader
    loader_holder = std::make_unique<ShardLoader>(config.data().store(), loader_options(config, ctx, *task));
    steps_per_epoch = loader_holder->batches_per_epoch() / accumulation;
    FT_USER_CHECK(steps_per_epoch > 0, "data.batch_size: " << config.data().batch_size() << " x " << ctx.world_size
                                                           << " ranks x " << accumulation
                                                           << " micro-batches leaves no full step in one epoch of "
                                                           << loader_holder->images_per_epoch() << " images");
  });
  // The run directory, only once every rank's inputs are known to be good (no half-made runs); the agreement
  // is also the barrier after rank 0 has made it.
  run_setup_on_every_rank(*ctx.comm, [&] {
    if (ctx.rank == 0) {
      std::error_code ec;
      fs::create_directories(run_dir, ec);
      FT_USER_CHECK(!ec, "logging.run_dir: cannot create " << run_dir.string() << ": " << ec.message());
      write_file_atomically((run_dir / "config.pbtxt").string(), to_text(config));
    }
  });
  ShardLoader& loader = *loader_holder;
  log_all(describe(ctx));  // one placement line per rank, once the inputs are known to be good
  // Every collective from here on goes into this rank's flight ring (RUN_DIR/flight/rank-R.ring), on disk
  // whatever ends the process, for `facetrain doctor`. Diagnostics only: a rank that cannot write it trains on.
  try {
    flight_recorder_open((run_dir / "flight").string(), ctx.rank, ctx.world_size);
  } catch (const UserError& e) {
    log_all(std::string("flight recorder off: ") + e.what());
  }

  // The epoch is counted in images of its order (all ranks together), so a run resumes on any number of
  // ranks where it stopped: the images left are those no rank has seen yet (datastore/loader.h).
  const int64_t images_per_step = static_cast<int64_t>(config.data().batch_size()) * ctx.world_size * accumulation;
  const int64_t epoch_images = loader.source_images();
  auto steps_left_in_epoch = [&](int64_t images_done) { return (epoch_images - images_done) / images_per_step; };

  task->broadcast_state();
  CheckpointStore checkpoints((run_dir / "checkpoints").string(), config.checkpoint().keep_last());
  CheckpointWriter writer(&checkpoints, config.checkpoint().background_write());
  Position pos;
  std::vector<double> checkpoint_pauses;  // seconds training stood still for each checkpoint (rank 0)
  auto checkpoint = [&](bool durable) {
    const auto start = Clock::now();
    save_checkpoint(*task, &writer, pos, config, store_info, ctx, durable);
    checkpoint_pauses.push_back(seconds_since(start));
  };
  if (resume_from(options.resume, &named_checkpoint, &checkpoints, *task, ctx, &pos)) {
    if (pos.images_in_epoch < 0) {  // a checkpoint from before images_in_epoch: same ranks assumed
      pos.images_in_epoch = pos.batch_in_epoch * config.data().batch_size() * ctx.world_size;
    }
    if (pos.world_size > 0 && pos.world_size != ctx.world_size) {
      log("resume: checkpoint written by " + std::to_string(pos.world_size) + " ranks, now " +
          std::to_string(ctx.world_size) + ": epoch " + std::to_string(pos.epoch) + " goes on after image " +
          std::to_string(pos.images_in_epoch) + " of its order; " + std::to_string(steps_left_in_epoch(pos.images_in_epoch)) +
          " steps of " + std::to_string(images_per_step) + " images left in it");
    }
  }
  if (steps_left_in_epoch(pos.images_in_epoch) == 0) {
    ++pos.epoch;
    pos.batch_in_epoch = 0;
    pos.images_in_epoch = 0;
  }
  // An epochs schedule counts the steps at this run's number of ranks from where training stands.
  const int64_t total_steps =
      config.schedule().max_steps() > 0
          ? config.schedule().max_steps()
          : pos.step + (pos.epoch < config.schedule().epochs()
                            ? steps_left_in_epoch(pos.images_in_epoch) +
                                  (config.schedule().epochs() - pos.epoch - 1) * steps_per_epoch
                            : 0);

  RunLog run_log(run_dir.string(), pos.step, ctx.rank == 0);
  Progress progress(total_steps, stdout_is_terminal() && ctx.rank == 0 && !options.quiet,
                    config.logging().progress_seconds());
  log(kind + ": " + std::to_string(loader.images_per_epoch()) + " images/epoch, " + std::to_string(steps_per_epoch) +
      " steps/epoch of " + std::to_string(config.data().batch_size() * ctx.world_size * accumulation) +
      " images, " + std::to_string(total_steps) + " steps in all");
  log(gradient_sync);
  // data.normalize_on device: uint8 batches go to the device and become float there (one fused pass).
  const bool device_normalize = normalizes_on_device(config, ctx);
  torch::Tensor input_scale, input_shift;
  if (device_normalize) {
    std::vector<float> scale, shift;
    loader.input_affine(&scale, &shift);
    const auto channels = static_cast<int64_t>(scale.size());
    input_scale = torch::tensor(scale).view({1, channels, 1, 1}).to(ctx.device);
    input_shift = torch::tensor(shift).view({1, channels, 1, 1}).to(ctx.device);
  }
  log("input normalization: " + config.data().normalization() + " (" + normalization_source + "), applied on the " +
      (device_normalize ? "device to uint8 batches" : "host by the loader") + " (data.normalize_on " +
      config.data().normalize_on() + ")");
  if (ctx.device.is_cpu() && config.distributed().precision() == "fp32") {
    const std::string units = cpu_bf16_units();
    if (!units.empty()) {
      log("hint: this CPU has bf16 units (" + units + "): distributed.precision=bf16 trains about 2x faster here "
          "(README: mixed precision)");
    }
  }

  StepTimes times;
  double step_seconds = 0, images_done = 0;
  std::vector<std::pair<std::string, double>> last_scalars;  // the last step's, for the summary
  const auto run_start = Clock::now();
  const double wait_at_start = loader.wait_seconds();
  const int64_t first_step = pos.step;
  int exit_code = 0;
  const int64_t every_ckpt = config.checkpoint().every_steps();
  const int log_every = std::max(1, config.logging().every_steps());

  while (pos.step < total_steps) {
    task->start_epoch(pos.epoch);
    loader.start_epoch_at_image(pos.epoch, pos.images_in_epoch);
    std::vector<Batch> micro(accumulation);
    bool epoch_done = false;
    while (pos.step < total_steps) {
      maybe_fail_for_fault_test(ctx.rank, pos.step + 1);
      // 1. load (a whole optimizer step's micro-batches; an epoch ends on a step boundary)
      const auto t0 = Clock::now();
      bool have = true;
      for (int m = 0; m < accumulation && have; ++m) have = loader.next(&micro[m]);
      if (!have) {
        epoch_done = true;
        break;
      }
      if (device_normalize) {
        for (auto& b : micro) b.images = torch::addcmul(input_shift, b.images.to(ctx.device).to(torch::kFloat32), input_scale);
      }
      // 2-4. forward, backward + sync, optimizer step (the task's recipe)
      const double lr = learning_rate_at(pos.step, total_steps, config.optimizer().lr(),
                                         config.schedule().warmup_steps(), config.schedule().decay(),
                                         config.schedule().min_lr_ratio());
      torch::manual_seed(config.data().seed() * 1000003ULL + static_cast<uint64_t>(pos.step) * 7919ULL +
                         static_cast<uint64_t>(ctx.rank));
      ctx.comm->set_step(pos.step + 1);  // collective timeouts name the step, here and in the peers' answers
      gradient->set_step(pos.step + 1);
      StepOutput out = task->train_step(micro, lr, pos.step, &times);
      pos.step += 1;
      pos.batch_in_epoch += accumulation;
      pos.images_in_epoch += images_per_step;
      last_scalars = out.scalars;
      maybe_signal_for_fault_test(ctx.rank, pos.step);
      const double dt = seconds_since(t0);
      step_seconds += dt;
      images_done += static_cast<double>(config.data().batch_size()) * accumulation * ctx.world_size;

      // (collective) one all-reduce: [loss sum, non-finite ranks, stop requests]
      torch::Tensor flags = torch::tensor({std::isfinite(out.loss) ? out.loss : 0.0,
                                           std::isfinite(out.loss) ? 0.0 : 1.0, stop_requested() ? 1.0 : 0.0},
                                          torch::kFloat64);
      ctx.comm->all_reduce_sum_(flags);
      const double mean_loss = flags[0].item<double>() / ctx.world_size;
      FT_CHECK(flags[1].item<double>() == 0,
               "loss is not finite at step " << pos.step << " on " << flags[1].item<double>()
                                             << " rank(s); stopping. The last good checkpoint is kept in "
                                             << checkpoints.directory());
      const double images_per_s = static_cast<double>(config.data().batch_size()) * accumulation * ctx.world_size / dt;
      if (pos.step % log_every == 0 || pos.step == total_steps) {
        std::vector<std::pair<std::string, double>> values{{"train/loss", mean_loss}, {"train/lr", lr},
                                                           {"train/images_per_s", images_per_s}};
        for (const auto& s : out.scalars) values.emplace_back("train/" + s.first, s.second);
        run_log.scalars(pos.step, values);
      }
      progress.update(pos.epoch, pos.step, images_per_s, mean_loss);

      const bool epoch_ends = steps_left_in_epoch(pos.images_in_epoch) == 0;
      if (flags[2].item<double>() > 0) {
        progress.finish_line();
        if (pos.step == total_steps) {
          // Nothing left to resume: finish as an unstopped run does (its epoch end, its checkpoint, exit 0).
          log("stop requested (" + signal_name(stop_signal()) + ") on the final step " + std::to_string(pos.step) +
              ": finishing the run");
          break;
        }
        if (epoch_ends) {
          // The epoch's last step: its validation, samples and BatchNorm averaging run now, before the
          // checkpoint, so a resumed run has lost none of them and starts the next epoch.
          task->end_of_epoch(pos.epoch, pos.step, run_log);
          ++pos.epoch;
          pos.batch_in_epoch = 0;
          pos.images_in_epoch = 0;
        }
        log("stop requested (" + signal_name(stop_signal()) + "): checkpointing at step " + std::to_string(pos.step));
        checkpoint(/*durable=*/true);
        run_log.flush();
        exit_code = kExitStopped;
        break;
      }
      // The last step of an epoch is checkpointed by the end of the epoch (after validation and the
      // BatchNorm averaging), not twice.
      if (every_ckpt > 0 && pos.step % every_ckpt == 0 && pos.step < total_steps && !epoch_ends) {
        progress.finish_line();
        checkpoint(/*durable=*/false);
      }
    }
    if (exit_code != 0) break;
    progress.finish_line();
    if (epoch_done || pos.step == total_steps) {
      task->end_of_epoch(pos.epoch, pos.step, run_log);
      if (epoch_done) {
        ++pos.epoch;
        pos.batch_in_epoch = 0;
        pos.images_in_epoch = 0;
      }
      checkpoint(/*durable=*/pos.step == total_steps);
      run_log.flush();
    }
  }
  if (ctx.rank == 0) writer.wait();  // (the last checkpoint is durable already; this rethrows a late error)

  // Run summary: throughput, where the time went, memory, and achieved GFLOP/s beside a plain matmul.
  const double wall = seconds_since(run_start);
  const double steps = static_cast<double>(pos.step - first_step);
  if (steps > 0) {
    const double data_wait = loader.wait_seconds() - wait_at_start;
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    double peak_mb = usage.ru_maxrss / 1024.0;
    torch::Tensor peak = torch::tensor({peak_mb}, torch::kFloat64);
    ctx.comm->all_reduce_sum_(peak);
    const double images_per_s = images_done / step_seconds;
    std::ostringstream s;
    s << "summary: " << fixed_decimals(steps, 0) << " steps in " << fixed_decimals(wall, 1) << " s, " << fixed_decimals(images_per_s, 1)
      << " images/s (all ranks); per step: data wait " << fixed_decimals(1e3 * data_wait / steps, 1) << " ms, forward+backward "
      << fixed_decimals(1e3 * times.forward_backward / steps, 1) << " ms, exposed communication "
      << fixed_decimals(1e3 * times.communication / steps, 1) << " ms, optimizer " << fixed_decimals(1e3 * times.optimizer / steps, 1)
      << " ms; peak memory " << fixed_decimals(peak_mb, 0) << " MB on rank " << ctx.rank << " (mean over ranks "
      << fixed_decimals(peak[0].item<double>() / ctx.world_size, 0) << " MB)";
    log(s.str());
    log("summary: host memory cache (distributed.host_memory_cache_mb " +
        std::to_string(config.distributed().host_memory_cache_mb()) + ") on rank " + std::to_string(ctx.rank) + ": " +
        describe_host_memory_cache());
    // fp16's loss scaling: where the scale ended and how many steps an overflow skipped (also in TensorBoard).
    std::string scaling;
    for (const auto& [name, value] : last_scalars) {
      if (name.find("loss_scale") != std::string::npos || name.find("skipped_steps") != std::string::npos) {
        scaling += (scaling.empty() ? "" : ", ") + name + " " + fixed_decimals(value, 0);
      }
    }
    if (!scaling.empty()) log("summary: " + config.distributed().precision() + " loss scaling: " + scaling);
    if (!task->trainable_summary().empty()) log("summary: " + task->trainable_summary());
    if (ctx.rank == 0 && !checkpoint_pauses.empty()) {
      std::string line = "summary: " + std::to_string(checkpoint_pauses.size()) + " checkpoints; training paused " +
                         fixed_decimals(1e3 * median(checkpoint_pauses), 1) + " ms each (median)";
      if (!writer.write_seconds().empty()) {
        line += ", the files written in the background in " + fixed_decimals(1e3 * median(writer.write_seconds()), 1) +
                " ms each";
      }
      log(line);
    }
    if (task->train_flops_per_image() > 0) {
      const double matmul = measure_matmul_gflops();
      const double achieved = task->train_flops_per_image() * images_per_s / ctx.world_size / 1e9;
      log("summary: " + fixed_decimals(achieved, 1) + " GFLOP/s per rank in training steps; plain 1024^3 matmul now: " +
          fixed_decimals(matmul, 1) + " GFLOP/s (" + fixed_decimals(100 * achieved / matmul, 0) + "%)");
    }
  }
  run_log.flush();
  return exit_code;
}

}  // namespace facetrain
