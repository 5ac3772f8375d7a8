// CheckpointStore: round trip, keep-last-K, truncated / corrupt files skipped with a message, leftover
// .partial files ignored and cleaned, and SIGKILL at varied instants of a write never costing the newest
// complete checkpoint (issue 7: "no partial checkpoint ever replaces a good one").
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/error.h"
#include "models/checkpoint_store.h"

namespace facetrain {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("facetrain_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  return dir;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x20);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

constexpr uint64_t kHeader = 48, kEnd = 8;

TEST(CheckpointStore, RoundTrip) {
  const fs::path dir = fresh_dir("ckpt_roundtrip");
  CheckpointStore store(dir.string(), 3);
  EXPECT_FALSE(store.latest_valid().has_value());  // no directory yet
  std::string payload = random_bytes(100000, 1);
  payload[10] = '\0';  // binary-safe
  const std::string meta = R"({"step": 120, "epoch": 2})";
  const std::string path = store.write(120, payload, meta);
  EXPECT_EQ(fs::path(path).filename(), "checkpoint-000000120.ckpt");
  EXPECT_EQ(fs::file_size(path), kHeader + payload.size() + meta.size() + kEnd);

  std::vector<std::string> skipped;
  auto c = store.latest_valid(&skipped);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(skipped.empty());
  EXPECT_EQ(c->path, path);
  EXPECT_EQ(c->step, 120);
  EXPECT_EQ(c->payload, payload);
  EXPECT_EQ(c->meta_json, meta);

  const Checkpoint direct = read_checkpoint_file(path);
  EXPECT_EQ(direct.payload, payload);
  // Empty payload and metadata are legal.
  store.write(121, "", "");
  c = store.latest_valid();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->step, 121);
  EXPECT_TRUE(c->payload.empty());
  fs::remove_all(dir);
}

TEST(CheckpointStore, KeepsTheLastK) {
  const fs::path dir = fresh_dir("ckpt_keep");
  CheckpointStore store(dir.string(), 2);
  for (int step : {10, 20, 30, 40}) store.write(step, "payload " + std::to_string(step), "{}");
  auto entries = store.list();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].step, 30);
  EXPECT_EQ(entries[1].step, 40);

  CheckpointStore keep_one(dir.string(), 1);
  keep_one.write(50, "p", "{}");
  entries = keep_one.list();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].step, 50);

  CheckpointStore keep_all(dir.string(), 0);
  for (int step : {60, 70, 80}) keep_all.write(step, "p", "{}");
  EXPECT_EQ(keep_all.list().size(), 4u);
  // Rewriting a step replaces it atomically and still keeps it.
  CheckpointStore two(dir.string(), 2);
  two.write(80, "new 80", "{}");
  entries = two.list();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].step, 80);
  EXPECT_EQ(two.latest_valid()->payload, "new 80");
  EXPECT_THROW(CheckpointStore(dir.string(), -1), UserError);
  fs::remove_all(dir);
}

TEST(CheckpointStore, SkipsTruncatedAndCorruptFilesWithAMessage) {
  const fs::path dir = fresh_dir("ckpt_bad");
  CheckpointStore store(dir.string(), 0);
  const std::string meta = "{\"m\": 1}";
  const uint64_t payload_bytes = 5200000 - kHeader - kEnd - meta.size();  // file of exactly 5.2 MB
  for (int step = 100; step <= 600; step += 100) store.write(step, random_bytes(payload_bytes, step), meta);
  const auto path_of = [&](int step) { return (dir / CheckpointStore::file_name(step)).string(); };

  fs::resize_file(path_of(600), 3100000);                // truncated mid-payload
  flip_byte(path_of(500), kHeader + 12345);              // payload byte
  flip_byte(path_of(400), 20);                           // header (payload length field)
  flip_byte(path_of(300), kHeader + payload_bytes + 2);  // metadata byte
  fs::resize_file(path_of(200), 40);                     // shorter than a header

  std::vector<std::string> skipped;
  auto c = store.latest_valid(&skipped);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->step, 100);
  EXPECT_EQ(c->payload, random_bytes(payload_bytes, 100));
  ASSERT_EQ(skipped.size(), 5u);
  EXPECT_EQ(skipped[0], "checkpoint-000000600.ckpt is truncated (3.1 MB of 5.2 MB): skipped");
  EXPECT_EQ(skipped[1], "checkpoint-000000500.ckpt is corrupt (payload CRC mismatch): skipped");
  EXPECT_EQ(skipped[2], "checkpoint-000000400.ckpt is corrupt (header CRC mismatch): skipped");
  EXPECT_EQ(skipped[3], "checkpoint-000000300.ckpt is corrupt (metadata CRC mismatch): skipped");
  EXPECT_EQ(skipped[4], "checkpoint-000000200.ckpt is truncated (40 B, shorter than its header): skipped");

  try {
    read_checkpoint_file(path_of(600));
    FAIL() << "a truncated checkpoint was read";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), path_of(600) + " is truncated (3.1 MB of 5.2 MB)");
  }
  // Nothing valid at all.
  fs::resize_file(path_of(100), 5199999);
  skipped.clear();
  EXPECT_FALSE(store.latest_valid(&skipped).has_value());
  EXPECT_EQ(skipped.size(), 6u);
  // Bytes appended after the end marker are corruption too.
  store.write(700, "abc", "{}");
  { std::ofstream(path_of(700), std::ios::app | std::ios::binary) << "garbage"; }
  EXPECT_NE(verify_checkpoint_file(path_of(700), nullptr).find("after its end"), std::string::npos);
  fs::remove_all(dir);
}

