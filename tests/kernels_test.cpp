// Native NHWC kernels against naive references written here (double accumulation), on ragged
// shapes. GEMM and convolution run once per ISA the CPU supports (generic, avx2) via
// set_isa_override.
//
// Tolerance: an output that sums terms t_i passes if |got - want| <= 1e-4 * (sum |t_i| + 1e-3),
// i.e. 1e-4 relative to the magnitude of the sum (float accumulation of up to ~1200 terms).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/native/activation.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/elementwise.h"
#include "kernels/native/gemm.h"
#include "kernels/native/gemm_microkernel.h"
#include "kernels/native/pool2d_nhwc.h"
#include "tests/isa_util.h"
#include "tests/test_support.h"

namespace locus::kernels {
namespace {

using test::random_floats;

constexpr double kRelTol = 1e-4;

Activation relu() { return {ActKind::Relu, 0.f, 0.f}; }
Activation clip(float lo, float hi) { return {ActKind::Clip, lo, hi}; }

double act_ref(const Activation& a, double x) {
  if (a.kind == ActKind::Relu) return x > 0 ? x : 0;
  if (a.kind == ActKind::Clip) return std::min(std::max(x, double(a.lo)), double(a.hi));
  return x;
}

// Compares got[i] with want[i], scale[i] = sum of |terms| of output i.
void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<double>& scale, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = kRelTol * (scale[i] + 1e-3);
    if (!(std::fabs(got[i] - want[i]) <= tol)) {
      ADD_FAILURE() << what << ": element " << i << " got " << got[i] << " want " << want[i]
                    << " (tol " << tol << ")";
      if (++bad >= 5) return;
    }
  }
}

// ---- ISA parameterisation -------------------------------------------------------------------

using test::supported_isas;

using test::IsaTest;

using test::isa_param_name;

TEST(CpuFeatures, OverrideSelectsIsa) {
  set_isa_override(Isa::Generic);
  EXPECT_EQ(active_isa(), Isa::Generic);
  set_isa_override(Isa::Avx512);
  EXPECT_EQ(active_isa(), detected_isa());  // clamped to what the CPU has
  set_isa_override(Isa::Avx2);
  EXPECT_EQ(active_isa(), has_avx2(detected_isa()) ? Isa::Avx2 : Isa::Generic);
  clear_isa_override();
}

// ---- GEMM -----------------------------------------------------------------------------------

struct GemmCase {
  int64_t M, N, K;
  bool trans_b = false;
  float alpha = 1.f;
  bool bias = false;
  Activation act;
  bool accumulate = false;
  int64_t pad = 0;  // extra elements on lda / ldb / ldc
  int threads = 1;
};

std::string describe(const GemmCase& c) {
  return "gemm threads=" + std::to_string(c.threads) + " M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) + " K=" +
         std::to_string(c.K) + (c.trans_b ? " transB" : "") + " alpha=" + std::to_string(c.alpha) +
         (c.bias ? " bias" : "") + " act=" + std::to_string(int(c.act.kind)) +
         (c.accumulate ? " accumulate" : "") + " pad=" + std::to_string(c.pad);
}

void run_gemm_case(const GemmCase& c, uint32_t seed) {
  const int64_t lda = c.K + c.pad, ldc = c.N + c.pad;
  const int64_t ldb = (c.trans_b ? c.K : c.N) + c.pad;
  const auto a = random_floats(c.M * lda + 1, seed);
  const auto b = random_floats((c.trans_b ? c.N : c.K) * ldb + 1, seed + 1);
  const auto bias = random_floats(c.N, seed + 2);
  auto cbuf = random_floats(c.M * ldc + 1, seed + 3);
  const std::vector<float> c0 = cbuf;

  std::vector<double> want(c.M * c.N), scale(c.M * c.N);
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < c.N; ++n) {
      double s = 0, sa = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double bv = c.trans_b ? b[n * ldb + k] : b[k * ldb + n];
        const double t = double(a[m * lda + k]) * c.alpha * bv;
        s += t;
        sa += std::fabs(t);
      }
      if (c.accumulate) s += c0[m * ldc + n], sa += std::fabs(c0[m * ldc + n]);
      if (c.bias) s += bias[n], sa += std::fabs(bias[n]);
      want[m * c.N + n] = act_ref(c.act, s);
      scale[m * c.N + n] = sa;
    }

  const PackedB pb = pack_b(c.K, c.N, b.data(), ldb, c.trans_b, c.alpha);
  gemm_f32(c.M, a.data(), lda, pb, cbuf.data(), ldc, c.bias ? bias.data() : nullptr, c.act,
           c.accumulate, c.threads);

  std::vector<float> got(c.M * c.N);
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < c.N; ++n) got[m * c.N + n] = cbuf[m * ldc + n];
  expect_close(got, want, scale, describe(c));
  // Padding columns of C and the element past the end are untouched.
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = c.N; n < ldc; ++n)
      ASSERT_EQ(cbuf[m * ldc + n], c0[m * ldc + n]) << describe(c) << ": wrote past N";
  ASSERT_EQ(cbuf.back(), c0.back()) << describe(c) << ": wrote past the end";
}

class GemmTest : public IsaTest {};

TEST_P(GemmTest, RaggedShapesAllOptions) {
  const int64_t sizes[] = {1, 5, 17, 33, 67, 130};
  int i = 0;
  for (int64_t M : sizes)
    for (int64_t N : sizes)
      for (int64_t K : sizes) {
        GemmCase c;
        c.M = M, c.N = N, c.K = K;
        c.trans_b = i % 2 == 1;
        c.alpha = (i % 3 == 2) ? 0.5f : 1.f;
        c.bias = i % 4 != 3;
        c.act = i % 3 == 0 ? Activation{} : i % 3 == 1 ? relu() : clip(-0.5f, 0.75f);
        c.accumulate = i % 5 == 4;
        c.pad = i % 7 == 0 ? 3 : 0;
        run_gemm_case(c, 100 + i);
        ++i;
        if (HasFailure()) return;
      }
}

TEST_P(GemmTest, LongKBlocksWithAccumulateAndEpilogue) {
  // K > 256 splits into K blocks: bias and activation must be applied once, after the last one.
  for (int64_t K : {257, 600, 1100}) {
    run_gemm_case({37, 45, K, false, 1.f, true, clip(-1.f, 1.f), true}, 7);
    run_gemm_case({70, 16, K, true, 2.f, true, relu(), false, 1}, 8);
  }
}

TEST_P(GemmTest, StreamedWeights) {
  // At most 64 rows and a B of at least 64 KiB: on AVX-512 the driver walks panel pairs over the
  // whole K with the prefetching kernel (gemm.cpp, stream_b). Every row count the split gives, an
  // odd panel count, a narrow ragged last panel, accumulation and K over one k block.
  for (int64_t M : {1, 13, 49, 64})
    run_gemm_case({M, 70, 700, false, 1.f, true, clip(0.f, 6.f), M == 13}, 500 + int(M));
  run_gemm_case({49, 512, 300, true, 1.f, false, relu()}, 570);
  // More rows than that with a B of at least 512 KiB: the first row tile of each chunk runs the
  // prefetching kernel (kFirstTileStreamBytes), the others the plain one; K over one k block, an
  // odd panel count and a narrow last panel.
  run_gemm_case({150, 520, 300, false, 1.f, true, clip(0.f, 6.f), true}, 571);
  run_gemm_case({97, 456, 290, true, 1.f, true, relu()}, 572);
}

TEST_P(GemmTest, MobileNetShapes) {
  run_gemm_case({56 * 56, 144, 24, false, 1.f, true, clip(0.f, 6.f)}, 11);
  run_gemm_case({7 * 7, 320, 960, false, 1.f, true, Activation{}}, 12);
  run_gemm_case({1, 1000, 1280, true, 1.f, true, Activation{}}, 13);
}

