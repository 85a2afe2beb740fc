// Int8 convolution (QLinearConv, G = 1, any KH x KW / stride / dilation / padding) on NHWC data without
// a whole-image im2col: the output pixels are taken in tiles of a few dozen, each tile's im2col rows
// (K = KH * KW * C bytes, padded with x_zero bytes to a multiple of 4) are built in a small buffer that
// stays in L1, and the int8 GEMM micro-kernel (qgemm_u8s8_rows) multiplies them by the packed weights.
// The tap pad bytes and padded taps hold x_zero, so (x - x_zero) is 0 there and the folded bias
// (qgemm.h, with K' = the padded K) makes the result exactly the spec's. The RGB stem of MobileNetV2
// (3x3, stride 2, C = 3: K = 27 -> 28) is the case it is for: the K = 27 GEMM read its last 3 bytes per
// row one at a time, and the 12544 x 27 im2col went through the L2.
// With the VNNI kernel (qgemm_has_seg) and no weight zero points, the interior pixels of rows inside the
// image skip the im2col: the GEMM reads each kernel row's KW * C bytes straight from the image
// (qgemm_u8s8_rows_seg), rounded up to kseg = a multiple of 4 (the stem: 9 -> 12 bytes, K = 36); the
// extra bytes belong to the next pixel and meet zero weights. Border pixels and rows that touch the
// padding build their im2col rows in the same [KH][kseg] layout (extra bytes x_zero).
#pragma once

#include <cstdint>

#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/qgemm.h"

namespace locus::kernels {

inline constexpr int64_t kQConvMaxKH = 16;  // kernel heights this path takes

struct PackedQConv {
  Conv2dShape s;    // s.G == 1
  int64_t Kp = 0;   // KH * KW * C rounded up to kQGemmKU
  int64_t tile = 0; // output pixels per tile
  uint8_t x_zero = 0;
  PackedQB b;       // Kp x OC, rows k >= KH * KW * C zero
  int threads = 1;
  // the direct form (0 / empty when the shape does not allow it: dilated columns, weight zero points)
  int64_t kseg = 0;      // KW * C rounded up to kQGemmKU
  int64_t tile_seg = 0;  // im2col pixels per tile in the [KH][kseg] layout
  PackedQB bseg;         // KH * kseg x OC, the rows of each kernel row's extra bytes zero
};

// w: ONNX order [OC][C][KH][KW]; bias nullable (OC entries). Throws locus::Error (one line) on a
// grouped shape, a kernel taller than kQConvMaxKH or bad quantization parameters.
PackedQConv pack_qconv(const Conv2dShape& s, const int8_t* w, const int32_t* bias, const QuantParams& q,
                       int threads = 1);

// out[N, OH, OW, OC] (u8, or s8) from in[N, H, W, C] (u8): qconv_row for every output row, the rows
// split over p.threads threads (1 inside a parallel region).
void qconv_nhwc(const PackedQConv& p, const uint8_t* in, void* out);

// One output row: row oh of image n into y (OW pixels, pixel stride OC), on the calling thread, with
// buf of qconv_row_buffer_bytes(p) bytes (the fused int8 block's expand stage when it is a conv: the
// stem of MobileNetV2, computed band by band).
int64_t qconv_row_buffer_bytes(const PackedQConv& p);
void qconv_row(const PackedQConv& p, const uint8_t* in, int64_t n, int64_t oh, uint8_t* y, uint8_t* buf);

}  // namespace locus::kernels
