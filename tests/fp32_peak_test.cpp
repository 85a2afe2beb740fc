// The measured fp32 peak (kernels/native/fp32_peak.h): the loop does exactly the work its flop
// count assumes (for every ISA this CPU has), and the measured figure is plausible: above what one
// latency-bound scalar multiply-add chain reaches on the same machine (the peak loop has 12 x 4..8
// independent lanes, so it must beat that by a wide margin even on a busy machine) and below a
// physical ceiling (32 flops/cycle/core x 6 GHz), which catches a loop the compiler removed.
#include <gtest/gtest.h>

#include <omp.h>

#include <chrono>

#include "kernels/native/cpu_features.h"
#include "kernels/native/fp32_peak.h"

namespace locus::kernels {
namespace {

struct IsaGuard {
  explicit IsaGuard(Isa isa) { set_isa_override(isa); }
  ~IsaGuard() { clear_isa_override(); }
};

// Every ISA this CPU has (an AVX-512 CPU runs the AVX2 loop too).
std::vector<Isa> isas() {
  std::vector<Isa> v{Isa::Generic};
  if (has_avx2(detected_isa())) v.push_back(Isa::Avx2);
  if (detected_isa() == Isa::Avx512) v.push_back(Isa::Avx512);
  return v;
}

TEST(Fp32Peak, LoopDoesTheCountedWork) {
  for (Isa isa : isas()) {
    IsaGuard g(isa);
    SCOPED_TRACE(isa_name(isa));
    EXPECT_EQ(fp32_peak_chains(), 12);
    EXPECT_EQ(fp32_peak_lanes(), isa == Isa::Avx512 ? 16 : isa == Isa::Avx2 ? 8 : 4);
    EXPECT_EQ(fp32_peak_flops_per_iter(), int64_t(fp32_peak_chains()) * fp32_peak_lanes() * 2);
    const int64_t lanes = int64_t(fp32_peak_chains()) * fp32_peak_lanes();
    // lane j starts at j; expected sum after `iters` iterations of x = x * a + b, computed in double
    auto expected = [&](int64_t iters, double a, double b) {
      double sum = 0;
      for (int64_t j = 0; j < lanes; ++j) {
        double x = double(j);
        for (int64_t i = 0; i < iters; ++i) x = x * a + b;
        sum += x;
      }
      return sum;
    };
    // exact in float: every lane stays below 2^24
    EXPECT_EQ(fp32_fma_chains(0, 1.f, 1.f), expected(0, 1, 1));
    EXPECT_EQ(fp32_fma_chains(1, 1.f, 1.f), expected(1, 1, 1));
    EXPECT_EQ(fp32_fma_chains(12345, 1.f, 1.f), expected(12345, 1, 1));
    EXPECT_EQ(fp32_fma_chains(10, 2.f, 1.f), expected(10, 2, 1));  // 2^10 (j + 1) - 1
    EXPECT_EQ(fp32_fma_chains(7, 0.5f, 3.f), expected(7, 0.5, 3));
  }
}

// Single dependent chain x = x * a + b, scalar: latency-bound, 2 flops per iteration.
double scalar_chain_gflops() {
  float x = 0.f, a = 0.999999f, b = 1e-6f;
  volatile float va = a, vb = b;
  a = va;
  b = vb;
  const int64_t iters = 20'000'000;
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; ++i) x = x * a + b;
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  volatile float sink = x;
  (void)sink;
  return 2.0 * double(iters) / s * 1e-9;
}

TEST(Fp32Peak, MeasuredPeakIsPlausible) {
  for (Isa isa : isas()) {
    IsaGuard g(isa);
    SCOPED_TRACE(isa_name(isa));
    const double peak = measured_fp32_peak_gflops(1);
    const double chain = scalar_chain_gflops();
    RecordProperty(std::string("peak_1t_") + isa_name(isa), std::to_string(peak));
    std::printf("%s: measured peak %.1f GFLOP/s (1 thread), one scalar chain %.2f GFLOP/s\n  %s\n  %s\n",
                isa_name(isa), peak, chain, fp32_peak_method().c_str(), nominal_fp32_peak_method(1).c_str());
    EXPECT_GT(peak, 0.0);
    EXPECT_GT(peak, chain);  // 48 or 96 independent lanes vs one dependent chain: typically 20-100x
    // 32 flops/cycle (AVX2; 64 with AVX-512) x 6 GHz: nothing faster exists
    EXPECT_LT(peak, (isa == Isa::Avx512 ? 64 : 32) * 6.0);
  }
}

TEST(Fp32Peak, NominalFigure) {
  const double mhz = cpuinfo_mhz();
  if (mhz <= 0) GTEST_SKIP() << "/proc/cpuinfo has no 'cpu MHz'";
  EXPECT_GT(mhz, 100.0);
  EXPECT_LT(mhz, 10000.0);
  for (Isa isa : isas()) {
    if (isa == Isa::Generic) continue;
    IsaGuard g(isa);
    EXPECT_DOUBLE_EQ(nominal_fp32_peak_gflops(2), mhz * 1e-3 * (isa == Isa::Avx512 ? 64 : 32) * 2);
    EXPECT_NE(nominal_fp32_peak_method(1).find("NOMINAL"), std::string::npos);
  }
}

}  // namespace
}  // namespace locus::kernels
