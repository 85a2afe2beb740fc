// Requantization of the int8 kernels' s32 accumulators to u8 / s8 outputs, and the epilogue the int8
// micro-kernels (qgemm_microkernel.h, qdwconv.h) apply to their tiles.
//
// Rounding follows ONNX Runtime (MLAS on x86: MlasRequantizeOutput and the ConvSym post-processing)
// so that outputs compare bit-exactly:
//   multiplier[c] = (x_scale * w_scale[c]) / y_scale          computed in float, in that order
//   v   = float(acc + bias[c]) * multiplier[c]                 s32 -> float (round to nearest), float multiply
//   v   = min(max(v, qmin - y_zero), qmax - y_zero)            clamp in float (integer bounds)
//   y   = int(round_half_to_even(v)) + y_zero                  cvtps2dq under the default MXCSR mode
// i.e. a float multiplier, not gemmlowp's fixed-point one (ORT used that in its early QLinearMatMul and
// still does on ARM64 when asked). Clamping before rounding equals clamping after it because the bounds
// are integers. ORT clamps to the whole output type ([0, 255] for u8); qmin/qmax narrower than that are
// how a fused Relu / Relu6 / Clip survives quantization (docs/int8.md "Rounding").
#pragma once

#include <cmath>
#include <cstdint>

namespace locus::kernels {

// The multiplier of output channel c, as ORT computes it.
inline float requant_multiplier(float x_scale, float w_scale, float y_scale) {
  return x_scale * w_scale / y_scale;
}

// One value: the reference formula above (the scalar kernels use it; the SIMD kernels do the same
// operations lane-wise). lo = qmin - y_zero, hi = qmax - y_zero.
inline int32_t requantize_value(int32_t acc, float multiplier, float lo, float hi, int32_t y_zero) {
  float v = static_cast<float>(acc) * multiplier;
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return static_cast<int32_t>(std::nearbyint(v)) + y_zero;
}

// What an int8 micro-kernel does with its s32 tile before storing it. Pointers are relative to the
// tile's first column (channel), like Epilogue::bias.
//   acc[i][j] += bias[j] - (row_sums ? row_sums[i] * w_zero[j] : 0)
//   out[i][j]  = requantize_value(acc[i][j], scale[j], lo, hi, y_zero)   (u8, or s8 if s8_out)
struct QEpilogue {
  const int32_t* bias = nullptr;      // the folded per-channel term (never null in the kernels)
  const float* scale = nullptr;       // per-channel multiplier (a per-tensor one is replicated)
  const int32_t* row_sums = nullptr;  // sum_k A[i][k] of the tile's rows, only when w_zero != 0
  const int32_t* w_zero = nullptr;    // per-channel weight zero point (with row_sums)
  float lo = 0.f, hi = 255.f;         // qmin - y_zero, qmax - y_zero
  int32_t y_zero = 0;
  bool s8_out = false;
  // [lo, hi] is the whole output type and every scale[j] < 1: the SIMD kernels may narrow with
  // saturation instead of clamping in float (requantize_avx512.h says why that is exact)
  bool sat_narrow = false;
  // GEMM micro-kernels whose QGemmConfig::masked_tail is set: the columns of the call's last panel
  // that are stored (bit j = column j); the others are left untouched (a ragged N without a copy)
  uint16_t last_mask = 0xFFFF;
};

// Whether an epilogue may saturate while narrowing (QEpilogue::sat_narrow): clamp = the whole type,
// every multiplier below 1 (n of them).
inline bool saturating_narrow_ok(const float* scale, int64_t n, int32_t qmin, int32_t qmax, bool s8_out) {
  if (qmin != (s8_out ? -128 : 0) || qmax != (s8_out ? 127 : 255)) return false;
  for (int64_t j = 0; j < n; ++j)
    if (!(scale[j] < 1.f)) return false;
  return true;
}

}  // namespace locus::kernels
