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
constexpr int64_t kMaxKC = 256;           // B panel block: 256 x 16 floats = 16 KiB
constexpr int64_t kMTilesPerBlock = 16;   // M block = 16 micro-tiles (96 rows for 6x16)
constexpr double kMinParallelFlops = 2e5; // below this, threading costs more than it saves
constexpr int64_t kMaxMR = 12;
// A larger than this is assumed to come from beyond L2 and is software-prefetched (gemm_prefetch_rows).
constexpr int64_t kPrefetchMinABytes = 512 * 1024;
// gemm_f32 prefetches a C it accumulates into (GemmPrefetch::c) from this size on (run_block's c_cold).
// Below it, the C of MobileNetV2's fused blocks (a band's output rows, accumulated chunk after
// chunk): there the prefetches found the rows in cache (paired, against prefetching every C:
// MobileNetV2 at batch 8 1.000 and 0.998, at 1 thread 0.995 and 1.000).
constexpr int64_t kPrefetchMinCBytes = 512 * 1024;
// An M block's rows of A beyond this are re-read from L3 by every N block (gemm_f32's task split).
constexpr int64_t kSplitNMinABytes = 256 * 1024;
// B streaming (stream_b): at most this many rows of A share each line of B, and B at least this large.
constexpr int64_t kStreamMaxRows = 64;
constexpr int64_t kStreamMinBBytes = 64 * 1024;
// A B at least this large is assumed to come from beyond the caches (a weight matrix read once per
// inference) also when many rows share it: the first row tile of every chunk then runs the _stream
// kernel, whose prefetches (64 rows ahead into L1, 1024 into L2) run on into the chunks after it.
// ResNet-50's 1x1 layers at 56x56 to 7x7 (14 of them): 6.47-6.55 -> 6.28-6.36 ms in all, 1 thread.
// (A streamed B, stream_b, runs the _stream kernel on every row tile: with only the first one
// prefetching, the 14x14 Winograd layers took 3.3-3.5 ms in all instead of 2.5-3.1.)
// On AVX2 (no _stream kernel there) the same B size makes the packed path's first row group of each
// chunk prefetch the next chunk's B into L2 (GemmConfig::wide_packed_prefetch, GemmPrefetch::b).
// ResNet-50 on a Zen 3 core, paired in one process: 1 thread 0.971 and 0.985 (its 7x7 3x3 layers
// 0.39-0.69 ms faster each, the strided 3x3 ones 0.2-0.4), 2 threads 0.998 and 0.991 (prefetching
// within a call only, not the next call's k rows: 0.985 and 1.005); MobileNetV2 level (1.005 and
// 0.999 at 1 thread, 1.003 at 2, 1.000 at batch 8).
constexpr int64_t kFirstTileStreamBytes = 512 * 1024;
// Packed A (GemmConfig::pack_a): rows are packed kPackRows at a time (a stack buffer of kPackRows x
// kMaxKC floats, 96 KiB: gemm_f32's whole row block, so B is not read twice for it), and only where
// a row tile meets at least kPackMinPanels full panels, so that one packing serves that many kernel
// calls. Measured on a Zen 3 core against the strided kernel (paired, one thread): 1.04-1.08x at
// N >= 96 (196x96x576, 784x128x512, 49x320x1280, 12544x16x96), 0.93-1.03x at N = 64 (4 panels).
constexpr int64_t kPackRows = 96;
constexpr int64_t kPackMinPanels = 6;

using Kernels = GemmConfig;

const Kernels& select_kernels() { return gemm_config(active_isa()); }

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Width of packed panel p (of `panels`) of a B with N columns: 16, or 8 for a last panel holding
// at most 8 columns.
int64_t panel_width(int64_t N, int64_t p, int64_t panels) {
  return p + 1 == panels && N - p * NR <= kGemmNarrowNR ? kGemmNarrowNR : NR;
}

// Rows of the next micro-tile when `left` rows remain for a kernel of MR rows: MR, except that a
// remainder under MR/2 is merged with the last full tile and the pair split in two near-equal tiles
// (49 rows with MR 6: 7 x 6, then 4 + 3 rather than 8 x 6 + 1), so every tile keeps enough
// independent accumulators to hide the FMA latency.
int64_t next_rows(int64_t left, int64_t MR) {
  if (left > MR && left < MR + (MR + 1) / 2) return (left + 1) / 2;
  return std::min(MR, left);
}

