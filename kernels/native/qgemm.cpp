// Int8 GEMM driver (qgemm.h): packs W into 16-column, K-by-4 panels with the zero-point terms folded,
// then tiles Y into (M block x panel block) tasks run with OpenMP; each task loops over chunks of
// panels that fit in half the L1 and, per chunk, over row groups of the micro-kernel's MR rows.
// The whole K is reduced in one micro-kernel call (s32 accumulators, no K blocks). A ragged last panel
// is stored under a column mask by kernels that can (QGemmConfig::masked_tail), else through a tile.
#include "kernels/native/qgemm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "graph/error.h"
#include "kernels/native/qgemm_microkernel.h"

namespace locus::kernels {
namespace {

constexpr int64_t NR = kQGemmNR;
constexpr int64_t KU = kQGemmKU;
constexpr int64_t kMaxMR = 12;
constexpr int64_t kMTilesPerBlock = 16;
// Below this many ops (about 4 us on one VNNI core) threading costs more than it saves: 10x the
// fp32 driver's threshold, since an int8 op costs about a tenth of an fp32 flop here.
constexpr double kMinParallelOps = 2e6;
constexpr int64_t kChunkBBytes = 16 * 1024;
// W streaming (the stream kernel): at most this many rows share each line of W, and W at least this
// large (as in gemm.cpp: a weight matrix used once per inference past few rows; MobileNetV2's 7x7
// layers and its FC layer).
constexpr int64_t kStreamMaxRows = 64;
constexpr int64_t kStreamMinBBytes = 64 * 1024;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Rows of the next micro-tile (as gemm.cpp: a small remainder is merged with the last full tile and
// the pair split in two).
int64_t next_rows(int64_t left, int64_t MR) {
  if (left > MR && left < MR + (MR + 1) / 2) return (left + 1) / 2;
  return std::min(MR, left);
}

// A read in segments (qgemm_u8s8_rows_seg): kseg > 0 bytes per segment, segments ldseg bytes apart.
struct ASeg {
  int64_t kseg = 0, ldseg = 0;
};

// Row sums of A rows [0, rows) over the whole K (for the - w_zero[n] * rowsum[m] term).
void row_sums(const uint8_t* a, int64_t lda, int64_t rows, int64_t K, const ASeg& sg, int32_t* out) {
  const int64_t kseg = sg.kseg > 0 ? sg.kseg : K;
  for (int64_t i = 0; i < rows; ++i) {
    int32_t s = 0;
    for (int64_t j = 0; j * kseg < K; ++j) {
      const uint8_t* r = a + i * lda + j * sg.ldseg;
      for (int64_t k = 0; k < kseg; ++k) s += r[k];
    }
    out[i] = s;
  }
}

// Rows [m0, m1) x panels [p0, p1) of Y (A in segments when sg.kseg > 0: cfg.seg_kernel).
void run_block(const QGemmConfig& cfg, const uint8_t* a, int64_t lda, const PackedQB& b, int64_t m0, int64_t m1,
               int64_t p0, int64_t p1, uint8_t* y, int64_t ldy, const ASeg& sg = {}) {
  const int64_t K = b.K, N = b.N, panels = ceil_div(N, NR), pstride = b.Kp * NR;
  const bool ragged = N % NR != 0;
  // a kernel with masked_tail stores the ragged last panel itself (ep.last_mask), the others through a tile
  const int64_t full_end = std::min(p1, ragged && !cfg.masked_tail ? panels - 1 : panels);
  const uint16_t tail_mask = ragged ? uint16_t((1u << (N % NR)) - 1) : uint16_t(0xFFFF);
  const bool zw = !b.w_zero.empty();
  // an even number of panels, at least two: the VNNI kernel runs them in pairs
  const int64_t chunk = std::max<int64_t>(2, kChunkBBytes / std::max<int64_t>(pstride, 1) / 2 * 2);
  const QGemmMicroKernel kernel = cfg.stream_kernel && sg.kseg == 0 && m1 - m0 <= kStreamMaxRows &&
                                          int64_t(b.data.size()) >= kStreamMinBBytes
                                      ? cfg.stream_kernel
                                      : cfg.kernel;
  int32_t rs[kMaxMR];
  QEpilogue ep;
  ep.lo = b.lo;
  ep.hi = b.hi;
  ep.y_zero = b.y_zero;
  ep.s8_out = b.s8_out;
  ep.sat_narrow = b.sat_narrow;
  auto set_cols = [&](int64_t n0) {
    ep.bias = b.bias.data() + n0;
    ep.scale = b.scale.data() + n0;
    ep.w_zero = zw ? b.w_zero.data() + n0 : nullptr;
  };
  for (int64_t pc = p0; pc < full_end; pc += chunk) {
    const int64_t np = std::min(chunk, full_end - pc);
    set_cols(pc * NR);
    ep.last_mask = pc + np == panels ? tail_mask : uint16_t(0xFFFF);
    for (int64_t m = m0, mr; m < m1; m += mr) {
      mr = next_rows(m1 - m, cfg.mr);
      if (zw) row_sums(a + m * lda, lda, mr, K, sg, rs);
      ep.row_sums = zw ? rs : nullptr;
      if (sg.kseg > 0)
        cfg.seg_kernel(mr, np, K, sg.kseg, sg.ldseg, a + m * lda, lda, b.data.data() + pc * pstride, pstride,
                       y + m * ldy + pc * NR, ldy, ep);
      else
        kernel(mr, np, K, a + m * lda, lda, b.data.data() + pc * pstride, pstride, y + m * ldy + pc * NR, ldy, ep);
    }
  }
  if (full_end < p1) {  // the ragged last panel: through a 16-wide stack tile
    const int64_t p = panels - 1, n0 = p * NR, nr = N - n0;
    set_cols(n0);
    ep.last_mask = 0xFFFF;
    alignas(64) uint8_t tile[kMaxMR * NR];
    for (int64_t m = m0, mr; m < m1; m += mr) {
      mr = next_rows(m1 - m, cfg.mr);
      if (zw) row_sums(a + m * lda, lda, mr, K, sg, rs);
      ep.row_sums = zw ? rs : nullptr;
      cfg.kernel(mr, 1, K, a + m * lda, lda, b.data.data() + p * pstride, pstride, tile, NR, ep);
      for (int64_t i = 0; i < mr; ++i) std::memcpy(y + (m + i) * ldy + n0, tile + i * NR, nr);
    }
  }
}

}  // namespace

const QGemmConfig& qgemm_config(Isa isa) {
  static const QGemmConfig kVnni{qu8s8_gemm_12x32_avx512vnni, 12, NR, "qu8s8-gemm-12x32-avx512vnni", true,
                                 qu8s8_gemm_12x32_avx512vnni_seg, qu8s8_gemm_12x32_stream_avx512vnni};
  static const QGemmConfig kAvx2{qu8s8_gemm_4x16_avx2, 4, NR, "qu8s8-gemm-4x16-avx2"};
  static const QGemmConfig kGeneric{qu8s8_gemm_4x16_generic, 4, NR, "qu8s8-gemm-4x16-generic"};
  if (isa == Isa::Avx512 && cpu_has_avx512vnni()) return kVnni;
  if (has_avx2(isa)) return kAvx2;
  return kGeneric;
}

void check_quant_params(const QuantParams& q, int64_t N, const char* what) {
  auto good_scale = [](float s) { return std::isfinite(s) && s > 0.f; };
  LOCUS_CHECK(good_scale(q.a_scale), what, ": input scale ", q.a_scale, " is not a finite positive number");
  LOCUS_CHECK(good_scale(q.y_scale), what, ": output scale ", q.y_scale, " is not a finite positive number");
  LOCUS_CHECK(q.a_zero >= 0 && q.a_zero <= 255, what, ": input zero point ", q.a_zero, " is not a u8");
  LOCUS_CHECK(q.w_scale.size() == 1 || int64_t(q.w_scale.size()) == N, what, ": ", q.w_scale.size(),
              " weight scales for ", N, " output channels (want 1 or ", N, ")");
  for (float s : q.w_scale)
    LOCUS_CHECK(good_scale(s), what, ": weight scale ", s, " is not a finite positive number");
  LOCUS_CHECK(q.w_zero.empty() || q.w_zero.size() == 1 || int64_t(q.w_zero.size()) == N, what, ": ",
              q.w_zero.size(), " weight zero points for ", N, " output channels (want 1 or ", N, ")");
  for (int32_t z : q.w_zero) LOCUS_CHECK(z >= -128 && z <= 127, what, ": weight zero point ", z, " is not an s8");
  const int32_t tmin = q.s8_out ? -128 : 0, tmax = q.s8_out ? 127 : 255;
  LOCUS_CHECK(q.y_zero >= tmin && q.y_zero <= tmax, what, ": output zero point ", q.y_zero, " is outside [", tmin,
              ", ", tmax, "]");
  LOCUS_CHECK(tmin <= q.qmin && q.qmin <= q.qmax && q.qmax <= tmax, what, ": output clamp [", q.qmin, ", ", q.qmax,
              "] is empty or outside [", tmin, ", ", tmax, "]");
}

PackedQB pack_qgemm_b(int64_t K, int64_t N, const int8_t* w, int64_t ldw, bool trans_w, const int32_t* bias,
                      const QuantParams& q) {
  LOCUS_CHECK(K > 0 && N > 0, "pack_qgemm_b: bad shape K=", K, " N=", N);
  check_quant_params(q, N, "pack_qgemm_b");
  PackedQB p;
  p.K = K;
  p.N = N;
  p.Kp = ceil_div(K, KU) * KU;
  const int64_t panels = ceil_div(N, NR), Np = panels * NR;
  p.data.assign(panels * p.Kp * NR, 0);
  p.bias.assign(Np, 0);
  p.scale.assign(Np, 0.f);
  p.a_zero = q.a_zero;
  p.y_zero = q.y_zero;
  p.s8_out = q.s8_out;
  p.lo = float(q.qmin - q.y_zero);
  p.hi = float(q.qmax - q.y_zero);
  bool any_zw = false;
  for (int32_t z : q.w_zero) any_zw |= z != 0;
  if (any_zw) p.w_zero.assign(Np, 0);
  const int64_t za = q.a_zero;
  for (int64_t n = 0; n < N; ++n) {
    int8_t* panel = p.data.data() + (n / NR) * p.Kp * NR;
    int64_t colsum = 0;
    for (int64_t k = 0; k < K; ++k) {
      const int8_t v = trans_w ? w[n * ldw + k] : w[k * ldw + n];
      panel[(k / KU) * KU * NR + (n % NR) * KU + k % KU] = v;
      colsum += v;
    }
    const int64_t zw = q.w_zero.empty() ? 0 : q.w_zero[q.w_zero.size() == 1 ? 0 : n];
    const int64_t t = (bias ? int64_t(bias[n]) : 0) - za * colsum + K * za * zw;
    LOCUS_CHECK(t >= std::numeric_limits<int32_t>::min() && t <= std::numeric_limits<int32_t>::max(),
                "pack_qgemm_b: the folded bias of channel ", n, " (", t, ") overflows s32");
    p.bias[n] = int32_t(t);
    p.scale[n] = requant_multiplier(q.a_scale, q.w_scale[q.w_scale.size() == 1 ? 0 : n], q.y_scale);
    if (any_zw) p.w_zero[n] = int32_t(zw);
  }
  p.sat_narrow = saturating_narrow_ok(p.scale.data(), Np, q.qmin, q.qmax, q.s8_out);
  return p;
}

void qgemm_u8s8_rows(int64_t i0, int64_t i1, const uint8_t* a, int64_t lda, const PackedQB& b, void* y,
                     int64_t ldy) {
  if (i1 <= i0 || b.N <= 0) return;
  run_block(qgemm_config(active_isa()), a, lda, b, i0, i1, 0, ceil_div(b.N, NR), static_cast<uint8_t*>(y), ldy);
}

bool qgemm_has_seg(Isa isa) { return qgemm_config(isa).seg_kernel != nullptr; }

void qgemm_u8s8_rows_seg(int64_t i0, int64_t i1, const uint8_t* a, int64_t lda, int64_t kseg, int64_t ldseg,
                         const PackedQB& b, void* y, int64_t ldy) {
  const QGemmConfig& cfg = qgemm_config(active_isa());
  LOCUS_CHECK(cfg.seg_kernel && cfg.masked_tail, "qgemm_u8s8_rows_seg: ", cfg.name, " has no segmented form");
  LOCUS_CHECK(kseg > 0 && kseg % KU == 0 && b.K % kseg == 0, "qgemm_u8s8_rows_seg: segments of ", kseg,
              " bytes do not divide K = ", b.K, " in groups of ", KU);
  if (i1 <= i0) return;
  run_block(cfg, a, lda, b, i0, i1, 0, ceil_div(b.N, NR), static_cast<uint8_t*>(y), ldy, ASeg{kseg, ldseg});
}

void qgemm_u8s8(int64_t M, const uint8_t* a, int64_t lda, const PackedQB& b, void* y, int64_t ldy, int threads) {
  const int64_t K = b.K, N = b.N;
  if (M <= 0 || N <= 0) return;
  const QGemmConfig& cfg = qgemm_config(active_isa());
  uint8_t* yb = static_cast<uint8_t*>(y);
  const int64_t MR = cfg.mr, panels = ceil_div(N, NR);
  if (omp_in_parallel()) threads = 1;
  threads = std::max(threads, 1);
  const bool parallel = threads > 1 && 2.0 * double(M) * double(N) * double(K) >= kMinParallelOps;
  int64_t mc = MR * kMTilesPerBlock, m_blocks = ceil_div(M, mc), panels_per_block = panels;
  if (parallel) {
    const int64_t want = 4 * int64_t(threads);
    if (m_blocks < want) {
      mc = std::max<int64_t>(MR, ceil_div(ceil_div(M, want), MR) * MR);
      m_blocks = ceil_div(M, mc);
    }
    if (m_blocks < want) {
      panels_per_block = ceil_div(panels, std::min(panels, ceil_div(want, m_blocks)));
      if (panels_per_block > 1) panels_per_block += panels_per_block % 2;  // whole pairs of panels
    }
  }
  const int64_t n_blocks = ceil_div(panels, panels_per_block), tasks = m_blocks * n_blocks;
  auto run_task = [&](int64_t t) {
    const int64_t mb = t / n_blocks, nb = t % n_blocks;
    const int64_t m0 = mb * mc, m1 = std::min(M, m0 + mc);
    const int64_t p0 = nb * panels_per_block, p1 = std::min(panels, p0 + panels_per_block);
    run_block(cfg, a, lda, b, m0, m1, p0, p1, yb, ldy);
  };
  if (parallel && tasks > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t t = 0; t < tasks; ++t) run_task(t);
  } else {
    for (int64_t t = 0; t < tasks; ++t) run_task(t);
  }
}

}  // namespace locus::kernels
