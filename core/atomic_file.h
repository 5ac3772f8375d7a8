// Files that are never seen half-written: the bytes go to "<path>.partial", are fsynced, renamed over the
// final name and the directory entry is fsynced, so after a crash or SIGKILL a reader finds the old file or
// the whole new one. Every file facetrain writes for users (stores, checkpoints, safetensors, reports,
// images, configs) goes through here or through publish_file().
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace facetrain {

constexpr char kPartialSuffix[] = ".partial";

// Writes the pieces, in order, as the whole content of `path`; creates the parent directory. Throws
// UserError naming the path when it cannot be written (the .partial file is removed).
void write_file_atomically(const std::string& path, std::initializer_list<std::string_view> pieces);
inline void write_file_atomically(const std::string& path, std::string_view bytes) {
  write_file_atomically(path, {bytes});
}

// For writers that stream into a file of their own (HDF5, GIF, MP4): fsyncs the finished `partial` file,
// renames it to `path` and fsyncs the directory. Throws UserError naming both paths.
void publish_file(const std::string& partial, const std::string& path);

// fsync of a directory, so a rename or unlink in it survives a crash. Throws UserError naming it.
void fsync_directory(const std::string& directory);

}  // namespace facetrain
