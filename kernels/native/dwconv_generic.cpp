// f32_dwconv_generic: portable depthwise-convolution micro-kernel for a run of output pixels. The
// 8-channel block loops are auto-vectorised (SSE2 at baseline); the channel tail is scalar. Also the
// ISA-independent parts of the micro-kernels: names, the register-blocked switch and the 3x3 tap
// geometry test (dwconv_microkernel.h).
#include <algorithm>
#include <atomic>

#include "kernels/native/dwconv_microkernel.h"
#include "kernels/native/epilogue_vec.h"

namespace locus::kernels {

void f32_dwconv_generic(int64_t C, int64_t npix, const float* const* taps, int64_t ntaps,
                        int64_t step, const float* __restrict w, const float* __restrict bias,
                        float* __restrict out, const Epilogue* ep) {
  constexpr int kB = 8;
  const bool clamp = ep && ep->clamp;
  const float lo = clamp ? ep->lo : 0.f, hi = clamp ? ep->hi : 0.f;
  for (int64_t i = 0; i < npix; ++i, out += C) {
    const int64_t off = i * step;
    int64_t c = 0;
    for (; c + kB <= C; c += kB) {
      float acc[kB];
      for (int j = 0; j < kB; ++j) acc[j] = bias ? bias[c + j] : out[c + j];
      const float* wp = w + c;
      for (int64_t t = 0; t < ntaps; ++t, wp += C) {
        const float* __restrict x = taps[t] + off + c;
        for (int j = 0; j < kB; ++j) acc[j] += x[j] * wp[j];
      }
      if (clamp)
        for (int j = 0; j < kB; ++j) acc[j] = clip_keep_nan(acc[j], lo, hi);
      if (ep && ep->post != ActKind::None) epi_post_tile(acc, kB, *ep);
      for (int j = 0; j < kB; ++j) out[c + j] = acc[j];
    }
    for (; c < C; ++c) {
      float acc = bias ? bias[c] : out[c];
      for (int64_t t = 0; t < ntaps; ++t) acc += taps[t][off + c] * w[t * C + c];
      if (clamp) acc = clip_keep_nan(acc, lo, hi);
      if (ep && ep->post != ActKind::None) acc = epi_post(acc, ep->post, ep->alpha, ep->beta);
      out[c] = acc;
    }
  }
}

namespace {
std::atomic<bool> g_dwconv3x3_forms{true};
}  // namespace

void set_dwconv3x3_forms(bool on) { g_dwconv3x3_forms.store(on, std::memory_order_relaxed); }
bool dwconv3x3_forms() { return g_dwconv3x3_forms.load(std::memory_order_relaxed); }

const char* dwconv_microkernel_name(Isa isa) {
  return isa == Isa::Avx512 ? "f32-dwconv-16c8p-avx512f" : has_avx2(isa) ? "f32-dwconv-16c4p-avx2" : "f32-dwconv-generic";
}

int dwconv3x3_sliding_stride(const float* const* taps, int64_t ntaps, int64_t step, int64_t npix) {
  if (ntaps != 9 || npix < 2) return 0;
  const int64_t d = taps[1] - taps[0];
  if (d <= 0) return 0;
  for (int kh = 0; kh < 3; ++kh)
    for (int kw = 1; kw < 3; ++kw)
      if (taps[kh * 3 + kw] != taps[kh * 3] + kw * d) return 0;
  return step == d ? 1 : step == 2 * d ? 2 : 0;
}

}  // namespace locus::kernels