TEST_P(GemmTest, PanelWidthsAndRowSplits) {
  // N % 16 of 0, 8 (a full narrow 8-wide last panel), 1..7 (ragged narrow) and 9..15 (ragged wide);
  // M with every remainder modulo 6 and 12 (the row-group splits of both AVX2 kernels); K below,
  // at and above one k block, so multi-panel calls, the chunking of B and A prefetch all run.
  int i = 0;
  for (int64_t N : {8, 16, 24, 29, 40, 45, 56, 96})
    for (int64_t M : {7, 13, 19, 49})
      for (int64_t K : {16, 300}) {
        run_gemm_case({M, N, K, false, 1.f, i % 2 == 0, i % 3 ? clip(0.f, 6.f) : Activation{}, i % 4 == 3}, 300 + i);
        ++i;
        if (HasFailure()) return;
      }
  // Large enough for A to be prefetched (M x K x 4 > 512 KiB).
  run_gemm_case({3001, 24, 48, false, 1.f, true, relu()}, 399);
}

TEST_P(GemmTest, ThreadedTaskSplits) {
  // gemm_f32 on 2 and 3 threads: M split (many rows, few columns), N split into 4 tasks per thread
  // (small A), and N split into only as many blocks as make the tasks a multiple of the threads
  // (an M block's rows of A over 256 KiB: one block of 49 rows, three of 66), with ragged panels.
  int i = 0;
  for (int threads : {2, 3})
    for (const GemmCase& shape : {GemmCase{3001, 40, 70}, GemmCase{49, 100, 130}, GemmCase{49, 100, 1400},
                                  GemmCase{196, 72, 1100}, GemmCase{1, 1000, 300}}) {
      GemmCase c = shape;
      c.bias = i % 2 == 0, c.act = i % 3 ? relu() : Activation{}, c.accumulate = i % 4 == 1, c.threads = threads;
      run_gemm_case(c, 800 + i);
      ++i;
      if (HasFailure()) return;
    }
}

TEST_P(GemmTest, ZeroK) {
  // K = 0: C = act(bias), or act(C + bias) when accumulating.
  run_gemm_case({5, 19, 0, false, 1.f, true, relu(), false}, 21);
  run_gemm_case({5, 19, 0, false, 1.f, true, Activation{}, true}, 22);
}

TEST_P(GemmTest, CalledInsideParallelRegion) {
  const int64_t M = 40, N = 24, K = 30;
  const auto a = random_floats(M * K, 31), b = random_floats(K * N, 32);
  const PackedB pb = pack_b(K, N, b.data(), N, false);
  std::vector<float> want(M * N);
  gemm_f32(M, a.data(), K, pb, want.data(), N, nullptr, {});
  std::vector<std::vector<float>> outs(4, std::vector<float>(M * N));
#pragma omp parallel for num_threads(2)
  for (int t = 0; t < 4; ++t) gemm_f32(M, a.data(), K, pb, outs[t].data(), N, nullptr, {});
  for (const auto& o : outs) EXPECT_EQ(o, want);
}

INSTANTIATE_TEST_SUITE_P(Isa, GemmTest, ::testing::ValuesIn(supported_isas()), isa_param_name);

// One AVX2 micro-kernel call on its own: mr rows of A (k count kc, row stride lda), C of `cols`
// columns before the call (row stride ldc, 5 floats of padding), a bias and a residual, and which
// parts of the epilogue run, all chosen from the case number i.
struct TileCase {
  int64_t mr, kc, cols, lda, ldc, ldr;
  std::vector<float> a, bias, res, c0;
  bool load_c, with_bias, with_res, clamp;
  // The epilogue the kernel gets (nullptr when no part of it runs).
  const Epilogue* epilogue(Epilogue& ep) const {
    ep.bias = with_bias ? bias.data() : nullptr;
    ep.residual = with_res ? res.data() : nullptr;
    ep.ldr = ldr;
    ep.clamp = clamp, ep.lo = -0.5f, ep.hi = 0.75f;
    return with_bias || with_res || clamp ? &ep : nullptr;
  }
};

// seeds: of A, the bias, the residual and C.
TileCase tile_case(int64_t mr, int64_t kc, int64_t cols, int i, uint32_t sa, uint32_t sb, uint32_t sr, uint32_t sc) {
  TileCase t{mr, kc, cols, kc + 3, cols + 5, cols + 2, {}, {}, {}, {}, i % 2 == 1, i % 3 != 0, i % 4 >= 2, i % 5 < 3};
  t.a = random_floats(mr * t.lda, sa);
  t.bias = random_floats(cols, sb);
  t.res = random_floats(mr * t.ldr, sr);
  t.c0 = random_floats(mr * t.ldc, sc);
  return t;
}

// c (C after the call) against the product written out here, weight(k, n) being B's entry at row k,
// column n; and C's padding columns untouched.
template <class Weight>
void expect_tile(const TileCase& t, const std::vector<float>& c, const Weight& weight, const std::string& what) {
  std::vector<float> got;
  std::vector<double> want, scale;
  for (int64_t r = 0; r < t.mr; ++r)
    for (int64_t n = 0; n < t.cols; ++n) {
      double sum = t.load_c ? t.c0[r * t.ldc + n] : 0.0, sa = std::fabs(sum);
      for (int64_t k = 0; k < t.kc; ++k) {
        const double v = double(t.a[r * t.lda + k]) * weight(k, n);
        sum += v, sa += std::fabs(v);
      }
      if (t.with_bias) sum += t.bias[n], sa += std::fabs(t.bias[n]);
      if (t.with_res) sum += t.res[r * t.ldr + n], sa += std::fabs(t.res[r * t.ldr + n]);
      if (t.clamp) sum = std::min(0.75, std::max(-0.5, sum));
      got.push_back(c[r * t.ldc + n]), want.push_back(sum), scale.push_back(sa);
    }
  expect_close(got, want, scale, what);
  for (int64_t r = 0; r < t.mr; ++r)
    for (int64_t n = t.cols; n < t.ldc; ++n) ASSERT_EQ(c[r * t.ldc + n], t.c0[r * t.ldc + n]) << what << ": wrote past the tile";
}

// One ISA's multi-tile GEMM kernels (GemmConfig::multi_tile) and their packer: MR rows per tile.
struct TileKernels {
  int64_t MR;
  GemmMicroKernel wide, packed;
  GemmMicroKernelPrefetch prefetch, packed_prefetch;
  void (*pack)(int64_t mr, int64_t kc, const float* a, int64_t lda, float* dst);
};

