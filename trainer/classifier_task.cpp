// The classifier task (seed 001's ViT, seed 004's MobileNetV2, seed 002's discriminator as a CNN): cross-entropy with
// optional 'balanced' class weights and label smoothing, AdamW with warmup + cosine, gradient clipping; validation
// loss/accuracy/F1/AUC each epoch. Any classifier model trains here: what differs between them is behind
// their spec and the ImageClassifier capability (models/model_spec.h).
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <chrono>
#include <functional>

#include "core/error.h"
#include "core/log.h"
#include "models/init.h"
#include "comm/data_parallel.h"
#include "eval/metrics.h"
#include "trainer/optim.h"
#include "trainer/precision.h"
#include "trainer/run_log.h"
#include "eval/scoring.h"
#include "core/stopwatch.h"
#include "trainer/task.h"
#include "trainer/trainable.h"
#include "trainer/ema.h"
#include "models/model_spec.h"

namespace facetrain {
namespace {

// One classifier network as the task sees it: any model whose spec is a classifier (models/model_spec.h),
// reached through its ImageClassifier capability.
struct ClassifierModel {
  const ModelSpec* spec = nullptr;
  std::string name;  // "vit", the log prefix and config section
  std::shared_ptr<torch::nn::Module> module;
  ImageClassifier* classifier = nullptr;  // the same module
  ClassifierSettings settings;            // model.<name>.{class_weights, label_smoothing, pretrained}
};

ClassifierModel classifier_model(const TaskInputs& in) {
  ClassifierModel m;
  m.spec = &model_spec_of(in.config);
  m.name = m.spec->name;
  std::vector<NamedModule> modules = m.spec->build(in.config, in.store);
  FT_CHECK(modules.size() == 1, "a classifier is one module, the " << m.name << " has " << modules.size());
  m.module = modules[0].module;
  m.classifier = model_capability<ImageClassifier>(*m.spec, modules);
  FT_CHECK(m.classifier != nullptr, "the " << m.name << "'s spec is a classifier, its module is no ImageClassifier");
  m.settings = classifier_settings(in.config);
  return m;
}

class ClassifierTask : public TrainingTask {
 public:
  ClassifierTask(const TaskInputs& in, ClassifierModel model)
      : config_(in.config),
        ctx_(in.ctx),
        gradient_(in.gradient),
        store_(in.store),
        model_(std::move(model)),
        precision_(parse_precision(in.config.distributed().precision(), in.ctx.device)),
        scaler_(precision_ == Precision::kFp16) {
    const std::string& pretrained = model_.settings.pretrained;
    const std::string& name = model_.name;
    if (!pretrained.empty()) {
      // Every rank reads the file once (a file missing on one node is one line, in the setup agreement); rank
      // 0's weights are then broadcast as with any start. One report: loaded, initialised fresh, unused. The
      // file's input convention is kept for data.normalization "auto".
      LoadReport report;
      try {
        SafetensorsMetadata metadata;
        const TensorMap tensors = read_safetensors(pretrained, &metadata);
        FT_USER_CHECK(model_.spec->load_foreign, "the " << name << " takes no pretrained weights");
        model_.spec->load_foreign(*model_.module, tensors, &report, pretrained);
        normalization_ = facetrain::pretrained_normalization(*model_.spec, tensors, metadata,
                                                             "model." + name + ".pretrained", &normalization_why_);
      } catch (const UserError& e) {
        throw UserError("model." + name + ".pretrained: " + e.what());
      }
      log(name + ": model." + name + ".pretrained " + pretrained + ": " + report.summary());
    }
    model_.module->to(ctx_.device);
    const WeightDecayRule decay(config_.optimizer());
    trainable_ =
        std::make_unique<TrainablePlan>(config_.trainable(), model_.classifier->parameter_layers(),
                                        [&](const ParameterLayer& p) { return decay.applies(p.name, p.parameter); });
    parallel_ = std::make_unique<DataParallel>(in.gradient, *model_.module, in.parallel);
    const std::string sync_batchnorm = sync_batchnorm_over_ranks(in, *model_.module, name);
    parameters_ = parallel_->parameters();
    optimizer_ = make_optimizer(config_.optimizer(), trainable_->optimizer_groups(), trainable_->group_weight_decay());
    if (config_.ema().decay() != 0) ema_ = std::make_unique<WeightEma>(config_.ema(), *model_.module);
    if (model_.settings.class_weights) {
      class_weights_ = torch::tensor(store_.class_weights).to(ctx_.device);
      log(name + ": loss weighted by the store's balanced class weights");
    }
    log(name + ": " + decay.describe(*model_.module));  // once every section is known good (no line before an error)
    log(name + ": " + std::to_string(count_parameters(*model_.module)) + " parameters, " +
        model_.classifier->input_description());
    if (!sync_batchnorm.empty()) log(sync_batchnorm);
    if (trainable_->active()) log(name + ": " + trainable_->describe() + "; " + parallel_->describe());
  }

