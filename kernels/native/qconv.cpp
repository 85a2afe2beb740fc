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

// The im2col rows (Kp bytes each, x_zero beyond K) of output pixels (n, oh, ow0 .. ow0 + npix - 1);
// kernel row kh's KW * C bytes at kh * seg (seg = KW * C, or kseg: the direct form's layout, x_zero
// in each kernel row's extra bytes).
void im2col_run(const Conv2dShape& s, const uint8_t* x, uint8_t zero, int64_t seg, int64_t K, int64_t Kp, int64_t n,
                int64_t oh, int64_t ow0, int64_t npix, uint8_t* rows) {
  const int64_t span = s.KW * s.C;
  const uint8_t* line[kQConvMaxKH];  // kernel row kh's input row, or nullptr (padding)
  bool rows_inside = true;
  for (int64_t kh = 0; kh < s.KH; ++kh) {
    const int64_t ih = oh * s.SH - s.PT + kh * s.DH;
    line[kh] = ih >= 0 && ih < s.H ? x + (n * s.H + ih) * s.W * s.C : nullptr;
    rows_inside &= line[kh] != nullptr;
  }
  for (int64_t i = 0; i < npix; ++i) {
    uint8_t* row = rows + i * Kp;
    const int64_t iw0 = (ow0 + i) * s.SW - s.PL;
    if (rows_inside && s.DW == 1 && iw0 >= 0 && iw0 + s.KW <= s.W) {  // the interior: KH runs of KW * C bytes
      for (int64_t kh = 0; kh < s.KH; ++kh) copy_short(row + kh * seg, line[kh] + iw0 * s.C, span);
    } else {
      uint8_t* dst = row;
      for (int64_t kh = 0; kh < s.KH; ++kh, dst += seg) {
        if (!line[kh]) {
          std::memset(dst, zero, size_t(span));
          continue;
        }
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          const int64_t iw = iw0 + kw * s.DW;
          if (iw < 0 || iw >= s.W) std::memset(dst + kw * s.C, zero, size_t(s.C));
          else std::memcpy(dst + kw * s.C, line[kh] + iw * s.C, size_t(s.C));
        }
      }
    }
    if (seg > span)
      for (int64_t kh = 0; kh < s.KH; ++kh) std::memset(row + kh * seg + span, zero, size_t(seg - span));
    for (int64_t k = K; k < Kp; ++k) row[k] = zero;
  }
}

}  // namespace

PackedQConv pack_qconv(const Conv2dShape& s, const int8_t* w, const int32_t* bias, const QuantParams& q,
                       int threads) {
  LOCUS_CHECK(s.G == 1 && s.C > 0 && s.OC > 0, "pack_qconv: grouped or empty convolution (C=", s.C, " OC=", s.OC,
              " G=", s.G, ")");
  LOCUS_CHECK(s.KH > 0 && s.KW > 0 && s.SH > 0 && s.SW > 0 && s.DH > 0 && s.DW > 0 && s.OH > 0 && s.OW > 0 &&
                  s.PT >= 0 && s.PL >= 0 && s.PB >= 0 && s.PR >= 0,
              "pack_qconv: bad geometry");
  LOCUS_CHECK(s.KH <= kQConvMaxKH, "pack_qconv: kernel height ", s.KH, " is above ", kQConvMaxKH);
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
  // the direct form: weights as [KH][kseg], zero in each kernel row's extra bytes
  bool any_zw = false;
  for (int32_t z : q.w_zero) any_zw |= z != 0;
  if (s.DW == 1 && !any_zw) {
    p.kseg = (s.KW * s.C + kQGemmKU - 1) / kQGemmKU * kQGemmKU;
    const int64_t Ks = s.KH * p.kseg;
    std::vector<int8_t> ws(size_t(s.OC * Ks), 0);
    for (int64_t o = 0; o < s.OC; ++o)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t kh = 0; kh < s.KH; ++kh)
          for (int64_t kw = 0; kw < s.KW; ++kw)
            ws[size_t(o * Ks + kh * p.kseg + kw * s.C + c)] = w[((o * s.C + c) * s.KH + kh) * s.KW + kw];
    p.bseg = pack_qgemm_b(Ks, s.OC, ws.data(), Ks, /*trans_w=*/true, bias, q);
    p.tile_seg = std::max<int64_t>(12, 4096 / Ks / 12 * 12);
  }
  return p;
}

