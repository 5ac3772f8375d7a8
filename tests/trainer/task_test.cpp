// Every model in the table (models/model_spec.h) has a training recipe: make_task never meets a model it
// cannot train.
#include <gtest/gtest.h>

#include "models/model_spec.h"
#include "trainer/task.h"

namespace facetrain {
namespace {

TEST(TrainingTask, EveryModelSpecHasARecipe) {
  ASSERT_FALSE(model_specs().empty());
  for (const auto& spec : model_specs()) EXPECT_TRUE(has_training_task(spec)) << spec.name << " has no training task";
}

}  // namespace
}  // namespace facetrain
