// The activations the micro-kernels apply in their epilogues besides the Relu / Clip clamp
// (HardSigmoid, HardSwish, Sigmoid: epilogue.h, epilogue_vec.h), on every NHWC conv path (pointwise
// GEMM, planned pointwise scan, strided 1x1, depthwise, direct, im2col, Winograd; with and without a
// residual) and every ISA this CPU has, against the unfused composition computed naively here: the
// convolution in double, then the activation from the ONNX definitions. Also the error of the
// vectorised exp / sigmoid (exp_approx) against std::exp.
//
// Tolerance: the conv's own, 1e-4 * (sum |terms| + 1e-3) as in kernels_test.cpp, times the
// activation's largest slope (HardSwish 1.5, HardSigmoid alpha, Sigmoid 0.25), plus 3e-7 for
// exp_approx and the activation's own rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "graph/error.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/epilogue_vec.h"
#include "kernels/native/gemm_microkernel.h"
#include "kernels/native/winograd.h"
#include "schedule/winograd_planner.h"
#include "tests/isa_util.h"
#include "tests/test_support.h"

namespace locus::kernels {
namespace {

using test::random_floats;

// ---- exp_approx and the sigmoid built on it ----------------------------------------------------

// A GCC vector of 4 floats (the epilogue's generic form) and plain float must both stay within
// the stated bounds (epilogue_vec.h): exp relative error < 2e-7 on [-86.5, 88]; sigmoid absolute
// error < 2e-7 everywhere and relative < 2.5e-7 for x >= -86.5.
TEST(ExpApprox, WithinTheStatedErrorOfStdExp) {
  typedef float V4 __attribute__((vector_size(16)));
  double worst_exp = 0, worst_sig_abs = 0, worst_sig_rel = 0;
  int checked = 0;
  for (double x0 = -100.0; x0 <= 100.0; x0 += 4 * 3.1e-4) {
    V4 v;
    for (int l = 0; l < 4; ++l) v[l] = float(x0 + l * 3.1e-4);
    const V4 e = exp_approx(v), s = epi_sigmoid(v);
    for (int l = 0; l < 4; ++l) {
      const double x = v[l];
      const double se = 1.0 / (1.0 + std::exp(-x));
      worst_sig_abs = std::max(worst_sig_abs, std::fabs(s[l] - se));
      EXPECT_EQ(s[l], epi_sigmoid(v[l])) << "vector and scalar forms differ at x=" << x;
      if (x < -86.5) continue;
      worst_sig_rel = std::max(worst_sig_rel, std::fabs(s[l] - se) / se);
      if (x > 88.0) continue;
      const double ee = std::exp(x);
      worst_exp = std::max(worst_exp, std::fabs(e[l] - ee) / ee);
      ++checked;
    }
  }
  EXPECT_GT(checked, 400000);
  EXPECT_LT(worst_exp, 2e-7);
  EXPECT_LT(worst_sig_abs, 2e-7);
  EXPECT_LT(worst_sig_rel, 2.5e-7);
}

TEST(ExpApprox, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(exp_approx(nan)));
  EXPECT_TRUE(std::isnan(epi_sigmoid(nan)));
  EXPECT_TRUE(std::isnan(epi_hard_swish(nan)));
  EXPECT_TRUE(std::isnan(epi_hard_sigmoid(nan, 0.2f, 0.5f)));
  EXPECT_EQ(epi_sigmoid(inf), 1.f);
  EXPECT_GE(epi_sigmoid(-inf), 0.f);
  EXPECT_LT(epi_sigmoid(-inf), 1e-38f);
  EXPECT_EQ(epi_sigmoid(0.f), 0.5f);
  EXPECT_EQ(epi_hard_swish(inf), inf);
  EXPECT_EQ(epi_hard_swish(3.f), 3.f);
  EXPECT_EQ(epi_hard_swish(-3.f), -0.f);
  EXPECT_EQ(epi_hard_sigmoid(inf, 0.2f, 0.5f), 1.f);
  EXPECT_EQ(epi_hard_sigmoid(-inf, 0.2f, 0.5f), 0.f);
}

// ---- every conv path, every ISA ----------------------------------------------------------------

// The ONNX definitions, in double.
double spec_act(const Activation& a, double x) {
  switch (a.kind) {
    case ActKind::HardSigmoid: return std::max(0.0, std::min(1.0, double(a.lo) * x + double(a.hi)));
    case ActKind::HardSwish: return x * std::max(0.0, std::min(1.0, x / 6.0 + 0.5));
    case ActKind::Sigmoid: return 1.0 / (1.0 + std::exp(-x));
    default: return x;
  }
}
double slope(const Activation& a) {
  switch (a.kind) {
    case ActKind::HardSigmoid: return std::fabs(a.lo);
    case ActKind::HardSwish: return 1.5;
    case ActKind::Sigmoid: return 0.25;
    default: return 1.0;
  }
}

std::vector<Activation> post_acts() {
  return {{ActKind::HardSigmoid, 0.2f, 0.5f},  // ONNX defaults
          {ActKind::HardSigmoid, 1.f / 6.f, 0.5f},
          {ActKind::HardSigmoid, -0.35f, 0.25f},  // negative slope: the pieces swap
          {ActKind::HardSwish, 0.f, 0.f},
          {ActKind::Sigmoid, 0.f, 0.f}};
}
std::string act_name(const Activation& a) {
  switch (a.kind) {
    case ActKind::HardSigmoid: return "HardSigmoid(" + std::to_string(a.lo) + "," + std::to_string(a.hi) + ")";
    case ActKind::HardSwish: return "HardSwish";
    case ActKind::Sigmoid: return "Sigmoid";
    default: return "none";
  }
}

Conv2dShape conv_shape(int64_t N, int64_t H, int64_t W, int64_t C, int64_t OC, int64_t K, int64_t S, int64_t pad,
                       int64_t G = 1) {
  Conv2dShape s;
  s.N = N, s.H = H, s.W = W, s.C = C, s.OC = OC;
  s.KH = s.KW = K, s.SH = s.SW = S, s.G = G;
  s.PT = s.PL = s.PB = s.PR = pad;
  s.OH = (H + 2 * pad - K) / S + 1;
  s.OW = (W + 2 * pad - K) / S + 1;
  return s;
}

struct Data {
  std::vector<float> in, w, bias, res;
  std::vector<double> pre, scale;  // the conv (+ bias + residual) in double, sum of |terms|
};

// Inputs in [-1, 1], weights in [-1, 1], biases in [-3, 3] (so outputs reach every piece of the
// activations); the naive convolution in double.
Data make_data(const Conv2dShape& s, bool residual, uint32_t seed) {
  Data d;
  const int64_t cg = s.C / s.G, ocg = s.OC / s.G;
  d.in = random_floats(s.N * s.H * s.W * s.C, seed);
  d.w = random_floats(s.OC * cg * s.KH * s.KW, seed + 1);
  d.bias = random_floats(s.OC, seed + 2, -3.f, 3.f);
  const int64_t total = s.N * s.OH * s.OW * s.OC;
  if (residual) d.res = random_floats(total, seed + 3, -2.f, 2.f);
  d.pre.resize(total), d.scale.resize(total);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t oh = 0; oh < s.OH; ++oh)
      for (int64_t ow = 0; ow < s.OW; ++ow)
        for (int64_t oc = 0; oc < s.OC; ++oc) {
          const int64_t g = oc / ocg, o = ((n * s.OH + oh) * s.OW + ow) * s.OC + oc;
          double acc = d.bias[oc], sa = std::fabs(d.bias[oc]);
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t kh = 0; kh < s.KH; ++kh)
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                const int64_t ih = oh * s.SH - s.PT + kh, iw = ow * s.SW - s.PL + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                const double t = double(d.in[((n * s.H + ih) * s.W + iw) * s.C + g * cg + c]) *
                                 d.w[((oc * cg + c) * s.KH + kh) * s.KW + kw];
                acc += t, sa += std::fabs(t);
              }
          if (residual) acc += d.res[o], sa += std::fabs(d.res[o]);
          d.pre[o] = acc, d.scale[o] = sa;
        }
  return d;
}

