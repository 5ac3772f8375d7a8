// Latent morphs (see morph.h): image selection, lerp/slerp latent paths, and the distributed decode of the loop.
#include "eval/morph.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "launcher/commands/eval_flags.h"

namespace facetrain {
namespace {

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

bool parse_int(const std::string& text, int64_t* value) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used != text.size()) return false;
    *value = v;
    return true;
  } catch (const std::logic_error&) {
    return false;
  }
}

// One CSV record's fields (RFC 4180 quoting; a record does not span lines here: file names hold no newlines).
std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(field);
      field.clear();
    } else if (c != '\r') {
      field += c;
    }
  }
  fields.push_back(field);
  return fields;
}

void check_in_store(int64_t index, const StoreReader& store, const std::string& where) {
  FT_USER_CHECK(index >= 0 && index < store.info().count,
                where << ": index " << index << " is outside the store " << store.path() << " ("
                      << store.info().count << " images, indices 0.." << store.info().count - 1 << ")");
}

}  // namespace

std::vector<int64_t> read_index_column(const std::string& csv_path) {
  std::ifstream in(csv_path);
  FT_USER_CHECK(in.good(), "--mined: cannot read " << csv_path);
  std::string line;
  FT_USER_CHECK(std::getline(in, line), "--mined: " << csv_path << " is empty (no header line)");
  const std::vector<std::string> header = split_csv_line(line);
  const auto it = std::find_if(header.begin(), header.end(), [](const std::string& h) { return trim(h) == "index"; });
  FT_USER_CHECK(it != header.end(), "--mined: " << csv_path << " has no \"index\" column in its header line");
  const size_t column = static_cast<size_t>(it - header.begin());
  std::vector<int64_t> indices;
  int64_t line_number = 1;
  while (std::getline(in, line)) {
    ++line_number;
    if (trim(line).empty()) continue;
    const std::vector<std::string> fields = split_csv_line(line);
    int64_t value = 0;
    FT_USER_CHECK(column < fields.size() && parse_int(trim(fields[column]), &value),
                  "--mined: " << csv_path << " line " << line_number << ": the index field is not an integer");
    indices.push_back(value);
  }
  return indices;
}

std::vector<int64_t> select_images(const StoreReader& store, const ImageSelectionFlags& flags) {
  FT_USER_CHECK(flags.indices.empty() || flags.mined.empty(), "--indices and --mined: give one of them, not both");
  FT_USER_CHECK(!(flags.count_given && !flags.indices.empty()),
                "--indices and --count: give one of them (--indices already says which images)");
  FT_USER_CHECK(flags.count > 0, "--count must be >= 1, got " << flags.count);
  std::vector<int64_t> indices;
  if (!flags.indices.empty()) {
    std::stringstream in(flags.indices);
    std::string item;
    while (std::getline(in, item, ',')) {
      int64_t value = 0;
      FT_USER_CHECK(parse_int(trim(item), &value),
                    "--indices: '" << trim(item) << "' is not an integer (expected e.g. --indices 0,5,9)");
      check_in_store(value, store, "--indices");
      indices.push_back(value);
    }
  } else if (!flags.mined.empty()) {
    indices = read_index_column(flags.mined);
    for (int64_t i : indices) check_in_store(i, store, "--mined " + flags.mined);
    if (flags.count_given && static_cast<int64_t>(indices.size()) > flags.count) indices.resize(flags.count);
    FT_USER_CHECK(!indices.empty(), "--mined: " << flags.mined << " lists no images (nothing passed the threshold?)");
  } else {
    indices = select_store_indices(store, flags.split);
    if (static_cast<int64_t>(indices.size()) > flags.count) indices.resize(flags.count);
  }
  FT_USER_CHECK(!indices.empty(), "the selection is empty: give --indices, --mined or --count");
  return indices;
}

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
