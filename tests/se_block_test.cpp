// The fused squeeze-excite kernel (kernels/native/se_block.h) against the unfused composition:
// native conv2d for expand, depthwise and project (each tested against the naive reference in
// kernels_test), and the pooling, the SE's two 1x1s and the scaling written out naively here; on
// ragged shapes (strides 1, 2 and 2x1, kernels 3 and 5, with and without the expand stage and the
// residual, activations relu, hardswish, the exporters' decomposed HardSwish and hardsigmoid),
// small buffers (many bands and chunks) and large ones, both strategies (two-pass and recompute,
// which must give identical bytes), packed for 1 and 2 threads, every ISA the CPU runs. Tolerance: fp32, as the fused
// inverted-residual test (1e-4 x (1 + |y|) x sqrt(C + E)): the chunks of the project GEMM sum in
// another order than one GEMM over all E.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "graph/error.h"
#include "graph/ir.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/se_block.h"
#include "tests/isa_util.h"
#include "tests/test_support.h"

namespace locus::kernels {
namespace {

using schedule::SeStrategy;
using test::random_floats;

// The exporters' HardSwish, written out: Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6).
float hardswish_ops(float x) {
  const float a = x + 3.f;
  const float c = a < 0.f ? 0.f : (a > 6.f ? 6.f : a);
  return (x * c) / 6.f;
}

struct Case {
  SeBlockShape s;
  int act = 0;  // 0: relu (the classifier's first SE block); 1: hardswish_ops; 2: hardswish
  int64_t S = 65536;
  std::string describe() const {
    const InvertedResidualShape& b = s.block;
    return "N=" + std::to_string(b.N) + " H=" + std::to_string(b.H) + " W=" + std::to_string(b.W) +
           " C=" + std::to_string(b.C) + " E=" + std::to_string(b.E) + " OC=" + std::to_string(b.OC) +
           " SE=" + std::to_string(s.S) + " k=" + std::to_string(b.KH) + " s=" + std::to_string(b.SH) + "x" +
           std::to_string(b.SW) + (b.expand ? "" : " no-expand") + (b.residual ? " residual" : "") +
           " act=" + std::to_string(act) + " S=" + std::to_string(S);
  }
};

SeBlockShape shape(int64_t N, int64_t H, int64_t W, int64_t C, int64_t E, int64_t OC, int64_t SQ, int64_t sh,
                   int64_t sw, bool residual, int64_t K = 3) {
  SeBlockShape s;
  InvertedResidualShape& b = s.block;
  b.N = N, b.H = H, b.W = W, b.C = C, b.E = E, b.OC = OC;
  b.KH = b.KW = K, b.SH = sh, b.SW = sw, b.PT = b.PL = b.PB = b.PR = K / 2;
  b.residual = residual;
  s.S = SQ;
  return s;
}

Conv2dShape conv(int64_t N, int64_t H, int64_t W, int64_t C, int64_t OC) {
  Conv2dShape c;
  c.N = N, c.H = H, c.W = W, c.C = C, c.OC = OC, c.KH = c.KW = 1, c.OH = H, c.OW = W;
  return c;
}

void run_case(const Case& k, uint32_t seed) {
  SCOPED_TRACE(k.describe());
  const InvertedResidualShape& s = k.s.block;
  const int64_t SQ = k.s.S, OH = s.OH(), OW = s.OW();
  const auto x = random_floats(s.N * s.H * s.W * s.C, seed, -3.f, 3.f);
  const auto we = random_floats(s.E * s.C, seed + 1), be = random_floats(s.E, seed + 2);
  const auto wd = random_floats(s.E * s.KH * s.KW, seed + 3), bd = random_floats(s.E, seed + 4);
  const auto wp = random_floats(s.OC * s.E, seed + 5), bp = random_floats(s.OC, seed + 6);
  const auto w1 = random_floats(SQ * s.E, seed + 7), b1 = random_floats(SQ, seed + 8);
  const auto w2 = random_floats(s.E * SQ, seed + 9), b2 = random_floats(s.E, seed + 10);
  const Activation relu{ActKind::Relu};
  const Activation hsig{ActKind::HardSigmoid, 0.2f, 0.5f};
  StageActivation stage_act;
  if (k.act == 0) stage_act.act = relu;
  else if (k.act == 1) stage_act.hardswish_ops = true;
  else stage_act.act = {ActKind::HardSwish};
  // The stage activation, applied independently of StageActivation::apply.
  auto act = [&](std::vector<float>& v) {
    for (float& f : v)
      f = k.act == 0 ? (f < 0.f ? 0.f : f) : k.act == 1 ? hardswish_ops(f) : Activation{ActKind::HardSwish}.apply(f);
  };

  // Unfused: native convs, the SE written out.
  std::vector<float> e(size_t(s.N * s.H * s.W * s.E)), d(size_t(s.N * OH * OW * s.E));
  const float* din = x.data();
  if (s.expand) {
    const PackedConv2d pe = pack_conv2d(conv(s.N, s.H, s.W, s.C, s.E), we.data(), be.data(), Activation{});
    conv2d_nhwc(pe, x.data(), e.data(), nullptr);
    act(e);
    din = e.data();
  }
  Conv2dShape g1;
  g1.N = s.N, g1.H = s.H, g1.W = s.W, g1.C = g1.OC = g1.G = s.E, g1.KH = s.KH, g1.KW = s.KW, g1.SH = s.SH,
  g1.SW = s.SW, g1.PT = s.PT, g1.PL = s.PL, g1.PB = s.PB, g1.PR = s.PR, g1.OH = OH, g1.OW = OW;
  const PackedConv2d pd = pack_conv2d(g1, wd.data(), bd.data(), Activation{});
  std::vector<float> dscratch(size_t(conv2d_scratch_floats(pd)));
  conv2d_nhwc(pd, din, d.data(), dscratch.data());
  act(d);
  for (int64_t n = 0; n < s.N; ++n) {
    float* dn = d.data() + n * OH * OW * s.E;
    std::vector<float> mean(static_cast<size_t>(s.E), 0.f), sq(static_cast<size_t>(SQ)), gate(static_cast<size_t>(s.E));
    for (int64_t q = 0; q < OH * OW; ++q)
      for (int64_t c = 0; c < s.E; ++c) mean[size_t(c)] += dn[q * s.E + c];
    for (float& m : mean) m /= float(OH * OW);
    for (int64_t j = 0; j < SQ; ++j) {
      float a = b1[size_t(j)];
      for (int64_t c = 0; c < s.E; ++c) a += w1[size_t(j * s.E + c)] * mean[size_t(c)];
      sq[size_t(j)] = a < 0.f ? 0.f : a;
    }
    for (int64_t c = 0; c < s.E; ++c) {
      float a = b2[size_t(c)];
      for (int64_t j = 0; j < SQ; ++j) a += w2[size_t(c * SQ + j)] * sq[size_t(j)];
      gate[size_t(c)] = std::max(0.f, std::min(1.f, 0.2f * a + 0.5f));
    }
    for (int64_t q = 0; q < OH * OW; ++q)
      for (int64_t c = 0; c < s.E; ++c) dn[q * s.E + c] *= gate[size_t(c)];
  }
  std::vector<float> want(size_t(s.N * OH * OW * s.OC));
  const PackedConv2d pp = pack_conv2d(conv(s.N, OH, OW, s.E, s.OC), wp.data(), bp.data(), Activation{});
  conv2d_nhwc(pp, d.data(), want.data(), nullptr);
  if (s.residual)
    for (size_t i = 0; i < want.size(); ++i) want[i] += x[i];

  SeBlockWeights w;
  if (s.expand) w.expand = we.data(), w.expand_bias = be.data(), w.expand_act = stage_act;
  w.dw = wd.data(), w.dw_bias = bd.data(), w.dw_act = stage_act;
  w.project = wp.data(), w.project_bias = bp.data();
  w.squeeze = w1.data(), w.squeeze_bias = b1.data(), w.squeeze_act.act = relu;
  w.excite = w2.data(), w.excite_bias = b2.data(), w.excite_act.act = hsig;
  for (int threads : {1, 2}) {
  std::vector<float> first;
  for (SeStrategy strategy : {SeStrategy::TwoPass, SeStrategy::Recompute}) {
    SCOPED_TRACE(cat(threads, " threads"));
    const PackedSeBlock p = pack_se_block(k.s, w, k.S, threads, strategy);
    ASSERT_EQ(p.plan.strategy, strategy);
    EXPECT_LE(p.plan.block.buffer_entries, k.S);
    const int64_t scratch_n = se_block_scratch_floats(p);
    constexpr int64_t kGuard = 64;
    std::vector<float> scratch(size_t(scratch_n + kGuard), -4242.f);
    std::vector<float> got(want.size() + 1, 12345.f);
    se_block_nhwc(p, x.data(), got.data(), scratch.data());
    ASSERT_EQ(got.back(), 12345.f) << "wrote past the output";
    for (int64_t i = 0; i < kGuard; ++i) ASSERT_EQ(scratch[size_t(scratch_n + i)], -4242.f) << "wrote past the scratch";
    got.pop_back();
    int bad = 0;
    for (size_t i = 0; i < want.size() && bad < 5; ++i) {
      const double tol = 1e-4 * (1.0 + std::fabs(want[i])) * std::sqrt(double(s.C + s.E));
      if (!(std::fabs(got[i] - want[i]) <= tol)) {
        ADD_FAILURE() << schedule::se_strategy_name(strategy) << " plan " << p.plan.describe() << ": element " << i
                      << " got " << got[i] << " want " << want[i];
        ++bad;
      }
    }
    // the two strategies compute D the same way: the same bytes
    if (first.empty()) first = got;
    else EXPECT_TRUE(first == got) << "two-pass and recompute differ";
  }
  }
}

class SeBlockTest : public test::IsaTest {};

TEST_P(SeBlockTest, RaggedShapesBothStrategies) {
  uint32_t seed = 1;
  for (int64_t S : {int64_t(3000), int64_t(65536)}) {
    run_case({shape(1, 9, 10, 5, 37, 5, 9, 1, 1, true), 1, S}, seed++);
    run_case({shape(2, 11, 7, 6, 50, 13, 12, 2, 2, false), 0, S}, seed++);
    run_case({shape(1, 12, 19, 16, 88, 24, 22, 2, 1, false, 5), 1, std::max<int64_t>(S, 30000)}, seed++);  // the classifier's 5x5, stride 2x1
    run_case({shape(1, 7, 13, 8, 40, 8, 10, 1, 1, true, 5), 2, S}, seed++);
    if (HasFailure()) return;
  }
}

TEST_P(SeBlockTest, WithoutExpandStage) {
  SeBlockShape s = shape(1, 10, 11, 19, 19, 10, 5, 1, 1, false);
  s.block.expand = false;
  run_case({s, 1, 2048}, 40);
  run_case({s, 0, 65536}, 41);
}

TEST_P(SeBlockTest, RefusesBadShapes) {
  SeBlockShape s = shape(1, 8, 8, 4, 16, 6, 4, 1, 1, true);  // residual with OC != C
  const std::vector<float> w(1024, 0.1f);
  SeBlockWeights wt;
  wt.expand = wt.dw = wt.project = wt.squeeze = wt.excite = w.data();
  try {
    pack_se_block(s, wt, 65536);
    FAIL() << "accepted a residual with 6 output and 4 input channels";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("residual needs the output shape"), std::string::npos) << e.what();
  }
}

TEST(SeBlockPack, ABandTooWideForTheBufferIsPlannedForALargerOne) {
  const SeBlockShape s = shape(1, 6, 200, 16, 48, 16, 12, 1, 1, true, 5);
  const std::vector<float> w(48 * 25 + 16 * 48, 0.01f);
  SeBlockWeights wt;
  wt.expand = wt.dw = wt.project = wt.squeeze = wt.excite = w.data();
  EXPECT_THROW(schedule::plan_se_block(s.block.block(), 4096), Error);  // one 5-row band needs more
  const PackedSeBlock p = pack_se_block(s, wt, 4096);
  EXPECT_GT(p.plan.block.S, 4096);
  EXPECT_LE(p.plan.block.buffer_entries, p.plan.block.S);
  EXPECT_NE(p.note.find("no band fits S=4096 entries: planned for S="), std::string::npos) << p.note;
  EXPECT_TRUE(pack_se_block(s, wt, 1 << 20).note.empty());
}

INSTANTIATE_TEST_SUITE_P(Isas, SeBlockTest, ::testing::ValuesIn(test::supported_isas()), test::isa_param_name);

}  // namespace
}  // namespace locus::kernels
