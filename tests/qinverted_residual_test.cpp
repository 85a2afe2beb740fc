// The fused int8 inverted-residual kernel (kernels/native/qinverted_residual.h) against the unfused
// int8 composition of the same kernels (qgemm_u8s8 expand -> qdwconv_nhwc -> qgemm_u8s8 project ->
// qadd_same residual), bit for bit, on ragged shapes (odd H / W, channels not multiples of 16,
// stride 1 and 2, with and without expand / project / residual, nonzero zero points, narrow clamps,
// s8 outputs), under every ISA this CPU has, at 1 and 2 threads, with buffers that force many bands
// and chunks; and the fused-block planner's byte accounting for int8 plans.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "graph/error.h"
#include "kernels/native/qdwconv.h"
#include "kernels/native/qelementwise.h"
#include "kernels/native/qgemm.h"
#include "kernels/native/qinverted_residual.h"
#include "schedule/fused_block_planner.h"
#include "tests/isa_util.h"

using namespace locus;
using namespace locus::kernels;

namespace {

struct Case {
  int64_t N, H, W, C, E, OC, K, stride, pad;
  bool expand, project, residual;
  bool per_channel = true;
  bool narrow = false;    // clamps narrower than the type (a quantized Relu6)
  bool s8_out = false;    // the block's output (and residual operands) int8
  bool x_first = false;   // X is the QLinearAdd's first operand
  int64_t pad_end = -1;   // bottom and right padding when not `pad` (asymmetric, as TF's SAME)
  // the expand stage as a dense xk x xk conv (stride xs, pads xp; H, W are then its input's), as
  // MobileNetV2's stem in front of its first block; 0: a 1x1 expand
  int64_t xk = 0, xs = 1, xp = 0;
  bool symmetric_w = false;  // weight zero points 0 (the VNNI kernel then reads the conv's rows in place)
};

std::vector<uint8_t> random_u8(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (auto& b : v) b = uint8_t(rng() & 0xff);
  return v;
}
std::vector<int8_t> random_s8(int64_t n, uint32_t seed) {
  std::vector<uint8_t> u = random_u8(n, seed);
  return std::vector<int8_t>(u.begin(), u.end());
}
std::vector<int32_t> random_bias(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-4000, 4000);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& b : v) b = d(rng);
  return v;
}

// Quantization of a stage with n output channels; the scales keep outputs spread over the range.
QuantParams stage_q(int64_t n, int64_t K, int32_t a_zero, bool per_channel, bool narrow, bool s8_out, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> sc(0.002f, 0.02f);
  QuantParams q;
  q.a_scale = 0.05f;
  q.a_zero = a_zero;
  for (int64_t c = 0; c < (per_channel ? n : 1); ++c) {
    q.w_scale.push_back(sc(rng));
    q.w_zero.push_back(per_channel ? int32_t(c % 5) - 2 : 3);
  }
  // y_scale of the order of the accumulator's spread (about sqrt(K) x 70 x 70 x a_scale x w_scale),
  // so that outputs cover the range with some saturation at both ends
  q.y_scale = 0.04f * std::sqrt(float(K));
  q.s8_out = s8_out;
  q.y_zero = s8_out ? -7 : 121;
  q.qmin = s8_out ? -128 : 0;
  q.qmax = s8_out ? 127 : 255;
  if (narrow) q.qmin = q.y_zero, q.qmax = std::min(q.qmax, q.y_zero + 97);  // relu6-like
  return q;
}

struct Block {
  Case k;
  std::vector<uint8_t> x;                    // as run (u8)
  std::vector<uint8_t> x_res;                // the real-typed input the residual reads
  std::vector<int8_t> we, wd, wp;
  std::vector<int32_t> be, bd, bp;
  QInvertedResidualWeights w;
  QInvertedResidualShape s;
};

