// The Winograd F(4x4, 3x3) and F(2x2, 3x3) tile transforms, written once over a vector type V (a
// GCC vector of 16, 8 or 4 floats, or plain float for channel tails) and instantiated per ISA by
// winograd_{avx512f,avx2,generic}.cpp. Channels are the vector lanes: one call transforms one tile
// for every channel, VL channels at a time. With a = M + 2 (6 or 4):
//   input:  V[xi] = (B^T d B)[xi] for the a x a input tile d (xi = a i + j)
//   output: y = A^T m A for the a x a product tile m, + bias (+ residual), then the clamp and the
//           post activation (HardSigmoid / HardSwish / Sigmoid, epilogue_vec.h).
// Matrices (Lavin & Gray 2016). F(4x4, 3x3), points 0, +-1, +-2, infinity:
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// F(2x2, 3x3), points 0, +-1, infinity:
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]      A^T = [1 1 1 0; 0 1 -1 -1]
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

// B^T of F(2x2, 3x3) applied to 4 values.
template <class V>
inline void bt4(const V d[4], V t[4]) {
  t[0] = d[0] - d[2];
  t[1] = d[1] + d[2];
  t[2] = d[2] - d[1];
  t[3] = d[1] - d[3];
}

// A^T of F(2x2, 3x3) applied to 4 values.
template <class V>
inline void at4(const V m[4], V s[2]) {
  s[0] = m[0] + m[1] + m[2];
  s[1] = m[1] - m[2] - m[3];
}

// The transforms of F(M x M, 3x3) (M = 4 or 2) on A = M + 2 values.
template <int M, class V>
inline void bt(const V d[M + 2], V t[M + 2]) {
  if constexpr (M == 4) bt6(d, t);
  else bt4(d, t);
}
template <int M, class V>
inline void at(const V m[M + 2], V s[M]) {
  if constexpr (M == 4) at6(m, s);
  else at4(m, s);
}

// Channels [c0, c1) of one tile, VL = sizeof(V) / 4 at a time (c1 - c0 a multiple of VL).
template <int M, class V>
inline void input_tile(const WinogradInputTile& t, int64_t c0, int64_t c1) {
  constexpr int64_t VL = sizeof(V) / sizeof(float);
  constexpr int A = M + 2;
  for (int64_t c = c0; c < c1; c += VL) {
    V d[A][A], t1[A][A];
    for (int r = 0; r < A; ++r)
      for (int k = 0; k < A; ++k) d[r][k] = load<V>(t.src[r * A + k] + c);
    for (int k = 0; k < A; ++k) {  // columns: t1 = B^T d
      V col[A], out[A];
      for (int r = 0; r < A; ++r) col[r] = d[r][k];
      bt<M>(col, out);
      for (int r = 0; r < A; ++r) t1[r][k] = out[r];
    }
    for (int r = 0; r < A; ++r) {  // rows: v = t1 B
      V out[A];
      bt<M>(t1[r], out);
      for (int k = 0; k < A; ++k) store(t.dst + (r * A + k) * t.xi_stride + c, out[k]);
    }
  }
}

template <int M, class V>
inline void output_tile(const WinogradOutputTile& t, int64_t c0, int64_t c1) {
  constexpr int64_t VL = sizeof(V) / sizeof(float);
  constexpr int A = M + 2;
  const Epilogue* ep = t.ep;
  const bool clampit = ep && ep->clamp;
  const V lo = splat<V>(clampit ? ep->lo : 0.f), hi = splat<V>(clampit ? ep->hi : 0.f);
  const ActKind post = ep ? ep->post : ActKind::None;
  const float alpha = ep ? ep->alpha : 0.f, beta = ep ? ep->beta : 0.f;
  for (int64_t c = c0; c < c1; c += VL) {
    V s[M][A];
    for (int k = 0; k < A; ++k) {  // columns: s = A^T m
      V col[A], out[M];
      for (int r = 0; r < A; ++r) col[r] = load<V>(t.src + (r * A + k) * t.xi_stride + c);
      at<M>(col, out);
      for (int r = 0; r < M; ++r) s[r][k] = out[r];
    }
    const V b = t.bias ? load<V>(t.bias + c) : V{};
    for (int r = 0; r < M; ++r) {  // rows: y = s A
      V y[M];
      at<M>(s[r], y);
      for (int k = 0; k < M; ++k) {
        float* o = t.dst[r * M + k];
        if (!o) continue;
        V v = y[k] + b;
        if (t.residual[r * M + k]) v = v + load<V>(t.residual[r * M + k] + c);
        if (clampit) v = clamp(v, lo, hi);
        if (post != ActKind::None) v = epi_post(v, post, alpha, beta);
        store(o + c, v);
      }
    }
  }
}

// Whole tile (F(t.m x t.m, 3x3)): vectors of V, then the tail one float at a time.
template <int M, class V>
inline void input_tile_m(const WinogradInputTile& t) {
  constexpr int64_t VL = sizeof(V) / sizeof(float);
  const int64_t body = t.channels / VL * VL;
  input_tile<M, V>(t, 0, body);
  input_tile<M, float>(t, body, t.channels);
}
template <int M, class V>
inline void output_tile_m(const WinogradOutputTile& t) {
  constexpr int64_t VL = sizeof(V) / sizeof(float);
  const int64_t body = t.channels / VL * VL;
  output_tile<M, V>(t, 0, body);
  output_tile<M, float>(t, body, t.channels);
}
template <class V>
inline void input_tile_all(const WinogradInputTile& t) {
  if (t.m == 2) input_tile_m<2, V>(t);
  else input_tile_m<4, V>(t);
}
template <class V>
inline void output_tile_all(const WinogradOutputTile& t) {
  if (t.m == 2) output_tile_m<2, V>(t);
  else output_tile_m<4, V>(t);
}

}  // namespace locus::kernels::winograd_detail
