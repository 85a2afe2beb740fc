// f32_gemm_4x16_generic: the portable GEMM micro-kernel. Plain loops over a 4x8 accumulator block
// (eight 128-bit registers under SSE2), run twice per 16-wide panel.
#include <algorithm>

#include "kernels/native/gemm_microkernel.h"

namespace locus::kernels {
namespace {

constexpr int kMR = 4;
constexpr int kNB = 8;  // columns per half-panel

// One 4x8 half: columns [col, col + 8) of the 16-wide panel.
inline void half_4x8(int64_t mr, int64_t kc, const float* const* __restrict arow,
                     const float* __restrict w, float* const* __restrict crow, bool load_c,
                     const GemmEpilogue* ep, int col) {
  float acc[kMR][kNB];
  for (int i = 0; i < kMR; ++i)
    for (int j = 0; j < kNB; ++j) acc[i][j] = load_c ? crow[i][col + j] : 0.f;

  const float* wp = w + col;
  for (int64_t k = 0; k < kc; ++k, wp += kGemmNR) {
    for (int i = 0; i < kMR; ++i) {
      const float x = arow[i][k];
      for (int j = 0; j < kNB; ++j) acc[i][j] += x * wp[j];
    }
  }

  if (ep) {
    for (int i = 0; i < kMR; ++i) {
      if (ep->bias)
        for (int j = 0; j < kNB; ++j) acc[i][j] += ep->bias[col + j];
      if (ep->clamp)
        for (int j = 0; j < kNB; ++j) acc[i][j] = std::min(std::max(acc[i][j], ep->lo), ep->hi);
    }
  }
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < kNB; ++j) crow[i][col + j] = acc[i][j];
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
