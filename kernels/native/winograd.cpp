// Winograd F(m x m, 3x3) driver (winograd.h; m = 4 or 2): weight transform and packing, and the
// per-block walk (input transform -> a^2 GEMMs -> output transform with the fused epilogue). Threads take whole
// blocks (each with its own scratch) when there are at least two blocks per thread, else they
// share each block: tiles of the transforms and the 36 GEMMs split between them.
#include "kernels/native/winograd.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "graph/error.h"
#include "kernels/native/cpu_features.h"

namespace locus::kernels {
namespace {

struct Fns {
  WinogradInputFn in;
  WinogradOutputFn out;
};

Fns fns_for(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return {winograd_input_tile_avx512f, winograd_output_tile_avx512f};
    case Isa::Avx2: return {winograd_input_tile_avx2, winograd_output_tile_avx2};
    case Isa::Generic: break;
  }
  return {winograd_input_tile_generic, winograd_output_tile_generic};
}

// Floats from one transformed matrix (xi) of a block to the next, for nt tiles of ch channels: whole
// 64-byte lines, an odd number of them. A tile's transform touches the same offset in all a^2
// matrices; with an even line stride those fall into few L1 sets (at nt = 12, ch = 64: 48 lines, so
// the 36 matrices share 4 set offsets, 9 lines per 8-way set) and evict each other. With an odd
// stride they fall into distinct sets. Measured on ResNet-50's 56x56x64 layers (one process, 1
// thread, 4 runs): 0.01-0.13 ms less per layer (of 1.1-1.3).
int64_t plane_stride(int64_t nt, int64_t ch) {
  constexpr int64_t kLine = 64 / sizeof(float);
  const int64_t lines = (nt * ch + kLine - 1) / kLine;
  return (lines | 1) * kLine;
}
int64_t per_block_floats(const WinogradConv& p) {
  return p.plan.alpha2() * (plane_stride(p.plan.block, p.C) + plane_stride(p.plan.block, p.OC));
}

bool whole_blocks(const WinogradConv& p, int nt) { return nt > 1 && p.plan.blocks >= 2 * nt; }

// Tiles [t0, t0 + nt) of the block in scratch (v: a^2 matrices nt x C, then m: a^2 matrices nt x OC,
// each plane_stride apart), the loops split over the calling team when `shared` (inside a parallel
// region), else run by this thread.
void run_block(const WinogradConv& p, const Fns& f, const float* in, const float* residual, float* out, int64_t t0,
               int64_t nt, float* v, bool shared) {
  const int64_t per_image = p.plan.tiles_h * p.plan.tiles_w;
  const int64_t kT = p.plan.m, a = p.plan.alpha(), kA = p.plan.alpha2();
  const int64_t vs = plane_stride(nt, p.C), ms = plane_stride(nt, p.OC);
  float* const m = v + kA * vs;
  const Epilogue act_ep = epilogue_for(p.act);
  auto input = [&](int64_t i) {
    const int64_t g = t0 + i, n = g / per_image, th = (g % per_image) / p.plan.tiles_w, tw = g % p.plan.tiles_w;
    WinogradInputTile t;
    t.m = int(kT);
    const float* img = in + n * p.H * p.W * p.C;
    for (int64_t r = 0; r < a; ++r)
      for (int64_t k = 0; k < a; ++k) {
        const int64_t ih = th * kT - p.PT + r, iw = tw * kT - p.PL + k;
        t.src[r * a + k] = ih >= 0 && ih < p.H && iw >= 0 && iw < p.W ? img + (ih * p.W + iw) * p.C : p.zeros.data();
      }
    t.dst = v + i * p.C;
    t.xi_stride = vs;
    t.channels = p.C;
    f.in(t);
  };
  auto gemm = [&](int64_t xi) {
    gemm_f32_tile(v + xi * vs, p.C, p.u[size_t(xi)], 0, nt, 0, p.OC, 0, p.C, m + xi * ms, p.OC, nullptr,
                  Activation{}, false);
  };
  auto output = [&](int64_t i) {
    const int64_t g = t0 + i, n = g / per_image, th = (g % per_image) / p.plan.tiles_w, tw = g % p.plan.tiles_w;
    WinogradOutputTile t;
    t.m = int(kT);
    t.src = m + i * p.OC;
    t.xi_stride = ms;
    t.channels = p.OC;
    t.bias = p.bias.data();
    t.ep = act_ep.has_act() ? &act_ep : nullptr;
    for (int64_t r = 0; r < kT; ++r)
      for (int64_t k = 0; k < kT; ++k) {
        const int64_t oh = th * kT + r, ow = tw * kT + k;
        const bool inside = oh < p.OH && ow < p.OW;
        const int64_t off = ((n * p.OH + oh) * p.OW + ow) * p.OC;
        t.dst[r * kT + k] = inside ? out + off : nullptr;
        t.residual[r * kT + k] = inside && residual ? residual + off : nullptr;
      }
    f.out(t);
  };
  if (shared) {
    // Every part dynamic: a thread on a slower vCPU takes fewer tiles (each tile's transform is the
    // same whoever runs it). ResNet-50's 14x14 F(2x2) layers at 2 threads, paired against static
    // transforms: -0.03 to -0.11 ms each in one run, level (+-0.005) in another.
#pragma omp for schedule(dynamic, 2)
    for (int64_t i = 0; i < nt; ++i) input(i);
#pragma omp for schedule(dynamic, 1)
    for (int64_t xi = 0; xi < kA; ++xi) gemm(xi);
#pragma omp for schedule(dynamic, 2)
    for (int64_t i = 0; i < nt; ++i) output(i);
  } else {
    for (int64_t i = 0; i < nt; ++i) input(i);
    for (int64_t xi = 0; xi < kA; ++xi) gemm(xi);
    for (int64_t i = 0; i < nt; ++i) output(i);
  }
}

}  // namespace

