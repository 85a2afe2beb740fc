// NaN and infinities through the native kernels, per ISA the CPU has, and through whole networks on
// every backend (issue 12). The expected values come from naive references written here from the
// ONNX definitions, in double: Relu(x) = max(0, x), Clip(x) = min(max(x, lo), hi) with NaN
// propagating (Relu(NaN) = Clip(NaN) = NaN, Relu(-inf) = 0, Relu(+inf) = +inf, Clip(+-inf) = the
// bounds), sums and products by IEEE arithmetic (inf * w = +-inf by the sign of w, inf - inf = NaN),
// MaxPool NaN-propagating (a NaN in the window gives NaN; kernels/native/pool2d_nhwc.cpp says why).
// Where the reference gives NaN the kernel must give NaN, where it gives +-inf or a bound reached
// from +-inf the kernel must give exactly that, elsewhere the usual tolerance. Shapes are ragged so
// masked tails and partial register tiles are hit.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/native/activation.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/elementwise.h"
#include "kernels/native/gemm.h"
#include "kernels/native/inverted_residual.h"
#include "kernels/native/pool2d_nhwc.h"
#include "models/builders.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"
#include "tests/isa_util.h"
#include "tests/test_support.h"

namespace locus::kernels {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

Activation relu() { return {ActKind::Relu, 0.f, 0.f}; }
Activation clip(float lo, float hi) { return {ActKind::Clip, lo, hi}; }

// The ONNX activations in double, NaN propagating.
double spec_act(const Activation& a, double x) {
  if (std::isnan(x)) return x;
  if (a.kind == ActKind::Relu) return std::max(0.0, x);
  if (a.kind == ActKind::Clip) return std::min(std::max(x, double(a.lo)), double(a.hi));
  return x;
}

// What a check saw, so tests can assert that the special cases were really exercised.
struct Seen {
  int nan = 0, inf = 0, bound_from_inf = 0, finite = 0;
};

// A case must have exercised every kind of element it is about: more than the given number of
// NaN outputs, infinite outputs, finite outputs bounded by the activation from an infinite
// pre-activation, and finite ones (0: that kind is not required).
void expect_seen(const Seen& seen, int nan, int inf, int bound_from_inf, int finite) {
  if (nan) EXPECT_GT(seen.nan, nan);
  if (inf) EXPECT_GT(seen.inf, inf);
  if (bound_from_inf) EXPECT_GT(seen.bound_from_inf, bound_from_inf);
  if (finite) EXPECT_GT(seen.finite, finite);
}

// got against want (double); pre: the value before the activation (non-finite pre-activation
// values must produce exact results); scale: sum of |terms| for the tolerance of finite results.
void check_one(float got, double want, double pre, double scale, const std::string& what, size_t i, Seen& seen,
               int& bad) {
  auto fail = [&](const char* why) {
    if (bad++ < 5)
      ADD_FAILURE() << what << ": element " << i << " got " << got << " want " << want << " (pre-activation " << pre
                    << "): " << why;
  };
  if (std::isnan(want)) {
    ++seen.nan;
    if (!std::isnan(got)) fail("want NaN");
  } else if (std::isinf(want)) {
    ++seen.inf;
    if (!(double(got) == want)) fail("want exactly this infinity");
  } else if (std::isinf(pre)) {
    ++seen.bound_from_inf;
    if (!(double(got) == want)) fail("an infinity must clamp exactly to the bound");
  } else {
    ++seen.finite;
    if (!(std::fabs(double(got) - want) <= 1e-4 * (scale + 1e-3))) fail("finite result off");
  }
}

// Input values with specials sprinkled in: every `every`-th element (offset by the seed) is NaN,
// +inf or -inf in turn.
std::vector<float> with_specials(size_t n, uint32_t seed, size_t every) {
  std::vector<float> v = test::random_floats(n, seed);
  const float sp[3] = {kNaN, kInf, -kInf};
  for (size_t i = seed % every, k = 0; i < n; i += every, ++k) v[i] = sp[k % 3];
  return v;
}

using test::IsaTest;
using test::isa_param_name;

// ---- GEMM epilogue ------------------------------------------------------------------------------

// Rows of A by kind (row r: r % 6): a NaN; a +inf; a -inf; +inf and -inf (NaN where the weights'
// signs make inf - inf, +-inf elsewhere); two +inf (same); all finite. A single infinity gives
// +-inf by the sign of each column's weight, so the same row hits both bounds of the clamp.
std::vector<float> gemm_a(int64_t M, int64_t K, uint32_t seed) {
  std::vector<float> a = test::random_floats(M * K, seed);
  for (int64_t r = 0; r < M; ++r) {
    const int64_t k0 = (r * 7) % K, k1 = (k0 + 1) % K;
    float* row = a.data() + r * K;
    switch (r % 6) {
      case 0: row[k0] = kNaN; break;
      case 1: row[k0] = kInf; break;
      case 2: row[k0] = -kInf; break;
      case 3: row[k0] = kInf, row[k1] = K > 1 ? -kInf : row[k1]; break;
      case 4: row[k0] = kInf, row[k1] = kInf; break;
      default: break;
    }
  }
  return a;
}

void run_gemm_case(int64_t M, int64_t N, int64_t K, bool with_bias, const Activation& act, uint32_t seed,
                   Seen& seen) {
  const std::string what = "gemm M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
                           (with_bias ? " bias" : "") + " act=" + std::to_string(int(act.kind));
  const std::vector<float> a = gemm_a(M, K, seed);
  const std::vector<float> b = test::random_floats(K * N, seed + 1);
  const std::vector<float> bias = test::random_floats(N, seed + 2);
  std::vector<float> c(M * N, -777.f);
  const PackedB pb = pack_b(K, N, b.data(), N, false);
  gemm_f32(M, a.data(), K, pb, c.data(), N, with_bias ? bias.data() : nullptr, act);
  int bad = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = with_bias ? bias[n] : 0.0, scale = with_bias ? std::fabs(bias[n]) : 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double t = double(a[m * K + k]) * double(b[k * N + n]);
        acc += t;
        scale += std::fabs(t);
      }
      check_one(c[m * N + n], spec_act(act, acc), acc, scale, what, size_t(m * N + n), seen, bad);
    }
}

