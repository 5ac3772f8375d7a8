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

#include "core/error.h"
#include "comm/comm_internal.h"
#include "comm/flight_recorder.h"
#include "comm/communicator.h"

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
      return "a tensor too large for one MPI call or not contiguous; this is a bug in comm/";
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
  // Open MPI runs MPI_Iallreduce through libnbc. Only messages below kRingMinBytes reach it (gradient means
  // from there up use the communicator's own ring; the sums are a few scalars), where latency is what
  // counts: recursive doubling exchanges the whole message once per doubling (once on 2 ranks) instead of
  // the ring's reduce-scatter + allgather steps or the binomial default's reduce + broadcast. Measured on 2
  // ranks here (in-place float32, medians of 4,001): 1 kB 2.71 -> 1.75 us, 16 kB 11.5 -> 8.4 us, 64 kB
  // 27.6 -> 24.9 us against the ring (blocking MPI_Allreduce: 1.3-1.4, 11.0, 26.2 us); comm/README.md.
  // A user's own setting wins.
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "recursive_doubling", /*overwrite=*/0);
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

// all_reduce_mean_ runs its own ring from this size up; below it, MPI_Iallreduce and a division (latency
// matters there, the extra pass over a few hundred kB does not).
constexpr int64_t kRingMinBytes = 256 * 1024;

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
                  << " (float32, float64, int32, int64, uint8, int8); convert explicitly — comm/ never "
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
  int64_t flight = -1;  // its flight-recorder handle (comm/flight_recorder.h)
};

// A started operation. advance() makes whatever progress is possible without blocking (MPI_Test drives
// Open MPI's progress) and returns true once complete. It owns every buffer MPI may still touch.
class MpiWork {
 public:
  virtual ~MpiWork() = default;
  virtual bool advance() = 0;
};

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

// Scratch buffers for the ring, reused across operations (a fresh 12 MB allocation per bucket costs
// page faults every step). Shared with the work objects, which hand their buffer back when done.
class ScratchPool {
 public:
  torch::Tensor acquire(int64_t bytes) {
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->nbytes() >= static_cast<size_t>(bytes) && (best == free_.end() || it->nbytes() < best->nbytes())) best = it;
    }
    if (best == free_.end()) return torch::empty({std::max<int64_t>(bytes, 64)}, torch::kUInt8);
    torch::Tensor t = *best;
    free_.erase(best);
    return t;
  }
  void release(torch::Tensor t) { free_.push_back(std::move(t)); }

 private:
  std::vector<torch::Tensor> free_;
};

template <typename T>
void add_into(T* x, const T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}
template <typename T>
void add_scale_into(T* x, const T* y, int64_t n, T scale) {
  for (int64_t i = 0; i < n; ++i) x[i] = (x[i] + y[i]) * scale;
}

// In-place mean over ranks as a ring (reduce-scatter, then allgather) of non-blocking point-to-point
// messages, the division fused into the last reduce-scatter step: per rank 2(n-1)/n of the bytes cross
// the wire, as in MPI's own ring, and no pass over memory is added for the mean. Each rank ends its
// reduce-scatter holding chunk (rank+1) mod n reduced. Messages of one operation share a tag and follow
// each other on every (left -> right) edge in order; concurrent operations use different tags.
template <typename T>
class RingMeanWork final : public MpiWork {
 public:
  RingMeanWork(MPI_Comm comm, int rank, int size, int tag, torch::Tensor tensor, std::shared_ptr<ScratchPool> pool)
      : comm_(comm), rank_(rank), size_(size), tag_(tag), tensor_(std::move(tensor)), pool_(std::move(pool)) {
    count_ = tensor_.numel();
    FT_CHECK((count_ + size_ - 1) / size_ <= INT_MAX, "all_reduce_mean_: a ring chunk exceeds 2^31 elements");
    data_ = tensor_.data_ptr<T>();
    scratch_ = pool_->acquire(((count_ + size_ - 1) / size_) * static_cast<int64_t>(sizeof(T)));
    start_step();  // data starts moving at launch
  }
  ~RingMeanWork() override {
    if (phase_ == Phase::kDone) pool_->release(std::move(scratch_));
  }

  bool advance() override {
    while (phase_ != Phase::kDone) {
      int done = 0;
      FT_MPI_CHECK(MPI_Testall(2, requests_, &done, MPI_STATUSES_IGNORE));
      if (!done) return false;
      finish_step();
      if (phase_ != Phase::kDone) start_step();
    }
    return true;
  }

 private:
  enum class Phase { kReduceScatter, kAllgather, kDone };

