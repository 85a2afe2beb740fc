// The portable GEMM micro-kernels: plain loops over a 4x8 accumulator block (eight 128-bit
// registers under SSE2), run twice per 16-wide panel (f32_gemm_4x16_generic) or once per 8-wide
// panel (f32_gemm_4x8_generic).
#include <algorithm>

#include "kernels/native/epilogue_vec.h"
#include "kernels/native/gemm_microkernel.h"

namespace locus::kernels {
namespace {

constexpr int kMR = 4;
constexpr int kNB = 8;  // columns per half-panel

// One 4x8 block: columns [col, col + 8) of a panel whose rows are w_stride floats apart.
// GCC's loop vectoriser would vectorise the k loop (with shuffles); with it off, SLP vectorises the
// j loops into whole-register multiply-adds (about 2.5x faster).
#if defined(__GNUC__) && !defined(__clang__)
#define LOCUS_NO_LOOP_VECTORIZE __attribute__((optimize("no-tree-loop-vectorize")))
#else
#define LOCUS_NO_LOOP_VECTORIZE
#endif

LOCUS_NO_LOOP_VECTORIZE inline void half_4x8(int64_t mr, int64_t kc,
                                              const float* const* arow, const float* w,
                                              int64_t w_stride, float* const* crow, bool load_c,
                                              const Epilogue* ep, int col) {
  const float* __restrict a0 = arow[0];
  const float* __restrict a1 = arow[1];
  const float* __restrict a2 = arow[2];
  const float* __restrict a3 = arow[3];
  float r0[kNB], r1[kNB], r2[kNB], r3[kNB];
  for (int j = 0; j < kNB; ++j) {
    r0[j] = load_c ? crow[0][col + j] : 0.f;
    r1[j] = load_c ? crow[1][col + j] : 0.f;
    r2[j] = load_c ? crow[2][col + j] : 0.f;
    r3[j] = load_c ? crow[3][col + j] : 0.f;
  }

  const float* __restrict wp = w + col;
  for (int64_t k = 0; k < kc; ++k, wp += w_stride) {
    const float x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];
#pragma GCC unroll 8
    for (int j = 0; j < kNB; ++j) {
      const float b = wp[j];
      r0[j] += x0 * b;
      r1[j] += x1 * b;
      r2[j] += x2 * b;
      r3[j] += x3 * b;
    }
  }

  float* rows[kMR] = {r0, r1, r2, r3};
  for (int64_t i = 0; i < mr; ++i) {
    float* r = rows[i];
    if (ep && ep->bias)
      for (int j = 0; j < kNB; ++j) r[j] += ep->bias[col + j];
    if (ep && ep->residual)
      for (int j = 0; j < kNB; ++j) r[j] += ep->residual[i * ep->ldr + col + j];
    if (ep && ep->clamp)
      for (int j = 0; j < kNB; ++j) r[j] = clip_keep_nan(r[j], ep->lo, ep->hi);
    if (ep && ep->post != ActKind::None) epi_post_tile(r, kNB, *ep);
    for (int j = 0; j < kNB; ++j) crow[i][col + j] = r[j];
  }
}

}  // namespace

namespace {

// np panels of `halves` 4x8 blocks each (panel width 8 * halves).
void panels_4xw(int halves, int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  const int64_t pw = kNB * halves;
  // Rows past mr alias the last real row (read only; only mr rows are stored).
  const float* arow[kMR];
  for (int i = 0; i < kMR; ++i) arow[i] = a + std::min<int64_t>(i, mr - 1) * lda;
  for (int64_t p = 0; p < np; ++p) {
    float* crow[kMR];
    for (int i = 0; i < kMR; ++i) crow[i] = c + std::min<int64_t>(i, mr - 1) * ldc + p * pw;
    Epilogue pep;
    if (ep) {
      pep = *ep;
      if (pep.bias) pep.bias += p * pw;
      if (pep.residual) pep.residual += p * pw;
    }
    for (int h = 0; h < halves; ++h)
      half_4x8(mr, kc, arow, w + p * w_stride, pw, crow, load_c, ep ? &pep : nullptr, h * kNB);
  }
}

}  // namespace

void f32_gemm_4x16_generic(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                           int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  panels_4xw(2, mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep);
}

void f32_gemm_4x8_generic(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                          int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  panels_4xw(1, mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep);
}

}  // namespace locus::kernels
