// The collective flight recorder: every rank keeps its last collectives (sequence number on their
// communicator, operation, bytes, step, start and end time) in a ring of fixed-size records. Once a run
// directory exists the ring is a file-backed shared mapping, RUN_DIR/flight/rank-R.ring: the kernel keeps it
// on disk whatever ends the process (a watchdog abort, SIGKILL, a node's OOM killer), so nothing has to run
// at death and the rings can be read while the job still runs. `facetrain doctor RUN_DIR` (and the launcher,
// before it aborts a job) merges the ranks' rings and names the first collective where they diverged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace facetrain {

// Starts recording into DIRECTORY/rank-<rank>.ring (created; an existing ring of this rank is replaced),
// keeping the last `capacity` collectives; a ring opened before (an earlier run in this process) is closed.
// Until then, and when this fails, nothing is recorded (a run that cannot write its ring still trains: the
// failure is logged by the caller from the exception). `generation` names the attempt the ring belongs to:
// the same on every rank of one job, larger for a later attempt (the trainer uses rank 0's clock at start, in
// ns, broadcast), so a resume on fewer ranks leaves the rings of the ranks that are gone recognisably stale.
void flight_recorder_open(const std::string& directory, int rank, int world_size, int64_t generation,
                          int capacity = 1024);
// The directory of the open ring ("" when none): where the launcher looks on abort.
std::string flight_recorder_directory();

// A collective starting on `communicator` ("control", "gradient"): returns a handle for flight_end(), or -1
// when not recording. Cheap: a few stores into the mapping. Thread-safe.
int64_t flight_begin(const char* communicator, int64_t seq, int64_t step, int64_t bytes, const std::string& label);
void flight_end(int64_t handle);

// One record as read back.
struct FlightRecord {
  int rank = 0;
  std::string communicator;
  int64_t seq = 0, step = -1, bytes = 0;
  double start = 0, end = 0;  // seconds since the epoch; end 0: never completed
  std::string label;
};

struct RankFlight {
  int rank = 0, world_size = 0;
  int64_t generation = 0;  // the attempt (flight_recorder_open); 0 in a ring of the first format
  int64_t pid = 0;
  std::string host, path;
  std::vector<FlightRecord> records;  // oldest first
};

// Reads every rank-*.ring in `directory`, of every attempt. Throws UserError naming the directory or a
// damaged file.
std::vector<RankFlight> read_flight_records(const std::string& directory);

// The diagnosis of the newest attempt's rings (the largest generation; rings of earlier attempts, e.g. of
// ranks a resume on fewer ranks no longer has, are named and left out): per communicator, the first
// collective (by sequence number, within what every ring still holds) that not every rank completed, which
// ranks started it and which did not (with each one's last collective), different operations at one sequence
// number; then which ranks' processes are gone where that can be told: on this host, a pid that no longer
// exists; on another, a ring that stopped advancing before the others'. Lines for people; the first names the
// attempt's world size and says whether the ranks diverged.
std::vector<std::string> diagnose_flight(const std::vector<RankFlight>& ranks);

}  // namespace facetrain
