// The fused squeeze-excite block kernel (se_block.h): two walks over the bands of each image with
// the SE's 1x1 convs between them; D kept (two-pass) or recomputed, as the plan says.
#include "kernels/native/se_block.h"

#include <omp.h>

#include <algorithm>

#include "graph/error.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/depthwise_row.h"
#include "kernels/native/dwconv_microkernel.h"
#include "kernels/native/elementwise.h"

namespace locus::kernels {

void StageActivation::apply(float* x, int64_t n) const {
  if (hardswish_ops) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      const float c = clip_keep_nan(v + 3.f, 0.f, 6.f);
      const float m = v * c;
      x[i] = m / 6.f;
    }
  } else if (act.kind != ActKind::None) {
    activation_f32(act, x, x, n);
  }
}

PackedSeBlock pack_se_block(const SeBlockShape& s, const SeBlockWeights& w, int64_t S, int threads,
                            std::optional<schedule::SeStrategy> force) {
  const InvertedResidualShape& b = s.block;
  LOCUS_CHECK(b.N >= 1 && b.H >= 1 && b.W >= 1 && b.C >= 1 && b.E >= 1 && b.OC >= 1 && s.S >= 1 && b.OH() >= 1 &&
                  b.OW() >= 1,
              "squeeze-excite block: bad shape");
  LOCUS_CHECK(b.project && !b.dw2, "squeeze-excite block: needs a project stage and one depthwise stage");
  LOCUS_CHECK(b.expand || b.E == b.C, "squeeze-excite block: without an expand stage E (", b.E, ") must equal C (", b.C, ")");
  LOCUS_CHECK(!b.residual || (b.OC == b.C && b.OH() == b.H && b.OW() == b.W),
              "squeeze-excite block: residual needs the output shape to equal the input shape");
  LOCUS_CHECK(w.dw && w.project && w.squeeze && w.excite && (!b.expand || w.expand), "squeeze-excite block: missing weights");
  PackedSeBlock p;
  p.s = s;
  p.threads = std::max(threads, 1);
  schedule::FusedPlannerOptions po;
  po.chunk_step = gemm_config(active_isa()).nr;
  // A band too wide for the buffer (e.g. a 5x5 depthwise on a 1920-pixel row) still runs: planned
  // for the smallest power-of-two multiple of S that holds one (the cache then spills; the note says so).
  for (int64_t s_plan = S;; s_plan *= 2) {
    try {
      p.plan = schedule::plan_se_block(b.block(), s_plan, po, force);
      if (s_plan != S) p.note = cat("no band fits S=", S, " entries: planned for S=", s_plan);
      break;
    } catch (const Error&) {
      if (s_plan >= (int64_t(1) << 32)) throw;
    }
  }
  p.expand_act = w.expand_act, p.dw_act = w.dw_act, p.project_act = w.project_act;
  p.squeeze_act = w.squeeze_act, p.excite_act = w.excite_act;
  auto copy_or_zero = [](const float* v, int64_t n) {
    return v ? std::vector<float>(v, v + n) : std::vector<float>(size_t(n), 0.f);
  };
  p.expand_bias = copy_or_zero(w.expand_bias, b.E);
  p.dw_bias = copy_or_zero(w.dw_bias, b.E);
  p.project_bias = copy_or_zero(w.project_bias, b.OC);
  p.squeeze.assign(w.squeeze, w.squeeze + s.S * b.E);
  p.squeeze_bias = copy_or_zero(w.squeeze_bias, s.S);
  p.excite.assign(w.excite, w.excite + b.E * s.S);
  p.excite_bias = copy_or_zero(w.excite_bias, b.E);
  const int64_t taps = b.KH * b.KW, ch = p.plan.block.chunk;
  for (int64_t e0 = 0; e0 < b.E; e0 += ch) {
    const int64_t ec = std::min(ch, b.E - e0);
    if (b.expand) p.expand_chunks.push_back(pack_b(b.C, ec, w.expand + e0 * b.C, b.C, true));
    p.project_chunks.push_back(pack_b(ec, b.OC, w.project + e0, b.E, true));
    p.dw_chunks.push_back(pack_dw_chunk(w.dw, taps, e0, ec));
  }
  p.zeros.assign(size_t((b.W + b.PL + b.PR) * (b.expand ? ch : b.C)), 0.f);
  Conv2dShape& d = p.dw_geometry;
  d.N = 1, d.H = b.H, d.W = b.W, d.C = d.OC = d.G = b.E, d.OH = b.MH(), d.OW = b.MW();
  d.KH = b.KH, d.KW = b.KW, d.SH = b.SH, d.SW = b.SW, d.PT = b.PT, d.PL = b.PL, d.PB = b.PB, d.PR = b.PR;
  p.dw_epilogue = epilogue_for(p.dw_act.in_kernel());
  const schedule::FusedBlockPlan& pl = p.plan.block;
  int64_t in_rows = 0;
  for (int64_t k = 0; k < pl.bands; ++k) in_rows = std::max(in_rows, pl.band_in_last(k) - pl.band_in_first(k));
  auto r16 = [](int64_t v) { return (v + 15) / 16 * 16; };
  p.scratch_exp = b.expand ? r16(in_rows * b.W * ch) : 0;
  p.scratch_dw = r16(pl.rows * b.OW() * ch);
  p.scratch_store = p.plan.strategy == schedule::SeStrategy::TwoPass ? r16(p.plan.stored) : 0;
  p.scratch_se = r16(2 * b.E + s.S);
  return p;
}

