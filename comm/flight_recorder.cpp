// The collective flight recorder (see flight_recorder.h).
#include "comm/flight_recorder.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "core/error.h"

namespace facetrain {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'F', 'T', 'F', 'L', 'I', 'G', 'H', 'T'};
constexpr uint32_t kVersion = 2;  // 2: the attempt's generation (version 1 rings read as generation 0)

// On disk, little-endian as the machine (the reader checks the magic and version; rings are read where
// they were written or on a machine of the same kind).
struct Header {
  char magic[8];
  uint32_t version;
  int32_t rank;
  int32_t world_size;
  int32_t capacity;
  int64_t pid;
  char host[64];
  int64_t next;        // records begun so far; record k lives in slot k % capacity (stored with release order)
  int64_t generation;  // the attempt that wrote the ring (zero padding in version 1)
  char pad[16];
};
static_assert(sizeof(Header) == 128, "flight ring header layout");

struct Record {
  int64_t valid;  // the record's number + 1 once its fields are written; 0 while being written
  int64_t seq;
  int64_t step;
  int64_t bytes;
  int64_t start_ns;
  int64_t end_ns;
  char communicator[16];
  char label[80];
};
static_assert(sizeof(Record) == 144, "flight ring record layout");

struct Ring {
  std::mutex mutex;  // begin() from the training thread and autograd's, end() from wherever a wait ends
  Header* header = nullptr;
  Record* records = nullptr;
  size_t bytes = 0;  // of the mapping
  std::string directory;
};

Ring& ring() {
  static Ring r;
  return r;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void copy_text(char* dst, size_t size, const std::string& src) {
  const size_t n = std::min(size - 1, src.size());
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

}  // namespace

void flight_recorder_open(const std::string& directory, int rank, int world_size, int64_t generation, int capacity) {
  Ring& r = ring();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.header != nullptr) {  // a second run in this process: its own ring from here on
    ::munmap(r.header, r.bytes);
    r.header = nullptr;
    r.records = nullptr;
    r.directory.clear();
  }
  std::error_code ec;
  fs::create_directories(directory, ec);
  FT_USER_CHECK(!ec, directory << ": cannot create the flight recorder directory: " << ec.message());
  const std::string path = (fs::path(directory) / ("rank-" + std::to_string(rank) + ".ring")).string();
  const size_t bytes = sizeof(Header) + static_cast<size_t>(capacity) * sizeof(Record);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  FT_USER_CHECK(fd >= 0, path << ": cannot create the flight ring: " << std::strerror(errno));
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    const int err = errno;
    ::close(fd);
    throw UserError(path + ": cannot size the flight ring: " + std::strerror(err));
  }
  void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  FT_USER_CHECK(map != MAP_FAILED, path << ": cannot map the flight ring: " << std::strerror(errno));
  auto* header = static_cast<Header*>(map);  // zero-filled by ftruncate
  std::memcpy(header->magic, kMagic, sizeof(kMagic));
  header->version = kVersion;
  header->rank = rank;
  header->world_size = world_size;
  header->capacity = capacity;
  header->pid = ::getpid();
  header->generation = generation;
  char host[64] = {0};
  ::gethostname(host, sizeof(host) - 1);
  std::memcpy(header->host, host, sizeof(host));
  header->next = 0;
  r.records = reinterpret_cast<Record*>(static_cast<char*>(map) + sizeof(Header));  // zero-filled by ftruncate
  r.header = header;
  r.bytes = bytes;
  r.directory = directory;
}

std::string flight_recorder_directory() {
  Ring& r = ring();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.directory;
}

