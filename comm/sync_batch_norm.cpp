// batch_norm_over_ranks (sync_batch_norm.h).
#include "comm/sync_batch_norm.h"

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace facetrain {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Every rank's row, stacked in rank order (W, K). An all-reduce of a zero matrix holding this rank's row, not an
// all-gather: no size exchange, the same call on MPI and NCCL. Backward: every rank's loss depends on every
// row, so the gradient of this rank's row is the sum over ranks of its column of gradients.
class RowsOfAllRanks : public torch::autograd::Function<RowsOfAllRanks> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& row, Communicator* comm) {
    // An IValue holds no pointer; the communicator outlives the graph (the caller's contract).
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(comm);
    torch::Tensor rows = torch::zeros({comm->size(), row.numel()}, row.options());
    rows[comm->rank()].copy_(row);
    comm->all_reduce_sum_(rows, "allreduce of BatchNorm batch statistics (distributed.sync_batchnorm)");
    return rows;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto* comm = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    torch::Tensor sum = grads[0].contiguous().clone();  // in place below; autograd owns grads[0]
    comm->all_reduce_sum_(sum, "allreduce of BatchNorm statistics' gradients (distributed.sync_batchnorm)");
    return {sum[comm->rank()], torch::Tensor()};
  }
};

}  // namespace

torch::Tensor batch_norm_over_ranks(Communicator& comm, const torch::Tensor& input, const torch::Tensor& weight,
                                    const torch::Tensor& bias, torch::Tensor running_mean, torch::Tensor running_var,
                                    double momentum, double eps) {
  const int64_t channels = input.size(1);
  std::vector<int64_t> reduced{0};
  std::vector<int64_t> per_channel(static_cast<size_t>(input.dim()), 1);
  per_channel[1] = channels;
  for (int64_t d = 2; d < input.dim(); ++d) reduced.push_back(d);
  const torch::Tensor x = input.to(torch::kFloat);
  // This rank's mean and biased variance (stable one-pass kernels), then Chan et al.'s exact combination.
  const auto local = torch::var_mean(x, reduced, /*unbiased=*/false);
  const double count = static_cast<double>(x.numel() / channels);
  const torch::Tensor row = torch::cat({std::get<1>(local), std::get<0>(local), torch::full({1}, count, x.options())});
  const torch::Tensor rows = RowsOfAllRanks::apply(row, &comm);
  const torch::Tensor means = rows.narrow(1, 0, channels);
  const torch::Tensor vars = rows.narrow(1, channels, channels);
  const torch::Tensor counts = rows.narrow(1, 2 * channels, 1);
  const torch::Tensor total = counts.sum();
  const torch::Tensor mean = (means * counts).sum(0) / total;
  const torch::Tensor var = ((vars + (means - mean).square()) * counts).sum(0) / total;
  if (running_mean.defined() && running_var.defined()) {
    torch::NoGradGuard no_grad;
    // No host read-back: the unbiased correction N / (N - 1) stays a tensor.
    running_mean.mul_(1 - momentum).add_(mean.detach().to(running_mean.dtype()), momentum);
    running_var.mul_(1 - momentum).add_((var.detach() * total / (total - 1)).to(running_var.dtype()), momentum);
  }
  torch::Tensor scale = torch::rsqrt(var + eps);
  if (weight.defined()) scale = scale * weight.to(torch::kFloat);
  torch::Tensor y = (x - mean.view(per_channel)) * scale.view(per_channel);
  if (bias.defined()) y = y + bias.to(torch::kFloat).view(per_channel);
  return y.to(input.scalar_type());
}

}  // namespace facetrain
