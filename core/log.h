// Rank-aware console output: log() prints on rank 0 only (the one logger users read), log_all() on every
// rank with a "[rank r]" prefix. The launcher sets the rank once after MPI starts; before that, rank is 0.
#pragma once

#include <cstdint>
#include <string>

namespace facetrain {

void set_log_rank(int rank, int world_size);
int log_rank();
int log_world_size();

// (rank 0 only) one line to stdout, flushed.
void log(const std::string& line);
// (every rank) one line to stderr prefixed with "[rank r] ".
void log_all(const std::string& line);
// `value` with `digits` decimals (printf %.*f): figures in log lines.
std::string fixed_decimals(double value, int digits);
// "6.2 MB", "980 B" (decimal units, as bandwidths are quoted): sizes in log lines and messages.
std::string format_bytes(int64_t bytes);
// True when stdout is a terminal (progress bars) rather than a file (Slurm logs: plain periodic lines).
bool stdout_is_terminal();

}  // namespace facetrain
