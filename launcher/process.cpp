// Process placement (see process.h). The node-local rank and size come from MPI (node_placement); the
// launchers' variables (Open MPI's OMPI_COMM_WORLD_LOCAL_*, srun's SLURM_LOCALID) are compared with them and a
// disagreement is logged, since a wrong local rank means two ranks driving one GPU.
#include "comm/communicator.h"
#include "launcher/gpu_info.h"
#include "launcher/process.h"
#include "launcher/threads.h"

#include "core/error.h"
#include "core/log.h"

#include <sched.h>
#include <unistd.h>

#include <torch/torch.h>

#include <cstdlib>
#include <thread>

namespace facetrain {
namespace {

// The launcher's idea of the node-local rank, -1 when it sets none.
int launcher_local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') return std::atoi(v);
  }
  return -1;
}

int usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

torch::Device choose_device(int local_rank, int local_size, int visible_gpus, const std::string& host) {
  if (visible_gpus <= 0) return torch::kCPU;
  FT_USER_CHECK(local_size <= visible_gpus,
                "host " << host << " runs " << local_size << " ranks but sees " << visible_gpus << " GPU"
                        << (visible_gpus > 1 ? "s" : "") << " (after CUDA_VISIBLE_DEVICES): one GPU per rank, so start"
                        << " at most " << visible_gpus << " ranks per node (NCCL cannot put two ranks on one GPU)");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
}

ProcessContext place_process(Communicator& comm, int threads_override) {
  ProcessContext ctx;
  ctx.comm = &comm;
  ctx.rank = comm.rank();
  ctx.world_size = comm.size();
  const NodePlacement node = node_placement();  // (collective) every rank
  ctx.local_rank = node.local_rank;
  ctx.local_size = node.local_size;
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  ctx.host = host;
  const int from_launcher = launcher_local_rank();
  if (from_launcher >= 0 && from_launcher != ctx.local_rank) {
    log_all("placement: the launcher says local rank " + std::to_string(from_launcher) + ", MPI says " +
            std::to_string(ctx.local_rank) + " on " + ctx.host + "; using MPI's");
  }
  ctx.device = choose_device(ctx.local_rank, ctx.local_size,
                             torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0, ctx.host);
  if (ctx.device.is_cuda()) {
    ctx.device_description = describe_gpu(ctx.device.index());
    if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES")) {
      ctx.device_description += std::string(", CUDA_VISIBLE_DEVICES=") + visible;
    }
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