// One micro-tile whose N extent nr is less than the panel width pw: runs the kernel on a pw-wide
// stack tile.
void edge_tile(GemmMicroKernel fn, int64_t pw, int64_t mr, int64_t nr, int64_t kc, const float* a,
               int64_t lda, const float* w, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  alignas(32) float tile[kMaxMR * NR] = {};
  alignas(32) float bias[NR] = {};
  alignas(32) float res[kMaxMR * NR] = {};
  if (load_c)
    for (int64_t i = 0; i < mr; ++i) std::memcpy(tile + i * pw, c + i * ldc, nr * sizeof(float));
  Epilogue tep;
  if (ep) {
    tep = *ep;
    if (ep->bias) {
      std::memcpy(bias, ep->bias, nr * sizeof(float));
      tep.bias = bias;
    }
    if (ep->residual) {
      for (int64_t i = 0; i < mr; ++i) std::memcpy(res + i * pw, ep->residual + i * ep->ldr, nr * sizeof(float));
      tep.residual = res;
      tep.ldr = pw;
    }
  }
  fn(mr, 1, kc, a, lda, w, 0, tile, pw, load_c, ep ? &tep : nullptr);
  for (int64_t i = 0; i < mr; ++i) std::memcpy(c + i * ldc, tile + i * pw, nr * sizeof(float));
}

}  // namespace

const GemmConfig& gemm_config(Isa isa) {
  // AVX-512: runs of whole 12-row tiles in one call, A packed where a row tile meets 6+ panels, and
  // the prefetching forms, as on AVX2. On a Zen 4 core (2 vCPUs, 117 GFLOP/s), paired in one
  // process against one call per tile with A read in place: ResNet-50 0.982 and 0.991 at 1 thread,
  // 1.000 at 2; MobileNetV2 1.006 at 1 thread (level). With 64 KiB chunks of B as well: MobileNetV2
  // 1.013 (not taken).
  static const GemmConfig kAvx512{f32_gemm_12x32_avx512f, 12, NR, 2, f32_gemm_12x32_stream_avx512f,
                                  f32_gemm_12x24_avx512f, f32_gemm_12x8_avx2, 12, f32_gemm_12x32_packa_avx512f,
                                  f32_pack_a_12_avx512f, true, f32_gemm_12x32_prefetch_avx512f, 16 * 1024, 12,
                                  f32_gemm_12x32_packa_prefetch_avx512f};
  // AVX2: chunks of 64 KiB of B. On a Zen 3 core (L1d 32 KiB, L2 512 KiB), paired in one process
  // against 16 KiB: MobileNetV2 0.988-0.999 at 1 thread, 0.977-0.993 at 2; ResNet-50 0.980-0.989 at
  // 1 thread, 0.969-1.005 at 2; both 0.987 at batch 8 (unbounded chunks: level with 64 KiB).
  static const GemmConfig kAvx2{f32_gemm_6x16_avx2, 6, NR, 1, nullptr, f32_gemm_4x24_avx2, f32_gemm_12x8_avx2, 12,
                                f32_gemm_6x16_packa_avx2, f32_pack_a_6_avx2, true, f32_gemm_6x16_prefetch_avx2,
                                64 * 1024, 4, f32_gemm_6x16_packa_prefetch_avx2};
  static const GemmConfig kGeneric{f32_gemm_4x16_generic, 4, NR, 1, nullptr, nullptr, f32_gemm_4x8_generic, 4};
  switch (isa) {
    case Isa::Avx512: return kAvx512;
    case Isa::Avx2: return kAvx2;
    case Isa::Generic: break;
  }
  return kGeneric;
}

bool gemm_prefetch_a(int64_t M, int64_t K) {
  return double(M) * double(K) * sizeof(float) > double(kPrefetchMinABytes);
}

