// GradientBuckets (flat buckets, hook-launched non-blocking all-reduce, finalize before the optimizer step)
// and the start-of-run broadcast / buffer averaging helpers; the contract is in gradient_sync.h.
#include "comm/gradient_sync.h"

#include <ATen/record_function.h>
#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <sstream>
#include <tuple>
#include <utility>

#include "core/error.h"
#include "core/host_reads.h"
#include "core/log.h"
#include "core/torch_compat.h"

namespace facetrain {

// Which hook: a post hook on each parameter's gradient accumulator (the AccumulateGrad node), as DDP's
// Reducer does. It runs after autograd has added this backward's gradient into .grad, so it sees the
// ACCUMULATED gradient (what accumulation over micro-batches needs), and because .grad is a view into the
// bucket the bucket is already filled when the hook runs. Tensor::register_hook would instead see only the
// incoming gradient before accumulation (the sum over micro-batches would have to be rebuilt by hand, with
// an extra copy). The accumulator node is held here (a parameter keeps it only weakly) so the same node,
// with its hook, is used by every backward pass.
struct GradientBuckets::State {
  struct Slot {
    torch::Tensor parameter;
    int64_t index = 0;  // position in the constructor's list
    int64_t bucket = 0;
    torch::Tensor alias;        // the parameter's shape over its part of the bucket; becomes .grad
    bool ready = false;         // its gradient for this synced step has arrived
    bool got_gradient = false;  // autograd produced one for it this step (any micro-batch)
    int64_t used_at = 0;        // its place in the bucket's tail of "used" flags
    torch_compat::GradAccumulatorPtr accumulator;
    uintptr_t hook = 0;
  };
  struct Bucket {
    // The slots' gradients, then one flag per slot: 1 where this rank's autograd produced a gradient, else
    // 0. The flags ride in the same all-reduce (no extra collective); a mean of 0 means no rank did, and the
    // parameter's .grad is left undefined so optimizers skip it as PyTorch does (no momentum step, no
    // decoupled weight decay on a parameter no rank used).
    torch::Tensor flat;
    torch::Tensor used;          // view of the flags at the end of `flat`
    std::vector<int64_t> slots;  // indices into `slots`, in fill order
    int64_t waiting = 0;         // slots not yet ready
    std::unique_ptr<PendingCollective> work;
    std::string label;
    // Launch to completion as a range on the profiler's timeline, while one runs (trainer/step_profiler.h).
    std::string range_name;
    std::unique_ptr<at::RecordFunction> range;
  };

  Communicator* comm = nullptr;
  std::string name;
  std::vector<int64_t> layout;  // [synced parameters, elements, shape/dtype code]
  torch::Device layout_device = torch::kCPU;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  bool sync_enabled = true;
  bool progress_in_hooks = true;
  size_t next_launch = 0;       // buckets launch strictly in order, so every rank issues the same sequence
  int64_t slots_waiting = 0;    // slots of this step whose gradient has not arrived
  int64_t overlapped = 0;       // buckets launched this step while slots_waiting > 0
  size_t first_incomplete = 0;  // launched buckets before it have completed (progress from the hooks)
#if FACETRAIN_TORCH_HAS_EVENT_TIMING
  // finalize()'s waits on a GPU: timing events on the compute stream before and after them, kept until they have
  // completed (take_device_wait_seconds). At most kTimedWaits pairs; older ones are dropped unread.
  static constexpr size_t kTimedWaits = 64;
  std::deque<std::pair<c10::Event, c10::Event>> timed_waits;
#endif
  double device_wait_seconds = 0;  // completed timed waits not yet taken

  bool waits_timed_on_device() const {
#if FACETRAIN_TORCH_HAS_EVENT_TIMING
    return layout_device.is_cuda();
#else
    return false;
#endif
  }
  // An event recorded now on the current stream of the buckets' device (GPU only).
#if FACETRAIN_TORCH_HAS_EVENT_TIMING
  c10::Event record_event() const {
    c10::Event event(layout_device.type(), c10::EventFlag::BACKEND_DEFAULT);  // BACKEND_DEFAULT: with timing
    event.record(c10::impl::VirtualGuardImpl(layout_device.type()).getStream(layout_device));
    return event;
  }
#endif

