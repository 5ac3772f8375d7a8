// The DCGAN task (seed 002; Radford et al. 2016): BCE-with-logits real/fake losses, Adam, alternating D and
// G steps, both networks' gradients synchronised. D sees real and fake batches in separate forwards (as the
// seed), so BatchNorm statistics are per batch; buffers are never broadcast per forward (the PyTorch DDP
// broadcast_buffers failure) but averaged across ranks at each epoch end, before samples and checkpoints.
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "models/flop_count.h"
#include "models/init.h"
#include "comm/data_parallel.h"
#include "eval/image_grid.h"
#include "models/model_options.h"
#include "trainer/optim.h"
#include "trainer/precision.h"
#include "trainer/run_log.h"
#include "core/stopwatch.h"
#include "trainer/task.h"

namespace facetrain {
namespace {

torch::Tensor bce_with_logits(const torch::Tensor& logits, float target) {
  return torch::binary_cross_entropy_with_logits(logits.view({-1}),
                                                 torch::full({logits.size(0)}, target, logits.options()));
}

void set_requires_grad(const std::vector<torch::Tensor>& parameters, bool on) {
  for (auto p : parameters) p.set_requires_grad(on);
}

class DcganTask : public TrainingTask {
 public:
  explicit DcganTask(const TaskInputs& in)
      : config_(in.config),
        ctx_(in.ctx),
        run_dir_(in.run_dir),
        options_(dcgan_options_from(in.config, in.store)),
        generator_(options_),
        discriminator_(options_),
        precision_(parse_precision(in.config.distributed().precision(), in.ctx.device)),
        d_scaler_(precision_ == Precision::kFp16),
        g_scaler_(precision_ == Precision::kFp16) {
    FT_USER_CHECK(!config_.has_trainable(),
                  "trainable: the DCGAN trains both networks whole from scratch; remove the "
                  "trainable section (it is for fine-tuning the ViT and the VAE)");
    FT_USER_CHECK(config_.ema().decay() == 0, "ema.decay: weight EMA is for the ViT and the VAE, not the DCGAN");
    init_dcgan_weights(*generator_);
    init_dcgan_weights(*discriminator_);
    generator_->to(ctx_.device);
    discriminator_->to(ctx_.device);
    g_parameters_ = generator_->parameters();
    d_parameters_ = discriminator_->parameters();
    const WeightDecayRule decay(config_.optimizer());
    const DecayGroups g_groups = weight_decay_groups(*generator_, decay),
                      d_groups = weight_decay_groups(*discriminator_, decay);
    g_optimizer_ = make_optimizer(config_.optimizer(), g_groups.groups, g_groups.weight_decay);
    d_optimizer_ = make_optimizer(config_.optimizer(), d_groups.groups, d_groups.weight_decay);
    log("dcgan: generator " + decay.describe(*generator_) + "; discriminator " + decay.describe(*discriminator_));
    g_parallel_ = std::make_unique<DataParallel>(in.gradient, *generator_, in.parallel, "generator gradient");
    d_parallel_ = std::make_unique<DataParallel>(in.gradient, *discriminator_, in.parallel, "discriminator gradient");
    const std::string g_sync_batchnorm = sync_batchnorm_over_ranks(in, *generator_, "dcgan generator");
    const std::string d_sync_batchnorm = sync_batchnorm_over_ranks(in, *discriminator_, "dcgan discriminator");
    // The fixed latent batch of the per-epoch sample grid, the same on every rank and every resume.
    auto generator = torch::make_generator<torch::CPUGeneratorImpl>(config_.model().dcgan().sample_seed());
    fixed_z_ = torch::randn({config_.model().dcgan().sample_count(), options_.z_size}, generator).to(ctx_.device);
    log("dcgan: generator " + std::to_string(count_parameters(*generator_)) + " parameters, discriminator " +
        std::to_string(count_parameters(*discriminator_)) + " parameters");
    for (const std::string& line : {g_sync_batchnorm, d_sync_batchnorm}) {
      if (!line.empty()) log(line);
    }
    // A step's model FLOPs per image of the batch (task.h): G forward once, backward twice that (3 G); D forward
    // on the real and the fake image with backward (2 + 4 D), then in the G step forward once more with a
    // backward of input gradients only, D being frozen there (1 + 1 D): 3 G + 8 D.
    const auto options = torch::TensorOptions().device(ctx_.device);
    const double g = count_forward_flops(*generator_, [&] {
                       generator_->forward(torch::zeros({1, options_.z_size}, options));
                     }).total();
    const double d = count_forward_flops(*discriminator_, [&] {
                       discriminator_->forward(
                           torch::zeros({1, options_.channels, options_.image_size, options_.image_size}, options));
                     }).total();
    train_flops_per_image_ = 3 * g + 8 * d;
  }
  double train_flops_per_image() const override { return train_flops_per_image_; }