class GemmNanTest : public IsaTest {};

TEST_P(GemmNanTest, SpecialsThroughEveryEpilogue) {
  Seen seen;
  uint32_t seed = 1;
  const Activation acts[] = {Activation{}, relu(), clip(0.f, 6.f), clip(-0.5f, 0.25f)};
  for (int64_t M : {1, 5, 6, 7, 12, 13, 29})
    for (int64_t N : {1, 7, 8, 9, 16, 17, 40})
      for (int64_t K : {1, 3, 17}) {
        const Activation& act = acts[seed % 4];
        run_gemm_case(M, N, K, seed % 3 != 0, act, seed, seen);
        ++seed;
        if (HasFailure()) return;
      }
  // long K: the epilogue comes after several K blocks accumulated through C
  for (const Activation& act : acts) run_gemm_case(14, 37, 700, true, act, seed++, seen);
  expect_seen(seen, 100, 100, 100, 100);
}

INSTANTIATE_TEST_SUITE_P(Isa, GemmNanTest, ::testing::ValuesIn(test::supported_isas()), isa_param_name);

// ---- convolutions ---------------------------------------------------------------------------------

Conv2dShape conv_shape(int64_t N, int64_t H, int64_t W, int64_t C, int64_t OC, int64_t K, int64_t S, int64_t pad,
                       int64_t G) {
  Conv2dShape s;
  s.N = N, s.H = H, s.W = W, s.C = C, s.OC = OC, s.KH = s.KW = K, s.SH = s.SW = S, s.G = G;
  s.PT = s.PL = s.PB = s.PR = pad;
  s.OH = (H + 2 * pad - K) / S + 1;
  s.OW = (W + 2 * pad - K) / S + 1;
  return s;
}

// Naive NHWC convolution in double (zero padding contributes nothing), OIHW weights; also the
// pre-activation values and the |terms| sums.
void naive_conv(const Conv2dShape& s, const std::vector<double>& in, const std::vector<float>& w,
                const std::vector<float>& bias, const Activation& act, std::vector<double>& out,
                std::vector<double>& pre, std::vector<double>& scale) {
  const int64_t cg = s.C / s.G, ocg = s.OC / s.G;
  out.assign(s.N * s.OH * s.OW * s.OC, 0.0);
  pre = scale = out;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t oh = 0; oh < s.OH; ++oh)
      for (int64_t ow = 0; ow < s.OW; ++ow)
        for (int64_t oc = 0; oc < s.OC; ++oc) {
          const int64_t g = oc / ocg;
          double acc = bias.empty() ? 0.0 : bias[oc], sa = std::fabs(acc);
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t kh = 0; kh < s.KH; ++kh)
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                const int64_t ih = oh * s.SH - s.PT + kh, iw = ow * s.SW - s.PL + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                const double t = in[((n * s.H + ih) * s.W + iw) * s.C + g * cg + c] *
                                 double(w[((oc * cg + c) * s.KH + kh) * s.KW + kw]);
                acc += t;
                sa += std::fabs(t);
              }
          const int64_t o = ((n * s.OH + oh) * s.OW + ow) * s.OC + oc;
          pre[o] = acc, scale[o] = sa, out[o] = spec_act(act, acc);
        }
}

