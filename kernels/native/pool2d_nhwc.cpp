// NHWC pooling: max, average (count_include_pad per the header) and global average. Max pooling
// propagates NaN: a window holding a NaN gives NaN (IEEE 754-2019 maximum, numpy's max, PyTorch's
// max pooling, cuDNN's NaN-propagating mode). The ONNX spec says nothing about NaN, and ONNX
// Runtime's MLAS pooling keeps or drops a NaN depending on where it sits in the window and on the
// code path (its reductions are std::max(m, x), which drops a NaN x, and _mm_max_ps(m, x), which
// takes a NaN x but lets a later finite x replace it), so there is no NaN-dropping rule to follow.
// The reference backend does the same as this. Each output pixel reduces its valid window taps
// over all channels (pool2d_avx512f.cpp under AVX-512, pool2d_avx2.cpp under AVX2, else loops the
// compiler vectorises);
// parallel over (n, output row).
#include "kernels/native/pool2d_nhwc.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "graph/error.h"
#include "kernels/native/cpu_features.h"

namespace locus::kernels {
namespace {

void check(const Pool2dShape& s) {
  LOCUS_CHECK(s.N >= 1 && s.H >= 1 && s.W >= 1 && s.C >= 1 && s.OH >= 1 && s.OW >= 1,
              "pool2d: bad shape");
  LOCUS_CHECK(s.KH >= 1 && s.KW >= 1 && s.SH >= 1 && s.SW >= 1 && s.DH >= 1 && s.DW >= 1,
              "pool2d: bad kernel, stride or dilation");
}

// Calls row(r) for every output row r in [0, N*OH), in parallel when worthwhile.
template <class F>
void for_rows(const Pool2dShape& s, F&& row) {
  const int64_t rows = s.N * s.OH;
  const bool par = rows > 1 && !omp_in_parallel() && omp_get_max_threads() > 1 &&
                   rows * s.OW * s.C * s.KH * s.KW >= (int64_t(1) << 15);
  if (par) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) row(r);
  } else {
    for (int64_t r = 0; r < rows; ++r) row(r);
  }
}

// Number of taps k in [0, K) with lo <= base + k * dil < hi.
int64_t taps_in(int64_t base, int64_t K, int64_t dil, int64_t lo, int64_t hi) {
  int64_t n = 0;
  for (int64_t k = 0; k < K; ++k) {
    const int64_t x = base + k * dil;
    n += (x >= lo && x < hi);
  }
  return n;
}

// Walks every output pixel of s: init(o) on its C outputs, tap(o, x) for each input pixel x of its
// window that lies inside the input, then finish(o, ih0, iw0) with the window's top-left corner.
template <class Init, class Tap, class Finish>
void for_windows(const Pool2dShape& s, const float* in, float* out, Init init, Tap tap, Finish finish) {
  for_rows(s, [&](int64_t r) {
    const int64_t n = r / s.OH, oh = r % s.OH;
    const int64_t ih0 = oh * s.SH - s.PT;
    for (int64_t ow = 0; ow < s.OW; ++ow) {
      const int64_t iw0 = ow * s.SW - s.PL;
      float* __restrict o = out + (r * s.OW + ow) * s.C;
      init(o);
      for (int64_t kh = 0; kh < s.KH; ++kh) {
        const int64_t ih = ih0 + kh * s.DH;
        if (ih < 0 || ih >= s.H) continue;
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          const int64_t iw = iw0 + kw * s.DW;
          if (iw < 0 || iw >= s.W) continue;
          tap(o, in + ((n * s.H + ih) * s.W + iw) * s.C);
        }
      }
      finish(o, ih0, iw0);
    }
  });
}

// NaN propagates: a NaN tap replaces m, and a NaN m stays (x > NaN is false).
inline float max_nan(float m, float x) { return x > m || x != x ? x : m; }

// One output pixel's channels [c0, c0 + 4 * V) over its window's taps (pointers to channel 0 of each
// inside input pixel), reduced in V four-float vectors held in registers: the output is written
// once, not once per tap (loading and storing it for each of a 3x3 window's 9 taps took ResNet-50's
// 112x112x64 max pool 0.37 ms against oneDNN's 0.08). Baseline x86-64 code (SSE2 through GCC's
// vector extension), like the rest of this file.
typedef float v4f __attribute__((vector_size(16), aligned(4)));
typedef int v4i __attribute__((vector_size(16)));
template <int V>
inline void max_block(const float* const* taps, int64_t ntaps, int64_t c0, float* o) {
  v4f acc[V];
#pragma GCC unroll 16
  for (int v = 0; v < V; ++v) acc[v] = v4f{} - INFINITY;  // stays -inf if no tap is inside
  for (int64_t t = 0; t < ntaps; ++t) {
    const v4f* x = reinterpret_cast<const v4f*>(taps[t] + c0);
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) {
      const v4f xv = x[v];
      const v4i take = (xv > acc[v]) | (xv != xv);  // max_nan, lane-wise
      acc[v] = reinterpret_cast<v4f>((reinterpret_cast<v4i>(xv) & take) | (reinterpret_cast<v4i>(acc[v]) & ~take));
    }
  }
  v4f* out = reinterpret_cast<v4f*>(o + c0);
