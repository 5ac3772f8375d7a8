// Process placement (see process.h). The node-local rank and size come from MPI (node_placement); the
// launchers' variables (Open MPI's OMPI_COMM_WORLD_LOCAL_*, srun's SLURM_LOCALID) are compared with them and a
// disagreement is logged, since a wrong local rank means two ranks driving one GPU.
#include "comm/communicator.h"
#include "launcher/blas_restart.h"
#include "launcher/gpu_info.h"
#include "launcher/process.h"
#include "launcher/threads.h"
#include "runtime/setup_agreement.h"

#include "core/error.h"
#include "core/log.h"

#include <sched.h>
#include <unistd.h>

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>
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

// FACETRAIN_TEST_GPU_IDS (gpu_info.h): a comma-separated list, or empty for no GPU; unset: the probe.
std::vector<std::string> test_gpu_ids_or(std::vector<std::string> (*probe)()) {
  const char* ids = std::getenv("FACETRAIN_TEST_GPU_IDS");
  if (ids == nullptr) return probe();
  std::vector<std::string> out;
  std::stringstream in(ids);
  for (std::string id; std::getline(in, id, ',');) {
    if (!id.empty()) out.push_back(id);
  }
  return out;
}

torch::Device choose_device(int rank, const std::vector<GpuView>& views) {
  FT_CHECK(rank >= 0 && rank < static_cast<int>(views.size()), "rank " << rank << " of " << views.size());
  int with_gpus = -1, without_gpus = -1;
  for (int r = static_cast<int>(views.size()) - 1; r >= 0; --r) (views[r].gpus.empty() ? without_gpus : with_gpus) = r;
  if (with_gpus < 0) return torch::kCPU;
  FT_USER_CHECK(without_gpus < 0, "rank " << without_gpus << " on host " << views[without_gpus].host
                                          << " sees no GPU while rank " << with_gpus << " on host "
                                          << views[with_gpus].host << " sees " << views[with_gpus].gpus.size()
                                          << ": every rank of a job needs a GPU, or none does (check "
                                             "CUDA_VISIBLE_DEVICES and the job's GPU request)");
  const GpuView& mine = views[rank];
  std::vector<int> node;  // this host's ranks, by world rank
  for (int r = 0; r < static_cast<int>(views.size()); ++r) {
    if (views[r].host == mine.host) node.push_back(r);
  }
  const int local_rank = static_cast<int>(std::find(node.begin(), node.end(), rank) - node.begin());
  const int local_size = static_cast<int>(node.size());
  bool shared = true;
  for (int r : node) shared = shared && views[r].gpus == mine.gpus;
  if (shared) {
    const int gpus = static_cast<int>(mine.gpus.size());
    FT_USER_CHECK(local_size <= gpus, "host " << mine.host << " runs " << local_size << " ranks but sees " << gpus
                                              << " GPU" << (gpus > 1 ? "s" : "")
                                              << " (after CUDA_VISIBLE_DEVICES): one GPU per rank, so start at most "
                                              << gpus << " ranks per node (NCCL cannot put two ranks on one GPU)");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
  }
  // Each rank was given its own GPUs: it takes the first, which must be no other rank's first.
  for (int r : node) {
    FT_USER_CHECK(r == rank || views[r].gpus.front() != mine.gpus.front(),
                  "ranks " << std::min(r, rank) << " and " << std::max(r, rank) << " on host " << mine.host
                           << " would both drive GPU " << mine.gpus.front()
                           << ": give each rank its own GPU (srun --gpus-per-task=1) or let every rank see all of "
                              "the node's GPUs (slurm/README.md)");
  }
  return torch::Device(torch::kCUDA, 0);
}

namespace {

// "host\nid\nid..." in a fixed-size byte row, so one all_gather carries every rank's view.
constexpr int64_t kViewBytes = 4096;

std::vector<GpuView> gather_gpu_views(Communicator& comm, const GpuView& mine) {
  std::string text = mine.host;
  for (const auto& id : mine.gpus) text += "\n" + id;
  FT_USER_CHECK(static_cast<int64_t>(text.size()) < kViewBytes, "host " << mine.host << " lists too many GPUs");
  torch::Tensor row = torch::zeros({1, kViewBytes}, torch::kUInt8);
  std::memcpy(row.data_ptr<uint8_t>(), text.data(), text.size());
  const torch::Tensor all = comm.all_gather(row, "allgather of the ranks' GPU views").contiguous();  // (collective)
  std::vector<GpuView> views(static_cast<size_t>(all.size(0)));
  for (int64_t r = 0; r < all.size(0); ++r) {
    const char* bytes = reinterpret_cast<const char*>(all[r].data_ptr<uint8_t>());
    std::stringstream in(std::string(bytes, strnlen(bytes, kViewBytes)));
    std::getline(in, views[r].host);
    for (std::string id; std::getline(in, id);) views[r].gpus.push_back(id);
  }
  return views;
}

// "0-3,8" for the cores in this process's affinity mask.
std::string affinity_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return "";
  std::string out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    int last = c;
    while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set)) ++last;
    out += (out.empty() ? "" : ",") + std::to_string(c) + (last > c ? "-" + std::to_string(last) : "");
    c = last;
  }
  return out;
}

}  // namespace

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
  // The ranks' views are agreed on (one placement decided from the same facts on every rank): a rank that
  // cannot run where it is makes every rank throw the same line, so none waits in a collective.
  // Every rank checks every rank's placement, so all find the same first problem and exit with it cleanly.
  const std::vector<GpuView> views = gather_gpu_views(comm, GpuView{ctx.host, visible_gpu_ids()});
  for (int r = 0; r < ctx.world_size; ++r) {
    try {
      const torch::Device device = choose_device(r, views);
      if (r == ctx.rank) ctx.device = device;
    } catch (const UserError& e) {
      throw JobUserError(e.what(), ctx.rank == 0);
    }
  }
  if (ctx.device.is_cuda()) {
    try {
      use_gpu(ctx.device.index());
    } catch (const UserError& e) {
      throw JobUserError(e.what(), ctx.rank == 0);  // the same binary on every rank: every rank fails so
    }
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
  ctx.cpu_cores = affinity_cores();
  ctx.blas = blas_kernels();
  ctx.blas.choice = blas_kernels_choice();
  return ctx;
}

}  // namespace facetrain
