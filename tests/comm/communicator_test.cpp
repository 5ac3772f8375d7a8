// MPI tests of the communicator (run under mpirun -np 1/2/3): closed-form sums over ranks for every supported
// dtype, blocking and timed (non-blocking) paths, broadcast, all_gather with unequal sizes, the scalar helpers,
// the benchmarks' plain MPI reference, misuse that must throw, and the watchdog: a late rank makes the others' wait()
// throw CollectiveTimeout.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "core/error.h"
#include "comm/communicator.h"

namespace facetrain {
namespace {

class CommunicatorTest : public ::testing::TestWithParam<double> {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    comm_ = make_mpi_communicator();
    comm_->set_timeout_seconds(GetParam());  // 0: wait forever; > 0: the watchdog is armed
    n_ = comm_->size();
    r_ = comm_->rank();
  }
  std::unique_ptr<Communicator> comm_;
  int n_ = 1, r_ = 0;
};

// Element i of rank r holds i + r, so the sum is n*i + n(n-1)/2.
template <typename T>
void expect_closed_form_sum(Communicator& comm, torch::ScalarType type, int64_t count, bool async) {
  const int n = comm.size(), r = comm.rank();
  torch::Tensor t = (torch::arange(count, torch::kInt64) + r).to(type);
  if (async) {
    auto pending = comm.all_reduce_sum_async_(t);
    pending->wait();
    EXPECT_TRUE(pending->test());
  } else {
    comm.all_reduce_sum_(t);
  }
  torch::Tensor expected = (torch::arange(count, torch::kInt64) * n + n * (n - 1) / 2).to(type);
  EXPECT_TRUE(torch::equal(t, expected)) << "dtype " << type << " count " << count << (async ? " async" : "");
}

TEST_P(CommunicatorTest, AllReduceSumClosedFormEveryDtype) {
  EXPECT_EQ(comm_->backend(), "mpi");
  for (bool async : {false, true}) {
    expect_closed_form_sum<float>(*comm_, torch::kFloat32, 1000, async);
    expect_closed_form_sum<double>(*comm_, torch::kFloat64, 1000, async);
    expect_closed_form_sum<int32_t>(*comm_, torch::kInt32, 1000, async);
    expect_closed_form_sum<int64_t>(*comm_, torch::kInt64, 1000, async);
    expect_closed_form_sum<uint8_t>(*comm_, torch::kUInt8, 50, async);  // stays below 256
    expect_closed_form_sum<int8_t>(*comm_, torch::kInt8, 30, async);
  }
}

TEST_P(CommunicatorTest, AllReduceLargeAndEmpty) {
  // 6 MB: the sizes where Open MPI switches to its large-message (ring) algorithms.
  expect_closed_form_sum<float>(*comm_, torch::kFloat32, 1'500'000, false);
  expect_closed_form_sum<float>(*comm_, torch::kFloat32, 1'500'001, true);
  torch::Tensor empty = torch::empty({0});
  comm_->all_reduce_sum_(empty);
  EXPECT_EQ(empty.numel(), 0);
}

// Element i of rank r holds i + r: the mean is i + (n-1)/2. Sizes below and above the ring's threshold,
// counts that do not divide by the number of ranks.
TEST_P(CommunicatorTest, AllReduceMeanClosedForm) {
  for (int64_t count : {1, 1000, 65'537, 1'000'003}) {
    for (auto type : {torch::kFloat32, torch::kFloat64}) {
      torch::Tensor t = (torch::arange(count, torch::kFloat64).remainder(1000) + r_).to(type);
      if (count % 2) {
        comm_->all_reduce_mean_(t);
      } else {
        comm_->all_reduce_mean_async_(t)->wait();
      }
      torch::Tensor want = (torch::arange(count, torch::kFloat64).remainder(1000) + (n_ - 1) / 2.0).to(type);
      EXPECT_TRUE(torch::allclose(t, want, 1e-6, 1e-6)) << type << " count " << count;
    }
  }
  // Several means in flight at once complete independently.
  std::vector<torch::Tensor> ts;
  std::vector<std::unique_ptr<PendingCollective>> pending;
  for (int k = 0; k < 3; ++k) ts.push_back(torch::full({300'000}, static_cast<float>(r_ + 10 * k)));
  for (auto& t : ts) pending.push_back(comm_->all_reduce_mean_async_(t));
  for (int k = 2; k >= 0; --k) pending[k]->wait();
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(torch::allclose(ts[k], torch::full({300'000}, (n_ - 1) / 2.0f + 10 * k)));
}

TEST_P(CommunicatorTest, UnsupportedDtypeOrLayoutThrowsBeforeCommunicating) {
  for (auto type : {torch::kBFloat16, torch::kFloat16, torch::kBool}) {
    torch::Tensor t = torch::ones({4}, type);
    EXPECT_THROW(comm_->all_reduce_sum_(t), std::exception) << type;
    EXPECT_THROW(comm_->all_reduce_sum_async_(t), std::exception) << type;
  }
  torch::Tensor integers = torch::ones({4}, torch::kInt64);
  EXPECT_THROW(comm_->all_reduce_mean_(integers), std::exception);
  torch::Tensor strided = torch::ones({4, 4}).t();
  ASSERT_FALSE(strided.is_contiguous());
  EXPECT_THROW(comm_->all_reduce_sum_(strided), std::exception);
  torch::Tensor t = torch::ones({2});
  EXPECT_THROW(comm_->broadcast_(t, n_), std::exception);
  // Nothing was sent: the next collective still matches on every rank.
  EXPECT_EQ(all_reduce_sum(*comm_, 1.0), static_cast<double>(n_));
}

TEST_P(CommunicatorTest, BroadcastFromLastRankAnyDtype) {
  const int root = n_ - 1;
  torch::Tensor f = torch::full({3, 5}, static_cast<float>(r_ * 10 + 1));
  comm_->broadcast_(f, root);
  EXPECT_TRUE(torch::equal(f, torch::full({3, 5}, static_cast<float>(root * 10 + 1))));
  // Half precision moves as bytes (no reduction involved).
  torch::Tensor h = torch::arange(7, torch::kFloat32).add(r_).to(torch::kFloat16);
  comm_->broadcast_(h, 0);
  EXPECT_TRUE(torch::equal(h, torch::arange(7, torch::kFloat32).to(torch::kFloat16)));
}

TEST_P(CommunicatorTest, AllGatherUnequalDimZero) {
  // Rank r contributes r rows (rank 0: none) of [r*100 + row, -1, -2].
  torch::Tensor mine = torch::empty({r_, 3}, torch::kInt64);
  for (int i = 0; i < r_; ++i) mine[i] = torch::tensor({int64_t{r_} * 100 + i, int64_t{-1}, int64_t{-2}});
  torch::Tensor all = comm_->all_gather(mine);
  const int64_t rows = static_cast<int64_t>(n_) * (n_ - 1) / 2;
  ASSERT_EQ(all.sizes(), torch::IntArrayRef({rows, 3}));
  int64_t k = 0;
  for (int r = 0; r < n_; ++r) {
    for (int i = 0; i < r; ++i, ++k) {
      EXPECT_EQ(all[k][0].item<int64_t>(), r * 100 + i);
      EXPECT_EQ(all[k][2].item<int64_t>(), -2);
    }
  }
  // A 0-dim tensor gathers to [n].
  torch::Tensor scalars = comm_->all_gather(torch::tensor(static_cast<float>(r_) + 0.5f));
  EXPECT_TRUE(torch::equal(scalars, torch::arange(n_, torch::kFloat32) + 0.5f));
}

TEST_P(CommunicatorTest, AllGatherMismatchedTrailingDimsThrowsOnEveryRank) {
  torch::Tensor mine = torch::zeros({2, r_ == n_ - 1 && n_ > 1 ? 4 : 3});
  if (n_ > 1) {
    EXPECT_THROW(comm_->all_gather(mine), std::exception);
  } else {
    EXPECT_EQ(comm_->all_gather(mine).size(0), 2);
  }
  EXPECT_EQ(all_reduce_sum(*comm_, 2.0), 2.0 * n_);
}

TEST_P(CommunicatorTest, ScalarHelpersAndBarrier) {
  EXPECT_DOUBLE_EQ(all_reduce_sum(*comm_, r_ + 0.25), n_ * (n_ - 1) / 2.0 + 0.25 * n_);
  EXPECT_DOUBLE_EQ(all_reduce_max(*comm_, -static_cast<double>(r_)), 0.0);
  EXPECT_DOUBLE_EQ(all_reduce_max(*comm_, static_cast<double>(r_)), n_ - 1.0);
  EXPECT_TRUE(any_rank(*comm_, r_ == n_ - 1));
  EXPECT_FALSE(any_rank(*comm_, false));
  EXPECT_TRUE(any_rank(*comm_, true));
  comm_->barrier();
}

// The benchmarks' plain reference: the same closed forms as the communicator's sum, and an element-wise max.
TEST_P(CommunicatorTest, PlainMpiAllReduce) {
  torch::Tensor sum = torch::arange(5, torch::kFloat32) + r_;
  plain_mpi_all_reduce_(sum, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(sum, torch::arange(5, torch::kFloat32) * n_ + n_ * (n_ - 1) / 2));
  torch::Tensor max = torch::tensor({static_cast<double>(r_), -static_cast<double>(r_)}, torch::kFloat64);
  plain_mpi_all_reduce_(max, ReduceOp::kMax);
  EXPECT_DOUBLE_EQ(max[0].item<double>(), n_ - 1.0);
  EXPECT_DOUBLE_EQ(max[1].item<double>(), 0.0);
  torch::Tensor half = torch::ones({2}, torch::kFloat16);
  EXPECT_THROW(plain_mpi_all_reduce_(half, ReduceOp::kSum), std::exception);
}

INSTANTIATE_TEST_SUITE_P(BlockingAndTimed, CommunicatorTest, ::testing::Values(0.0, 30.0));

// Without an NCCL build (Debian's LibTorch), or in a CUDA build on a machine without a GPU (CI's second
// LibTorch build): one UserError, before any collective.
TEST(Communicator, NcclUnavailableThrowsUserError) {
  if (nccl_available() && torch::cuda::is_available())
    GTEST_SKIP() << "a GPU is visible: tools/scripts/gpu-check.sh runs NCCL";
  EXPECT_THROW(make_nccl_communicator(0, 10.0), UserError);
}

// The watchdog: the last rank arrives 2.5 s late; every other rank's wait() throws CollectiveTimeout after
// 1 s naming the operation, the step and the late rank. The operation stays pending, so those ranks wait
// again (no timeout) and the late rank's contribution still arrives: the process ends cleanly.
TEST(CommunicatorTimeout, LateRankIsNamedThenJoins) {
  auto comm = make_mpi_communicator();
  const int n = comm->size(), r = comm->rank();
  if (n == 1) GTEST_SKIP() << "needs a second rank";
  const int late = n - 1;
  comm->set_timeout_seconds(1.0);
  comm->set_step(7);
  torch::Tensor t = torch::full({1000}, static_cast<float>(r));
  if (r == late) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    comm->set_timeout_seconds(0);
    comm->all_reduce_sum_async_(t, "allreduce of gradient bucket 3 of 5 (4.0 kB)")->wait();
  } else {
    auto pending = comm->all_reduce_sum_async_(t, "allreduce of gradient bucket 3 of 5 (4.0 kB)");
    const auto start = std::chrono::steady_clock::now();
    std::string message;
    try {
      pending->wait();
    } catch (const CollectiveTimeout& e) {
      message = e.what();
    }
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_FALSE(message.empty()) << "wait() returned although rank " << late << " had not arrived";
    EXPECT_LT(waited, 2.4) << "the timeout fired only after the late rank arrived";
    EXPECT_NE(message.find("allreduce of gradient bucket 3 of 5 (4.0 kB) at step 7 did not complete within 1 s"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("ranks that did not arrive: " + std::to_string(late) + " (no answer"), std::string::npos)
        << message;
    for (int other = 0; other < late; ++other) {
      EXPECT_EQ(message.find(" " + std::to_string(other) + " ("), std::string::npos)
          << "rank " << other << " arrived but is named: " << message;
    }
    comm->set_timeout_seconds(0);
    pending->wait();
  }
  EXPECT_TRUE(torch::equal(t, torch::full({1000}, n * (n - 1) / 2.0f)));
  comm->barrier();
}

// A rank that answers the query from an earlier collective is reported as behind, with its step.
TEST(CommunicatorTimeout, RankAtAnEarlierCollectiveIsReportedBehind) {
  auto comm = make_mpi_communicator();
  const int n = comm->size(), r = comm->rank();
  if (n == 1) GTEST_SKIP() << "needs a second rank";
  const int late = n - 1;
  comm->set_timeout_seconds(1.0);
  comm->set_step(r == late ? 41 : 42);
  torch::Tensor a = torch::ones({10});
  torch::Tensor b = torch::ones({10});
  auto first = comm->all_reduce_sum_async_(a, "first");
  if (r == late) {
    // Keeps answering queries from inside MPI (test()) while staying at the first collective for 2.5 s.
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 2.5) {
      first->test();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    first->wait();
    comm->set_timeout_seconds(0);
    comm->all_reduce_sum_(b, "second");
  } else {
    auto second = comm->all_reduce_sum_async_(b, "second");
    std::string message;
    try {
      second->wait();
    } catch (const CollectiveTimeout& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("second at step 42 did not complete within 1 s; ranks that did not arrive: " +
                           std::to_string(late) + " (1 collective(s) behind, at step 41)"),
              std::string::npos)
        << message;
    comm->set_timeout_seconds(0);
    second->wait();
    first->wait();
  }
  EXPECT_TRUE(torch::equal(b, torch::full({10}, static_cast<float>(n))));
  comm->barrier();
}

}  // namespace
}  // namespace facetrain
