// safetensors read/write with full header validation, and module <-> named-tensor mapping (see safetensors.h).
#include "models/safetensors.h"
#include "core/atomic_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; this host is not");

namespace facetrain {
namespace {

// Largest header accepted, as the reference implementation (a corrupt length must not allocate gigabytes).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  size_t bytes;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* dtype_by_name(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* dtype_by_type(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (t == d.type) return &d;
  return nullptr;
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

[[noreturn]] void fail(const std::string& file, const std::string& what) {
  throw UserError(file + ": not a valid safetensors file: " + what);
}

uint64_t read_u64_le(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint64_t json_uint(const nlohmann::json& j, const std::string& file, const std::string& what) {
  if (!j.is_number_integer() && !j.is_number_unsigned()) fail(file, what + " is not an integer");
  if (j.is_number_integer() && j.get<int64_t>() < 0) fail(file, what + " is negative");
  return j.get<uint64_t>();
}

}  // namespace

std::string shape_string(torch::IntArrayRef shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

std::string first_few(const std::vector<std::string>& items, size_t first) {
  std::ostringstream s;
  for (size_t i = 0; i < items.size() && i < first; ++i) s << (i ? "; " : "") << items[i];
  if (items.size() > first) s << "; and " << items.size() - first << " more";
  return s.str();
}

TensorMap parse_safetensors(const void* data, size_t size, const std::string& file, SafetensorsMetadata* metadata) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  if (size < 8) fail(file, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  const uint64_t header_len = read_u64_le(bytes);
  if (header_len > size - 8)
    fail(file, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                   std::to_string(size) + " bytes); truncated or not safetensors");
  if (header_len > kMaxHeaderBytes) fail(file, "header length " + std::to_string(header_len) + " exceeds 100 MB");

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(bytes + 8),
                                   reinterpret_cast<const char*>(bytes + 8 + header_len));
  } catch (const nlohmann::json::exception& e) {
    fail(file, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail(file, "header is not a JSON object");

  const uint64_t data_size = size - 8 - header_len;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& value = it.value();
    if (name == "__metadata__") {
      if (!value.is_object()) fail(file, "__metadata__ is not an object");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string()) fail(file, "__metadata__ value '" + m.key() + "' is not a string");
        if (metadata) (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!value.is_object()) fail(file, where + ": entry is not an object");
    if (!value.contains("dtype") || !value["dtype"].is_string()) fail(file, where + ": missing string 'dtype'");
    if (!value.contains("shape") || !value["shape"].is_array()) fail(file, where + ": missing array 'shape'");
    if (!value.contains("data_offsets") || !value["data_offsets"].is_array() || value["data_offsets"].size() != 2)
      fail(file, where + ": 'data_offsets' is not a [begin, end] pair");
    Entry e;
    e.name = name;
    const std::string dtype = value["dtype"].get<std::string>();
    e.dtype = dtype_by_name(dtype);
    if (!e.dtype) fail(file, where + ": unsupported dtype '" + dtype + "' (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    uint64_t numel = 1;
    for (const auto& d : value["shape"]) {
      const uint64_t n = json_uint(d, file, where + ": shape entry");
      if (n != 0 && numel > std::numeric_limits<uint64_t>::max() / n) fail(file, where + ": shape overflows");
      numel *= n;
      e.shape.push_back(static_cast<int64_t>(n));
    }
    e.begin = json_uint(value["data_offsets"][0], file, where + ": data_offsets[0]");
    e.end = json_uint(value["data_offsets"][1], file, where + ": data_offsets[1]");
    if (e.end < e.begin)
      fail(file,
           where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] end before begin");
    if (numel > std::numeric_limits<uint64_t>::max() / e.dtype->bytes) fail(file, where + ": shape overflows");
    const uint64_t expected = numel * e.dtype->bytes;
    if (e.end - e.begin != expected)
      fail(file, where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] hold " +
                     std::to_string(e.end - e.begin) + " bytes but " + dtype + " " + shape_string(e.shape) + " needs " +
                     std::to_string(expected));
    if (e.end > data_size)
      fail(file, where + ": data_offsets end " + std::to_string(e.end) + " is past the " + std::to_string(data_size) +
                     " data bytes in the file (truncated file?)");
    entries.push_back(std::move(e));
  }

  // The data buffer must be covered exactly: no overlap, no hole, nothing after the last tensor.
  std::vector<const Entry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t cursor = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : by_offset) {
    if (e->begin < cursor)
      fail(file, "tensor '" + e->name + "': data_offsets overlap those of '" + previous->name + "'");
    if (e->begin > cursor)
      fail(file, "tensor '" + e->name + "': data_offsets leave a hole of " + std::to_string(e->begin - cursor) +
                     " bytes before it");
    cursor = e->end;
    previous = e;
  }
  if (cursor != data_size)
    fail(file,
         std::to_string(data_size - cursor) + " bytes of data after the last tensor are not described by the header");

  TensorMap out;
  const unsigned char* base = bytes + 8 + header_len;
  for (const auto& e : entries) {
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), base + e.begin, e.end - e.begin);
    out.emplace(e.name, std::move(t));
  }
  return out;
}

