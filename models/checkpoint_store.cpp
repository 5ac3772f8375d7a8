// CheckpointStore (see checkpoint_store.h): temp file + fsync + rename + directory fsync, a header with
// sizes and CRC-32C so truncation and corruption are told apart, and keep-last-K pruning after the fact.
#include "models/checkpoint_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/atomic_file.h"
#include "core/crc32c.h"

namespace facetrain {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'F', 'T', 'C', 'K', 'P', 'T', '0', '1'};
constexpr char kEndMarker[8] = {'F', 'T', 'C', 'K', 'E', 'N', 'D', '1'};
constexpr size_t kHeaderBytes = 48;
constexpr size_t kHeaderCrcOffset = 44;
constexpr char kPrefix[] = "checkpoint-";
constexpr char kSuffix[] = ".ckpt";

void put_le(char* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
uint64_t get_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

// "512 B", "3.1 KB", "5.2 MB", "1.4 GB" (decimal units).
std::string human_bytes(uint64_t n) {
  char buf[32];
  if (n < 1000) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(n));
  } else if (n < 1000 * 1000) {
    std::snprintf(buf, sizeof(buf), "%.1f KB", n / 1e3);
  } else if (n < 1000ull * 1000 * 1000) {
    std::snprintf(buf, sizeof(buf), "%.1f MB", n / 1e6);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f GB", n / 1e9);
  }
  return buf;
}

// The step in "checkpoint-000000120.ckpt", or -1 for any other name (including ".partial" files).
int64_t step_of(const std::string& name) {
  const size_t p = sizeof(kPrefix) - 1, s = sizeof(kSuffix) - 1;
  if (name.size() < p + 9 + s || name.compare(0, p, kPrefix) != 0 || name.compare(name.size() - s, s, kSuffix) != 0) {
    return -1;
  }
  const std::string digits = name.substr(p, name.size() - p - s);
  if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  return std::stoll(digits);
}

bool is_partial(const std::string& name) {
  const size_t n = sizeof(kPartialSuffix) - 1;
  return name.size() > n && name.compare(name.size() - n, n, kPartialSuffix) == 0 &&
         step_of(name.substr(0, name.size() - n)) >= 0;
}

std::vector<std::string> names_in(const std::string& directory) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return names;
  while (const dirent* e = ::readdir(dir)) names.emplace_back(e->d_name);
  ::closedir(dir);
  return names;
}

bool read_exact(int fd, char* data, size_t n, uint64_t offset) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r =
        ::pread(fd, data + done, std::min<size_t>(n - done, size_t{1} << 30), static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}

}  // namespace

std::string verify_checkpoint_file(const std::string& path, Checkpoint* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::string("cannot be opened (") + std::strerror(errno) + ")";
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::string("cannot be read (") + std::strerror(errno) + ")";
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kHeaderBytes) return "is truncated (" + human_bytes(size) + ", shorter than its header)";

  char header[kHeaderBytes];
  if (!read_exact(fd, header, kHeaderBytes, 0)) return "cannot be read (header)";
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0) return "is not a facetrain checkpoint (bad magic)";
  if (static_cast<uint32_t>(get_le(header + kHeaderCrcOffset, 4)) != crc32c(header, kHeaderCrcOffset)) {
    return "is corrupt (header CRC mismatch)";
  }
  const int64_t step = static_cast<int64_t>(get_le(header + 8, 8));
  const uint64_t payload_bytes = get_le(header + 16, 8);
  const uint64_t meta_bytes = get_le(header + 24, 8);
  const uint32_t payload_crc = static_cast<uint32_t>(get_le(header + 32, 4));
  const uint32_t meta_crc = static_cast<uint32_t>(get_le(header + 36, 4));
  // The header's sizes may not wrap around 2^64 when added (a crafted header with a valid CRC).
  uint64_t expected = 0;
  if (__builtin_add_overflow(payload_bytes, meta_bytes, &expected) ||
      __builtin_add_overflow(expected, static_cast<uint64_t>(kHeaderBytes + sizeof(kEndMarker)), &expected)) {
    return "is corrupt (impossible sizes in its header)";
  }
  if (size < expected) return "is truncated (" + human_bytes(size) + " of " + human_bytes(expected) + ")";
  if (size > expected) {
    return "is corrupt (" + human_bytes(size - expected) + " after its end at " + human_bytes(expected) + ")";
  }
  char end[sizeof(kEndMarker)];
  if (!read_exact(fd, end, sizeof(end), expected - sizeof(end))) return "cannot be read (end marker)";
  if (std::memcmp(end, kEndMarker, sizeof(kEndMarker)) != 0) return "is corrupt (bad end marker)";

  Checkpoint c;
  c.path = path;
  c.step = step;
  c.payload.resize(payload_bytes);
  c.meta_json.resize(meta_bytes);
  if (!read_exact(fd, c.payload.data(), payload_bytes, kHeaderBytes) ||
      !read_exact(fd, c.meta_json.data(), meta_bytes, kHeaderBytes + payload_bytes)) {
    return "cannot be read (payload)";
  }
  if (crc32c(c.payload) != payload_crc) return "is corrupt (payload CRC mismatch)";
  if (crc32c(c.meta_json) != meta_crc) return "is corrupt (metadata CRC mismatch)";
  const int64_t named_step = step_of(fs::path(path).filename().string());
  if (named_step >= 0 && named_step != step) {
    return "holds step " + std::to_string(step) + ", not the step in its name";
  }
  if (out) *out = std::move(c);
  return "";
}

