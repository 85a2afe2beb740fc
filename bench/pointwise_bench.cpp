// Pointwise (1x1) convolution benchmarks: every distinct 1x1 convolution shape of MobileNetV2 (batch 1
// and 8) and of ResNet-50 (batch 1), each run by
//   native-scan / native-row / native-col   kernels::conv2d_nhwc with a cache plan from the tiling
//       planner (pack_conv2d with S = L2 bytes / 4 x 0.5 entries, order family Scan / Row / Col)
//   native-gemm                             the same kernel without a plan (S = 0: one plain GEMM)
//   onednn                                  a oneDNN convolution_forward (direct; src, weights and dst
//       in the layouts oneDNN picks, format_tag::any; bias; eltwise post-op clip(0, 6) for
//       MobileNetV2, relu for ResNet-50), created once; the input is reordered into the primitive's
//       src layout once, outside the timed loop; only execute + stream.wait() is timed
// and a `peak/fp32` case that reports the measured fp32 peak (kernels/native/fp32_peak.h).
// Every layer gets the same activation (clip for MobileNetV2 even where the network's projection 1x1
// is linear): the epilogue is a negligible part of the work and the comparison stays like for like.
// Buffers are allocated once outside the timed loop; one un-timed call precedes it.
//
// Names: pw/b1/112x112x32->16/native-scan (MobileNetV2), pw/b8/..., pw/resnet50/b1/56x56x64->256/...;
// a strided 1x1 (ResNet-50 downsample) has /s2 after the shape.
// Threads: the OpenMP default (set OMP_NUM_THREADS); the `threads` counter records it.
// Counters (rates use wall time): GFLOP/s (2 x MACs / s), pct_peak (GFLOP/s / the measured fp32 peak
// for the same thread count x 100; the peak is measured once per process, on first use), threads,
// compulsory_MiB (input + weights + output of the GEMM, fp32) and, for native variants that run a
// plan, planned = 1, traffic_MiB (the planner's modelled DRAM traffic, plan.traffic.total x 4 bytes)
// and traffic_x (traffic / compulsory). A native-scan/row/col case whose shape pack_conv2d runs
// without a plan (strided 1x1) says so in its label and reports planned = 0: it is native-gemm.
//
// Examples (keep runs short, the machine is shared):
//   OMP_NUM_THREADS=1 build/bench/pointwise_bench --benchmark_min_time=0.2 --benchmark_filter='pw/b1/'
//   OMP_NUM_THREADS=1 build/bench/pointwise_bench --benchmark_min_time=0.2 --benchmark_filter='pw/b1/|peak'
//       --benchmark_repetitions=3 --benchmark_report_aggregates_only=true --pw_summary   (one line)
//   OMP_NUM_THREADS=2 build/bench/pointwise_bench --benchmark_filter='pw/resnet50/.*(scan|onednn)'
//   build/bench/pointwise_bench --pw_list --pw_model mobilenetv2 --pw_batch 1
//   OMP_NUM_THREADS=1 build/bench/pointwise_bench --pw_probe --pw_shape '56x56x24->144' --pw_variant scan
// Extra options (ours, besides Google Benchmark's): see --help.
//   --pw_summary   after the run, print a markdown table per layer (µs, GFLOP/s, pct_peak of every
//                  variant; medians when --benchmark_repetitions > 1) and the per-group sums
//   --pw_list      print the distinct 1x1 shapes of a model, largest MACs first, and exit
//   --pw_probe     run ONE layer call inside locus_pointwise_probe_layer (for
//                  scripts/pointwise-cachegrind.sh) and print the plan's modelled traffic
#include <benchmark/benchmark.h>
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "graph/error.h"
#include "graph/ops.h"
#include "graph/passes/pass_manager.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/fp32_peak.h"
#include "models/builders.h"
#include "runtime/machine_info.h"

