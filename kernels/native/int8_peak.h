// The int8 peak this machine actually reaches, measured as the fp32 peak is (fp32_peak.h): the
// yardstick the int8 kernels' GOP/s are divided by. One op = one multiply or one add (a u8 x s8
// multiply-accumulate is 2 ops, as an fp32 FMA is 2 flops).
//
// Method: every thread runs a loop of `chains` (12) independent vector accumulators, each updated
// once per iteration by the multiply-accumulate instruction the active int8 GEMM kernel uses:
//   AVX-512 VNNI: vpdpbusd zmm (16 s32 lanes x 4 u8*s8 products: 128 ops per instruction);
//   AVX2:        vpmaddwd + vpaddd ymm (8 lanes x 2 s16 products: the exact path of
//                qu8s8_gemm_4x16_avx2, 32 ops per pair);
//   generic:     4-lane s32 multiply + add (baseline SSE2 code).
// About 20 ms per run, the best of 10 runs; GOP/s = threads x iterations x ops per iteration / wall
// time of the run.
#pragma once

#include <cstdint>
#include <string>

namespace locus::kernels {

int int8_peak_chains();              // 12
int int8_peak_lanes();               // s32 lanes per accumulator (16, 8, 4)
int int8_peak_macs_per_lane();       // products summed into a lane per instruction (4, 2, 1)
int64_t int8_peak_ops_per_iter();    // chains x lanes x macs x 2

// One thread's loop: `iters` iterations; every lane of every accumulator gains macs_per_lane products
// a * b per iteration (a: u8, b: s8); lane j (over all chains) starts at j. Returns the sum over all
// lanes, so with a = b = 1 lane j ends at j + iters * macs_per_lane (how the test checks the work).
int64_t int8_dot_chains(int64_t iters, uint8_t a, int8_t b);

// Measured int8 GOP/s of `threads` OpenMP threads (<= 0: omp_get_max_threads()), best of 10 runs.
double measured_int8_peak_gops(int threads);

// How measured_int8_peak_gops computes its figure for the active ISA, one line.
std::string int8_peak_method();

}  // namespace locus::kernels
