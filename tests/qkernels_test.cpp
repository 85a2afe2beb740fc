// The int8 kernels (qgemm.h, qdwconv.h, qconv.h, int8_peak.h) against naive references written here from the
// ONNX QLinearMatMul / QLinearConv definitions in integer arithmetic:
//   acc = sum_k (a - a_zero) * (w - w_zero[n]) + bias[n]                   (exact, int64)
//   y   = clamp(round_half_even(float(acc) * multiplier[n]) + y_zero, qmin, qmax)
// with multiplier[n] = a_scale * w_scale[n] / y_scale in float (ONNX Runtime's requantization,
// docs/int8.md "Rounding"; the reference clamps after rounding, the kernels before, which must agree).
// Every comparison is bit-exact. Each test runs under every ISA this CPU has (tests/isa_util.h).
#include <gtest/gtest.h>

#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/native/cpu_features.h"
#include "kernels/native/elementwise.h"
#include "kernels/native/int8_peak.h"
#include "kernels/native/qconv.h"
#include "kernels/native/qdwconv.h"
#include "kernels/native/qelementwise.h"
#include "kernels/native/qgemm.h"
#include "kernels/native/qgemm_microkernel.h"
#include "tests/error_util.h"
#include "tests/isa_util.h"
#include "tests/test_support.h"

namespace locus::kernels {
namespace {

using test::IsaTest;
using test::isa_param_name;
using test::supported_isas;

std::vector<uint8_t> random_u8(size_t n, uint32_t seed, int lo = 0, int hi = 255) {
  return test::random_ints<uint8_t>(n, seed, lo, hi);
}

std::vector<int8_t> random_s8(size_t n, uint32_t seed, int lo = -128, int hi = 127) {
  return test::random_ints<int8_t>(n, seed, lo, hi);
}

std::vector<int32_t> random_s32(size_t n, uint32_t seed, int lo, int hi) {
  return test::random_ints<int32_t>(n, seed, lo, hi);
}

// The spec's output of one channel n from its exact accumulator.
int32_t ref_requant(int64_t acc, const QuantParams& q, int64_t n) {
  const float ws = q.w_scale[q.w_scale.size() == 1 ? 0 : n];
  const float mult = q.a_scale * ws / q.y_scale;
  const float v = static_cast<float>(acc) * mult;
  int64_t y = static_cast<int64_t>(std::nearbyint(v)) + q.y_zero;
  if (y < q.qmin) y = q.qmin;
  if (y > q.qmax) y = q.qmax;
  return static_cast<int32_t>(y);
}

int32_t wzero(const QuantParams& q, int64_t n) {
  return q.w_zero.empty() ? 0 : q.w_zero[q.w_zero.size() == 1 ? 0 : n];
}

int32_t out_value(const uint8_t* y, bool s8) { return s8 ? int32_t(static_cast<int8_t>(*y)) : int32_t(*y); }

// Naive QLinearMatMul: A M x K (u8), W K x N (s8, row-major), bias N (nullable).
std::vector<int32_t> ref_qgemm(int64_t M, int64_t N, int64_t K, const uint8_t* a, const int8_t* w,
                               const int32_t* bias, const QuantParams& q) {
  std::vector<int32_t> y(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int64_t acc = bias ? bias[n] : 0;
      for (int64_t k = 0; k < K; ++k) acc += (int64_t(a[m * K + k]) - q.a_zero) * (int64_t(w[k * N + n]) - wzero(q, n));
      y[m * N + n] = ref_requant(acc, q, n);
    }
  return y;
}

// A y_scale that spreads the outputs over the u8 range for K-term sums of these inputs.
float spread_scale(int64_t K, float a_scale, float w_scale) { return a_scale * w_scale * 40.f * std::sqrt(float(K)) + 1e-3f; }

struct GemmCase {
  int64_t M, N, K;
  QuantParams q;
  bool bias = true;
  bool trans = false;
  int threads = 1;
  int64_t ldy_pad = 0;
};

// Runs qgemm on a case, compares with the reference bit-exactly; returns the outputs.
std::vector<int32_t> check_gemm(const GemmCase& c, uint32_t seed) {
  const int64_t M = c.M, N = c.N, K = c.K;
  const auto a = random_u8(M * K, seed);
  const auto w = random_s8(K * N, seed + 1);
  const auto bias = random_s32(N, seed + 2, -20000, 20000);
  std::vector<int8_t> wt(K * N);  // N x K for trans
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) wt[n * K + k] = w[k * N + n];
  const PackedQB pb = c.trans ? pack_qgemm_b(K, N, wt.data(), K, true, c.bias ? bias.data() : nullptr, c.q)
                              : pack_qgemm_b(K, N, w.data(), N, false, c.bias ? bias.data() : nullptr, c.q);
  const int64_t ldy = N + c.ldy_pad;
  std::vector<uint8_t> y(M * ldy, 0xA5);
  qgemm_u8s8(M, a.data(), K, pb, y.data(), ldy, c.threads);
  const auto want = ref_qgemm(M, N, K, a.data(), w.data(), c.bias ? bias.data() : nullptr, c.q);
  std::vector<int32_t> got(M * N);
  int bad = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      got[m * N + n] = out_value(&y[m * ldy + n], c.q.s8_out);
      if (got[m * N + n] != want[m * N + n] && ++bad <= 5)
        ADD_FAILURE() << "M=" << M << " N=" << N << " K=" << K << " (" << m << ", " << n << "): got "
                      << got[m * N + n] << " want " << want[m * N + n];
    }
    for (int64_t n = N; n < ldy; ++n)
      if (y[m * ldy + n] != 0xA5 && ++bad <= 5) ADD_FAILURE() << "wrote past N at row " << m;
  }
  return got;
}

QuantParams per_tensor(float a_scale, int32_t a_zero, float w_scale, float y_scale, int32_t y_zero) {
  QuantParams q;
  q.a_scale = a_scale;
  q.a_zero = a_zero;
  q.w_scale = {w_scale};
  q.y_scale = y_scale;
  q.y_zero = y_zero;
  return q;
}

QuantParams per_channel(int64_t N, uint32_t seed, int32_t a_zero, int32_t y_zero, int64_t K) {
  QuantParams q;
  q.a_scale = 0.02f;
  q.a_zero = a_zero;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(0.002f, 0.02f);
  q.w_scale.resize(N);
  for (auto& s : q.w_scale) s = d(rng);
  q.y_scale = spread_scale(K, q.a_scale, 0.01f);
  q.y_zero = y_zero;
  return q;
}

class QGemmTest : public IsaTest {};

TEST_P(QGemmTest, ConfigNamesTheIsa) {
  const QGemmConfig& cfg = qgemm_config(active_isa());
  const std::string name = cfg.name;
  // the VNNI kernel's register tile is two 16-column panels (12 x 32); the others' one panel
  const bool vnni = GetParam() == Isa::Avx512 && cpu_has_avx512vnni();
  EXPECT_EQ(name, std::string("qu8s8-gemm-") + std::to_string(cfg.mr) + "x" + std::to_string(cfg.nr * (vnni ? 2 : 1)) +
                      "-" + (vnni ? "avx512vnni" : GetParam() == Isa::Avx2 || GetParam() == Isa::Avx512 ? "avx2" : "generic"));
  EXPECT_EQ(cfg.nr, kQGemmNR);
}

TEST_P(QGemmTest, RaggedShapesPerTensor) {
  uint32_t seed = 1;
  for (int64_t M : {1, 3, 5, 13, 26})
    for (int64_t N : {1, 7, 16, 17, 32, 40})
      for (int64_t K : {1, 3, 4, 5, 8, 27, 130}) {
        GemmCase c{M, N, K, per_tensor(0.05f, int32_t(seed * 37 % 256), 0.01f, 1.f, int32_t(seed * 11 % 256))};
        c.q.y_scale = spread_scale(K, 0.05f, 0.01f);
        c.bias = seed % 3 != 0;
        c.trans = seed % 2 == 0;
        SCOPED_TRACE(testing::Message() << "M=" << M << " N=" << N << " K=" << K);
        if (N == 32) {  // rows of exactly two panels: the saturating pair store's adjacent-rows form
          const std::vector<int8_t> w0(size_t(K * N), 0);
          EXPECT_TRUE(pack_qgemm_b(K, N, w0.data(), N, false, nullptr, c.q).sat_narrow);
        }
        check_gemm(c, seed++);
      }
}

