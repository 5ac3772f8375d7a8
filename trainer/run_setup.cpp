// RunSetup (run_setup.h): the trainer's setup agreement, from the --resume file to the flight recorder.
#include "trainer/run_setup.h"

#include <ATen/record_function.h>

#include <chrono>
#include <filesystem>
#include <system_error>

#include "comm/flight_recorder.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stop_signal.h"
#include "core/stopwatch.h"
#include "datastore/store.h"
#include "models/model_spec.h"
#include "runtime/setup_agreement.h"
#include "trainer/device_math.h"
#include "trainer/host_memory_cache.h"
#include "trainer/precision.h"

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
  o.pinned_batches = ctx.device.is_cuda();  // load_step's copies then queue without waiting
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

}  // namespace

RunSetup::RunSetup(const proto::RunConfig& user_config, ProcessContext& process, const std::string& resume,
                   const std::string& resume_name)
    : ctx(process), config(user_config) {
  install_stop_handlers(preemption_signal_number(config.checkpoint().preemption_signal()));
  install_host_memory_cache(int64_t{config.distributed().host_memory_cache_mb()} << 20);
  ctx.comm->set_timeout_seconds(config.distributed().collective_timeout_s());
  const fs::path run_dir = config.logging().run_dir();
  model_name = model_spec_of(config).name;
  parallel = data_parallel_options(config);
  device_math = apply_device_math(config.distributed(), ctx.device.is_cuda());
  // A checkpoint named by a resume PATH is read first, by rank 0 alone (the only rank that needs the file: its bytes
  // are broadcast), and agreed on before anything else, so a missing or damaged file is one line and leaves
  // no run directory behind. (Its own agreement: the setup below runs collectives while it builds the model.)
  run_setup_on_every_rank(*ctx.comm, [&] {
    if (ctx.rank == 0 && resume != "none" && resume != "auto") {
      const std::string why = verify_checkpoint_file(resume, &named_checkpoint);
      FT_USER_CHECK(why.empty(), resume_name << ": " << resume << " " << why);
    }
  });
  gradient = open_gradient_communicator(config, ctx, &gradient_sync);
  epochs.accumulation = config.schedule().accumulation_steps();
  // The data and the model, checked on every rank with no collective inside (a failure may hit one rank
  // only: a store missing on one node) and agreed on: a bad store or field is one line, no aborted job.
  run_setup_on_every_rank(*ctx.comm, [&] {
    profile_window = ProfileWindow::parse(config.logging().profile(), "logging.profile");
    FT_USER_CHECK(config.logging().straggler_threshold() > 0,
                  "logging.straggler_threshold: " << config.logging().straggler_threshold()
                                                  << " is not a positive fraction (0.2: 20% slower than the median)");
    store = StoreReader(config.data().store()).info();
    torch::manual_seed(config.data().seed());  // model initialisation (rank 0's is broadcast to all)
    task = make_task(TaskInputs{config, ctx, store, run_dir.string(), parallel, *gradient});
    std::string convention_why;
    const std::string convention = task->pretrained_normalization(&convention_why);
    resolve_normalization(&config, convention, convention_why, &normalization_source);  // before the loader
    loader = std::make_unique<ShardLoader>(config.data().store(), loader_options(config, ctx, *task));
    epochs.steps_per_epoch = loader->batches_per_epoch() / epochs.accumulation;
    FT_USER_CHECK(epochs.steps_per_epoch > 0,
                  "data.batch_size: " << config.data().batch_size() << " x " << ctx.world_size << " ranks x "
                                      << epochs.accumulation << " micro-batches leaves no full step in one epoch of "
                                      << loader->images_per_epoch() << " images");
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
  log_all(describe(ctx));  // one placement line per rank, once the inputs are known to be good
  log_all(describe_compute(ctx));
  // Every collective from here on goes into this rank's flight ring (RUN_DIR/flight/rank-R.ring), on disk
  // whatever ends the process, for `facetrain doctor`. Diagnostics only: a rank that cannot write it trains on.
  // The rings carry this attempt's generation, rank 0's clock (collective) every rank, so that after a resume
  // on fewer ranks doctor tells the rings of ranks that are gone from this attempt's.
  torch::Tensor generation = torch::tensor(static_cast<int64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count()));
  ctx.comm->broadcast_(generation, 0);
  try {
    flight_recorder_open((run_dir / "flight").string(), ctx.rank, ctx.world_size, generation.item<int64_t>());
  } catch (const UserError& e) {
    log_all(std::string("flight recorder off: ") + e.what());
  }
  epochs.images_per_step = static_cast<int64_t>(config.data().batch_size()) * ctx.world_size * epochs.accumulation;
  epochs.epoch_images = loader->source_images();
  if (normalizes_on_device(config, ctx)) {
    std::vector<float> scale, shift;
    loader->input_affine(&scale, &shift);
    const auto channels = static_cast<int64_t>(scale.size());
    input_scale = torch::tensor(scale).view({1, channels, 1, 1}).to(ctx.device);
    input_shift = torch::tensor(shift).view({1, channels, 1, 1}).to(ctx.device);
  }
}

void RunSetup::start_epoch(const TrainingPosition& pos) {
  task->start_epoch(pos.epoch);
  loader->start_epoch_at_image(pos.epoch, pos.images_in_epoch);
}

bool RunSetup::load_step(std::vector<Batch>* micro, StepTimes* times) {
  const double waited = loader->wait_seconds();
  bool have = true;
  {
    RECORD_USER_SCOPE("data wait");  // ranges on the --profile timeline (step_profiler.h)
    for (int m = 0; m < epochs.accumulation && have; ++m) have = loader->next(&(*micro)[m]);
  }
  times->data_wait += loader->wait_seconds() - waited;
  if (!have) return false;
  // Images and labels to the device. On a GPU the batches are page-locked (LoaderOptions::pinned_batches), so
  // the copies are queued on the compute stream behind the previous step's kernels and the host goes on.
  RECORD_USER_SCOPE("host-to-device copy");
  const auto t = Clock::now();
  const bool non_blocking = ctx.device.is_cuda();
  for (auto& b : *micro) {
    if (input_scale.defined()) {
      b.images = torch::addcmul(input_shift, b.images.to(ctx.device, non_blocking).to(torch::kFloat32), input_scale);
    } else if (!ctx.device.is_cpu()) {
      b.images = b.images.to(ctx.device, non_blocking);
    }
    if (!ctx.device.is_cpu()) b.labels = b.labels.to(ctx.device, non_blocking);
  }
  times->copy += seconds_since(t);
  return true;
}

void RunSetup::log_plan(int64_t total_steps) const {
  log(model_name + ": " + std::to_string(loader->images_per_epoch()) + " images/epoch, " +
      std::to_string(epochs.steps_per_epoch) + " steps/epoch of " + std::to_string(epochs.images_per_step) +
      " images, " + std::to_string(total_steps) + " steps in all");
  log(gradient_sync);
  log("device math: " + device_math);
  if (profile_window.active()) {
    const std::string note =
        profile_window.last > total_steps ? " (the run ends at step " + std::to_string(total_steps) + ")" : "";
    log("profile: LibTorch's profiler records " + profile_window.describe() + note + " on every rank into " +
        config.logging().run_dir() + "/profile/");
  }
  log("input normalization: " + config.data().normalization() + " (" + normalization_source + "), applied on the " +
      (input_scale.defined() ? "device to uint8 batches" : "host by the loader") + " (data.normalize_on " +
      config.data().normalize_on() + ")");
  if (ctx.device.is_cpu() && config.distributed().precision() == "fp32") {
    const std::string hint = bf16_hint(ctx.matmul);
    if (!hint.empty()) log("hint: " + hint);
  }
}

}  // namespace facetrain
