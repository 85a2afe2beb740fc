// activation_f32: standalone Relu / Clip / HardSigmoid / HardSwish / Sigmoid pass (in place allowed), parallel for large tensors.
#include "kernels/native/activation.h"

#include <cstring>

#include "kernels/native/strided_loop.h"

namespace locus::kernels {

void activation_f32(const Activation& act, const float* x, float* y, int64_t n) {
  detail::parallel_ranges(n, n, [&](int64_t i0, int64_t i1) {
    switch (act.kind) {
      case ActKind::Relu:
        for (int64_t i = i0; i < i1; ++i) y[i] = relu_keep_nan(x[i]);
        break;
      case ActKind::Clip: {
        const float lo = act.lo, hi = act.hi;
        for (int64_t i = i0; i < i1; ++i) y[i] = clip_keep_nan(x[i], lo, hi);
        break;
      }
      case ActKind::HardSigmoid: {
        const float alpha = act.lo, beta = act.hi;
        for (int64_t i = i0; i < i1; ++i) y[i] = hard_sigmoid_keep_nan(x[i], alpha, beta);
        break;
      }
      case ActKind::HardSwish:
        for (int64_t i = i0; i < i1; ++i) y[i] = hard_swish_keep_nan(x[i]);
        break;
      case ActKind::Sigmoid:
        for (int64_t i = i0; i < i1; ++i) y[i] = sigmoid_f(x[i]);
        break;
      default:
        if (x != y) std::memmove(y + i0, x + i0, (i1 - i0) * sizeof(float));
        break;
    }
  });
}

}  // namespace locus::kernels
