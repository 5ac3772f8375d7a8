// Listing of ingest sources (see sources.h): image-folder trees in the class or train/val/test layout,
// CelebA's folder with its attribute, partition and identity files, plus the limit subsample and seeded split
// fractions.
#include "tools/sources.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "datastore/random.h"
#include "datastore/store.h"

namespace facetrain {
namespace fs = std::filesystem;
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> sorted_subfolders(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir, fs::directory_options::follow_directory_symlink)) {
    const std::string name = entry.path().filename().string();
    if (!name.empty() && name[0] != '.' && entry.is_directory()) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Image files under `dir` (recursive), as paths relative to `root`, sorted.
std::vector<std::string> image_files(const fs::path& dir, const fs::path& root) {
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && has_image_extension(name)) {
      files.push_back(it->path().lexically_relative(root).generic_string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

int split_of_folder(const std::string& name) {
  const std::string n = lower(name);
  if (n == "train") return static_cast<int>(Split::kTrain);
  if (n == "val" || n == "valid" || n == "validation") return static_cast<int>(Split::kVal);
  if (n == "test") return static_cast<int>(Split::kTest);
  return kNoSplit;
}

// Splits a line on whitespace, or on commas when the file is CSV.
std::vector<std::string> fields(const std::string& line, bool csv) {
  std::vector<std::string> out;
  if (csv) {
    std::string field;
    std::istringstream in(line);
    while (std::getline(in, field, ',')) {
      while (!field.empty() && std::isspace(static_cast<unsigned char>(field.back()))) field.pop_back();
      size_t start = 0;
      while (start < field.size() && std::isspace(static_cast<unsigned char>(field[start]))) ++start;
      out.push_back(field.substr(start));
    }
  } else {
    std::istringstream in(line);
    std::string field;
    while (in >> field) out.push_back(field);
  }
  return out;
}

// The first of `names` that exists in dir (".txt" then ".csv" variants), or "" when none does.
std::string find_file(const fs::path& dir, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    if (fs::is_regular_file(dir / name)) return (dir / name).string();
  }
  return "";
}

bool is_csv(const std::string& path) { return lower(fs::path(path).extension().string()) == ".csv"; }

// "file value" lines (partition, identity); CSV files start with a header line.
std::unordered_map<std::string, int64_t> read_file_values(const std::string& path) {
  std::ifstream in(path);
  FT_USER_CHECK(in, "cannot read " << path);
  const bool csv = is_csv(path);
  std::unordered_map<std::string, int64_t> values;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (csv && line_no == 1) continue;
    const auto f = fields(line, csv);
    if (f.empty()) continue;
    FT_USER_CHECK(f.size() == 2, path << ":" << line_no << ": expected \"<file> <number>\", got \"" << line << "\"");
    try {
      size_t used = 0;
      values[f[0]] = std::stoll(f[1], &used);
      FT_USER_CHECK(used == f[1].size(), path << ":" << line_no << ": '" << f[1] << "' is not an integer");
    } catch (const std::logic_error&) {
      throw UserError(path + ":" + std::to_string(line_no) + ": '" + f[1] + "' is not an integer");
    }
  }
  return values;
}

}  // namespace

bool has_image_extension(const std::string& path) {
  static const std::set<std::string> kExtensions = {".jpg", ".jpeg", ".png", ".bmp",  ".ppm",
                                                    ".pgm", ".pbm",  ".tif", ".tiff", ".webp"};
  return kExtensions.count(lower(fs::path(path).extension().string())) > 0;
}

