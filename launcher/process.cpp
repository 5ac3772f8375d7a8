// Process placement (see process.h). Local rank comes from the launcher's environment: Open MPI's mpirun
// sets OMPI_COMM_WORLD_LOCAL_*, srun sets SLURM_LOCALID / SLURM_NTASKS_PER_NODE-style variables.
#include "comm/communicator.h"
#include "launcher/threads.h"
#include "launcher/process.h"

#include <sched.h>
#include <unistd.h>

#include <torch/torch.h>

#include <cstdlib>
#include <thread>

namespace facetrain {
namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::atoi(v);
}

// Slurm's SLURM_TASKS_PER_NODE looks like "2(x3),1": the first count is this job's tasks on the first node;
// SLURM_NTASKS_PER_NODE is set only with --ntasks-per-node. Prefer the latter, then the former.
int slurm_local_size() {
  int n = env_int("SLURM_NTASKS_PER_NODE", 0);
  if (n > 0) return n;
  const char* v = std::getenv("SLURM_TASKS_PER_NODE");
  return v != nullptr ? std::max(1, std::atoi(v)) : 0;
}

int usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

ProcessContext place_process(Communicator& comm, int threads_override) {
  ProcessContext ctx;
  ctx.comm = &comm;
  ctx.rank = comm.rank();
  ctx.world_size = comm.size();
  ctx.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("SLURM_LOCALID", 0));
  ctx.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", slurm_local_size());
  if (ctx.local_size <= 0) ctx.local_size = 1;
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  ctx.host = host;

  if (torch::cuda::is_available()) {
    const int devices = static_cast<int>(torch::cuda::device_count());
    ctx.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(ctx.local_rank % devices));
  }

  // mpirun binds each rank to its cores (--bind-to core by default for np <= 2), so the affinity mask is
  // the honest count; without binding every rank sees all cores and shares them with its node peers.
  const int cores = usable_cores();
  const bool bound = cores < static_cast<int>(std::thread::hardware_concurrency());
  ctx.threads = threads_override > 0 ? threads_override : std::max(1, bound ? cores : cores / ctx.local_size);
  set_compute_threads(ctx.threads);
  return ctx;
}

}  // namespace facetrain
