// The int8 element-wise kernels (qelementwise.h): portable versions, and dispatch to the AVX2 ones
// (qelementwise_avx2.cpp), which compute the same bits.
#include "kernels/native/qelementwise.h"

#include <algorithm>
#include <cmath>

#include "kernels/native/cpu_features.h"
#include "kernels/native/elementwise.h"
#include "kernels/native/strided_loop.h"

namespace locus::kernels {

void copy_strided_u8(const std::vector<int64_t>& shape, const uint8_t* src, const std::vector<int64_t>& src_strides,
                     uint8_t* dst, const std::vector<int64_t>& dst_strides) {
  detail::StridedDims<2> d;
  if (detail::collapse_copy(shape, src, src_strides, dst, dst_strides, d)) detail::copy_rows(d, src, dst);
}

void flip_sign_u8(int64_t n, const uint8_t* x, uint8_t* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = uint8_t(x[i] ^ 0x80u);
}

void quantize_f32_generic(int64_t n, const float* x, float scale, int32_t zp, bool s8_out, void* y) {
  const int32_t qmin = s8_out ? -128 : 0, qmax = s8_out ? 127 : 255;
  const float lo = float(qmin - zp), hi = float(qmax - zp);
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] / scale;
    v = v > lo ? v : lo;  // NaN -> lo, as maxps(v, lo)
    v = v < hi ? v : hi;
    const int32_t q = int32_t(std::nearbyint(v)) + zp;
    if (s8_out) static_cast<int8_t*>(y)[i] = int8_t(q);
    else static_cast<uint8_t*>(y)[i] = uint8_t(q);
  }
}

namespace {
// The AVX-512 element-wise kernels run where the int8 GEMM's VNNI kernel does.
bool use_avx512() { return active_isa() == Isa::Avx512 && cpu_has_avx512vnni(); }
}  // namespace

void quantize_f32(int64_t n, const float* x, float scale, int32_t zp, bool s8_out, void* y) {
  if (use_avx512()) quantize_f32_avx512(n, x, scale, zp, s8_out, y);
  else if (has_avx2(active_isa())) quantize_f32_avx2(n, x, scale, zp, s8_out, y);
  else quantize_f32_generic(n, x, scale, zp, s8_out, y);
}

void quantize_f32_nchw_to_nhwc(int64_t N, int64_t C, int64_t HW, const float* x, float scale, int32_t zp,
                               bool s8_out, void* y) {
  if (N <= 0 || C <= 0 || HW <= 0) return;
  // a tile of pixels: its C plane runs interleaved into an L1 buffer of NHWC floats (copy_strided_f32's
  // transpose: the SSE2 triple interleave for RGB), then quantized in one contiguous quantize_f32
  // call straight into the output
  const int64_t tile = std::max<int64_t>(16, 4096 / C);
  const int64_t tiles = (HW + tile - 1) / tile;
  const std::vector<int64_t> src_strides = {HW, 1}, tile_strides = {1, C};
  uint8_t* out = static_cast<uint8_t*>(y);
  detail::parallel_ranges(N * tiles, N * C * HW, [&](int64_t t0, int64_t t1) {
    std::vector<float> buf(size_t(C * tile));
    std::vector<int64_t> shape = {C, tile};
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / tiles, p0 = t % tiles * tile, np = std::min(tile, HW - p0);
      shape[1] = np;
      copy_strided_f32(shape, x + n * C * HW + p0, src_strides, buf.data(), tile_strides);
      quantize_f32(np * C, buf.data(), scale, zp, s8_out, out + (n * HW + p0) * C);
    }
  });
}

void dequantize_f32(int64_t n, const void* x, bool s8_in, float scale, int32_t zp, float* y) {
  if (s8_in) {
    const int8_t* p = static_cast<const int8_t*>(x);
    for (int64_t i = 0; i < n; ++i) y[i] = float(int32_t(p[i]) - zp) * scale;
  } else {
    const uint8_t* p = static_cast<const uint8_t*>(x);
    for (int64_t i = 0; i < n; ++i) y[i] = float(int32_t(p[i]) - zp) * scale;
  }
}

QAddParams qadd_params(float a_scale, int32_t a_zero, float b_scale, int32_t b_zero, float c_scale, int32_t c_zero,
                       bool s8) {
  QAddParams p;
  p.ra = a_scale / c_scale;
  p.rb = b_scale / c_scale;
  p.fixed = float(c_zero) - std::fma(p.ra, float(a_zero), p.rb * float(b_zero));
  p.s8 = s8;
  return p;
}

