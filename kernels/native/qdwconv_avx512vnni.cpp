// qu8s8_dwconv_avx512vnni: the AVX-512 int8 depthwise micro-kernel (qdwconv.h; compiled with
// -mavx512vnni -mavx512bw; selected when has_avx512vnni()), "qu8s8-dwconv-16c8p-avx512vnni".
// 16 channels per zmm: the input bytes are zero-extended to s32 lanes (vpmovzxbd) and the s8 weights
// are sign-extended to s32 as they are loaded (vpmovsxbd), so one vpdpwssd (s16 pairs: low halves
// x * w, high halves 0 * sign = 0) adds x * w exactly per lane.
//
// Register blocking (the 3x3 kernels of stride 1 and 2, all of MobileNetV2's): when the 9 taps form
// three kernel rows whose taps lie d bytes apart and the pixel step is d (stride 1) or 2d (stride 2),
// tap kw of pixel i is input column S*i + kw of its kernel row. A pass over 8 output pixels x 16
// channels then holds the 9 tap weights and the 8 accumulators in registers and loads each input
// column once per kernel row, adding it to every pixel that uses it: 3 x (S*7 + 3) vpmovzxbd for
// 72 vpdpwssd (stride 1: 30, against 72 loads + 18 weight loads per tap and pixel before). Other
// kernels (any K x K, dilation, border pixels that read the padding row) take the per-tap path: runs
// of 4 pixels sharing each weight load. On CPUs with AVX-512 VBMI (Zen 4, Ice Lake and later) the
// 3x3 path goes further: three taps per vpdpbusd (below, "three taps per vpdpbusd"). Both add the same products to the same s32 sums, starting
// from the folded bias. The last channel block is masked. The epilogue requantizes as requantize.h
// (cvtdq2ps, vmulps, max/min, cvtps2dq, + zero point), or, when QEpilogue::sat_narrow allows it, four
// pixels at a time with saturating packs (requantize_avx512.h).
// GCC 12's AVX-512 min/max/convert intrinsics expand to masked builtins with an undefined pass-through
// operand, which -Wmaybe-uninitialized reports at every instantiation (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <utility>

#include "kernels/native/qdwconv.h"
#include "kernels/native/requantize_avx512.h"

namespace locus::kernels {
namespace {

constexpr int kPix = 4;

inline __m512i load_x(__mmask16 m, const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)); }
// 16 s8 weights (the packed rows are padded to Cp, a multiple of 16): as bytes, and sign-extended to s32.
inline __m128i load_w16(const int8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m512i widen_w16(const int8_t* p) { return _mm512_cvtepi8_epi32(load_w16(p)); }

// Requantizes P accumulators (bias already added) and stores 16 (masked) bytes per pixel.
template <int P>
__attribute__((always_inline)) inline void store(const __m512i* acc, const __m512i* xs, bool zw, int64_t c0,
                                                 __mmask16 m, const QEpilogue& ep, uint8_t* out, int64_t ldo) {
  const __m512 scale = _mm512_loadu_ps(ep.scale + c0);
  const __m512 lo = _mm512_set1_ps(ep.lo), hi = _mm512_set1_ps(ep.hi);
  const __m512i zp = _mm512_set1_epi32(ep.y_zero);
  const __m512i wz = zw ? _mm512_loadu_si512(ep.w_zero + c0) : _mm512_setzero_si512();
  __m512i v[P];
#pragma GCC unroll 8
  for (int i = 0; i < P; ++i) v[i] = zw ? _mm512_sub_epi32(acc[i], _mm512_mullo_epi32(xs[i], wz)) : acc[i];
  int i0 = 0;
  if (P >= 4 && ep.sat_narrow) {  // groups of four pixels narrowed with saturation (requantize_avx512.h)
    const __m512i zp16 = _mm512_set1_epi16(static_cast<int16_t>(ep.y_zero));
#pragma GCC unroll 2
    for (int g = 0; g + 4 <= P; g += 4) store4_saturating(&v[g], scale, zp16, ep.s8_out, m, out + g * ldo + c0, ldo);
    i0 = P / 4 * 4;
  }
#pragma GCC unroll 8
  for (int i = 0; i < P; ++i) {
    if (i < i0) continue;
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v[i]), scale);
    f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);  // round to nearest even
    _mm_mask_storeu_epi8(out + i * ldo + c0, m, _mm512_cvtepi32_epi8(q));
  }
}

