// The offline HTML report of `facetrain eval report`: one self-contained file (inline CSS and JavaScript,
// images as data: URIs, Debian's Chart.js inlined for the plots) gathering a run's config, training curves
// (metrics.jsonl), classifier metrics with ROC curves and confusion matrices, mining results, sample
// grids, attention maps and morphs from eval output folders. Missing parts show a "not available" note.
#pragma once

#include <string>
#include <vector>

namespace facetrain {

// Where Debian's libjs-chart.js puts the minified UMD build (Chart.js 3.x).
constexpr const char* kDefaultChartJs = "/usr/share/javascript/chart.js/chart.min.js";

struct ReportOptions {
  std::string run_dir;                 // training run directory ("" : none)
  std::vector<std::string> eval_dirs;  // output folders of eval metrics / mine / samples / attention / morph
  std::string chartjs_path = kDefaultChartJs;
  std::string title;                // "" : from the run config's name
  int max_images_per_section = 12;  // per eval folder and section (grids, strips, GIFs first); the rest are counted
  // How errors name the run directory, the eval folders and Chart.js (the launcher passes its flags).
  std::string run_dir_name = "run directory", eval_dirs_name = "eval folder", chartjs_name = "Chart.js";
};

// What the report holds, for the command's message and for tests that compare it with what the browser shows.
struct ReportContents {
  std::vector<std::string> sections;   // ids of every section, in page order
  std::vector<std::string> available;  // ids of the sections with content
  std::vector<std::string> charts;     // canvas ids of the Chart.js plots
  int images = 0;                      // embedded images and GIFs
};

// Section ids: config, curves, metrics, mining, samples, attention, morphs, other.
// The page's script renders every chart and then writes into the element #report-status the attributes
// data-state ("ok" | "error"), data-errors (count) and data-charts (space-separated ids of the charts that
// painted pixels), and after the load event data-images / data-images-decoded, so a headless browser's DOM
// dump shows whether the page worked.
// Throws UserError naming the folder or file, as `options` names its source, when a given folder or Chart.js
// cannot be read.
std::string render_report_html(const ReportOptions& options, ReportContents* contents);

}  // namespace facetrain
