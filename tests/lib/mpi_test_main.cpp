// gtest main for tests run under mpirun: initialises MPI through comm/, prints results on rank 0
// only, and turns any rank's failure into a failing exit code on every rank.
#include <gtest/gtest.h>

#include "core/log.h"
#include "comm/communicator.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  facetrain::comm_initialize(&argc, &argv);
  auto comm = facetrain::make_mpi_communicator();
  facetrain::set_log_rank(comm->rank(), comm->size());
  if (comm->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS();
  bool any_failed = facetrain::any_rank(*comm, failed != 0);
  comm.reset();
  facetrain::comm_finalize();
  return any_failed ? 1 : 0;
}