TEST_P(QGemmTest, PerChannelAndWeightZeroPoints) {
  uint32_t seed = 100;
  for (int64_t M : {2, 12, 31})
    for (int64_t N : {5, 16, 35})
      for (int64_t K : {7, 24, 67}) {
        for (int zw_kind = 0; zw_kind < 3; ++zw_kind) {
          GemmCase c{M, N, K, per_channel(N, seed, 200, 30, K)};
          if (zw_kind == 1) c.q.w_zero = {-7};  // per-tensor nonzero
          if (zw_kind == 2) c.q.w_zero = random_s32(N, seed + 9, -128, 127);
          SCOPED_TRACE(testing::Message() << "M=" << M << " N=" << N << " K=" << K << " zw_kind=" << zw_kind);
          check_gemm(c, seed++);
        }
      }
}

TEST_P(QGemmTest, SaturatesAtBothEnds) {
  // a small output scale: most outputs clamp, at 0 and at 255 (u8) or -128 and 127 (s8)
  for (bool s8 : {false, true}) {
    GemmCase c{29, 33, 45, per_tensor(0.05f, 128, 0.01f, 0.0005f, s8 ? 0 : 128)};
    c.q.s8_out = s8;
    c.q.qmin = s8 ? -128 : 0;
    c.q.qmax = s8 ? 127 : 255;
    const auto y = check_gemm(c, 7);
    int lo = 0, hi = 0;
    for (int32_t v : y) {
      lo += v == c.q.qmin;
      hi += v == c.q.qmax;
    }
    EXPECT_GT(lo, 50) << "s8=" << s8;
    EXPECT_GT(hi, 50) << "s8=" << s8;
  }
}

TEST_P(QGemmTest, ActivationClampRelu6) {
  // ReLU6 survives quantization as the clamp [y_zero, y_zero + round(6 / y_scale)]
  GemmCase c{17, 24, 40, per_tensor(0.05f, 100, 0.01f, 0.f, 10)};
  c.q.y_scale = spread_scale(40, 0.05f, 0.01f);
  c.q.qmin = 10;
  c.q.qmax = 10 + int32_t(std::nearbyint(6.f / c.q.y_scale));
  ASSERT_LT(c.q.qmax, 255);
  const auto y = check_gemm(c, 21);
  int lo = 0, hi = 0;
  for (int32_t v : y) {
    EXPECT_GE(v, c.q.qmin);
    EXPECT_LE(v, c.q.qmax);
    lo += v == c.q.qmin;
    hi += v == c.q.qmax;
  }
  EXPECT_GT(lo, 0);
  EXPECT_GT(hi, 0);
}

TEST_P(QGemmTest, RoundsHalfToEven) {
  // multiplier exactly 0.5 (1 * 0.5 / 1): acc = 1, 3, 5, -1, -3 -> 0.5, 1.5, 2.5, -0.5, -1.5 round to
  // 0, 2, 2, 0, -2 (ties to even, like cvtps2dq / ORT), + y_zero 10
  QuantParams q = per_tensor(1.f, 0, 0.5f, 1.f, 10);
  const int8_t w[5] = {1, 3, 5, -1, -3};  // K = 1, N = 5
  const uint8_t a[1] = {1};
  const PackedQB pb = pack_qgemm_b(1, 5, w, 5, false, nullptr, q);
  uint8_t y[5] = {};
  qgemm_u8s8(1, a, 1, pb, y, 5);
  const uint8_t want[5] = {10, 12, 12, 10, 8};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(y[i], want[i]) << i;
}

TEST_P(QGemmTest, ExtremePairsDoNotSaturate) {
  // u8 255 x s8 127 / -128: a vpmaddubsw pair sum (64770 / -65280) would saturate at s16; the sums
  // must be exact: 8 * 255 * 127 = 259080 -> 259080 / 4096 = 63.25 -> 63; 8 * 255 * -128 = -261120
  // -> -63.75 -> -64; + y_zero 128
  QuantParams q = per_tensor(1.f, 0, 1.f, 4096.f, 128);
  const int8_t w[8 * 2] = {127, -128, 127, -128, 127, -128, 127, -128, 127, -128, 127, -128, 127, -128, 127, -128};
  const std::vector<uint8_t> a(3 * 8, 255);
  const PackedQB pb = pack_qgemm_b(8, 2, w, 2, false, nullptr, q);
  uint8_t y[3 * 2] = {};
  qgemm_u8s8(3, a.data(), 8, pb, y, 2);
  for (int m = 0; m < 3; ++m) {
    EXPECT_EQ(y[m * 2], 191) << m;
    EXPECT_EQ(y[m * 2 + 1], 64) << m;
  }
}

TEST_P(QGemmTest, MobileNetShapesThreadsAndStride) {
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{196, 64, 384}, {49, 160, 960}, {3136, 24, 144}}) {
    GemmCase c{M, N, K, per_channel(N, uint32_t(M), 3, 0, K)};
    c.threads = 2;
    c.ldy_pad = 5;
    c.trans = true;
    SCOPED_TRACE(testing::Message() << "M=" << M << " N=" << N << " K=" << K);
    check_gemm(c, uint32_t(N));
  }
}

TEST_P(QGemmTest, StreamedWeights) {
  // At most 64 rows and W of at least 64 KiB: on VNNI the driver runs the prefetching kernel
  // (qgemm.cpp). Every row split, a ragged N, K not a multiple of 4, 1 and 2 threads.
  for (int64_t M : {1, 4, 13, 49, 64})
    for (int threads : {1, 2}) {
      GemmCase c{M, 70, 1001, per_channel(70, uint32_t(M), 7, 3, 1001)};
      c.threads = threads;
      SCOPED_TRACE(testing::Message() << "M=" << M << " threads=" << threads);
      check_gemm(c, uint32_t(600 + M));
    }
}

TEST_P(QGemmTest, CalledInsideParallelRegion) {
  GemmCase c{50, 20, 33, per_channel(20, 5, 9, 4, 33)};
  c.threads = 2;
#pragma omp parallel num_threads(2)
  {
    check_gemm(c, 1234);
  }
}

TEST_P(QGemmTest, RowsMatchWholeGemm) {
  const int64_t M = 23, N = 21, K = 19;
  const QuantParams q = per_channel(N, 8, 77, 5, K);
  const auto a = random_u8(M * K, 3);
  const auto w = random_s8(K * N, 4);
  const PackedQB pb = pack_qgemm_b(K, N, w.data(), N, false, nullptr, q);
  std::vector<uint8_t> y1(M * N), y2(M * N);
  qgemm_u8s8(M, a.data(), K, pb, y1.data(), N);
  qgemm_u8s8_rows(0, 7, a.data(), K, pb, y2.data(), N);
  qgemm_u8s8_rows(7, M, a.data(), K, pb, y2.data(), N);
  EXPECT_EQ(y1, y2);
  const auto want = ref_qgemm(M, N, K, a.data(), w.data(), nullptr, q);
  for (int64_t i = 0; i < M * N; ++i) ASSERT_EQ(int32_t(y1[i]), want[i]) << i;
}