  // Makes .grad the bucket view, copying a gradient that autograd put elsewhere (first backward, or after
  // .grad was reset to undefined) and zeroing when there is none.
  void adopt_gradient(Slot& s) {
    torch::Tensor& grad = s.parameter.mutable_grad();
    // Zeros from adopting an undefined .grad are not a gradient; the hook calls this only when one arrived.
    if (grad.defined() && grad.is_same(s.alias)) return;
    torch::NoGradGuard no_grad;
    if (grad.defined()) {
      FT_CHECK(grad.layout() == torch::kStrided,
               name << " parameter " << s.index << ": sparse gradients are not supported");
      s.alias.copy_(grad);
    } else {
      s.alias.zero_();
    }
    grad = s.alias;
  }

  void mark_ready(Slot& s) {
    s.ready = true;
    --buckets[s.bucket].waiting;
    --slots_waiting;
  }

  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].waiting == 0) {
      Bucket& b = buckets[next_launch];
      // 1 where the parameter got a gradient this step, at its place in the bucket's flags.
      auto write_flags = [&](float* flags) {
        for (int64_t k : b.slots) flags[slots[k].used_at] = slots[k].got_gradient ? 1.0f : 0.0f;
      };
      bool all_used = true;
      for (int64_t k : b.slots) all_used = all_used && slots[k].got_gradient;
      if (b.used.is_cpu() && b.used.scalar_type() == torch::kFloat32) {
        // Written in place: a LibTorch op per bucket costs microseconds, as much as a small bucket's all-reduce.
        write_flags(b.used.data_ptr<float>());
      } else if (all_used) {
        // The usual step, and every launch from a hook: one fill on the device, no transfer. (A copy from
        // pageable memory here would wait for the device inside backward.)
        torch::NoGradGuard no_grad;
        b.used.fill_(1.0);
      } else {
        // A parameter without a gradient on this rank (finalize): one page-locked, asynchronous copy.
        torch::NoGradGuard no_grad;
        std::vector<float> flags(b.slots.size());
        write_flags(flags.data());
        torch::Tensor host = torch::tensor(flags, torch::kFloat);
        if (b.used.is_cuda()) host = host.pin_memory();
        b.used.copy_(host, /*non_blocking=*/b.used.is_cuda());
      }
      // The mean, not the sum: the division by the world size is fused into the reduction (its own pass
      // over the bucket, as DDP does it, cost 10-25% of the all-reduce time at 1-16 MB on this machine).
      b.range = std::make_unique<at::RecordFunction>(at::RecordScope::USER_SCOPE);
      if (b.range->isActive()) {
        b.range->before(b.range_name, c10::ArrayRef<const c10::IValue>{});
      } else {
        b.range.reset();
      }
      b.work = comm->all_reduce_mean_async_(b.flat, b.label);
      ++next_launch;
      if (slots_waiting > 0) ++overlapped;
    }
  }

  std::weak_ptr<State> self;  // what the hooks hold

  // Hooks slot k's gradient accumulator (the node autograd uses for the parameter now).
  void attach_hook(int64_t k) {
    Slot& s = slots[k];
    s.accumulator = torch::autograd::impl::grad_accumulator(s.parameter);
    FT_CHECK(s.accumulator != nullptr, name << " parameter " << s.index << " has no gradient accumulator");
    std::weak_ptr<State> weak = self;
    s.hook = s.accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [weak, k](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          if (auto state = weak.lock()) state->on_gradient(k);
          return outputs;
        }));
  }

  // A slot whose hook did not run this step: no rank-local gradient, or autograd replaced the parameter's
  // accumulator (loading a checkpoint into the module does: InputArchive::read set_s the tensor), which
  // silently detaches the hook. In that case re-attach it, and count the step's gradient as produced (it
  // was accumulated into .grad without the hook seeing it).
  void reattach_if_replaced(Slot& s, int64_t k) {
    const auto now = torch::autograd::impl::grad_accumulator(s.parameter);
    // nullptr: the parameter does not require a gradient at the moment (a model frozen for another's step).
    if (now == nullptr || now == s.accumulator) return;
    s.accumulator->del_post_hook(s.hook);
    attach_hook(k);
    s.got_gradient = true;
  }

  // The hook body.
  void on_gradient(int64_t k) {
    Slot& s = slots[k];
    adopt_gradient(s);
    s.got_gradient = true;
    if (!sync_enabled) return;
    FT_CHECK(!s.ready, name << " parameter " << s.index
                            << " received a second gradient in one synced step: run every backward pass of a step "
                               "but the last with set_sync_enabled(false), and call finalize() before the next "
                               "synced backward");
    mark_ready(s);
    if (buckets[s.bucket].waiting == 0) launch_ready();
    if (progress_in_hooks) {
      for (size_t b = first_incomplete; b < next_launch; ++b) {
        if (!buckets[b].work->test()) break;  // they complete in order; later ones progress with it
        buckets[b].range.reset();             // its range ends here
        first_incomplete = b + 1;
      }
    }
  }
};

