// The self-contained HTML report (see report_html.h). The C++ side writes the page's static HTML (tables,
// images as data: URIs) and one JSON block describing every plot; a small inline script turns that JSON
// into Chart.js charts. Plotting itself is Chart.js's (Debian libjs-chart.js), inlined verbatim.
#include "eval/report_html.h"

#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/files.h"
#include "core/config.pb.h"

namespace facetrain {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kMaxCurvePoints = 1500;  // per training-curve series (thinned evenly, last point kept)
constexpr size_t kMaxRocPoints = 400;     // per ROC curve
constexpr uintmax_t kMaxImageBytes = 32u << 20;

std::string escape_html(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// JSON inside <script>: "</" could close the element early; "<\/" means the same to JSON.parse.
std::string json_for_script(const json& value) {
  const std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    out += text[i];
    if (text[i] == '<' && i + 1 < text.size() && (text[i + 1] == '/' || text[i + 1] == '!')) out += "\\";
  }
  return out;
}

std::string format_number(const json& value, int digits = 4) {
  if (!value.is_number()) return "n/a";
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", digits, value.get<double>());
  return text;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Evenly spaced subset of at most `limit` points that keeps the first and the last.
json thin(const json& points, size_t limit) {
  if (points.size() <= limit) return points;
  json out = json::array();
  const double stride = static_cast<double>(points.size() - 1) / static_cast<double>(limit - 1);
  for (size_t k = 0; k < limit; ++k) out.push_back(points[static_cast<size_t>(std::llround(k * stride))]);
  return out;
}

// A member of a JSON object, or null when it is absent (files from older or other versions still render).
const json& field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string text(const json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

struct Page {
  std::ostringstream body;
  json charts = json::array();
  ReportContents* contents;
  const ReportOptions* options;  // its *_name fields name the folders in errors

  void chart(const json& spec, const char* css_class = "chart") {
    body << "<div class=\"" << css_class << "\"><canvas id=\"" << escape_html(spec["id"].get<std::string>())
         << "\"></canvas></div>\n";
    charts.push_back(spec);
    contents->charts.push_back(spec["id"].get<std::string>());
  }
  void missing(const std::string& why) {
    body << "<p class=\"missing\">Not available: " << escape_html(why) << "</p>\n";
  }
  void image(const fs::path& path, const std::string& caption) {
    std::error_code ec;
    const uintmax_t size = fs::file_size(path, ec);
    if (ec || size > kMaxImageBytes) {
      body << "<p class=\"missing\">" << escape_html(path.string()) << " not embedded ("
           << (ec ? "unreadable" : "larger than 32 MB") << ")</p>\n";
      return;
    }
    const std::string ext = lower(path.extension().string());
    const char* mime = ext == ".gif" ? "image/gif" : (ext == ".jpg" || ext == ".jpeg") ? "image/jpeg" : "image/png";
    body << "<figure><img alt=\"" << escape_html(path.filename().string()) << "\" src=\"data:" << mime << ";base64,"
         << base64_encode(read_file_bytes(path.string(), options->eval_dirs_name)) << "\"><figcaption>"
         << escape_html(caption) << "</figcaption></figure>\n";
    ++contents->images;
  }
  void open_section(const std::string& id, const std::string& title) {
    body << "<section id=\"" << id << "\">\n<h2>" << escape_html(title) << "</h2>\n";
    contents->sections.push_back(id);
  }
  void close_section(bool available) {
    body << "</section>\n";
    if (available) contents->available.push_back(contents->sections.back());
  }
};

// ---------------------------------------------------------------------------------------------------------
// config

// Opens a section built from one file of the run directory; when there is no run directory or no such file,
// says so in the section, closes it and returns false.
bool open_run_file_section(Page& page, const char* id, const char* title, const std::string& run_dir, const char* file,
                           fs::path* path) {
  page.open_section(id, title);
  *path = fs::path(run_dir) / file;
  if (!run_dir.empty() && fs::exists(*path)) return true;
  page.missing(run_dir.empty() ? "no run directory given (--run RUN_DIR)"
                               : std::string("no ") + file + " in " + run_dir);
  page.close_section(false);
  return false;
}

bool config_section(Page& page, const std::string& run_dir, std::string* run_name) {
  fs::path path;
  if (!open_run_file_section(page, "config", "Run config", run_dir, "config.pbtxt", &path)) return false;
  const std::string text = read_file_bytes(path.string(), page.options->run_dir_name);
  proto::RunConfig config;
  if (google::protobuf::TextFormat::ParseFromString(text, &config) && !config.name().empty()) {
    *run_name = config.name();
  }
  page.body << "<p class=\"source\">" << escape_html(path.string()) << "</p>\n<pre class=\"config\">"
            << escape_html(text) << "</pre>\n";
  page.close_section(true);
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// curves: metrics.jsonl, one {"step": s, "<tag>": value, ..., "time": t} object per line

bool curves_section(Page& page, const std::string& run_dir) {
  fs::path path;
  if (!open_run_file_section(page, "curves", "Training curves", run_dir, "metrics.jsonl", &path)) return false;
  std::ifstream in(path);
  std::map<std::string, json> series;  // tag -> [[step, value], ...]
  std::string line;
  int64_t lines = 0, skipped = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ++lines;
    const json row = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!row.is_object() || !row.contains("step") || !row["step"].is_number()) {
      ++skipped;  // a torn last line of a killed run
      continue;
    }
    const double step = row["step"].get<double>();
    for (const auto& [key, value] : row.items()) {
      if (key == "step" || key == "time" || !value.is_number()) continue;  // null: NaN when written
      series[key].push_back({step, value.get<double>()});
    }
  }
  if (series.empty()) {
    page.missing(path.string() + " holds no scalars yet");
    page.close_section(false);
    return false;
  }
  page.body << "<p class=\"source\">" << escape_html(path.string()) << ": " << lines << " lines"
            << (skipped ? ", " + std::to_string(skipped) + " unreadable skipped" : std::string()) << "</p>\n";

  // Groups: losses together, the learning rate, validation metrics together, then one chart per other tag.
  std::vector<std::string> losses, rates, validation, others;
  for (const auto& [key, points] : series) {
    const std::string name = lower(key);
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, "loss") == 0) {
      losses.push_back(key);
    } else if (name == "train/lr" || name == "lr") {
      rates.push_back(key);
    } else if (name.rfind("val/", 0) == 0) {
      validation.push_back(key);
    } else {
      others.push_back(key);
    }
  }
  auto line_chart = [&](const std::string& id, const std::string& title, const std::string& y_label,
                        const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    json datasets = json::array();
    for (const auto& key : keys) datasets.push_back({{"label", key}, {"points", thin(series[key], kMaxCurvePoints)}});
    page.chart({{"id", id},
                {"type", "line"},
                {"title", title},
                {"x_label", "step"},
                {"y_label", y_label},
                {"datasets", datasets}});
  };
  page.body << "<div class=\"charts\">\n";
  line_chart("chart-loss", "Loss", "loss", losses);
  line_chart("chart-lr", "Learning rate", "learning rate", rates);
  line_chart("chart-val", "Validation metrics", "value", validation);
  for (size_t i = 0; i < others.size(); ++i) {
    line_chart("chart-scalar-" + std::to_string(i), others[i], others[i], {others[i]});
  }
  page.body << "</div>\n";
  page.close_section(true);
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// metrics: metrics.json of `eval metrics`

// The string member `key` of `object`, or `fallback`.
std::string text_field(const json& object, const char* key, const std::string& fallback = "?") {
  const json& value = field(object, key);
  return value.is_string() ? value.get<std::string>() : fallback;
}

// A metrics.json this report can draw: class names and a square integer confusion matrix of that size.
bool is_metrics_file(const json& m) {
  const json& names = field(m, "classes");
  const json& confusion = field(m, "confusion");
  if (!names.is_array() || !confusion.is_array() || confusion.size() != names.size()) return false;
  for (const auto& row : confusion) {
    if (!row.is_array() || row.size() != names.size()) return false;
    for (const auto& v : row) {
      if (!v.is_number_integer()) return false;
    }
  }
  return true;
}

void confusion_table(Page& page, const json& m) {
  const json& names = field(m, "classes");
  const json& confusion = field(m, "confusion");
  page.body << "<table class=\"confusion\"><caption>Confusion matrix (rows: true class, columns: predicted; shade: "
               "fraction of the row)</caption>\n<tr><th></th>";
  for (const auto& name : names) page.body << "<th>" << escape_html(text(name)) << "</th>";
  page.body << "</tr>\n";
  for (size_t r = 0; r < confusion.size(); ++r) {
    int64_t row_total = 0;
    for (const auto& v : confusion[r]) row_total += v.get<int64_t>();
    page.body << "<tr><th>" << escape_html(text(names[r])) << "</th>";
    for (size_t c = 0; c < confusion[r].size(); ++c) {
      const int64_t v = confusion[r][c].get<int64_t>();
      const double alpha = row_total ? static_cast<double>(v) / row_total : 0.0;
      char style[96];
      std::snprintf(style, sizeof(style), "background:rgba(%s,%.3f)%s", r == c ? "44,160,44" : "214,39,40", alpha,
                    alpha > 0.6 ? ";color:#fff" : "");
      page.body << "<td style=\"" << style << "\">" << v << "</td>";
    }
    page.body << "</tr>\n";
  }
  page.body << "</table>\n";
}

void roc_chart(Page& page, const json& roc, int index) {
  json datasets = json::array();
  for (const auto& curve : field(roc, "curves")) {
    json points = json::array();
    for (const auto& p : field(curve, "points")) {
      if (p.is_array() && p.size() >= 2 && p[0].is_number() && p[1].is_number()) points.push_back({p[0], p[1]});
    }
    datasets.push_back({{"label", text_field(curve, "class") + " (AUC " + format_number(field(curve, "auc")) + ")"},
                        {"points", thin(points, kMaxRocPoints)}});
  }
  datasets.push_back({{"label", "chance"}, {"points", {{0, 0}, {1, 1}}}, {"color", "#999999"}, {"dashed", true}});
  const bool binary = text_field(roc, "kind", "") == "binary";
  page.chart({{"id", "chart-roc-" + std::to_string(index)},
              {"type", "line"},
              {"title", binary ? "ROC curve" : "ROC curves (one-vs-rest)"},
              {"x_label", "false positive rate"},
              {"y_label", "true positive rate"},
              {"x_min", 0},
              {"x_max", 1},
              {"y_min", 0},
              {"y_max", 1},
              {"datasets", datasets}},
             "chart square");
}

bool metrics_section(Page& page, const std::vector<std::string>& eval_dirs) {
  page.open_section("metrics", "Classifier metrics");
  int found = 0;
  for (const auto& dir : eval_dirs) {
    const fs::path path = fs::path(dir) / "metrics.json";
    if (!fs::exists(path)) continue;
    const json m = json::parse(read_file_bytes(path.string(), page.options->eval_dirs_name), nullptr, false);
    if (!is_metrics_file(m)) {
      page.missing(path.string() + " is not a metrics.json of `facetrain eval metrics`");
      continue;
    }
    const int index = found++;
    const json& macro = field(m, "macro");
    page.body << "<h3>" << escape_html(text_field(m, "split")) << " split of " << escape_html(text_field(m, "store"))
              << "</h3>\n<p class=\"source\">" << escape_html(path.string()) << " &middot; checkpoint "
              << escape_html(text_field(m, "checkpoint")) << "</p>\n";
    page.body << "<table class=\"summary\"><tr><th>images</th><th>loss</th><th>accuracy</th><th>macro precision</th>"
                 "<th>macro recall</th><th>macro F1</th><th>ROC AUC ("
              << escape_html(text_field(m, "auc_kind", "")) << ")</th></tr>\n<tr><td>"
              << format_number(field(m, "count")) << "</td><td>" << format_number(field(m, "loss")) << "</td><td>"
              << format_number(field(m, "accuracy")) << "</td><td>" << format_number(field(macro, "precision"))
              << "</td><td>" << format_number(field(macro, "recall")) << "</td><td>"
              << format_number(field(macro, "f1")) << "</td><td>" << format_number(field(m, "auc"))
              << "</td></tr></table>\n";
    page.body << "<table class=\"per-class\"><tr><th>class</th><th>support</th><th>precision</th><th>recall</th>"
                 "<th>F1</th><th>AUC (one-vs-rest)</th></tr>\n";
    const json& per_class = field(m, "per_class");
    for (size_t c = 0; per_class.is_array() && c < per_class.size(); ++c) {
      const json& pc = per_class[c];
      page.body << "<tr><td>" << escape_html(text_field(pc, "class")) << "</td><td>"
                << format_number(field(pc, "support")) << "</td><td>" << format_number(field(pc, "precision"))
                << "</td><td>" << format_number(field(pc, "recall")) << "</td><td>" << format_number(field(pc, "f1"))
                << "</td><td>" << format_number(field(pc, "auc")) << "</td></tr>\n";
    }
    page.body << "</table>\n<div class=\"charts\">\n";
    if (field(field(m, "roc"), "curves").is_array()) roc_chart(page, field(m, "roc"), index);
    page.body << "</div>\n";
    confusion_table(page, m);
  }
  if (!found) page.missing("no metrics.json in the --eval folders (run `facetrain eval metrics --output DIR`)");
  page.close_section(found > 0);
  return found > 0;
}

// ---------------------------------------------------------------------------------------------------------
// image sections

enum class Kind { kMining, kSamples, kAttention, kMorph, kOther };

// What an eval folder holds, from the files its command writes beside its images (eval attention:
// attention.json + attention_grid.png and image_<i>_<method>.png; eval morph: morph.json, morph.gif).
// A folder with both (or neither) is sorted file by file.
Kind folder_kind(const std::string& dir) {
  const fs::path d(dir);
  const bool attention = fs::exists(d / "attention.json") || fs::exists(d / "attention_grid.png");
  const bool morph = fs::exists(d / "morph.json") || fs::exists(d / "morph.gif");
  if (attention != morph) return attention ? Kind::kAttention : Kind::kMorph;
  return Kind::kOther;
}

// `path` is relative to its eval folder (so words in the folder's own location do not count).
Kind classify_image(const fs::path& path, Kind folder) {
  const std::string name = lower(path.filename().string());
  const std::string full = lower(path.string());
  if (name == "contact_sheet.png") return Kind::kMining;
  if (name == "samples.png" || name.rfind("interpolations", 0) == 0) return Kind::kSamples;
  if (folder != Kind::kOther) return folder;
  if (full.find("attention") != std::string::npos || full.find("rollout") != std::string::npos) return Kind::kAttention;
  if (lower(path.extension().string()) == ".gif" || full.find("morph") != std::string::npos) return Kind::kMorph;
  return Kind::kOther;
}

// Images (png, gif, jpg) under `dir` (two levels deep), sorted by path.
std::vector<fs::path> images_under(const std::string& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it.depth() > 1) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    const std::string ext = lower(it->path().extension().string());
    if (ext == ".png" || ext == ".gif" || ext == ".jpg" || ext == ".jpeg") out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Embeds the images of one kind from every eval folder: grids, strips and GIFs first, at most `limit` per folder.
int embed_images(Page& page, const std::vector<std::string>& eval_dirs, Kind kind, int limit) {
  int shown = 0;
  for (const auto& dir : eval_dirs) {
    std::vector<fs::path> picked;
    const Kind folder = folder_kind(dir);
    for (const auto& p : images_under(dir)) {
      if (classify_image(fs::relative(p, dir), folder) == kind) picked.push_back(p);
    }
    std::stable_sort(picked.begin(), picked.end(), [](const fs::path& a, const fs::path& b) {
      auto rank = [](const fs::path& p) {
        const std::string n = lower(p.filename().string());
        return (n.find("grid") != std::string::npos || n.find("strip") != std::string::npos ||
                lower(p.extension().string()) == ".gif")
                   ? 0
                   : 1;
      };
      return rank(a) < rank(b);
    });
    const int n = static_cast<int>(picked.size());
    for (int i = 0; i < std::min(n, limit); ++i) {
      page.image(picked[i], fs::relative(picked[i], fs::path(dir).parent_path()).string());
      ++shown;
    }
    if (n > limit) {
      page.body << "<p class=\"note\">" << n - limit << " more images in " << escape_html(dir) << " not shown</p>\n";
    }
  }
  return shown;
}

bool mining_section(Page& page, const std::vector<std::string>& eval_dirs, int limit) {
  page.open_section("mining", "Mined images");
  int found = 0;
  for (const auto& dir : eval_dirs) {
    const fs::path csv = fs::path(dir) / "mined.csv";
    if (!fs::exists(csv)) continue;
    ++found;
    std::istringstream in(read_file_bytes(csv.string(), page.options->eval_dirs_name));
    std::string header, line;
    std::getline(in, header);
    std::vector<std::string> rows;
    while (std::getline(in, line)) {
      if (!line.empty()) rows.push_back(line);
    }
    page.body << "<p class=\"source\">" << escape_html(csv.string()) << ": <b>" << rows.size()
              << "</b> images passed</p>\n";
    if (!rows.empty()) {
      page.body << "<table class=\"mined\"><tr><th>" << escape_html(header) << "</th></tr>\n";
      for (size_t i = 0; i < std::min<size_t>(rows.size(), 10); ++i) {
        page.body << "<tr><td>" << escape_html(rows[i]) << "</td></tr>\n";
      }
      page.body << "</table>\n";
    }
  }
  found += embed_images(page, eval_dirs, Kind::kMining, limit);
  if (!found) page.missing("no mined.csv in the --eval folders (run `facetrain eval mine --output DIR`)");
  page.close_section(found > 0);
  return found > 0;
}

// The run's samples/ folder: the newest image of each series (epoch-NNN.png, reconstructions-epoch-NNN.png, ...).
int run_samples(Page& page, const std::string& run_dir) {
  if (run_dir.empty()) return 0;
  const fs::path dir = fs::path(run_dir) / "samples";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  const std::regex pattern(R"(^(.*?)-?epoch-(\d+)\.png$)");
  std::map<std::string, std::pair<long, fs::path>> newest;  // series -> (epoch, path)
  std::map<std::string, int> counts;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch match;
    const std::string name = entry.path().filename().string();
    if (!std::regex_match(name, match, pattern)) continue;
    const std::string series = match[1].str().empty() ? "samples" : match[1].str();
    const long epoch = std::stol(match[2].str());
    ++counts[series];
    auto it = newest.find(series);
    if (it == newest.end() || epoch > it->second.first) newest[series] = {epoch, entry.path()};
  }
  for (const auto& [series, item] : newest) {
    page.image(item.second, series + ", epoch " + std::to_string(item.first) + " (newest of " +
                                std::to_string(counts[series]) + " in " + dir.string() + ")");
  }
  return static_cast<int>(newest.size());
}