// buffer_entries > 0: a 1x1 conv runs tiled (pointwise_scan) instead of through gemm_f32.
void run_conv_case(const Conv2dShape& s, const Activation& act, ConvPath want_path, size_t every, uint32_t seed,
                   const std::string& what, Seen& seen, int64_t buffer_entries = 0) {
  const std::vector<float> in = with_specials(s.N * s.H * s.W * s.C, seed, every);
  const std::vector<float> w = test::random_floats(s.OC * (s.C / s.G) * s.KH * s.KW, seed + 1);
  const std::vector<float> bias = test::random_floats(s.OC, seed + 2);
  std::vector<double> want, pre, scale;
  naive_conv(s, std::vector<double>(in.begin(), in.end()), w, bias, act, want, pre, scale);
  const PackedConv2d p = pack_conv2d(s, w.data(), bias.data(), act, buffer_entries);
  ASSERT_EQ(int(p.path), int(want_path)) << what;
  ASSERT_EQ(p.scan != nullptr, buffer_entries > 0) << what;
  std::vector<float> scratch(conv2d_scratch_floats(p) + 1);
  std::vector<float> out(want.size(), -777.f);
  conv2d_nhwc(p, in.data(), out.data(), scratch.data());
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) check_one(out[i], want[i], pre[i], scale[i], what, i, seen, bad);
}

class ConvNanTest : public IsaTest {};

TEST_P(ConvNanTest, Pointwise) {
  Seen seen;
  // 1x1: a special in any of the pixel's input channels reaches every output channel
  run_conv_case(conv_shape(2, 5, 7, 17, 33, 1, 1, 0, 1), clip(0.f, 6.f), ConvPath::Pointwise, 97, 1, "pw clip", seen);
  run_conv_case(conv_shape(1, 6, 5, 24, 9, 1, 1, 0, 1), relu(), ConvPath::Pointwise, 61, 2, "pw relu", seen);
  run_conv_case(conv_shape(1, 4, 9, 8, 20, 1, 1, 0, 1), Activation{}, ConvPath::Pointwise, 45, 3, "pw none", seen);
  // tiled through the cache plan (pointwise_scan), as the real model's last 1x1 runs
  run_conv_case(conv_shape(1, 7, 7, 40, 70, 1, 1, 0, 1), clip(0.f, 6.f), ConvPath::Pointwise, 173, 4, "pw scan", seen,
                2048);
  expect_seen(seen, 50, 5, 50, 50);
}

// Depthwise: channel counts that hit every block and masked tail of the AVX-512 (16/32/48/64) and
// AVX2 (16/8/masked) kernels, 3x3 strides 1 and 2 (the sliding-window form), 5x5, runs of pixels
// and single border pixels.
TEST_P(ConvNanTest, Depthwise) {
  Seen seen;
  uint32_t seed = 10;
  int i = 0;
  for (int64_t C : {1, 7, 17, 37, 70, 144})
    for (int64_t K : {3, 5})
      for (int64_t S : {1, 2}) {
        const Activation act = i % 3 == 0 ? clip(0.f, 6.f) : i % 3 == 1 ? relu() : clip(-0.5f, 0.5f);
        const int64_t W = std::vector<int64_t>{5, 12, 19, 30}[i % 4], H = 7 + i % 3;
        run_conv_case(conv_shape(2, H, W, C, C, K, S, K / 2, C), act, ConvPath::Depthwise, 13 + i % 5, seed++,
                      "dw C=" + std::to_string(C) + " k" + std::to_string(K) + " s" + std::to_string(S), seen);
        ++i;
        if (HasFailure()) return;
      }
  expect_seen(seen, 100, 100, 100, 100);
}

// The direct path (the RGB stem: small C * KH * KW, conv_direct_fits): 32- and 16-wide blocks and masked tails.
TEST_P(ConvNanTest, DirectStem) {
  Seen seen;
  run_conv_case(conv_shape(1, 17, 15, 3, 32, 3, 2, 1, 1), clip(0.f, 6.f), ConvPath::Direct, 101, 20, "stem 32", seen);
  run_conv_case(conv_shape(1, 13, 11, 3, 13, 3, 1, 1, 1), relu(), ConvPath::Direct, 53, 21, "stem 13", seen);
  run_conv_case(conv_shape(2, 9, 10, 2, 40, 3, 2, 1, 1), clip(-0.5f, 0.5f), ConvPath::Direct, 37, 22, "stem 40", seen);
  expect_seen(seen, 50, 0, 20, 50);
}

