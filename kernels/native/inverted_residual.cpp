#include "kernels/native/inverted_residual.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "graph/error.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/dwconv_microkernel.h"
#include "kernels/native/elementwise.h"

namespace locus::kernels {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Depthwise filter of output rows [oh0, oh1) of one image, channels [0, C) of a band.
// The band holds input rows [ih0, ih1): row ih at band + (ring ? ih mod ring : ih - ih0) * W * ps
// (pixel stride ps); rows and columns outside the image read `zeros` (at least (W + PL + PR) * ps
// floats). Output pixel
// (oh, ow) goes to out + ((oh - oh0) * OW + ow) * ops.
struct DwBand {
  const InvertedResidualShape* s;
  DwConvMicroKernel uk;
  const float* band;
  int64_t ih0, ih1, ps;
  int64_t ring;  // rows in the ring buffer, 0 = linear
  const float* zeros;
  const float* w;     // [taps][C]
  const float* bias;  // [C]
  const GemmEpilogue* ep;
  int64_t C;

  void run(int64_t oh0, int64_t oh1, float* out, int64_t ops) const {
    const InvertedResidualShape& g = *s;
    const int64_t OW = g.OW(), ntaps = g.KH * g.KW;
    LOCUS_CHECK(ntaps <= kDwMaxTaps, "fused block: depthwise kernel with ", ntaps, " taps (max ", kDwMaxTaps, ")");
    LOCUS_CHECK(ops == C, "fused block: depthwise output must be dense");
    const int64_t ow_lo = std::min(OW, ceil_div(g.PL, g.SW));
    int64_t ow_hi = (g.W - 1 + g.PL - (g.KW - 1)) >= 0 ? (g.W - 1 + g.PL - (g.KW - 1)) / g.SW + 1 : 0;
    ow_hi = std::clamp(ow_hi, ow_lo, OW);
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      auto px = [&](int64_t ow0, int64_t npix, bool check) {
        const float* taps[kDwMaxTaps];
        const int64_t ihb = oh * g.SH - g.PT, iwb = ow0 * g.SW - g.PL;
        int64_t t = 0;
        for (int64_t kh = 0; kh < g.KH; ++kh) {
          const int64_t ih = ihb + kh;
          const bool row_ok = ih >= ih0 && ih < ih1;
          for (int64_t kw = 0; kw < g.KW; ++kw, ++t) {
            const int64_t iw = iwb + kw;
            if (check && !(iw >= 0 && iw < g.W))
              taps[t] = zeros;
            else if (!row_ok)
              taps[t] = zeros + (iw + g.PL) * ps;
            else
              taps[t] = band + ((ring ? ih % ring : ih - ih0) * g.W + iw) * ps;
          }
        }
        uk(C, npix, taps, ntaps, g.SW * ps, w, bias, out + ((oh - oh0) * OW + ow0) * ops, ep);
      };
      for (int64_t ow = 0; ow < ow_lo; ++ow) px(ow, 1, true);
      if (ow_hi > ow_lo) px(ow_lo, ow_hi - ow_lo, false);
      for (int64_t ow = ow_hi; ow < OW; ++ow) px(ow, 1, true);
    }
  }
};

GemmEpilogue clamp_of(const Activation& a) { return epilogue_for(a); }

}  // namespace

tiling::FusedBlockShape InvertedResidualShape::block() const {
  tiling::FusedBlockShape b;
  b.H = H, b.W = W, b.C = C, b.E = E, b.OC = OC;
  b.KH = KH, b.KW = KW, b.SH = SH, b.SW = SW, b.PT = PT, b.PB = PB, b.PL = PL, b.PR = PR;
  b.expand = expand, b.project = project;
  return b;
}