Block make_block(const Case& k, uint32_t seed) {
  Block b;
  b.k = k;
  QInvertedResidualShape& s = b.s;
  s.N = k.N, s.H = k.H, s.W = k.W, s.C = k.C, s.E = k.expand ? k.E : k.C, s.OC = k.project ? k.OC : s.E;
  if (k.xk > 0) {
    s.xconv = {true, k.H, k.W, k.xk, k.xk, k.xs, k.xs, k.xp, k.xp, k.xp, k.xp};
    s.H = (k.H + 2 * k.xp - k.xk) / k.xs + 1, s.W = (k.W + 2 * k.xp - k.xk) / k.xs + 1;
  }
  const int64_t xtaps = k.xk > 0 ? k.xk * k.xk : 1;
  s.KH = s.KW = k.K, s.SH = s.SW = k.stride, s.PT = s.PL = s.PB = s.PR = k.pad;
  if (k.pad_end >= 0) s.PB = s.PR = k.pad_end;
  s.expand = k.expand, s.project = k.project, s.residual = k.residual;
  const int64_t E = s.E, taps = k.K * k.K;
  b.x = random_u8(k.N * k.H * k.W * k.C, seed);
  // an s8 block: the residual reads the real s8 input, the stages its flipped copy (zero point + 128)
  b.x_res = b.x;
  if (k.s8_out)
    for (auto& v : b.x_res) v ^= 0x80;
  const int32_t x_zero = 109;  // of the u8-run input
  b.we = random_s8(E * k.C * xtaps, seed + 1), b.wd = random_s8(E * taps, seed + 2), b.wp = random_s8(s.OC * E, seed + 3);
  b.be = random_bias(E, seed + 4), b.bd = random_bias(E, seed + 5), b.bp = random_bias(s.OC, seed + 6);
  QInvertedResidualWeights& w = b.w;
  if (k.expand) {
    w.expand = b.we.data(), w.expand_bias = b.be.data();
    w.expand_q = stage_q(E, k.C * xtaps, x_zero, k.per_channel, k.narrow, false, seed + 7);
    if (k.symmetric_w) std::fill(w.expand_q.w_zero.begin(), w.expand_q.w_zero.end(), 0);
  }
  const int32_t dw_zero = k.expand ? w.expand_q.y_zero : x_zero;
  w.dw = b.wd.data(), w.dw_bias = b.bd.data();
  w.dw_q = stage_q(E, taps, dw_zero, k.per_channel, k.narrow, !k.project && k.s8_out, seed + 8);
  if (k.project) {
    w.project = b.wp.data(), w.project_bias = b.bp.data();
    w.project_q = stage_q(s.OC, E, w.dw_q.y_zero, k.per_channel, false, k.s8_out, seed + 9);
  }
  if (k.residual) {
    const int32_t xz_real = k.s8_out ? x_zero - 128 : x_zero;
    const float pa = w.project_q.y_scale, xa = 0.05f;
    w.x_first = k.x_first;
    w.add = k.x_first ? qadd_params(xa, xz_real, pa, w.project_q.y_zero, 0.04f, k.s8_out ? 3 : 125, k.s8_out)
                      : qadd_params(pa, w.project_q.y_zero, xa, xz_real, 0.04f, k.s8_out ? 3 : 125, k.s8_out);
  }
  return b;
}

