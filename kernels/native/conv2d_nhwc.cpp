// NHWC convolution: weight packing, path selection and the three drivers.
//   pointwise / unpadded 1x1 (any stride, any G): with a cache plan (G = 1, pack_conv2d got a buffer
//     size) pointwise_scan_f32 over all pixels; a strided one first gathers its pixels into a
//     contiguous (N*OH*OW x C) scratch. Without a plan, GEMM straight on the input, rows read with
//     a stride (no im2col); stride 1 is one GEMM over all pixels per group, stride > 1 one per row.
//   depthwise: per output row, gather KH*KW tap pointers once for the horizontal interior (one
//     micro-kernel call steps them along the row) and per pixel at the left/right borders; padded
//     positions read a zero row.
//   direct (small C * KH * KW, e.g. the RGB stem): per output row, the micro-kernel reads each
//     kernel row's KW * C taps straight from the input row (a zero row for padded rows) for the
//     horizontal interior; border pixels get their taps copied into a small zero-padded patch.
//   general: im2col of a block of output pixels into per-thread scratch, then one GEMM per group
//     written into that group's channel slice of the NHWC output (ldc = OC).
#include "kernels/native/conv2d_nhwc.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "graph/error.h"
#include "kernels/native/conv_direct.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/depthwise_row.h"
#include "kernels/native/dwconv_microkernel.h"
#include "kernels/native/elementwise.h"
#include "kernels/native/gemm_microkernel.h"
#include "kernels/native/meet_split.h"

