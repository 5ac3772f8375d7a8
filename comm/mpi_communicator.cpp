// The MPI communicator for CPU tensors: every collective is non-blocking MPI completed by polling, with
// timed waits (CollectiveTimeout, the message from collective_watchdog.cpp) and the mean's own ring for
// large tensors (ring_allreduce.cpp). Also the plain blocking MPI_Allreduce that benchmarks compare against.
#include <mpi.h>
#include <sched.h>
#include <torch/types.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/stopwatch.h"
#include "comm/comm_internal.h"
#include "comm/communicator.h"
#include "comm/flight_recorder.h"
#include "comm/mpi_backend.h"

namespace facetrain {

using comm_detail::MpiWork;
using comm_detail::Operation;

// ---------------------------------------------------------------------------------------------------
// the MPI communicator
// ---------------------------------------------------------------------------------------------------
namespace {

// MPI counts are int; larger tensors go in several calls of at most this many elements (or bytes).
constexpr int64_t kMaxCount = int64_t{1} << 30;

// all_reduce_mean_ runs its own ring from this size up; below it, MPI_Iallreduce and a division (latency
// matters there, the extra pass over a few hundred kB does not).
constexpr int64_t kRingMinBytes = 256 * 1024;

// Element type for reductions: a switch, never a silent cast.
MPI_Datatype mpi_sum_type(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return MPI_FLOAT;
    case torch::kFloat64: return MPI_DOUBLE;
    case torch::kInt32: return MPI_INT32_T;
    case torch::kInt64: return MPI_INT64_T;
    case torch::kUInt8: return MPI_UINT8_T;
    case torch::kInt8: return MPI_INT8_T;
    default: break;
  }
  FT_CHECK(false, "the MPI all-reduce does not support dtype "
                      << type
                      << " (float32, float64, int32, int64, uint8, int8); convert explicitly — comm/ never "
                         "casts silently");
}

void check_cpu_contiguous(const torch::Tensor& tensor, const char* op) {
  FT_CHECK(tensor.defined(), op << ": undefined tensor");
  FT_CHECK(tensor.device().is_cpu(), op << ": the MPI communicator takes CPU tensors, got " << tensor.device()
                                        << " (use the NCCL communicator for CUDA tensors)");
  FT_CHECK(tensor.is_contiguous(), op << ": tensor must be contiguous (call .contiguous() and copy back)");
}

// Work whose PendingCollective was destroyed, or whose blocking call timed out, before completion: MPI
// forbids cancelling or freeing a non-blocking collective's request, so its buffers stay valid until the
// process ends.
std::vector<std::unique_ptr<MpiWork>>& orphans() {
  static std::vector<std::unique_ptr<MpiWork>> o;
  return o;
}

// MPI non-blocking collectives (one or several requests), optionally followed by a scale.
class RequestWork final : public MpiWork {
 public:
  explicit RequestWork(std::vector<torch::Tensor> buffers, double scale_after = 1.0)
      : buffers_(std::move(buffers)), scale_after_(scale_after) {}
  std::vector<MPI_Request>& requests() { return requests_; }

  // A gradient bucket's mean: a plain loop for float32 (a LibTorch op's dispatch costs microseconds, the
  // whole all-reduce of a 4 kB bucket about 4); the same float products as mul_ with a float scalar.
  void scale(torch::Tensor& t) const {
    if (t.scalar_type() == torch::kFloat32) {
      float* p = t.data_ptr<float>();
      const float s = static_cast<float>(scale_after_);
      for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] *= s;
    } else {
      t.mul_(scale_after_);
    }
  }

  bool advance() override {
    if (done_) return true;
    int done = 0;
    FT_MPI_CHECK(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE));
    if (!done) return false;
    if (scale_after_ != 1.0) scale(buffers_.front());
    done_ = true;
    buffers_.clear();
    return true;
  }

 private:
  std::vector<MPI_Request> requests_;
  std::vector<torch::Tensor> buffers_;  // front(): the result (scaled when scale_after_ != 1)
  double scale_after_;
  bool done_ = false;
};

class MpiCommunicator;

