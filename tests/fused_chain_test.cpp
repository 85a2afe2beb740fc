// The fused-chain kernel (kernels/native/fused_chain.h) against the unfused composition, computed
// here stage by stage with plain loops (NHWC, double accumulation), on ragged chains (2 to 5
// stages, strides 1 and 2, 1x1 / depthwise, with and without a residual, relu / clip / none),
// under several plans of the chain planner (bands of 1 row to the whole image, chunked runs with a
// ragged last chunk, whole intermediates), for every ISA this CPU runs. Tolerance: fp32 sums in a
// different order, |fused - composition| <= 1e-4 x (1 + |composition|). On 2 and 3 threads (bands
// split among them, or a lone band's GEMMs) the output is the same bytes as on one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "graph/error.h"
#include "kernels/native/fused_chain.h"
#include "tests/isa_util.h"
#include "tests/test_support.h"

using namespace locus;
using namespace locus::kernels;
using namespace locus::schedule;

namespace {

ChainStage pw(int64_t oc) { return ChainStage{false, oc}; }
ChainStage dw(int64_t c, int64_t k, int64_t stride) {
  ChainStage g{true, c};
  g.KH = g.KW = k, g.SH = g.SW = stride;
  g.PT = g.PB = g.PL = g.PR = k / 2;
  return g;
}

struct Chain {
  FusedChainShape shape;
  std::vector<Activation> acts;
  Activation out_act;
  std::vector<std::vector<int64_t>> chunkings;  // besides all-whole
};

FusedChainShape make(int64_t H, int64_t W, int64_t C, std::vector<ChainStage> st, ChainResidual r) {
  FusedChainShape s;
  s.H = H, s.W = W, s.C = C, s.stages = std::move(st), s.residual = r;
  return s;
}

std::vector<Chain> chains() {
  const Activation relu{ActKind::Relu}, clip{ActKind::Clip, -0.5f, 0.75f}, none;
  std::vector<Chain> v;
  auto add = [&](FusedChainShape s, std::vector<Activation> a, Activation o, std::vector<std::vector<int64_t>> ch) {
    Chain c;
    c.shape = std::move(s), c.acts = std::move(a), c.out_act = o, c.chunkings = std::move(ch);
    v.push_back(std::move(c));
  };
  add(make(7, 9, 13, {pw(21), pw(13)}, ChainResidual::Input), {relu, none}, relu, {{0, 16, 0}});
  add(make(11, 10, 8, {pw(40), dw(40, 3, 2), pw(12)}, ChainResidual::None), {clip, relu, none}, none,
      {{0, 16, 16, 0}, {0, 32, 32, 0}});
  add(make(12, 9, 24, {pw(20), pw(18), dw(18, 3, 1), pw(20), pw(24)}, ChainResidual::Input),
      {relu, none, none, relu, none}, relu, {{0, 16, 0, 0, 0, 0}, {0, 0, 8, 8, 0, 0}, {0, 16, 0, 0, 8, 0}});
  add(make(13, 11, 16, {pw(20), pw(10), dw(10, 3, 2), pw(20), pw(36)}, ChainResidual::External),
      {relu, none, none, relu, none}, relu, {{0, 0, 8, 8, 0, 0}, {0, 16, 0, 0, 16, 0}});
  add(make(10, 8, 12, {dw(12, 5, 1), pw(30), dw(30, 3, 2), pw(17)}, ChainResidual::External),
      {none, relu, clip, none}, none, {{0, 0, 16, 16, 0}});
  return v;
}

// The chain node by node: plain loops on NHWC, double sums.
std::vector<float> compose(const Chain& c, int64_t N, const std::vector<float>& x, const std::vector<std::vector<float>>& w,
                           const std::vector<std::vector<float>>& bias, const std::vector<float>& res) {
  const FusedChainShape& s = c.shape;
  std::vector<float> cur = x;
  int64_t H = s.H, W = s.W, C = s.C;
  for (int64_t st = 0; st < s.n(); ++st) {
    const ChainStage& g = s.stages[size_t(st)];
    const int64_t OH = (H + g.PT + g.PB - g.KH) / g.SH + 1, OW = (W + g.PL + g.PR - g.KW) / g.SW + 1, OC = g.OC;
    std::vector<float> out(size_t(N * OH * OW * OC));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow)
          for (int64_t o = 0; o < OC; ++o) {
            double acc = bias[size_t(st)][size_t(o)];
            if (!g.depthwise) {
              for (int64_t ci = 0; ci < C; ++ci)
                acc += double(cur[size_t(((n * H + oh) * W + ow) * C + ci)]) * w[size_t(st)][size_t(o * C + ci)];
            } else {
              for (int64_t kh = 0; kh < g.KH; ++kh)
                for (int64_t kw = 0; kw < g.KW; ++kw) {
                  const int64_t ih = oh * g.SH - g.PT + kh, iw = ow * g.SW - g.PL + kw;
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  acc += double(cur[size_t(((n * H + ih) * W + iw) * C + o)]) * w[size_t(st)][size_t((o * g.KH + kh) * g.KW + kw)];
                }
            }
            out[size_t(((n * OH + oh) * OW + ow) * OC + o)] = c.acts[size_t(st)].apply(float(acc));
          }
    cur = std::move(out);
    H = OH, W = OW, C = OC;
  }
  for (size_t k = 0; k < cur.size(); ++k) {
    if (!res.empty()) cur[k] += res[k];
    cur[k] = c.out_act.apply(cur[k]);
  }
  return cur;
}

