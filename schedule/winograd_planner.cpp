// Winograd F(4x4, 3x3) vs im2col cost model and tile-block choice (winograd_planner.h).
#include "schedule/winograd_planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "graph/error.h"

namespace locus::schedule {
namespace {

constexpr double kTransformInOps = 300.0;   // per tile and input channel (B^T d B, two 6x6 passes)
constexpr double kTransformOutOps = 200.0;  // per tile and output channel (A^T m A)
constexpr double kTransformRate = 0.25;     // transforms run at this fraction of the FMA rate
constexpr double kFlopsPerByte = 2.0;       // cost of a byte from beyond L2, in flops
constexpr double kCopyFlopsPerByte = 0.25;  // cost of a byte copied within the caches (im2col)

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

double row_util(int64_t rows, int64_t mr) {
  return double(rows) / double(ceil_div(rows, mr) * mr);
}

}  // namespace

WinogradPlan plan_winograd(const WinogradConvShape& s, RegisterTile rt, int64_t l2_bytes, int threads) {
  LOCUS_CHECK(s.N >= 1 && s.H >= 1 && s.W >= 1 && s.C >= 1 && s.OC >= 1 && s.OH >= 1 && s.OW >= 1,
              "plan_winograd: bad shape");
  LOCUS_CHECK(rt.mr >= 1 && l2_bytes > 0, "plan_winograd: bad register tile or L2");
  threads = std::max(threads, 1);
  WinogradPlan p;
  p.tiles_h = ceil_div(s.OH, kWinogradTile);
  p.tiles_w = ceil_div(s.OW, kWinogradTile);
  p.tiles = s.N * p.tiles_h * p.tiles_w;
  const double C = double(s.C), OC = double(s.OC), P = double(s.N * s.OH * s.OW);

  // im2col GEMM: M = pixels, blocks of 16 row groups.
  const double im2col_flops = 2.0 * P * 9.0 * C * OC;
  p.cost_im2col = im2col_flops / row_util(std::min<int64_t>(s.N * s.OH * s.OW, 16 * rt.mr), rt.mr) +
                  kCopyFlopsPerByte * 2.0 * P * 9.0 * C * 4.0;

  const double w_bytes = 36.0 * C * OC * 4.0;
  auto cost_for = [&](int64_t T) {
    const int64_t blocks = ceil_div(p.tiles, T);
    // full blocks at the utilisation of T rows, the last one at that of its remainder
    const int64_t last = p.tiles - (blocks - 1) * T;
    const double per_tile = 2.0 * 36.0 * C * OC;
    const double gemm = per_tile * (double((blocks - 1) * T) / row_util(T, rt.mr) + double(last) / row_util(last, rt.mr));
    const double transforms = double(p.tiles) * (kTransformInOps * C + kTransformOutOps * OC) / kTransformRate;
    const double block_bytes = 36.0 * double(T) * (C + OC) * 4.0;
    // Blocks run concurrently on `threads` cores, each with its own L2; the weights are shared.
    double traffic = 0;
    if (w_bytes > double(l2_bytes)) traffic += double(blocks) * w_bytes;
    if (block_bytes > double(l2_bytes) / 2) traffic += 2.0 * double(blocks) * block_bytes;
    return gemm + transforms + kFlopsPerByte * traffic;
  };
  int64_t best = p.tiles;
  double best_cost = cost_for(p.tiles);
  for (int64_t T = rt.mr; T < p.tiles; T += rt.mr) {
    const double c = cost_for(T);
    if (c < best_cost) best = T, best_cost = c;
  }
  // With several threads, keep at least two blocks per thread when that costs little (< 10%):
  // then whole blocks run in parallel, each in its own core's L2.
  if (threads > 1 && ceil_div(p.tiles, best) < 2 * threads) {
    const int64_t T = std::max(rt.mr, ceil_div(ceil_div(p.tiles, 2 * threads), rt.mr) * rt.mr);
    if (T < best && cost_for(T) < 1.1 * best_cost) best = T, best_cost = cost_for(T);
  }
  p.block = best;
  p.blocks = ceil_div(p.tiles, best);
  p.cost_winograd = best_cost;
  p.use = p.cost_winograd < p.cost_im2col;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: modelled %.3g vs im2col %.3g (x%.2f), %lld tiles in %lld blocks of %lld",
                p.use ? "winograd" : "im2col", p.cost_winograd / 1e6, p.cost_im2col / 1e6,
                p.cost_im2col / p.cost_winograd, static_cast<long long>(p.tiles), static_cast<long long>(p.blocks),
                static_cast<long long>(p.block));
  p.why = buf;
  return p;
}

}  // namespace locus::schedule