  int64_t lo(int chunk) const { return count_ * chunk / size_; }
  int64_t length(int chunk) const { return lo(chunk + 1) - lo(chunk); }
  int wrap(int k) const { return ((k % size_) + size_) % size_; }
  MPI_Datatype type() const { return sizeof(T) == 4 ? MPI_FLOAT : MPI_DOUBLE; }

  void start_step() {
    const int right = wrap(rank_ + 1), left = wrap(rank_ - 1);
    if (phase_ == Phase::kReduceScatter) {
      send_ = wrap(rank_ - step_);
      recv_ = wrap(rank_ - step_ - 1);
      FT_MPI_CHECK(MPI_Irecv(scratch_.data_ptr(), static_cast<int>(length(recv_)), type(), left, tag_, comm_,
                             &requests_[0]));
    } else {
      send_ = wrap(rank_ + 1 - step_);
      recv_ = wrap(rank_ - step_);
      FT_MPI_CHECK(MPI_Irecv(data_ + lo(recv_), static_cast<int>(length(recv_)), type(), left, tag_, comm_,
                             &requests_[0]));
    }
    FT_MPI_CHECK(MPI_Isend(data_ + lo(send_), static_cast<int>(length(send_)), type(), right, tag_, comm_,
                           &requests_[1]));
  }

  void finish_step() {
    if (phase_ == Phase::kReduceScatter) {
      const T* incoming = reinterpret_cast<const T*>(scratch_.data_ptr());
      if (step_ == size_ - 2) {
        add_scale_into(data_ + lo(recv_), incoming, length(recv_), static_cast<T>(1.0 / size_));
      } else {
        add_into(data_ + lo(recv_), incoming, length(recv_));
      }
    }
    if (++step_ == size_ - 1) {
      step_ = 0;
      phase_ = phase_ == Phase::kReduceScatter ? Phase::kAllgather : Phase::kDone;
    }
  }

