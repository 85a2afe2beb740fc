// The native backend's quantized ops (runtime/native/ops_quant.cpp) against the reference backend
// (graph/eval/eval_quant.cpp, written from the ONNX / contrib specs with ONNX Runtime's rounding),
// bit for bit: the two implement the same integer arithmetic and rounding. Small ragged graphs per
// op (per tensor and per channel, nonzero zero points, uint8 and int8, saturation at both ends,
// broadcasting), then the quantized MobileNetV2 on all five test sets: native == reference exactly,
// at 1 and 2 threads, under every ISA this CPU has; and against ONNX Runtime's stored outputs with
// the bar the reference meets (tests/quant_model_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "graph/ops.h"
#include "importers/onnx/onnx_importer.h"
#include "runtime/memory_planner.h"
#include "runtime/native/op_registry.h"
#include "runtime/session.h"
#include "tests/error_util.h"
#include "tests/graph_builder_util.h"
#include "tests/isa_util.h"
#include "tests/real_model_util.h"

using namespace locus;
using locus::test::GraphBuilder;

namespace {

Tensor f32s(Shape s, std::vector<float> v) { return Tensor::from_f32(std::move(s), std::move(v)); }
Tensor scalar_f32(float v) { return f32s({}, {v}); }

// Random bytes (uint8 or int8) of a shape.
Tensor random_bytes(DType t, Shape s, uint32_t seed) {
  Tensor r(t, std::move(s));
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < r.numel(); ++i) r.data<uint8_t>()[i] = uint8_t(rng() & 0xff);
  return r;
}
Tensor zero_point(DType t, Shape s, std::vector<int> v) {
  Tensor r(t, std::move(s));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == DType::U8) r.data<uint8_t>()[i] = uint8_t(v[i]);
    else r.data<int8_t>()[i] = int8_t(v[i]);
  }
  return r;
}
Tensor int32s(Shape s, uint32_t seed, int lo, int hi) {
  Tensor r(DType::I32, std::move(s));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  for (int64_t i = 0; i < r.numel(); ++i) r.data<int32_t>()[i] = d(rng);
  return r;
}
Tensor scales(int64_t n, uint32_t seed, float lo, float hi) {
  return f32s({n}, test::random_floats(size_t(n), seed, lo, hi));
}

std::string qinput(GraphBuilder& b, const std::string& name, DType t, Shape s) {
  b.input(name, std::move(s));
  b.g.values[name].dtype = t;
  return name;
}

Graph finish_one(GraphBuilder& b, const std::string& out) { return b.finish({out}); }

std::vector<Tensor> run_backend(const Graph& g, const std::map<std::string, Tensor>& in, const std::string& backend,
                                int threads) {
  SessionOptions o;
  o.backend_name = backend;
  o.threads = threads;
  return Session::from_graph(g, o).run(in);
}

// How many elements of two same-shaped byte tensors differ, and the first one.
std::string byte_diff(const Tensor& got, const Tensor& want) {
  if (got.dtype != want.dtype) return cat("dtype ", dtype_name(got.dtype), " vs ", dtype_name(want.dtype));
  if (got.shape != want.shape) return cat("shape ", shape_str(got.shape), " vs ", shape_str(want.shape));
  if (got.bytes == want.bytes) return "";
  int64_t bad = 0, first = -1;
  const size_t es = dtype_size(got.dtype);
  for (int64_t i = 0; i < got.numel(); ++i)
    if (std::memcmp(got.bytes.data() + i * es, want.bytes.data() + i * es, es) != 0) {
      ++bad;
      if (first < 0) first = i;
    }
  return cat(bad, " of ", got.numel(), " elements differ, first at ", first, ": ", got.get(first), " vs ",
             want.get(first));
}

struct ConvCase;

// The test fixture: every case runs under each ISA this CPU has, at 1 and 2 threads, and must equal
// the reference backend exactly.
class NativeQuant : public test::IsaTest {
 protected:
  void expect_same(const Graph& g, const std::map<std::string, Tensor>& in) {
    const auto want = run_backend(g, in, "reference", 1);
    for (int threads : {1, 2}) {
      const auto got = run_backend(g, in, "native", threads);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(byte_diff(got[i], want[i]), "") << "output " << i << ", " << threads << " thread(s)";
    }
  }
  void expect_same_conv(const ConvCase& k, uint32_t seed);  // expect_same of conv_graph(k, seed)
};

