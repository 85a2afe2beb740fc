// Pooling on NHWC activations. Window positions outside the input are skipped (MaxPool) or, for
// AveragePool, counted only if count_include_pad and they lie inside the explicit pads (positions
// added by ceil_mode beyond the pads are never counted), as the ONNX reference does.
#pragma once

#include <cstdint>

namespace locus::kernels {

struct Pool2dShape {
  int64_t N = 1, H = 0, W = 0, C = 0, OH = 0, OW = 0;
  int64_t KH = 1, KW = 1, SH = 1, SW = 1;
  int64_t PT = 0, PL = 0, PB = 0, PR = 0;
  int64_t DH = 1, DW = 1;
  bool count_include_pad = false;
};

// Max pooling with the active ISA's pixel kernel (cpu_features.h: AVX-512F, AVX2, else the
// baseline four-float code).
void maxpool2d_nhwc(const Pool2dShape& s, const float* in, float* out);
// One output pixel, all C channels: o[c] = max over the ntaps taps of taps[t][c], NaN if any is
// (only call if active_isa() == Isa::Avx512).
void maxpool_pixel_avx512f(const float* const* taps, int64_t ntaps, int64_t C, float* o);
// The same with AVX2 (only call if active_isa() == Isa::Avx2).
void maxpool_pixel_avx2(const float* const* taps, int64_t ntaps, int64_t C, float* o);
void avgpool2d_nhwc(const Pool2dShape& s, const float* in, float* out);
// out[N, C] = mean over HW of in[N, HW, C]
void global_avgpool_nhwc(int64_t N, int64_t HW, int64_t C, const float* in, float* out);

}  // namespace locus::kernels
