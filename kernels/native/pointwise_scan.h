// Scan-ordered pointwise convolution: the GEMM C[M x N] = A[M x K] . B[K x N] of a 1x1 conv
// (M = pixels, K = input channels, N = output channels) cut into cache tiles by the tiling planner
// (schedule/tiling_planner.h) with the core's L2 as the on-chip buffer of S entries
// (docs/method.md sections 2-4 and 8).
//
// Pack time (once, at session creation): plan_pointwise() asks the planner for the cheapest tiles
// (rounded to the register tile of the active ISA's GEMM micro-kernel, gemm_config: 12x16 on
// AVX-512, 6x16 on AVX2, 4x16 generic) for the thread count in the requested order family, and
// pack_pointwise_scan() stores the plan, its driver calls (the tile sequence, adjacent k visits of a
// tile joined) and B packed once per N strip of the plan (so every strip starts on a micro-kernel
// panel boundary whatever the planner's edge-tile placement).
// Run time: pointwise_scan_f32() walks the sequence; every visit runs the GEMM micro-kernel driver on
// one C tile over one K range (gemm_f32_tile; consecutive visits of one tile over adjacent K ranges
// in one call, PointwiseScan::calls), bias and activation once the tile's reduction is complete.
// The plan's threads take contiguous stretches of the walk (method section 8); a stretch always holds
// whole C tiles (all their K visits), so no two threads ever write the same C tile. With fewer than 8
// C tiles per thread, each thread instead walks the whole sequence on its own slice of every tile's
// columns (fewer rows than columns) or rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/native/activation.h"
#include "kernels/native/gemm.h"
#include "kernels/native/gemm_microkernel.h"
#include "schedule/tile_order.h"
#include "schedule/tiling_planner.h"

namespace locus::kernels {

// The smallest tiles the kernel is given (clamped to M, N, K): every visit costs a driver call and
// every k range beyond the first reloads and restores the C tile, so a k range under 64 (C reloaded
// every few FMAs) or n under one panel loses more time than the traffic it saves. Measured at batch
// 8 before this floor: k = 5 and n = 1 plans ran 2-12x slower than one GEMM over all pixels.
// m: kPointwiseMinMTiles register tiles; n: one panel (nr).
inline constexpr int64_t kPointwiseMinMTiles = 4;
inline constexpr int64_t kPointwiseMinK = 64;

// The planner options the pointwise kernel plans with: the micro-kernel's register tile {mr, nr},
// the minimum tiles above and the thread count.
schedule::PlannerOptions pointwise_planner_options(schedule::RegisterTile tile, int threads = 1);
// The register tile of the GEMM micro-kernel the active ISA dispatches to (gemm_config).
schedule::RegisterTile pointwise_register_tile();

// The planner's best plan for C[M x N] = A[M x K] . B[K x N] with an S-entry buffer, restricted to
// the order family (alternatives are dropped), for the active ISA's register tile and `threads`.
// Throws locus::Error if S cannot hold any tile.
schedule::Plan plan_pointwise(int64_t M, int64_t K, int64_t N, int64_t S, schedule::TileOrder order,
                              int threads = 1);

struct PointwiseScan {
  schedule::Plan plan;
  // The walk's driver calls (gemm_f32_tile): the visits of plan.sequence() in order, except that
  // consecutive visits of one C tile over adjacent k ranges are one call. The driver reloads and
  // restores the C tile once per k block of its own (at most 256 k rows): once per plan visit when
  // every visit was a call (29 times for ResNet-50's k = 72 plans over K = 2048, against 8). The plan's traffic
  // between L2 and memory is the same either way. Paired on a Zen 3 core, ResNet-50: 0.971 and
  // 0.978 at 1 thread, 0.968 and 0.970 at 2 (its k = 72-81 plans: Conv_97 -0.65 to -0.73 ms,
  // Conv_105 and Conv_112 -0.17 to -0.38, Conv_55 -0.17 to -0.46); MobileNetV2 level (1.001, 1.005).
  std::vector<schedule::TileVisit> calls;
  std::vector<int64_t> n_bounds;       // plan.n_bounds()
  std::vector<int32_t> strip;          // per call: index into strips / n_bounds
  std::vector<PackedB> strips;         // B columns [n_bounds[s], n_bounds[s + 1]) packed
  std::vector<int64_t> group_start;    // calls of C tile g: [group_start[g], group_start[g + 1])
  std::vector<double> group_cum_work;  // MACs of C tiles before g (size groups + 1)
  bool prefetch_a = false;             // gemm_prefetch_a(M, K): A comes from beyond L2
  // Packed rows of A (PackedARows): floats per thread (one tile of A and 8), and the panels of B
  // that share a packed row strip: all of N's where the walk keeps A stationary over the whole
  // reduction (RowMajor, ScanRows with k = K), else 0 (each visit packs its own).
  int64_t a_rows_floats = 0;
  int64_t a_rows_panels = 0;
};

// B is K x N row-major with row stride ldb (b[k * ldb + n]).
PointwiseScan pack_pointwise_scan(int64_t M, int64_t K, int64_t N, const float* b, int64_t ldb,
                                  int64_t S, schedule::TileOrder order, int threads = 1);

// Scratch pointwise_scan_f32 packs A's row strips into (floats): per thread, one tile of A (the
// plan's m x k) and 8. A row strip the walk meets for several column strips (k = K, A stationary:
// RowMajor and ScanRows) is then packed once for all of them (gemm.h, PackedARows).
int64_t pointwise_scan_scratch_floats(const PointwiseScan& p);

// C (row stride ldc) = act(A (row stride lda) . B + bias [+ residual]), A having the plan's M rows.
// bias is nullable (length N); residual is nullable, laid out like C (a fused residual Add, added
// in each tile's epilogue). With accumulate, C holds a summand on entry: C = act(C + A . B + bias)
// (a residual already in C: the conv writing over its residual, conv2d_nhwc). Runs with the plan's
// threads (1 inside a parallel region), whatever the OpenMP setting. scratch (nullable: every visit
// packs its rows of A itself): pointwise_scan_scratch_floats(p) floats.
void pointwise_scan_f32(const PointwiseScan& p, const float* a, int64_t lda, float* c, int64_t ldc,
                        const float* bias, const Activation& act, const float* residual = nullptr,
                        bool accumulate = false, float* scratch = nullptr);

}  // namespace locus::kernels