// got against spec_act(pre); each case must also reach both flat pieces (or the saturated tails
// of Sigmoid) and the part in between, so every branch of the activation is exercised.
void expect_act(const std::vector<float>& got, const Data& d, const Activation& act, const std::string& what) {
  ASSERT_EQ(got.size(), d.pre.size()) << what;
  int bad = 0, low = 0, mid = 0, high = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double want = spec_act(act, d.pre[i]);
    const double tol = slope(act) * 1e-4 * (d.scale[i] + 1e-3) + 3e-7 + 2e-7 * std::fabs(want);
    if (!(std::fabs(got[i] - want) <= tol) && bad++ < 5)
      ADD_FAILURE() << what << ": element " << i << " got " << got[i] << " want " << want << " (pre-activation "
                    << d.pre[i] << ", tol " << tol << ")";
    const double x = act.kind == ActKind::HardSigmoid ? act.lo * d.pre[i] + act.hi
                     : act.kind == ActKind::HardSwish ? d.pre[i] / 6.0 + 0.5
                                                      : d.pre[i] / 8.0 + 0.5;  // Sigmoid: |x| > 4 is "saturated"
    (x <= 0 ? low : x >= 1 ? high : mid)++;
  }
  EXPECT_GT(low, 0) << what << ": no output in the low piece";
  EXPECT_GT(mid, 0) << what << ": no output in the middle piece";
  EXPECT_GT(high, 0) << what << ": no output in the high piece";
}

