// GEMM micro-kernels (XNNPACK-style names: f32_gemm_<MR>x<NR>_<isa>); the epilogue they apply is
// kernels/native/epilogue.h.
//
// Every micro-kernel computes one register tile of C: mr rows (1..MR) by the full width NR of one
// packed-B panel (16, or 8 for the narrow last panel of a B whose N % 16 is 1..8)
//   C[mr x NR] = (load_c ? C : 0) + A[mr x kc] * W[kc x NR]
// then, if ep is non-null, adds ep->bias[0..NR) (when non-null) and clamps to [ep->lo, ep->hi]
// (when ep->clamp; NaN passes the clamp unchanged, +-inf go to the bounds: activation.h), then
// applies ep->post (HardSigmoid / HardSwish / Sigmoid, epilogue_vec.h). A is read in place (row stride lda); W is one K-major panel of packed B (NR
// floats per k, contiguous). Rows beyond mr are never written. The driver (gemm.cpp) handles
// ragged N by running the kernel on an NR-wide stack tile.
#pragma once

#include <cstdint>

#include "kernels/native/activation.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/epilogue.h"

namespace locus::kernels {

// Width of a packed-B panel; shared by every micro-kernel so packing does not depend on the ISA.
// The last panel is kGemmNarrowNR wide when at most that many columns remain.
inline constexpr int64_t kGemmNR = 16;
inline constexpr int64_t kGemmNarrowNR = 8;


// Software prefetch of the A rows [0, rows) (row stride lda) over columns [k0, k0 + kc), one touch
// per cache line: issued for the next row group while the current one computes, because a row group
// touches a few dozen fresh lines of A (K floats per row) and the hardware prefetchers alone leave
// the kernel waiting on memory when A does not fit in the caches (measured at M=25088 K=144 N=24,
// one thread: 54 -> 76 GFLOP/s). The GEMM driver (gemm.cpp) and f32_gemm_6x16_prefetch_avx2 use it.
inline void gemm_prefetch_rows(const float* a, int64_t lda, int64_t rows, int64_t k0, int64_t kc) {
  constexpr int64_t kLine = 64 / sizeof(float);
  for (int64_t i = 0; i < rows; ++i) {
    const float* r = a + i * lda + k0;
    for (int64_t k = 0; k < kc; k += kLine) __builtin_prefetch(r + k, 0, 3);
    __builtin_prefetch(r + kc - 1, 0, 3);
  }
}

// Software prefetch of rows [0, rows) of np 16-wide panels of C (row stride ldc) into L1, one touch
// per cache line (and the row's last float: C need not be 64-byte aligned): the next tile's rows of
// a C the kernel accumulates into from beyond L2 (GemmPrefetch::c).
inline void gemm_prefetch_c_rows(const float* c, int64_t ldc, int64_t rows, int64_t np) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* r = c + i * ldc;
    for (int64_t p = 0; p < np; ++p) __builtin_prefetch(r + 16 * p, 0, 3);
    __builtin_prefetch(r + 16 * np - 1, 0, 3);
  }
}

// np >= 1 register tiles side by side (the same A rows, np consecutive panels of the same width):
// panel p's weights start at w + p * w_stride, its C columns at c + p * NR, its bias at
// ep->bias + p * NR. One call per row group amortises the call and row setup over the panels.
using GemmMicroKernel = void (*)(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
                                 const float* w, int64_t w_stride, float* c, int64_t ldc,
                                 bool load_c, const Epilogue* ep);

// What a prefetching micro-kernel fetches ahead while it computes: `b`, the B blocks the driver's
// next call reads (the same panel layout: panel p at b + p * w_stride; its first whole tile, one
// line per k, into L2); with `c`, the next tile's rows of C before each whole tile of a run (into L1):
// for a C the caller passes in (load_c on the driver's first k block), which comes from beyond L2
// (an in-place residual, a Scan walk's later visit of a tile); with `a` (A read in place, not
// packed), the next tile's rows of A the same way (gemm_prefetch_rows), for an A streamed from
// beyond L2.
struct GemmPrefetch {
  const float* b = nullptr;
  bool c = false;
  bool a = false;
};
using GemmMicroKernelPrefetch = void (*)(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
                                         const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c,
                                         const Epilogue* ep, const GemmPrefetch& pf);

