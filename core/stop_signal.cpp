// Stop-request flag set by SIGTERM/SIGUSR1 (see stop_signal.h). The handler only stores to a
// sig_atomic_t: checkpointing inside a handler is what makes requeue flaky in other tools.
#include "core/stop_signal.h"

#include <csignal>

namespace facetrain {
namespace {
volatile std::sig_atomic_t g_signal = 0;
void on_stop_signal(int signal) { g_signal = signal; }
}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);
}

bool stop_requested() { return g_signal != 0; }
int stop_signal() { return g_signal; }
void reset_stop_request() { g_signal = 0; }

}  // namespace facetrain