  void start_epoch(int64_t epoch) override {
    if (!trainable_->apply(epoch)) return;
    parallel_->rebuild_buckets();
    log(model_.name + ": epoch " + std::to_string(epoch) + ": " + trainable_->describe() + "; " +
        parallel_->describe());
  }
  std::string pretrained_normalization(std::string* why) const override {
    *why = normalization_why_;
    return normalization_;
  }
  std::string trainable_summary() const override { return trainable_->active() ? trainable_->describe() : ""; }

  void broadcast_state() override {
    parallel_->broadcast_state();
    if (ema_) ema_->reset();  // from the broadcast weights: equal on every rank
  }
  std::vector<torch::Tensor> rank_local_buffers() const override { return parallel_->rank_local_buffers(); }

  StepOutput train_step(const std::vector<Batch>& micro, double lr, int64_t step, StepTimes* times) override {
    trainable_->set_train_mode(*model_.module);  // frozen BatchNorm layers stay in eval mode
    set_learning_rates(*optimizer_, lr, trainable_->lr_scales());
    parallel_->zero_grad();
    auto t = Clock::now();
    torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().device(ctx_.device));
    const int n = static_cast<int>(micro.size());
    const torch::Tensor weighted_scale = class_weights_.defined() ? class_weighted_scale(micro) : torch::Tensor();
    for (int m = 0; m < n; ++m) {
      // Only the last micro-batch communicates; earlier ones accumulate locally in .grad.
      parallel_->set_sync_enabled(m == n - 1);
      torch::Tensor loss;
      {
        RECORD_USER_SCOPE("forward");
        const torch::Tensor labels = micro[m].labels.to(ctx_.device);  // there already in training (load_step)
        torch::Tensor logits;
        {
          AutocastScope autocast(precision_, ctx_.device);
          logits = model_.classifier->logits(micro[m].images.to(ctx_.device));
        }
        loss = weighted_scale.defined() ? loss_of(logits.to(torch::kFloat), labels, torch::kSum) * weighted_scale
                                        : loss_of(logits.to(torch::kFloat), labels) / n;
      }
      {
        RECORD_USER_SCOPE("backward");
        scaler_.scale_loss(loss).backward();
      }
      loss_sum += loss.detach();
    }
    times->forward_backward += seconds_since(t);
    const torch::Tensor norm = synced_optimizer_step(parallel_->buckets(), *optimizer_, parameters_,
                                                     config_.optimizer().grad_clip_norm(), times, &scaler_);
    if (ema_) ema_->update(step);
    StepOutput out{loss_sum, {{"grad_norm", norm}}, {}};
    if (scaler_.enabled()) {
      out.host_scalars.emplace_back("loss_scale", scaler_.scale());
      out.host_scalars.emplace_back("skipped_steps", static_cast<double>(scaler_.skipped_steps()));
    }
    return out;
  }

  void end_of_epoch(int64_t epoch, int64_t step, RunLog& log_out) override {
    validate(epoch, step, log_out, "");
    if (ema_) {
      ema_->check_identical(*ctx_.comm);
      ema_->swap();
      validate(epoch, step, log_out, "ema");
      ema_->swap();
    }
  }

