// `facetrain eval report`: one self-contained HTML file (no network needed to view it) gathering a training
// run's config and curves with the outputs of eval metrics / mine / samples / attention / morph folders.
// Runs on rank 0 only (reading files); other ranks just wait.
#include <algorithm>
#include <filesystem>

#include "comm/communicator.h"
#include "core/error.h"
#include "core/log.h"
#include "launcher/commands/commands.h"
#include "launcher/flags.h"
#include "launcher/commands/flag_groups.h"
#include "eval/files.h"
#include "eval/report_html.h"
#include "runtime/setup_agreement.h"

namespace facetrain {

int eval_report_command(int argc, char** argv, ProcessContext& ctx) {
  const std::string program = argv[0];
  CommandLine cli(program,
                  "One self-contained HTML report of a run and its eval outputs (opens offline in a browser).");
  cli.text("run", "training run directory (config.pbtxt, metrics.jsonl, samples/)")
      .repeated("eval", "an output folder of eval metrics / mine / samples / attention / morph (repeatable)")
      .required("output", "the HTML file to write")
      .text("title", "page title (default: the run config's name)")
      .text("chartjs", "Chart.js UMD build to inline (Debian package libjs-chart.js)", kDefaultChartJs)
      .text("max-images", "at most this many images per section and eval folder (grids, strips and GIFs first)", "12");
  if (!cli.parse(argc, argv)) return 0;
  ReportOptions report;
  report.run_dir = cli.get("run");
  if (cli.given("eval")) report.eval_dirs = cli.all("eval");
  FT_USER_CHECK(!report.run_dir.empty() || !report.eval_dirs.empty(),
                program << ": nothing to report: pass --run RUN_DIR and/or --eval DIR");
  const std::string output = cli.get("output");
  report.chartjs_path = cli.get("chartjs");
  report.title = cli.get("title");
  const int64_t max_images = cli.integer("max-images");
  FT_USER_CHECK(max_images >= 0, "--max-images must be >= 0, got " << max_images);
  report.max_images_per_section = static_cast<int>(max_images);
  report.run_dir_name = "--run";
  report.eval_dirs_name = "--eval";
  report.chartjs_name = "--chartjs";

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
        std::to_string(contents.charts.size()) + " charts, " + std::to_string(contents.images) +
        " images); sections: " + (available.empty() ? "none" : available) +
        (missing.empty() ? "" : "; not available: " + missing));
  }
  agree_setup_done(*ctx.comm);  // rank 0's report is written (else: one line from it, no abort)
  ctx.comm->barrier();
  return 0;
}

}  // namespace facetrain
