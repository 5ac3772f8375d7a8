// Parameter layers of the ViT and the VAE (see parameter_layers.h), from their parameter names.
#include "models/parameter_layers.h"

#include "core/error.h"

namespace facetrain {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The index N of "<prefix>N.<rest>", or -1.
int64_t index_after(const std::string& name, const std::string& prefix) {
  if (!starts_with(name, prefix)) return -1;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return -1;
  return std::stoll(name.substr(prefix.size(), dot - prefix.size()));
}

}  // namespace

ParameterLayers vit_parameter_layers(const torch::nn::Module& vit, int64_t depth) {
  ParameterLayers out;
  out.blocks = depth;
  for (const auto& item : vit.named_parameters(/*recurse=*/true)) {
    ParameterLayer p{item.key(), item.value()};
    const int64_t block = index_after(p.name, "blocks.");
    if (block >= 0) {
      p.layer = block + 1;
    } else if (starts_with(p.name, "norm.")) {
      p.layer = depth + 1;
    } else if (starts_with(p.name, "head.") || starts_with(p.name, "pre_logits.")) {
      p.layer = depth + 1;
      p.head = true;
    } else {
      FT_CHECK(p.name == "cls_token" || p.name == "pos_embed" || starts_with(p.name, "patch_embed."),
               "ViT parameter " << p.name << " has no layer");
      p.layer = 0;
    }
    out.parameters.push_back(std::move(p));
  }
  return out;
}

ParameterLayers vae_parameter_layers(const torch::nn::Module& vae, int64_t encoder_blocks, int64_t decoder_blocks) {
  ParameterLayers out;
  out.blocks = encoder_blocks + 1 + decoder_blocks;
  for (const auto& item : vae.named_parameters(/*recurse=*/true)) {
    ParameterLayer p{item.key(), item.value()};
    const int64_t enc = index_after(p.name, "encoder.");
    const int64_t dec = index_after(p.name, "decoder.");
    if (enc >= 0) {
      p.layer = enc + 1;
    } else if (starts_with(p.name, "conv_mu.") || starts_with(p.name, "conv_logvar.")) {
      p.layer = encoder_blocks + 1;
    } else if (dec >= 0) {
      p.layer = encoder_blocks + 2 + dec;
    } else {
      FT_CHECK(starts_with(p.name, "conv_out."), "VAE parameter " << p.name << " has no layer");
      p.layer = out.blocks + 1;
      p.head = true;
    }
    out.parameters.push_back(std::move(p));
  }
  return out;
}

}  // namespace facetrain