WinogradConv pack_winograd(int64_t N, int64_t H, int64_t W, int64_t C, int64_t OC, int64_t PT, int64_t PL,
                           int64_t OH, int64_t OW, const float* w_oihw, const float* bias, const Activation& act,
                           const schedule::WinogradPlan& plan, int threads) {
  LOCUS_CHECK(N >= 1 && H >= 1 && W >= 1 && C >= 1 && OC >= 1 && OH >= 1 && OW >= 1 && PT >= 0 && PL >= 0,
              "winograd: bad shape");
  const int64_t kT = plan.m, kA = plan.alpha2();
  LOCUS_CHECK((kT == 4 || kT == 2) && plan.block >= 1 && plan.tiles == N * ((OH + kT - 1) / kT) * ((OW + kT - 1) / kT),
              "winograd: the plan does not match the shape");
  WinogradConv p;
  p.N = N, p.H = H, p.W = W, p.C = C, p.OC = OC, p.OH = OH, p.OW = OW, p.PT = PT, p.PL = PL;
  p.plan = plan;
  p.act = act;
  p.threads = std::max(threads, 1);
  p.bias.assign(size_t(OC), 0.f);
  if (bias) std::copy(bias, bias + OC, p.bias.begin());
  p.zeros.assign(size_t(C), 0.f);
  // U = G g G^T in double. F(4x4, 3x3): G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
  // 1/24 -1/12 1/6; 0 0 1]; F(2x2, 3x3): G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
  static const double G4[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                  {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
  static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  const double(*G)[3] = kT == 4 ? G4 : G2;
  const int a = int(plan.alpha());
  std::vector<float> u(size_t(kA * C * OC));  // [xi][c][oc]
  for (int64_t o = 0; o < OC; ++o)
    for (int64_t c = 0; c < C; ++c) {
      const float* g = w_oihw + (o * C + c) * 9;
      double t[6][3];
      for (int i = 0; i < a; ++i)
        for (int k = 0; k < 3; ++k) t[i][k] = G[i][0] * g[k] + G[i][1] * g[3 + k] + G[i][2] * g[6 + k];
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j)
          u[size_t((i * a + j) * C * OC + c * OC + o)] = float(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
    }
  p.u.reserve(kA);
  for (int64_t xi = 0; xi < kA; ++xi) p.u.push_back(pack_b(C, OC, u.data() + xi * C * OC, OC, false));
  return p;
}

bool all_finite_f32(const float* x, int64_t n) {
  // exponent all ones: infinity or NaN; integer compares so that the loop vectorises
  const auto* u = reinterpret_cast<const uint32_t*>(x);
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= (u[i] & 0x7f800000u) == 0x7f800000u;
  return bad == 0;
}

int64_t winograd_scratch_floats(const WinogradConv& p) {
  return (whole_blocks(p, p.threads) ? p.threads : 1) * per_block_floats(p);
}

void winograd_conv_nhwc(const WinogradConv& p, const float* in, const float* residual, float* out, float* scratch) {
  const Fns f = fns_for(active_isa());
  const int nt = omp_in_parallel() ? 1 : p.threads;
  const int64_t T = p.plan.block, blocks = p.plan.blocks, per = per_block_floats(p);
  auto span = [&](int64_t b) { return std::min(T, p.plan.tiles - b * T); };
  if (whole_blocks(p, nt)) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t b = 0; b < blocks; ++b) {
      float* v = scratch + omp_get_thread_num() * per;
      const int64_t n = span(b);
      run_block(p, f, in, residual, out, b * T, n, v, false);
    }
    return;
  }
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t n = span(b);
      run_block(p, f, in, residual, out, b * T, n, scratch, true);
    }
    return;
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t n = span(b);
    run_block(p, f, in, residual, out, b * T, n, scratch, false);
  }
}

}  // namespace locus::kernels