class EpilogueActTest : public test::IsaTest {};

struct ConvCase {
  Conv2dShape s;
  ConvPath path;
  std::string what;
  int64_t buffer_entries = 0;  // > 0: the planned pointwise scan
};

// Ragged shapes on every path: odd H / W, channel counts with tails of every vector width, pads,
// strides 1 and 2, batch 2.
std::vector<ConvCase> conv_cases() {
  return {
      {conv_shape(2, 5, 7, 17, 33, 1, 1, 0), ConvPath::Pointwise, "pointwise gemm"},
      {conv_shape(1, 9, 7, 24, 40, 1, 1, 0), ConvPath::Pointwise, "pointwise planned scan", 4096},
      {conv_shape(2, 9, 7, 13, 21, 1, 2, 0), ConvPath::General, "strided 1x1"},
      // K over one k block (the residual only on the last), and a planned strided 1x1 (gathered)
      {conv_shape(1, 5, 6, 300, 35, 1, 1, 0), ConvPath::Pointwise, "pointwise gemm K=300"},
      // N = 24 and 56: an unpaired 16-wide panel with the 8-wide last one (the 16 + 8 tile on AVX-512)
      {conv_shape(2, 6, 7, 20, 24, 1, 1, 0), ConvPath::Pointwise, "pointwise gemm N=24"},
      {conv_shape(1, 7, 5, 270, 56, 1, 1, 0), ConvPath::Pointwise, "pointwise gemm N=56 K=270"},
      // 40 rows and 84 KB of B: the streamed GEMM walk (panel pairs over the whole K), ragged N
      {conv_shape(1, 5, 8, 300, 70, 1, 1, 0), ConvPath::Pointwise, "pointwise gemm streamed B"},
      {conv_shape(1, 9, 9, 24, 40, 1, 2, 0), ConvPath::General, "strided 1x1 planned scan", 4096},
      {conv_shape(1, 9, 11, 37, 37, 3, 1, 1, 37), ConvPath::Depthwise, "dw3x3 s1 p1"},
      {conv_shape(2, 10, 9, 19, 19, 3, 2, 1, 19), ConvPath::Depthwise, "dw3x3 s2 p1 batch 2"},
      {conv_shape(1, 8, 8, 70, 70, 3, 1, 1, 70), ConvPath::Depthwise, "dw3x3 s1 C=70"},
      {conv_shape(1, 11, 9, 12, 12, 5, 1, 2, 12), ConvPath::Depthwise, "dw5x5"},
      {conv_shape(2, 11, 13, 3, 19, 3, 2, 1), ConvPath::Direct, "direct 3x3 s2 (RGB stem)"},
      {conv_shape(1, 9, 8, 4, 40, 3, 1, 1), ConvPath::Direct, "direct 3x3 s1 OC=40"},
      {conv_shape(1, 9, 9, 10, 21, 5, 1, 2), ConvPath::General, "im2col 5x5"},
      {conv_shape(2, 7, 9, 12, 18, 3, 1, 1, 3), ConvPath::General, "im2col grouped 3x3"},
  };
}

TEST_P(EpilogueActTest, EveryConvPathAgainstTheUnfusedComposition) {
  uint32_t seed = 11;
  for (const ConvCase& c : conv_cases())
    for (const Activation& act : post_acts())
      for (bool residual : {false, true}) {
        const std::string what = c.what + " " + act_name(act) + (residual ? " + residual" : "");
        const Data d = make_data(c.s, residual, seed += 4);
        // With a residual the conv is packed without an activation and the activation comes after
        // the residual (conv2d_nhwc's contract).
        const PackedConv2d p = pack_conv2d(c.s, d.w.data(), d.bias.data(), residual ? Activation{} : act,
                                           c.buffer_entries, schedule::TileOrder::Scan, 2);
        ASSERT_EQ(int(p.path), int(c.path)) << what;
        if (c.buffer_entries > 0) {
          ASSERT_TRUE(p.scan) << what << ": no plan";
        }
        std::vector<float> scratch(size_t(conv2d_scratch_floats(p)) + 1);
        std::vector<float> out(d.pre.size() + 16, -777.f);
        conv2d_nhwc(p, d.in.data(), out.data(), scratch.data(), residual ? d.res.data() : nullptr,
                    residual ? act : Activation{});
        for (size_t i = d.pre.size(); i < out.size(); ++i) ASSERT_EQ(out[i], -777.f) << what << ": output overrun";
        out.resize(d.pre.size());
        expect_act(out, d, act, what);
      }
}