int64_t se_block_scratch_floats(const PackedSeBlock& p) {
  return p.scratch_exp + p.scratch_dw + p.scratch_store + p.scratch_se;
}

void se_block_nhwc(const PackedSeBlock& p, const float* in, float* out, float* scratch) {
  const InvertedResidualShape& s = p.s.block;
  const schedule::FusedBlockPlan& pl = p.plan.block;
  const bool two_pass = p.plan.strategy == schedule::SeStrategy::TwoPass;
  const int64_t OH = s.OH(), OW = s.OW(), ch = pl.chunk, chunks = pl.chunks;
  const DwConvMicroKernel uk = dwconv_microkernel_for(active_isa());
  const Epilogue* dw_ep = p.dw_epilogue.clamp ? &p.dw_epilogue : nullptr;
  const DwInterior interior = dw_interior(p.dw_geometry);
  const Activation none{};
  float* expbuf = scratch;
  float* dwbuf = expbuf + p.scratch_exp;
  float* store = dwbuf + p.scratch_dw;
  float* mean = store + p.scratch_store;
  float* gate = mean + s.E;
  float* squeezed = gate + s.E;
  const Activation expand_k = p.expand_act.in_kernel(), project_k = p.project_act.in_kernel();

  // D's rows [oh0, oh1) of chunk ci of image `img` into dst (pixel stride ec): expand the band's
  // input rows, filter them.
  auto filter = [&](const float* img, int64_t b, int64_t ci, float* dst) {
    const int64_t oh0 = b * pl.rows, oh1 = std::min(OH, oh0 + pl.rows);
    const int64_t ih0 = pl.band_in_first(b), ih1 = pl.band_in_last(b);
    const int64_t e0 = ci * ch, ec = std::min(ch, s.E - e0);
    const float* band;
    int64_t ps;
    if (s.expand) {
      if (ih1 > ih0) {
        gemm_f32((ih1 - ih0) * s.W, img + ih0 * s.W * s.C, s.C, p.expand_chunks[size_t(ci)], expbuf, ec,
                 p.expand_bias.data() + e0, expand_k, false, p.threads);
        if (p.expand_act.after_kernel()) p.expand_act.apply(expbuf, (ih1 - ih0) * s.W * ec);
      }
      band = expbuf, ps = ec;
    } else {
      band = img + ih0 * s.W * s.C + e0, ps = s.C;
    }
    auto row_of = [&](int64_t ih) -> const float* {
      if (ih < ih0 || ih >= ih1) return nullptr;
      return band + (ih - ih0) * s.W * ps;
    };
    // rows are independent: the plan's threads split them (the same bytes whatever the split)
#pragma omp parallel for num_threads(p.threads) if (p.threads > 1 && !omp_in_parallel() && oh1 - oh0 > 1)
    for (int64_t oh = oh0; oh < oh1; ++oh)
      depthwise_row(p.dw_geometry, interior, ec, ps, uk, row_of, oh, p.zeros.data(), p.dw_chunks[size_t(ci)].data(),
                    p.dw_bias.data() + e0, dw_ep, dst + (oh - oh0) * OW * ec);
    if (p.dw_act.after_kernel()) p.dw_act.apply(dst, (oh1 - oh0) * OW * ec);
  };
  // Where chunk ci's rows from oh0 live in the stored D (two-pass): [chunk][OH][OW][ec].
  auto stored = [&](int64_t ci, int64_t oh0) {
    const int64_t e0 = ci * ch, ec = std::min(ch, s.E - e0);
    return store + e0 * OH * OW + oh0 * OW * ec;
  };

  for (int64_t n = 0; n < s.N; ++n) {
    const float* img = in + n * s.H * s.W * s.C;
    float* y = out + n * OH * OW * s.OC;
    // Pass 1: expand, filter, pool (and store D, two-pass).
    std::fill(mean, mean + s.E, 0.f);
    for (int64_t b = 0; b < pl.bands; ++b) {
      const int64_t oh0 = b * pl.rows, oh1 = std::min(OH, oh0 + pl.rows), np = (oh1 - oh0) * OW;
      for (int64_t ci = 0; ci < chunks; ++ci) {
        const int64_t e0 = ci * ch, ec = std::min(ch, s.E - e0);
        float* dst = two_pass ? stored(ci, oh0) : dwbuf;
        filter(img, b, ci, dst);
        float* m = mean + e0;
        for (int64_t q = 0; q < np; ++q)
          for (int64_t e = 0; e < ec; ++e) m[e] += dst[q * ec + e];
      }
    }
    // The squeeze-excite: mean, squeeze 1x1, excite 1x1 (as the GlobalAveragePool and the 1x1 convs).
    const float inv = 1.f / float(OH * OW);
    for (int64_t e = 0; e < s.E; ++e) mean[e] *= inv;
    for (int64_t j = 0; j < p.s.S; ++j) {
      float acc = p.squeeze_bias[size_t(j)];
      for (int64_t e = 0; e < s.E; ++e) acc += p.squeeze[size_t(j * s.E + e)] * mean[e];
      squeezed[j] = acc;
    }
    p.squeeze_act.apply(squeezed, p.s.S);
    for (int64_t e = 0; e < s.E; ++e) {
      float acc = p.excite_bias[size_t(e)];
      for (int64_t j = 0; j < p.s.S; ++j) acc += p.excite[size_t(e * p.s.S + j)] * squeezed[j];
      gate[e] = acc;
    }
    p.excite_act.apply(gate, s.E);
    // Pass 2: scale by the gate and project (two-pass: the bands backwards, the last stored first).
    for (int64_t k = 0; k < pl.bands; ++k) {
      const int64_t b = two_pass ? pl.bands - 1 - k : k;
      const int64_t oh0 = b * pl.rows, oh1 = std::min(OH, oh0 + pl.rows), np = (oh1 - oh0) * OW;
      float* yb = y + oh0 * OW * s.OC;
      for (int64_t ci = 0; ci < chunks; ++ci) {
        const int64_t e0 = ci * ch, ec = std::min(ch, s.E - e0);
        const float* src = dwbuf;
        if (two_pass) src = stored(ci, oh0);
        else filter(img, b, ci, dwbuf);
        const float* g = gate + e0;
        for (int64_t q = 0; q < np; ++q)
          for (int64_t e = 0; e < ec; ++e) dwbuf[q * ec + e] = src[q * ec + e] * g[e];
        const bool first = ci == 0, last = ci + 1 == chunks;
        gemm_f32(np, dwbuf, ec, p.project_chunks[size_t(ci)], yb, s.OC, first ? p.project_bias.data() : nullptr,
                 last ? project_k : none, !first, p.threads);
      }
      if (p.project_act.after_kernel()) p.project_act.apply(yb, np * s.OC);
      if (s.residual) {
        const float* x = img + oh0 * s.W * s.C;  // stride 1, same shape: input row oh = output row oh
        binary_same_f32(BinaryOp::Add, np * s.OC, yb, x, yb);
      }
    }
  }
}

}  // namespace locus::kernels