// Random weights and biases of every stage of c (seeds from ++seed), and the kernel's view of them.
struct StageWeights {
  std::vector<std::vector<float>> w, bias;
  std::vector<FusedChainStageWeights> view;
  StageWeights(const Chain& c, uint32_t& seed) {
    const FusedChainShape& s = c.shape;
    for (int64_t st = 0; st < s.n(); ++st) {
      w.push_back(test::random_floats(size_t(s.weights(st)), ++seed, -0.4f, 0.4f));
      bias.push_back(test::random_floats(size_t(s.TC(st + 1)), ++seed, -0.2f, 0.2f));
    }
    for (int64_t st = 0; st < s.n(); ++st) view.push_back({w[size_t(st)].data(), bias[size_t(st)].data(), c.acts[size_t(st)]});
  }
};

class FusedChainKernel : public test::IsaTest {};

TEST_P(FusedChainKernel, EqualsTheUnfusedComposition) {
  const int64_t N = 2;
  int plans = 0;
  uint32_t seed = 7;
  for (const Chain& c : chains()) {
    const FusedChainShape& s = c.shape;
    const int64_t n = s.n();
    const StageWeights sw(c, seed);
    const auto& w = sw.w;
    const auto& bias = sw.bias;
    const std::vector<float> x = test::random_floats(size_t(N * s.H * s.W * s.C), ++seed);
    const int64_t out_n = N * s.TH(n) * s.TW(n) * s.TC(n);
    std::vector<float> res;
    if (s.residual == ChainResidual::Input) res = x;
    if (s.residual == ChainResidual::External) res = test::random_floats(size_t(out_n), ++seed);
    const std::vector<float> want = compose(c, N, x, w, bias, res);
    std::vector<std::vector<int64_t>> chunkings = c.chunkings;
    chunkings.push_back(std::vector<int64_t>(size_t(n + 1), 0));
    for (const auto& ch : chunkings)
      for (int64_t rows : {int64_t(1), int64_t(2), int64_t(5), s.TH(n)}) {
        FusedChainPlanAttempt a = try_fused_chain_plan(s, int64_t(1) << 30, rows, ch, std::vector<bool>(size_t(n), false));
        ASSERT_TRUE(a.plan) << a.why_not;
        const PackedFusedChain p = pack_fused_chain(*a.plan, N, sw.view, c.out_act);
        std::vector<float> scratch(size_t(p.scratch) + 1, std::nanf("")), got(size_t(out_n), std::nanf(""));
        fused_chain_nhwc(p, x.data(), res.empty() ? nullptr : res.data(), got.data(), scratch.data());
        for (size_t k = 0; k < got.size(); ++k)
          ASSERT_LE(std::fabs(got[k] - want[k]), 1e-4f * (1.f + std::fabs(want[k])))
              << a.plan->describe() << " at " << k << ": " << got[k] << " vs " << want[k];
        ++plans;
      }
  }
  EXPECT_GE(plans, 40);
}