namespace {

using namespace locus;
using namespace locus::kernels;

// ---- shapes ---------------------------------------------------------------------------------

struct PwShape {
  std::string model;  // "mobilenetv2" or "resnet50"
  int64_t batch = 1, H = 0, W = 0, C = 0, OC = 0, stride = 1;
  auto key() const { return std::tie(batch, H, W, C, OC, stride); }
  bool operator<(const PwShape& o) const { return key() < o.key(); }
  int64_t OH() const { return (H - 1) / stride + 1; }
  int64_t OW() const { return (W - 1) / stride + 1; }
  int64_t M() const { return batch * OH() * OW(); }
  int64_t macs() const { return M() * C * OC; }
  // GEMM operands read and written once: A (the used input pixels), B, C
  int64_t compulsory_entries() const { return M() * C + C * OC + M() * OC; }
  std::string str() const {
    return cat(H, "x", W, "x", C, "->", OC, stride > 1 ? cat("/s", stride) : std::string());
  }
  std::string group() const {
    return model == "mobilenetv2" ? cat("pw/b", batch) : cat("pw/", model, "/b", batch);
  }
  Activation act() const {
    Activation a;
    if (model == "resnet50") {
      a.kind = ActKind::Relu;
    } else {
      a.kind = ActKind::Clip;
      a.lo = 0.f;
      a.hi = 6.f;
    }
    return a;
  }
};

std::vector<PwShape> pw_shapes(const std::string& model, int64_t batch) {
  models::BuildOptions bo;
  bo.batch = batch;
  Graph g = model == "resnet50" ? models::build_resnet50(bo) : models::build_mobilenet_v2(bo);
  infer_shapes_and_fold(g);
  std::set<PwShape> shapes;
  for (auto& n : g.nodes) {
    if (n.op != "Conv" || n.i("group", 1) != 1) continue;
    ValueInfo x = g.info(n.input(0)), w = g.info(n.input(1));
    if (w.shape[2] != 1 || w.shape[3] != 1) continue;
    auto pads = n.ints("pads", {0, 0, 0, 0});
    if (std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p != 0; })) continue;
    auto st = n.ints("strides", {1, 1});
    PwShape s;
    s.model = model;
    s.batch = batch;
    s.C = x.shape[1];
    s.H = x.shape[2];
    s.W = x.shape[3];
    s.OC = w.shape[0];
    s.stride = st[0];
    shapes.insert(s);
  }
  return {shapes.begin(), shapes.end()};
}

// ---- one layer, ready to run ----------------------------------------------------------------

enum class Variant { Scan, Row, Col, Gemm, Onednn };
const Variant kVariants[] = {Variant::Scan, Variant::Row, Variant::Col, Variant::Gemm, Variant::Onednn};

const char* variant_name(Variant v) {
  switch (v) {
    case Variant::Scan: return "native-scan";
    case Variant::Row: return "native-row";
    case Variant::Col: return "native-col";
    case Variant::Gemm: return "native-gemm";
    default: return "onednn";
  }
}

bool parse_variant(std::string s, Variant* v) {
  if (s.rfind("native-", 0) == 0) s = s.substr(7);
  if (s == "scan") *v = Variant::Scan;
  else if (s == "row") *v = Variant::Row;
  else if (s == "col") *v = Variant::Col;
  else if (s == "gemm") *v = Variant::Gemm;
  else if (s == "onednn") *v = Variant::Onednn;
  else return false;
  return true;
}

// The tiling planner's buffer: half the core's L2, in floats (512K fallback).
int64_t planner_entries() {
  static const int64_t s = [] {
    int64_t l2 = read_machine_info().cache_bytes(2);
    if (l2 <= 0) l2 = 512 * 1024;
    return l2 / 4 / 2;
  }();
  return s;
}