TEST_P(QGemmTest, SaturatingNarrowAtBothEnds) {
  // multipliers just below 1 with the whole output type as the clamp: the kernels may narrow with
  // saturating packs (QEpilogue::sat_narrow); accumulators far outside the type, up to +-2e9 through
  // the bias, must still give qmin / qmax exactly, and the ragged row groups the per-row path
  // (N = 40: a pair of whole panels, stored 32 bytes per row, and a ragged one; with and without
  // weight zero points)
  for (bool s8 : {false, true})
    for (int64_t M : {1, 4, 13, 30}) {
      const int64_t N = 40, K = 64;
      QuantParams q = per_tensor(1.f, 90, 0.999f, 1.f, s8 ? -5 : 77);
      q.w_scale = {0.999f, 0.5f, 0.001f, 0.9f};
      q.w_scale.resize(N, 0.75f);
      if (M % 2 == 1) q.w_zero = random_s32(N, uint32_t(M + 3), -3, 3);
      q.s8_out = s8;
      q.qmin = s8 ? -128 : 0;
      q.qmax = s8 ? 127 : 255;
      const auto a = random_u8(M * K, uint32_t(M));
      const auto w = random_s8(K * N, uint32_t(M + 1));
      std::vector<int32_t> bias = random_s32(N, uint32_t(M + 2), -300, 300);
      for (int64_t n = 0; n < N; n += 3) bias[n] = n % 2 ? 2000000000 : -2000000000;
      const PackedQB pb = pack_qgemm_b(K, N, w.data(), N, false, bias.data(), q);
      EXPECT_TRUE(pb.sat_narrow);
      std::vector<uint8_t> y(M * N);
      qgemm_u8s8(M, a.data(), K, pb, y.data(), N, 1);
      const auto want = ref_qgemm(M, N, K, a.data(), w.data(), bias.data(), q);
      int lo = 0, hi = 0;
      for (int64_t i = 0; i < M * N; ++i) {
        ASSERT_EQ(out_value(&y[i], s8), want[i]) << "s8=" << s8 << " M=" << M << " element " << i;
        lo += want[i] == q.qmin, hi += want[i] == q.qmax;
      }
      EXPECT_GT(lo, 0);
      EXPECT_GT(hi, 0);
    }
  // a multiplier of 1 (or a narrower clamp) keeps the float clamp
  QuantParams q = per_tensor(1.f, 0, 1.f, 1.f, 0);
  const std::vector<int8_t> w(16, 1);
  EXPECT_FALSE(pack_qgemm_b(1, 16, w.data(), 16, false, nullptr, q).sat_narrow);
  q.w_scale = {0.5f};
  q.qmax = 200;
  EXPECT_FALSE(pack_qgemm_b(1, 16, w.data(), 16, false, nullptr, q).sat_narrow);
}

TEST_P(QGemmTest, RaggedLastPanelStoresOnlyItsColumns) {
  // every remainder of the 16-column panel, alone and after one or two whole panels (the VNNI
  // kernel stores the ragged panel under a mask, QGemmConfig::masked_tail), both epilogues (the
  // saturating narrow with the whole type, the float clamp with a ReLU6-like one), rows in every
  // group size: the bytes between N and the row stride stay untouched
  uint32_t seed = 600;
  for (int64_t N : {1, 2, 3, 5, 8, 9, 12, 15, 17, 24, 31, 33, 40, 47})
    for (int64_t M : {4, 12, 25})
      for (bool clamp : {false, true}) {
        GemmCase c{M, N, 24, per_channel(N, seed, int32_t(seed * 7 % 256), 9, 24)};
        if (clamp) c.q.qmin = 9, c.q.qmax = 120;
        c.ldy_pad = 16;
        c.trans = seed % 2 == 0;
        SCOPED_TRACE(testing::Message() << "M=" << M << " N=" << N << " clamp=" << clamp);
        check_gemm(c, seed++);
      }
}

INSTANTIATE_TEST_SUITE_P(Isa, QGemmTest, ::testing::ValuesIn(supported_isas()), isa_param_name);

TEST(QGemm, BadParametersAreOneLineErrors) {
  const int8_t w[6] = {};
  auto pack = [&](const QuantParams& q) { (void)pack_qgemm_b(2, 3, w, 3, false, nullptr, q); };
  QuantParams q = per_tensor(0.1f, 0, 0.1f, 0.1f, 0);
  q.a_scale = 0.f;
  test::expect_one_line_error([&] { pack(q); }, {"input scale", "positive"});
  q = per_tensor(0.1f, 0, 0.1f, std::nanf(""), 0);
  test::expect_one_line_error([&] { pack(q); }, {"output scale"});
  q = per_tensor(0.1f, 0, 0.1f, 0.1f, 0);
  q.w_scale = {0.1f, 0.2f};
  test::expect_one_line_error([&] { pack(q); }, {"2 weight scales for 3 output channels"});
  q.w_scale = {0.1f, -1.f, 0.1f};
  test::expect_one_line_error([&] { pack(q); }, {"weight scale -1"});
  q = per_tensor(0.1f, 256, 0.1f, 0.1f, 0);
  test::expect_one_line_error([&] { pack(q); }, {"input zero point 256"});
  q = per_tensor(0.1f, 0, 0.1f, 0.1f, 0);
  q.w_zero = {1, 2};
  test::expect_one_line_error([&] { pack(q); }, {"2 weight zero points"});
  q.w_zero = {300};
  test::expect_one_line_error([&] { pack(q); }, {"weight zero point 300"});
  q = per_tensor(0.1f, 0, 0.1f, 0.1f, 0);
  q.qmin = 10;
  q.qmax = 5;
  test::expect_one_line_error([&] { pack(q); }, {"output clamp"});
  q = per_tensor(0.1f, 0, 0.1f, 0.1f, 200);
  q.s8_out = true;
  test::expect_one_line_error([&] { pack(q); }, {"output zero point 200"});
}

// ---- depthwise ----------------------------------------------------------------------------------

Conv2dShape dw_shape(int64_t N, int64_t H, int64_t W, int64_t C, int64_t K, int64_t S, int64_t P, int64_t D = 1) {
  Conv2dShape s;
  s.N = N;
  s.H = H;
  s.W = W;
  s.C = s.OC = s.G = C;
  s.KH = s.KW = K;
  s.SH = s.SW = S;
  s.DH = s.DW = D;
  s.PT = s.PL = s.PB = s.PR = P;
  s.OH = (H + 2 * P - (K - 1) * D - 1) / S + 1;
  s.OW = (W + 2 * P - (K - 1) * D - 1) / S + 1;
  return s;
}

// Naive QLinearConv with s.G groups, weights [OC][C/G][KH][KW] (ONNX order): output channel o reads
// input channels [g * C/G, (g + 1) * C/G) of its group g = o / (OC/G); padding taps read a_zero (so
// contribute 0).
std::vector<int32_t> ref_qconv_grouped(const Conv2dShape& s, const uint8_t* x, const int8_t* w, const int32_t* bias,
                                       const QuantParams& q) {
  const int64_t KC = s.C / s.G, OCg = s.OC / s.G;
  std::vector<int32_t> y(s.N * s.OH * s.OW * s.OC);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t oh = 0; oh < s.OH; ++oh)
      for (int64_t ow = 0; ow < s.OW; ++ow)
        for (int64_t o = 0; o < s.OC; ++o) {
          int64_t acc = bias ? bias[o] : 0;
          for (int64_t kc = 0; kc < KC; ++kc)
            for (int64_t kh = 0; kh < s.KH; ++kh)
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                const int64_t c = o / OCg * KC + kc;
                const int64_t ih = oh * s.SH - s.PT + kh * s.DH, iw = ow * s.SW - s.PL + kw * s.DW;
                const int64_t xv = (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W)
                                       ? x[((n * s.H + ih) * s.W + iw) * s.C + c]
                                       : q.a_zero;
                acc += (xv - q.a_zero) * (int64_t(w[((o * KC + kc) * s.KH + kh) * s.KW + kw]) - wzero(q, o));
              }
          y[((n * s.OH + oh) * s.OW + ow) * s.OC + o] = ref_requant(acc, q, o);
        }
  return y;
}

// Naive depthwise QLinearConv (group = C = OC).
std::vector<int32_t> ref_qdw(const Conv2dShape& s, const uint8_t* x, const int8_t* w, const int32_t* bias,
                             const QuantParams& q) {
  return ref_qconv_grouped(s, x, w, bias, q);
}

std::vector<int32_t> check_dw(const Conv2dShape& s, const QuantParams& q, uint32_t seed, int threads = 1,
                              bool with_bias = true) {
  const auto x = random_u8(s.N * s.H * s.W * s.C, seed);
  const auto w = random_s8(s.C * s.KH * s.KW, seed + 1);
  const auto bias = random_s32(s.C, seed + 2, -5000, 5000);
  const PackedQDwConv p = pack_qdwconv(s, w.data(), with_bias ? bias.data() : nullptr, q, threads);
  std::vector<uint8_t> y(s.N * s.OH * s.OW * s.C, 0xA5);
  qdwconv_nhwc(p, x.data(), y.data());
  const auto want = ref_qdw(s, x.data(), w.data(), with_bias ? bias.data() : nullptr, q);
  std::vector<int32_t> got(y.size());
  int bad = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    got[i] = out_value(&y[i], q.s8_out);
    if (got[i] != want[i] && ++bad <= 5)
      ADD_FAILURE() << "element " << i << " (c=" << i % s.C << "): got " << got[i] << " want " << want[i];
  }
  return got;
}

class QDwConvTest : public IsaTest {};

