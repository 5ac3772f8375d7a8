// Optimizer construction and the shared synced step (see optim.h).
#include "trainer/optim.h"

#include <ATen/record_function.h>

#include <functional>
#include <sstream>

#include "core/error.h"
#include "core/stopwatch.h"
#include "models/checkpoint.h"
#include "trainer/multi_tensor.h"
#include "trainer/multi_tensor_adam.h"

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
    return std::make_unique<MultiTensorAdam>(param_groups_with(defaults, groups, weight_decay), defaults);
  }
  const auto defaults = torch::optim::AdamWOptions(c.lr()).betas({c.beta1(), c.beta2()}).weight_decay(c.weight_decay());
  return std::make_unique<MultiTensorAdamW>(param_groups_with(defaults, groups, weight_decay), defaults);
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

torch::Tensor synced_optimizer_step(GradientBuckets& buckets, torch::optim::Optimizer& optimizer,
                                    const std::vector<torch::Tensor>& parameters, double clip_norm, StepTimes* times,
                                    LossScaler* scaler) {
  times->buckets += buckets.bucket_count();
  times->buckets_overlapped += buckets.overlapped_buckets();
  auto t = Clock::now();
  {
    RECORD_USER_SCOPE("gradient sync wait");
    buckets.finalize();
  }
  // On a GPU the host only queued the wait: the compute stream's stall, timed by events, is the exposed
  // communication (each wait counted once its events completed, a step or so later).
  times->communication += buckets.waits_timed_on_device() ? buckets.take_device_wait_seconds() : seconds_since(t);
  RECORD_USER_SCOPE("optimizer");
  t = Clock::now();
  if (scaler != nullptr && !scaler->unscale_and_update(parameters)) {
    times->optimizer += seconds_since(t);
    return torch::zeros(
        {}, parameters.front().options().requires_grad(
                false));  // fp16 overflow: every rank skips this step (the gradients are averaged, so all saw it)
  }
  // The norm, the clip and the step are device work with no host read (trainer/multi_tensor.h): the host
  // queues them and goes on to the next step.
  torch::Tensor norm = clip_grad_norm_on_device(parameters, clip_norm);
  optimizer.step();
  times->optimizer += seconds_since(t);
  return norm;
}

namespace {

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

// Optimizer state in facetrain's own layout, the same in LibTorch 1.x and 2.x: "groups/G/I/<field>" for the
// I-th parameter of group G. (LibTorch's Optimizer::save keys state by the parameter's address, which 1.x
// writes in hex and 2.x parses as decimal: 2.x put a 1.x checkpoint's state on the wrong parameters.) Tensors
// are CPU copies: archives belong to no device.
constexpr const char* kStateLayoutKey = "facetrain_state_layout";
std::string state_prefix(size_t group, size_t index) {
  return "groups/" + std::to_string(group) + "/" + std::to_string(index) + "/";
}

void save_optimizer_state(torch::serialize::OutputArchive& archive, torch::optim::Optimizer& optimizer) {
  torch::NoGradGuard no_grad;
  archive.write(kStateLayoutKey, torch::tensor(int64_t{1}));
  auto write = [&](const std::string& key, const torch::Tensor& t) {
    if (t.defined()) archive.write(key, cpu_copy(t));
  };
  const auto& groups = optimizer.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    for (size_t i = 0; i < groups[g].params().size(); ++i) {
      const torch::Tensor& p = groups[g].params()[i];
      auto found = optimizer.state().find(optimizer_state_key(optimizer.state(), p));
      if (found == optimizer.state().end()) continue;
      const std::string at = state_prefix(g, i);
      torch::optim::OptimizerParamState* state = found->second.get();
      if (auto* a = dynamic_cast<torch::optim::AdamParamState*>(state)) {
        archive.write(at + "step", torch::tensor(a->step()));
        write(at + "exp_avg", a->exp_avg());
        write(at + "exp_avg_sq", a->exp_avg_sq());
        write(at + "max_exp_avg_sq", a->max_exp_avg_sq());
      } else if (auto* w = dynamic_cast<torch::optim::AdamWParamState*>(state)) {
        archive.write(at + "step", torch::tensor(w->step()));
        write(at + "exp_avg", w->exp_avg());
        write(at + "exp_avg_sq", w->exp_avg_sq());
        write(at + "max_exp_avg_sq", w->max_exp_avg_sq());
      } else if (auto* s = dynamic_cast<torch::optim::SGDParamState*>(state)) {
        write(at + "momentum_buffer", s->momentum_buffer());
      } else {
        FT_CHECK(false, "save_optimizer_state: an optimizer state of a kind make_optimizer does not make");
      }
    }
  }
}

