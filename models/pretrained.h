// Pretrained weights into facetrain models: ViT checkpoints with Hugging Face names
// (google/vit-base-patch16-224-in21k, ViTModel / ViTForImageClassification) or timm names, and VGG16/19
// feature weights with torchvision names, all read from safetensors.
#pragma once

#include <string>

#include "models/mobilenet_v2.h"
#include "models/perceptual.h"
#include "models/safetensors.h"
#include "models/vit.h"

namespace facetrain {

enum class VitNaming {
  kTimm,         // cls_token, pos_embed, patch_embed.proj.*, blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2},
                 // norm, head — facetrain's own names (an exported facetrain ViT is in this naming)
  kHuggingFace,  // [vit.]embeddings.*, [vit.]encoder.layer.N.*, [vit.]layernorm, classifier
};

// kHuggingFace when any key contains "embeddings.patch_embeddings." or "encoder.layer.", else kTimm.
VitNaming detect_vit_naming(const TensorMap& tensors);

// Renames a Hugging Face ViT state dict to facetrain/timm names: query/key/value of each layer are
// concatenated into one qkv tensor (rows q, k, v), a leading "vit." or "module." is dropped, classifier -> head.
// Names with no facetrain counterpart (e.g. pooler.dense.*) keep their original name, so they show up as unused.
TensorMap vit_tensors_from_huggingface(const TensorMap& tensors);

struct VitLoadOptions {
  // When the checkpoint's position embeddings are for another patch grid (e.g. 14x14 for 224/16 and the
  // model is 64/16 = 4x4), resample them bicubically (class token kept) instead of failing.
  bool interpolate_pos_embed = true;
};

// Loads a ViT checkpoint (either naming, detected) into `model`. Everything except the head must fit: all
// missing names, shape mismatches and extra encoder blocks are listed in ONE UserError naming `source`, and
// the model is left unchanged. A head (and pre_logits) missing from the checkpoint or of another shape is
// initialised fresh and reported, e.g. "head: 2 classes, checkpoint has 1000: initialised fresh". Names the
// model does not use (e.g. pooler.*) are reported as unused. LayerNorm eps is not stored in checkpoints: use
// model.vit.layer_norm_eps = 1e-12 for Hugging Face weights, 1e-6 for timm.
void load_vit_weights(Vit& model, const TensorMap& tensors, LoadReport* report = nullptr,
                      const std::string& source = "checkpoint", const VitLoadOptions& options = {});
// Same, reading a safetensors file (errors name the path).
void load_vit_weights(Vit& model, const std::string& path, LoadReport* report = nullptr,
                      const VitLoadOptions& options = {});

// Loads MobileNetV2 weights with torchvision's names (a torchvision state dict saved as safetensors, or a
// facetrain export; a "module." prefix is dropped) into `model`. Every tensor but the classifier's must be
// present with its shape (ONE UserError naming `source` lists all problems; the model is left unchanged);
// a classifier of another class count is initialised fresh and reported; extra names are reported unused.
void load_mobilenet_v2_weights(MobileNetV2& model, const TensorMap& tensors, LoadReport* report = nullptr,
                               const std::string& source = "checkpoint");
void load_mobilenet_v2_weights(MobileNetV2& model, const std::string& path, LoadReport* report = nullptr);

// Loads torchvision VGG weights (features.N.weight / features.N.bias, optionally behind a "module." prefix)
// into a feature stack built up to some layer: every conv of the stack must be present with its shape (ONE
// UserError naming `source` lists all problems); convs past the stack's last layer and classifier.* are
// reported unused.
void load_vgg_features(VggFeaturesImpl& features, const TensorMap& tensors, LoadReport* report = nullptr,
                       const std::string& source = "VGG weights");

}  // namespace facetrain
