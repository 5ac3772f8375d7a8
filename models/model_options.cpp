// Model options from config + store (see model_options.h).
#include "models/model_options.h"

#include "core/error.h"

namespace facetrain {
namespace {

// The side of the store's images, which every model here needs square; `model` names it in the error.
int square_side(const StoreInfo& store, const char* model) {
  FT_USER_CHECK(store.height == store.width, "data.store: " << model << " needs square images, the store has "
                                                            << store.height << "x" << store.width);
  return store.height;
}

// The store's class count, which every classifier needs to be at least 2.
int64_t classifier_classes(const StoreInfo& store) {
  FT_USER_CHECK(store.class_names.size() >= 2,
                "data.store: a classifier needs at least 2 classes, the store has " << store.class_names.size());
  return static_cast<int64_t>(store.class_names.size());
}

}  // namespace

VitOptions vit_options_from(const proto::RunConfig& config, const StoreInfo& store) {
  const auto& v = config.model().vit();
  VitOptions o;
  o.image_size = square_side(store, "the ViT");
  o.channels = store.channels;
  o.num_classes = classifier_classes(store);
  o.patch_size = v.patch_size();
  o.width = v.width();
  o.depth = v.depth();
  o.heads = v.heads();
  o.mlp_ratio = v.mlp_ratio();
  o.dropout = v.dropout();
  o.head_hidden = v.head_hidden();
  o.layer_norm_eps = v.layer_norm_eps();
  o.stem_channels.assign(v.stem_channels().begin(), v.stem_channels().end());
  FT_USER_CHECK(o.patch_size > 0 && o.image_size % o.token_stride() == 0,
                "model.vit.patch_size: " << o.patch_size << " (x " << o.stem_stride()
                                         << " for the stem) does not divide the store's image size " << store.height);
  o.validate();
  return o;
}

MobileNetV2Options mobilenet_v2_options_from(const proto::RunConfig& config, const StoreInfo& store) {
  const auto& m = config.model().mobilenet_v2();
  FT_USER_CHECK(store.height >= 32 && store.width >= 32,
                "data.store: MobileNetV2 needs images of at least 32x32 (5 stride-2 stages), the store's are "
                    << store.height << "x" << store.width << " (ingest with --size 32 or more)");
  MobileNetV2Options o;
  o.channels = store.channels;
  o.num_classes = classifier_classes(store);
  o.width_mult = m.width_mult();
  o.dropout = m.dropout();
  o.height = store.height;
  o.width = store.width;
  o.validate();
  return o;
}

DcganOptions dcgan_options_from(const proto::RunConfig& config, const StoreInfo& store) {
  const auto& d = config.model().dcgan();
  DcganOptions o = d.architecture() == "paper64" ? DcganOptions::paper64() : DcganOptions::seed32();
  o.image_size = square_side(store, "the DCGAN");
  o.channels = store.channels;
  o.z_size = d.z_size();
  o.g_width = d.g_width();
  o.d_width = d.d_width();
  o.validate();
  return o;
}

DcganOptions cnn_options_from(const proto::RunConfig& config, const StoreInfo& store) {
  const auto& c = config.model().cnn();
  DcganOptions o = DcganOptions::seed32();
  o.image_size = square_side(store, "the CNN");
  FT_USER_CHECK(o.image_size >= 8 && (o.image_size & (o.image_size - 1)) == 0,
                "data.store: the CNN needs images of 4 * 2^n pixels (8, 16, 32, 64, ...), the store's are "
                    << store.height << "x" << store.width << " (ingest with --size 32)");
  FT_USER_CHECK(c.width() > 0, "model.cnn.width must be positive, got " << c.width());
  o.channels = store.channels;
  o.d_width = c.width();
  o.d_outputs = classifier_classes(store);
  o.validate();
  return o;
}

VaeOptions vae_options_from(const proto::RunConfig& config, const StoreInfo& store) {
  const auto& v = config.model().vae();
  VaeOptions o;
  o.image_size = square_side(store, "the VAE");
  o.channels = store.channels;
  o.latent_size = v.latent_size();
  o.base_width = v.base_width();
  o.validate();
  return o;
}

PerceptualOptions perceptual_options_from(const proto::RunConfig& config) {
  const auto& p = config.model().vae().perceptual();
  PerceptualOptions o;
  FT_USER_CHECK(p.network() == "vgg16" || p.network() == "vgg19",
                "model.vae.perceptual.network must be vgg16 or vgg19 (got '" << p.network() << "')");
  o.variant = p.network() == "vgg16" ? VggVariant::kVgg16 : VggVariant::kVgg19;
  if (p.layers_size() > 0) o.layers.assign(p.layers().begin(), p.layers().end());
  o.weights = p.weights();
  o.allow_random_features = p.allow_random_features();
  o.input_range = PixelRange::kMinusOneToOne;
  return o;
}

}  // namespace facetrain
