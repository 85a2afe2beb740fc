// The fused int8 inverted-residual kernel (qinverted_residual.h): packing and the band walk.
#include "kernels/native/qinverted_residual.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "graph/error.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/depthwise_row.h"

namespace locus::kernels {
namespace {

int64_t r64(int64_t v) { return (v + 63) / 64 * 64; }

// The QuantParams of output channels [c0, c0 + n) (per-channel vectors sliced, per-tensor ones kept).
QuantParams slice_channels(const QuantParams& q, int64_t c0, int64_t n) {
  QuantParams r = q;
  if (r.w_scale.size() > 1) r.w_scale.assign(q.w_scale.begin() + c0, q.w_scale.begin() + c0 + n);
  if (r.w_zero.size() > 1) r.w_zero.assign(q.w_zero.begin() + c0, q.w_zero.begin() + c0 + n);
  return r;
}

}  // namespace

schedule::FusedBlockShape QInvertedResidualShape::block() const {
  schedule::FusedBlockShape b;
  b.H = H, b.W = W, b.C = C, b.E = E, b.OC = OC;
  // a conv expand stage as the 1x1 expand of its im2col rows (K = KH x KW x C bytes per pixel): the
  // halo rows it recomputes cost what they cost
  if (xconv.on) b.C = C * xconv.KH * xconv.KW;
  b.KH = KH, b.KW = KW, b.SH = SH, b.SW = SW, b.PT = PT, b.PB = PB, b.PL = PL, b.PR = PR;
  b.expand = expand, b.project = project;
  b.elem = schedule::FusedElementSizes::int8();
  b.filtered_band = true;
  return b;
}

PackedQInvertedResidual pack_qinverted_residual(const QInvertedResidualShape& s, const QInvertedResidualWeights& w,
                                                int64_t S, int threads, int64_t room) {
  LOCUS_CHECK(s.N >= 1 && s.H >= 1 && s.W >= 1 && s.C >= 1 && s.E >= 1 && s.OC >= 1 && s.KH >= 1 && s.KW >= 1 &&
                  s.SH >= 1 && s.SW >= 1 && s.PT >= 0 && s.PL >= 0 && s.PB >= 0 && s.PR >= 0 && s.OH() >= 1 &&
                  s.OW() >= 1,
              "fused int8 block: bad shape");
  LOCUS_CHECK(s.expand || s.E == s.C, "fused int8 block: without an expand stage E (", s.E, ") must equal C (", s.C,
              ")");
  LOCUS_CHECK(s.project || s.OC == s.E, "fused int8 block: without a project stage OC must equal E");
  LOCUS_CHECK(!s.residual || (s.project && s.OC == s.C && s.OH() == s.H && s.OW() == s.W),
              "fused int8 block: the residual needs a project stage and the output shape equal to the input shape");
  LOCUS_CHECK(w.dw && (!s.expand || w.expand) && (!s.project || w.project), "fused int8 block: missing weights");
  const QExpandConv& xc = s.xconv;
  LOCUS_CHECK(!xc.on || (s.expand && !s.residual && xc.KH >= 1 && xc.KW >= 1 && xc.SH >= 1 && xc.SW >= 1 &&
                         xc.PT >= 0 && xc.PL >= 0 && xc.PB >= 0 && xc.PR >= 0 &&
                         (xc.XH + xc.PT + xc.PB - xc.KH) / xc.SH + 1 == s.H &&
                         (xc.XW + xc.PL + xc.PR - xc.KW) / xc.SW + 1 == s.W),
              "fused int8 block: the expand conv's output is not the depthwise input (or the block has a residual)");
  LOCUS_CHECK(!w.expand_q.s8_out && (!w.dw_q.s8_out || !s.project),
              "fused int8 block: the expanded and filtered intermediates must be written as u8");
  PackedQInvertedResidual p;
  p.s = s;
  p.add = w.add;
  p.x_first = w.x_first;
  schedule::FusedPlannerOptions po;
  // Chunks are whole packed-B panels; without an expand stage the depthwise stage reads the block
  // input (pixel stride C) directly: one chunk.
  po.chunk_step = s.expand && !xc.on ? kQGemmNR : s.E;
  po.min_chunk = kQGemmNR;  // no output tile to reload per chunk: any whole panel is worth it
  po.halo_cache = false;    // halo rows are recomputed (see the header)
  if (room >= 0) po.buffer_price = 1, po.free_buffer = room;  // the bands are arena memory
  p.plan = schedule::plan_fused_block_threads(s.block(), s.N, S, std::max(threads, 1), po);
  const int64_t ch = p.plan.chunk, taps = s.KH * s.KW, MH = s.OH(), MW = s.OW();
  for (int64_t e0 = 0; e0 < s.E; e0 += ch) {
    const int64_t ec = std::min(ch, s.E - e0);
    if (s.expand && !xc.on)
      p.expand_chunks.push_back(pack_qgemm_b(s.C, ec, w.expand + e0 * s.C, s.C, /*trans_w=*/true,
                                             w.expand_bias ? w.expand_bias + e0 : nullptr,
                                             slice_channels(w.expand_q, e0, ec)));
    Conv2dShape d;
    d.N = 1, d.H = s.H, d.W = s.W, d.C = d.OC = d.G = ec, d.OH = MH, d.OW = MW;
    d.KH = s.KH, d.KW = s.KW, d.SH = s.SH, d.SW = s.SW, d.PT = s.PT, d.PL = s.PL, d.PB = s.PB, d.PR = s.PR;
    d.DH = d.DW = 1;
    p.dw_chunks.push_back(
        pack_qdwconv(d, w.dw + e0 * taps, w.dw_bias ? w.dw_bias + e0 : nullptr, slice_channels(w.dw_q, e0, ec), 1));
  }
  if (xc.on) {
    Conv2dShape d;
    d.N = s.N, d.H = xc.XH, d.W = xc.XW, d.C = s.C, d.OC = s.E, d.G = 1, d.OH = s.H, d.OW = s.W;
    d.KH = xc.KH, d.KW = xc.KW, d.SH = xc.SH, d.SW = xc.SW, d.PT = xc.PT, d.PL = xc.PL, d.PB = xc.PB, d.PR = xc.PR;
    d.DH = d.DW = 1;
    p.expand_conv = pack_qconv(d, w.expand, w.expand_bias, w.expand_q, 1);
  }
  if (s.project)
    p.project = pack_qgemm_b(s.E, s.OC, w.project, s.E, /*trans_w=*/true, w.project_bias, w.project_q);
  const schedule::FusedBlockPlan& pl = p.plan;
  int64_t in_rows = 0;
  for (int64_t b = 0; b < pl.bands; ++b) in_rows = std::max(in_rows, pl.band_in_last(b) - pl.band_in_first(b));
  // the expanded rows carry their padding columns (PL + W + PR pixels, qdepthwise_row's padded_rows)
  p.scratch_exp = s.expand ? r64(in_rows * (s.PL + s.W + s.PR) * ch) : 0;
  if (xc.on) {
    p.conv_buf = p.scratch_exp;
    p.scratch_exp += r64(qconv_row_buffer_bytes(p.expand_conv));
  }
  p.scratch_filt = s.project ? r64(pl.rows * MW * s.E) : 0;
  p.scratch_p = s.residual ? r64(pl.rows * MW * s.OC) : 0;
  return p;
}

int64_t qinverted_residual_scratch_bytes(const PackedQInvertedResidual& p) {
  return (p.scratch_exp + p.scratch_filt + p.scratch_p) *
         std::max<int64_t>({int64_t(p.plan.threads), p.plan.split_chunks, 1});
}

void qinverted_residual_nhwc(const PackedQInvertedResidual& p, const uint8_t* in, const uint8_t* x_res, uint8_t* out,
                             uint8_t* scratch) {
  const QInvertedResidualShape& s = p.s;
  const schedule::FusedBlockPlan& pl = p.plan;
  const int64_t OH = s.OH(), OW = s.OW(), chunks = pl.chunks, ch = pl.chunk, T = s.KH * s.KW;
  const int64_t total_bands = s.N * pl.bands;
  const int threads = omp_in_parallel() ? 1 : pl.threads;
  const QDwConvMicroKernel uk = qdwconv_microkernel_for(active_isa());
  const int64_t per_thread = p.scratch_exp + p.scratch_filt + p.scratch_p;
  const bool xc_on = s.xconv.on;
  // The depthwise geometry is the same for every chunk but the channel count: one interior.
  const DwInterior interior = dw_interior(p.dw_chunks[0].s);

  // Band g's chunks [c0, c1) (walked forward or backward) with the thread's buffers `buf`: expand,
  // filter into `filt` (the band's rows x OW x E, or without a project stage the output itself).
  auto band_chunks = [&](int64_t g, int64_t c0, int64_t c1, bool forward, uint8_t* buf, uint8_t* filt,
                         std::vector<const uint8_t*>& taps) {
    uint8_t* expbuf = buf;
    const int64_t n = g / pl.bands, b = g % pl.bands;
    const int64_t oh0 = b * pl.rows, oh1 = std::min(OH, oh0 + pl.rows);
    const int64_t ih0 = pl.band_in_first(b), ih1 = pl.band_in_last(b);
    const uint8_t* img = in + n * s.H * s.W * s.C;  // (1x1 expand or none)
    for (int64_t step = 0; step < c1 - c0; ++step) {
      const int64_t ci = forward ? c0 + step : c1 - 1 - step;
      const int64_t e0 = ci * ch;
      const PackedQDwConv& dw = p.dw_chunks[size_t(ci)];
      const int64_t ec = dw.s.C, wp = (s.PL + s.W + s.PR) * ec;
      // 1. expand the band's input rows (halo included) for this chunk: u8, pixel stride ec, each row
      //    between PL and PR pixels of the depthwise input zero point (whole rows in one GEMM when
      //    there is no horizontal padding)
      const uint8_t* band;
      if (xc_on) {
        for (int64_t ih = ih0; ih < ih1; ++ih) {
          uint8_t* row = expbuf + (ih - ih0) * wp;
          std::memset(row, dw.x_zero, size_t(s.PL * ec));
          qconv_row(p.expand_conv, in, n, ih, row + s.PL * ec, expbuf + p.conv_buf);
          std::memset(row + (s.PL + s.W) * ec, dw.x_zero, size_t(s.PR * ec));
        }
        band = expbuf + s.PL * ec;
      } else if (s.expand) {
        const PackedQB& eb = p.expand_chunks[size_t(ci)];
        if (s.PL == 0 && s.PR == 0) {
          qgemm_u8s8_rows(0, (ih1 - ih0) * s.W, img + ih0 * s.W * s.C, s.C, eb, expbuf, ec);
        } else {
          for (int64_t ih = ih0; ih < ih1; ++ih) {
            uint8_t* row = expbuf + (ih - ih0) * wp;
            std::memset(row, dw.x_zero, size_t(s.PL * ec));
            qgemm_u8s8_rows(0, s.W, img + ih * s.W * s.C, s.C, eb, row + s.PL * ec, ec);
            std::memset(row + (s.PL + s.W) * ec, dw.x_zero, size_t(s.PR * ec));
          }
        }
        band = expbuf + s.PL * ec;
      } else {
        band = img + ih0 * s.W * s.C;  // one chunk: ec == E == C
      }
      auto row_of = [&](int64_t ih) -> const uint8_t* {
        if (ih < ih0 || ih >= ih1) return nullptr;  // outside the image: padding
        return band + (ih - ih0) * (s.expand ? wp : s.W * ec);
      };
      // 2. depthwise into the chunk's columns of the filtered rows (u8, pixel stride E), or of the
      //    output rows (no project stage: OC == E)
      const QEpilogue ep = qdwconv_epilogue(dw);
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        uint8_t* dst = s.project ? filt + (oh - oh0) * OW * s.E : out + (n * OH + oh) * OW * s.OC;
        qdepthwise_row(dw, interior, uk, ep, row_of, oh, taps.data(), dst + e0, s.E, /*padded_rows=*/s.expand);
      }
    }
  };
  // Pixels [q0, q1) of band g: project the filtered rows (K = E) and add the residual.
  auto band_project = [&](int64_t g, int64_t q0, int64_t q1, const uint8_t* filt, uint8_t* ptile) {
    if (!s.project || q1 <= q0) return;
    const int64_t n = g / pl.bands, b = g % pl.bands, oh0 = b * pl.rows;
    uint8_t* y = out + (n * OH + oh0) * OW * s.OC;
    if (!s.residual) {
      qgemm_u8s8_rows(q0, q1, filt, s.E, p.project, y, s.OC);
      return;
    }
    qgemm_u8s8_rows(q0, q1, filt, s.E, p.project, ptile, s.OC);
    // stride 1, same shape: the block input's pixel q of the band is the output's
    const uint8_t* x = x_res + (n * s.H + oh0) * s.W * s.C;
    const int64_t o = q0 * s.OC, cnt = (q1 - q0) * s.OC;
    if (p.x_first) qadd_same(p.add, cnt, x + o, ptile + o, y + o);
    else qadd_same(p.add, cnt, ptile + o, x + o, y + o);
  };
  auto band_pixels = [&](int64_t g) {
    const int64_t b = g % pl.bands;
    return (std::min(OH, (b + 1) * pl.rows) - b * pl.rows) * OW;
  };

