// Model options from the run config and the store they train on (image size, channels, classes), shared
// by training and by eval, which rebuilds a model from the config saved beside its checkpoint.
#pragma once

#include "core/data_description.h"
#include "models/dcgan.h"
#include "models/mobilenet_v2.h"
#include "models/perceptual.h"
#include "models/vae.h"
#include "models/vit.h"
#include "core/config.pb.h"

namespace facetrain {

// Throws UserError when the store does not fit the model (non-square images, patch size not dividing).
VitOptions vit_options_from(const proto::RunConfig& config, const StoreInfo& store);
MobileNetV2Options mobilenet_v2_options_from(const proto::RunConfig& config, const StoreInfo& store);
DcganOptions dcgan_options_from(const proto::RunConfig& config, const StoreInfo& store);
// model.cnn: the seed-32 discriminator layout with one logit per class of the store.
DcganOptions cnn_options_from(const proto::RunConfig& config, const StoreInfo& store);
VaeOptions vae_options_from(const proto::RunConfig& config, const StoreInfo& store);
PerceptualOptions perceptual_options_from(const proto::RunConfig& config);

}  // namespace facetrain