// The per-tap path: P pixels, any taps.
template <int P>
__attribute__((always_inline)) inline void block(int64_t c0, __mmask16 m, const uint8_t* const* taps, int64_t ntaps,
                                                 int64_t off, int64_t step, const int8_t* w, int64_t Cp,
                                                 const QEpilogue& ep, uint8_t* out, int64_t ldo) {
  __m512i acc[P], xs[P];
  const __m512i bias = _mm512_loadu_si512(ep.bias + c0);
#pragma GCC unroll 4
  for (int i = 0; i < P; ++i) acc[i] = bias, xs[i] = _mm512_setzero_si512();
  const bool zw = ep.w_zero != nullptr;
  for (int64_t t = 0; t < ntaps; ++t) {
    const __m512i wv = widen_w16(w + t * Cp + c0);
    const uint8_t* base = taps[t] + off + c0;
#pragma GCC unroll 4
    for (int i = 0; i < P; ++i) {
      const __m512i x = load_x(m, base + i * step);
      acc[i] = _mm512_dpwssd_epi32(acc[i], x, wv);
      if (zw) xs[i] = _mm512_add_epi32(xs[i], x);
    }
  }
  store<P>(acc, xs, zw, c0, m, ep, out, ldo);
}

// The register-blocked 3x3 path: P pixels of stride S; row[r] = kernel row r's tap 0 for pixel 0 at
// channel c0, its columns d bytes apart; wv the 9 tap weights.
template <int P, int S, bool ZW>
__attribute__((always_inline)) inline void block3x3(int64_t c0, __mmask16 m, const uint8_t* const* row, int64_t d,
                                                    const __m512i* wv, const QEpilogue& ep, uint8_t* out,
                                                    int64_t ldo) {
  constexpr int kCols = S * (P - 1) + 3;
  __m512i acc[P], xs[P];
  const __m512i bias = _mm512_loadu_si512(ep.bias + c0);
#pragma GCC unroll 8
  for (int i = 0; i < P; ++i) acc[i] = bias, xs[i] = _mm512_setzero_si512();
#pragma GCC unroll 3
  for (int r = 0; r < 3; ++r) {
    const uint8_t* base = row[r];
#pragma GCC unroll 24
    for (int j = 0; j < kCols; ++j) {
      const __m512i x = load_x(m, base + j * d);
#pragma GCC unroll 3
      for (int kw = 0; kw < 3; ++kw) {
        // column j is tap kw of pixel (j - kw) / S
        const int i = (j - kw) / S;
        if (j - kw >= 0 && (j - kw) % S == 0 && i < P) {
          acc[i] = _mm512_dpwssd_epi32(acc[i], x, wv[r * 3 + kw]);
          if (ZW) xs[i] = _mm512_add_epi32(xs[i], x);
        }
      }
    }
  }
  store<P>(acc, xs, ZW, c0, m, ep, out, ldo);
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

template <int S, bool ZW>
void run3x3(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t step, int64_t d, const int8_t* w,
            int64_t Cp, const QEpilogue& ep, uint8_t* out, int64_t ldo) {
  constexpr int P = ZW ? 4 : 8;
  for (int64_t c0 = 0; c0 < C; c0 += 16) {
    const int64_t nc = std::min<int64_t>(16, C - c0);
    const __mmask16 m = static_cast<__mmask16>(nc == 16 ? 0xFFFF : (1u << nc) - 1);
    __m512i wv[9];
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) wv[t] = widen_w16(w + t * Cp + c0);
    const uint8_t* row[3];
    int64_t i = 0;
    auto rows_at = [&](int64_t px) {
      for (int r = 0; r < 3; ++r) row[r] = taps[3 * r] + px * step + c0;
    };
    for (; i + P <= npix; i += P) {
      rows_at(i);
      block3x3<P, S, ZW>(c0, m, row, d, wv, ep, out + i * ldo, ldo);
    }
    if (npix - i >= 4 && P > 4) {
      rows_at(i);
      block3x3<4, S, ZW>(c0, m, row, d, wv, ep, out + i * ldo, ldo);
      i += 4;
    }
    if (npix - i >= 2) {
      rows_at(i);
      block3x3<2, S, ZW>(c0, m, row, d, wv, ep, out + i * ldo, ldo);
      i += 2;
    }
    if (npix - i >= 1) {
      rows_at(i);
      block3x3<1, S, ZW>(c0, m, row, d, wv, ep, out + i * ldo, ldo);
    }
  }
}

