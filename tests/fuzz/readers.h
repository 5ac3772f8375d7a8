// What the fuzz harnesses and the regression test feed untrusted bytes through: each function drives one
// reader (safetensors, the HDF5 store, checkpoints) over everything it offers, the way eval, export and
// training use it. A malformed input may throw facetrain::UserError and nothing else: any other exception
// propagates (a finding), as do crashes, sanitizer reports, hangs and oversized allocations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace facetrain::fuzz {

// The bytes as a safetensors file: parse_safetensors in memory, then read_safetensors and the loading of a
// tiny ViT from the file (facetrain, Hugging Face and timm names).
void read_safetensors_input(const uint8_t* data, size_t size, const std::string& scratch_dir);

// The bytes as an HDF5 store file: StoreReader and every read it offers (metadata, labels, splits, names,
// images by range and by index, direct and through HDF5).
void read_store_input(const uint8_t* data, size_t size, const std::string& scratch_dir);

// The first byte picks how the rest becomes a checkpoint (so the fuzzer gets past the CRCs):
//   0: the rest is the checkpoint file, verbatim;
//   1: the rest is the file with its header CRC recomputed (sizes, step and end marker fuzzed);
//   2: the rest draws a payload as facetrain writes it, each entry present or not, of the right type and shape
//      or not, framed by CheckpointStore::write (facetrain's code over every archive LibTorch can parse);
//   3: only with FACETRAIN_FUZZ_TORCH_ARCHIVE=1: the rest is the payload's bytes, framed (LibTorch's TorchScript
//      deserializer under the fuzzer; it crashes, see tests/fuzz/README.md).
// Then every checkpoint reader: verify/read_checkpoint_file, config_from_checkpoint,
// model_input_from_checkpoint, read_checkpoint_payload and the loading of a tiny ViT from it.
void read_checkpoint_input(const uint8_t* data, size_t size, const std::string& scratch_dir);

// FACETRAIN_FUZZ_VERBOSE=1 prints each UserError (to see why an input is refused).

// A fresh directory for scratch files, in /dev/shm when there is one (the store and checkpoint readers need a
// file). Removed at exit.
std::string make_scratch_dir();

// The model the seed run trains (tools/scripts/fuzz.sh) and that fuzzed files are loaded into.
constexpr const char* kTinyVitModel = "vit { patch_size: 8 width: 8 depth: 1 heads: 2 mlp_ratio: 1 }";

}  // namespace facetrain::fuzz
