// Signals turned into a flag, in one place: nothing unsafe runs in a handler. Two uses:
// - Training (preemption): SIGTERM or the run's preemption signal (SIGUSR1 by default) sets the flag; the training loop
// turns it into a collective
//   decision at the next step boundary, writes a checkpoint and exits with kExitStopped, which Slurm batch
//   scripts treat as "requeue me".
// - Long single-process work (ingest, synth): StopOnSignal turns SIGINT/SIGTERM into the flag for its
//   lifetime; the work stops between windows and unwinds, so the StoreWriter removes its .partial file.
#pragma once

#include <atomic>
#include <string>

namespace facetrain {

constexpr int kExitStopped = 75;  // EX_TEMPFAIL: checkpoint written, resume with --resume auto

// "USR1" -> SIGUSR1, "USR2" -> SIGUSR2, "TERM" -> SIGTERM (checkpoint.preemption_signal); throws UserError
// naming the field for anything else.
int preemption_signal_number(const std::string& name);
// "SIGUSR1" for SIGUSR1, and so on (log lines); 0 (this rank got none) says another rank did.
std::string signal_name(int signal);
// Installs the handlers of a training run: SIGTERM and `preemption_signal` (idempotent; they stay for the
// process). Other signals keep their actions.
void install_stop_handlers(int preemption_signal);
// True once this process received a stop signal (either use).
bool stop_requested();
// The signal that set the flag (0 if none).
int stop_signal();
// Clears the flag (tests).
void reset_stop_request();

// Installs SIGINT/SIGTERM handlers for its lifetime and restores the previous ones after. A second signal
// while the flag is set gets the default action (the process ends at once; a .partial file may remain,
// never a complete-looking store). One instance at a time.
class StopOnSignal {
 public:
  StopOnSignal();
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  const std::atomic<bool>* flag() const;
};

}  // namespace facetrain
