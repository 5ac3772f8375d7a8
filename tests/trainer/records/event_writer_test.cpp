// Event files decoded independently of the writer: TFRecord framing parsed by hand, Protobuf records walked
// by a minimal wire-format reader against TensorFlow's published field numbers, and cross-checked with
// `protoc --decode_raw` (no schema) and `protoc --decode` (our schema). Also metrics.jsonl.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <sstream>
#include <vector>

#include "core/crc32c.h"
#include "trainer/records/event_writer.h"
#include "trainer/records/jsonl_writer.h"
#include "lib/test_util.h"

namespace facetrain {
namespace {

namespace fs = std::filesystem;

uint64_t le(const std::string& s, size_t pos, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(s[pos + i])) << (8 * i);
  return v;
}

// TFRecord framing by hand, asserting both masked CRCs of every record.
std::vector<std::string> parse_framing(const std::string& file) {
  std::vector<std::string> records;
  size_t pos = 0;
  while (pos < file.size()) {
    EXPECT_GE(file.size() - pos, 16u) << "short record at " << pos;
    if (file.size() - pos < 16) break;
    const uint64_t length = le(file, pos, 8);
    const uint32_t length_crc = static_cast<uint32_t>(le(file, pos + 8, 4));
    const uint32_t expected_length_crc = crc32c(file.data() + pos, 8);
    EXPECT_EQ(length_crc, ((expected_length_crc >> 15) | (expected_length_crc << 17)) + 0xa282ead8u);
    EXPECT_LE(pos + 12 + length + 4, file.size());
    if (pos + 12 + length + 4 > file.size()) break;
    const std::string data = file.substr(pos + 12, length);
    const uint32_t data_crc = static_cast<uint32_t>(le(file, pos + 12 + length, 4));
    const uint32_t expected_data_crc = crc32c(data);
    EXPECT_EQ(data_crc, ((expected_data_crc >> 15) | (expected_data_crc << 17)) + 0xa282ead8u);
    records.push_back(data);
    pos += 12 + length + 4;
  }
  return records;
}

// Minimal Protobuf wire-format walker: field number -> raw values (varint as number, fixed64/fixed32 as the
// little-endian integer, length-delimited as bytes).
struct Field {
  int wire_type;
  uint64_t number;
  std::string bytes;
};
std::multimap<int, Field> walk(const std::string& msg) {
  std::multimap<int, Field> fields;
  size_t pos = 0;
  auto varint = [&]() {
    uint64_t v = 0;
    for (int shift = 0; pos < msg.size(); shift += 7) {
      const uint8_t b = static_cast<uint8_t>(msg[pos++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) break;
    }
    return v;
  };
  while (pos < msg.size()) {
    const uint64_t key = varint();
    Field f{static_cast<int>(key & 7), 0, ""};
    switch (f.wire_type) {
      case 0: f.number = varint(); break;
      case 1:
        f.number = le(msg, pos, 8);
        pos += 8;
        break;
      case 5:
        f.number = le(msg, pos, 4);
        pos += 4;
        break;
      case 2: {
        const uint64_t n = varint();
        f.bytes = msg.substr(pos, n);
        pos += n;
        break;
      }
      default: ADD_FAILURE() << "unexpected wire type " << f.wire_type; return fields;
    }
    fields.emplace(static_cast<int>(key >> 3), f);
  }
  return fields;
}
const Field& one(const std::multimap<int, Field>& m, int number, int wire_type) {
  static const Field kMissing{-1, 0, ""};
  EXPECT_EQ(m.count(number), 1u) << "field " << number;
  auto it = m.find(number);
  if (it == m.end()) return kMissing;
  EXPECT_EQ(it->second.wire_type, wire_type) << "field " << number;
  return it->second;
}
float as_float(uint64_t bits32) {
  const uint32_t b = static_cast<uint32_t>(bits32);
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
double as_double(uint64_t bits64) {
  double d;
  std::memcpy(&d, &bits64, 8);
  return d;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("facetrain_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<fs::path> event_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find("tfevents") != std::string::npos) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Runs protoc on one record; returns its text output.
std::string protoc(const std::string& record, const std::string& args, const fs::path& dir) {
  const fs::path in = dir / "record.bin", out = dir / "record.txt";
  { std::ofstream(in, std::ios::binary) << record; }
  const std::string cmd = std::string(FACETRAIN_PROTOC) + " " + args + " < " + in.string() + " > " + out.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return testing::read_text(out);
}

// A 3x4 RGB test image with distinct values in every channel.
std::vector<uint8_t> test_pixels(int h, int w, int c) {
  std::vector<uint8_t> p(static_cast<size_t>(h) * w * c);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>((i * 37 + 11) % 256);
  return p;
}

TEST(EventWriter, RecordsDecodeIndependently) {
  const fs::path dir = fresh_dir("events");
  const auto rgb = test_pixels(3, 4, 3);
  const auto gray = test_pixels(5, 2, 1);
  const auto rgba = test_pixels(2, 3, 4);
  const double before = static_cast<double>(std::time(nullptr)) - 1;
  {
    EventWriter writer(dir.string(), /*start_step=*/0, /*flush_seconds=*/1e9);
    writer.add_scalar("train/loss", 0.5f, 1);
    writer.add_scalars({{"train/loss", 0.25}, {"train/lr", 1e-3}}, 2);
    writer.add_image("samples/rgb", rgb.data(), 3, 4, 3, 2);
    writer.add_image("samples/gray", gray.data(), 5, 2, 1, 3);
    writer.add_image("samples/rgba", rgba.data(), 2, 3, 4, 3);
    EXPECT_THROW(writer.add_image("bad", rgb.data(), 3, 2, 2, 3), std::runtime_error);
  }  // destruction flushes (flush_seconds is huge, so nothing was written before)

  const auto files = event_files(dir);
  ASSERT_EQ(files.size(), 1u);
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  const std::regex name("events\\.out\\.tfevents\\.(\\d{10})\\." + std::string(host) + "\\." +
                        std::to_string(getpid()) + "\\.\\d+");
  std::smatch m;
  const std::string file_name = files[0].filename().string();
  ASSERT_TRUE(std::regex_match(file_name, m, name)) << file_name;

  const auto records = parse_framing(testing::read_text(files[0]));
  ASSERT_EQ(records.size(), 7u);  // file_version, START, scalar, scalars, 3 images

  // 0: Event{wall_time = 1 (double), file_version = 3: "brain.Event:2"}
  auto e0 = walk(records[0]);
  const double wall_time = as_double(one(e0, 1, 1).number);
  EXPECT_GE(wall_time, before);
  EXPECT_LE(wall_time, static_cast<double>(std::time(nullptr)) + 1);
  EXPECT_EQ(one(e0, 3, 2).bytes, "brain.Event:2");
  EXPECT_EQ(e0.count(2), 0u);  // step 0 is proto3's default: not on the wire

  // 1: Event{step = 2: 1, session_log = 7: {status = 1: START (1)}}
  auto e1 = walk(records[1]);
  EXPECT_EQ(one(e1, 2, 0).number, 1u);
  EXPECT_EQ(one(walk(one(e1, 7, 2).bytes), 1, 0).number, 1u);

  // 2: Event{step: 1, summary = 5: {value = 1: {tag = 1, simple_value = 2 (fixed32 float)}}}
  auto e2 = walk(records[2]);
  EXPECT_EQ(one(e2, 2, 0).number, 1u);
  auto v2 = walk(one(walk(one(e2, 5, 2).bytes), 1, 2).bytes);
  EXPECT_EQ(one(v2, 1, 2).bytes, "train/loss");
  EXPECT_EQ(as_float(one(v2, 2, 5).number), 0.5f);

  // 3: two values in one summary
  auto e3 = walk(records[3]);
  EXPECT_EQ(one(e3, 2, 0).number, 2u);
  auto s3 = walk(one(e3, 5, 2).bytes);
  ASSERT_EQ(s3.count(1), 2u);
  auto it = s3.find(1);
  auto first = walk(it->second.bytes);
  auto second = walk(std::next(it)->second.bytes);
  EXPECT_EQ(one(first, 1, 2).bytes, "train/loss");
  EXPECT_EQ(as_float(one(first, 2, 5).number), 0.25f);
  EXPECT_EQ(one(second, 1, 2).bytes, "train/lr");
  EXPECT_EQ(as_float(one(second, 2, 5).number), 1e-3f);

  // 4-6: Value{tag, image = 4: {height = 1, width = 2, colorspace = 3, encoded_image_string = 4: PNG}}
  struct Expect {
    const char* tag;
    const std::vector<uint8_t>* pixels;
    int h, w, c;
    uint64_t step;
  };
  const Expect images[] = {
      {"samples/rgb", &rgb, 3, 4, 3, 2}, {"samples/gray", &gray, 5, 2, 1, 3}, {"samples/rgba", &rgba, 2, 3, 4, 3}};
  for (int i = 0; i < 3; ++i) {
    const Expect& x = images[i];
    auto e = walk(records[4 + i]);
    EXPECT_EQ(one(e, 2, 0).number, x.step);
    auto v = walk(one(walk(one(e, 5, 2).bytes), 1, 2).bytes);
    EXPECT_EQ(one(v, 1, 2).bytes, x.tag);
    auto img = walk(one(v, 4, 2).bytes);
    EXPECT_EQ(one(img, 1, 0).number, static_cast<uint64_t>(x.h));
    EXPECT_EQ(one(img, 2, 0).number, static_cast<uint64_t>(x.w));
    EXPECT_EQ(one(img, 3, 0).number, static_cast<uint64_t>(x.c));  // 1 gray, 3 RGB, 4 RGBA
    const std::string png = one(img, 4, 2).bytes;
    ASSERT_GE(png.size(), 8u);
    EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    const cv::Mat decoded = cv::imdecode(std::vector<uint8_t>(png.begin(), png.end()), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(decoded.rows, x.h);
    ASSERT_EQ(decoded.cols, x.w);
    ASSERT_EQ(decoded.channels(), x.c);
    // OpenCV decodes to BGR(A); the writer was given RGB(A).
    for (int r = 0; r < x.h; ++r) {
      for (int col = 0; col < x.w; ++col) {
        for (int ch = 0; ch < x.c; ++ch) {
          const int src_ch = (x.c >= 3 && ch < 3) ? 2 - ch : ch;
          ASSERT_EQ(decoded.ptr<uint8_t>(r)[col * x.c + ch], (*x.pixels)[(r * x.w + col) * x.c + src_ch])
              << x.tag << " pixel " << r << "," << col << " channel " << ch;
        }
      }
    }
  }

  // protoc --decode_raw knows no schema: it prints TensorFlow's field numbers as they are on the wire.
  const std::string raw0 = protoc(records[0], "--decode_raw", dir);
  EXPECT_NE(raw0.find("3: \"brain.Event:2\""), std::string::npos) << raw0;
  const std::string raw3 = protoc(records[3], "--decode_raw", dir);
  EXPECT_NE(raw3.find("2: 2\n"), std::string::npos) << raw3;
  EXPECT_NE(raw3.find("1: \"train/lr\""), std::string::npos) << raw3;
  EXPECT_NE(raw3.find("2: 0x3a83126f"), std::string::npos) << raw3;  // 1e-3f as fixed32

  // protoc --decode with our schema names the fields.
  const char* source = std::getenv("FACETRAIN_SOURCE_DIR");
  ASSERT_NE(source, nullptr);
  const std::string decode = std::string("--proto_path=") + source +
                             " --decode=facetrain.tensorboard.Event trainer/records/tensorboard_event.proto";
  EXPECT_NE(protoc(records[0], decode, dir).find("file_version: \"brain.Event:2\""), std::string::npos);
  EXPECT_NE(protoc(records[1], decode, dir).find("status: START"), std::string::npos);
  const std::string d2 = protoc(records[2], decode, dir);
  EXPECT_NE(d2.find("step: 1\n"), std::string::npos) << d2;
  EXPECT_NE(d2.find("tag: \"train/loss\""), std::string::npos) << d2;
  EXPECT_NE(d2.find("simple_value: 0.5"), std::string::npos) << d2;
  const std::string d4 = protoc(records[4], decode, dir);
  EXPECT_NE(d4.find("height: 3"), std::string::npos) << d4;
  EXPECT_NE(d4.find("width: 4"), std::string::npos) << d4;
  EXPECT_NE(d4.find("colorspace: 3"), std::string::npos) << d4;
  fs::remove_all(dir);
}

TEST(EventWriter, ResumeAddsANewFileWithARestartMarker) {
  const fs::path dir = fresh_dir("events_resume");
  {
    EventWriter writer(dir.string(), 0);
    writer.add_scalar("train/loss", 1.0f, 10);
  }
  {
    EventWriter writer(dir.string(), 7);  // resumed from the checkpoint of step 7
    writer.add_scalar("train/loss", 0.75f, 8);
  }
  const auto files = event_files(dir);
  ASSERT_EQ(files.size(), 2u);
  const auto old_records = parse_framing(testing::read_text(files[0]));
  const auto new_records = parse_framing(testing::read_text(files[1]));
  ASSERT_EQ(old_records.size(), 3u);
  ASSERT_EQ(new_records.size(), 3u);
  // The resumed file restarts at step 8: TensorBoard hides the first attempt's events at steps >= 8.
  auto start = walk(new_records[1]);
  EXPECT_EQ(one(start, 2, 0).number, 8u);
  EXPECT_EQ(one(walk(one(start, 7, 2).bytes), 1, 0).number, 1u);
  EXPECT_EQ(one(walk(new_records[2]), 2, 0).number, 8u);
  fs::remove_all(dir);
}

TEST(EventWriter, PeriodicFlushMakesRecordsVisibleBeforeDestruction) {
  const fs::path dir = fresh_dir("events_flush");
  EventWriter writer(dir.string(), 0, /*flush_seconds=*/0.0);  // every record flushed at once
  writer.add_scalar("a", 2.0f, 1);
  EXPECT_EQ(parse_framing(testing::read_text(writer.path())).size(), 3u);
  EventWriter lazy(dir.string(), 0, /*flush_seconds=*/1e9);
  lazy.add_scalar("a", 2.0f, 1);
  EXPECT_EQ(parse_framing(testing::read_text(lazy.path())).size(), 2u);  // header records only, until flush()
  lazy.flush();
  EXPECT_EQ(parse_framing(testing::read_text(lazy.path())).size(), 3u);
  fs::remove_all(dir);
}

std::vector<nlohmann::json> jsonl_lines(const fs::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST(JsonlWriter, LinesAndResume) {
  const fs::path dir = fresh_dir("jsonl");
  const fs::path path = dir / "metrics.jsonl";
  {
    JsonlWriter w(path.string(), 0);
    for (int step = 1; step <= 5; ++step) w.write(step, {{"train/loss", 1.0 / step}, {"train/lr", 0.1}});
    w.write(6, {{"train/loss", std::nan("")}});
    const auto lines = jsonl_lines(path);  // written through at once, no flush needed
    ASSERT_EQ(lines.size(), 6u);
    EXPECT_EQ(lines[2]["step"], 3);
    EXPECT_DOUBLE_EQ(lines[2]["train/loss"].get<double>(), 1.0 / 3);
    EXPECT_TRUE(lines[5]["train/loss"].is_null());
    EXPECT_GT(lines[0]["time"].get<double>(), 1.6e9);
    // key order: step, the values as given, time
    EXPECT_EQ(testing::read_text(path).substr(0, 24), "{\"step\":1,\"train/loss\":1");
  }
  // A kill tore the last line; the run resumes from the checkpoint of step 3.
  { std::ofstream(path, std::ios::app) << "{\"step\":7,\"train/lo"; }
  {
    JsonlWriter w(path.string(), 3);
    w.write(4, {{"train/loss", 0.2}});
  }
  const auto lines = jsonl_lines(path);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["step"], 1);
  EXPECT_EQ(lines[2]["step"], 3);
  EXPECT_EQ(lines[3]["step"], 4);
  EXPECT_DOUBLE_EQ(lines[3]["train/loss"].get<double>(), 0.2);
  EXPECT_FALSE(fs::exists(path.string() + ".partial"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace facetrain
