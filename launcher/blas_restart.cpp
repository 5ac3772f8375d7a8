// restart_for_blas_kernels (see blas_restart.h): one decision from OpenBLAS's own answer (its core name),
// the CPU's cpuid and the environment, then at most one execv.
#include "launcher/blas_restart.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "runtime/blas_kernels.h"

namespace facetrain {
namespace {

constexpr const char* kCoretype = "OPENBLAS_CORETYPE";
// On the restarted process only: the generic kernels OpenBLAS had chosen before the restart.
constexpr const char* kRestartedFrom = "FACETRAIN_BLAS_RESTARTED_FROM";
constexpr const char* kTestFallback = "FACETRAIN_TEST_OPENBLAS_FALLBACK";

std::string& choice() {
  static std::string text;
  return text;
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

std::string decide(char** argv) {
  const BlasKernels blas = blas_kernels();
  if (blas.core.empty()) return "";  // another BLAS: its kernels are its own choice (describe says so)
  const std::string coretype = env(kCoretype);
  const std::string restarted_from = env(kRestartedFrom);
  if (!restarted_from.empty()) {
    unsetenv(kCoretype);
    unsetenv(kRestartedFrom);
    if (is_generic_openblas_core(blas.core)) {
      return "kept by OpenBLAS after a restart with OPENBLAS_CORETYPE=" + coretype;
    }
    return "restarted once with OPENBLAS_CORETYPE=" + coretype + ": OpenBLAS had fallen back to " + restarted_from +
           " on this CPU";
  }
  const bool fallback_stand_in = !env(kTestFallback).empty();
  if (!coretype.empty() && !fallback_stand_in) return "your OPENBLAS_CORETYPE=" + coretype + ", kept";
  if (!is_generic_openblas_core(blas.core)) return "OpenBLAS's choice";
  const std::string fit = openblas_core_for(cpu_features());
  if (fit.empty()) return "OpenBLAS's choice; this CPU has no AVX2";
  if (!blas.dynamic) return "OpenBLAS's choice: built without DYNAMIC_ARCH, it has no others";

  setenv(kCoretype, fit.c_str(), 1);
  setenv(kRestartedFrom, blas.core.c_str(), 1);
  unsetenv(kTestFallback);
  execv("/proc/self/exe", argv);
  const int error = errno;  // execv returns only on failure: go on as we are, with the environment as it was
  unsetenv(kRestartedFrom);
  if (fallback_stand_in) {
    setenv(kTestFallback, "1", 1);
    setenv(kCoretype, coretype.c_str(), 1);
  } else {
    unsetenv(kCoretype);
  }
  return "OpenBLAS fell back to them on this CPU; restarting with OPENBLAS_CORETYPE=" + fit +
         " failed: execv /proc/self/exe: " + std::strerror(error);
}

}  // namespace

std::string restart_for_blas_kernels(char** argv) {
  choice() = decide(argv);
  return choice();
}

const std::string& blas_kernels_choice() { return choice(); }

}  // namespace facetrain
