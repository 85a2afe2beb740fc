// qu8s8_dwconv_avx2: the AVX2 int8 depthwise micro-kernel (qdwconv.h; compiled with -mavx2 -mfma;
// selected under Isa::Avx2, and under Avx512 on CPUs without VNNI). 8 channels per ymm: the input
// bytes are zero-extended to s32 lanes (vpmovzxbd) and the s8 weights are sign-extended to s32
// lanes as they are loaded (vpmovsxbd), so vpmaddwd (low halves x * w, high halves 0 * sign = 0)
// gives x * w exactly per lane.
// "qu8s8-dwconv-8c4p-avx2": 3x3 kernels of stride 1 and 2 whose taps form three kernel rows of
// columns d bytes apart (the layout qdepthwise_row passes for interior runs) go through a
// register-blocked pass of 4 pixels x 8 channels: the 9 tap weights and 4 accumulators stay in
// registers and each input column is loaded once per kernel row for every pixel that uses it (as the
// AVX-512 kernel, qdwconv_avx512vnni.cpp); other kernels, and weight zero points, take runs of 4
// pixels sharing each weight load. The last 1..7 channels take the scalar path of the generic kernel.
// The epilogue requantizes as requantize.h (cvtdq2ps, vmulps, max/min, cvtps2dq, + zero point).
#include <immintrin.h>

#include <cstdint>

#include "kernels/native/qdwconv.h"

namespace locus::kernels {
namespace {

// 8 s8 weights sign-extended to s32 lanes.
inline __m256i load_w8(const int8_t* p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

template <int P>
__attribute__((always_inline)) inline void block8(int64_t c0, const uint8_t* const* taps, int64_t ntaps, int64_t off,
                                                  int64_t step, const int8_t* w, int64_t Cp, const QEpilogue& ep,
                                                  uint8_t* out, int64_t ldo) {
  __m256i acc[P], xs[P];
#pragma GCC unroll 4
  for (int i = 0; i < P; ++i) acc[i] = xs[i] = _mm256_setzero_si256();
  const bool zw = ep.w_zero != nullptr;
  for (int64_t t = 0; t < ntaps; ++t) {
    const __m256i wv = load_w8(w + t * Cp + c0);
    const uint8_t* base = taps[t] + off + c0;
#pragma GCC unroll 4
    for (int i = 0; i < P; ++i) {
      const __m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(base + i * step)));
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(x, wv));
      if (zw) xs[i] = _mm256_add_epi32(xs[i], x);
    }
  }
  const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.bias + c0));
  const __m256 scale = _mm256_loadu_ps(ep.scale + c0);
  const __m256 lo = _mm256_set1_ps(ep.lo), hi = _mm256_set1_ps(ep.hi);
  const __m256i zp = _mm256_set1_epi32(ep.y_zero);
  const __m256i wz = zw ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.w_zero + c0)) : _mm256_setzero_si256();
#pragma GCC unroll 4
  for (int i = 0; i < P; ++i) {
    __m256i v = _mm256_add_epi32(acc[i], bias);
    if (zw) v = _mm256_sub_epi32(v, _mm256_mullo_epi32(xs[i], wz));
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), scale);
    f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), zp);  // round to nearest even
    const __m128i s16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i b8 = ep.s8_out ? _mm_packs_epi16(s16, s16) : _mm_packus_epi16(s16, s16);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i * ldo + c0), b8);
  }
}

inline __m256i load_x8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// The register-blocked 3x3 path: P pixels of stride S; row[r] = kernel row r's tap 0 for pixel 0 at
// channel c0, its columns d bytes apart; wv the 9 tap weights. No weight zero points.
template <int P, int S>
__attribute__((always_inline)) inline void block3x3(int64_t c0, const uint8_t* const* row, int64_t d,
                                                    const __m256i* wv, const QEpilogue& ep, uint8_t* out,
                                                    int64_t ldo) {
  constexpr int kCols = S * (P - 1) + 3;
  __m256i acc[P];
  const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.bias + c0));
#pragma GCC unroll 4
  for (int i = 0; i < P; ++i) acc[i] = bias;