std::vector<float> randoms(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

namespace dn = dnnl;

struct Layer {
  PwShape s;
  Variant v = Variant::Scan;
  int64_t S = 0;  // planner entries passed to pack_conv2d (0 for gemm / onednn)
  // native
  PackedConv2d packed;
  std::vector<float> in, out, scratch;
  // oneDNN
  dn::engine eng;
  dn::stream strm;
  dn::convolution_forward prim;
  std::unordered_map<int, dn::memory> args;
  std::string impl;

  bool planned() const { return v != Variant::Onednn && packed.scan != nullptr; }
  const schedule::Plan* plan() const { return planned() ? &packed.scan->plan : nullptr; }

  void run() {
    if (v == Variant::Onednn) {
      prim.execute(strm, args);
      strm.wait();
    } else {
      conv2d_nhwc(packed, in.data(), out.data(), scratch.data());
    }
  }

  std::string label() const {
    if (v == Variant::Onednn) return impl;
    if (const schedule::Plan* p = plan())
      return cat(schedule::order_name(p->order), " m=", p->m, " n=", p->n, " k=", p->k, " res=", p->resident_strips);
    if (v == Variant::Gemm) return "plain GEMM (no plan)";
    return cat("unplanned: pack_conv2d ignored S=", S, " for this shape (runs as native-gemm)");
  }

  double checksum() const {
    double c = 0;
    if (v == Variant::Onednn) {
      const dn::memory& d = args.at(DNNL_ARG_DST);
      const float* p = static_cast<const float*>(d.get_data_handle());
      size_t n = d.get_desc().get_size() / sizeof(float);
      for (size_t i = 0; i < n; ++i) c += p[i];
    } else {
      for (float x : out) c += x;
    }
    return c;
  }
};

std::unique_ptr<Layer> make_layer(const PwShape& s, Variant v) {
  auto L = std::make_unique<Layer>();
  L->s = s;
  L->v = v;
  const std::vector<float> w = randoms(size_t(s.OC * s.C), 1234, -0.2f, 0.2f);  // OIHW, 1x1
  const std::vector<float> bias = randoms(size_t(s.OC), 99, -0.5f, 0.5f);
  const std::vector<float> x = randoms(size_t(s.batch * s.H * s.W * s.C), 7, 0.f, 1.f);  // NHWC
  const Activation act = s.act();
  if (v != Variant::Onednn) {
    Conv2dShape cs;
    cs.N = s.batch;
    cs.H = s.H;
    cs.W = s.W;
    cs.C = s.C;
    cs.OH = s.OH();
    cs.OW = s.OW();
    cs.OC = s.OC;
    cs.SH = cs.SW = s.stride;
    schedule::TileOrder order = v == Variant::Row ? schedule::TileOrder::Row : v == Variant::Col ? schedule::TileOrder::Col : schedule::TileOrder::Scan;
    L->S = v == Variant::Gemm ? 0 : planner_entries();
    L->packed = pack_conv2d(cs, w.data(), bias.data(), act, L->S, order, omp_get_max_threads());
    L->in = x;
    L->out.assign(size_t(s.M() * s.OC), 0.f);
    L->scratch.assign(size_t(std::max<int64_t>(1, conv2d_scratch_floats(L->packed))), 0.f);
    return L;
  }
  using md = dn::memory::desc;
  using tag = dn::memory::format_tag;
  using dt = dn::memory::data_type;
  L->eng = dn::engine(dn::engine::kind::cpu, 0);
  L->strm = dn::stream(L->eng);
  const dn::memory::dims src_d{s.batch, s.C, s.H, s.W}, wei_d{s.OC, s.C, 1, 1}, bias_d{s.OC},
      dst_d{s.batch, s.OC, s.OH(), s.OW()}, strides{s.stride, s.stride}, pad{0, 0};
  dn::convolution_forward::desc d(dn::prop_kind::forward_inference, dn::algorithm::convolution_direct,
                                  md(src_d, dt::f32, tag::any), md(wei_d, dt::f32, tag::any),
                                  md(bias_d, dt::f32, tag::x), md(dst_d, dt::f32, tag::any), strides, pad, pad);
  dn::post_ops po;
  if (act.kind == ActKind::Relu)
    po.append_eltwise(1.f, dn::algorithm::eltwise_relu, 0.f, 0.f);
  else
    po.append_eltwise(1.f, dn::algorithm::eltwise_clip, act.lo, act.hi);
  dn::primitive_attr attr;
  attr.set_post_ops(po);
  dn::convolution_forward::primitive_desc pd(d, attr, L->eng);
  L->impl = pd.impl_info_str();
  L->prim = dn::convolution_forward(pd);
  // user data -> the primitive's layouts, once
  auto reordered = [&](const md& user_md, const std::vector<float>& data, const md& want) {
    dn::memory user(user_md, L->eng, const_cast<float*>(data.data()));
    dn::memory m(want, L->eng);
    dn::reorder(user, m).execute(L->strm, user, m);
    L->strm.wait();
    return m;
  };
  L->args[DNNL_ARG_SRC] = reordered(md(src_d, dt::f32, tag::nhwc), x, pd.src_desc());
  L->args[DNNL_ARG_WEIGHTS] = reordered(md(wei_d, dt::f32, tag::oihw), w, pd.weights_desc());
  L->args[DNNL_ARG_BIAS] = reordered(md(bias_d, dt::f32, tag::x), bias, md(bias_d, dt::f32, tag::x));
  L->args[DNNL_ARG_DST] = dn::memory(pd.dst_desc(), L->eng);
  if (pd.scratchpad_desc().get_size() > 0) L->args[DNNL_ARG_SCRATCHPAD] = dn::memory(pd.scratchpad_desc(), L->eng);
  return L;
}

// ---- the measured peak, once per thread count -----------------------------------------------

double peak_gflops(int threads) {
  static std::map<int, double> cache;
  auto it = cache.find(threads);
  if (it == cache.end()) it = cache.emplace(threads, measured_fp32_peak_gflops(threads)).first;
  return it->second;
}

// ---- benchmarks -----------------------------------------------------------------------------

void BM_Pointwise(benchmark::State& st, PwShape s, Variant v) {
  // Google Benchmark calls this several times (iteration estimation): keep the last layer built.
  static std::unique_ptr<Layer> cached;
  if (!cached || cached->s.key() != s.key() || cached->s.model != s.model || cached->v != v) {
    cached.reset();
    try {
      cached = make_layer(s, v);
    } catch (const std::exception& e) {
      st.SkipWithError(e.what());
      return;
    }
  }
  Layer& L = *cached;
  const int threads = omp_get_max_threads();
  const double peak = peak_gflops(threads);  // measured before the timed loop, on first use
  L.run();                                   // warm-up, not timed
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : st) L.run();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double gflops = secs > 0 ? 2.0 * double(s.macs()) * double(st.iterations()) / secs * 1e-9 : 0.0;
  const double mib = 4.0 / (1024.0 * 1024.0);
  st.counters["GFLOP/s"] = gflops;
  st.counters["pct_peak"] = peak > 0 ? 100.0 * gflops / peak : 0.0;
  st.counters["threads"] = threads;
  st.counters["compulsory_MiB"] = double(s.compulsory_entries()) * mib;
  if (v != Variant::Onednn && v != Variant::Gemm) st.counters["planned"] = L.planned() ? 1 : 0;
  if (const schedule::Plan* p = L.plan()) {
    st.counters["traffic_MiB"] = double(p->traffic.total) * mib;
    st.counters["traffic_x"] = double(p->traffic.total) / double(s.compulsory_entries());
  }
  st.SetLabel(L.label());
}

