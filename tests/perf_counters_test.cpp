// PerfCounters: the pure helpers (scaling, paranoid parsing, errno -> reason), the default hardware
// counter set (absent with a reason on machines without a PMU, counting where there is one), and
// the counting machinery itself through software events, which virtual machines do support.
#include "runtime/perf_counters.h"

#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <omp.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>

using locus::CounterReading;
using locus::PerfCounters;
namespace pd = locus::perf_detail;

namespace {

// At least 2 * n user-space instructions that the compiler cannot remove.
void spin_loop(uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) asm volatile("" ::: "memory");
}

double thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

// Burns about `ns` of this thread's CPU time; returns the CPU time actually used.
double burn_cpu_ns(double ns) {
  double t0 = thread_cpu_ns();
  while (thread_cpu_ns() - t0 < ns) spin_loop(10000);
  return thread_cpu_ns() - t0;
}

const CounterReading* find(const std::vector<CounterReading>& rs, const std::string& name) {
  for (auto& r : rs)
    if (r.name == name) return &r;
  return nullptr;
}

PerfCounters task_clock() {
  return PerfCounters::open_events({{"task_clock", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK}});
}

}  // namespace

// ---- pure helpers ----------------------------------------------------------------------------

TEST(PerfDetail, ScaleCount) {
  EXPECT_EQ(pd::scale_count(1000, 200, 100), 2000.0);  // multiplexed: ran half the time
  EXPECT_EQ(pd::scale_count(1000, 100, 100), 1000.0);  // not multiplexed
  EXPECT_EQ(pd::scale_count(0, 100, 100), 0.0);
  EXPECT_EQ(pd::scale_count(1000, 200, 0), std::nullopt);  // never on the PMU: unknown
  EXPECT_EQ(pd::scale_count(0, 0, 0), std::nullopt);
  EXPECT_EQ(pd::scale_count(1000, 90, 100), 1000.0);  // running > enabled (rounding): no scaling up
  // large counts do not overflow
  EXPECT_DOUBLE_EQ(*pd::scale_count(uint64_t(1) << 62, 3, 1), double(uint64_t(1) << 62) * 3);
}

TEST(PerfDetail, ParseParanoid) {
  EXPECT_EQ(pd::parse_paranoid("2\n"), 2);
  EXPECT_EQ(pd::parse_paranoid("-1\n"), -1);
  EXPECT_EQ(pd::parse_paranoid("  4 \n"), 4);
  EXPECT_EQ(pd::parse_paranoid("0"), 0);
  EXPECT_EQ(pd::parse_paranoid("garbage"), std::nullopt);
  EXPECT_EQ(pd::parse_paranoid(""), std::nullopt);
  EXPECT_EQ(pd::parse_paranoid("\n"), std::nullopt);
  EXPECT_EQ(pd::parse_paranoid("2x\n"), std::nullopt);
  EXPECT_EQ(pd::parse_paranoid("1 2\n"), std::nullopt);
  EXPECT_EQ(pd::parse_paranoid("-"), std::nullopt);
  EXPECT_EQ(pd::parse_paranoid("99999999999999999999"), std::nullopt);
}

TEST(PerfDetail, ReadParanoidOnThisMachine) {
  auto p = pd::read_paranoid();
  if (p) {
    EXPECT_GE(*p, -1);  // absent only where /proc/sys is not mounted
  }
}

TEST(PerfDetail, ErrnoExplanations) {
  EXPECT_EQ(pd::errno_name(ENOENT), "ENOENT");
  EXPECT_EQ(pd::errno_name(EACCES), "EACCES");
  EXPECT_EQ(pd::errno_name(12345), "errno 12345");
  EXPECT_NE(pd::errno_explanation(ENOENT, 2).find("virtual machine"), std::string::npos);
  EXPECT_NE(pd::errno_explanation(EOPNOTSUPP, 2).find("virtual machine"), std::string::npos);
  EXPECT_NE(pd::errno_explanation(ENODEV, 2).find("virtual machine"), std::string::npos);
  std::string denied = pd::errno_explanation(EACCES, 3);
  EXPECT_NE(denied.find("perf_event_paranoid is 3"), std::string::npos) << denied;
  EXPECT_NE(pd::errno_explanation(EPERM, std::nullopt).find("unknown"), std::string::npos);
  EXPECT_FALSE(pd::errno_explanation(ENOSYS, 2).empty());
  EXPECT_FALSE(pd::errno_explanation(12345, 2).empty());
}

