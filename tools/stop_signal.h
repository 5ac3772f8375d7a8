// Turns SIGINT/SIGTERM into a flag for long single-process work (ingest, synth): the work stops between
// windows and unwinds, so the StoreWriter removes its .partial file instead of leaving half a store.
#pragma once

#include <atomic>

namespace facetrain {

// Installs the handlers for its lifetime and restores the previous ones after. A second signal while the
// flag is set gets the default action (the process ends at once; a .partial file may remain, never a
// complete-looking store). One instance at a time.
class StopOnSignal {
 public:
  StopOnSignal();
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  const std::atomic<bool>* flag() const;
};

}  // namespace facetrain