Checkpoint read_checkpoint_file(const std::string& path) {
  Checkpoint c;
  const std::string why = verify_checkpoint_file(path, &c);
  FT_USER_CHECK(why.empty(), path << " " << why);
  return c;
}

CheckpointStore::CheckpointStore(std::string directory, int keep_last)
    : directory_(std::move(directory)), keep_last_(keep_last) {
  FT_USER_CHECK(keep_last_ >= 0, "checkpoint.keep_last: " << keep_last_ << " (must be >= 0; 0 keeps all)");
  FT_CHECK(!directory_.empty(), "empty checkpoint directory");
}

std::string CheckpointStore::file_name(int64_t step) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s%09lld%s", kPrefix, static_cast<long long>(step), kSuffix);
  return buf;
}

void CheckpointStore::remove_partial_files() const {
  for (const auto& name : names_in(directory_)) {
    if (is_partial(name)) ::unlink((fs::path(directory_) / name).c_str());
  }
}

std::vector<CheckpointStore::Entry> CheckpointStore::list() const {
  std::vector<Entry> entries;
  for (const auto& name : names_in(directory_)) {
    const int64_t step = step_of(name);
    if (step >= 0) entries.push_back({step, (fs::path(directory_) / name).string()});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.step < b.step; });
  return entries;
}

std::string CheckpointStore::write(int64_t step, const std::string& payload, const std::string& meta_json) {
  FT_CHECK(step >= 0, "checkpoint step " << step);
  std::error_code ec;
  fs::create_directories(directory_, ec);
  FT_USER_CHECK(!ec, directory_ << ": cannot create checkpoint directory: " << ec.message());
  remove_partial_files();  // leftovers of a writer killed mid-write

  const std::string final_path = (fs::path(directory_) / file_name(step)).string();

  char header[kHeaderBytes] = {0};
  std::memcpy(header, kMagic, sizeof(kMagic));
  put_le(header + 8, static_cast<uint64_t>(step), 8);
  put_le(header + 16, payload.size(), 8);
  put_le(header + 24, meta_json.size(), 8);
  put_le(header + 32, crc32c(payload), 4);
  put_le(header + 36, crc32c(meta_json), 4);
  put_le(header + kHeaderCrcOffset, crc32c(header, kHeaderCrcOffset), 4);

  // 1-2. the whole file under its temporary name, durable before it gets its final name (core/atomic_file.h)
  write_file_atomically(final_path, {std::string_view(header, sizeof(header)), payload, meta_json,
                                     std::string_view(kEndMarker, sizeof(kEndMarker))});

  // 3. only now drop the oldest ones beyond keep_last (the new one is durable; never delete it)
  if (keep_last_ > 0) {
    std::vector<Entry> entries = list();
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.step > b.step; });
    int kept = 0;
    for (const auto& e : entries) {
      if (e.step == step) continue;  // counted below
      if (kept + 1 < keep_last_) {
        ++kept;
      } else {
        ::unlink(e.path.c_str());
      }
    }
  }
  return final_path;
}

std::optional<Checkpoint> CheckpointStore::latest_valid(std::vector<std::string>* skipped) const {
  std::vector<Entry> entries = list();
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    Checkpoint c;
    const std::string why = verify_checkpoint_file(it->path, &c);
    if (why.empty()) return c;
    if (skipped) skipped->push_back(fs::path(it->path).filename().string() + " " + why + ": skipped");
  }
  return std::nullopt;
}

}  // namespace facetrain