int64_t flight_begin(const char* communicator, int64_t seq, int64_t step, int64_t bytes, const std::string& label) {
  Ring& r = ring();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.header == nullptr) return -1;
  // The marker goes to 0 before the fields change and to k + 1 after (release stores: in that order in
  // memory), so a process stopped in between leaves a record the reader skips, never a mixed one.
  const int64_t k = r.header->next;
  Record& rec = r.records[k % r.header->capacity];
  __atomic_store_n(&rec.valid, int64_t{0}, __ATOMIC_RELEASE);
  rec.seq = seq;
  rec.step = step;
  rec.bytes = bytes;
  rec.start_ns = now_ns();
  rec.end_ns = 0;
  copy_text(rec.communicator, sizeof(rec.communicator), communicator);
  copy_text(rec.label, sizeof(rec.label), label);
  __atomic_store_n(&rec.valid, k + 1, __ATOMIC_RELEASE);
  __atomic_store_n(&r.header->next, k + 1, __ATOMIC_RELEASE);
  return k;
}

void flight_end(int64_t handle) {
  if (handle < 0) return;
  Ring& r = ring();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.header == nullptr) return;
  Record& rec = r.records[handle % r.header->capacity];
  if (rec.valid == handle + 1) __atomic_store_n(&rec.end_ns, now_ns(), __ATOMIC_RELEASE);
}

std::vector<RankFlight> read_flight_records(const std::string& directory) {
  FT_USER_CHECK(fs::is_directory(directory), directory << ": no flight records here (is it a run directory? the "
                                                          "rings are in RUN_DIR/flight/)");
  std::vector<RankFlight> out;
  for (const auto& entry : fs::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("rank-", 0) != 0 || entry.path().extension() != ".ring") continue;
    const std::string path = entry.path().string();
    std::string bytes;
    {
      FILE* f = std::fopen(path.c_str(), "rb");
      FT_USER_CHECK(f != nullptr, path << ": cannot read: " << std::strerror(errno));
      std::fseek(f, 0, SEEK_END);
      bytes.resize(static_cast<size_t>(std::max(0L, std::ftell(f))));
      std::fseek(f, 0, SEEK_SET);
      const size_t got = std::fread(bytes.data(), 1, bytes.size(), f);
      std::fclose(f);
      bytes.resize(got);
    }
    FT_USER_CHECK(bytes.size() >= sizeof(Header) && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0,
                  path << ": not a flight ring");
    Header header;
    std::memcpy(static_cast<void*>(&header), bytes.data(), sizeof(Header));
    FT_USER_CHECK(header.version >= 1 && header.version <= kVersion,
                  path << ": flight ring version " << header.version << ", this facetrain reads 1 to " << kVersion);
    FT_USER_CHECK(
        header.capacity > 0 && bytes.size() >= sizeof(Header) + static_cast<size_t>(header.capacity) * sizeof(Record),
        path << ": truncated flight ring");
    RankFlight rank;
    rank.rank = header.rank;
    rank.world_size = header.world_size;
    rank.generation = header.version >= 2 ? header.generation : 0;
    rank.pid = header.pid;
    rank.host = std::string(header.host, strnlen(header.host, sizeof(header.host)));
    rank.path = path;
    const int64_t next = header.next;
    for (int64_t k = std::max<int64_t>(0, next - header.capacity); k < next; ++k) {
      Record rec;
      std::memcpy(static_cast<void*>(&rec), bytes.data() + sizeof(Header) + (k % header.capacity) * sizeof(Record),
                  sizeof(Record));
      if (rec.valid != k + 1) continue;  // being rewritten when the process stopped
      FlightRecord f;
      f.rank = header.rank;
      f.communicator = std::string(rec.communicator, strnlen(rec.communicator, sizeof(rec.communicator)));
      f.seq = rec.seq;
      f.step = rec.step;
      f.bytes = rec.bytes;
      f.start = rec.start_ns * 1e-9;
      f.end = rec.end_ns * 1e-9;
      f.label = std::string(rec.label, strnlen(rec.label, sizeof(rec.label)));
      rank.records.push_back(std::move(f));
    }
    out.push_back(std::move(rank));
  }
  FT_USER_CHECK(!out.empty(), directory << ": no rank-*.ring files");
  std::sort(out.begin(), out.end(), [](const RankFlight& a, const RankFlight& b) { return a.rank < b.rank; });
  return out;
}

