// The Winograd F(4x4, 3x3) tile transforms, written once over a vector type V (a GCC vector of
// 16, 8 or 4 floats, or plain float for channel tails) and instantiated per ISA by
// winograd_{avx512f,avx2,generic}.cpp. Channels are the vector lanes: one call transforms one tile
// for every channel, VL channels at a time.
//   input:  V[xi] = (B^T d B)[xi] for the 6x6 input tile d (xi = 6 i + j)
//   output: y = A^T m A for the 6x6 product tile m, + bias (+ residual), then the clamp and the
//           post activation (HardSigmoid / HardSwish / Sigmoid, epilogue_vec.h).
// Matrices (Lavin & Gray 2016, points 0, +-1, +-2, infinity):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/native/epilogue.h"
#include "kernels/native/epilogue_vec.h"
#include "kernels/native/winograd.h"

namespace locus::kernels::winograd_detail {

template <class V>
inline V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V>
inline void store(float* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}
template <class V>
inline V splat(float x) {
  return V{} + x;
}
// The clamp of activation.h: y = min(max(x, lo), hi) keeping NaN (every comparison with NaN is false).
template <class V>
inline V clamp(V x, V lo, V hi) {
  const V y = x < lo ? lo : x;
  return hi < y ? hi : y;
}

// B^T applied to 6 values (one column or row of the tile).
template <class V>
inline void bt6(const V d[6], V t[6]) {
  t[0] = 4.f * d[0] - 5.f * d[2] + d[4];
  t[1] = d[3] + d[4] - 4.f * (d[1] + d[2]);
  t[2] = d[4] - d[3] + 4.f * (d[1] - d[2]);
  t[3] = d[4] - d[2] + 2.f * (d[3] - d[1]);
  t[4] = d[4] - d[2] + 2.f * (d[1] - d[3]);
  t[5] = 4.f * d[1] - 5.f * d[3] + d[5];
}

// A^T applied to 6 values.
template <class V>
inline void at6(const V m[6], V s[4]) {
  const V p12 = m[1] + m[2], m12 = m[1] - m[2], p34 = m[3] + m[4], m34 = m[3] - m[4];
  s[0] = m[0] + p12 + p34;
  s[1] = m12 + 2.f * m34;
  s[2] = p12 + 4.f * p34;
  s[3] = m12 + 8.f * m34 + m[5];
}

// Channels [c0, c1) of one tile, VL = sizeof(V) / 4 at a time (c1 - c0 a multiple of VL).
template <class V>
inline void input_tile(const WinogradInputTile& t, int64_t c0, int64_t c1) {
  constexpr int64_t VL = sizeof(V) / sizeof(float);
  for (int64_t c = c0; c < c1; c += VL) {
    V d[6][6], t1[6][6];
    for (int r = 0; r < 6; ++r)
      for (int k = 0; k < 6; ++k) d[r][k] = load<V>(t.src[r * 6 + k] + c);
    for (int k = 0; k < 6; ++k) {  // columns: t1 = B^T d
      V col[6], out[6];
      for (int r = 0; r < 6; ++r) col[r] = d[r][k];
      bt6(col, out);
      for (int r = 0; r < 6; ++r) t1[r][k] = out[r];
    }
    for (int r = 0; r < 6; ++r) {  // rows: v = t1 B
      V out[6];
      bt6(t1[r], out);
      for (int k = 0; k < 6; ++k) store(t.dst + (r * 6 + k) * t.xi_stride + c, out[k]);
    }
  }
}

template <class V>
inline void output_tile(const WinogradOutputTile& t, int64_t c0, int64_t c1) {
  constexpr int64_t VL = sizeof(V) / sizeof(float);
  const Epilogue* ep = t.ep;
  const bool clampit = ep && ep->clamp;
  const V lo = splat<V>(clampit ? ep->lo : 0.f), hi = splat<V>(clampit ? ep->hi : 0.f);
  const ActKind post = ep ? ep->post : ActKind::None;
  const float alpha = ep ? ep->alpha : 0.f, beta = ep ? ep->beta : 0.f;
  for (int64_t c = c0; c < c1; c += VL) {
    V s[4][6];
    for (int k = 0; k < 6; ++k) {  // columns: s = A^T m
      V col[6], out[4];
      for (int r = 0; r < 6; ++r) col[r] = load<V>(t.src + (r * 6 + k) * t.xi_stride + c);
      at6(col, out);
      for (int r = 0; r < 4; ++r) s[r][k] = out[r];
    }
    const V b = t.bias ? load<V>(t.bias + c) : V{};
    for (int r = 0; r < 4; ++r) {  // rows: y = s A
      V y[4];
      at6(s[r], y);
      for (int k = 0; k < 4; ++k) {
        float* o = t.dst[r * 4 + k];
        if (!o) continue;
        V v = y[k] + b;
        if (t.residual[r * 4 + k]) v = v + load<V>(t.residual[r * 4 + k] + c);
        if (clampit) v = clamp(v, lo, hi);
        if (post != ActKind::None) v = epi_post(v, post, alpha, beta);
        store(o + c, v);
      }
    }
  }
}

// Whole tile: vectors of V, then the tail one float at a time.
template <class V>
inline void input_tile_all(const WinogradInputTile& t) {
  constexpr int64_t VL = sizeof(V) / sizeof(float);
  const int64_t body = t.channels / VL * VL;
  input_tile<V>(t, 0, body);
  input_tile<float>(t, body, t.channels);
}
template <class V>
inline void output_tile_all(const WinogradOutputTile& t) {
  constexpr int64_t VL = sizeof(V) / sizeof(float);
  const int64_t body = t.channels / VL * VL;
  output_tile<V>(t, 0, body);
  output_tile<float>(t, body, t.channels);
}

}  // namespace locus::kernels::winograd_detail
