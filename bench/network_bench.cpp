// Whole-network benchmarks: MobileNetV2 and ResNet-50 from the in-code builders, and the real
// MobileNetV2 from the model search path, for every backend of this build, at batch 1 and 8.
// Counters: images/s and GFLOP/s (2 x MACs per second, wall time).
//   bench/network_bench --benchmark_min_time=1 --benchmark_filter=mobilenet
#include <benchmark/benchmark.h>

#include "graph/passes/pass_manager.h"
#include "models/builders.h"
#include "models/model_path.h"
#include "graph/cost.h"
#include "runtime/session.h"

namespace {

using namespace locus;

void BM_Network(benchmark::State& st, std::string model, std::string backend, int64_t batch) {
  SessionOptions o;
  o.backend_name = backend;
  o.batch = batch;
  std::unique_ptr<Session> s;
  try {
    models::BuildOptions bo;
    bo.batch = batch;
    if (model == "mobilenet_v2") s = std::make_unique<Session>(Session::from_graph(models::build_mobilenet_v2(bo), o));
    else if (model == "resnet50") s = std::make_unique<Session>(Session::from_graph(models::build_resnet50(bo), o));
    else s = std::make_unique<Session>(Session::from_file(models::find_model(model), o));
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
    return;
  }
  std::map<std::string, Tensor> in;
  for (auto& name : s->input_names()) {
    Tensor t(DType::F32, s->input_info(name).shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(i % 255) / 255.f - 0.5f;
    in[name] = t;
  }
  for (auto _ : st) {
    auto out = s->run(in);
    benchmark::DoNotOptimize(out);
  }
  double macs = double(graph_macs(s->graph()));
  st.counters["images/s"] = benchmark::Counter(double(batch) * double(st.iterations()), benchmark::Counter::kIsRate);
  st.counters["GFLOP/s"] = benchmark::Counter(2 * macs * double(st.iterations()) * 1e-9, benchmark::Counter::kIsRate);
  st.counters["activation_MiB"] = double(s->activation_bytes()) / (1 << 20);
}

const bool registered = [] {
  for (std::string model : {"mobilenetv2-12-fp32-from-int8/mobilenetv2-12-fp32-from-int8.onnx", "mobilenet_v2", "resnet50"})
    for (int64_t batch : {1, 8})
      for (auto& b : backend_names()) {
        if (b == "reference") continue;
        if (model.find(".onnx") != std::string::npos && batch != 1) continue;  // the file's batch is symbolic; keep 1
        std::string short_name = model.find(".onnx") != std::string::npos ? "mobilenetv2_real" : model;
        std::string name = "network/" + short_name + "/b" + std::to_string(batch) + "/" + b;
        benchmark::RegisterBenchmark(name.c_str(), BM_Network, model, b, batch)->Unit(benchmark::kMillisecond)->UseRealTime();
      }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