// ---- three taps per vpdpbusd (AVX-512 VBMI) ----
// Input column j of the three kernel rows as one zmm: dword c = bytes [row0[c], row1[c], row2[c], 0]
// (two 16-byte loads combined in a zmm, one byte permute vpermt2b with the 4th byte zeroed); the
// weights of tap column kw likewise: [w(0,kw), w(1,kw), w(2,kw), 0] per channel. One vpdpbusd (u8 x
// s8, four products summed, no saturation) then adds a kernel column's three products per channel:
// 3 vpdpbusd per pixel instead of 9 vpdpwssd, and 2 loads + 1 insert + 1 permute per column instead
// of 3 vpmovzxbd. With weight zero points the tap sums come from a vpdpbusd with weights 1, 1, 1, 0.
// Nine taps in no such pattern (the border pixels of a row, dilated 3x3 kernels) are read as three
// columns of three taps the same way, without the column reuse.

std::atomic<bool> g_vbmi{true};

bool use_vbmi() {
  static const bool cpu = __builtin_cpu_supports("avx512vbmi");
  return cpu && g_vbmi.load(std::memory_order_relaxed);
}

__attribute__((target("avx512vbmi"), always_inline)) inline __m512i interleave3(const __m512i idx, __m128i r0,
                                                                                 __m128i r1, __m128i r2) {
  const __m512i a = _mm512_inserti32x4(_mm512_castsi128_si512(r0), r2, 1);
  return _mm512_maskz_permutex2var_epi8(0x7777777777777777ull, a, idx, _mm512_castsi128_si512(r1));
}

// The byte index of interleave3 (a compile-time table: the border pixels call the kernel one pixel at
// a time, so building it per call cost as much as the pixel).
constexpr uint8_t interleave_byte(int b) {
  // dword c = [a[c], b[c], a[16 + c], 0]: row 0 is a's bytes 0..15, row 1 b's bytes 0..15, row 2 a's
  // bytes 16..31; byte 3 of each dword is zeroed by the mask
  return b % 4 == 0 ? uint8_t(b / 4) : b % 4 == 1 ? uint8_t(64 + b / 4) : b % 4 == 2 ? uint8_t(16 + b / 4) : 0;
}
template <int... B>
constexpr std::array<uint8_t, 64> interleave_table(std::integer_sequence<int, B...>) {
  return {interleave_byte(B)...};
}
alignas(64) constexpr std::array<uint8_t, 64> kInterleave = interleave_table(std::make_integer_sequence<int, 64>{});

__attribute__((target("avx512vbmi"), always_inline)) inline __m512i interleave_index() {
  return _mm512_load_si512(kInterleave.data());
}

// Two channel blocks per column (block3x3_vbmi_pair): a = [row 0's 32 bytes | row 2's 32 bytes], b =
// row 1's 32 bytes; block h (0, 1) takes row 0's bytes 16h.., row 1's 16h.. and row 2's 32 + 16h..
constexpr uint8_t interleave_pair_byte(int h, int b) {
  return b % 4 == 0 ? uint8_t(16 * h + b / 4)
         : b % 4 == 1 ? uint8_t(64 + 16 * h + b / 4)
         : b % 4 == 2 ? uint8_t(32 + 16 * h + b / 4)
                      : 0;
}
template <int... B>
constexpr std::array<uint8_t, 128> interleave_pair_table(std::integer_sequence<int, B...>) {
  return {interleave_pair_byte(B / 64, B % 64)...};
}
alignas(64) constexpr std::array<uint8_t, 128> kInterleavePair =
    interleave_pair_table(std::make_integer_sequence<int, 128>{});

template <bool FULL>
__attribute__((always_inline)) inline __m128i load16(__mmask16 m, const uint8_t* p) {
  if constexpr (FULL) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm_maskz_loadu_epi8(m, p);
}

