// SIGINT/SIGTERM -> stop flag for ingest and synth (see stop_signal.h).
#include "tools/stop_signal.h"

#include <csignal>

namespace facetrain {
namespace {

std::atomic<bool> g_stop{false};
struct sigaction g_previous_int, g_previous_term;

void on_signal(int signal) {
  if (g_stop.exchange(true)) {
    std::signal(signal, SIG_DFL);  // second signal: default action
    std::raise(signal);
  }
}

}  // namespace

StopOnSignal::StopOnSignal() {
  g_stop = false;
  struct sigaction action = {};
  action.sa_handler = &on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &g_previous_int);
  sigaction(SIGTERM, &action, &g_previous_term);
}

StopOnSignal::~StopOnSignal() {
  sigaction(SIGINT, &g_previous_int, nullptr);
  sigaction(SIGTERM, &g_previous_term, nullptr);
}

const std::atomic<bool>* StopOnSignal::flag() const { return &g_stop; }

}  // namespace facetrain