SourceListing list_image_folders(const std::string& dir, const std::string& what) {
  const fs::path root(dir);
  FT_USER_CHECK(fs::is_directory(root), what << " " << dir << ": folder does not exist");
  const std::vector<std::string> top = sorted_subfolders(root);
  FT_USER_CHECK(!top.empty(), what << " " << dir << ": no class subfolders (expected " << dir << "/<class>/*.jpg or "
                                   << dir << "/train/<class>/*.jpg)");
  bool split_layout = true;
  bool has_train = false;
  for (const auto& name : top) {
    const int split = split_of_folder(name);
    split_layout = split_layout && split != kNoSplit;
    has_train = has_train || split == static_cast<int>(Split::kTrain);
  }
  split_layout = split_layout && has_train;

  SourceListing listing;
  listing.label_source = "folder";
  // (split folder or "", class) pairs in listing order.
  std::vector<std::pair<std::string, int>> parts;  // split folder name, split code
  if (split_layout) {
    listing.partition = "train/val/test folders";
    std::set<std::string> classes;
    for (const auto& name : top) {
      for (const auto& c : sorted_subfolders(root / name)) classes.insert(c);
      parts.emplace_back(name, split_of_folder(name));
    }
    listing.class_names.assign(classes.begin(), classes.end());
    FT_USER_CHECK(!classes.empty(), what << " " << dir << ": no class subfolders under the split folders (expected "
                                         << dir << "/train/<class>/*.jpg)");
    std::string train_folder;
    for (const auto& name : top) {
      if (split_of_folder(name) == static_cast<int>(Split::kTrain)) train_folder = name;
    }
    for (const auto& c : listing.class_names) {
      FT_USER_CHECK(fs::is_directory(root / train_folder / c), "class '" << c << "' has no folder "
                                                                         << (root / train_folder / c).string()
                                                                         << " (every class needs training images)");
    }
  } else {
    listing.class_names = top;
    parts.emplace_back("", kNoSplit);
  }
  // Sample order: class, then split folder (train, val, test order of `top`), then relative path.
  std::stable_sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  for (size_t label = 0; label < listing.class_names.size(); ++label) {
    const std::string& cls = listing.class_names[label];
    for (const auto& [folder, split] : parts) {
      const fs::path class_dir = folder.empty() ? root / cls : root / folder / cls;
      if (!fs::is_directory(class_dir)) continue;  // a class may be absent from val or test
      const std::vector<std::string> files = image_files(class_dir, root);
      FT_USER_CHECK(!files.empty(),
                    "empty class folder " << class_dir.string() << " (no .jpg/.jpeg/.png/.bmp/.tif/.webp images)");
      for (const auto& rel : files) {
        SourceSample s;
        s.path = (root / rel).string();
        s.name = rel;
        s.label = static_cast<int64_t>(label);
        s.split = split;
        listing.samples.push_back(std::move(s));
      }
    }
  }
  return listing;
}

