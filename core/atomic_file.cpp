// Atomic file replacement with fsync of file and directory (see atomic_file.h).
#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace facetrain {
namespace {

namespace fs = std::filesystem;

std::string parent_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

void write_all(int fd, std::string_view bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, std::min<size_t>(bytes.size() - done, size_t{1} << 30));
    if (w < 0 && errno == EINTR) continue;
    FT_USER_CHECK(w > 0, path << ": write failed: " << std::strerror(errno) << " (is the disk full?)");
    done += static_cast<size_t>(w);
  }
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  FT_USER_CHECK(fd >= 0, path << ": cannot open to fsync: " << std::strerror(errno));
  const bool synced = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  FT_USER_CHECK(synced, path << ": fsync failed: " << std::strerror(err));
}

}  // namespace

void fsync_directory(const std::string& directory) { fsync_path(directory); }

void write_file_atomically(const std::string& path, std::initializer_list<std::string_view> pieces) {
  const std::string parent = parent_of(path);
  std::error_code ec;
  fs::create_directories(parent, ec);
  FT_USER_CHECK(!ec, parent << ": cannot create the directory for " << path << " (" << ec.message() << ")");
  const std::string partial = path + kPartialSuffix;
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  FT_USER_CHECK(fd >= 0, partial << ": cannot create: " << std::strerror(errno));
  try {
    for (std::string_view piece : pieces) write_all(fd, piece, partial);
    FT_USER_CHECK(::fsync(fd) == 0, partial << ": fsync failed: " << std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(partial.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(partial.c_str());
    FT_USER_CHECK(false, partial << ": close failed: " << std::strerror(err));
  }
  if (::rename(partial.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(partial.c_str());
    FT_USER_CHECK(false, partial << ": cannot rename to " << path << ": " << std::strerror(err));
  }
  fsync_directory(parent);
}

void publish_file(const std::string& partial, const std::string& path) {
  fsync_path(partial);
  FT_USER_CHECK(::rename(partial.c_str(), path.c_str()) == 0,
                partial << ": cannot rename to " << path << ": " << std::strerror(errno));
  fsync_directory(parent_of(path));
}

}  // namespace facetrain