// QLinearConv y = conv(x, w) with the given geometry; x, y of type t; weights int8 (or uint8 when
// w_u8); per-channel weight scales and zero points when per_channel.
struct ConvCase {
  int64_t N, C, H, W, OC, K, stride, pad, group;
  bool per_channel = true;
  DType t = DType::U8;
  bool w_u8 = false;
  float y_scale = 0.02f;
};

std::pair<Graph, std::map<std::string, Tensor>> conv_graph(const ConvCase& k, uint32_t seed) {
  GraphBuilder b;
  const DType wt = k.w_u8 ? DType::U8 : DType::I8;
  const std::string x = qinput(b, "x", k.t, {k.N, k.C, k.H, k.W});
  b.constant("xs", scalar_f32(0.05f));
  b.constant("xz", zero_point(k.t, {}, {k.t == DType::U8 ? 117 : -9}));
  b.constant("w", random_bytes(wt, {k.OC, k.C / k.group, k.K, k.K}, seed + 1));
  const int64_t nw = k.per_channel ? k.OC : 1;
  b.constant("ws", scales(nw, seed + 2, 0.002f, 0.02f));
  std::vector<int> wz;
  for (int64_t i = 0; i < nw; ++i) wz.push_back(k.w_u8 ? 120 + int(i % 17) : int(i % 7) - 3);
  b.constant("wz", zero_point(wt, {nw}, wz));
  b.constant("ys", scalar_f32(k.y_scale));
  b.constant("yz", zero_point(k.t, {}, {k.t == DType::U8 ? 131 : 5}));
  b.constant("b", int32s({k.OC}, seed + 3, -3000, 3000));
  const std::string y =
      b.node("QLinearConv", {x, "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"},
             {{"strides", std::vector<int64_t>{k.stride, k.stride}},
              {"pads", std::vector<int64_t>{k.pad, k.pad, k.pad, k.pad}},
              {"kernel_shape", std::vector<int64_t>{k.K, k.K}},
              {"group", k.group}});
  return {finish_one(b, y), {{"x", random_bytes(k.t, {k.N, k.C, k.H, k.W}, seed)}}};
}

void NativeQuant::expect_same_conv(const ConvCase& k, uint32_t seed) {
  auto [g, in] = conv_graph(k, seed);
  expect_same(g, in);
}

TEST_P(NativeQuant, QLinearConvPointwisePerChannel) {
  expect_same_conv({2, 13, 5, 7, 21, 1, 1, 0, 1}, 10);
}

TEST_P(NativeQuant, QLinearConvPointwisePerTensorWide) {
  ConvCase k{1, 40, 6, 9, 35, 1, 1, 0, 1};
  k.per_channel = false;
  expect_same_conv(k, 20);
}

TEST_P(NativeQuant, QLinearConvDepthwise) {
  expect_same_conv({2, 19, 9, 8, 19, 3, 2, 1, 19}, 30);
  expect_same_conv({1, 33, 7, 5, 33, 3, 1, 1, 33}, 31);
}

TEST_P(NativeQuant, QLinearConvStemIm2col) {
  expect_same_conv({2, 3, 11, 10, 17, 3, 2, 1, 1}, 40);
}

TEST_P(NativeQuant, QLinearConvGroupedAndStridedPadded1x1) {
  expect_same_conv({1, 6, 7, 7, 4, 3, 1, 1, 2}, 50);
  expect_same_conv({2, 10, 9, 7, 12, 1, 2, 1, 1}, 51);
}

TEST_P(NativeQuant, QLinearConvInt8ActivationsAndUint8Weights) {
  ConvCase k{1, 13, 6, 5, 14, 1, 1, 0, 1};
  k.t = DType::I8;
  expect_same_conv(k, 60);
  ConvCase d{1, 16, 6, 5, 16, 3, 1, 1, 16};
  d.t = DType::I8;
  d.w_u8 = true;
  expect_same_conv(d, 61);
  ConvCase s{1, 3, 8, 8, 9, 3, 2, 1, 1};
  s.w_u8 = true;
  expect_same_conv(s, 62);
}

TEST_P(NativeQuant, QLinearConvSaturatesAtBothEnds) {
  ConvCase k{1, 24, 5, 5, 20, 1, 1, 0, 1};
  k.y_scale = 0.0005f;  // most accumulators leave [0, 255] after requantization
  auto [g, in] = conv_graph(k, 70);
  expect_same(g, in);
  // the case is one: both bounds are reached
  const Tensor y = run_backend(g, in, "native", 1)[0];
  const uint8_t* p = y.data<uint8_t>();
  EXPECT_NE(std::count(p, p + y.numel(), uint8_t(0)), 0);
  EXPECT_NE(std::count(p, p + y.numel(), uint8_t(255)), 0);
}

