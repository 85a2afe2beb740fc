// The int8 element-wise and data-movement kernels of the native backend's quantized ops: strided
// byte copies (layout changes at the boundary, Reshape / Concat of u8 / s8 values), QuantizeLinear,
// DequantizeLinear, QLinearAdd and QLinearGlobalAveragePool. Each computes exactly what the
// reference evaluator does (graph/eval/eval_quant.cpp; docs/int8.md gives ONNX Runtime's rounding),
// so the native and reference backends agree bit for bit.
#pragma once

#include <cstdint>
#include <vector>

namespace locus::kernels {

// dst[idx . dst_strides] = src[idx . src_strides] for every index of `shape`, 1-byte elements
// (strides in elements), like copy_strided_f32.
void copy_strided_u8(const std::vector<int64_t>& shape, const uint8_t* src, const std::vector<int64_t>& src_strides,
                     uint8_t* dst, const std::vector<int64_t>& dst_strides);

// y[i] = x[i] ^ 0x80: s8 <-> u8 with the value shifted by 128 (the u8 x s8 kernels run s8 activations
// as u8 with the zero point + 128).
void flip_sign_u8(int64_t n, const uint8_t* x, uint8_t* y);

// QuantizeLinear, one scale and zero point for all n elements (MlasQuantizeLinear):
//   v = x / scale (a float division); v = clamp(v, qmin - zp, qmax - zp) (NaN -> qmin - zp);
//   y = round_half_even(v) + zp, as u8 (s8_out false) or s8.
void quantize_f32(int64_t n, const float* x, float scale, int32_t zp, bool s8_out, void* y);

// QuantizeLinear of a 4-D NCHW float tensor (N images of C planes of HW pixels, contiguous) written
// NHWC (y[(n * HW + p) * C + c]) in one pass: the boundary layout change of a model input that feeds
// only a QuantizeLinear, without the float NHWC copy. Every element is quantize_f32's (same ISA
// dispatch, same bits) of x[(n * C + c) * HW + p]. Pixels in tiles whose floats, interleaved, fill at
// most 16 KB (an L1 buffer), the tiles split across the OpenMP threads when the tensor is large.
void quantize_f32_nchw_to_nhwc(int64_t N, int64_t C, int64_t HW, const float* x, float scale, int32_t zp,
                               bool s8_out, void* y);

// DequantizeLinear, one scale and zero point: y[i] = float(x[i] - zp) * scale (x u8, or s8 if s8_in).
void dequantize_f32(int64_t n, const void* x, bool s8_in, float scale, int32_t zp, float* y);

// com.microsoft.QLinearAdd with ONNX Runtime's AVX2 arithmetic (MlasQLinearAddKernelAvx2Helper):
//   ra = a_scale / c_scale, rb = b_scale / c_scale, fixed = float(c_zero) - fma(ra, a_zero, rb * b_zero)
//   c = round_half_even(fma(a, ra, fma(b, rb, fixed))) saturated to u8 (or s8)
struct QAddParams {
  float ra = 1.f, rb = 1.f, fixed = 0.f;
  bool s8 = false;  // operands and output s8 (else u8)
};
QAddParams qadd_params(float a_scale, int32_t a_zero, float b_scale, int32_t b_zero, float c_scale, int32_t c_zero,
                       bool s8);
// n elements, every operand contiguous (AVX-512 or AVX2 + FMA when the active ISA has it, else scalar
// std::fma: the same bits).
void qadd_same(const QAddParams& p, int64_t n, const uint8_t* a, const uint8_t* b, uint8_t* c);
// Broadcasting: strides (elements, 0 broadcasts) per dimension of `shape` for a, b and c.
void qadd_strided(const QAddParams& p, const std::vector<int64_t>& shape, const uint8_t* a,
                  const std::vector<int64_t>& a_strides, const uint8_t* b, const std::vector<int64_t>& b_strides,
                  uint8_t* c, const std::vector<int64_t>& c_strides);
// The scalar formula for one element (a, b as integers): what both paths compute.
int32_t qadd_value(const QAddParams& p, int32_t a, int32_t b);

// com.microsoft.QLinearGlobalAveragePool over `pixels` positions of C channels, channel-innermost
// (NHWC), for N images (MlasQLinearGlobalAveragePoolNhwc):
//   acc[c] = sum_p x[p][c] - x_zero * pixels (int32); scale = x_scale / (y_scale * float(pixels));
//   y[c] = round_half_even(clamp(float(acc) * scale, qmin - y_zero, qmax - y_zero)) + y_zero
// x and y u8, or s8 if s8. y: N x C bytes.
void qglobal_avgpool_nhwc(int64_t N, int64_t pixels, int64_t C, const uint8_t* x, bool s8, float x_scale,
                          int32_t x_zero, float y_scale, int32_t y_zero, uint8_t* y);

// The portable QuantizeLinear (quantize_f32 without the dispatch).
void quantize_f32_generic(int64_t n, const float* x, float scale, int32_t zp, bool s8_out, void* y);

// The AVX2 + FMA kernels (qelementwise_avx2.cpp; call only under has_avx2(active_isa())).
void quantize_f32_avx2(int64_t n, const float* x, float scale, int32_t zp, bool s8_out, void* y);
void qadd_same_avx2(const QAddParams& p, int64_t n, const uint8_t* a, const uint8_t* b, uint8_t* c);
// The AVX-512 kernels (qelementwise_avx512vnni.cpp; call only under Isa::Avx512 with cpu_has_avx512vnni()):
// the same operations, 16 lanes.
void quantize_f32_avx512(int64_t n, const float* x, float scale, int32_t zp, bool s8_out, void* y);
void qadd_same_avx512(const QAddParams& p, int64_t n, const uint8_t* a, const uint8_t* b, uint8_t* c);

}  // namespace locus::kernels
