// Which communicator averages the gradients (distributed.backend: auto, mpi or nccl) and how it is made,
// plus the NCCL stand-ins of builds without NCCL (nccl_available() false, make_nccl_communicator() a
// UserError); the real ones are in nccl_communicator.cpp.
#include <memory>
#include <string>

#include "core/error.h"
#include "comm/communicator.h"

namespace facetrain {

const char* gradient_backend_name(GradientBackend backend) {
  switch (backend) {
    case GradientBackend::kMpi: return "mpi";
    case GradientBackend::kNccl: return "nccl";
  }
  FT_CHECK(false, "unknown gradient backend " << static_cast<int>(backend));
}

GradientBackend choose_gradient_backend(const std::string& requested, bool model_on_gpu, bool nccl_built) {
  // MPI all-reduces host memory; gradients on a GPU would need a copy each way per bucket: NCCL's job.
  FT_USER_CHECK(requested != "mpi" || !model_on_gpu,
                "distributed.backend: mpi averages gradients in host memory, and this job's model is on GPUs; use "
                "nccl or auto");
  if (requested == "mpi") return GradientBackend::kMpi;
  if (requested == "auto") return model_on_gpu && nccl_built ? GradientBackend::kNccl : GradientBackend::kMpi;
  FT_USER_CHECK(requested == "nccl", "distributed.backend must be auto, mpi or nccl, got '" << requested << "'");
  FT_USER_CHECK(nccl_built,
                "distributed.backend: nccl is not in this build (LibTorch without CUDA, or CUDA/NCCL "
                "headers not found when configuring); use mpi or auto");
  FT_USER_CHECK(model_on_gpu,
                "distributed.backend: nccl needs the model on a GPU, and this rank has no CUDA device; "
                "use mpi or auto");
  return GradientBackend::kNccl;
}

std::unique_ptr<Communicator> make_gradient_communicator(GradientBackend backend, int device_index,
                                                         double timeout_seconds) {
  std::unique_ptr<Communicator> comm;
  switch (backend) {
    case GradientBackend::kMpi: comm = make_mpi_communicator(); break;
    case GradientBackend::kNccl: comm = make_nccl_communicator(device_index, timeout_seconds); break;
  }
  FT_CHECK(comm != nullptr, "unknown gradient backend " << static_cast<int>(backend));
  comm->set_timeout_seconds(timeout_seconds);
  return comm;
}

#ifndef FACETRAIN_HAVE_NCCL
bool nccl_available() { return false; }

std::unique_ptr<Communicator> make_nccl_communicator(int, double) {
  throw UserError(
      "distributed.backend: nccl is not available in this build (LibTorch without CUDA, or CUDA/NCCL not "
      "found when configuring); use mpi or auto");
}
#endif

}  // namespace facetrain
