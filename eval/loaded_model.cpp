// Loading a trained model for evaluation (see loaded_model.h).
#include "eval/loaded_model.h"


#include "core/error.h"
#include "core/log.h"
#include "models/pretrained.h"
#include "models/safetensors.h"
#include "core/config.h"
#include "models/model_options.h"
#include "models/checkpoint.h"
#include "models/checkpoint_store.h"

namespace facetrain {
namespace {


// The shape the model was trained on, stored in checkpoints as model_input = [h, w, c, classes].
void check_store_fits(const std::string& path, const StoreInfo& store, const std::string& kind) {
  if (is_safetensors_path(path)) return;
  const Checkpoint checkpoint = read_checkpoint_file(path);
  torch::serialize::InputArchive archive;
  archive.load_from(checkpoint.payload.data(), checkpoint.payload.size());
  torch::Tensor shape;
  if (!archive.try_read("model_input", shape)) return;
  const auto h = shape[0].item<int64_t>(), w = shape[1].item<int64_t>(), c = shape[2].item<int64_t>();
  const auto classes = shape[3].item<int64_t>();
  FT_USER_CHECK(h == store.height && w == store.width && c == store.channels,
                "--store: images are " << store.height << "x" << store.width << "x" << store.channels
                                       << " but the model in " << path << " was trained on " << h << "x" << w << "x"
                                       << c);
  if (kind == "vit") {
    FT_USER_CHECK(classes == static_cast<int64_t>(store.class_names.size()),
                  "--store: has " << store.class_names.size() << " classes but the classifier in " << path
                                  << " has " << classes);
  }
}

}  // namespace

LoadedModel load_model_for_eval(const std::string& checkpoint, const std::string& model_config,
                                const StoreInfo& store, const std::string& expected_kind, torch::Device device) {
  LoadedModel m;
  m.source = resolve_checkpoint_path(checkpoint, "--checkpoint");
  if (!model_config.empty()) {
    m.config = load_run_config(model_config, {});
  } else {
    m.config = config_from_checkpoint(m.source);
  }
  m.kind = model_kind(m.config);
  FT_USER_CHECK(expected_kind.empty() || m.kind == expected_kind,
                "--checkpoint: " << m.source << " holds a " << m.kind << " model; this command needs a "
                                 << expected_kind);
  check_store_fits(m.source, store, m.kind);
  const bool safetensors = is_safetensors_path(m.source);
  if (m.kind == "vit") {
    m.vit = Vit(vit_options_from(m.config, store));
    if (safetensors) {
      // Facetrain's own export or a Hugging Face / timm file: the pretrained loader handles all three.
      load_vit_weights(m.vit, m.source);
    } else {
      load_module_weights(*m.vit, m.source, "model");
    }
    m.vit->to(device);
    m.vit->eval();
    m.normalization = Normalization::kMeanStd;
  } else if (m.kind == "vae") {
    m.vae = Vae(vae_options_from(m.config, store));
    load_module_weights(*m.vae, m.source, "model");
    m.vae->to(device);
    m.vae->eval();
    m.normalization = Normalization::kMinusOneOne;
  } else {
    const DcganOptions options = dcgan_options_from(m.config, store);
    m.generator = DcganGenerator(options);
    m.discriminator = DcganDiscriminator(options);
    if (safetensors) {
      const TensorMap tensors = read_safetensors(m.source);
      load_module_from_tensors(*m.generator, tensors, true, m.source, "generator.");
      load_module_from_tensors(*m.discriminator, tensors, true, m.source, "discriminator.");
    } else {
      load_module_weights(*m.generator, m.source, "generator");
      load_module_weights(*m.discriminator, m.source, "discriminator");
    }
    m.generator->to(device);
    m.discriminator->to(device);
    m.generator->eval();
    m.discriminator->eval();
    m.normalization = Normalization::kMinusOneOne;
  }
  return m;
}

}  // namespace facetrain
