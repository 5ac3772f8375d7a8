// facetrain's entry point and error boundary: dispatches subcommands, starts MPI for the ones that run on
// ranks, and is the only place that ends the process. A UserError prints one line: before a command's setup
// agreement every rank learns of it and exits cleanly, after it (one rank's, mid-job) the job is aborted so
// no peer waits in a collective; any other exception prints "[rank r] ..." and aborts the same way.
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <torch/version.h>

#include "comm/flight_recorder.h"
#include "core/error.h"
#include "core/log.h"
#include "launcher/blas_restart.h"
#include "launcher/command_table.h"
#include "launcher/process.h"
#include "comm/communicator.h"
#include "runtime/setup_agreement.h"

namespace {

using facetrain::Subcommand;

void print_help(const std::vector<Subcommand>& commands) {
  std::printf(
      "facetrain: data-parallel training of image models over MPI/NCCL, and offline evaluation.\n\n"
      "usage: facetrain <command> [options]      (facetrain <command> --help for its flags)\n"
      "       mpirun -np N facetrain train --config FILE   |   srun --mpi=pmix facetrain train ...\n\n"
      "commands:\n");
  std::printf("  %-18s %s\n", "version", "the facetrain version and the LibTorch, CUDA and NCCL it was built with");
  for (const auto& c : commands) std::printf("  %-18s %s\n", c.name.c_str(), c.summary.c_str());
  std::printf(
      "\nExit codes: 0 ok, 1 internal error, 2 bad input (one line names the file, flag or field),\n"
      "75 stopped by SIGTERM/SIGUSR1 after writing a checkpoint (resume with --resume auto).\n");
}

// What this binary was built against: which LibTorch a checkpoint or a figure came from.
void print_version() {
#ifdef FACETRAIN_TORCH_HAS_CUDA
  const char* torch_kind = "with CUDA";
#else
  const char* torch_kind = "CPU only";
#endif
  std::printf("facetrain %s, LibTorch %s (%s), NCCL backend %s\n", FACETRAIN_VERSION, TORCH_VERSION, torch_kind,
              facetrain::nccl_available() ? "built" : "not built");
}

// One line on stderr, "[rank r] error: ..." when it may be one rank's among several, flushed before any abort.
void print_error(const char* message, bool name_rank) {
  if (name_rank)
    std::fprintf(stderr, "[rank %d] error: %s\n", facetrain::log_rank(), message);
  else
    std::fprintf(stderr, "error: %s\n", message);
  std::fflush(stderr);
}

// Before a job is aborted mid-run: the flight recorder's diagnosis of where the ranks diverged, from every
// ring this rank can read (all of them on one node or a shared run directory). Never throws.
void print_flight_diagnosis() {
  try {
    const std::string directory = facetrain::flight_recorder_directory();
    if (directory.empty()) return;
    for (const std::string& line : facetrain::diagnose_flight(facetrain::read_flight_records(directory))) {
      std::fprintf(stderr, "[rank %d] flight recorder: %s\n", facetrain::log_rank(), line.c_str());
    }
    std::fprintf(stderr, "[rank %d] flight recorder: facetrain doctor %s says the same later\n", facetrain::log_rank(),
                 directory.c_str());
    std::fflush(stderr);
  } catch (const std::exception&) {
  }
}

const Subcommand* find_command(const std::vector<Subcommand>& commands, int argc, char** argv, int* consumed) {
  // Two-word commands ("bench loader", "eval metrics") win over one-word ones.
  if (argc >= 3) {
    const std::string two = std::string(argv[1]) + " " + argv[2];
    for (const auto& c : commands) {
      if (c.name == two) {
        *consumed = 2;
        return &c;
      }
    }
  }
  for (const auto& c : commands) {
    if (c.name == argv[1]) {
      *consumed = 1;
      return &c;
    }
  }
  return nullptr;
}

// How long a rank whose setup failed waits for the others' setups (they open stores and load models).
constexpr double kSetupAgreementTimeoutSeconds = 300;

int run(const Subcommand& command, int argc, char** argv) {
  if (command.run) return command.run(argc, argv);
  facetrain::comm_initialize(&argc, &argv);
  int code = 0;
  {
    auto world = facetrain::make_mpi_communicator();
    facetrain::set_log_rank(world->rank(), world->size());
    try {
      // Placement first (a node with more ranks than GPUs is bad input too), then the command.
      facetrain::ProcessContext ctx = facetrain::place_process(*world, 0);
      code = command.run_on_ranks(argc, argv, ctx);
    } catch (const facetrain::JobUserError&) {
      throw;
    } catch (const facetrain::UserError& e) {
      // Bad input found before the command's setup agreement: the other ranks are in it (or on their way).
      // Join it for this rank so the job ends with one line and no abort. A command that reached a
      // collective without agreeing first would leave this waiting: the timeout turns that into an abort.
      if (world->setup_agreed()) throw;
      world->set_timeout_seconds(kSetupAgreementTimeoutSeconds);
      facetrain::agree_setup_failed(*world, e.what());
    }
  }
  facetrain::comm_finalize();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<Subcommand> commands = facetrain::all_subcommands();
  if (argc < 2 || !std::strcmp(argv[1], "help") || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_help(commands);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "version")) {
    print_version();
    return 0;
  }
  int consumed = 0;
  const Subcommand* command = find_command(commands, argc, argv, &consumed);
  if (command == nullptr) {
    std::fprintf(stderr, "facetrain: unknown command '%s' (facetrain help lists them)\n", argv[1]);
    return 2;
  }
  // Before MPI_Init and any BLAS call: may replace this process, once, by one with OpenBLAS kernels that fit
  // the CPU (blas_restart.h). The rank's start-up line says what it decided.
  facetrain::restart_for_blas_kernels(argv);
  // The subcommand sees argv[0] = "facetrain <name>" so its --help names it.
  std::string program = "facetrain " + command->name;
  std::vector<char*> sub_argv{program.data()};
  for (int i = 1 + consumed; i < argc; ++i) sub_argv.push_back(argv[i]);
  sub_argv.push_back(nullptr);
  const int sub_argc = static_cast<int>(sub_argv.size()) - 1;

  try {
    return run(*command, sub_argc, sub_argv.data());
  } catch (const facetrain::JobUserError& e) {
    // Every rank knows (the setup agreement): one line, a clean exit on each rank, no MPI_Abort.
    if (e.print_here()) print_error(e.what(), facetrain::log_rank() != 0);
    if (facetrain::comm_initialized()) facetrain::comm_finalize();
    return 2;
  } catch (const facetrain::UserError& e) {
    const bool several_ranks = facetrain::log_world_size() > 1;
    print_error(e.what(), several_ranks);
    if (several_ranks) facetrain::comm_abort(2);
    return 2;
  } catch (const std::exception& e) {
    print_error(e.what(), true);
    if (facetrain::comm_initialized() && facetrain::log_world_size() > 1) {
      print_flight_diagnosis();
      facetrain::comm_abort(1);
    }
    return 1;
  }
}