// The kernels on their own, against the product written out here: the strided one, its
// A-prefetching form and the packed-A one (pack + packed; its form prefetching B and C and the
// strided form prefetching C, with or without A, must give the same bits as the plain ones), every
// row count in `rows` (1..MR and runs of whole tiles with a ragged or whole last one), k counts
// around the packer's 8-wide transpose, 1 and 3 panels, with and without loading C, and each
// epilogue part (bias, residual, clamp).
void check_tile_kernels(const TileKernels& kn, const std::vector<int64_t>& rows) {
  constexpr int64_t NR = kGemmNR, kSlack = 8;
  int i = 0;
  for (int64_t mr : rows)
    for (int64_t kc : {1, 5, 8, 9, 16, 37})
      for (int64_t np : {1, 3})
        for (int variant : {0, 1, 2}) {  // strided, strided prefetching, packed
          const bool packed = variant == 2;
          const TileCase t = tile_case(mr, kc, np * NR, i, 900 + i, 902 + i, 903 + i, 904 + i);
          const auto w = random_floats(np * kc * NR, 901 + i);
          const float* a = t.a.data();
          // Packed: tile after tile (MR rows, the last mr % MR), each k-major.
          std::vector<float> pa(mr * kc + kSlack, -7.f);
          for (int64_t r0 = 0; r0 < mr; r0 += kn.MR) {
            const int64_t rows_here = std::min<int64_t>(kn.MR, mr - r0);
            kn.pack(rows_here, kc, a + r0 * t.lda, t.lda, pa.data() + r0 * kc);
            for (int64_t k = 0; k < kc; ++k)
              for (int64_t r = 0; r < rows_here; ++r)
                ASSERT_EQ(pa[r0 * kc + k * rows_here + r], a[(r0 + r) * t.lda + k])
                    << "pack rows=" << rows_here << " kc=" << kc;
          }
          std::vector<float> c = t.c0;
          Epilogue ep;
          const Epilogue* epp = t.epilogue(ep);
          if (packed) {
            kn.packed(mr, np, kc, pa.data(), 0, w.data(), kc * NR, c.data(), t.ldc, t.load_c, epp);
            // The form that also prefetches another B block (the driver's next chunk) and the next
            // tile's rows of C computes the same bits, with or without a block to prefetch, with or
            // without C.
            const auto next = random_floats(np * kc * NR, 905 + i);
            for (const float* pb : {next.data(), static_cast<const float*>(nullptr)})
              for (bool pc : {false, true}) {
                std::vector<float> c2 = t.c0;
                Epilogue ep2;
                kn.packed_prefetch(mr, np, kc, pa.data(), 0, w.data(), kc * NR, c2.data(), t.ldc, t.load_c,
                                   t.epilogue(ep2), GemmPrefetch{pb, pc});
                ASSERT_EQ(c2, c) << "prefetching mr=" << mr << " kc=" << kc << " np=" << np
                                 << (pb ? " B" : " (no B to prefetch)") << (pc ? " and C" : "");
              }
          } else if (variant == 1) {
            kn.prefetch(mr, np, kc, a, t.lda, w.data(), kc * NR, c.data(), t.ldc, t.load_c, epp,
                        GemmPrefetch{nullptr, false, true});
          } else {
            kn.wide(mr, np, kc, a, t.lda, w.data(), kc * NR, c.data(), t.ldc, t.load_c, epp);
            // The prefetching form computes the same bits prefetching the next tile's rows of C,
            // alone or with those of A.
            for (bool pa_too : {false, true}) {
              std::vector<float> c2 = t.c0;
              Epilogue ep2;
              kn.prefetch(mr, np, kc, a, t.lda, w.data(), kc * NR, c2.data(), t.ldc, t.load_c, t.epilogue(ep2),
                          GemmPrefetch{nullptr, true, pa_too});
              ASSERT_EQ(c2, c) << "prefetching C" << (pa_too ? " and A" : "") << " mr=" << mr << " kc=" << kc
                               << " np=" << np;
            }
          }
          expect_tile(t, c, [&](int64_t k, int64_t n) { return w[(n / NR) * kc * NR + k * NR + n % NR]; },
                      std::string(packed ? "packed" : variant ? "prefetching" : "strided") + " mr=" +
                          std::to_string(mr) + " kc=" + std::to_string(kc) + " np=" + std::to_string(np));
          ++i;
          if (::testing::Test::HasFailure()) return;
        }
}

// The AVX2 6x16 kernels: every row count 1..6 and runs of 12, 13 and 17 rows.
TEST(GemmAvx2Tile, StridedAndPackedAgainstNaive) {
  if (!has_avx2(detected_isa())) GTEST_SKIP() << "this CPU has no AVX2";
  check_tile_kernels({6, f32_gemm_6x16_avx2, f32_gemm_6x16_packa_avx2, f32_gemm_6x16_prefetch_avx2,
                      f32_gemm_6x16_packa_prefetch_avx2, f32_pack_a_6_avx2},
                     {1, 2, 3, 4, 5, 6, 12, 13, 17});
}

// The AVX-512 12x32 kernels (two panels per tile; np = 3 ends with a single one): every row count
// 1..12 (the packer's second transpose from 9 rows on) and runs of 24, 25 and 31 rows.
TEST(GemmAvx512Tile, StridedAndPackedAgainstNaive) {
  if (detected_isa() != Isa::Avx512) GTEST_SKIP() << "this CPU has no AVX-512F";
  check_tile_kernels({12, f32_gemm_12x32_avx512f, f32_gemm_12x32_packa_avx512f, f32_gemm_12x32_prefetch_avx512f,
                      f32_gemm_12x32_packa_prefetch_avx512f, f32_pack_a_12_avx512f},
                     {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 24, 25, 31});
}

// A 16 + 8 tile (a 16-wide panel beside the 8-wide last one) against the product written out here:
// every row count in `rows` (one tile, runs of whole tiles with a whole or ragged last one), several
// k counts, with and without loading C, and each epilogue part.
void check_wide_narrow(GemmMicroKernel16x8 fn, const std::vector<int64_t>& rows, const std::string& name) {
  int i = 0;
  for (int64_t mr : rows)
    for (int64_t kc : {1, 5, 16, 37}) {
      const TileCase t = tile_case(mr, kc, 24, i, 950 + i, 953 + i, 954 + i, 955 + i);
      const auto w16 = random_floats(kc * 16, 951 + i), w8 = random_floats(kc * 8, 952 + i);
      std::vector<float> c = t.c0;
      Epilogue ep;
      fn(mr, kc, t.a.data(), t.lda, w16.data(), w8.data(), c.data(), t.ldc, t.load_c, t.epilogue(ep));
      expect_tile(t, c, [&](int64_t k, int64_t n) { return n < 16 ? w16[k * 16 + n] : w8[k * 8 + n - 16]; },
                  name + " mr=" + std::to_string(mr) + " kc=" + std::to_string(kc));
      ++i;
      if (::testing::Test::HasFailure()) return;
    }
}

// f32_gemm_4x24_avx2: rows 1..4, runs of 8, 9 and 13.
TEST(GemmAvx2Tile, WideWithNarrowAgainstNaive) {
  if (!has_avx2(detected_isa())) GTEST_SKIP() << "this CPU has no AVX2";
  check_wide_narrow(f32_gemm_4x24_avx2, {1, 2, 3, 4, 5, 8, 9, 13}, "4x24");
}

// f32_gemm_12x24_avx512f: rows 1..12 (some), runs of 24, 25 and 31.
TEST(GemmAvx512Tile, WideWithNarrowAgainstNaive) {
  if (detected_isa() != Isa::Avx512) GTEST_SKIP() << "this CPU has no AVX-512F";
  check_wide_narrow(f32_gemm_12x24_avx512f, {1, 5, 9, 12, 13, 24, 25, 31}, "12x24");
}

TEST_P(GemmTest, AccumulatesIntoCBeyondL2) {
  // A C of more than 512 KiB to accumulate into: gemm_f32 prefetches it tile by tile (packed A at 200
  // columns, strided at 32; two k blocks at K = 300).
  run_gemm_case({700, 200, 40, false, 1.f, true, relu(), true}, 11);
  run_gemm_case({4200, 32, 20, true, 1.f, false, clip(-0.5f, 0.5f), true}, 12);
  run_gemm_case({700, 200, 300, false, 1.f, true, {}, true}, 13);
}

TEST_P(GemmTest, PackedRowGroupsAcrossPanelsAndKBlocks) {
  // At least 6 full panels, so the AVX2 and AVX-512 drivers pack A: row counts over one and two
  // 96-row groups with every remainder the tile split gives, K in one and two k blocks, a ragged
  // last panel.
  int i = 0;
  for (int64_t N : {96, 100, 200})
    for (int64_t M : {1, 7, 49, 97, 200})
      for (int64_t K : {3, 16, 300}) {
        run_gemm_case({M, N, K, i % 2 == 1, 1.f, i % 3 != 0, i % 2 ? relu() : clip(-0.5f, 0.5f), i % 4 == 3, i % 5 == 0 ? 2 : 0},
                      700 + i);
        ++i;
        if (HasFailure()) return;
      }
}

