// The fused int8 inverted-residual block end to end: the fuse-inverted-residual pass on QLinearConv
// chains (graph/passes/fuse_inverted_residual.cpp -> locus.FusedQLinearInvertedResidual), its
// shape inference and reference composition, and the native backend's kernel
// (runtime/native/ops_qfused.cpp). Small hand-built quantized graphs (uint8 and int8, residual in
// both operand orders, per-channel weights, a near miss the pass must refuse with a remark) run on
// the native backend fused and on the reference backend unfused: the same bytes. The real int8
// MobileNetV2 and its QDQ twin: the pass fuses its 17 blocks (as in the fp32 model), the backends
// that do not execute the op (oneDNN, accel) get the unfused graph, and the fused native session
// gives the unfused one's bytes on the five test sets.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include "graph/ops.h"
#include "importers/onnx/onnx_importer.h"
#include "kernels/native/cpu_features.h"
#include "runtime/memory_planner.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"
#include "tests/isa_util.h"
#include "tests/test_support.h"

using namespace locus;
using locus::test::GraphBuilder;

namespace {

Tensor scalar_f32(float v) { return Tensor::from_f32({}, {v}); }
Tensor random_bytes(DType t, Shape s, uint32_t seed) {
  Tensor r(t, std::move(s));
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < r.numel(); ++i) r.data<uint8_t>()[i] = uint8_t(rng() & 0xff);
  return r;
}
Tensor zero_point(DType t, int v) {
  Tensor r(t, {});
  if (t == DType::U8) r.data<uint8_t>()[0] = uint8_t(v);
  else r.data<int8_t>()[0] = int8_t(v);
  return r;
}
Tensor int32s(int64_t n, uint32_t seed) {
  Tensor r(DType::I32, {n});
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-3000, 3000);
  for (int64_t i = 0; i < n; ++i) r.data<int32_t>()[i] = d(rng);
  return r;
}

struct QBlockCase {
  DType t = DType::U8;
  int64_t C = 12, E = 40, H = 9, W = 7, stride = 1;
  bool expand = true, residual = true, x_first = false;
  bool extra_reader = false;  // the expanded value is also a graph output: not an intermediate
  int64_t stem = 0;  // > 0: the expand stage is a stem x stem, stride 2, pad 1 conv (as MobileNetV2's)
};

// One quantized value: its scale and zero point constants (a zero point that differs per value).
struct QVal {
  std::string v, s, z;
};

// x -> [expand 1x1] -> depthwise 3x3 -> project 1x1 [-> QLinearAdd with x]
Graph qblock_graph(const QBlockCase& k, uint32_t seed) {
  GraphBuilder b;
  const DType t = k.t;
  auto zp = [&](int u8, int s8) { return zero_point(t, t == DType::U8 ? u8 : s8); };
  b.input("x", {1, k.C, k.H, k.W});
  b.g.values["x"].dtype = t;
  b.constant("x_s", scalar_f32(0.05f));
  b.constant("x_z", zp(117, -11));
  int counter = 0;
  auto conv = [&](const QVal& in, int64_t oc, int64_t ic_per_group, int64_t kk, int64_t stride, int64_t pad,
                  int64_t group, float y_scale, int yz_u8, int yz_s8) {
    const std::string p = "c" + std::to_string(counter++);
    b.constant(p + "_w", random_bytes(DType::I8, {oc, ic_per_group, kk, kk}, seed++));
    Tensor ws(DType::F32, {oc});
    std::mt19937 rng(seed++);
    for (int64_t i = 0; i < oc; ++i) ws.data<float>()[i] = 0.002f + 0.01f * float(rng() % 100) / 100.f;
    b.constant(p + "_ws", ws);
    Tensor wz(DType::I8, {oc});
    for (int64_t i = 0; i < oc; ++i) wz.data<int8_t>()[i] = int8_t(int(i % 5) - 2);
    b.constant(p + "_wz", wz);
    b.constant(p + "_ys", scalar_f32(y_scale));
    b.constant(p + "_yz", zp(yz_u8, yz_s8));
    b.constant(p + "_b", int32s(oc, seed++));
    const std::string y = b.node("QLinearConv", {in.v, in.s, in.z, p + "_w", p + "_ws", p + "_wz", p + "_ys", p + "_yz", p + "_b"},
                                 {{"strides", std::vector<int64_t>{stride, stride}},
                                  {"pads", std::vector<int64_t>{pad, pad, pad, pad}},
                                  {"kernel_shape", std::vector<int64_t>{kk, kk}},
                                  {"group", group}});
    return QVal{y, p + "_ys", p + "_yz"};
  };
  QVal cur{"x", "x_s", "x_z"};
  QVal expanded;
  if (k.stem > 0) cur = expanded = conv(cur, k.E, k.C, k.stem, 2, 1, 1, 0.04f * 3.5f * 1.5f, 100, -20);
  else if (k.expand) cur = expanded = conv(cur, k.E, k.C, 1, 1, 0, 1, 0.04f * 3.5f, 100, -20);
  const int64_t E = k.expand ? k.E : k.C;
  cur = conv(cur, E, 1, 3, k.stride, 1, E, 0.04f * 3.f, 90, 12);
  cur = conv(cur, k.C, E, 1, 1, 0, 1, 0.04f * 6.5f, 128, 3);
  std::vector<std::string> outs;
  if (k.residual) {
    b.constant("y_s", scalar_f32(0.06f));
    b.constant("y_z", zp(125, 2));
    std::vector<std::string> ins = k.x_first ? std::vector<std::string>{"x", "x_s", "x_z", cur.v, cur.s, cur.z}
                                             : std::vector<std::string>{cur.v, cur.s, cur.z, "x", "x_s", "x_z"};
    ins.push_back("y_s");
    ins.push_back("y_z");
    b.node("QLinearAdd", ins, {}, "y");
    b.g.nodes.back().domain = "com.microsoft";
    outs.push_back("y");
  } else {
    outs.push_back(cur.v);
  }
  if (k.extra_reader) outs.push_back(expanded.v);
  return b.finish(outs);
}

