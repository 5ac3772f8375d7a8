// Rank-aware console output (see log.h).
#include "common/log.h"

#include <unistd.h>

#include <cstdio>
#include <mutex>

namespace facetrain {
namespace {
int g_rank = 0;
int g_world = 1;
std::mutex g_mutex;
}  // namespace

void set_log_rank(int rank, int world_size) {
  g_rank = rank;
  g_world = world_size;
}
int log_rank() { return g_rank; }
int log_world_size() { return g_world; }

void log(const std::string& line) {
  if (g_rank != 0) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

void log_all(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "[rank %d] %s\n", g_rank, line.c_str());
  std::fflush(stderr);
}

bool stdout_is_terminal() { return isatty(fileno(stdout)) != 0; }

}  // namespace facetrain