TEST(PerfDetail, UnavailableLine) {
  EXPECT_EQ(pd::unavailable_line({}, true, 2), "");
  std::string none = pd::unavailable_line({{"cycles", ENOENT}, {"instructions", ENOENT}}, false, 2);
  EXPECT_NE(none.find("not supported"), std::string::npos) << none;
  EXPECT_NE(none.find("ENOENT"), std::string::npos) << none;
  EXPECT_NE(none.find("perf_event_paranoid = 2"), std::string::npos) << none;
  EXPECT_EQ(none.find('\n'), std::string::npos);
  std::string denied = pd::unavailable_line({{"cycles", EACCES}}, false, 4);
  EXPECT_NE(denied.find("not permitted"), std::string::npos) << denied;
  EXPECT_NE(denied.find("paranoid is 4"), std::string::npos) << denied;
  std::string some = pd::unavailable_line({{"l1d_read_misses", ENOENT}}, true, 2);
  EXPECT_NE(some.find("l1d_read_misses"), std::string::npos) << some;
  std::string mixed = pd::unavailable_line({{"a", ENOENT}, {"b", EINVAL}}, false, std::nullopt);
  EXPECT_NE(mixed.find("EINVAL for b"), std::string::npos) << mixed;
  EXPECT_NE(mixed.find("unreadable"), std::string::npos) << mixed;
}

// ---- the default hardware counter set ----------------------------------------------------------

TEST(PerfCounters, DefaultSetIsAbsentWithReasonOrCounts) {
  PerfCounters pc = PerfCounters::open_default();
  auto names = pc.read();
  ASSERT_EQ(names.size(), 5u);
  for (const char* n : {"cycles", "instructions", "l1d_read_misses", "llc_references", "llc_misses"})
    EXPECT_NE(find(names, n), nullptr) << n;

  if (!pc.any_available()) {
    // e.g. a virtual machine without PMU passthrough (`perf stat` says <not supported>)
    pc.start();
    spin_loop(1000000);
    pc.stop();
    for (auto& r : pc.read()) {
      EXPECT_FALSE(r.value.has_value()) << r.name << " must be absent, not " << *r.value;
      EXPECT_FALSE(r.note.empty()) << r.name;
    }
    std::string why = pc.unavailable_reason();
    std::printf("counters unavailable: %s\n", why.c_str());
    EXPECT_FALSE(why.empty());
    EXPECT_EQ(why.find('\n'), std::string::npos) << why;
    EXPECT_TRUE(why.find("not supported") != std::string::npos || why.find("not permitted") != std::string::npos ||
                why.find("errno") != std::string::npos || why.find("[E") != std::string::npos)
        << why;
    return;
  }

  // A machine with counters: instructions count a loop of known size and grow with more work.
  const uint64_t n = 10000000;
  pc.reset();
  pc.start();
  spin_loop(n);
  pc.stop();
  auto r1 = pc.read();
  const CounterReading* ins1 = find(r1, "instructions");
  ASSERT_NE(ins1, nullptr);
  if (!ins1->value) GTEST_SKIP() << "instructions not available: " << ins1->note;
  EXPECT_GE(*ins1->value, double(n)) << ins1->note;
  pc.start();
  spin_loop(2 * n);
  pc.stop();
  auto r2 = pc.read();
  for (auto& a : r1) {
    const CounterReading* b = find(r2, a.name);
    ASSERT_NE(b, nullptr);
    if (a.value && b->value) {
      EXPECT_GE(*b->value, *a.value) << a.name;
    }
  }
  EXPECT_GE(*find(r2, "instructions")->value, *ins1->value + double(2 * n));
  for (auto& r : r2) {
    if (!r.value) {
      EXPECT_FALSE(r.note.empty()) << r.name;
    }
  }
  std::printf("%s\n", pc.unavailable_reason().c_str());
}

// ---- the counting machinery, through a software event ------------------------------------------

