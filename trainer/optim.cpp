// Optimizer construction and the shared synced step (see optim.h).
#include "trainer/optim.h"

#include <functional>
#include <limits>
#include <sstream>
#include <type_traits>

#include "core/error.h"
#include "models/checkpoint.h"

#include "core/stopwatch.h"

namespace facetrain {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const proto::OptimizerConfig& c,
                                                        std::vector<torch::Tensor> parameters) {
  return make_optimizer(c, std::vector<std::vector<torch::Tensor>>{std::move(parameters)});
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const proto::OptimizerConfig& c,
                                                        const std::vector<std::vector<torch::Tensor>>& groups) {
  return make_optimizer(c, groups, std::vector<bool>(groups.size(), true));
}

namespace {

// One group per entry with its own copy of `defaults`, weight decay 0 where the flag is off.
template <typename Options>
std::vector<torch::optim::OptimizerParamGroup> param_groups_with(const Options& defaults,
                                                                 const std::vector<std::vector<torch::Tensor>>& groups,
                                                                 const std::vector<bool>& weight_decay) {
  FT_CHECK(groups.size() == weight_decay.size(), groups.size() << " groups, " << weight_decay.size() << " decay flags");
  std::vector<torch::optim::OptimizerParamGroup> out;
  for (size_t g = 0; g < groups.size(); ++g) {
    auto options = std::make_unique<Options>(defaults);
    if (!weight_decay[g]) options->weight_decay(0);
    out.emplace_back(groups[g], std::move(options));
  }
  return out;
}

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::vector<std::pair<std::string, std::regex>> compile_names(
    const google::protobuf::RepeatedPtrField<std::string>& patterns, const std::string& field) {
  std::vector<std::pair<std::string, std::regex>> out;
  for (const auto& pattern : patterns) {
    try {
      out.emplace_back(pattern, std::regex(pattern));
    } catch (const std::regex_error& e) {
      throw UserError(field + ": \"" + pattern + "\" is not a regular expression (" + e.what() + ")");
    }
  }
  return out;
}

bool matches_any(const std::string& name, const std::vector<std::pair<std::string, std::regex>>& patterns) {
  for (const auto& p : patterns) {
    if (std::regex_search(name, p.second)) return true;
  }
  return false;
}

// The ViT's position embedding and class token (models/vit.h names; timm's no_weight_decay() set).
bool is_embedding_token(const std::string& name) {
  const std::string leaf = name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
  return leaf == "pos_embed" || leaf == "cls_token";
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const proto::OptimizerConfig& c,
                                                        const std::vector<std::vector<torch::Tensor>>& groups,
                                                        const std::vector<bool>& weight_decay) {
  if (c.kind() == "sgd") {
    const auto defaults = torch::optim::SGDOptions(c.lr()).momentum(c.momentum()).weight_decay(c.weight_decay());
    return std::make_unique<torch::optim::SGD>(param_groups_with(defaults, groups, weight_decay), defaults);
  }
  if (c.kind() == "adam") {
    const auto defaults =
        torch::optim::AdamOptions(c.lr()).betas({c.beta1(), c.beta2()}).weight_decay(c.weight_decay());
    return std::make_unique<torch::optim::Adam>(param_groups_with(defaults, groups, weight_decay), defaults);
  }
  const auto defaults = torch::optim::AdamWOptions(c.lr()).betas({c.beta1(), c.beta2()}).weight_decay(c.weight_decay());
  return std::make_unique<torch::optim::AdamW>(param_groups_with(defaults, groups, weight_decay), defaults);
}

WeightDecayRule::WeightDecayRule(const proto::OptimizerConfig& config)
    : weight_decay_(config.weight_decay()),
      exempt_(compile_names(config.no_weight_decay(), "optimizer.no_weight_decay")),
      forced_(compile_names(config.weight_decay_on(), "optimizer.weight_decay_on")) {}

bool WeightDecayRule::applies(const std::string& name, const torch::Tensor& parameter) const {
  if (matches_any(name, forced_)) return true;
  return parameter.dim() > 1 && !is_embedding_token(name) && !matches_any(name, exempt_);
}

std::string WeightDecayRule::describe(const torch::nn::Module& module) const {
  int64_t on = 0, off = 0, on_elements = 0, off_elements = 0;
  for (const auto& p : module.named_parameters()) {
    (applies(p.key(), p.value()) ? on : off) += 1;
    (applies(p.key(), p.value()) ? on_elements : off_elements) += p.value().numel();
  }
  std::ostringstream s;
  s << "weight decay " << weight_decay_ << " on " << on << " tensors (" << with_commas(on_elements)
    << " parameters), none on " << off << " (" << with_commas(off_elements) << " parameters: 1-D, pos_embed, cls_token"
    << (exempt_.empty() ? "" : ", optimizer.no_weight_decay") << ")";
  return s.str();
}

DecayGroups weight_decay_groups(const torch::nn::Module& module, const WeightDecayRule& rule) {
  std::vector<torch::Tensor> decayed, exempt;
  for (const auto& p : module.named_parameters())
    (rule.applies(p.key(), p.value()) ? decayed : exempt).push_back(p.value());
  DecayGroups out;
  if (!decayed.empty()) {
    out.groups.push_back(std::move(decayed));
    out.weight_decay.push_back(true);
  }
  if (!exempt.empty()) {
    out.groups.push_back(std::move(exempt));
    out.weight_decay.push_back(false);
  }
  return out;
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

double synced_optimizer_step(GradientBuckets& buckets, torch::optim::Optimizer& optimizer,
                             const std::vector<torch::Tensor>& parameters, double clip_norm, StepTimes* times,
                             LossScaler* scaler) {
  times->buckets += buckets.bucket_count();
  times->buckets_overlapped += buckets.overlapped_buckets();
  auto t = Clock::now();
  buckets.finalize();
  times->communication += seconds_since(t);
  t = Clock::now();
  if (scaler != nullptr && !scaler->unscale_and_update(parameters)) {
    times->optimizer += seconds_since(t);
    return 0;  // fp16 overflow: every rank skips this step (the gradients are averaged, so all saw it)
  }
  // With no clipping asked, a huge max norm still returns the global L2 norm (for the logs) and never scales.
  const double norm = torch::nn::utils::clip_grad_norm_(
      parameters, clip_norm > 0 ? clip_norm : static_cast<double>(std::numeric_limits<float>::max()));
  optimizer.step();
  times->optimizer += seconds_since(t);
  return norm;
}

namespace {

// optimizer.save() with a copy of every state tensor: the state is swapped for copies while the optimizer
// writes itself (it writes references), then restored, so the archive owns what it holds.
void save_optimizer_copy(torch::serialize::OutputArchive& archive, torch::optim::Optimizer& optimizer) {
  torch::NoGradGuard no_grad;
  std::vector<std::function<void()>> restore;
  auto copy = [](const torch::Tensor& t) { return cpu_copy(t); };  // on the CPU: archives belong to no device
  for (auto& entry : optimizer.state()) {
    torch::optim::OptimizerParamState* state = entry.second.get();
    if (auto* a = dynamic_cast<torch::optim::AdamParamState*>(state)) {
      torch::Tensor m = a->exp_avg(), v = a->exp_avg_sq(), vmax = a->max_exp_avg_sq();
      a->exp_avg(copy(m)).exp_avg_sq(copy(v)).max_exp_avg_sq(copy(vmax));
      restore.push_back([a, m, v, vmax] { a->exp_avg(m).exp_avg_sq(v).max_exp_avg_sq(vmax); });
    } else if (auto* w = dynamic_cast<torch::optim::AdamWParamState*>(state)) {
      torch::Tensor m = w->exp_avg(), v = w->exp_avg_sq(), vmax = w->max_exp_avg_sq();
      w->exp_avg(copy(m)).exp_avg_sq(copy(v)).max_exp_avg_sq(copy(vmax));
      restore.push_back([w, m, v, vmax] { w->exp_avg(m).exp_avg_sq(v).max_exp_avg_sq(vmax); });
    } else if (auto* s = dynamic_cast<torch::optim::SGDParamState*>(state)) {
      torch::Tensor b = s->momentum_buffer();
      s->momentum_buffer(copy(b));
      restore.push_back([s, b] { s->momentum_buffer(b); });
    } else {
      FT_CHECK(false, "save_optimizer_copy: an optimizer state of a kind make_optimizer does not make");
    }
  }
  optimizer.save(archive);
  for (auto& r : restore) r();
}

// The key of a parameter's optimizer state: its TensorImpl's address, as a string in LibTorch 1.x and the
// pointer itself in 2.x (the map's key type says which).
template <typename StateMap>
typename StateMap::key_type optimizer_state_key(const StateMap&, const torch::Tensor& p) {
  if constexpr (std::is_same_v<typename StateMap::key_type, std::string>) {
    std::ostringstream key;  // what LibTorch 1.x's c10::guts::to_string writes for the pointer
    key << static_cast<const void*>(p.unsafeGetTensorImpl());
    return key.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

// The optimizer's state tensors onto their parameters' devices (an archive reads onto the CPU).
void move_optimizer_state_to_parameters(torch::optim::Optimizer& optimizer) {
  torch::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      auto found = optimizer.state().find(optimizer_state_key(optimizer.state(), p));
      if (found == optimizer.state().end()) continue;
      auto on = [&](const torch::Tensor& t) { return t.defined() ? t.to(p.device()) : t; };
      torch::optim::OptimizerParamState* state = found->second.get();
      if (auto* a = dynamic_cast<torch::optim::AdamParamState*>(state)) {
        a->exp_avg(on(a->exp_avg())).exp_avg_sq(on(a->exp_avg_sq())).max_exp_avg_sq(on(a->max_exp_avg_sq()));
      } else if (auto* w = dynamic_cast<torch::optim::AdamWParamState*>(state)) {
        w->exp_avg(on(w->exp_avg())).exp_avg_sq(on(w->exp_avg_sq())).max_exp_avg_sq(on(w->max_exp_avg_sq()));
      } else if (auto* s = dynamic_cast<torch::optim::SGDParamState*>(state)) {
        s->momentum_buffer(on(s->momentum_buffer()));
      }
    }
  }
}

}  // namespace

void save_training_state(torch::serialize::OutputArchive& archive, const std::string& name, const std::string& prefix,
                         const torch::nn::Module& module, torch::optim::Optimizer& optimizer,
                         const LossScaler& scaler) {
  torch::serialize::OutputArchive module_archive, optimizer_archive;
  save_module_copy(module_archive, module);
  save_optimizer_copy(optimizer_archive, optimizer);
  archive.write(name, module_archive);
  archive.write(prefix + "optimizer", optimizer_archive);
  scaler.save(archive, prefix + "loss_scaler");
}

void load_training_state(torch::serialize::InputArchive& archive, const std::string& name, const std::string& prefix,
                         torch::nn::Module& module, torch::optim::Optimizer& optimizer, LossScaler& scaler) {
  torch::serialize::InputArchive module_archive, optimizer_archive;
  archive.read(name, module_archive);
  archive.read(prefix + "optimizer", optimizer_archive);
  load_module_in_place(module_archive, module, "checkpoint '" + name + "'");
  optimizer.load(optimizer_archive);
  move_optimizer_state_to_parameters(optimizer);
  scaler.load(archive, prefix + "loss_scaler");
}

}  // namespace facetrain
