// f32_gemm_4x16_generic: the portable GEMM micro-kernel. Plain loops over a 4x8 accumulator block
// (eight 128-bit registers under SSE2), run twice per 16-wide panel.
#include <algorithm>

#include "kernels/native/gemm_microkernel.h"

namespace locus::kernels {
namespace {

constexpr int kMR = 4;
constexpr int kNB = 8;  // columns per half-panel

// One 4x8 half: columns [col, col + 8) of the 16-wide panel.
// GCC's loop vectoriser would vectorise the k loop (with shuffles); with it off, SLP vectorises the
// j loops into whole-register multiply-adds (about 2.5x faster).
#if defined(__GNUC__) && !defined(__clang__)
#define LOCUS_NO_LOOP_VECTORIZE __attribute__((optimize("no-tree-loop-vectorize")))
#else
#define LOCUS_NO_LOOP_VECTORIZE
#endif

LOCUS_NO_LOOP_VECTORIZE inline void half_4x8(int64_t mr, int64_t kc,
                                              const float* const* arow, const float* w,
                                              float* const* crow, bool load_c,
                                              const GemmEpilogue* ep, int col) {
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
  for (int64_t k = 0; k < kc; ++k, wp += kGemmNR) {
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
    if (ep && ep->clamp)
      for (int j = 0; j < kNB; ++j) r[j] = std::min(std::max(r[j], ep->lo), ep->hi);
    for (int j = 0; j < kNB; ++j) crow[i][col + j] = r[j];
  }
}

}  // namespace

void f32_gemm_4x16_generic(int64_t mr, int64_t kc, const float* a, int64_t lda, const float* w,
                           float* c, int64_t ldc, bool load_c, const GemmEpilogue* ep) {
  // Rows past mr alias the last real row (read only; only mr rows are stored).
  const float* arow[kMR];
  float* crow[kMR];
  for (int i = 0; i < kMR; ++i) {
    const int64_t r = std::min<int64_t>(i, mr - 1);
    arow[i] = a + r * lda;
    crow[i] = c + r * ldc;
  }
  half_4x8(mr, kc, arow, w, crow, load_c, ep, 0);
  half_4x8(mr, kc, arow, w, crow, load_c, ep, kNB);
}

}  // namespace locus::kernels
