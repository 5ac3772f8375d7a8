// The scalar helpers of communicator.h (all_reduce_sum, all_reduce_max, any_rank): one number or flag per
// rank, made from the Communicator's own collectives, so they work on any backend.
#include <torch/types.h>

#include "comm/communicator.h"

namespace facetrain {

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
