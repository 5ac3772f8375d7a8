// CRC-32C against RFC 3720's published vectors, TFRecord's mask, and TFRecord framing byte for byte against
// records cut from real TensorFlow-written event files (as quoted in TensorBoard's own reader tests).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "core/error.h"
#include "core/crc32c.h"
#include "trainer/records/tensorboard_event.pb.h"
#include "trainer/records/tfrecord.h"

namespace facetrain {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

// Both code paths (SSE4.2 instruction when present, table always) on every vector.
void expect_crc(const std::string& data, uint32_t expected) {
  EXPECT_EQ(crc32c(data), expected) << "crc32c of " << data.size() << " bytes";
  EXPECT_EQ(crc32c_portable(data.data(), data.size()), expected) << "portable crc32c of " << data.size() << " bytes";
}

TEST(Crc32c, CheckValue) { expect_crc("123456789", 0xE3069283u); }

TEST(Crc32c, Rfc3720Vectors) {
  // RFC 3720 (iSCSI) appendix B.4 "CRC Examples".
  expect_crc(std::string(32, '\0'), 0x8A9136AAu);
  expect_crc(std::string(32, '\xFF'), 0x62A8AB43u);
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(static_cast<char>(i));
    down.push_back(static_cast<char>(31 - i));
  }
  expect_crc(up, 0x46DD794Eu);
  expect_crc(down, 0x113FDB5Cu);
  const std::string iscsi_read =
      bytes({0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
             0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
             0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
  expect_crc(iscsi_read, 0xD9963A56u);
  expect_crc("", 0u);
}

TEST(Crc32c, HardwareAndTableAgreeOnEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string data(4096 + 16, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n : {0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4096}) {
      const char* p = data.data() + offset;
      ASSERT_EQ(crc32c(p, n), crc32c_portable(p, n)) << "offset " << offset << " length " << n;
    }
  }
  std::cout << "crc32c uses the SSE4.2 instruction: " << (crc32c_uses_hardware() ? "yes" : "no") << "\n";
}

TEST(Crc32c, ContinuesAcrossChunks) {
  const std::string a = "The quick brown fox ", b = "jumps over the lazy dog";
  EXPECT_EQ(crc32c(b, crc32c(a)), crc32c(a + b));
  EXPECT_EQ(crc32c(a + b), 0x22620404u);  // published CRC-32C of the pangram
}

TEST(Crc32c, MaskMatchesTheFormulaAndRoundTrips) {
  std::mt19937 rng(3);
  for (int i = 0; i < 10000; ++i) {
    const uint32_t crc = static_cast<uint32_t>(rng());
    const uint32_t rotated = (crc >> 15) | (crc << 17);
    ASSERT_EQ(mask_crc32c(crc), static_cast<uint32_t>(rotated + 0xa282ead8u));
    ASSERT_EQ(unmask_crc32c(mask_crc32c(crc)), crc);
    ASSERT_NE(mask_crc32c(crc), crc);
  }
  // A masked CRC quoted from a real TensorFlow event file (Event{file_version: "CRC test, one two"}).
  EXPECT_EQ(mask_crc32c(crc32c(std::string("\x1a\x11"
                                           "CRC test, one two"))),
            0x5794d08au);
}

// Record 1 of a TensorFlow 2 event file: Event{wall_time, file_version: "brain.Event:2"} (24 bytes).
const std::string kTfFileVersionEvent =
    bytes({0x09, 0x00, 0x00, 0x80, 0x38, 0x99, 0xd6, 0xd7, 0x41, 0x1a, 0x0d}) + "brain.Event:2";
// Record 2 of the same file: tf.summary.scalar("accuracy", 0.99, step=77) (50 bytes).
const std::string kTfScalarEvent =
    bytes({0x09, 0xc4, 0x05, 0xb7, 0x3d, 0x99, 0xd6, 0xd7, 0x41, 0x10, 0x4d, 0x2a, 0x25, 0x0a, 0x23, 0x0a, 0x08}) +
    "accuracy" +
    bytes(
        {0x42, 0x0a, 0x08, 0x01, 0x12, 0x00, 0x22, 0x04, 0xa4, 0x70, 0x7d, 0x3f, 0x4a, 0x0b, 0x0a, 0x09, 0x0a, 0x07}) +
    "scalars";

TEST(TfRecord, FramingIsByteIdenticalToTensorFlow) {
  ASSERT_EQ(kTfFileVersionEvent.size(), 24u);
  ASSERT_EQ(kTfScalarEvent.size(), 50u);
  std::string framed;
  append_tfrecord(&framed, kTfFileVersionEvent);
  append_tfrecord(&framed, kTfScalarEvent);
  const std::string expected = bytes({0x18, 0, 0, 0, 0, 0, 0, 0, 0xa3, 0x7f, 0x4b, 0x22}) + kTfFileVersionEvent +
                               bytes({0x12, 0x4b, 0x36, 0xab}) +
                               bytes({0x32, 0, 0, 0, 0, 0, 0, 0, 0x24, 0x19, 0x56, 0xec}) + kTfScalarEvent +
                               bytes({0xa5, 0x5b, 0x64, 0x33});
  EXPECT_EQ(framed, expected);
}

TEST(TfRecord, OurEventProtoSerialisesLikeTensorFlows) {
  // The same wall time as the TensorFlow record above: our .proto must produce the same 24 bytes.
  tensorboard::Event event;
  double wall_time;
  std::memcpy(&wall_time, kTfFileVersionEvent.data() + 1, 8);
  event.set_wall_time(wall_time);
  event.set_file_version("brain.Event:2");
  EXPECT_EQ(event.SerializeAsString(), kTfFileVersionEvent);

  // And it parses TensorFlow's scalar record's envelope: step 77, one value tagged "accuracy".
  tensorboard::Event scalar;
  ASSERT_TRUE(scalar.ParseFromString(kTfScalarEvent));
  EXPECT_EQ(scalar.step(), 77);
  ASSERT_EQ(scalar.summary().value_size(), 1);
  EXPECT_EQ(scalar.summary().value(0).tag(), "accuracy");
}

std::string temp_file(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("facetrain_test_records_crc_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(TfRecord, ReaderStopsAtATornTailAndRejectsCorruption) {
  std::string framed;
  append_tfrecord(&framed, "first");
  append_tfrecord(&framed, "");
  append_tfrecord(&framed, std::string(1000, 'x'));
  const std::string path = temp_file("records.tfrecord");
  { std::ofstream(path, std::ios::binary) << framed; }
  std::string note;
  auto records = read_tfrecords(path, &note);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0], "first");
  EXPECT_EQ(records[1], "");
  EXPECT_EQ(records[2], std::string(1000, 'x'));
  EXPECT_TRUE(note.empty());

  {
    std::ofstream(path, std::ios::binary) << framed.substr(0, framed.size() - 10);  // torn last record
  }
  records = read_tfrecords(path, &note);
  EXPECT_EQ(records.size(), 2u);
  EXPECT_NE(note.find("torn record"), std::string::npos) << note;

  std::string corrupt = framed;
  corrupt[12 + 2] ^= 0x01;  // a data byte of the first record
  { std::ofstream(path, std::ios::binary) << corrupt; }
  EXPECT_THROW(read_tfrecords(path), UserError);
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

}  // namespace
}  // namespace facetrain