// The unfused composition: each stage over the whole tensor with the same kernels.
std::vector<uint8_t> unfused(const Block& b) {
  const QInvertedResidualShape& s = b.s;
  const int64_t OH = s.OH(), OW = s.OW(), E = s.E;
  std::vector<uint8_t> cur = b.x;
  if (s.xconv.on) {
    const QExpandConv& xc = s.xconv;
    Conv2dShape c;
    c.N = s.N, c.H = xc.XH, c.W = xc.XW, c.C = s.C, c.OC = E, c.G = 1, c.OH = s.H, c.OW = s.W;
    c.KH = xc.KH, c.KW = xc.KW, c.SH = xc.SH, c.SW = xc.SW, c.PT = xc.PT, c.PL = xc.PL, c.PB = xc.PB, c.PR = xc.PR;
    c.DH = c.DW = 1;
    PackedQConv pc = pack_qconv(c, b.w.expand, b.w.expand_bias, b.w.expand_q, 1);
    std::vector<uint8_t> e(size_t(s.N * s.H * s.W * E));
    qconv_nhwc(pc, cur.data(), e.data());
    cur = std::move(e);
  } else if (s.expand) {
    PackedQB pe = pack_qgemm_b(s.C, E, b.w.expand, s.C, true, b.w.expand_bias, b.w.expand_q);
    std::vector<uint8_t> e(size_t(s.N * s.H * s.W * E));
    qgemm_u8s8(s.N * s.H * s.W, cur.data(), s.C, pe, e.data(), E, 1);
    cur = std::move(e);
  }
  Conv2dShape d;
  d.N = s.N, d.H = s.H, d.W = s.W, d.C = d.OC = d.G = E, d.OH = OH, d.OW = OW;
  d.KH = s.KH, d.KW = s.KW, d.SH = s.SH, d.SW = s.SW, d.PT = s.PT, d.PL = s.PL, d.PB = s.PB, d.PR = s.PR;
  PackedQDwConv pd = pack_qdwconv(d, b.w.dw, b.w.dw_bias, b.w.dw_q, 1);
  std::vector<uint8_t> f(size_t(s.N * OH * OW * E));
  qdwconv_nhwc(pd, cur.data(), f.data());
  if (!s.project) return f;
  PackedQB pp = pack_qgemm_b(E, s.OC, b.w.project, E, true, b.w.project_bias, b.w.project_q);
  std::vector<uint8_t> p(size_t(s.N * OH * OW * s.OC));
  qgemm_u8s8(s.N * OH * OW, f.data(), E, pp, p.data(), s.OC, 1);
  if (!s.residual) return p;
  std::vector<uint8_t> y(p.size());
  const int64_t n = int64_t(p.size());
  if (b.w.x_first) qadd_same(b.w.add, n, b.x_res.data(), p.data(), y.data());
  else qadd_same(b.w.add, n, p.data(), b.x_res.data(), y.data());
  return y;
}

std::vector<uint8_t> fused(const Block& b, int64_t S, int threads, schedule::FusedBlockPlan* plan = nullptr) {
  PackedQInvertedResidual p = pack_qinverted_residual(b.s, b.w, S, threads);
  if (plan) *plan = p.plan;
  std::vector<uint8_t> scratch(size_t(qinverted_residual_scratch_bytes(p)));
  std::vector<uint8_t> y(size_t(b.s.N * b.s.OH() * b.s.OW() * b.s.OC), 0xA5);
  qinverted_residual_nhwc(p, b.x.data(), b.x_res.data(), y.data(), scratch.data());
  return y;
}

std::string first_diff(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) {
  if (got.size() != want.size()) return "sizes differ";
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i]) {
      if (first < 0) first = int64_t(i);
      ++bad;
    }
  if (!bad) return "";
  return cat(bad, " of ", got.size(), " bytes differ, first at ", first, ": ", int(got[size_t(first)]), " vs ",
             int(want[size_t(first)]));
}