// The archive's `key` into `live` (a state tensor of the optimizer, possibly undefined), on `device`: copied in
// place when `live` has its shape (the tensor and its storage stay), else a new tensor; undefined when the
// archive has no such key.
torch::Tensor read_state_tensor(torch::serialize::InputArchive& archive, const std::string& key,
                                const torch::Tensor& live, const torch::Device& device) {
  torch::Tensor saved;
  if (!archive.try_read(key, saved)) return torch::Tensor();
  if (live.defined() && live.sizes() == saved.sizes()) {
    torch::NoGradGuard no_grad;
    live.copy_(saved);
    return live;
  }
  return saved.to(device);
}

// Reads what save_optimizer_state wrote; false for an archive in LibTorch's own layout (older checkpoints).
bool load_optimizer_state(torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer) {
  torch::Tensor layout;
  if (!archive.try_read(kStateLayoutKey, layout)) return false;
  auto& states = optimizer.state();
  const auto& groups = optimizer.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    for (size_t i = 0; i < groups[g].params().size(); ++i) {
      const torch::Tensor& p = groups[g].params()[i];
      const std::string at = state_prefix(g, i);
      const auto key = optimizer_state_key(states, p);
      auto found = states.find(key);
      torch::optim::OptimizerParamState* live = found == states.end() ? nullptr : found->second.get();
      torch::Tensor step;
      const bool adam_like = archive.try_read(at + "step", step);
      auto fill = [&](auto& state) {  // Adam and AdamW states have the same fields
        state.step(step.item<int64_t>());
        state.exp_avg(read_state_tensor(archive, at + "exp_avg", state.exp_avg(), p.device()));
        state.exp_avg_sq(read_state_tensor(archive, at + "exp_avg_sq", state.exp_avg_sq(), p.device()));
        state.max_exp_avg_sq(read_state_tensor(archive, at + "max_exp_avg_sq", state.max_exp_avg_sq(), p.device()));
      };
      if (adam_like && dynamic_cast<torch::optim::AdamW*>(&optimizer) != nullptr) {
        if (live == nullptr) live = (states[key] = std::make_unique<torch::optim::AdamWParamState>()).get();
        fill(static_cast<torch::optim::AdamWParamState&>(*live));
      } else if (adam_like && dynamic_cast<torch::optim::Adam*>(&optimizer) != nullptr) {
        if (live == nullptr) live = (states[key] = std::make_unique<torch::optim::AdamParamState>()).get();
        fill(static_cast<torch::optim::AdamParamState&>(*live));
      } else if (dynamic_cast<torch::optim::SGD*>(&optimizer) != nullptr) {
        auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(live);
        torch::Tensor buffer = read_state_tensor(archive, at + "momentum_buffer",
                                                 sgd ? sgd->momentum_buffer() : torch::Tensor(), p.device());
        if (!buffer.defined()) continue;  // no momentum saved for this parameter
        if (sgd == nullptr) {
          auto made = std::make_unique<torch::optim::SGDParamState>();
          sgd = made.get();
          states[key] = std::move(made);
        }
        sgd->momentum_buffer(buffer);
      }
    }
  }
  return true;
}

}  // namespace

void save_training_state(torch::serialize::OutputArchive& archive, const std::string& name, const std::string& prefix,
                         const torch::nn::Module& module, torch::optim::Optimizer& optimizer,
                         const LossScaler& scaler) {
  torch::serialize::OutputArchive module_archive, optimizer_archive;
  save_module_copy(module_archive, module);
  save_optimizer_state(optimizer_archive, optimizer);
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
  if (!load_optimizer_state(optimizer_archive, optimizer)) {
    optimizer.load(optimizer_archive);  // a checkpoint of an earlier facetrain: LibTorch's layout
    move_optimizer_state_to_parameters(optimizer);
  }
  scaler.load(archive, prefix + "loss_scaler");
}

}  // namespace facetrain