PackedInvertedResidual pack_inverted_residual(const InvertedResidualShape& s, const InvertedResidualWeights& w,
                                              int64_t S) {
  LOCUS_CHECK(s.N >= 1 && s.H >= 1 && s.W >= 1 && s.C >= 1 && s.E >= 1 && s.OC >= 1 && s.OH() >= 1 && s.OW() >= 1,
              "fused block: bad shape");
  LOCUS_CHECK(s.expand || s.E == s.C, "fused block: without an expand stage E (", s.E, ") must equal C (", s.C, ")");
  LOCUS_CHECK(s.project || s.OC == s.E, "fused block: without a project stage OC must equal E");
  LOCUS_CHECK(!s.residual || (s.OC == s.C && s.OH() == s.H && s.OW() == s.W),
              "fused block: residual needs the output shape to equal the input shape");
  LOCUS_CHECK(w.dw && (!s.expand || w.expand) && (!s.project || w.project), "fused block: missing weights");
  PackedInvertedResidual p;
  p.s = s;
  p.plan = tiling::plan_fused_block(s.block(), S);
  p.expand_act = w.expand_act, p.dw_act = w.dw_act, p.project_act = w.project_act;
  auto copy_or_zero = [](const float* b, int64_t n) {
    return b ? std::vector<float>(b, b + n) : std::vector<float>(size_t(n), 0.f);
  };
  p.expand_bias = copy_or_zero(w.expand_bias, s.E);
  p.dw_bias = copy_or_zero(w.dw_bias, s.E);
  p.project_bias = copy_or_zero(w.project_bias, s.OC);
  const int64_t taps = s.KH * s.KW, ch = p.plan.chunk;
  for (int64_t e0 = 0; e0 < s.E; e0 += ch) {
    const int64_t ec = std::min(ch, s.E - e0);
    // GEMM B[k][n]: expand B[c][e] = W[e][c] (transposed, ldb = C); project B[e][oc] = W[oc][e] (ldb = E).
    if (s.expand) p.expand_chunks.push_back(pack_b(s.C, ec, w.expand + e0 * s.C, s.C, true));
    if (s.project) p.project_chunks.push_back(pack_b(ec, s.OC, w.project + e0, s.E, true));
    std::vector<float> d(size_t(taps * ec));
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t e = 0; e < ec; ++e) d[size_t(t * ec + e)] = w.dw[(e0 + e) * taps + t];
    p.dw_chunks.push_back(std::move(d));
  }
  const int64_t ps = s.expand ? ch : s.C;
  p.zeros.assign(size_t((s.W + s.PL + s.PR) * ps), 0.f);
  return p;
}

namespace {
// Per-thread scratch, each part rounded up to 16 floats: the expanded rows (the tallest band's
// in_rows x W x chunk; with the halo cache a ring of in_rows rows for every chunk, chunk i's ring at
// i * chunk * in_rows * W with pixel stride = that chunk's width, input row ih in slot ih mod
// in_rows) and the filtered chunk (rows x OW x chunk).
struct ScratchLayout {
  int64_t exp = 0, dw = 0;
  int64_t ring = 0;  // rows of the expanded ring (halo cache), 0 = no ring
  int64_t total() const { return exp + dw; }
};
ScratchLayout scratch_layout(const PackedInvertedResidual& p) {
  const auto& pl = p.plan;
  int64_t in_rows = 0;
  for (int64_t b = 0; b < pl.bands; ++b) in_rows = std::max(in_rows, pl.band_in_last(b) - pl.band_in_first(b));
  auto r16 = [](int64_t v) { return (v + 15) / 16 * 16; };
  ScratchLayout l;
  l.exp = p.s.expand ? r16(in_rows * p.s.W * (pl.halo_cache ? p.s.E : pl.chunk)) : 0;
  l.dw = p.s.project ? r16(pl.rows * p.s.OW() * pl.chunk) : 0;
  l.ring = pl.halo_cache ? in_rows : 0;
  return l;
}
}  // namespace

int64_t inverted_residual_scratch_floats(const PackedInvertedResidual& p, int threads) {
  return scratch_layout(p).total() * std::max(threads, 1);
}

