// StragglerWatch and slowest_ranks (stragglers.h).
#include "trainer/stragglers.h"

#include <torch/torch.h>

#include <algorithm>
#include <iomanip>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "comm/communicator.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stopwatch.h"

namespace facetrain {
namespace {

constexpr int64_t kHostBytes = 64;

std::string ms(double seconds) {
  std::ostringstream s;
  s.precision(1);
  s << std::fixed << seconds * 1e3 << " ms";
  return s.str();
}

// "35% above" below twice the median, "12.5x" from there.
std::string how_much_slower(double ratio) {
  std::ostringstream s;
  if (ratio < 2) {
    s << static_cast<int>(100 * (ratio - 1) + 0.5) << "% above";
  } else {
    s.precision(1);
    s << std::fixed << ratio << "x";
  }
  return s.str();
}

}  // namespace

StragglerWatch::StragglerWatch(double threshold, Communicator& control, const std::string& host, std::string records)
    : threshold_(threshold), control_(control), records_(std::move(records)) {
  torch::Tensor mine = torch::zeros({1, kHostBytes}, torch::kUInt8);
  std::copy_n(host.begin(), std::min<size_t>(host.size(), kHostBytes - 1), mine.data_ptr<uint8_t>());
  const torch::Tensor all = control_.all_gather(mine, "allgather of the host names for the straggler watch");
  for (int64_t r = 0; r < all.size(0); ++r)
    hosts_.emplace_back(reinterpret_cast<const char*>(all[r].data_ptr<uint8_t>()));
  slow_intervals_.assign(hosts_.size(), 0);
}

StragglerWatch::~StragglerWatch() = default;  // an open exchange is left to MPI (PendingCollective's contract)

void StragglerWatch::add_step(double step_seconds, double own_seconds, double data_wait_seconds) {
  step_seconds_ += step_seconds;
  own_.push_back(own_seconds);
  data_wait_.push_back(data_wait_seconds);
  if (pending_) {
    const Clock::time_point start = Clock::now();
    if (pending_->test()) judge();
    seconds_ += seconds_since(start);
  }
}

void StragglerWatch::end_interval(int64_t step) {
  const Clock::time_point start = Clock::now();
  if (pending_) judge();
  ++intervals_;
  first_ = step - static_cast<int64_t>(own_.size()) + 1;
  last_ = step;
  rows_ = torch::zeros({static_cast<int64_t>(hosts_.size()), 3}, torch::kFloat64);
  rows_[control_.rank()] =
      torch::tensor({median(own_), median(data_wait_), static_cast<double>(own_.size())}, torch::kFloat64);
  own_.clear();
  data_wait_.clear();
  pending_ = control_.all_reduce_sum_async_(rows_, "allreduce of the step-time medians for the straggler watch");
  seconds_ += seconds_since(start);
}

void StragglerWatch::finish() {
  if (pending_) judge();
}

void StragglerWatch::judge() {
  pending_->wait();
  pending_.reset();
  const int ranks = static_cast<int>(rows_.size(0));
  std::vector<double> own(ranks), wait(ranks);
  bool every_rank_stepped = true;
  const auto r_ = rows_.accessor<double, 2>();
  for (int r = 0; r < ranks; ++r) {
    own[r] = r_[r][0];
    wait[r] = r_[r][1];
    every_rank_stepped = every_rank_stepped && r_[r][2] > 0;
  }
  named_.clear();
  if (!every_rank_stepped || ranks < 2) return;
  for (int r = 0; r < ranks; ++r) {
    // Against the other ranks' median: with two ranks the median of all would be the mean of the two.
    std::vector<double> others_own = own, others_wait = wait;
    others_own.erase(others_own.begin() + r);
    others_wait.erase(others_wait.begin() + r);
    const double typical_own = median(others_own), typical_wait = median(others_wait);
    const bool slow = own[r] > (1 + threshold_) * typical_own;
    const bool was = slow_intervals_[r] >= 2;
    slow_intervals_[r] = slow ? slow_intervals_[r] + 1 : 0;
    if (slow_intervals_[r] >= 2) named_.push_back(r);
    if (control_.rank() != 0) continue;
    if (slow_intervals_[r] == 2) {
      const double extra_wait = wait[r] - typical_wait, extra = own[r] - typical_own;
      log("straggler: rank " + std::to_string(r) + " (host " + hosts_[r] + "), steps " + std::to_string(first_) + "-" +
          std::to_string(last_) + ": " + ms(own[r]) + " of its own work per step, " +
          how_much_slower(own[r] / typical_own) + " the other ranks' median " + ms(typical_own) +
          " (logging.straggler_threshold " + std::to_string(static_cast<int>(threshold_ * 100)) +
          "%); the extra time is " + (extra_wait > extra / 2 ? "data wait" : "compute") + " (data wait " + ms(wait[r]) +
          " against " + ms(typical_wait) + ")");
    } else if (was && !slow) {
      log("straggler: rank " + std::to_string(r) + " (host " + hosts_[r] + ") is back within the threshold in steps " +
          std::to_string(first_) + "-" + std::to_string(last_));
    }
  }
  if (control_.rank() == 0 && !records_.empty()) {
    nlohmann::json line{
        {"step", last_}, {"first_step", first_}, {"own_s", own}, {"data_wait_s", wait}, {"hosts", hosts_}};
    if (!records_out_.is_open()) records_out_.open(records_, std::ios::app);
    records_out_ << line.dump() << std::endl;  // diagnostics only: a rank that cannot write it trains on
  }
}

std::string StragglerWatch::describe_cost() const {
  std::ostringstream s;
  s.precision(2);
  s << std::fixed << "straggler watch: " << intervals_ << " log interval" << (intervals_ == 1 ? "" : "s")
    << " compared, " << (intervals_ > 0 ? 1e3 * seconds_ / static_cast<double>(intervals_) : 0.0) << " ms each, "
    << std::setprecision(3) << (step_seconds_ > 0 ? 100 * seconds_ / step_seconds_ : 0.0) << "% of the step time";
  return s.str();
}

std::vector<std::string> slowest_ranks(const std::string& records, int count) {
  std::ifstream in(records);
  if (!in) return {};
  std::map<int, std::vector<double>> relative;  // rank -> own work / the other ranks' median, per interval
  std::map<int, std::string> hosts;
  std::string text;
  int intervals = 0;
  while (std::getline(in, text)) {
    nlohmann::json line;
    try {
      line = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception&) {
      continue;  // a line cut off by a kill
    }
    const std::vector<double> own = line.value("own_s", std::vector<double>{});
    const std::vector<std::string> names = line.value("hosts", std::vector<std::string>{});
    if (own.size() < 2) continue;
    ++intervals;
    for (size_t r = 0; r < own.size(); ++r) {
      std::vector<double> others = own;
      others.erase(others.begin() + static_cast<std::ptrdiff_t>(r));
      const double typical = median(others);
      if (typical > 0) relative[static_cast<int>(r)].push_back(own[r] / typical);
      if (r < names.size()) hosts[static_cast<int>(r)] = names[r];
    }
  }
  if (relative.size() < 2) return {};
  std::vector<std::pair<double, int>> by_slowness;
  for (const auto& [rank, values] : relative) by_slowness.emplace_back(median(values), rank);
  std::sort(by_slowness.rbegin(), by_slowness.rend());
  std::vector<std::string> lines{"slowest ranks (own work per step against the other ranks' median, " +
                                 std::to_string(intervals) + " log intervals of ranks.jsonl):"};
  for (int i = 0; i < count && i < static_cast<int>(by_slowness.size()); ++i) {
    const auto [ratio, rank] = by_slowness[i];
    std::ostringstream s;
    s.precision(2);
    s << std::fixed << "  rank " << rank << " (host " << hosts[rank] << "): " << ratio << "x the others' median";
    lines.push_back(s.str());
  }
  return lines;
}

}  // namespace facetrain
