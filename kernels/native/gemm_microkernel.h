// GEMM micro-kernels (XNNPACK-style names: f32_gemm_<MR>x<NR>_<isa>) and the epilogue they apply.
//
// Every micro-kernel computes one register tile of C: mr rows (1..MR) by the full width NR of one
// packed-B panel (16, or 8 for the narrow last panel of a B whose N % 16 is 1..8)
//   C[mr x NR] = (load_c ? C : 0) + A[mr x kc] * W[kc x NR]
// then, if ep is non-null, adds ep->bias[0..NR) (when non-null) and clamps to [ep->lo, ep->hi]
// (when ep->clamp; NaN passes the clamp unchanged, +-inf go to the bounds: activation.h). A is read in place (row stride lda); W is one K-major panel of packed B (NR
// floats per k, contiguous). Rows beyond mr are never written. The driver (gemm.cpp) handles
// ragged N by running the kernel on an NR-wide stack tile.
#pragma once

#include <cstdint>

#include "kernels/native/activation.h"

namespace locus::kernels {

// Width of a packed-B panel; shared by every micro-kernel so packing does not depend on the ISA.
// The last panel is kGemmNarrowNR wide when at most that many columns remain.
inline constexpr int64_t kGemmNR = 16;
inline constexpr int64_t kGemmNarrowNR = 8;

struct GemmEpilogue {
  const float* bias = nullptr;  // 16 entries for this tile, or nullptr
  bool clamp = false;
  float lo = 0.f, hi = 0.f;
};

// The epilogue that applies `act` (Relu -> clamp [0, inf), Clip -> clamp [lo, hi]); no bias.
inline GemmEpilogue epilogue_for(const Activation& act) {
  GemmEpilogue ep;
  if (act.kind == ActKind::Relu) {
    ep.clamp = true;
    ep.lo = 0.f;
    ep.hi = __builtin_inff();
  } else if (act.kind == ActKind::Clip) {
    ep.clamp = true;
    ep.lo = act.lo;
    ep.hi = act.hi;
  }
  return ep;
}

// np >= 1 register tiles side by side (the same A rows, np consecutive panels of the same width):
// panel p's weights start at w + p * w_stride, its C columns at c + p * NR, its bias at
// ep->bias + p * NR. One call per row group amortises the call and row setup over the panels.
using GemmMicroKernel = void (*)(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
                                 const float* w, int64_t w_stride, float* c, int64_t ldc,
                                 bool load_c, const GemmEpilogue* ep);

// AVX2 + FMA (only call if active_isa() == Isa::Avx2); both have 12 ymm accumulators and an
// instantiation per row count, so mr < MR costs in proportion to mr.
//   6x16: 16-wide panels.   12x8: 8-wide panels.
void f32_gemm_6x16_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const GemmEpilogue* ep);
void f32_gemm_12x8_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const GemmEpilogue* ep);

// AVX-512F (only call if active_isa() == Isa::Avx512): one zmm per row of a 16-wide panel, 12
// accumulators, an instantiation per row count. Narrow panels use f32_gemm_12x8_avx2.
void f32_gemm_12x16_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const GemmEpilogue* ep);

// Portable C++, 4x8 blocks (auto-vectorised to SSE2 by the compiler): two per 16-wide panel, one
// per 8-wide panel.
void f32_gemm_4x16_generic(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const GemmEpilogue* ep);
void f32_gemm_4x8_generic(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const GemmEpilogue* ep);

}  // namespace locus::kernels
