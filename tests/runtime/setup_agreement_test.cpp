// MPI tests of the setup agreement (run under mpirun -np 1/2/3): a bad input on some ranks becomes one
// JobUserError on every rank, printed by rank 0 or by the ranks that failed; a good setup returns everywhere.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <utility>

#include "comm/communicator.h"
#include "core/error.h"
#include "runtime/setup_agreement.h"

namespace facetrain {
namespace {

// A setup error on some ranks becomes JobUserError on every rank; who prints: rank 0 when it failed, else
// the ranks that failed. No error anywhere: every rank returns (and the setup ran on each). With and without
// the watchdog armed.
TEST(SetupAgreement, ErrorsAreAgreedOnEveryRank) {
  torch::set_num_threads(1);
  auto comm = make_mpi_communicator();
  const int n = comm->size(), r = comm->rank();
  EXPECT_FALSE(comm->setup_agreed());
  for (const double timeout : {0.0, 30.0}) {
    comm->set_timeout_seconds(timeout);
    int ran = 0;
    run_setup_on_every_rank(*comm, [&] { ++ran; });
    EXPECT_EQ(ran, 1);
    EXPECT_TRUE(comm->setup_agreed());

    auto outcome = [&](bool fail_here) {
      try {
        run_setup_on_every_rank(*comm, [&] { FT_USER_CHECK(!fail_here, "bad field on rank " << r); });
      } catch (const JobUserError& e) {
        return std::make_pair(std::string(e.print_here() ? e.what() : "-"), true);
      } catch (const UserError& e) {  // a world of one: the plain error
        return std::make_pair(std::string(e.what()), false);
      }
      return std::make_pair(std::string("returned"), false);
    };
    const auto all = outcome(true);
    EXPECT_EQ(all.first, r == 0 ? "bad field on rank 0" : "-");
    EXPECT_EQ(all.second, n > 1);
    const auto last = outcome(r == n - 1);  // only the last rank fails: it speaks for itself
    EXPECT_EQ(last.first, r == n - 1 ? "bad field on rank " + std::to_string(r) : "-");
    EXPECT_EQ(last.second, n > 1);
    EXPECT_EQ(outcome(false).first, "returned");
  }
}

}  // namespace
}  // namespace facetrain
