// f32_gemm_6x16_avx2: the AVX2+FMA GEMM micro-kernel (6 rows x 16 columns, 12 ymm accumulators).
// Compiled with -mavx2 -mfma; selected at run time by gemm.cpp.
#include <immintrin.h>

#include "kernels/native/gemm_microkernel.h"

namespace locus::kernels {

void f32_gemm_6x16_avx2(int64_t mr, int64_t kc, const float* __restrict a, int64_t lda,
                        const float* __restrict w, float* __restrict c, int64_t ldc, bool load_c,
                        const GemmEpilogue* ep) {
  // Rows past mr alias the previous row: they compute the same values and store them to the same
  // place, so no row beyond mr is touched and the loop body stays branch-free.
  const float* a0 = a;
  const float* a1 = mr > 1 ? a0 + lda : a0;
  const float* a2 = mr > 2 ? a1 + lda : a1;
  const float* a3 = mr > 3 ? a2 + lda : a2;
  const float* a4 = mr > 4 ? a3 + lda : a3;
  const float* a5 = mr > 5 ? a4 + lda : a4;
  float* c0 = c;
  float* c1 = mr > 1 ? c0 + ldc : c0;
  float* c2 = mr > 2 ? c1 + ldc : c1;
  float* c3 = mr > 3 ? c2 + ldc : c2;
  float* c4 = mr > 4 ? c3 + ldc : c3;
  float* c5 = mr > 5 ? c4 + ldc : c4;

  __m256 v00, v01, v10, v11, v20, v21, v30, v31, v40, v41, v50, v51;
  if (load_c) {
    v00 = _mm256_loadu_ps(c0); v01 = _mm256_loadu_ps(c0 + 8);
    v10 = _mm256_loadu_ps(c1); v11 = _mm256_loadu_ps(c1 + 8);
    v20 = _mm256_loadu_ps(c2); v21 = _mm256_loadu_ps(c2 + 8);
    v30 = _mm256_loadu_ps(c3); v31 = _mm256_loadu_ps(c3 + 8);
    v40 = _mm256_loadu_ps(c4); v41 = _mm256_loadu_ps(c4 + 8);
    v50 = _mm256_loadu_ps(c5); v51 = _mm256_loadu_ps(c5 + 8);
  } else {
    v00 = v01 = v10 = v11 = v20 = v21 = _mm256_setzero_ps();
    v30 = v31 = v40 = v41 = v50 = v51 = _mm256_setzero_ps();
  }

  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(w);
    const __m256 b1 = _mm256_loadu_ps(w + 8);
    w += 16;
    __m256 x = _mm256_broadcast_ss(a0 + k);
    v00 = _mm256_fmadd_ps(x, b0, v00); v01 = _mm256_fmadd_ps(x, b1, v01);
    x = _mm256_broadcast_ss(a1 + k);
    v10 = _mm256_fmadd_ps(x, b0, v10); v11 = _mm256_fmadd_ps(x, b1, v11);
    x = _mm256_broadcast_ss(a2 + k);
    v20 = _mm256_fmadd_ps(x, b0, v20); v21 = _mm256_fmadd_ps(x, b1, v21);
    x = _mm256_broadcast_ss(a3 + k);
    v30 = _mm256_fmadd_ps(x, b0, v30); v31 = _mm256_fmadd_ps(x, b1, v31);
    x = _mm256_broadcast_ss(a4 + k);
    v40 = _mm256_fmadd_ps(x, b0, v40); v41 = _mm256_fmadd_ps(x, b1, v41);
    x = _mm256_broadcast_ss(a5 + k);
    v50 = _mm256_fmadd_ps(x, b0, v50); v51 = _mm256_fmadd_ps(x, b1, v51);
  }

  if (ep) {
    if (ep->bias) {
      const __m256 b0 = _mm256_loadu_ps(ep->bias), b1 = _mm256_loadu_ps(ep->bias + 8);
      v00 = _mm256_add_ps(v00, b0); v01 = _mm256_add_ps(v01, b1);
      v10 = _mm256_add_ps(v10, b0); v11 = _mm256_add_ps(v11, b1);
      v20 = _mm256_add_ps(v20, b0); v21 = _mm256_add_ps(v21, b1);
      v30 = _mm256_add_ps(v30, b0); v31 = _mm256_add_ps(v31, b1);
      v40 = _mm256_add_ps(v40, b0); v41 = _mm256_add_ps(v41, b1);
      v50 = _mm256_add_ps(v50, b0); v51 = _mm256_add_ps(v51, b1);
    }
    if (ep->clamp) {
      const __m256 lo = _mm256_set1_ps(ep->lo), hi = _mm256_set1_ps(ep->hi);
      auto cl = [&](__m256 v) { return _mm256_min_ps(_mm256_max_ps(v, lo), hi); };
      v00 = cl(v00); v01 = cl(v01); v10 = cl(v10); v11 = cl(v11);
      v20 = cl(v20); v21 = cl(v21); v30 = cl(v30); v31 = cl(v31);
      v40 = cl(v40); v41 = cl(v41); v50 = cl(v50); v51 = cl(v51);
    }
  }

  _mm256_storeu_ps(c5, v50); _mm256_storeu_ps(c5 + 8, v51);
  _mm256_storeu_ps(c4, v40); _mm256_storeu_ps(c4 + 8, v41);
  _mm256_storeu_ps(c3, v30); _mm256_storeu_ps(c3 + 8, v31);
  _mm256_storeu_ps(c2, v20); _mm256_storeu_ps(c2 + 8, v21);
  _mm256_storeu_ps(c1, v10); _mm256_storeu_ps(c1 + 8, v11);
  _mm256_storeu_ps(c0, v00); _mm256_storeu_ps(c0 + 8, v01);
}

}  // namespace locus::kernels
