// The perceptual-loss VAE task (seed 004; Hou et al., "Deep Feature Consistent VAE", 2017): loss =
// reconstruction (MSE or L1, mean over pixels) + kl_weight * KL (closed form, mean over the batch) +
// perceptual weight * VGG feature distance. Fine-tuning starts from model.vae.init_from, optionally on a
// mined subset, typically with a smaller KL weight (seed 004 uses 0.02).
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "models/flop_count.h"
#include "models/init.h"
#include "comm/data_parallel.h"
#include "eval/image_grid.h"
#include "models/model_options.h"
#include "models/checkpoint.h"
#include "trainer/optim.h"
#include "trainer/precision.h"
#include "trainer/run_log.h"
#include "eval/scoring.h"
#include "core/stopwatch.h"
#include "eval/image_selection.h"
#include "trainer/task.h"
#include "trainer/trainable.h"
#include "trainer/ema.h"
#include "models/parameter_layers.h"

namespace facetrain {
namespace {

class VaeTask : public TrainingTask {
 public:
  explicit VaeTask(const TaskInputs& in)
      : config_(in.config),
        ctx_(in.ctx),
        run_dir_(in.run_dir),
        model_(vae_options_from(in.config, in.store)),
        precision_(parse_precision(in.config.distributed().precision(), in.ctx.device)),
        scaler_(precision_ == Precision::kFp16) {
    const auto& v = config_.model().vae();
    if (!v.init_from().empty()) {
      const std::string source = resolve_checkpoint_path(v.init_from(), "model.vae.init_from");
      load_module_weights(*model_, source, "model");
      log("vae: fine-tuning from " + source);
    }
    model_->to(ctx_.device);
    if (v.perceptual().weight() > 0) {
      perceptual_ = PerceptualLoss(perceptual_options_from(config_));
      perceptual_->to(ctx_.device);
    }
    const int64_t encoder_blocks = static_cast<int64_t>(model_->options().widths().size());
    const WeightDecayRule decay(config_.optimizer());
    trainable_ = std::make_unique<TrainablePlan>(
        config_.trainable(), vae_parameter_layers(*model_, encoder_blocks, encoder_blocks + 1),
        [&](const ParameterLayer& p) { return decay.applies(p.name, p.parameter); });
    parameters_ = model_->parameters();
    optimizer_ = make_optimizer(config_.optimizer(), trainable_->optimizer_groups(), trainable_->group_weight_decay());
    if (config_.ema().decay() != 0) ema_ = std::make_unique<WeightEma>(config_.ema(), *model_);
    parallel_ = std::make_unique<DataParallel>(in.gradient, *model_, in.parallel);
    const std::string sync_batchnorm = sync_batchnorm_over_ranks(in, *model_, "vae");
    auto generator = torch::make_generator<torch::CPUGeneratorImpl>(1234);
    prior_z_ = torch::randn({v.sample_count(), model_->options().latent_size}, generator).to(ctx_.device);
    log("vae: " + decay.describe(*model_));  // once every section is known good (no line before an error)
    log("vae: " + std::to_string(count_parameters(*model_)) + " parameters, latent " +
        std::to_string(model_->options().latent_size) +
        (perceptual_ ? ", perceptual " + config_.model().vae().perceptual().network() : ", no perceptual term"));
    if (!sync_batchnorm.empty()) log(sync_batchnorm);
    if (trainable_->active()) log("vae: " + trainable_->describe() + "; " + parallel_->describe());
    // A step's model FLOPs per image (task.h): the VAE forward, backward twice that (3 V); the perceptual term's
    // frozen VGG runs on the target and on the reconstruction, and back to the reconstruction for input
    // gradients only (3 P).
    const torch::Tensor image =
        torch::zeros({1, model_->options().channels, model_->options().image_size, model_->options().image_size},
                     prior_z_.options());
    train_flops_per_image_ = 3 * count_forward_flops(*model_, [&] { model_->forward(image); }).total();
    if (perceptual_) {
      train_flops_per_image_ += 3 * count_forward_flops(*perceptual_, [&] { perceptual_->features(image); }).total();
    }
  }
  double train_flops_per_image() const override { return train_flops_per_image_; }

