// The fp32 depthwise 3x3 micro-kernels with their 3x3 forms (dwconv_microkernel.h: AVX-512's
// register-blocked f32-dwconv-16c8p-avx512f at stride 1, C >= kDwRegisterBlockedMinC; AVX2's sliding
// form at stride 1 and 2), on every ISA this CPU has: against
// a naive depthwise convolution from the ONNX definition (double accumulation) on ragged shapes (odd
// H / W, every channel tail, pads, stride 1 and 2, batch 2, activations in the epilogue), and bit for
// bit against the forms that ran before it (set_dwconv3x3_forms(false): same accumulation
// order). Also the accumulating call without a bias and every pixel-pass remainder.
//
// Tolerance: 1e-4 * (sum |terms| + 1e-3) per output, as kernels_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/dwconv_microkernel.h"
#include "tests/isa_util.h"
#include "tests/test_support.h"

namespace locus::kernels {
namespace {

using test::random_floats;

// Restores the default (the 3x3 forms on) whatever a test did.
class DwConv3x3Test : public test::IsaTest {
 protected:
  void TearDown() override {
    set_dwconv3x3_forms(true);
    test::IsaTest::TearDown();
  }
};

struct DwCase {
  int64_t N, H, W, C, S, pt, pl, pb, pr;
  Activation act;
};

std::string describe(const DwCase& c) {
  return "dw3x3 N=" + std::to_string(c.N) + " " + std::to_string(c.H) + "x" + std::to_string(c.W) +
         " C=" + std::to_string(c.C) + " stride " + std::to_string(c.S) + " pads " + std::to_string(c.pt) + "," +
         std::to_string(c.pl) + "," + std::to_string(c.pb) + "," + std::to_string(c.pr) + " act " +
         std::to_string(int(c.act.kind));
}

double spec_act(const Activation& a, double x) {
  switch (a.kind) {
    case ActKind::Relu: return x > 0 ? x : 0;
    case ActKind::Clip: return std::min(std::max(x, double(a.lo)), double(a.hi));
    case ActKind::HardSwish: return x * std::max(0.0, std::min(1.0, x / 6.0 + 0.5));
    default: return x;
  }
}

// Runs the case with the 3x3 forms on and off; checks "on" against the naive reference
// and "off" bit for bit against "on".
void run_case(const DwCase& c, uint32_t seed) {
  Conv2dShape s;
  s.N = c.N, s.H = c.H, s.W = c.W, s.C = s.OC = s.G = c.C;
  s.KH = s.KW = 3, s.SH = s.SW = c.S;
  s.PT = c.pt, s.PL = c.pl, s.PB = c.pb, s.PR = c.pr;
  s.OH = (c.H + c.pt + c.pb - 3) / c.S + 1;
  s.OW = (c.W + c.pl + c.pr - 3) / c.S + 1;
  const std::string what = describe(c);
  const auto in = random_floats(s.N * s.H * s.W * s.C, seed);
  const auto w = random_floats(s.C * 9, seed + 1);
  const auto bias = random_floats(s.C, seed + 2);
  const int64_t total = s.N * s.OH * s.OW * s.C;
  std::vector<double> want(total), scale(total);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t oh = 0; oh < s.OH; ++oh)
      for (int64_t ow = 0; ow < s.OW; ++ow)
        for (int64_t ch = 0; ch < s.C; ++ch) {
          double acc = bias[ch], sa = std::fabs(bias[ch]);
          for (int64_t kh = 0; kh < 3; ++kh)
            for (int64_t kw = 0; kw < 3; ++kw) {
              const int64_t ih = oh * s.SH - s.PT + kh, iw = ow * s.SW - s.PL + kw;
              if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
              const double t = double(in[((n * s.H + ih) * s.W + iw) * s.C + ch]) * w[ch * 9 + kh * 3 + kw];
              acc += t, sa += std::fabs(t);
            }
          const int64_t o = ((n * s.OH + oh) * s.OW + ow) * s.C + ch;
          want[o] = spec_act(c.act, acc);
          scale[o] = sa;
        }
  const PackedConv2d p = pack_conv2d(s, w.data(), bias.data(), c.act, 0, schedule::TileOrder::Scan, 2);
  ASSERT_EQ(int(p.path), int(ConvPath::Depthwise)) << what;
  std::vector<float> on(total + 16, -777.f), off(total + 16, -777.f);
  set_dwconv3x3_forms(true);
  conv2d_nhwc(p, in.data(), on.data(), nullptr);
  set_dwconv3x3_forms(false);
  conv2d_nhwc(p, in.data(), off.data(), nullptr);
  set_dwconv3x3_forms(true);
  int bad = 0;
  for (int64_t i = 0; i < total; ++i) {
    const double tol = 1e-4 * (scale[i] + 1e-3);
    if (!(std::fabs(on[i] - want[i]) <= tol) && bad++ < 5)
      ADD_FAILURE() << what << ": element " << i << " got " << on[i] << " want " << want[i];
    if (std::memcmp(&on[i], &off[i], sizeof(float)) != 0 && bad++ < 5)
      ADD_FAILURE() << what << ": element " << i << " register-blocked " << on[i] << " differs from " << off[i];
  }
  for (int64_t i = total; i < total + 16; ++i) ASSERT_EQ(on[i], -777.f) << what << ": output overrun";
}

TEST_P(DwConv3x3Test, RaggedShapesAgainstTheReference) {
  const Activation none{}, relu6{ActKind::Clip, 0.f, 6.f}, hswish{ActKind::HardSwish, 0.f, 0.f};
  uint32_t seed = 1;
  // every channel tail of 8 and 16 (and whole blocks), strides 1 and 2, MobileNet's pads
  for (int64_t C : {1, 3, 8, 13, 16, 17, 24, 31, 32, 33, 47, 70, 511, 512, 519, 536, 576})
    for (int64_t S : {1, 2}) {
      run_case({1, 9, 11, C, S, 1, 1, 1, 1, relu6}, seed += 3);
      run_case({2, 10, 7, C, S, 0, 0, 1, 1, none}, seed += 3);
    }
  // every output-run length (passes of 8, 4, 2 and 1 pixels), no padding and asymmetric padding
  for (int64_t W = 3; W <= 22; ++W)
    for (int64_t S : {1, 2}) {
      run_case({1, 5, W, 19, S, 0, 0, 0, 0, hswish}, seed += 3);
      run_case({1, 4, W, 521, S, 1, 0, 0, 1, relu6}, seed += 3);
    }
  // a MobileNetV2 layer of each stride
  run_case({1, 28, 28, 144, 2, 0, 0, 1, 1, relu6}, seed += 3);
  run_case({1, 14, 14, 96, 1, 1, 1, 1, 1, relu6}, seed += 3);
  run_case({1, 7, 7, 960, 1, 1, 1, 1, 1, relu6}, seed += 3);
}

// The micro-kernel called directly with bias == nullptr (the accumulating form: out += taps * w),
// a run of 1..19 pixels of the sliding geometry, pixel stride d larger than C (a band's pixels).
TEST_P(DwConv3x3Test, AccumulatingCallWithoutBias) {
  const DwConvMicroKernel uk = dwconv_microkernel_for(active_isa());
  uint32_t seed = 100;
  for (int64_t C : {5, 23, 70, 512, 527, 576})
    for (int64_t S : {1, 2})
      for (int64_t npix = 1; npix <= 19; ++npix) {
        const int64_t d = C + 3, cols = npix * S + 2;
        const auto x = random_floats(3 * cols * d, seed++);
        const auto w = random_floats(9 * C, seed++);
        const auto out0 = random_floats(npix * C, seed++);
        const float* taps[9];
        for (int kh = 0; kh < 3; ++kh)
          for (int kw = 0; kw < 3; ++kw) taps[kh * 3 + kw] = x.data() + kh * cols * d + kw * d;
        ASSERT_EQ(dwconv3x3_sliding_stride(taps, 9, S * d, npix), npix >= 2 ? S : 0);
        std::vector<float> on = out0, off = out0;
        set_dwconv3x3_forms(true);
        uk(C, npix, taps, 9, S * d, w.data(), nullptr, on.data(), nullptr);
        set_dwconv3x3_forms(false);
        uk(C, npix, taps, 9, S * d, w.data(), nullptr, off.data(), nullptr);
        const std::string what = "C=" + std::to_string(C) + " S=" + std::to_string(S) + " npix=" + std::to_string(npix);
        for (int64_t i = 0; i < npix; ++i)
          for (int64_t ch = 0; ch < C; ++ch) {
            double acc = out0[i * C + ch], sa = std::fabs(acc);
            for (int t = 0; t < 9; ++t) {
              const double v = double(taps[t][i * S * d + ch]) * w[t * C + ch];
              acc += v, sa += std::fabs(v);
            }
            const float got = on[i * C + ch];
            ASSERT_LE(std::fabs(got - acc), 1e-4 * (sa + 1e-3)) << what << " pixel " << i << " channel " << ch;
            ASSERT_EQ(std::memcmp(&got, &off[i * C + ch], sizeof(float)), 0) << what << ": forms differ";
          }
      }
}

TEST_P(DwConv3x3Test, KernelName) {
  const std::string name = dwconv_microkernel_name(active_isa());
  switch (active_isa()) {
    case Isa::Avx512: EXPECT_EQ(name, "f32-dwconv-16c8p-avx512f"); break;
    case Isa::Avx2: EXPECT_EQ(name, "f32-dwconv-16c4p-avx2"); break;
    default: EXPECT_EQ(name, "f32-dwconv-generic"); break;
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, DwConv3x3Test, ::testing::ValuesIn(test::supported_isas()), test::isa_param_name);

}  // namespace
}  // namespace locus::kernels
