// TrainablePlan (see trainable.h).
#include "trainer/trainable.h"

#include <cmath>
#include <map>
#include <tuple>
#include <regex>
#include <sstream>

#include "core/error.h"
#include "core/log.h"

namespace facetrain {
namespace {

// One stage's additions: what the `train` mode, `last_blocks` and `parameters` of a section or an unfreeze
// entry select.
struct Selection {
  std::string train;
  int64_t last_blocks = 0;
  std::vector<std::regex> parameters;
};

std::vector<std::regex> compile(const google::protobuf::RepeatedPtrField<std::string>& patterns,
                                const std::string& field, const ParameterLayers& layers) {
  std::vector<std::regex> out;
  for (const auto& pattern : patterns) {
    std::regex re;
    try {
      re = std::regex(pattern);
    } catch (const std::regex_error& e) {
      throw UserError(field + ": \"" + pattern + "\" is not a regular expression (" + e.what() + ")");
    }
    bool matched = false;
    for (const auto& p : layers.parameters) matched = matched || std::regex_search(p.name, re);
    FT_USER_CHECK(matched, field << ": \"" << pattern << "\" matches no parameter of the model (names as in "
                                 << "`facetrain export`, e.g. " << layers.parameters.front().name << ")");
    out.push_back(std::move(re));
  }
  return out;
}

Selection selection_of(const std::string& train, int64_t last_blocks,
                       const google::protobuf::RepeatedPtrField<std::string>& parameters, const std::string& field,
                       const ParameterLayers& layers) {
  FT_USER_CHECK(train == "all" || train == "head" || train == "none",
                field << ".train: \"" << train << "\" is not one of all, head, none");
  FT_USER_CHECK(last_blocks >= 0 && last_blocks <= layers.blocks, field << ".last_blocks: " << last_blocks
                                                                        << " is not in 0.." << layers.blocks
                                                                        << " (the model's blocks)");
  return {train, last_blocks, compile(parameters, field + ".parameters", layers)};
}

bool selects(const Selection& s, const ParameterLayer& p, int64_t blocks) {
  if (s.train == "all") return true;
  if (s.train == "head" && p.head) return true;
  if (s.last_blocks > 0 && !p.head && p.layer > blocks - s.last_blocks) return true;
  for (const auto& re : s.parameters) {
    if (std::regex_search(p.name, re)) return true;
  }
  return false;
}

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

}  // namespace

TrainablePlan::TrainablePlan(const proto::TrainableConfig& c, ParameterLayers layers,
                             const std::function<bool(const ParameterLayer&)>& weight_decay)
    : layers_(std::move(layers)) {
  FT_CHECK(!layers_.parameters.empty(), "a model without parameters");
  layer_decay_ = c.layer_decay();
  freeze_batchnorm_ = c.freeze_batchnorm();
  FT_USER_CHECK(layer_decay_ > 0 && layer_decay_ <= 1,
                "trainable.layer_decay: " << layer_decay_ << " is not in (0, 1] (1 = off)");
  std::vector<Selection> stages{selection_of(c.train(), c.last_blocks(), c.parameters(), "trainable", layers_)};
  stage_epochs_.push_back(0);
  for (int k = 0; k < c.unfreeze_size(); ++k) {
    const auto& u = c.unfreeze(k);
    const std::string field = "trainable.unfreeze[" + std::to_string(k) + "]";
    FT_USER_CHECK(u.epoch() > stage_epochs_.back(), field << ".epoch: " << u.epoch() << " must be after "
                                                          << stage_epochs_.back() << " (stages in epoch order)");
    stages.push_back(selection_of(u.train(), u.last_blocks(), u.parameters(), field, layers_));
    stage_epochs_.push_back(u.epoch());
  }
  const std::vector<std::regex> frozen = compile(c.frozen(), "trainable.frozen", layers_);

  const size_t n = layers_.parameters.size();
  first_stage_.assign(n, -1);
  scale_.assign(n, 1.0);
  for (size_t i = 0; i < n; ++i) {
    const ParameterLayer& p = layers_.parameters[i];
    bool never = false;
    for (const auto& re : frozen) never = never || std::regex_search(p.name, re);
    for (size_t k = 0; k < stages.size() && !never && first_stage_[i] < 0; ++k) {
      if (selects(stages[k], p, layers_.blocks)) first_stage_[i] = static_cast<int>(k);
    }
    scale_[i] = std::pow(static_cast<double>(layer_decay_), static_cast<double>(layers_.blocks + 1 - p.layer));
  }
  for (size_t k = 0; k < stages.size(); ++k) {
    bool adds = false;
    for (size_t i = 0; i < n; ++i) adds = adds || first_stage_[i] == static_cast<int>(k);
    FT_USER_CHECK(adds, (k == 0 ? std::string("trainable") : "trainable.unfreeze[" + std::to_string(k - 1) + "]")
                            << ": selects no parameter that is not frozen or already training");
  }
  // Optimizer groups: one per (first stage, scale, weight decay), in parameter order of first appearance.
  std::map<std::tuple<int, double, bool>, int> groups;
  group_of_.assign(n, -1);
  for (size_t i = 0; i < n; ++i) {
    if (first_stage_[i] < 0) continue;
    const bool decays = !weight_decay || weight_decay(layers_.parameters[i]);
    auto key = std::make_tuple(first_stage_[i], scale_[i], decays);
    auto it = groups.find(key);
    if (it == groups.end()) {
      it = groups.emplace(key, static_cast<int>(group_scales_.size())).first;
      group_scales_.push_back(scale_[i]);
      group_decays_.push_back(decays);
    }
    group_of_[i] = it->second;
  }
  active_ = stages.size() > 1 || layer_decay_ != 1 || stages[0].train != "all" || !frozen.empty();
  apply(0);
}

int TrainablePlan::stage_of(int64_t epoch) const {
  int stage = 0;
  for (size_t k = 0; k < stage_epochs_.size(); ++k) {
    if (epoch >= stage_epochs_[k]) stage = static_cast<int>(k);
  }
  return stage;
}

bool TrainablePlan::apply(int64_t epoch) {
  const int stage = stage_of(epoch);
  if (stage == stage_) return false;
  stage_ = stage;
  for (size_t i = 0; i < layers_.parameters.size(); ++i) {
    torch::Tensor p = layers_.parameters[i].parameter;
    const bool trains = first_stage_[i] >= 0 && first_stage_[i] <= stage;
    p.set_requires_grad(trains);
    if (!trains) p.mutable_grad() = torch::Tensor();
  }
  return true;
}

std::vector<std::vector<torch::Tensor>> TrainablePlan::optimizer_groups() const {
  std::vector<std::vector<torch::Tensor>> out(group_scales_.size());
  for (size_t i = 0; i < layers_.parameters.size(); ++i) {
    if (group_of_[i] >= 0) out[static_cast<size_t>(group_of_[i])].push_back(layers_.parameters[i].parameter);
  }
  return out;
}

int TrainablePlan::set_train_mode(torch::nn::Module& model) const {
  model.train();
  if (!freeze_batchnorm_) return 0;
  int fixed = 0;
  for (const auto& m : model.modules(/*include_self=*/true)) {
    // A BatchNorm layer: running statistics among its own buffers, affine weights among its parameters.
    const auto buffers = m->named_buffers(/*recurse=*/false);
    const auto parameters = m->named_parameters(/*recurse=*/false);
    if (buffers.find("running_mean") == nullptr || parameters.size() == 0) continue;
    bool frozen = true;
    for (const auto& p : parameters) frozen = frozen && !p.value().requires_grad();
    if (!frozen) continue;
    m->eval();
    ++fixed;
  }
  if (fixed != fixed_batchnorm_) {  // said once per change (start, unfreeze stages)
    fixed_batchnorm_ = fixed;
    log(std::to_string(fixed) + " BatchNorm layer" + (fixed == 1 ? "" : "s") + " with frozen weights run" +
        (fixed == 1 ? "s" : "") + " in eval mode, statistics fixed (trainable.freeze_batchnorm)");
  }
  return fixed;
}

int64_t TrainablePlan::trainable_elements() const {
  int64_t n = 0;
  for (const auto& p : layers_.parameters) n += p.parameter.requires_grad() ? p.parameter.numel() : 0;
  return n;
}

std::string TrainablePlan::describe() const {
  int64_t total = 0, tensors = 0;
  std::vector<bool> layer_trains(static_cast<size_t>(layers_.blocks + 2), false);
  bool head = false;
  for (const auto& p : layers_.parameters) {
    total += p.parameter.numel();
    if (!p.parameter.requires_grad()) continue;
    ++tensors;
    if (p.head)
      head = true;
    else
      layer_trains[static_cast<size_t>(p.layer)] = true;
  }
  std::ostringstream s;
  s << with_commas(trainable_elements()) << " of " << with_commas(total) << " parameters train (" << tensors << " of "
    << layers_.parameters.size() << " tensors";
  if (tensors < static_cast<int64_t>(layers_.parameters.size())) {
    std::vector<std::string> parts;
    if (head) parts.push_back("head");
    if (layer_trains[static_cast<size_t>(layers_.blocks + 1)]) parts.push_back("final norm");
    for (int64_t l = 1; l <= layers_.blocks; ++l) {
      if (!layer_trains[static_cast<size_t>(l)]) continue;
      int64_t end = l;
      while (end + 1 <= layers_.blocks && layer_trains[static_cast<size_t>(end + 1)]) ++end;
      parts.push_back(
          (end == l ? "block " + std::to_string(l) : "blocks " + std::to_string(l) + "-" + std::to_string(end)) +
          " of " + std::to_string(layers_.blocks));
      l = end;
    }
    if (layer_trains[0]) parts.push_back("stem");
    s << ":";
    for (size_t i = 0; i < parts.size(); ++i) s << (i ? ", " : " ") << parts[i];
  }
  s << ")";
  if (layer_decay_ != 1) s << "; layer decay " << layer_decay_;
  return s.str();
}

void set_learning_rates(torch::optim::Optimizer& optimizer, double lr, const std::vector<double>& scales) {
  auto& groups = optimizer.param_groups();
  FT_CHECK(scales.empty() || scales.size() == groups.size(),
           scales.size() << " learning-rate scales for " << groups.size() << " optimizer groups");
  for (size_t g = 0; g < groups.size(); ++g) groups[g].options().set_lr(scales.empty() ? lr : lr * scales[g]);
}

}  // namespace facetrain
