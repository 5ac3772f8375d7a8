// Rank-aware console output (see log.h).
#include "core/log.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <string>
#include <system_error>

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

std::string fixed_decimals(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", digits, value);
  return text;
}

std::string format_bytes(int64_t bytes) {
  std::ostringstream oss;
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) {
    oss << std::fixed << std::setprecision(2) << b / 1e9 << " GB";
  } else if (b >= 1e6) {
    oss << std::fixed << std::setprecision(1) << b / 1e6 << " MB";
  } else if (b >= 1e3) {
    oss << std::fixed << std::setprecision(1) << b / 1e3 << " kB";
  } else {
    oss << bytes << " B";
  }
  return oss.str();
}

bool stdout_is_terminal() {
  if (isatty(fileno(stdout)) == 0) return false;
  // Open MPI gives every local rank a pseudo-terminal as stdout, whatever mpirun's own stdout is; what the
  // user sees is the launcher's (mpirun or its node daemon, our parent) stdout, e.g. a Slurm log file.
  if (std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr) return true;
  std::error_code ec;
  const std::string target = std::filesystem::read_symlink("/proc/" + std::to_string(getppid()) + "/fd/1", ec).string();
  if (ec) return false;
  return target.rfind("/dev/pts/", 0) == 0 || target.rfind("/dev/tty", 0) == 0;
}

}  // namespace facetrain