TEST_P(GemmTest, TilesOverKRangesWithStreamedB) {
  // A B of at least 512 KiB (1100 x 130 floats: the AVX2 and AVX-512 packed paths prefetch the next
  // call's B, the next chunk's or these panels' next k rows), covered by gemm_f32_tile calls over
  // three k ranges (72 rows, as the Scan plans of ResNet-50's 7x7 1x1 layers take; a range over two
  // k blocks; the rest) and two column ranges (7 full panels, then 18 columns with a ragged last
  // panel): bias and ReLU after the last range only.
  const int64_t M = 49, K = 1100, N = 130;
  const auto a = random_floats(M * K, 81), b = random_floats(K * N, 82), bias = random_floats(N, 83);
  const PackedB pb = pack_b(K, N, b.data(), N, false);
  ASSERT_GE(pb.data.size() * sizeof(float), size_t(512 * 1024));
  std::vector<float> got(M * N, 9.f);
  const int64_t kb[] = {0, 72, 600, K}, jb[] = {0, 112, N};
  for (int j = 0; j < 2; ++j)
    for (int r = 0; r < 3; ++r)
      gemm_f32_tile(a.data(), K, pb, 0, M, jb[j], jb[j + 1], kb[r], kb[r + 1], got.data(), N, bias.data(), relu(), r > 0);
  std::vector<double> want(M * N), scale(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double sum = bias[n], sa = std::fabs(bias[n]);
      for (int64_t k = 0; k < K; ++k) {
        const double t = double(a[m * K + k]) * b[k * N + n];
        sum += t, sa += std::fabs(t);
      }
      want[m * N + n] = act_ref(relu(), sum), scale[m * N + n] = sa;
    }
  expect_close(got, want, scale, "gemm_f32_tile over k ranges, streamed B");
}

// ---- Convolution ----------------------------------------------------------------------------

Conv2dShape conv_shape(int64_t N, int64_t H, int64_t W, int64_t C, int64_t OC, int64_t K,
                       int64_t S, int64_t pt, int64_t pl, int64_t pb, int64_t pr, int64_t D = 1,
                       int64_t G = 1) {
  Conv2dShape s;
  s.N = N, s.H = H, s.W = W, s.C = C, s.OC = OC;
  s.KH = s.KW = K, s.SH = s.SW = S, s.DH = s.DW = D, s.G = G;
  s.PT = pt, s.PL = pl, s.PB = pb, s.PR = pr;
  s.OH = (H + pt + pb - D * (K - 1) - 1) / S + 1;
  s.OW = (W + pl + pr - D * (K - 1) - 1) / S + 1;
  return s;
}

// Packs with a tiling buffer of buffer_entries (0: none), checks that only G = 1 unpadded 1x1 convs,
// strided or not, get a plan, and returns whether this one did.
bool run_conv_case(const Conv2dShape& s, const Activation& act, ConvPath want_path,
                   const std::string& what, uint32_t seed, int64_t buffer_entries = 0,
                   schedule::TileOrder order = schedule::TileOrder::Scan, int threads = 2) {
  const int64_t cg = s.C / s.G, ocg = s.OC / s.G;
  const auto in = random_floats(s.N * s.H * s.W * s.C, seed);
  const auto w = random_floats(s.OC * cg * s.KH * s.KW, seed + 1);
  const auto bias = random_floats(s.OC, seed + 2);

  std::vector<double> want(s.N * s.OH * s.OW * s.OC), scale(want.size());
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t oh = 0; oh < s.OH; ++oh)
      for (int64_t ow = 0; ow < s.OW; ++ow)
        for (int64_t oc = 0; oc < s.OC; ++oc) {
          const int64_t g = oc / ocg;
          double acc = bias[oc], sa = std::fabs(bias[oc]);
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t kh = 0; kh < s.KH; ++kh)
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                const int64_t ih = oh * s.SH - s.PT + kh * s.DH;
                const int64_t iw = ow * s.SW - s.PL + kw * s.DW;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                const double t = double(in[((n * s.H + ih) * s.W + iw) * s.C + g * cg + c]) *
                                 w[((oc * cg + c) * s.KH + kh) * s.KW + kw];
                acc += t;
                sa += std::fabs(t);
              }
          const int64_t o = ((n * s.OH + oh) * s.OW + ow) * s.OC + oc;
          want[o] = act_ref(act, acc);
          scale[o] = sa;
        }

  const PackedConv2d p = pack_conv2d(s, w.data(), bias.data(), act, buffer_entries, order, threads);
  EXPECT_EQ(int(p.path), int(want_path)) << what;
  const bool unpadded_1x1 = s.KH == 1 && s.KW == 1 && !(s.PT || s.PL || s.PB || s.PR);
  const bool strided = s.SH != 1 || s.SW != 1;
  if (p.scan) {
    EXPECT_TRUE(buffer_entries > 0 && unpadded_1x1 && s.G == 1) << what;
    EXPECT_EQ(p.scan->plan.shape.M, s.N * s.OH * s.OW) << what;
    // the gathered pixels (strided), then per thread one tile of A plus 8 floats for its packed rows
    EXPECT_EQ(conv2d_scratch_floats(p), (strided ? s.N * s.OH * s.OW * s.C : 0) +
                                            p.scan->plan.threads * (p.scan->plan.m * p.scan->plan.k + 8))
        << what;
  }
  const int64_t scratch_n = conv2d_scratch_floats(p);
  constexpr int64_t kGuard = 64;
  std::vector<float> scratch(scratch_n + kGuard, 12345.f);
  std::vector<float> out(want.size() + kGuard, -777.f);
  conv2d_nhwc(p, in.data(), out.data(), scratch.data());
  for (int64_t i = 0; i < kGuard; ++i) {
    EXPECT_EQ(scratch[scratch_n + i], 12345.f) << what << ": scratch overrun";
    EXPECT_EQ(out[want.size() + i], -777.f) << what << ": output overrun";
    if (::testing::Test::HasFailure()) return p.scan != nullptr;
  }
  out.resize(want.size());
  expect_close(out, want, scale, what);
  return p.scan != nullptr;
}

class ConvTest : public IsaTest {};

TEST_P(ConvTest, Pointwise) {
  run_conv_case(conv_shape(2, 5, 7, 17, 33, 1, 1, 0, 0, 0, 0), relu(), ConvPath::Pointwise,
                "pointwise", 1);
  run_conv_case(conv_shape(1, 14, 14, 96, 24, 1, 1, 0, 0, 0, 0), {}, ConvPath::Pointwise,
                "pointwise-projection", 2);
}

TEST_P(ConvTest, Depthwise) {
  run_conv_case(conv_shape(1, 9, 11, 37, 37, 3, 1, 1, 1, 1, 1, 1, 37), clip(0.f, 6.f),
                ConvPath::Depthwise, "dw3x3 s1 p1", 3);
  run_conv_case(conv_shape(2, 10, 9, 24, 24, 3, 2, 1, 1, 1, 1, 1, 24), relu(),
                ConvPath::Depthwise, "dw3x3 s2 p1", 4);
  run_conv_case(conv_shape(1, 10, 10, 19, 19, 3, 2, 0, 0, 1, 1, 1, 19), {}, ConvPath::Depthwise,
                "dw3x3 s2 pads 0,0,1,1", 5);
  run_conv_case(conv_shape(1, 12, 13, 20, 20, 5, 1, 4, 4, 4, 4, 2, 20), clip(-0.3f, 0.3f),
                ConvPath::Depthwise, "dw5x5 dilation 2", 6);
  run_conv_case(conv_shape(1, 11, 9, 8, 8, 7, 1, 3, 3, 3, 3, 1, 8), {}, ConvPath::Depthwise,
                "dw7x7 (49 taps, two passes)", 7);
  run_conv_case(conv_shape(1, 4, 4, 5, 5, 3, 1, 2, 2, 2, 2, 1, 5), relu(), ConvPath::Depthwise,
                "dw with pads wider than the input interior", 8);
  run_conv_case(conv_shape(1, 28, 28, 144, 144, 3, 2, 0, 0, 1, 1, 1, 144), clip(0.f, 6.f),
                ConvPath::Depthwise, "dw mobilenet s2", 9);
}