namespace {

std::string describe(const FlightRecord& r) {
  std::ostringstream s;
  s << r.communicator << " #" << r.seq << " '" << r.label << "'";
  if (r.step >= 0) s << " at step " << r.step;
  return s.str();
}

std::string rank_list(const std::vector<int>& ranks) {
  std::ostringstream s;
  s << (ranks.size() == 1 ? "rank " : "ranks ");
  for (size_t i = 0; i < ranks.size(); ++i) s << (i ? ", " : "") << ranks[i];
  return s.str();
}

// When a ring last changed: its newest record's start or end (0 for an empty ring).
double last_activity(const RankFlight& r) {
  double t = 0;
  for (const auto& rec : r.records) t = std::max({t, rec.start, rec.end});
  return t;
}

// Which ranks' processes are gone, where that can be told. On this host kill(pid, 0) answers (ESRCH: no such
// process; EPERM still means one exists). On another host only the ring speaks: one that stopped advancing
// more than a second before the newest (ranks normally reach a collective well within that of each other)
// belongs to a process that died or stalled first.
std::vector<std::string> process_lines(const std::vector<RankFlight>& ranks) {
  char name[65] = {0};
  ::gethostname(name, sizeof(name) - 1);
  const std::string host = name;
  std::vector<int> gone, running;
  double newest = 0;
  for (const auto& r : ranks) newest = std::max(newest, last_activity(r));
  std::vector<std::string> lines;
  for (const auto& r : ranks) {
    if (r.host == host) {
      const bool exists = r.pid > 0 && (::kill(static_cast<pid_t>(r.pid), 0) == 0 || errno == EPERM);
      (exists ? running : gone).push_back(r.rank);
      continue;
    }
    const double lag = newest - last_activity(r);
    if (lag > 1.0) {
      std::ostringstream s;
      s << "rank " << r.rank << " (host " << r.host << ", pid " << r.pid << "): its ring stopped advancing "
        << std::fixed << std::setprecision(3) << lag << " s before the others': its process is likely gone";
      lines.push_back(s.str());
    }
  }
  if (!gone.empty() || !running.empty()) {
    std::string s = "processes on this host (" + host + "): ";
    if (!gone.empty()) s += rank_list(gone) + " gone";
    if (!gone.empty() && !running.empty()) s += "; ";
    if (!running.empty()) s += rank_list(running) + " running";
    lines.insert(lines.begin(), s);
  }
  return lines;
}

}  // namespace

