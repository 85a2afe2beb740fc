// The fused-chain planner (schedule/fused_chain_planner.h): its closed-form traffic, MACs and buffer
// against an explicit walk of the schedule (below), on ragged chains of two to five stages with
// strides 1 and 2, with and without a residual; the search; the refusal when no band fits.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "graph/error.h"
#include "schedule/fused_chain_planner.h"

using namespace locus;
using namespace locus::schedule;

namespace {

ChainStage pw(int64_t oc) { return ChainStage{false, oc}; }
ChainStage dw(int64_t c, int64_t k, int64_t stride, int64_t kw = -1) {
  ChainStage g{true, c};
  g.KH = k, g.KW = kw < 0 ? k : kw, g.SH = stride, g.SW = stride;
  g.PT = g.PB = k / 2, g.PL = g.PR = g.KW / 2;
  return g;
}

// Independent of the planner's interval arithmetic: row sets, tap by tap, and an explicit on-chip
// store of input rows and weight blocks with the schedule's residency rules (resident weights stay,
// a run's slot holds one chunk, a streamed stage's panel slot one panel).
struct Walk {
  int64_t input = 0, residual = 0, weights = 0, output = 0, macs = 0, peak = 0;
  int64_t total() const { return input + residual + weights + output; }
};

// Output sizes walked tap by tap (not the planner's formula): the last output row whose window starts
// inside the padded input.
int64_t out_extent(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1) {
  int64_t o = 0;
  while (o * s + k <= in + p0 + p1) ++o;
  return o;
}

Walk walk(const FusedChainPlan& p, int64_t panel = 16) {
  const FusedChainShape& s = p.shape;
  const int64_t n = s.n();
  std::vector<int64_t> H{s.H}, W{s.W}, C{s.C};
  for (const ChainStage& g : s.stages) {
    H.push_back(out_extent(H.back(), g.KH, g.SH, g.PT, g.PB));
    W.push_back(out_extent(W.back(), g.KW, g.SW, g.PL, g.PR));
    C.push_back(g.OC);
  }
  auto stage_w = [&](int64_t st) { return s.stages[size_t(st)].depthwise ? C[size_t(st)] * s.stages[size_t(st)].KH * s.stages[size_t(st)].KW : C[size_t(st)] * C[size_t(st + 1)]; };
  Walk r;
  std::set<int64_t> ring;                       // input rows on chip (staged: rows seen so far)
  std::set<int64_t> t1_prev;                    // staged: the rows of T1 the previous band computed
  std::map<std::pair<int64_t, int64_t>, int64_t> store;  // (slot, block) -> entries; slot = stage
  auto need_weights = [&](int64_t slot, int64_t block, int64_t entries, bool exclusive) {
    if (store.count({slot, block})) return;
    if (exclusive)
      for (auto it = store.begin(); it != store.end();) it = it->first.first == slot ? store.erase(it) : std::next(it);
    store[{slot, block}] = entries;
    r.weights += entries;
  };
  const int64_t bands = (H[size_t(n)] + p.rows - 1) / p.rows;
  EXPECT_EQ(bands, p.bands);
  for (int64_t b = 0; b < bands; ++b) {
    // rows of every tensor the band needs, tap by tap from its output rows back
    std::vector<std::set<int64_t>> need(size_t(n + 1));
    for (int64_t r0 = b * p.rows; r0 < std::min(H[size_t(n)], (b + 1) * p.rows); ++r0) need[size_t(n)].insert(r0);
    for (int64_t st = n - 1; st >= 0; --st) {
      const ChainStage& g = s.stages[size_t(st)];
      for (int64_t o : need[size_t(st + 1)])
        for (int64_t k = 0; k < g.KH; ++k) {
          const int64_t i = o * g.SH - g.PT + k;
          if (i >= 0 && i < H[size_t(st)]) need[size_t(st)].insert(i);
        }
    }
    int64_t new_input_rows = 0;
    for (int64_t i : need[0])
      if (!ring.count(i)) r.input += W[0] * C[0], ++new_input_rows;
    ring = need[0];
    if (s.residual == ChainResidual::External || (p.staged && s.residual == ChainResidual::Input))
      r.residual += int64_t(need[size_t(n)].size()) * W[size_t(n)] * C[size_t(n)];
    for (int64_t st = 0; st < n; ++st) {
      int64_t rows_out = int64_t(need[size_t(st + 1)].size());
      if (p.staged && st == 0)  // T1 is a ring: only rows the previous band did not compute
        for (int64_t i : need[1]) rows_out -= t1_prev.count(i) ? 1 : 0;
      r.macs += rows_out * W[size_t(st + 1)] * stage_w(st);
    }
    t1_prev = need[1];
    // weights, stage by stage; a run walks its chunks (forward on even bands, backward on odd)
    for (int64_t st = 0; st < n; ++st) {
      const auto run = p.run_of(st);
      if (run.first < 0) {
        const int64_t per_oc = stage_w(st) / C[size_t(st + 1)];
        if (p.resident[size_t(st)]) {
          need_weights(st, 0, stage_w(st), false);
        } else if (p.staged && st == 0) {  // slices of `panel` input channels x all outputs
          for (int64_t ic0 = 0; ic0 < C[0]; ic0 += panel)
            need_weights(st, ic0, (std::min(C[0], ic0 + panel) - ic0) * C[1], true);
        } else {
          for (int64_t oc0 = 0; oc0 < C[size_t(st + 1)]; oc0 += panel)
            need_weights(st, oc0, (std::min(C[size_t(st + 1)], oc0 + panel) - oc0) * per_oc, true);
        }
      } else if (run.first == st) {
        const int64_t E = C[size_t(st + 1)], c = p.chunk[size_t(st + 1)], chunks = (E + c - 1) / c;
        for (int64_t t = 0; t < chunks; ++t) {
          const int64_t q = b % 2 == 0 ? t : chunks - 1 - t;
          const int64_t cw = std::min(E, (q + 1) * c) - q * c;
          int64_t w = C[size_t(st)] * cw + cw * C[size_t(run.second + 1)];
          for (int64_t d = st + 1; d < run.second; ++d) w += s.stages[size_t(d)].KH * s.stages[size_t(d)].KW * cw;
          need_weights(st, q, w, true);
        }
      }
    }
    // live entries of this band: the input rows, every intermediate's rows, the output tile, the weights
    int64_t live = p.staged ? new_input_rows * W[0] * std::min(C[0], panel) : int64_t(ring.size()) * W[0] * C[0];
    for (int64_t i = 1; i < n; ++i)
      live += int64_t(need[size_t(i)].size()) * W[size_t(i)] * (p.chunk[size_t(i)] ? p.chunk[size_t(i)] : C[size_t(i)]);
    const bool out_panels = p.run_of(n - 1).first < 0;  // the last stage is whole: output panel by panel
    live += p.rows * W[size_t(n)] * (out_panels ? std::min(C[size_t(n)], panel) : C[size_t(n)]);
    for (auto& kv : store) live += kv.second;
    r.peak = std::max(r.peak, live);
    r.output += int64_t(need[size_t(n)].size()) * W[size_t(n)] * C[size_t(n)];
  }
  return r;
}

void expect_model_equals_walk(const FusedChainPlan& p, const std::string& what) {
  const Walk w = walk(p);
  SCOPED_TRACE(what + ": " + p.describe());
  EXPECT_EQ(p.reads_input, w.input);
  EXPECT_EQ(p.reads_residual, w.residual);
  EXPECT_EQ(p.reads_weights, w.weights);
  EXPECT_EQ(p.writes_output, w.output);
  EXPECT_EQ(p.total, w.total());
  EXPECT_EQ(p.macs, w.macs);
  EXPECT_LE(w.peak, p.buffer_entries);
  EXPECT_LE(p.buffer_entries, p.S);
}

struct Case {
  const char* name;
  FusedChainShape shape;
  std::vector<std::vector<int64_t>> chunkings;  // besides all-whole
};

FusedChainShape chain(int64_t H, int64_t W, int64_t C, std::vector<ChainStage> stages, ChainResidual r) {
  FusedChainShape s;
  s.H = H, s.W = W, s.C = C;
  s.stages = std::move(stages);
  s.residual = r;
  return s;
}

std::vector<Case> ragged_chains() {
  std::vector<Case> v;
  auto add = [&](const char* name, FusedChainShape s, std::vector<std::vector<int64_t>> chunkings) {
    Case c;
    c.name = name;
    c.shape = std::move(s);
    c.chunkings = std::move(chunkings);
    v.push_back(std::move(c));
  };
  // two 1x1 stages, residual = the input (9x9x24)
  add("pw-pw+input", chain(9, 9, 24, {pw(40), pw(24)}, ChainResidual::Input), {{0, 32, 0}, {0, 16, 0}});
  // 1x1 -> dw 3x3 stride 2 -> 1x1, no residual, odd sizes
  add("pw-dw/2-pw", chain(13, 11, 16, {pw(48), dw(48, 3, 2), pw(24)}, ChainResidual::None),
      {{0, 32, 32, 0}, {0, 48, 48, 0}});
  // the CP-decomposed bottleneck: reduce, U, dw 3x3, V, expand + the input
  add("bottleneck+input", chain(14, 14, 64, {pw(40), pw(36), dw(36, 3, 1), pw(40), pw(64)}, ChainResidual::Input),
      {{0, 32, 0, 0, 0, 0}, {0, 0, 32, 32, 0, 0}, {0, 32, 0, 0, 16, 0}, {0, 0, 16, 16, 0, 0}});
  // the strided bottleneck with a projected shortcut (External residual)
  add("bottleneck/2+external", chain(15, 13, 48, {pw(40), pw(20), dw(20, 3, 2), pw(40), pw(96)}, ChainResidual::External),
      {{0, 32, 0, 0, 0, 0}, {0, 0, 16, 16, 0, 0}, {0, 32, 0, 0, 32, 0}});
  // starts with a 5x5 depthwise stage, a strided 3x3 one inside, external residual
  add("dw5-pw-dw/2-pw+external", chain(17, 15, 20, {dw(20, 5, 1), pw(50), dw(50, 3, 2), pw(30)}, ChainResidual::External),
      {{0, 0, 32, 32, 0}, {0, 0, 16, 16, 0}});
  // a 3x1 then 1x3 depthwise pair (4-way CP) between two 1x1 stages, stride 2 on the first
  ChainStage a = dw(33, 3, 2, 1), c = dw(33, 1, 1, 3);
  a.SW = 1;
  add("pw-dw3x1/2-dw1x3-pw", chain(12, 10, 8, {pw(33), a, c, pw(8)}, ChainResidual::None), {{0, 16, 16, 16, 0}});
  return v;
}

TEST(FusedChainPlanner, ModelledTrafficEqualsBufferWalkOnRaggedChains) {
  const int64_t big = int64_t(1) << 40;
  int checked = 0;
  for (const Case& c : ragged_chains()) {
    const int64_t n = c.shape.n();
    std::vector<std::vector<int64_t>> chunkings = c.chunkings;
    chunkings.push_back(std::vector<int64_t>(size_t(n + 1), 0));
    for (const auto& ch : chunkings)
      for (int64_t rows : {int64_t(1), int64_t(2), int64_t(3), int64_t(5), c.shape.TH(n)})
        for (int res = 0; res < 6; ++res) {  // no stage resident, every whole stage, every other one; x staged
          const bool staged = res >= 3;
          if (staged && (c.shape.stages[0].depthwise || ch[1] != 0)) continue;
          std::vector<bool> resident(size_t(n), false);
          for (int64_t st = 0; st < n; ++st) {
            const bool whole = ch[size_t(st)] == 0 && ch[size_t(st + 1)] == 0;
            resident[size_t(st)] = whole && (res % 3 == 1 || (res % 3 == 2 && st % 2 == 0));
          }
          FusedChainPlanAttempt a = try_fused_chain_plan(c.shape, big, rows, ch, resident, staged);
          ASSERT_TRUE(a.plan) << c.name << ": " << a.why_not;
          expect_model_equals_walk(*a.plan, c.name);
          ++checked;
        }
    // the search's choice on a small buffer fits it and agrees with the walk
    const FusedChainPlan best = plan_fused_chain(c.shape, 40000);
    expect_model_equals_walk(best, std::string(c.name) + " (searched)");
  }
  EXPECT_GT(checked, 200);
}

TEST(FusedChainPlanner, SearchPrefersResidentWeightsAndFewBandsWhenAllFits) {
  // everything fits: one band, weights read once, each tensor once
  const FusedChainShape s = chain(8, 8, 16, {pw(32), dw(32, 3, 1), pw(16)}, ChainResidual::Input);
  const FusedChainPlan p = plan_fused_chain(s, 1 << 20);
  EXPECT_EQ(p.bands, 1);
  EXPECT_EQ(p.reads_input, 8 * 8 * 16);
  EXPECT_EQ(p.reads_weights, 16 * 32 + 32 * 9 + 32 * 16);
  EXPECT_EQ(p.writes_output, 8 * 8 * 16);
  EXPECT_EQ(p.reads_residual, 0);
}

TEST(FusedChainPlanner, HaloRowsAreRecomputedAndInputRowsReadOnce) {
  // two 3x3 stages: a band of 1 output row needs 5 input rows; each input row is still read once
  const FusedChainShape s = chain(10, 6, 4, {pw(8), dw(8, 3, 1), dw(8, 3, 1), pw(4)}, ChainResidual::None);
  FusedChainPlanAttempt a = try_fused_chain_plan(s, 1 << 30, 1, {0, 0, 0, 0, 0}, {true, true, true, true});
  ASSERT_TRUE(a.plan);
  EXPECT_EQ(a.plan->band_first(0, 4), 2);
  EXPECT_EQ(a.plan->band_last(0, 4), 7);
  EXPECT_EQ(a.plan->reads_input, 10 * 6 * 4);
  // expand MACs: the first 1x1 runs on 5 rows per band except at the edges (3, 4, ..., 4, 3)
  const int64_t pw_rows = 3 + 4 + 5 * 6 + 4 + 3;
  const int64_t dw1_rows = 2 + 3 * 8 + 2;
  EXPECT_EQ(a.plan->macs, pw_rows * 6 * 4 * 8 + dw1_rows * 6 * 8 * 9 + 10 * 6 * 8 * 9 + 10 * 6 * 8 * 4);
}

TEST(FusedChainPlanner, RefusesWithReasonWhenNoBandFits) {
  const FusedChainShape s = chain(56, 56, 256, {pw(64), pw(32), dw(32, 3, 1), pw(64), pw(256)}, ChainResidual::Input);
  FusedChainPlanAttempt a = search_fused_chain_plan(s, 2000);
  ASSERT_FALSE(a.plan);
  EXPECT_NE(a.why_not.find("S=2000"), std::string::npos) << a.why_not;
  EXPECT_NE(a.why_not.find("cannot hold any band"), std::string::npos) << a.why_not;
  EXPECT_THROW(plan_fused_chain(s, 2000), Error);
}

TEST(FusedChainPlanner, BadChainsAreErrors) {
  FusedChainShape strided_pw = chain(8, 8, 4, {pw(8), pw(4)}, ChainResidual::None);
  strided_pw.stages[0].SH = 2;
  EXPECT_THROW(strided_pw.check(), Error);
  const FusedChainShape bad_residual = chain(8, 8, 4, {pw(8)}, ChainResidual::Input);
  EXPECT_THROW(bad_residual.check(), Error);
  const FusedChainShape ok = chain(8, 8, 4, {pw(8), dw(8, 3, 1), pw(4)}, ChainResidual::None);
  // a run that does not end at a 1x1 stage, a depthwise stage that changes the chunking
  EXPECT_THROW(try_fused_chain_plan(ok, 1 << 20, 1, {0, 8, 4, 0}, {false, false, false}), Error);
  EXPECT_THROW(try_fused_chain_plan(ok, 1 << 20, 1, {0, 0, 0, 0}, {false}), Error);
}

}  // namespace
