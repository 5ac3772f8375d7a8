// TrainingCheckpoints (training_checkpoints.h): the background writer, save with every rank's BatchNorm
// statistics, and the resume protocol (rank 0 reads, every rank gets the bytes by broadcast).
#include "trainer/training_checkpoints.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <sstream>
#include <thread>
#include <utility>

#include "comm/communicator.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stopwatch.h"

namespace facetrain {
namespace {

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

}  // namespace

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

TrainingCheckpoints::TrainingCheckpoints(const proto::RunConfig& config, const StoreInfo& store, std::string model_name,
                                         TrainingTask& task, ProcessContext& ctx)
    : config_(config),
      store_info_(store),
      model_name_(std::move(model_name)),
      task_(task),
      ctx_(ctx),
      store_((std::filesystem::path(config.logging().run_dir()) / "checkpoints").string(),
             config.checkpoint().keep_last()),
      writer_(std::make_unique<CheckpointWriter>(&store_, config.checkpoint().background_write())) {}

TrainingCheckpoints::~TrainingCheckpoints() = default;

// What the learning-rate schedule does across the change of world size (trainer/schedule.h): an `epochs`
// schedule follows the images and continues its curve; a `max_steps` one keeps its step count and curve, and
// the run then trains on another number of images.
void TrainingCheckpoints::log_schedule_on_new_world_size(const TrainingPosition& pos, const EpochSteps& epochs) const {
  const proto::ScheduleConfig& schedule = config_.schedule();
  const int64_t before = pos.world_size * config_.data().batch_size() * epochs.accumulation;  // images per step
  if (schedule.max_steps() > 0) {
    const int64_t steps_left = std::max<int64_t>(0, schedule.max_steps() - pos.step);
    const int64_t change = steps_left * (epochs.images_per_step - before);
    log("resume: schedule.max_steps counts optimizer steps: the " + std::to_string(steps_left) + " steps left take " +
        std::to_string(epochs.images_per_step) + " images each instead of " + std::to_string(before) +
        ", so the run trains on " + std::to_string(std::abs(change)) + (change < 0 ? " fewer" : " more") +
        " images than on " + std::to_string(pos.world_size) +
        " ranks; its learning rate follows the step and "
        "is unchanged (schedule.epochs follows the images instead)");
    return;
  }
  const int64_t done = pos.epoch * epochs.epoch_images + pos.images_in_epoch;
  const int64_t total = int64_t{schedule.epochs()} * epochs.epoch_images;
  log("resume: the learning rate follows the images consumed, not the steps: " + std::to_string(done) + " of " +
      std::to_string(total) + " (" + fixed_decimals(total > 0 ? 100.0 * done / total : 0.0, 1) +
      "%), so it continues the curve of " + std::to_string(pos.world_size) + " ranks");
}

const std::vector<double>& TrainingCheckpoints::background_write_seconds() const { return writer_->write_seconds(); }

void TrainingCheckpoints::finish() {
  if (ctx_.rank == 0) writer_->wait();
}

void TrainingCheckpoints::save(const TrainingPosition& at, bool durable) {
  const auto start = Clock::now();
  TrainingPosition pos = at;
  pos.world_size = ctx_.world_size;
  pos.batch_in_epoch = pos.images_in_epoch / (static_cast<int64_t>(config_.data().batch_size()) * ctx_.world_size);
  const std::vector<torch::Tensor> buffers = task_.rank_local_buffers();
  torch::Tensor per_rank, own;
  if (!buffers.empty()) {
    own = flatten_buffers(buffers);
    per_rank = ctx_.comm->all_gather(own.reshape({1, -1}), "allgather of BatchNorm statistics for a checkpoint");
    if (ctx_.rank == 0) copy_into_buffers(per_rank.mean(0), buffers);
  }
  if (ctx_.rank == 0) {
    std::ostringstream meta;
    meta << "{\"step\": " << pos.step << ", \"epoch\": " << pos.epoch << ", \"batch_in_epoch\": " << pos.batch_in_epoch
         << ", \"model\": \"" << model_name_ << "\", \"world_size\": " << ctx_.world_size << "}";
    auto archive = make_checkpoint_archive(
        [&](torch::serialize::OutputArchive& archive) {
          task_.save(archive);  // copies (TrainingTask::save): serialised later, maybe on the writer's thread
          if (per_rank.defined()) archive.write(kRankBuffersKey, per_rank);
        },
        pos, config_, store_info_);
    if (own.defined()) copy_into_buffers(own, buffers);  // rank 0 trains on with its own statistics
    writer_->write(pos.step, std::move(archive), meta.str());
    if (durable) writer_->wait();
  }
  if (durable || !writer_->background()) ctx_.comm->barrier();
  pause_seconds_.push_back(seconds_since(start));
}

TrainingPosition TrainingCheckpoints::resume(const std::string& which, Checkpoint* named, const EpochSteps& epochs) {
  TrainingPosition pos;
  pos.schedule_step_images = epochs.images_per_step;  // a fresh run lays its warm-up out in its own steps
  if (which == "none") return pos;
  std::string payload;
  std::string source;
  if (ctx_.rank == 0) {
    if (which == "auto") {
      std::vector<std::string> skipped;
      auto found = store_.latest_valid(&skipped);
      for (const auto& s : skipped) log("resume: " + s);
      if (found) {
        payload = std::move(found->payload);
        source = found->path;
      }
    } else {
      FT_CHECK(named != nullptr, "resume checkpoint " << which << " was not read during setup");
      payload = std::move(named->payload);
      source = which;
    }
  }
  // (collective) every rank: rank 0's choice, its size first (0: none)
  torch::Tensor size = torch::tensor(static_cast<int64_t>(payload.size()));
  ctx_.comm->broadcast_(size, 0);
  const int64_t bytes = size.item<int64_t>();
  if (bytes == 0) {
    log("resume auto: no checkpoint in " + store_.directory() + ", starting from scratch");
    return pos;
  }
  torch::Tensor data = torch::empty({bytes}, torch::kUInt8);
  if (ctx_.rank == 0) std::memcpy(data.data_ptr<uint8_t>(), payload.data(), payload.size());
  ctx_.comm->broadcast_(data, 0);
  if (ctx_.rank != 0) payload.assign(reinterpret_cast<const char*>(data.data_ptr<uint8_t>()), bytes);
  bool own_buffers = false;
  pos = read_checkpoint_payload(
      payload, ctx_.rank == 0 ? source : std::string("checkpoint"), [&](torch::serialize::InputArchive& archive) {
        task_.load(archive);
        torch::Tensor per_rank;
        const std::vector<torch::Tensor> buffers = task_.rank_local_buffers();
        if (!buffers.empty() && archive.try_read(kRankBuffersKey, per_rank) && per_rank.size(0) == ctx_.world_size) {
          copy_into_buffers(per_rank[ctx_.rank], buffers);
          own_buffers = true;
        }
      });
  if (!own_buffers && !task_.rank_local_buffers().empty()) {
    log("resume: every rank starts from the checkpoint's mean BatchNorm statistics (saved on another number of "
        "ranks, or by an older version)");
  }
  log("resumed from " + (ctx_.rank == 0 ? source : std::string("checkpoint")) + " at step " + std::to_string(pos.step) +
      " (epoch " + std::to_string(pos.epoch) + ", batch " + std::to_string(pos.batch_in_epoch) + ")");
  if (pos.images_in_epoch < 0) {  // a checkpoint from before images_in_epoch: same ranks assumed
    pos.images_in_epoch = pos.batch_in_epoch * config_.data().batch_size() * ctx_.world_size;
  }
  if (pos.schedule_step_images <= 0) pos.schedule_step_images = epochs.images_per_step;  // an older checkpoint
  if (pos.world_size > 0 && pos.world_size != ctx_.world_size) {
    log("resume: checkpoint written by " + std::to_string(pos.world_size) + " ranks, now " +
        std::to_string(ctx_.world_size) + ": epoch " + std::to_string(pos.epoch) + " goes on after image " +
        std::to_string(pos.images_in_epoch) + " of its order; " +
        std::to_string(epochs.steps_left(pos.images_in_epoch)) + " steps of " + std::to_string(epochs.images_per_step) +
        " images left in it");
    log_schedule_on_new_world_size(pos, epochs);
  }
  if (epochs.steps_left(pos.images_in_epoch) == 0) start_next_epoch(&pos);  // it closed its epoch
  return pos;
}

}  // namespace facetrain
