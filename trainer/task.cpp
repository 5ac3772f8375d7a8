// The training-side registration of model kinds (see task.h): one switch, no default.
#include "trainer/task.h"

#include <algorithm>

#include "comm/communicator.h"
#include "core/error.h"
#include "models/registry.h"
#include "runtime/setup_agreement.h"

namespace facetrain {

// Each kind's task, defined in its <kind>_task.cpp, the classifiers' in classifier_task.cpp (declared only
// here: nothing else makes tasks).
std::unique_ptr<TrainingTask> make_vit_task(const TaskInputs& inputs);
std::unique_ptr<TrainingTask> make_dcgan_task(const TaskInputs& inputs);
std::unique_ptr<TrainingTask> make_vae_task(const TaskInputs& inputs);
std::unique_ptr<TrainingTask> make_mobilenet_v2_task(const TaskInputs& inputs);  // classifier_task.cpp
std::unique_ptr<TrainingTask> make_cnn_task(const TaskInputs& inputs);           // classifier_task.cpp

std::unique_ptr<TrainingTask> make_task(const TaskInputs& inputs) {
  switch (model_kind_of(inputs.config)) {
    case ModelKind::kVit: return make_vit_task(inputs);
    case ModelKind::kDcgan: return make_dcgan_task(inputs);
    case ModelKind::kVae: return make_vae_task(inputs);
    case ModelKind::kMobileNetV2: return make_mobilenet_v2_task(inputs);
    case ModelKind::kCnn: return make_cnn_task(inputs);
  }
  FT_CHECK(false, "unknown model kind");
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

DataParallelOptions data_parallel_options(const proto::RunConfig& config) {
  DataParallelOptions o;
  o.bucket_cap_bytes = static_cast<int64_t>(config.distributed().bucket_cap_mb() * 1e6);
  o.first_bucket_cap_bytes = std::max<int64_t>(1, static_cast<int64_t>(config.distributed().first_bucket_mb() * 1e6));
  return o;
}

}  // namespace facetrain