std::pair<Graph, std::map<std::string, Tensor>> matmul_graph(DType t, Shape a, int64_t N, uint32_t seed) {
  GraphBuilder b;
  const int64_t K = a.back();
  const std::string x = qinput(b, "a", t, a);
  b.constant("as", scalar_f32(0.03f));
  b.constant("az", zero_point(t, {}, {t == DType::U8 ? 100 : -20}));
  b.constant("b", random_bytes(DType::I8, {K, N}, seed + 1));
  b.constant("bs", scales(N, seed + 2, 0.001f, 0.01f));
  std::vector<int> bz;
  for (int64_t i = 0; i < N; ++i) bz.push_back(int(i % 5) - 2);
  b.constant("bz", zero_point(DType::I8, {N}, bz));
  b.constant("ys", scalar_f32(0.04f));
  b.constant("yz", zero_point(t, {}, {t == DType::U8 ? 128 : 3}));
  const std::string y = b.node("QLinearMatMul", {x, "as", "az", "b", "bs", "bz", "ys", "yz"});
  return {finish_one(b, y), {{"a", random_bytes(t, a, seed)}}};
}

TEST_P(NativeQuant, QLinearMatMul) {
  auto [g, in] = matmul_graph(DType::U8, {3, 37}, 29, 80);
  expect_same(g, in);
  auto [g1, in1] = matmul_graph(DType::I8, {2, 5, 64}, 17, 81);
  expect_same(g1, in1);
}

std::pair<Graph, std::map<std::string, Tensor>> add_graph(DType t, Shape a, Shape bshape, bool b_constant,
                                                          uint32_t seed) {
  GraphBuilder g;
  const std::string x = qinput(g, "a", t, a);
  std::map<std::string, Tensor> in{{"a", random_bytes(t, a, seed)}};
  std::string y2;
  if (b_constant) {
    y2 = g.constant("b", random_bytes(t, bshape, seed + 1));
  } else {
    y2 = qinput(g, "b", t, bshape);
    in["b"] = random_bytes(t, bshape, seed + 1);
  }
  g.constant("as", scalar_f32(0.07f));
  g.constant("az", zero_point(t, {}, {t == DType::U8 ? 119 : -7}));
  g.constant("bs", scalar_f32(0.11f));
  g.constant("bz", zero_point(t, {}, {t == DType::U8 ? 3 : 60}));
  g.constant("cs", scalar_f32(0.13f));
  g.constant("cz", zero_point(t, {}, {t == DType::U8 ? 140 : -2}));
  const std::string y = g.node("QLinearAdd", {x, "as", "az", y2, "bs", "bz", "cs", "cz"});
  g.g.nodes.back().domain = kMicrosoftDomain;
  return {finish_one(g, y), in};
}

TEST_P(NativeQuant, QLinearAddSameShapeAndBroadcast) {
  {
    auto [g, in] = add_graph(DType::U8, {2, 5, 3, 7}, {2, 5, 3, 7}, false, 90);  // NHWC, both sides
    expect_same(g, in);
  }
  {
    auto [g, in] = add_graph(DType::U8, {1, 29}, {29}, true, 91);  // the classifier's bias
    expect_same(g, in);
  }
  {
    auto [g, in] = add_graph(DType::U8, {2, 5, 3, 7}, {1, 5, 1, 1}, false, 92);  // per-channel in NHWC
    expect_same(g, in);
  }
  {
    auto [g, in] = add_graph(DType::I8, {1, 4, 6, 5}, {1, 4, 6, 5}, false, 93);
    expect_same(g, in);
  }
}

