// i8_dot_chains_avx2: the AVX2 int8 throughput loop behind measured_int8_peak_gops (int8_peak.h):
// 12 independent ymm accumulators, each acc += vpmaddwd(x, w) per iteration (the instruction pair of
// qu8s8_gemm_4x16_avx2). The empty asm statements make va opaque between chains, so the compiler
// neither hoists nor shares the loop-invariant vpmaddwd: 12 vpmaddwd + 12 vpaddd per iteration.
#include <immintrin.h>

#include <cstdint>

namespace locus::kernels {

int64_t i8_dot_chains_avx2(int64_t iters, uint8_t a, int8_t b) {
  __m256i va = _mm256_set1_epi16(a), vb = _mm256_set1_epi16(b);
  const __m256i step = _mm256_set1_epi32(8);
  __m256i c[12];
  c[0] = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int i = 1; i < 12; ++i) c[i] = _mm256_add_epi32(c[i - 1], step);
  __m256i c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], c4 = c[4], c5 = c[5];
  __m256i c6 = c[6], c7 = c[7], c8 = c[8], c9 = c[9], c10 = c[10], c11 = c[11];
  for (int64_t i = 0; i < iters; ++i) {
    c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(va, vb));
    asm volatile("" : "+x"(va));
    c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(va, vb));
    asm volatile("" : "+x"(va));
    c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(va, vb));
    asm volatile("" : "+x"(va));
    c3 = _mm256_add_epi32(c3, _mm256_madd_epi16(va, vb));
    asm volatile("" : "+x"(va));
    c4 = _mm256_add_epi32(c4, _mm256_madd_epi16(va, vb));
    asm volatile("" : "+x"(va));
    c5 = _mm256_add_epi32(c5, _mm256_madd_epi16(va, vb));
    asm volatile("" : "+x"(va));
    c6 = _mm256_add_epi32(c6, _mm256_madd_epi16(va, vb));
    asm volatile("" : "+x"(va));
    c7 = _mm256_add_epi32(c7, _mm256_madd_epi16(va, vb));
    asm volatile("" : "+x"(va));
    c8 = _mm256_add_epi32(c8, _mm256_madd_epi16(va, vb));
    asm volatile("" : "+x"(va));
    c9 = _mm256_add_epi32(c9, _mm256_madd_epi16(va, vb));
    asm volatile("" : "+x"(va));
    c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(va, vb));
    asm volatile("" : "+x"(va));
    c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(va, vb));
    asm volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
    asm volatile("" : "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
  }
  alignas(32) int32_t lanes[12][8];
  const __m256i all[12] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  for (int k = 0; k < 12; ++k) _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[k]), all[k]);
  int64_t sum = 0;
  for (auto& row : lanes)
    for (int32_t v : row) sum += v;
  return sum;
}

}  // namespace locus::kernels
