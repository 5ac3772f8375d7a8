// Process-wide MPI: start (thread level, libnbc's all-reduce algorithm) and finalize, the job abort with the
// hooks it runs first (live NCCL communicators register ncclCommAbort), the error text behind FT_MPI_CHECK,
// and this process's place on its node.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "core/error.h"
#include "comm/comm_internal.h"
#include "comm/communicator.h"

namespace facetrain {

// ---------------------------------------------------------------------------------------------------
// errors, abort hooks
// ---------------------------------------------------------------------------------------------------
namespace comm_detail {
namespace {

const char* mpi_hint(int code) {
  int error_class = code;
  MPI_Error_class(code, &error_class);
  switch (error_class) {
    case MPI_ERR_TRUNCATE:
      return "ranks disagree on a collective's size: every rank must make the same calls in the same order "
             "with tensors of the same shape and dtype";
    case MPI_ERR_COUNT:
    case MPI_ERR_TYPE:
    case MPI_ERR_BUFFER: return "a tensor too large for one MPI call or not contiguous; this is a bug in comm/";
    case MPI_ERR_COMM: return "a communicator used after comm_finalize()? Destroy communicators before finalizing MPI";
    case MPI_ERR_ROOT:
    case MPI_ERR_RANK: return "root/peer rank outside 0..world_size-1";
    default:
      return "a peer rank may have died (see mpirun's or srun's message), or ranks called collectives in "
             "different orders";
  }
}

std::mutex& hooks_mutex() {
  static std::mutex m;
  return m;
}
std::map<const void*, std::function<void()>>& hooks() {
  static std::map<const void*, std::function<void()>> h;
  return h;
}

}  // namespace

[[noreturn]] void throw_mpi_error(int code, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) std::snprintf(text, sizeof(text), "unknown error");
  std::ostringstream oss;
  oss << file << ":" << line << ": MPI error in " << call << ": " << text << " (code " << code
      << "). HINT: " << mpi_hint(code);
  throw std::runtime_error(oss.str());
}

void register_abort_hook(const void* owner, std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(hooks_mutex());
  hooks()[owner] = std::move(hook);
}

void unregister_abort_hook(const void* owner) {
  std::lock_guard<std::mutex> lock(hooks_mutex());
  hooks().erase(owner);
}

}  // namespace comm_detail

// ---------------------------------------------------------------------------------------------------
// process-wide lifetime
// ---------------------------------------------------------------------------------------------------
namespace {

bool g_started_mpi = false;

bool mpi_is_live() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

}  // namespace

// Thread level: SERIALIZED. Only the training thread calls MPI (loader threads never do; autograd runs the
// hooks of CPU tensors on the thread that called backward()). FUNNELED would also hold today, but it ties
// every MPI call to the thread that ran MPI_Init; SERIALIZED keeps the hooks correct should backward() ever
// run on another thread, and costs the same in Open MPI (it only adds locking for MPI_THREAD_MULTIPLE).
void comm_initialize(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  // Open MPI runs MPI_Iallreduce through libnbc. Only messages below kRingMinBytes (mpi_communicator.cpp)
  // reach it (gradient means from there up use the communicator's own ring; the sums are a few scalars),
  // where latency is what counts: recursive doubling exchanges the whole message once per doubling (once on
  // 2 ranks) instead of the ring's reduce-scatter + allgather steps or the binomial default's reduce +
  // broadcast. Measured on 2 ranks here (in-place float32, medians of 4,001): 1 kB 2.71 -> 1.75 us, 16 kB
  // 11.5 -> 8.4 us, 64 kB 27.6 -> 24.9 us against the ring (blocking MPI_Allreduce: 1.3-1.4, 11.0, 26.2 us);
  // comm/README.md. A user's own setting wins.
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "recursive_doubling", /*overwrite=*/0);
  int provided = 0;
  FT_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided));
  g_started_mpi = true;
  FT_CHECK(provided >= MPI_THREAD_SERIALIZED,
           "the MPI library provides thread level " << provided << ", facetrain needs MPI_THREAD_SERIALIZED");
  // Errors on the world communicator (the NCCL id broadcast) become exceptions, not an immediate abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

void comm_finalize() {
  if (!g_started_mpi || !mpi_is_live()) return;
  MPI_Finalize();
}

[[noreturn]] void comm_abort(int exit_code) {
  std::map<const void*, std::function<void()>> to_run;
  {
    std::lock_guard<std::mutex> lock(comm_detail::hooks_mutex());
    to_run.swap(comm_detail::hooks());
  }
  for (auto& hook : to_run) {
    try {
      hook.second();
    } catch (...) {
      // Aborting anyway.
    }
  }
  std::fflush(stdout);
  std::fflush(stderr);
  if (mpi_is_live()) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

bool comm_initialized() { return mpi_is_live(); }

NodePlacement node_placement() {
  MPI_Comm node = MPI_COMM_NULL;
  FT_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, /*key=*/0, MPI_INFO_NULL, &node));
  NodePlacement placement;
  FT_MPI_CHECK(MPI_Comm_rank(node, &placement.local_rank));
  FT_MPI_CHECK(MPI_Comm_size(node, &placement.local_size));
  FT_MPI_CHECK(MPI_Comm_free(&node));
  return placement;
}

}  // namespace facetrain
