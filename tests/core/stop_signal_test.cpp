// SIGINT during a long synth: the child process stops between windows, the StoreWriter removes its
// .partial file, and no complete-looking store is left. Runs in a forked child (its own executable, so the
// fork happens before any OpenCV worker thread exists).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "core/error.h"
#include "tests/tools/fixtures.h"
#include "core/stop_signal.h"
#include "tools/synth.h"

namespace facetrain {
namespace {

namespace fs = std::filesystem;

TEST(StopOnSignal, SignalSetsTheFlagInsteadOfEndingTheProcess) {
  {
    StopOnSignal stop;
    EXPECT_FALSE(stop.flag()->load());
    std::raise(SIGTERM);
    EXPECT_TRUE(stop.flag()->load());
  }
  struct sigaction current = {};
  sigaction(SIGTERM, nullptr, &current);
  EXPECT_EQ(current.sa_handler, SIG_DFL);  // restored
}

TEST(StopOnSignal, InterruptedSynthLeavesNoStore) {
  testing::TempDir dir;
  const std::string out = dir / "big.h5";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    StopOnSignal stop;
    SynthOptions o;
    o.output = out;
    o.count = 2'000'000;  // far more than can finish before the signal
    o.size = 32;
    o.quiet = true;
    o.stop = stop.flag();
    try {
      run_synth(o);
    } catch (const UserError&) {
      _exit(3);
    }
    _exit(0);
  }
  // Wait until the writer has created its partial file, then interrupt.
  bool started = false;
  for (int i = 0; i < 600 && !started; ++i) {
    started = fs::exists(out + ".partial");
    if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(started);
  kill(child, SIGINT);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "child ended by a signal";
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".partial"));
}

}  // namespace
}  // namespace facetrain