namespace locus::kernels {
namespace {

constexpr int64_t kIm2colBudgetFloats = 32 * 1024;  // per thread: 128 KiB, a quarter of L2
constexpr int64_t kIm2colPixelQuantum = 12;         // multiple of every micro-kernel MR (4, 6)
constexpr int64_t kIm2colMaxReusePixels = 192;      // see im2col_block_pixels
// A block's im2col is split over the threads from this size on (floats): one thread copying the 0.9
// MB of a 7x7x512 layer's block left the other waiting, about 7% of the layer at 2 threads.
constexpr int64_t kIm2colShareMinFloats = 64 * 1024;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

bool is_direct_1x1(const Conv2dShape& s) {
  return s.KH == 1 && s.KW == 1 && s.PT == 0 && s.PL == 0 && s.PB == 0 && s.PR == 0;
}

// Output pixels per im2col block: as many rows of K = KH*KW*C/G floats as fit the budget, but at
// least min(OC/G, kIm2colMaxReusePixels). Every block streams the whole weight matrix (K x OC/G
// floats) through the GEMM, so a block of np pixels moves K * np floats of im2col rows and K * OC/G
// of weights: with np >= OC/G the weights are at most half of it. The budget alone gave ResNet-50's
// 7x7x512 3x3 convs (K = 4608) blocks of 12 pixels, which read their 9.4 MB of weights five times
// per inference. kIm2colMaxReusePixels is the GEMM driver's own row block (12 x 16 rows), beyond
// which it re-reads B anyway.
// The blocks are then evened out: the count is rounded to the nearest (at least 1) rather than up,
// so 196 pixels at 192 per block run as one block of 196, not as 192 + 4 with the weights read twice.
int64_t im2col_block_pixels(const Conv2dShape& s) {
  const int64_t kg = s.KH * s.KW * (s.C / s.G), ocg = s.OC / s.G, total = s.N * s.OH * s.OW;
  int64_t p = kIm2colBudgetFloats / std::max<int64_t>(kg, 1);
  p = std::max({kIm2colPixelQuantum, p, std::min(ocg, kIm2colMaxReusePixels)});
  p = p / kIm2colPixelQuantum * kIm2colPixelQuantum;
  if (p >= total) return std::max<int64_t>(1, total);
  const int64_t blocks = std::max<int64_t>(1, (total + p / 2) / p);
  return ceil_div(ceil_div(total, blocks), kIm2colPixelQuantum) * kIm2colPixelQuantum;
}

// The threads a conv runs with: those it was packed for (never the OpenMP setting: the scratch is
// sized for exactly these), 1 inside a parallel region.
int thread_count(const PackedConv2d& p) { return omp_in_parallel() ? 1 : p.threads; }

// fn(r) for r in [0, rows) over the conv's threads (serial inside a parallel region): contiguous
// shares balanced at run time (MeetSplit), so a thread on a slower vCPU takes fewer rows. The stems
// at 2 threads, paired in one process against a static split, two runs: ResNet-50's 7x7 2.05 -> 1.83
// and 2.24 -> 1.90 ms, MobileNetV2's 3x3 0.168 -> 0.174 and 0.252 -> 0.217 ms. (A dynamic schedule
// interleaving the rows saved as much on the 7x7 stem, but the max pool after it then read half its
// rows from the other core's cache: +0.05 ms.)
template <class F>
void parallel_rows(const PackedConv2d& p, int64_t rows, const F& fn) {
  const int nt = int(std::min<int64_t>(thread_count(p), rows));
  if (nt > 1) {
    meet_split_parallel(rows, nt, [&](int t, MeetSplit& split) { split.run(t, fn); });
  } else {
    for (int64_t r = 0; r < rows; ++r) fn(r);
  }
}

// ---- pointwise and unpadded 1x1 -------------------------------------------------------------

bool is_strided(const Conv2dShape& s) { return s.SH != 1 || s.SW != 1; }

// Floats of scratch a planned strided 1x1 conv gathers its input pixels into (0 unstrided); the
// scan's packed rows of A follow them.
int64_t gathered_floats(const Conv2dShape& s) { return is_strided(s) ? s.N * s.OH * s.OW * s.C : 0; }

// residual (nullable; then act is the activation after the Add and p.act is none) is added in the
// GEMM's epilogue where the path allows it (G = 1: the planned scan, or one GEMM at stride 1); the
// return value says whether it was.
// With accumulate, out holds the residual on entry (written over in place, conv_can_write_over_residual):
// the GEMM adds into it and applies res_act, as a fused residual does.
bool conv_1x1(const PackedConv2d& p, const float* in, float* out, float* scratch, const float* residual = nullptr,
              const Activation& res_act = {}, bool accumulate = false) {
  const Conv2dShape& s = p.s;
  const int64_t cg = s.C / s.G, ocg = s.OC / s.G;
  const bool fuse = (residual != nullptr || accumulate) && p.act.kind == ActKind::None;
  if (p.scan) {  // with a cache plan (G = 1): stride 1 reads the input as is, strided gathers first
    const float* a = in;
    float* strips = scratch + gathered_floats(s);  // packed rows of A
    if (is_strided(s)) {
      // The input pixels the conv reads, as rows of C floats in output order: the GEMM's A
      // (N*OH*OW x C), contiguous in scratch.
      copy_strided_f32({s.N, s.OH, s.OW, s.C}, in, {s.H * s.W * s.C, s.SH * s.W * s.C, s.SW * s.C, 1}, scratch,
                       {s.OH * s.OW * s.C, s.OW * s.C, s.C, 1});
      a = scratch;
    }
    pointwise_scan_f32(*p.scan, a, s.C, out, s.OC, p.bias.data(), fuse ? res_act : p.act, fuse ? residual : nullptr,
                       accumulate, strips);
    return fuse;
  }
  if (s.SH == 1 && s.SW == 1) {
    const bool fused = fuse && s.G == 1;
    for (int64_t g = 0; g < s.G; ++g)
      gemm_f32(s.N * s.H * s.W, in + g * cg, s.C, p.group_b[g], out + g * ocg, s.OC,
               p.bias.data() + g * ocg, fused ? res_act : p.act, accumulate, p.threads, fused ? residual : nullptr, s.OC);
    return fused;
  }
  parallel_rows(p, s.N * s.OH, [&](int64_t r) {
    const int64_t n = r / s.OH, oh = r % s.OH;
    const float* src = in + ((n * s.H + oh * s.SH) * s.W) * s.C;
    float* dst = out + r * s.OW * s.OC;
    for (int64_t g = 0; g < s.G; ++g)
      gemm_f32(s.OW, src + g * cg, s.SW * s.C, p.group_b[g], dst + g * ocg, s.OC,
               p.bias.data() + g * ocg, p.act);
  });
  return false;
}

// ---- depthwise ------------------------------------------------------------------------------

void conv_depthwise(const PackedConv2d& p, const float* in, float* out) {
  const Conv2dShape& s = p.s;
  const DwConvMicroKernel ukernel = dwconv_microkernel_for(active_isa());
  const Epilogue act_ep = epilogue_for(p.act);
  const Epilogue* ep = act_ep.has_act() ? &act_ep : nullptr;
  const DwInterior interior = dw_interior(s);
  parallel_rows(p, s.N * s.OH, [&](int64_t r) {
    const int64_t n = r / s.OH, oh = r % s.OH;
    const float* img = in + n * s.H * s.W * s.C;
    auto row_of = [&](int64_t ih) { return ih >= 0 && ih < s.H ? img + ih * s.W * s.C : nullptr; };
    depthwise_row(s, interior, s.C, s.C, ukernel, row_of, oh, p.zeros.data(), p.dw_weights.data(), p.bias.data(), ep,
                  out + r * s.OW * s.C, p.dw_prefetch);
  });
}

// ---- direct (small input depth) ------------------------------------------------------------

bool direct_eligible(const Conv2dShape& s) {
  return s.G == 1 && s.DH == 1 && s.DW == 1 && conv_direct_fits(s.C, s.KH, s.KW) && !is_direct_1x1(s);
}

void conv_direct(const PackedConv2d& p, const float* in, float* out) {
  const Conv2dShape& s = p.s;
  const ConvDirectMicroKernel ukernel = conv_direct_microkernel_for(active_isa());
  const Epilogue act_ep = epilogue_for(p.act);
  const Epilogue* ep = act_ep.has_act() ? &act_ep : nullptr;
  const DwInterior interior = dw_interior(s);  // output columns whose taps all lie inside the input
  const int64_t kc = s.KW * s.C, step = s.SW * s.C;
  parallel_rows(p, s.N * s.OH, [&](int64_t r) {
    const int64_t n = r / s.OH, oh = r % s.OH;
    const float* img = in + n * s.H * s.W * s.C;
    float* orow = out + r * s.OW * s.OC;
    const float* rows[kConvDirectMaxK];
    if (interior.hi > interior.lo) {
      const int64_t iw0 = interior.lo * s.SW - s.PL;
      for (int64_t kh = 0; kh < s.KH; ++kh) {
        const int64_t ih = oh * s.SH - s.PT + kh;
        rows[kh] = ih >= 0 && ih < s.H ? img + (ih * s.W + iw0) * s.C : p.zeros.data() + (iw0 + s.PL) * s.C;
      }
      ukernel(interior.hi - interior.lo, s.OC, s.KH, kc, rows, step, p.direct_w.data(), p.direct_bias.data(),
              orow + interior.lo * s.OC, ep);
    }
    // Border pixels: taps gathered into a zero-padded patch of KH x KW * C floats.
    auto border = [&](int64_t ow) {
      float patch[kConvDirectMaxK];
      for (int64_t kh = 0; kh < s.KH; ++kh) {
        const int64_t ih = oh * s.SH - s.PT + kh;
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          const int64_t iw = ow * s.SW - s.PL + kw;
          float* dst = patch + kh * kc + kw * s.C;
          const bool inside = ih >= 0 && ih < s.H && iw >= 0 && iw < s.W;
          for (int64_t c = 0; c < s.C; ++c) dst[c] = inside ? img[(ih * s.W + iw) * s.C + c] : 0.f;
        }
        rows[kh] = patch + kh * kc;
      }
      ukernel(1, s.OC, s.KH, kc, rows, step, p.direct_w.data(), p.direct_bias.data(), orow + ow * s.OC, ep);
    };
    for (int64_t ow = 0; ow < interior.lo; ++ow) border(ow);
    for (int64_t ow = interior.hi; ow < s.OW; ++ow) border(ow);
  });
}

// ---- general: im2col + GEMM -----------------------------------------------------------------

// Rows [p0, p0 + np) of the im2col matrix of group g; row layout (kh, kw, c) with c fastest.
void im2col(const Conv2dShape& s, int64_t g, const float* in, int64_t p0, int64_t np,
            float* __restrict dst) {
  const int64_t cg = s.C / s.G, kg = s.KH * s.KW * cg;
  const int64_t ohw = s.OH * s.OW;
  for (int64_t i = 0; i < np; ++i) {
    const int64_t px = p0 + i;
    const int64_t n = px / ohw, oh = (px % ohw) / s.OW, ow = px % s.OW;
    float* row = dst + i * kg;
    for (int64_t kh = 0; kh < s.KH; ++kh) {
      const int64_t ih = oh * s.SH - s.PT + kh * s.DH;
      float* seg = row + kh * s.KW * cg;
      if (ih < 0 || ih >= s.H) {
        std::memset(seg, 0, s.KW * cg * sizeof(float));
        continue;
      }
      const int64_t iw_first = ow * s.SW - s.PL, iw_last = iw_first + (s.KW - 1) * s.DW;
      if (s.G == 1 && s.DW == 1 && iw_first >= 0 && iw_last < s.W) {
        // Interior, one group, no dilation: the KW taps of this kernel row are KW * C contiguous
        // floats of the input row (one copy instead of KW; matters for small C, e.g. the RGB stem).
        std::memcpy(seg, in + ((n * s.H + ih) * s.W + iw_first) * s.C, s.KW * cg * sizeof(float));
        continue;
      }
      for (int64_t kw = 0; kw < s.KW; ++kw, seg += cg) {
        const int64_t iw = ow * s.SW - s.PL + kw * s.DW;
        if (iw < 0 || iw >= s.W) {
          for (int64_t c = 0; c < cg; ++c) seg[c] = 0.f;
          continue;
        }
        const float* src = in + ((n * s.H + ih) * s.W + iw) * s.C + g * cg;
        if (cg >= 16)
          std::memcpy(seg, src, cg * sizeof(float));
        else
          for (int64_t c = 0; c < cg; ++c) seg[c] = src[c];
      }
    }
  }
}

void conv_im2col(const PackedConv2d& p, const float* in, float* out, float* scratch, const float* residual,
                 const Activation& post_act) {
  const Conv2dShape& s = p.s;
  const int64_t cg = s.C / s.G, ocg = s.OC / s.G, kg = s.KH * s.KW * cg;
  const int64_t total = s.N * s.OH * s.OW;
  const int64_t block = im2col_block_pixels(s);
  const int64_t blocks = ceil_div(total, block);

  // A residual is added in the GEMM's epilogue when the conv has no activation of its own before
  // the Add (else after each block, while its output rows are still in cache).
  const bool fuse_residual = residual && s.G == 1 && p.act.kind == ActKind::None;
  const int nt = thread_count(p);
  // share: the block's im2col split over the conv's threads (its pixel rows), when the block is large
  // enough to repay the fork (ResNet-50's 3x3 convs at 14x14 and 7x7 run one block of 0.9-1.8 MB).
  auto run_block = [&](int64_t b, float* buf, bool share) {
    const int64_t p0 = b * block, np = std::min(block, total - p0);
    for (int64_t g = 0; g < s.G; ++g) {
      if (share && np * kg >= kIm2colShareMinFloats) {
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int t = 0; t < nt; ++t) {
          const int64_t q0 = np * t / nt, q1 = np * (t + 1) / nt;
          im2col(s, g, in, p0 + q0, q1 - q0, buf + q0 * kg);
        }
      } else {
        im2col(s, g, in, p0, np, buf);
      }
      gemm_f32(np, buf, kg, p.group_b[g], out + p0 * s.OC + g * ocg, s.OC, p.bias.data() + g * ocg,
               fuse_residual ? post_act : p.act, false, p.threads, fuse_residual ? residual + p0 * s.OC : nullptr,
               s.OC);
    }
    if (residual && !fuse_residual)
      binary_same_f32(BinaryOp::Add, np * s.OC, out + p0 * s.OC, residual + p0 * s.OC, out + p0 * s.OC, post_act);
  };