// Every (a, b) pair of uint8 values, same-shape (the SIMD path) and broadcast (the strided one): ORT's
// fused multiply-adds decide some roundings, which a plain multiply-then-add would get wrong.
TEST_P(NativeQuant, QLinearAddEveryPairOfValues) {
  Tensor a(DType::U8, {1, 65536}), b(DType::U8, {1, 65536}), col(DType::U8, {256, 1}), row(DType::U8, {1, 256});
  for (int i = 0; i < 65536; ++i) a.data<uint8_t>()[i] = uint8_t(i >> 8), b.data<uint8_t>()[i] = uint8_t(i & 255);
  for (int i = 0; i < 256; ++i) col.data<uint8_t>()[i] = row.data<uint8_t>()[i] = uint8_t(i);
  for (bool broadcast : {false, true}) {
    GraphBuilder g;
    const std::string x = qinput(g, "a", DType::U8, broadcast ? Shape{256, 1} : Shape{1, 65536});
    const std::string y2 = qinput(g, "b", DType::U8, broadcast ? Shape{1, 256} : Shape{1, 65536});
    g.constant("as", scalar_f32(0.049825374f));
    g.constant("az", zero_point(DType::U8, {}, {62}));
    g.constant("bs", scalar_f32(0.18530901f));
    g.constant("bz", zero_point(DType::U8, {}, {102}));
    g.constant("cs", scalar_f32(0.04013419f));
    g.constant("cz", zero_point(DType::U8, {}, {43}));
    const std::string y = g.node("QLinearAdd", {x, "as", "az", y2, "bs", "bz", "cs", "cz"});
    g.g.nodes.back().domain = kMicrosoftDomain;
    SCOPED_TRACE(broadcast ? "broadcast" : "same shape");
    expect_same(finish_one(g, y), broadcast ? std::map<std::string, Tensor>{{"a", col}, {"b", row}}
                                            : std::map<std::string, Tensor>{{"a", a}, {"b", b}});
  }
  // the case is sharp: without the fused multiply-adds some pair rounds differently
  // (scales and zero points found by a search for pairs on which the two forms disagree in range)
  const float ra = 0.049825374f / 0.04013419f, rb = 0.18530901f / 0.04013419f;
  const float fixed = 43.f - std::fma(ra, 62.f, rb * 102.f);
  int differ = 0;
  for (int i = 0; i < 65536; ++i) {
    const float fa = float(i >> 8), fb = float(i & 255);
    const float fused = std::fma(fa, ra, std::fma(fb, rb, fixed));
    volatile float p1 = fa * ra, p2 = fb * rb;
    const float plain = p1 + (p2 + fixed);
    auto clamp = [](float v) { return std::min(255.f, std::max(0.f, std::nearbyint(v))); };
    differ += clamp(fused) != clamp(plain);
  }
  EXPECT_GT(differ, 0);
}

TEST_P(NativeQuant, QLinearGlobalAveragePool) {
  for (int last : {0, 1})
    for (Shape s : {Shape{2, 19, 5, 3}, Shape{2, 11, 6}})
      for (DType t : {DType::U8, DType::I8}) {
        GraphBuilder b;
        const std::string x = qinput(b, "x", t, s);
        b.constant("xs", scalar_f32(0.05f));
        b.constant("xz", zero_point(t, {}, {t == DType::U8 ? 77 : -30}));
        b.constant("ys", scalar_f32(0.021f));
        b.constant("yz", zero_point(t, {}, {t == DType::U8 ? 9 : 11}));
        const std::string y = b.node("QLinearGlobalAveragePool", {x, "xs", "xz", "ys", "yz"},
                                     {{"channels_last", int64_t(last)}});
        b.g.nodes.back().domain = kMicrosoftDomain;
        SCOPED_TRACE(cat("channels_last ", last, ", shape ", shape_str(s), ", ", dtype_name(t)));
        expect_same(finish_one(b, y), {{"x", random_bytes(t, s, 100)}});
      }
}

TEST_P(NativeQuant, QuantizeAndDequantizeLinear) {
  // ties, out of range at both ends, NaN and infinities, in an NHWC value
  std::vector<float> v = test::random_floats(2 * 3 * 5 * 7, 110, -9.f, 9.f);
  const float special[] = {0.25f, 0.75f, -0.25f, 1e9f, -1e9f, NAN, INFINITY, -INFINITY, 6.25f, -6.25f};
  for (size_t i = 0; i < std::size(special); ++i) v[i * 17] = special[i];
  // axis 1 is the innermost dimension of the NHWC value, axis 2 (H) one with runs of W x C elements
  // and axis 3 (W) one with runs of C
  for (DType t : {DType::U8, DType::I8})
    for (int64_t axis : {int64_t(0), int64_t(1), int64_t(2), int64_t(3)}) {
      const bool per_axis = axis > 0;
      const int64_t dim = axis == 1 ? 3 : axis == 2 ? 5 : 7;
      std::vector<float> scales;
      std::vector<int> zeros;
      for (int64_t k = 0; k < dim; ++k) {
        scales.push_back(0.03f + 0.11f * float(k));
        zeros.push_back(t == DType::U8 ? int(40 * k + 3) : int(30 * k - 100));
      }
      GraphBuilder b;
      const std::string x = b.input("x", {2, 3, 5, 7});
      b.constant("s", per_axis ? f32s({dim}, scales) : scalar_f32(0.05f));
      b.constant("z", per_axis ? zero_point(t, {dim}, zeros) : zero_point(t, {}, {t == DType::U8 ? 128 : 0}));
      const std::string q = b.node("QuantizeLinear", {x, "s", "z"}, {{"axis", per_axis ? axis : int64_t(1)}});
      const std::string d = b.node("DequantizeLinear", {q, "s", "z"}, {{"axis", per_axis ? axis : int64_t(1)}});
      Graph g = b.finish({q, d});
      SCOPED_TRACE(cat(dtype_name(t), per_axis ? cat(", along axis ", axis) : std::string(", per tensor")));
      expect_same(g, {{"x", f32s({2, 3, 5, 7}, v)}});
    }
}