  std::vector<torch::Tensor> rank_local_buffers() const override {
    std::vector<torch::Tensor> out = g_parallel_->rank_local_buffers();
    for (auto& b : d_parallel_->rank_local_buffers()) out.push_back(b);
    return out;
  }
  void broadcast_state() override {
    g_parallel_->broadcast_state();
    d_parallel_->broadcast_state();
  }

  StepOutput train_step(const std::vector<Batch>& micro, double lr, int64_t, StepTimes* times) override {
    generator_->train();
    discriminator_->train();
    set_learning_rate(*g_optimizer_, lr);
    set_learning_rate(*d_optimizer_, lr);
    const int n = static_cast<int>(micro.size());
    const float real_label = 1.0f - config_.model().dcgan().label_smoothing();

    // D step on real and (detached) fake images; the fakes are kept for the G step, which saves one
    // generator forward per step (the seed regenerates them).
    d_parallel_->zero_grad();
    auto t = Clock::now();
    std::vector<torch::Tensor> fakes(n);
    const torch::Tensor zero = torch::zeros({}, torch::TensorOptions().device(ctx_.device));
    torch::Tensor d_loss_sum = zero, d_real_sum = zero, d_fake_sum = zero;  // on the device: no read per step
    for (int m = 0; m < n; ++m) {
      d_parallel_->set_sync_enabled(m == n - 1);
      const torch::Tensor real = micro[m].images.to(ctx_.device);  // there already in training (load_step)
      torch::Tensor d_real, d_fake, d_loss;
      {
        RECORD_USER_SCOPE("forward");
        {
          AutocastScope autocast(precision_, ctx_.device);
          fakes[m] = generator_->forward(torch::randn({real.size(0), options_.z_size}, real.options()));
          d_real = discriminator_->forward(real).to(torch::kFloat);
          d_fake = discriminator_->forward(fakes[m].detach()).to(torch::kFloat);
        }
        d_loss = (bce_with_logits(d_real, real_label) + bce_with_logits(d_fake, 0.0f)) / n;
      }
      {
        RECORD_USER_SCOPE("backward");
        d_scaler_.scale_loss(d_loss).backward();
      }
      d_loss_sum = d_loss_sum + d_loss.detach();
      d_real_sum = d_real_sum + torch::sigmoid(d_real.detach()).mean() / n;
      d_fake_sum = d_fake_sum + torch::sigmoid(d_fake.detach()).mean() / n;
    }
    times->forward_backward += seconds_since(t);
    synced_optimizer_step(d_parallel_->buckets(), *d_optimizer_, d_parameters_, config_.optimizer().grad_clip_norm(),
                          times, &d_scaler_);

    // G step: D frozen (no D gradients, so D's buckets see nothing), G pushed towards "real".
    g_parallel_->zero_grad();
    set_requires_grad(d_parameters_, false);
    t = Clock::now();
    torch::Tensor g_loss_sum = zero;
    for (int m = 0; m < n; ++m) {
      g_parallel_->set_sync_enabled(m == n - 1);
      torch::Tensor g_loss;
      {
        RECORD_USER_SCOPE("forward");
        torch::Tensor d_out;
        {
          AutocastScope autocast(precision_, ctx_.device);
          d_out = discriminator_->forward(fakes[m]).to(torch::kFloat);
        }
        g_loss = bce_with_logits(d_out, 1.0f) / n;
      }
      {
        RECORD_USER_SCOPE("backward");
        g_scaler_.scale_loss(g_loss).backward();
      }
      g_loss_sum = g_loss_sum + g_loss.detach();
    }
    times->forward_backward += seconds_since(t);
    set_requires_grad(d_parameters_, true);
    synced_optimizer_step(g_parallel_->buckets(), *g_optimizer_, g_parameters_, config_.optimizer().grad_clip_norm(),
                          times, &g_scaler_);
    StepOutput out{d_loss_sum + g_loss_sum,
                   {{"d_loss", d_loss_sum}, {"g_loss", g_loss_sum}, {"d_real", d_real_sum}, {"d_fake", d_fake_sum}},
                   {}};
    if (d_scaler_.enabled()) {
      out.host_scalars.emplace_back("d_loss_scale", d_scaler_.scale());
      out.host_scalars.emplace_back("g_loss_scale", g_scaler_.scale());
      out.host_scalars.emplace_back("d_skipped_steps", static_cast<double>(d_scaler_.skipped_steps()));
      out.host_scalars.emplace_back("g_skipped_steps", static_cast<double>(g_scaler_.skipped_steps()));
    }
    return out;
  }

