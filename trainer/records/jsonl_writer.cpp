// JsonlWriter (see jsonl_writer.h): nlohmann::ordered_json lines, one write(2) per line on an O_APPEND file.
#include "trainer/records/jsonl_writer.h"
#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace facetrain {
namespace {

// Keeps the lines of an earlier attempt up to start_step; drops later ones and anything that is not a whole
// JSON object (a line torn by a kill). Returns true when something was dropped.
bool keep_lines_up_to(const std::string& text, int64_t start_step, std::string* kept) {
  bool dropped = false;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    if (end == std::string::npos) {  // torn last line
      dropped = true;
      break;
    }
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const bool whole = j.is_object();
    const bool orphan = whole && j.contains("step") && j["step"].is_number() && j["step"].get<double>() > start_step;
    if (!whole || orphan) {
      dropped = true;
      continue;
    }
    kept->append(line).push_back('\n');
  }
  return dropped;
}

void write_all(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    FT_USER_CHECK(n >= 0, path << ": cannot write: " << std::strerror(errno));
    done += static_cast<size_t>(n);
  }
}

}  // namespace

JsonlWriter::JsonlWriter(const std::string& path, int64_t start_step) : path_(path) {
  namespace fs = std::filesystem;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    FT_USER_CHECK(!ec, parent.string() << ": cannot create directory for " << path << ": " << ec.message());
  }
  if (fs::exists(path)) {
    std::ifstream in(path, std::ios::binary);
    FT_USER_CHECK(in.good(), path << ": cannot read");
    std::ostringstream buf;
    buf << in.rdbuf();
    std::string kept;
    if (keep_lines_up_to(buf.str(), start_step, &kept)) {
      write_file_atomically(path, kept);
    }
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  FT_USER_CHECK(fd_ >= 0, path << ": cannot open for appending: " << std::strerror(errno));
}

JsonlWriter::~JsonlWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void JsonlWriter::write(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  nlohmann::ordered_json line;
  line["step"] = step;
  for (const auto& [tag, value] : values) {
    FT_CHECK(tag != "step" && tag != "time", "metrics.jsonl: '" << tag << "' is a reserved key");
    if (std::isfinite(value)) {
      line[tag] = value;
    } else {
      line[tag] = nullptr;
    }
  }
  line["time"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  write_all(fd_, line.dump() + "\n", path_);
}

}  // namespace facetrain
