// The stop flag and its signal handlers (see stop_signal.h). The handlers only store to lock-free atomics:
// checkpointing inside a handler is what makes requeue flaky in other tools.
#include "core/stop_signal.h"

#include <csignal>

#include "core/error.h"

namespace facetrain {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
std::atomic<bool> g_second_signal_ends_process{false};  // StopOnSignal's rule
struct sigaction g_previous_int, g_previous_term;

static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "signal handlers may only touch lock-free atomics");

void on_signal(int signal) {
  if (g_stop.exchange(true) && g_second_signal_ends_process.load()) {
    std::signal(signal, SIG_DFL);  // second signal: default action
    std::raise(signal);
    return;
  }
  g_signal.store(signal);
}

}  // namespace

int preemption_signal_number(const std::string& name) {
  if (name == "USR1") return SIGUSR1;
  if (name == "USR2") return SIGUSR2;
  FT_USER_CHECK(name == "TERM", "checkpoint.preemption_signal must be USR1, USR2 or TERM (got '" << name << "')");
  return SIGTERM;
}

std::string signal_name(int signal) {
  switch (signal) {
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case 0: return "a signal to another rank";
    default: return "signal " + std::to_string(signal);
  }
}

void install_stop_handlers(int preemption_signal) {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(preemption_signal, &action, nullptr);
}

bool stop_requested() { return g_stop.load(); }
int stop_signal() { return g_signal.load(); }
void reset_stop_request() {
  g_stop.store(false);
  g_signal.store(0);
}

StopOnSignal::StopOnSignal() {
  reset_stop_request();
  g_second_signal_ends_process.store(true);
  struct sigaction action = {};
  action.sa_handler = &on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &g_previous_int);
  sigaction(SIGTERM, &action, &g_previous_term);
}

StopOnSignal::~StopOnSignal() {
  sigaction(SIGINT, &g_previous_int, nullptr);
  sigaction(SIGTERM, &g_previous_term, nullptr);
  g_second_signal_ends_process.store(false);
}

const std::atomic<bool>* StopOnSignal::flag() const { return &g_stop; }

}  // namespace facetrain