TEST_P(FusedChainKernel, ThreadsGiveTheSameBytes) {
  int compared = 0;
  uint32_t seed = 101;
  // and one large enough for the threaded GEMMs of a lone band (gemm_f32 threads above 2e5 flops)
  std::vector<Chain> cs = chains();
  const Activation relu{ActKind::Relu};
  cs.push_back({make(16, 16, 64, {pw(96), pw(48), dw(48, 3, 1), pw(64)}, ChainResidual::Input), {relu, relu, relu, relu},
                relu, {{0, 0, 32, 32, 0}}});
  for (const Chain& c : cs) {
    const FusedChainShape& s = c.shape;
    const int64_t n = s.n();
    const StageWeights sw(c, seed);
    // N = 1 with one band: a lone walk whose GEMMs take the threads; else bands shared out
    for (int64_t N : {int64_t(1), int64_t(3)})
      for (const auto& ch : c.chunkings)
        for (int64_t rows : {int64_t(1), int64_t(3), s.TH(n)}) {
          const std::vector<float> x = test::random_floats(size_t(N * s.H * s.W * s.C), ++seed);
          const int64_t out_n = N * s.TH(n) * s.TW(n) * s.TC(n);
          std::vector<float> res;
          if (s.residual == ChainResidual::Input) res = x;
          if (s.residual == ChainResidual::External) res = test::random_floats(size_t(out_n), ++seed);
          FusedChainPlanAttempt a = try_fused_chain_plan(s, int64_t(1) << 30, rows, ch, std::vector<bool>(size_t(n), false));
          ASSERT_TRUE(a.plan) << a.why_not;
          std::vector<float> one;
          for (int threads : {1, 2, 3}) {
            const PackedFusedChain p = pack_fused_chain(*a.plan, N, sw.view, c.out_act, threads);
            std::vector<float> scratch(size_t(p.scratch), std::nanf("")), got(size_t(out_n), std::nanf(""));
            fused_chain_nhwc(p, x.data(), res.empty() ? nullptr : res.data(), got.data(), scratch.data());
            if (threads == 1) {
              one = got;
              continue;
            }
            ASSERT_EQ(std::memcmp(one.data(), got.data(), one.size() * sizeof(float)), 0)
                << a.plan->describe() << " N=" << N << ": " << threads << " threads differ from one";
            ++compared;
          }
        }
  }
  EXPECT_GE(compared, 50);
}

TEST_P(FusedChainKernel, NoBandFitsIsAnError) {
  const FusedChainShape s = make(64, 64, 256, {pw(64), dw(64, 3, 1), pw(256)}, ChainResidual::Input);
  std::vector<float> w0(256 * 64), w1(64 * 9), w2(64 * 256);
  std::vector<FusedChainStageWeights> w(3);
  w[0].w = w0.data(), w[1].w = w1.data(), w[2].w = w2.data();
  EXPECT_THROW(pack_fused_chain(s, 1, w, Activation{}, 1000), Error);
}

INSTANTIATE_TEST_SUITE_P(Isa, FusedChainKernel, ::testing::ValuesIn(test::supported_isas()), test::isa_param_name);

}  // namespace