template <int P, int S, bool ZW, bool FULL>
__attribute__((target("avx512vbmi"), always_inline)) inline void block3x3_vbmi(
    int64_t c0, __mmask16 m, const uint8_t* const* row, int64_t d, const __m512i* wk, __m512i idx,
    const QEpilogue& ep, uint8_t* out, int64_t ldo) {
  constexpr int kCols = S * (P - 1) + 3;
  __m512i acc[P], xs[P];
  const __m512i bias = _mm512_loadu_si512(ep.bias + c0);
  const __m512i ones = _mm512_set1_epi32(0x00010101);
#pragma GCC unroll 16
  for (int i = 0; i < P; ++i) acc[i] = bias, xs[i] = _mm512_setzero_si512();
#pragma GCC unroll 40
  for (int j = 0; j < kCols; ++j) {
    // (FULL: plain loads the insert and permute can take from memory; else masked)
    const __m512i x = interleave3(idx, load16<FULL>(m, row[0] + j * d), load16<FULL>(m, row[1] + j * d),
                                  load16<FULL>(m, row[2] + j * d));
#pragma GCC unroll 3
    for (int kw = 0; kw < 3; ++kw) {
      const int i = (j - kw) / S;  // column j is tap column kw of pixel i
      if (j - kw >= 0 && (j - kw) % S == 0 && i < P) {
        acc[i] = _mm512_dpbusd_epi32(acc[i], x, wk[kw]);
        if (ZW) xs[i] = _mm512_dpbusd_epi32(xs[i], x, ones);
      }
    }
  }
  store<P>(acc, xs, ZW, c0, m, ep, out, ldo);
}

// Two whole channel blocks (c0 .. c0 + 31) of P pixels, no weight zero points: per input column one
// 256-bit load per kernel row, one insert and one vpermt2b per block (instead of three 128-bit loads,
// an insert and a permute per block); the same products in the same sums as block3x3_vbmi.
template <int P, int S>
__attribute__((target("avx512vbmi"), always_inline)) inline void block3x3_vbmi_pair(
    int64_t c0, const uint8_t* const* row, int64_t d, const __m512i* wk0, const __m512i* wk1, __m512i idx0,
    __m512i idx1, const QEpilogue& ep, uint8_t* out, int64_t ldo) {
  constexpr int kCols = S * (P - 1) + 3;
  __m512i acc0[P], acc1[P];
  const __m512i bias0 = _mm512_loadu_si512(ep.bias + c0), bias1 = _mm512_loadu_si512(ep.bias + c0 + 16);
#pragma GCC unroll 16
  for (int i = 0; i < P; ++i) acc0[i] = bias0, acc1[i] = bias1;
#pragma GCC unroll 40
  for (int j = 0; j < kCols; ++j) {
    const __m256i r0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[0] + j * d));
    const __m256i r1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[1] + j * d));
    const __m256i r2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[2] + j * d));
    const __m512i a = _mm512_inserti64x4(_mm512_castsi256_si512(r0), r2, 1), b = _mm512_castsi256_si512(r1);
    const __m512i x0 = _mm512_maskz_permutex2var_epi8(0x7777777777777777ull, a, idx0, b);
    const __m512i x1 = _mm512_maskz_permutex2var_epi8(0x7777777777777777ull, a, idx1, b);
#pragma GCC unroll 3
    for (int kw = 0; kw < 3; ++kw) {
      const int i = (j - kw) / S;  // column j is tap column kw of pixel i
      if (j - kw >= 0 && (j - kw) % S == 0 && i < P) {
        acc0[i] = _mm512_dpbusd_epi32(acc0[i], x0, wk0[kw]);
        acc1[i] = _mm512_dpbusd_epi32(acc1[i], x1, wk1[kw]);
      }
    }
  }
  store<P>(acc0, acc0, false, c0, 0xFFFF, ep, out, ldo);
  store<P>(acc1, acc1, false, c0 + 16, 0xFFFF, ep, out, ldo);
}

// Any 9 taps (a 3x3 kernel's border pixels, whose out-of-image taps point at the padding row;
// dilated kernels): P pixels, taps (r, kw) read as column kw of the three rows, no column reuse.
template <int P, bool ZW>
__attribute__((target("avx512vbmi"), always_inline)) inline void block9_vbmi(
    int64_t c0, __mmask16 m, const uint8_t* const* taps, int64_t off, int64_t step, const __m512i* wk, __m512i idx,
    const QEpilogue& ep, uint8_t* out, int64_t ldo) {
  __m512i acc[P], xs[P];
  const __m512i bias = _mm512_loadu_si512(ep.bias + c0);
  const __m512i ones = _mm512_set1_epi32(0x00010101);
#pragma GCC unroll 4
  for (int i = 0; i < P; ++i) acc[i] = bias, xs[i] = _mm512_setzero_si512();
#pragma GCC unroll 3
  for (int kw = 0; kw < 3; ++kw) {
#pragma GCC unroll 4
    for (int i = 0; i < P; ++i) {
      const int64_t o = off + i * step + c0;
      const __m512i x = interleave3(idx, _mm_maskz_loadu_epi8(m, taps[kw] + o), _mm_maskz_loadu_epi8(m, taps[3 + kw] + o),
                                    _mm_maskz_loadu_epi8(m, taps[6 + kw] + o));
      acc[i] = _mm512_dpbusd_epi32(acc[i], x, wk[kw]);
      if (ZW) xs[i] = _mm512_dpbusd_epi32(xs[i], x, ones);
    }
  }
  store<P>(acc, xs, ZW, c0, m, ep, out, ldo);
}

