// Int8 GEMM micro-kernels (XNNPACK-style names: qu8s8_gemm_<MR>x<NR>_<isa>), run by qgemm.cpp.
//
// Every micro-kernel computes mr rows (1..MR) by np >= 1 packed panels of 16 columns each:
//   acc[i][j] = sum_{k < K} A[i][k] * W_p[k][j]            (u8 x s8 -> s32, exact)
// then applies the QEpilogue (requantize.h: folded bias, optional row-sum correction, ONNX Runtime's
// requantization) and stores u8 (or s8) bytes: panel p's columns at y + p * 16, rows ldy bytes apart.
// A is read in place (row stride lda); K need not be a multiple of 4 (the last group's missing bytes
// are read as 0, never past the row). W panel p starts at w + p * w_stride (layout: qgemm.h PackedQB).
// ep's per-column pointers are relative to panel 0's first column; ep.row_sums to row 0.
#pragma once

#include <cstdint>

#include "kernels/native/cpu_features.h"
#include "kernels/native/requantize.h"

namespace locus::kernels {

using QGemmMicroKernel = void (*)(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda,
                                  const int8_t* w, int64_t w_stride, uint8_t* y, int64_t ldy,
                                  const QEpilogue& ep);

// AVX-512 VNNI (only call if has_avx512vnni()): one zmm accumulator per row of a panel, 12 rows,
// two panels per pass (12 x 32); one vpdpbusd per row per panel per group of 4 k (the A bytes
// broadcast as a dword, once for both panels). Stores the last panel's columns under ep.last_mask.
void qu8s8_gemm_12x32_avx512vnni(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda,
    const int8_t* w, int64_t w_stride, uint8_t* y, int64_t ldy, const QEpilogue& ep);
// The same, software-prefetching each panel 64 groups of 4 k ahead: for W streamed from beyond L2
// past few rows of A (the driver's choice, qgemm.cpp), like f32_gemm_12x32_stream_avx512f.
void qu8s8_gemm_12x32_stream_avx512vnni(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda,
    const int8_t* w, int64_t w_stride, uint8_t* y, int64_t ldy, const QEpilogue& ep);

// The same with A read in segments (an implicit im2col: a convolution's kernel rows read straight from
// the image): row i's K bytes are K / kseg segments of kseg bytes (kseg a multiple of 4), segment j at
// a + i * lda + j * ldseg. W is packed for K (= segments x kseg) as usual.
using QGemmSegMicroKernel = void (*)(int64_t mr, int64_t np, int64_t K, int64_t kseg, int64_t ldseg,
                                     const uint8_t* a, int64_t lda, const int8_t* w, int64_t w_stride, uint8_t* y,
                                     int64_t ldy, const QEpilogue& ep);
void qu8s8_gemm_12x32_avx512vnni_seg(int64_t mr, int64_t np, int64_t K, int64_t kseg, int64_t ldseg, const uint8_t* a,
                                     int64_t lda, const int8_t* w, int64_t w_stride, uint8_t* y, int64_t ldy,
                                     const QEpilogue& ep);

// AVX2 (only call if has_avx2(active_isa())): u8 and s8 widened to s16 and multiplied with vpmaddwd,
// so no intermediate can saturate (qgemm_u8s8_avx2.cpp says why not vpmaddubsw); 4 rows, each
// 16-wide panel as two 8-column halves.
void qu8s8_gemm_4x16_avx2(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda,
    const int8_t* w, int64_t w_stride, uint8_t* y, int64_t ldy, const QEpilogue& ep);

// Portable C++ (s32 multiply-adds), 4 rows.
void qu8s8_gemm_4x16_generic(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda,
    const int8_t* w, int64_t w_stride, uint8_t* y, int64_t ldy, const QEpilogue& ep);

// The int8 GEMM micro-kernel of one ISA and its register tile mr x nr (the planners round tiles to
// it), like gemm_config. Avx512: qu8s8-gemm-12x32-avx512vnni (mr 12, nr 16: panels of 16, run in pairs) when the CPU has VNNI, else the AVX2
// one; Avx2: qu8s8-gemm-4x16-avx2; Generic: qu8s8-gemm-4x16-generic.
struct QGemmConfig {
  QGemmMicroKernel kernel;
  int64_t mr, nr;
  const char* name;
  bool masked_tail = false;  // honours QEpilogue::last_mask (the driver then stores a ragged panel directly)
  QGemmSegMicroKernel seg_kernel = nullptr;  // the segmented-A form, where there is one (VNNI)
  QGemmMicroKernel stream_kernel = nullptr;  // `kernel` prefetching W ahead, where there is one (VNNI)
};
const QGemmConfig& qgemm_config(Isa isa);

}  // namespace locus::kernels