void BM_Peak(benchmark::State& st) {
  const int threads = omp_get_max_threads();
  double peak = 0;
  for (auto _ : st) peak = peak_gflops(threads);
  st.counters["GFLOP/s"] = peak;
  st.counters["threads"] = threads;
  st.counters["nominal_GFLOP/s"] = nominal_fp32_peak_gflops(threads);
  st.counters["cpuinfo_MHz"] = cpuinfo_mhz();
  st.SetLabel(fp32_peak_method());
}

void register_all() {
  benchmark::RegisterBenchmark("peak/fp32", BM_Peak)->Iterations(1)->Unit(benchmark::kMillisecond);
  std::vector<PwShape> all;
  for (int64_t batch : {1, 8})
    for (auto& s : pw_shapes("mobilenetv2", batch)) all.push_back(s);
  for (auto& s : pw_shapes("resnet50", 1)) all.push_back(s);
  for (auto& s : all)
    for (Variant v : kVariants) {
      std::string name = s.group() + "/" + s.str() + "/" + variant_name(v);
      benchmark::RegisterBenchmark(name.c_str(), BM_Pointwise, s, v)->Unit(benchmark::kMicrosecond)->UseRealTime();
    }
}

// ---- --pw_summary: per-layer table of the run -------------------------------------------------