#pragma GCC unroll 3
  for (int r = 0; r < 3; ++r) {
    const uint8_t* base = row[r];
#pragma GCC unroll 12
    for (int j = 0; j < kCols; ++j) {
      const __m256i x = load_x8(base + j * d);
#pragma GCC unroll 3
      for (int kw = 0; kw < 3; ++kw) {
        const int i = (j - kw) / S;  // column j is tap kw of pixel i
        if (j - kw >= 0 && (j - kw) % S == 0 && i < P)
          acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(x, wv[r * 3 + kw]));
      }
    }
  }
  const __m256 scale = _mm256_loadu_ps(ep.scale + c0);
  const __m256 lo = _mm256_set1_ps(ep.lo), hi = _mm256_set1_ps(ep.hi);
  const __m256i zp = _mm256_set1_epi32(ep.y_zero);
#pragma GCC unroll 4
  for (int i = 0; i < P; ++i) {
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i]), scale);
    f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), zp);  // round to nearest even
    const __m128i s16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i b8 = ep.s8_out ? _mm_packs_epi16(s16, s16) : _mm_packus_epi16(s16, s16);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i * ldo + c0), b8);
  }
}

// Whether the taps are a 3x3 kernel of stride 1 or 2 as block3x3 reads them (returns S, or 0).
int stride_3x3(const uint8_t* const* taps, int64_t ntaps, int64_t step, int64_t* d) {
  if (ntaps != 9) return 0;
  const auto at = [&](int t) { return reinterpret_cast<uintptr_t>(taps[t]); };
  const uintptr_t dd = at(1) - at(0);
  for (int r = 0; r < 3; ++r)
    if (at(3 * r + 1) - at(3 * r) != dd || at(3 * r + 2) - at(3 * r + 1) != dd) return 0;
  *d = int64_t(dd);
  if (*d <= 0) return 0;
  if (step == *d) return 1;
  if (step == 2 * *d) return 2;
  return 0;
}

template <int S>
void run3x3(int64_t c8, int64_t C, int64_t npix, const uint8_t* const* taps, int64_t step, int64_t d,
            const int8_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out, int64_t ldo) {
  for (int64_t c0 = 0; c0 < c8; c0 += 8) {
    __m256i wv[9];
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) wv[t] = load_w8(w + t * Cp + c0);
    const uint8_t* row[3];
    auto rows_at = [&](int64_t px) {
      for (int r = 0; r < 3; ++r) row[r] = taps[3 * r] + px * step + c0;
    };
    int64_t i = 0;
    for (; i + 4 <= npix; i += 4) {
      rows_at(i);
      block3x3<4, S>(c0, row, d, wv, ep, out + i * ldo, ldo);
    }
    if (npix - i >= 2) {
      rows_at(i);
      block3x3<2, S>(c0, row, d, wv, ep, out + i * ldo, ldo);
      i += 2;
    }
    if (npix - i >= 1) {
      rows_at(i);
      block3x3<1, S>(c0, row, d, wv, ep, out + i * ldo, ldo);
    }
  }
}

}  // namespace

void qu8s8_dwconv_avx2(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t ntaps, int64_t step,
                       const int8_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out, int64_t ldo) {
  const int64_t c8 = C / 8 * 8;
  int64_t d = 0;
  const int S = ep.w_zero ? 0 : stride_3x3(taps, ntaps, step, &d);
  if (S == 1) run3x3<1>(c8, C, npix, taps, step, d, w, Cp, ep, out, ldo);
  if (S == 2) run3x3<2>(c8, C, npix, taps, step, d, w, Cp, ep, out, ldo);
  for (int64_t c0 = 0; c0 < c8 && S == 0; c0 += 8) {
    int64_t i = 0;
    for (; i + 4 <= npix; i += 4) block8<4>(c0, taps, ntaps, i * step, step, w, Cp, ep, out + i * ldo, ldo);
    for (; i < npix; ++i) block8<1>(c0, taps, ntaps, i * step, step, w, Cp, ep, out + i * ldo, ldo);
  }
  // the last 1..7 channels: scalar, as the generic kernel
  for (int64_t i = 0; i < npix && c8 < C; ++i) {
    for (int64_t c = c8; c < C; ++c) {
      int32_t acc = 0, xs = 0;
      for (int64_t t = 0; t < ntaps; ++t) {
        const int32_t x = taps[t][i * step + c];
        acc += x * w[t * Cp + c];
        xs += x;
      }
      int32_t v = acc + ep.bias[c];
      if (ep.w_zero) v -= xs * ep.w_zero[c];
      const int32_t q = requantize_value(v, ep.scale[c], ep.lo, ep.hi, ep.y_zero);
      out[i * ldo + c] = ep.s8_out ? static_cast<uint8_t>(static_cast<int8_t>(q)) : static_cast<uint8_t>(q);
    }
  }
}

}  // namespace locus::kernels