// A run of whole MR-row tiles (GemmConfig::multi_tile), the row walk every multi-tile kernel shares:
// while more than MR rows remain (or exactly MR while pf.b waits for its tile), prefetches the next
// tile's rows of A (pf.a; strided A, row stride lda) and of C (pf.c, np panels), then calls
// whole(a, c, ep, b) on MR rows (b: pf.b on the first tile, else nullptr) and advances A by a_step
// (MR rows, or MR x kc packed floats), C and the epilogue's residual by MR rows; the last mr <= MR
// rows go to rest(mr, a, c, ep) (mr may be 0).
template <int64_t MR, class Whole, class Rest>
inline void gemm_tile_runs(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, int64_t a_step, float* c,
                           int64_t ldc, const Epilogue* ep, const GemmPrefetch& pf, Whole&& whole, Rest&& rest) {
  Epilogue e;
  if (ep) e = *ep;
  const Epilogue* epp = ep ? &e : nullptr;
  const float* prefetch_b = pf.b;
  for (; mr > MR || (prefetch_b && mr == MR); mr -= MR) {
    const int64_t next = mr - MR < MR ? mr - MR : MR;
    if (pf.a) gemm_prefetch_rows(a + MR * lda, lda, next, 0, kc);
    if (pf.c) gemm_prefetch_c_rows(c + MR * ldc, ldc, next, np);
    whole(a, c, epp, prefetch_b);
    prefetch_b = nullptr;
    a += a_step;
    c += MR * ldc;
    if (e.residual) e.residual += MR * e.ldr;
  }
  rest(mr, a, c, epp);
}

// A 16-wide panel (w16, 16 floats per k) and an 8-wide last panel (w8, 8 per k) side by side: C
// columns [0, 16) and [16, 24), the epilogue's bias and residual offset the same way.
using GemmMicroKernel16x8 = void (*)(int64_t mr, int64_t kc, const float* a, int64_t lda, const float* w16,
                                     const float* w8, float* c, int64_t ldc, bool load_c, const Epilogue* ep);

// AVX2 + FMA (only call if active_isa() == Isa::Avx2); both have 12 ymm accumulators and an
// instantiation per row count, so mr < MR costs in proportion to mr.
//   6x16: 16-wide panels.   12x8: 8-wide panels.
void f32_gemm_6x16_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep);
void f32_gemm_12x8_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep);
// 4 rows x (16 + 8): a 16-wide panel and the 8-wide last panel in one tile (GemmMicroKernel16x8),
// for a B of N = 16 j + 8 columns (MobileNetV2's 24-channel projections). mr > 4 runs whole 4-row
// tiles, then the rest (GemmConfig::multi_tile).
void f32_gemm_4x24_avx2(int64_t mr, int64_t kc, const float* a, int64_t lda, const float* w16, const float* w8,
                        float* c, int64_t ldc, bool load_c, const Epilogue* ep);
// The 6x16 kernels below take mr > 6 (GemmConfig::multi_tile): 6-row tiles down the rows, then the last
// mr % 6 (or 6) rows. On a Zen 3 core, one call per run of tiles instead of one per tile: 1.01-1.14x
// on MobileNetV2's 1x1 shapes (most where K and N are small: 12544x32x16).
// f32_gemm_6x16_avx2 prefetching what pf names (GemmPrefetch; GemmConfig::wide_prefetch): before
// each 6-row tile of a run with another after it, that tile's rows of A (pf.a: gemm.cpp's prefetch_a)
// and of C (pf.c); with pf.b, as f32_gemm_6x16_packa_prefetch_avx2. The results are those of
// f32_gemm_6x16_avx2, bit for bit.
void f32_gemm_6x16_prefetch_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep, const GemmPrefetch& pf);
// The 6x16 tile reading A packed by f32_pack_a_6_avx2 (a: mr floats per k, lda unused): each
// broadcast is then one pointer plus a constant, where the strided tile spends integer work on six
// row pointers per k. On a Zen 3 core, in L1, at K = 24 / 96 / 320: 1.11-1.21x the strided tile.
void f32_gemm_6x16_packa_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep);
// f32_gemm_6x16_packa_avx2 prefetching what pf names (GemmPrefetch): with pf.b, its first 6-row
// tile also prefetches into L2 one line per k of panel p of pf.b (p < np, at pf.b + p * w_stride, 16
// floats per k), the B blocks the driver's next call reads when B streams from beyond the caches;
// with pf.c, before each 6-row tile with another after it, that tile's rows of C into L1. pf.b ==
// nullptr or mr < 6: no prefetch of B (pf.a is ignored: A is packed). The results are those of
// f32_gemm_6x16_packa_avx2, bit for bit.
void f32_gemm_6x16_packa_prefetch_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep, const GemmPrefetch& pf);
// dst[k * mr + i] = a[i * lda + k] (i < mr <= 6, k < kc); writes up to 8 floats past dst[kc * mr).
void f32_pack_a_6_avx2(int64_t mr, int64_t kc, const float* a, int64_t lda, float* dst);