  // Validation metrics of the weights in the model now; `weights` "" for the raw ones, "ema" for the shadow
  // (then the scalars are val_ema/* and the line says so).
  void validate(int64_t epoch, int64_t step, RunLog& log_out, const std::string& weights) {
    StoreReader store(config_.data().store());
    std::string split;
    const std::vector<int64_t> indices = validation_indices(store, config_.data().val_split(), &split);
    if (indices.empty()) return;
    model_.module->eval();
    const int64_t classes = static_cast<int64_t>(store_.class_names.size());
    GatheredScores scores = score_store_images(
        config_.data().store(), indices, run_normalization(config_), std::max<int64_t>(config_.data().batch_size(), 64),
        classes, ctx_, [&](const torch::Tensor& images) { return model_.classifier->logits(images); });
    const double loss = torch::nn::functional::cross_entropy(scores.outputs, scores.labels).item<double>();
    torch::Tensor probs = torch::softmax(scores.outputs, 1).contiguous();
    std::vector<float> flat(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
    std::vector<int64_t> labels(scores.labels.data_ptr<int64_t>(),
                                scores.labels.data_ptr<int64_t>() + scores.labels.numel());
    const ClassificationMetrics m = classification_metrics(flat, labels, static_cast<int>(classes), loss);
    const std::string prefix = weights.empty() ? "val/" : "val_" + weights + "/";
    log_out.scalars(step, {{prefix + "loss", m.loss},
                           {prefix + "accuracy", m.accuracy},
                           {prefix + "f1", m.macro_f1},
                           {prefix + "auc", m.auc}});
    const std::string tag = weights.empty() ? "" : " " + weights;
    char line[256];
    std::snprintf(line, sizeof(line),
                  "epoch %lld %s%s: loss %.4f, accuracy %.4f, macro F1 %.4f, AUC %.4f (%lld images)",
                  static_cast<long long>(epoch), split.c_str(), tag.c_str(), m.loss, m.accuracy, m.macro_f1, m.auc,
                  static_cast<long long>(m.count));
    log(line);
  }

  void save(torch::serialize::OutputArchive& archive) override {
    save_training_state(archive, "model", "", *model_.module, *optimizer_, scaler_);
    if (ema_) ema_->save(archive, "model");
  }
  void load(torch::serialize::InputArchive& archive) override {
    load_training_state(archive, "model", "", *model_.module, *optimizer_, scaler_);
    if (ema_ && !ema_->load(archive, "model")) {
      ema_->reset();
      log(model_.name + ": the checkpoint has no EMA weights; the EMA starts from its weights");
    }
  }

  double train_flops_per_image() const override { return 3.0 * model_.classifier->flops_per_image(); }

 private:
  torch::Tensor loss_of(const torch::Tensor& logits, const torch::Tensor& labels,
                        torch::nn::functional::CrossEntropyFuncOptions::reduction_t reduction = torch::kMean) {
    auto options = torch::nn::functional::CrossEntropyFuncOptions()
                       .label_smoothing(model_.settings.label_smoothing)
                       .reduction(reduction);
    if (class_weights_.defined()) options.weight(class_weights_);
    return torch::nn::functional::cross_entropy(logits, labels, options);
  }

  // The class-weighted loss is the weighted mean over the global step batch (every rank's micro-batches):
  // each rank backpropagates its weighted sum times world_size / (global weight sum), and the gradient
  // average over ranks is then the gradient of that mean. A weighted mean per rank, averaged over ranks,
  // would weight the ranks equally whatever their labels. (collective: one scalar on the gradient communicator,
  // on the device where the labels are: no host read)
  torch::Tensor class_weighted_scale(const std::vector<Batch>& micro) {
    torch::Tensor weight_sum = torch::zeros({1}, class_weights_.options().dtype(torch::kFloat64));
    for (const auto& b : micro) {
      weight_sum += class_weights_.index_select(0, b.labels.to(class_weights_.device())).sum().to(torch::kFloat64);
    }
    gradient_.all_reduce_sum_(weight_sum, "allreduce of the step's class-weight sum");
    return (static_cast<double>(ctx_.world_size) / weight_sum).to(torch::kFloat32).reshape({});
  }

  const proto::RunConfig& config_;
  ProcessContext& ctx_;
  Communicator& gradient_;  // the gradient communicator (the class-weight sums travel with the gradients)
  const StoreInfo& store_;
  ClassifierModel model_;
  Precision precision_;
  LossScaler scaler_;
  std::vector<torch::Tensor> parameters_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<TrainablePlan> trainable_;
  std::unique_ptr<DataParallel> parallel_;
  std::unique_ptr<WeightEma> ema_;
  std::string normalization_, normalization_why_;  // what the pretrained file implies ("" without one)
  torch::Tensor class_weights_;
};

}  // namespace

std::unique_ptr<TrainingTask> make_classifier_task(const TaskInputs& inputs) {
  return std::make_unique<ClassifierTask>(inputs, classifier_model(inputs));
}

}  // namespace facetrain
