// GEMM driver: packs B into 16-wide K-major panels, then tiles C into (M block x N block) tasks run
// in parallel with OpenMP; each task loops over K blocks, B panels and MR-row tiles, calling the
// micro-kernel chosen for the active ISA. Bias and activation are applied by the micro-kernel on the
// last K block only. A is never packed: rows are read in place with stride lda.
#include "kernels/native/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "graph/error.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/gemm_microkernel.h"

namespace locus::kernels {
namespace {

constexpr int64_t NR = kGemmNR;
constexpr int64_t kMaxKC = 256;           // B panel block: 256 x 16 floats = 16 KiB, stays in L1
constexpr int64_t kMTilesPerBlock = 16;   // M block = 16 micro-tiles (96 rows for 6x16)
constexpr double kMinParallelFlops = 2e5; // below this, threading costs more than it saves
constexpr int64_t kMaxMR = 8;

struct Kernel {
  GemmMicroKernel fn;
  int64_t mr;
};

Kernel select_kernel() {
  if (active_isa() == Isa::Avx2) return {f32_gemm_6x16_avx2, 6};
  return {f32_gemm_4x16_generic, 4};
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// One micro-tile whose N extent nr may be < 16: runs the kernel on a 16-wide stack tile.
void edge_tile(const Kernel& kern, int64_t mr, int64_t nr, int64_t kc, const float* a, int64_t lda,
               const float* w, float* c, int64_t ldc, bool load_c, const GemmEpilogue* ep) {
  alignas(32) float tile[kMaxMR * NR] = {};
  alignas(32) float bias[NR] = {};
  if (load_c)
    for (int64_t i = 0; i < mr; ++i) std::memcpy(tile + i * NR, c + i * ldc, nr * sizeof(float));
  GemmEpilogue tep;
  if (ep) {
    tep = *ep;
    if (ep->bias) {
      std::memcpy(bias, ep->bias, nr * sizeof(float));
      tep.bias = bias;
    }
  }
  kern.fn(mr, kc, a, lda, w, tile, NR, load_c, ep ? &tep : nullptr);
  for (int64_t i = 0; i < mr; ++i) std::memcpy(c + i * ldc, tile + i * NR, nr * sizeof(float));
}

}  // namespace

PackedB pack_b(int64_t K, int64_t N, const float* b, int64_t ldb, bool trans_b, float alpha) {
  LOCUS_CHECK(K >= 0 && N >= 0, "pack_b: bad shape K=", K, " N=", N);
  PackedB p;
  p.K = K;
  p.N = N;
  const int64_t panels = ceil_div(N, NR);
  p.data.assign(panels * K * NR, 0.f);
  // Layout: panel j holds columns [16j, 16j + 16); inside it, row k's 16 values are contiguous.
  for (int64_t j = 0; j < panels; ++j) {
    float* dst = p.data.data() + j * K * NR;
    const int64_t n0 = j * NR, nn = std::min(NR, N - n0);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < nn; ++n) {
        const float v = trans_b ? b[(n0 + n) * ldb + k] : b[k * ldb + n0 + n];
        dst[k * NR + n] = alpha * v;
      }
  }
  return p;
}

namespace {

// Rows [m0, m1) x panels [p0, p1) of C over the reduction range [kb0, kb1) of B, in K blocks of
// (nearly) equal size of at most kMaxKC. The first block loads C only if `accumulate`; the epilogue
// (bias + activation) runs on the last block only, and only if `epilogue`.
void run_block(const Kernel& kern, const float* a, int64_t lda, const PackedB& b, int64_t m0,
               int64_t m1, int64_t p0, int64_t p1, int64_t kb0, int64_t kb1, float* c, int64_t ldc,
               const float* bias, const GemmEpilogue& act_ep, bool epilogue, bool accumulate) {
  const int64_t K = b.K, N = b.N, MR = kern.mr;
  const int64_t kspan = kb1 - kb0;
  const int64_t k_blocks = std::max<int64_t>(1, ceil_div(kspan, kMaxKC));
  const int64_t kc_step = std::max<int64_t>(1, ceil_div(kspan, k_blocks));
  for (int64_t off = 0; off < std::max<int64_t>(kspan, 1); off += kc_step) {
    const int64_t k0 = kb0 + off;
    const int64_t kc = std::min(kc_step, kspan - off);
    const bool load_c = accumulate || off > 0;
    const bool last_k = off + kc_step >= kspan;
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n0 = p * NR, nr = std::min(NR, N - n0);
      const float* w = b.data.data() + p * K * NR + k0 * NR;
      GemmEpilogue ep = act_ep;
      ep.bias = bias ? bias + n0 : nullptr;
      const GemmEpilogue* epp = (last_k && epilogue) ? &ep : nullptr;
      for (int64_t m = m0; m < m1; m += MR) {
        const int64_t mr = std::min(MR, m1 - m);
        const float* ap = a + m * lda + k0;
        float* cp = c + m * ldc + n0;
        if (nr == NR)
          kern.fn(mr, kc, ap, lda, w, cp, ldc, load_c, epp);
        else
          edge_tile(kern, mr, nr, kc, ap, lda, w, cp, ldc, load_c, epp);
      }
    }
  }
}

}  // namespace