// im2col + GEMM (K > 64).
TEST_P(ConvNanTest, General) {
  Seen seen;
  run_conv_case(conv_shape(1, 9, 8, 8, 20, 3, 1, 1, 1), clip(0.f, 6.f), ConvPath::General, 211, 30, "general", seen);
  run_conv_case(conv_shape(1, 7, 7, 6, 12, 3, 2, 1, 2), relu(), ConvPath::General, 151, 31, "grouped", seen);
  expect_seen(seen, 20, 0, 0, 20);
}

INSTANTIATE_TEST_SUITE_P(Isa, ConvNanTest, ::testing::ValuesIn(test::supported_isas()), isa_param_name);

// ---- fused inverted-residual block ------------------------------------------------------------

class FusedNanTest : public IsaTest {};

// expand 1x1 + Clip -> depthwise 3x3 + Clip -> project 1x1 (+ residual), against the naive convs
// chained in double.
TEST_P(FusedNanTest, InvertedResidualBlock) {
  struct Case {
    int64_t N, H, W, C, E, OC, S;
    bool residual;
    Activation dw_act;
  };
  uint32_t seed = 40;
  Seen seen;
  for (const Case& k : {Case{1, 9, 10, 5, 37, 5, 1, true, clip(0.f, 6.f)}, Case{2, 11, 7, 6, 50, 13, 2, false, relu()},
                        Case{1, 10, 9, 16, 96, 16, 1, true, clip(0.f, 6.f)}})
    for (int64_t S : {int64_t(3000), int64_t(65536)}) {
      InvertedResidualShape s;
      s.N = k.N, s.H = k.H, s.W = k.W, s.C = k.C, s.E = k.E, s.OC = k.OC;
      s.SH = s.SW = k.S, s.residual = k.residual;
      const std::vector<float> x = with_specials(s.N * s.H * s.W * s.C, seed, 67);
      const auto we = test::random_floats(s.E * s.C, seed + 1), be = test::random_floats(s.E, seed + 2);
      const auto wd = test::random_floats(s.E * 9, seed + 3), bd = test::random_floats(s.E, seed + 4);
      const auto wp = test::random_floats(s.OC * s.E, seed + 5), bp = test::random_floats(s.OC, seed + 6);
      ++seed;
      const Activation ae = clip(0.f, 6.f), ad = k.dw_act, ap{};
      std::vector<double> e, d, want, pre, scale;
      naive_conv(conv_shape(s.N, s.H, s.W, s.C, s.E, 1, 1, 0, 1), std::vector<double>(x.begin(), x.end()), we, be, ae,
                 e, pre, scale);
      naive_conv(conv_shape(s.N, s.H, s.W, s.E, s.E, 3, k.S, 1, s.E), e, wd, bd, ad, d, pre, scale);
      naive_conv(conv_shape(s.N, s.OH(), s.OW(), s.E, s.OC, 1, 1, 0, 1), d, wp, bp, ap, want, pre, scale);
      if (s.residual)
        for (size_t i = 0; i < want.size(); ++i) want[i] += x[i], pre[i] = want[i];
      InvertedResidualWeights w;
      w.expand = we.data(), w.expand_bias = be.data(), w.expand_act = ae;
      w.dw = wd.data(), w.dw_bias = bd.data(), w.dw_act = ad;
      w.project = wp.data(), w.project_bias = bp.data(), w.project_act = ap;
      for (int threads : {1, 2}) {
        const PackedInvertedResidual p = pack_inverted_residual(s, w, S, threads);
        omp_set_num_threads(threads);
        std::vector<float> scratch(inverted_residual_scratch_floats(p));
        std::vector<float> got(want.size(), -777.f);
        inverted_residual_nhwc(p, x.data(), got.data(), scratch.data());
        int bad = 0;
        const std::string what = "fused C=" + std::to_string(s.C) + " E=" + std::to_string(s.E) +
                                 " S=" + std::to_string(S) + " threads=" + std::to_string(threads);
        // the intermediate stages round to float in the kernel: a looser tolerance on finite values
        for (size_t i = 0; i < want.size(); ++i)
          check_one(got[i], want[i], pre[i], std::fabs(want[i]) * 10 + 10, what, i, seen, bad);
        if (HasFailure()) return;
      }
    }
  omp_set_num_threads(omp_get_num_procs());
  expect_seen(seen, 100, 0, 0, 100);
}

