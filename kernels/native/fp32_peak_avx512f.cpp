// f32_fma_chains_avx512f: the AVX-512F throughput loop behind measured_fp32_peak_gflops
// (fp32_peak.h), the yardstick of the AVX-512 kernels. Compiled with -mavx512f; selected at run time
// by fp32_peak.cpp when the active ISA is AVX-512.
#include <immintrin.h>

#include <cstdint>

namespace locus::kernels {

// 12 independent zmm accumulators, as the AVX2 loop: each iteration 12 vfmadd = 12 x 16 lanes x 2
// flops = 384 flops. Cores with two 512-bit FMA pipes reach 64 flops/cycle; cores that split a
// 512-bit FMA into two 256-bit halves (Zen 4) reach the AVX2 figure, which is what this measures.
double f32_fma_chains_avx512f(int64_t iters, float a, float b) {
  const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
  // lane l of chain c starts at 16c + l (distinct chains: see fp32_peak_avx2.cpp)
  const __m512 step = _mm512_set1_ps(16.f);
  __m512 c0 = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512 c1 = _mm512_add_ps(c0, step), c2 = _mm512_add_ps(c1, step), c3 = _mm512_add_ps(c2, step);
  __m512 c4 = _mm512_add_ps(c3, step), c5 = _mm512_add_ps(c4, step), c6 = _mm512_add_ps(c5, step);
  __m512 c7 = _mm512_add_ps(c6, step), c8 = _mm512_add_ps(c7, step), c9 = _mm512_add_ps(c8, step);
  __m512 c10 = _mm512_add_ps(c9, step), c11 = _mm512_add_ps(c10, step);
  for (int64_t i = 0; i < iters; ++i) {
    c0 = _mm512_fmadd_ps(c0, va, vb);
    c1 = _mm512_fmadd_ps(c1, va, vb);
    c2 = _mm512_fmadd_ps(c2, va, vb);
    c3 = _mm512_fmadd_ps(c3, va, vb);
    c4 = _mm512_fmadd_ps(c4, va, vb);
    c5 = _mm512_fmadd_ps(c5, va, vb);
    c6 = _mm512_fmadd_ps(c6, va, vb);
    c7 = _mm512_fmadd_ps(c7, va, vb);
    c8 = _mm512_fmadd_ps(c8, va, vb);
    c9 = _mm512_fmadd_ps(c9, va, vb);
    c10 = _mm512_fmadd_ps(c10, va, vb);
    c11 = _mm512_fmadd_ps(c11, va, vb);
    asm volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));
    asm volatile("" : "+v"(c6), "+v"(c7), "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));
  }
  alignas(64) float lanes[12][16];
  _mm512_store_ps(lanes[0], c0);
  _mm512_store_ps(lanes[1], c1);
  _mm512_store_ps(lanes[2], c2);
  _mm512_store_ps(lanes[3], c3);
  _mm512_store_ps(lanes[4], c4);
  _mm512_store_ps(lanes[5], c5);
  _mm512_store_ps(lanes[6], c6);
  _mm512_store_ps(lanes[7], c7);
  _mm512_store_ps(lanes[8], c8);
  _mm512_store_ps(lanes[9], c9);
  _mm512_store_ps(lanes[10], c10);
  _mm512_store_ps(lanes[11], c11);
  double sum = 0;
  for (auto& row : lanes)
    for (float v : row) sum += v;
  return sum;
}

}  // namespace locus::kernels