TEST(PerfCounters, SoftwareEventAccumulatesOverStartStop) {
  PerfCounters pc = task_clock();
  if (!pc.any_available()) GTEST_SKIP() << "no software perf events here: " << pc.unavailable_reason();
  EXPECT_EQ(pc.unavailable_reason(), "");
  auto r0 = pc.read();
  ASSERT_EQ(r0.size(), 1u);
  EXPECT_EQ(r0[0].value, 0.0);  // opened disabled: nothing counted before start()

  pc.start();
  double used1 = burn_cpu_ns(20e6);
  pc.stop();
  double v1 = *pc.read()[0].value;
  EXPECT_GE(v1, 0.8 * used1);

  burn_cpu_ns(20e6);  // stopped: not counted
  double v1b = *pc.read()[0].value;
  EXPECT_LT(v1b - v1, 5e6);

  pc.start();
  double used2 = burn_cpu_ns(20e6);
  pc.stop();
  double v2 = *pc.read()[0].value;
  EXPECT_GE(v2, v1 + 0.8 * used2);  // accumulates over start/stop pairs

  pc.reset();
  EXPECT_EQ(pc.read()[0].value, 0.0);
  pc.start();
  double used3 = burn_cpu_ns(10e6);
  pc.stop();
  double v3 = *pc.read()[0].value;
  EXPECT_GE(v3, 0.8 * used3);
  EXPECT_LT(v3, v2);
}

TEST(PerfCounters, ThreadsCreatedAfterOpenAreCounted) {
  PerfCounters pc = task_clock();
  if (!pc.any_available()) GTEST_SKIP() << pc.unavailable_reason();
  pc.start();
  double used = 0;
  std::thread t([&] { used = burn_cpu_ns(40e6); });
  t.join();
  pc.stop();
  double v = *pc.read()[0].value;
  EXPECT_GE(v, 0.8 * used) << "the child thread's time was not inherited";
}

TEST(PerfCounters, ThreadsExistingBeforeOpenAreCounted) {
  std::mutex m;
  std::condition_variable cv;
  bool go = false, done = false;
  double used = 0;
  std::thread t([&] {
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return go; });
    l.unlock();
    double u = burn_cpu_ns(40e6);
    l.lock();
    used = u;
    done = true;
    cv.notify_all();
  });
  PerfCounters pc = task_clock();  // opened while `t` already exists
  if (!pc.any_available()) {
    {
      std::lock_guard<std::mutex> l(m);
      go = true;
    }
    cv.notify_all();
    t.join();
    GTEST_SKIP() << pc.unavailable_reason();
  }
  pc.start();
  {
    std::lock_guard<std::mutex> l(m);
    go = true;
  }
  cv.notify_all();
  {
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return done; });
  }
  pc.stop();
  t.join();
  double v = *pc.read()[0].value;
  EXPECT_GE(v, 0.8 * used) << "a thread that existed at open time was not counted";
}

TEST(PerfCounters, OpenMPPoolCreatedBeforeOpenIsCounted) {
  omp_set_num_threads(2);
#pragma omp parallel
  { spin_loop(1000); }  // the pool now exists
  PerfCounters pc = task_clock();
  if (!pc.any_available()) GTEST_SKIP() << pc.unavailable_reason();
  std::atomic<double> used{0};
  pc.start();
#pragma omp parallel
  {
    double u = burn_cpu_ns(30e6);
    double cur = used.load();
    while (!used.compare_exchange_weak(cur, cur + u)) {
    }
  }
  pc.stop();
  double v = *pc.read()[0].value;
  EXPECT_GE(v, 0.8 * used.load()) << "OpenMP worker time missing";
}

// ---- any order, any state ------------------------------------------------------------------------

TEST(PerfCounters, AnyCallOrderIsSafe) {
  PerfCounters empty;
  empty.stop();
  empty.reset();
  empty.start();
  empty.start();
  EXPECT_TRUE(empty.read().empty());
  EXPECT_FALSE(empty.any_available());
  EXPECT_FALSE(empty.unavailable_reason().empty());
  empty.stop();
  empty.stop();

  for (int which = 0; which < 2; ++which) {
    PerfCounters pc = which == 0 ? PerfCounters::open_default() : task_clock();
    pc.stop();
    pc.reset();
    pc.reset();
    pc.start();
    pc.start();
    (void)pc.read();  // while running
    pc.reset();       // while running
    spin_loop(1000);
    pc.stop();
    pc.stop();
    for (auto& r : pc.read())
      if (r.value) {
        EXPECT_GE(*r.value, 0.0) << r.name;
      } else {
        EXPECT_FALSE(r.note.empty()) << r.name;
      }
    pc.start();
    // moving while running, then using both objects
    PerfCounters moved = std::move(pc);
    pc.start();
    pc.stop();
    pc.reset();
    EXPECT_TRUE(pc.read().empty());
    moved.stop();
    PerfCounters other = task_clock();
    other = std::move(moved);  // releases other's events
    other.reset();
    other = std::move(other);  // self-move: no-op
    (void)other.read();
  }
}
