// Run-config loading: text-format errors name file:line, --set overrides fields (and names unknown ones),
// validation names the field, and every config shipped in configs/ parses and validates.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/config.h"
#include "lib/test_util.h"

namespace facetrain {
namespace {

using testing::error_of;

namespace fs = std::filesystem;

std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path path = fs::temp_directory_path() / ("facetrain_test_config_" + name);
  std::ofstream(path) << text;
  return path.string();
}

const char* kMinimal = R"(
model { vit { patch_size: 7 width: 64 depth: 2 heads: 4 } }
data { store: "x.h5" }
logging { run_dir: "runs/x" }
)";

TEST(Config, ParsesAndKeepsDefaults) {
  const auto c = load_run_config(write_temp("min.pbtxt", kMinimal), {});
  EXPECT_TRUE(c.model().has_vit());
  EXPECT_EQ(c.model().vit().width(), 64);
  EXPECT_EQ(c.data().batch_size(), 64);  // schema default
  EXPECT_FLOAT_EQ(c.distributed().bucket_cap_mb(), 25.0f);
}

TEST(Config, SyntaxErrorNamesFileAndLine) {
  const std::string path = write_temp("bad.pbtxt", "model { vit { width: 64 } }\ndata { store: \"x\" \nlogging { }\n");
  const std::string msg = error_of([&] { load_run_config(path, {}); });
  EXPECT_NE(msg.find(path + ":"), std::string::npos) << msg;
  const std::string path2 = write_temp("unknown.pbtxt", "model { vit { width: 64 } }\ndata { stor: \"x\" }\n");
  const std::string msg2 = error_of([&] { load_run_config(path2, {}); });
  EXPECT_NE(msg2.find(path2 + ":2:"), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("stor"), std::string::npos) << msg2;
}

TEST(Config, BadValueNamesField) {
  const std::string path = write_temp("value.pbtxt", "model { vit { width: \"wide\" } }\n");
  const std::string msg = error_of([&] { load_run_config(path, {}); });
  EXPECT_NE(msg.find(":1:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("width"), std::string::npos) << msg;
}

TEST(Config, MissingFileNamed) {
  const std::string msg = error_of([] { load_run_config("/nonexistent/run.pbtxt", {}); });
  EXPECT_NE(msg.find("/nonexistent/run.pbtxt"), std::string::npos) << msg;
}

TEST(Config, OverridesSetNestedScalarsStringsAndLists) {
  const auto c = load_run_config(write_temp("ov.pbtxt", kMinimal),
                                 {"optimizer.lr=0.5", "data.store=other.h5", "model.vit.depth=3",
                                  "augmentation.horizontal_flip=true", "model.vae.perceptual.layers=relu1_1,relu2_1"});
  EXPECT_FLOAT_EQ(c.optimizer().lr(), 0.5f);
  EXPECT_EQ(c.data().store(), "other.h5");
  // Setting a field of another model kind switches the oneof: the last override wins.
  EXPECT_TRUE(c.model().has_vae());
  ASSERT_EQ(c.model().vae().perceptual().layers_size(), 2);
  EXPECT_EQ(c.model().vae().perceptual().layers(1), "relu2_1");
  EXPECT_TRUE(c.augmentation().horizontal_flip());
  // Replacing a list does not append to it.
  proto::RunConfig again = c;
  apply_override(&again, "model.vae.perceptual.layers=relu3_1");
  ASSERT_EQ(again.model().vae().perceptual().layers_size(), 1);
}

TEST(Config, OverrideErrorsNameTheFlag) {
  proto::RunConfig c;
  EXPECT_NE(error_of([&] { apply_override(&c, "optimizer.lrr=1"); }).find("'lrr'"), std::string::npos);
  EXPECT_NE(error_of([&] { apply_override(&c, "optimizer.lr=fast", "--set"); }).find("--set optimizer.lr=fast"),
            std::string::npos);
  EXPECT_NE(error_of([&] { apply_override(&c, "optimizer=1"); }).find("message"), std::string::npos);
  EXPECT_NE(error_of([&] { apply_override(&c, "noequals"); }).find("field.path=value"), std::string::npos);
}

TEST(Config, ValidationNamesField) {
  auto check = [&](const std::string& override, const std::string& field) {
    const std::string msg = error_of([&] { load_run_config(write_temp("v.pbtxt", kMinimal), {override}); });
    EXPECT_NE(msg.find(field), std::string::npos) << override << " -> " << msg;
  };
  check("data.batch_size=0", "data.batch_size");
  check("optimizer.kind=lion", "optimizer.kind");
  check("schedule.decay=step", "schedule.decay");
  check("distributed.precision=fp8", "distributed.precision");
  check("logging.run_dir=", "logging.run_dir");
}

TEST(Config, ShippedConfigsValidate) {
  const char* source = std::getenv("FACETRAIN_SOURCE_DIR");
  ASSERT_NE(source, nullptr);
  int count = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(source) / "configs")) {
    if (entry.path().extension() != ".pbtxt") continue;
    EXPECT_NO_THROW(load_run_config(entry.path().string(), {})) << entry.path();
    ++count;
  }
  EXPECT_GT(count, 0);
}

}  // namespace
}  // namespace facetrain