struct Result {
  double us = 0, gflops = 0, pct = 0;
};

class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.error_occurred) continue;
      const bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      const bool single = r.run_type == Run::RT_Iteration && r.repetitions <= 1;
      if (!median && !single) continue;
      Result x;
      x.us = r.GetAdjustedRealTime();
      auto get = [&](const char* k) {
        auto it = r.counters.find(k);
        return it == r.counters.end() ? 0.0 : double(it->second);
      };
      x.gflops = get("GFLOP/s");
      x.pct = get("pct_peak");
      results_[r.run_name.function_name] = x;
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void print_summary(const std::vector<PwShape>& shapes) const {
    std::printf("\n## pointwise summary (%s; wall-time medians if repetitions > 1)\n\n",
                std::to_string(omp_get_max_threads()).append(" thread(s)").c_str());
    // the peak every pct_peak of this process was divided by (measured once, cached)
    const double peak = peak_gflops(omp_get_max_threads());
    std::printf("measured fp32 peak: %.1f GFLOP/s (%s)\n%s\n\n", peak, fp32_peak_method().c_str(),
                nominal_fp32_peak_method(omp_get_max_threads()).c_str());
    std::string cur;
    std::map<Variant, double> sum_us;
    double sum_flop = 0;
    int rows = 0;
    auto flush = [&]() {
      if (cur.empty() || rows == 0) return;
      std::printf("| **sum %s** (%d layers) | %.2f |", cur.c_str(), rows, sum_flop * 1e-9);
      for (Variant v : kVariants) {
        double t = sum_us[v];
        if (t > 0) {
          const double gf = sum_flop / (t * 1e-6) * 1e-9;
          if (peak > 0)
            std::printf(" %.1f | %.1f | %.0f |", t, gf, 100.0 * gf / peak);
          else
            std::printf(" %.1f | %.1f | |", t, gf);
        }
        else
          std::printf(" - | - | |");
      }
      if (sum_us[Variant::Onednn] > 0 && sum_us[Variant::Scan] > 0)
        std::printf(" %.2f |", sum_us[Variant::Scan] / sum_us[Variant::Onednn]);
      else
        std::printf(" - |");
      std::printf("\n");
    };
    for (const PwShape& s : shapes) {
      std::map<Variant, const Result*> got;
      for (Variant v : kVariants) {
        auto it = results_.find(s.group() + "/" + s.str() + "/" + variant_name(v));
        if (it != results_.end()) got[v] = &it->second;
      }
      if (got.empty()) continue;
      if (s.group() != cur) {
        flush();
        cur = s.group();
        sum_us.clear();
        sum_flop = 0;
        rows = 0;
        std::printf("\n### %s\n\n| layer | GFLOP |", cur.c_str());
        for (Variant v : kVariants) std::printf(" %s µs | GFLOP/s | %%peak |", variant_name(v));
        std::printf(" scan/onednn time |\n|---|---|");
        for (size_t i = 0; i < std::size(kVariants); ++i) std::printf("---|---|---|");
        std::printf("---|\n");
      }
      ++rows;
      sum_flop += 2.0 * double(s.macs());
      std::printf("| %s | %.3f |", s.str().c_str(), 2.0 * double(s.macs()) * 1e-9);
      for (Variant v : kVariants) {
        if (got.count(v)) {
          std::printf(" %.1f | %.1f | %.0f |", got[v]->us, got[v]->gflops, got[v]->pct);
          sum_us[v] += got[v]->us;
        } else {
          std::printf(" - | - | - |");
        }
      }
      if (got.count(Variant::Scan) && got.count(Variant::Onednn))
        std::printf(" %.2f |\n", got[Variant::Scan]->us / got[Variant::Onednn]->us);
      else
        std::printf(" - |\n");
    }
    flush();
  }

 private:
  std::map<std::string, Result> results_;
};

