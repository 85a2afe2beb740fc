// Per-block benchmarks (issue 5): each of MobileNetV2's 17 inverted-residual blocks as a one-block
// model (1x1 expand + ReLU6 -> 3x3 depthwise + ReLU6 -> 1x1 project [+ the block input]; block 1
// has no expand), at batch 1 and 8, run through a Session four ways:
//   native-fused    the native backend (fuse-inverted-residual on: one FusedInvertedResidual kernel)
//   native-unfused  the native backend with --no-fuse (three planned convolutions + Add)
//   onednn          unfused oneDNN primitives
//   onednn-dwfused  oneDNN with its own 1x1 + depthwise post-op fusion
// Counter GFLOP/s = 2 x MACs of the block / wall time. Blocks with equal shapes (e.g. 9 and 10) are
// listed separately so the table lines up with the network.
// Caveat: a Session run converts its input from and its output to the logical NCHW layout (native:
// NCHW <-> NHWC copies; oneDNN: reorders to and from its blocked layouts), which a block inside the
// network does not pay. For the large early blocks this is a large share (block 1, 112x112x32 in,
// x16 out: about 0.4 ms of native's 0.84 ms); `locus bench --profile` on the whole model gives the
// in-network time of each fused block.
//   OMP_NUM_THREADS=1 build/bench/blocks_bench --benchmark_min_time=0.2 --benchmark_filter=b1/
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "runtime/session.h"

namespace {

using namespace locus;

struct Block {
  int index;
  int64_t H, C, E, OC, stride;
  bool residual() const { return stride == 1 && C == OC; }
  int64_t OH() const { return (H + 2 - 3) / stride + 1; }
  int64_t macs(int64_t batch) const {
    const bool expand = E != C;
    return batch * ((expand ? H * H * C * E : 0) + OH() * OH() * E * 9 + OH() * OH() * E * OC);
  }
};

// MobileNetV2 (torchvision): (expansion t, output c, repeats n, first stride s) per stage.
std::vector<Block> mobilenet_blocks() {
  const int64_t cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                             {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  std::vector<Block> v;
  int64_t H = 112, C = 32;
  int idx = 1;
  for (auto& s : cfg)
    for (int64_t r = 0; r < s[2]; ++r) {
      const int64_t stride = r == 0 ? s[3] : 1;
      v.push_back({idx++, H, C, C * s[0], s[1], stride});
      H = (H + 2 - 3) / stride + 1;
      C = s[1];
    }
  return v;
}

Tensor weights(Shape s, uint32_t seed) {
  Tensor t(DType::F32, s);
  uint32_t x = seed * 2654435761u + 1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    x = x * 1664525u + 1013904223u;
    t.data<float>()[i] = (float((x >> 8) & 0xffff) / 65535.f - 0.5f) * 0.2f;
  }
  return t;
}

Graph block_graph(const Block& b, int64_t batch) {
  Graph g;
  g.opset = 13;
  g.inputs = {"x"};
  g.values["x"] = {DType::F32, {batch, b.C, b.H, b.H}, true};
  g.constants["lo"] = Tensor::scalar_f32(0.f);
  g.constants["hi"] = Tensor::scalar_f32(6.f);
  int n = 0;
  auto conv = [&](const std::string& in, int64_t ic, int64_t oc, int64_t k, int64_t stride, int64_t group) {
    const std::string id = std::to_string(n++);
    g.constants["w" + id] = weights({oc, ic / group, k, k}, uint32_t(n));
    g.constants["b" + id] = weights({oc}, uint32_t(n + 100));
    Node c;
    c.op = "Conv";
    c.name = "conv" + id;
    c.inputs = {in, "w" + id, "b" + id};
    c.outputs = {"y" + id};
    c.attrs["pads"] = std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2};
    c.attrs["strides"] = std::vector<int64_t>{stride, stride};
    c.attrs["group"] = group;
    g.nodes.push_back(c);
    return c.outputs[0];
  };
  auto relu6 = [&](const std::string& in) {
    Node a;
    a.op = "Clip";
    a.name = "clip_" + in;
    a.inputs = {in, "lo", "hi"};
    a.outputs = {in + "_r6"};
    g.nodes.push_back(a);
    return a.outputs[0];
  };
  std::string t = "x";
  if (b.E != b.C) t = relu6(conv(t, b.C, b.E, 1, 1, 1));
  t = relu6(conv(t, b.E, b.E, 3, b.stride, b.E));
  t = conv(t, b.E, b.OC, 1, 1, 1);
  if (b.residual()) {
    Node add;
    add.op = "Add";
    add.name = "add";
    add.inputs = {t, "x"};
    add.outputs = {"out"};
    g.nodes.push_back(add);
    t = "out";
  }
  g.outputs = {t};
  return g;
}

void BM_Block(benchmark::State& st, Block b, int64_t batch, std::string variant) {
  SessionOptions o;
  o.backend_name = variant.rfind("native", 0) == 0 ? "native" : variant;
  if (variant == "native-unfused") o.pipeline.disabled_passes = {"fuse-inverted-residual"};
  std::unique_ptr<Session> s;
  try {
    s = std::make_unique<Session>(Session::from_graph(block_graph(b, batch), o));
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
    return;
  }
  int fused = 0;
  for (auto& n : s->graph().nodes) fused += n.op == "FusedInvertedResidual";
  Tensor x = weights({batch, b.C, b.H, b.H}, 7);
  std::map<std::string, Tensor> in{{"x", x}};
  for (auto _ : st) {
    auto out = s->run(in);
    benchmark::DoNotOptimize(out);
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(b.macs(batch)) * double(st.iterations()) * 1e-9,
                                              benchmark::Counter::kIsRate);
  st.counters["fused"] = fused;
}

const bool registered = [] {
  for (int64_t batch : {1, 8})
    for (const Block& b : mobilenet_blocks())
      for (const char* v : {"native-fused", "native-unfused", "onednn", "onednn-dwfused"}) {
        char name[160];
        std::snprintf(name, sizeof name, "block%02d/b%lld/%lldx%lldx%lld-%lld-%lld/s%lld/%s", b.index,
                      (long long)batch, (long long)b.H, (long long)b.H, (long long)b.C, (long long)b.E,
                      (long long)b.OC, (long long)b.stride, v);
        benchmark::RegisterBenchmark(name, BM_Block, b, batch, std::string(v))
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
      }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
