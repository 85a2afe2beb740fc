// Winograd planner: whether a 3x3, stride-1 convolution runs as Winograd F(4x4, 3x3) or as the
// im2col GEMM, and, for Winograd, how many 4x4 output tiles one block transforms at a time.
//
// F(4x4, 3x3) computes each 4x4 output tile from a 6x6 input tile: the input tiles are transformed
// (V = B^T d B, 36 values per tile and channel), multiplied by the transformed weights (U = G g G^T,
// packed once) as 36 GEMMs of (tiles x C) . (C x OC), and transformed back (Y = A^T M A). That is
// 36 multiplications per 16 outputs instead of 144 (4x fewer), paid for by the transforms and by
// 36/9 = 4x larger packed weights.
//
// The model (time in units of one fp32 FMA lane-operation at the micro-kernel's peak):
//   im2col:   2 * P * 9C * OC flops at the GEMM's row utilisation over row groups of mr, plus the
//             im2col copy (P * 9C floats written and read back).
//   Winograd: 2 * T * 36 * C * OC flops per block of T tiles at row utilisation T / ceil(T/mr)*mr
//             (the last block at that of its remainder),
//             plus the transforms (~300 operations per tile and input channel, ~200 per tile and
//             output channel, at a quarter of the FMA rate: adds and loads, not FMAs), plus the
//             traffic beyond L2: the packed weights (36 C OC floats) re-read by every block when
//             they do not fit in L2, and a block's transformed input and output (36 T (C + OC)
//             floats) when they do not.
// The block T is the candidate (multiples of mr up to all tiles, and all tiles) of lowest
// Winograd cost; Winograd is chosen when its cost is below im2col's. Plain object, no kernels.
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
  int64_t tiles_h = 0, tiles_w = 0, tiles = 0;  // 4x4 output tiles per image row/column, total (x N)
  int64_t block = 0;         // tiles per block (the GEMMs' M)
  int64_t blocks = 0;
  double cost_winograd = 0, cost_im2col = 0;  // modelled, same units
  std::string why;           // one line: the choice and the figures behind it
};

// Output tile of F(4x4, 3x3).
inline constexpr int64_t kWinogradTile = 4;
// Elements of a transformed tile (6 x 6).
inline constexpr int64_t kWinogradAlpha = 36;

// rt: the GEMM micro-kernel's register tile; l2_bytes: the per-core L2 (> 0); threads: the
// threads the conv runs with (blocks are split over them when there are enough).
WinogradPlan plan_winograd(const WinogradConvShape& s, RegisterTile rt, int64_t l2_bytes, int threads);

}  // namespace locus::schedule