// ---- --pw_list and --pw_probe -----------------------------------------------------------------

// The layer call scripts/pointwise-cachegrind.sh measures (--toggle-collect): exactly one layer.
extern "C" __attribute__((noinline)) void locus_pointwise_probe_layer(Layer* L) {
  L->run();
  asm volatile("" ::: "memory");
}

bool parse_shape(const std::string& spec, int64_t batch, int64_t stride, PwShape* s) {
  long long h, w, c, oc, m, k, n;
  char tail;
  if (std::sscanf(spec.c_str(), "%lldx%lldx%lld->%lld%c", &h, &w, &c, &oc, &tail) == 4) {
    s->H = h, s->W = w, s->C = c, s->OC = oc;
  } else if (std::sscanf(spec.c_str(), "%lld,%lld,%lld%c", &m, &k, &n, &tail) == 3) {
    if (batch != 1 || stride != 1) return false;  // M,K,N is a GEMM: M pixels of one image
    s->H = 1, s->W = m, s->C = k, s->OC = n;
  } else {
    return false;
  }
  s->batch = batch;
  s->stride = stride;
  return s->H > 0 && s->W > 0 && s->C > 0 && s->OC > 0 && batch > 0 && stride > 0;
}

const char* kUsage =
    "pointwise_bench: 1x1 convolution benchmarks (native scan/row/col/gemm vs oneDNN); see the header\n"
    "comment of bench/pointwise_bench.cpp. Google Benchmark options follow below. Ours:\n"
    "  --pw_summary          after the run, print a markdown table per layer (µs, GFLOP/s, %peak of\n"
    "                        each variant, medians with --benchmark_repetitions) and per-group sums\n"
    "  --pw_list             print the distinct 1x1 shapes of --pw_model (mobilenetv2|resnet50,\n"
    "                        default mobilenetv2) at --pw_batch N (default 1), largest MACs first:\n"
    "                        'SHAPE STRIDE MACS' per line; then exit\n"
    "  --pw_probe            build ONE layer, call it --pw_warmup times (default 1, not measured),\n"
    "                        then exactly once inside the extern \"C\" noinline function\n"
    "                        locus_pointwise_probe_layer (what scripts/pointwise-cachegrind.sh gives\n"
    "                        valgrind as --toggle-collect); prints 'key value' lines: the plan, its\n"
    "                        modelled traffic and the compulsory traffic. Options:\n"
    "      --pw_shape HxWxC->OC | M,K,N   the layer (M,K,N: a GEMM of M pixels, batch 1)\n"
    "      --pw_variant scan|row|col|gemm|onednn\n"
    "      --pw_batch N  --pw_stride S  --pw_model mobilenetv2|resnet50 (activation: clip 0..6 | relu)\n"
    "      --pw_warmup N\n";

