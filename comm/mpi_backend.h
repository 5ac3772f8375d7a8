// Internal to the MPI backend (mpi_communicator.cpp, ring_allreduce.cpp, collective_watchdog.cpp): the record
// of a started collective, the work that the communicator polls to completion, the mean's ring and the
// watchdog that names the ranks missing from a collective that timed out.
#pragma once

#include <mpi.h>
#include <torch/types.h>

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

namespace facetrain {
namespace comm_detail {

struct Operation {
  int64_t seq = 0;  // collectives started on this communicator, counting this one (same on every rank)
  int64_t step = -1;
  std::string label;
  int64_t flight = -1;  // its flight-recorder handle (comm/flight_recorder.h)
};

// A started operation. advance() makes whatever progress is possible without blocking (MPI_Test drives
// Open MPI's progress) and returns true once complete. It owns every buffer MPI may still touch.
class MpiWork {
 public:
  virtual ~MpiWork() = default;
  virtual bool advance() = 0;
};

// --- ring_allreduce.cpp ------------------------------------------------------------------------------

// Scratch buffers for the ring, reused across operations (a fresh 12 MB allocation per bucket costs
// page faults every step). Shared with the work objects, which hand their buffer back when done.
class ScratchPool {
 public:
  torch::Tensor acquire(int64_t bytes);
  void release(torch::Tensor t);

 private:
  std::vector<torch::Tensor> free_;
};

// Starts the in-place mean of `tensor` (contiguous CPU float32 or float64) over the `size` ranks of `comm`
// as a ring of non-blocking point-to-point messages tagged `tag` (unique among the operations in flight).
std::unique_ptr<MpiWork> start_ring_mean(MPI_Comm comm, int rank, int size, int tag, const torch::Tensor& tensor,
                                         std::shared_ptr<ScratchPool> pool);

// --- collective_watchdog.cpp -------------------------------------------------------------------------

// The watchdog of one MPI communicator, on its `control` communicator (its own MPI_Comm_dup, so queries
// never match data; borrowed: free_requests() before the owner frees it). Ranks answer each other's
// "which collective are you at?" from their wait/test loops; a rank whose wait timed out asks them all.
class CollectiveWatchdog {
 public:
  CollectiveWatchdog(MPI_Comm control, int rank, int size, bool oversubscribed)
      : control_(control), rank_(rank), size_(size), oversubscribed_(oversubscribed) {}

  // Answers other ranks' queries with [query id, `started` (collectives started), `step`], and forgets
  // completed sends. Cheap (one MPI_Iprobe) when nobody asks.
  void serve_queries(int64_t started, int64_t step);
  // The CollectiveTimeout message for `op`, which did not complete within `timeout_seconds`: it names the
  // ranks that did not arrive (this rank has started `started` collectives and is at `step`).
  std::string timeout_message(const Operation& op, double timeout_seconds, int64_t started, int64_t step);
  // Frees the requests of sends still in flight (before the control communicator is freed).
  void free_requests();

 private:
  struct Outgoing {
    int64_t message[3] = {0, 0, 0};
    MPI_Request request = MPI_REQUEST_NULL;
  };

  void send_control(int peer, int tag, int64_t a, int64_t b, int64_t c);
  std::string who_did_not_arrive(const Operation& op, double timeout_seconds, int64_t started, int64_t step);

  MPI_Comm control_;
  int rank_, size_;
  bool oversubscribed_;  // more ranks on this node than cores: yield while waiting for answers
  int64_t queries_ = 0;
  std::list<Outgoing> outbox_;  // a list: MPI holds pointers to the messages until the sends complete
};

}  // namespace comm_detail
}  // namespace facetrain
