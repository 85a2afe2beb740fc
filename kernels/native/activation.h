// Activations that kernels apply in their epilogue (fused) or as a standalone pass.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace locus::kernels {

// Relu and Clip run in every micro-kernel's epilogue as a clamp (epilogue.h); HardSigmoid, HardSwish
// and Sigmoid (mobile CNNs) are not clamps: the micro-kernels' epilogues apply them on the registers
// after the clamp (Epilogue::post, epilogue_vec.h; Sigmoid with exp_approx), other kernels apply
// Activation::apply (or activation_f32) to their output themselves.
enum class ActKind : uint8_t { None, Relu, Clip, HardSigmoid, HardSwish, Sigmoid };

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
// HardSigmoid(x) = max(0, min(1, alpha * x + beta)); HardSwish(x) = x * HardSigmoid(x) with alpha
// 1/6, beta 0.5 (ONNX); Sigmoid(x) = 1 / (1 + exp(-x)). NaN stays NaN, as with Relu and Clip.
inline float hard_sigmoid_keep_nan(float x, float alpha, float beta) { return clip_keep_nan(alpha * x + beta, 0.f, 1.f); }
inline float hard_swish_keep_nan(float x) { return x * clip_keep_nan(x * (1.f / 6.f) + 0.5f, 0.f, 1.f); }
inline float sigmoid_f(float x) { return 1.f / (1.f + std::exp(-x)); }

struct Activation {
  ActKind kind = ActKind::None;
  float lo = 0.f, hi = 0.f;  // Clip bounds: y = min(max(x, lo), hi); HardSigmoid: alpha, beta

  // Whether the activation is a clamp the micro-kernels' epilogue applies (None, Relu, Clip).
  bool is_clamp() const { return kind == ActKind::None || kind == ActKind::Relu || kind == ActKind::Clip; }

  float apply(float x) const {
    switch (kind) {
      case ActKind::Relu: return relu_keep_nan(x);
      case ActKind::Clip: return clip_keep_nan(x, lo, hi);
      case ActKind::HardSigmoid: return hard_sigmoid_keep_nan(x, lo, hi);
      case ActKind::HardSwish: return hard_swish_keep_nan(x);
      case ActKind::Sigmoid: return sigmoid_f(x);
      default: return x;
    }
  }
};

// y[i] = act(x[i]); in-place allowed.
void activation_f32(const Activation& act, const float* x, float* y, int64_t n);

}  // namespace locus::kernels