std::vector<Tensor> run(const Graph& g, const Tensor& x, const std::string& backend, int threads, bool fuse = true) {
  SessionOptions o;
  o.backend_name = backend;
  o.threads = threads;
  if (!fuse) o.pipeline.disabled_passes = {"fuse-inverted-residual"};
  return Session::from_graph(g, o).run({{"x", x}});
}

int count_op(const Graph& g, const std::string& op) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.op == op;
  return n;
}

class QFusedBlock : public test::IsaTest {};

// Native (fused) == reference (unfused), bit for bit, for each form; the reference's fused
// composition equals its unfused run too.
TEST_P(QFusedBlock, NativeFusedEqualsTheUnfusedReference) {
  std::vector<QBlockCase> cases;
  for (DType t : {DType::U8, DType::I8})
    for (bool x_first : {false, true}) {
      QBlockCase k;
      k.t = t, k.x_first = x_first;
      cases.push_back(k);
    }
  QBlockCase strided;
  strided.residual = false, strided.stride = 2, strided.H = 11, strided.W = 13, strided.E = 72;
  cases.push_back(strided);
  QBlockCase no_expand;
  no_expand.expand = false, no_expand.residual = false, no_expand.t = DType::I8, no_expand.C = 17;
  cases.push_back(no_expand);
  // a 3x3 stride-2 conv in front of a block without a 1x1 expand: its expand stage (the stem)
  for (DType t : {DType::U8, DType::I8}) {
    QBlockCase stem;
    stem.t = t, stem.stem = 3, stem.residual = false, stem.C = 3, stem.E = 32, stem.H = 15, stem.W = 13;
    cases.push_back(stem);
  }
  uint32_t seed = 1;
  for (const QBlockCase& k : cases) {
    const Graph g = qblock_graph(k, seed += 20);
    {
      SessionOptions o;
      Session s = Session::from_graph(g, o);
      EXPECT_EQ(count_op(s.graph(), "FusedQLinearInvertedResidual"), 1);
      EXPECT_EQ(count_op(s.graph(), "QLinearConv"), 0);
      EXPECT_EQ(count_op(s.graph(), "QLinearAdd"), 0);
    }
    const Tensor x = random_bytes(k.t, {1, k.C, k.H, k.W}, seed);
    const Tensor want = run(g, x, "reference", 1, false)[0];
    EXPECT_EQ(run(g, x, "reference", 1)[0].bytes, want.bytes) << "reference composition";
    for (int threads : {1, 2})
      EXPECT_EQ(run(g, x, "native", threads)[0].bytes, want.bytes)
          << dtype_name(k.t) << " x_first=" << k.x_first << " stride " << k.stride << ", " << threads << " thread(s)";
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, QFusedBlock, ::testing::ValuesIn(test::supported_isas()), test::isa_param_name);

// An expanded value that is also a graph output is not an intermediate: the block is only D -> P
// (+ Add), and a remark on the expand conv says why.
TEST(QFusedBlockPass, AnIntermediateReadElsewhereShortensTheBlockWithARemark) {
  QBlockCase k;
  k.extra_reader = true;
  const Graph g = qblock_graph(k, 3);
  Session s = Session::from_graph(g, SessionOptions{});
  ASSERT_EQ(count_op(s.graph(), "FusedQLinearInvertedResidual"), 1);
  EXPECT_EQ(count_op(s.graph(), "QLinearConv"), 1);  // the expand conv stays
  bool said = false;
  for (const PassRemark& r : s.pass_report().remarks)
    said |= r.pass == "fuse-inverted-residual" && r.message.find("is a graph output") != std::string::npos &&
            r.message.find("expand stage") != std::string::npos;
  EXPECT_TRUE(said);
  const Tensor x = random_bytes(DType::U8, {1, k.C, k.H, k.W}, 9);
  const auto want = run(g, x, "reference", 1, false);
  const auto got = run(g, x, "native", 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].bytes, want[0].bytes);
  EXPECT_EQ(got[1].bytes, want[1].bytes);
}