// Runs a test body with the AVX-512 depthwise kernel's VBMI form on (the default where the CPU has
// it) and off (the vpdpwssd form of CPUs without VBMI); other ISAs ignore the switch.
template <class F>
void with_and_without_vbmi(const F& body) {
  for (bool vbmi : {true, false}) {
    SCOPED_TRACE(vbmi ? "vbmi form" : "vpdpwssd form");
    set_qdwconv_vbmi(vbmi);
    body();
  }
  set_qdwconv_vbmi(true);
}

TEST_P(QDwConvTest, MicroKernelNamesTheIsa) {
  const std::string name = qdwconv_microkernel_name(active_isa());
  if (GetParam() == Isa::Avx512 && cpu_has_avx512vnni())
    EXPECT_EQ(name, "qu8s8-dwconv-16c8p-avx512vnni");
  else if (has_avx2(GetParam()))
    EXPECT_EQ(name, "qu8s8-dwconv-8c4p-avx2");
  else
    EXPECT_EQ(name, "qu8s8-dwconv-generic");
}

TEST_P(QDwConvTest, Stride1And2RaggedChannels) {
  uint32_t seed = 1;
  for (int64_t S : {1, 2})
    for (int64_t C : {1, 5, 16, 17, 40})
      for (auto [H, W] : {std::pair<int64_t, int64_t>{1, 1}, {5, 7}, {12, 9}}) {
        QuantParams q = per_tensor(0.03f, int32_t(seed * 29 % 256), 0.02f, 0.f, int32_t(seed * 13 % 256));
        q.y_scale = spread_scale(9, 0.03f, 0.02f);
        SCOPED_TRACE(testing::Message() << "S=" << S << " C=" << C << " H=" << H << " W=" << W);
        check_dw(dw_shape(2, H, W, C, 3, S, 1), q, seed, 1, seed % 3 != 0);
        ++seed;
      }
}

TEST_P(QDwConvTest, PerChannelWeightZeroPointsGeneralKernels) {
  uint32_t seed = 50;
  for (auto [K, S, P, D] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{5, 1, 2, 1}, {5, 2, 2, 1}, {3, 1, 2, 2},
                            {1, 1, 0, 1}, {7, 3, 3, 1}, {3, 2, 0, 1}}) {
    for (int zw_kind = 0; zw_kind < 3; ++zw_kind) {
      const int64_t C = 24;
      QuantParams q = per_channel(C, seed, 117, 60, K * K);
      if (zw_kind == 1) q.w_zero = {5};
      if (zw_kind == 2) q.w_zero = random_s32(C, seed + 3, -128, 127);
      SCOPED_TRACE(testing::Message() << "K=" << K << " S=" << S << " P=" << P << " D=" << D << " zw=" << zw_kind);
      check_dw(dw_shape(1, 11, 10, C, K, S, P, D), q, seed++);
    }
  }
}

TEST_P(QDwConvTest, SaturatesAtBothEndsAndS8Output) {
  for (bool s8 : {false, true}) {
    QuantParams q = per_tensor(0.05f, 128, 0.02f, 0.0002f, s8 ? 0 : 128);
    q.s8_out = s8;
    q.qmin = s8 ? -128 : 0;
    q.qmax = s8 ? 127 : 255;
    const auto y = check_dw(dw_shape(1, 9, 9, 32, 3, 1, 1), q, 77);
    int lo = 0, hi = 0;
    for (int32_t v : y) {
      lo += v == q.qmin;
      hi += v == q.qmax;
    }
    EXPECT_GT(lo, 100) << "s8=" << s8;
    EXPECT_GT(hi, 100) << "s8=" << s8;
  }
}

TEST_P(QDwConvTest, SaturatingNarrowAtBothEnds) {
  with_and_without_vbmi([] {
  // multipliers below 1, the whole type as the clamp (the saturating-pack epilogue), sums far outside it
  uint32_t seed = 400;
  for (bool s8 : {false, true})
    for (int64_t W : {3, 9, 21}) {
      QuantParams q = per_tensor(1.f, 100, 0.9f, 1.f, s8 ? 3 : 77);
      q.s8_out = s8;
      q.qmin = s8 ? -128 : 0;
      q.qmax = s8 ? 127 : 255;
      const Conv2dShape s = dw_shape(1, 5, W, 35, 3, W == 9 ? 2 : 1, 1);
      const auto w = random_s8(35 * 9, 1);
      EXPECT_TRUE(pack_qdwconv(s, w.data(), nullptr, q).sat_narrow);
      const auto y = check_dw(s, q, seed++);
      int lo = 0, hi = 0;
      for (int32_t v : y) lo += v == q.qmin, hi += v == q.qmax;
      EXPECT_GT(lo, 10) << "s8=" << s8 << " W=" << W;
      EXPECT_GT(hi, 10) << "s8=" << s8 << " W=" << W;
    }
  });
}

TEST_P(QDwConvTest, MobileNetShapesTwoThreads) {
  check_dw(dw_shape(1, 56, 56, 144, 3, 2, 1), per_channel(144, 3, 0, 0, 9), 5, 2);
  check_dw(dw_shape(1, 14, 14, 384, 3, 1, 1), per_channel(384, 4, 3, 0, 9), 6, 2);
}

TEST_P(QDwConvTest, PaddingContributesZero) {
  // all inputs equal the zero point: every output is requant(bias) whatever the padding
  const Conv2dShape s = dw_shape(1, 4, 4, 20, 3, 1, 1);
  QuantParams q = per_tensor(0.1f, 77, 0.05f, 0.05f, 3);
  const std::vector<uint8_t> x(4 * 4 * 20, 77);
  const auto w = random_s8(20 * 9, 9);
  const auto bias = random_s32(20, 10, -100, 100);
  const PackedQDwConv p = pack_qdwconv(s, w.data(), bias.data(), q);
  std::vector<uint8_t> y(16 * 20);
  qdwconv_nhwc(p, x.data(), y.data());
  for (int64_t i = 0; i < 16 * 20; ++i) ASSERT_EQ(int32_t(y[i]), ref_requant(bias[i % 20], q, i % 20)) << i;
}

TEST_P(QDwConvTest, RowDriverReadsRowsFromAnywhere) {
  // input rows stored in reverse order in a separate buffer (as a fused kernel's band would hold
  // them): qdepthwise_row through row_of gives the same bytes as qdwconv_nhwc and the reference
  const Conv2dShape s = dw_shape(1, 9, 8, 21, 3, 2, 1);
  const QuantParams q = per_channel(21, 12, 90, 7, 9);
  const auto x = random_u8(9 * 8 * 21, 13);
  const auto w = random_s8(21 * 9, 14);
  const PackedQDwConv p = pack_qdwconv(s, w.data(), nullptr, q);
  std::vector<uint8_t> rev(x.size());
  for (int64_t h = 0; h < 9; ++h) std::memcpy(&rev[(8 - h) * 8 * 21], &x[h * 8 * 21], 8 * 21);
  std::vector<uint8_t> y1(s.OH * s.OW * 21), y2(y1.size());
  qdwconv_nhwc(p, x.data(), y1.data());
  std::vector<const uint8_t*> taps(9);
  const QEpilogue ep = qdwconv_epilogue(p);
  for (int64_t oh = 0; oh < s.OH; ++oh)
    qdepthwise_row(p, dw_interior(s), qdwconv_microkernel_for(active_isa()), ep,
                   [&](int64_t ih) -> const uint8_t* { return ih >= 0 && ih < 9 ? &rev[(8 - ih) * 8 * 21] : nullptr; },
                   oh, taps.data(), y2.data() + oh * s.OW * 21);
  EXPECT_EQ(y1, y2);
  const auto want = ref_qdw(s, x.data(), w.data(), nullptr, q);
  for (size_t i = 0; i < y2.size(); ++i) ASSERT_EQ(int32_t(y2[i]), want[i]) << i;
}