int probe(const std::string& shape, const std::string& variant, const std::string& model, int64_t batch,
          int64_t stride, int warmup) {
  PwShape s;
  s.model = model;
  Variant v;
  if (!parse_shape(shape, batch, stride, &s)) {
    std::fprintf(stderr, "pointwise_bench: bad --pw_shape '%s' (HxWxC->OC, or M,K,N with batch 1)\n", shape.c_str());
    return 2;
  }
  if (!parse_variant(variant, &v)) {
    std::fprintf(stderr, "pointwise_bench: bad --pw_variant '%s' (scan|row|col|gemm|onednn)\n", variant.c_str());
    return 2;
  }
  std::unique_ptr<Layer> L = make_layer(s, v);
  for (int i = 0; i < warmup; ++i) L->run();
  locus_pointwise_probe_layer(L.get());
  const double mib = 4.0 / (1024.0 * 1024.0);
  std::printf("shape %s\nbatch %lld\nvariant %s\nthreads %d\nmacs %lld\nS_entries %lld\n", s.str().c_str(),
              (long long)s.batch, variant_name(v), omp_get_max_threads(), (long long)s.macs(), (long long)L->S);
  std::printf("label %s\n", L->label().c_str());
  std::printf("compulsory_entries %lld\ncompulsory_mib %.3f\n", (long long)s.compulsory_entries(),
              double(s.compulsory_entries()) * mib);
  if (const schedule::Plan* p = L->plan()) {
    std::printf("planned 1\nplan %s\n", p->describe().c_str());
    std::printf("traffic_entries %lld\ntraffic_mib %.3f\n", (long long)p->traffic.total, double(p->traffic.total) * mib);
  } else {
    std::printf("planned 0\n");
  }
  std::printf("checksum %.6g\n", L->checksum());
  return 0;
}

int list_shapes(const std::string& model, int64_t batch) {
  std::vector<PwShape> v = pw_shapes(model, batch);
  std::stable_sort(v.begin(), v.end(), [](const PwShape& a, const PwShape& b) { return a.macs() > b.macs(); });
  for (auto& s : v)
    std::printf("%lldx%lldx%lld->%lld %lld %lld\n", (long long)s.H, (long long)s.W, (long long)s.C, (long long)s.OC,
                (long long)s.stride, (long long)s.macs());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool summary = false, list = false, do_probe = false;
  std::string shape, variant = "scan", model = "mobilenetv2";
  int64_t batch = 1, stride = 1;
  int warmup = 1;
  std::vector<char*> rest{argv[0]};
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&](const char* flag) -> std::string {
        std::string f = flag;
        if (a.rfind(f + "=", 0) == 0) return a.substr(f.size() + 1);
        LOCUS_CHECK(i + 1 < argc, flag, " needs a value");
        return argv[++i];
      };
      auto is = [&](const char* flag) { return a == flag || a.rfind(std::string(flag) + "=", 0) == 0; };
      if (a == "--pw_summary") summary = true;
      else if (a == "--pw_list") list = true;
      else if (a == "--pw_probe") do_probe = true;
      else if (is("--pw_shape")) shape = value("--pw_shape");
      else if (is("--pw_variant")) variant = value("--pw_variant");
      else if (is("--pw_model")) model = value("--pw_model");
      else if (is("--pw_batch")) batch = std::stoll(value("--pw_batch"));
      else if (is("--pw_stride")) stride = std::stoll(value("--pw_stride"));
      else if (is("--pw_warmup")) warmup = std::stoi(value("--pw_warmup"));
      else if (a == "--help" || a == "-h") {
        std::fputs(kUsage, stdout);
        rest.push_back(argv[i]);
      } else rest.push_back(argv[i]);
    }
    LOCUS_CHECK(model == "mobilenetv2" || model == "resnet50", "--pw_model: mobilenetv2 or resnet50, not '", model, "'");
    if (list) return list_shapes(model, batch);
    if (do_probe) {
      LOCUS_CHECK(!shape.empty(), "--pw_probe needs --pw_shape");
      return probe(shape, variant, model, batch, stride, warmup);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pointwise_bench: %s\n", e.what());
    return 2;
  }

  int n = int(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
  register_all();
  if (summary) {
    SummaryReporter rep;
    benchmark::RunSpecifiedBenchmarks(&rep);
    std::vector<PwShape> shapes;
    for (int64_t b : {1, 8})
      for (auto& s : pw_shapes("mobilenetv2", b)) shapes.push_back(s);
    for (auto& s : pw_shapes("resnet50", 1)) shapes.push_back(s);
    rep.print_summary(shapes);
  } else {
    benchmark::RunSpecifiedBenchmarks();
  }
  benchmark::Shutdown();
  return 0;
}
