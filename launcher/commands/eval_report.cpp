// `facetrain eval report`: one self-contained HTML file (no network needed to view it) gathering a training
// run's config and curves with the outputs of eval metrics / mine / samples / attention / morph folders.
// Runs on rank 0 only (reading files); other ranks just wait.
#include <algorithm>
#include <filesystem>

#include "comm/communicator.h"
#include "core/error.h"
#include "core/log.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/eval_flags.h"
#include "eval/files.h"
#include "eval/report_html.h"

namespace facetrain {

int eval_report_command(int argc, char** argv, ProcessContext& ctx) {
  const std::string program = argv[0];
  cxxopts::Options options(program,
                           "One self-contained HTML report of a run and its eval outputs (opens offline in a browser).");
  options.add_options()
      ("run", "training run directory (config.pbtxt, metrics.jsonl, samples/)",
       cxxopts::value<std::string>()->default_value(""))
      ("eval", "an output folder of eval metrics / mine / samples / attention / morph (repeatable)",
       cxxopts::value<std::vector<std::string>>())
      ("output", "the HTML file to write", cxxopts::value<std::string>())
      ("title", "page title (default: the run config's name)", cxxopts::value<std::string>()->default_value(""))
      ("chartjs", "Chart.js UMD build to inline (Debian package libjs-chart.js)",
       cxxopts::value<std::string>()->default_value(kDefaultChartJs))
      ("max-images", "at most this many images per section and eval folder (grids, strips and GIFs first)",
       cxxopts::value<std::string>()->default_value("12"))
      ("h,help", "show this help");
  const cxxopts::ParseResult args = parse_flags(options, argc, argv);
  if (args.count("help")) {
    log(options.help());
    return 0;
  }
  ReportOptions report;
  report.run_dir = args["run"].as<std::string>();
  if (args.count("eval")) report.eval_dirs = args["eval"].as<std::vector<std::string>>();
  FT_USER_CHECK(!report.run_dir.empty() || !report.eval_dirs.empty(),
                program << ": nothing to report: pass --run RUN_DIR and/or --eval DIR");
  const std::string output = required_flag(args, "output", program, "the HTML file to write, e.g. report.html");
  report.chartjs_path = args["chartjs"].as<std::string>();
  report.title = args["title"].as<std::string>();
  const int64_t max_images = int_flag(args, "max-images");
  FT_USER_CHECK(max_images >= 0, "--max-images must be >= 0, got " << max_images);
  report.max_images_per_section = static_cast<int>(max_images);

  if (ctx.rank == 0) {  // (rank 0 only)
    ReportContents contents;
    const std::string html = render_report_html(report, &contents);
    write_text_file(output, html);
    std::string available, missing;
    for (const auto& id : contents.sections) {
      const bool has = std::find(contents.available.begin(), contents.available.end(), id) != contents.available.end();
      (has ? available : missing) += (has ? available : missing).empty() ? id : ", " + id;
    }
    log("eval report: " + output + " (" + std::to_string(html.size() / 1024) + " KiB, " +
        std::to_string(contents.charts.size()) + " charts, " + std::to_string(contents.images) + " images); sections: " +
        (available.empty() ? "none" : available) + (missing.empty() ? "" : "; not available: " + missing));
  }
  agree_setup_done(*ctx.comm);  // rank 0's report is written (else: one line from it, no abort)
  ctx.comm->barrier();
  return 0;
}

}  // namespace facetrain
