// MPI backend of the communication unit: process-wide MPI lifetime (init, finalize, abort), the MPI
// communicator for CPU tensors with timed waits (CollectiveTimeout), and the watchdog query that names the
// ranks that did not arrive at a collective. Also the scalar helpers and the NCCL stand-ins of CPU builds.
#include <mpi.h>
#include <sched.h>
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <list>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "common/error.h"
#include "trainer/comm/comm_internal.h"
#include "trainer/comm/communicator.h"

namespace facetrain {

// ---------------------------------------------------------------------------------------------------
// errors, formatting, abort hooks
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
    case MPI_ERR_BUFFER:
      return "a tensor too large for one MPI call or not contiguous; this is a bug in trainer/comm";
    case MPI_ERR_COMM:
      return "a communicator used after comm_finalize()? Destroy communicators before finalizing MPI";
    case MPI_ERR_ROOT:
    case MPI_ERR_RANK:
      return "root/peer rank outside 0..world_size-1";
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

std::string format_bytes(int64_t bytes) {
  std::ostringstream oss;
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) {
    oss << std::fixed << std::setprecision(2) << b / 1e9 << " GB";
  } else if (b >= 1e6) {
    oss << std::fixed << std::setprecision(1) << b / 1e6 << " MB";
  } else if (b >= 1e3) {
    oss << std::fixed << std::setprecision(1) << b / 1e3 << " kB";
  } else {
    oss << bytes << " B";
  }
  return oss.str();
}

std::string describe_operation(const std::string& label, int64_t step) {
  return step >= 0 ? label + " at step " + std::to_string(step) : label;
}

}  // namespace comm_detail

using comm_detail::describe_operation;
using comm_detail::format_bytes;

// ---------------------------------------------------------------------------------------------------
// process-wide lifetime
// ---------------------------------------------------------------------------------------------------
namespace {

bool g_started_mpi = false;

// Operations whose PendingCollective was destroyed before completion: MPI forbids cancelling or freeing a
// non-blocking collective's request, so the buffer must stay valid until the process ends.
struct Orphan {
  std::vector<MPI_Request> requests;
  std::vector<torch::Tensor> buffers;
};
std::vector<Orphan>& orphans() {
  static std::vector<Orphan> o;
  return o;
}

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
  // Open MPI runs MPI_Iallreduce through libnbc, whose default for fewer than 4 ranks or MPI_IN_PLACE is a
  // binomial reduce followed by a broadcast: every byte crosses twice, one after the other. Its ring
  // (reduce-scatter + allgather) is what the blocking MPI_Allreduce does for large messages; measured with
  // `facetrain bench allreduce` on 2 ranks (see trainer/comm/README.md). A user's own setting wins.
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "ring", /*overwrite=*/0);
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

// ---------------------------------------------------------------------------------------------------
// the MPI communicator
// ---------------------------------------------------------------------------------------------------
namespace {

using Clock = std::chrono::steady_clock;

// MPI counts are int; larger tensors go in several calls of at most this many elements (or bytes).
constexpr int64_t kMaxCount = int64_t{1} << 30;

// Watchdog message tags on the control communicator (its own MPI_Comm_dup, so they never match data).
constexpr int kQueryTag = 1;
constexpr int kReplyTag = 2;

// Element type for reductions: a switch, never a silent cast.
MPI_Datatype mpi_sum_type(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return MPI_FLOAT;
    case torch::kFloat64:
      return MPI_DOUBLE;
    case torch::kInt32:
      return MPI_INT32_T;
    case torch::kInt64:
      return MPI_INT64_T;
    case torch::kUInt8:
      return MPI_UINT8_T;
    case torch::kInt8:
      return MPI_INT8_T;
    default:
      break;
  }
  FT_CHECK(false, "the MPI all-reduce does not support dtype " << type
                  << " (float32, float64, int32, int64, uint8, int8); convert explicitly — trainer/comm never "
                     "casts silently");
}