// Halfway points: x = (k / 2) * scale in float, so x / scale lands on or next to a tie; ORT divides
// (MlasQuantizeLinear), and multiplying by the reciprocal would round some of them the other way.
TEST_P(NativeQuant, QuantizeLinearAtTies) {
  const float scale = 0.0371f;
  std::vector<float> v;
  for (int k = -700; k < 700; ++k) v.push_back(float(k) * 0.5f * scale);
  for (DType t : {DType::U8, DType::I8}) {
    GraphBuilder b;
    const std::string x = b.input("x", {int64_t(v.size())});
    b.constant("s", scalar_f32(scale));
    b.constant("z", zero_point(t, {}, {t == DType::U8 ? 128 : 0}));
    const std::string q = b.node("QuantizeLinear", {x, "s", "z"});
    SCOPED_TRACE(dtype_name(t));
    expect_same(b.finish({q}), {{"x", f32s({int64_t(v.size())}, v)}});
  }
  int differ = 0;
  const volatile float inv = 1.f / scale;
  for (float x : v) differ += std::nearbyint(x / scale) != std::nearbyint(x * inv);
  EXPECT_GT(differ, 0) << "the case does not tell division from multiplication";
}

// A float input whose only consumer is a per-tensor QuantizeLinear is quantized at the boundary,
// straight from the caller's NCHW floats into the node's NHWC bytes (runtime/native/native_backend.cpp,
// InputQuantize): the same bytes as the reference. The QuantizeLinear comes after other nodes whose
// dead intermediates could share its output's arena memory if the output's lifetime did not start at
// the boundary; an input with a second consumer is converted and quantized as before.
TEST_P(NativeQuant, QuantizeLinearOfAnInputRunsAtTheBoundary) {
  std::vector<float> v = test::random_floats(2 * 3 * 5 * 7, 130, -9.f, 9.f);
  const float special[] = {0.25f, 0.75f, -0.25f, 1e9f, -1e9f, NAN, INFINITY, -INFINITY, 6.25f, -6.25f};
  for (size_t i = 0; i < std::size(special); ++i) v[i * 19] = special[i];
  const Tensor xin = f32s({2, 3, 5, 7}, v), ain = test::random_tensor({1, 8, 6, 6}, 131);
  for (DType t : {DType::U8, DType::I8})
    for (bool shared_input : {false, true}) {
      GraphBuilder b;
      const std::string a = b.input("a", {1, 8, 6, 6});
      const std::string x = b.input("x", {2, 3, 5, 7});
      const std::string c = b.node("Concat", {a, a}, {{"axis", int64_t(1)}});
      const std::string gp = b.node("Relu", {c});
      b.constant("s", scalar_f32(0.05f));
      b.constant("z", zero_point(t, {}, {t == DType::U8 ? 121 : -7}));
      const std::string q = b.node("QuantizeLinear", {x, "s", "z"}, {}, "q");
      const std::string d = b.node("DequantizeLinear", {q, "s", "z"});
      std::vector<std::string> outs = {gp, d, q};
      if (shared_input) outs.push_back(b.node("Relu", {x}));
      Graph g = b.finish(outs);
      SCOPED_TRACE(cat(dtype_name(t), shared_input ? ", the input also read by a Relu" : ""));
      expect_same(g, {{"a", ain}, {"x", xin}});
      SessionOptions o;
      o.backend_name = "native";
      Session s = Session::from_graph(g, o);
      std::string impl;
      for (const NodeImplementation& i : s.executable().implementations())
        if (i.op == "QuantizeLinear") impl = i.implementation;
      EXPECT_EQ(impl.find("at the boundary") != std::string::npos, !shared_input) << impl;
    }
}

