// Winograd F(4x4, 3x3) and F(2x2, 3x3) (kernels/native/winograd.h) against a naive NHWC
// convolution written here (double accumulation), on ragged shapes (odd H/W, C and OC not multiples
// of 16, pads 0 and 1, batch 2), both tile sizes, once per ISA the CPU supports; its planner (schedule/winograd_planner.h); the residual
// epilogue of every conv path against the unfused composition; and the error on every 3x3 layer of
// ResNet-50 (printed: docs/winograd.md has the table).
//
// Error bound asserted: |y - y_ref| <= kWinoK * eps * sum_k |w_k| |x_k| + 1e-6 per output, eps =
// 2^-23 (fp32), the sum over the output's 9 C taps (plus |bias| and |residual|). Direct fp32
// summation stays within a few eps of that scale; F(4x4, 3x3)'s transforms (entries up to 8 in A^T,
// 5 in B^T, 1/24 in G) amplify the rounding, to about 5-15 in practice (the table below); kWinoK = 64 leaves margin
// and is still ~1000x tighter than the 1e-3 relative tolerance the network tests use.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "graph/ops.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/gemm_microkernel.h"
#include "kernels/native/winograd.h"
#include "models/builders.h"
#include "schedule/winograd_planner.h"
#include "tests/isa_util.h"
#include "tests/test_support.h"

namespace locus::kernels {
namespace {

constexpr double kEps = 1.0 / (1 << 23);
constexpr double kWinoK = 64;

struct Case {
  int64_t N, H, W, C, OC, pad;
  Activation act;
  bool residual;
};

struct Ref {
  std::vector<double> y, scale;  // reference output and sum |terms| per output (NHWC)
};

// Naive NHWC 3x3 stride-1 conv, symmetric pad, weights OIHW: y = act(sum + bias + residual).
Ref naive(const Case& c, const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
          const float* res) {
  const int64_t OH = c.H + 2 * c.pad - 2, OW = c.W + 2 * c.pad - 2;
  Ref r;
  r.y.assign(size_t(c.N * OH * OW * c.OC), 0.0);
  r.scale.assign(r.y.size(), 0.0);
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t o = 0; o < c.OC; ++o) {
          double acc = b[size_t(o)], sc = std::fabs(b[size_t(o)]);
          for (int64_t kh = 0; kh < 3; ++kh)
            for (int64_t kw = 0; kw < 3; ++kw) {
              const int64_t ih = oh - c.pad + kh, iw = ow - c.pad + kw;
              if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
              for (int64_t ci = 0; ci < c.C; ++ci) {
                const double t = double(x[size_t(((n * c.H + ih) * c.W + iw) * c.C + ci)]) *
                                 double(w[size_t(((o * c.C + ci) * 3 + kh) * 3 + kw)]);
                acc += t;
                sc += std::fabs(t);
              }
            }
          const size_t i = size_t(((n * OH + oh) * OW + ow) * c.OC + o);
          if (res) acc += res[i], sc += std::fabs(res[i]);
          if (c.act.kind == ActKind::Relu) acc = acc > 0 ? acc : 0;
          r.y[i] = acc;
          r.scale[i] = sc;
        }
  return r;
}

// Max of |got - want| / (eps * scale); fails the test where the bound is exceeded.
double check_bound(const std::vector<float>& got, const Ref& r, const std::string& what) {
  double worst = 0;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - r.y[i]);
    worst = std::max(worst, err / (kEps * (r.scale[i] + 1e-30)));
    if (!(err <= kWinoK * kEps * r.scale[i] + 1e-6) && ++bad <= 5)
      ADD_FAILURE() << what << ": element " << i << " got " << got[i] << " want " << r.y[i] << " (scale "
                    << r.scale[i] << ")";
  }
  return worst;
}

// m: 4 or 2 forces that tile size, 0 takes the planner's.
schedule::WinogradPlan plan_for(const Case& c, int threads, int64_t block = 0, int64_t m = 0) {
  const GemmConfig& gc = gemm_config(active_isa());
  schedule::WinogradPlan p = schedule::plan_winograd(
      {c.N, c.H, c.W, c.C, c.OC, c.H + 2 * c.pad - 2, c.W + 2 * c.pad - 2}, {gc.mr, gc.nr}, 512 * 1024, threads, m);
  if (block > 0) {  // force a block size (block boundaries inside images and across them)
    p.block = std::min(block, p.tiles);
    p.blocks = (p.tiles + p.block - 1) / p.block;
  }
  return p;
}

