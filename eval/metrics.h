// Classification metrics from per-class scores: accuracy, precision/recall/F1 per class and macro,
// ROC AUC (binary, or macro one-vs-rest) with ties handled as the Mann-Whitney statistic does, the
// confusion matrix and the ROC curve. Pure C++ (no torch): the trainer's validation and `eval metrics`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace facetrain {

struct ClassMetrics {
  int64_t support = 0;  // true members
  double precision = 0, recall = 0, f1 = 0;
  double auc = 0;  // one-vs-rest; NaN when the class has no members or no non-members
};

struct ClassificationMetrics {
  int64_t count = 0;
  double loss = 0;  // mean cross-entropy, when given
  double accuracy = 0;
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  double auc = 0;  // binary: AUC of class 1; multiclass: mean over classes with a defined AUC; NaN if none
  std::vector<ClassMetrics> per_class;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

// scores: count x classes row-major probabilities (or any monotone scores); labels in [0, classes).
ClassificationMetrics classification_metrics(const std::vector<float>& scores, const std::vector<int64_t>& labels,
                                             int classes, double mean_loss = 0);

// Area under the ROC curve of `scores` for binary `positive` flags; ties count one half. NaN when all
// flags are equal (AUC is undefined for one-class inputs).
double roc_auc(const std::vector<float>& scores, const std::vector<bool>& positive);

struct RocPoint {
  double fpr, tpr, threshold;
};
// ROC curve points (one per distinct threshold, from (0,0) to (1,1)).
std::vector<RocPoint> roc_curve(const std::vector<float>& scores, const std::vector<bool>& positive);

}  // namespace facetrain