void inverted_residual_nhwc(const PackedInvertedResidual& p, const float* in, float* out, float* scratch) {
  const InvertedResidualShape& s = p.s;
  const tiling::FusedBlockPlan& pl = p.plan;
  const int64_t OH = s.OH(), OW = s.OW(), chunks = pl.chunks, ch = pl.chunk;
  const int64_t total_bands = s.N * pl.bands;
  const DwConvMicroKernel uk = has_avx2(active_isa()) ? f32_dwconv_avx2 : f32_dwconv_generic;
  const GemmEpilogue dw_ep = clamp_of(p.dw_act);
  const ScratchLayout layout = scratch_layout(p);
  const int64_t per_thread = layout.total();
  const Activation none{};

  // Bands [g0, g1) of the whole batch, on the calling thread with scratch `buf`.
  auto walk = [&](int64_t g0, int64_t g1, float* buf) {
    float* expbuf = buf;
    float* dwbuf = buf + layout.exp;
    const int64_t R = layout.ring;
    int64_t prev_ih1 = -1;  // with the ring: input rows [.., prev_ih1) of this image are already expanded
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t n = g / pl.bands, b = g % pl.bands;
      const int64_t oh0 = b * pl.rows, oh1 = std::min(OH, oh0 + pl.rows);
      const int64_t ih0 = pl.band_in_first(b), ih1 = pl.band_in_last(b);
      const float* img = in + n * s.H * s.W * s.C;
      float* out_rows = out + (n * OH + oh0) * OW * s.OC;
      const bool forward = (g - g0) % 2 == 0;  // Scan: alternate the chunk direction band to band
      // Rows to expand: all of the band's, or with the ring only those the previous band lacked.
      const int64_t new0 = R && g > g0 && b > 0 ? std::max(ih0, prev_ih1) : ih0;
      for (int64_t step = 0; step < chunks; ++step) {
        const int64_t ci = forward ? step : chunks - 1 - step;
        const int64_t e0 = ci * ch, ec = std::min(ch, s.E - e0);
        const bool first = step == 0, last = step + 1 == chunks;
        // 1. expand the band's (new) input rows for this chunk
        const float* band;
        int64_t ps;
        float* exp_c = R ? expbuf + e0 * R * s.W : expbuf;
        if (s.expand) {
          // Rows [new0, ih1) go to ring slots new0 mod R.. (wrapping at most once), or linearly.
          for (int64_t r0 = new0; r0 < ih1;) {
            const int64_t slot = R ? r0 % R : r0 - ih0;
            const int64_t r1 = R ? std::min(ih1, r0 + (R - slot)) : ih1;
            gemm_f32((r1 - r0) * s.W, img + r0 * s.W * s.C, s.C, p.expand_chunks[size_t(ci)], exp_c + slot * s.W * ec,
                     ec, p.expand_bias.data() + e0, p.expand_act);
            r0 = r1;
          }
          band = exp_c, ps = ec;
        } else {
          band = img + ih0 * s.W * s.C + e0, ps = s.C;
        }
        // 2. depthwise, into the chunk buffer (or straight into the output without a project stage)
        DwBand dw{&s, uk, band, ih0, ih1, ps, s.expand ? R : 0, p.zeros.data(), p.dw_chunks[size_t(ci)].data(),
                  p.dw_bias.data() + e0, dw_ep.clamp ? &dw_ep : nullptr, ec};
        if (!s.project) {
          dw.run(oh0, oh1, out_rows + e0, ec);  // single chunk: ec == E == OC
          continue;
        }
        dw.run(oh0, oh1, dwbuf, ec);
        // 3. accumulate the chunk's projection into the band's output rows
        gemm_f32((oh1 - oh0) * OW, dwbuf, ec, p.project_chunks[size_t(ci)], out_rows, s.OC,
                 first ? p.project_bias.data() : nullptr, last ? p.project_act : none, !first);
      }
      prev_ih1 = ih1;
      if (s.residual) {
        const float* x = img + oh0 * s.W * s.C;  // stride 1, same shape: input row oh = output row oh
        binary_same_f32(BinaryOp::Add, (oh1 - oh0) * OW * s.OC, out_rows, x, out_rows);
      }
    }
  };

  const int threads = omp_in_parallel() ? 1 : std::min<int64_t>(omp_get_max_threads(), total_bands);
  if (threads <= 1) {
    walk(0, total_bands, scratch);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t T = omp_get_num_threads(), t = omp_get_thread_num();
    walk(total_bands * t / T, total_bands * (t + 1) / T, scratch + t * per_thread);
  }
}

}  // namespace locus::kernels
