// The fused-chain kernel (kernels/native/fused_chain.h): packing per the plan's runs and chunks, and
// the band walk composing gemm_f32 (1x1 stages) and depthwise_row (depthwise stages).
#include "kernels/native/fused_chain.h"

#include <omp.h>

#include <algorithm>

#include "graph/error.h"
#include "kernels/native/depthwise_row.h"
#include "kernels/native/dwconv_microkernel.h"
#include "kernels/native/elementwise.h"
#include "kernels/native/epilogue.h"

namespace locus::kernels {

PackedFusedChain pack_fused_chain(const schedule::FusedChainShape& s, int64_t N,
                                  const std::vector<FusedChainStageWeights>& w, const Activation& out_act, int64_t S,
                                  int threads) {
  return pack_fused_chain(schedule::plan_fused_chain(s, S), N, w, out_act, threads);
}

PackedFusedChain pack_fused_chain(const schedule::FusedChainPlan& plan, int64_t N,
                                  const std::vector<FusedChainStageWeights>& w, const Activation& out_act,
                                  int threads) {
  const schedule::FusedChainShape& s = plan.shape;
  s.check();
  const int64_t n = s.n();
  LOCUS_CHECK(N >= 1, "fused chain: bad batch ", N);
  LOCUS_CHECK(threads >= 1, "fused chain: bad thread count ", threads);
  LOCUS_CHECK(int64_t(w.size()) == n, "fused chain: ", n, " stages but ", w.size(), " weight sets");
  LOCUS_CHECK(out_act.kind == ActKind::None || out_act.kind == ActKind::Relu, "fused chain: the output activation must be none or relu");
  PackedFusedChain p;
  p.plan = plan;
  p.N = N;
  p.threads = threads;
  p.out_act = out_act;
  for (int64_t st = 0; st < n; ++st) {
    const schedule::ChainStage& g = s.stages[size_t(st)];
    const FusedChainStageWeights& sw = w[size_t(st)];
    LOCUS_CHECK(sw.w != nullptr, "fused chain: stage ", st, " has no weights");
    LOCUS_CHECK(sw.act.is_clamp(), "fused chain: stage ", st, "'s activation is not none, relu or clip");
    PackedFusedChain::Stage ps;
    ps.act = sw.act;
    ps.bias.assign(size_t(g.OC), 0.f);
    if (sw.bias) std::copy(sw.bias, sw.bias + g.OC, ps.bias.begin());
    const int64_t C = s.TC(st);
    const auto run = plan.run_of(st);
    if (g.depthwise) {
      ps.geom = Conv2dShape{1, s.TH(st), s.TW(st), C, s.TH(st + 1), s.TW(st + 1), C, g.KH, g.KW, g.SH, g.SW,
                            g.PT, g.PL, g.PB, g.PR, 1, 1, C};
      const int64_t taps = g.KH * g.KW;
      if (run.first < 0) {
        ps.dw.push_back(pack_dw_chunk(sw.w, taps, 0, C));
      } else {
        const int64_t c = plan.chunk[size_t(st)];
        for (int64_t e0 = 0; e0 < C; e0 += c) ps.dw.push_back(pack_dw_chunk(sw.w, taps, e0, std::min(c, C - e0)));
      }
    } else if (run.first == st) {  // opens a run: the chunk's output channels
      const int64_t E = g.OC, c = plan.chunk[size_t(st + 1)];
      for (int64_t e0 = 0; e0 < E; e0 += c) ps.gemm.push_back(pack_b(C, std::min(c, E - e0), sw.w + e0 * C, C, true));
    } else if (run.second == st) {  // closes a run: the chunk's input channels
      const int64_t c = plan.chunk[size_t(st)];
      for (int64_t e0 = 0; e0 < C; e0 += c) ps.gemm.push_back(pack_b(std::min(c, C - e0), g.OC, sw.w + e0, C, true));
    } else {
      ps.gemm.push_back(pack_b(C, g.OC, sw.w, C, true));
    }
    p.stages.push_back(std::move(ps));
  }
  // band buffers of the intermediates, then a zero row for padded depthwise taps
  p.offset.assign(size_t(n + 1), 0);
  int64_t zeros = 0;
  for (int64_t i = 1; i < n; ++i) {
    int64_t rmax = 0;
    for (int64_t b = 0; b < plan.bands; ++b) rmax = std::max(rmax, plan.band_last(i, b) - plan.band_first(i, b));
    if (i == 1 && n >= 2 && !s.stages[0].depthwise && plan.chunk[1] == 0) p.ring_rows = rmax;
    p.offset[size_t(i)] = p.per_thread;
    p.per_thread += rmax * s.TW(i) * (plan.chunk[size_t(i)] ? plan.chunk[size_t(i)] : s.TC(i));
  }
  for (int64_t st = 0; st < n; ++st) {
    const schedule::ChainStage& g = s.stages[size_t(st)];
    if (g.depthwise) zeros = std::max(zeros, (s.TW(st) + g.PL + g.PR) * s.TC(st));
  }
  p.per_thread = (p.per_thread + 15) / 16 * 16;  // each thread's part on its own cache lines
  // only as many parts as there are bands to share out
  p.zeros_at = p.per_thread * std::min<int64_t>(threads, std::max<int64_t>(N * plan.bands, 1));
  p.scratch = p.zeros_at + zeros;
  return p;
}

void fused_chain_nhwc(const PackedFusedChain& p, const float* in, const float* residual, float* out, float* scratch) {
  const schedule::FusedChainPlan& plan = p.plan;
  const schedule::FusedChainShape& s = plan.shape;
  const int64_t n = s.n(), OH = s.TH(n), OW = s.TW(n), OC = s.TC(n);
  LOCUS_CHECK((residual != nullptr) == (s.residual != schedule::ChainResidual::None),
              "fused chain: the residual is ", residual ? "given" : "missing");
  const DwConvMicroKernel uk = dwconv_microkernel_for(active_isa());
  float* zeros = scratch + p.zeros_at;
  std::fill(zeros, scratch + p.scratch, 0.f);
  const Activation none;
  // Band b of image img, with the band buffers at `buf` and `gt` threads for its GEMMs.
  const int64_t R = p.ring_rows;
  // Band b of image img, with the band buffers at `buf` and `gt` threads for its GEMMs. have1: with
  // the T1 ring, T1's rows [.., have1) of this image are in the ring (-1: none; updated).
  auto band = [&](int64_t img, int64_t b, float* buf, int gt, int64_t& have1) {
    const float* x = in + img * s.H * s.W * s.C;
    float* y = out + img * OH * OW * OC;
    {
      // Row r (of the whole tensor) of tensor i's band buffer, whose pixels hold `wd` channels (all
      // of them, or the current chunk's); T1 with the ring: slot r mod R.
      auto row = [&](int64_t i, int64_t r, int64_t wd) -> float* {
        if (i == 0) return const_cast<float*>(x) + r * s.W * s.C;
        if (i == n) return y + r * OW * OC;
        if (i == 1 && R) return buf + p.offset[1] + (r % R) * s.TW(1) * wd;
        return buf + p.offset[size_t(i)] + (r - plan.band_first(i, b)) * s.TW(i) * wd;
      };
      // 1x1 stage st on rows [f, l): one GEMM per stretch of rows contiguous in its input's and
      // output's buffers (the T1 ring, stage 0's output or stage 1's input, wraps at most once).
      auto pointwise = [&](int64_t st, int64_t f, int64_t l, const PackedB& B, int64_t in_wd, int64_t out_wd,
                           const float* bias, const Activation& act, bool acc) {
        for (int64_t r0 = f; r0 < l;) {
          const int64_t r1 = st <= 1 && R ? std::min(l, r0 + R - r0 % R) : l;
          gemm_f32((r1 - r0) * s.TW(st), row(st, r0, in_wd), in_wd, B, row(st + 1, r0, out_wd), out_wd, bias, act, acc,
                   gt);
          r0 = r1;
        }
      };
      // depthwise stage st on `cw` channels [e0, e0 + cw) (its input and output buffers that wide)
      auto depthwise = [&](int64_t st, int64_t q, int64_t e0, int64_t cw) {
        const PackedFusedChain::Stage& ps = p.stages[size_t(st)];
        const Epilogue ep = epilogue_for(ps.act);
        const DwInterior interior = dw_interior(ps.geom);
        const int64_t H = s.TH(st);
        auto row_of = [&](int64_t ih) -> const float* { return ih < 0 || ih >= H ? nullptr : row(st, ih, cw); };
        for (int64_t oh = plan.band_first(st + 1, b); oh < plan.band_last(st + 1, b); ++oh)
          depthwise_row(ps.geom, interior, cw, cw, uk, row_of, oh, zeros, ps.dw[size_t(q)].data(), ps.bias.data() + e0, &ep,
                        row(st + 1, oh, cw));
      };
      for (int64_t st = 0; st < n; ++st) {
        const PackedFusedChain::Stage& ps = p.stages[size_t(st)];
        const auto run = plan.run_of(st);
        const int64_t f = plan.band_first(st + 1, b), l = plan.band_last(st + 1, b);
        if (l <= f) continue;
        if (run.first < 0) {
          if (s.stages[size_t(st)].depthwise) {
            depthwise(st, 0, 0, s.TC(st));
          } else if (st == 0 && R) {  // only the T1 rows the ring lacks
            pointwise(0, have1 >= 0 ? std::max(f, have1) : f, l, ps.gemm[0], s.TC(0), s.TC(1), ps.bias.data(), ps.act,
                      false);
            have1 = l;
          } else {
            pointwise(st, f, l, ps.gemm[0], s.TC(st), s.TC(st + 1), ps.bias.data(), ps.act, false);
          }
          continue;
        }
        if (run.first != st) continue;  // walked with its run
        const int64_t close = run.second, E = s.TC(st + 1), c = plan.chunk[size_t(st + 1)], chunks = plan.chunks_of_run(st);
        const PackedFusedChain::Stage& pc = p.stages[size_t(close)];
        const int64_t cf = plan.band_first(close + 1, b), cl = plan.band_last(close + 1, b);
        const int64_t CM = (cl - cf) * s.TW(close + 1), COC = s.TC(close + 1);
        for (int64_t t = 0; t < chunks; ++t) {
          const int64_t q = b % 2 == 0 ? t : chunks - 1 - t;
          const int64_t e0 = q * c, cw = std::min(c, E - e0);
          pointwise(st, f, l, ps.gemm[size_t(q)], s.TC(st), cw, ps.bias.data() + e0, ps.act, false);
          for (int64_t d = st + 1; d < close; ++d) depthwise(d, q, e0, cw);
          if (cl > cf)
            gemm_f32(CM, row(close, cf, cw), cw, pc.gemm[size_t(q)], row(close + 1, cf, COC), COC,
                     t == 0 ? pc.bias.data() : nullptr,
                     t == chunks - 1 ? pc.act : none, t > 0, gt);
        }
      }
      // the residual and the output activation on the band's output rows
      const int64_t oh0 = plan.band_first(n, b), oh1 = plan.band_last(n, b);
      float* o = y + oh0 * OW * OC;
      const int64_t cnt = (oh1 - oh0) * OW * OC;
      if (residual)
        binary_same_f32(BinaryOp::Add, cnt, o, residual + img * OH * OW * OC + oh0 * OW * OC, o, p.out_act);
      else if (p.out_act.kind == ActKind::Relu)
        activation_f32(p.out_act, o, o, cnt);
    }
  };
  // The plan's thread count, never the OpenMP setting: the scratch holds exactly that many parts.
  const int threads = omp_in_parallel() ? 1 : p.threads;
  const int64_t total = p.N * plan.bands;
  int band_threads = int(std::min<int64_t>(threads, total));
  // Bands that do not share out evenly (3 on 2 threads: one waits a band's time, 25% of the work)
  // run one by one with their GEMMs on all the threads instead.
  if (band_threads > 1 && 100 * ((total + band_threads - 1) / band_threads) * band_threads > 115 * total) band_threads = 1;
  // a stretch of bands [g0, g1) on one buffer: the T1 ring carries over within an image
  auto walk = [&](int64_t g0, int64_t g1, float* buf, int gt) {
    int64_t have1 = -1;
    for (int64_t g = g0; g < g1; ++g) {
      if (g % plan.bands == 0) have1 = -1;
      band(g / plan.bands, g % plan.bands, buf, gt, have1);
    }
  };
  if (band_threads <= 1) {
    walk(0, total, scratch, threads);
    return;
  }
#pragma omp parallel num_threads(band_threads)
  {
    // contiguous stretches of the batch's bands; the team may be smaller than asked for
    const int64_t T = omp_get_num_threads(), t = omp_get_thread_num();
    walk(total * t / T, total * (t + 1) / T, scratch + t * p.per_thread, 1);
  }
}

}  // namespace locus::kernels
