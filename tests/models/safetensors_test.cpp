// safetensors: byte layout against the format description, reading a hand-built file, round trip of every
// dtype, rejection of corrupt headers/short data/bad offsets with errors naming file and tensor, atomic
// write, and module state save/load (a known model's output unchanged).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "lib/tiny_models.h"
#include "models/dcgan.h"
#include "models/safetensors.h"
#include "models/vit.h"

namespace facetrain {
namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("facetrain_safetensors_test_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write_bytes(const std::string& p, const std::string& bytes) const {
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  // A file from a header string and a data section, laid out by hand per the format description.
  std::string file_from(const std::string& header, const std::string& data) const {
    std::string out(8, '\0');
    const uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out + header + data;
  }
  // Expects read_safetensors to throw a UserError containing every fragment (and the path).
  void expect_rejected(const std::string& name, const std::string& bytes, std::vector<std::string> fragments) const {
    const auto p = path(name);
    write_bytes(p, bytes);
    fragments.push_back(p);
    try {
      read_safetensors(p);
      FAIL() << name << ": no error";
    } catch (const UserError& e) {
      for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
    }
  }
  std::filesystem::path dir_;
};

std::string float_bytes(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) s.append(reinterpret_cast<const char*>(&v), 4);
  return s;
}

TEST_F(SafetensorsTest, ByteLayoutFollowsTheFormat) {
  const auto bytes = serialize_safetensors({{"w", torch::tensor({1.0f, 2.0f})}}, {{"format", "pt"}});
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  ASSERT_EQ(bytes.size(), 8 + n + 8);
  EXPECT_EQ((8 + n) % 8, 0u);  // data aligned
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["w"]["dtype"], "F32");
  EXPECT_EQ(header["w"]["shape"], nlohmann::json::array({2}));
  EXPECT_EQ(header["w"]["data_offsets"], nlohmann::json::array({0, 8}));
  EXPECT_EQ(header["__metadata__"]["format"], "pt");
  // 1.0f = 0x3f800000, 2.0f = 0x40000000, little-endian.
  EXPECT_EQ(bytes.substr(8 + n), std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8));
}

TEST_F(SafetensorsTest, ReadsAHandBuiltFile) {
  // Two tensors, listed out of offset order, an I64 scalar and a U8 [2, 2], header padded with spaces.
  const std::string header =
      R"({"b":{"dtype":"U8","shape":[2,2],"data_offsets":[8,12]},"a":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
      R"("__metadata__":{"who":"hand"}}   )";
  std::string data(8, '\0');
  data[0] = 42;
  data += std::string("\x01\x02\x03\xff", 4);
  const auto p = path("hand.safetensors");
  write_bytes(p, file_from(header, data));
  SafetensorsMetadata meta;
  auto t = read_safetensors(p, &meta);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.at("a").dim(), 0);
  EXPECT_EQ(t.at("a").item<int64_t>(), 42);
  EXPECT_TRUE(torch::equal(t.at("b"), torch::tensor({1, 2, 3, 255}, torch::kUInt8).view({2, 2})));
  EXPECT_EQ(meta.at("who"), "hand");
}

