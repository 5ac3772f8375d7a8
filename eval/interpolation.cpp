// Latent interpolation, sample normalization and class histograms (see interpolation.h).
#include "eval/interpolation.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace facetrain {

torch::Tensor lerp_latent(const torch::Tensor& a, const torch::Tensor& b, double t) { return a * (1 - t) + b * t; }

torch::Tensor slerp_latent(const torch::Tensor& a, const torch::Tensor& b, double t) {
  if (t == 0) return a.clone();  // exact endpoints (the formula below is exact only up to rounding)
  if (t == 1) return b.clone();
  const double norm_a = a.norm().item<double>(), norm_b = b.norm().item<double>();
  if (norm_a == 0 || norm_b == 0) return lerp_latent(a, b, t);
  const torch::Tensor ua = a / norm_a, ub = b / norm_b;
  const double cosine = std::clamp((ua * ub).sum().item<double>(), -1.0, 1.0);
  const double omega = std::acos(cosine);
  if (omega < 1e-6 || M_PI - omega < 1e-6) return lerp_latent(a, b, t);
  const double so = std::sin(omega);
  const torch::Tensor direction = ua * (std::sin((1 - t) * omega) / so) + ub * (std::sin(t * omega) / so);
  return direction * ((1 - t) * norm_a + t * norm_b);
}

torch::Tensor interpolation_latents(const torch::Tensor& starts, const torch::Tensor& ends, int64_t steps,
                                    bool spherical) {
  FT_CHECK(starts.dim() == 2 && starts.sizes() == ends.sizes(), "starts and ends must both be R x Z");
  FT_USER_CHECK(steps >= 2, "interpolation steps must be >= 2 (both endpoints), got " << steps);
  std::vector<torch::Tensor> rows;
  for (int64_t r = 0; r < starts.size(0); ++r) {
    for (int64_t s = 0; s < steps; ++s) {
      const double t = static_cast<double>(s) / static_cast<double>(steps - 1);
      rows.push_back(spherical ? slerp_latent(starts[r], ends[r], t) : lerp_latent(starts[r], ends[r], t));
    }
  }
  return torch::stack(rows);
}

torch::Tensor generated_to_classifier_input(const torch::Tensor& images, const StoreInfo& store,
                                            Normalization normalization, const std::string& store_name) {
  // The 8-bit value a written sample has (make_image_grid's conversion): round((x + 1) * 127.5).
  const torch::Tensor pixels = ((images.to(torch::kFloat32) + 1) * 127.5f).round().clamp(0, 255);
  const int64_t c = images.size(1);
  std::vector<float> scale, shift;  // the loader's map (datastore/loader.h), so samples look like store images
  normalization_affine(normalization, store, static_cast<int>(c), &scale, &shift, store_name);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(images.device());
  return pixels * torch::tensor(scale, opts).view({1, c, 1, 1}) + torch::tensor(shift, opts).view({1, c, 1, 1});
}

ClassHistogram class_histogram(const std::vector<int64_t>& predicted, const std::vector<std::string>& class_names) {
  ClassHistogram h;
  h.class_names = class_names;
  h.counts.assign(class_names.size(), 0);
  for (int64_t p : predicted) {
    FT_CHECK(p >= 0 && p < static_cast<int64_t>(class_names.size()), "predicted class " << p << " out of range");
    ++h.counts[static_cast<size_t>(p)];
  }
  h.total = static_cast<int64_t>(predicted.size());
  for (int64_t count : h.counts) {
    if (count == 0) continue;
    const double p = static_cast<double>(count) / static_cast<double>(h.total);
    h.entropy_bits -= p * std::log2(p);
  }
  h.max_entropy_bits = class_names.empty() ? 0 : std::log2(static_cast<double>(class_names.size()));
  return h;
}

nlohmann::json class_histogram_json(const ClassHistogram& h) {
  std::vector<double> fractions;
  for (int64_t count : h.counts) fractions.push_back(h.total ? static_cast<double>(count) / h.total : 0.0);
  return {{"classes", h.class_names},
          {"counts", h.counts},
          {"fractions", fractions},
          {"total", h.total},
          {"entropy_bits", h.entropy_bits},
          {"max_entropy_bits", h.max_entropy_bits},
          {"normalized_entropy", h.max_entropy_bits > 0 ? h.entropy_bits / h.max_entropy_bits : 0.0}};
}

}  // namespace facetrain
