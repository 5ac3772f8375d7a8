// The setup agreement of a command that runs on ranks: a bad config, flag or file on any rank becomes one
// line and a clean exit on every rank (JobUserError) instead of a job abort. Built only from the
// Communicator's public collectives (two flag all-reduces); the protocol is described in comm/README.md.
#pragma once

#include <functional>
#include <string>

#include "comm/communicator.h"
#include "core/error.h"

namespace facetrain {

// A UserError the whole job has agreed on (run_setup_on_every_rank below): every rank throws it, only
// `print_here` ranks print it (rank 0, or the failing ranks when rank 0 did not fail), and every rank exits
// cleanly with the bad-input code instead of aborting the job: one line for a bad config under mpirun.
class JobUserError : public UserError {
 public:
  JobUserError(const std::string& message, bool print_here) : UserError(message), print_here_(print_here) {}
  bool print_here() const { return print_here_; }

 private:
  bool print_here_;
};

// (collective) every rank. A command's setup (flags, config, files, model: no collectives) ends with
// agree_setup_done() on every rank whose setup succeeded, before the first collective; a rank whose setup
// threw a UserError calls agree_setup_failed() instead (the launcher does it for any command). Either way
// every rank then throws JobUserError (printed once, every rank exits with the bad-input code, no job
// abort) when any rank failed; otherwise agree_setup_done() returns. Both mark the communicator
// (Communicator::setup_agreed()).
void agree_setup_done(Communicator& comm);
[[noreturn]] void agree_setup_failed(Communicator& comm, const std::string& message);
// Runs `setup` on every rank and agrees on its outcome (above): for setups that run in the middle of a
// command (the trainer's, after the command's own).
void run_setup_on_every_rank(Communicator& comm, const std::function<void()>& setup);

}  // namespace facetrain
