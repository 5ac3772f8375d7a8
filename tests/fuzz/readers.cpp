// Drives each untrusted-file reader over fuzzed bytes (see readers.h).
#include "tests/fuzz/readers.h"

#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "core/crc32c.h"
#include "core/error.h"
#include "datastore/store.h"
#include "models/checkpoint.h"
#include "models/checkpoint_store.h"
#include "models/model_spec.h"
#include "models/safetensors.h"

namespace facetrain::fuzz {
namespace {

namespace fs = std::filesystem;

// Runs one reader call: a UserError is the expected answer to a malformed file; anything else propagates.
// Each call is tried on its own so that one rejected read does not hide the ones after it.
bool expect_user_error(const std::function<void()>& f) {
  try {
    f();
    return true;
  } catch (const UserError& e) {
    static const bool verbose = std::getenv("FACETRAIN_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "UserError: %s\n", e.what());
    return false;
  }
}

void write_file(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();  // the harness's own failure, not a finding
  }
}

// A tiny ViT on 16x16 RGB images with 2 classes: the model of the seed run.
std::vector<NamedModule> make_tiny_vit() {
  proto::RunConfig config;
  const std::string text = std::string("model { ") + kTinyVitModel + " }";
  if (!google::protobuf::TextFormat::ParseFromString(text, &config)) std::abort();
  StoreInfo input;
  input.height = input.width = 16;
  input.channels = 3;
  input.class_names = {"neutral", "smiling"};
  return build_model_modules(config, input);
}

// The one fuzzed files are loaded into, built once.
std::vector<NamedModule>& tiny_vit() {
  static std::vector<NamedModule> modules = make_tiny_vit();
  return modules;
}

uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
void put_le(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Recomputes the header CRC of a checkpoint file image (checkpoint_store.h's layout), so that its sizes, step
// and end marker are what gets fuzzed.
void fix_header_crc(std::string& file) {
  if (file.size() < 48) return;
  auto* p = reinterpret_cast<uint8_t*>(file.data());
  put_le(p + 44, crc32c(p, 44), 4);
}

// Draws values from the fuzz input, then zeros when it runs out.
struct Draw {
  const uint8_t* p;
  size_t n;
  uint64_t bytes(int k) {
    uint64_t v = 0;
    for (int i = 0; i < k && n > 0; ++i, ++p, --n) v |= uint64_t{*p} << (8 * i);
    return v;
  }
  bool flag() { return bytes(1) & 1; }
  std::string text(size_t max) {
    const size_t k = std::min<size_t>(bytes(1) * max / 255, n);
    std::string s(reinterpret_cast<const char*>(p), k);
    p += k;
    n -= k;
    return s;
  }
  // A small tensor of a drawn dtype and shape (up to 3 dims of up to 8), its values drawn too.
  torch::Tensor tensor() {
    static const torch::ScalarType kTypes[] = {torch::kInt64, torch::kFloat32, torch::kUInt8,
                                               torch::kBool,  torch::kFloat64, torch::kInt32};
    const torch::ScalarType type = kTypes[bytes(1) % 6];
    std::vector<int64_t> shape(bytes(1) % 4);
    for (auto& d : shape) d = static_cast<int64_t>(bytes(1) % 9);
    auto t = torch::zeros(shape, torch::kUInt8);
    auto* data = t.data_ptr<uint8_t>();
    for (int64_t i = 0; i < t.numel(); ++i) data[i] = static_cast<uint8_t>(bytes(1));
    return type == torch::kUInt8 ? t : t.to(type);
  }
};

// A payload as facetrain's writer would make it (checkpoint.h), with each entry present, absent, of another type
// or shape, or holding other values as the input draws: the fuzzing of facetrain's code that reads a parsed
// archive, past LibTorch's deserializer (which is not fuzzed by default: see tests/fuzz/README.md).
std::string drawn_payload(Draw& draw) {
  torch::serialize::OutputArchive archive;
  if (draw.flag()) {
    // The model's weights, one of them (as drawn) of another shape and values.
    auto modules = make_tiny_vit();
    auto& module = *modules.front().module;
    const uint64_t odd_one = draw.bytes(1);
    uint64_t k = 0;
    torch::NoGradGuard no_grad;
    for (auto& item : module.named_parameters(true))
      if (k++ == odd_one) item.value().set_data(draw.tensor().to(torch::kFloat32));
    torch::serialize::OutputArchive model;
    module.save(model);
    archive.write(draw.flag() ? "model" : "generator", model);
  }
  switch (draw.bytes(1) % 4) {
    case 0: break;
    case 1: archive.write("config", c10::IValue(draw.text(200))); break;
    case 2: archive.write("config", draw.tensor()); break;
    default: archive.write("config", c10::IValue(std::string("model { ") + kTinyVitModel + " }")); break;
  }
  if (draw.flag()) archive.write("model_input", draw.flag() ? torch::tensor({16, 16, 3, 2}) : draw.tensor());
  for (const char* key : {"position.step", "position.epoch", "position.batch_in_epoch", "position.images_in_epoch",
                          "position.world_size"})
    if (draw.flag())
      archive.write(key, draw.flag() ? torch::tensor(static_cast<int64_t>(draw.bytes(2))) : draw.tensor());
  if (draw.flag())
    archive.write("rng.cpu",
                  draw.flag() ? torch::globalContext().defaultGenerator(torch::kCPU).get_state() : draw.tensor());
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void read_checkpoint_at(const std::string& path) {
  Checkpoint checkpoint;
  if (!verify_checkpoint_file(path, &checkpoint).empty()) {
    // The verdict and the throwing reader must agree.
    if (expect_user_error([&] { read_checkpoint_file(path); })) {
      std::fprintf(stderr, "fuzz: verify_checkpoint_file rejected %s but read_checkpoint_file accepted it\n",
                   path.c_str());
      std::abort();
    }
    return;
  }
  expect_user_error([&] { read_checkpoint_file(path); });
  expect_user_error([&] { config_from_checkpoint(path); });
  expect_user_error([&] { model_input_from_checkpoint(path); });
  expect_user_error([&] {
    read_checkpoint_payload(checkpoint.payload, path, [](torch::serialize::InputArchive& archive) {
      torch::serialize::InputArchive sub;
      archive.try_read("model", sub);
    });
  });
  expect_user_error([&] { load_model_modules(*find_model_spec("vit"), tiny_vit(), path); });
}

}  // namespace

std::string make_scratch_dir() {
  const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  std::string dir = (base / ("facetrain-fuzz-" + std::to_string(::getpid()))).string();
  fs::create_directories(dir);
  static std::string remove_at_exit;
  remove_at_exit = dir;
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(remove_at_exit, ec);
  });
  return dir;
}

void read_safetensors_input(const uint8_t* data, size_t size, const std::string& scratch_dir) {
  SafetensorsMetadata metadata;
  if (!expect_user_error([&] { parse_safetensors(data, size, "input", &metadata); })) return;
  // Accepted in memory: the file path must agree, and the tensors load (or are refused) as a model's weights.
  const std::string path = scratch_dir + "/input.safetensors";
  write_file(path, data, size);
  expect_user_error([&] { read_safetensors(path); });
  expect_user_error([&] { load_model_modules(*find_model_spec("vit"), tiny_vit(), path); });
}

void read_store_input(const uint8_t* data, size_t size, const std::string& scratch_dir) {
  const std::string path = scratch_dir + "/input.h5";
  write_file(path, data, size);
  std::unique_ptr<StoreReader> reader;
  if (!expect_user_error([&] { reader = std::make_unique<StoreReader>(path); })) return;
  StoreReader& r = *reader;
  const StoreInfo& info = r.info();
  expect_user_error([&] { r.labels(); });
  expect_user_error([&] { r.splits(); });
  expect_user_error([&] { r.split_indices(Split::kVal); });
  expect_user_error([&] { r.filenames(); });
  expect_user_error([&] { r.identities(); });
  expect_user_error([&] { r.attributes(); });
  if (info.count <= 0) return;
  // A batch's worth of images, as the loader reads them: a range, then indices out of order with a duplicate,
  // each directly (pread) when the store allows it and through HDF5.
  const int64_t n = std::min<int64_t>(info.count, 3);
  std::vector<uint8_t> out(static_cast<size_t>(3 * r.image_bytes()));
  const int64_t indices[3] = {info.count - 1, 0, info.count - 1};
  for (const bool direct : {true, false}) {
    r.set_direct_reads(direct);
    expect_user_error([&] { r.read_range(info.count - n, info.count, out.data()); });
    expect_user_error([&] { r.read_images(indices, 3, out.data()); });
  }
}

void read_checkpoint_input(const uint8_t* data, size_t size, const std::string& scratch_dir) {
  if (size == 0) return;
  static const bool torch_archive = std::getenv("FACETRAIN_FUZZ_TORCH_ARCHIVE") != nullptr;
  const int mode = data[0] % (torch_archive ? 4 : 3);
  ++data;
  --size;
  // Not named like a checkpoint (whose name's step would have to match the header's), except when framed.
  std::string path = scratch_dir + "/input.ckpt";
  if (mode == 2) {
    Draw draw{data, size};
    path = CheckpointStore(scratch_dir, 1).write(0, drawn_payload(draw), "{}");
  } else if (mode == 3) {
    path = CheckpointStore(scratch_dir, 1).write(0, std::string(reinterpret_cast<const char*>(data), size), "{}");
  } else {
    std::string file(reinterpret_cast<const char*>(data), size);
    if (mode == 1) fix_header_crc(file);
    write_file(path, file.data(), file.size());
  }
  read_checkpoint_at(path);
}

}  // namespace facetrain::fuzz