std::vector<std::string> diagnose_flight(const std::vector<RankFlight>& rings) {
  // The newest attempt's rings; an earlier attempt's (a rank a resume on fewer ranks no longer has) are old
  // news, and would read as a rank that never reached the collectives the others completed since.
  int64_t newest = LLONG_MIN;
  for (const auto& r : rings) newest = std::max(newest, r.generation);
  std::vector<RankFlight> ranks;
  std::vector<int> stale;
  std::set<int> stale_world_sizes;
  for (const auto& r : rings) {
    if (r.generation == newest) {
      ranks.push_back(r);
    } else {
      stale.push_back(r.rank);
      stale_world_sizes.insert(r.world_size);
    }
  }
  std::vector<std::string> lines;
  std::set<std::string> communicators;
  for (const auto& r : ranks) {
    for (const auto& rec : r.records) communicators.insert(rec.communicator);
  }
  bool diverged = false;
  for (const std::string& comm : communicators) {
    // Per rank: seq -> record on this communicator; the window every ring still holds.
    std::vector<std::map<int64_t, const FlightRecord*>> by_seq(ranks.size());
    int64_t window_start = 0, last = 0;
    for (size_t i = 0; i < ranks.size(); ++i) {
      for (const auto& rec : ranks[i].records) {
        if (rec.communicator == comm) by_seq[i][rec.seq] = &rec;
      }
      if (!by_seq[i].empty()) {
        window_start = std::max(window_start, by_seq[i].begin()->first);
        last = std::max(last, by_seq[i].rbegin()->first);
      }
    }
    for (int64_t seq = window_start; seq <= last; ++seq) {
      std::vector<int> started, completed, absent;
      std::set<std::string> labels;
      const FlightRecord* example = nullptr;
      for (size_t i = 0; i < ranks.size(); ++i) {
        auto it = by_seq[i].find(seq);
        if (it == by_seq[i].end()) {
          absent.push_back(ranks[i].rank);
          continue;
        }
        started.push_back(ranks[i].rank);
        labels.insert(it->second->label);
        if (it->second->end > 0) completed.push_back(ranks[i].rank);
        if (example == nullptr || it->second->end == 0) example = it->second;
      }
      if (completed.size() == ranks.size() && labels.size() <= 1) continue;
      diverged = true;
      std::ostringstream s;
      s << "first divergence: " << describe(*example) << ": ";
      if (labels.size() > 1) {
        s << "the ranks called different collectives here:";
        for (size_t i = 0; i < ranks.size(); ++i) {
          auto it = by_seq[i].find(seq);
          if (it != by_seq[i].end()) s << " rank " << ranks[i].rank << " '" << it->second->label << "';";
        }
      } else {
        std::vector<int> waiting;
        for (int r : started) {
          if (std::find(completed.begin(), completed.end(), r) == completed.end()) waiting.push_back(r);
        }
        if (waiting.size() == started.size()) {
          s << rank_list(started) << " entered it and never saw it complete";
        } else {
          s << rank_list(started) << " entered it";
          if (!waiting.empty()) s << " (" << rank_list(waiting) << " never saw it complete)";
        }
        if (!absent.empty()) s << "; " << rank_list(absent) << " never reached it";
      }
      lines.push_back(s.str());
      for (size_t i = 0; i < ranks.size(); ++i) {
        if (std::find(absent.begin(), absent.end(), ranks[i].rank) == absent.end()) continue;
        std::ostringstream a;
        a << "  rank " << ranks[i].rank << "'s last collective: ";
        if (by_seq[i].empty()) {
          a << "none on " << comm;
        } else {
          const FlightRecord& r = *by_seq[i].rbegin()->second;
          a << describe(r) << (r.end > 0 ? ", completed" : ", never completed");
          if (example)
            a << ", entered " << std::fixed << std::setprecision(3) << (example->start - r.start)
              << " s before the others entered #" << seq;
        }
        lines.push_back(a.str());
      }
      break;
    }
  }
  std::ostringstream head;
  size_t total = 0;
  for (const auto& r : ranks) total += r.records.size();
  head << ranks.size() << " rank(s) of " << (ranks.empty() ? 0 : ranks.front().world_size) << ", " << total
       << " collective records; "
       << (diverged ? "the ranks diverged" : "no divergence: every rank completed the same collectives");
  lines.insert(lines.begin(), head.str());
  if (newest > 0) {
    const std::time_t started = static_cast<std::time_t>(newest / 1000000000);
    std::tm utc{};
    gmtime_r(&started, &utc);
    std::ostringstream attempt;
    attempt << "attempt started " << std::put_time(&utc, "%Y-%m-%d %H:%M:%S") << " UTC on "
            << (ranks.empty() ? 0 : ranks.front().world_size) << " ranks";
    if (!stale.empty()) {
      attempt << "; left out the rings of an earlier attempt (";
      for (auto it = stale_world_sizes.begin(); it != stale_world_sizes.end(); ++it) {
        attempt << (it == stale_world_sizes.begin() ? "" : " or ") << *it;
      }
      attempt << " ranks): " << rank_list(stale);
    }
    lines.insert(lines.begin() + 1, attempt.str());
  }
  if (!ranks.empty() && static_cast<int>(ranks.size()) < ranks.front().world_size) {
    lines.push_back("note: rings of " + std::to_string(ranks.front().world_size - static_cast<int>(ranks.size())) +
                    " rank(s) are missing (on another node's disk?)");
  }
  for (const std::string& line : process_lines(ranks)) lines.push_back(line);
  return lines;
}

}  // namespace facetrain