  void start_epoch(int64_t epoch) override {
    if (!trainable_->apply(epoch)) return;
    parallel_->rebuild_buckets();
    log("vae: epoch " + std::to_string(epoch) + ": " + trainable_->describe() + "; " + parallel_->describe());
  }
  std::string trainable_summary() const override { return trainable_->active() ? trainable_->describe() : ""; }

  std::vector<int64_t> training_subset() const override {
    const std::string& csv = config_.model().vae().subset();
    if (csv.empty()) return {};
    const std::vector<int64_t> indices = read_index_column(csv, "model.vae.subset");
    FT_USER_CHECK(!indices.empty(), "model.vae.subset: " << csv << " lists no images");
    // Said because the subset replaces data.train_split: an epoch is these images, whatever split they are in.
    log("vae: training on the " + std::to_string(indices.size()) + " images of model.vae.subset " + csv);
    return indices;
  }
  void broadcast_state() override {
    parallel_->broadcast_state();
    if (ema_) ema_->reset();  // from the broadcast weights: equal on every rank
  }
  std::vector<torch::Tensor> rank_local_buffers() const override { return parallel_->rank_local_buffers(); }

  StepOutput train_step(const std::vector<Batch>& micro, double lr, int64_t step, StepTimes* times) override {
    trainable_->set_train_mode(*model_);  // frozen BatchNorm layers stay in eval mode
    set_learning_rates(*optimizer_, lr, trainable_->lr_scales());
    parallel_->zero_grad();
    const int n = static_cast<int>(micro.size());
    auto t = Clock::now();
    const torch::Tensor zero = torch::zeros({}, torch::TensorOptions().device(ctx_.device));
    torch::Tensor total = zero, rec_sum = zero, kl_sum = zero, perc_sum = zero;  // on the device: no read per step
    for (int m = 0; m < n; ++m) {
      parallel_->set_sync_enabled(m == n - 1);
      const torch::Tensor images = micro[m].images.to(ctx_.device);  // there already in training (load_step)
      torch::Tensor perc, rec, kl, loss;
      {
        RECORD_USER_SCOPE("forward");
        VaeOutputs out;
        {
          AutocastScope autocast(precision_, ctx_.device);
          out = model_->forward(images);
          if (perceptual_) perc = perceptual_->forward(out.recon, images).to(torch::kFloat);
        }
        rec = reconstruction_loss(out.recon.to(torch::kFloat), images);
        kl = kl_divergence(out.mu.to(torch::kFloat), out.logvar.to(torch::kFloat));
        loss = rec + config_.model().vae().kl_weight() * kl;
        if (perceptual_) loss = loss + config_.model().vae().perceptual().weight() * perc;
      }
      {
        RECORD_USER_SCOPE("backward");
        scaler_.scale_loss(loss / n).backward();
      }
      if (perceptual_) perc_sum = perc_sum + perc.detach() / n;
      total = total + loss.detach() / n;
      rec_sum = rec_sum + rec.detach() / n;
      kl_sum = kl_sum + kl.detach() / n;
    }
    times->forward_backward += seconds_since(t);
    synced_optimizer_step(parallel_->buckets(), *optimizer_, parameters_, config_.optimizer().grad_clip_norm(), times,
                          &scaler_);
    if (ema_) ema_->update(step);
    StepOutput out{total, {{"reconstruction", rec_sum}, {"kl", kl_sum}}, {}};
    if (perceptual_) out.scalars.emplace_back("perceptual", perc_sum);
    if (scaler_.enabled()) {
      out.host_scalars.emplace_back("loss_scale", scaler_.scale());
      out.host_scalars.emplace_back("skipped_steps", static_cast<double>(scaler_.skipped_steps()));
    }
    return out;
  }

