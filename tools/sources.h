// What an ingest source holds before any pixel is decoded: the samples (file, label, partition, CelebA
// attributes and identity) of an image-folder tree or a CelebA folder, in a deterministic order, plus the
// seeded split assignment and the limit subsample shared by every source.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace facetrain {

constexpr int kNoSplit = -1;  // SourceSample::split before fractions assign one

struct SourceSample {
  std::string path;  // file to decode (empty for in-memory sources such as IDX)
  std::string name;  // stored file name: path relative to the input folder (IDX: "train/000123")
  int64_t label = 0;
  int split = kNoSplit;            // a Split value, or kNoSplit
  std::vector<int8_t> attributes;  // CelebA: +1/-1 per attribute name
  int32_t identity = -1;
  int64_t source_index = -1;  // in-memory sources (IDX): the image's index in the source, else -1
};

struct SourceListing {
  std::vector<std::string> class_names;
  std::string label_source;                  // "folder", "celeba:Smiling", "idx"
  std::vector<std::string> attribute_names;  // CelebA's 40, else empty
  bool has_identities = false;
  std::string partition;  // where the splits come from, e.g. "list_eval_partition.txt";
                          // empty: the source has none (seeded fractions assign them)
  std::vector<SourceSample> samples;
};

// File name extensions (lowercase) taken as images in folder sources, as torchvision's ImageFolder does.
bool has_image_extension(const std::string& path);

// Image folders, in one of two layouts (decided by the top-level folder names):
//   DIR/<class>/**/*.jpg                       classes = sorted subfolders; seeded fractions make the splits
//   DIR/{train,val|valid|validation,test}/<class>/**/*.jpg
//                                              the top folders are the partition (train required; val and
//                                              test optional); classes = sorted union of class folders
// Order: class, then relative path (byte order), as ImageFolder/flow_from_directory list them.
// Throws UserError naming the folder when DIR is missing, has no class folders, a class folder holds no
// image, or (split layout) a class has no train folder; `what` (e.g. the flag that gave DIR) starts the
// messages about DIR itself.
SourceListing list_image_folders(const std::string& dir, const std::string& what);

// CelebA: DIR/img_align_celeba/*.jpg (also the Kaggle nesting img_align_celeba/img_align_celeba/), with
// list_attr_celeba.txt (required: a count line, a line of 40 names, then "file v1..v40" with 1/-1; the
// Kaggle .csv variant is accepted too), list_eval_partition.txt ("file 0|1|2"; absent: seeded fractions)
// and identity_CelebA.txt ("file id"; absent: identities -1). Label = `label_attribute` (+1 -> class 1 named
// after it, -1 -> class 0 "not_<attribute>"). Order: the attribute file's order. Throws UserError naming the
// file (and line) for a missing or malformed file and listing the valid names for an unknown attribute.
// `dir_what` and `attribute_what` name DIR and `label_attribute` in those messages.
SourceListing list_celeba(const std::string& dir, const std::string& label_attribute, const std::string& dir_what,
                          const std::string& attribute_what);

// Keeps `limit` samples evenly spaced over the listing's order (sample floor(k * n / limit)), so a quick
// trial still covers every class and every source split. No-op when limit <= 0 or >= size.
void apply_limit(SourceListing* listing, int64_t limit);

// Keeps the classes named in `classes` (class names or indices, comma-separated), in that order: they
// become classes 0..k-1. Empty: all. Throws UserError starting with `what` for an unknown or repeated class.
void select_classes(SourceListing* listing, const std::string& classes, const std::string& what);

// Keeps `limit` of the train split's samples (evenly spaced over its order, as apply_limit), val and test
// whole: data-efficiency and fine-tuning experiments on few labelled images. No-op when limit <= 0.
void apply_train_limit(SourceListing* listing, int64_t limit);

// Gives every sample with split == kNoSplit a split: per class (stratified), a permutation seeded by
// (seed, class) puts round(test_fraction * n_c) samples in test, round(val_fraction * n_c) in val, the rest
// in train. Deterministic for a given listing and seed. Both fractions in [0, 1) with a sum below 1 (checked).
void assign_fraction_splits(SourceListing* listing, double val_fraction, double test_fraction, uint64_t seed);

}  // namespace facetrain
