// The planner-driven pointwise GEMM (kernels/native/pointwise_scan.h) against a naive reference
// (double accumulation) on ragged shapes, for every order family, a small buffer (plans with k < K,
// C tiles accumulated over several K visits), 32768 entries and 1M entries (k = K), every ISA the
// CPU runs, and 1 and 2 threads. Also gemm_f32_tile on its own and the conv2d pointwise path with a
// plan.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/gemm.h"
#include "kernels/native/pointwise_scan.h"
#include "tests/isa_util.h"
#include "tests/test_support.h"

namespace locus::kernels {
namespace {

using test::random_floats;

using test::supported_isas;

struct Ref {
  std::vector<double> want, scale;
};

// act(A . B + bias) with clip [lo, hi]; B is K x N row-major.
Ref reference(int64_t M, int64_t K, int64_t N, const std::vector<float>& a, const std::vector<float>& b,
              const std::vector<float>& bias, float lo, float hi) {
  Ref r;
  r.want.resize(M * N);
  r.scale.resize(M * N);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = bias[j], sa = std::fabs(bias[j]);
      for (int64_t k = 0; k < K; ++k) {
        const double t = double(a[i * K + k]) * b[k * N + j];
        s += t;
        sa += std::fabs(t);
      }
      r.want[i * N + j] = std::min(std::max(s, double(lo)), double(hi));
      r.scale[i * N + j] = sa;
    }
  return r;
}

void expect_close(const std::vector<float>& got, const Ref& r, const std::string& what) {
  ASSERT_EQ(got.size(), r.want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = 1e-4 * (r.scale[i] + 1e-3);
    if (!(std::fabs(got[i] - r.want[i]) <= tol)) {
      ADD_FAILURE() << what << ": element " << i << " got " << got[i] << " want " << r.want[i];
      if (++bad >= 5) return;
    }
  }
}

class ThreadsGuard {
 public:
  explicit ThreadsGuard(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ThreadsGuard() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

class PointwiseScanTest : public test::IsaTest {};

TEST_P(PointwiseScanTest, RaggedShapesAllOrdersBuffersThreads) {
  struct Shape {
    int64_t M, K, N;
    int64_t small_S;  // forces k < K
  };
  // {40, 70, 101}: fewer rows than columns with a ragged N (2 threads split the columns at 64).
  // {300, 64, 512}: whole-K row strips met by several column strips (32 panels in all), so on AVX2
  // a row strip's packed A is shared by the strips that meet it (with scratch).
  const Shape shapes[] = {{97, 37, 53, 200}, {12544, 32, 16, 300}, {49, 960, 320, 3000}, {7, 5, 3, 9},
                          {40, 70, 101, 600}, {300, 64, 512, 900}};
  const float lo = -0.5f, hi = 0.75f;
  const Activation act{ActKind::Clip, lo, hi};
  uint32_t seed = 1;
  for (const Shape& sh : shapes) {
    const auto a = random_floats(sh.M * sh.K, seed++), b = random_floats(sh.K * sh.N, seed++);
    const auto bias = random_floats(sh.N, seed++);
    const Ref ref = reference(sh.M, sh.K, sh.N, a, b, bias, lo, hi);
    for (int64_t S : {sh.small_S, int64_t(32768), int64_t(1) << 20}) {
      for (schedule::TileOrder order : {schedule::TileOrder::Scan, schedule::TileOrder::Row, schedule::TileOrder::Col}) {
        const PointwiseScan p = pack_pointwise_scan(sh.M, sh.K, sh.N, b.data(), sh.N, S, order);
        const std::string what = "M=" + std::to_string(sh.M) + " K=" + std::to_string(sh.K) + " N=" +
                                 std::to_string(sh.N) + " order=" + schedule::tile_order_name(order) + " plan: " +
                                 p.plan.describe();
        if (S == sh.small_S) {
          EXPECT_LT(p.plan.k, sh.K) << what;
        }
        if (S == (int64_t(1) << 20)) {
          EXPECT_EQ(p.plan.k, sh.K) << what;  // everything fits
        }
        switch (order) {
          case schedule::TileOrder::Scan:
            EXPECT_TRUE(p.plan.order == schedule::Order::ScanRows || p.plan.order == schedule::Order::ScanCols) << what;
            break;
          case schedule::TileOrder::Row: EXPECT_EQ(p.plan.order, schedule::Order::RowMajor) << what; break;
          case schedule::TileOrder::Col: EXPECT_EQ(p.plan.order, schedule::Order::ColMajor) << what; break;
        }
        for (int threads : {1, 2}) {
          // Packed for `threads`; run with the other count set in OpenMP (the plan's count wins).
          ThreadsGuard tg(3 - threads);
          const PointwiseScan pt =
              threads == 1 ? p : pack_pointwise_scan(sh.M, sh.K, sh.N, b.data(), sh.N, S, order, threads);
          EXPECT_EQ(pt.plan.threads, threads);
          // Without scratch (every visit packs its own rows of A), then with it (a row strip packed
          // once for the column strips that share it), twice: the second run must not reuse the
          // first run's packed rows although A sits at the same address with other values.
          for (int use_scratch = 0; use_scratch < 3; ++use_scratch) {
            const int64_t sn = pointwise_scan_scratch_floats(pt);
            std::vector<float> scratch(sn + 16, 5.f);
            std::vector<float> c(sh.M * sh.N + 16, 99.f);
            std::vector<float> a_run = a;
            if (use_scratch == 2) {
              pointwise_scan_f32(pt, a_run.data(), sh.K, c.data(), sh.N, bias.data(), act, nullptr, false,
                                 scratch.data());
              for (float& x : a_run) x = -x;  // the same buffer, other values
            }
            pointwise_scan_f32(pt, a_run.data(), sh.K, c.data(), sh.N, bias.data(), act, nullptr, false,
                               use_scratch ? scratch.data() : nullptr);
            for (int i = 0; i < 16; ++i) ASSERT_EQ(c[sh.M * sh.N + i], 99.f) << what << ": wrote past C";
            for (int i = 0; i < 16; ++i) ASSERT_EQ(scratch[sn + i], 5.f) << what << ": wrote past the scratch";
            c.resize(sh.M * sh.N);
            const Ref want = use_scratch == 2 ? reference(sh.M, sh.K, sh.N, a_run, b, bias, lo, hi) : ref;
            expect_close(c, want, what + " threads=" + std::to_string(threads) + " scratch run " +
                                      std::to_string(use_scratch));
            if (HasFailure()) return;
          }
        }
      }
    }
  }
}

TEST_P(PointwiseScanTest, CallsJoinAdjacentKVisitsOfOneTile) {
  // The walk's driver calls (PointwiseScan::calls) are the plan's visits in order, each call the
  // longest run of consecutive visits of one C tile over adjacent k ranges; the C tiles' groups
  // start where the tile changes. Plans with k < K (small buffers), every order family.
  struct Shape {
    int64_t M, K, N, S;
  };
  const Shape shapes[] = {{49, 960, 320, 3000}, {97, 37, 53, 200}, {49, 2048, 512, 65536}, {784, 512, 256, 65536}};
  for (const Shape& sh : shapes)
    for (schedule::TileOrder order : {schedule::TileOrder::Scan, schedule::TileOrder::Row, schedule::TileOrder::Col}) {
      const auto b = random_floats(sh.K * sh.N, 91);
      const PointwiseScan p = pack_pointwise_scan(sh.M, sh.K, sh.N, b.data(), sh.N, sh.S, order);
      const std::string what = "M=" + std::to_string(sh.M) + " K=" + std::to_string(sh.K) + " N=" +
                               std::to_string(sh.N) + " plan: " + p.plan.describe();
      ASSERT_LT(p.plan.k, sh.K) << what;
      ASSERT_EQ(p.strip.size(), p.calls.size()) << what;
      const std::vector<schedule::TileVisit> seq = p.plan.sequence();
      auto same_tile = [](const schedule::TileVisit& x, const schedule::TileVisit& y) {
        return x.i0 == y.i0 && x.i1 == y.i1 && x.j0 == y.j0 && x.j1 == y.j1;
      };
      size_t v = 0;
      std::vector<int64_t> starts;
      for (size_t c = 0; c < p.calls.size(); ++c) {
        const schedule::TileVisit& call = p.calls[c];
        if (c == 0 || !same_tile(call, p.calls[c - 1])) starts.push_back(int64_t(c));
        ASSERT_LT(v, seq.size()) << what;
        int64_t k = call.k0, joined = 0;
        while (v < seq.size() && same_tile(seq[v], call) && seq[v].k0 == k && seq[v].k1 <= call.k1)
          k = seq[v++].k1, ++joined;
        EXPECT_GE(joined, 1) << what << ": call " << c << " matches no visit";
        EXPECT_EQ(k, call.k1) << what << ": call " << c << " is not a run of adjacent visits";
        // the run is the longest: the next visit is another tile or a k range that does not follow
        if (v < seq.size()) EXPECT_FALSE(same_tile(seq[v], call) && seq[v].k0 == call.k1) << what << ": call " << c;
        EXPECT_EQ(p.n_bounds[p.strip[c]], call.j0) << what;
      }
      EXPECT_EQ(v, seq.size()) << what << ": visits left over";
      starts.push_back(int64_t(p.calls.size()));
      EXPECT_EQ(starts, p.group_start) << what;
      // The walks visit a C tile's k ranges in a row (k innermost) in these plans: fewer calls.
      EXPECT_LT(p.calls.size(), seq.size()) << what;
    }
}

TEST_P(PointwiseScanTest, StridedOperandsAndNoBias) {
  // lda > K and ldc > N (C padding untouched), no bias, identity activation.
  const int64_t M = 61, K = 45, N = 40, lda = K + 3, ldc = N + 5;
  const auto a = random_floats(M * lda, 51), b = random_floats(K * N, 52);
  const std::vector<float> zero(N, 0.f);
  std::vector<float> a_dense(M * K);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) a_dense[i * K + k] = a[i * lda + k];
  const Ref ref = reference(M, K, N, a_dense, b, zero, -1e30f, 1e30f);
  for (int64_t S : {int64_t(400), int64_t(100000)}) {
    const PointwiseScan p = pack_pointwise_scan(M, K, N, b.data(), N, S, schedule::TileOrder::Scan);
    ThreadsGuard tg(2);
    std::vector<float> c(M * ldc, 7.f);
    pointwise_scan_f32(p, a.data(), lda, c.data(), ldc, nullptr, Activation{});
    std::vector<float> got(M * N);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        if (j < N) got[i * N + j] = c[i * ldc + j];
        else ASSERT_EQ(c[i * ldc + j], 7.f) << "wrote into C padding";
      }
    expect_close(got, ref, "strided S=" + std::to_string(S) + " " + p.plan.describe());
  }
}

TEST_P(PointwiseScanTest, GemmTileMatchesGemm) {
  // Tiles covering C, reduction split in two, equal (to rounding) to one gemm_f32.
  const int64_t M = 50, K = 300, N = 70;
  const auto a = random_floats(M * K, 61), b = random_floats(K * N, 62), bias = random_floats(N, 63);
  const PackedB pb = pack_b(K, N, b.data(), N, false);
  const Activation act{ActKind::Relu, 0.f, 0.f};
  std::vector<float> want(M * N), got(M * N, 5.f);
  gemm_f32(M, a.data(), K, pb, want.data(), N, bias.data(), act);
  for (int64_t i0 : {int64_t(0), int64_t(23)})
    for (int64_t j0 : {int64_t(0), int64_t(32)}) {
      const int64_t i1 = i0 ? M : 23, j1 = j0 ? N : 32;
      gemm_f32_tile(a.data(), K, pb, i0, i1, j0, j1, 0, 130, got.data(), N, bias.data(), act, false);
      gemm_f32_tile(a.data(), K, pb, i0, i1, j0, j1, 130, K, got.data(), N, bias.data(), act, true);
    }
  for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(got[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << i;
}

TEST_P(PointwiseScanTest, ConvPointwisePathUsesPlan) {
  Conv2dShape s;
  s.N = 2, s.H = 9, s.W = 11, s.C = 37, s.OC = 53, s.OH = 9, s.OW = 11;
  const int64_t M = s.N * s.H * s.W;
  const auto in = random_floats(M * s.C, 71), w = random_floats(s.OC * s.C, 72), bias = random_floats(s.OC, 73);
  std::vector<float> b(s.C * s.OC);  // K x N from [OC, C, 1, 1]
  for (int64_t o = 0; o < s.OC; ++o)
    for (int64_t c = 0; c < s.C; ++c) b[c * s.OC + o] = w[o * s.C + c];
  const Ref ref = reference(M, s.C, s.OC, in, b, bias, 0.f, 6.f);
  const Activation act{ActKind::Clip, 0.f, 6.f};
  for (int64_t S : {int64_t(0), int64_t(250), int64_t(32768)}) {
    const PackedConv2d p = pack_conv2d(s, w.data(), bias.data(), act, S, schedule::TileOrder::Scan);
    EXPECT_EQ(int(p.path), int(ConvPath::Pointwise));
    EXPECT_EQ(p.scan != nullptr, S > 0);
    std::vector<float> out(M * s.OC);
    conv2d_nhwc(p, in.data(), out.data(), nullptr);
    expect_close(out, ref, "conv S=" + std::to_string(S));
  }
  // Non-pointwise convs ignore the buffer size.
  Conv2dShape g = s;
  g.KH = g.KW = 3, g.PT = g.PL = g.PB = g.PR = 1;
  const auto w3 = random_floats(g.OC * g.C * 9, 74);
  const PackedConv2d p3 = pack_conv2d(g, w3.data(), nullptr, act, 32768);
  EXPECT_EQ(p3.scan, nullptr);
}

TEST_P(PointwiseScanTest, PlanUsesTheDispatchedMicroKernelTile) {
  // The planner gets the register tile of the micro-kernel the ISA dispatches to (gemm_config) and
  // the thread count: 12 x 32 on AVX-512 (two panels per register tile), 6 x 16 on AVX2, 4 x 16
  // generic; m tiles are multiples of mr, n tiles of the tile's width.
  const GemmConfig& cfg = gemm_config(GetParam());
  const int64_t width = GetParam() == Isa::Avx512 ? 32 : 16;
  EXPECT_EQ(pointwise_register_tile().mr, cfg.mr);
  EXPECT_EQ(pointwise_register_tile().nr, width);
  const schedule::Plan p = plan_pointwise(3136, 144, 24, 131072 / 8, schedule::TileOrder::Scan, 3);
  SCOPED_TRACE(p.describe());
  EXPECT_EQ(p.m_step, cfg.mr);
  EXPECT_EQ(p.n_step, width);
  EXPECT_EQ(p.threads, 3);
  EXPECT_TRUE(p.m % cfg.mr == 0 || p.m == 3136);
  EXPECT_GE(p.m, kPointwiseMinMTiles * cfg.mr);
}

TEST(PointwiseScan, ParseTileOrder) {
  schedule::TileOrder o = schedule::TileOrder::Row;
  EXPECT_TRUE(schedule::parse_tile_order("scan", &o));
  EXPECT_EQ(o, schedule::TileOrder::Scan);
  EXPECT_TRUE(schedule::parse_tile_order("col", &o));
  EXPECT_EQ(o, schedule::TileOrder::Col);
  EXPECT_TRUE(schedule::parse_tile_order("row", &o));
  EXPECT_EQ(o, schedule::TileOrder::Row);
  EXPECT_FALSE(schedule::parse_tile_order("serpentine", &o));
  EXPECT_FALSE(schedule::parse_tile_order("", &o));
}

INSTANTIATE_TEST_SUITE_P(Isa, PointwiseScanTest, ::testing::ValuesIn(supported_isas()),
                         [](const ::testing::TestParamInfo<Isa>& i) { return std::string(isa_name(i.param)); });

}  // namespace
}  // namespace locus::kernels