  MPI_Comm comm_;
  int rank_, size_, tag_;
  torch::Tensor tensor_;
  std::shared_ptr<ScratchPool> pool_;
  torch::Tensor scratch_;
  int64_t count_ = 0;
  T* data_ = nullptr;
  Phase phase_ = Phase::kReduceScatter;
  int step_ = 0, send_ = 0, recv_ = 0;
  MPI_Request requests_[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
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
  MpiCommunicator() : scratch_(std::make_shared<ScratchPool>()) {
    FT_CHECK(mpi_is_live(), "make_mpi_communicator() needs comm_initialize() first");
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
  }

  ~MpiCommunicator() override {
    if (!mpi_is_live()) return;
    for (auto& message : outbox_) {
      if (message.request != MPI_REQUEST_NULL) MPI_Request_free(&message.request);
    }
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

  std::unique_ptr<PendingCollective> all_reduce_sum_async_(torch::Tensor& tensor,
                                                           const std::string& label) override {
    check_cpu_contiguous(tensor, "all_reduce_sum_async_");
    const MPI_Datatype type = mpi_sum_type(tensor.scalar_type());
    Operation op = begin(label, [&] { return "allreduce of " + format_bytes(tensor.nbytes()); }, tensor.nbytes());
    return std::make_unique<MpiPending>(this, start_iallreduce(tensor, type, 1.0), std::move(op));
  }

  std::unique_ptr<PendingCollective> all_reduce_mean_async_(torch::Tensor& tensor,
                                                            const std::string& label) override {
    check_cpu_contiguous(tensor, "all_reduce_mean_async_");
    const torch::ScalarType dtype = tensor.scalar_type();
    FT_CHECK(dtype == torch::kFloat32 || dtype == torch::kFloat64,
             "all_reduce_mean_: the MPI mean takes float32 or float64, got " << dtype);
    Operation op = begin(label, [&] { return "allreduce (mean) of " + format_bytes(tensor.nbytes()); }, tensor.nbytes());
    std::unique_ptr<MpiWork> work;
    if (size_ > 1 && static_cast<int64_t>(tensor.nbytes()) >= kRingMinBytes) {
      const int tag = 1 + static_cast<int>(op.seq % 30000);
      if (dtype == torch::kFloat32) {
        work = std::make_unique<RingMeanWork<float>>(ring_, rank_, size_, tag, tensor, scratch_);
      } else {
        work = std::make_unique<RingMeanWork<double>>(ring_, rank_, size_, tag, tensor, scratch_);
      }
    } else {
      work = start_iallreduce(tensor, mpi_sum_type(dtype), 1.0 / size_);
    }
    return std::make_unique<MpiPending>(this, std::move(work), std::move(op));
  }

  void broadcast_(torch::Tensor& tensor, int root, const std::string& label) override {
    check_cpu_contiguous(tensor, "broadcast_");
    FT_CHECK(root >= 0 && root < size_, "broadcast_: root " << root << " outside 0.." << size_ - 1);
    const Operation op = begin(label, "broadcast of " + format_bytes(tensor.nbytes()) + " from rank " +
                                          std::to_string(root), tensor.nbytes());
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
    const Operation op = begin(what, "", local.nbytes());
    auto work = std::make_unique<RequestWork>(
        std::vector<torch::Tensor>{out, local, counts_tensor, displacements_tensor});
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
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (waited > 1e-3) serve_queries();
      if (timeout_seconds_ > 0 && waited > timeout_seconds_) throw CollectiveTimeout(timeout_message(op));
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

  Operation begin(const std::string& label, const std::string& default_label, int64_t bytes) {
    return begin(label, [&] { return default_label; }, bytes);
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
  MPI_Comm ring_ = MPI_COMM_NULL;     // the mean's ring messages
  MPI_Comm control_ = MPI_COMM_NULL;  // watchdog queries and answers, never blocking the data path
  std::shared_ptr<ScratchPool> scratch_;
  int rank_ = 0, size_ = 1;
  bool oversubscribed_ = false;  // more ranks on this node than cores: yield while polling
  int64_t started_ = 0;  // collectives started on data_
  int64_t queries_ = 0;
  std::list<Outgoing> outbox_;  // a list: MPI holds pointers to the messages until the sends complete
};

MpiPending::~MpiPending() {
  if (done_ || !mpi_is_live()) return;
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

NodePlacement node_placement() {
  MPI_Comm node = MPI_COMM_NULL;
  FT_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, /*key=*/0, MPI_INFO_NULL, &node));
  NodePlacement placement;
  FT_MPI_CHECK(MPI_Comm_rank(node, &placement.local_rank));
  FT_MPI_CHECK(MPI_Comm_size(node, &placement.local_size));
  FT_MPI_CHECK(MPI_Comm_free(&node));
  return placement;
}

const char* gradient_backend_name(GradientBackend backend) {
  switch (backend) {
    case GradientBackend::kMpi: return "mpi";
    case GradientBackend::kNccl: return "nccl";
  }
  FT_CHECK(false, "unknown gradient backend " << static_cast<int>(backend));
}

GradientBackend choose_gradient_backend(const std::string& requested, bool model_on_gpu, bool nccl_built) {
  if (requested == "mpi") return GradientBackend::kMpi;
  if (requested == "auto") return model_on_gpu && nccl_built ? GradientBackend::kNccl : GradientBackend::kMpi;
  FT_USER_CHECK(requested == "nccl", "distributed.backend must be auto, mpi or nccl, got '" << requested << "'");
  FT_USER_CHECK(nccl_built, "distributed.backend: nccl is not in this build (LibTorch without CUDA, or CUDA/NCCL "
                            "headers not found when configuring); use mpi or auto");
  FT_USER_CHECK(model_on_gpu, "distributed.backend: nccl needs the model on a GPU, and this rank has no CUDA device; "
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

namespace {

// Both sides of the setup agreement: two flag all-reduces that every rank makes whether it failed or not.
void agree_on_setup(Communicator& comm, bool failed, const std::string& message) {
  comm.set_setup_agreed();
  if (comm.size() == 1) {
    if (failed) throw UserError(message);
    return;
  }
  if (!any_rank(comm, failed)) return;
  // Usually every rank failed the same way (same flags, same shared files): rank 0 speaks for all. A rank
  // whose failure rank 0 did not share (a file missing on one node) speaks for itself.
  const bool rank0_failed = any_rank(comm, comm.rank() == 0 && failed);
  const bool print_here = failed && (comm.rank() == 0 || !rank0_failed);
  throw JobUserError(print_here ? message : "another rank failed its setup", print_here);
}

}  // namespace

void agree_setup_done(Communicator& comm) { agree_on_setup(comm, false, std::string()); }

void agree_setup_failed(Communicator& comm, const std::string& message) {
  agree_on_setup(comm, true, message);
  throw UserError(message);  // not reached: agree_on_setup throws when this rank failed
}

void run_setup_on_every_rank(Communicator& comm, const std::function<void()>& setup) {
  try {
    setup();
  } catch (const UserError& e) {
    agree_setup_failed(comm, e.what());
  }
  agree_setup_done(comm);
}

}  // namespace facetrain
