// The FLOP counter (see flop_count.h): thread-local RecordFunction callbacks on LibTorch's operators.
#include "models/flop_count.h"

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "core/error.h"

namespace facetrain {
namespace {

enum class OpKind { kMatmul, kConvolution, kTransposedConvolution, kConvolutionEitherWay, kAttention };

// The operators counted, by the name RecordFunction gives them; the outermost one of a nest is counted.
// conv2d (any padding overload) reaches convolution and _convolution; linear reaches addmm or matmul.
struct CountedOp {
  const char* name;
  OpKind kind;
  int left_operand;  // matrix products: the input whose last dimension is the inner (summed) one
};
constexpr CountedOp kCountedOps[] = {
    {"aten::mm", OpKind::kMatmul, 0},
    {"aten::addmm", OpKind::kMatmul, 1},
    {"aten::bmm", OpKind::kMatmul, 0},
    {"aten::baddbmm", OpKind::kMatmul, 1},
    {"aten::matmul", OpKind::kMatmul, 0},
    {"aten::linear", OpKind::kMatmul, 0},
    {"aten::conv1d", OpKind::kConvolution, 0},
    {"aten::conv2d", OpKind::kConvolution, 0},
    {"aten::conv3d", OpKind::kConvolution, 0},
    {"aten::conv_transpose1d", OpKind::kTransposedConvolution, 0},
    {"aten::conv_transpose2d", OpKind::kTransposedConvolution, 0},
    {"aten::conv_transpose3d", OpKind::kTransposedConvolution, 0},
    {"aten::convolution", OpKind::kConvolutionEitherWay, 0},
    {"aten::_convolution", OpKind::kConvolutionEitherWay, 0},
    {"aten::scaled_dot_product_attention", OpKind::kAttention, 0},
};

const CountedOp* counted_op(const char* name) {
  for (const auto& op : kCountedOps) {
    if (std::strcmp(op.name, name) == 0) return &op;
  }
  return nullptr;
}

// What a running count keeps: the nesting depth of counted operators and the sums.
struct Tally {
  int depth = 0;
  FlopCount flops;
};
thread_local Tally* t_tally = nullptr;  // set by count_flops on the counting thread only

// One counted operator between its start and end callbacks. Its FLOPs are 2 x (elements of its output, known
// at the end) x per_output_element, plus `fixed` (known from the inputs alone).
struct OpObservation : at::ObserverContext {
  bool outermost = false;
  OpKind kind = OpKind::kMatmul;
  double per_output_element = 0;
  double fixed = 0;
};

int64_t numel_of(const c10::IValue& value) { return value.isTensor() ? value.toTensor().numel() : 0; }

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (t_tally == nullptr) return nullptr;
  const CountedOp* op = counted_op(fn.name());
  if (op == nullptr) return nullptr;
  auto observation = std::make_unique<OpObservation>();
  observation->outermost = t_tally->depth++ == 0;
  observation->kind = op->kind;
  if (!observation->outermost) return observation;
  const auto inputs = fn.inputs();
  if (op->kind == OpKind::kAttention) {
    // q (..., L, E), k (..., S, E), v (..., S, Ev): q k^T is L x S x E multiply-adds per batch entry and
    // weights v is L x S x Ev.
    if (inputs.size() < 3 || !inputs[0].isTensor() || !inputs[1].isTensor() || !inputs[2].isTensor()) {
      return observation;
    }
    const auto q = inputs[0].toTensor(), k = inputs[1].toTensor(), v = inputs[2].toTensor();
    const double rows = static_cast<double>(q.numel() / q.size(-1));  // batch entries x L
    const double s = static_cast<double>(k.size(-2));
    observation->fixed = 2.0 * rows * s * static_cast<double>(q.size(-1) + v.size(-1));
    return observation;
  }
  if (op->kind == OpKind::kMatmul) {
    if (static_cast<int>(inputs.size()) <= op->left_operand || !inputs[op->left_operand].isTensor()) {
      return observation;
    }
    const auto& left = inputs[op->left_operand].toTensor();
    observation->per_output_element = left.dim() > 0 ? static_cast<double>(left.size(-1)) : 0;
    return observation;
  }
  // Convolutions: input, weight, ...; convolution and _convolution say whether they transpose (argument 6).
  if (inputs.size() < 2 || !inputs[0].isTensor() || !inputs[1].isTensor()) return observation;
  const auto& weight = inputs[1].toTensor();
  const double per_channel = weight.size(0) > 0 ? static_cast<double>(weight.numel() / weight.size(0)) : 0;
  bool transposed = op->kind == OpKind::kTransposedConvolution;
  if (op->kind == OpKind::kConvolutionEitherWay && inputs.size() > 6 && inputs[6].isBool()) {
    transposed = inputs[6].toBool();
  }
  if (transposed) {
    // weight (in, out / groups, k...): every input element scatters into out / groups x k... outputs.
    observation->fixed = 2.0 * static_cast<double>(numel_of(inputs[0])) * per_channel;
  } else {
    // weight (out, in / groups, k...): every output element sums in / groups x k... products.
    observation->per_output_element = per_channel;
  }
  return observation;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* context) {
  auto* observation = static_cast<OpObservation*>(context);
  if (observation == nullptr || t_tally == nullptr) return;
  --t_tally->depth;
  if (!observation->outermost) return;
  double flops = observation->fixed;
  if (observation->per_output_element > 0 && !fn.outputs().empty()) {
    flops += 2.0 * static_cast<double>(numel_of(fn.outputs()[0])) * observation->per_output_element;
  }
  switch (observation->kind) {
    case OpKind::kMatmul: t_tally->flops.matmul += flops; break;
    case OpKind::kAttention: t_tally->flops.attention += flops; break;
    case OpKind::kConvolution:
    case OpKind::kTransposedConvolution:
    case OpKind::kConvolutionEitherWay: t_tally->flops.convolution += flops; break;
  }
}

}  // namespace

FlopCount count_flops(const std::function<void()>& run) {
  FT_CHECK(t_tally == nullptr, "count_flops does not nest");
  Tally tally;
  t_tally = &tally;
  // Operator scope only: the named ranges of a trace (user scopes) are not operators.
  const at::CallbackHandle handle = at::addThreadLocalCallback(at::RecordFunctionCallback(&on_start, &on_end)
                                                                   .needsInputs(true)
                                                                   .needsOutputs(true)
                                                                   .scopes({at::RecordScope::FUNCTION}));
  try {
    run();
  } catch (...) {
    at::removeCallback(handle);
    t_tally = nullptr;
    throw;
  }
  at::removeCallback(handle);
  t_tally = nullptr;
  return tally.flops;
}

FlopCount count_forward_flops(torch::nn::Module& module, const std::function<void()>& forward) {
  std::vector<std::pair<std::shared_ptr<torch::nn::Module>, bool>> modes;
  for (const auto& m : module.modules(/*include_self=*/false)) modes.emplace_back(m, m->is_training());
  const bool self_training = module.is_training();
  module.eval();
  const auto restore = [&] {
    module.train(self_training);  // recursive; then each submodule's own mode again
    for (auto& [m, training] : modes) m->train(training);
  };
  FlopCount flops;
  try {
    torch::NoGradGuard no_grad;
    flops = count_flops(forward);
  } catch (...) {
    restore();
    throw;
  }
  restore();
  return flops;
}

}  // namespace facetrain