  if (nt > 1 && blocks >= 2 * nt) {
    // Parallel over pixel blocks; each thread im2cols into its own slice (nt slices), GEMMs run serially.
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t b = 0; b < blocks; ++b) run_block(b, scratch + omp_get_thread_num() * block * kg, false);
  } else {
    // Few blocks: one at a time, each im2col (if large) and GEMM using the threads.
    for (int64_t b = 0; b < blocks; ++b) run_block(b, scratch, nt > 1);
  }
}

// The conv alone, on the path p was packed for.
void run_path(const PackedConv2d& p, const float* in, float* out, float* scratch) {
  switch (p.path) {
    case ConvPath::Depthwise: conv_depthwise(p, in, out); break;
    case ConvPath::Direct: conv_direct(p, in, out); break;
    case ConvPath::Pointwise: conv_1x1(p, in, out, scratch); break;
    case ConvPath::General:
      if (is_direct_1x1(p.s))
        conv_1x1(p, in, out, scratch);
      else
        conv_im2col(p, in, out, scratch, nullptr, {});
      break;
  }
}

}  // namespace

PackedConv2d pack_conv2d(const Conv2dShape& s, const float* w_oihw, const float* bias,
                         const Activation& act, int64_t buffer_entries, schedule::TileOrder order, int threads) {
  LOCUS_CHECK(buffer_entries >= 0, "conv2d: negative buffer size ", buffer_entries);
  LOCUS_CHECK(s.N >= 1 && s.H >= 1 && s.W >= 1 && s.C >= 1 && s.OC >= 1, "conv2d: bad shape");
  LOCUS_CHECK(s.KH >= 1 && s.KW >= 1 && s.SH >= 1 && s.SW >= 1 && s.DH >= 1 && s.DW >= 1,
              "conv2d: bad kernel, stride or dilation");
  LOCUS_CHECK(s.PT >= 0 && s.PL >= 0 && s.PB >= 0 && s.PR >= 0, "conv2d: negative pads");
  LOCUS_CHECK(s.G >= 1 && s.C % s.G == 0 && s.OC % s.G == 0, "conv2d: C=", s.C, " OC=", s.OC,
              " not divisible by group=", s.G);
  LOCUS_CHECK(s.OH == (s.H + s.PT + s.PB - s.DH * (s.KH - 1) - 1) / s.SH + 1 &&
                  s.OW == (s.W + s.PL + s.PR - s.DW * (s.KW - 1) - 1) / s.SW + 1 && s.OH >= 1 &&
                  s.OW >= 1,
              "conv2d: output ", s.OH, "x", s.OW, " does not match the input and kernel");

  PackedConv2d p;
  p.s = s;
  p.act = act;
  p.threads = std::max(threads, 1);
  p.bias.assign(s.OC, 0.f);
  if (bias) std::copy(bias, bias + s.OC, p.bias.begin());

  const int64_t cg = s.C / s.G, ocg = s.OC / s.G, taps = s.KH * s.KW;
  const bool pointwise = is_direct_1x1(s) && s.SH == 1 && s.SW == 1 && s.G == 1;
  if (pointwise) {
    p.path = ConvPath::Pointwise;
  } else if (s.G == s.C && s.OC == s.C) {
    p.path = ConvPath::Depthwise;
  } else if (direct_eligible(s)) {
    p.path = ConvPath::Direct;
  } else {
    p.path = ConvPath::General;
  }

  if (p.path == ConvPath::Depthwise) {
    p.dw_weights.resize(taps * s.C);
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t t = 0; t < taps; ++t) p.dw_weights[t * s.C + c] = w_oihw[c * taps + t];
    // One zero row of the padded input width: taps of out-of-range rows read it at their column.
    p.zeros.assign((s.W + s.PL + s.PR) * s.C, 0.f);
    p.dw_prefetch = dw_input_streams(s.H, s.W, s.C);
    return p;
  }

  if (p.path == ConvPath::Direct) {
    p.direct_w = pack_conv_direct(s.OC, s.C, s.KH, s.KW, w_oihw);
    p.direct_bias.assign(conv_direct_padded_oc(s.OC), 0.f);
    std::copy(p.bias.begin(), p.bias.end(), p.direct_bias.begin());
    p.zeros.assign((s.W + s.PL + s.PR) * s.C, 0.f);
    return p;
  }

  // B for group g: K = (kh, kw, c) rows, N = the group's output channels.
  const int64_t kg = taps * cg;
  std::vector<float> b(kg * ocg);
  for (int64_t g = 0; g < s.G; ++g) {
    for (int64_t o = 0; o < ocg; ++o) {
      const float* wo = w_oihw + (g * ocg + o) * cg * taps;  // [c][kh][kw]
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t t = 0; t < taps; ++t) b[(t * cg + c) * ocg + o] = wo[c * taps + t];
    }
    // Planned: the pointwise path and strided unpadded 1x1 convs (their pixels gathered into rows
    // at run time), M = N*OH*OW. Grouped 1x1 convs stay on gemm_f32 per group: each group's A is a
    // column slice of the input, and the plan/kernel pair has no notion of groups yet.
    // When the planner finds no tile for this buffer (it throws), no plan: gemm_f32 then.
    const bool plannable = p.path == ConvPath::Pointwise || (is_direct_1x1(s) && s.G == 1);
    if (plannable && buffer_entries > 0) {
      try {
        p.scan = std::make_shared<const PointwiseScan>(
            pack_pointwise_scan(s.N * s.OH * s.OW, kg, ocg, b.data(), ocg, buffer_entries, order, p.threads));
        continue;
      } catch (const Error&) {
        // no tile fits: fall through to the plain GEMM
      }
    }
    p.group_b.push_back(pack_b(kg, ocg, b.data(), ocg, false));
  }
  return p;
}