bool samples_section(Page& page, const std::string& run_dir, const std::vector<std::string>& eval_dirs, int limit) {
  page.open_section("samples", "Samples");
  int found = run_samples(page, run_dir);
  found += embed_images(page, eval_dirs, Kind::kSamples, limit);
  int histograms = 0;
  for (const auto& dir : eval_dirs) {
    const fs::path path = fs::path(dir) / "class_histogram.json";
    if (!fs::exists(path)) continue;
    const json h = json::parse(read_file_bytes(path.string(), page.options->eval_dirs_name), nullptr, false);
    if (!field(h, "classes").is_array() || !field(h, "counts").is_array()) continue;
    ++found;
    page.body << "<p class=\"source\">" << escape_html(path.string()) << ": " << format_number(field(h, "total"))
              << " generated samples classified by " << escape_html(text_field(h, "classifier")) << "; entropy "
              << format_number(field(h, "entropy_bits"), 3) << " bits of at most "
              << format_number(field(h, "max_entropy_bits"), 3) << "</p>\n<div class=\"charts\">\n";
    page.chart({{"id", "chart-hist-" + std::to_string(histograms++)},
                {"type", "bar"},
                {"title", "Classes of generated samples"},
                {"y_label", "samples"},
                {"labels", field(h, "classes")},
                {"values", field(h, "counts")}});
    page.body << "</div>\n";
  }
  if (!found) page.missing("no samples/ in the run directory and no `facetrain eval samples` output in --eval");
  page.close_section(found > 0);
  return found > 0;
}

