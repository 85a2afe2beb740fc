// Winograd planner: whether a 3x3, stride-1 convolution runs as Winograd F(4x4, 3x3), as Winograd
// F(2x2, 3x3) or as the im2col GEMM, and, for Winograd, how many m x m output tiles one block
// transforms at a time.
//
// F(m x m, 3x3) computes each m x m output tile from an a x a input tile (a = m + 2): the input
// tiles are transformed (V = B^T d B, a^2 values per tile and channel), multiplied by the
// transformed weights (U = G g G^T, packed once) as a^2 GEMMs of (tiles x C) . (C x OC), and
// transformed back (Y = A^T M A). F(4x4, 3x3): 36 multiplications per 16 outputs instead of 144 (4x
// fewer), paid for by the transforms and by 36/9 = 4x larger packed weights; F(2x2, 3x3): 16 per 4
// (2.25x fewer), 16/9 the weights and cheaper transforms.
//
// The model (time in units of one fp32 FMA lane-operation at one core's micro-kernel peak):
//   im2col:   2 * P * 9C * OC flops at the GEMM's row utilisation over row groups of mr, plus the
//             im2col copy (P * 9C floats written and read back).
//   Winograd: 2 * T * a^2 * C * OC flops per block of T tiles at row utilisation T / ceil(T/mr)*mr
//             (the last block at that of its remainder), plus the transforms (per tile and input
//             channel ~300 operations for F(4x4), ~90 for F(2x2); per tile and output channel ~200 and
//             ~60; at a quarter of the FMA rate: adds and loads, not FMAs), plus the traffic beyond
//             L2: a block's transformed input and output (a^2 T (C + OC) floats) when they do not fit
//             (three transfers per byte: the line fetched for the store, written back, read again),
//             and the packed weights re-read by every block after the first when they do not fit
//             (one transfer: clean lines, streamed).
//   Both: the arithmetic runs on `threads` cores (its time divided by them), while the weights'
//             first read, when they exceed half the L2, comes from memory, whose bandwidth the
//             threads share (dram_flops_per_byte: one core's peak over one core's memory
//             bandwidth); the two overlap (the GEMM prefetches its weights), so a path costs the
//             larger of the two. Where memory is dear (10 flops per byte), a batch-1 layer whose
//             transformed weights exceed the L2 is bound by them on two threads: ResNet-50's 14x14
//             layers (9.4 MB for F(4x4), 4.2 MB for F(2x2)) and 7x7 ones; at 5 the arithmetic
//             still decides there.
// The block T is the candidate (multiples of mr up to all tiles, and all tiles) of lowest cost per
// tile size; the cheapest of im2col, F(4x4) and F(2x2) is chosen. Plain object, no kernels.
#pragma once

#include <cstdint>
#include <string>

#include "schedule/tiling_planner.h"

namespace locus::schedule {

// One 3x3 stride-1 dilation-1 group-1 convolution on N images (NHWC).
struct WinogradConvShape {
  int64_t N = 1, H = 0, W = 0, C = 0, OC = 0, OH = 0, OW = 0;
};

struct WinogradPlan {
  bool use = false;          // Winograd chosen (else the im2col GEMM)
  int64_t m = 4;             // output tile: F(m x m, 3x3), 4 or 2
  int64_t tiles_h = 0, tiles_w = 0, tiles = 0;  // m x m output tiles per image row/column, total (x N)
  int64_t block = 0;         // tiles per block (the GEMMs' M)
  int64_t blocks = 0;
  double cost_winograd = 0, cost_im2col = 0;  // modelled, same units (cost_winograd: the chosen m's)
  std::string why;           // one line: the choice and the figures behind it
  int64_t alpha() const { return m + 2; }               // input tile edge
  int64_t alpha2() const { return (m + 2) * (m + 2); }  // transformed matrices
};

// Output tile of F(4x4, 3x3), the larger of the two.
inline constexpr int64_t kWinogradTile = 4;
// One core's fp32 peak over one core's memory bandwidth, in flops per byte (the model above), as
// measured on the 2-vCPU machines locus is benchmarked on: AMD EPYC Zen 4 (family 25 model 17),
// 117 GFLOP/s (`locus bench --peak`) over 23.9 GB/s (one thread summing 256 MB): 4.9; Zen 3
// (model 1), 79-89 over about 12.5: 6.3-7.1. Until session 15 the model used 10 (an earlier
// machine's ~260 GFLOP/s over ~26 GB/s); on the Zen 4 that chose F(2x2) for ResNet-50's 14x14
// layers and im2col for its 7x7 ones on 2 threads, and ResNet-50 ran 3.5-4.6% slower there
// (paired in one process) than with 5, which chooses F(4x4) and F(2x2).
inline constexpr double kDramFlopsPerByte = 5.0;

// rt: the GEMM micro-kernel's register tile; l2_bytes: the per-core L2 (> 0); threads: the
// threads the conv runs with (blocks are split over them when there are enough). only_m: 4 or 2
// to plan that tile size only (tests); 0 chooses. dram_flops_per_byte (> 0): what a byte from
// memory costs, in flops of one core (kDramFlopsPerByte).
WinogradPlan plan_winograd(const WinogradConvShape& s, RegisterTile rt, int64_t l2_bytes, int threads,
                           int64_t only_m = 0, double dram_flops_per_byte = kDramFlopsPerByte);

}  // namespace locus::schedule
