// Activations that kernels apply in their epilogue (fused) or as a standalone pass.
#pragma once

#include <algorithm>
#include <cstdint>

namespace locus::kernels {

enum class ActKind : uint8_t { None, Relu, Clip };

struct Activation {
  ActKind kind = ActKind::None;
  float lo = 0.f, hi = 0.f;  // Clip bounds: y = min(max(x, lo), hi)

  float apply(float x) const {
    switch (kind) {
      case ActKind::Relu: return x > 0.f ? x : 0.f;
      case ActKind::Clip: return std::min(std::max(x, lo), hi);
      default: return x;
    }
  }
};

// y[i] = act(x[i]); in-place allowed.
void activation_f32(const Activation& act, const float* x, float* y, int64_t n);

}  // namespace locus::kernels