SourceListing list_celeba(const std::string& dir, const std::string& label_attribute, const std::string& dir_what,
                          const std::string& attribute_what) {
  const fs::path root(dir);
  FT_USER_CHECK(fs::is_directory(root), dir_what << " " << dir << ": folder does not exist");
  fs::path images = root / "img_align_celeba";
  if (fs::is_directory(images / "img_align_celeba")) images /= "img_align_celeba";  // Kaggle's zip nesting
  FT_USER_CHECK(fs::is_directory(images), dir_what << " " << dir
                                                   << ": no img_align_celeba/ folder (CelebA layout: "
                                                      "img_align_celeba/*.jpg and list_attr_celeba.txt)");
  const std::string attr_path = find_file(root, {"list_attr_celeba.txt", "list_attr_celeba.csv"});
  FT_USER_CHECK(!attr_path.empty(), (root / "list_attr_celeba.txt").string() << " does not exist");

  // 1. attributes: "count\nnames...\nfile v1 ... v40" (txt) or "image_id,names...\nfile,v1,...,v40" (csv)
  SourceListing listing;
  std::ifstream in(attr_path);
  FT_USER_CHECK(in, "cannot read " << attr_path);
  const bool csv = is_csv(attr_path);
  std::string line;
  int64_t line_no = 0;
  int64_t declared = -1;
  if (!csv) {
    FT_USER_CHECK(std::getline(in, line), attr_path << ": empty file (expected the image count on line 1)");
    ++line_no;
    try {
      declared = std::stoll(line);
    } catch (const std::logic_error&) {
      throw UserError(attr_path + ":1: expected the image count, got \"" + line + "\"");
    }
  }
  FT_USER_CHECK(std::getline(in, line), attr_path << ": no attribute-name line");
  ++line_no;
  listing.attribute_names = fields(line, csv);
  if (csv && !listing.attribute_names.empty()) listing.attribute_names.erase(listing.attribute_names.begin());
  const size_t n_attr = listing.attribute_names.size();
  FT_USER_CHECK(n_attr > 0, attr_path << ":" << line_no << ": no attribute names");

  size_t label_column = n_attr;
  for (size_t k = 0; k < n_attr; ++k) {
    if (listing.attribute_names[k] == label_attribute) label_column = k;
  }
  for (size_t k = 0; k < n_attr && label_column == n_attr; ++k) {
    if (lower(listing.attribute_names[k]) == lower(label_attribute)) label_column = k;
  }
  if (label_column == n_attr) {
    std::string valid;
    for (size_t k = 0; k < n_attr; ++k) valid += (k ? " " : "") + listing.attribute_names[k];
    throw UserError(attribute_what + " '" + label_attribute + "' is not an attribute of " + attr_path +
                    "; valid: " + valid);
  }
  const std::string& attribute = listing.attribute_names[label_column];
  listing.class_names = {"not_" + attribute, attribute};
  listing.label_source = "celeba:" + attribute;

  while (std::getline(in, line)) {
    ++line_no;
    const auto f = fields(line, csv);
    if (f.empty()) continue;
    FT_USER_CHECK(f.size() == n_attr + 1, attr_path << ":" << line_no << ": expected a file name and " << n_attr
                                                    << " values, got " << f.size() << " fields");
    SourceSample s;
    s.name = f[0];
    s.path = (images / f[0]).string();
    s.attributes.resize(n_attr);
    for (size_t k = 0; k < n_attr; ++k) {
      const std::string& v = f[k + 1];
      FT_USER_CHECK(v == "1" || v == "-1" || v == "0", attr_path << ":" << line_no << ": value '" << v << "' of "
                                                                 << listing.attribute_names[k] << " is not 1 or -1");
      s.attributes[k] = v == "1" ? 1 : -1;  // some exports write 0 for -1
    }
    s.label = s.attributes[label_column] > 0 ? 1 : 0;
    listing.samples.push_back(std::move(s));
  }
  FT_USER_CHECK(!listing.samples.empty(), attr_path << ": no image lines");
  FT_USER_CHECK(
      declared < 0 || declared == static_cast<int64_t>(listing.samples.size()),
      attr_path << ": line 1 declares " << declared << " images but " << listing.samples.size() << " are listed");

  // 2. partition (optional: seeded fractions otherwise)
  const std::string partition_path = find_file(root, {"list_eval_partition.txt", "list_eval_partition.csv"});
  if (!partition_path.empty()) {
    const auto partition = read_file_values(partition_path);
    for (auto& s : listing.samples) {
      const auto it = partition.find(s.name);
      FT_USER_CHECK(it != partition.end(), partition_path << " has no entry for " << s.name);
      FT_USER_CHECK(it->second >= 0 && it->second <= 2,
                    partition_path << ": partition " << it->second << " of " << s.name << " is not 0, 1 or 2");
      s.split = static_cast<int>(it->second);
    }
    listing.partition = fs::path(partition_path).filename().string();
  }

  // 3. identities (optional)
  const std::string identity_path = find_file(root, {"identity_CelebA.txt", "identity_CelebA.csv"});
  if (!identity_path.empty()) {
    const auto identity = read_file_values(identity_path);
    for (auto& s : listing.samples) {
      const auto it = identity.find(s.name);
      if (it != identity.end()) s.identity = static_cast<int32_t>(it->second);
    }
    listing.has_identities = true;
  }
  return listing;
}

void apply_limit(SourceListing* listing, int64_t limit) {
  const int64_t n = static_cast<int64_t>(listing->samples.size());
  if (limit <= 0 || limit >= n) return;
  std::vector<SourceSample> kept;
  kept.reserve(static_cast<size_t>(limit));
  for (int64_t k = 0; k < limit; ++k) {
    // floor(k * n / limit) without overflow for any realistic n
    const int64_t i = static_cast<int64_t>((static_cast<__int128>(k) * n) / limit);
    kept.push_back(std::move(listing->samples[static_cast<size_t>(i)]));
  }
  listing->samples = std::move(kept);
}

