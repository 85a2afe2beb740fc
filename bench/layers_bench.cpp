// Per-layer benchmarks: every distinct convolution shape of MobileNetV2 (1x1, depthwise 3x3, the
// 3x3 stem), each as a one-node model run through a Session, for every backend this build has
// (native, and oneDNN where available). Counters: GFLOP/s (2 x MACs per second, wall time) and the
// compulsory bytes per MAC (input + weights + output, fp32, divided by MACs: a lower bound of the
// data each backend must move).
//   bench/layers_bench --benchmark_min_time=0.2 --benchmark_filter=pw
#include <benchmark/benchmark.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "graph/ops.h"
#include "graph/passes/pass_manager.h"
#include "models/builders.h"
#include "runtime/session.h"

namespace {

using namespace locus;

struct ConvShape {
  int64_t batch, C, H, W, OC, K, stride, group;
  auto key() const { return std::tie(batch, C, H, W, OC, K, stride, group); }
  bool operator<(const ConvShape& o) const { return key() < o.key(); }
  std::string kind() const { return group > 1 ? "dw" : K == 1 ? "pw" : "conv"; }
  int64_t OH() const { return (H + 2 * (K / 2) - K) / stride + 1; }
  int64_t OW() const { return (W + 2 * (K / 2) - K) / stride + 1; }
  int64_t macs() const { return batch * OH() * OW() * OC * (C / group) * K * K; }
};

std::vector<ConvShape> mobilenet_conv_shapes(int64_t batch) {
  models::BuildOptions bo;
  bo.batch = batch;
  Graph g = models::build_mobilenet_v2(bo);
  infer_shapes_and_fold(g);
  std::set<ConvShape> shapes;
  for (auto& n : g.nodes) {
    if (n.op != "Conv") continue;
    ValueInfo x = g.info(n.input(0)), w = g.info(n.input(1));
    shapes.insert({batch, x.shape[1], x.shape[2], x.shape[3], w.shape[0], w.shape[2], n.ints("strides")[0],
                   n.i("group", 1)});
  }
  return {shapes.begin(), shapes.end()};
}

Graph one_conv(const ConvShape& s) {
  Graph g;
  g.opset = 13;
  g.inputs = {"x"};
  g.values["x"] = {DType::F32, {s.batch, s.C, s.H, s.W}, true};
  Tensor w(DType::F32, {s.OC, s.C / s.group, s.K, s.K});
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = float((i * 7919) % 97) / 97.f - 0.5f;
  g.constants["w"] = w;
  g.constants["b"] = Tensor(DType::F32, {s.OC});
  g.constants["lo"] = Tensor::scalar_f32(0.f);
  g.constants["hi"] = Tensor::scalar_f32(6.f);
  Node c;
  c.op = "Conv";
  c.name = "conv";
  c.inputs = {"x", "w", "b"};
  c.outputs = {"y"};
  int64_t p = s.K / 2;
  c.attrs["pads"] = std::vector<int64_t>{p, p, p, p};
  c.attrs["strides"] = std::vector<int64_t>{s.stride, s.stride};
  c.attrs["group"] = s.group;
  Node a;
  a.op = "Clip";
  a.name = "relu6";
  a.inputs = {"y", "lo", "hi"};
  a.outputs = {"out"};
  g.nodes = {c, a};
  g.outputs = {"out"};
  return g;
}

void BM_Layer(benchmark::State& st, ConvShape s, std::string backend) {
  SessionOptions o;
  o.backend_name = backend;
  std::unique_ptr<Session> session;
  try {
    session = std::make_unique<Session>(Session::from_graph(one_conv(s), o));
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
    return;
  }
  Tensor x(DType::F32, {s.batch, s.C, s.H, s.W});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(i % 13) / 13.f;
  std::map<std::string, Tensor> in{{"x", x}};
  for (auto _ : st) {
    auto out = session->run(in);
    benchmark::DoNotOptimize(out);
  }
  double macs = double(s.macs());
  st.counters["GFLOP/s"] = benchmark::Counter(2 * macs * double(st.iterations()) * 1e-9, benchmark::Counter::kIsRate);
  double bytes = 4.0 * double(s.batch * s.C * s.H * s.W + s.OC * (s.C / s.group) * s.K * s.K + s.batch * s.OH() * s.OW() * s.OC);
  st.counters["min_bytes_per_MAC"] = bytes / macs;
}

const bool registered = [] {
  for (int64_t batch : {1, 8})
    for (auto& s : mobilenet_conv_shapes(batch))
      for (auto& b : backend_names()) {
        if (b == "reference") continue;
        std::string name = "layer/" + s.kind() + "/b" + std::to_string(batch) + "/" + std::to_string(s.H) + "x" +
                           std::to_string(s.W) + "x" + std::to_string(s.C) + "->" + std::to_string(s.OC) + "/k" +
                           std::to_string(s.K) + "s" + std::to_string(s.stride) + "/" + b;
        benchmark::RegisterBenchmark(name.c_str(), BM_Layer, s, b)->Unit(benchmark::kMicrosecond)->UseRealTime();
      }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