bool image_section(Page& page, const std::string& id, const std::string& title,
                   const std::vector<std::string>& eval_dirs, Kind kind, int limit, const std::string& hint) {
  page.open_section(id, title);
  const int shown = embed_images(page, eval_dirs, kind, limit);
  if (!shown) page.missing(hint);
  page.close_section(shown > 0);
  return shown > 0;
}

const char* kStyle = R"css(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#cfd8dc;font-size:13px}
nav{position:sticky;top:0;background:#37474f;padding:6px 24px;z-index:2}
nav a{color:#eceff1;margin-right:16px;text-decoration:none;font-size:14px}nav a.off{color:#90a4ae}
section{background:#fff;margin:16px 24px;padding:12px 20px;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h2{margin:4px 0 12px;font-size:19px}h3{font-size:16px;margin:16px 0 6px}
.missing{color:#8d6e63;font-style:italic}.source,.note{color:#666;font-size:12px}
pre.config{background:#f4f4f4;padding:10px;overflow:auto;max-height:480px;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{position:relative;width:560px;height:320px}
.chart.square{width:460px;height:420px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f0f0f0}table.mined td,table.mined th{text-align:left;font-family:monospace}
caption{caption-side:top;text-align:left;color:#555;font-size:12px;padding:4px 0}
figure{display:inline-block;margin:8px;vertical-align:top}figure img{max-width:100%;image-rendering:pixelated;
border:1px solid #ccc;min-width:128px}figcaption{font-size:12px;color:#555;max-width:520px}
footer{margin:16px 24px;color:#777;font-size:12px}
)css";

// Runs before Chart.js so that an error anywhere (including Chart.js failing to load) is recorded.
const char* kErrorCapture = R"js(
window.__reportErrors = [];
window.addEventListener('error', function (e) {
  window.__reportErrors.push(String(e.message || e));
  var s = document.getElementById('report-status');
  if (s) { s.setAttribute('data-state', 'error'); s.setAttribute('data-errors', String(window.__reportErrors.length)); }
});
)js";

const char* kRender = R"js(
(function () {
  var status = document.getElementById('report-status');
  var errors = window.__reportErrors;
  var rendered = [];
  var expected = 0;
  var palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
                 '#bcbd22', '#17becf'];
  // True when the canvas has at least one non-transparent pixel (Chart.js really painted it).
  function drawn(canvas) {
    var pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (var i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
    return false;
  }
  function axis(label, type, min, max) {
    return {type: type || 'linear', min: min, max: max, title: {display: true, text: label}};
  }
  try {
    var data = JSON.parse(document.getElementById('report-data').textContent);
    expected = data.charts.length;
    if (typeof Chart === 'undefined') throw new Error('Chart.js did not load');
    Chart.defaults.animation = false;
    data.charts.forEach(function (spec) {
      try {
        var canvas = document.getElementById(spec.id);
        var config;
        if (spec.type === 'bar') {
          config = {type: 'bar',
                    data: {labels: spec.labels,
                           datasets: [{label: spec.y_label, data: spec.values, backgroundColor: palette[0]}]},
                    options: {responsive: true, maintainAspectRatio: false,
                              plugins: {title: {display: true, text: spec.title}, legend: {display: false}},
                              scales: {y: {beginAtZero: true, title: {display: true, text: spec.y_label}}}}};
        } else {
          config = {type: 'scatter',
                    data: {datasets: spec.datasets.map(function (d, i) {
                      var color = d.color || palette[i % palette.length];
                      return {label: d.label, showLine: true, borderColor: color, backgroundColor: color,
                              borderWidth: 1.5, borderDash: d.dashed ? [6, 4] : [],
                              pointRadius: d.points.length > 60 ? 0 : 2,
                              data: d.points.map(function (p) { return {x: p[0], y: p[1]}; })};
                    })},
                    options: {responsive: true, maintainAspectRatio: false,
                              plugins: {title: {display: true, text: spec.title}},
                              scales: {x: axis(spec.x_label, spec.x_type, spec.x_min, spec.x_max),
                                       y: axis(spec.y_label, spec.y_type, spec.y_min, spec.y_max)}}};
        }
        new Chart(canvas, config);
        if (Chart.getChart(canvas) && drawn(canvas)) rendered.push(spec.id);
        else errors.push(spec.id + ': nothing drawn');
      } catch (e) {
        errors.push(spec.id + ': ' + (e.message || e));
      }
    });
  } catch (e) {
    errors.push(String(e.message || e));
  }
  status.setAttribute('data-charts', rendered.join(' '));
  status.setAttribute('data-errors', String(errors.length));
  status.setAttribute('data-state', errors.length ? 'error' : 'ok');
  status.textContent = 'Rendered ' + rendered.length + ' of ' + expected + ' charts' +
      (errors.length ? '; errors: ' + errors.join('; ') : '.');
  // Images are data: URIs; once the page has loaded, count those the browser decoded.
  window.addEventListener('load', function () {
    var decoded = 0;
    for (var i = 0; i < document.images.length; ++i) {
      if (document.images[i].complete && document.images[i].naturalWidth > 0) ++decoded;
    }
    status.setAttribute('data-images', String(document.images.length));
    status.setAttribute('data-images-decoded', String(decoded));
  });
})();
)js";

}  // namespace

std::string render_report_html(const ReportOptions& options, ReportContents* contents) {
  ReportContents local;
  if (contents == nullptr) contents = &local;
  *contents = ReportContents{};
  FT_USER_CHECK(options.run_dir.empty() || fs::is_directory(options.run_dir),
                options.run_dir_name << " " << options.run_dir << " is not a directory");
  for (const auto& dir : options.eval_dirs) {
    FT_USER_CHECK(fs::is_directory(dir), options.eval_dirs_name << " " << dir << " is not a directory");
  }
  FT_USER_CHECK(fs::exists(options.chartjs_path),
                options.chartjs_name << " " << options.chartjs_path
                                     << " does not exist. HINT: install Debian's libjs-chart.js (apt-get install "
                                        "libjs-chart.js)");
  const std::string chartjs = read_file_bytes(options.chartjs_path, options.chartjs_name);
  FT_USER_CHECK(
      lower(chartjs).find("</script") == std::string::npos && chartjs.find("<!--") == std::string::npos,
      options.chartjs_name << " " << options.chartjs_path << " contains '</script' or '<!--' and cannot be inlined");

  Page page;
  page.contents = contents;
  page.options = &options;
  std::string run_name;
  const int limit = options.max_images_per_section;
  config_section(page, options.run_dir, &run_name);
  curves_section(page, options.run_dir);
  metrics_section(page, options.eval_dirs);
  mining_section(page, options.eval_dirs, limit);
  samples_section(page, options.run_dir, options.eval_dirs, limit);
  image_section(page, "attention", "Attention maps", options.eval_dirs, Kind::kAttention, limit,
                "no attention maps in the --eval folders (run `facetrain eval attention --output DIR`)");
  image_section(page, "morphs", "Latent morphs", options.eval_dirs, Kind::kMorph, limit,
                "no morph GIFs or strips in the --eval folders (run `facetrain eval morph --output DIR`)");
  image_section(page, "other", "Other images", options.eval_dirs, Kind::kOther, limit,
                "no other images in the --eval folders");

  const std::string title =
      !options.title.empty() ? options.title : "facetrain report" + (run_name.empty() ? "" : ": " + run_name);
  char generated[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(generated, sizeof(generated), "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
  std::string sources = options.run_dir.empty() ? "" : "run " + options.run_dir;
  for (const auto& dir : options.eval_dirs) sources += (sources.empty() ? "eval " : ", eval ") + dir;

  static const std::map<std::string, std::string> kNavNames = {
      {"config", "Config"},   {"curves", "Curves"},       {"metrics", "Metrics"}, {"mining", "Mining"},
      {"samples", "Samples"}, {"attention", "Attention"}, {"morphs", "Morphs"},   {"other", "Other"}};
  const std::set<std::string> available(contents->available.begin(), contents->available.end());
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << escape_html(title)
       << "</title>\n<style>" << kStyle << "</style>\n<script>" << kErrorCapture << "</script>\n<script>\n"
       << chartjs << "\n</script>\n</head>\n<body>\n<header><h1>" << escape_html(title) << "</h1><p>generated "
       << generated << " from " << escape_html(sources) << "</p></header>\n<nav>";
  for (const auto& id : contents->sections) {
    html << "<a href=\"#" << id << "\"" << (available.count(id) ? "" : " class=\"off\"") << ">" << kNavNames.at(id)
         << "</a>";
  }
  html << "</nav>\n<main>\n"
       << page.body.str() << "</main>\n<footer><div id=\"report-status\" data-state=\"loading\" "
       << "data-errors=\"0\" data-charts=\"\" data-expected-charts=\"" << contents->charts.size()
       << "\">Charts not rendered (JavaScript off?)</div></footer>\n<script type=\"application/json\" "
          "id=\"report-data\">"
       << json_for_script({{"charts", page.charts}}) << "</script>\n<script>" << kRender
       << "</script>\n</body>\n</html>\n";
  return html.str();
}

}  // namespace facetrain