PackedB pack_b(int64_t K, int64_t N, const float* b, int64_t ldb, bool trans_b, float alpha) {
  LOCUS_CHECK(K >= 0 && N >= 0, "pack_b: bad shape K=", K, " N=", N);
  PackedB p;
  p.K = K;
  p.N = N;
  const int64_t panels = ceil_div(N, NR);
  const int64_t last = panels > 0 ? panel_width(N, panels - 1, panels) : 0;
  p.data.assign(panels > 0 ? ((panels - 1) * NR + last) * K : 0, 0.f);
  // Layout: panel j holds columns [16j, 16j + 16) (the last one pw = 8 or 16 wide) and starts at
  // j * K * 16; inside it, row k's pw values are contiguous.
  for (int64_t j = 0; j < panels; ++j) {
    const int64_t pw = panel_width(N, j, panels);
    float* dst = p.data.data() + j * K * NR;
    const int64_t n0 = j * NR, nn = std::min(NR, N - n0);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < nn; ++n) {
        const float v = trans_b ? b[(n0 + n) * ldb + k] : b[k * ldb + n0 + n];
        dst[k * pw + n] = alpha * v;
      }
  }
  return p;
}

namespace {

// Rows [m0, m1) x panels [p0, p1) of C over the reduction range [kb0, kb1) of B, in K blocks of
// (nearly) equal size of at most kMaxKC. The first block loads C only if `accumulate`; the epilogue
// (bias + activation) runs on the last block only, and only if `epilogue`. c_cold: a C to accumulate
// into comes from beyond L2 (the first block prefetches it).
void run_block(const Kernels& kern, const float* a, int64_t lda, const PackedB& b, int64_t m0,
               int64_t m1, int64_t p0, int64_t p1, int64_t kb0, int64_t kb1, float* c, int64_t ldc,
               const float* bias, const Epilogue& act_ep, bool epilogue, bool accumulate,
               bool prefetch_a, bool c_cold, const float* residual, int64_t ldr, bool stream = false,
               PackedARows* rows = nullptr) {
  const int64_t K = b.K, N = b.N, panels = ceil_div(N, NR);
  const GemmMicroKernel wide = stream && kern.stream ? kern.stream : kern.wide;
  const bool b_streams = double(b.data.size()) * sizeof(float) >= double(kFirstTileStreamBytes);
  const bool first_tile_streams = !stream && kern.stream && b_streams;
  const int64_t kspan = kb1 - kb0;
  const int64_t k_blocks = std::max<int64_t>(1, ceil_div(kspan, kMaxKC));
  const int64_t kc_step = std::max<int64_t>(1, ceil_div(kspan, k_blocks));
  // Whether packing A pays: the plain wide kernel runs and at least kPackMinPanels panels share
  // each packed tile.
  auto packing_pays = [&](int64_t sharing_panels) {
    return kern.pack_a && sharing_panels >= kPackMinPanels && !first_tile_streams && wide == kern.wide;
  };
  // Packed rows shared with the caller's other calls (PackedARows): used when the panels sharing
  // them repay a packing and they fit; `cached` when an earlier call packed these very rows.
  const bool shared_rows = rows && packing_pays(rows->panels) && (m1 - m0) * kspan + 8 <= rows->capacity;
  const bool cached = shared_rows && rows->a == a && rows->lda == lda && rows->i0 == m0 && rows->i1 == m1 &&
                      rows->k0 == kb0 && rows->k1 == kb1;
  if (shared_rows && !cached) *rows = {rows->buf, rows->capacity, rows->panels, a, lda, m0, m1, kb0, kb1};
  for (int64_t off = 0; off < std::max<int64_t>(kspan, 1); off += kc_step) {
    const int64_t k0 = kb0 + off;
    const int64_t kc = std::min(kc_step, kspan - off);
    const bool load_c = accumulate || off > 0;
    // C from the caller (accumulate, first k block) that comes from beyond L2 (c_cold: an in-place
    // residual, a Scan walk's later visit of a tile, written long before): the kernels that can
    // prefetch each next tile's rows of it (GemmPrefetch::c); later k blocks find C where this call
    // left it.
    // On a Zen 3 core, paired in one process, prefetching every C accumulated into: ResNet-50 0.978
    // and 0.991 at 1 thread (its in-place residual 1x1 convs 0.1-0.36 ms faster each), 1.003 and
    // 0.993 at 2; MobileNetV2 1.003 and 1.003 at 1 thread, 1.000 and 1.000 at 2, 1.010 and 1.009 at
    // batch 8, where its fused blocks' rows were still in cache (hence kPrefetchMinCBytes).
    const bool prefetch_c = c_cold && accumulate && off == 0;
    const bool last_k = off + kc_step >= kspan;
    Epilogue ep = act_ep;
    const Epilogue* epp = (last_k && epilogue) ? &ep : nullptr;
    // Full 16-wide panels [p0, full_end); the last panel of B is different when it is narrow or
    // ragged (fewer columns than its width).
    const int64_t last_pw = panel_width(N, panels - 1, panels);
    const bool last_special = last_pw != NR || N - (panels - 1) * NR != NR;
    const int64_t full_end = std::min(p1, last_special ? panels - 1 : panels);
    // A wide panel left without a partner, before a whole 8-wide last panel: both in one 16 + 8 tile.
    const bool with_narrow = kern.wide_narrow && full_end < p1 && last_pw == kGemmNarrowNR &&
                             N - (panels - 1) * NR == kGemmNarrowNR && full_end > p0 &&
                             (full_end - p0 - 1) % kern.tile_panels == 0;
    const int64_t pairs_end = with_narrow ? full_end - 1 : full_end;
    // Chunks of consecutive full panels whose k-block of B is at most GemmConfig::chunk_b_bytes
    // (half the L1; for AVX2 64 KiB, read from L2); per chunk, rows outer and one micro-kernel call
    // per row group for all the chunk's panels (the A rows stay in L1 across the panels and each
    // group of C rows is written as whole cache lines).
    // At least the kernel's own panels per register tile (two for the 12x32 AVX-512 kernel: 32 KiB
    // of B at kc = 256, which a 48 KiB L1 holds beside 12 rows of A).
    const int64_t chunk = std::max<int64_t>(kern.tile_panels,
                                            kern.chunk_b_bytes / (std::max<int64_t>(kc, 1) * NR * int64_t(sizeof(float))));
    // Packed A where a row tile meets enough panels (GemmConfig::pack_a): rows in groups of at
    // most kPackRows, each group's tiles packed once per k block, then every chunk of panels over
    // them. The packed rows sit in L2 like A itself, but each tile is read as one stream.
    const bool pack = shared_rows || packing_pays(pairs_end - p0);
    // With a B from beyond the caches (kFirstTileStreamBytes) and a kernel that can, the first row
    // group of every chunk prefetches the B the next call reads (GemmConfig::wide_packed_prefetch,
    // GemmPrefetch::b).
    const bool prefetch_b = pack && kern.wide_packed_prefetch && b_streams;
    alignas(64) float stack_pack[kPackRows * kMaxKC + 8];  // 96 KiB of stack
    for (int64_t g0 = m0, g1; g0 < m1; g0 = g1) {
      g1 = m1;
      // The group's packed rows: in the shared buffer (k block after k block; in each, tile after
      // tile, each k-major), or on the stack.
      float* const apack = shared_rows ? rows->buf + off * (m1 - m0) + (g0 - m0) * kc : stack_pack;
      if (pack) {
        int64_t mr;
        for (g1 = g0; g1 < m1 && g1 - g0 + (mr = next_rows(m1 - g1, kern.mr)) <= kPackRows; g1 += mr)
          if (!cached) kern.pack_a(mr, kc, a + g1 * lda + k0, lda, apack + (g1 - g0) * kc);
      }
      for (int64_t pc = p0; pc < pairs_end; pc += chunk) {
        const int64_t np = std::min(chunk, pairs_end - pc);
        const float* w = b.data.data() + pc * K * NR + k0 * NR;
        ep.bias = bias ? bias + pc * NR : nullptr;
        for (int64_t m = g0, mr; m < g1; m += mr) {
          mr = next_rows(m1 - m, kern.mr);
          // A run of whole tiles in one call where the kernel takes it; on the pass that prefetches
          // A (the first chunk), only with a kernel that prefetches within the run.
          const bool prefetching = !pack && prefetch_a && pc == p0;
          if (kern.multi_tile && (!prefetching || kern.wide_prefetch) && !(m == m0 && first_tile_streams))
            while (mr % kern.mr == 0 && m + mr < g1 && next_rows(m1 - m - mr, kern.mr) == kern.mr) mr += kern.mr;
          if (residual) ep.residual = residual + m * ldr + pc * NR, ep.ldr = ldr;
          if ((prefetch_b && m == g0) || (pack && prefetch_c && kern.wide_packed_prefetch)) {
            GemmPrefetch pf;
            pf.c = prefetch_c;
            // B of the next chunk at k0, else of this call's first chunk at the next k rows (the
            // next k block, or the rows a Scan walk's next visit of these columns reads); none at
            // the end of B.
            if (prefetch_b && m == g0)
              pf.b = pc + chunk < pairs_end ? w + chunk * K * NR
                     : k0 + kc < K          ? b.data.data() + p0 * K * NR + (k0 + kc) * NR
                                            : nullptr;
            kern.wide_packed_prefetch(mr, np, kc, apack + (m - g0) * kc, 0, w, K * NR, c + m * ldc + pc * NR, ldc,
                                      load_c, epp, pf);
            continue;
          }
          if (pack) {
            kern.wide_packed(mr, np, kc, apack + (m - g0) * kc, 0, w, K * NR, c + m * ldc + pc * NR, ldc, load_c, epp);
            continue;
          }
          if (prefetching && m + mr < m1)
            gemm_prefetch_rows(a + (m + mr) * lda, lda, std::min(kern.mr, m1 - m - mr), k0, kc);
          if (m == m0 && first_tile_streams) {
            kern.stream(mr, np, kc, a + m * lda + k0, lda, w, K * NR, c + m * ldc + pc * NR, ldc, load_c, epp);
            continue;
          }
          // Within a run of tiles: the next tile's rows of A and of C (GemmPrefetch::a, ::c).
          GemmPrefetch pf;
          pf.a = prefetching && mr > kern.mr;
          pf.c = prefetch_c && mr > kern.mr;
          if ((pf.a || pf.c) && kern.wide_prefetch)
            kern.wide_prefetch(mr, np, kc, a + m * lda + k0, lda, w, K * NR, c + m * ldc + pc * NR, ldc, load_c, epp,
                               pf);
          else
            wide(mr, np, kc, a + m * lda + k0, lda, w, K * NR, c + m * ldc + pc * NR, ldc, load_c, epp);
        }
      }
    }
    if (with_narrow) {
      const int64_t pw = full_end - 1, n0 = pw * NR;
      const float* w16 = b.data.data() + pw * K * NR + k0 * NR;
      const float* w8 = b.data.data() + (panels - 1) * K * NR + k0 * kGemmNarrowNR;
      ep.bias = bias ? bias + n0 : nullptr;
      const int64_t MR = kern.wide_narrow_mr;
      // Runs of whole tiles in one call (multi_tile). Without a wide pass before it (N = 24) this
      // pass reads A first, yet prefetching A tile by tile (one call per tile) measured 4-12% slower
      // on a Zen 3 core (3136 x 96..144 x 24, 12544 x 32 x 24) than the runs without it.
      for (int64_t m = m0, mr; m < m1; m += mr) {
        mr = next_rows(m1 - m, MR);
        if (kern.multi_tile)
          while (mr % MR == 0 && m + mr < m1 && next_rows(m1 - m - mr, MR) == MR) mr += MR;
        if (residual) ep.residual = residual + m * ldr + n0, ep.ldr = ldr;
        kern.wide_narrow(mr, kc, a + m * lda + k0, lda, w16, w8, c + m * ldc + n0, ldc, load_c, epp);
      }
    } else if (full_end < p1) {  // the narrow or ragged last panel
      const int64_t p = panels - 1, n0 = p * NR, nr = N - n0;
      const GemmMicroKernel fn = last_pw == NR ? wide : kern.narrow;
      const int64_t MR = last_pw == NR ? kern.mr : kern.narrow_mr;
      const float* w = b.data.data() + p * K * NR + k0 * last_pw;
      ep.bias = bias ? bias + n0 : nullptr;
      for (int64_t m = m0, mr; m < m1; m += mr) {
        mr = next_rows(m1 - m, MR);
        if (prefetch_a && full_end == p0 && m + mr < m1)
          gemm_prefetch_rows(a + (m + mr) * lda, lda, std::min(MR, m1 - m - mr), k0, kc);
        const float* ap = a + m * lda + k0;
        float* cp = c + m * ldc + n0;
        if (residual) ep.residual = residual + m * ldr + n0, ep.ldr = ldr;
        if (nr == last_pw)
          fn(mr, 1, kc, ap, lda, w, 0, cp, ldc, load_c, epp);
        else
          edge_tile(fn, last_pw, mr, nr, kc, ap, lda, w, cp, ldc, load_c, epp);
      }
    }
  }
}

// Whether rows [m0, m1) stream B: few rows share each line of B, and B is too large to stay in the
// caches from one use to the next (a weight matrix used once per inference, e.g. ResNet-50's 7x7
// layers at batch 1 or a Winograd layer's transformed weights). Then run_range walks it by panel pairs.
bool stream_b(const Kernels& kern, int64_t rows, const PackedB& b) {
  return kern.stream != nullptr && rows <= kStreamMaxRows &&
         double(b.data.size()) * sizeof(float) >= double(kStreamMinBBytes);
}

// run_block, or, when rows [m0, m1) stream B (stream_b), run_block over panels [p0, p1) one register
// tile's panels at a time, each over the whole reduction range before the next: every panel of B is
// then read as one contiguous stream, which the _stream kernel prefetches ahead (k blocks outermost
// would jump to another panel every kc rows). A (few rows) is re-read per tile from L1/L2.
void run_range(const Kernels& kern, const float* a, int64_t lda, const PackedB& b, int64_t m0, int64_t m1,
               int64_t p0, int64_t p1, int64_t kb0, int64_t kb1, float* c, int64_t ldc, const float* bias,
               const Epilogue& act_ep, bool epilogue, bool accumulate, bool prefetch_a, bool c_cold,
               const float* residual, int64_t ldr, PackedARows* rows = nullptr) {
  if (!stream_b(kern, m1 - m0, b)) {
    run_block(kern, a, lda, b, m0, m1, p0, p1, kb0, kb1, c, ldc, bias, act_ep, epilogue, accumulate, prefetch_a,
              c_cold, residual, ldr, false, rows);
    return;
  }
  for (int64_t q = p0; q < p1; q += kern.tile_panels)
    run_block(kern, a, lda, b, m0, m1, q, std::min(p1, q + kern.tile_panels), kb0, kb1, c, ldc, bias, act_ep,
              epilogue, accumulate, prefetch_a, c_cold, residual, ldr, true);
}

}  // namespace