template <bool ZW>
__attribute__((target("avx512vbmi"))) void run9_vbmi(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t step,
                                                      const int8_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out,
                                                      int64_t ldo) {
  const __m512i idx = interleave_index();
  for (int64_t c0 = 0; c0 < C; c0 += 16) {
    const int64_t nc = std::min<int64_t>(16, C - c0);
    const __mmask16 m = static_cast<__mmask16>(nc == 16 ? 0xFFFF : (1u << nc) - 1);
    __m512i wk[3];
#pragma GCC unroll 3
    for (int kw = 0; kw < 3; ++kw) {
      auto narrow = [&](int r) { return load_w16(w + (r * 3 + kw) * Cp + c0); };
      wk[kw] = interleave3(idx, narrow(0), narrow(1), narrow(2));
    }
    int64_t i = 0;
    for (; i + 4 <= npix; i += 4) block9_vbmi<4, ZW>(c0, m, taps, i * step, step, wk, idx, ep, out + i * ldo, ldo);
    for (; i < npix; ++i) block9_vbmi<1, ZW>(c0, m, taps, i * step, step, wk, idx, ep, out + i * ldo, ldo);
  }
}

// The pixels of one channel block: passes of 8, then 4, 2, 1.
template <int S, bool ZW, bool FULL, class RowsAt>
__attribute__((target("avx512vbmi"), always_inline)) inline void run_row_vbmi(
    int64_t c0, __mmask16 m, const uint8_t* const* row, const RowsAt& rows_at, int64_t npix, int64_t d,
    const __m512i* wk, __m512i idx, const QEpilogue& ep, uint8_t* out, int64_t ldo) {
  int64_t i = 0;
  for (; i + 8 <= npix; i += 8) {
    rows_at(i);
    block3x3_vbmi<8, S, ZW, FULL>(c0, m, row, d, wk, idx, ep, out + i * ldo, ldo);
  }
  if (npix - i >= 4) {
    rows_at(i);
    block3x3_vbmi<4, S, ZW, FULL>(c0, m, row, d, wk, idx, ep, out + i * ldo, ldo);
    i += 4;
  }
  if (npix - i >= 2) {
    rows_at(i);
    block3x3_vbmi<2, S, ZW, FULL>(c0, m, row, d, wk, idx, ep, out + i * ldo, ldo);
    i += 2;
  }
  if (npix - i >= 1) {
    rows_at(i);
    block3x3_vbmi<1, S, ZW, FULL>(c0, m, row, d, wk, idx, ep, out + i * ldo, ldo);
  }
}

// The s8 weights of taps (r, kw) of channels c .. c + 15 interleaved like the
// input (wk[kw] = [w(0, kw), w(1, kw), w(2, kw), 0] per channel).
__attribute__((target("avx512vbmi"), always_inline)) inline void weights3x3(const int8_t* w, int64_t Cp, int64_t c,
                                                                             __m512i idx, __m512i* wk) {
#pragma GCC unroll 3
  for (int kw = 0; kw < 3; ++kw) {
    const __m128i r0 = load_w16(w + kw * Cp + c);
    const __m128i r1 = load_w16(w + (3 + kw) * Cp + c);
    const __m128i r2 = load_w16(w + (6 + kw) * Cp + c);
    wk[kw] = interleave3(idx, r0, r1, r2);
  }
}

