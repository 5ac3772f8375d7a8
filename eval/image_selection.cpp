// Which store images an eval command works on (see image_selection.h).
#include "eval/image_selection.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace facetrain {
namespace {

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

bool parse_int(const std::string& text, int64_t* value) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used != text.size()) return false;
    *value = v;
    return true;
  } catch (const std::logic_error&) {
    return false;
  }
}

// One CSV record's fields (RFC 4180 quoting; a record does not span lines here: file names hold no newlines).
std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(field);
      field.clear();
    } else if (c != '\r') {
      field += c;
    }
  }
  fields.push_back(field);
  return fields;
}

void check_in_store(int64_t index, const StoreReader& store, const std::string& where) {
  FT_USER_CHECK(index >= 0 && index < store.info().count,
                where << ": index " << index << " is outside the store " << store.path() << " (" << store.info().count
                      << " images, indices 0.." << store.info().count - 1 << ")");
}

}  // namespace

std::vector<int64_t> select_store_indices(const StoreReader& store, const std::string& split, const std::string& what) {
  std::vector<int64_t> indices;
  if (split == "all") {
    indices.resize(static_cast<size_t>(store.info().count));
    for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int64_t>(i);
  } else {
    indices = store.split_indices(parse_split(split, what));
  }
  FT_USER_CHECK(!indices.empty(), what << " " << split << ": the store " << store.path() << " has no "
                                       << (split == "all" ? std::string("images") : split + " images")
                                       << " (nothing to evaluate)");
  return indices;
}

std::vector<int64_t> read_index_column(const std::string& csv_path, const std::string& what) {
  std::ifstream in(csv_path);
  FT_USER_CHECK(in.good(), what << ": cannot read " << csv_path);
  std::string line;
  FT_USER_CHECK(std::getline(in, line), what << ": " << csv_path << " is empty (no header line)");
  const std::vector<std::string> header = split_csv_line(line);
  const auto it = std::find_if(header.begin(), header.end(), [](const std::string& h) { return trim(h) == "index"; });
  FT_USER_CHECK(it != header.end(), what << ": " << csv_path << " has no \"index\" column in its header line");
  const size_t column = static_cast<size_t>(it - header.begin());
  std::vector<int64_t> indices;
  int64_t line_number = 1;
  while (std::getline(in, line)) {
    ++line_number;
    if (trim(line).empty()) continue;
    const std::vector<std::string> fields = split_csv_line(line);
    int64_t value = 0;
    FT_USER_CHECK(column < fields.size() && parse_int(trim(fields[column]), &value),
                  what << ": " << csv_path << " line " << line_number << ": the index field is not an integer");
    indices.push_back(value);
  }
  return indices;
}

std::vector<int64_t> select_images(const StoreReader& store, const ImageSelection& selection) {
  const ImageSelection& s = selection;
  FT_CHECK(s.indices.empty() || s.mined.empty(), "both indices and mined");
  FT_CHECK(!(s.count_given && !s.indices.empty()) && s.count > 0, "count " << s.count << " with indices");
  std::vector<int64_t> indices;
  if (!s.indices.empty()) {
    std::stringstream in(s.indices);
    std::string item;
    while (std::getline(in, item, ',')) {
      int64_t value = 0;
      FT_USER_CHECK(parse_int(trim(item), &value), s.indices_name << ": '" << trim(item) << "' is not an integer "
                                                                  << "(expected e.g. " << s.indices_name << " 0,5,9)");
      check_in_store(value, store, s.indices_name);
      indices.push_back(value);
    }
  } else if (!s.mined.empty()) {
    indices = read_index_column(s.mined, s.mined_name);
    for (int64_t i : indices) check_in_store(i, store, s.mined_name + " " + s.mined);
    if (s.count_given && static_cast<int64_t>(indices.size()) > s.count) indices.resize(s.count);
    FT_USER_CHECK(!indices.empty(),
                  s.mined_name << ": " << s.mined << " lists no images (nothing passed the threshold?)");
  } else {
    indices = select_store_indices(store, s.split, s.split_name);
    if (static_cast<int64_t>(indices.size()) > s.count) indices.resize(s.count);
  }
  FT_CHECK(!indices.empty(), "empty selection");
  return indices;
}

int display_scale(int64_t requested, int height, int width) {
  FT_CHECK(requested >= 0 && requested <= kMaxDisplayScale, "display scale " << requested);
  if (requested > 0) return static_cast<int>(requested);
  const int side = std::max(height, width);
  return std::max(1, (128 + side - 1) / side);
}

}  // namespace facetrain