// Depthwise on ragged channel counts (every 16/32/48/64 block and masked tail of the AVX-512
// kernel, the 16/8/tail blocks of the AVX2 one), strides 1 and 2, 3x3 (the sliding-window form on
// interior runs of many lengths) and 5x5, symmetric and one-sided padding, N = 2.
TEST_P(ConvTest, DepthwiseRaggedChannels) {
  uint32_t seed = 100;
  int i = 0;
  for (int64_t C : {1, 7, 15, 16, 17, 33, 100, 144})
    for (int64_t K : {3, 5})
      for (int64_t S : {1, 2}) {
        const int64_t W = std::vector<int64_t>{5, 12, 19, 30}[i % 4], H = 7 + i % 3;
        const int64_t pad = K / 2;
        // every third case pads only bottom/right (TF "SAME" with stride 2)
        const Conv2dShape s = i % 3 == 2 ? conv_shape(2, H, W, C, C, K, S, 0, 0, pad, pad, 1, C)
                                         : conv_shape(2, H, W, C, C, K, S, pad, pad, pad, pad, 1, C);
        const Activation act = i % 2 ? clip(0.f, 6.f) : Activation{};
        const std::string what = "dw C=" + std::to_string(C) + " k" + std::to_string(K) + " s" + std::to_string(S) +
                                 " " + std::to_string(H) + "x" + std::to_string(W);
        run_conv_case(s, act, ConvPath::Depthwise, what, seed++);
        ++i;
        if (HasFailure()) return;
      }
}

// The direct path (small C * KH * KW, G = 1, no dilation) against the reference: C 1..4, OC
// 8..40 (one and two 32-wide blocks, 16-wide and masked tails), odd image sizes, strides 1 and 2,
// kernels 3, 5 and 7, symmetric, asymmetric and no padding, bias always, activation in turn.
// Over 64 taps only C <= 4 with at most 160 taps is direct (C = 2, 3 with 7x7: the ResNet stem's 147;
// C = 3, 4 with 5x5); C = 4 with 7x7 (196) must stay on im2col + GEMM.
TEST_P(ConvTest, DirectSmallInputDepth) {
  uint32_t seed = 200;
  int i = 0;
  for (int64_t K : {3, 5, 7})
    for (int64_t C : {1, 2, 3, 4})
      for (int64_t OC : {8, 16, 24, 32, 40}) {
        const int64_t S = 1 + i % 2, H = 9 + 2 * (i % 4), W = 7 + 2 * (i % 5);
        const int64_t p = K / 2;
        Conv2dShape s;
        switch (i % 3) {
          case 0: s = conv_shape(1 + i % 2, H, W, C, OC, K, S, p, p, p, p); break;
          case 1: s = conv_shape(1, H, W, C, OC, K, S, p, p - 1, p - 1, p); break;  // asymmetric
          default: s = conv_shape(1, H, W, C, OC, K, S, 0, 0, 0, 0); break;          // no padding
        }
        const Activation act = i % 3 == 0 ? clip(0.f, 6.f) : i % 3 == 1 ? relu() : Activation{};
        const ConvPath want = C * K * K <= 64 || (C <= 4 && C * K * K <= 160) ? ConvPath::Direct : ConvPath::General;
        const std::string what = "direct C=" + std::to_string(C) + " OC=" + std::to_string(OC) + " k" +
                                 std::to_string(K) + " s" + std::to_string(S) + " " + std::to_string(H) + "x" +
                                 std::to_string(W) + " pads#" + std::to_string(i % 3);
        run_conv_case(s, act, want, what, seed++);
        ++i;
        if (HasFailure()) return;
      }
  // The RGB stem at full size: long interior runs, one border column.
  run_conv_case(conv_shape(1, 224, 224, 3, 32, 3, 2, 1, 1, 1, 1), clip(0.f, 6.f), ConvPath::Direct,
                "stem 224x224x3->32 s2", 299);
  // ResNet-50's stem (7x7 s2, pads 3: the kc = 21 form) on a smaller image, and a 5x5 with 16 channels
  // (K = 400) that must stay on im2col.
  run_conv_case(conv_shape(1, 45, 38, 3, 64, 7, 2, 3, 3, 3, 3), relu(), ConvPath::Direct, "stem 7x7 s2 C=3 OC=64",
                298);
  // Rows split over 3 threads (a pair meeting in the middle of its rows, and one thread alone), and
  // 2 images over 5 threads.
  run_conv_case(conv_shape(1, 45, 38, 3, 64, 7, 2, 3, 3, 3, 3), relu(), ConvPath::Direct,
                "stem 7x7 s2 C=3 OC=64, 3 threads", 296, 0, schedule::TileOrder::Scan, 3);
  run_conv_case(conv_shape(2, 13, 12, 3, 16, 3, 1, 1, 1, 1, 1), relu(), ConvPath::Direct,
                "3x3 s1 C=3 N=2, 5 threads", 295, 0, schedule::TileOrder::Scan, 5);
  run_conv_case(conv_shape(1, 11, 10, 16, 24, 5, 1, 2, 2, 2, 2), relu(), ConvPath::General, "5x5 C=16", 297);
}

TEST_P(ConvTest, General) {
  run_conv_case(conv_shape(1, 17, 17, 3, 32, 3, 2, 1, 1, 1, 1), clip(0.f, 6.f), ConvPath::Direct,
                "stem 3x3 s2 C=3", 10);
  run_conv_case(conv_shape(1, 16, 16, 3, 32, 3, 2, 0, 0, 1, 1), clip(0.f, 6.f), ConvPath::Direct,
                "stem 3x3 s2 pads 0,0,1,1", 11);
  run_conv_case(conv_shape(2, 40, 40, 8, 20, 3, 1, 1, 1, 1, 1), relu(), ConvPath::General,
                "3x3 many im2col blocks", 12);
  run_conv_case(conv_shape(1, 9, 8, 6, 10, 3, 1, 1, 0, 2, 1), {}, ConvPath::Direct,
                "3x3 asymmetric pads 1,0,2,1 (C*KH*KW = 54: direct)", 13);
  run_conv_case(conv_shape(1, 8, 8, 64, 40, 3, 1, 1, 1, 1, 1), {}, ConvPath::General,
                "3x3 K=576", 14);
  // Two im2col blocks of 49 pixels x K = 1485 (over kIm2colShareMinFloats): each block's im2col is
  // split between the 2 threads (24 + 25 rows), the second block starting at pixel 49.
  run_conv_case(conv_shape(2, 13, 13, 165, 67, 3, 2, 1, 1, 1, 1), relu(), ConvPath::General,
                "3x3 s2 K=1485, im2col shared by the threads", 15);
}

TEST_P(ConvTest, RunsWithPlannedThreadsNotOpenMpSetting) {
  // Packed for 1 thread, run while OpenMP is set to 8: the conv runs with its planned count and stays
  // inside a scratch of exactly conv2d_scratch_floats (run_conv_case guards the end). Before the
  // count was planned, im2col indexed per-thread slices by omp_get_thread_num() up to 7 and wrote
  // past a workspace sized for 1 (17 im2col blocks here, enough for 8 threads to share).
  const int saved = omp_get_max_threads();
  omp_set_num_threads(8);
  run_conv_case(conv_shape(2, 60, 60, 8, 20, 3, 1, 1, 1, 1, 1), relu(), ConvPath::General,
                "3x3 packed for 1 thread, OpenMP 8", 90, 0, schedule::TileOrder::Scan, 1);
  run_conv_case(conv_shape(2, 60, 60, 8, 20, 3, 1, 1, 1, 1, 1), relu(), ConvPath::General,
                "3x3 packed for 2 threads, OpenMP 8", 91, 0, schedule::TileOrder::Scan, 2);
  omp_set_num_threads(saved);
}

