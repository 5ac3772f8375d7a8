// Classifier evaluation shared by `eval metrics` and `eval mine`: scoring store images with a loaded ViT on
// every rank (each image exactly once, gathered in selection order), and the metrics' file forms —
// metrics.json (with ROC curves), predictions.csv and the printed table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/loaded_model.h"
#include "eval/metrics.h"
#include "runtime/process_context.h"

namespace facetrain {

struct ClassifierScores {
  std::vector<int64_t> indices;      // store indices, in selection order
  std::vector<float> probabilities;  // indices.size() x classes, row-major softmax probabilities
  std::vector<int64_t> labels;       // the store's labels of those images
  int classes = 0;
  double mean_loss = 0;  // mean cross-entropy of the logits against the labels

  float probability(size_t row, int cls) const { return probabilities[row * classes + cls]; }
};

// (collective) every rank, with the same `indices`: ranks score contiguous non-padded slices
// (score_store_images) and every rank receives all rows in the order of `indices`. `model` is any classifier.
// With `average_flips` each image's probabilities are the mean of the image's and its mirror image's
// (test-time augmentation for models trained with horizontal flips); the loss is that mean's.
ClassifierScores score_with_classifier(const LoadedModel& model, const std::string& store_path,
                                       const std::vector<int64_t>& indices, int64_t batch_size, ProcessContext& ctx,
                                       bool average_flips = false);

// metrics.json: counts, loss, accuracy, macro and per-class precision/recall/F1/AUC, the confusion matrix
// ([true][predicted]) and ROC curves (binary: class 1 only; multiclass: one-vs-rest per class). NaN (an
// undefined AUC) is written as null. `context` (checkpoint, store, split) is copied in as given.
nlohmann::json metrics_json(const ClassificationMetrics& metrics, const ClassifierScores& scores,
                            const std::vector<std::string>& class_names, const nlohmann::json& context);

// predictions.csv: index,file_name,true_label,predicted_label,score_<class>... one row per scored image.
std::string predictions_csv(const ClassifierScores& scores, const std::vector<std::string>& filenames,
                            const std::vector<std::string>& class_names);

// The printed summary: headline numbers, a per-class table and the confusion matrix (no final newline).
std::string metrics_table(const ClassificationMetrics& metrics, const std::vector<std::string>& class_names);

}  // namespace facetrain