class MpiPending final : public PendingCollective {
 public:
  MpiPending(MpiCommunicator* comm, std::unique_ptr<MpiWork> work, Operation op)
      : comm_(comm), work_(std::move(work)), op_(std::move(op)) {}
  ~MpiPending() override;
  void wait() override;
  bool test() override;

 private:
  MpiCommunicator* comm_;
  std::unique_ptr<MpiWork> work_;
  Operation op_;
  bool done_ = false;
};

// Every operation, blocking ones included, is non-blocking MPI completed by polling: MPI never matches a
// blocking collective on one rank with a non-blocking one on another, so one kind everywhere lets ranks
// mix all_reduce_sum_ and all_reduce_sum_async_ (and differ in timeout) safely, and polling is what makes
// the timeout and the watchdog possible. Open MPI's libnbc costs a few microseconds more than its blocking
// algorithms for tiny messages; the gradient buckets need the non-blocking kind anyway.
class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() : scratch_(std::make_shared<comm_detail::ScratchPool>()) {
    FT_CHECK(comm_initialized(), "make_mpi_communicator() needs comm_initialize() first");
    // (collective) every rank
    FT_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &data_));
    FT_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &ring_));
    FT_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &control_));
    for (MPI_Comm c : {data_, ring_, control_}) FT_MPI_CHECK(MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN));
    FT_MPI_CHECK(MPI_Comm_rank(data_, &rank_));
    FT_MPI_CHECK(MPI_Comm_size(data_, &size_));
    MPI_Comm node = MPI_COMM_NULL;
    int node_ranks = 1;
    FT_MPI_CHECK(MPI_Comm_split_type(data_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
    FT_MPI_CHECK(MPI_Comm_size(node, &node_ranks));
    MPI_Comm_free(&node);
    oversubscribed_ = node_ranks > static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    watchdog_ = std::make_unique<comm_detail::CollectiveWatchdog>(control_, rank_, size_, oversubscribed_);
  }

  ~MpiCommunicator() override {
    if (!comm_initialized()) return;
    watchdog_->free_requests();
    MPI_Comm_free(&control_);
    MPI_Comm_free(&ring_);
    MPI_Comm_free(&data_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  using Communicator::all_gather;
  using Communicator::all_reduce_mean_async_;
  using Communicator::all_reduce_sum_;
  using Communicator::all_reduce_sum_async_;
  using Communicator::barrier;
  using Communicator::broadcast_;

  void all_reduce_sum_(torch::Tensor& tensor, const std::string& label) override {
    all_reduce_sum_async_(tensor, label)->wait();
  }

  std::unique_ptr<PendingCollective> all_reduce_sum_async_(torch::Tensor& tensor, const std::string& label) override {
    check_cpu_contiguous(tensor, "all_reduce_sum_async_");
    const MPI_Datatype type = mpi_sum_type(tensor.scalar_type());
    Operation op = begin(
        label, [&] { return "allreduce of " + format_bytes(tensor.nbytes()); }, tensor.nbytes());
    return std::make_unique<MpiPending>(this, start_iallreduce(tensor, type, 1.0), std::move(op));
  }

  std::unique_ptr<PendingCollective> all_reduce_mean_async_(torch::Tensor& tensor, const std::string& label) override {
    check_cpu_contiguous(tensor, "all_reduce_mean_async_");
    const torch::ScalarType dtype = tensor.scalar_type();
    FT_CHECK(dtype == torch::kFloat32 || dtype == torch::kFloat64,
             "all_reduce_mean_: the MPI mean takes float32 or float64, got " << dtype);
    Operation op = begin(
        label, [&] { return "allreduce (mean) of " + format_bytes(tensor.nbytes()); }, tensor.nbytes());
    std::unique_ptr<MpiWork> work;
    if (size_ > 1 && static_cast<int64_t>(tensor.nbytes()) >= kRingMinBytes) {
      const int tag = 1 + static_cast<int>(op.seq % 30000);
      work = comm_detail::start_ring_mean(ring_, rank_, size_, tag, tensor, scratch_);
    } else {
      work = start_iallreduce(tensor, mpi_sum_type(dtype), 1.0 / size_);
    }
    return std::make_unique<MpiPending>(this, std::move(work), std::move(op));
  }

  void broadcast_(torch::Tensor& tensor, int root, const std::string& label) override {
    check_cpu_contiguous(tensor, "broadcast_");
    FT_CHECK(root >= 0 && root < size_, "broadcast_: root " << root << " outside 0.." << size_ - 1);
    const Operation op = begin(
        label, "broadcast of " + format_bytes(tensor.nbytes()) + " from rank " + std::to_string(root), tensor.nbytes());
    auto work = std::make_unique<RequestWork>(std::vector<torch::Tensor>{tensor});
    for_chunks(tensor.nbytes(), 1, tensor.data_ptr(), [&](void* p, int count) {
      work->requests().emplace_back();
      FT_MPI_CHECK(MPI_Ibcast(p, count, MPI_BYTE, root, data_, &work->requests().back()));
    });
    run_blocking(std::move(work), op);
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

    // (collective) every rank: exchange [rows, shape code] so the receive sizes are known. Every buffer
    // is a tensor owned by the work, so a timed-out operation can keep it alive.
    torch::Tensor mine = torch::tensor({rows, shape_code}, torch::kInt64);
    torch::Tensor all_meta = torch::empty({2 * static_cast<int64_t>(size_)}, torch::kInt64);
    {
      const Operation op = begin(what + " (sizes)", "", mine.nbytes());
      auto work = std::make_unique<RequestWork>(std::vector<torch::Tensor>{all_meta, mine});
      work->requests().emplace_back();
      FT_MPI_CHECK(MPI_Iallgather(mine.data_ptr(), 2, MPI_INT64_T, all_meta.data_ptr(), 2, MPI_INT64_T, data_,
                                  &work->requests().back()));
      run_blocking(std::move(work), op);
    }
    const int64_t* meta = all_meta.data_ptr<int64_t>();
    // MPI may read the count arrays of a non-blocking collective until it completes.
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
      FT_CHECK(offset + bytes <= INT_MAX,
               "all_gather: " << format_bytes(offset + bytes) << " exceed what one MPI_Allgatherv can move (2 GB)");
      counts[r] = static_cast<int>(bytes);
      displacements[r] = static_cast<int>(offset);
      offset += bytes;
      total_rows += meta[2 * r];
    }
    std::vector<int64_t> out_shape{total_rows};
    out_shape.insert(out_shape.end(), trailing.begin(), trailing.end());
    torch::Tensor out = torch::empty(out_shape, local.options());
    // (collective) every rank
    const Operation op = begin(what, "", local.nbytes());
    auto work =
        std::make_unique<RequestWork>(std::vector<torch::Tensor>{out, local, counts_tensor, displacements_tensor});
    work->requests().emplace_back();
    FT_MPI_CHECK(MPI_Iallgatherv(local.data_ptr(), counts[rank_], MPI_BYTE, out.data_ptr(), counts, displacements,
                                 MPI_BYTE, data_, &work->requests().back()));
    run_blocking(std::move(work), op);
    return out;
  }

  void barrier(const std::string& label) override {
    const Operation op = begin(label, "barrier", 0);
    auto work = std::make_unique<RequestWork>(std::vector<torch::Tensor>{});
    work->requests().emplace_back();
    FT_MPI_CHECK(MPI_Ibarrier(data_, &work->requests().back()));
    run_blocking(std::move(work), op);
  }

  // Advances `work` until complete. After timeout_seconds_ asks the other ranks which collective they
  // have reached and throws CollectiveTimeout naming the operation, the step and the ranks not there.
  // Polling (not MPI_Wait) is what makes the timeout possible. It spins like a blocking MPI call: the
  // data moves inside MPI_Test (libnbc and the ring progress there), and a sched_yield() hands the core to
  // any other runnable process for a whole time slice — with other work on the machine that doubled the
  // measured time of a 16 MB all-reduce. Only when this node has more ranks than cores does it yield, so
  // the rank that still has to arrive gets the core (what Open MPI does when oversubscribed).
  void poll(MpiWork& work, const Operation& op) {
    const auto start = Clock::now();
    while (!work.advance()) {
      const double waited = seconds_since(start);
      if (waited > 1e-3) serve_queries();
      if (timeout_seconds_ > 0 && waited > timeout_seconds_) {
        throw CollectiveTimeout(watchdog_->timeout_message(op, timeout_seconds_, started_, step_));
      }
      if (oversubscribed_) sched_yield();
    }
  }

  // poll() for a blocking call: on a timeout the work (with its buffers) is kept until the process ends
  // (MPI may still use them; a non-blocking collective cannot be cancelled), then the timeout rethrown.
  void run_blocking(std::unique_ptr<MpiWork> work, const Operation& op) {
    try {
      poll(*work, op);
    } catch (const CollectiveTimeout&) {
      orphans().push_back(std::move(work));
      throw;
    }
    flight_end(op.flight);
  }

  // Answers other ranks' "which collective are you at?" queries (the watchdog, collective_watchdog.cpp).
  void serve_queries() { watchdog_->serve_queries(started_, step_); }

 private:
  Operation begin(const std::string& label, const std::string& default_label, int64_t bytes) {
    return begin(
        label, [&] { return default_label; }, bytes);
  }
  // default_label() is called only when label is empty (formatting it costs about a microsecond: the
  // gradient buckets always pass their own).
  template <typename DefaultLabel, typename = decltype(std::declval<DefaultLabel>()())>
  Operation begin(const std::string& label, DefaultLabel&& default_label, int64_t bytes) {
    Operation op;
    op.seq = ++started_;
    op.step = step_;
    op.label = label.empty() ? default_label() : label;
    op.flight = flight_begin(flight_name().c_str(), op.seq, op.step, bytes, op.label);
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

  std::unique_ptr<RequestWork> start_iallreduce(torch::Tensor& tensor, MPI_Datatype type, double scale_after) {
    auto work = std::make_unique<RequestWork>(std::vector<torch::Tensor>{tensor}, scale_after);
    for_chunks(tensor.numel(), tensor.element_size(), tensor.data_ptr(), [&](void* p, int count) {
      work->requests().emplace_back();
      FT_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, p, count, type, MPI_SUM, data_, &work->requests().back()));
    });
    return work;
  }

  MPI_Comm data_ = MPI_COMM_NULL;     // the collectives
  MPI_Comm ring_ = MPI_COMM_NULL;     // the mean's ring messages
  MPI_Comm control_ = MPI_COMM_NULL;  // watchdog queries and answers, never blocking the data path
  std::shared_ptr<comm_detail::ScratchPool> scratch_;
  int rank_ = 0, size_ = 1;
  bool oversubscribed_ = false;  // more ranks on this node than cores: yield while polling
  int64_t started_ = 0;          // collectives started on data_
  std::unique_ptr<comm_detail::CollectiveWatchdog> watchdog_;  // on control_
};

