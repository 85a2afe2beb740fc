// Weight packing for the direct convolution (conv_direct.h) and its portable micro-kernel.
#include "kernels/native/conv_direct.h"
#include "kernels/native/epilogue_vec.h"

#include <algorithm>

namespace locus::kernels {

AlignedVector<float> pack_conv_direct(int64_t OC, int64_t C, int64_t KH, int64_t KW, const float* w_oihw) {
  const int64_t kc = KW * C, nb = (OC + kConvDirectBlock - 1) / kConvDirectBlock;
  AlignedVector<float> p(nb * kConvDirectBlock * KH * kc, 0.f);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t o0 = b * kConvDirectBlock, wb = std::min(kConvDirectBlock, conv_direct_padded_oc(OC - o0));
    float* blk = p.data() + o0 * KH * kc;
    for (int64_t o = o0; o < std::min(OC, o0 + kConvDirectBlock); ++o)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t kh = 0; kh < KH; ++kh)
          for (int64_t kw = 0; kw < KW; ++kw)
            blk[(kh * kc + kw * C + c) * wb + (o - o0)] = w_oihw[((o * C + c) * KH + kh) * KW + kw];
  }
  return p;
}

void f32_conv_direct_generic(int64_t npix, int64_t OC, int64_t KH, int64_t kc, const float* const* rows,
                             int64_t step, const float* w, const float* bias, float* out, const Epilogue* ep) {
  const bool clamp = ep && ep->clamp;
  for (int64_t o0 = 0; o0 < OC; o0 += kConvDirectBlock) {
    const int64_t wb = std::min(kConvDirectBlock, conv_direct_padded_oc(OC - o0));
    const int64_t n = std::min(kConvDirectBlock, OC - o0);
    const float* blk = w + o0 * KH * kc;
    for (int64_t p = 0; p < npix; ++p) {
      float acc[kConvDirectBlock];
      for (int64_t j = 0; j < wb; ++j) acc[j] = bias[o0 + j];
      for (int64_t kh = 0; kh < KH; ++kh) {
        const float* a = rows[kh] + p * step;
        const float* wk = blk + kh * kc * wb;
        for (int64_t k = 0; k < kc; ++k)
          for (int64_t j = 0; j < wb; ++j) acc[j] += a[k] * wk[k * wb + j];
      }
      float* o = out + p * OC + o0;
      if (clamp)
        for (int64_t j = 0; j < n; ++j) acc[j] = clip_keep_nan(acc[j], ep->lo, ep->hi);
      if (ep && ep->post != ActKind::None) epi_post_tile(acc, int(n), *ep);
      for (int64_t j = 0; j < n; ++j) o[j] = acc[j];
    }
  }
}

}  // namespace locus::kernels
