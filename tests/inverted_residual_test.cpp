// The fused inverted-residual kernel (kernels/native/inverted_residual.h) against the unfused
// composition of the native conv2d kernels (each tested against the naive reference in
// kernels_test), on ragged shapes: strides 1 and 2, with and without residual, without the expand or
// project stage, relu / clip / none, small buffers (many bands and chunks) and large ones (one chunk),
// packed for 1 and 2 threads and run with OpenMP set to 1, 2 and 8 (exact, guarded scratch), every
// ISA the CPU runs; chains with two depthwise stages (4-way CP). The planner's own tests are in
// fused_block_planner_test.cpp.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "graph/error.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/inverted_residual.h"
#include "schedule/fused_block_planner.h"
#include "tests/isa_util.h"
#include "tests/test_support.h"

namespace locus::kernels {
namespace {

using test::random_floats;

using test::supported_isas;

struct Case {
  InvertedResidualShape s;
  int act = 0;  // 0: relu6 on expand + dw, none on project (MobileNetV2); 1: relu everywhere; 2: none
  int64_t S = 65536;
  std::string describe() const {
    return "N=" + std::to_string(s.N) + " H=" + std::to_string(s.H) + " W=" + std::to_string(s.W) +
           " C=" + std::to_string(s.C) + " E=" + std::to_string(s.E) + " OC=" + std::to_string(s.OC) +
           " k=" + std::to_string(s.KH) + " s=" + std::to_string(s.SH) + (s.expand ? "" : " no-expand") +
           (s.project ? "" : " no-project") + (s.residual ? " residual" : "") +
           (s.dw2 ? " dw2=" + std::to_string(s.KH2) + "x" + std::to_string(s.KW2) + "/" + std::to_string(s.SH2) +
                        "x" + std::to_string(s.SW2)
                  : "") +
           " act=" + std::to_string(act) +
           " S=" + std::to_string(S);
  }
};

Conv2dShape conv(int64_t N, int64_t H, int64_t W, int64_t C, int64_t OC, int64_t K, int64_t stride, int64_t pad,
                 int64_t G) {
  Conv2dShape c;
  c.N = N, c.H = H, c.W = W, c.C = C, c.OC = OC, c.KH = c.KW = K, c.SH = c.SW = stride;
  c.PT = c.PL = c.PB = c.PR = pad, c.G = G;
  c.OH = (H + 2 * pad - K) / stride + 1;
  c.OW = (W + 2 * pad - K) / stride + 1;
  return c;
}

int split_cases = 0;  // runs that took the chunk-split path (checked to be exercised)

void run_case(const Case& k, uint32_t seed) {
  SCOPED_TRACE(k.describe());
  const InvertedResidualShape& s = k.s;
  const Activation relu6{ActKind::Clip, 0.f, 6.f}, relu{ActKind::Relu}, none{};
  const Activation ae = k.act == 0 ? relu6 : k.act == 1 ? relu : none;
  const Activation ad = ae;
  const Activation ap = k.act == 1 ? relu : none;
  const auto x = random_floats(s.N * s.H * s.W * s.C, seed);
  const auto we = random_floats(s.E * s.C, seed + 1), be = random_floats(s.E, seed + 2);
  const auto wd = random_floats(s.E * s.KH * s.KW, seed + 3), bd = random_floats(s.E, seed + 4);
  const auto wp = random_floats(s.OC * s.E, seed + 5), bp = random_floats(s.OC, seed + 6);
  const auto wd2 = random_floats(s.E * s.KH2 * s.KW2, seed + 7), bd2 = random_floats(s.E, seed + 8);
  const Activation ad2 = k.act == 2 ? none : relu;

  // Unfused: three (four) native convolutions (+ the residual add).
  const int64_t OH = s.OH(), OW = s.OW(), MH = s.MH(), MW = s.MW();
  std::vector<float> e(s.N * s.H * s.W * s.E), m(s.N * MH * MW * s.E), d(s.N * OH * OW * s.E),
      want(s.N * OH * OW * s.OC);
  const float* din = x.data();
  if (s.expand) {
    const PackedConv2d pe = pack_conv2d(conv(s.N, s.H, s.W, s.C, s.E, 1, 1, 0, 1), we.data(), be.data(), ae);
    conv2d_nhwc(pe, x.data(), e.data(), nullptr);
    din = e.data();
  }
  Conv2dShape g1;  // the (first) depthwise stage
  g1.N = s.N, g1.H = s.H, g1.W = s.W, g1.C = g1.OC = g1.G = s.E, g1.KH = s.KH, g1.KW = s.KW, g1.SH = s.SH,
  g1.SW = s.SW, g1.PT = s.PT, g1.PL = s.PL, g1.PB = s.PB, g1.PR = s.PR, g1.OH = MH, g1.OW = MW;
  const PackedConv2d pd = pack_conv2d(g1, wd.data(), bd.data(), ad);
  std::vector<float> dscratch(conv2d_scratch_floats(pd));
  float* dw_final = s.project ? d.data() : want.data();
  conv2d_nhwc(pd, din, s.dw2 ? m.data() : dw_final, dscratch.data());
  InvertedResidualWeights w;
  if (s.dw2) {
    Conv2dShape g2 = g1;
    g2.H = MH, g2.W = MW, g2.KH = s.KH2, g2.KW = s.KW2, g2.SH = s.SH2, g2.SW = s.SW2, g2.PT = s.PT2, g2.PL = s.PL2,
    g2.PB = s.PB2, g2.PR = s.PR2, g2.OH = OH, g2.OW = OW;
    const PackedConv2d pd2 = pack_conv2d(g2, wd2.data(), bd2.data(), ad2);
    std::vector<float> scratch2(conv2d_scratch_floats(pd2));
    conv2d_nhwc(pd2, m.data(), dw_final, scratch2.data());
    w.dw2 = wd2.data(), w.dw2_bias = bd2.data(), w.dw2_act = ad2;
  }
  if (s.project) {
    const PackedConv2d pp = pack_conv2d(conv(s.N, OH, OW, s.E, s.OC, 1, 1, 0, 1), wp.data(), bp.data(), ap);
    conv2d_nhwc(pp, d.data(), want.data(), nullptr);
  }
  if (s.residual)
    for (size_t i = 0; i < want.size(); ++i) want[i] += x[i];

  w.expand = we.data(), w.expand_bias = be.data(), w.expand_act = ae;
  w.dw = wd.data(), w.dw_bias = bd.data(), w.dw_act = ad;
  w.project = wp.data(), w.project_bias = bp.data(), w.project_act = ap;
  // Packed for one thread (band walk), and for two (chunk split when the plan has fewer bands than
  // threads, else at least one band per thread); each run with OpenMP set to 1, 2 and 8 threads:
  // the kernel runs with the plan's count whatever OpenMP says, inside a scratch of exactly
  // inverted_residual_scratch_floats (guarded: before the count was planned, 8 threads indexed
  // per-thread scratch past a workspace sized for 1 or 2). Packed for 3 too: a pair of threads
  // meeting in the middle of their bands and one thread alone (MeetSplit). A band split (threads
  // walking whole bands) gives the serial walk's result of the same plan bit for bit (the kernel
  // walks serially inside a parallel region): which thread takes a band, and in which direction
  // it walks, must not change the sums.
  for (int pack_threads : {1, 2, 3})
  for (int threads : {1, 2, 8}) {
    const PackedInvertedResidual p = pack_inverted_residual(s, w, k.S, pack_threads);
    EXPECT_LE(p.plan.buffer_entries, k.S);
    if (pack_threads == 2) {
      EXPECT_TRUE(p.plan.split_chunks == 2 || s.N * p.plan.bands >= 2 || p.plan.shape.OH() == 1);
      if (p.plan.split_chunks == 2) ++split_cases;
    }
    omp_set_num_threads(threads);
    EXPECT_EQ(p.plan.threads, pack_threads);
    const int64_t scratch_n = inverted_residual_scratch_floats(p);
    constexpr int64_t kGuard = 256;
    std::vector<float> scratch(size_t(scratch_n + kGuard), -4242.f);  // guard floats past the end
    std::vector<float> got(want.size() + 1, 12345.f);  // one guard element past the end
    inverted_residual_nhwc(p, x.data(), got.data(), scratch.data());
    ASSERT_EQ(got.back(), 12345.f) << "wrote past the output";
    got.pop_back();
    if (p.plan.split_chunks <= 1) {
      std::vector<float> serial(got.size(), 0.f);
      bool nested = false;
#pragma omp parallel num_threads(2)
#pragma omp single
      {
        nested = omp_in_parallel();
        inverted_residual_nhwc(p, x.data(), serial.data(), scratch.data());
      }
      ASSERT_TRUE(nested) << "no 2-thread team for the serial walk";
      if (got != serial)
        ADD_FAILURE() << "packed for " << pack_threads << ", run with OpenMP at " << threads
                      << ": the band split differs from the serial walk (plan " << p.plan.describe() << ")";
    }
    for (int64_t i = 0; i < kGuard; ++i)
      ASSERT_EQ(scratch[size_t(scratch_n + i)], -4242.f) << "threads=" << threads << " packed for " << pack_threads
                                                         << ": wrote past the scratch";
    int bad = 0;
    for (size_t i = 0; i < want.size() && bad < 5; ++i) {
      const double tol = 1e-4 * (1.0 + std::fabs(want[i])) * std::sqrt(double(s.C + s.E));
      if (!(std::fabs(got[i] - want[i]) <= tol)) {
        ADD_FAILURE() << "threads=" << threads << " packed for " << pack_threads << " split=" << p.plan.split_chunks
                      << " plan " << p.plan.describe() << ": element " << i << " got "
                      << got[i] << " want " << want[i];
        ++bad;
      }
    }
  }
  omp_set_num_threads(2);
}

class InvertedResidualTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { set_isa_override(GetParam()); }
  void TearDown() override { clear_isa_override(); }
};

InvertedResidualShape shape(int64_t N, int64_t H, int64_t W, int64_t C, int64_t E, int64_t OC, int64_t stride,
                            bool residual, int64_t K = 3) {
  InvertedResidualShape s;
  s.N = N, s.H = H, s.W = W, s.C = C, s.E = E, s.OC = OC;
  s.KH = s.KW = K, s.SH = s.SW = stride, s.PT = s.PL = s.PB = s.PR = K / 2;
  s.residual = residual;
  return s;
}

TEST_P(InvertedResidualTest, RaggedShapesStridesResidual) {
  uint32_t seed = 1;
  for (int64_t S : {int64_t(3000), int64_t(65536)}) {
    run_case({shape(1, 9, 10, 5, 37, 5, 1, true), 0, S}, seed++);
    run_case({shape(2, 11, 7, 6, 50, 13, 2, false), 1, S}, seed++);
    run_case({shape(1, 10, 9, 7, 29, 7, 1, false), 2, S}, seed++);
    run_case({shape(1, 8, 8, 3, 100, 3, 1, true, 5), 0, S}, seed++);
    run_case({shape(1, 13, 13, 4, 24, 9, 2, false, 5), 1, S}, seed++);
    if (HasFailure()) return;
  }
}

TEST_P(InvertedResidualTest, TwoLayerForms) {
  InvertedResidualShape dw_pw = shape(1, 12, 11, 19, 19, 10, 1, false);  // MobileNetV2 block 1
  dw_pw.expand = false;
  run_case({dw_pw, 0, 4096}, 40);
  run_case({dw_pw, 0, 65536}, 41);
  InvertedResidualShape pw_dw = shape(2, 9, 9, 6, 33, 33, 2, false);
  pw_dw.project = false;
  run_case({pw_dw, 1, 8192}, 42);
  run_case({pw_dw, 0, 65536}, 43);
}

// The pw -> dw(Kx1) -> dw(1xK) -> pw chains of a 4-way CP decomposition, and a general second stage
// with its own vertical halo (KH2 > 1) and strides.
InvertedResidualShape cp_shape(int64_t N, int64_t H, int64_t W, int64_t C, int64_t R, int64_t OC, int64_t K,
                               int64_t stride) {
  InvertedResidualShape s;
  s.N = N, s.H = H, s.W = W, s.C = C, s.E = R, s.OC = OC;
  s.KH = K, s.KW = 1, s.SH = stride, s.SW = 1, s.PT = s.PB = K / 2, s.PL = s.PR = 0;
  s.dw2 = true;
  s.KH2 = 1, s.KW2 = K, s.SH2 = 1, s.SW2 = stride, s.PT2 = s.PB2 = 0, s.PL2 = s.PR2 = K / 2;
  return s;
}

TEST_P(InvertedResidualTest, TwoDepthwiseStages) {
  uint32_t seed = 60;
  for (int64_t S : {int64_t(2500), int64_t(65536)}) {
    run_case({cp_shape(1, 11, 9, 7, 21, 13, 3, 1), 2, S}, seed++);
    run_case({cp_shape(2, 13, 10, 5, 40, 6, 3, 2), 1, S}, seed++);
    run_case({cp_shape(1, 9, 12, 3, 17, 8, 7, 2), 2, S}, seed++);  // the 7x7 stem of ResNet-50, small
    InvertedResidualShape r = cp_shape(1, 10, 10, 6, 30, 6, 3, 1);
    r.residual = true;
    run_case({r, 0, S}, seed++);
    InvertedResidualShape g = shape(1, 12, 11, 5, 26, 9, 2, false);  // 3x3 s2, then 3x3 s1 with pads 1
    g.dw2 = true, g.KH2 = g.KW2 = 3, g.PT2 = g.PL2 = g.PB2 = g.PR2 = 1;
    run_case({g, 1, S}, seed++);
    InvertedResidualShape np = cp_shape(1, 8, 9, 4, 12, 12, 3, 1);  // no project stage
    np.project = false;
    run_case({np, 2, S}, seed++);
    if (HasFailure()) return;
  }
}

TEST_P(InvertedResidualTest, MobileNetV2Blocks) {
  // Real block shapes (smaller images): 24 -> 144 -> 24 with residual; 32 -> 192 -> 64 stride 2.
  run_case({shape(1, 28, 28, 24, 144, 24, 1, true), 0, 65536}, 50);
  run_case({shape(1, 14, 14, 32, 192, 64, 2, false), 0, 65536}, 51);
  run_case({shape(2, 7, 7, 160, 960, 160, 1, true), 0, 65536}, 52);
  const int before = split_cases;
  run_case({shape(1, 7, 7, 160, 960, 160, 1, true), 0, 131072}, 53);  // one band, several chunks: split
  EXPECT_GT(split_cases, before) << "the chunk-split path was not exercised";
}

INSTANTIATE_TEST_SUITE_P(Isa, InvertedResidualTest, ::testing::ValuesIn(supported_isas()),
                         [](const ::testing::TestParamInfo<Isa>& i) { return std::string(isa_name(i.param)); });

// Packed for 2 threads, the work is shared evenly: equal numbers of chunks when the threads split
// the chunks, output rows within 5% when they split the bands (MobileNetV2 shapes, the 1 MiB L2's S).
TEST(InvertedResidualPack, TwoThreadsGetEvenShares) {
  const int64_t S = 131072;
  for (const InvertedResidualShape& s :
       {shape(1, 56, 56, 24, 144, 32, 2, false), shape(1, 28, 28, 32, 192, 32, 1, true),
        shape(1, 28, 28, 32, 192, 64, 2, false), shape(1, 14, 14, 64, 384, 96, 1, false),
        shape(1, 14, 14, 96, 576, 160, 2, false), shape(1, 112, 112, 16, 96, 24, 2, false)}) {
    const auto we = random_floats(s.E * s.C, 1), wd = random_floats(s.E * 9, 2), wp = random_floats(s.OC * s.E, 3);
    InvertedResidualWeights w;
    w.expand = we.data(), w.dw = wd.data(), w.project = wp.data();
    const PackedInvertedResidual p = pack_inverted_residual(s, w, S, 2);
    SCOPED_TRACE(p.plan.describe());
    if (p.plan.split_chunks == 2) {
      EXPECT_EQ(p.plan.chunks % 2, 0);
    } else {
      const int64_t OH = s.OH(), half = p.plan.bands / 2;  // thread 0 takes bands [0, half)
      const int64_t rows0 = std::min(OH, half * p.plan.rows), rows1 = OH - rows0;
      EXPECT_LE(double(std::max(rows0, rows1)) * 2 / double(OH), 1.05) << rows0 << " vs " << rows1;
    }
  }
}

}  // namespace
}  // namespace locus::kernels