TEST_P(QDwConvTest, RowDriverPaddedRowsAndWideOutput) {
  with_and_without_vbmi([] {
  // rows that carry their padding columns (padded_rows: one micro-kernel call per row, border pixels
  // included) written with a pixel stride wider than C: the bytes of qdwconv_nhwc and the reference,
  // nothing written between the pixels; symmetric, asymmetric (TF SAME), 5x5 and dilated geometries
  uint32_t seed = 700;
  for (int variant = 0; variant < 5; ++variant)
    for (int64_t C : {5, 16, 35}) {
      Conv2dShape s = variant == 0 ? dw_shape(1, 6, 9, C, 3, 1, 1)
                      : variant == 1 ? dw_shape(1, 7, 10, C, 3, 2, 0)
                      : variant == 2 ? dw_shape(1, 6, 8, C, 5, 1, 2)
                      : variant == 3 ? dw_shape(1, 7, 9, C, 3, 1, 2, 2)
                                     : dw_shape(1, 5, 3, C, 3, 1, 1);
      if (variant == 1) {  // SAME at stride 2: right and bottom only
        s.PB = s.PR = 1;
        s.OH = (s.H + 1 - 3) / 2 + 1, s.OW = (s.W + 1 - 3) / 2 + 1;
      }
      QuantParams q = per_channel(C, seed, int32_t(seed * 13 % 256), 11, s.KH * s.KW);
      if (variant == 2) q.w_zero = random_s32(C, seed + 3, -9, 9);
      const auto x = random_u8(s.H * s.W * C, seed);
      const auto w = random_s8(C * s.KH * s.KW, seed + 1);
      const PackedQDwConv p = pack_qdwconv(s, w.data(), nullptr, q);
      const int64_t wp = (s.PL + s.W + s.PR) * C, ldo = C + 7;
      std::vector<uint8_t> padded(size_t(s.H * wp), uint8_t(q.a_zero));
      for (int64_t h = 0; h < s.H; ++h) std::memcpy(&padded[h * wp + s.PL * C], &x[h * s.W * C], size_t(s.W * C));
      std::vector<uint8_t> want(s.OH * s.OW * C), got(s.OH * s.OW * ldo, 0xA5);
      qdwconv_nhwc(p, x.data(), want.data());
      std::vector<const uint8_t*> taps(s.KH * s.KW);
      for (int64_t oh = 0; oh < s.OH; ++oh)
        qdepthwise_row(p, dw_interior(s), qdwconv_microkernel_for(active_isa()), qdwconv_epilogue(p),
                       [&](int64_t ih) -> const uint8_t* { return ih >= 0 && ih < s.H ? &padded[ih * wp + s.PL * C] : nullptr; },
                       oh, taps.data(), got.data() + oh * s.OW * ldo, ldo, /*padded_rows=*/true);
      const auto ref = ref_qdw(s, x.data(), w.data(), nullptr, q);
      SCOPED_TRACE(testing::Message() << "variant " << variant << " C=" << C);
      for (int64_t i = 0; i < s.OH * s.OW; ++i) {
        for (int64_t c = 0; c < C; ++c) {
          ASSERT_EQ(got[i * ldo + c], want[i * C + c]) << "pixel " << i << " c " << c;
          ASSERT_EQ(out_value(&got[i * ldo + c], false), ref[i * C + c]) << "pixel " << i << " c " << c;
        }
        for (int64_t c = C; c < ldo; ++c) ASSERT_EQ(got[i * ldo + c], 0xA5) << "pixel " << i << ": wrote into the gap";
      }
      ++seed;
    }
  });
}

TEST_P(QDwConvTest, RegisterBlocked3x3EveryRunLength) {
  with_and_without_vbmi([] {
  // the register-blocked 3x3 path (stride 1 and 2): interior runs of 1..21 pixels (every remainder of
  // the 8-, 4-, 2- and 1-pixel passes), channel tails, pairs of whole channel blocks (the VBMI form
  // without weight zero points: C = 33, 64), with and without pads and weight zero points
  uint32_t seed = 300;
  for (int64_t S : {1, 2})
    for (int64_t P : {0, 1})
      for (int64_t W = 3; W <= 2 * 21 + 1; W += S == 1 ? 1 : 3)
        for (int64_t C : {3, 16, 33, 64}) {
          QuantParams q = per_channel(C, seed, int32_t(seed * 37 % 256), int32_t(seed * 11 % 256), 9);
          if (seed % 3 == 1) q.w_zero = random_s32(C, seed + 5, -128, 127);
          SCOPED_TRACE(testing::Message() << "S=" << S << " P=" << P << " W=" << W << " C=" << C);
          check_dw(dw_shape(1, 4, W, C, 3, S, P), q, seed, 1, seed % 2 == 0);
          ++seed;
        }
  });
}

// The micro-kernel on its own, taps built by hand: npix pixels, tap t of pixel i at taps[t] + i * step.
// Expected sums from the spec over the bytes those taps address.
void check_dw_microkernel(int64_t C, int64_t npix, const std::vector<const uint8_t*>& taps, int64_t step,
                          const std::vector<int8_t>& w /* [T][C] */, const QuantParams& q, uint32_t seed,
                          int64_t gap = 0 /* output pixel stride C + gap */) {
  const int64_t T = int64_t(taps.size()), Cp = (C + 15) / 16 * 16;
  const auto bias = random_s32(C, seed, -3000, 3000);
  // the epilogue's fields as pack_qdwconv sets them: the folded bias
  std::vector<int8_t> wp(T * Cp, 0);
  std::vector<int32_t> fb(Cp, 0), wz(Cp, 0);
  std::vector<float> sc(Cp, 0.f);
  for (int64_t c = 0; c < C; ++c) {
    int64_t sum = 0;
    for (int64_t t = 0; t < T; ++t) wp[t * Cp + c] = w[t * C + c], sum += w[t * C + c];
    fb[c] = int32_t(bias[c] - int64_t(q.a_zero) * sum + T * int64_t(q.a_zero) * wzero(q, c));
    wz[c] = wzero(q, c);
    sc[c] = requant_multiplier(q.a_scale, q.w_scale[q.w_scale.size() == 1 ? 0 : c], q.y_scale);
  }
  QEpilogue ep;
  ep.bias = fb.data();
  ep.scale = sc.data();
  ep.w_zero = q.w_zero.empty() ? nullptr : wz.data();
  ep.lo = float(q.qmin - q.y_zero);
  ep.hi = float(q.qmax - q.y_zero);
  ep.y_zero = q.y_zero;
  ep.s8_out = q.s8_out;
  ep.sat_narrow = saturating_narrow_ok(sc.data(), Cp, q.qmin, q.qmax, q.s8_out);
  const int64_t ldo = C + gap;
  std::vector<uint8_t> y(npix * ldo + 16, 0xA5);
  qdwconv_microkernel_for(active_isa())(C, npix, taps.data(), T, step, wp.data(), Cp, ep, y.data(), ldo);
  int bad = 0;
  for (int64_t i = 0; i < npix; ++i) {
    for (int64_t c = C; c < ldo; ++c)
      if (y[i * ldo + c] != 0xA5 && ++bad <= 5) ADD_FAILURE() << "pixel " << i << ": wrote into the gap at " << c;
    for (int64_t c = 0; c < C; ++c) {
      int64_t acc = bias[c];
      for (int64_t t = 0; t < T; ++t)
        acc += (int64_t(taps[t][i * step + c]) - q.a_zero) * (int64_t(w[t * C + c]) - wzero(q, c));
      const int32_t want = ref_requant(acc, q, c), got = out_value(&y[i * ldo + c], q.s8_out);
      if (got != want && ++bad <= 5) ADD_FAILURE() << "pixel " << i << " c " << c << ": got " << got << " want " << want;
    }
  }
  for (int64_t k = npix * ldo; k < npix * ldo + 16; ++k)
    if (y[k] != 0xA5 && ++bad <= 5) ADD_FAILURE() << "wrote past the pixels at byte " << k;
}

