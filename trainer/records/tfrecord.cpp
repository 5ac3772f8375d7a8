// TFRecord framing (see tfrecord.h). Integers are written little-endian byte by byte, so the files are
// the same on any host.
#include "trainer/records/tfrecord.h"

#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/crc32c.h"

namespace facetrain {
namespace {

void put_le(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t get_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

void append_tfrecord(std::string* out, std::string_view data) {
  std::string length;
  put_le(&length, data.size(), 8);
  out->append(length);
  put_le(out, mask_crc32c(crc32c(length)), 4);
  out->append(data.data(), data.size());
  put_le(out, mask_crc32c(crc32c(data)), 4);
}

std::vector<std::string> read_tfrecords(const std::string& path, std::string* tail_note) {
  std::ifstream in(path, std::ios::binary);
  FT_USER_CHECK(in.good(), path << ": cannot open TFRecord file");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> records;
  size_t pos = 0;
  if (tail_note) tail_note->clear();
  while (pos < bytes.size()) {
    if (bytes.size() - pos < 12) {
      if (tail_note) *tail_note = "torn record header at byte " + std::to_string(pos);
      break;
    }
    const uint64_t length = get_le(bytes.data() + pos, 8);
    const uint32_t length_crc = static_cast<uint32_t>(get_le(bytes.data() + pos + 8, 4));
    FT_USER_CHECK(unmask_crc32c(length_crc) == crc32c(bytes.data() + pos, 8),
                  path << ": corrupt TFRecord length at byte " << pos << " (CRC mismatch)");
    if (bytes.size() - pos - 12 < length + 4) {
      if (tail_note) *tail_note = "torn record at byte " + std::to_string(pos);
      break;
    }
    const char* data = bytes.data() + pos + 12;
    const uint32_t data_crc = static_cast<uint32_t>(get_le(data + length, 4));
    FT_USER_CHECK(unmask_crc32c(data_crc) == crc32c(data, length),
                  path << ": corrupt TFRecord data at byte " << pos << " (CRC mismatch)");
    records.emplace_back(data, length);
    pos += 12 + length + 4;
  }
  return records;
}

}  // namespace facetrain