  void end_of_epoch(int64_t epoch, int64_t step, RunLog& log_out) override {
    // BatchNorm statistics are equal on every rank here (the loop averaged them: trainer.cpp end_epoch).
    if (ctx_.rank != 0) return;
    torch::NoGradGuard no_grad;
    generator_->eval();
    const ImageGrid grid = make_image_grid(generator_->forward(fixed_z_), 8, -1.0f, 1.0f);
    char name[64];
    std::snprintf(name, sizeof(name), "samples/epoch-%03lld.png", static_cast<long long>(epoch));
    const std::string path = (std::filesystem::path(run_dir_) / name).string();
    write_png(path, grid);
    log_out.image("samples/fixed_latents", grid.pixels.data(), grid.height, grid.width, grid.channels, step);
    log("epoch " + std::to_string(epoch) + ": sample grid " + path);
  }

  void save(torch::serialize::OutputArchive& archive) override {
    save_training_state(archive, "generator", "generator_", *generator_, *g_optimizer_, g_scaler_);
    save_training_state(archive, "discriminator", "discriminator_", *discriminator_, *d_optimizer_, d_scaler_);
  }
  void load(torch::serialize::InputArchive& archive) override {
    load_training_state(archive, "generator", "generator_", *generator_, *g_optimizer_, g_scaler_);
    load_training_state(archive, "discriminator", "discriminator_", *discriminator_, *d_optimizer_, d_scaler_);
  }

 private:
  const proto::RunConfig& config_;
  ProcessContext& ctx_;
  std::string run_dir_;
  DcganOptions options_;
  DcganGenerator generator_;
  DcganDiscriminator discriminator_;
  Precision precision_;
  LossScaler d_scaler_, g_scaler_;
  std::vector<torch::Tensor> g_parameters_, d_parameters_;
  std::unique_ptr<torch::optim::Optimizer> g_optimizer_, d_optimizer_;
  std::unique_ptr<DataParallel> g_parallel_, d_parallel_;
  torch::Tensor fixed_z_;
  double train_flops_per_image_ = 0;
};

}  // namespace

std::unique_ptr<TrainingTask> make_dcgan_task(const TaskInputs& inputs) { return std::make_unique<DcganTask>(inputs); }

}  // namespace facetrain