std::vector<float> run_winograd(const Case& c, const std::vector<float>& x, const std::vector<float>& w,
                                const std::vector<float>& b, const float* res, int threads, int64_t block,
                                int64_t m = 0) {
  const int64_t OH = c.H + 2 * c.pad - 2, OW = c.W + 2 * c.pad - 2;
  const WinogradConv p = pack_winograd(c.N, c.H, c.W, c.C, c.OC, c.pad, c.pad, OH, OW, w.data(), b.data(), c.act,
                                       plan_for(c, threads, block, m), threads);
  std::vector<float> scratch(size_t(winograd_scratch_floats(p)));
  std::vector<float> y(size_t(c.N * OH * OW * c.OC), -7.f);
  winograd_conv_nhwc(p, x.data(), res, y.data(), scratch.data());
  return y;
}

class WinogradTest : public test::IsaTest {};

TEST_P(WinogradTest, RaggedShapesWithinTheErrorBound) {
  const Activation none{}, relu{ActKind::Relu, 0.f, 0.f};
  const std::vector<Case> cases = {
      {2, 7, 9, 5, 19, 1, relu, false},    // batch 2, odd H/W, ragged tiles, C and OC tails
      {1, 11, 6, 17, 33, 0, none, false},  // pad 0
      {2, 5, 5, 32, 16, 1, relu, true},    // residual + relu
      {1, 13, 13, 64, 24, 1, none, true},  // residual, no activation
      {1, 3, 3, 3, 1, 1, none, false},     // a single tile, one output channel
      {2, 10, 14, 20, 40, 0, relu, true},
  };
  uint32_t seed = 1;
  for (int64_t m : {4, 2})
  for (const Case& c : cases)
    for (int threads : {1, 2})
      for (int64_t block : {int64_t(0), int64_t(1), int64_t(5)}) {
        const std::string what = "F(" + std::to_string(m) + "x" + std::to_string(m) + ") N" + std::to_string(c.N) +
                                 " " + std::to_string(c.H) + "x" + std::to_string(c.W) + " C" + std::to_string(c.C) +
                                 " OC" + std::to_string(c.OC) + " pad" + std::to_string(c.pad) + " threads " +
                                 std::to_string(threads) + " block " + std::to_string(block);
        SCOPED_TRACE(what);
        const int64_t OH = c.H + 2 * c.pad - 2, OW = c.W + 2 * c.pad - 2;
        const auto x = test::random_floats(size_t(c.N * c.H * c.W * c.C), seed++);
        const auto w = test::random_floats(size_t(c.OC * c.C * 9), seed++);
        const auto b = test::random_floats(size_t(c.OC), seed++);
        const auto res = test::random_floats(size_t(c.N * OH * OW * c.OC), seed++);
        const float* rp = c.residual ? res.data() : nullptr;
        const Ref r = naive(c, x, w, b, rp);
        const auto y = run_winograd(c, x, w, b, rp, threads, block, m);
        check_bound(y, r, what);
      }
}

