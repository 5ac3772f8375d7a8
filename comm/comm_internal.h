// Internal to comm/ (not for other folders): the MPI check macro, the registry of abort hooks that
// comm_abort() runs before MPI_Abort (live NCCL communicators register ncclCommAbort there), both in
// mpi_lifetime.cpp, and the operation text shared by timeout messages (collective_watchdog.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace facetrain {
namespace comm_detail {

// Throws std::runtime_error: "file:line: MPI error in <call>: <MPI_Error_string> (code c). HINT: ...".
[[noreturn]] void throw_mpi_error(int code, const char* call, const char* file, int line);

// Runs `hook` (once) from comm_abort() before MPI_Abort. `owner` identifies it for removal.
void register_abort_hook(const void* owner, std::function<void()> hook);
void unregister_abort_hook(const void* owner);

// "<label> at step s" (the step only when known, i.e. >= 0).
std::string describe_operation(const std::string& label, int64_t step);

}  // namespace comm_detail
}  // namespace facetrain

// FT_MPI_CHECK(MPI_Allreduce(...)): every MPI call in comm/ goes through this. The communicators use
// MPI_ERRORS_RETURN so an MPI error becomes an exception the launcher reports (and then aborts the job).
#define FT_MPI_CHECK(call)                                                              \
  do {                                                                                  \
    const int ft_mpi_rc_ = (call);                                                      \
    if (ft_mpi_rc_ != 0 /* MPI_SUCCESS */)                                              \
      ::facetrain::comm_detail::throw_mpi_error(ft_mpi_rc_, #call, __FILE__, __LINE__); \
  } while (0)