TEST_F(SafetensorsTest, RoundTripOfEveryDtype) {
  torch::manual_seed(0);
  TensorMap tensors;
  tensors["f64"] = torch::randn({3, 2}, torch::kFloat64);
  tensors["f32"] = torch::randn({5}, torch::kFloat32);
  tensors["f16"] = torch::randn({2, 3, 4}).to(torch::kFloat16);
  tensors["bf16"] = torch::randn({7}).to(torch::kBFloat16);
  tensors["i64"] = torch::tensor({-(int64_t{1} << 40), int64_t{3}}, torch::kInt64);
  tensors["i32"] = torch::tensor({-5, 7, 1 << 30}, torch::kInt32);
  tensors["i16"] = torch::tensor({-300, 300}, torch::kInt16);
  tensors["i8"] = torch::tensor({-128, 127}, torch::kInt8);
  tensors["u8"] = torch::tensor({0, 255}, torch::kUInt8);
  tensors["bool"] = torch::tensor({true, false, true});
  tensors["scalar"] = torch::tensor(3.5f);
  tensors["empty"] = torch::zeros({0, 3});
  tensors["strided"] = torch::arange(12, torch::kFloat32).view({3, 4}).t();  // non-contiguous input
  const auto p = path("all.safetensors");
  write_safetensors(p, tensors, {{"step", "12"}});
  SafetensorsMetadata meta;
  auto back = read_safetensors(p, &meta);
  ASSERT_EQ(back.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_EQ(back.at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(back.at(name).sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(back.at(name), t)) << name;
  }
  EXPECT_EQ(meta.at("step"), "12");
  // Atomic write left no temporary file; writing again over the file works.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), std::filesystem::directory_iterator()), 1);
  write_safetensors(p, {{"x", torch::ones({1})}});
  EXPECT_EQ(read_safetensors(p).size(), 1u);
}

TEST_F(SafetensorsTest, CorruptFilesAreRejectedWithClearErrors) {
  const std::string good_header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string good_data = float_bytes({1.0f, 2.0f});
  ASSERT_NO_THROW(parse_safetensors(file_from(good_header, good_data).data(), 8 + good_header.size() + 8, "x"));

  expect_rejected("tiny", "abc", {"shorter than the 8-byte header length"});
  std::string huge_len = file_from(good_header, good_data);
  huge_len[5] = 1;  // header length ~ 2^40
  expect_rejected("bad_length", huge_len, {"header length", "runs past the end of the file"});
  expect_rejected("bad_json", file_from(R"({"w":{"dtype":"F32",)", good_data), {"header is not valid JSON"});
  expect_rejected("not_object", file_from("[1,2]", ""), {"header is not a JSON object"});
  expect_rejected("short_data", file_from(good_header, good_data.substr(0, 5)),
                  {"tensor 'w'", "past the", "truncated"});
  expect_rejected("size_mismatch", file_from(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", good_data),
                  {"tensor 'w'", "needs 12"});
  expect_rejected("reversed", file_from(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", good_data),
                  {"tensor 'w'", "end before begin"});
  expect_rejected("out_of_range", file_from(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", good_data),
                  {"tensor 'w'", "past the 8 data bytes"});
  expect_rejected("overlap",
                  file_from(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            good_data),
                  {"tensor 'b'", "overlap", "'a'"});
  expect_rejected("hole", file_from(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", good_data),
                  {"tensor 'w'", "hole of 4 bytes"});
  expect_rejected("trailing", file_from(good_header, good_data + "xxxx"), {"4 bytes of data after the last tensor"});
  expect_rejected("dtype", file_from(R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "ab"),
                  {"tensor 'w'", "unsupported dtype 'F8_E4M3'"});
  expect_rejected("no_shape", file_from(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", good_data),
                  {"tensor 'w'", "missing array 'shape'"});
  expect_rejected("negative", file_from(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", good_data),
                  {"tensor 'w'", "negative"});
  expect_rejected("metadata", file_from(R"({"__metadata__":{"a":1}})", ""), {"__metadata__ value 'a' is not a string"});
  try {
    read_safetensors(path("does_not_exist.safetensors"));
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("does_not_exist.safetensors: cannot open"), std::string::npos) << e.what();
  }
}

TEST_F(SafetensorsTest, KnownModelOutputUnchangedAfterSaveAndLoad) {
  torch::manual_seed(1);
  const VitOptions o = testing::tiny_vit_options(16, 4, 3, 4, 24, 2, 3);
  Vit a(o);
  a->eval();
  auto x = torch::randn({3, 3, 16, 16});
  auto expected = a->forward(x);
  const auto p = path("vit.safetensors");
  write_safetensors(p, module_to_tensors(*a), {{"model", "vit"}});
  torch::manual_seed(2);
  Vit b(o);
  b->eval();
  EXPECT_FALSE(torch::allclose(b->forward(x), expected));
  LoadReport report;
  load_module_from_tensors(*b, read_safetensors(p), /*strict=*/true, p, "", &report);
  EXPECT_TRUE(torch::equal(b->forward(x), expected));
  EXPECT_EQ(report.loaded.size(), a->named_parameters().size());

  // BatchNorm running statistics (buffers) travel too: the seed discriminator in eval mode.
  DcganDiscriminator d(DcganOptions::seed32());
  d->train();
  d->forward(torch::randn({8, 3, 32, 32}));  // moves running stats away from their init
  d->eval();
  auto images = torch::randn({2, 3, 32, 32});
  auto d_expected = d->forward(images);
  write_safetensors(path("d.safetensors"), module_to_tensors(*d, "discriminator."));
  DcganDiscriminator d2(DcganOptions::seed32());
  d2->eval();
  load_module_from_tensors(*d2, read_safetensors(path("d.safetensors")), true, "d", "discriminator.");
  EXPECT_TRUE(torch::equal(d2->forward(images), d_expected));
}

TEST_F(SafetensorsTest, ModuleLoadListsEveryProblemOnceAndChangesNothing) {
  DcganDiscriminator d(DcganOptions::seed32());
  auto tensors = module_to_tensors(*d);
  TensorMap bad;
  for (const auto& [k, v] : tensors) bad[k] = v.clone();
  bad.erase("conv1.0.weight");
  bad["fc.weight"] = torch::zeros({2, 2048});
  bad["extra.weight"] = torch::zeros({1});
  DcganDiscriminator fresh(DcganOptions::seed32());
  auto before = module_to_tensors(*fresh);
  TensorMap before_copy;
  for (const auto& [k, v] : before) before_copy[k] = v.clone();
  try {
    load_module_from_tensors(*fresh, bad, true, "ckpt.safetensors");
    FAIL();
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("ckpt.safetensors: 3 tensor(s) do not match the model"), std::string::npos) << what;
    EXPECT_NE(what.find("missing conv1.0.weight"), std::string::npos) << what;
    EXPECT_NE(what.find("fc.weight: model [1, 2048] vs file [2, 2048]"), std::string::npos) << what;
    EXPECT_NE(what.find("unexpected extra.weight"), std::string::npos) << what;
  }
  for (const auto& [k, v] : module_to_tensors(*fresh)) EXPECT_TRUE(torch::equal(v, before_copy.at(k))) << k;
  // Non-strict: missing and extra names are fine, a shape mismatch is not.
  bad["fc.weight"] = tensors.at("fc.weight");
  LoadReport report;
  EXPECT_NO_THROW(load_module_from_tensors(*fresh, bad, false, "ckpt", "", &report));
  EXPECT_EQ(report.unused, std::vector<std::string>{"extra.weight"});
}

}  // namespace
}  // namespace facetrain
