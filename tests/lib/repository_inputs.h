// What model tests build from the repository: a run config of configs/ (FACETRAIN_SOURCE_DIR, which ctest sets)
// and the shape of a store without the store.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/config.h"
#include "core/data_description.h"

namespace facetrain::testing {

inline proto::RunConfig repository_config(const std::string& name) {
  const char* source = std::getenv("FACETRAIN_SOURCE_DIR");
  EXPECT_NE(source, nullptr) << "FACETRAIN_SOURCE_DIR is not set (ctest sets it)";
  return load_run_config(std::string(source ? source : ".") + "/configs/" + name, {});
}

// A store's description: side x side images of `channels`, `classes` classes, unit class weights.
inline StoreInfo store_shape(int64_t side, int64_t channels, int64_t classes) {
  StoreInfo s;
  s.height = s.width = side;
  s.channels = channels;
  for (int64_t k = 0; k < classes; ++k) s.class_names.push_back("class" + std::to_string(k));
  s.class_weights.assign(classes, 1.0f);
  s.mean.assign(channels, 0.5f);
  s.std.assign(channels, 0.25f);
  return s;
}

}  // namespace facetrain::testing
