// TFRecord framing, the container of TensorBoard event files: per record
//   uint64 length (little-endian) | uint32 masked_crc32c(length's 8 bytes) | data | uint32 masked_crc32c(data)
// (tensorflow/core/lib/io/record_writer.cc; mask in crc32c.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace facetrain {

// Appends one framed record holding `data` to *out.
void append_tfrecord(std::string* out, std::string_view data);

// The records of a TFRecord file, in order. A torn last record (a writer killed mid-write; TensorBoard also
// stops there) ends the list and is described in *tail_note when given. A CRC mismatch anywhere is corruption
// and throws UserError naming the file and the byte offset.
std::vector<std::string> read_tfrecords(const std::string& path, std::string* tail_note = nullptr);

}  // namespace facetrain
