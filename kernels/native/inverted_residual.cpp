#include "kernels/native/inverted_residual.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "graph/error.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/depthwise_row.h"
#include "kernels/native/dwconv_microkernel.h"
#include "kernels/native/elementwise.h"
#include "kernels/native/meet_split.h"

namespace locus::kernels {

schedule::FusedBlockShape InvertedResidualShape::block() const {
  schedule::FusedBlockShape b;
  b.H = H, b.W = W, b.C = C, b.E = E, b.OC = OC;
  b.KH = KH, b.KW = KW, b.SH = SH, b.SW = SW, b.PT = PT, b.PB = PB, b.PL = PL, b.PR = PR;
  b.expand = expand, b.project = project;
  b.dw2 = dw2, b.KH2 = KH2, b.KW2 = KW2, b.SH2 = SH2, b.SW2 = SW2, b.PT2 = PT2, b.PB2 = PB2, b.PL2 = PL2, b.PR2 = PR2;
  return b;
}

PackedInvertedResidual pack_inverted_residual(const InvertedResidualShape& s, const InvertedResidualWeights& w,
                                              int64_t S, int threads) {
  LOCUS_CHECK(s.N >= 1 && s.H >= 1 && s.W >= 1 && s.C >= 1 && s.E >= 1 && s.OC >= 1 && s.MH() >= 1 && s.MW() >= 1 &&
                  s.OH() >= 1 && s.OW() >= 1,
              "fused block: bad shape");
  LOCUS_CHECK(!s.dw2 || (w.dw2 && s.KH2 >= 1 && s.KW2 >= 1 && s.SH2 >= 1 && s.SW2 >= 1),
              "fused block: bad second depthwise stage");
  LOCUS_CHECK(s.expand || s.E == s.C, "fused block: without an expand stage E (", s.E, ") must equal C (", s.C, ")");
  LOCUS_CHECK(s.project || s.OC == s.E, "fused block: without a project stage OC must equal E");
  LOCUS_CHECK(!s.residual || (s.OC == s.C && s.OH() == s.H && s.OW() == s.W),
              "fused block: residual needs the output shape to equal the input shape");
  LOCUS_CHECK(w.dw && (!s.expand || w.expand) && (!s.project || w.project), "fused block: missing weights");
  PackedInvertedResidual p;
  p.s = s;
  schedule::FusedPlannerOptions po;
  po.chunk_step = gemm_config(active_isa()).nr;  // chunks are whole packed-B panels
  p.plan = schedule::plan_fused_block_threads(s.block(), s.N, S, std::max(threads, 1), po);
  p.expand_act = w.expand_act, p.dw_act = w.dw_act, p.dw2_act = w.dw2_act, p.project_act = w.project_act;
  auto copy_or_zero = [](const float* b, int64_t n) {
    return b ? std::vector<float>(b, b + n) : std::vector<float>(size_t(n), 0.f);
  };
  p.expand_bias = copy_or_zero(w.expand_bias, s.E);
  p.dw_bias = copy_or_zero(w.dw_bias, s.E);
  if (s.dw2) p.dw2_bias = copy_or_zero(w.dw2_bias, s.E);
  p.project_bias = copy_or_zero(w.project_bias, s.OC);
  const int64_t taps = s.KH * s.KW, taps2 = s.KH2 * s.KW2, ch = p.plan.chunk;
  for (int64_t e0 = 0; e0 < s.E; e0 += ch) {
    const int64_t ec = std::min(ch, s.E - e0);
    // GEMM B[k][n]: expand B[c][e] = W[e][c] (transposed, ldb = C); project B[e][oc] = W[oc][e] (ldb = E).
    if (s.expand) p.expand_chunks.push_back(pack_b(s.C, ec, w.expand + e0 * s.C, s.C, true));
    if (s.project) p.project_chunks.push_back(pack_b(ec, s.OC, w.project + e0, s.E, true));
    p.dw_chunks.push_back(pack_dw_chunk(w.dw, taps, e0, ec));
    if (s.dw2) {
      AlignedVector<float> d2(size_t(taps2 * ec));
      for (int64_t t = 0; t < taps2; ++t)
        for (int64_t e = 0; e < ec; ++e) d2[size_t(t * ec + e)] = w.dw2[(e0 + e) * taps2 + t];
      p.dw2_chunks.push_back(std::move(d2));
    }
  }
  const int64_t ps = s.expand ? ch : s.C;
  p.zeros.assign(size_t(std::max((s.W + s.PL + s.PR) * ps, s.dw2 ? (s.MW() + s.PL2 + s.PR2) * ch : 0)), 0.f);

  Conv2dShape& d = p.dw_geometry;
  d.N = 1, d.H = s.H, d.W = s.W, d.C = d.OC = d.G = s.E, d.OH = s.MH(), d.OW = s.MW();
  d.KH = s.KH, d.KW = s.KW, d.SH = s.SH, d.SW = s.SW, d.PT = s.PT, d.PL = s.PL, d.PB = s.PB, d.PR = s.PR;
  p.dw_epilogue = epilogue_for(p.dw_act);
  if (s.dw2) {
    Conv2dShape& d2 = p.dw2_geometry;
    d2.N = 1, d2.H = s.MH(), d2.W = s.MW(), d2.C = d2.OC = d2.G = s.E, d2.OH = s.OH(), d2.OW = s.OW();
    d2.KH = s.KH2, d2.KW = s.KW2, d2.SH = s.SH2, d2.SW = s.SW2, d2.PT = s.PT2, d2.PL = s.PL2, d2.PB = s.PB2,
    d2.PR = s.PR2;
    p.dw2_epilogue = epilogue_for(p.dw2_act);
  }
  // Per-thread scratch, each part rounded up to 16 floats: the expanded rows (the tallest band's
  // in_rows x W x chunk; with the halo cache a ring of in_rows rows for every chunk, chunk i's ring
  // at i * chunk * in_rows * W with pixel stride = that chunk's width, input row ih in slot
  // ih mod in_rows) and the filtered chunk (rows x OW x chunk).
  const schedule::FusedBlockPlan& pl = p.plan;
  int64_t in_rows = 0, mid_rows = 0;
  for (int64_t b = 0; b < pl.bands; ++b) {
    in_rows = std::max(in_rows, pl.band_in_last(b) - pl.band_in_first(b));
    mid_rows = std::max(mid_rows, pl.band_mid_last(b) - pl.band_mid_first(b));
  }
  auto r16 = [](int64_t v) { return (v + 15) / 16 * 16; };
  p.ring_rows = pl.halo_cache ? in_rows : 0;
  p.prefetch_input = !s.expand && dw_input_streams(s.H, s.W, s.C);
  p.scratch_exp = s.expand ? r16(in_rows * s.W * (pl.halo_cache ? s.E : ch)) : 0;
  p.scratch_mid = s.dw2 ? r16(mid_rows * s.MW() * ch) : 0;
  p.scratch_dw = s.project ? r16(pl.rows * s.OW() * ch) : 0;
  p.scratch_part = pl.split_chunks > 1 ? r16(pl.rows * s.OW() * s.OC) : 0;
  return p;
}

int64_t inverted_residual_scratch_floats(const PackedInvertedResidual& p) {
  return (p.scratch_exp + p.scratch_mid + p.scratch_dw + p.scratch_part) *
         std::max<int64_t>({int64_t(p.plan.threads), p.plan.split_chunks, 1});
}

void inverted_residual_nhwc(const PackedInvertedResidual& p, const float* in, float* out, float* scratch) {
  const InvertedResidualShape& s = p.s;
  const schedule::FusedBlockPlan& pl = p.plan;
  const int64_t OH = s.OH(), OW = s.OW(), chunks = pl.chunks, ch = pl.chunk;
  const int64_t total_bands = s.N * pl.bands;
  // The plan's thread count, never the OpenMP setting: the scratch holds exactly that many parts.
  // (A GEMM run outside a parallel region, by a lone band walk, may use them all.)
  const int threads = omp_in_parallel() ? 1 : pl.threads;
  const DwConvMicroKernel uk = dwconv_microkernel_for(active_isa());
  const Epilogue* dw_ep = p.dw_epilogue.has_act() ? &p.dw_epilogue : nullptr;
  const Epilogue* dw2_ep = p.dw2_epilogue.has_act() ? &p.dw2_epilogue : nullptr;
  const DwInterior interior = dw_interior(p.dw_geometry);
  const DwInterior interior2 = s.dw2 ? dw_interior(p.dw2_geometry) : DwInterior{};
  const int64_t per_thread = p.scratch_exp + p.scratch_mid + p.scratch_dw + p.scratch_part, R = p.ring_rows,
                MW = s.MW();
  const Activation none{};
  // A band walk writing the final output adds the residual in the last chunk's project epilogue
  // (the project has no activation in MobileNetV2; with one, the Add follows it, so it stays a pass).
  const bool residual_in_epilogue = s.residual && s.project && p.project_act.kind == ActKind::None;

  // Band g's chunks [c0, c1) (walked forward or backward) on the calling thread with scratch
  // `buf`: expand, filter and project each chunk, accumulating into dst (the band's output rows,
  // ld = OC). final: bias on the first chunk and activation on the last (the band's whole result);
  // otherwise a partial sum without either. ringed: the band whose expanded input rows the ring
  // holds for these chunks, or -1 (updated to g). When it is g's neighbour in the same image (the
  // band before, walking forward, or after, walking backward), the rows both need are not expanded
  // again.
  auto band_chunks = [&](int64_t g, int64_t c0, int64_t c1, bool forward, float* buf, float* dst, bool final,
                         int64_t& ringed) {
    float* expbuf = buf;
    float* midbuf = buf + p.scratch_exp;
    float* dwbuf = midbuf + p.scratch_mid;
    const int64_t n = g / pl.bands, b = g % pl.bands;
    const int64_t oh0 = b * pl.rows, oh1 = std::min(OH, oh0 + pl.rows);
    const int64_t ih0 = pl.band_in_first(b), ih1 = pl.band_in_last(b);
    const float* img = in + n * s.H * s.W * s.C;
    // Rows to expand: all of the band's, or with the ring only those the neighbour lacked.
    int64_t new0 = ih0, new1 = ih1;
    if (R && ringed >= 0 && ringed / pl.bands == n && (ringed == g - 1 || ringed == g + 1)) {
      const int64_t rb = ringed % pl.bands;
      if (ringed < g)
        new0 = std::max(ih0, pl.band_in_last(rb));
      else
        new1 = std::min(ih1, pl.band_in_first(rb));
    }
    for (int64_t step = 0; step < c1 - c0; ++step) {
      const int64_t ci = forward ? c0 + step : c1 - 1 - step;
      const int64_t e0 = ci * ch, ec = std::min(ch, s.E - e0);
      const bool first = step == 0, last = step + 1 == c1 - c0;
      // 1. expand the band's (new) input rows for this chunk
      const float* band;
      int64_t ps;
      float* exp_c = R ? expbuf + e0 * R * s.W : expbuf;
      if (s.expand) {
        // Rows [new0, new1) go to ring slots new0 mod R.. (wrapping at most once), or linearly.
        for (int64_t r0 = new0; r0 < new1;) {
          const int64_t slot = R ? r0 % R : r0 - ih0;
          const int64_t r1 = R ? std::min(new1, r0 + (R - slot)) : new1;
          gemm_f32((r1 - r0) * s.W, img + r0 * s.W * s.C, s.C, p.expand_chunks[size_t(ci)], exp_c + slot * s.W * ec,
                   ec, p.expand_bias.data() + e0, p.expand_act, false, threads);
          r0 = r1;
        }
        band = exp_c, ps = ec;
      } else {
        band = img + ih0 * s.W * s.C + e0, ps = s.C;
      }
      // 2. depthwise, into the chunk buffer (or straight into the output without a project stage;
      // then there is one chunk, ec == E == OC). Rows outside [ih0, ih1) are outside the image.
      const int64_t ring = s.expand ? R : 0;
      auto row_of = [&](int64_t ih) -> const float* {
        if (ih < ih0 || ih >= ih1) return nullptr;
        return band + (ring ? ih % ring : ih - ih0) * s.W * ps;
      };
      float* dw_out = s.project ? dwbuf : dst + e0;
      if (!s.dw2) {
        for (int64_t oh = oh0; oh < oh1; ++oh)
          depthwise_row(p.dw_geometry, interior, ec, ps, uk, row_of, oh, p.zeros.data(),
                        p.dw_chunks[size_t(ci)].data(), p.dw_bias.data() + e0, dw_ep, dw_out + (oh - oh0) * OW * ec,
                        p.prefetch_input);
      } else {
        // Two stages: the first stage's rows [m0, m1) (the second stage's halo included) into
        // midbuf (pixel stride ec), then the band's output rows from them.
        const int64_t m0 = pl.band_mid_first(b), m1 = pl.band_mid_last(b);
        for (int64_t m = m0; m < m1; ++m)
          depthwise_row(p.dw_geometry, interior, ec, ps, uk, row_of, m, p.zeros.data(),
                        p.dw_chunks[size_t(ci)].data(), p.dw_bias.data() + e0, dw_ep, midbuf + (m - m0) * MW * ec);
        auto mid_of = [&](int64_t m) -> const float* {
          return m >= m0 && m < m1 ? midbuf + (m - m0) * MW * ec : nullptr;
        };
        for (int64_t oh = oh0; oh < oh1; ++oh)
          depthwise_row(p.dw2_geometry, interior2, ec, ec, uk, mid_of, oh, p.zeros.data(),
                        p.dw2_chunks[size_t(ci)].data(), p.dw2_bias.data() + e0, dw2_ep,
                        dw_out + (oh - oh0) * OW * (s.project ? ec : s.OC));
      }
      if (!s.project) continue;
      // 3. accumulate the chunk's projection into the band's output rows
      const bool add_residual = final && last && residual_in_epilogue;  // stride 1: input row = output row
      gemm_f32((oh1 - oh0) * OW, dwbuf, ec, p.project_chunks[size_t(ci)], dst, s.OC,
               final && first ? p.project_bias.data() : nullptr, final && last ? p.project_act : none, !first,
               threads, add_residual ? img + oh0 * s.W * s.C : nullptr, s.C);
    }
    ringed = g;
  };
  // Band g's output rows in `out`, and the block input rows the residual adds.
  auto band_out = [&](int64_t g) { return out + ((g / pl.bands) * OH + (g % pl.bands) * pl.rows) * OW * s.OC; };
  auto band_x = [&](int64_t g) {  // stride 1, same shape: input row oh = output row oh
    return in + (g / pl.bands) * s.H * s.W * s.C + (g % pl.bands) * pl.rows * s.W * s.C;
  };
  auto band_pixels = [&](int64_t g) { return (std::min(OH, (g % pl.bands + 1) * pl.rows) - (g % pl.bands) * pl.rows) * OW; };

  if (pl.split_chunks > 1 && threads >= pl.split_chunks) {
    // Chunk split (few bands, many chunks): every thread walks every band over its own chunks into a
    // private partial output; then the threads sum the partials of the band, a slice of pixels each,
    // adding bias, activation and the residual.
#pragma omp parallel num_threads(int(pl.split_chunks))
    {
      // The team may be smaller than asked for (thread limits): split among those who came.
      const int T = omp_get_num_threads(), t = omp_get_thread_num();
      float* buf = scratch + t * per_thread;
      const int64_t c0 = pl.chunk_begin(t, T), c1 = pl.chunk_begin(t + 1, T);
      int64_t ringed = -1;
      for (int64_t g = 0; g < total_bands; ++g) {
        float* part = buf + p.scratch_exp + p.scratch_mid + p.scratch_dw;
        const int64_t np = band_pixels(g);
        if (c1 > c0)
          band_chunks(g, c0, c1, g % 2 == 0, buf, part, false, ringed);
        else
          std::fill(part, part + np * s.OC, 0.f);
#pragma omp barrier
        const int64_t q0 = np * t / T, q1 = np * (t + 1) / T;
        float* y = band_out(g);
        for (int64_t q = q0; q < q1; ++q) {
          float* yq = y + q * s.OC;
          const float* p0 = scratch + p.scratch_exp + p.scratch_mid + p.scratch_dw + q * s.OC;
          for (int64_t oc = 0; oc < s.OC; ++oc) yq[oc] = p.project_bias[size_t(oc)] + p0[oc];
          for (int u = 1; u < T; ++u) {
            const float* pu = p0 + u * per_thread;
            for (int64_t oc = 0; oc < s.OC; ++oc) yq[oc] += pu[oc];
          }
        }
        activation_f32(p.project_act, y + q0 * s.OC, y + q0 * s.OC, (q1 - q0) * s.OC);
        if (s.residual) {
          const float* x = band_x(g) + q0 * s.OC;
          binary_same_f32(BinaryOp::Add, (q1 - q0) * s.OC, y + q0 * s.OC, x, y + q0 * s.OC);
        }
#pragma omp barrier
      }
    }
    return;
  }

  // Band split: the threads take contiguous stretches of bands, balanced at run time (MeetSplit: in
  // each pair of threads one walks its stretch forward, the other backward, until they meet), each
  // walking all chunks of a band. The chunk direction alternates from band to band (Scan) by the
  // band's parity, not the walker's: the sum over chunks, so the output, is then the same bit for
  // bit whichever thread took the band and whatever the thread count.
  auto band = [&](int64_t g, float* buf, int64_t& ringed) {
    band_chunks(g, 0, chunks, g % 2 == 0, buf, band_out(g), true, ringed);
    if (s.residual && !residual_in_epilogue)
      binary_same_f32(BinaryOp::Add, band_pixels(g) * s.OC, band_out(g), band_x(g), band_out(g));
  };
  const int band_threads = int(std::min<int64_t>(threads, total_bands));
  if (band_threads <= 1) {
    int64_t ringed = -1;
    for (int64_t g = 0; g < total_bands; ++g) band(g, scratch, ringed);
    return;
  }
  meet_split_parallel(total_bands, band_threads, [&](int t, MeetSplit& split) {
    int64_t ringed = -1;
    split.run(t, [&](int64_t g) { band(g, scratch + t * per_thread, ringed); });
  });
}

}  // namespace locus::kernels
