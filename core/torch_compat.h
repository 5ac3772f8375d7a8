// The LibTorch version compatibility points: every difference between the two LibTorch builds facetrain is
// built and tested against (Debian's 1.13, CPU; the torch wheel's 2.x, CUDA) is named here once, so the rest
// of the code calls one spelling. Add a point here rather than an #if elsewhere.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/version.h>

#include <type_traits>
#include <utility>

#define FACETRAIN_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// c10::Allocator::allocate is const in 1.13, not in 2.x.
#if FACETRAIN_TORCH_AT_LEAST(2, 0)
#define FACETRAIN_ALLOCATOR_CONST
#else
#define FACETRAIN_ALLOCATOR_CONST const
#endif

// c10::Event::elapsedTime (device-generic event timing, CUDA events on a GPU) exists from LibTorch 2.5.
#define FACETRAIN_TORCH_HAS_EVENT_TIMING FACETRAIN_TORCH_AT_LEAST(2, 5)

namespace facetrain {
namespace torch_compat {

// A parameter's gradient accumulator node: std::shared_ptr in 1.13, c10::intrusive_ptr in 2.x.
using GradAccumulatorPtr =
    std::decay_t<decltype(torch::autograd::impl::grad_accumulator(std::declval<const at::Tensor&>()))>;

// Autocast state per device type: 2.4 replaced the CPU/GPU-specific functions by ones taking the device type.
inline bool autocast_enabled(c10::DeviceType device) {
#if FACETRAIN_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

inline void set_autocast_enabled(c10::DeviceType device, bool enabled) {
#if FACETRAIN_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

inline c10::ScalarType autocast_dtype(c10::DeviceType device) {
#if FACETRAIN_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                         : at::autocast::get_autocast_cpu_dtype();
#endif
}

inline void set_autocast_dtype(c10::DeviceType device, c10::ScalarType dtype) {
#if FACETRAIN_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

}  // namespace torch_compat
}  // namespace facetrain