TEST_P(QDwConvTest, MicroKernelOnHandBuiltTaps) {
  with_and_without_vbmi([] {
  // rows of a wide image; the 3x3 patterns of stride 1 and 2 (the register-blocked path), the same
  // with one tap moved (the per-tap path), a column step that is neither, and 9 taps that are not 3x3
  uint32_t seed = 900;
  for (int64_t C : {1, 7, 16, 19, 48, 81})
    for (int64_t npix : {1, 2, 3, 5, 8, 9, 13, 17}) {
      const int64_t Wd = 3 * npix + 8;
      const auto img = random_u8(4 * Wd * C, seed);
      const auto w = random_s8(9 * C, seed + 1);
      for (int variant = 0; variant < 5; ++variant) {
        int64_t S = variant == 1 ? 2 : 1, d = C;
        std::vector<const uint8_t*> taps(9);
        for (int64_t r = 0; r < 3; ++r)
          for (int64_t kw = 0; kw < 3; ++kw) taps[r * 3 + kw] = &img[(r * Wd + kw) * C];
        if (variant == 2) taps[4] = &img[(3 * Wd + 1) * C];  // one tap from another row
        if (variant == 3) S = 3;                                  // step 3C: no pattern
        if (variant == 4)                                         // dilation 2: taps 2C apart, step C
          for (int64_t r = 0; r < 3; ++r)
            for (int64_t kw = 0; kw < 3; ++kw) taps[r * 3 + kw] = &img[(r * Wd + 2 * kw) * C];
        QuantParams q = per_channel(C, seed + variant, int32_t((seed + 7 * variant) % 256), 20, 9);
        if (variant % 2 == 0) q.w_zero = random_s32(C, seed + 2, -20, 20);
        if (variant == 3) q.s8_out = true, q.qmin = -128, q.qmax = 127, q.y_zero = -3;
        // the output pixel stride: C, or wider (a chunk's columns of a wider row)
        const int64_t gap = (seed + variant) % 3 == 0 ? 0 : (seed + variant) % 3 == 1 ? 5 : 32;
        SCOPED_TRACE(testing::Message() << "C=" << C << " npix=" << npix << " variant=" << variant << " gap=" << gap);
        check_dw_microkernel(C, npix, taps, S * d, w, q, seed + 3, gap);
      }
      ++seed;
    }
  });
}

TEST_P(QDwConvTest, MicroKernelSaturatesBothEnds) {
  with_and_without_vbmi([] {
  // extreme bytes and weights on the register-blocked path: outputs pinned at qmin and qmax
  const int64_t C = 32, npix = 11, Wd = npix + 2;
  std::vector<uint8_t> img(3 * Wd * C);
  for (size_t i = 0; i < img.size(); ++i) img[i] = (i / C) % 2 ? 255 : 0;
  std::vector<int8_t> w(9 * C);
  for (size_t i = 0; i < w.size(); ++i) w[i] = (i % C) < 16 ? 127 : -128;
  std::vector<const uint8_t*> taps(9);
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t kw = 0; kw < 3; ++kw) taps[r * 3 + kw] = &img[(r * Wd + kw) * C];
  QuantParams q = per_tensor(0.05f, 0, 0.02f, 0.0001f, 128);
  check_dw_microkernel(C, npix, taps, C, w, q, 5);
  q.w_zero = {-3};
  check_dw_microkernel(C, npix, taps, C, w, q, 6);
  q.w_zero.clear();
  q.y_scale = 60.f;  // multiplier 1/60000: the saturating-pack epilogue
  check_dw_microkernel(C, npix, taps, C, w, q, 7);
  });
}

INSTANTIATE_TEST_SUITE_P(Isa, QDwConvTest, ::testing::ValuesIn(supported_isas()), isa_param_name);

TEST(QDwConv, BadShapeIsAOneLineError) {
  Conv2dShape s = dw_shape(1, 4, 4, 8, 3, 1, 1);
  s.G = 1;
  const std::vector<int8_t> w(8 * 9);
  test::expect_one_line_error([&] { (void)pack_qdwconv(s, w.data(), nullptr, per_tensor(1, 0, 1, 1, 0)); },
                              {"not a depthwise"});
  s = dw_shape(1, 4, 4, 8, 3, 1, 1);
  QuantParams q = per_tensor(1, 0, 1, 1, 0);
  q.w_scale = {1, 1, 1};
  test::expect_one_line_error([&] { (void)pack_qdwconv(s, w.data(), nullptr, q); },
                              {"3 weight scales for 8 output channels"});
}

// ---- ungrouped convolution (im2col tiles) ---------------------------------------------------------

Conv2dShape conv_shape(int64_t N, int64_t H, int64_t W, int64_t C, int64_t OC, int64_t KH, int64_t KW, int64_t S,
                       int64_t PT, int64_t PL, int64_t PB, int64_t PR, int64_t D = 1) {
  Conv2dShape s;
  s.N = N, s.H = H, s.W = W, s.C = C, s.OC = OC, s.G = 1;
  s.KH = KH, s.KW = KW, s.SH = s.SW = S, s.DH = s.DW = D;
  s.PT = PT, s.PL = PL, s.PB = PB, s.PR = PR;
  s.OH = (H + PT + PB - (KH - 1) * D - 1) / S + 1;
  s.OW = (W + PL + PR - (KW - 1) * D - 1) / S + 1;
  return s;
}

// Naive QLinearConv, G = 1, weights [OC][C][KH][KW]; padding taps read a_zero.
std::vector<int32_t> ref_qconv(const Conv2dShape& s, const uint8_t* x, const int8_t* w, const int32_t* bias,
                               const QuantParams& q) {
  return ref_qconv_grouped(s, x, w, bias, q);
}

std::vector<int32_t> check_conv(const Conv2dShape& s, const QuantParams& q, uint32_t seed, int threads = 1) {
  const auto x = random_u8(s.N * s.H * s.W * s.C, seed);
  const auto w = random_s8(s.OC * s.C * s.KH * s.KW, seed + 1);
  const auto bias = random_s32(s.OC, seed + 2, -5000, 5000);
  const PackedQConv p = pack_qconv(s, w.data(), seed % 2 ? bias.data() : nullptr, q, threads);
  std::vector<uint8_t> y(s.N * s.OH * s.OW * s.OC, 0xA5);
  qconv_nhwc(p, x.data(), y.data());
  const auto want = ref_qconv(s, x.data(), w.data(), seed % 2 ? bias.data() : nullptr, q);
  std::vector<int32_t> got(y.size());
  int bad = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    got[i] = out_value(&y[i], q.s8_out);
    if (got[i] != want[i] && ++bad <= 5)
      ADD_FAILURE() << "element " << i << " (oc=" << i % s.OC << "): got " << got[i] << " want " << want[i];
  }
  return got;
}

class QConvTest : public IsaTest {};

TEST_P(QConvTest, RgbStemShapes) {
  // MobileNetV2's stem (3x3, stride 2, pad 1, C = 3 -> 32: K = 27, padded to 28) on small ragged images,
  // odd and even sizes (the last column's taps run past the image), N = 2
  uint32_t seed = 1;
  for (auto [H, W] : {std::pair<int64_t, int64_t>{1, 1}, {2, 3}, {7, 8}, {17, 13}, {24, 31}}) {
    QuantParams q = per_channel(32, seed, 128 - int32_t(seed), int32_t(seed * 7), 27);
    SCOPED_TRACE(testing::Message() << "H=" << H << " W=" << W);
    check_conv(conv_shape(2, H, W, 3, 32, 3, 3, 2, 1, 1, 1, 1), q, seed++);
  }
  check_conv(conv_shape(1, 56, 56, 3, 32, 3, 3, 2, 1, 1, 1, 1), per_channel(32, 9, 118, 0, 27), 9, 2);
}

TEST_P(QConvTest, RaggedKernelsChannelsAndWeightZeroPoints) {
  uint32_t seed = 20;
  struct G { int64_t C, OC, KH, KW, S, PT, PL, PB, PR, D; };
  for (const G& g : {G{3, 5, 3, 3, 2, 1, 1, 1, 1, 1}, G{1, 17, 5, 5, 1, 2, 2, 2, 2, 1}, G{7, 40, 3, 3, 1, 0, 1, 2, 0, 2},
                    G{16, 16, 1, 1, 2, 0, 0, 0, 0, 1}, G{5, 33, 2, 3, 3, 1, 0, 0, 2, 1}, G{64, 24, 3, 3, 1, 1, 1, 1, 1, 1}}) {
    for (int zw_kind = 0; zw_kind < 3; ++zw_kind) {
      QuantParams q = per_channel(g.OC, seed, int32_t(seed * 41 % 256), int32_t(seed * 3 % 256), g.C * g.KH * g.KW);
      if (zw_kind == 1) q.w_zero = {-7};
      if (zw_kind == 2) q.w_zero = random_s32(g.OC, seed + 9, -128, 127);
      SCOPED_TRACE(testing::Message() << "C=" << g.C << " OC=" << g.OC << " K=" << g.KH << "x" << g.KW << " S=" << g.S
                                      << " D=" << g.D << " zw=" << zw_kind);
      check_conv(conv_shape(1, 9, 11, g.C, g.OC, g.KH, g.KW, g.S, g.PT, g.PL, g.PB, g.PR, g.D), q, seed++,
                 1 + zw_kind % 2);
    }
  }
}