class QInvertedResidual : public test::IsaTest {};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      // N H W C E OC K s p expand project residual
      {1, 9, 7, 8, 40, 8, 3, 1, 1, true, true, true},                            // MobileNetV2 residual block, ragged
      {2, 11, 13, 12, 72, 20, 3, 2, 1, true, true, false},                       // strided, odd sizes, batch 2
      {1, 10, 9, 24, 37, 24, 3, 1, 1, true, true, true, false, true, true, true},  // per tensor, narrow, s8, X first
      {1, 7, 8, 17, 17, 9, 3, 1, 1, false, true, false},                         // no expand (dw -> project)
      {1, 8, 9, 16, 50, 50, 5, 2, 2, true, false, false, true, true},            // no project, 5x5, narrow
      {2, 12, 5, 19, 83, 19, 3, 1, 1, true, true, true, true, false, true},       // s8 residual, P first
      {1, 6, 6, 32, 96, 33, 3, 2, 0, true, true, false},                         // unpadded strided
      // asymmetric padding (the expanded rows carry PL + PR padding columns): TF's SAME at stride 2
      // (right and bottom only), and two columns on the left only
      {1, 9, 10, 16, 48, 24, 3, 2, 0, true, true, false, true, false, false, false, 1},
      {1, 7, 9, 12, 40, 12, 3, 1, 2, true, true, false, false, false, false, false, 0},
      // a 3x3 stride-2 conv as the expand stage (the stem): odd image, 3 channels, in the im2col
      // form (weight zero points) and in the in-place one (symmetric weights), batch 2, and a
      // strided depthwise stage behind an unpadded stride-1 conv
      {1, 15, 13, 3, 32, 16, 3, 1, 1, true, true, false, true, true, false, false, -1, 3, 2, 1},
      {2, 17, 14, 3, 40, 9, 3, 1, 1, true, true, false, true, false, false, false, -1, 3, 2, 1, true},
      {1, 12, 11, 5, 24, 9, 3, 2, 1, true, true, false, false, false, false, false, -1, 3, 1, 0, true},
  };
  return c;
}

// Every case at a buffer that fits one band and one chunk, and at small ones that force several
// bands (halo rows recomputed) and chunks (the chunk's columns of the filtered rows): the same bytes.
TEST_P(QInvertedResidual, FusedEqualsTheUnfusedCompositionBitForBit) {
  uint32_t seed = 100;
  for (const Case& k : cases()) {
    const Block b = make_block(k, seed += 10);
    const std::vector<uint8_t> want = unfused(b);
    // the case exercises the arithmetic: its outputs spread over the range, not one saturated value
    std::vector<bool> seen(256, false);
    for (uint8_t v : want) seen[v] = true;
    EXPECT_GE(std::count(seen.begin(), seen.end(), true), 32) << "case E=" << k.E << ": outputs barely vary";
    bool several_chunks = false, several_bands = false;
    // (the VNNI depthwise kernel in its VBMI form, three taps per vpdpbusd, and in its vpdpwssd form)
    for (bool vbmi : {true, false})
    for (int64_t S : {int64_t(1) << 24, int64_t(20000), int64_t(12000), int64_t(6000), int64_t(3000)}) {
      set_qdwconv_vbmi(vbmi);
      for (int threads : {1, 2}) {
        schedule::FusedBlockPlan plan;
        std::vector<uint8_t> got;
        try {
          got = fused(b, S, threads, &plan);
        } catch (const Error&) {
          continue;  // no band fits this S for this shape
        }
        several_chunks |= plan.chunks > 1;
        several_bands |= plan.bands > 1;
        EXPECT_EQ(first_diff(got, want), "")
            << "case H=" << k.H << " W=" << k.W << " C=" << k.C << " E=" << k.E << " stride " << k.stride << ", S=" << S
            << ", " << threads << " thread(s), vbmi " << vbmi << ": " << plan.describe();
      }
    }
    set_qdwconv_vbmi(true);
    EXPECT_TRUE(several_bands) << "case E=" << k.E << ": no buffer forced several bands";
    if (k.expand && k.project && k.E > 32 && k.xk == 0) {  // (a conv expand is one chunk)
      EXPECT_TRUE(several_chunks) << "case E=" << k.E << ": no buffer forced several chunks";
    }
  }
}