TensorMap read_safetensors(const std::string& path, SafetensorsMetadata* metadata) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  FT_USER_CHECK(fd >= 0, path << ": cannot open safetensors file: " << std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw UserError(path + ": cannot stat: " + std::strerror(err));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    fail(path, "file is empty");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);
  FT_USER_CHECK(map != MAP_FAILED, path << ": cannot mmap: " << std::strerror(map_err));
  try {
    auto tensors = parse_safetensors(map, size, path, metadata);
    ::munmap(map, size);
    return tensors;
  } catch (...) {
    ::munmap(map, size);
    throw;
  }
}

SafetensorsMetadata read_safetensors_metadata(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  FT_USER_CHECK(in, path << ": cannot open safetensors file: " << std::strerror(errno));
  in.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  unsigned char length[8] = {};
  if (size < 8 || !in.read(reinterpret_cast<char*>(length), 8)) fail(path, "shorter than the 8-byte header length");
  const uint64_t header_len = read_u64_le(length);
  if (header_len > size - 8 || header_len > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the file or exceeds 100 MB");
  std::string text(header_len, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(header_len))) fail(path, "cannot read the header");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");
  SafetensorsMetadata metadata;
  const auto it = header.find("__metadata__");
  if (it == header.end()) return metadata;
  if (!it->is_object()) fail(path, "__metadata__ is not an object");
  for (auto m = it->begin(); m != it->end(); ++m) {
    if (!m.value().is_string()) fail(path, "__metadata__ value '" + m.key() + "' is not a string");
    metadata[m.key()] = m.value().get<std::string>();
  }
  return metadata;
}

std::string serialize_safetensors(const TensorMap& tensors, const SafetensorsMetadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto& m = header["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
  }
  std::vector<torch::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    FT_USER_CHECK(name != "__metadata__", "safetensors: '__metadata__' is reserved and cannot name a tensor");
    FT_USER_CHECK(tensor.defined(), "safetensors: tensor '" << name << "' is undefined");
    const DtypeInfo* d = dtype_by_type(tensor.scalar_type());
    FT_USER_CHECK(d, "safetensors: tensor '" << name << "' has dtype " << tensor.scalar_type()
                                             << ", which safetensors cannot store here");
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * d->bytes;
    auto& entry = header[name];
    entry["dtype"] = d->name;
    entry["shape"] = t.sizes().vec();
    entry["data_offsets"] = {offset, offset + nbytes};
    offset += nbytes;
    contiguous.push_back(t);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  std::string out;
  out.reserve(8 + json.size() + offset);
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += json;
  for (const auto& t : contiguous) {
    const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
    if (nbytes) out.append(static_cast<const char*>(t.data_ptr()), nbytes);
  }
  return out;
}

void write_safetensors(const std::string& path, const TensorMap& tensors, const SafetensorsMetadata& metadata) {
  write_file_atomically(path, serialize_safetensors(tensors, metadata));
}

// ---------------------------------------------------------------------------------------------------------

std::string LoadReport::summary() const {
  std::ostringstream s;
  s << "loaded " << loaded.size() << " tensors";
  for (const auto& f : fresh) s << "; " << f;
  for (const auto& n : notes) s << "; " << n;
  if (!unused.empty()) {
    s << "; unused from file (" << unused.size() << "):";
    for (size_t i = 0; i < unused.size(); ++i) s << (i ? ", " : " ") << unused[i];
  }
  return s.str();
}

TensorMap module_to_tensors(const torch::nn::Module& module, const std::string& prefix) {
  TensorMap out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) out[prefix + item.key()] = item.value().detach();
  for (const auto& item : module.named_buffers(/*recurse=*/true)) out[prefix + item.key()] = item.value().detach();
  return out;
}

void load_module_from_tensors(torch::nn::Module& module, const TensorMap& tensors, bool strict,
                              const std::string& source, const std::string& prefix, LoadReport* report) {
  std::vector<std::pair<torch::Tensor, const torch::Tensor*>> copies;
  std::vector<std::string> problems;
  std::vector<std::string> used;
  auto visit = [&](const std::string& name, torch::Tensor& target) {
    const std::string key = prefix + name;
    auto it = tensors.find(key);
    if (it == tensors.end()) {
      if (strict) problems.push_back("missing " + key);
      return;
    }
    used.push_back(key);
    if (it->second.sizes() != target.sizes()) {
      problems.push_back(key + ": model " + shape_string(target.sizes()) + " vs file " +
                         shape_string(it->second.sizes()));
      return;
    }
    copies.emplace_back(target, &it->second);
  };
  for (auto& item : module.named_parameters(true)) visit(item.key(), item.value());
  for (auto& item : module.named_buffers(true)) visit(item.key(), item.value());
  std::vector<std::string> unused;
  for (const auto& [key, t] : tensors) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    if (std::find(used.begin(), used.end(), key) == used.end()) {
      if (strict) problems.push_back("unexpected " + key);
      unused.push_back(key);
    }
  }
  if (!problems.empty()) {
    std::ostringstream msg;
    msg << source << ": " << problems.size() << " tensor(s) do not match the model: " << first_few(problems);
    throw UserError(msg.str());
  }
  torch::NoGradGuard no_grad;
  for (auto& [target, src] : copies) target.copy_(*src);
  if (report) {
    report->loaded.insert(report->loaded.end(), used.begin(), used.end());
    report->unused.insert(report->unused.end(), unused.begin(), unused.end());
  }
}

}  // namespace facetrain
