// Activations that kernels apply in their epilogue (fused) or as a standalone pass.
#pragma once

#include <algorithm>
#include <cstdint>

namespace locus::kernels {

enum class ActKind : uint8_t { None, Relu, Clip };

// NaN and infinities follow the ONNX definitions Relu(x) = max(0, x), Clip(x) = min(max(x, lo), hi)
// with NaN propagating (as ONNX Runtime and the reference backend): relu(NaN) = NaN, relu(-inf) = 0,
// relu(+inf) = +inf; clip(NaN) = NaN, clip(-inf) = lo, clip(+inf) = hi. Every comparison with NaN is
// false, so NaN falls through to `x`. (SIMD epilogues get the same by passing x as the second
// operand of max/min: vmaxps/vminps return their second operand when either is NaN; these forms
// compile to exactly that, maxps(lo, x) then minps(hi, y).)
inline float relu_keep_nan(float x) { return x < 0.f ? 0.f : x; }
inline float clip_keep_nan(float x, float lo, float hi) {
  const float y = x < lo ? lo : x;  // max(x, lo)
  return hi < y ? hi : y;           // min(y, hi)
}

struct Activation {
  ActKind kind = ActKind::None;
  float lo = 0.f, hi = 0.f;  // Clip bounds: y = min(max(x, lo), hi)

  float apply(float x) const {
    switch (kind) {
      case ActKind::Relu: return relu_keep_nan(x);
      case ActKind::Clip: return clip_keep_nan(x, lo, hi);
      default: return x;
    }
  }
};

// y[i] = act(x[i]); in-place allowed.
void activation_f32(const Activation& act, const float* x, float* y, int64_t n);

}  // namespace locus::kernels