#pragma GCC unroll 16
  for (int v = 0; v < V; ++v) out[v] = acc[v];
}

}  // namespace

void maxpool2d_nhwc(const Pool2dShape& s, const float* in, float* out) {
  check(s);
  constexpr int64_t kBlock = 32;     // channels per register block (8 four-float vectors)
  constexpr int64_t kMaxTaps = 64;   // windows up to 8x8 gather their taps on the stack
  const int64_t C = s.C;
  if (s.KH * s.KW > kMaxTaps) {      // large windows: accumulate in the output
    for_windows(
        s, in, out, [C](float* __restrict o) { std::fill(o, o + C, -INFINITY); },
        [C](float* __restrict o, const float* __restrict x) {
          for (int64_t c = 0; c < C; ++c) o[c] = max_nan(o[c], x[c]);
        },
        [](float*, int64_t, int64_t) {});
    return;
  }
  // The pixel kernel, chosen once per call: AVX-512F, AVX2, else the four-float code below.
  using PixelKernel = void (*)(const float* const*, int64_t, int64_t, float*);
  const Isa isa = active_isa();
  const PixelKernel pixel = isa == Isa::Avx512 ? maxpool_pixel_avx512f : isa == Isa::Avx2 ? maxpool_pixel_avx2 : nullptr;
  for_rows(s, [&](int64_t r) {
    const int64_t n = r / s.OH, oh = r % s.OH;
    const int64_t ih0 = oh * s.SH - s.PT;
    const float* taps[kMaxTaps];
    for (int64_t ow = 0; ow < s.OW; ++ow) {
      const int64_t iw0 = ow * s.SW - s.PL;
      int64_t nt = 0;
      for (int64_t kh = 0; kh < s.KH; ++kh) {
        const int64_t ih = ih0 + kh * s.DH;
        if (ih < 0 || ih >= s.H) continue;
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          const int64_t iw = iw0 + kw * s.DW;
          if (iw >= 0 && iw < s.W) taps[nt++] = in + ((n * s.H + ih) * s.W + iw) * C;
        }
      }
      float* o = out + (r * s.OW + ow) * C;
      if (pixel) {
        pixel(taps, nt, C, o);
        continue;
      }
      int64_t c0 = 0;
      for (; c0 + kBlock <= C; c0 += kBlock) max_block<kBlock / 4>(taps, nt, c0, o);
      for (; c0 + 4 <= C; c0 += 4) max_block<1>(taps, nt, c0, o);
      for (; c0 < C; ++c0) {  // the last C % 4 channels
        float m = -INFINITY;
        for (int64_t t = 0; t < nt; ++t) m = max_nan(m, taps[t][c0]);
        o[c0] = m;
      }
    }
  });
}


void avgpool2d_nhwc(const Pool2dShape& s, const float* in, float* out) {
  check(s);
  const int64_t C = s.C;
  for_windows(
      s, in, out,
      [C](float* __restrict o) {
        for (int64_t c = 0; c < C; ++c) o[c] = 0.f;
      },
      [C](float* __restrict o, const float* __restrict x) {
        for (int64_t c = 0; c < C; ++c) o[c] += x[c];
      },
      [&s, C](float* __restrict o, int64_t ih0, int64_t iw0) {
        // Taps inside the input, or inside input + explicit pads (count_include_pad).
        const int64_t count =
            s.count_include_pad
                ? taps_in(ih0, s.KH, s.DH, -s.PT, s.H + s.PB) * taps_in(iw0, s.KW, s.DW, -s.PL, s.W + s.PR)
                : taps_in(ih0, s.KH, s.DH, 0, s.H) * taps_in(iw0, s.KW, s.DW, 0, s.W);
        const float inv = count > 0 ? 1.f / float(count) : 0.f;  // empty window -> 0
        for (int64_t c = 0; c < C; ++c) o[c] *= inv;
      });
}


void global_avgpool_nhwc(int64_t N, int64_t HW, int64_t C, const float* in, float* out) {
  const float inv = HW > 0 ? 1.f / float(HW) : 0.f;
  for (int64_t n = 0; n < N; ++n) {
    float* __restrict o = out + n * C;
    for (int64_t c = 0; c < C; ++c) o[c] = 0.f;
    for (int64_t p = 0; p < HW; ++p) {
      const float* __restrict x = in + (n * HW + p) * C;
      for (int64_t c = 0; c < C; ++c) o[c] += x[c];
    }
    for (int64_t c = 0; c < C; ++c) o[c] *= inv;
  }
}

}  // namespace locus::kernels