// A malformed fused node is a one-line error naming the node.
TEST(QFusedBlockPass, ShapeInferenceChecksTheStagesAsTheirQLinearConvs) {
  Graph g = qblock_graph(QBlockCase{}, 5);
  Session s = Session::from_graph(g, SessionOptions{});
  Graph fused = s.graph();
  for (Node& n : fused.nodes)
    if (n.op == "FusedQLinearInvertedResidual") n.attrs["residual_x_first"] = int64_t(2);
  try {
    infer_shapes(fused);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("residual_x_first must be 0 or 1"), std::string::npos) << e.what();
  }
}

// ---- the real int8 MobileNetV2 ----

std::string int8_dir() {
  const std::string d = test::shared_models_dir();
  if (d.empty()) return "";
  const std::filesystem::path p = std::filesystem::path(d) / "mobilenetv2-12-int8";
  return std::filesystem::is_directory(p) ? p.string() : "";
}

std::string qdq_model() {
  static std::string path = [] {
    const std::string out = std::string(LOCUS_BINARY_DIR) + "/test-models/qfused-qdq";
    const std::string cmd = std::string("/usr/bin/python3 ") + LOCUS_SOURCE_DIR + "/scripts/make-qdq-model.py '" +
                            int8_dir() + "' '" + out + "' > /dev/null";
    return std::system(cmd.c_str()) == 0 ? out + "/mobilenetv2-12-int8-qdq.onnx" : std::string();
  }();
  return path;
}

// The pass fuses the 17 inverted-residual blocks of MobileNetV2 (the fp32 model's count), 10 of them
// with their residual QLinearAdd, the first with the stem as its expand stage (a 3x3 stride-2 conv):
// only the last 1x1 QLinearConv stays.
void expect_seventeen_blocks(const Graph& g) {
  int blocks = 0, residual = 0, first = 0;
  for (const Node& n : g.nodes) {
    if (n.op != "FusedQLinearInvertedResidual") continue;
    ++blocks;
    residual += n.i("residual", 0);
    // the first block has no 1x1 expand: the stem is its expand stage
    if (n.ints("expand_strides", {1, 1}) == std::vector<int64_t>{2, 2}) {
      ++first;
      EXPECT_EQ(g.info(n.input(3)).shape, (Shape{32, 3, 3, 3})) << n.name;
      EXPECT_EQ(n.ints("expand_pads", {}), (std::vector<int64_t>{1, 1, 1, 1})) << n.name;
    }
  }
  EXPECT_EQ(blocks, 17);
  EXPECT_EQ(residual, 10);
  EXPECT_EQ(first, 1);
  EXPECT_EQ(count_op(g, "QLinearConv"), 1);
  EXPECT_EQ(count_op(g, "QLinearAdd"), 1);  // the classifier's bias (QLinearMatMul + QLinearAdd)
}

TEST(QFusedBlockModel, FusesTheSeventeenBlocksOfTheInt8AndQdqModels) {
  ASSERT_FALSE(int8_dir().empty()) << "the int8 model is missing: ../shared/models/mobilenetv2-12-int8";
  Session s = Session::from_file(int8_dir() + "/mobilenetv2-12-int8.onnx");
  expect_seventeen_blocks(s.graph());
  ASSERT_FALSE(qdq_model().empty());
  Session q = Session::from_file(qdq_model());
  expect_seventeen_blocks(q.graph());
  // native --plans: one int8 plan per block, in bytes, with the filtered band
  const auto plans = s.executable().fused_block_plans();
  ASSERT_EQ(plans.size(), 17u);
  for (const FusedBlockPlanRow& r : plans) {
    EXPECT_TRUE(r.plan.shape.elem.bytes) << r.node;
    EXPECT_TRUE(r.plan.shape.filtered_band) << r.node;
    EXPECT_LE(r.plan.buffer_entries, r.plan.S) << r.node;
  }
}

