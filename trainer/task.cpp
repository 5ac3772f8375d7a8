// The training side of the model table (see task.h): which recipe trains each model.
#include "trainer/task.h"

#include <algorithm>

#include "comm/communicator.h"
#include "comm/sync_batch_norm.h"
#include "core/error.h"
#include "models/model_spec.h"
#include "models/sync_batch_norm.h"
#include "runtime/setup_agreement.h"
#include "trainer/device_math.h"

namespace facetrain {

// The training recipes: every classifier trains in classifier_task.cpp; a generative model has its own
// (declared only here: nothing else makes tasks).
std::unique_ptr<TrainingTask> make_classifier_task(const TaskInputs& inputs);
std::unique_ptr<TrainingTask> make_dcgan_task(const TaskInputs& inputs);
std::unique_ptr<TrainingTask> make_vae_task(const TaskInputs& inputs);

namespace {

// The recipe of each model that is not a classifier, by its spec's name.
struct TaskMaker {
  const char* model;
  std::unique_ptr<TrainingTask> (*make)(const TaskInputs&);
};
constexpr TaskMaker kGenerativeTasks[] = {
    {"dcgan", make_dcgan_task},
    {"vae", make_vae_task},
};

const TaskMaker* generative_task_of(const ModelSpec& spec) {
  for (const auto& t : kGenerativeTasks) {
    if (spec.name == t.model) return &t;
  }
  return nullptr;
}

}  // namespace

std::vector<StepTimes::Phase> StepTimes::phases() const {
  const double named = data_wait + copy + forward_backward + communication + optimizer;
  return {{"data_wait", data_wait},         {"copy", copy},           {"compute", forward_backward},
          {"communication", communication}, {"optimizer", optimizer}, {"other", std::max(0.0, step - named)}};
}

StepTimes StepTimes::since(const StepTimes& earlier) const {
  StepTimes d;
  d.data_wait = data_wait - earlier.data_wait;
  d.copy = copy - earlier.copy;
  d.forward_backward = forward_backward - earlier.forward_backward;
  d.communication = communication - earlier.communication;
  d.optimizer = optimizer - earlier.optimizer;
  d.step = step - earlier.step;
  d.buckets = buckets - earlier.buckets;
  d.buckets_overlapped = buckets_overlapped - earlier.buckets_overlapped;
  return d;
}

bool has_training_task(const ModelSpec& spec) { return spec.is_classifier() || generative_task_of(spec) != nullptr; }

std::unique_ptr<TrainingTask> make_task(const TaskInputs& inputs) {
  const ModelSpec& spec = model_spec_of(inputs.config);
  if (spec.is_classifier()) return make_classifier_task(inputs);
  const TaskMaker* maker = generative_task_of(spec);
  FT_CHECK(maker != nullptr, "the " << spec.name << " has no training task (trainer/task.cpp)");
  return maker->make(inputs);
}

std::unique_ptr<Communicator> open_gradient_communicator(const proto::RunConfig& config, ProcessContext& ctx,
                                                         std::string* description) {
  GradientBackend backend = GradientBackend::kMpi;
  run_setup_on_every_rank(*ctx.comm, [&] {
    backend = choose_gradient_backend(config.distributed().backend(), ctx.device.is_cuda(), nccl_available());
  });
  std::unique_ptr<Communicator> gradient =
      make_gradient_communicator(backend, ctx.device.index(), config.distributed().collective_timeout_s());
  gradient->set_flight_name("gradient");
  *description = std::string("gradient sync over ") + gradient_backend_name(backend) + " (distributed.backend " +
                 config.distributed().backend() + ")";
  return gradient;
}

std::string sync_batchnorm_over_ranks(const TaskInputs& in, torch::nn::Module& module, const std::string& name) {
  if (!in.config.distributed().sync_batchnorm()) return "";
  Communicator& comm = in.gradient;
  const int layers = set_batchnorm_over_ranks(module, nullptr);  // counts them
  if (layers == 0) return "distributed.sync_batchnorm: the " + name + " has no BatchNorm layer; nothing to sync";
  const std::string counted = std::to_string(layers) + " BatchNorm layer" + (layers == 1 ? "" : "s");
  if (comm.size() == 1) return name + ": " + counted + "; one rank, so distributed.sync_batchnorm changes nothing";
  set_batchnorm_over_ranks(module, [&comm](SyncBatchNorm2dImpl& layer, const torch::Tensor& x, double momentum) {
    return batch_norm_over_ranks(comm, x, layer.weight, layer.bias, layer.running_mean, layer.running_var, momentum,
                                 layer.options.eps());
  });
  return name + ": " + counted + (layers == 1 ? " normalises" : " normalise") + " over the batches of all " +
         std::to_string(comm.size()) + " ranks (distributed.sync_batchnorm)";
}

bool channels_last_for(const TaskInputs& in) {
  return uses_channels_last(in.config.distributed(), model_spec_of(in.config).convolutional, in.ctx.device.is_cuda(),
                            nullptr);
}

DataParallelOptions data_parallel_options(const proto::RunConfig& config) {
  DataParallelOptions o;
  o.bucket_cap_bytes = static_cast<int64_t>(config.distributed().bucket_cap_mb() * 1e6);
  o.first_bucket_cap_bytes = std::max<int64_t>(1, static_cast<int64_t>(config.distributed().first_bucket_mb() * 1e6));
  return o;
}

}  // namespace facetrain
