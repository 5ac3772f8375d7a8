// Classification metrics (see metrics.h). AUC uses the rank-sum form: sort once, give tied scores their
// average rank, AUC = (R+ - n+(n+ + 1)/2) / (n+ n-), which equals the trapezoid area of the ROC curve.
#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace facetrain {

double roc_auc(const std::vector<float>& scores, const std::vector<bool>& positive) {
  FT_CHECK(scores.size() == positive.size(), "scores and flags differ in length");
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rank_sum_pos = 0;
  int64_t n_pos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double average_rank = 0.5 * static_cast<double>(i + 1 + j);  // ranks i+1..j
    for (size_t k = i; k < j; ++k) {
      if (positive[order[k]]) {
        rank_sum_pos += average_rank;
        ++n_pos;
      }
    }
    i = j;
  }
  const int64_t n_neg = static_cast<int64_t>(n) - n_pos;
  if (n_pos == 0 || n_neg == 0) return std::numeric_limits<double>::quiet_NaN();
  return (rank_sum_pos - 0.5 * static_cast<double>(n_pos) * static_cast<double>(n_pos + 1)) /
         (static_cast<double>(n_pos) * static_cast<double>(n_neg));
}

std::vector<RocPoint> roc_curve(const std::vector<float>& scores, const std::vector<bool>& positive) {
  FT_CHECK(scores.size() == positive.size(), "scores and flags differ in length");
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  const int64_t n_pos = std::count(positive.begin(), positive.end(), true);
  const int64_t n_neg = static_cast<int64_t>(n) - n_pos;
  std::vector<RocPoint> curve{{0, 0, std::numeric_limits<double>::infinity()}};
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) {
      positive[order[j]] ? ++tp : ++fp;
      ++j;
    }
    curve.push_back({n_neg ? double(fp) / n_neg : 0.0, n_pos ? double(tp) / n_pos : 0.0, scores[order[i]]});
    i = j;
  }
  return curve;
}

ClassificationMetrics classification_metrics(const std::vector<float>& scores, const std::vector<int64_t>& labels,
                                             int classes, double mean_loss) {
  const size_t n = labels.size();
  FT_CHECK(classes > 0 && scores.size() == n * static_cast<size_t>(classes), "scores must be count x classes");
  ClassificationMetrics m;
  m.count = static_cast<int64_t>(n);
  m.loss = mean_loss;
  m.confusion.assign(classes, std::vector<int64_t>(classes, 0));
  int64_t correct = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* row = &scores[i * classes];
    const int predicted = static_cast<int>(std::max_element(row, row + classes) - row);
    FT_CHECK(labels[i] >= 0 && labels[i] < classes, "label " << labels[i] << " out of range");
    ++m.confusion[labels[i]][predicted];
    correct += predicted == labels[i];
  }
  m.accuracy = n ? double(correct) / n : 0.0;
  m.per_class.resize(classes);
  double auc_sum = 0;
  int auc_count = 0;
  for (int c = 0; c < classes; ++c) {
    int64_t tp = m.confusion[c][c], predicted = 0, actual = 0;
    for (int k = 0; k < classes; ++k) {
      predicted += m.confusion[k][c];
      actual += m.confusion[c][k];
    }
    ClassMetrics& pc = m.per_class[c];
    pc.support = actual;
    pc.precision = predicted ? double(tp) / predicted : 0.0;
    pc.recall = actual ? double(tp) / actual : 0.0;
    pc.f1 = pc.precision + pc.recall > 0 ? 2 * pc.precision * pc.recall / (pc.precision + pc.recall) : 0.0;
    std::vector<float> column(n);
    std::vector<bool> is_class(n);
    for (size_t i = 0; i < n; ++i) {
      column[i] = scores[i * classes + c];
      is_class[i] = labels[i] == c;
    }
    pc.auc = roc_auc(column, is_class);
    if (!std::isnan(pc.auc)) {
      auc_sum += pc.auc;
      ++auc_count;
    }
    m.macro_precision += pc.precision / classes;
    m.macro_recall += pc.recall / classes;
    m.macro_f1 += pc.f1 / classes;
  }
  if (classes == 2) {
    m.auc = m.per_class[1].auc;
  } else {
    m.auc = auc_count ? auc_sum / auc_count : std::numeric_limits<double>::quiet_NaN();
  }
  return m;
}

}  // namespace facetrain
