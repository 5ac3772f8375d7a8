// Classifier scoring and the metrics' file forms (see classification.h).
#include "eval/classification.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "eval/files.h"
#include "eval/scoring.h"

namespace facetrain {
namespace {

// NaN and infinities are not JSON numbers: null.
nlohmann::json number(double value) { return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(); }

int argmax_row(const ClassifierScores& s, size_t row) {
  const float* begin = &s.probabilities[row * s.classes];
  return static_cast<int>(std::max_element(begin, begin + s.classes) - begin);
}

nlohmann::json roc_json(const ClassifierScores& s, int cls, double auc, const std::string& name) {
  std::vector<float> column(s.labels.size());
  std::vector<bool> positive(s.labels.size());
  for (size_t i = 0; i < s.labels.size(); ++i) {
    column[i] = s.probability(i, cls);
    positive[i] = s.labels[i] == cls;
  }
  nlohmann::json points = nlohmann::json::array();
  for (const RocPoint& p : roc_curve(column, positive)) points.push_back({p.fpr, p.tpr, number(p.threshold)});
  return {{"class", name}, {"class_index", cls}, {"auc", number(auc)}, {"points", points}};
}

}  // namespace

ClassifierScores score_with_classifier(const LoadedModel& model, const std::string& store_path,
                                       const std::vector<int64_t>& indices, int64_t batch_size, ProcessContext& ctx,
                                       bool average_flips) {
  ImageClassifier& classifier = model.need<ImageClassifier>("a classifier");
  FT_CHECK(batch_size > 0, "batch_size " << batch_size);
  const int64_t classes = classifier.num_classes();
  auto classify = [&](const torch::Tensor& images) { return classifier.logits(images); };
  // (collective) every rank. With flips the rows are log-probabilities: softmax and cross-entropy of a
  // log-probability row give the row back, so the code below serves both.
  GatheredScores gathered = score_store_images(
      store_path, indices, model.normalization, batch_size, classes, ctx, [&](const torch::Tensor& images) {
        if (!average_flips) return classify(images);
        const torch::Tensor p =
            (torch::softmax(classify(images), 1) + torch::softmax(classify(images.flip({3})), 1)) / 2;
        return p.log();
      });
  ClassifierScores s;
  s.indices = indices;
  s.classes = static_cast<int>(classes);
  s.mean_loss = torch::nn::functional::cross_entropy(gathered.outputs, gathered.labels).item<double>();
  torch::Tensor probs = torch::softmax(gathered.outputs, 1).contiguous();
  s.probabilities.assign(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
  torch::Tensor labels = gathered.labels.contiguous();
  s.labels.assign(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + labels.numel());
  return s;
}

nlohmann::json metrics_json(const ClassificationMetrics& m, const ClassifierScores& s,
                            const std::vector<std::string>& class_names, const nlohmann::json& context) {
  nlohmann::json j = context;
  j["count"] = m.count;
  j["classes"] = class_names;
  j["loss"] = number(m.loss);
  j["accuracy"] = number(m.accuracy);
  j["macro"] = {
      {"precision", number(m.macro_precision)}, {"recall", number(m.macro_recall)}, {"f1", number(m.macro_f1)}};
  j["auc"] = number(m.auc);
  j["auc_kind"] = class_names.size() == 2 ? "binary (positive class 1)" : "macro one-vs-rest";
  nlohmann::json per_class = nlohmann::json::array();
  for (size_t c = 0; c < m.per_class.size(); ++c) {
    const ClassMetrics& pc = m.per_class[c];
    per_class.push_back({{"class", class_names[c]},
                         {"support", pc.support},
                         {"precision", number(pc.precision)},
                         {"recall", number(pc.recall)},
                         {"f1", number(pc.f1)},
                         {"auc", number(pc.auc)}});
  }
  j["per_class"] = per_class;
  j["confusion"] = m.confusion;
  nlohmann::json curves = nlohmann::json::array();
  if (class_names.size() == 2) {
    curves.push_back(roc_json(s, 1, m.per_class[1].auc, class_names[1]));
  } else {
    for (size_t c = 0; c < class_names.size(); ++c) {
      curves.push_back(roc_json(s, static_cast<int>(c), m.per_class[c].auc, class_names[c]));
    }
  }
  j["roc"] = {{"kind", class_names.size() == 2 ? "binary" : "one-vs-rest"},
              {"point_fields", {"fpr", "tpr", "threshold"}},
              {"curves", curves}};
  return j;
}

std::string predictions_csv(const ClassifierScores& s, const std::vector<std::string>& filenames,
                            const std::vector<std::string>& class_names) {
  std::ostringstream out;
  out << "index,file_name,true_label,predicted_label";
  for (const auto& name : class_names) out << "," << csv_field("score_" + name);
  out << "\n";
  char number_text[32];
  for (size_t i = 0; i < s.indices.size(); ++i) {
    const int64_t index = s.indices[i];
    out << index << "," << csv_field(filenames.at(static_cast<size_t>(index))) << "," << s.labels[i] << ","
        << argmax_row(s, i);
    for (int c = 0; c < s.classes; ++c) {
      std::snprintf(number_text, sizeof(number_text), "%.9g", s.probability(i, c));  // round-trips a float
      out << "," << number_text;
    }
    out << "\n";
  }
  return out.str();
}

std::string metrics_table(const ClassificationMetrics& m, const std::vector<std::string>& class_names) {
  std::ostringstream out;
  char line[512];
  std::snprintf(
      line, sizeof(line),
      "%lld images: loss %.4f, accuracy %.4f, macro precision %.4f, recall %.4f, F1 %.4f, ROC AUC %.4f (%s)\n",
      static_cast<long long>(m.count), m.loss, m.accuracy, m.macro_precision, m.macro_recall, m.macro_f1, m.auc,
      class_names.size() == 2 ? "binary" : "macro one-vs-rest");
  out << line;
  size_t width = 5;
  for (const auto& name : class_names) width = std::max(width, std::min<size_t>(name.size(), 24));
  const int w = static_cast<int>(width);
  std::snprintf(line, sizeof(line), "  %-*s %8s %9s %8s %8s %8s\n", w, "class", "support", "precision", "recall", "f1",
                "auc");
  out << line;
  for (size_t c = 0; c < class_names.size(); ++c) {
    const ClassMetrics& pc = m.per_class[c];
    std::snprintf(line, sizeof(line), "  %-*.*s %8lld %9.4f %8.4f %8.4f %8.4f\n", w, w, class_names[c].c_str(),
                  static_cast<long long>(pc.support), pc.precision, pc.recall, pc.f1, pc.auc);
    out << line;
  }
  out << "confusion matrix (rows: true class, columns: predicted class):\n";
  for (size_t r = 0; r < m.confusion.size(); ++r) {
    std::snprintf(line, sizeof(line), "  %-*.*s", w, w, class_names[r].c_str());
    out << line;
    for (int64_t v : m.confusion[r]) {
      std::snprintf(line, sizeof(line), " %6lld", static_cast<long long>(v));
      out << line;
    }
    out << "\n";
  }
  std::string text = out.str();
  text.pop_back();  // log() ends the line
  return text;
}

}  // namespace facetrain
