// Single-precision GEMM used by pointwise convolutions, im2col convolutions, Gemm and MatMul.
//   C[M x N] = A[M x K] * B[K x N] (+ bias[N]) then activation.
// B is packed once (at session creation when it is a weight) into the layout the micro-kernel reads.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/native/activation.h"
#include "kernels/native/aligned_vector.h"

namespace locus::kernels {

struct PackedB {
  int64_t K = 0, N = 0;
  AlignedVector<float> data;  // implementation-defined panel layout, from a cache line
};

// Pack B (K x N, element (k, n) at b[k * ldb + n], or at b[n * ldb + k] if trans_b) scaled by alpha.
PackedB pack_b(int64_t K, int64_t N, const float* b, int64_t ldb, bool trans_b, float alpha = 1.f);

// C (row stride ldc) = A (row stride lda) * B + bias (nullable, length N) [+ residual], then act.
// If accumulate is true, C += A * B instead (bias and act still applied once, at the end).
// residual (nullable): a matrix laid out like C (element (i, j) at residual[i * ldr + j]) added
// after the bias and before act, in the micro-kernels' epilogue (a fused residual Add).
// Parallel over M and N with `threads` OpenMP threads (the caller's plan says how many; serial
// inside a parallel region). Needs no scratch.
void gemm_f32(int64_t M, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
              const float* bias, const Activation& act, bool accumulate = false, int threads = 1,
              const float* residual = nullptr, int64_t ldr = 0);

// Rows of A packed for the micro-kernel (GemmConfig::pack_a), kept across gemm_f32_tile calls
// that read the same rows over the same k range (a Scan walk's row strip met by several column
// strips): the first call packs them into buf, the later ones find them there, so a strip is packed
// once however narrow its column tiles. The caller provides buf (capacity floats: rows x k range +
// 8 at least, else the call packs as it would without) and starts from an empty one (a == nullptr)
// whenever A's contents may have changed (every run).
struct PackedARows {
  float* buf = nullptr;
  int64_t capacity = 0;
  int64_t panels = 0;  // packed-B panels that share these rows (the packing decision, gemm.cpp)
  // What buf holds: rows [i0, i1) x columns [k0, k1) of the A at a (row stride lda); a == nullptr: nothing.
  const float* a = nullptr;
  int64_t lda = 0, i0 = 0, i1 = 0, k0 = 0, k1 = 0;
};

// One cache tile, run serially on the calling thread: C[i0:i1, j0:j1] = (accumulate ? C : 0) +
// A[i0:i1, k0:k1] * B[k0:k1, j0:j1], then bias[j] (nullable, indexed by absolute column) and act
// only when k1 == B.K (the tile's reduction is complete). j0 must be a multiple of 16 (a packed-B
// panel boundary) and j1 either B.N or a multiple of 16. A rows i are at a + i * lda (a is the base
// of the whole A, column 0), C rows at c + i * ldc.
// prefetch_a: software-prefetch the next rows of A while a row group computes (worth it when A
// comes from beyond L2; see gemm_prefetch_a). residual (nullable): as in gemm_f32, indexed like c
// (absolute row and column), added only when k1 == B.K. rows (nullable): packed rows of A shared
// with the caller's other calls (PackedARows). With accumulate, C is presumed to come from beyond
// L2 (a Scan walk's later visit of a tile, an in-place residual) and is prefetched tile by tile;
// gemm_f32 prefetches it only when it is larger than L2.
void gemm_f32_tile(const float* a, int64_t lda, const PackedB& b, int64_t i0, int64_t i1, int64_t j0,
                   int64_t j1, int64_t k0, int64_t k1, float* c, int64_t ldc, const float* bias,
                   const Activation& act, bool accumulate, bool prefetch_a = false,
                   const float* residual = nullptr, int64_t ldr = 0, PackedARows* rows = nullptr);

// Whether an A of M x K floats is large enough (beyond L2) for gemm_f32 to prefetch it.
bool gemm_prefetch_a(int64_t M, int64_t K);

}  // namespace locus::kernels
