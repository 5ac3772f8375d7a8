// A communicator for tests that forwards to a real one and checks what it carries. Gradient traffic is what
// comm/gradient_sync.cpp names so in its labels (bucket all-reduces and layouts, the model-state broadcast,
// buffer averaging) and the class-weighted loss's weight sum; a communicator in the gradient role fails the
// running test on anything else, one in the control role on any of that. So a control tensor sent to the
// gradient communicator, or a gradient bucket sent to the control one, is caught where it happens.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

#include "comm/communicator.h"

namespace facetrain::testing {

class RoutingCommunicator : public Communicator {
 public:
  enum class Role { kControl, kGradient };

  RoutingCommunicator(std::unique_ptr<Communicator> inner, Role role) : inner_(std::move(inner)), role_(role) {}

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::string backend() const override { return inner_->backend(); }
  int operations() const { return operations_; }

  void all_reduce_sum_(torch::Tensor& tensor, const std::string& label) override {
    check("all_reduce_sum_", label);
    inner_->all_reduce_sum_(tensor, label);
  }
  std::unique_ptr<PendingCollective> all_reduce_sum_async_(torch::Tensor& tensor, const std::string& label) override {
    check("all_reduce_sum_async_", label);
    return inner_->all_reduce_sum_async_(tensor, label);
  }
  std::unique_ptr<PendingCollective> all_reduce_mean_async_(torch::Tensor& tensor, const std::string& label) override {
    check("all_reduce_mean_async_", label);
    return inner_->all_reduce_mean_async_(tensor, label);
  }
  void broadcast_(torch::Tensor& tensor, int root, const std::string& label) override {
    check("broadcast_", label);
    inner_->broadcast_(tensor, root, label);
  }
  torch::Tensor all_gather(const torch::Tensor& tensor, const std::string& label) override {
    check("all_gather", label);
    return inner_->all_gather(tensor, label);
  }
  void barrier(const std::string& label) override {
    check("barrier", label);
    inner_->barrier(label);
  }

 private:
  static bool is_gradient_traffic(const std::string& label) {
    return label.find(" bucket") != std::string::npos || label.find("model state") != std::string::npos ||
           label.find("of buffers") != std::string::npos || label.find("class-weight sum") != std::string::npos;
  }
  void check(const char* operation, const std::string& label) {
    ++operations_;
    const bool gradient = is_gradient_traffic(label);
    if (role_ == Role::kGradient && !gradient) {
      ADD_FAILURE() << "control traffic on the gradient communicator: " << operation << " '" << label << "'";
    }
    if (role_ == Role::kControl && gradient) {
      ADD_FAILURE() << "gradient traffic on the control communicator: " << operation << " '" << label << "'";
    }
  }

  std::unique_ptr<Communicator> inner_;
  Role role_;
  int operations_ = 0;
};

}  // namespace facetrain::testing