// With the values' arena inside the L2, the fused blocks' bands are planned in the arena, each alive
// during its block only: they take the memory of activations dead by then, so the arena is smaller
// than the values' own peak plus the largest block's bands (which a workspace of its own would add).
// With an L2 smaller than the values' arena they share one workspace instead: the arena is theirs.
TEST(QFusedBlockModel, BlockWorkspacesShareTheArenaWithDeadActivations) {
  ASSERT_FALSE(int8_dir().empty()) << "the int8 model is missing: ../shared/models/mobilenetv2-12-int8";
  SessionOptions o;
  o.threads = 1;
  o.backend.l2_bytes = 1 << 20;
  Session s = Session::from_file(int8_dir() + "/mobilenetv2-12-int8.onnx", o);
  // the session's values (the float input is quantized at the boundary: not stored)
  auto values_of = [](const Session& session) {
    std::vector<BufferRequest> values = value_lifetimes(session.graph());
    for (BufferRequest& r : values)
      if (r.name == session.graph().inputs[0]) r.bytes = 0;
    return values;
  };
  const int64_t ws = s.largest_step_workspace();
  EXPECT_GT(ws, 0);
  const int64_t values_peak = peak_live_bytes(values_of(s));
  EXPECT_LT(s.activation_bytes(), values_peak + ws) << "values " << values_peak << ", workspace " << ws;
  o.backend.l2_bytes = 128 << 10;  // below the values' 350 KB
  Session small = Session::from_file(int8_dir() + "/mobilenetv2-12-int8.onnx", o);
  EXPECT_EQ(small.activation_bytes(), plan_memory(values_of(small)).arena_bytes);
}

// oneDNN and the accelerator model do not execute the int8 op: their graphs stay unfused.
TEST(QFusedBlockModel, BackendsWithoutTheOpGetTheUnfusedGraph) {
  ASSERT_FALSE(int8_dir().empty()) << "the int8 model is missing: ../shared/models/mobilenetv2-12-int8";
  const std::string model = int8_dir() + "/mobilenetv2-12-int8.onnx";
  for (const std::string backend : {"onednn", "accel", "native-unfused"}) {
    SessionOptions o;
    o.backend_name = backend;
    if (backend == "onednn" && !kernels::cpu_has_avx512vnni()) {
      // Refused on a CPU without VNNI (its weights would saturate oneDNN's int8 kernels,
      // runtime/onednn/ops_quant.cpp): the graph it would get is the pipeline's for its capabilities.
      try {
        Session::from_file(model, o);
        ADD_FAILURE() << "oneDNN's int8 MobileNetV2 compiled on a CPU without VNNI";
      } catch (const Unsupported& e) {
        EXPECT_NE(std::string(e.what()).find("would saturate"), std::string::npos) << e.what();
      }
      const BackendCapabilities caps = make_backend(backend)->capabilities();
      PipelineOptions po;
      po.fuse_blocks = caps.fused_inverted_residual;
      po.fuse_qblocks = caps.fused_qlinear_inverted_residual;
      po.fuse_residual = caps.conv_residual;
      Graph g = onnx_import::load_model(model);
      prepare_graph(g, po);
      EXPECT_EQ(count_op(g, "FusedQLinearInvertedResidual"), 0) << backend;
      EXPECT_EQ(count_op(g, "QLinearConv"), 52) << backend;
      continue;
    }
    Session s = Session::from_file(model, o);
    EXPECT_EQ(count_op(s.graph(), "FusedQLinearInvertedResidual"), 0) << backend;
    EXPECT_EQ(count_op(s.graph(), "QLinearConv"), 52) << backend;
  }
}

// The fused native session gives the unfused native session's bytes on the five test sets, at 1
// and 2 threads (and `locus check` compares both with ONNX Runtime's stored outputs).
TEST(QFusedBlockModel, FusedNativeEqualsUnfusedNative) {
  ASSERT_FALSE(int8_dir().empty()) << "the int8 model is missing: ../shared/models/mobilenetv2-12-int8";
  const std::string model = int8_dir() + "/mobilenetv2-12-int8.onnx";
  SessionOptions uo;
  uo.backend_name = "native-unfused";
  Session unfused = Session::from_file(model, uo);
  for (int threads : {1, 2}) {
    SessionOptions o;
    o.threads = threads;
    Session fused = Session::from_file(model, o);
    for (int k = 0; k < 5; ++k) {
      const Tensor in = onnx_import::load_tensor_file(int8_dir() + "/test_data_set_" + std::to_string(k) + "/input_0.pb");
      EXPECT_EQ(fused.run({{"input", in}})[0].bytes, unfused.run({{"input", in}})[0].bytes)
          << "set " << k << ", " << threads << " thread(s)";
    }
  }
}

}  // namespace
