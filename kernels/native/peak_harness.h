// The timing harness shared by the measured peaks (fp32_peak.cpp, int8_peak.cpp): calibrate one
// thread's loop to about kPeakRunSeconds, then time kPeakRuns runs on all threads and keep the best.
// Only the baseline-ISA files include it; the ISA loops it times live in their own files.
#pragma once

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace locus::kernels::peak {

// Many short runs, the best counts: on a shared machine (2 vCPUs, other builds running) a 60 ms run
// is nearly always cut by the scheduler and reads 30% low; one of ten 20 ms runs usually is not.
constexpr int kPeakRuns = 10;
constexpr double kPeakRunSeconds = 0.02;

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One timed run of `loop(iters)` on `threads` threads, all started after one barrier, ended when the
// last is done: work_per_iter x iterations x team size / wall time, x 1e-9. `sink` keeps the results
// alive.
template <class Loop, class Sink>
double timed_run(int threads, int64_t iters, int64_t work_per_iter, Loop& loop, volatile Sink& sink) {
  double t0 = 0, t1 = 0;
  int team = 1;
  std::vector<Sink> results(threads, Sink(0));
#pragma omp parallel num_threads(threads)
  {
#pragma omp barrier
#pragma omp master
    {
      team = omp_get_num_threads();
      t0 = now_seconds();
    }
#pragma omp barrier
    results[omp_get_thread_num()] = loop(iters);
#pragma omp barrier
#pragma omp master
    t1 = now_seconds();
  }
  Sink s = 0;
  for (Sink v : results) s += v;
  sink = sink + s;
  const double work = double(team) * double(iters) * double(work_per_iter);
  return t1 > t0 ? work / (t1 - t0) * 1e-9 : 0.0;
}

// The best rate (work units per ns, i.e. G per second) of `loop` on `threads` threads (<= 0:
// omp_get_max_threads()): calibrated on one thread (grow until a run takes >= 5 ms, then scale to
// kPeakRunSeconds), best of kPeakRuns runs.
template <class Loop, class Sink>
double best_rate(int threads, int64_t work_per_iter, Loop loop, volatile Sink& sink) {
  if (threads <= 0) threads = omp_get_max_threads();
  int64_t iters = 1 << 14;
  double secs = 0;
  for (;;) {
    const double t0 = now_seconds();
    sink = sink + loop(iters);
    secs = now_seconds() - t0;
    if (secs >= 0.005 || iters >= (int64_t(1) << 40)) break;
    iters *= 4;
  }
  iters = std::max<int64_t>(1, int64_t(double(iters) * kPeakRunSeconds / std::max(secs, 1e-9)));
  double best = 0;
  for (int r = 0; r < kPeakRuns; ++r) best = std::max(best, timed_run(threads, iters, work_per_iter, loop, sink));
  return best;
}

}  // namespace locus::kernels::peak
