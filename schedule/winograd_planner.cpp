// Winograd F(4x4, 3x3) / F(2x2, 3x3) vs im2col cost model and tile-block choice (winograd_planner.h).
#include "schedule/winograd_planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "graph/error.h"

namespace locus::schedule {
namespace {

constexpr double kTransformRate = 0.25;     // transforms run at this fraction of the FMA rate
constexpr double kFlopsPerByte = 2.0;       // cost of a byte from beyond L2 (the L3), in flops
constexpr double kCopyFlopsPerByte = 0.25;  // cost of a byte copied within the caches (im2col)

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

double row_util(int64_t rows, int64_t mr) {
  return double(rows) / double(ceil_div(rows, mr) * mr);
}

// Operations per tile and channel of the input and output transforms of F(m x m, 3x3).
double transform_in_ops(int64_t m) { return m == 4 ? 300.0 : 90.0; }
double transform_out_ops(int64_t m) { return m == 4 ? 200.0 : 60.0; }

// The time of a path with `flops` of arithmetic on `threads` cores and weights of w_bytes, read
// once from memory when they exceed half the L2 (smaller ones are taken to stay in the caches),
// which the threads share (2 threads get about 1.15x one's bandwidth on the machines measured): the
// larger of the two, as they overlap.
double overlapped(double flops, int threads, double w_bytes, int64_t l2_bytes, double dram_flops_per_byte) {
  const double share = 1.0 + 0.15 * double(std::max(threads, 1) - 1);
  const double dram = w_bytes > double(l2_bytes) / 2 ? w_bytes : 0.0;
  return std::max(flops / double(std::max(threads, 1)), dram_flops_per_byte * dram / share);
}

struct Variant {
  int64_t m = 4, tiles_h = 0, tiles_w = 0, tiles = 0, block = 0, blocks = 0;
  double cost = 0;
};

Variant plan_variant(const WinogradConvShape& s, int64_t m, RegisterTile rt, int64_t l2_bytes, int threads,
                     double dram_flops_per_byte) {
  Variant v;
  v.m = m;
  v.tiles_h = ceil_div(s.OH, m);
  v.tiles_w = ceil_div(s.OW, m);
  v.tiles = s.N * v.tiles_h * v.tiles_w;
  const double C = double(s.C), OC = double(s.OC), a2 = double((m + 2) * (m + 2));
  const double w_bytes = a2 * C * OC * 4.0;
  auto cost_for = [&](int64_t T) {
    const int64_t blocks = ceil_div(v.tiles, T);
    // full blocks at the utilisation of T rows, the last one at that of its remainder
    const int64_t last = v.tiles - (blocks - 1) * T;
    const double per_tile = 2.0 * a2 * C * OC;
    const double gemm = per_tile * (double((blocks - 1) * T) / row_util(T, rt.mr) + double(last) / row_util(last, rt.mr));
    const double transforms = double(v.tiles) * (transform_in_ops(m) * C + transform_out_ops(m) * OC) / kTransformRate;
    const double block_bytes = a2 * double(T) * (C + OC) * 4.0;
    // Blocks run concurrently on `threads` cores, each with its own L2; the weights are shared.
    double traffic = 0;
    if (w_bytes > double(l2_bytes)) traffic += double(blocks - 1) * w_bytes;
    // A block that does not fit moves three times: the transforms' stores fetch their lines
    // (write-allocate), the lines are written back when evicted, and the GEMMs / output transform
    // read them back. Re-read weights move once (clean lines, streamed by the prefetcher).
    if (block_bytes > double(l2_bytes) / 2) traffic += 3.0 * double(blocks) * block_bytes;
    return overlapped(gemm + transforms + kFlopsPerByte * traffic, threads, w_bytes, l2_bytes, dram_flops_per_byte);
  };
  int64_t best = v.tiles;
  double best_cost = cost_for(v.tiles);
  for (int64_t T = rt.mr; T < v.tiles; T += rt.mr) {
    const double c = cost_for(T);
    if (c < best_cost) best = T, best_cost = c;
  }
  // With several threads, keep at least two blocks per thread when that costs little (< 10%):
  // then whole blocks run in parallel, each in its own core's L2.
  if (threads > 1 && ceil_div(v.tiles, best) < 2 * threads) {
    const int64_t T = std::max(rt.mr, ceil_div(ceil_div(v.tiles, 2 * threads), rt.mr) * rt.mr);
    if (T < best && cost_for(T) < 1.1 * best_cost) best = T, best_cost = cost_for(T);
  }
  v.block = best;
  v.blocks = ceil_div(v.tiles, best);
  v.cost = best_cost;
  return v;
}

}  // namespace

WinogradPlan plan_winograd(const WinogradConvShape& s, RegisterTile rt, int64_t l2_bytes, int threads, int64_t only_m,
                           double dram_flops_per_byte) {
  LOCUS_CHECK(s.N >= 1 && s.H >= 1 && s.W >= 1 && s.C >= 1 && s.OC >= 1 && s.OH >= 1 && s.OW >= 1,
              "plan_winograd: bad shape");
  LOCUS_CHECK(rt.mr >= 1 && l2_bytes > 0, "plan_winograd: bad register tile or L2");
  LOCUS_CHECK(only_m == 0 || only_m == 2 || only_m == 4, "plan_winograd: tile size ", only_m, " (2 or 4)");
  LOCUS_CHECK(dram_flops_per_byte > 0, "plan_winograd: bad memory cost ", dram_flops_per_byte);
  threads = std::max(threads, 1);
  WinogradPlan p;
  const double C = double(s.C), OC = double(s.OC), P = double(s.N * s.OH * s.OW);

  // im2col GEMM: M = pixels, blocks of 16 row groups; its weights (9 C OC floats) read once.
  const double im2col_flops = 2.0 * P * 9.0 * C * OC;
  p.cost_im2col = overlapped(im2col_flops / row_util(std::min<int64_t>(s.N * s.OH * s.OW, 16 * rt.mr), rt.mr) +
                                 kCopyFlopsPerByte * 2.0 * P * 9.0 * C * 4.0,
                             threads, 9.0 * C * OC * 4.0, l2_bytes, dram_flops_per_byte);

  const Variant v4 = only_m == 2 ? Variant{} : plan_variant(s, 4, rt, l2_bytes, threads, dram_flops_per_byte);
  const Variant v2 = only_m == 4 ? Variant{} : plan_variant(s, 2, rt, l2_bytes, threads, dram_flops_per_byte);
  const Variant& v = only_m == 4 ? v4 : only_m == 2 ? v2 : (v2.cost < v4.cost ? v2 : v4);
  p.m = v.m;
  p.tiles_h = v.tiles_h, p.tiles_w = v.tiles_w, p.tiles = v.tiles;
  p.block = v.block;
  p.blocks = v.blocks;
  p.cost_winograd = v.cost;
  p.use = p.cost_winograd < p.cost_im2col;
  char buf[320];
  const char* other = only_m ? "" : (v.m == 4 ? ", F(2x2) " : ", F(4x4) ");
  char alt[64] = "";
  if (!only_m) std::snprintf(alt, sizeof alt, "%s%.3g", other, (v.m == 4 ? v2.cost : v4.cost) / 1e6);
  std::snprintf(buf, sizeof buf, "%s: modelled F(%lldx%lld) %.3g vs im2col %.3g (x%.2f)%s, %lld tiles in %lld blocks of %lld",
                p.use ? "winograd" : "im2col", static_cast<long long>(p.m), static_cast<long long>(p.m),
                p.cost_winograd / 1e6, p.cost_im2col / 1e6, p.cost_im2col / p.cost_winograd, alt,
                static_cast<long long>(p.tiles), static_cast<long long>(p.blocks), static_cast<long long>(p.block));
  p.why = buf;
  return p;
}

}  // namespace locus::schedule
