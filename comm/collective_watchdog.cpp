// The collective watchdog of the MPI backend (issue 7, comm/README.md): when a wait outlives the timeout the
// rank asks every other one, on a separate control communicator, which collective it has started, and names
// the ranks that did not arrive in the CollectiveTimeout message. Also the operation text of every timeout.
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <exception>
#include <iterator>
#include <sstream>
#include <vector>

#include "core/stopwatch.h"
#include "comm/comm_internal.h"
#include "comm/mpi_backend.h"

namespace facetrain {
namespace comm_detail {
namespace {

// Watchdog message tags on the control communicator (its own MPI_Comm_dup, so they never match data).
constexpr int kQueryTag = 1;
constexpr int kReplyTag = 2;

}  // namespace

std::string describe_operation(const std::string& label, int64_t step) {
  return step >= 0 ? label + " at step " + std::to_string(step) : label;
}

void CollectiveWatchdog::serve_queries(int64_t started, int64_t step) {
  for (;;) {
    int flag = 0;
    MPI_Status status;
    FT_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kQueryTag, control_, &flag, &status));
    if (!flag) break;
    int64_t query[3];
    FT_MPI_CHECK(MPI_Recv(query, 3, MPI_INT64_T, status.MPI_SOURCE, kQueryTag, control_, MPI_STATUS_IGNORE));
    send_control(status.MPI_SOURCE, kReplyTag, query[0], started, step);
  }
  for (auto it = outbox_.begin(); it != outbox_.end();) {
    int done = 0;
    FT_MPI_CHECK(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE));
    it = done ? outbox_.erase(it) : std::next(it);
  }
}

void CollectiveWatchdog::free_requests() {
  for (auto& message : outbox_) {
    if (message.request != MPI_REQUEST_NULL) MPI_Request_free(&message.request);
  }
}

void CollectiveWatchdog::send_control(int peer, int tag, int64_t a, int64_t b, int64_t c) {
  outbox_.emplace_back();
  Outgoing& out = outbox_.back();
  out.message[0] = a;
  out.message[1] = b;
  out.message[2] = c;
  FT_MPI_CHECK(MPI_Isend(out.message, 3, MPI_INT64_T, peer, tag, control_, &out.request));
}

std::string CollectiveWatchdog::timeout_message(const Operation& op, double timeout_seconds, int64_t started,
                                                int64_t step) {
  std::ostringstream m;
  m << describe_operation(op.label, op.step) << " did not complete within " << timeout_seconds << " s";
  if (size_ > 1) {
    try {
      m << "; " << who_did_not_arrive(op, timeout_seconds, started, step);
    } catch (const std::exception& e) {  // e.g. a dead peer: keep the timeout message
      m << "; could not ask the other ranks which collective they reached (" << e.what() << ")";
    }
  }
  m << ". HINT: a rank stopped making progress (stuck I/O, a deadlock) or ranks issued collectives in "
       "different orders; raise distributed.collective_timeout_s if the operation is legitimately slow";
  return m.str();
}

// Asks every other rank which collective it has started (on the control communicator, answered from
// their wait/test loops). A rank that started this one or a later one has arrived; one that answers
// with an earlier one, or not within the grace period (stuck outside MPI), did not.
std::string CollectiveWatchdog::who_did_not_arrive(const Operation& op, double timeout_seconds, int64_t started,
                                                   int64_t step_now) {
  const double grace = std::clamp(0.1 * timeout_seconds, 0.2, 5.0);
  const int64_t query_id = ++queries_ * size_ + rank_;
  for (int r = 0; r < size_; ++r) {
    if (r != rank_) send_control(r, kQueryTag, query_id, op.seq, op.step);
  }
  std::vector<int64_t> seq(size_, -1), step(size_, -1);
  int answers = 0;
  const auto start = Clock::now();
  while (answers < size_ - 1 && seconds_since(start) < grace) {
    serve_queries(started, step_now);
    int flag = 0;
    MPI_Status status;
    FT_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kReplyTag, control_, &flag, &status));
    if (!flag) {
      if (oversubscribed_) sched_yield();
      continue;
    }
    int64_t reply[3];
    FT_MPI_CHECK(MPI_Recv(reply, 3, MPI_INT64_T, status.MPI_SOURCE, kReplyTag, control_, MPI_STATUS_IGNORE));
    if (reply[0] != query_id) continue;  // a late answer to an earlier query
    if (seq[status.MPI_SOURCE] < 0) ++answers;
    seq[status.MPI_SOURCE] = reply[1];
    step[status.MPI_SOURCE] = reply[2];
  }
  std::ostringstream m;
  int missing = 0;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_ || seq[r] >= op.seq) continue;
    m << (missing++ ? ", " : "ranks that did not arrive: ") << r;
    if (seq[r] < 0) {
      m << " (no answer within " << grace << " s: busy outside MPI or stuck)";
    } else {
      m << " (" << op.seq - seq[r] << " collective(s) behind";
      if (step[r] >= 0) m << ", at step " << step[r];
      m << ")";
    }
  }
  if (missing == 0) m << "every rank answered that it has reached it (a network or MPI problem?)";
  return m.str();
}

}  // namespace comm_detail
}  // namespace facetrain