void check_cpu_contiguous(const torch::Tensor& tensor, const char* op) {
  FT_CHECK(tensor.defined(), op << ": undefined tensor");
  FT_CHECK(tensor.device().is_cpu(), op << ": the MPI communicator takes CPU tensors, got " << tensor.device()
                                        << " (use the NCCL communicator for CUDA tensors)");
  FT_CHECK(tensor.is_contiguous(), op << ": tensor must be contiguous (call .contiguous() and copy back)");
}

struct Operation {
  int64_t seq = 0;   // collectives started on this communicator, counting this one (same on every rank)
  int64_t step = -1;
  std::string label;
};

class MpiCommunicator;

class MpiPending final : public PendingCollective {
 public:
  MpiPending(MpiCommunicator* comm, std::vector<MPI_Request> requests, torch::Tensor tensor, Operation op)
      : comm_(comm), requests_(std::move(requests)), tensor_(std::move(tensor)), op_(std::move(op)) {}
  ~MpiPending() override;
  void wait() override;
  bool test() override;

 private:
  MpiCommunicator* comm_;
  std::vector<MPI_Request> requests_;
  torch::Tensor tensor_;  // keeps the buffer alive while MPI may write it
  Operation op_;
  bool done_ = false;
};

// Every operation, blocking ones included, is an MPI non-blocking collective completed by polling: MPI
// never matches a blocking collective on one rank with a non-blocking one on another, so one kind
// everywhere lets ranks mix all_reduce_sum_ and all_reduce_sum_async_ (and differ in timeout) safely, and
// polling is what makes the timeout and the watchdog possible. Open MPI's libnbc costs a few microseconds
// more than its blocking algorithms for tiny messages; the gradient buckets need the non-blocking kind anyway.
class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    FT_CHECK(mpi_is_live(), "make_mpi_communicator() needs comm_initialize() first");
    // (collective) every rank
    FT_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &data_));
    FT_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &control_));
    FT_MPI_CHECK(MPI_Comm_set_errhandler(data_, MPI_ERRORS_RETURN));
    FT_MPI_CHECK(MPI_Comm_set_errhandler(control_, MPI_ERRORS_RETURN));
    FT_MPI_CHECK(MPI_Comm_rank(data_, &rank_));
    FT_MPI_CHECK(MPI_Comm_size(data_, &size_));
    MPI_Comm node = MPI_COMM_NULL;
    int node_ranks = 1;
    FT_MPI_CHECK(MPI_Comm_split_type(data_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
    FT_MPI_CHECK(MPI_Comm_size(node, &node_ranks));
    MPI_Comm_free(&node);
    oversubscribed_ = node_ranks > static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }

  ~MpiCommunicator() override {
    if (!mpi_is_live()) return;
    for (auto& message : outbox_) {
      if (message.request != MPI_REQUEST_NULL) MPI_Request_free(&message.request);
    }
    MPI_Comm_free(&control_);
    MPI_Comm_free(&data_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  using Communicator::all_gather;
  using Communicator::all_reduce_sum_;
  using Communicator::all_reduce_sum_async_;
  using Communicator::barrier;
  using Communicator::broadcast_;

  void all_reduce_sum_(torch::Tensor& tensor, const std::string& label) override {
    check_cpu_contiguous(tensor, "all_reduce_sum_");
    const MPI_Datatype type = mpi_sum_type(tensor.scalar_type());
    const Operation op = begin(label, "allreduce of " + format_bytes(tensor.nbytes()));
    std::vector<MPI_Request> requests = start_iallreduce(tensor, type);
    wait_blocking(requests, op, {tensor});
  }

  std::unique_ptr<PendingCollective> all_reduce_sum_async_(torch::Tensor& tensor,
                                                           const std::string& label) override {
    check_cpu_contiguous(tensor, "all_reduce_sum_async_");
    const MPI_Datatype type = mpi_sum_type(tensor.scalar_type());
    Operation op = begin(label, "allreduce of " + format_bytes(tensor.nbytes()));
    return std::make_unique<MpiPending>(this, start_iallreduce(tensor, type), tensor, std::move(op));
  }

  void broadcast_(torch::Tensor& tensor, int root, const std::string& label) override {
    check_cpu_contiguous(tensor, "broadcast_");
    FT_CHECK(root >= 0 && root < size_, "broadcast_: root " << root << " outside 0.." << size_ - 1);
    const Operation op = begin(label, "broadcast of " + format_bytes(tensor.nbytes()) + " from rank " +
                                          std::to_string(root));
    std::vector<MPI_Request> requests;
    for_chunks(tensor.nbytes(), 1, tensor.data_ptr(), [&](void* p, int count) {
      requests.emplace_back();
      FT_MPI_CHECK(MPI_Ibcast(p, count, MPI_BYTE, root, data_, &requests.back()));
    });
    wait_blocking(requests, op, {tensor});
  }

  torch::Tensor all_gather(const torch::Tensor& tensor, const std::string& label) override {
    check_cpu_contiguous(tensor, "all_gather");
    torch::Tensor local = tensor.dim() == 0 ? tensor.reshape({1}) : tensor;
    const int64_t rows = local.size(0);
    std::vector<int64_t> trailing(local.sizes().begin() + 1, local.sizes().end());
    int64_t row_bytes = local.element_size();
    int64_t shape_code = static_cast<int64_t>(local.scalar_type()) + 1000 * static_cast<int64_t>(trailing.size());
    for (int64_t d : trailing) {
      row_bytes *= d;
      shape_code = shape_code * 1000003 + d;
    }
    const std::string what = label.empty() ? "allgather of " + format_bytes(local.nbytes()) : label;

    // (collective) every rank: exchange [rows, shape code] so the receive sizes are known.
    // Buffers are tensors so that a timed-out request can keep them alive (see wait_blocking).
    torch::Tensor mine = torch::tensor({rows, shape_code}, torch::kInt64);
    torch::Tensor all_meta = torch::empty({2 * static_cast<int64_t>(size_)}, torch::kInt64);
    {
      const Operation op = begin(what + " (sizes)", "");
      std::vector<MPI_Request> requests(1);
      FT_MPI_CHECK(MPI_Iallgather(mine.data_ptr(), 2, MPI_INT64_T, all_meta.data_ptr(), 2, MPI_INT64_T, data_,
                                  &requests[0]));
      wait_blocking(requests, op, {mine, all_meta});
    }
    const int64_t* meta = all_meta.data_ptr<int64_t>();
    // int32 tensors: MPI may read the count arrays of a non-blocking collective until it completes.
    torch::Tensor counts_tensor = torch::empty({size_}, torch::kInt32);
    torch::Tensor displacements_tensor = torch::empty({size_}, torch::kInt32);
    int* counts = counts_tensor.data_ptr<int>();
    int* displacements = displacements_tensor.data_ptr<int>();
    int64_t total_rows = 0, offset = 0;
    for (int r = 0; r < size_; ++r) {
      FT_CHECK(meta[2 * r + 1] == meta[1],
               "all_gather: rank " << r << " passed a tensor whose dtype or trailing dims differ from rank 0's "
                                   << "(only dim 0 may differ)");
      const int64_t bytes = meta[2 * r] * row_bytes;
      FT_CHECK(offset + bytes <= INT_MAX, "all_gather: " << format_bytes(offset + bytes)
                                                         << " exceed what one MPI_Allgatherv can move (2 GB)");
      counts[r] = static_cast<int>(bytes);
      displacements[r] = static_cast<int>(offset);
      offset += bytes;
      total_rows += meta[2 * r];
    }
    std::vector<int64_t> out_shape{total_rows};
    out_shape.insert(out_shape.end(), trailing.begin(), trailing.end());
    torch::Tensor out = torch::empty(out_shape, local.options());
    // (collective) every rank
    const Operation op = begin(what, "");
    std::vector<MPI_Request> requests(1);
    FT_MPI_CHECK(MPI_Iallgatherv(local.data_ptr(), counts[rank_], MPI_BYTE, out.data_ptr(), counts, displacements,
                                 MPI_BYTE, data_, &requests[0]));
    wait_blocking(requests, op, {local, out, counts_tensor, displacements_tensor});
    return out;
  }

  void barrier(const std::string& label) override {
    const Operation op = begin(label, "barrier");
    std::vector<MPI_Request> requests(1);
    FT_MPI_CHECK(MPI_Ibarrier(data_, &requests[0]));
    wait_blocking(requests, op, {});
  }

  // Polls the requests until complete. After timeout_seconds_ asks the other ranks which collective they
  // have reached and throws CollectiveTimeout naming the operation, the step and the ranks not there.
  // Polling (not MPI_Waitall) is what makes the timeout possible. It spins like a blocking MPI call: the
  // data moves inside MPI_Test (libnbc progresses there), and a sched_yield() hands the core to any other
  // runnable process for a whole time slice — with other work on the machine that doubled the measured
  // time of a 16 MB all-reduce. Only when this node has more ranks than cores does it yield, so the
  // rank that still has to arrive gets the core (what Open MPI does when oversubscribed).
  void wait_requests(std::vector<MPI_Request>& requests, const Operation& op) {
    const auto start = Clock::now();
    for (;;) {
      int done = 0;
      FT_MPI_CHECK(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE));
      if (done) return;
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (waited > 1e-3) serve_queries();
      if (timeout_seconds_ > 0 && waited > timeout_seconds_) throw CollectiveTimeout(timeout_message(op));
      if (oversubscribed_) sched_yield();
    }
  }

  // wait_requests for a blocking call: on a timeout the requests and their buffers are kept alive until the
  // process ends (MPI may still use them; a non-blocking collective cannot be cancelled), then rethrown.
  void wait_blocking(std::vector<MPI_Request>& requests, const Operation& op, std::vector<torch::Tensor> buffers) {
    try {
      wait_requests(requests, op);
    } catch (const CollectiveTimeout&) {
      orphans().push_back({std::move(requests), std::move(buffers)});
      throw;
    }
  }

  bool test_requests(std::vector<MPI_Request>& requests) {
    int done = 0;
    FT_MPI_CHECK(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE));
    serve_queries();
    return done != 0;
  }

  // Answers other ranks' "which collective are you at?" queries with [query id, collectives started, step],
  // and forgets completed sends. Cheap (one MPI_Iprobe) when nobody asks.
  void serve_queries() {
    for (;;) {
      int flag = 0;
      MPI_Status status;
      FT_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kQueryTag, control_, &flag, &status));
      if (!flag) break;
      int64_t query[3];
      FT_MPI_CHECK(MPI_Recv(query, 3, MPI_INT64_T, status.MPI_SOURCE, kQueryTag, control_, MPI_STATUS_IGNORE));
      send_control(status.MPI_SOURCE, kReplyTag, query[0], started_, step_);
    }
    for (auto it = outbox_.begin(); it != outbox_.end();) {
      int done = 0;
      FT_MPI_CHECK(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE));
      it = done ? outbox_.erase(it) : std::next(it);
    }
  }

 private:
  struct Outgoing {
    int64_t message[3] = {0, 0, 0};
    MPI_Request request = MPI_REQUEST_NULL;
  };

  Operation begin(const std::string& label, const std::string& default_label) {
    Operation op;
    op.seq = ++started_;
    op.step = step_;
    op.label = label.empty() ? default_label : label;
    return op;
  }

  template <typename F>
  static void for_chunks(int64_t count, int64_t unit_bytes, void* data, F&& f) {
    char* p = static_cast<char*>(data);
    int64_t remaining = count;
    do {  // at least one call, so a 0-element tensor still takes part in the collective
      const int64_t n = std::min(remaining, kMaxCount);
      f(p, static_cast<int>(n));
      p += n * unit_bytes;
      remaining -= n;
    } while (remaining > 0);
  }

  std::vector<MPI_Request> start_iallreduce(torch::Tensor& tensor, MPI_Datatype type) {
    std::vector<MPI_Request> requests;
    for_chunks(tensor.numel(), tensor.element_size(), tensor.data_ptr(), [&](void* p, int count) {
      requests.emplace_back();
      FT_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, p, count, type, MPI_SUM, data_, &requests.back()));
    });
    return requests;
  }

  void send_control(int peer, int tag, int64_t a, int64_t b, int64_t c) {
    outbox_.emplace_back();
    Outgoing& out = outbox_.back();
    out.message[0] = a;
    out.message[1] = b;
    out.message[2] = c;
    FT_MPI_CHECK(MPI_Isend(out.message, 3, MPI_INT64_T, peer, tag, control_, &out.request));
  }

  // Asks every other rank which collective it has started; a rank that has started this one (or a later
  // one) has arrived. Ranks that answer with an earlier collective, or do not answer within the grace
  // period (stuck outside MPI), did not arrive.
  std::string timeout_message(const Operation& op) {
    std::ostringstream m;
    m << describe_operation(op.label, op.step) << " did not complete within " << timeout_seconds_ << " s";
    if (size_ > 1) {
      try {
        m << "; " << who_did_not_arrive(op);
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
  std::string who_did_not_arrive(const Operation& op) {
    const double grace = std::clamp(0.1 * timeout_seconds_, 0.2, 5.0);
    const int64_t query_id = ++queries_ * size_ + rank_;
    for (int r = 0; r < size_; ++r) {
      if (r != rank_) send_control(r, kQueryTag, query_id, op.seq, op.step);
    }
    std::vector<int64_t> seq(size_, -1), step(size_, -1);
    int answers = 0;
    const auto start = Clock::now();
    while (answers < size_ - 1 && std::chrono::duration<double>(Clock::now() - start).count() < grace) {
      serve_queries();
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

  MPI_Comm data_ = MPI_COMM_NULL;     // the collectives
  MPI_Comm control_ = MPI_COMM_NULL;  // watchdog queries and answers, never blocking the data path
  int rank_ = 0, size_ = 1;
  bool oversubscribed_ = false;  // more ranks on this node than cores: yield while polling
  int64_t started_ = 0;  // collectives started on data_
  int64_t queries_ = 0;
  std::list<Outgoing> outbox_;  // a list: MPI holds pointers to the messages until the sends complete
};

MpiPending::~MpiPending() {
  if (done_ || !mpi_is_live()) return;
  try {
    if (test()) return;
  } catch (...) {
  }
  orphans().push_back({std::move(requests_), {std::move(tensor_)}});
}

void MpiPending::wait() {
  if (done_) return;
  comm_->wait_requests(requests_, op_);
  done_ = true;
  tensor_ = torch::Tensor();
}

bool MpiPending::test() {
  if (done_) {
    comm_->serve_queries();  // test() is a progress point: keep answering the watchdog
    return true;
  }
  if (comm_->test_requests(requests_)) {
    done_ = true;
    tensor_ = torch::Tensor();
  }
  return done_;
}

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

#ifndef FACETRAIN_HAVE_NCCL
bool nccl_available() { return false; }

std::unique_ptr<Communicator> make_nccl_communicator(int) {
  throw UserError(
      "distributed.backend: nccl is not available in this build (LibTorch without CUDA, or CUDA/NCCL not "
      "found when configuring); use mpi or auto");
}
#endif

// ---------------------------------------------------------------------------------------------------
// scalar helpers (collective)
// ---------------------------------------------------------------------------------------------------
double all_reduce_sum(Communicator& comm, double value) {
  torch::Tensor t = torch::tensor({value}, torch::kFloat64);
  comm.all_reduce_sum_(t, "allreduce of a scalar (sum)");
  return t.item<double>();
}

double all_reduce_max(Communicator& comm, double value) {
  torch::Tensor all = comm.all_gather(torch::tensor({value}, torch::kFloat64), "allgather of a scalar (max)");
  return all.max().item<double>();
}

bool any_rank(Communicator& comm, bool flag) {
  torch::Tensor t = torch::tensor({flag ? 1 : 0}, torch::kInt32);
  comm.all_reduce_sum_(t, "allreduce of a flag (any rank)");
  return t.item<int32_t>() > 0;
}

}  // namespace facetrain