namespace {

// Output row oh of image n in the direct form, into y (OW pixels, pixel stride OC): the interior
// pixels whose kernel rows lie inside the image, each kernel row's kseg bytes inside its input row,
// read in place (qgemm_u8s8_rows_seg); the others through im2col rows in the same layout.
void direct_row(const PackedQConv& p, const uint8_t* in, int64_t n, int64_t oh, uint8_t* y, uint8_t* buf) {
  const Conv2dShape& s = p.s;
  const int64_t Ks = s.KH * p.kseg, row_bytes = s.W * s.C;
  const int64_t ih0 = oh * s.SH - s.PT;
  int64_t d0 = s.OW, d1 = s.OW;  // the direct pixels [d0, d1)
  const int64_t ih_last = ih0 + (s.KH - 1) * s.DH;
  // a kernel row's kseg - KW * C extra bytes may run into the next input row (zero weights), which
  // exists unless this is the tensor's last row
  const int64_t extra = n + 1 < s.N || ih_last + 1 < s.H ? p.kseg - s.KW * s.C : 0;
  if (ih0 >= 0 && ih_last < s.H && row_bytes + extra >= p.kseg) {
    d0 = std::min(s.OW, (s.PL + s.SW - 1) / s.SW);                     // first with iw0 >= 0
    const int64_t last_iw = (row_bytes + extra - p.kseg) / s.C;        // last iw0 whose kseg bytes may be read
    d1 = std::clamp((last_iw + s.PL) / s.SW + 1, d0, s.OW);
  }
  auto im2col_gemm = [&](int64_t ow0, int64_t ow1) {
    for (int64_t o = ow0; o < ow1; o += p.tile_seg) {
      const int64_t npix = std::min(p.tile_seg, ow1 - o);
      im2col_run(s, in, p.x_zero, p.kseg, Ks, Ks, n, oh, o, npix, buf);
      qgemm_u8s8_rows(0, npix, buf, Ks, p.bseg, y + o * s.OC, s.OC);
    }
  };
  im2col_gemm(0, d0);
  if (d1 > d0) {
    const uint8_t* a = in + ((n * s.H + ih0) * s.W + d0 * s.SW - s.PL) * s.C;
    qgemm_u8s8_rows_seg(0, d1 - d0, a, s.SW * s.C, p.kseg, s.DH * row_bytes, p.bseg, y + d0 * s.OC, s.OC);
  }
  im2col_gemm(d1, s.OW);
}

}  // namespace

void qconv_nhwc(const PackedQConv& p, const uint8_t* in, void* out) {
  const Conv2dShape& s = p.s;
  uint8_t* y = static_cast<uint8_t*>(out);
  const int threads = omp_in_parallel() ? 1 : p.threads;
  const int64_t rows = s.N * s.OH, bytes = qconv_row_buffer_bytes(p);
  auto row = [&](int64_t r, uint8_t* buf) { qconv_row(p, in, r / s.OH, r % s.OH, y + r * s.OW * s.OC, buf); };
  if (threads > 1 && rows > 1) {
#pragma omp parallel num_threads(threads)
    {
      std::vector<uint8_t> buf(static_cast<size_t>(bytes));
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) row(r, buf.data());
    }
  } else {
    std::vector<uint8_t> buf(static_cast<size_t>(bytes));
    for (int64_t r = 0; r < rows; ++r) row(r, buf.data());
  }
}

int64_t qconv_row_buffer_bytes(const PackedQConv& p) {
  return std::max(p.tile * p.Kp, p.kseg > 0 ? p.tile_seg * p.s.KH * p.kseg : int64_t(0));
}

// Row oh of image n: the direct form where the shape allows it, else runs of p.tile pixels through
// im2col rows.
void qconv_row(const PackedQConv& p, const uint8_t* in, int64_t n, int64_t oh, uint8_t* y, uint8_t* buf) {
  const Conv2dShape& s = p.s;
  if (p.kseg > 0 && qgemm_has_seg(active_isa())) {
    direct_row(p, in, n, oh, y, buf);
    return;
  }
  const int64_t K = s.KH * s.KW * s.C;
  for (int64_t ow0 = 0; ow0 < s.OW; ow0 += p.tile) {
    const int64_t npix = std::min(p.tile, s.OW - ow0);
    im2col_run(s, in, p.x_zero, s.KW * s.C, K, p.Kp, n, oh, ow0, npix, buf);
    qgemm_u8s8_rows(0, npix, buf, p.Kp, p.b, y + ow0 * s.OC, s.OC);
  }
}

}  // namespace locus::kernels
