// Int8 depthwise convolution (qdwconv.h): packing with the zero-point terms folded, the row driver
// (interior runs of pixels and single border pixels, padded taps pointing at a row of x_zero bytes)
// and the portable micro-kernel.
#include "kernels/native/qdwconv.h"

#include <omp.h>

#include <algorithm>
#include <limits>

#include "graph/error.h"

namespace locus::kernels {

void qu8s8_dwconv_generic(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t ntaps, int64_t step,
                          const int8_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out, int64_t ldo) {
  constexpr int kB = 16;
  for (int64_t i = 0; i < npix; ++i, out += ldo) {
    const int64_t off = i * step;
    for (int64_t c0 = 0; c0 < C; c0 += kB) {
      const int nb = static_cast<int>(std::min<int64_t>(kB, C - c0));
      int32_t acc[kB], xs[kB];
      for (int j = 0; j < kB; ++j) acc[j] = xs[j] = 0;
      for (int64_t t = 0; t < ntaps; ++t) {
        const uint8_t* x = taps[t] + off + c0;
        const int8_t* wt = w + t * Cp + c0;
        for (int j = 0; j < nb; ++j) {
          acc[j] += int32_t(x[j]) * wt[j];
          xs[j] += x[j];
        }
      }
      for (int j = 0; j < nb; ++j) {
        int32_t v = acc[j] + ep.bias[c0 + j];
        if (ep.w_zero) v -= xs[j] * ep.w_zero[c0 + j];
        const int32_t q = requantize_value(v, ep.scale[c0 + j], ep.lo, ep.hi, ep.y_zero);
        out[c0 + j] = ep.s8_out ? static_cast<uint8_t>(static_cast<int8_t>(q)) : static_cast<uint8_t>(q);
      }
    }
  }
}

QDwConvMicroKernel qdwconv_microkernel_for(Isa isa) {
  if (isa == Isa::Avx512 && cpu_has_avx512vnni()) return qu8s8_dwconv_avx512vnni;
  return has_avx2(isa) ? qu8s8_dwconv_avx2 : qu8s8_dwconv_generic;
}

const char* qdwconv_microkernel_name(Isa isa) {
  if (isa == Isa::Avx512 && cpu_has_avx512vnni()) return "qu8s8-dwconv-16c8p-avx512vnni";
  return has_avx2(isa) ? "qu8s8-dwconv-8c4p-avx2" : "qu8s8-dwconv-generic";
}

PackedQDwConv pack_qdwconv(const Conv2dShape& s, const int8_t* w, const int32_t* bias, const QuantParams& q,
                           int threads) {
  LOCUS_CHECK(s.G == s.C && s.OC == s.C && s.C > 0, "pack_qdwconv: not a depthwise convolution (C=", s.C, " OC=",
              s.OC, " G=", s.G, ")");
  LOCUS_CHECK(s.KH > 0 && s.KW > 0 && s.SH > 0 && s.SW > 0 && s.DH > 0 && s.DW > 0 && s.OH > 0 && s.OW > 0 &&
                  s.PT >= 0 && s.PL >= 0 && s.PB >= 0 && s.PR >= 0,
              "pack_qdwconv: bad geometry");
  LOCUS_CHECK(s.OH == (s.H + s.PT + s.PB - (s.KH - 1) * s.DH - 1) / s.SH + 1 &&
                  s.OW == (s.W + s.PL + s.PR - (s.KW - 1) * s.DW - 1) / s.SW + 1,
              "pack_qdwconv: output ", s.OH, "x", s.OW, " does not match the input and kernel");
  check_quant_params(q, s.C, "pack_qdwconv");
  PackedQDwConv p;
  p.s = s;
  p.threads = std::max(threads, 1);
  const int64_t C = s.C, T = s.KH * s.KW;
  p.Cp = (C + kQDwChannelBlock - 1) / kQDwChannelBlock * kQDwChannelBlock;
  p.w.assign(T * p.Cp, 0);
  p.bias.assign(p.Cp, 0);
  p.scale.assign(p.Cp, 0.f);
  bool any_zw = false;
  for (int32_t z : q.w_zero) any_zw |= z != 0;
  if (any_zw) p.w_zero.assign(p.Cp, 0);
  const int64_t za = q.a_zero;
  for (int64_t c = 0; c < C; ++c) {
    int64_t sum = 0;
    for (int64_t t = 0; t < T; ++t) {
      const int8_t v = w[c * T + t];
      p.w[t * p.Cp + c] = v;
      sum += v;
    }
    const int64_t zw = q.w_zero.empty() ? 0 : q.w_zero[q.w_zero.size() == 1 ? 0 : c];
    const int64_t b = (bias ? int64_t(bias[c]) : 0) - za * sum + T * za * zw;
    LOCUS_CHECK(b >= std::numeric_limits<int32_t>::min() && b <= std::numeric_limits<int32_t>::max(),
                "pack_qdwconv: the folded bias of channel ", c, " (", b, ") overflows s32");
    p.bias[c] = int32_t(b);
    p.scale[c] = requant_multiplier(q.a_scale, q.w_scale[q.w_scale.size() == 1 ? 0 : c], q.y_scale);
    if (any_zw) p.w_zero[c] = int32_t(zw);
  }
  p.pad.assign((s.W + s.PL + s.PR) * C, static_cast<uint8_t>(q.a_zero));
  p.x_zero = static_cast<uint8_t>(q.a_zero);
  p.lo = float(q.qmin - q.y_zero);
  p.hi = float(q.qmax - q.y_zero);
  p.y_zero = q.y_zero;
  p.s8_out = q.s8_out;
  p.sat_narrow = saturating_narrow_ok(p.scale.data(), p.Cp, q.qmin, q.qmax, q.s8_out);
  return p;
}

QEpilogue qdwconv_epilogue(const PackedQDwConv& p) {
  QEpilogue ep;
  ep.bias = p.bias.data();
  ep.scale = p.scale.data();
  ep.w_zero = p.w_zero.empty() ? nullptr : p.w_zero.data();
  ep.lo = p.lo;
  ep.hi = p.hi;
  ep.y_zero = p.y_zero;
  ep.s8_out = p.s8_out;
  ep.sat_narrow = p.sat_narrow;
  return ep;
}

void qdwconv_nhwc(const PackedQDwConv& p, const uint8_t* in, void* out) {
  const Conv2dShape& s = p.s;
  const int64_t C = s.C, T = s.KH * s.KW;
  const QDwConvMicroKernel uk = qdwconv_microkernel_for(active_isa());
  const DwInterior inner = dw_interior(s);
  const QEpilogue ep = qdwconv_epilogue(p);
  uint8_t* ob = static_cast<uint8_t*>(out);
  const int64_t rows = s.N * s.OH;
  auto run_row = [&](int64_t r, std::vector<const uint8_t*>& taps) {
    const int64_t n = r / s.OH, oh = r % s.OH;
    const uint8_t* img = in + n * s.H * s.W * C;
    auto row_of = [&](int64_t ih) -> const uint8_t* { return ih >= 0 && ih < s.H ? img + ih * s.W * C : nullptr; };
    qdepthwise_row(p, inner, uk, ep, row_of, oh, taps.data(), ob + (n * s.OH + oh) * s.OW * C);
  };
  const int threads = omp_in_parallel() ? 1 : p.threads;
  if (threads > 1 && rows > 1) {
#pragma omp parallel num_threads(threads)
    {
      std::vector<const uint8_t*> taps(T);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) run_row(r, taps);
    }
  } else {
    std::vector<const uint8_t*> taps(T);
    for (int64_t r = 0; r < rows; ++r) run_row(r, taps);
  }
}

}  // namespace locus::kernels