// Two threads over fewer bands than threads split the chunks (shared filtered rows, then the rows of
// the projection): the same bytes.
TEST_P(QInvertedResidual, ChunkSplitEqualsTheComposition) {
  const Case k{1, 3, 5, 16, 160, 16, 3, 1, 1, true, true, true};
  const Block b = make_block(k, 77);
  const std::vector<uint8_t> want = unfused(b);
  schedule::FusedBlockPlan plan;
  const std::vector<uint8_t> got = fused(b, 8000, 2, &plan);
  EXPECT_EQ(plan.bands, 1);
  EXPECT_EQ(plan.split_chunks, 2) << plan.describe();
  EXPECT_EQ(first_diff(got, want), "") << plan.describe();
}

INSTANTIATE_TEST_SUITE_P(Isas, QInvertedResidual, ::testing::ValuesIn(test::supported_isas()), test::isa_param_name);

TEST(QInvertedResidualErrors, BadShapesAndQuantizationAreOneLineErrors) {
  Block b = make_block({1, 9, 7, 8, 40, 8, 3, 1, 1, true, true, true}, 5);
  QInvertedResidualShape s = b.s;
  s.OC = 9;  // residual with a different shape
  EXPECT_THROW(pack_qinverted_residual(s, b.w, 1 << 24), Error);
  QInvertedResidualWeights w = b.w;
  w.expand_q.s8_out = true;  // an s8 intermediate
  EXPECT_THROW(pack_qinverted_residual(b.s, w, 1 << 24), Error);
  EXPECT_THROW(pack_qinverted_residual(b.s, b.w, 100), Error);  // nothing fits 100 bytes
  // a conv expand stage whose output is not the depthwise input, or in a block with a residual
  Block c = make_block({1, 15, 13, 3, 32, 16, 3, 1, 1, true, true, false, true, true, false, false, -1, 3, 2, 1}, 6);
  QInvertedResidualShape cs = c.s;
  cs.H += 1;
  EXPECT_THROW(pack_qinverted_residual(cs, c.w, 1 << 24), Error);
  cs = c.s;
  cs.residual = true, cs.OC = cs.C;
  EXPECT_THROW(pack_qinverted_residual(cs, c.w, 1 << 24), Error);
}

// The buffer's price (FusedPlannerOptions::buffer_price, what the CPU kernel's bands cost as arena
// memory beyond what the arena has free) shortens the bands where their halo is cheap and keeps the
// chunk; within the free memory it changes nothing.
TEST(QFusedPlanner, ABufferPriceShortensTheBandsAndKeepsTheChunk) {
  schedule::FusedBlockShape s;  // MobileNetV2-int8's second block: 112x112, 16 -> 96 -> 24, stride 2
  s.H = s.W = 112, s.C = 16, s.E = 96, s.OC = 24, s.SH = s.SW = 2;
  s.elem = schedule::FusedElementSizes::int8(), s.filtered_band = true;
  schedule::FusedPlannerOptions o;
  o.chunk_step = 16, o.min_chunk = 16, o.halo_cache = false;
  const int64_t S = 512 * 1024;
  const schedule::FusedBlockPlan free_buffer = schedule::plan_fused_block(s, S, o);
  o.buffer_price = 1;
  const schedule::FusedBlockPlan priced = schedule::plan_fused_block(s, S, o);
  EXPECT_EQ(priced.chunk, free_buffer.chunk);
  EXPECT_LT(priced.rows, free_buffer.rows) << priced.describe() << " vs " << free_buffer.describe();
  EXPECT_LT(priced.buffer_entries, free_buffer.buffer_entries);
  // and the plan says so (locus info --plans prints it)
  EXPECT_NE(priced.note.find(cat("bands of ", priced.rows, " rows, not ", free_buffer.rows)), std::string::npos)
      << priced.note;
  EXPECT_EQ(free_buffer.note, "");
  // the priced choice is the cheapest once the buffer counts: no other band height of that chunk is
  for (int64_t rows = 1; rows <= s.OH(); ++rows) {
    schedule::FusedPlanAttempt a = schedule::try_fused_block_plan(s, S, rows, priced.chunk, false);
    if (!a.plan) continue;
    const int64_t min_expand = s.H * s.W * s.C * s.E;
    auto cost = [&](const schedule::FusedBlockPlan& p) {
      return p.total + (p.expand_macs - min_expand) / 16 + p.buffer_entries;
    };
    EXPECT_GE(cost(*a.plan), cost(priced)) << "rows=" << rows;
  }
  // a buffer within the free memory costs nothing: with room for the tall bands they stay
  o.free_buffer = free_buffer.buffer_entries;
  const schedule::FusedBlockPlan roomy = schedule::plan_fused_block(s, S, o);
  EXPECT_EQ(roomy.rows, free_buffer.rows);
  EXPECT_EQ(roomy.chunk, free_buffer.chunk);
  EXPECT_EQ(roomy.note, "");
}

