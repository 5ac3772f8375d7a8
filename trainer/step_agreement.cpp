// agree_on_step (step_agreement.h): [loss sum, non-finite ranks, stop requests] in one float64 all-reduce.
#include "trainer/step_agreement.h"

#include <torch/torch.h>

#include <cmath>

#include "core/error.h"

namespace facetrain {

StepAgreement agree_on_step(Communicator& comm, double loss, bool stop_requested, int64_t first_nonfinite_step) {
  const bool finite = std::isfinite(loss) && first_nonfinite_step < 0;
  torch::Tensor flags =
      torch::tensor({finite ? loss : 0.0, finite ? 0.0 : 1.0, stop_requested ? 1.0 : 0.0}, torch::kFloat64);
  comm.all_reduce_sum_(flags);
  StepAgreement agreed;
  agreed.mean_loss = flags[0].item<double>() / comm.size();
  agreed.nonfinite_ranks = static_cast<int>(flags[1].item<double>());
  agreed.stop = flags[2].item<double>() > 0;
  if (agreed.nonfinite_ranks > 0) {  // every rank knows this: the earliest step, as the max of minus the steps
    const double earliest =
        -all_reduce_max(comm, first_nonfinite_step >= 0 ? -static_cast<double>(first_nonfinite_step) : -1e18);
    agreed.first_nonfinite_step = earliest < 1e18 ? static_cast<int64_t>(earliest) : -1;
  }
  return agreed;
}

void StepAgreement::check_finite(int64_t step, const std::string& checkpoint_dir) const {
  FT_CHECK(nonfinite_ranks == 0, "loss is not finite at step "
                                     << (first_nonfinite_step >= 0 ? first_nonfinite_step : step) << " on "
                                     << nonfinite_ranks << " rank(s); stopping. The last good checkpoint is kept in "
                                     << checkpoint_dir);
}

void NonfiniteLosses::add(const torch::Tensor& loss, int64_t step) {
  torch::NoGradGuard no_grad;
  if (!first_.defined()) first_ = torch::full({}, -1.0, loss.options().dtype(torch::kFloat64));
  const torch::Tensor fresh = torch::logical_and(first_ < 0, torch::logical_not(torch::isfinite(loss.detach())));
  first_.masked_fill_(fresh, static_cast<double>(step));
}

void NonfiniteLosses::reset() {
  if (first_.defined()) first_.fill_(-1.0);
}

}  // namespace facetrain
