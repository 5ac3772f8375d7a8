// Latent morphs for `facetrain eval morph` (seed 004's morph_roster.gif): chosen images are encoded by the VAE
// (posterior mean), the latent path walks a closed loop through them with linear or spherical interpolation,
// and the decoded frames become a GIF, an MP4 and a PNG strip.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "datastore/store.h"
#include "models/capabilities.h"
#include "runtime/process_context.h"
#include "eval/image_selection.h"

namespace facetrain {

// --- latent interpolation --------------------------------------------------------------------------------

enum class Interpolation {
  kLerp,   // (1 - t) a + t b
  kSlerp,  // along the great circle (Shoemake 1985; for generative models T. White, "Sampling Generative
           // Networks", arXiv:1609.04468): sin((1-t)w)/sin(w) a + sin(tw)/sin(w) b, w = angle(a, b). Falls back to
           // lerp when a and b are (anti)parallel (sin w ~ 0), where the great circle is undefined.
};
// "lerp" | "slerp"; UserError starting with `what` (the flag or field that gave it) otherwise.
Interpolation parse_interpolation(const std::string& name, const std::string& what = "interpolation");

// a, b: (L) latents; ts: interpolation weights. Returns (ts.size(), L), row k at t = ts[k], in a's dtype.
// t = 0 returns a and t = 1 returns b exactly (the coefficients are computed in float64 and are exactly 1 and 0).
torch::Tensor interpolate_latents(const torch::Tensor& a, const torch::Tensor& b, const std::vector<double>& ts,
                                  Interpolation mode);

// The loop through n latents (N, L): pair p runs from latents[p] to latents[(p + 1) % n] with `frames` frames at
// t = 0, 1/frames, ..., (frames-1)/frames; t = 1 is the next pair's first frame, so the loop closes without a
// repeated frame and has n * frames frames. Returns (frames, L) for one pair.
torch::Tensor morph_pair_latents(const torch::Tensor& latents, int64_t pair, int64_t frames, Interpolation mode);

// (collective) every rank. Decodes every pair of the loop through `latents` (N >= 2, identical on every rank):
// pairs are dealt round-robin (round r: rank k decodes pair r * world + k), each pair decoded as one batch of
// `frames` latents so the arithmetic does not depend on the number of ranks, and each round is all-gathered.
// `on_pair(p, images)` is then called on every rank in pair order with the (frames, C, H, W) float CPU decodes,
// `image_shape` being {C, H, W}.
// Memory: one round of world * frames images at a time. `on_progress(frames_done, frames_total)` (rank 0 only
// logs it, but it is called on every rank) after each round.
void decode_morph_loop(ImageAutoencoder& model, const torch::Tensor& latents, int64_t frames, Interpolation mode,
                       const std::vector<int64_t>& image_shape, ProcessContext& ctx,
                       const std::function<void(int64_t, const torch::Tensor&)>& on_pair,
                       const std::function<void(int64_t, int64_t)>& on_progress = {});

// (B, C, H, W) float images in [low, high] -> B frames of H x W x C uint8 (rounded, clamped), one tensor
// (B, H, W, C) uint8 contiguous.
torch::Tensor to_uint8_frames(const torch::Tensor& images, float low, float high);

// `facetrain eval morph`: the selected images encoded (posterior mean), a closed loop through their latents
// with `frames` frames per pair (lerp or slerp), decoded on all ranks, written as morph.gif, morph.mp4 (when
// OpenCV's FFmpeg backend can), morph_strip.png and morph.json in the output folder. The launcher checks
// frames in [1, kMaxMorphFrames], the interpolation and the GIF frame rate (gif_writer.h).
constexpr int64_t kMaxMorphFrames = 10000;
struct MorphRequest {
  VisualRequest visual = visual_request(8);
  int64_t frames = 12;  // per pair of consecutive images
  std::string interpolation = "slerp";
  double fps = 12;
};

// (collective) every rank: setup and the setup agreement (bad input: UserError naming the file, or the input
// as the request names it, on every rank), decoding on all ranks, files on rank 0.
void write_latent_morph(const MorphRequest& request, ProcessContext& ctx);

}  // namespace facetrain