TEST_P(NativeQuant, DataMovementOfBytes) {
  // uint8 values through Flatten, Reshape, Unsqueeze, Squeeze and Identity, from and to NHWC (the
  // boundary converts 1-byte values NCHW <-> NHWC), and Concat along the channels (NHWC's innermost
  // dimension) and along H
  GraphBuilder b;
  const std::string x = qinput(b, "x", DType::U8, {2, 3, 4, 5});
  const std::string x2 = qinput(b, "x2", DType::U8, {2, 2, 4, 5});
  const std::string cc = b.node("Concat", {x, x2, x}, {{"axis", int64_t(1)}});
  const std::string ch = b.node("Concat", {x, x}, {{"axis", int64_t(-2)}});
  const std::string f = b.node("Flatten", {x}, {{"axis", int64_t(2)}});
  b.constant("shape", Tensor::from_i64({4}, {2, 5, 3, 4}));
  const std::string r = b.node("Reshape", {x, "shape"});
  b.constant("axes", Tensor::from_i64({1}, {1}));
  const std::string u = b.node("Unsqueeze", {f, "axes"});
  const std::string sq = b.node("Squeeze", {u, "axes"});
  const std::string id = b.node("Identity", {r});
  Graph g = b.finish({x, f, r, u, sq, id, cc, ch});
  const Tensor in = random_bytes(DType::U8, {2, 3, 4, 5}, 120), in2 = random_bytes(DType::U8, {2, 2, 4, 5}, 121);
  expect_same(g, {{"x", in}, {"x2", in2}});
  // and the values are the input's, moved (not computed): the reshaped NCHW bytes in order
  const auto out = run_backend(g, {{"x", in}, {"x2", in2}}, "native", 2);
  EXPECT_EQ(out[0].bytes, in.bytes);
  EXPECT_EQ(out[2].bytes, in.bytes);
  EXPECT_EQ(out[5].bytes, in.bytes);
  // Concat along C: image n's block is x's 60 bytes, x2's 40, x's 60 (NCHW)
  ASSERT_EQ(out[6].shape, (Shape{2, 8, 4, 5}));
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 160; ++i) {
      const std::byte want = i < 60 ? in.bytes[size_t(n * 60 + i)]
                           : i < 100 ? in2.bytes[size_t(n * 40 + i - 60)]
                                     : in.bytes[size_t(n * 60 + i - 100)];
      ASSERT_EQ(out[6].bytes[size_t(n * 160 + i)], want) << "image " << n << " byte " << i;
    }
  // Concat along H: each (n, c) plane is x's 20 bytes twice
  ASSERT_EQ(out[7].shape, (Shape{2, 3, 8, 5}));
  for (int64_t p = 0; p < 6; ++p)
    for (int64_t i = 0; i < 40; ++i)
      ASSERT_EQ(out[7].bytes[size_t(p * 40 + i)], in.bytes[size_t(p * 20 + i % 20)]) << "plane " << p << " byte " << i;
}

INSTANTIATE_TEST_SUITE_P(Isas, NativeQuant, ::testing::ValuesIn(test::supported_isas()), test::isa_param_name);

TEST(NativeQuantErrors, UnhandledDtypesAreRefusedInOneLine) {
  // an int64 runtime value: no native kernel handles it (the boundary neither)
  GraphBuilder b;
  b.input("x", {4, 3});
  b.g.values["x"].dtype = DType::I64;
  const std::string y = b.node("Identity", {"x"});
  const std::string z = b.node("Identity", {y});
  Graph g = b.finish({z});
  test::expect_one_line_error<Unsupported>([&] { Session::from_graph(g); },
                                           {"native backend cannot run: Identity reading int64 (node '",
                                            "input 'x' of type int64"});
}

// Weights that are runtime values: the reference runs them, the native builders (which pack weights
// once) decline in one line naming the node.
TEST(NativeQuantErrors, RuntimeWeightsAreDeclinedNamingTheNode) {
  auto [g, in] = conv_graph({1, 4, 5, 5, 6, 1, 1, 0, 1}, 130);
  g.constants.erase("w");
  g.inputs.push_back("w");
  g.values["w"] = ValueInfo{DType::I8, {6, 4, 1, 1}, true};
  in["w"] = random_bytes(DType::I8, {6, 4, 1, 1}, 131);
  EXPECT_NO_THROW(run_backend(g, in, "reference", 1));
  test::expect_one_line_error<Unsupported>([&] { run_backend(g, in, "native", 1); },
                                           {"QLinearConv 'QLinearConv_0' with non-constant weights"});
}

