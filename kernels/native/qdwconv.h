// Int8 depthwise convolution on NHWC data (QLinearConv with G = C = OC): u8 input with a zero point,
// s8 per-channel weights, s32 bias, requantized u8 / s8 output (requantize.h, ONNX Runtime's rounding).
//   y[oh][ow][c] = requant_c( sum_taps (x[ih][iw][c] - x_zero) * (w[c][kh][kw] - w_zero[c]) + bias[c] )
// Padded taps read the input zero point, so they contribute 0. Any KH x KW, stride, dilation and
// padding. The x_zero and w_zero terms are folded at pack time: the taps multiply raw bytes and
//   bias'[c] = bias[c] - x_zero * sum_t w[c][t] + ntaps * x_zero * w_zero[c]
// with the remaining - w_zero[c] * sum_t x[t][c] added per pixel only when some w_zero[c] != 0.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/depthwise_row.h"
#include "kernels/native/qgemm.h"
#include "kernels/native/requantize.h"

namespace locus::kernels {

inline constexpr int64_t kQDwChannelBlock = 16;  // weights / bias / scale padded to a multiple of it

struct PackedQDwConv {
  Conv2dShape s;                  // s.G == s.C == s.OC
  int64_t Cp = 0;                 // C rounded up to kQDwChannelBlock
  std::vector<int8_t> w;          // [KH*KW][Cp], s8 (the kernels sign-extend it as they load it)
  std::vector<int32_t> bias;      // folded, [Cp]
  std::vector<float> scale;       // [Cp]
  std::vector<int32_t> w_zero;    // [Cp]; empty when all are 0
  std::vector<uint8_t> pad;       // (W + PL + PR) * C bytes of x_zero: the padded taps
  uint8_t x_zero = 0;             // the input zero point
  float lo = 0.f, hi = 255.f;
  int32_t y_zero = 0;
  bool s8_out = false;
  bool sat_narrow = false;        // QEpilogue::sat_narrow (requantize.h)
  int threads = 1;
};

// w: ONNX order [C][1][KH][KW]; bias nullable (C entries). Throws locus::Error (one line) on a shape
// that is not depthwise or bad quantization parameters.
PackedQDwConv pack_qdwconv(const Conv2dShape& s, const int8_t* w, const int32_t* bias, const QuantParams& q,
                           int threads = 1);

// out[N, OH, OW, C] (u8, or s8 if s8_out) from in[N, H, W, C] (u8), p.threads threads (1 inside a
// parallel region).
void qdwconv_nhwc(const PackedQDwConv& p, const uint8_t* in, void* out);

// The micro-kernel: npix output pixels, all C channels. Pixel i's tap t reads C bytes at
// taps[t] + i * step; w is [ntaps][Cp] s8; ep's per-channel pointers start at channel 0; ep.row_sums is
// unused (the w_zero term is computed from the taps when ep.w_zero is non-null). out: pixel i's C
// bytes at out + i * ldo (ldo >= C: a fused kernel writes a chunk's channels into a wider row).
using QDwConvMicroKernel = void (*)(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t ntaps,
                                    int64_t step, const int8_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out,
                                    int64_t ldo);
void qu8s8_dwconv_generic(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t ntaps, int64_t step,
                          const int8_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out, int64_t ldo);
// AVX2: 8 channels per ymm (vpmovzxbd + vpmaddwd), scalar channel tail.
void qu8s8_dwconv_avx2(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t ntaps, int64_t step,
                       const int8_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out, int64_t ldo);
// AVX-512 (only if has_avx512vnni()): 16 channels per zmm (vpmovzxbd + vpdpwssd), masked tail.
void qu8s8_dwconv_avx512vnni(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t ntaps, int64_t step,
                             const int8_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out, int64_t ldo);

// Tests: whether the AVX-512 kernel may use its VBMI form (three taps per vpdpbusd) on a CPU that has
// it (default true); false runs the vpdpwssd form that CPUs without VBMI use.
void set_qdwconv_vbmi(bool enabled);

// The epilogue of a packed depthwise conv (per-channel pointers at channel 0).
QEpilogue qdwconv_epilogue(const PackedQDwConv& p);

// One output row oh of a packed depthwise conv (the building block of qdwconv_nhwc and of fused
// kernels whose input rows live in a band / ring buffer): row_of(ih) returns input row ih's pixel 0
// (pixels C bytes apart) or nullptr when ih is padding; taps holds KH*KW pointers of scratch;
// `in` = dw_interior(p.s); out receives OW pixels of C bytes, ldo bytes apart (0: C).
// padded_rows: the rows row_of returns are readable from column -PL to W + PR - 1, the padding columns
// holding the input zero point (as p.pad does); then the whole row is one micro-kernel call (border
// pixels included: the register-blocked 3x3 path instead of one call per border pixel).
template <class RowOf>
inline void qdepthwise_row(const PackedQDwConv& p, const DwInterior& in, QDwConvMicroKernel uk, const QEpilogue& ep,
                           const RowOf& row_of, int64_t oh, const uint8_t** taps, uint8_t* out, int64_t ldo = 0,
                           bool padded_rows = false) {
  const Conv2dShape& s = p.s;
  const int64_t C = s.C, T = s.KH * s.KW;
  const uint8_t* pad = p.pad.data();
  if (ldo == 0) ldo = C;
  if (padded_rows) {
    const int64_t ih0 = oh * s.SH - s.PT, iw0 = -s.PL;
    int64_t t = 0;
    for (int64_t kh = 0; kh < s.KH; ++kh) {
      const uint8_t* r = row_of(ih0 + kh * s.DH);
      if (!r) r = pad + s.PL * C;  // a padding row: p.pad as a padded row
      for (int64_t kw = 0; kw < s.KW; ++kw, ++t) taps[t] = r + (iw0 + kw * s.DW) * C;
    }
    uk(C, s.OW, taps, T, s.SW * C, p.w.data(), p.Cp, ep, out, ldo);
    return;
  }
  // npix pixels from column ow0; with `check` (npix = 1) columns outside the input read `pad`;
  // rows outside it read `pad` at the same column, advancing with the pixel like real rows
  auto run = [&](int64_t ow0, int64_t npix, bool check) {
    const int64_t ih0 = oh * s.SH - s.PT, iw0 = ow0 * s.SW - s.PL;
    int64_t t = 0;
    for (int64_t kh = 0; kh < s.KH; ++kh) {
      const uint8_t* r = row_of(ih0 + kh * s.DH);
      for (int64_t kw = 0; kw < s.KW; ++kw, ++t) {
        const int64_t iw = iw0 + kw * s.DW;
        if (check && !(iw >= 0 && iw < s.W))
          taps[t] = pad;
        else if (!r)
          taps[t] = pad + (iw + s.PL) * C;
        else
          taps[t] = r + iw * C;
      }
    }
    uk(C, npix, taps, T, s.SW * C, p.w.data(), p.Cp, ep, out + ow0 * ldo, ldo);
  };
  for (int64_t ow = 0; ow < in.lo; ++ow) run(ow, 1, true);
  if (in.hi > in.lo) run(in.lo, in.hi - in.lo, false);
  for (int64_t ow = in.hi; ow < s.OW; ++ow) run(ow, 1, true);
}

// The depthwise micro-kernel for an ISA and its name ("qu8s8-dwconv-16c8p-avx512vnni" on a VNNI CPU
// under Avx512, else "qu8s8-dwconv-8c4p-avx2" under Avx2 / Avx512, "qu8s8-dwconv-generic").
QDwConvMicroKernel qdwconv_microkernel_for(Isa isa);
const char* qdwconv_microkernel_name(Isa isa);

}  // namespace locus::kernels
