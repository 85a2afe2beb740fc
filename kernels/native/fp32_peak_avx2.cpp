// f32_fma_chains_avx2: the AVX2+FMA throughput loop behind measured_fp32_peak_gflops (fp32_peak.h).
// Compiled with -mavx2 -mfma; selected at run time by fp32_peak.cpp.
#include <immintrin.h>

#include <cstdint>

namespace locus::kernels {

// 12 independent ymm accumulators (14 of the 16 ymm registers with a and b): with a 4-cycle FMA
// latency and 2 FMA pipes, 8 chains already keep both pipes busy; 12 leave slack for the loop
// counter. Each iteration: 12 vfmadd = 12 x 8 lanes x 2 flops = 192 flops.
double f32_fma_chains_avx2(int64_t iters, float a, float b) {
  const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
  // lane l of chain c starts at 8c + l: distinct chains, so the compiler cannot merge them (with
  // equal starts GCC computes one chain and copies it, which triples the "peak")
  const __m256 step = _mm256_set1_ps(8.f);
  __m256 c0 = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
  __m256 c1 = _mm256_add_ps(c0, step), c2 = _mm256_add_ps(c1, step), c3 = _mm256_add_ps(c2, step);
  __m256 c4 = _mm256_add_ps(c3, step), c5 = _mm256_add_ps(c4, step), c6 = _mm256_add_ps(c5, step);
  __m256 c7 = _mm256_add_ps(c6, step), c8 = _mm256_add_ps(c7, step), c9 = _mm256_add_ps(c8, step);
  __m256 c10 = _mm256_add_ps(c9, step), c11 = _mm256_add_ps(c10, step);
  for (int64_t i = 0; i < iters; ++i) {
    c0 = _mm256_fmadd_ps(c0, va, vb);
    c1 = _mm256_fmadd_ps(c1, va, vb);
    c2 = _mm256_fmadd_ps(c2, va, vb);
    c3 = _mm256_fmadd_ps(c3, va, vb);
    c4 = _mm256_fmadd_ps(c4, va, vb);
    c5 = _mm256_fmadd_ps(c5, va, vb);
    c6 = _mm256_fmadd_ps(c6, va, vb);
    c7 = _mm256_fmadd_ps(c7, va, vb);
    c8 = _mm256_fmadd_ps(c8, va, vb);
    c9 = _mm256_fmadd_ps(c9, va, vb);
    c10 = _mm256_fmadd_ps(c10, va, vb);
    c11 = _mm256_fmadd_ps(c11, va, vb);
    // no instruction: the compiler must assume every accumulator changed, so it can neither merge
    // chains nor shorten the loop
    asm volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
    asm volatile("" : "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
  }
  alignas(32) float lanes[12][8];
  _mm256_store_ps(lanes[0], c0);
  _mm256_store_ps(lanes[1], c1);
  _mm256_store_ps(lanes[2], c2);
  _mm256_store_ps(lanes[3], c3);
  _mm256_store_ps(lanes[4], c4);
  _mm256_store_ps(lanes[5], c5);
  _mm256_store_ps(lanes[6], c6);
  _mm256_store_ps(lanes[7], c7);
  _mm256_store_ps(lanes[8], c8);
  _mm256_store_ps(lanes[9], c9);
  _mm256_store_ps(lanes[10], c10);
  _mm256_store_ps(lanes[11], c11);
  double sum = 0;
  for (auto& row : lanes)
    for (float v : row) sum += v;
  return sum;
}

}  // namespace locus::kernels
