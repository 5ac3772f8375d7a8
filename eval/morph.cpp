// Latent morphs (see morph.h): lerp/slerp latent paths and the distributed decode of the loop.
#include "comm/communicator.h"
#include "eval/morph.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace facetrain {

Interpolation parse_interpolation(const std::string& name) {
  if (name == "lerp") return Interpolation::kLerp;
  if (name == "slerp") return Interpolation::kSlerp;
  throw UserError("--interpolation must be lerp or slerp, got '" + name + "'");
}

torch::Tensor interpolate_latents(const torch::Tensor& a, const torch::Tensor& b, const std::vector<double>& ts,
                                  Interpolation mode) {
  FT_CHECK(a.dim() == 1 && a.sizes() == b.sizes(), "latents must be two (L) vectors of one size");
  const auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  double omega = 0, sin_omega = 0;
  if (mode == Interpolation::kSlerp) {
    const double na = a64.norm().item<double>(), nb = b64.norm().item<double>();
    if (na > 0 && nb > 0) {
      const double cosine = std::clamp((a64 * b64).sum().item<double>() / (na * nb), -1.0, 1.0);
      omega = std::acos(cosine);
      sin_omega = std::sin(omega);
    }
  }
  const bool spherical = mode == Interpolation::kSlerp && sin_omega > 1e-6;
  std::vector<torch::Tensor> rows;
  rows.reserve(ts.size());
  for (const double t : ts) {
    double ca = 1.0 - t, cb = t;
    if (spherical) {
      ca = std::sin((1.0 - t) * omega) / sin_omega;
      cb = std::sin(t * omega) / sin_omega;
    }
    // Exact endpoints: at t = 0 (1, 0), at t = 1 (0, 1), whatever rounding sin() does.
    if (t == 0.0) {
      ca = 1.0;
      cb = 0.0;
    } else if (t == 1.0) {
      ca = 0.0;
      cb = 1.0;
    }
    rows.push_back(ca * a64 + cb * b64);
  }
  return torch::stack(rows).to(a.scalar_type());
}

torch::Tensor morph_pair_latents(const torch::Tensor& latents, int64_t pair, int64_t frames, Interpolation mode) {
  const int64_t n = latents.size(0);
  FT_CHECK(latents.dim() == 2 && n >= 2 && pair >= 0 && pair < n && frames >= 1, "bad morph pair");
  std::vector<double> ts(static_cast<size_t>(frames));
  for (int64_t k = 0; k < frames; ++k) ts[k] = static_cast<double>(k) / static_cast<double>(frames);
  return interpolate_latents(latents[pair], latents[(pair + 1) % n], ts, mode);
}

void decode_morph_loop(Vae& vae, const torch::Tensor& latents, int64_t frames, Interpolation mode,
                       ProcessContext& ctx, const std::function<void(int64_t, const torch::Tensor&)>& on_pair,
                       const std::function<void(int64_t, int64_t)>& on_progress) {
  torch::NoGradGuard no_grad;
  const int64_t n = latents.size(0);
  FT_CHECK(n >= 2 && frames >= 1, "a morph needs 2 or more latents and 1 or more frames");
  const VaeOptions& o = vae->options();
  const int64_t world = ctx.world_size;
  const int64_t rounds = (n + world - 1) / world;
  for (int64_t round = 0; round < rounds; ++round) {
    const int64_t pair = round * world + ctx.rank;
    torch::Tensor local = torch::empty({0, o.channels, o.image_size, o.image_size});
    if (pair < n) {
      // One batch per pair whatever the number of ranks: the same kernels on the same batch, so 1, 2 or 3
      // ranks decode bit-identical frames (at the same thread count).
      const auto z = morph_pair_latents(latents, pair, frames, mode).to(ctx.device);
      local = vae->decode(z).to(torch::kCPU, torch::kFloat32).contiguous();
    }
    // (collective) every rank, also one without a pair in the last round.
    const torch::Tensor gathered = ctx.comm->all_gather(local, "morph frames");
    const int64_t first = round * world;
    const int64_t last = std::min(n, first + world);
    FT_CHECK(gathered.size(0) == (last - first) * frames,
             "gathered " << gathered.size(0) << " frames, expected " << (last - first) * frames);
    for (int64_t p = first; p < last; ++p) on_pair(p, gathered.narrow(0, (p - first) * frames, frames));
    if (on_progress) on_progress(last * frames, n * frames);
  }
}

torch::Tensor to_uint8_frames(const torch::Tensor& images, float low, float high) {
  FT_CHECK(images.dim() == 4 && high > low, "expected (B, C, H, W) images and high > low");
  return ((images.detach().to(torch::kCPU, torch::kFloat32) - low) * (255.0f / (high - low)))
      .round()
      .clamp(0, 255)
      .to(torch::kUInt8)
      .permute({0, 2, 3, 1})
      .contiguous();
}

std::pair<float, float> vae_output_range(const VaeOptions& options) {
  if (options.output == VaeOutput::kSigmoid) return {0.0f, 1.0f};
  return {-1.0f, 1.0f};
}

}  // namespace facetrain
