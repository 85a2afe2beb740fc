// Micro-benchmarks for the native kernels: GEMM on MobileNetV2 1x1-conv shapes (GFLOP/s counter; BM_GemmColdB
// with the weights arriving from memory, as at batch 1 in a network),
// for the generic and AVX2 micro-kernels, a depthwise 3x3, the stem convolution, MobileNetV2's fp32
// depthwise layers (register-blocked form on / off, % of the fp32 peak), the NCHW->NHWC
// input conversion, and the int8 GEMM and depthwise kernels on the same shapes (GOP/s, and pct_peak
// against the measured int8 peak of the same ISA and thread count, int8_peak.h). Rates use wall time
// (the kernels are multi-threaded).
// Keep runs short: the machine is shared (e.g. --benchmark_min_time=0.2).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <vector>

#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/dwconv_microkernel.h"
#include "kernels/native/elementwise.h"
#include "kernels/native/fp32_peak.h"
#include "kernels/native/gemm.h"
#include "kernels/native/int8_peak.h"
#include "kernels/native/qdwconv.h"
#include "kernels/native/qgemm.h"
#include "kernels/native/qgemm_microkernel.h"

namespace locus::kernels {
namespace {

// Line-aligned, as the native backend's arena and packed weights are (aligned_vector.h).
AlignedVector<float> randoms(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  AlignedVector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Makes the ISA a benchmark argument names (0 generic, 1 avx2, 2 avx512) the active one and returns
// true, or skips the benchmark (false) on a CPU without it. The benchmark ends with clear_isa_override().
bool select_isa(benchmark::State& st, int64_t arg, Isa* isa) {
  *isa = arg == 2 ? Isa::Avx512 : arg == 1 ? Isa::Avx2 : Isa::Generic;
  if (int(*isa) > int(detected_isa())) {
    st.SkipWithError((std::string("this CPU has no ") + isa_name(*isa)).c_str());
    return false;
  }
  set_isa_override(*isa);
  return true;
}

// Runs C = A x B (+ bias, ReLU6) on the shape the arguments name (M, N, K, isa), cycling through
// `copies` packed copies of B.
void run_gemm(benchmark::State& st, int64_t copies) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  Isa isa;
  if (!select_isa(st, st.range(3), &isa)) return;
  const auto a = randoms(M * K, 1), b = randoms(K * N, 2), bias = randoms(N, 3);
  AlignedVector<float> c(M * N);
  std::vector<PackedB> pbs;
  for (int64_t i = 0; i < copies; ++i) pbs.push_back(pack_b(K, N, b.data(), N, false));
  const Activation act{ActKind::Clip, 0.f, 6.f};
  size_t next = 0;
  for (auto _ : st) {
    gemm_f32(M, a.data(), K, pbs[next], c.data(), N, bias.data(), act, false, omp_get_max_threads());
    next = (next + 1) % pbs.size();
    benchmark::DoNotOptimize(c.data());
  }
  clear_isa_override();
  st.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * M * N * K, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  st.SetLabel(isa_name(isa));
}

// Args: M, N, K, isa (0 generic, 1 avx2, 2 avx512; an AVX-512 CPU runs all three).
void BM_Gemm(benchmark::State& st) { run_gemm(st, 1); }
BENCHMARK(BM_Gemm)
    ->ArgsProduct({{112 * 112}, {16}, {32}, {0, 1, 2}})
    ->ArgsProduct({{56 * 56}, {144}, {24}, {0, 1, 2}})
    ->ArgsProduct({{28 * 28}, {32}, {192}, {0, 1, 2}})
    ->ArgsProduct({{14 * 14}, {384}, {64}, {0, 1, 2}})
    ->ArgsProduct({{7 * 7}, {320}, {960}, {0, 1, 2}})
    ->ArgsProduct({{1}, {1000}, {1280}, {0, 1, 2}})
    // ResNet-50's 1x1 and im2col 3x3 shapes (M = pixels, N = output channels, K = input x taps)
    ->ArgsProduct({{112 * 112}, {64}, {147}, {1, 2}})  // the 7x7 stem, im2col
    ->ArgsProduct({{3136}, {16, 24, 32}, {96, 144}, {2}})  // MobileNetV2 projections with few outputs
    ->ArgsProduct({{56 * 56}, {64, 256}, {64, 256}, {1, 2}})
    ->ArgsProduct({{28 * 28}, {128, 512}, {128, 512, 1152}, {1, 2}})
    ->ArgsProduct({{14 * 14}, {256, 1024}, {256, 1024, 2304}, {1, 2}})
    ->ArgsProduct({{7 * 7}, {512, 2048}, {512, 2048, 4608}, {1, 2}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Args: M, N, K, isa, as BM_Gemm, but B cold: the GEMM cycles through copies of packed B that together
// exceed the L3 (64 MiB at least), as a network's weights arrive from memory at batch 1 (ResNet-50 holds
// 100 MB of weights). The gap to BM_Gemm on the same shape is what fetching the weights costs.
void BM_GemmColdB(benchmark::State& st) {
  run_gemm(st, std::max<int64_t>(2, (int64_t(64) << 20) / (st.range(1) * st.range(2) * 4) + 1));
}
BENCHMARK(BM_GemmColdB)
    ->ArgsProduct({{56 * 56}, {64, 256}, {64, 256}, {2}})
    ->ArgsProduct({{28 * 28}, {128, 512}, {128, 512}, {2}})
    ->ArgsProduct({{14 * 14}, {256, 1024}, {256, 1024}, {2}})
    ->ArgsProduct({{7 * 7}, {512, 2048}, {512, 2048, 4608}, {2}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Args: H (= W), C, KH (= KW), stride, groups (0 = depthwise, G = C = OC).
void BM_Conv(benchmark::State& st) {
  Conv2dShape s;
  s.H = s.W = st.range(0);
  s.C = st.range(1);
  s.KH = s.KW = st.range(2);
  s.SH = s.SW = st.range(3);
  s.OC = st.range(4) == 0 ? s.C : 32;
  s.G = st.range(4) == 0 ? s.C : 1;
  s.PT = s.PL = s.PB = s.PR = s.KH / 2;
  s.OH = (s.H + 2 * s.PT - s.KH) / s.SH + 1;
  s.OW = (s.W + 2 * s.PL - s.KW) / s.SW + 1;
  const auto in = randoms(s.H * s.W * s.C, 4);
  const auto w = randoms(s.OC * (s.C / s.G) * s.KH * s.KW, 5);
  const PackedConv2d p = pack_conv2d(s, w.data(), nullptr, {ActKind::Clip, 0.f, 6.f}, 0, schedule::TileOrder::Scan,
                                     omp_get_max_threads());
  std::vector<float> scratch(conv2d_scratch_floats(p));
  std::vector<float> out(s.OH * s.OW * s.OC);
  for (auto _ : st) {
    conv2d_nhwc(p, in.data(), out.data(), scratch.data());
    benchmark::DoNotOptimize(out.data());
  }
  const double flops = 2.0 * s.OH * s.OW * s.OC * (s.C / s.G) * s.KH * s.KW;
  st.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Conv)
    ->Args({112, 32, 3, 1, 0})   // depthwise 3x3, first bottleneck
    ->Args({56, 144, 3, 2, 0})   // depthwise 3x3 stride 2
    ->Args({224, 3, 3, 2, 1})    // stem: im2col + GEMM
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

std::vector<uint8_t> random_u8(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(d(rng));
  return v;
}

std::vector<int8_t> random_s8(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(d(rng));
  return v;
}

// The measured int8 peak of the active ISA on `threads` threads, measured once per (ISA, threads).
double int8_peak_cached(int threads) {
  static std::map<std::pair<int, int>, double> cache;
  const auto key = std::make_pair(int(active_isa()), threads);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, measured_int8_peak_gops(threads)).first;
  return it->second;
}

QuantParams bench_quant(int64_t N) {
  QuantParams q;
  q.a_scale = 0.02f;
  q.a_zero = 128;
  q.w_scale.assign(N, 0.01f);
  q.y_scale = 0.5f;
  q.y_zero = 0;
  q.qmin = 0;
  q.qmax = 120;  // a Relu6-like clamp
  return q;
}

// Int8 GEMM (u8 x s8 -> requantized u8, per-channel scales). Args: M, N, K, isa, threads (0 = all).
void BM_QGemm(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  Isa isa;
  if (!select_isa(st, st.range(3), &isa)) return;
  const int threads = st.range(4) > 0 ? int(st.range(4)) : omp_get_max_threads();
  const auto a = random_u8(M * K, 1);
  const auto w = random_s8(K * N, 2);
  std::vector<int32_t> bias(N, 100);
  const PackedQB pb = pack_qgemm_b(K, N, w.data(), N, false, bias.data(), bench_quant(N));
  std::vector<uint8_t> y(M * N);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : st) {
    qgemm_u8s8(M, a.data(), K, pb, y.data(), N, threads);
    benchmark::DoNotOptimize(y.data());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double gops = 2.0 * M * N * K * double(st.iterations()) / std::max(secs, 1e-12) * 1e-9;
  const double peak = int8_peak_cached(threads);  // after the timed loop
  st.counters["GOP/s"] = gops;
  st.counters["peak_GOP/s"] = peak;
  st.counters["pct_peak"] = 100.0 * gops / peak;
  st.SetLabel(std::string(qgemm_config(isa).name) + " x" + std::to_string(threads));
  clear_isa_override();
}
BENCHMARK(BM_QGemm)
    ->ArgsProduct({{112 * 112}, {16}, {32}, {0, 1, 2}, {1, 2}})
    ->ArgsProduct({{56 * 56}, {144}, {24}, {0, 1, 2}, {1, 2}})
    ->ArgsProduct({{56 * 56}, {24}, {144}, {0, 1, 2}, {1, 2}})
    ->ArgsProduct({{28 * 28}, {32}, {192}, {0, 1, 2}, {1, 2}})
    ->ArgsProduct({{14 * 14}, {64}, {384}, {0, 1, 2}, {1, 2}})
    ->ArgsProduct({{14 * 14}, {384}, {64}, {0, 1, 2}, {1, 2}})
    ->ArgsProduct({{7 * 7}, {320}, {960}, {0, 1, 2}, {1, 2}})
    ->ArgsProduct({{1}, {1000}, {1280}, {0, 1, 2}, {1, 2}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// A depthwise 3x3 with pads 1 on an H x H x C image.
Conv2dShape dw3x3_shape(int64_t H, int64_t C, int64_t stride) {
  Conv2dShape s;
  s.H = s.W = H;
  s.C = s.OC = s.G = C;
  s.KH = s.KW = 3;
  s.SH = s.SW = stride;
  s.PT = s.PL = s.PB = s.PR = 1;
  s.OH = (s.H + 2 - 3) / s.SH + 1;
  s.OW = (s.W + 2 - 3) / s.SW + 1;
  return s;
}

// Int8 depthwise 3x3 (pad 1). Args: H (= W), C, stride, isa, threads.
void BM_QDwConv(benchmark::State& st) {
  Isa isa;
  if (!select_isa(st, st.range(3), &isa)) return;
  const int threads = st.range(4) > 0 ? int(st.range(4)) : omp_get_max_threads();
  const Conv2dShape s = dw3x3_shape(st.range(0), st.range(1), st.range(2));
  const auto x = random_u8(s.H * s.W * s.C, 3);
  const auto w = random_s8(s.C * 9, 4);
  const PackedQDwConv p = pack_qdwconv(s, w.data(), nullptr, bench_quant(s.C), threads);
  std::vector<uint8_t> y(s.OH * s.OW * s.C);
  for (auto _ : st) {
    qdwconv_nhwc(p, x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GOP/s"] = benchmark::Counter(2.0 * s.OH * s.OW * s.C * 9, benchmark::Counter::kIsIterationInvariantRate,
                                            benchmark::Counter::kIs1000);
  st.SetLabel(std::string(qdwconv_microkernel_name(isa)) + " x" + std::to_string(threads));
  clear_isa_override();
}
BENCHMARK(BM_QDwConv)
    ->ArgsProduct({{112}, {32}, {1}, {0, 1, 2}, {1}})
    ->ArgsProduct({{56}, {144}, {2}, {0, 1, 2}, {1}})
    ->ArgsProduct({{14}, {384}, {1}, {0, 1, 2}, {1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// fp32 depthwise 3x3 (pads 1, Clip 0..6 in the epilogue) on MobileNetV2's depthwise layers, one
// thread, with the ISA's 3x3 form (dwconv3x3_forms: AVX-512's register-blocked f32-dwconv-16c8p-avx512f
// at stride 1, C >= 512; AVX2's sliding form) on or off (the forms before them): before/after in one
// binary. pct_peak: against the measured fp32 peak of the same ISA on one thread (fp32_peak.h). Args:
// H (= W), C, stride, isa (1 avx2, 2 avx512), 3x3 forms on.
void BM_DwConv3x3(benchmark::State& st) {
  Isa isa;
  if (!select_isa(st, st.range(3), &isa)) return;
  const Conv2dShape s = dw3x3_shape(st.range(0), st.range(1), st.range(2));
  const auto in = randoms(s.H * s.W * s.C, 4), w = randoms(s.C * 9, 5), bias = randoms(s.C, 6);
  const PackedConv2d p = pack_conv2d(s, w.data(), bias.data(), {ActKind::Clip, 0.f, 6.f}, 0,
                                     schedule::TileOrder::Scan, 1);
  AlignedVector<float> out(s.OH * s.OW * s.C);
  set_dwconv3x3_forms(st.range(4) != 0);
  for (auto _ : st) {
    conv2d_nhwc(p, in.data(), out.data(), nullptr);
    benchmark::DoNotOptimize(out.data());
  }
  set_dwconv3x3_forms(true);
  const double flops = 2.0 * s.OH * s.OW * s.C * 9;
  static std::map<int, double> peak;  // per ISA, measured once
  if (!peak.count(int(isa))) peak[int(isa)] = measured_fp32_peak_gflops(1);
  st.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
  st.counters["pct_peak"] = benchmark::Counter(flops * 100.0 / (peak[int(isa)] * 1e9),
                                               benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(std::string(st.range(4) ? dwconv_microkernel_name(isa) : "before (the forms before the 3x3 forms)"));
  clear_isa_override();
}
BENCHMARK(BM_DwConv3x3)
    ->ArgsProduct({{112}, {32}, {1}, {1, 2}, {0, 1}})
    ->ArgsProduct({{112}, {96}, {2}, {1, 2}, {0, 1}})
    ->ArgsProduct({{56}, {144}, {1, 2}, {1, 2}, {0, 1}})
    ->ArgsProduct({{28}, {192}, {1, 2}, {1, 2}, {0, 1}})
    ->ArgsProduct({{14}, {384, 576}, {1}, {1, 2}, {0, 1}})
    ->ArgsProduct({{14}, {576}, {2}, {1, 2}, {0, 1}})
    ->ArgsProduct({{7}, {960}, {1}, {1, 2}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// NCHW -> NHWC layout conversion. Args: C, H (= W).
void BM_NchwToNhwc(benchmark::State& st) {
  const int64_t C = st.range(0), H = st.range(1), W = H;
  const auto src = randoms(C * H * W, 6);
  std::vector<float> dst(src.size());
  for (auto _ : st) {
    copy_strided_f32({1, C, H, W}, src.data(), {C * H * W, H * W, W, 1}, dst.data(),
                     {H * W * C, 1, W * C, C});
    benchmark::DoNotOptimize(dst.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * 2 * sizeof(float) * C * H * W);
}
BENCHMARK(BM_NchwToNhwc)
    ->Args({3, 224})
    ->Args({32, 112})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace locus::kernels

BENCHMARK_MAIN();