TEST(CheckpointStore, LeftoverPartialFilesAreIgnoredThenCleaned) {
  const fs::path dir = fresh_dir("ckpt_partial");
  CheckpointStore store(dir.string(), 3);
  store.write(30, "thirty", "{}");
  const fs::path partial = dir / "checkpoint-000000040.ckpt.partial";
  { std::ofstream(partial, std::ios::binary) << "FTCKPT01 half-written"; }
  { std::ofstream(dir / "notes.txt") << "not a checkpoint"; }
  std::vector<std::string> skipped;
  auto c = store.latest_valid(&skipped);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->step, 30);
  EXPECT_TRUE(skipped.empty());  // a .partial file is not a candidate at all
  ASSERT_EQ(store.list().size(), 1u);

  store.write(50, "fifty", "{}");
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_TRUE(fs::exists(dir / "notes.txt"));  // unrelated files are left alone
  EXPECT_EQ(store.latest_valid()->step, 50);
  fs::remove_all(dir);
}

// A child process writes checkpoints back to back and reports each completed write() on a pipe; the parent
// SIGKILLs it at a different instant each round. Afterwards every file with a checkpoint name must verify
// (a partial file never gets a final name) and the newest must be at least the last acknowledged step.
TEST(CheckpointStore, SigkillDuringWritesNeverLosesTheNewestCompleteCheckpoint) {
  const fs::path dir = fresh_dir("ckpt_kill");
  const std::string payload = random_bytes(3 << 20, 9);
  int rounds_with_partial = 0;
  int64_t next_step = 1;
  constexpr int kRounds = 12;
  for (int round = 0; round < kRounds; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const int64_t first = next_step;
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      CheckpointStore store(dir.string(), 2);
      for (int64_t step = first;; ++step) {
        store.write(step, payload, "{\"step\": " + std::to_string(step) + "}");
        if (::write(fds[1], &step, sizeof(step)) != sizeof(step)) _exit(1);
      }
    }
    close(fds[1]);
    // Whatever happens below (a failed ASSERT returns early), the child does not outlive this round.
    struct Reaper {
      pid_t pid;
      int status = 0;
      bool reaped = false;
      void reap() {
        if (reaped) return;
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        reaped = true;
      }
      ~Reaper() { reap(); }
    } reaper{child};
    // Wait for 1 + round % 3 acknowledged writes, then kill after a delay that sweeps through a write.
    int64_t acknowledged = -1, step = 0;
    for (int i = 0; i < 1 + round % 3; ++i) {
      ASSERT_EQ(read(fds[0], &step, sizeof(step)), static_cast<ssize_t>(sizeof(step)));
      acknowledged = step;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500 + 1700 * round));
    reaper.reap();
    while (read(fds[0], &step, sizeof(step)) == static_cast<ssize_t>(sizeof(step))) acknowledged = step;
    close(fds[0]);
    ASSERT_TRUE(WIFSIGNALED(reaper.status) && WTERMSIG(reaper.status) == SIGKILL) << "round " << round;

    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() == ".partial") ++rounds_with_partial;
    }
    CheckpointStore reader(dir.string(), 2);
    std::vector<std::string> skipped;
    auto c = reader.latest_valid(&skipped);
    ASSERT_TRUE(c.has_value()) << "round " << round;
    EXPECT_TRUE(skipped.empty()) << "round " << round << ": " << skipped.front();
    EXPECT_GE(c->step, acknowledged) << "round " << round;
    EXPECT_EQ(c->payload, payload);
    EXPECT_EQ(c->meta_json, "{\"step\": " + std::to_string(c->step) + "}");
    for (const auto& e : reader.list()) EXPECT_EQ(verify_checkpoint_file(e.path, nullptr), "") << e.path;
    next_step = c->step + 1;
  }
  std::cout << kRounds << " rounds, " << rounds_with_partial
            << " left a .partial file (killed mid-write); newest complete checkpoint kept every time\n";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace facetrain
