// The fp32 peak this machine actually reaches: the yardstick benchmarks divide their GFLOP/s by
// ("pct_peak"). It is measured, not derived from the clock, because a VM's /proc/cpuinfo reports the
// base clock while the cores run at their turbo clock (on the 2-vCPU EPYC Zen 3 VM: cpuinfo says
// 2445 MHz, i.e. 78 GFLOP/s nominal, while oneDNN's 1x1 convolutions already reach 88 GFLOP/s on one
// thread).
//
// Method: every thread runs an FMA-throughput loop, `chains` independent vector accumulators each
// updated acc = acc * a + b once per iteration (AVX2: 12 ymm accumulators and _mm256_fmadd_ps, so
// 12 x 8 lanes x 2 flops per iteration; AVX-512: 12 zmm accumulators, 12 x 16 lanes; enough chains
// to hide the 4-cycle FMA latency on both FMA pipes). The active ISA's width is measured, so the
// AVX-512 kernels' pct_peak is against the 512-bit peak. One run lasts about 20 ms; the best of 10 runs counts (short runs, so that on a shared
// machine at least one is not cut by the scheduler). GFLOP/s = threads x iterations x
// flops per iteration / wall time of the run (all threads start after one barrier and the run ends
// when the last thread is done). Without AVX2 (or with LOCUS_ISA=generic) a portable loop of the
// same shape runs, compiled for the baseline ISA (SSE2: separate multiply and add).
#pragma once

#include <cstdint>
#include <string>

namespace locus::kernels {

// Shape of the loop for the active ISA (cpu_features.h active_isa()).
int fp32_peak_chains();            // independent accumulators (12)
int fp32_peak_lanes();             // fp32 lanes per accumulator (AVX-512: 16; AVX2: 8; generic: 4)
int64_t fp32_peak_flops_per_iter();  // chains x lanes x 2 (one multiply and one add per lane)

// One thread's loop: `iters` iterations of acc = acc * a + b on every lane of every accumulator;
// lane l of chain c starts at c x lanes + l (distinct starts, so the compiler cannot merge chains);
// returns the sum over all lanes. With a = b = 1 lane j ends at j + iters, which is how the test
// checks the loop does exactly the work the flop count assumes.
double fp32_fma_chains(int64_t iters, float a, float b);

// Measured fp32 GFLOP/s of `threads` OpenMP threads (<= 0: omp_get_max_threads()), best of 10 runs
// of about 20 ms each. Measures on every call (about 0.25 s); callers cache it.
double measured_fp32_peak_gflops(int threads);

// How measured_fp32_peak_gflops computes its figure (for the active ISA), one line.
std::string fp32_peak_method();

// The clock /proc/cpuinfo reports ("cpu MHz" of the first CPU), 0 if unknown.
double cpuinfo_mhz();
// Peak fp32 flops per cycle per core the active ISA's instructions allow on a core with two FMA
// pipes of its width: AVX2 8 lanes x 2 flops x 2 pipes = 32; AVX-512 16 x 2 x 2 = 64 (Zen 4 splits
// 512-bit FMAs and reaches 32). Generic (SSE2 multiply + add): 0, no nominal figure is claimed.
int nominal_flops_per_cycle();
// NOMINAL peak: cpuinfo_mhz() x nominal_flops_per_cycle() x threads, in GFLOP/s; 0 if unknown.
// Only for comparison: the cpuinfo clock is the base clock, not the one the cores run at.
double nominal_fp32_peak_gflops(int threads);
std::string nominal_fp32_peak_method(int threads);

}  // namespace locus::kernels