INSTANTIATE_TEST_SUITE_P(Isa, FusedNanTest, ::testing::ValuesIn(test::supported_isas()), isa_param_name);

// ---- element-wise, pooling, softmax (one code path for every ISA) ------------------------------

const std::vector<float> kSpecials = {kNaN, -kNaN, kInf, -kInf, -2.f, -0.25f, 0.f, 0.5f, 3.f, 7.f};

TEST(NanInf, StandaloneActivation) {
  // 37 elements: ragged for any vector width
  std::vector<float> x;
  for (int i = 0; i < 37; ++i) x.push_back(kSpecials[size_t(i) % kSpecials.size()]);
  for (const Activation& act : {relu(), clip(0.f, 6.f), clip(-1.f, 1.f), clip(1.f, -1.f)}) {  // lo > hi: hi
    std::vector<float> y(x.size());
    activation_f32(act, x.data(), y.data(), int64_t(x.size()));
    Seen seen;
    int bad = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      check_one(y[i], spec_act(act, x[i]), x[i], 0.0, "activation_f32", i, seen, bad);
      check_one(act.apply(x[i]), spec_act(act, x[i]), x[i], 0.0, "Activation::apply", i, seen, bad);
    }
    EXPECT_GT(seen.nan, 0);
    EXPECT_GT(seen.bound_from_inf + seen.inf, 0);
  }
  // the spec values spelled out
  EXPECT_TRUE(std::isnan(relu().apply(kNaN)));
  EXPECT_EQ(relu().apply(-kInf), 0.f);
  EXPECT_EQ(relu().apply(kInf), kInf);
  EXPECT_TRUE(std::isnan(clip(0.f, 6.f).apply(kNaN)));
  EXPECT_EQ(clip(0.f, 6.f).apply(kInf), 6.f);
  EXPECT_EQ(clip(0.f, 6.f).apply(-kInf), 0.f);
}

TEST(NanInf, BinaryAndAffineWithActivation) {
  const int64_t n = 45;
  std::vector<float> a(n), b = test::random_floats(n, 5);
  for (int64_t i = 0; i < n; ++i) a[i] = kSpecials[size_t(i) % kSpecials.size()];
  for (const Activation& act : {Activation{}, relu(), clip(0.f, 6.f)}) {
    Seen seen;
    int bad = 0;
    std::vector<float> y(n);
    binary_same_f32(BinaryOp::Add, n, a.data(), b.data(), y.data(), act);
    for (int64_t i = 0; i < n; ++i) {
      const double pre = double(a[i]) + b[i];
      check_one(y[i], spec_act(act, pre), pre, std::fabs(pre), "add", size_t(i), seen, bad);
    }
    // broadcast: [5, 9] * [1, 9], through the strided path
    const std::vector<int64_t> shape = {5, 9};
    std::vector<float> yb(n);
    binary_f32(BinaryOp::Mul, shape, StridedF32{a.data(), {9, 1}}, StridedF32{b.data(), {0, 1}}, yb.data(), {9, 1},
               act);
    for (int64_t i = 0; i < n; ++i) {
      const double pre = double(a[i]) * b[i % 9];
      check_one(yb[i], spec_act(act, pre), pre, std::fabs(pre), "mul broadcast", size_t(i), seen, bad);
    }
    // channel affine: 5 rows of 9 channels
    std::vector<float> ya(n);
    channel_affine_f32(5, 9, a.data(), b.data(), b.data() + 9, ya.data(), act);
    for (int64_t i = 0; i < n; ++i) {
      const double pre = double(a[i]) * b[i % 9] + b[9 + i % 9];
      check_one(ya[i], spec_act(act, pre), pre, std::fabs(pre) + 1, "channel affine", size_t(i), seen, bad);
    }
    EXPECT_GT(seen.nan, 5);
    EXPECT_GT(seen.inf + seen.bound_from_inf, 5);
  }
}

class MaxPoolNanTest : public IsaTest {};
INSTANTIATE_TEST_SUITE_P(Isa, MaxPoolNanTest, ::testing::ValuesIn(test::supported_isas()), isa_param_name);