GradientBuckets::GradientBuckets(Communicator& comm, std::vector<torch::Tensor> parameters, int64_t bucket_cap_bytes,
                                 std::string name, int64_t first_bucket_cap_bytes)
    : state_(std::make_shared<State>()) {
  FT_CHECK(bucket_cap_bytes > 0, "bucket cap must be positive, got " << bucket_cap_bytes);
  FT_CHECK(first_bucket_cap_bytes >= 0, "first bucket cap must not be negative, got " << first_bucket_cap_bytes);
  if (first_bucket_cap_bytes == 0) first_bucket_cap_bytes = bucket_cap_bytes;
  State& st = *state_;
  st.self = state_;
  st.comm = &comm;
  st.name = std::move(name);

  // Slots in reverse parameter order; a bucket closes at the cap or when dtype/device change.
  int64_t shape_code = 17;
  int64_t current_bytes = 0;  // in the bucket being filled
  torch::Device device = torch::kCPU;
  for (int64_t i = static_cast<int64_t>(parameters.size()) - 1; i >= 0; --i) {
    const torch::Tensor& p = parameters[i];
    FT_CHECK(p.defined(), st.name << " parameter " << i << " is undefined");
    if (!p.requires_grad()) continue;
    FT_CHECK(p.is_leaf(), st.name << " parameter " << i << " is not a leaf tensor");
    FT_CHECK(p.is_floating_point() && p.layout() == torch::kStrided,
             st.name << " parameter " << i << " is not a dense floating-point tensor (" << p.scalar_type() << ")");
    FT_CHECK(comm.backend() != "mpi" || p.scalar_type() == torch::kFloat32 || p.scalar_type() == torch::kFloat64,
             st.name << " parameter " << i << " is " << p.scalar_type()
                     << ": the MPI backend averages float32/float64 gradients only (keep fp32 weights on CPU)");
    device = p.device();
    shape_code = shape_code * 1000003 + i * 31 + static_cast<int64_t>(p.scalar_type());
    for (int64_t d : p.sizes()) shape_code = shape_code * 1000003 + d;

    const int64_t bytes = p.numel() * p.element_size();
    State::Bucket* current = st.buckets.empty() ? nullptr : &st.buckets.back();
    bool fresh = current == nullptr;
    if (!fresh) {
      const State::Slot& first = st.slots[current->slots.front()];
      const int64_t cap = st.buckets.size() == 1 ? first_bucket_cap_bytes : bucket_cap_bytes;
      fresh = first.parameter.scalar_type() != p.scalar_type() || first.parameter.device() != p.device() ||
              current_bytes + bytes > cap;
    }
    if (fresh) {
      st.buckets.emplace_back();
      current = &st.buckets.back();
      current_bytes = 0;
    }
    State::Slot slot;
    slot.parameter = p;
    slot.index = i;
    slot.bucket = static_cast<int64_t>(st.buckets.size()) - 1;
    current->slots.push_back(static_cast<int64_t>(st.slots.size()));
    current_bytes += bytes;
    st.slots.push_back(std::move(slot));
  }

  // The layout's fingerprint, compared over ranks by check_same_parameters_on_every_rank() (not here: the
  // constructor runs inside setups that may still fail on one rank, before any collective).
  int64_t elements = 0;
  for (const auto& s : st.slots) elements += s.parameter.numel();
  st.layout = {static_cast<int64_t>(st.slots.size()), elements, shape_code};
  st.layout_device = device;
  st.slots_waiting = static_cast<int64_t>(st.slots.size());

  // Buckets, views, hooks.
  torch::NoGradGuard no_grad;
  const int64_t count = static_cast<int64_t>(st.buckets.size());
  for (int64_t b = 0; b < count; ++b) {
    State::Bucket& bucket = st.buckets[b];
    const torch::Tensor& first = st.slots[bucket.slots.front()].parameter;
    int64_t numel = 0;
    for (int64_t k : bucket.slots) numel += st.slots[k].parameter.numel();
    const int64_t flags = static_cast<int64_t>(bucket.slots.size());
    bucket.flat = torch::zeros({numel + flags}, first.options().requires_grad(false));
    bucket.used = bucket.flat.narrow(0, numel, flags);
    for (int64_t f = 0; f < flags; ++f) st.slots[bucket.slots[f]].used_at = f;
    bucket.waiting = static_cast<int64_t>(bucket.slots.size());
    std::ostringstream label;
    label << "allreduce of " << st.name << " bucket " << b + 1 << " of " << count << " ("  // 1-based for people
          << format_bytes(bucket.flat.nbytes()) << ")";
    bucket.label = label.str();
    bucket.range_name = "all-reduce: " + st.name + " bucket " + std::to_string(b + 1);
    int64_t offset = 0;
    for (int64_t k : bucket.slots) {
      State::Slot& s = st.slots[k];
      // set_ (not narrow/view): .grad must not be an autograd view, or Optimizer::zero_grad's detach_() throws.
      s.alias = torch::empty({0}, bucket.flat.options());
      // The parameter's own strides when it is dense (a channels_last weight's gradient then has its layout,
      // as autograd would make it), else contiguous ones.
      std::vector<int64_t> strides = s.parameter.strides().vec();
      if (!s.parameter.is_non_overlapping_and_dense()) {
        const auto contiguous = c10::contiguous_strides(s.parameter.sizes());
        strides.assign(contiguous.begin(), contiguous.end());
      }
      s.alias.set_(bucket.flat.storage(), bucket.flat.storage_offset() + offset, s.parameter.sizes(), strides);
      offset += s.parameter.numel();
      st.attach_hook(k);
    }
  }
}