MpiPending::~MpiPending() {
  if (done_ || !comm_initialized()) return;
  try {
    if (work_->advance()) return;
  } catch (...) {
  }
  orphans().push_back(std::move(work_));
}

void MpiPending::wait() {
  if (done_) return;
  comm_->poll(*work_, op_);
  done_ = true;
  flight_end(op_.flight);
}

bool MpiPending::test() {
  comm_->serve_queries();  // test() is a progress point: keep answering the watchdog
  if (!done_ && work_->advance()) {
    done_ = true;
    flight_end(op_.flight);
  }
  return done_;
}

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

void plain_mpi_all_reduce_(torch::Tensor& tensor, ReduceOp op) {
  check_cpu_contiguous(tensor, "plain_mpi_all_reduce_");
  FT_CHECK(tensor.numel() <= kMaxCount, "plain_mpi_all_reduce_: more than 2^30 elements");
  MPI_Op mpi_op = MPI_SUM;
  switch (op) {
    case ReduceOp::kSum: mpi_op = MPI_SUM; break;
    case ReduceOp::kMax: mpi_op = MPI_MAX; break;
  }
  FT_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, tensor.data_ptr(), static_cast<int>(tensor.numel()),
                             mpi_sum_type(tensor.scalar_type()), mpi_op, MPI_COMM_WORLD));
}

}  // namespace facetrain