TEST_P(ConvTest, Grouped) {
  run_conv_case(conv_shape(1, 9, 10, 8, 12, 3, 1, 1, 1, 1, 1, 1, 2), relu(), ConvPath::General,
                "grouped G=2", 15);
  run_conv_case(conv_shape(2, 11, 9, 16, 8, 3, 2, 1, 1, 1, 1, 1, 4), {}, ConvPath::General,
                "grouped G=4 s2", 16);
  run_conv_case(conv_shape(1, 7, 7, 6, 12, 3, 1, 1, 1, 1, 1, 1, 6), {}, ConvPath::General,
                "depthwise multiplier 2 (G=C, OC=2C)", 17);
  run_conv_case(conv_shape(1, 6, 5, 8, 20, 1, 1, 0, 0, 0, 0, 1, 2), relu(), ConvPath::General,
                "grouped 1x1 G=2", 18);
}

TEST_P(ConvTest, OneByOneVariants) {
  run_conv_case(conv_shape(1, 9, 9, 16, 24, 1, 2, 0, 0, 0, 0), relu(), ConvPath::General,
                "1x1 stride 2", 19);
  run_conv_case(conv_shape(2, 10, 7, 16, 24, 1, 3, 0, 0, 0, 0, 1, 4), {}, ConvPath::General,
                "1x1 stride 3 grouped", 20);
  run_conv_case(conv_shape(1, 5, 6, 7, 9, 1, 1, 1, 0, 0, 2), relu(), ConvPath::Direct,
                "1x1 padded (C = 7: direct)", 21);
}

// Strided unpadded 1x1 convs (ResNet-50's downsampling shortcuts) through the planned kernel: the
// strided pixels are gathered into scratch, then pointwise_scan_f32 runs with M = N*OH*OW. Ragged
// shapes, strides 2 and 3 (also unequal), a buffer small enough to split K (k < K) and a large one,
// every order family. Grouped strided 1x1 stays on the per-row GEMM (no plan), and so does one
// for which the planner finds no tile.
TEST_P(ConvTest, StridedOneByOneThroughPlan) {
  Conv2dShape uneven = conv_shape(2, 9, 11, 13, 20, 1, 1, 0, 0, 0, 0);
  uneven.SH = 3, uneven.SW = 2, uneven.OH = (9 - 1) / 3 + 1, uneven.OW = (11 - 1) / 2 + 1;
  const struct {
    Conv2dShape s;
    Activation act;
    const char* what;
  } cases[] = {
      {conv_shape(1, 9, 9, 16, 24, 1, 2, 0, 0, 0, 0), relu(), "1x1 s2 9x9"},
      {conv_shape(2, 11, 7, 37, 53, 1, 2, 0, 0, 0, 0), clip(-0.5f, 0.75f), "1x1 s2 ragged N=2"},
      {conv_shape(2, 10, 13, 21, 19, 1, 3, 0, 0, 0, 0), {}, "1x1 s3 ragged"},
      {conv_shape(1, 28, 28, 64, 128, 1, 2, 0, 0, 0, 0), relu(), "1x1 s2 downsample 28x28x64->128"},
      {conv_shape(1, 15, 13, 200, 40, 1, 2, 0, 0, 0, 0), clip(0.f, 6.f), "1x1 s2 K=200"},
      {conv_shape(1, 1, 1, 5, 7, 1, 2, 0, 0, 0, 0), {}, "1x1 s2 on a 1x1 input"},
      {uneven, relu(), "1x1 stride 3x2"},
  };
  // S = 4000 holds the kernel's preferred minimum tile (24 x 16, k 64) but not K = 200 with it:
  // k < K there.
  uint32_t seed = 40;
  for (int64_t S : {int64_t(4000), int64_t(32768)})
    for (schedule::TileOrder order : {schedule::TileOrder::Scan, schedule::TileOrder::Row, schedule::TileOrder::Col})
      for (const auto& c : cases) {
        const std::string what = std::string(c.what) + " S=" + std::to_string(S) + " " + schedule::tile_order_name(order);
        EXPECT_TRUE(run_conv_case(c.s, c.act, ConvPath::General, what, seed++, S, order)) << what << ": no plan";
        if (HasFailure()) return;
      }
  const Conv2dShape big_k = cases[4].s;
  const auto w = random_floats(big_k.OC * big_k.C, 61);
  const PackedConv2d split = pack_conv2d(big_k, w.data(), nullptr, {}, 4000);
  ASSERT_NE(split.scan, nullptr);
  EXPECT_LT(split.scan->plan.k, big_k.C) << split.scan->plan.describe();
  // grouped: no plan, same results
  EXPECT_FALSE(run_conv_case(conv_shape(2, 10, 7, 16, 24, 1, 3, 0, 0, 0, 0, 1, 4), {}, ConvPath::General,
                             "1x1 s3 grouped with a buffer", 60, 32768));
  // a buffer too small for any tile (the planner refuses S < 3): plain GEMM, no scratch, same results
  EXPECT_FALSE(run_conv_case(cases[1].s, cases[1].act, ConvPath::General, "1x1 s2 S=2", 70, 2));
  EXPECT_FALSE(run_conv_case(conv_shape(1, 9, 7, 80, 40, 1, 1, 0, 0, 0, 0), relu(), ConvPath::Pointwise,
                             "pointwise S=2", 71, 2));
}

// conv2d_nhwc(p) run once serially (first), and by 4 callers in a parallel region of 2 threads, each
// with its own scratch of conv2d_scratch_floats(p) (second: their 4 outputs of n_out floats).
std::pair<std::vector<float>, std::vector<std::vector<float>>> run_serially_and_in_parallel_region(
    const PackedConv2d& p, const std::vector<float>& in, int64_t n_out) {
  const int64_t per = conv2d_scratch_floats(p);
  std::vector<float> want(n_out), scratch(per);
  conv2d_nhwc(p, in.data(), want.data(), scratch.data());
  std::vector<std::vector<float>> outs(4, std::vector<float>(n_out));
  std::vector<std::vector<float>> bufs(4, std::vector<float>(per));
#pragma omp parallel for num_threads(2)
  for (int t = 0; t < 4; ++t) conv2d_nhwc(p, in.data(), outs[t].data(), bufs[t].data());
  return {want, outs};
}

TEST_P(ConvTest, StridedOneByOnePlannedInsideParallelRegion) {
  // Inside a parallel region the gather and the planned kernel run serially; each caller passes
  // its own scratch of conv2d_scratch_floats(p).
  const Conv2dShape s = conv_shape(2, 13, 11, 24, 40, 1, 2, 0, 0, 0, 0);
  const auto in = random_floats(s.N * s.H * s.W * s.C, 62), w = random_floats(s.OC * s.C, 63);
  const PackedConv2d p = pack_conv2d(s, w.data(), nullptr, relu(), 4000);
  ASSERT_NE(p.scan, nullptr);
  const int64_t n_out = s.N * s.OH * s.OW * s.OC;
  const auto [want, outs] = run_serially_and_in_parallel_region(p, in, n_out);
  // serial vs threaded walks may split the rows differently: equal up to rounding
  for (const auto& o : outs)
    for (int64_t i = 0; i < n_out; ++i) ASSERT_NEAR(o[i], want[i], 1e-5f * (1.f + std::fabs(want[i]))) << i;
}

TEST_P(ConvTest, CalledInsideParallelRegion) {
  // Inside a parallel region conv2d_nhwc runs serially and needs scratch for one thread only.
  const Conv2dShape s = conv_shape(1, 12, 12, 8, 16, 3, 1, 1, 1, 1, 1);
  const auto in = random_floats(s.H * s.W * s.C, 25), w = random_floats(s.OC * s.C * 9, 26);
  const PackedConv2d p = pack_conv2d(s, w.data(), nullptr, relu());
  const auto [want, outs] = run_serially_and_in_parallel_region(p, in, s.OH * s.OW * s.OC);
  for (const auto& o : outs) EXPECT_EQ(o, want);
}

