// The setup agreement (see setup_agreement.h): two flag all-reduces that every rank makes whether its setup
// failed or not, so every rank learns that some rank failed and which ranks print the line.
#include "runtime/setup_agreement.h"

namespace facetrain {
namespace {

// Both sides of the setup agreement: two flag all-reduces that every rank makes whether it failed or not.
void agree_on_setup(Communicator& comm, bool failed, const std::string& message) {
  comm.set_setup_agreed();
  if (comm.size() == 1) {
    if (failed) throw UserError(message);
    return;
  }
  if (!any_rank(comm, failed)) return;
  // Usually every rank failed the same way (same flags, same shared files): rank 0 speaks for all. A rank
  // whose failure rank 0 did not share (a file missing on one node) speaks for itself.
  const bool rank0_failed = any_rank(comm, comm.rank() == 0 && failed);
  const bool print_here = failed && (comm.rank() == 0 || !rank0_failed);
  throw JobUserError(print_here ? message : "another rank failed its setup", print_here);
}

}  // namespace

void agree_setup_done(Communicator& comm) { agree_on_setup(comm, false, std::string()); }

void agree_setup_failed(Communicator& comm, const std::string& message) {
  agree_on_setup(comm, true, message);
  throw UserError(message);  // not reached: agree_on_setup throws when this rank failed
}

void run_setup_on_every_rank(Communicator& comm, const std::function<void()>& setup) {
  try {
    setup();
  } catch (const UserError& e) {
    agree_setup_failed(comm, e.what());
  }
  agree_setup_done(comm);
}

}  // namespace facetrain