TEST_P(QConvTest, DirectFormEveryGeometry) {
  // the direct form (kernel rows read in place in kseg = KW * C rounded up to 4 bytes, border pixels and
  // padded rows through im2col rows in the same layout; under ISAs without the segmented GEMM the im2col
  // path): channels 1..8 (kseg past, equal to and far past KW * C), strides 1..3, symmetric and one-sided
  // pads, images narrower than a kernel row's kseg bytes, a vertical dilation, ragged OC, 1 and 2 threads
  uint32_t seed = 900;
  struct G { int64_t C, OC, KH, KW, S, PT, PL, PB, PR, DH; };
  for (const G& g : {G{3, 32, 3, 3, 2, 1, 1, 1, 1, 1}, G{1, 5, 3, 3, 1, 1, 1, 1, 1, 1}, G{2, 24, 2, 5, 3, 0, 2, 1, 0, 1},
                    G{4, 17, 3, 1, 1, 1, 0, 1, 0, 1}, G{5, 33, 1, 3, 2, 0, 0, 0, 1, 1}, G{8, 16, 3, 3, 1, 2, 2, 2, 2, 2},
                    G{3, 40, 5, 2, 2, 2, 0, 2, 1, 1}})
    for (int64_t W : {1, 2, 3, 6, 13}) {
      if (W + g.PL + g.PR < g.KW) continue;
      Conv2dShape s = conv_shape(2, 9, W, g.C, g.OC, g.KH, g.KW, g.S, g.PT, g.PL, g.PB, g.PR, 1);
      s.DH = g.DH;
      s.OH = (s.H + g.PT + g.PB - (g.KH - 1) * g.DH - 1) / g.S + 1;
      QuantParams q = per_channel(g.OC, seed, int32_t(seed * 29 % 256), int32_t(seed * 5 % 256), g.C * g.KH * g.KW);
      const std::vector<int8_t> w(g.OC * g.C * g.KH * g.KW, 1);
      EXPECT_EQ(pack_qconv(s, w.data(), nullptr, q).kseg, (g.KW * g.C + 3) / 4 * 4);
      SCOPED_TRACE(testing::Message() << "C=" << g.C << " K=" << g.KH << "x" << g.KW << " S=" << g.S << " W=" << W
                                      << " DH=" << g.DH);
      check_conv(s, q, seed, 1 + int(seed % 2));
      ++seed;
    }
  // weight zero points or a horizontal dilation: no direct form
  const Conv2dShape s = conv_shape(1, 5, 5, 3, 8, 3, 3, 1, 1, 1, 1, 1);
  QuantParams q = per_channel(8, 3, 7, 9, 27);
  const std::vector<int8_t> w(8 * 27, 1);
  q.w_zero = {2};
  EXPECT_EQ(pack_qconv(s, w.data(), nullptr, q).kseg, 0);
  q.w_zero.clear();
  EXPECT_EQ(pack_qconv(conv_shape(1, 5, 5, 3, 8, 3, 3, 1, 2, 2, 2, 2, 2), w.data(), nullptr, q).kseg, 0);
  // the segmented GEMM: only the VNNI kernel has it; a K that the segments do not divide is an error
  const PackedQB b = pack_qgemm_b(24, 8, w.data(), 24, true, nullptr, q);
  const std::vector<uint8_t> a(64, 1);
  std::vector<uint8_t> y(8);
  if (!qgemm_has_seg(active_isa()))
    test::expect_one_line_error([&] { qgemm_u8s8_rows_seg(0, 1, a.data(), 24, 12, 30, b, y.data(), 8); },
                                {"qgemm_u8s8_rows_seg", "no segmented form"});
  else
    test::expect_one_line_error([&] { qgemm_u8s8_rows_seg(0, 1, a.data(), 24, 16, 30, b, y.data(), 8); },
                                {"qgemm_u8s8_rows_seg", "do not divide"});
}

TEST_P(QConvTest, DirectFormReadsNothingPastTheImage) {
  // the direct form lets a kernel row's extra kseg - KW * C bytes run into the next input row, except
  // on the tensor's last row: with the input ending where an unreadable page begins, an over-read
  // would fault; the outputs equal the reference
  const int64_t page = sysconf(_SC_PAGESIZE);
  uint32_t seed = 950;
  struct G { int64_t N, H, W, C, KH, KW, S, P; };
  for (const G& g : {G{1, 9, 10, 3, 3, 3, 2, 1}, G{2, 7, 9, 3, 3, 3, 2, 1}, G{1, 6, 7, 1, 3, 3, 1, 1},
                    G{2, 5, 6, 5, 1, 1, 1, 0}, G{1, 5, 8, 3, 3, 3, 1, 0}}) {
    const Conv2dShape s = conv_shape(g.N, g.H, g.W, g.C, 24, g.KH, g.KW, g.S, g.P, g.P, g.P, g.P);
    const QuantParams q = per_channel(24, seed, 100, 7, g.C * g.KH * g.KW);
    const auto x = random_u8(g.N * g.H * g.W * g.C, seed);
    const auto w = random_s8(24 * g.C * g.KH * g.KW, seed + 1);
    const PackedQConv p = pack_qconv(s, w.data(), nullptr, q);
    const size_t bytes = x.size(), span = (bytes + size_t(page) - 1) / size_t(page) * size_t(page) + size_t(page);
    void* mem = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
    ASSERT_EQ(mprotect(static_cast<uint8_t*>(mem) + span - size_t(page), size_t(page), PROT_NONE), 0);
    uint8_t* in = static_cast<uint8_t*>(mem) + span - size_t(page) - bytes;
    std::memcpy(in, x.data(), bytes);
    std::vector<uint8_t> y(s.N * s.OH * s.OW * s.OC);
    qconv_nhwc(p, in, y.data());
    munmap(mem, span);
    const auto want = ref_qconv(s, x.data(), w.data(), nullptr, q);
    SCOPED_TRACE(testing::Message() << "C=" << g.C << " K=" << g.KH << "x" << g.KW << " W=" << g.W << " N=" << g.N);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(int32_t(y[i]), want[i]) << i;
    ++seed;
  }
}

TEST_P(QConvTest, SaturatesAtBothEndsAndS8Output) {
  for (bool s8 : {false, true}) {
    QuantParams q = per_tensor(0.05f, 128, 0.02f, 0.0002f, s8 ? 0 : 128);
    q.s8_out = s8;
    q.qmin = s8 ? -128 : 0;
    q.qmax = s8 ? 127 : 255;
    const auto y = check_conv(conv_shape(1, 12, 12, 3, 32, 3, 3, 2, 1, 1, 1, 1), q, 78);
    int lo = 0, hi = 0;
    for (int32_t v : y) lo += v == q.qmin, hi += v == q.qmax;
    EXPECT_GT(lo, 300) << "s8=" << s8;
    EXPECT_GT(hi, 300) << "s8=" << s8;
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, QConvTest, ::testing::ValuesIn(supported_isas()), isa_param_name);

TEST(QConv, GroupedShapeIsAOneLineError) {
  Conv2dShape s = conv_shape(1, 4, 4, 8, 8, 3, 3, 1, 1, 1, 1, 1);
  s.G = 2;
  const std::vector<int8_t> w(8 * 4 * 9, 1);
  test::expect_one_line_error([&] { (void)pack_qconv(s, w.data(), nullptr, per_tensor(1, 0, 1, 1, 0)); },
                              {"pack_qconv", "G=2"});
  s = conv_shape(1, 20, 4, 1, 1, 17, 1, 1, 0, 0, 0, 0);
  const std::vector<int8_t> tall(17, 1);
  test::expect_one_line_error([&] { (void)pack_qconv(s, tall.data(), nullptr, per_tensor(1, 0, 1, 1, 0)); },
                              {"pack_qconv", "kernel height 17"});
}

// ---- element-wise ---------------------------------------------------------------------------------

class QElementwiseTest : public IsaTest {};

TEST_P(QElementwiseTest, VectorKernelsEqualTheScalarFormulas) {
  // quantize_f32 and qadd_same under the ISA (AVX-512: 16 lanes and a masked tail; AVX2: 8 lanes and a
  // scalar tail) against the scalar formulas, every length up to 40 and a long one: ties, NaN,
  // infinities and saturation at both ends
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-300.f, 300.f);
  for (int64_t n : {0, 1, 7, 8, 15, 16, 17, 31, 33, 40, 1000}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      x[i] = i % 7 == 0 ? 0.25f * float(i % 23) - 2.5f  // ties of x / 0.5: k + 0.5
             : i % 11 == 0 ? (i % 2 ? INFINITY : -INFINITY)
             : i % 13 == 0 ? NAN : d(rng);
    }
    for (bool s8 : {false, true})
      for (int32_t zp : {0, 3, s8 ? -128 : 255}) {
        std::vector<uint8_t> got(n + 1, 0xA5), want(n + 1, 0xA5);
        quantize_f32(n, x.data(), 0.5f, zp, s8, got.data());
        quantize_f32_generic(n, x.data(), 0.5f, zp, s8, want.data());
        EXPECT_EQ(got, want) << "quantize n=" << n << " s8=" << s8 << " zp=" << zp;
      }
    const auto a = random_u8(n, uint32_t(n)), b = random_u8(n, uint32_t(n + 1));
    for (bool s8 : {false, true}) {
      const QAddParams p = qadd_params(0.07f, s8 ? -3 : 125, 0.05f, s8 ? 9 : 137, 0.06f, s8 ? 2 : 130, s8);
      std::vector<uint8_t> c(n + 1, 0xA5);
      qadd_same(p, n, a.data(), b.data(), c.data());
      for (int64_t i = 0; i < n; ++i) {
        const int32_t av = s8 ? int32_t(int8_t(a[i])) : a[i], bv = s8 ? int32_t(int8_t(b[i])) : b[i];
        ASSERT_EQ(out_value(&c[i], s8), qadd_value(p, av, bv)) << "qadd n=" << n << " s8=" << s8 << " i=" << i;
      }
      EXPECT_EQ(c[n], 0xA5) << "qadd wrote past n=" << n;
    }
  }
}

