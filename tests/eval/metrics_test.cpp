// Classification metrics against hand-computed cases: accuracy/precision/recall/F1, ROC AUC with ties
// and one-class inputs, the ROC curve's end points, and macro one-vs-rest AUC.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/metrics.h"

namespace facetrain {
namespace {

TEST(RocAuc, PerfectInvertedAndRandomOrder) {
  EXPECT_DOUBLE_EQ(roc_auc({0.1f, 0.2f, 0.8f, 0.9f}, {false, false, true, true}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.9f, 0.8f, 0.2f, 0.1f}, {false, false, true, true}), 0.0);
  // Positives at 0.35, 0.8; negatives at 0.1, 0.4: pairs (pos > neg): 0.35>0.1, 0.8>0.1, 0.8>0.4 = 3 of 4.
  EXPECT_DOUBLE_EQ(roc_auc({0.1f, 0.4f, 0.35f, 0.8f}, {false, false, true, true}), 0.75);
}

TEST(RocAuc, TiesCountOneHalf) {
  // All scores equal: every pair is a tie -> 0.5.
  EXPECT_DOUBLE_EQ(roc_auc({0.5f, 0.5f, 0.5f, 0.5f}, {true, false, true, false}), 0.5);
  // pos {0.5, 0.9}, neg {0.5, 0.1}: pairs 0.5~0.5 (1/2), 0.5>0.1, 0.9>0.5, 0.9>0.1 -> 3.5/4.
  EXPECT_DOUBLE_EQ(roc_auc({0.5f, 0.9f, 0.5f, 0.1f}, {true, true, false, false}), 0.875);
}

TEST(RocAuc, OneClassIsUndefined) {
  EXPECT_TRUE(std::isnan(roc_auc({0.1f, 0.7f}, {true, true})));
  EXPECT_TRUE(std::isnan(roc_auc({0.1f, 0.7f}, {false, false})));
}

TEST(RocCurve, StartsAtZeroEndsAtOneAndMatchesAuc) {
  const std::vector<float> s{0.1f, 0.4f, 0.35f, 0.8f};
  const std::vector<bool> p{false, false, true, true};
  const auto curve = roc_curve(s, p);
  EXPECT_DOUBLE_EQ(curve.front().fpr, 0);
  EXPECT_DOUBLE_EQ(curve.front().tpr, 0);
  EXPECT_DOUBLE_EQ(curve.back().fpr, 1);
  EXPECT_DOUBLE_EQ(curve.back().tpr, 1);
  double area = 0;
  for (size_t i = 1; i < curve.size(); ++i) {
    area += (curve[i].fpr - curve[i - 1].fpr) * 0.5 * (curve[i].tpr + curve[i - 1].tpr);
  }
  EXPECT_NEAR(area, roc_auc(s, p), 1e-12);
}

TEST(ClassificationMetrics, HandComputedBinary) {
  // labels 1,1,1,0,0; predictions (argmax) 1,1,0,0,1.
  const std::vector<float> scores{0.2f, 0.8f, 0.3f, 0.7f, 0.6f, 0.4f, 0.9f, 0.1f, 0.45f, 0.55f};
  const std::vector<int64_t> labels{1, 1, 1, 0, 0};
  const auto m = classification_metrics(scores, labels, 2);
  EXPECT_DOUBLE_EQ(m.accuracy, 3.0 / 5);
  EXPECT_EQ(m.confusion[1][1], 2);
  EXPECT_EQ(m.confusion[1][0], 1);
  EXPECT_EQ(m.confusion[0][0], 1);
  EXPECT_EQ(m.confusion[0][1], 1);
  EXPECT_DOUBLE_EQ(m.per_class[1].precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.per_class[1].recall, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 0.5);
  EXPECT_DOUBLE_EQ(m.macro_f1, 0.5 * (2.0 / 3 + 0.5));
  // AUC of class 1 scores {0.8,0.7,0.4 | 0.1,0.55}: pos>neg pairs 0.8>both, 0.7>both, 0.4>0.1 -> 5/6.
  EXPECT_DOUBLE_EQ(m.auc, 5.0 / 6);
}

TEST(ClassificationMetrics, OneClassInputHasNoAucButOtherMetrics) {
  const std::vector<float> scores{0.1f, 0.9f, 0.3f, 0.7f};
  const auto m = classification_metrics(scores, {1, 1}, 2);
  EXPECT_DOUBLE_EQ(m.accuracy, 1.0);
  EXPECT_TRUE(std::isnan(m.auc));
  EXPECT_EQ(m.per_class[0].support, 0);
}

TEST(ClassificationMetrics, MulticlassMacroAuc) {
  // Three classes, each image's own class scores highest: every one-vs-rest AUC is 1.
  const std::vector<float> scores{0.8f, 0.1f, 0.1f, 0.1f, 0.7f, 0.2f, 0.2f, 0.2f, 0.6f};
  const auto m = classification_metrics(scores, {0, 1, 2}, 3);
  EXPECT_DOUBLE_EQ(m.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(m.auc, 1.0);
  EXPECT_DOUBLE_EQ(m.macro_f1, 1.0);
}

}  // namespace
}  // namespace facetrain