int64_t conv2d_scratch_floats(const PackedConv2d& p) {
  if (p.scan) return gathered_floats(p.s) + pointwise_scan_scratch_floats(*p.scan);
  if (p.path != ConvPath::General || is_direct_1x1(p.s)) return 0;
  const int64_t kg = p.s.KH * p.s.KW * (p.s.C / p.s.G);
  return int64_t(p.threads) * im2col_block_pixels(p.s) * kg;
}

bool conv_can_write_over_residual(const Conv2dShape& s) {
  return is_direct_1x1(s) && s.SH == 1 && s.SW == 1 && s.G == 1;
}

void conv2d_nhwc(const PackedConv2d& p, const float* in, float* out, float* scratch, const float* residual,
                 const Activation& post_act) {
  if (residual == out && out != nullptr) {
    // In place: out holds the residual; the 1x1 GEMM adds the conv to it (accumulate), then the
    // bias and post_act in its epilogue.
    LOCUS_CHECK(p.path == ConvPath::Pointwise && conv_can_write_over_residual(p.s) && p.act.kind == ActKind::None,
                "conv2d_nhwc: the residual is the output, but this conv (", p.s.KH, "x", p.s.KW, ", stride ", p.s.SH,
                ", ", p.s.G, " groups", p.act.kind == ActKind::None ? "" : ", its own activation",
                ") cannot add into it");
    conv_1x1(p, in, out, scratch, nullptr, post_act, true);
    return;
  }
  if (p.path == ConvPath::General && !is_direct_1x1(p.s)) {
    conv_im2col(p, in, out, scratch, residual, post_act);
    return;
  }
  const bool one_by_one = p.path == ConvPath::Pointwise || (p.path == ConvPath::General && is_direct_1x1(p.s));
  if (residual && one_by_one) {
    if (conv_1x1(p, in, out, scratch, residual, post_act)) return;  // added in the GEMM's epilogue
  } else {
    run_path(p, in, out, scratch);
  }
  if (!residual) return;
  // out = post_act(out + residual), in chunks of whole pixels split over the conv's threads
  const Conv2dShape& s = p.s;
  const int64_t pixels = s.N * s.OH * s.OW, chunk = std::max<int64_t>(1, 4096 / s.OC);
  parallel_rows(p, ceil_div(pixels, chunk), [&](int64_t r) {
    const int64_t p0 = r * chunk, np = std::min(chunk, pixels - p0);
    binary_same_f32(BinaryOp::Add, np * s.OC, out + p0 * s.OC, residual + p0 * s.OC, out + p0 * s.OC, post_act);
  });
}


}  // namespace locus::kernels
