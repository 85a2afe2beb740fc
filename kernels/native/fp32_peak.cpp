// Measured fp32 peak (fp32_peak.h): the portable loop, the dispatch and the nominal figure (the timing
// harness is peak_harness.h).
#include "kernels/native/fp32_peak.h"

#include <omp.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "graph/error.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/peak_harness.h"

namespace locus::kernels {

double f32_fma_chains_avx2(int64_t iters, float a, float b);     // fp32_peak_avx2.cpp
double f32_fma_chains_avx512f(int64_t iters, float a, float b);  // fp32_peak_avx512f.cpp

namespace {

constexpr int kChains = 12;
constexpr int kGenericLanes = 4;  // one SSE register (GCC/clang vector extension)

// The portable loop: the same 12 chains on 4-lane vectors, compiled for the baseline ISA (x86-64:
// SSE2 mulps + addps; no FMA contraction without -mfma).
typedef float v4f __attribute__((vector_size(16)));

__attribute__((noinline)) double f32_fma_chains_generic(int64_t iters, float a, float b) {
  const v4f va = {a, a, a, a}, vb = {b, b, b, b}, step = {4, 4, 4, 4};
  // lane l of chain c starts at 4c + l (distinct chains: see fp32_peak_avx2.cpp)
  v4f c0 = {0, 1, 2, 3}, c1 = c0 + step, c2 = c1 + step, c3 = c2 + step, c4 = c3 + step, c5 = c4 + step;
  v4f c6 = c5 + step, c7 = c6 + step, c8 = c7 + step, c9 = c8 + step, c10 = c9 + step, c11 = c10 + step;
  for (int64_t i = 0; i < iters; ++i) {
    c0 = c0 * va + vb;
    c1 = c1 * va + vb;
    c2 = c2 * va + vb;
    c3 = c3 * va + vb;
    c4 = c4 * va + vb;
    c5 = c5 * va + vb;
    c6 = c6 * va + vb;
    c7 = c7 * va + vb;
    c8 = c8 * va + vb;
    c9 = c9 * va + vb;
    c10 = c10 * va + vb;
    c11 = c11 * va + vb;
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
    asm volatile("" : "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
#endif
  }
  const v4f all[kChains] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  double sum = 0;
  for (const v4f& v : all)
    for (int l = 0; l < kGenericLanes; ++l) sum += v[l];
  return sum;
}

}  // namespace

int fp32_peak_chains() { return kChains; }

// The vector width of the active ISA: the AVX-512 kernels are measured against the 512-bit peak,
// the AVX2 ones against the 256-bit peak.
int fp32_peak_lanes() {
  const Isa isa = active_isa();
  return isa == Isa::Avx512 ? 16 : has_avx2(isa) ? 8 : kGenericLanes;
}

int64_t fp32_peak_flops_per_iter() { return int64_t(fp32_peak_chains()) * fp32_peak_lanes() * 2; }

double fp32_fma_chains(int64_t iters, float a, float b) {
  const Isa isa = active_isa();
  if (isa == Isa::Avx512) return f32_fma_chains_avx512f(iters, a, b);
  if (has_avx2(isa)) return f32_fma_chains_avx2(iters, a, b);
  return f32_fma_chains_generic(iters, a, b);
}

double measured_fp32_peak_gflops(int threads) {
  static volatile double sink = 0;  // keeps every thread's result alive
  // a < 1 keeps the accumulators converging to b / (1 - a): no overflow, no denormals
  return peak::best_rate(threads, fp32_peak_flops_per_iter(),
                         [](int64_t iters) { return fp32_fma_chains(iters, 0.999999f, 1e-6f); }, sink);
}

std::string fp32_peak_method() {
  const Isa isa = active_isa();
  const bool avx512 = isa == Isa::Avx512, avx2 = has_avx2(isa);
  return cat(avx512 ? "AVX-512 FMA (f32_fma_chains_avx512f): "
                    : avx2 ? "AVX2 FMA (f32_fma_chains_avx2): "
                           : "generic (f32_fma_chains_generic, SSE2 mulps+addps): ",
             "per thread ", fp32_peak_chains(), " independent chains of ",
             avx512 ? "_mm512_fmadd_ps" : avx2 ? "_mm256_fmadd_ps" : "4-lane multiply + add", ", ", fp32_peak_lanes(),
             " lanes x 2 flops each = ", fp32_peak_flops_per_iter(),
             " flops per iteration; ~", int(peak::kPeakRunSeconds * 1000), " ms per run, best of ", peak::kPeakRuns,
             " runs; GFLOP/s = threads x iterations x ", fp32_peak_flops_per_iter(),
             " / wall time",
             avx512 ? " (ceiling: 16 lanes x 2 flops x 2 FMA pipes x clock = 64 flops/cycle/core; cores that run a "
                      "512-bit FMA as two 256-bit halves, such as Zen 4, reach 32)"
                    : avx2 ? " (ceiling: 8 lanes x 2 flops x 2 FMA pipes x clock = 32 flops/cycle/core)" : "");
}

double cpuinfo_mhz() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("cpu MHz", 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    try {
      return std::stod(line.substr(colon + 1));
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

int nominal_flops_per_cycle() {
  const Isa isa = active_isa();
  return isa == Isa::Avx512 ? 64 : has_avx2(isa) ? 32 : 0;
}

double nominal_fp32_peak_gflops(int threads) {
  if (threads <= 0) threads = omp_get_max_threads();
  return cpuinfo_mhz() * 1e-3 * nominal_flops_per_cycle() * threads;
}

std::string nominal_fp32_peak_method(int threads) {
  if (threads <= 0) threads = omp_get_max_threads();
  const double mhz = cpuinfo_mhz();
  if (mhz <= 0 || nominal_flops_per_cycle() == 0)
    return "nominal peak unknown (no /proc/cpuinfo clock, or no AVX2 flops/cycle figure)";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", nominal_fp32_peak_gflops(threads));
  return cat("NOMINAL ", buf, " GFLOP/s = /proc/cpuinfo cpu MHz ", int(mhz + 0.5), " x ",
             nominal_flops_per_cycle(), " flops/cycle (8 lanes x 2 flops x 2 FMA pipes) x ", threads,
             " thread(s); the cpuinfo clock is the base clock, turbo runs higher");
}

}  // namespace locus::kernels