void gemm_f32(int64_t M, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
              const float* bias, const Activation& act, bool accumulate, int threads, const float* residual,
              int64_t ldr) {
  const int64_t K = b.K, N = b.N;
  if (M <= 0 || N <= 0) return;
  const Kernels& kern = select_kernels();
  const int64_t MR = kern.mr;
  const bool prefetch_a = gemm_prefetch_a(M, K);
  const int64_t panels = ceil_div(N, NR);
  // A C to accumulate into larger than L2 comes from beyond it (an in-place residual); a smaller
  // one is presumed the caller's working rows (a fused block's band), still in cache.
  const bool c_cold = double(M) * double(N) * sizeof(float) > double(kPrefetchMinCBytes);

  const Epilogue act_ep = epilogue_for(act);
  const bool has_epilogue = bias != nullptr || act_ep.has_act() || residual != nullptr;

  // Task grid: M blocks x N blocks. Split N too when M alone gives too few tasks per thread.
  if (omp_in_parallel()) threads = 1;
  threads = std::max(threads, 1);
  const bool parallel = threads > 1 && 2.0 * double(M) * double(N) * double(K) >= kMinParallelFlops;
  // M blocks of at most kMTilesPerBlock tiles, equal to within a tile: 98 rows (a fused block's
  // band of 7 x 14 pixels) as 54 + 44, not 96 + a 2-row block of its own.
  int64_t m_blocks = ceil_div(M, MR * kMTilesPerBlock);
  int64_t mc = ceil_div(ceil_div(M, m_blocks), MR) * MR;
  m_blocks = ceil_div(M, mc);
  int64_t panels_per_block = panels;
  if (parallel) {
    const int64_t want = 4 * int64_t(threads);
    // Too few M blocks: split M further, or N. Every M block reads all of B and every N block all
    // of A, so split the dimension whose operand is smaller to re-read: N when B (K x N) is at
    // least as large as A (M x K). (ResNet-50's 7x7 layers at batch 1 have M = 49 and up to 9.4 MB
    // of B: splitting M into 12-row blocks read B five times per inference.)
    if (m_blocks < want && N < M) {
      mc = std::max<int64_t>(MR, ceil_div(ceil_div(M, want), MR) * MR);
      m_blocks = ceil_div(M, mc);
    }
    if (m_blocks < want) {
      // N blocks: enough for `want` tasks; but where an M block's rows of A are large (beyond
      // kSplitNMinABytes, half a Zen 3 L2: each N block reads them again from L3), only as many as
      // make the task count a multiple of the threads. ResNet-50's 3x3 convs at 7x7 (one 49-row
      // block, 0.9 MB of A) and 14x14 (three 66-row blocks of 0.6 MB) ran 2-8% faster at 2 threads
      // so (2 and 6 tasks instead of 8 and 9; paired, one process, Zen 3).
      int64_t nb = ceil_div(want, m_blocks);
      if (double(mc) * double(K) * sizeof(float) > double(kSplitNMinABytes))
        for (nb = 1; (m_blocks * nb) % threads != 0;) ++nb;
      panels_per_block = std::max<int64_t>(std::min(kern.tile_panels, panels), ceil_div(panels, std::min(panels, nb)));
    }
  }
  const int64_t n_blocks = ceil_div(panels, panels_per_block);
  const int64_t tasks = m_blocks * n_blocks;

  auto run_task = [&](int64_t t) {
    const int64_t mb = t / n_blocks, nb = t % n_blocks;
    const int64_t m0 = mb * mc, m1 = std::min(M, m0 + mc);
    const int64_t p0 = nb * panels_per_block, p1 = std::min(panels, p0 + panels_per_block);
    run_range(kern, a, lda, b, m0, m1, p0, p1, 0, K, c, ldc, bias, act_ep, has_epilogue, accumulate, prefetch_a,
              c_cold, residual, ldr);
  };

  if (parallel && tasks > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t t = 0; t < tasks; ++t) run_task(t);
  } else {
    for (int64_t t = 0; t < tasks; ++t) run_task(t);
  }
}