int32_t qadd_value(const QAddParams& p, int32_t a, int32_t b) {
  const float lo = p.s8 ? -128.f : 0.f, hi = p.s8 ? 127.f : 255.f;
  float v = std::fma(float(a), p.ra, std::fma(float(b), p.rb, p.fixed));
  // clamping before rounding equals saturating after it (integer bounds); NaN -> lo as maxps does
  v = v > lo ? v : lo;
  v = v < hi ? v : hi;
  return int32_t(std::nearbyint(v));
}

namespace {

template <class T>
void qadd_same_generic(const QAddParams& p, int64_t n, const T* a, const T* b, T* c) {
  for (int64_t i = 0; i < n; ++i) c[i] = T(qadd_value(p, a[i], b[i]));
}

}  // namespace

void qadd_same(const QAddParams& p, int64_t n, const uint8_t* a, const uint8_t* b, uint8_t* c) {
  if (use_avx512()) return qadd_same_avx512(p, n, a, b, c);
  if (has_avx2(active_isa())) return qadd_same_avx2(p, n, a, b, c);
  if (p.s8)
    qadd_same_generic(p, n, reinterpret_cast<const int8_t*>(a), reinterpret_cast<const int8_t*>(b),
                      reinterpret_cast<int8_t*>(c));
  else
    qadd_same_generic(p, n, a, b, c);
}

void qadd_strided(const QAddParams& p, const std::vector<int64_t>& shape, const uint8_t* a,
                  const std::vector<int64_t>& a_strides, const uint8_t* b, const std::vector<int64_t>& b_strides,
                  uint8_t* c, const std::vector<int64_t>& c_strides) {
  const std::vector<int64_t>* st[3] = {&a_strides, &b_strides, &c_strides};
  detail::StridedDims<3> d = detail::collapse<3>(shape, st);
  if (d.empty) return;
  auto get = [&](const uint8_t* q) { return p.s8 ? int32_t(int8_t(*q)) : int32_t(*q); };
  if (d.rank == 0) {
    c[0] = uint8_t(qadd_value(p, get(a), get(b)));
    return;
  }
  const int last = d.rank - 1;
  const int64_t inner = d.size[last], rows = d.outer_count(last);
  const int64_t sa = d.stride[0][last], sb = d.stride[1][last], sc = d.stride[2][last];
  detail::for_each_outer(d, last, 0, rows, [&](const int64_t* off) {
    const uint8_t *pa = a + off[0], *pb = b + off[1];
    uint8_t* pc = c + off[2];
    if (sa == 1 && sb == 1 && sc == 1) {
      qadd_same(p, inner, pa, pb, pc);
    } else {
      for (int64_t i = 0; i < inner; ++i) pc[i * sc] = uint8_t(qadd_value(p, get(pa + i * sa), get(pb + i * sb)));
    }
  });
}

void qglobal_avgpool_nhwc(int64_t N, int64_t pixels, int64_t C, const uint8_t* x, bool s8, float x_scale,
                          int32_t x_zero, float y_scale, int32_t y_zero, uint8_t* y) {
  const float scale = x_scale / (y_scale * float(pixels));
  const float lo = float((s8 ? -128 : 0) - y_zero), hi = float((s8 ? 127 : 255) - y_zero);
  std::vector<int32_t> acc(static_cast<size_t>(C));
  for (int64_t n = 0; n < N; ++n) {
    const uint8_t* img = x + n * pixels * C;
    for (int64_t c = 0; c < C; ++c) acc[size_t(c)] = -x_zero * int32_t(pixels);
    for (int64_t q = 0; q < pixels; ++q) {
      const uint8_t* px = img + q * C;
      if (s8) {
        for (int64_t c = 0; c < C; ++c) acc[size_t(c)] += int8_t(px[c]);
      } else {
        for (int64_t c = 0; c < C; ++c) acc[size_t(c)] += px[c];
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      float v = float(acc[size_t(c)]) * scale;
      v = v < lo ? lo : v;
      v = v > hi ? hi : v;
      y[n * C + c] = uint8_t(int32_t(std::nearbyint(v)) + y_zero);
    }
  }
}

}  // namespace locus::kernels