// AVX-512F (only call if active_isa() == Isa::Avx512): two 16-wide panels at a time (12 x 32, 24
// accumulators; an odd last panel as 12 x 16), an instantiation per row count. Narrow panels use
// f32_gemm_12x8_avx2. Like the AVX2 6x16 kernels, the 12-row kernels below take mr > 12
// (GemmConfig::multi_tile): 12-row tiles down the rows, then the last mr % 12 (or 12) rows.
void f32_gemm_12x32_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep);
// f32_gemm_12x32_avx512f prefetching what pf names (GemmPrefetch; GemmConfig::wide_prefetch): before
// each 12-row tile of a run with another after it, that tile's rows of A (pf.a) and of C (pf.c). The
// results are those of f32_gemm_12x32_avx512f, bit for bit.
void f32_gemm_12x32_prefetch_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep, const GemmPrefetch& pf);
// The 12x32 tile reading A packed by f32_pack_a_12_avx512f (mr floats per k, tile after tile; lda
// unused): one pointer plus a constant per broadcast instead of twelve row pointers.
void f32_gemm_12x32_packa_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep);
// f32_gemm_12x32_packa_avx512f prefetching what pf names: with pf.b, its first 12-row tile also
// prefetches into L2 one line per k of each panel of pf.b (the driver's next B block); with pf.c,
// the next tile's rows of C. Bit for bit f32_gemm_12x32_packa_avx512f.
void f32_gemm_12x32_packa_prefetch_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep, const GemmPrefetch& pf);
// dst[k * mr + i] = a[i * lda + k] (i < mr <= 12, k < kc); writes up to 8 floats past dst[kc * mr).
void f32_pack_a_12_avx512f(int64_t mr, int64_t kc, const float* a, int64_t lda, float* dst);
// The same tile, software-prefetching B 64 k rows ahead in the k loop: for a B streamed from beyond
// the caches past few rows of A (the driver's choice: gemm.cpp), where the hardware prefetchers
// left the kernel waiting on every line (one Zen 4 core, M=49 K=4608 N=2048: 160-175 -> 200-210
// GFLOP/s).
void f32_gemm_12x32_stream_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep);
// 12 rows x (16 + 8) columns: a zmm and a ymm accumulator per row, one broadcast for both (N = 24).
void f32_gemm_12x24_avx512f(int64_t mr, int64_t kc, const float* a, int64_t lda, const float* w16, const float* w8,
                            float* c, int64_t ldc, bool load_c, const Epilogue* ep);

// Portable C++, 4x8 blocks (auto-vectorised to SSE2 by the compiler): two per 16-wide panel, one
// per 8-wide panel.
void f32_gemm_4x16_generic(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep);
void f32_gemm_4x8_generic(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
    const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep);

// The GEMM micro-kernels of one ISA (XNNPACK-style config, chosen once per ISA): `wide` for the
// 16-wide panels with its register tile mr x nr, `narrow` for an 8-wide last panel. The driver runs
// them; the planners (schedule/) round their tiles to {mr, nr}.
struct GemmConfig {
  GemmMicroKernel wide;
  int64_t mr, nr;
  int64_t tile_panels;  // panels one register tile spans (the driver passes at least this many)
  GemmMicroKernel stream;  // `wide` prefetching B ahead, for B streamed from memory (nullptr: wide)
  GemmMicroKernel16x8 wide_narrow;  // an unpaired wide panel with the narrow last one (nullptr: apart)
  GemmMicroKernel narrow;
  int64_t narrow_mr;
  // `wide` reading A packed k-major by pack_a, which the driver runs where a row tile meets enough
  // panels to repay the packing (nullptr: A is always read in place).
  GemmMicroKernel wide_packed = nullptr;
  void (*pack_a)(int64_t mr, int64_t kc, const float* a, int64_t lda, float* dst) = nullptr;
  // Whether `wide` and `wide_packed` also take mr > MR: whole tiles of MR rows down the rows (A, C
  // and the residual advancing MR rows; packed A tile after tile), then the rest as one tile. The
  // driver then makes one call per run of whole tiles instead of one per tile.
  bool multi_tile = false;
  // With multi_tile: `wide` prefetching within a run (GemmPrefetch): the next tile's rows of A, for
  // the driver's first pass over an A it prefetches (nullptr: tile by tile there), and of a C the
  // caller passed in (nullptr: none).
  GemmMicroKernelPrefetch wide_prefetch = nullptr;
  // Packed B per micro-kernel call, in bytes (at least the kernel's own panels): the driver runs
  // a row group over the panels of one chunk of this size, then the next chunk. 16 KiB (half the
  // L1) keeps the chunk in L1 across the row tiles; larger chunks read B from L2, behind the
  // prefetchers, and pass over the group's A and C fewer times.
  int64_t chunk_b_bytes = 16 * 1024;
  // Rows of `wide_narrow`'s register tile.
  int64_t wide_narrow_mr = mr;
  // `wide_packed` prefetching (GemmPrefetch): the next call's B, which the driver asks for on the
  // first row group of each chunk when B is large enough to stream from memory, and the rows of a C
  // the caller passed in (nullptr: no software prefetch of B or C on the packed path).
  GemmMicroKernelPrefetch wide_packed_prefetch = nullptr;
};
// Avx512: f32_gemm_12x32_avx512f (12 x 32 over two panels); Avx2: f32_gemm_6x16_avx2 (6 x 16); Generic:
// f32_gemm_4x16_generic (4 x 16).
const GemmConfig& gemm_config(Isa isa);

}  // namespace locus::kernels
