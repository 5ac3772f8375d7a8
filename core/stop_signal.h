// Preemption: SIGTERM or SIGUSR1 only sets a flag here (nothing unsafe runs in the handler); the training
// loop turns the flag into a collective decision at the next step boundary, writes a checkpoint and exits
// with kExitStopped, which Slurm batch scripts treat as "requeue me".
#pragma once

namespace facetrain {

constexpr int kExitStopped = 75;  // EX_TEMPFAIL: checkpoint written, resume with --resume auto

// Installs the SIGTERM/SIGUSR1 handlers (idempotent).
void install_stop_handlers();
// True once this process received SIGTERM or SIGUSR1.
bool stop_requested();
// The signal that set the flag (0 if none).
int stop_signal();
// Clears the flag (tests).
void reset_stop_request();

}  // namespace facetrain
