// agree_on_step (step_agreement.h): [loss sum, non-finite ranks, stop requests] in one float64 all-reduce.
#include "trainer/step_agreement.h"

#include <torch/torch.h>

#include <cmath>

#include "core/error.h"

namespace facetrain {

StepAgreement agree_on_step(Communicator& comm, double loss, bool stop_requested) {
  const bool finite = std::isfinite(loss);
  torch::Tensor flags =
      torch::tensor({finite ? loss : 0.0, finite ? 0.0 : 1.0, stop_requested ? 1.0 : 0.0}, torch::kFloat64);
  comm.all_reduce_sum_(flags);
  StepAgreement agreed;
  agreed.mean_loss = flags[0].item<double>() / comm.size();
  agreed.nonfinite_ranks = static_cast<int>(flags[1].item<double>());
  agreed.stop = flags[2].item<double>() > 0;
  return agreed;
}

void StepAgreement::check_finite(int64_t step, const std::string& checkpoint_dir) const {
  FT_CHECK(nonfinite_ranks == 0, "loss is not finite at step "
                                     << step << " on " << nonfinite_ranks
                                     << " rank(s); stopping. The last good checkpoint is kept in " << checkpoint_dir);
}

}  // namespace facetrain