INSTANTIATE_TEST_SUITE_P(Isa, ConvTest, ::testing::ValuesIn(supported_isas()), isa_param_name);

// ---- Pooling --------------------------------------------------------------------------------

Pool2dShape pool_shape(int64_t N, int64_t H, int64_t W, int64_t C, int64_t K, int64_t S,
                       int64_t pt, int64_t pl, int64_t pb, int64_t pr, bool ceil_mode,
                       int64_t D = 1) {
  Pool2dShape s;
  s.N = N, s.H = H, s.W = W, s.C = C, s.KH = s.KW = K, s.SH = s.SW = S, s.DH = s.DW = D;
  s.PT = pt, s.PL = pl, s.PB = pb, s.PR = pr;
  auto out = [&](int64_t in, int64_t p) {
    const int64_t span = in + p - D * (K - 1) - 1;
    return (ceil_mode ? (span + S - 1) / S : span / S) + 1;
  };
  s.OH = out(H, pt + pb);
  s.OW = out(W, pl + pr);
  return s;
}

// Reference pooling: max over in-input taps; average over in-input taps divided by the count of
// taps inside the input (or inside input + explicit pads when count_include_pad).
std::vector<double> pool_ref(const Pool2dShape& s, const std::vector<float>& in, bool is_max) {
  std::vector<double> out(s.N * s.OH * s.OW * s.C);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t oh = 0; oh < s.OH; ++oh)
      for (int64_t ow = 0; ow < s.OW; ++ow)
        for (int64_t c = 0; c < s.C; ++c) {
          double mx = -INFINITY, sum = 0;
          int64_t cnt_in = 0, cnt_pad = 0;
          for (int64_t kh = 0; kh < s.KH; ++kh)
            for (int64_t kw = 0; kw < s.KW; ++kw) {
              const int64_t ih = oh * s.SH - s.PT + kh * s.DH;
              const int64_t iw = ow * s.SW - s.PL + kw * s.DW;
              if (ih >= -s.PT && ih < s.H + s.PB && iw >= -s.PL && iw < s.W + s.PR) ++cnt_pad;
              if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
              const double v = in[((n * s.H + ih) * s.W + iw) * s.C + c];
              mx = std::max(mx, v);
              sum += v;
              ++cnt_in;
            }
          const int64_t cnt = s.count_include_pad ? cnt_pad : cnt_in;
          out[((n * s.OH + oh) * s.OW + ow) * s.C + c] = is_max ? mx : sum / cnt;
        }
  return out;
}

void run_pool_case(Pool2dShape s, bool is_max, const std::string& what) {
  const auto in = random_floats(s.N * s.H * s.W * s.C, 40);
  const auto want = pool_ref(s, in, is_max);
  std::vector<float> out(want.size());
  if (is_max)
    maxpool2d_nhwc(s, in.data(), out.data());
  else
    avgpool2d_nhwc(s, in.data(), out.data());
  expect_close(out, want, std::vector<double>(want.size(), 1.0), what);
}

// Max pooling under every ISA (AVX-512 has its own pixel kernel: 64-channel blocks, masked tails).
class MaxPoolTest : public IsaTest {};
INSTANTIATE_TEST_SUITE_P(Isa, MaxPoolTest, ::testing::ValuesIn(supported_isas()), isa_param_name);

TEST_P(MaxPoolTest, AgainstTheReference) {
  run_pool_case(pool_shape(2, 9, 9, 19, 3, 2, 1, 1, 1, 1, false), true, "max 3x3 s2 p1");
  run_pool_case(pool_shape(1, 8, 8, 5, 3, 2, 0, 0, 0, 0, true), true, "max ceil mode");
  run_pool_case(pool_shape(1, 10, 11, 4, 3, 1, 2, 2, 2, 2, false, 2), true, "max dilated");
  run_pool_case(pool_shape(1, 7, 9, 3, 2, 2, 0, 1, 1, 0, true), true, "max asym pads ceil");
  // Channels in register blocks of 64: one full block and a ragged one (ResNet's stem pool is C=64),
  // and a window of more than 64 taps (9x9), which takes the accumulate-in-output path.
  run_pool_case(pool_shape(1, 12, 11, 64, 3, 2, 1, 1, 1, 1, false), true, "max 3x3 s2 p1 C=64");
  run_pool_case(pool_shape(2, 9, 10, 134, 3, 2, 1, 1, 1, 1, false), true, "max 3x3 s2 p1 C=134");
  run_pool_case(pool_shape(1, 11, 12, 70, 9, 1, 2, 1, 2, 1, false), true, "max 9x9 C=70");
  // Every masked tail of the AVX-512 kernel (C % 64 in 1..63 over one, two, three and four vectors)
  // and of the AVX2 one (C % 32 in 1..31 over one to four vectors: 7, 9, 25, 31, 40)
  for (int64_t C : {1, 7, 8, 9, 15, 16, 17, 25, 31, 32, 33, 40, 48, 63, 65, 128, 200})
    run_pool_case(pool_shape(1, 7, 6, C, 3, 2, 1, 1, 1, 1, false), true, "max 3x3 s2 C=" + std::to_string(C));
}

TEST(Pool, AvgPoolCountIncludePad) {
  for (bool cip : {false, true}) {
    const std::string tag = cip ? " include_pad" : " exclude_pad";
    Pool2dShape s = pool_shape(2, 8, 8, 21, 3, 2, 1, 1, 1, 1, /*ceil_mode=*/true);
    ASSERT_EQ(s.OH, 5);  // last window starts at 7: covers 7 (input), 8 (pad), 9 (ceil only)
    s.count_include_pad = cip;
    run_pool_case(s, false, "avg ceil" + tag);
    s = pool_shape(1, 7, 6, 9, 3, 1, 1, 1, 1, 1, false);
    s.count_include_pad = cip;
    run_pool_case(s, false, "avg 3x3 s1 p1" + tag);
    s = pool_shape(1, 9, 9, 6, 2, 2, 0, 0, 1, 0, true);
    s.count_include_pad = cip;
    run_pool_case(s, false, "avg asym" + tag);
  }
}

TEST(Pool, GlobalAverage) {
  const int64_t N = 2, HW = 49, C = 37;
  const auto in = random_floats(N * HW * C, 41);
  std::vector<double> want(N * C, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < HW; ++p)
      for (int64_t c = 0; c < C; ++c) want[n * C + c] += in[(n * HW + p) * C + c] / double(HW);
  std::vector<float> out(N * C);
  global_avgpool_nhwc(N, HW, C, in.data(), out.data());
  expect_close(out, want, std::vector<double>(want.size(), 1.0), "global avg");
}

// ---- Element-wise ---------------------------------------------------------------------------

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> st(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) st[i] = s, s *= shape[i];
  return st;
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

double binop_ref(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    default: return a / b;
  }
}

// Reference strided binary: walks every index of `shape`.
void binary_case(BinaryOp op, const std::vector<int64_t>& shape, const std::vector<int64_t>& sa,
                 const std::vector<int64_t>& sb, const std::vector<int64_t>& so,
                 const Activation& act, const std::string& what) {
  auto extent = [&](const std::vector<int64_t>& st) {
    int64_t e = 1;
    for (size_t i = 0; i < shape.size(); ++i) e += (shape[i] - 1) * st[i];
    return e;
  };
  const auto a = random_floats(extent(sa), 50);
  auto b = random_floats(extent(sb), 51, 0.5f, 2.f);  // away from 0 for Div
  const int64_t total = numel(shape), out_n = extent(so);
  std::vector<float> out(out_n, 0.f);
  std::vector<double> want(out_n, 0.0);
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t i = 0; i < total; ++i) {
    int64_t oa = 0, ob = 0, oo = 0;
    for (size_t d = 0; d < shape.size(); ++d)
      oa += idx[d] * sa[d], ob += idx[d] * sb[d], oo += idx[d] * so[d];
    want[oo] = act_ref(act, binop_ref(op, a[oa], b[ob]));
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  binary_f32(op, shape, {a.data(), sa}, {b.data(), sb}, out.data(), so, act);
  std::vector<double> scale(out_n);
  for (int64_t i = 0; i < out_n; ++i) scale[i] = std::fabs(want[i]) + 1.0;
  expect_close(out, want, scale, what);
}