TEST_P(MaxPoolNanTest, PropagatesNaN) {
  // 3x3 stride 2 pad 1 over 9x11, C = 19: a NaN anywhere in a window gives NaN; infinities are
  // ordinary values (+inf wins, -inf loses unless alone)
  Pool2dShape s;
  s.N = 2, s.H = 9, s.W = 11, s.C = 19, s.KH = s.KW = 3, s.SH = s.SW = 2, s.PT = s.PL = s.PB = s.PR = 1;
  s.OH = (s.H + 2 - 3) / 2 + 1, s.OW = (s.W + 2 - 3) / 2 + 1;
  const std::vector<float> in = with_specials(s.N * s.H * s.W * s.C, 7, 29);
  std::vector<float> out(s.N * s.OH * s.OW * s.C);
  maxpool2d_nhwc(s, in.data(), out.data());
  Seen seen;
  int bad = 0;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t oh = 0; oh < s.OH; ++oh)
      for (int64_t ow = 0; ow < s.OW; ++ow)
        for (int64_t c = 0; c < s.C; ++c) {
          double m = -INFINITY;
          bool nan = false;
          for (int64_t kh = 0; kh < 3; ++kh)
            for (int64_t kw = 0; kw < 3; ++kw) {
              const int64_t ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
              if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
              const double v = in[((n * s.H + ih) * s.W + iw) * s.C + c];
              nan |= std::isnan(v);
              m = std::max(m, v);
            }
          const size_t o = size_t(((n * s.OH + oh) * s.OW + ow) * s.C + c);
          const double want = nan ? double(kNaN) : m;
          check_one(out[o], want, want, 0.0, "maxpool", o, seen, bad);
        }
  expect_seen(seen, 10, 10, 0, 10);
}

TEST(NanInf, AveragePools) {
  Pool2dShape s;
  s.N = 1, s.H = 7, s.W = 6, s.C = 13, s.KH = s.KW = 2, s.SH = s.SW = 2;
  s.OH = 3, s.OW = 3;
  const std::vector<float> in = with_specials(s.N * s.H * s.W * s.C, 3, 41);
  std::vector<float> out(s.OH * s.OW * s.C), g(s.C);
  avgpool2d_nhwc(s, in.data(), out.data());
  global_avgpool_nhwc(1, s.H * s.W, s.C, in.data(), g.data());
  Seen seen;
  int bad = 0;
  for (int64_t oh = 0; oh < s.OH; ++oh)
    for (int64_t ow = 0; ow < s.OW; ++ow)
      for (int64_t c = 0; c < s.C; ++c) {
        double sum = 0, sa = 0;
        for (int64_t kh = 0; kh < 2; ++kh)
          for (int64_t kw = 0; kw < 2; ++kw) {
            const double v = in[((oh * 2 + kh) * s.W + ow * 2 + kw) * s.C + c];
            sum += v, sa += std::fabs(v);
          }
        const size_t o = size_t((oh * s.OW + ow) * s.C + c);
        check_one(out[o], sum / 4, sum / 4, sa, "avgpool", o, seen, bad);
      }
  for (int64_t c = 0; c < s.C; ++c) {
    double sum = 0, sa = 0;
    for (int64_t p = 0; p < s.H * s.W; ++p) sum += in[p * s.C + c], sa += std::fabs(in[p * s.C + c]);
    check_one(g[c], sum / double(s.H * s.W), sum, sa, "global avgpool", size_t(c), seen, bad);
  }
  expect_seen(seen, 5, 5, 0, 5);
}

TEST(NanInf, Softmax) {
  // rows: a NaN (all NaN); -inf entries (exactly 0 there, the rest a distribution); all -inf
  // (0 / 0: NaN); a +inf (NaN at that entry: inf / inf); finite
  const int64_t cols = 21;
  std::vector<float> x = test::random_floats(5 * cols, 9);
  x[0 * cols + 4] = kNaN;
  x[1 * cols + 0] = -kInf, x[1 * cols + 20] = -kInf;
  for (int64_t c = 0; c < cols; ++c) x[2 * cols + c] = -kInf;
  x[3 * cols + 7] = kInf;
  std::vector<float> y(x.size());
  softmax_rows_f32(5, cols, x.data(), y.data());
  for (int64_t c = 0; c < cols; ++c) EXPECT_TRUE(std::isnan(y[c])) << "NaN row, col " << c;
  double sum = 0;
  for (int64_t c = 0; c < cols; ++c) {
    EXPECT_TRUE(std::isfinite(y[cols + c])) << c;
    sum += y[cols + c];
  }
  EXPECT_EQ(y[cols + 0], 0.f);
  EXPECT_EQ(y[cols + 20], 0.f);
  EXPECT_NEAR(sum, 1.0, 1e-5);
  for (int64_t c = 0; c < cols; ++c) EXPECT_TRUE(std::isnan(y[2 * cols + c])) << "all -inf row, col " << c;
  EXPECT_TRUE(std::isnan(y[3 * cols + 7]));
  for (int64_t c = 0; c < cols; ++c) EXPECT_TRUE(std::isfinite(y[4 * cols + c]));
}

}  // namespace
}  // namespace locus::kernels