// ---- the planner's byte accounting ----

schedule::FusedBlockShape mobilenet_block(bool int8) {
  schedule::FusedBlockShape s;
  s.H = s.W = 28, s.C = 32, s.E = 192, s.OC = 32;
  if (int8) s.elem = schedule::FusedElementSizes::int8(), s.filtered_band = true;
  return s;
}

// An fp32 plan counts float entries, an int8 one bytes: the same (rows, chunk) costs the int8 plan
// 1 byte per activation and weight and 4 per per-channel bias / multiplier, computed here from the
// schedule's definition.
TEST(QFusedPlanner, Int8PlansCountBytes) {
  const schedule::FusedBlockShape s = mobilenet_block(true);
  const int64_t rows = 4, chunk = 64;
  const schedule::FusedBlockPlan p = schedule::make_fused_block_plan(s, 1 << 30, rows, chunk, false);
  const int64_t in_rows = rows + 2;  // 3x3, stride 1: one halo row above and below
  const int64_t want_buffer = in_rows * 28 * 32          // input rows
                              + in_rows * 28 * chunk     // expanded chunk
                              + rows * 28 * 192          // filtered band, every expanded channel
                              + rows * 28 * 32           // output tile
                              + 32 * chunk + 9 * chunk   // the chunk's expand and depthwise weights
                              + 192 * 32                 // the resident project weights
                              + 4 * 2 * (chunk + chunk + 32);  // biases and multipliers, 4 bytes each
  EXPECT_EQ(p.buffer_entries, want_buffer);
  EXPECT_EQ(p.filtered_entries, rows * 28 * 192);
  EXPECT_EQ(p.writes_output, 28 * 28 * 32);
  // weights: expand + depthwise walked per band in Scan order (the chunk at each turn stays), the
  // project weights once
  const int64_t bands = 7, w_chunk = 32 * chunk + 9 * chunk, w_total = 32 * 192 + 9 * 192;
  EXPECT_EQ(p.reads_weights, bands * w_total - (bands - 1) * w_chunk + 192 * 32);
  EXPECT_NE(p.describe().find("filtered_band="), std::string::npos) << p.describe();
  EXPECT_NE(p.describe().find(" bytes"), std::string::npos) << p.describe();
}

