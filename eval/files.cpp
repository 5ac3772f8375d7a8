// Plain-file helpers of the eval report commands (see report_files.h).
#include "eval/files.h"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "models/checkpoint.h"
#include "models/checkpoint_store.h"

namespace facetrain {

namespace fs = std::filesystem;

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

void write_text_file(const std::string& path, const std::string& text) {
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  FT_USER_CHECK(!ec, parent.string() << ": cannot create the directory (" << ec.message() << ")");
  const std::string tmp = path + ".partial";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    FT_USER_CHECK(out.good(), tmp << ": cannot write");
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    FT_USER_CHECK(out.good(), tmp << ": short write (disk full?)");
  }
  fs::rename(tmp, path, ec);
  FT_USER_CHECK(!ec, path << ": cannot rename " << tmp << " into place (" << ec.message() << ")");
}

std::string read_file_bytes(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  FT_USER_CHECK(in.good(), what << ": cannot read " << path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string base64_encode(const std::string& bytes) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                       uint32_t(uint8_t(bytes[i + 2]));
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string resolve_checkpoint_path(const std::string& path) {
  if (!fs::is_directory(path)) {
    FT_USER_CHECK(fs::exists(path), "--checkpoint: " << path << " does not exist");
    return path;
  }
  const fs::path dir = fs::exists(fs::path(path) / "checkpoints") ? fs::path(path) / "checkpoints" : fs::path(path);
  CheckpointStore store(dir.string(), 1);
  std::vector<std::string> skipped;
  auto found = store.latest_valid(&skipped);
  for (const auto& s : skipped) log(s);
  FT_USER_CHECK(found.has_value(), "--checkpoint: no valid checkpoint in " << dir.string());
  return found->path;
}

StoreInfo trained_input_shape(const std::string& checkpoint) {
  const std::string path = resolve_checkpoint_path(checkpoint);
  FT_USER_CHECK(!is_safetensors_path(path),
                path << ": a safetensors file does not record the image size; pass --store FILE as well");
  const Checkpoint loaded = read_checkpoint_file(path);
  torch::serialize::InputArchive archive;
  archive.load_from(loaded.payload.data(), loaded.payload.size());
  torch::Tensor shape;
  FT_USER_CHECK(archive.try_read("model_input", shape) && shape.numel() == 4,
                path << ": the checkpoint does not record the image size it was trained on; pass --store FILE");
  StoreInfo info;
  info.height = static_cast<int>(shape[0].item<int64_t>());
  info.width = static_cast<int>(shape[1].item<int64_t>());
  info.channels = static_cast<int>(shape[2].item<int64_t>());
  const int64_t classes = shape[3].item<int64_t>();
  for (int64_t c = 0; c < classes; ++c) info.class_names.push_back(std::to_string(c));
  return info;
}

}  // namespace facetrain
