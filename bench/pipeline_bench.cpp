// The graph pipeline on a long chain: Conv -> BatchNormalization -> Relu -> Identity repeated, 100k
// nodes in all (a 4 MB model). Every pass must stay linear in the nodes: with a linear-scan
// producer lookup this took minutes (`locus info --passes` on the same chain as an ONNX file:
// 186 s before the producer/consumer index, 2.4 s after).
//   build/bench/pipeline_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include "graph/ops.h"
#include "graph/passes/pass_manager.h"
#include "runtime/session.h"

namespace locus {
namespace {

Graph chain(int blocks) {
  Graph g;
  g.opset = 13;
  g.inputs = {"x"};
  g.values["x"] = ValueInfo{DType::F32, {1, 4, 4, 4}, true};
  std::vector<float> eye(16, 0.f);
  for (int i = 0; i < 4; ++i) eye[size_t(i * 5)] = 0.5f;
  g.constants["w"] = Tensor::from_f32({4, 4, 1, 1}, eye);
  g.constants["s"] = Tensor::from_f32({4}, {1, 1, 1, 1});
  g.constants["b"] = Tensor::from_f32({4}, {0, 0, 0, 0});
  g.constants["m"] = Tensor::from_f32({4}, {0, 0, 0, 0});
  g.constants["v"] = Tensor::from_f32({4}, {1, 1, 1, 1});
  std::string prev = "x";
  auto add = [&](const char* op, std::vector<std::string> in, const std::string& out) {
    Node n;
    n.op = op;
    n.name = out + "_node";
    n.inputs = std::move(in);
    n.outputs = {out};
    g.nodes.push_back(std::move(n));
  };
  for (int i = 0; i < blocks; ++i) {
    const std::string k = std::to_string(i);
    add("Conv", {prev, "w"}, "c" + k);
    add("BatchNormalization", {"c" + k, "s", "b", "m", "v"}, "n" + k);
    add("Relu", {"n" + k}, "r" + k);
    add("Identity", {"r" + k}, "i" + k);
    prev = "i" + k;
  }
  g.outputs = {prev};
  return g;
}

// Shape inference and the default pipeline (fold BatchNorm, fuse Relu, drop Identity).
void BM_Pipeline100kNodes(benchmark::State& state) {
  const Graph g0 = chain(25000);
  for (auto _ : state) {
    state.PauseTiming();
    Graph g = g0;
    state.ResumeTiming();
    infer_shapes_and_fold(g);
    PassReport r = PassManager::default_pipeline({}, true).run(g);
    benchmark::DoNotOptimize(r);
    if (g.nodes.size() != 25000) state.SkipWithError("the pipeline did not reduce the chain to 25000 convs");
  }
  state.counters["nodes"] = double(g0.nodes.size());
}
BENCHMARK(BM_Pipeline100kNodes)->Unit(benchmark::kMillisecond)->Iterations(3);

// The whole session: pipeline, memory plan and native compile.
void BM_Session100kNodes(benchmark::State& state) {
  const Graph g0 = chain(25000);
  for (auto _ : state) {
    Session s = Session::from_graph(g0);
    benchmark::DoNotOptimize(s.activation_bytes());
  }
}
BENCHMARK(BM_Session100kNodes)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace locus

BENCHMARK_MAIN();