// ---- single ops through the backends ------------------------------------------------------------

namespace locus {
namespace {

// Each op alone in a graph, on an input with NaN, +inf and -inf sprinkled in: the native backends
// against the reference backend element by element (same NaN positions, the same infinities,
// finite values close); the oneDNN backend gives all-NaN outputs for a NaN input (its documented
// behaviour, runtime/onednn/onednn_backend.cpp).
TEST(BackendOpsNanInf, NativeMatchesReference) {
  using test::GraphBuilder;
  using Ints = std::vector<int64_t>;
  struct Op {
    std::string name;
    Graph g;
  };
  std::vector<Op> ops;
  auto one = [&](const std::string& name, auto&& build) {
    GraphBuilder b;
    const std::string x = b.input("x", {1, 19, 9, 11});
    ops.push_back({name, b.finish({build(b, x)})});
  };
  one("Relu", [](GraphBuilder& b, const std::string& x) { return b.node("Relu", {x}); });
  one("Clip", [](GraphBuilder& b, const std::string& x) {
    return b.node("Clip", {x, b.constant("lo", Tensor::scalar_f32(0.f)), b.constant("hi", Tensor::scalar_f32(6.f))});
  });
  one("MaxPool", [](GraphBuilder& b, const std::string& x) {
    return b.node("MaxPool", {x}, {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}});
  });
  one("GlobalAveragePool", [](GraphBuilder& b, const std::string& x) { return b.node("GlobalAveragePool", {x}); });
  one("Add", [](GraphBuilder& b, const std::string& x) {
    return b.node("Add", {x, b.random_constant("y", {1, 19, 1, 11}, 5)});
  });
  one("Conv+Relu", [](GraphBuilder& b, const std::string& x) {
    return b.node("Relu", {b.node("Conv", {x, b.random_constant("w", {24, 19, 3, 3}, 6), b.random_constant("bc", {24}, 7)},
                                  {{"pads", Ints{1, 1, 1, 1}}})});
  });
  one("Gemm", [](GraphBuilder& b, const std::string& x) {
    const std::string f = b.node("Flatten", {b.node("GlobalAveragePool", {x})});
    return b.node("Gemm", {f, b.random_constant("wg", {37, 19}, 8), b.random_constant("cg", {37}, 9)},
                  {{"transB", int64_t(1)}});
  });
  one("MatMul+Softmax", [](GraphBuilder& b, const std::string& x) {
    const std::string m = b.node("MatMul", {x, b.random_constant("wm", {11, 13}, 10)});
    return b.node("Softmax", {m}, {{"axis", int64_t(3)}});
  });