TEST(NativeQuantErrors, TheDtypeCheckAsksTheOpReadingOrWritingEachValue) {
  // a uint8 graph: Flatten reads and writes uint8; a backend whose Flatten is float-only refuses it
  GraphBuilder b;
  const std::string x = qinput(b, "x", DType::U8, {2, 3, 4, 5});
  const std::string f = b.node("Flatten", {x}, {{"axis", int64_t(1)}});
  Graph g = b.finish({f});
  infer_shapes(g);
  auto all_ops = [](const std::string&) { return true; };
  auto bytes_everywhere = [](const std::string&, DType t) { return t == DType::F32 || t == DType::U8; };
  auto flatten_float_only = [](const std::string& op, DType t) { return t == DType::F32 || op != "Flatten"; };
  EXPECT_NO_THROW(require_supported_graph(g, "test", all_ops, bytes_everywhere));
  try {
    require_supported_graph(g, "test", all_ops, flatten_float_only);
    FAIL() << "Flatten of uint8 was accepted";
  } catch (const Unsupported& e) {
    EXPECT_STREQ(e.what(), "test backend cannot run: Flatten reading uint8 (node 'Flatten_0'); Flatten producing uint8 "
                           "(node 'Flatten_0')");
  }
  // the native backend's answer, from its list
  EXPECT_TRUE(native::handles_dtype("Flatten", DType::U8));
  EXPECT_TRUE(native::handles_dtype("QLinearConv", DType::I8));
  EXPECT_TRUE(native::handles_dtype("com.microsoft.QLinearAdd", DType::U8));
  EXPECT_FALSE(native::handles_dtype("Conv", DType::U8));
  EXPECT_FALSE(native::handles_dtype("Gather", DType::I8));
  EXPECT_FALSE(native::handles_dtype("QLinearConv", DType::I64));
  EXPECT_TRUE(native::handles_dtype("", DType::U8));  // the boundary
}

TEST(NativeQuantErrors, MemoryPlannerSizesValuesByDtype) {
  GraphBuilder b;
  const std::string x = qinput(b, "x", DType::U8, {2, 3, 4, 5});
  const std::string f = b.node("Flatten", {x}, {{"axis", int64_t(1)}});
  b.constant("s", scalar_f32(0.5f));
  const std::string d = b.node("DequantizeLinear", {f, "s"});
  Graph g = b.finish({d});
  infer_shapes(g);
  std::map<std::string, int64_t> bytes;
  for (const BufferRequest& r : value_lifetimes(g)) bytes[r.name] = r.bytes;
  EXPECT_EQ(bytes[x], 120);      // uint8: one byte each
  EXPECT_EQ(bytes[f], 120);
  EXPECT_EQ(bytes[d], 120 * 4);  // float32
}

// ---- the quantized MobileNetV2 ----

std::string int8_model() {
  const std::string d = test::shared_models_dir();
  if (d.empty()) return "";
  const std::string p = d + "/mobilenetv2-12-int8/mobilenetv2-12-int8.onnx";
  return std::filesystem::exists(p) ? p : "";
}

Tensor test_set(int k, const char* file) {
  const std::string dir = std::filesystem::path(int8_model()).parent_path().string();
  return onnx_import::load_tensor_file(dir + "/test_data_set_" + std::to_string(k) + "/" + file);
}

// The reference backend's outputs on the five sets (slow: computed once per process).
const std::vector<Tensor>& reference_outputs() {
  static const std::vector<Tensor> outs = [] {
    SessionOptions o;
    o.backend_name = "reference";
    Session s = Session::from_file(int8_model(), o);
    std::vector<Tensor> r;
    for (int k = 0; k < 5; ++k) r.push_back(s.run({{"input", test_set(k, "input_0.pb")}})[0]);
    return r;
  }();
  return outs;
}

class NativeQuantModel : public test::IsaTest {};

