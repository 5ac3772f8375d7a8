// safetensors reader/writer (8-byte little-endian header length, JSON header, raw little-endian data; format:
// github.com/huggingface/safetensors) and the generic module <-> named-tensor mapping used by
// `facetrain export` and by every loader of pretrained weights.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

namespace torch::nn {
class Module;
}

namespace facetrain {

using TensorMap = std::map<std::string, torch::Tensor>;
using SafetensorsMetadata = std::map<std::string, std::string>;

// Reads every tensor of a safetensors file into CPU tensors that own their memory (the file is mmapped only
// while reading). Supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL. The header is validated before
// any data is touched: a header length beyond the file, JSON that does not parse or is not an object, a
// missing/ill-typed dtype/shape/data_offsets, offsets out of range, overlapping, leaving holes, or not equal
// to numel * element size, and data shorter than the header says all throw UserError naming the file and,
// where there is one, the tensor. `metadata` (optional) receives "__metadata__" (string -> string).
TensorMap read_safetensors(const std::string& path, SafetensorsMetadata* metadata = nullptr);

// The "__metadata__" of a safetensors file alone, from its header (the tensors are not read): for a check
// before a large file is loaded. UserError naming the file when the header is not valid.
SafetensorsMetadata read_safetensors_metadata(const std::string& path);

// Same for an in-memory file image; `name` is used in error messages in place of a path.
TensorMap parse_safetensors(const void* data, size_t size, const std::string& name,
                            SafetensorsMetadata* metadata = nullptr);

// Writes `tensors` (any device, any layout: copied to contiguous CPU) atomically: a temporary file next to
// `path`, fsync, rename. The header is padded with spaces to a multiple of 8 bytes so that every tensor's
// data starts 8-byte aligned. Throws UserError naming the path on I/O failure or an unsupported dtype.
void write_safetensors(const std::string& path, const TensorMap& tensors, const SafetensorsMetadata& metadata = {});

// Serialises to bytes (what write_safetensors writes).
std::string serialize_safetensors(const TensorMap& tensors, const SafetensorsMetadata& metadata = {});

// What a loader did, for the run log: which parameters came from the file, which were initialised fresh and
// why, which file entries were not used, and any conversions (e.g. position-embedding resampling).
struct LoadReport {
  std::vector<std::string> loaded;  // model names filled from the file
  std::vector<std::string> fresh;   // e.g. "head: 2 classes, checkpoint has 1000: initialised fresh"
  std::vector<std::string> unused;  // file names not used (e.g. pooler.dense.weight)
  std::vector<std::string> notes;   // e.g. "pos_embed: 14x14 grid resampled (bicubic) to 4x4"
  // One line per category, for the log.
  std::string summary() const;
};

// The module's state as named tensors: named_parameters() then named_buffers(), keys prefixed by `prefix`
// (e.g. "generator." to put two modules in one file). Tensors are detached views (no copy).
TensorMap module_to_tensors(const torch::nn::Module& module, const std::string& prefix = "");

// Copies tensors[prefix + name] into every parameter and buffer of `module` (dtype converted to the
// module's). All problems are collected first and thrown as ONE UserError naming `source`; nothing is copied
// when there is any: a missing name or a tensor the module does not have (both only when `strict`) and a
// shape mismatch (always). Without `strict`, missing names keep their current values and are not errors.
void load_module_from_tensors(torch::nn::Module& module, const TensorMap& tensors, bool strict = true,
                              const std::string& source = "tensors", const std::string& prefix = "",
                              LoadReport* report = nullptr);

// The first `first` of `items` joined by "; ", then "; and N more": a list of problems that stays one
// readable line whatever its length.
std::string first_few(const std::vector<std::string>& items, size_t first = 5);

// "[2, 3]" — for messages.
std::string shape_string(torch::IntArrayRef shape);

}  // namespace facetrain
