// f32_dwconv_generic: portable depthwise-convolution micro-kernel for one output pixel. The
// 8-channel block loops are auto-vectorised (SSE2 at baseline); the tail is scalar.
#include <algorithm>

#include "kernels/native/dwconv_microkernel.h"

namespace locus::kernels {

void f32_dwconv_generic(int64_t C, const float* const* taps, int64_t ntaps,
                        const float* __restrict w, const float* __restrict bias,
                        float* __restrict out, const GemmEpilogue* ep) {
  constexpr int kB = 8;
  int64_t c = 0;
  for (; c + kB <= C; c += kB) {
    float acc[kB];
    for (int j = 0; j < kB; ++j) acc[j] = bias ? bias[c + j] : out[c + j];
    const float* wp = w + c;
    for (int64_t t = 0; t < ntaps; ++t, wp += C) {
      const float* __restrict x = taps[t] + c;
      for (int j = 0; j < kB; ++j) acc[j] += x[j] * wp[j];
    }
    if (ep && ep->clamp)
      for (int j = 0; j < kB; ++j) acc[j] = std::min(std::max(acc[j], ep->lo), ep->hi);
    for (int j = 0; j < kB; ++j) out[c + j] = acc[j];
  }
  for (; c < C; ++c) {
    float acc = bias ? bias[c] : out[c];
    for (int64_t t = 0; t < ntaps; ++t) acc += taps[t][c] * w[t * C + c];
    if (ep && ep->clamp) acc = std::min(std::max(acc, ep->lo), ep->hi);
    out[c] = acc;
  }
}

}  // namespace locus::kernels
