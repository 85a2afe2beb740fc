// Measured int8 peak (int8_peak.h): the portable loop, the dispatch, timed by peak_harness.h (the same
// method as fp32_peak.cpp: calibrate on one thread, then the best of 10 runs of about 20 ms).
#include "kernels/native/int8_peak.h"

#include "graph/error.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/peak_harness.h"

namespace locus::kernels {

int64_t i8_dot_chains_avx2(int64_t iters, uint8_t a, int8_t b);        // int8_peak_avx2.cpp
int64_t i8_dot_chains_avx512vnni(int64_t iters, uint8_t a, int8_t b);  // int8_peak_avx512vnni.cpp

namespace {

constexpr int kChains = 12;

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
  static volatile int64_t sink = 0;  // keeps every thread's result alive
  return peak::best_rate(threads, int8_peak_ops_per_iter(), [](int64_t iters) { return int8_dot_chains(iters, 1, 1); },
                         sink);
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
             int8_peak_ops_per_iter(), " ops per iteration; ~", int(peak::kPeakRunSeconds * 1000), " ms per run, best of ",
             peak::kPeakRuns, " runs; GOP/s = threads x iterations x ", int8_peak_ops_per_iter(), " / wall time");
}

}  // namespace locus::kernels
