// Measured int8 peak (int8_peak.h): the portable loop, the dispatch and the timing harness (the same
// method as fp32_peak.cpp: calibrate on one thread, then the best of 10 runs of about 20 ms).
#include "kernels/native/int8_peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "graph/error.h"
#include "kernels/native/cpu_features.h"

namespace locus::kernels {

int64_t i8_dot_chains_avx2(int64_t iters, uint8_t a, int8_t b);        // int8_peak_avx2.cpp
int64_t i8_dot_chains_avx512vnni(int64_t iters, uint8_t a, int8_t b);  // int8_peak_avx512vnni.cpp

namespace {

constexpr int kChains = 12;
constexpr int kRuns = 10;
constexpr double kRunSeconds = 0.02;

typedef int32_t v4i __attribute__((vector_size(16)));

// 12 chains of 4-lane s32 acc = acc + a * b (baseline SSE2: pmuludq-based multiply, paddd)
__attribute__((noinline)) int64_t i8_dot_chains_generic(int64_t iters, uint8_t a, int8_t b) {
  v4i va = {a, a, a, a};
  const v4i vb = {b, b, b, b}, step = {4, 4, 4, 4};
  v4i c[kChains];
  c[0] = v4i{0, 1, 2, 3};
  for (int i = 1; i < kChains; ++i) c[i] = c[i - 1] + step;
  v4i c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], c4 = c[4], c5 = c[5];
  v4i c6 = c[6], c7 = c[7], c8 = c[8], c9 = c[9], c10 = c[10], c11 = c[11];
  for (int64_t i = 0; i < iters; ++i) {
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("" : "+x"(va));
#endif
    c0 += va * vb;
    c1 += va * vb;
    c2 += va * vb;
    c3 += va * vb;
    c4 += va * vb;
    c5 += va * vb;
    c6 += va * vb;
    c7 += va * vb;
    c8 += va * vb;
    c9 += va * vb;
    c10 += va * vb;
    c11 += va * vb;
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
    asm volatile("" : "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
#endif
  }
  const v4i all[kChains] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  int64_t sum = 0;
  for (const v4i& v : all)
    for (int l = 0; l < 4; ++l) sum += v[l];
  return sum;
}

enum class Loop { Generic, Avx2, Vnni };
Loop active_loop() {
  if (has_avx512vnni()) return Loop::Vnni;
  if (has_avx2(active_isa())) return Loop::Avx2;
  return Loop::Generic;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

volatile int64_t g_sink = 0;

double timed_run(int threads, int64_t iters) {
  double t0 = 0, t1 = 0;
  int team = 1;
  std::vector<int64_t> sink(threads, 0);
#pragma omp parallel num_threads(threads)
  {
#pragma omp barrier
#pragma omp master
    {
      team = omp_get_num_threads();
      t0 = now_seconds();
    }
#pragma omp barrier
    sink[omp_get_thread_num()] = int8_dot_chains(iters, 1, 1);
#pragma omp barrier
#pragma omp master
    t1 = now_seconds();
  }
  int64_t s = 0;
  for (int64_t v : sink) s += v;
  g_sink = g_sink + s;
  const double ops = double(team) * double(iters) * double(int8_peak_ops_per_iter());
  return t1 > t0 ? ops / (t1 - t0) * 1e-9 : 0.0;
}

}  // namespace

int int8_peak_chains() { return kChains; }

int int8_peak_lanes() {
  switch (active_loop()) {
    case Loop::Vnni: return 16;
    case Loop::Avx2: return 8;
    default: return 4;
  }
}

int int8_peak_macs_per_lane() {
  switch (active_loop()) {
    case Loop::Vnni: return 4;
    case Loop::Avx2: return 2;
    default: return 1;
  }
}

int64_t int8_peak_ops_per_iter() {
  return int64_t(int8_peak_chains()) * int8_peak_lanes() * int8_peak_macs_per_lane() * 2;
}

int64_t int8_dot_chains(int64_t iters, uint8_t a, int8_t b) {
  switch (active_loop()) {
    case Loop::Vnni: return i8_dot_chains_avx512vnni(iters, a, b);
    case Loop::Avx2: return i8_dot_chains_avx2(iters, a, b);
    default: return i8_dot_chains_generic(iters, a, b);
  }
}

double measured_int8_peak_gops(int threads) {
  if (threads <= 0) threads = omp_get_max_threads();
  int64_t iters = 1 << 14;
  double secs = 0;
  for (;;) {
    const double t0 = now_seconds();
    g_sink = g_sink + int8_dot_chains(iters, 1, 1);
    secs = now_seconds() - t0;
    if (secs >= 0.005 || iters >= (int64_t(1) << 40)) break;
    iters *= 4;
  }
  iters = std::max<int64_t>(1, int64_t(double(iters) * kRunSeconds / std::max(secs, 1e-9)));
  double best = 0;
  for (int r = 0; r < kRuns; ++r) best = std::max(best, timed_run(threads, iters));
  return best;
}

std::string int8_peak_method() {
  const Loop l = active_loop();
  return cat(l == Loop::Vnni   ? "AVX-512 VNNI (i8_dot_chains_avx512vnni): "
             : l == Loop::Avx2 ? "AVX2 (i8_dot_chains_avx2): "
                               : "generic (i8_dot_chains_generic, SSE2 s32 multiply + add): ",
             "per thread ", int8_peak_chains(), " independent chains of ",
             l == Loop::Vnni   ? "vpdpbusd zmm"
             : l == Loop::Avx2 ? "vpmaddwd + vpaddd ymm"
                               : "4-lane s32 multiply + add",
             ", ", int8_peak_lanes(), " s32 lanes x ", int8_peak_macs_per_lane(), " products x 2 ops = ",
             int8_peak_ops_per_iter(), " ops per iteration; ~", int(kRunSeconds * 1000), " ms per run, best of ",
             kRuns, " runs; GOP/s = threads x iterations x ", int8_peak_ops_per_iter(), " / wall time");
}

}  // namespace locus::kernels