  if (pl.split_chunks > 1 && threads >= pl.split_chunks) {
    // Chunk split: each thread expands and filters its chunks of the band into the shared filtered
    // rows (disjoint columns), then each projects a slice of the band's pixels.
    uint8_t* filt = scratch + p.scratch_exp;
    uint8_t* ptile = filt + p.scratch_filt;
#pragma omp parallel num_threads(int(pl.split_chunks))
    {
      const int Tn = omp_get_num_threads(), t = omp_get_thread_num();
      uint8_t* buf = scratch + t * per_thread;
      std::vector<const uint8_t*> taps(static_cast<size_t>(T));
      const int64_t c0 = pl.chunk_begin(t, Tn), c1 = pl.chunk_begin(t + 1, Tn);
      for (int64_t g = 0; g < total_bands; ++g) {
        if (c1 > c0) band_chunks(g, c0, c1, g % 2 == 0, buf, filt, taps);
#pragma omp barrier
        const int64_t np = band_pixels(g);
        band_project(g, np * t / Tn, np * (t + 1) / Tn, filt, ptile);
#pragma omp barrier
      }
    }
    return;
  }

  // Band split: threads take contiguous stretches of bands, each walking all chunks of a band
  // (alternating direction from band to band: Scan), then projecting it.
  auto walk = [&](int64_t g0, int64_t g1, uint8_t* buf) {
    std::vector<const uint8_t*> taps(static_cast<size_t>(T));
    uint8_t* filt = buf + p.scratch_exp;
    uint8_t* ptile = filt + p.scratch_filt;
    for (int64_t g = g0; g < g1; ++g) {
      band_chunks(g, 0, chunks, (g - g0) % 2 == 0, buf, filt, taps);
      band_project(g, 0, band_pixels(g), filt, ptile);
    }
  };
  const int band_threads = int(std::min<int64_t>(threads, total_bands));
  if (band_threads <= 1) {
    walk(0, total_bands, scratch);
    return;
  }
#pragma omp parallel num_threads(band_threads)
  {
    const int64_t Tn = omp_get_num_threads(), t = omp_get_thread_num();
    walk(pl.stretch_begin(t, Tn), pl.stretch_begin(t + 1, Tn), scratch + t * per_thread);
  }
}

}  // namespace locus::kernels
