// CheckpointStore: crash-safe checkpoint files in one directory (checkpoint-<step, 9 digits>.ckpt), keeping
// the last K, and finding the newest valid one on resume while reporting every truncated or corrupt file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace facetrain {

// A checkpoint file as read back: the caller's payload bytes (e.g. a serialised torch OutputArchive) and
// its JSON metadata, both verified against the CRC-32C stored in the file.
struct Checkpoint {
  std::string path;
  int64_t step = 0;
  std::string payload;
  std::string meta_json;
};

// File layout (little-endian):
//   header  48 bytes: magic "FTCKPT01" | int64 step | uint64 payload bytes | uint64 meta bytes |
//                     uint32 crc32c(payload) | uint32 crc32c(meta) | uint32 0 | uint32 crc32c(header[0,44))
//   payload | meta JSON | end marker "FTCKEND1"
// so a reader can tell a truncated file (size < the size its header promises) from a corrupt one (CRC).
//
// Durability contract: write() puts the bytes in "<name>.partial", fsyncs it, renames it to its final name
// (atomic) and fsyncs the directory before it deletes anything. So at every instant — SIGKILL, node crash —
// the newest checkpoint that was complete before stays on disk and a partial file never carries a final
// name. Leftover .partial files are ignored by readers and deleted by the next write().
//
// One writer per directory (rank 0); readers may run anywhere. A directory belongs to one run: keep-last-K
// and latest_valid() order files by the step in their name. Not thread-safe.
class CheckpointStore {
 public:
  // keep_last: how many checkpoints to keep (>= 1; 0 keeps all). The directory is created on first write.
  CheckpointStore(std::string directory, int keep_last);

  // Writes the checkpoint of `step` (0 <= step) durably, then deletes the oldest ones beyond keep_last (never
  // the one just written). Returns its path. Replaces an existing file of the same step atomically.
  // Throws UserError when the directory or file cannot be written (disk full, permissions).
  std::string write(int64_t step, const std::string& payload, const std::string& meta_json);

  // The newest checkpoint that verifies (magic, sizes, CRCs), or nullopt when there is none. Each file
  // skipped on the way is described in *skipped, newest first, e.g.
  //   "checkpoint-000000120.ckpt is truncated (3.1 MB of 5.2 MB): skipped".
  std::optional<Checkpoint> latest_valid(std::vector<std::string>* skipped = nullptr) const;

  struct Entry {
    int64_t step;
    std::string path;
  };
  // Files named like checkpoints (not verified), oldest step first.
  std::vector<Entry> list() const;

  const std::string& directory() const { return directory_; }
  // "checkpoint-000000120.ckpt" for step 120.
  static std::string file_name(int64_t step);

 private:
  void remove_partial_files() const;

  std::string directory_;
  int keep_last_;
};

// Reads and verifies one checkpoint file (for --resume PATH). Throws UserError naming the file and what is
// wrong with it ("... is truncated (3.1 MB of 5.2 MB)").
Checkpoint read_checkpoint_file(const std::string& path);

// Verifies one checkpoint file; on success fills *out (when given) and returns "", else returns why it is
// unusable ("is truncated (3.1 MB of 5.2 MB)", "is corrupt (payload CRC mismatch)", ...).
std::string verify_checkpoint_file(const std::string& path, Checkpoint* out);

}  // namespace facetrain