// The bound must have teeth: a wrong transform (one weight of one output channel perturbed by 1%)
// breaks it.
TEST_P(WinogradTest, BoundCatchesAPerturbedWeight) {
  const Case c{1, 8, 8, 16, 16, 1, Activation{}, false};
  const auto x = test::random_floats(size_t(c.H * c.W * c.C), 3);
  auto w = test::random_floats(size_t(c.OC * c.C * 9), 4);
  const std::vector<float> b(size_t(c.OC), 0.f);
  const Ref r = naive(c, x, w, b, nullptr);
  w[4] *= 1.01f;
  for (int64_t m : {4, 2}) {
    const auto y = run_winograd(c, x, w, b, nullptr, 1, 0, m);
    double worst = 0;
    for (size_t i = 0; i < y.size(); ++i)
      worst = std::max(worst, std::fabs(double(y[i]) - r.y[i]) / (kEps * r.scale[i] + 1e-30));
    EXPECT_GT(worst, kWinoK) << "F(" << m << "x" << m << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, WinogradTest, ::testing::ValuesIn(test::supported_isas()), test::isa_param_name);

// ---- the planner --------------------------------------------------------------------------

TEST(WinogradPlanner, ChoosesWinogradForResNetStagesAndBlocksByTheRegisterTile) {
  const schedule::RegisterTile rt{12, 16};
  for (auto [hw, ch] : {std::pair<int64_t, int64_t>{56, 64}, {28, 128}, {14, 256}}) {
    const auto p = schedule::plan_winograd({1, hw, hw, ch, ch, hw, hw}, rt, 1 << 20, 1);
    SCOPED_TRACE(p.why);
    EXPECT_TRUE(p.use);
    EXPECT_EQ(p.tiles, ((hw + 3) / 4) * ((hw + 3) / 4));
    EXPECT_TRUE(p.block == p.tiles || p.block % rt.mr == 0);
    EXPECT_EQ(p.blocks, (p.tiles + p.block - 1) / p.block);
    EXPECT_LT(p.cost_winograd, p.cost_im2col);
    EXPECT_NE(p.why.find("winograd"), std::string::npos);
  }
}

TEST(WinogradPlanner, KeepsIm2colWhereTheTransformedWeightsDominate) {
  // 2x2 output, 512 -> 512 channels: one tile, 36 C OC transformed weights for 4 outputs.
  const auto p = schedule::plan_winograd({1, 4, 4, 512, 512, 2, 2}, {12, 16}, 1 << 20, 1);
  EXPECT_FALSE(p.use) << p.why;
  EXPECT_NE(p.why.find("im2col"), std::string::npos);
}

TEST(WinogradPlanner, TakesTheSmallerTileWhereTheWeightsStreamFromMemory) {
  const schedule::RegisterTile rt{12, 16};
  // Where a byte from memory costs 10 flops: ResNet-50's 14x14x256 layers at batch 1: F(4x4) on one
  // thread (the arithmetic dominates), F(2x2) on two (the 9.4 MB of F(4x4) weights do; F(2x2)'s are
  // 4.2 MB)
  const double dear = 10.0;
  const auto one = schedule::plan_winograd({1, 14, 14, 256, 256, 14, 14}, rt, 1 << 20, 1, 0, dear);
  const auto two = schedule::plan_winograd({1, 14, 14, 256, 256, 14, 14}, rt, 1 << 20, 2, 0, dear);
  EXPECT_TRUE(one.use && one.m == 4) << one.why;
  EXPECT_TRUE(two.use && two.m == 2) << two.why;
  EXPECT_EQ(two.tiles, 49);
  EXPECT_NE(two.why.find("F(2x2)"), std::string::npos);
  // the 7x7x512 ones: F(2x2) on one thread (im2col 9.4 MB and 2.25x the multiplications, F(4x4)
  // 37.7 MB), im2col on two, where every path waits for its weights and im2col's are the fewest
  const auto s7 = schedule::plan_winograd({1, 7, 7, 512, 512, 7, 7}, rt, 1 << 20, 1, 0, dear);
  EXPECT_TRUE(s7.use && s7.m == 2) << s7.why;
  EXPECT_EQ(s7.tiles, 16);
  EXPECT_FALSE(schedule::plan_winograd({1, 7, 7, 512, 512, 7, 7}, rt, 1 << 20, 2, 0, dear).use);
  // Where memory is half as dear (5 flops per byte), on two threads the arithmetic still decides:
  // F(4x4) for the 14x14 layers, F(2x2) for the 7x7 ones (fewer multiplications than im2col).
  const auto two5 = schedule::plan_winograd({1, 14, 14, 256, 256, 14, 14}, rt, 1 << 20, 2, 0, 5.0);
  EXPECT_TRUE(two5.use && two5.m == 4) << two5.why;
  const auto s7two5 = schedule::plan_winograd({1, 7, 7, 512, 512, 7, 7}, rt, 1 << 20, 2, 0, 5.0);
  EXPECT_TRUE(s7two5.use && s7two5.m == 2) << s7two5.why;
  // the stage 1 and 2 layers keep F(4x4) either way
  for (double cost : {dear, 5.0}) {
    EXPECT_EQ(schedule::plan_winograd({1, 56, 56, 64, 64, 56, 56}, rt, 1 << 20, 2, 0, cost).m, 4);
    EXPECT_EQ(schedule::plan_winograd({1, 28, 28, 128, 128, 28, 28}, rt, 1 << 20, 2, 0, cost).m, 4);
  }
  // forced sizes
  EXPECT_EQ(schedule::plan_winograd({1, 14, 14, 256, 256, 14, 14}, rt, 1 << 20, 2, 4).m, 4);
  EXPECT_EQ(schedule::plan_winograd({1, 9, 9, 8, 8, 9, 9}, rt, 1 << 20, 1, 2).tiles, 25);
  EXPECT_THROW(schedule::plan_winograd({1, 9, 9, 8, 8, 9, 9}, rt, 1 << 20, 1, 3), Error);
  EXPECT_THROW(schedule::plan_winograd({1, 9, 9, 8, 8, 9, 9}, rt, 1 << 20, 1, 0, 0.0), Error);
}

TEST(WinogradPlanner, KeepsTheBlockInL2WhereTheWeightsAreSmall) {
  // ResNet-50's 56x56x64 layers with a 512 KiB L2 and the 6x16 tile: a block of all 196 tiles, or
  // the old choice of 54, writes more transformed tiles (36 x T x (C + OC) floats) than half the L2
  // holds, and they go out to L3 and come back; re-reading the 590 KB of weights per block costs
  // less (measured, one process, 1 thread: blocks of 12 take 0.07-0.55 ms less than blocks of 54).
  const auto p = schedule::plan_winograd({1, 56, 56, 64, 64, 56, 56}, {6, 16}, 512 << 10, 1);
  SCOPED_TRACE(p.why);
  ASSERT_TRUE(p.use && p.m == 4);
  EXPECT_LE(36 * p.block * (64 + 64) * 4, (512 << 10) / 2);
  EXPECT_EQ(p.block % 6, 0);
  // where the weights are large (28x28x128: 2.4 MB), re-reading them per block would cost more
  // than one spill: one block of all 49 tiles
  EXPECT_EQ(schedule::plan_winograd({1, 28, 28, 128, 128, 28, 28}, {6, 16}, 512 << 10, 1).blocks, 1);
}

TEST(WinogradPlanner, SplitsBlocksOverThreads) {
  const auto p = schedule::plan_winograd({1, 56, 56, 64, 64, 56, 56}, {12, 16}, 1 << 20, 2);
  EXPECT_GE(p.blocks, 4);
}

TEST(WinogradPlanner, RefusesBadInput) {
  EXPECT_THROW(schedule::plan_winograd({1, 0, 4, 8, 8, 2, 2}, {12, 16}, 1 << 20, 1), Error);
  EXPECT_THROW(schedule::plan_winograd({1, 4, 4, 8, 8, 2, 2}, {12, 16}, 0, 1), Error);
}

// ---- residual epilogue of the other conv paths vs the unfused composition ------------------

class ResidualEpilogueTest : public test::IsaTest {};

TEST_P(ResidualEpilogueTest, EveryPathMatchesConvThenAddThenRelu) {
  struct Geo {
    Conv2dShape s;
    const char* what;
  };
  auto shape = [](int64_t N, int64_t H, int64_t W, int64_t C, int64_t OC, int64_t K, int64_t S, int64_t P, int64_t G) {
    Conv2dShape s;
    s.N = N, s.H = H, s.W = W, s.C = C, s.OC = OC, s.KH = s.KW = K, s.SH = s.SW = S;
    s.PT = s.PL = s.PB = s.PR = P;
    s.G = G;
    s.OH = (H + 2 * P - K) / S + 1, s.OW = (W + 2 * P - K) / S + 1;
    return s;
  };
  const std::vector<Geo> geos = {
      {shape(2, 7, 5, 24, 40, 1, 1, 0, 1), "pointwise"},
      {shape(1, 9, 9, 20, 36, 3, 1, 1, 1), "im2col 3x3"},
      {shape(1, 9, 7, 20, 36, 1, 2, 0, 1), "strided 1x1"},
      {shape(2, 8, 8, 3, 17, 3, 1, 1, 1), "direct"},
      {shape(1, 8, 6, 24, 24, 3, 1, 1, 24), "depthwise"},
  };
  const Activation relu{ActKind::Relu, 0.f, 0.f};
  uint32_t seed = 40;
  for (const Geo& g : geos)
    for (int64_t entries : {int64_t(0), int64_t(16384)}) {
      SCOPED_TRACE(std::string(g.what) + (entries ? " planned" : ""));
      const Conv2dShape& s = g.s;
      const auto x = test::random_floats(size_t(s.N * s.H * s.W * s.C), seed++);
      const auto w = test::random_floats(size_t(s.OC * (s.C / s.G) * s.KH * s.KW), seed++);
      const auto b = test::random_floats(size_t(s.OC), seed++);
      const size_t ny = size_t(s.N * s.OH * s.OW * s.OC);
      const auto res = test::random_floats(ny, seed++);
      // unfused: the conv alone, then Add, then Relu
      const PackedConv2d plain = pack_conv2d(s, w.data(), b.data(), Activation{}, entries);
      std::vector<float> scratch(size_t(conv2d_scratch_floats(plain)) + 1);
      std::vector<float> want(ny), got(ny, -3.f);
      conv2d_nhwc(plain, x.data(), want.data(), scratch.data());
      for (size_t i = 0; i < ny; ++i) want[i] = relu.apply(want[i] + res[i]);
      conv2d_nhwc(plain, x.data(), got.data(), scratch.data(), res.data(), relu);
      for (size_t i = 0; i < ny; ++i) ASSERT_EQ(got[i], want[i]) << "element " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(Isa, ResidualEpilogueTest, ::testing::ValuesIn(test::supported_isas()), test::isa_param_name);

// ---- ResNet-50's 3x3 layers -----------------------------------------------------------------

// Every 3x3 stride-1 conv of the built ResNet-50 (its weights, inputs uniform in [0, 1) like
// post-ReLU activations), Winograd vs the naive reference: the error in units of eps * sum |w||x|
// and relative to the largest output, printed as the table of docs/winograd.md, and bounded.
TEST(WinogradResNet50, EveryLayerWithinTheBound) {
  set_isa_override(detected_isa());
  Graph g = models::build_resnet50({});
  infer_shapes(g);
  std::printf("%-22s %8s %5s %5s %4s %8s %8s %12s %12s %12s\n", "layer", "tile", "C", "OC", "HW", "plan 1t", "plan 2t",
              "max_abs_err", "max_err/eps.S", "err/max|y|");
  uint32_t seed = 100;
  int layers = 0;
  for (const Node& n : g.nodes) {
    if (n.op != "Conv") continue;
    const Tensor* wt = g.constant(n.input(1));
    if (!wt || wt->shape[2] != 3 || n.ints("strides", {1, 1})[0] != 1) continue;
    const Shape xs = g.info(n.input(0)).shape;
    Case c{1, xs[2], xs[3], xs[1], wt->shape[0], n.ints("pads", {0, 0, 0, 0})[0], Activation{}, false};
    const auto x = test::random_floats(size_t(c.H * c.W * c.C), seed++, 0.f, 1.f);
    std::vector<float> w(wt->data<float>(), wt->data<float>() + wt->numel());
    const std::vector<float> b(size_t(c.OC), 0.f);
    const Ref r = naive(c, x, w, b, nullptr);
    for (int64_t m : {4, 2}) {
      const auto y = run_winograd(c, x, w, b, nullptr, 1, 0, m);
      double max_abs = 0, max_y = 0;
      for (size_t i = 0; i < y.size(); ++i) {
        max_abs = std::max(max_abs, std::fabs(double(y[i]) - r.y[i]));
        max_y = std::max(max_y, std::fabs(r.y[i]));
      }
      const double worst = check_bound(y, r, n.name);
      const auto p1 = plan_for(c, 1), p2 = plan_for(c, 2);
      auto planned = [](const schedule::WinogradPlan& p) {
        return p.use ? "F(" + std::to_string(p.m) + "x" + std::to_string(p.m) + ")" : std::string("im2col");
      };
      std::printf("%-22s F(%lldx%lld) %5lld %5lld %4lld %8s %8s %12.3g %12.3g %12.3g\n", n.name.c_str(), (long long)m,
                  (long long)m, (long long)c.C, (long long)c.OC, (long long)c.H, planned(p1).c_str(),
                  planned(p2).c_str(), max_abs, worst, max_abs / max_y);
      EXPECT_LT(max_abs / max_y, 1e-4) << n.name;  // well inside the 1e-3 / 1e-4 tolerances of the network tests
    }
    ++layers;
  }
  EXPECT_EQ(layers, 13);  // 3 + 3 + 5 + 2 stride-1 3x3 convs (the first 3x3 of stages 2-4 has stride 2)
  clear_isa_override();
}

}  // namespace
}  // namespace locus::kernels

namespace locus::kernels {
namespace {

// The finiteness check that sends an input with inf / NaN to the im2col path (nan_inf_test checks
// the whole Conv); every position of a ragged length, both infinities and NaN, and the largest finite.
TEST(WinogradFinite, FindsEveryInfinityAndNaN) {
  std::vector<float> x(37, 1.f);
  x[5] = 3.4028235e38f;  // FLT_MAX is finite
  EXPECT_TRUE(all_finite_f32(x.data(), int64_t(x.size())));
  for (float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                    std::numeric_limits<float>::quiet_NaN()})
    for (size_t i = 0; i < x.size(); ++i) {
      std::vector<float> y = x;
      y[i] = bad;
      EXPECT_FALSE(all_finite_f32(y.data(), int64_t(y.size()))) << i;
      EXPECT_EQ(all_finite_f32(y.data(), int64_t(i)), true) << i;  // before it
    }
}

}  // namespace
}  // namespace locus::kernels