void select_classes(SourceListing* listing, const std::string& classes, const std::string& what) {
  if (classes.empty()) return;
  std::vector<int64_t> chosen;  // old label of each new class
  std::stringstream list(classes);
  std::string item;
  while (std::getline(list, item, ',')) {
    int64_t label = -1;
    for (size_t c = 0; c < listing->class_names.size(); ++c) {
      if (listing->class_names[c] == item) label = static_cast<int64_t>(c);
    }
    if (label < 0 && !item.empty() && item.find_first_not_of("0123456789") == std::string::npos) {
      label = std::stoll(item);
      if (label >= static_cast<int64_t>(listing->class_names.size())) label = -1;
    }
    std::string known;
    for (const auto& name : listing->class_names) known += (known.empty() ? "" : ", ") + name;
    FT_USER_CHECK(label >= 0,
                  what << ": '" << item << "' is neither a class name nor an index of the source (" << known << ")");
    FT_USER_CHECK(std::find(chosen.begin(), chosen.end(), label) == chosen.end(),
                  what << ": '" << item << "' is named twice");
    chosen.push_back(label);
  }
  std::map<int64_t, int64_t> new_label;
  std::vector<std::string> names;
  for (size_t k = 0; k < chosen.size(); ++k) {
    new_label[chosen[k]] = static_cast<int64_t>(k);
    names.push_back(listing->class_names[static_cast<size_t>(chosen[k])]);
  }
  std::vector<SourceSample> kept;
  for (auto& s : listing->samples) {
    auto it = new_label.find(s.label);
    if (it == new_label.end()) continue;
    s.label = it->second;
    kept.push_back(std::move(s));
  }
  listing->samples = std::move(kept);
  listing->class_names = std::move(names);
}

void apply_train_limit(SourceListing* listing, int64_t limit) {
  std::vector<size_t> train;
  for (size_t i = 0; i < listing->samples.size(); ++i) {
    if (listing->samples[i].split == static_cast<int>(Split::kTrain)) train.push_back(i);
  }
  const int64_t n = static_cast<int64_t>(train.size());
  if (limit <= 0 || limit >= n) return;
  std::vector<bool> drop(listing->samples.size(), false);
  for (size_t i : train) drop[i] = true;
  for (int64_t k = 0; k < limit; ++k) drop[train[static_cast<size_t>((static_cast<__int128>(k) * n) / limit)]] = false;
  std::vector<SourceSample> kept;
  for (size_t i = 0; i < listing->samples.size(); ++i) {
    if (!drop[i]) kept.push_back(std::move(listing->samples[i]));
  }
  listing->samples = std::move(kept);
}

void assign_fraction_splits(SourceListing* listing, double val_fraction, double test_fraction, uint64_t seed) {
  FT_CHECK(val_fraction >= 0 && test_fraction >= 0 && val_fraction + test_fraction < 1,
           "fractions val " << val_fraction << " and test " << test_fraction << " leave no training images");
  std::map<int64_t, std::vector<size_t>> by_class;
  for (size_t i = 0; i < listing->samples.size(); ++i) {
    if (listing->samples[i].split == kNoSplit) by_class[listing->samples[i].label].push_back(i);
  }
  for (auto& [label, members] : by_class) {
    // Fisher-Yates with SplitMix64 (std::shuffle's output differs between standard libraries).
    SplitMix64 rng(SplitMix64(seed ^ 0x5EEDF00DULL).next() ^ (static_cast<uint64_t>(label) * 0x9E3779B97F4A7C15ULL));
    for (size_t i = members.size(); i > 1; --i) std::swap(members[i - 1], members[rng.below(i)]);
    const double n = static_cast<double>(members.size());
    const size_t n_test = static_cast<size_t>(std::llround(test_fraction * n));
    const size_t n_val = std::min(members.size() - n_test, static_cast<size_t>(std::llround(val_fraction * n)));
    for (size_t k = 0; k < members.size(); ++k) {
      const Split split = k < n_test ? Split::kTest : (k < n_test + n_val ? Split::kVal : Split::kTrain);
      listing->samples[members[k]].split = static_cast<int>(split);
    }
  }
}

}  // namespace facetrain
