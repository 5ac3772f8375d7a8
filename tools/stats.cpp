// `facetrain stats` (see stats.h): per-class and per-split counts from the store's label and split arrays,
// its train statistics and class weights, printed as a table or JSON.
#include "tools/stats.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"

namespace facetrain {

StoreStats compute_store_stats(const std::string& path) {
  StoreReader reader(path);
  StoreStats s;
  s.path = path;
  s.info = reader.info();
  const size_t k = s.info.class_names.size();
  s.counts.assign(k, std::vector<int64_t>(3, 0));
  s.class_totals.assign(k, 0);
  const std::vector<int64_t> labels = reader.labels();
  const std::vector<uint8_t> splits = reader.splits();
  FT_CHECK(labels.size() == splits.size(), path << ": " << labels.size() << " labels, " << splits.size() << " splits");
  for (size_t i = 0; i < labels.size(); ++i) {
    FT_CHECK(labels[i] >= 0 && static_cast<size_t>(labels[i]) < k && splits[i] <= 2,
             path << ": image " << i << " has label " << labels[i] << ", split " << int(splits[i]));
    ++s.counts[static_cast<size_t>(labels[i])][splits[i]];
    ++s.class_totals[static_cast<size_t>(labels[i])];
  }
  for (float sd : s.info.std) s.variance.push_back(static_cast<double>(sd) * sd);
  if (!s.info.attribute_names.empty()) {
    const std::vector<int8_t> attributes = reader.attributes();
    const size_t m = s.info.attribute_names.size();
    std::vector<int64_t> positive(m, 0);
    for (size_t i = 0; i < attributes.size(); ++i) positive[i % m] += attributes[i] > 0;
    for (size_t a = 0; a < m; ++a) {
      s.attribute_positive.push_back(labels.empty() ? 0.0 : static_cast<double>(positive[a]) / labels.size());
    }
  }
  if (s.info.has_identities) {
    const std::vector<int32_t> ids = reader.identities();
    std::set<int32_t> distinct(ids.begin(), ids.end());
    distinct.erase(-1);
    s.identities = static_cast<int64_t>(distinct.size());
  }
  return s;
}

namespace {

double percent(int64_t part, int64_t whole) { return whole > 0 ? 100.0 * part / whole : 0.0; }

}  // namespace

std::string format_stats_table(const StoreStats& s) {
  const StoreInfo& info = s.info;
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof(line), "%s: %lld images, %dx%dx%d (HxWxC, uint8), labels from %s\n", s.path.c_str(),
                static_cast<long long>(info.count), info.height, info.width, info.channels, info.label_source.c_str());
  out << line;
  int width = 5;
  for (const auto& c : info.class_names) width = std::max(width, static_cast<int>(c.size()));
  std::snprintf(line, sizeof(line), "\n  %-*s %16s %16s %16s %16s %8s\n", width, "class", "train", "val", "test",
                "total", "weight");
  out << line;
  const int64_t total = info.count;
  std::vector<int64_t> split_totals(3, 0);
  for (const auto& c : s.counts) {
    for (int j = 0; j < 3; ++j) split_totals[j] += c[j];
  }
  auto cell = [](int64_t n, int64_t whole) {
    char buf[48];
    std::snprintf(buf, sizeof(buf), "%lld (%5.1f%%)", static_cast<long long>(n), percent(n, whole));
    return std::string(buf);
  };
  for (size_t k = 0; k < info.class_names.size(); ++k) {
    const float weight = k < info.class_weights.size() ? info.class_weights[k] : 0.f;
    std::snprintf(line, sizeof(line), "  %-*s %16s %16s %16s %16s %8.4f\n", width, info.class_names[k].c_str(),
                  cell(s.counts[k][0], split_totals[0]).c_str(), cell(s.counts[k][1], split_totals[1]).c_str(),
                  cell(s.counts[k][2], split_totals[2]).c_str(), cell(s.class_totals[k], total).c_str(), weight);
    out << line;
  }
  std::snprintf(line, sizeof(line), "  %-*s %16s %16s %16s %16s\n", width, "total",
                cell(split_totals[0], total).c_str(), cell(split_totals[1], total).c_str(),
                cell(split_totals[2], total).c_str(), cell(total, total).c_str());
  out << line;
  if (!s.class_totals.empty()) {
    const auto [lo, hi] = std::minmax_element(s.class_totals.begin(), s.class_totals.end());
    std::snprintf(line, sizeof(line),
                  "  largest - smallest class: %lld images (ratio %.3f); weights are 'balanced' on train: "
                  "n_train / (n_classes * count)\n",
                  static_cast<long long>(*hi - *lo), *lo > 0 ? static_cast<double>(*hi) / *lo : 0.0);
    out << line;
  }
  out << "\n  train statistics of pixel/255, per channel" << (info.channels == 3 ? " (R, G, B)" : "") << ":\n";
  auto row = [&](const char* name, const std::vector<double>& v) {
    out << "    " << name;
    for (double x : v) {
      std::snprintf(line, sizeof(line), " %10.6f", x);
      out << line;
    }
    out << "\n";
  };
  row("mean    ", std::vector<double>(info.mean.begin(), info.mean.end()));
  row("variance", s.variance);
  row("std     ", std::vector<double>(info.std.begin(), info.std.end()));
  if (!info.attribute_names.empty()) {
    out << "\n  attributes, share of +1 over all images:\n";
    for (size_t a = 0; a < info.attribute_names.size(); ++a) {
      std::snprintf(line, sizeof(line), "    %-20s %5.1f%%%s", info.attribute_names[a].c_str(),
                    100.0 * s.attribute_positive[a], (a % 4 == 3 || a + 1 == info.attribute_names.size()) ? "\n" : "");
      out << line;
    }
  }
  if (info.has_identities) out << "\n  identities: " << s.identities << " distinct\n";
  std::string text = out.str();
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

std::string stats_json(const StoreStats& s) {
  const StoreInfo& info = s.info;
  nlohmann::ordered_json j;
  j["path"] = s.path;
  j["count"] = info.count;
  j["shape"] = {info.height, info.width, info.channels};
  j["label_source"] = info.label_source;
  const char* split_names[3] = {"train", "val", "test"};
  std::vector<int64_t> split_totals(3, 0);
  for (const auto& c : s.counts) {
    for (int k = 0; k < 3; ++k) split_totals[k] += c[k];
  }
  nlohmann::ordered_json classes = nlohmann::ordered_json::array();
  for (size_t k = 0; k < info.class_names.size(); ++k) {
    nlohmann::ordered_json c;
    c["name"] = info.class_names[k];
    c["total"] = s.class_totals[k];
    c["percent"] = percent(s.class_totals[k], info.count);
    for (int sp = 0; sp < 3; ++sp) {
      c[split_names[sp]] = {{"count", s.counts[k][sp]}, {"percent", percent(s.counts[k][sp], split_totals[sp])}};
    }
    c["weight"] = k < info.class_weights.size() ? info.class_weights[k] : 0.f;
    classes.push_back(c);
  }
  j["classes"] = classes;
  for (int sp = 0; sp < 3; ++sp) {
    j["splits"][split_names[sp]] = {{"count", split_totals[sp]}, {"percent", percent(split_totals[sp], info.count)}};
  }
  j["train_mean"] = info.mean;
  j["train_variance"] = s.variance;
  j["train_std"] = info.std;
  if (!info.attribute_names.empty()) {
    nlohmann::ordered_json attrs;
    for (size_t a = 0; a < info.attribute_names.size(); ++a) attrs[info.attribute_names[a]] = s.attribute_positive[a];
    j["attribute_positive_fraction"] = attrs;
  }
  if (info.has_identities) j["identities"] = s.identities;
  return j.dump(2);
}

}  // namespace facetrain