GradientBuckets::~GradientBuckets() {
  for (auto& s : state_->slots) {
    if (s.accumulator) s.accumulator->del_post_hook(s.hook);
  }
}

void GradientBuckets::set_sync_enabled(bool enabled) { state_->sync_enabled = enabled; }
bool GradientBuckets::sync_enabled() const { return state_->sync_enabled; }
void GradientBuckets::set_progress_in_hooks(bool enabled) { state_->progress_in_hooks = enabled; }

void GradientBuckets::check_same_parameters_on_every_rank() {
  State& st = *state_;
  const torch::Tensor mine =
      torch::tensor(st.layout, torch::TensorOptions().dtype(torch::kInt64).device(st.layout_device)).reshape({1, 3});
  const torch::Tensor all = st.comm->all_gather(mine, "allgather of " + st.name + " bucket layout").to(torch::kCPU);
  std::vector<int> differ;
  for (int r = 0; r < st.comm->size(); ++r) {
    if (!torch::equal(all[r], all[0])) differ.push_back(r);
  }
  if (!differ.empty()) {
    std::ostringstream oss;
    oss << st.name << " buckets: rank(s)";
    for (int r : differ) oss << " " << r;
    oss << " passed a different parameter list than rank 0 (count, shapes or dtypes); every rank must build the "
           "same model and pass its parameters in the same order";
    throw std::runtime_error(oss.str());
  }
}

