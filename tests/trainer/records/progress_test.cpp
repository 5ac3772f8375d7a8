// Progress: the plain line's format and ETA arithmetic with a scripted clock, the plain-line period, and the
// terminal bar's '\r' redraw and line end.
#include <gtest/gtest.h>

#include <sstream>

#include "trainer/records/progress.h"

namespace facetrain {
namespace {

TEST(Progress, Durations) {
  EXPECT_EQ(Progress::format_duration(0), "0s");
  EXPECT_EQ(Progress::format_duration(45.4), "45s");
  EXPECT_EQ(Progress::format_duration(245), "4m05s");
  EXPECT_EQ(Progress::format_duration(7389), "2h03m09s");
  EXPECT_EQ(Progress::format_duration(-1), "--");
}

TEST(Progress, PlainLineFormat) {
  EXPECT_EQ(Progress::format_line(3, 1200, 5000, 812.34, 0.43215, 245, {{"lr", 0.001}}),
            "epoch 3 | step 1200/5000 (24.0%) | 812.3 images/s | loss 0.4321 | lr 0.001 | ETA 4m05s");
  EXPECT_EQ(Progress::format_line(0, 1, 8, 10, 2.5, -1),
            "epoch 0 | step 1/8 (12.5%) | 10.0 images/s | loss 2.5 | ETA --");
}

TEST(Progress, PlainLinesEveryPeriodWithEtaFromTheMeanStepTime) {
  double now = 100.0;
  std::ostringstream out;
  Progress progress(100, /*is_terminal=*/false, /*plain_every_seconds=*/10.0, &out, [&] { return now; });
  // Steps 1..100, 2 s each: the first line, then one every 10 s (5 steps), then the last.
  std::vector<std::string> expected;
  for (int step = 1; step <= 100; ++step) {
    progress.update(step / 50, step, 64.0, 1.0 / step);
    if (step == 1) {
      EXPECT_LT(progress.eta_seconds(step), 0);  // unknown after one update
      expected.push_back(Progress::format_line(0, 1, 100, 64.0, 1.0, -1));
    } else {
      // mean step time since the first update = 2 s, times the steps left
      EXPECT_DOUBLE_EQ(progress.eta_seconds(step), 2.0 * (100 - step));
      if ((step - 1) % 5 == 0 || step == 100) {
        expected.push_back(Progress::format_line(step / 50, step, 100, 64.0, 1.0 / step, 2.0 * (100 - step)));
      }
    }
    now += 2.0;
  }
  std::string all;
  for (const auto& line : expected) all += line + "\n";
  EXPECT_EQ(out.str(), all);
  EXPECT_EQ(expected.size(), 1u + 19u + 1u);  // step 1; steps 6, 11, ..., 96; step 100
  // Spot-check one line in full: step 6 at t = 10 s after the first update, 94 steps of 2 s left.
  EXPECT_EQ(expected[1], "epoch 0 | step 6/100 (6.0%) | 64.0 images/s | loss 0.1667 | ETA 3m08s");
}

TEST(Progress, ResumedRunMeasuresFromItsFirstUpdate) {
  double now = 0.0;
  std::ostringstream out;
  Progress progress(1000, false, 30.0, &out, [&] { return now; });
  progress.update(4, 801, 10, 0.5);  // resumed at step 800
  now = 30.0;
  progress.update(4, 811, 10, 0.5);  // 10 steps in 30 s: 3 s/step, 189 left
  EXPECT_DOUBLE_EQ(progress.eta_seconds(811), 567.0);
  EXPECT_NE(out.str().find("step 811/1000 (81.1%)"), std::string::npos);
  EXPECT_NE(out.str().find("ETA 9m27s"), std::string::npos);
}

TEST(Progress, TerminalBarRedrawsInPlace) {
  double now = 0.0;
  std::ostringstream out;
  Progress progress(10, /*is_terminal=*/true, 10.0, &out, [&] { return now; });
  progress.update(0, 5, 100.0, 0.5);
  now += 1.0;
  progress.update(0, 10, 100.0, 0.25);
  progress.finish_line();
  const std::string s = out.str();
  EXPECT_EQ(s.find('\n'), s.size() - 1);  // one line, ended by finish_line()
  EXPECT_EQ(std::count(s.begin(), s.end(), '\r'), 2);
  EXPECT_NE(s.find("epoch 0 [##########..........] 5/10 | 100.0 img/s | loss 0.5 | ETA --"), std::string::npos) << s;
  EXPECT_NE(s.find("epoch 0 [####################] 10/10 | 100.0 img/s | loss 0.25 | ETA 0s"), std::string::npos) << s;
}

}  // namespace
}  // namespace facetrain