  Tensor x(DType::F32, {1, 19, 9, 11});
  {
    const std::vector<float> v = kernels::with_specials(size_t(x.numel()), 4, 37);
    std::copy(v.begin(), v.end(), x.data<float>());
  }
  for (const Op& op : ops) {
    SessionOptions ro;
    ro.backend_name = "reference";
    ro.pipeline.optimize = false;
    const Tensor want = Session::from_graph(op.g, ro).run({{"x", x}})[0];
    int64_t want_nan = 0;
    for (int64_t i = 0; i < want.numel(); ++i) want_nan += std::isnan(want.data<float>()[i]);
    EXPECT_GT(want_nan, 0) << op.name << ": the input's NaNs must reach the reference output";
    for (const char* backend : {"native", "native-unfused"}) {
      SessionOptions o;
      o.backend_name = backend;
      const Tensor got = Session::from_graph(op.g, o).run({{"x", x}})[0];
      ASSERT_EQ(got.shape, want.shape) << op.name;
      int bad = 0;
      for (int64_t i = 0; i < want.numel() && bad < 5; ++i) {
        const float gv = got.data<float>()[i], wv = want.data<float>()[i];
        const bool ok = std::isnan(wv) ? std::isnan(gv)
                        : std::isinf(wv) ? gv == wv
                                         : std::fabs(double(gv) - wv) <= 1e-4 + 1e-4 * std::fabs(wv);
        if (!ok) {
          ++bad;
          ADD_FAILURE() << op.name << " on " << backend << ": element " << i << " got " << gv << " want " << wv;
        }
      }
    }
    SessionOptions oo;
    oo.backend_name = "onednn";
    const Tensor got = Session::from_graph(op.g, oo).run({{"x", x}})[0];
    for (int64_t i = 0; i < got.numel(); ++i) ASSERT_TRUE(std::isnan(got.data<float>()[i])) << op.name << " onednn " << i;
  }
}

// ---- whole networks ---------------------------------------------------------------------------

// The real MobileNetV2 when ../shared/models has it, else the in-code one.
Graph mobilenet() {
  const std::string dir = test::mobilenet_fp32_dir();
  if (!dir.empty()) {
    SessionOptions o;
    o.pipeline.optimize = false;  // the graph as imported; each backend's session optimises it its own way
    return Session::from_file(dir + "/mobilenetv2-12-fp32-from-int8.onnx", o).graph();
  }
  return models::build_mobilenet_v2({});
}

std::vector<bool> nan_mask(const Tensor& t) {
  std::vector<bool> m(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) m[size_t(i)] = std::isnan(t.data<float>()[i]);
  return m;
}

class NetworkNanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_ = new Graph(mobilenet());
    for (const char* b : {"reference", "native", "native-unfused", "onednn"}) {
      SessionOptions o;
      o.backend_name = b;
      sessions_.emplace_back(b, new Session(Session::from_graph(*g_, o)));
    }
  }
  static void TearDownTestSuite() {
    for (auto& [n, s] : sessions_) delete s;
    sessions_.clear();
    delete g_;
  }
  // Runs x through every backend; the reference's output first.
  static std::vector<std::pair<std::string, Tensor>> run_all(const Tensor& x) {
    std::vector<std::pair<std::string, Tensor>> r;
    const std::string in = sessions_[0].second->input_names()[0];
    for (auto& [n, s] : sessions_) r.emplace_back(n, s->run({{in, x}})[0]);
    return r;
  }
  static inline Graph* g_ = nullptr;
  static inline std::vector<std::pair<std::string, Session*>> sessions_;
};

Tensor image(uint32_t seed) {
  Tensor x(DType::F32, {1, 3, 224, 224});
  const auto v = test::random_floats(size_t(x.numel()), seed, 0.f, 1.f);
  std::copy(v.begin(), v.end(), x.data<float>());
  return x;
}

TEST_F(NetworkNanTest, AllNaNImageGivesAllNaNLogits) {
  Tensor x(DType::F32, {1, 3, 224, 224});
  std::fill_n(x.data<float>(), x.numel(), std::numeric_limits<float>::quiet_NaN());
  for (auto& [backend, y] : run_all(x)) {
    ASSERT_EQ(y.numel(), 1000) << backend;
    int64_t nans = 0;
    for (int64_t i = 0; i < y.numel(); ++i) nans += std::isnan(y.data<float>()[i]);
    EXPECT_EQ(nans, y.numel()) << backend;
  }
}

// One special pixel value (one channel of one pixel): every backend's NaN mask equals the
// reference's. A NaN reaches every logit (the receptive field of the logits is the whole image);
// one +-inf stays finite after the stem (inf * w is +-inf, which ReLU6 clamps to 0 or 6), so the
// logits are finite.
TEST_F(NetworkNanTest, OneSpecialPixelMatchesReferenceNaNMask) {
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};
  uint32_t seed = 3;
  for (float v : specials) {
    Tensor x = image(seed++);
    x.data<float>()[(1 * 224 + 100) * 224 + 37] = v;  // channel 1, row 100, column 37
    auto outs = run_all(x);
    const std::vector<bool> want = nan_mask(outs[0].second);
    int64_t ref_nans = 0;
    for (bool b : want) ref_nans += b;
    EXPECT_EQ(ref_nans, std::isnan(v) ? int64_t(want.size()) : 0) << "reference, special " << v;
    for (size_t k = 1; k < outs.size(); ++k)
      EXPECT_TRUE(nan_mask(outs[k].second) == want) << outs[k].first << " vs reference, special " << v;
  }
}

// A finite image stays finite everywhere (the NaN handling adds no NaN of its own).
TEST_F(NetworkNanTest, FiniteImageGivesFiniteLogits) {
  for (auto& [backend, y] : run_all(image(42)))
    for (int64_t i = 0; i < y.numel(); ++i) ASSERT_TRUE(std::isfinite(y.data<float>()[i])) << backend << " " << i;
}

}  // namespace
}  // namespace locus