TEST_P(NativeQuantModel, Int8MobileNetV2EqualsTheReferenceBitForBit) {
  ASSERT_FALSE(int8_model().empty()) << "the int8 model is missing: ../shared/models/mobilenetv2-12-int8";
  const auto& want = reference_outputs();
  for (int threads : {1, 2}) {
    SessionOptions o;
    o.threads = threads;
    Session s = Session::from_file(int8_model(), o);
    // every node runs a quantized kernel: nothing fell back to float
    const std::set<std::string> quantized = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                                             "FusedQLinearInvertedResidual",
                                             "QLinearAdd", "QLinearGlobalAveragePool",
                                             "Reshape"};
    for (const NodeImplementation& impl : s.executable().implementations())
      EXPECT_EQ(quantized.count(impl.op), 1u) << impl.op << " '" << impl.node << "'";
    for (int k = 0; k < 5; ++k) {
      const Tensor got = s.run({{"input", test_set(k, "input_0.pb")}})[0];
      EXPECT_EQ(byte_diff(got, want[size_t(k)]), "") << "set " << k << ", " << threads << " thread(s)";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, NativeQuantModel, ::testing::ValuesIn(test::supported_isas()), test::isa_param_name);

// Batch 3 (sets 0, 1, 2 in one input): each row of the output is that set's batch-1 reference output.
TEST(NativeQuantModelBatch, Int8MobileNetV2AtBatchThreeEqualsTheReferenceRows) {
  ASSERT_FALSE(int8_model().empty()) << "the int8 model is missing: ../shared/models/mobilenetv2-12-int8";
  SessionOptions o;
  o.batch = 3;
  o.threads = 2;
  Session s = Session::from_file(int8_model(), o);
  Tensor in(DType::F32, {3, 3, 224, 224});
  const size_t one = size_t(3 * 224 * 224) * sizeof(float);
  for (int k = 0; k < 3; ++k) std::memcpy(in.bytes.data() + size_t(k) * one, test_set(k, "input_0.pb").bytes.data(), one);
  const Tensor got = s.run({{"input", in}})[0];
  ASSERT_EQ(got.shape, (Shape{3, 1000}));
  for (int k = 0; k < 3; ++k) {
    Tensor row(DType::F32, {1, 1000});
    std::memcpy(row.bytes.data(), got.bytes.data() + size_t(k) * 1000 * sizeof(float), 1000 * sizeof(float));
    EXPECT_EQ(byte_diff(row, reference_outputs()[size_t(k)]), "") << "row " << k;
  }
}

// The QDQ twin (scripts/make-qdq-model.py; fold-qdq rewrites it into the same quantized ops) runs on
// the same native kernels: the same bytes as the reference on the QOperator model.
TEST(NativeQuantModelQdq, QdqFormOnTheNativeBackendEqualsTheReference) {
  ASSERT_FALSE(int8_model().empty()) << "the int8 model is missing: ../shared/models/mobilenetv2-12-int8";
  const std::string src = std::filesystem::path(int8_model()).parent_path().string();
  const std::string out = std::string(LOCUS_BINARY_DIR) + "/test-models/native-quant-qdq";
  const std::string cmd = std::string("/usr/bin/python3 ") + LOCUS_SOURCE_DIR + "/scripts/make-qdq-model.py '" + src +
                          "' '" + out + "' > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  Session s = Session::from_file(out + "/mobilenetv2-12-int8-qdq.onnx");
  for (const NodeImplementation& impl : s.executable().implementations())
    EXPECT_TRUE(impl.op != "Conv" && impl.op != "MatMul" && impl.op != "Add") << impl.op << " '" << impl.node << "'";
  for (int k = 0; k < 5; ++k) {
    const Tensor got = s.run({{"input", test_set(k, "input_0.pb")}})[0];
    EXPECT_EQ(byte_diff(got, reference_outputs()[size_t(k)]), "") << "set " << k;
  }
}

TEST(NativeQuantModelOrt, Int8MobileNetV2MatchesOnnxRuntime) {
  ASSERT_FALSE(int8_model().empty()) << "the int8 model is missing: ../shared/models/mobilenetv2-12-int8";
  Session s = Session::from_file(int8_model());
  const Tensor* step_t = s.graph().constant("output_scale");
  ASSERT_NE(step_t, nullptr);
  const double step = step_t->get(0);
  int64_t identical = 0, total = 0;
  for (int k = 0; k < 5; ++k) {
    const Tensor want = test_set(k, "output_0.pb");
    const Tensor got = s.run({{"input", test_set(k, "input_0.pb")}})[0];
    ASSERT_EQ(got.shape, want.shape);
    int64_t same = 0;
    double worst = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      same += got.data<float>()[i] == want.data<float>()[i];
      worst = std::max(worst, std::fabs(double(got.data<float>()[i]) - want.data<float>()[i]));
    }
    identical += same;
    total += want.numel();
    EXPECT_GE(double(same), 0.99 * double(want.numel())) << "set " << k;
    EXPECT_LE(worst, step * 1.0001) << "set " << k;
    EXPECT_EQ(test::top5(got), test::top5(want)) << "set " << k;
  }
  std::printf("int8 MobileNetV2, native backend: %lld of %lld logits bit-identical to ONNX Runtime (%.2f%%)\n",
              (long long)identical, (long long)total, 100.0 * double(identical) / double(total));
}

}  // namespace