void GradientBuckets::finalize() {
  State& st = *state_;
  FT_CHECK(st.sync_enabled, st.name << " buckets: finalize() with sync disabled; enable sync for the step's last "
                                       "backward pass (set_sync_enabled(true)) before it");
  // (collective) every rank: the buckets not launched during backward, in order (parameters that got no
  // gradient contribute their current .grad, zeros when undefined), then wait for all.
  std::vector<int64_t> no_local_gradient;  // slots this rank has no gradient for this step
  for (size_t b = st.next_launch; b < st.buckets.size(); ++b) {
    for (int64_t k : st.buckets[b].slots) {
      State::Slot& s = st.slots[k];
      if (s.ready) continue;
      st.reattach_if_replaced(s, k);
      if (!s.got_gradient) no_local_gradient.push_back(k);
      st.adopt_gradient(s);
      st.mark_ready(s);
    }
  }
  st.launch_ready();
  // On a GPU wait() only makes the compute stream wait for the collectives: the host goes on at once, and the
  // compute stream's stall between two timing events is the exposed communication.
#if FACETRAIN_TORCH_HAS_EVENT_TIMING
  std::optional<c10::Event> waits_start;
  if (st.waits_timed_on_device()) waits_start.emplace(st.record_event());
#endif
  for (auto& bucket : st.buckets) {
    bucket.work->wait();
    bucket.work.reset();
    bucket.range.reset();
  }
#if FACETRAIN_TORCH_HAS_EVENT_TIMING
  if (waits_start) {
    if (st.timed_waits.size() >= State::kTimedWaits) st.timed_waits.pop_front();
    st.timed_waits.emplace_back(std::move(*waits_start), st.record_event());
  }
#endif
  // Parameters no rank produced a gradient for: .grad undefined, so the optimizer leaves them alone. Only
  // a parameter without a gradient here can be one, so the usual step (every parameter used) reads no
  // flags; otherwise one host copy of them (a host sync; NCCL's waits are otherwise on the GPU).
  if (!no_local_gradient.empty()) {
    std::vector<torch::Tensor> flags;
    std::vector<int64_t> bucket_start;  // offset of each bucket's flags in `used`
    int64_t offset = 0;
    for (auto& bucket : st.buckets) {
      flags.push_back(bucket.used);
      bucket_start.push_back(offset);
      offset += static_cast<int64_t>(bucket.slots.size());
    }
    const torch::Tensor used = read_to_host(torch::cat(flags).to(torch::kFloat));
    const float* any_rank_used = used.data_ptr<float>();
    for (int64_t k : no_local_gradient) {
      State::Slot& s = st.slots[k];
      if (any_rank_used[bucket_start[s.bucket] + s.used_at] == 0.0f) s.parameter.mutable_grad() = torch::Tensor();
    }
  }
  for (auto& s : st.slots) {
    s.ready = false;
    s.got_gradient = false;
  }
  for (auto& bucket : st.buckets) bucket.waiting = static_cast<int64_t>(bucket.slots.size());
  st.slots_waiting = static_cast<int64_t>(st.slots.size());
  st.overlapped = 0;
  st.next_launch = 0;
  st.first_incomplete = 0;
}

void GradientBuckets::zero_gradients() {
  torch::NoGradGuard no_grad;
  for (auto& bucket : state_->buckets) bucket.flat.zero_();
  for (auto& s : state_->slots) {  // a .grad code replaced by its own tensor (adopted again at the next backward)
    const torch::Tensor& grad = s.parameter.grad();
    if (grad.defined() && !grad.is_same(s.alias)) s.parameter.mutable_grad().zero_();
  }
}

int64_t GradientBuckets::overlapped_buckets() const { return state_->overlapped; }

bool GradientBuckets::waits_timed_on_device() const { return state_->waits_timed_on_device(); }

double GradientBuckets::take_device_wait_seconds() {
  State& st = *state_;
#if FACETRAIN_TORCH_HAS_EVENT_TIMING
  // Oldest first; an event not yet reached by the device ends the scan (later ones are not either): no wait.
  while (!st.timed_waits.empty() && st.timed_waits.front().second.query()) {
    st.device_wait_seconds += st.timed_waits.front().first.elapsedTime(st.timed_waits.front().second) / 1e3;
    st.timed_waits.pop_front();
  }
#endif
  const double seconds = st.device_wait_seconds;
  st.device_wait_seconds = 0;
  return seconds;
}

