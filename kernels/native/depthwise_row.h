// One output row of a depthwise convolution on NHWC data: the driver shared by the standalone
// depthwise conv (conv2d_nhwc.cpp) and the fused inverted-residual kernel (inverted_residual.cpp),
// which differ only in where input row ih lives (the image, or a band / ring buffer of expanded
// rows). It gathers the tap pointers and calls the depthwise micro-kernel once per run of interior
// pixels and once per border pixel, in passes of at most kDwMaxTaps taps.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/native/aligned_vector.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/dwconv_microkernel.h"

namespace locus::kernels {

// The weights of depthwise channels [e0, e0 + cw) as the micro-kernel reads them, [taps][cw], from
// ONNX's [C][1][KH][KW] (taps = KH * KW): packed once per chunk at session creation by the fused
// kernels (inverted-residual, squeeze-excite, chain).
inline AlignedVector<float> pack_dw_chunk(const float* w, int64_t taps, int64_t e0, int64_t cw) {
  AlignedVector<float> r(size_t(taps * cw));
  for (int64_t c = 0; c < cw; ++c)
    for (int64_t t = 0; t < taps; ++t) r[size_t(t * cw + c)] = w[(e0 + c) * taps + t];
  return r;
}

// Output columns [lo, hi) of a depthwise conv whose every tap column lies inside the input.
struct DwInterior {
  int64_t lo = 0, hi = 0;
};
inline DwInterior dw_interior(const Conv2dShape& s) {
  const int64_t lo = std::min(s.OW, (s.PL + s.SW - 1) / s.SW);
  const int64_t a = s.W - 1 + s.PL - (s.KW - 1) * s.DW;
  const int64_t last = a >= 0 ? a / s.SW : -((-a + s.SW - 1) / s.SW);
  return {lo, std::clamp(last + 1, lo, s.OW)};
}

// Whether a depthwise input image of H x W pixels of C floats is assumed to stream from beyond L2
// (over 512 KB, as gemm.cpp's kPrefetchMinABytes for A): the drivers then ask depthwise_row to
// prefetch the next rows.
inline bool dw_input_streams(int64_t H, int64_t W, int64_t C) {
  return H * W * C * int64_t(sizeof(float)) > 512 * 1024;
}

// Output row oh of a depthwise conv with geometry s (s.C is ignored; C channels are filtered):
//   out[ow * C + c] = ep(bias[c] + sum over taps of input(ih, iw)[c] * w[tap * C + c])
// row_of(ih) returns input row ih's pixel 0 (pixels ps floats apart) or nullptr when ih is outside
// the input (padding). zeros holds at least (W + PL + PR) * ps zeros. `in` is the precomputed
// dw_interior(s).
// prefetch_next: first prefetch into L1 the input rows that output row oh + 1 adds (the SH rows
// below this row's window), for an input that streams from beyond L2. MobileNetV2's first block
// (no expand: its depthwise reads the stem's 1.6 MB output per image) took 1.39 ms at batch 8 on
// 2 threads without it and 0.85 ms with it; at batch 1 the time is the same (docs/benchmarks.md).
template <class RowOf>
inline void depthwise_row(const Conv2dShape& s, const DwInterior& in, int64_t C, int64_t ps, DwConvMicroKernel uk,
                          const RowOf& row_of, int64_t oh, const float* zeros, const float* w, const float* bias,
                          const Epilogue* ep, float* out, bool prefetch_next = false) {
  const int64_t ntaps = s.KH * s.KW;
  if (prefetch_next) {
    const int64_t first = oh * s.SH - s.PT + (s.KH - 1) * s.DH + 1;
    for (int64_t ih = first; ih < first + s.SH; ++ih)
      if (const float* r = row_of(ih)) {
        const char* b = reinterpret_cast<const char*>(r);
        const int64_t bytes = s.W * ps * int64_t(sizeof(float));
        for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(b + o, 0, 3);
      }
  }
  // npix pixels from output column ow0. Taps of rows outside the input point into the zero row at
  // the same column, so they advance with the pixel like real ones; with `check`, columns outside
  // the input are zeroed too (npix must be 1).
  auto run = [&](int64_t ow0, int64_t npix, bool check) {
    const int64_t ih0 = oh * s.SH - s.PT, iw0 = ow0 * s.SW - s.PL;
    const float* taps[kDwMaxTaps];
    int64_t t = 0, t0 = 0;
    for (int64_t kh = 0; kh < s.KH; ++kh) {
      const float* r = row_of(ih0 + kh * s.DH);
      for (int64_t kw = 0; kw < s.KW; ++kw, ++t) {
        const int64_t iw = iw0 + kw * s.DW;
        if (check && !(iw >= 0 && iw < s.W))
          taps[t - t0] = zeros;
        else if (!r)
          taps[t - t0] = zeros + (iw + s.PL) * ps;
        else
          taps[t - t0] = r + iw * ps;
        if (t + 1 - t0 == kDwMaxTaps || t + 1 == ntaps) {
          const bool first = t0 == 0, last = t + 1 == ntaps;
          uk(C, npix, taps, t + 1 - t0, s.SW * ps, w + t0 * C, first ? bias : nullptr, out + ow0 * C,
             last ? ep : nullptr);
          t0 = t + 1;
        }
      }
    }
  };
  for (int64_t ow = 0; ow < in.lo; ++ow) run(ow, 1, true);
  if (in.hi > in.lo) run(in.lo, in.hi - in.lo, false);
  for (int64_t ow = in.hi; ow < s.OW; ++ow) run(ow, 1, true);
}

}  // namespace locus::kernels
