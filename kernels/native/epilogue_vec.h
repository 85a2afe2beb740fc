// The epilogue's non-clamp activations (HardSigmoid, HardSwish, Sigmoid) on a tile held in
// registers, written once over a vector type V (__m512, __m256, a GCC vector of floats, or plain
// float) and compiled per ISA by each micro-kernel's file. Sigmoid uses exp_approx below, not
// std::exp. Everything here has internal linkage (an anonymous namespace): each ISA's file gets its
// own copy, so the linker can never hand an AVX-512 instantiation to the AVX2 or generic path.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/native/epilogue.h"

namespace locus::kernels {
namespace {  // NOLINT(google-build-namespaces): internal linkage on purpose, see above

template <class V>
struct EpiBits {
  typedef uint32_t type __attribute__((vector_size(sizeof(V))));
};
template <>
struct EpiBits<float> {
  using type = uint32_t;
};

template <class V>
__attribute__((always_inline)) inline V epi_splat(float x) {
  return V{} + x;
}
// min(max(x, lo), hi) keeping NaN (every comparison with NaN is false), as clip_keep_nan.
template <class V>
__attribute__((always_inline)) inline V epi_clip(V x, V lo, V hi) {
  const V y = x < lo ? lo : x;
  return hi < y ? hi : y;
}

// exp(x) for x in [-86.5, 88.0] (inputs outside are clamped to it, so exp_approx never returns 0,
// a denormal or inf): x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite, ln2 in two parts), exp(r) by the
// degree-7 Cephes expf polynomial, times 2^n built in the exponent field. Relative error below
// 2e-7 (measured 8.2e-8 over the range, with and without FMA; asserted against std::exp by
// epilogue_test.cpp, ExpApprox). NaN stays NaN.
template <class V>
__attribute__((always_inline)) inline V exp_approx(V x) {
  using U = typename EpiBits<V>::type;
  x = epi_clip(x, epi_splat<V>(-86.5f), epi_splat<V>(88.0f));
  const V magic = epi_splat<V>(12582912.f);  // 1.5 * 2^23: adding it rounds to an integer
  const V t = x * 1.44269504088896341f + magic;
  const V n = t - magic;
  const V r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  V p = epi_splat<V>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.f;
  U tb;
  std::memcpy(&tb, &t, sizeof(V));
  const U eb = (tb - 0x4B400000u + 127u) << 23;  // the biased exponent of 2^n (n in [-125, 127])
  V scale;
  std::memcpy(&scale, &eb, sizeof(V));
  return p * scale;  // a NaN x gives a NaN p, and NaN * anything is NaN
}

// The activations of activation.h (same NaN behaviour), on vectors.
template <class V>
__attribute__((always_inline)) inline V epi_hard_sigmoid(V x, float alpha, float beta) {
  return epi_clip(x * alpha + beta, V{}, epi_splat<V>(1.f));
}
template <class V>
__attribute__((always_inline)) inline V epi_hard_swish(V x) {
  return x * epi_clip(x * (1.f / 6.f) + 0.5f, V{}, epi_splat<V>(1.f));
}
// 1 / (1 + exp(-x)): absolute error below 2e-7 and relative error below 2.5e-7 for x >= -86.5
// (measured 8.9e-8 and 1.5e-7; epilogue_test.cpp asserts both); below -86.5, where the true value
// is under 2.7e-38, the result is under 1e-38. sigmoid(+inf) = 1, sigmoid(NaN) = NaN.
template <class V>
__attribute__((always_inline)) inline V epi_sigmoid(V x) {
  const V one = epi_splat<V>(1.f);
  return one / (one + exp_approx(-x));
}

template <class V>
__attribute__((always_inline)) inline V epi_post(V x, ActKind kind, float alpha, float beta) {
  switch (kind) {
    case ActKind::HardSigmoid: return epi_hard_sigmoid(x, alpha, beta);
    case ActKind::HardSwish: return epi_hard_swish(x);
    case ActKind::Sigmoid: return epi_sigmoid(x);
    default: return x;
  }
}

// acc[0..n) = post(acc[i]) for ep.post (HardSigmoid / HardSwish / Sigmoid; nothing for None), one
// switch for the whole tile.
template <class V>
__attribute__((always_inline)) inline void epi_post_tile(V* acc, int n, const Epilogue& ep) {
  switch (ep.post) {
    case ActKind::HardSigmoid:
#pragma GCC unroll 16
      for (int i = 0; i < n; ++i) acc[i] = epi_hard_sigmoid(acc[i], ep.alpha, ep.beta);
      break;
    case ActKind::HardSwish:
#pragma GCC unroll 16
      for (int i = 0; i < n; ++i) acc[i] = epi_hard_swish(acc[i]);
      break;
    case ActKind::Sigmoid:
#pragma GCC unroll 16
      for (int i = 0; i < n; ++i) acc[i] = epi_sigmoid(acc[i]);
      break;
    default: break;
  }
}

}  // namespace
}  // namespace locus::kernels