TEST(Binary, BroadcastPatterns) {
  const std::vector<int64_t> nchw{2, 3, 4, 5};
  const auto c = contiguous_strides(nchw);
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
    const std::string o = " op=" + std::to_string(int(op));
    binary_case(op, nchw, c, c, c, {}, "same shape" + o);
    binary_case(op, nchw, c, {0, 0, 0, 0}, c, relu(), "scalar b" + o);
    binary_case(op, nchw, {0, 0, 0, 0}, c, c, {}, "scalar a" + o);
    // Per-channel on NHWC: iteration shape [N, H, W, C], b = C values.
    const std::vector<int64_t> nhwc{2, 4, 5, 19};
    const auto cn = contiguous_strides(nhwc);
    binary_case(op, nhwc, cn, {0, 0, 0, 1}, cn, clip(-1.f, 1.f), "per-channel NHWC" + o);
    // b of shape [N, 1, H, 1] against [N, C, H, W].
    binary_case(op, nchw, c, {4, 0, 1, 0}, c, {}, "[N,1,H,1]" + o);
    // a broadcast along W, output written transposed (NCHW iteration into NHWC output).
    binary_case(op, nchw, {12, 4, 1, 0}, c, {60, 1, 15, 3}, {}, "bcast a, NHWC out" + o);
  }
  // Large enough to run in parallel.
  const std::vector<int64_t> big{1, 56, 56, 144};
  const auto cb = contiguous_strides(big);
  binary_case(BinaryOp::Add, big, cb, {0, 0, 0, 1}, cb, relu(), "big per-channel");
  binary_case(BinaryOp::Mul, {}, {}, {}, {}, {}, "rank 0");
}

TEST(Binary, EmptyShapeWritesNothing) {
  float a = 1, b = 2, out = 7;
  binary_f32(BinaryOp::Add, {3, 0}, {&a, {0, 0}}, {&b, {0, 0}}, &out, {0, 0});
  EXPECT_EQ(out, 7.f);
}

TEST(Binary, SameShapeAndInPlace) {
  const int64_t n = 100003;
  const auto a = random_floats(n, 60), b = random_floats(n, 61, 0.5f, 2.f);
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
    std::vector<float> out(n), inplace = a;
    binary_same_f32(op, n, a.data(), b.data(), out.data(), clip(-0.5f, 0.5f));
    binary_same_f32(op, n, inplace.data(), b.data(), inplace.data(), clip(-0.5f, 0.5f));
    for (int64_t i = 0; i < n; ++i) {
      const float want = clip(-0.5f, 0.5f).apply(float(binop_ref(op, a[i], b[i])));
      ASSERT_NEAR(out[i], want, 1e-6f) << i;
      ASSERT_EQ(inplace[i], out[i]) << i;
    }
  }
}

TEST(CopyStrided, NchwNhwcRoundTrip) {
  // C = 3 forward is the interleave path (4 pixels per step, runs of 4096): images of 35 and 4103
  // pixels end in a 3-pixel tail, the second after a whole run
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{
           {2, 5, 7, 9}, {1, 3, 224, 224}, {1, 32, 56, 56}, {2, 3, 5, 7}, {3, 3, 1, 4103}, {1, 3, 1, 2}}) {
    const int64_t N = shape[0], C = shape[1], H = shape[2], W = shape[3];
    const auto src = random_floats(numel(shape), 70);
    const std::vector<int64_t> nchw{C * H * W, H * W, W, 1}, nhwc{H * W * C, 1, W * C, C};
    std::vector<float> t(src.size()), back(src.size());
    copy_strided_f32(shape, src.data(), nchw, t.data(), nhwc);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w)
            ASSERT_EQ(t[((n * H + h) * W + w) * C + c], src[((n * C + c) * H + h) * W + w]);
    copy_strided_f32(shape, t.data(), nhwc, back.data(), nchw);
    EXPECT_EQ(back, src);
  }
}

TEST(CopyStrided, ConcatSliceAndGeneral) {
  // Concat along C in NHWC: copy a [1, 4, 5, 3] block into channels [2, 5) of a [1, 4, 5, 8].
  const auto src = random_floats(60, 71);
  std::vector<float> dst(160, -1.f);
  copy_strided_f32({1, 4, 5, 3}, src.data(), {60, 15, 3, 1}, dst.data() + 2, {160, 40, 8, 1});
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t w = 0; w < 5; ++w)
      for (int64_t c = 0; c < 8; ++c) {
        const float want = (c >= 2 && c < 5) ? src[(h * 5 + w) * 3 + c - 2] : -1.f;
        ASSERT_EQ(dst[(h * 5 + w) * 8 + c], want);
      }
  // No unit stride anywhere: element loop.
  const auto s2 = random_floats(100, 72);
  std::vector<float> d2(40, 0.f);
  copy_strided_f32({4, 5}, s2.data(), {10, 2}, d2.data(), {2, 8});
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 5; ++j) ASSERT_EQ(d2[i * 2 + j * 8], s2[i * 10 + j * 2]);
  // Scalar and flatten (fully contiguous).
  float one = 3.f, got = 0.f;
  copy_strided_f32({}, &one, {}, &got, {});
  EXPECT_EQ(got, 3.f);
  std::vector<float> flat(60);
  copy_strided_f32({3, 4, 5}, src.data(), {20, 5, 1}, flat.data(), {20, 5, 1});
  EXPECT_EQ(flat, src);
}

TEST(Elementwise, ChannelAffine) {
  const int64_t rows = 37, C = 21;
  const auto x = random_floats(rows * C, 80), sc = random_floats(C, 81), sh = random_floats(C, 82);
  std::vector<float> y(rows * C);
  channel_affine_f32(rows, C, x.data(), sc.data(), sh.data(), y.data(), relu());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c)
      ASSERT_NEAR(y[r * C + c], std::max(0.f, x[r * C + c] * sc[c] + sh[c]), 1e-6f);
}

TEST(Elementwise, Activation) {
  const auto x = random_floats(1000, 90, -8.f, 8.f);
  std::vector<float> y(x.size());
  activation_f32(relu(), x.data(), y.data(), 1000);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], std::max(x[i], 0.f));
  y = x;
  activation_f32(clip(0.f, 6.f), y.data(), y.data(), 1000);  // in place
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], std::min(std::max(x[i], 0.f), 6.f));
}

TEST(Elementwise, SoftmaxRows) {
  const int64_t rows = 3, cols = 1000;
  auto x = random_floats(rows * cols, 91, -10.f, 10.f);
  x[5] = 500.f;  // would overflow exp without subtracting the max
  std::vector<float> y(x.size());
  softmax_rows_f32(rows, cols, x.data(), y.data());
  for (int64_t r = 0; r < rows; ++r) {
    double mx = -INFINITY, sum = 0, ysum = 0;
    for (int64_t c = 0; c < cols; ++c) mx = std::max(mx, double(x[r * cols + c]));
    for (int64_t c = 0; c < cols; ++c) sum += std::exp(x[r * cols + c] - mx);
    for (int64_t c = 0; c < cols; ++c) {
      const double want = std::exp(x[r * cols + c] - mx) / sum;
      ASSERT_NEAR(y[r * cols + c], want, 1e-6 + 1e-5 * want) << r << "," << c;
      ysum += y[r * cols + c];
    }
    EXPECT_NEAR(ysum, 1.0, 1e-5);
  }
}

}  // namespace
}  // namespace locus::kernels
