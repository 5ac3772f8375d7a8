// Test fixtures for datastore tests: small stores written through StoreWriter with pixel values that are
// a known function of (image, row, col, channel), kept in memory for comparison. Generated, never checked in.
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "datastore/store.h"
#include "lib/temp_dir.h"

namespace facetrain::testing {

struct FixtureStore {
  std::vector<std::vector<uint8_t>> images;  // HWC
  std::vector<int64_t> labels;
  std::vector<Split> splits;
  std::vector<std::string> filenames;
  std::vector<std::vector<int8_t>> attributes;
  std::vector<int32_t> identities;
};

struct FixtureSpec {
  int64_t count = 100;
  int height = 16, width = 16, channels = 3;
  int classes = 3;
  int attributes = 0;  // > 0: writes attribute_names "attr0".. and identities
  uint64_t seed = 1;
  // Split of image i: i % 10 < 7 train, == 7, 8 val, == 9 test (when split_pattern is true), else all train.
  bool split_pattern = true;
};

inline Split fixture_split(const FixtureSpec& spec, int64_t i) {
  if (!spec.split_pattern) return Split::kTrain;
  const int64_t r = i % 10;
  return r < 7 ? Split::kTrain : (r < 9 ? Split::kVal : Split::kTest);
}

// Writes the store and returns what was written. Labels are skewed (class k has about k+1 shares).
inline FixtureStore write_fixture_store(const std::string& path, const FixtureSpec& spec, bool overwrite = false) {
  StoreLayout layout;
  layout.height = spec.height;
  layout.width = spec.width;
  layout.channels = spec.channels;
  for (int k = 0; k < spec.classes; ++k) layout.class_names.push_back("class_" + std::to_string(k));
  layout.label_source = "test:fixture";
  for (int a = 0; a < spec.attributes; ++a) layout.attribute_names.push_back("attr" + std::to_string(a));
  layout.has_identities = spec.attributes > 0;
  std::mt19937_64 rng(spec.seed);
  FixtureStore out;
  StoreWriter writer(path, layout, overwrite);
  const size_t bytes = static_cast<size_t>(spec.height) * spec.width * spec.channels;
  const int shares = spec.classes * (spec.classes + 1) / 2;
  for (int64_t i = 0; i < spec.count; ++i) {
    std::vector<uint8_t> img(bytes);
    for (auto& v : img) v = static_cast<uint8_t>(rng() >> 56);
    int64_t label = 0;
    if (spec.classes > 0) {
      int64_t r = static_cast<int64_t>(rng() % shares);
      while (r >= label + 1) {
        r -= label + 1;
        ++label;
      }
    }
    std::vector<int8_t> attrs;
    for (int a = 0; a < spec.attributes; ++a) attrs.push_back((rng() & 1) ? 1 : -1);
    const int32_t identity = spec.attributes > 0 ? static_cast<int32_t>(i % 7) : -1;
    const Split split = fixture_split(spec, i);
    const std::string name = "img_" + std::to_string(i) + ".png";
    writer.append(img.data(), label, split, name, attrs, identity);
    out.images.push_back(std::move(img));
    out.labels.push_back(label);
    out.splits.push_back(split);
    out.filenames.push_back(name);
    out.attributes.push_back(attrs);
    out.identities.push_back(identity);
  }
  writer.finish();
  return out;
}

}  // namespace facetrain::testing
