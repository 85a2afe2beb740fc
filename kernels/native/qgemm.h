// Quantized GEMM (u8 activations x s8 weights -> s32, requantized to u8/s8): the int8 pointwise
// convolutions and QLinearMatMul / QLinearConv-as-GEMM.
//   Y[m][n] = requant_n( sum_k (A[m][k] - a_zero) * (W[k][n] - w_zero[n]) + bias[n] )
// (requantize.h: multiplier[n] = a_scale * w_scale[n] / y_scale, ONNX Runtime's rounding).
// W is packed once (pack_qgemm_b) into 16-column panels with K in groups of 4 (the vpdpbusd layout),
// and the zero-point corrections are folded at pack time:
//   sum_k (a - za)(w - zw) = sum_k a*w - za * sum_k w - zw * sum_k a + K * za * zw
// bias[n] - za * colsum_w[n] + K * za * zw[n] becomes one s32 per channel; the - zw[n] * rowsum_a[m]
// term needs the row sums of A and is computed at run time only when some zw[n] != 0.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/native/cpu_features.h"

namespace locus::kernels {

// The quantization of one int8 GEMM / convolution (ONNX QLinearConv / QLinearMatMul parameters).
struct QuantParams {
  float a_scale = 1.f;
  int32_t a_zero = 0;                // u8 activation zero point, 0..255
  std::vector<float> w_scale;        // 1 (per tensor) or N (per output channel), each > 0
  std::vector<int32_t> w_zero;       // empty (all 0), 1 or N s8 weight zero points
  float y_scale = 1.f;
  int32_t y_zero = 0;                // output zero point (u8: 0..255; s8: -128..127)
  bool s8_out = false;               // output s8 instead of u8
  int32_t qmin = 0, qmax = 255;      // output clamp (the activation's range), within the output type
};

// Checks a QuantParams for N output channels (scales finite and > 0, vector lengths 1 or N, zero
// points and qmin <= qmax inside their types); throws locus::Error with one line naming the problem.
void check_quant_params(const QuantParams& q, int64_t N, const char* what);

inline constexpr int64_t kQGemmNR = 16;  // panel width (columns)
inline constexpr int64_t kQGemmKU = 4;   // K group (bytes of one vpdpbusd lane)

struct PackedQB {
  int64_t K = 0, N = 0;
  int64_t Kp = 0;                    // K rounded up to kQGemmKU
  std::vector<int8_t> data;          // panel p at p * Kp * 16; in it group g at g * 64, column j's 4 k at 4j
  std::vector<int32_t> bias;         // folded per-channel term, padded to panels * 16
  std::vector<float> scale;          // per-channel multiplier, padded
  std::vector<int32_t> w_zero;       // per-channel weight zero point, padded; empty when all are 0
  float lo = 0.f, hi = 255.f;        // qmin - y_zero, qmax - y_zero
  int32_t a_zero = 0, y_zero = 0;
  bool s8_out = false;
  bool sat_narrow = false;           // QEpilogue::sat_narrow (requantize.h)
};

// Pack W (K x N: element (k, n) at w[k * ldw + n], or w[n * ldw + k] if trans_w) with its
// quantization and s32 bias (nullable, length N).
PackedQB pack_qgemm_b(int64_t K, int64_t N, const int8_t* w, int64_t ldw, bool trans_w, const int32_t* bias,
                      const QuantParams& q);

// Y (M x N, row stride ldy bytes; u8, or s8 if b.s8_out) = requant(A (u8, row stride lda) x W).
// Parallel over M and N with `threads` OpenMP threads (serial inside a parallel region).
void qgemm_u8s8(int64_t M, const uint8_t* a, int64_t lda, const PackedQB& b, void* y, int64_t ldy, int threads = 1);

// Rows [i0, i1) only, serially on the calling thread (a building block for fused kernels).
void qgemm_u8s8_rows(int64_t i0, int64_t i1, const uint8_t* a, int64_t lda, const PackedQB& b, void* y,
                     int64_t ldy);

// The same with A read in segments, an implicit im2col (qconv.h reads a convolution's kernel rows
// straight from the image): row i's b.K bytes are b.K / kseg segments of kseg bytes (a multiple of 4),
// segment j at a + i * lda + j * ldseg. Only where the ISA's kernel has the form (qgemm_has_seg; the
// VNNI one), else a one-line error.
bool qgemm_has_seg(Isa isa);
void qgemm_u8s8_rows_seg(int64_t i0, int64_t i1, const uint8_t* a, int64_t lda, int64_t kseg, int64_t ldseg,
                         const PackedQB& b, void* y, int64_t ldy);

}  // namespace locus::kernels