template <int S, bool ZW>
__attribute__((target("avx512vbmi"))) void run3x3_vbmi(int64_t C, int64_t npix, const uint8_t* const* taps,
                                                        int64_t step, int64_t d, const int8_t* w, int64_t Cp,
                                                        const QEpilogue& ep, uint8_t* out, int64_t ldo) {
  const __m512i idx = interleave_index();
  int64_t c0 = 0;
  if constexpr (!ZW) {  // pairs of whole channel blocks: passes of 8, 4, 2, 1 pixels
    const __m512i idx0 = _mm512_load_si512(kInterleavePair.data()), idx1 = _mm512_load_si512(kInterleavePair.data() + 64);
    for (; c0 + 32 <= C; c0 += 32) {
      __m512i wk0[3], wk1[3];
      weights3x3(w, Cp, c0, idx, wk0);
      weights3x3(w, Cp, c0 + 16, idx, wk1);
      const uint8_t* row[3];
      auto rows_at = [&](int64_t px) {
        for (int r = 0; r < 3; ++r) row[r] = taps[3 * r] + px * step + c0;
      };
      int64_t i = 0;
      for (; i + 8 <= npix; i += 8) {
        rows_at(i);
        block3x3_vbmi_pair<8, S>(c0, row, d, wk0, wk1, idx0, idx1, ep, out + i * ldo, ldo);
      }
      if (npix - i >= 4) {
        rows_at(i);
        block3x3_vbmi_pair<4, S>(c0, row, d, wk0, wk1, idx0, idx1, ep, out + i * ldo, ldo);
        i += 4;
      }
      if (npix - i >= 2) {
        rows_at(i);
        block3x3_vbmi_pair<2, S>(c0, row, d, wk0, wk1, idx0, idx1, ep, out + i * ldo, ldo);
        i += 2;
      }
      if (npix - i >= 1) {
        rows_at(i);
        block3x3_vbmi_pair<1, S>(c0, row, d, wk0, wk1, idx0, idx1, ep, out + i * ldo, ldo);
      }
    }
  }
  for (; c0 < C; c0 += 16) {
    const int64_t nc = std::min<int64_t>(16, C - c0);
    const __mmask16 m = static_cast<__mmask16>(nc == 16 ? 0xFFFF : (1u << nc) - 1);
    __m512i wk[3];
    weights3x3(w, Cp, c0, idx, wk);
    const uint8_t* row[3];
    auto rows_at = [&](int64_t px) {
      for (int r = 0; r < 3; ++r) row[r] = taps[3 * r] + px * step + c0;
    };
    if (nc == 16)
      run_row_vbmi<S, ZW, true>(c0, m, row, rows_at, npix, d, wk, idx, ep, out, ldo);
    else
      run_row_vbmi<S, ZW, false>(c0, m, row, rows_at, npix, d, wk, idx, ep, out, ldo);
  }
}

}  // namespace

void set_qdwconv_vbmi(bool enabled) { g_vbmi.store(enabled, std::memory_order_relaxed); }

void qu8s8_dwconv_avx512vnni(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t ntaps, int64_t step,
                             const int8_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out, int64_t ldo) {
  int64_t d = 0;
  const int S = stride_3x3(taps, ntaps, step, &d);
  const bool zw = ep.w_zero != nullptr;
  if (ntaps == 9 && S == 0 && use_vbmi())
    return zw ? run9_vbmi<true>(C, npix, taps, step, w, Cp, ep, out, ldo) : run9_vbmi<false>(C, npix, taps, step, w, Cp, ep, out, ldo);
  if (S != 0 && use_vbmi()) {
    if (S == 1) return zw ? run3x3_vbmi<1, true>(C, npix, taps, step, d, w, Cp, ep, out, ldo)
                          : run3x3_vbmi<1, false>(C, npix, taps, step, d, w, Cp, ep, out, ldo);
    return zw ? run3x3_vbmi<2, true>(C, npix, taps, step, d, w, Cp, ep, out, ldo)
              : run3x3_vbmi<2, false>(C, npix, taps, step, d, w, Cp, ep, out, ldo);
  }
  if (S == 1) return zw ? run3x3<1, true>(C, npix, taps, step, d, w, Cp, ep, out, ldo)
                        : run3x3<1, false>(C, npix, taps, step, d, w, Cp, ep, out, ldo);
  if (S == 2) return zw ? run3x3<2, true>(C, npix, taps, step, d, w, Cp, ep, out, ldo)
                        : run3x3<2, false>(C, npix, taps, step, d, w, Cp, ep, out, ldo);
  for (int64_t c0 = 0; c0 < C; c0 += 16) {
    const int64_t nc = std::min<int64_t>(16, C - c0);
    const __mmask16 m = static_cast<__mmask16>(nc == 16 ? 0xFFFF : (1u << nc) - 1);
    int64_t i = 0;
    for (; i + kPix <= npix; i += kPix) block<kPix>(c0, m, taps, ntaps, i * step, step, w, Cp, ep, out + i * ldo, ldo);
    for (; i < npix; ++i) block<1>(c0, m, taps, ntaps, i * step, step, w, Cp, ep, out + i * ldo, ldo);
  }
}

}  // namespace locus::kernels