void gemm_f32_tile(const float* a, int64_t lda, const PackedB& b, int64_t i0, int64_t i1, int64_t j0,
                   int64_t j1, int64_t k0, int64_t k1, float* c, int64_t ldc, const float* bias,
                   const Activation& act, bool accumulate, bool prefetch_a, const float* residual, int64_t ldr,
                   PackedARows* rows) {
  LOCUS_CHECK(j0 % NR == 0 && j0 >= 0 && j1 <= b.N && 0 <= k0 && k0 <= k1 && k1 <= b.K,
              "gemm_f32_tile: bad range j=[", j0, ",", j1, ") k=[", k0, ",", k1, ") for K=", b.K,
              " N=", b.N);
  if (i1 <= i0 || j1 <= j0) return;
  const Kernels& kern = select_kernels();
  const Epilogue act_ep = epilogue_for(act);
  const bool epilogue = k1 == b.K && (bias != nullptr || act_ep.has_act() || residual != nullptr);
  // Columns [j0, j1) are panels [j0/16, ceil(j1/16)); the last one is clipped to N by run_block, so
  // j1 must be N or a multiple of 16.
  LOCUS_CHECK(j1 == b.N || j1 % NR == 0, "gemm_f32_tile: j1=", j1, " is neither N nor panel-aligned");
  run_range(kern, a, lda, b, i0, i1, j0 / NR, ceil_div(j1, NR), k0, k1, c, ldc, bias, act_ep, epilogue, accumulate,
            prefetch_a, /*c_cold=*/true, epilogue ? residual : nullptr, ldr, rows);
}

}  // namespace locus::kernels
