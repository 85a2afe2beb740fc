// Int8 convolution by im2col tiles in L1 (qconv.h): packing (K padded to a multiple of 4 with zero
// weights) and the tile loop.
#include "kernels/native/qconv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "graph/error.h"

namespace locus::kernels {
namespace {

// len bytes from src to dst: overlapping 8- or 4-byte moves for the short runs (the stem's are 9 bytes).
inline void copy_short(uint8_t* dst, const uint8_t* src, int64_t len) {
  if (len >= 8 && len <= 16) {
    uint64_t a, b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + len - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + len - 8, &b, 8);
  } else if (len >= 4 && len < 8) {
    uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + len - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + len - 4, &b, 4);
  } else {
    std::memcpy(dst, src, size_t(len));
  }
}

// The im2col row (Kp bytes) of output pixel (n, oh, ow).
void im2col_pixel(const Conv2dShape& s, const uint8_t* x, uint8_t zero, int64_t K, int64_t Kp, int64_t n,
                  int64_t oh, int64_t ow, uint8_t* row) {
  const int64_t span = s.KW * s.C, iw0 = ow * s.SW - s.PL;
  const bool cols_inside = s.DW == 1 && iw0 >= 0 && iw0 + s.KW <= s.W;
  uint8_t* dst = row;
  for (int64_t kh = 0; kh < s.KH; ++kh, dst += span) {
    const int64_t ih = oh * s.SH - s.PT + kh * s.DH;
    if (ih < 0 || ih >= s.H) {
      std::memset(dst, zero, size_t(span));
      continue;
    }
    const uint8_t* line = x + (n * s.H + ih) * s.W * s.C;
    if (cols_inside) {
      copy_short(dst, line + iw0 * s.C, span);
      continue;
    }
    for (int64_t kw = 0; kw < s.KW; ++kw) {
      const int64_t iw = iw0 + kw * s.DW;
      if (iw < 0 || iw >= s.W) std::memset(dst + kw * s.C, zero, size_t(s.C));
      else std::memcpy(dst + kw * s.C, line + iw * s.C, size_t(s.C));
    }
  }
  for (int64_t k = K; k < Kp; ++k) row[k] = zero;
}

}  // namespace

PackedQConv pack_qconv(const Conv2dShape& s, const int8_t* w, const int32_t* bias, const QuantParams& q,
                       int threads) {
  LOCUS_CHECK(s.G == 1 && s.C > 0 && s.OC > 0, "pack_qconv: grouped or empty convolution (C=", s.C, " OC=", s.OC,
              " G=", s.G, ")");
  LOCUS_CHECK(s.KH > 0 && s.KW > 0 && s.SH > 0 && s.SW > 0 && s.DH > 0 && s.DW > 0 && s.OH > 0 && s.OW > 0 &&
                  s.PT >= 0 && s.PL >= 0 && s.PB >= 0 && s.PR >= 0,
              "pack_qconv: bad geometry");
  LOCUS_CHECK(s.OH == (s.H + s.PT + s.PB - (s.KH - 1) * s.DH - 1) / s.SH + 1 &&
                  s.OW == (s.W + s.PL + s.PR - (s.KW - 1) * s.DW - 1) / s.SW + 1,
              "pack_qconv: output ", s.OH, "x", s.OW, " does not match the input and kernel");
  PackedQConv p;
  p.s = s;
  p.threads = std::max(threads, 1);
  const int64_t T = s.KH * s.KW, K = T * s.C;
  p.Kp = (K + kQGemmKU - 1) / kQGemmKU * kQGemmKU;
  // weights as [OC][Kp], k = (kh * KW + kw) * C + c, zero beyond K
  std::vector<int8_t> wk(size_t(s.OC * p.Kp), 0);
  for (int64_t o = 0; o < s.OC; ++o)
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t t = 0; t < T; ++t) wk[size_t(o * p.Kp + t * s.C + c)] = w[(o * s.C + c) * T + t];
  p.b = pack_qgemm_b(p.Kp, s.OC, wk.data(), p.Kp, /*trans_w=*/true, bias, q);
  p.x_zero = static_cast<uint8_t>(q.a_zero);
  // a tile of whole micro-tiles (12 rows) whose im2col rows take about 4 KiB, at least 12 pixels
  p.tile = std::max<int64_t>(12, 4096 / p.Kp / 12 * 12);
  return p;
}

void qconv_nhwc(const PackedQConv& p, const uint8_t* in, void* out) {
  const Conv2dShape& s = p.s;
  const int64_t M = s.N * s.OH * s.OW, K = s.KH * s.KW * s.C, Kp = p.Kp, tile = p.tile;
  const int64_t tiles = (M + tile - 1) / tile;
  uint8_t* y = static_cast<uint8_t*>(out);
  auto run_tile = [&](int64_t t, uint8_t* buf) {
    const int64_t m0 = t * tile, m1 = std::min(M, m0 + tile);
    for (int64_t m = m0; m < m1; ++m) {
      const int64_t n = m / (s.OH * s.OW), r = m % (s.OH * s.OW);
      im2col_pixel(s, in, p.x_zero, K, Kp, n, r / s.OW, r % s.OW, buf + (m - m0) * Kp);
    }
    qgemm_u8s8_rows(0, m1 - m0, buf, Kp, p.b, y + m0 * s.OC, s.OC);
  };
  const int threads = omp_in_parallel() ? 1 : p.threads;
  if (threads > 1 && tiles > 1) {
#pragma omp parallel num_threads(threads)
    {
      std::vector<uint8_t> buf(size_t(tile * Kp));
#pragma omp for schedule(static)
      for (int64_t t = 0; t < tiles; ++t) run_tile(t, buf.data());
    }
  } else {
    std::vector<uint8_t> buf(size_t(tile * Kp));
    for (int64_t t = 0; t < tiles; ++t) run_tile(t, buf.data());
  }
}

}  // namespace locus::kernels