TEST_P(QElementwiseTest, QuantizeNchwToNhwcEqualsCopyThenQuantize) {
  // the boundary quantization of a model input (quantize_f32_nchw_to_nhwc) against the two steps it
  // replaces: the NCHW -> NHWC float copy, then the flat quantize_f32; odd sizes, one and many
  // channels, pixel tiles with tails (C = 40: 256 pixels, C = 2000: 16), sizes past the threaded
  // threshold at 1 and 2 threads; ties, NaN, infinities, saturation at both ends; and the values
  // from the ONNX formula (round half to even of x / scale, saturated, + zero point)
  struct Case { int64_t N, C, H, W; };
  const Case cases[] = {{1, 3, 7, 9}, {2, 5, 3, 11}, {3, 17, 1, 1}, {1, 1, 13, 13}, {1, 40, 17, 19},
                        {1, 2000, 1, 37}, {2, 3, 113, 115}};
  const int saved_threads = omp_get_max_threads();
  for (const Case& k : cases) {
    const int64_t n = k.N * k.C * k.H * k.W, HW = k.H * k.W;
    std::vector<float> x = test::random_floats(size_t(n), uint32_t(n), -40.f, 40.f);
    const float special[] = {0.25f, -0.25f, 0.75f, 1e9f, -1e9f, NAN, INFINITY, -INFINITY, 300.f, -300.f};
    for (size_t i = 0; i < std::size(special) && i * 7 < size_t(n); ++i) x[i * 7] = special[i];
    for (size_t i = 0; i < size_t(n); i += 29) x[i] = 0.5f * float(int64_t(i % 41) - 20);  // ties of x / 0.5
    // NCHW -> NHWC strides of the float copy
    const std::vector<int64_t> shape = {k.N, k.C, k.H, k.W}, nchw = {k.C * HW, HW, k.W, 1},
                               nhwc = {HW * k.C, 1, k.W * k.C, k.C};
    std::vector<float> t(static_cast<size_t>(n));
    copy_strided_f32(shape, x.data(), nchw, t.data(), nhwc);
    for (bool s8 : {false, true})
      for (int32_t zp : {0, s8 ? -5 : 131, s8 ? 127 : 255})
        for (int threads : {1, 2}) {
          omp_set_num_threads(threads);
          std::vector<uint8_t> want(size_t(n) + 1, 0xA5), got(size_t(n) + 1, 0xA5);
          quantize_f32(n, t.data(), 0.5f, zp, s8, want.data());
          quantize_f32_nchw_to_nhwc(k.N, k.C, HW, x.data(), 0.5f, zp, s8, got.data());
          const std::string what = cat(k.N, "x", k.C, "x", k.H, "x", k.W, " s8=", s8, " zp=", zp, " threads=", threads);
          ASSERT_EQ(got, want) << what;  // byte n (0xA5) checks nothing was written past the end
          // the ONNX formula at a few NHWC positions, NaN as ORT's maxps gives it (the low bound)
          const int32_t qmin = s8 ? -128 : 0, qmax = s8 ? 127 : 255;
          for (int64_t i = 0; i < n; i += 13) {
            const int64_t c = i % k.C, p = i / k.C % HW, b = i / (k.C * HW);
            const float v = x[size_t((b * k.C + c) * HW + p)];
            const int32_t q = std::isnan(v) ? qmin : int32_t(std::clamp<double>(std::nearbyint(double(v / 0.5f)) + zp, qmin, qmax));
            ASSERT_EQ(out_value(&got[size_t(i)], s8), q) << what << " at " << i << " (x " << v << ")";
          }
        }
  }
  omp_set_num_threads(saved_threads);
  // saturation at both ends
  const float ends[] = {1e9f, -1e9f, 128.f, -129.f, 256.f, -1.f};
  std::vector<uint8_t> u(6), s(6);
  quantize_f32_nchw_to_nhwc(1, 1, 6, ends, 1.f, 0, false, u.data());
  quantize_f32_nchw_to_nhwc(1, 1, 6, ends, 1.f, 0, true, s.data());
  EXPECT_EQ(u, (std::vector<uint8_t>{255, 0, 128, 0, 255, 0}));
  EXPECT_EQ(s, (std::vector<uint8_t>{127, 128, 127, 128, 127, 255}));  // s8 127, -128, 127, -128, 127, -1
}

INSTANTIATE_TEST_SUITE_P(Isa, QElementwiseTest, ::testing::ValuesIn(supported_isas()), isa_param_name);

// ---- int8 peak ------------------------------------------------------------------------------------

class Int8PeakTest : public IsaTest {};

TEST_P(Int8PeakTest, LoopDoesTheCountedWork) {
  const bool vnni = GetParam() == Isa::Avx512 && cpu_has_avx512vnni();
  const int lanes = vnni ? 16 : has_avx2(GetParam()) ? 8 : 4;
  const int macs = vnni ? 4 : has_avx2(GetParam()) ? 2 : 1;
  EXPECT_EQ(int8_peak_chains(), 12);
  EXPECT_EQ(int8_peak_lanes(), lanes);
  EXPECT_EQ(int8_peak_macs_per_lane(), macs);
  EXPECT_EQ(int8_peak_ops_per_iter(), int64_t(12) * lanes * macs * 2);
  const int64_t n = int64_t(12) * lanes;
  // lane j starts at j and gains macs * a * b per iteration
  auto expected = [&](int64_t iters, int64_t a, int64_t b) { return n * (n - 1) / 2 + n * iters * macs * a * b; };
  EXPECT_EQ(int8_dot_chains(0, 1, 1), expected(0, 1, 1));
  EXPECT_EQ(int8_dot_chains(1, 1, 1), expected(1, 1, 1));
  EXPECT_EQ(int8_dot_chains(1000, 1, 1), expected(1000, 1, 1));
  EXPECT_EQ(int8_dot_chains(100, 255, -128), expected(100, 255, -128));  // u8 x s8 at the extremes
  EXPECT_EQ(int8_dot_chains(37, 3, 7), expected(37, 3, 7));
}

TEST_P(Int8PeakTest, MeasuredPeakIsPlausible) {
  const double peak = measured_int8_peak_gops(1);
  std::printf("%s: measured int8 peak %.1f GOP/s (1 thread)\n  %s\n", isa_name(GetParam()), peak,
              int8_peak_method().c_str());
  RecordProperty(std::string("int8_peak_1t_") + isa_name(GetParam()), std::to_string(peak));
  EXPECT_GT(peak, 1.0);
  // 2 x 512-bit vpdpbusd per cycle (256 ops) x 6 GHz: nothing faster exists
  EXPECT_LT(peak, 256 * 6.0);
}

INSTANTIATE_TEST_SUITE_P(Isa, Int8PeakTest, ::testing::ValuesIn(supported_isas()), isa_param_name);

}  // namespace
}  // namespace locus::kernels
