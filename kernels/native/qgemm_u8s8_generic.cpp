// qu8s8_gemm_4x16_generic: the portable int8 GEMM micro-kernel (qgemm_microkernel.h). A 4 x 16 block
// of s32 accumulators, exact u8 x s8 products, then the scalar requantization of requantize.h.
#include <algorithm>

#include "kernels/native/qgemm.h"
#include "kernels/native/qgemm_microkernel.h"

namespace locus::kernels {
namespace {

constexpr int kMR = 4;
constexpr int kNR = static_cast<int>(kQGemmNR);
constexpr int kKU = static_cast<int>(kQGemmKU);

}  // namespace

void qu8s8_gemm_4x16_generic(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda, const int8_t* w,
                             int64_t w_stride, uint8_t* y, int64_t ldy, const QEpilogue& ep) {
  for (int64_t p = 0; p < np; ++p) {
    const int8_t* wp = w + p * w_stride;
    const int64_t col = p * kNR;
    for (int64_t i0 = 0; i0 < mr; i0 += kMR) {
      const int rows = static_cast<int>(std::min<int64_t>(kMR, mr - i0));
      int32_t acc[kMR][kNR] = {};
      for (int64_t k = 0; k < K; ++k) {
        const int8_t* wk = wp + (k / kKU) * kKU * kNR + k % kKU;
        int32_t wv[kNR];
        for (int j = 0; j < kNR; ++j) wv[j] = wk[j * kKU];
        for (int i = 0; i < rows; ++i) {
          const int32_t x = a[(i0 + i) * lda + k];
          for (int j = 0; j < kNR; ++j) acc[i][j] += x * wv[j];
        }
      }
      for (int i = 0; i < rows; ++i) {
        uint8_t* yr = y + (i0 + i) * ldy + col;
        const int32_t rs = ep.row_sums ? ep.row_sums[i0 + i] : 0;
        for (int j = 0; j < kNR; ++j) {
          int32_t v = acc[i][j] + ep.bias[col + j];
          if (ep.row_sums) v -= rs * ep.w_zero[col + j];
          const int32_t q = requantize_value(v, ep.scale[col + j], ep.lo, ep.hi, ep.y_zero);
          yr[j] = ep.s8_out ? static_cast<uint8_t>(static_cast<int8_t>(q)) : static_cast<uint8_t>(q);
        }
      }
    }
  }
}

}  // namespace locus::kernels