// MobileNetV2's last block (7x7, 160 -> 960 -> 320): its 307200 bytes of project weights do not fit a
// 256 KiB buffer, so no band fits with them resident; the search then streams them (one 32-column
// panel, E x 32 bytes, on chip; all of them read once per band) instead of failing, and a buffer
// where they fit keeps them resident.
TEST(QFusedPlanner, ProjectWeightsAreStreamedWhenTheyCannotStayResident) {
  schedule::FusedBlockShape s;
  s.H = s.W = 7, s.C = 160, s.E = 960, s.OC = 320;
  s.elem = schedule::FusedElementSizes::int8(), s.filtered_band = true;
  const int64_t w_project = 960 * 320;
  const schedule::FusedPlanAttempt small = schedule::search_fused_block_plan(s, 256 * 1024);
  ASSERT_TRUE(small.plan) << small.why_not;
  const schedule::FusedBlockPlan& p = *small.plan;
  EXPECT_TRUE(p.shape.stream_project);
  EXPECT_LE(p.buffer_entries, 256 * 1024);
  EXPECT_NE(p.describe().find("project_streamed"), std::string::npos) << p.describe();
  // the same tiles with the weights resident need w_project - 960 * 32 bytes more than S allows for
  schedule::FusedBlockShape resident = s;
  const schedule::FusedBlockPlan r = schedule::make_fused_block_plan(resident, int64_t(1) << 40, p.rows, p.chunk, false);
  EXPECT_EQ(r.buffer_entries - p.buffer_entries, w_project - 960 * 32);
  EXPECT_GT(r.buffer_entries, 256 * 1024);
  // streamed, the project weights are read once per band; resident, once
  const int64_t others = r.reads_weights - w_project;
  EXPECT_EQ(p.reads_weights, others + p.bands * w_project);
  // with room for them, the plan keeps them resident
  const schedule::FusedPlanAttempt big = schedule::search_fused_block_plan(s, 1024 * 1024);
  ASSERT_TRUE(big.plan) << big.why_not;
  EXPECT_FALSE(big.plan->shape.stream_project);
  // and a buffer too small even for streaming still says why, in one line
  const schedule::FusedPlanAttempt none = schedule::search_fused_block_plan(s, 4096);
  EXPECT_FALSE(none.plan);
  EXPECT_NE(none.why_not.find("cannot hold any band"), std::string::npos) << none.why_not;
}

// The L2 holds four times the entries: an L2 of as many bytes as the int8 plan needs is too small
// for the fp32 plan of the same tiles (S = L2 / 4 entries), which needs nearly four times it.
TEST(QFusedPlanner, AnInt8PlanFitsWhereTheFp32OneNeedsFourTimesTheBuffer) {
  const schedule::FusedBlockShape f = mobilenet_block(false), q = mobilenet_block(true);
  const int64_t rows = 28, chunk = 192;  // the whole block at once
  const int64_t l2 = schedule::make_fused_block_plan(q, int64_t(1) << 40, rows, chunk, false).buffer_entries;
  const schedule::FusedPlanAttempt aq = schedule::try_fused_block_plan(q, l2, rows, chunk, false);
  ASSERT_TRUE(aq.plan) << aq.why_not;
  const schedule::FusedPlanAttempt af = schedule::try_fused_block_plan(f, l2 / 4, rows, chunk, false);
  EXPECT_FALSE(af.plan);
  EXPECT_NE(af.why_not.find("entries"), std::string::npos) << af.why_not;
  const int64_t fp32_bytes = 4 * schedule::make_fused_block_plan(f, int64_t(1) << 40, rows, chunk, false).buffer_entries;
  EXPECT_GT(fp32_bytes, 35 * l2 / 10);
  EXPECT_LE(fp32_bytes, 4 * l2);
  const schedule::FusedPlanAttempt small = schedule::try_fused_block_plan(q, 1000, rows, chunk, false);
  EXPECT_NE(small.why_not.find("bytes"), std::string::npos) << small.why_not;
}

// fp32 plans are unchanged by the element sizes: the defaults count float entries as before.
TEST(QFusedPlanner, Fp32PlansKeepCountingEntries) {
  const schedule::FusedBlockShape f = mobilenet_block(false);
  const schedule::FusedBlockPlan p = schedule::make_fused_block_plan(f, 1 << 20, 4, 64, false);
  const int64_t in_rows = 6;
  EXPECT_EQ(p.buffer_entries, in_rows * 28 * 32 + in_rows * 28 * 64 + 4 * 28 * 64 + 4 * 28 * 32 +
                                  (32 * 64 + 9 * 64 + 64 * 32));
  EXPECT_EQ(p.filtered_entries, 0);
  EXPECT_EQ(p.describe().find("bytes"), std::string::npos);
}

}  // namespace
