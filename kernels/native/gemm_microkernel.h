// GEMM micro-kernels (XNNPACK-style names: f32_gemm_<MR>x<NR>_<isa>) and the epilogue they apply.
//
// Every micro-kernel computes one register tile of C: mr rows (1..MR) by a full NR = 16 columns
//   C[mr x 16] = (load_c ? C : 0) + A[mr x kc] * W[kc x 16]
// then, if ep is non-null, adds ep->bias[0..16) (when non-null) and clamps to [ep->lo, ep->hi]
// (when ep->clamp). A is read in place (row stride lda); W is one K-major panel of packed B (16
// floats per k, contiguous). Rows beyond mr are never read or written. The driver (gemm.cpp) handles
// ragged N by running the kernel on a 16-wide stack tile.
#pragma once

#include <cstdint>

#include "kernels/native/activation.h"

namespace locus::kernels {

// Width of a packed-B panel; shared by every micro-kernel so packing does not depend on the ISA.
inline constexpr int64_t kGemmNR = 16;

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

using GemmMicroKernel = void (*)(int64_t mr, int64_t kc, const float* a, int64_t lda,
                                 const float* w, float* c, int64_t ldc, bool load_c,
                                 const GemmEpilogue* ep);

// AVX2 + FMA, 6x16 register tile (12 ymm accumulators). Only call if active_isa() == Isa::Avx2.
void f32_gemm_6x16_avx2(int64_t mr, int64_t kc, const float* a, int64_t lda, const float* w,
                        float* c, int64_t ldc, bool load_c, const GemmEpilogue* ep);

// Portable C++, 4x16 tile computed as two 4x8 halves (auto-vectorised to SSE2 by the compiler).
void f32_gemm_4x16_generic(int64_t mr, int64_t kc, const float* a, int64_t lda, const float* w,
                           float* c, int64_t ldc, bool load_c, const GemmEpilogue* ep);

}  // namespace locus::kernels