  void end_of_epoch(int64_t epoch, int64_t step, RunLog& log_out) override {
    model_->eval();  // BatchNorm statistics are equal on every rank (trainer.cpp end_epoch averaged them)
    StoreReader store(config_.data().store());
    std::string split;
    const std::vector<int64_t> indices = validation_indices(store, config_.data().val_split(), &split);
    validate(indices, split, epoch, step, log_out, "");
    if (ema_) {
      ema_->check_identical(*ctx_.comm);
      ema_->swap();
      validate(indices, split, epoch, step, log_out, "ema");
      ema_->swap();
    }
    if (ctx_.rank != 0 || indices.empty()) return;
    // Inputs beside reconstructions, and samples from the prior.
    torch::NoGradGuard no_grad;
    const int64_t shown = std::min<int64_t>(config_.model().vae().sample_count(), indices.size());
    ShardLoader loader(config_.data().store(), in_order_loader_options({indices.begin(), indices.begin() + shown},
                                                                       shown, Normalization::kMinusOneOne));
    loader.start_epoch(0);
    Batch batch;
    FT_CHECK(loader.next(&batch), "no validation batch");
    torch::Tensor images = batch.images.to(ctx_.device);
    torch::Tensor recon = model_->decode(model_->encode(images).first);
    // Pairs side by side: input, reconstruction, input, reconstruction, ...
    torch::Tensor pairs = torch::stack({images, recon}, 1).flatten(0, 1);
    write_grid(log_out, "reconstructions", make_image_grid(pairs, 8, -1, 1), epoch, step);
    write_grid(log_out, "prior_samples", make_image_grid(model_->decode(prior_z_), 8, -1, 1), epoch, step);
  }

  void save(torch::serialize::OutputArchive& archive) override {
    save_training_state(archive, "model", "", *model_, *optimizer_, scaler_);
    if (ema_) ema_->save(archive, "model");
  }
  void load(torch::serialize::InputArchive& archive) override {
    load_training_state(archive, "model", "", *model_, *optimizer_, scaler_);
    if (ema_ && !ema_->load(archive, "model")) {
      ema_->reset();
      log("vae: the checkpoint has no EMA weights; the EMA starts from its weights");
    }
  }

 private:
  // Per-image mean squared error of the posterior-mean reconstruction, in [0,1] pixel units, gathered, of
  // the weights in the model now (`weights` "ema": the shadow; scalars val_ema/*).
  void validate(const std::vector<int64_t>& indices, const std::string& split, int64_t epoch, int64_t step,
                RunLog& log_out, const std::string& weights) {
    if (indices.empty()) return;
    GatheredScores scores = score_store_images(config_.data().store(), indices, Normalization::kMinusOneOne, 64, 1,
                                               ctx_, [&](const torch::Tensor& images) {
                                                 torch::Tensor recon = model_->decode(model_->encode(images).first);
                                                 return ((recon - images) / 2).pow(2).flatten(1).mean(1, true);
                                               });
    const double mse = scores.outputs.mean().item<double>();
    const double psnr = (10.0 * torch::log10(1.0 / scores.outputs.clamp_min(1e-10))).mean().item<double>();
    const std::string prefix = weights.empty() ? "val/" : "val_" + weights + "/";
    log_out.scalars(step, {{prefix + "mse", mse}, {prefix + "psnr", psnr}});
    const std::string tag = weights.empty() ? "" : " " + weights;
    char line[200];
    std::snprintf(line, sizeof(line), "epoch %lld %s%s: reconstruction MSE %.5f, PSNR %.2f dB (%zu images)",
                  static_cast<long long>(epoch), split.c_str(), tag.c_str(), mse, psnr, indices.size());
    log(line);
  }

  torch::Tensor reconstruction_loss(const torch::Tensor& recon, const torch::Tensor& images) const {
    if (config_.model().vae().reconstruction() == "l1") return torch::l1_loss(recon, images);
    return torch::mse_loss(recon, images);
  }

  void write_grid(RunLog& log_out, const std::string& name, const ImageGrid& grid, int64_t epoch, int64_t step) {
    char file[96];
    std::snprintf(file, sizeof(file), "samples/%s-epoch-%03lld.png", name.c_str(), static_cast<long long>(epoch));
    write_png((std::filesystem::path(run_dir_) / file).string(), grid);
    log_out.image("samples/" + name, grid.pixels.data(), grid.height, grid.width, grid.channels, step);
  }

  const proto::RunConfig& config_;
  ProcessContext& ctx_;
  std::string run_dir_;
  Vae model_;
  Precision precision_;
  LossScaler scaler_;
  PerceptualLoss perceptual_{nullptr};
  std::vector<torch::Tensor> parameters_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<TrainablePlan> trainable_;
  std::unique_ptr<DataParallel> parallel_;
  std::unique_ptr<WeightEma> ema_;
  torch::Tensor prior_z_;
  double train_flops_per_image_ = 0;
};

}  // namespace

std::unique_ptr<TrainingTask> make_vae_task(const TaskInputs& inputs) { return std::make_unique<VaeTask>(inputs); }

}  // namespace facetrain
