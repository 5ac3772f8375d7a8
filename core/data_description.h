// What a model needs to know about its data, without the store that holds it: the image shape, the classes
// and their train statistics (StoreInfo, filled by datastore/store.h's reader), and how pixels are scaled
// into the model (Normalization). Header-only, so models and eval describe their input without HDF5 or OpenCV.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace facetrain {

struct StoreInfo {
  int64_t count = 0;
  int height = 0, width = 0, channels = 0;
  std::vector<std::string> class_names;      // label k is class_names[k]
  std::string label_source;                  // "folder", "idx", "celeba:Smiling", "synth:smiling", ...
  std::vector<float> mean, std;              // per channel, train split, pixel values scaled to [0,1]
  std::vector<int64_t> class_counts;         // train split, per class
  std::vector<float> class_weights;          // 'balanced': n_train / (n_classes * count)
  std::vector<int64_t> split_counts;         // [train, val, test]
  std::vector<std::string> attribute_names;  // CelebA's 40 attributes when present, else empty
  bool has_identities = false;
};

enum class Normalization {
  kMeanStd,      // "store": (x/255 - mean[c]) / std[c] with the store's train statistics (classifiers)
  kMinusOneOne,  // "minus_one_one": x/127.5 - 1, i.e. mean = std = 0.5 (generative models with tanh
                 // outputs; Hugging Face and timm ViTs)
  kUnit,         // "unit": x/255
  kImageNet,     // "imagenet": ImageNet's mean/std (torchvision's pretrained CNNs); one channel: their mean
};

// "store" | "minus_one_one" | "unit" | "imagenet" (the names above); UserError naming `field` otherwise.
inline Normalization parse_normalization(const std::string& value, const std::string& field) {
  if (value == "store") return Normalization::kMeanStd;
  if (value == "minus_one_one") return Normalization::kMinusOneOne;
  if (value == "unit") return Normalization::kUnit;
  if (value == "imagenet") return Normalization::kImageNet;
  throw UserError(field + ": '" + value + "' is not store, minus_one_one, unit or imagenet");
}

inline const char* normalization_name(Normalization normalization) {
  switch (normalization) {
    case Normalization::kMeanStd: return "store";
    case Normalization::kMinusOneOne: return "minus_one_one";
    case Normalization::kUnit: return "unit";
    case Normalization::kImageNet: return "imagenet";
  }
  return "?";
}

}  // namespace facetrain