void gemm_f32(int64_t M, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
              const float* bias, const Activation& act, bool accumulate) {
  const int64_t K = b.K, N = b.N;
  if (M <= 0 || N <= 0) return;
  const Kernel kern = select_kernel();
  const int64_t MR = kern.mr;
  const int64_t panels = ceil_div(N, NR);

  const GemmEpilogue act_ep = epilogue_for(act);
  const bool has_epilogue = bias != nullptr || act_ep.clamp;

  // Task grid: M blocks x N blocks. Split N too when M alone gives too few tasks per thread.
  const bool nested = omp_in_parallel();
  const int threads = nested ? 1 : omp_get_max_threads();
  const bool parallel = threads > 1 && 2.0 * double(M) * double(N) * double(K) >= kMinParallelFlops;
  int64_t mc = MR * kMTilesPerBlock;
  int64_t m_blocks = ceil_div(M, mc);
  int64_t panels_per_block = panels;
  if (parallel) {
    const int64_t want = 4 * int64_t(threads);
    if (m_blocks < want) {
      mc = std::max<int64_t>(MR, ceil_div(ceil_div(M, want), MR) * MR);
      m_blocks = ceil_div(M, mc);
    }
    if (m_blocks < want)
      panels_per_block = ceil_div(panels, std::min(panels, ceil_div(want, m_blocks)));
  }
  const int64_t n_blocks = ceil_div(panels, panels_per_block);
  const int64_t tasks = m_blocks * n_blocks;

  auto run_task = [&](int64_t t) {
    const int64_t mb = t / n_blocks, nb = t % n_blocks;
    const int64_t m0 = mb * mc, m1 = std::min(M, m0 + mc);
    const int64_t p0 = nb * panels_per_block, p1 = std::min(panels, p0 + panels_per_block);
    run_block(kern, a, lda, b, m0, m1, p0, p1, 0, K, c, ldc, bias, act_ep, has_epilogue, accumulate);
  };

  if (parallel && tasks > 1) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) run_task(t);
  } else {
    for (int64_t t = 0; t < tasks; ++t) run_task(t);
  }
}

void gemm_f32_tile(const float* a, int64_t lda, const PackedB& b, int64_t i0, int64_t i1, int64_t j0,
                   int64_t j1, int64_t k0, int64_t k1, float* c, int64_t ldc, const float* bias,
                   const Activation& act, bool accumulate) {
  LOCUS_CHECK(j0 % NR == 0 && j0 >= 0 && j1 <= b.N && 0 <= k0 && k0 <= k1 && k1 <= b.K,
              "gemm_f32_tile: bad range j=[", j0, ",", j1, ") k=[", k0, ",", k1, ") for K=", b.K,
              " N=", b.N);
  if (i1 <= i0 || j1 <= j0) return;
  const Kernel kern = select_kernel();
  const GemmEpilogue act_ep = epilogue_for(act);
  const bool epilogue = k1 == b.K && (bias != nullptr || act_ep.clamp);
  // Columns [j0, j1) are panels [j0/16, ceil(j1/16)); the last one is clipped to N by run_block, so
  // j1 must be N or a multiple of 16.
  LOCUS_CHECK(j1 == b.N || j1 % NR == 0, "gemm_f32_tile: j1=", j1, " is neither N nor panel-aligned");
  run_block(kern, a, lda, b, i0, i1, j0 / NR, ceil_div(j1, NR), k0, k1, c, ldc, bias, act_ep, epilogue,
            accumulate);
}

}  // namespace locus::kernels