// A pointwise conv writing over its residual (conv2d_nhwc with residual == out, the native backend's
// in-place plan): out holds the residual on entry and ends as post_act(conv + bias + residual), on
// the plain GEMM and the planned scan, over one and two k blocks (K = 270, 300), ragged N, 1 and 2
// threads. A conv that cannot add into its output refuses.
TEST_P(EpilogueActTest, PointwiseWritesOverItsResidual) {
  uint32_t seed = 901;
  for (const ConvCase& c : conv_cases()) {
    if (c.path != ConvPath::Pointwise) continue;
    ASSERT_TRUE(conv_can_write_over_residual(c.s)) << c.what;
    for (const Activation& act : post_acts())
      for (int threads : {1, 2}) {
        const std::string what = c.what + " " + act_name(act) + " in place, threads " + std::to_string(threads);
        const Data d = make_data(c.s, true, seed += 4);
        const PackedConv2d p =
            pack_conv2d(c.s, d.w.data(), d.bias.data(), Activation{}, c.buffer_entries, schedule::TileOrder::Scan, threads);
        ASSERT_EQ(p.scan != nullptr, c.buffer_entries > 0) << what;
        std::vector<float> scratch(size_t(conv2d_scratch_floats(p)) + 1);
        std::vector<float> out(d.res);
        out.resize(d.pre.size() + 16, -777.f);
        conv2d_nhwc(p, d.in.data(), out.data(), scratch.data(), out.data(), act);
        for (size_t i = d.pre.size(); i < out.size(); ++i) ASSERT_EQ(out[i], -777.f) << what << ": output overrun";
        out.resize(d.pre.size());
        expect_act(out, d, act, what);
      }
  }
  const Conv2dShape s3 = conv_shape(1, 6, 6, 8, 8, 3, 1, 1);
  EXPECT_FALSE(conv_can_write_over_residual(s3));
  EXPECT_FALSE(conv_can_write_over_residual(conv_shape(1, 6, 6, 8, 8, 1, 2, 0)));
  EXPECT_FALSE(conv_can_write_over_residual(conv_shape(1, 6, 6, 8, 8, 1, 1, 0, 2)));
  const Data d = make_data(s3, true, 77);
  const PackedConv2d p = pack_conv2d(s3, d.w.data(), d.bias.data(), Activation{}, 0, schedule::TileOrder::Scan, 1);
  std::vector<float> scratch(size_t(conv2d_scratch_floats(p)) + 1), out(d.res);
  try {
    conv2d_nhwc(p, d.in.data(), out.data(), scratch.data(), out.data(), {});
    ADD_FAILURE() << "a 3x3 conv over its own residual did not refuse";
  } catch (const locus::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot add into it"), std::string::npos) << e.what();
  }
}

TEST_P(EpilogueActTest, WinogradOutputTransform) {
  uint32_t seed = 501;
  const GemmConfig& gc = gemm_config(active_isa());
  for (const Conv2dShape& s : {conv_shape(2, 7, 9, 5, 19, 3, 1, 1), conv_shape(1, 11, 6, 17, 33, 3, 1, 0)})
    for (const Activation& act : post_acts())
      for (bool residual : {false, true})
        for (int threads : {1, 2}) {
          const std::string what = "winograd C=" + std::to_string(s.C) + " " + act_name(act) +
                                   (residual ? " + residual" : "") + " threads " + std::to_string(threads);
          const Data d = make_data(s, residual, seed += 4);
          const schedule::WinogradPlan plan =
              schedule::plan_winograd({s.N, s.H, s.W, s.C, s.OC, s.OH, s.OW}, {gc.mr, gc.nr}, 512 * 1024, threads);
          const WinogradConv p = pack_winograd(s.N, s.H, s.W, s.C, s.OC, s.PT, s.PL, s.OH, s.OW, d.w.data(),
                                               d.bias.data(), act, plan, threads);
          std::vector<float> scratch(size_t(winograd_scratch_floats(p)));
          std::vector<float> out(d.pre.size(), -7.f);
          winograd_conv_nhwc(p, d.in.data(), residual ? d.res.data() : nullptr, out.data(), scratch.data());
          expect_act(out, d, act, what);
        }
}

INSTANTIATE_TEST_SUITE_P(Isa, EpilogueActTest, ::testing::ValuesIn(test::supported_isas()), test::isa_param_name);

}  // namespace
}  // namespace locus::kernels
