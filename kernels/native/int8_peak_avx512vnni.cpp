// i8_dot_chains_avx512vnni: the AVX-512 VNNI throughput loop behind measured_int8_peak_gops
// (int8_peak.h): 12 independent zmm accumulators, one vpdpbusd each per iteration.
// GCC 12's AVX-512 min/max/convert intrinsics expand to masked builtins with an undefined pass-through
// operand, which -Wmaybe-uninitialized reports at every instantiation (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>

namespace locus::kernels {

int64_t i8_dot_chains_avx512vnni(int64_t iters, uint8_t a, int8_t b) {
  const __m512i va = _mm512_set1_epi8(static_cast<char>(a)), vb = _mm512_set1_epi8(b);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i c0 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i c1 = _mm512_add_epi32(c0, step), c2 = _mm512_add_epi32(c1, step), c3 = _mm512_add_epi32(c2, step);
  __m512i c4 = _mm512_add_epi32(c3, step), c5 = _mm512_add_epi32(c4, step), c6 = _mm512_add_epi32(c5, step);
  __m512i c7 = _mm512_add_epi32(c6, step), c8 = _mm512_add_epi32(c7, step), c9 = _mm512_add_epi32(c8, step);
  __m512i c10 = _mm512_add_epi32(c9, step), c11 = _mm512_add_epi32(c10, step);
  for (int64_t i = 0; i < iters; ++i) {
    c0 = _mm512_dpbusd_epi32(c0, va, vb);
    c1 = _mm512_dpbusd_epi32(c1, va, vb);
    c2 = _mm512_dpbusd_epi32(c2, va, vb);
    c3 = _mm512_dpbusd_epi32(c3, va, vb);
    c4 = _mm512_dpbusd_epi32(c4, va, vb);
    c5 = _mm512_dpbusd_epi32(c5, va, vb);
    c6 = _mm512_dpbusd_epi32(c6, va, vb);
    c7 = _mm512_dpbusd_epi32(c7, va, vb);
    c8 = _mm512_dpbusd_epi32(c8, va, vb);
    c9 = _mm512_dpbusd_epi32(c9, va, vb);
    c10 = _mm512_dpbusd_epi32(c10, va, vb);
    c11 = _mm512_dpbusd_epi32(c11, va, vb);
    asm volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));
    asm volatile("" : "+v"(c6), "+v"(c7), "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));
  }
  alignas(64) int32_t lanes[12][16];
  const __m512i all[12] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  for (int c = 0; c < 12; ++c) _mm512_store_si512(lanes[c], all[c]);
  int64_t sum = 0;
  for (auto& row : lanes)
    for (int32_t v : row) sum += v;
  return sum;
}

}  // namespace locus::kernels