int64_t GradientBuckets::bucket_count() const { return static_cast<int64_t>(state_->buckets.size()); }

std::vector<int64_t> GradientBuckets::bucket_parameters(int64_t bucket) const {
  std::vector<int64_t> out;
  for (int64_t k : state_->buckets.at(bucket).slots) out.push_back(state_->slots[k].index);
  return out;
}

int64_t GradientBuckets::bucket_bytes(int64_t bucket) const {
  const State::Bucket& b = state_->buckets.at(bucket);
  return static_cast<int64_t>(b.flat.nbytes() - b.used.nbytes());  // the gradients, not the "used" flags
}

// ---------------------------------------------------------------------------------------------------
// broadcast and averaging of whole tensor lists
// ---------------------------------------------------------------------------------------------------
namespace {

constexpr int64_t kCoalesceBytes = 64'000'000;

// Groups tensors by (dtype, device) in first-appearance order, each group cut at kCoalesceBytes, so one
// collective moves many small tensors.
std::vector<std::vector<torch::Tensor>> coalesce_groups(const std::vector<torch::Tensor>& tensors) {
  std::vector<std::vector<torch::Tensor>> groups;
  std::map<std::pair<int, std::string>, size_t> open;  // key -> index of its current group
  std::vector<int64_t> group_bytes;
  for (const auto& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    const auto key = std::make_pair(static_cast<int>(t.scalar_type()), t.device().str());
    const int64_t bytes = t.numel() * t.element_size();
    auto it = open.find(key);
    if (it == open.end() || group_bytes[it->second] + bytes > kCoalesceBytes) {
      groups.emplace_back();
      group_bytes.push_back(0);
      open[key] = groups.size() - 1;
      it = open.find(key);
    }
    groups[it->second].push_back(t);
    group_bytes[it->second] += bytes;
  }
  return groups;
}

torch::Tensor flatten(const std::vector<torch::Tensor>& group) {
  std::vector<torch::Tensor> flat;
  flat.reserve(group.size());
  for (const auto& t : group) flat.push_back(t.detach().reshape({-1}));
  return torch::cat(flat);
}

void unflatten_into(const torch::Tensor& flat, const std::vector<torch::Tensor>& group) {
  int64_t offset = 0;
  for (const auto& t : group) {
    t.detach().copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
    offset += t.numel();
  }
}

}  // namespace

void broadcast_tensors(Communicator& comm, const std::vector<torch::Tensor>& tensors, int root) {
  torch::NoGradGuard no_grad;
  // (collective) every rank: the same grouping everywhere, since shapes and order agree.
  for (const auto& group : coalesce_groups(tensors)) {
    torch::Tensor flat = flatten(group);
    comm.broadcast_(flat, root, "broadcast of model state (" + format_bytes(flat.nbytes()) + ")");
    if (comm.rank() != root) unflatten_into(flat, group);
  }
}

void broadcast_module_state(Communicator& comm, torch::nn::Module& module, int root) {
  std::vector<torch::Tensor> tensors = module.parameters(/*recurse=*/true);
  for (const auto& b : module.buffers(/*recurse=*/true)) tensors.push_back(b);
  broadcast_tensors(comm, tensors, root);
}

void average_tensors(Communicator& comm, const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> floating, other;
  for (const auto& t : tensors) {
    if (!t.defined()) continue;
    (t.is_floating_point() ? floating : other).push_back(t);
  }
  // (collective) every rank
  for (const auto& group : coalesce_groups(floating)) {
    torch::Tensor flat = flatten(group);
    comm.all_reduce_mean_(flat, "allreduce of buffers (" + format_bytes(flat.nbytes()) + ")");
    unflatten_into(flat, group);
  }
  broadcast_tensors(comm, other, 0);
}

void average_buffers(Communicator& comm, torch::nn::Module& module) {
  average_tensors(comm, module.buffers(/*recurse=*/true));
}

}  // namespace facetrain
