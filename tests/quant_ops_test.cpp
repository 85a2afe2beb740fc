// The quantized ops of the reference evaluator (graph/eval/eval_quant.cpp) against hand-computed
// values and a naive integer reference written here from the ONNX / contrib specs, on ragged shapes,
// per tensor and per channel, nonzero zero points, saturation at both ends, ties (half to even);
// and the one-line errors shape inference gives for malformed quantized nodes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "graph/eval/eval_ops.h"
#include "graph/ops.h"

using namespace locus;

namespace {

template <class T>
Tensor make(DType t, Shape s, std::vector<T> v) {
  Tensor r(t, std::move(s));
  EXPECT_EQ(int64_t(v.size()), r.numel());
  for (size_t i = 0; i < v.size(); ++i) r.data<T>()[i] = v[i];
  return r;
}
Tensor f32(Shape s, std::vector<float> v) { return make<float>(DType::F32, std::move(s), std::move(v)); }
Tensor u8(Shape s, std::vector<uint8_t> v) { return make<uint8_t>(DType::U8, std::move(s), std::move(v)); }
Tensor s8(Shape s, std::vector<int8_t> v) { return make<int8_t>(DType::I8, std::move(s), std::move(v)); }
Tensor s32(Shape s, std::vector<int32_t> v) { return make<int32_t>(DType::I32, std::move(s), std::move(v)); }

Node node(const std::string& op, size_t inputs, const std::string& domain = "") {
  Node n;
  n.op = op;
  n.name = "q1";
  n.domain = domain;
  for (size_t k = 0; k < inputs; ++k) n.inputs.push_back("in" + std::to_string(k));
  n.outputs = {"y"};
  return n;
}

Tensor run(const Node& n, const std::vector<const Tensor*>& in) { return eval::evaluate(n, in)[0]; }

std::vector<int> ints(const Tensor& t) {
  std::vector<int> r;
  for (int64_t i = 0; i < t.numel(); ++i) r.push_back(int(t.get_int(i)));
  return r;
}

// The spec's formula with ORT's requantization, independent of the evaluator's loops.
int requant(int64_t acc, float mult, int zy, int lo, int hi) {
  float v = float(int32_t(acc)) * mult;
  long r = std::lrint(double(v));  // default rounding mode: to nearest, ties to even
  r += zy;
  return int(std::min<long>(hi, std::max<long>(lo, r)));
}

// The error message infer_node gives for a node (with every input constant), or "".
std::string error_of(Node n, const std::vector<const Tensor*>& in) {
  std::vector<ValueInfo> infos;
  for (size_t k = 0; k < in.size(); ++k) {
    if (!in[k]) n.inputs[k].clear();
    infos.push_back(in[k] ? ValueInfo{in[k]->dtype, in[k]->shape, true} : ValueInfo{});
  }
  try {
    infer_node(n, infos, in);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(QuantOps, QuantizeLinearRoundsHalfToEvenAndSaturates) {
  Tensor x = f32({8}, {-1.0f, 0.f, 0.25f, 0.75f, 1.25f, 100.f, -100.f, 0.5f});
  Tensor s = f32({}, {0.5f});
  Tensor z = u8({}, {128});
  // x / 0.5 = -2, 0, 0.5, 1.5, 2.5, 200, -200, 1 -> even ties -> + 128, saturated to [0, 255]
  EXPECT_EQ(ints(run(node("QuantizeLinear", 3), {&x, &s, &z})), (std::vector<int>{126, 128, 128, 130, 130, 255, 0, 129}));
  // no zero point: uint8 with 0
  Tensor y = run(node("QuantizeLinear", 2), {&x, &s});
  EXPECT_EQ(y.dtype, DType::U8);
  EXPECT_EQ(ints(y), (std::vector<int>{0, 0, 0, 2, 2, 200, 0, 1}));
}

TEST(QuantOps, QuantizeLinearPerAxisInt8) {
  Tensor x = f32({2, 3}, {1.5f, 3.f, -600.f, -200.f, 2.5f, 4.f});
  Tensor s = f32({3}, {1.f, 2.f, 4.f});
  Tensor z = s8({3}, {0, -10, 10});
  Node n = node("QuantizeLinear", 3);
  n.attrs["axis"] = int64_t(-1);
  // x / s = [1.5, 1.5, -150; -200, 1.25, 1] -> [2, 2, -150; -200, 1, 1] + zp, saturated to [-128, 127]
  EXPECT_EQ(ints(run(n, {&x, &s, &z})), (std::vector<int>{2, -8, -128, -128, -9, 11}));
}

TEST(QuantOps, DequantizeLinearPerTensorPerAxisAndInt32) {
  Tensor x = u8({3}, {0, 128, 255});
  Tensor s = f32({}, {0.5f});
  Tensor z = u8({}, {128});
  Tensor y = run(node("DequantizeLinear", 3), {&x, &s, &z});
  EXPECT_EQ(y.dtype, DType::F32);
  EXPECT_EQ(std::vector<float>(y.data<float>(), y.data<float>() + 3), (std::vector<float>{-64.f, 0.f, 63.5f}));
  Tensor x2 = s8({2, 2}, {-128, 127, 0, 10});
  Tensor s2 = f32({2}, {1.f, 0.25f});
  Tensor z2 = s8({2}, {1, -2});
  Node n = node("DequantizeLinear", 3);
  n.attrs["axis"] = int64_t(0);
  Tensor y2 = run(n, {&x2, &s2, &z2});
  EXPECT_EQ(std::vector<float>(y2.data<float>(), y2.data<float>() + 4), (std::vector<float>{-129.f, 126.f, 0.5f, 3.f}));
  Tensor b = s32({2}, {-5, 7});
  Tensor bs = f32({2}, {0.5f, 2.f});
  Tensor y3 = run(n, {&b, &bs});
  EXPECT_EQ(std::vector<float>(y3.data<float>(), y3.data<float>() + 2), (std::vector<float>{-2.5f, 14.f}));
}

TEST(QuantOps, QLinearConvHandComputedWithTies) {
  Tensor x = u8({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor xs = f32({}, {0.5f}), xz = u8({}, {1});
  Tensor w = s8({1, 1, 2, 2}, {1, -1, 2, 0});
  Tensor ws = f32({1}, {1.f}), wz = s8({1}, {0});
  Tensor ys = f32({}, {1.f}), yz = u8({}, {10});
  Tensor b = s32({1}, {3});
  // acc = sum (x-1) w + 3 = 8, 10, 14, 16; * 0.5 -> 4, 5, 7, 8; + 10
  EXPECT_EQ(ints(run(node("QLinearConv", 9), {&x, &xs, &xz, &w, &ws, &wz, &ys, &yz, &b})),
            (std::vector<int>{14, 15, 17, 18}));
  // y_scale 2: * 0.25 -> 2, 2.5, 3.5, 4 -> ties to even 2, 2, 4, 4
  Tensor ys2 = f32({}, {2.f});
  EXPECT_EQ(ints(run(node("QLinearConv", 9), {&x, &xs, &xz, &w, &ws, &wz, &ys2, &yz, &b})),
            (std::vector<int>{12, 12, 14, 14}));
}

// Ragged grouped conv, per-channel weights with nonzero zero points, pads, stride, dilation; the
// output scale is chosen so that both ends saturate.
TEST(QuantOps, QLinearConvPerChannelRaggedAgainstNaive) {
  for (DType xt : {DType::U8, DType::I8}) {
    std::mt19937 rng(7);
    const int64_t N = 2, C = 6, H = 7, W = 5, OC = 9, G = 3, KH = 3, KW = 2;
    const int lo = xt == DType::U8 ? 0 : -128, hi = xt == DType::U8 ? 255 : 127;
    Tensor x(xt, {N, C, H, W});
    for (int64_t i = 0; i < x.numel(); ++i) {
      int v = std::uniform_int_distribution<int>(lo, hi)(rng);
      if (xt == DType::U8) x.data<uint8_t>()[i] = uint8_t(v);
      else x.data<int8_t>()[i] = int8_t(v);
    }
    Tensor w(DType::I8, {OC, C / G, KH, KW});
    for (int64_t i = 0; i < w.numel(); ++i) w.data<int8_t>()[i] = int8_t(std::uniform_int_distribution<int>(-128, 127)(rng));
    Tensor xs = f32({}, {0.02f}), ys = f32({}, {0.01f});
    Tensor xz = xt == DType::U8 ? u8({}, {131}) : s8({}, {-7});
    Tensor yz = xt == DType::U8 ? u8({}, {120}) : s8({}, {5});
    Tensor ws(DType::F32, {OC}), wz(DType::I8, {OC});
    Tensor b(DType::I32, {OC});
    for (int64_t o = 0; o < OC; ++o) {
      ws.data<float>()[o] = 0.01f + 0.003f * float(o);
      wz.data<int8_t>()[o] = int8_t(int(o) - 4);
      b.data<int32_t>()[o] = int32_t(o * 997) - 4000;
    }
    Node n = node("QLinearConv", 9);
    n.attrs["group"] = G;
    n.attrs["strides"] = std::vector<int64_t>{2, 1};
    n.attrs["pads"] = std::vector<int64_t>{1, 0, 2, 1};
    n.attrs["dilations"] = std::vector<int64_t>{1, 2};
    Tensor y = run(n, {&x, &xs, &xz, &w, &ws, &wz, &ys, &yz, &b});
    const int64_t OH = (H + 3 - 3) / 2 + 1, OW = (W + 1 - 3) / 1 + 1;
    ASSERT_EQ(y.shape, (Shape{N, OC, OH, OW}));
    int at_lo = 0, at_hi = 0;
    for (int64_t ni = 0; ni < N; ++ni)
      for (int64_t o = 0; o < OC; ++o)
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            int64_t acc = b.data<int32_t>()[o];
            const int64_t g = o / (OC / G);
            for (int64_t c = 0; c < C / G; ++c)
              for (int64_t kh = 0; kh < KH; ++kh)
                for (int64_t kw = 0; kw < KW; ++kw) {
                  int64_t ih = oh * 2 - 1 + kh, iw = ow - 0 + kw * 2;
                  int64_t xv = xz.get_int(0);  // padding holds the zero point
                  if (ih >= 0 && ih < H && iw >= 0 && iw < W) xv = x.get_int(((ni * C + g * (C / G) + c) * H + ih) * W + iw);
                  acc += (xv - xz.get_int(0)) * (w.get_int(((o * (C / G) + c) * KH + kh) * KW + kw) - wz.get_int(o));
                }
            const float mult = 0.02f * ws.data<float>()[o] / 0.01f;
            const int want = requant(acc, mult, int(yz.get_int(0)), lo, hi);
            const int got = int(y.get_int(((ni * OC + o) * OH + oh) * OW + ow));
            ASSERT_EQ(got, want) << dtype_name(xt) << " at " << ni << "," << o << "," << oh << "," << ow;
            at_lo += got == lo;
            at_hi += got == hi;
          }
    EXPECT_GT(at_lo, 0) << "no output saturated low";
    EXPECT_GT(at_hi, 0) << "no output saturated high";
  }
}

TEST(QuantOps, QLinearMatMulPerColumnAgainstNaive) {
  std::mt19937 rng(3);
  const int64_t B = 2, M = 3, K = 37, Nc = 5;
  Tensor a(DType::U8, {B, M, K}), bm(DType::I8, {K, Nc});
  for (int64_t i = 0; i < a.numel(); ++i) a.data<uint8_t>()[i] = uint8_t(std::uniform_int_distribution<int>(0, 255)(rng));
  for (int64_t i = 0; i < bm.numel(); ++i) bm.data<int8_t>()[i] = int8_t(std::uniform_int_distribution<int>(-128, 127)(rng));
  Tensor as = f32({}, {0.05f}), az = u8({}, {100});
  Tensor bs = f32({Nc}, {0.01f, 0.02f, 0.004f, 0.03f, 0.5f}), bz = s8({Nc}, {0, 3, -3, 10, 0});
  Tensor ys = f32({}, {0.3f}), yz = u8({}, {128});
  Tensor y = run(node("QLinearMatMul", 8), {&a, &as, &az, &bm, &bs, &bz, &ys, &yz});
  ASSERT_EQ(y.shape, (Shape{B, M, Nc}));
  int sat = 0;
  for (int64_t m = 0; m < B * M; ++m)
    for (int64_t j = 0; j < Nc; ++j) {
      int64_t acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += (a.get_int(m * K + k) - 100) * (bm.get_int(k * Nc + j) - bz.get_int(j));
      const int want = requant(acc, 0.05f * bs.data<float>()[j] / 0.3f, 128, 0, 255);
      EXPECT_EQ(y.get_int(m * Nc + j), want) << m << "," << j;
      sat += want == 0 || want == 255;
    }
  EXPECT_GT(sat, 0);
}

TEST(QuantOps, QLinearAddBroadcastsHandComputed) {
  // ra = 0.5, rb = 0.25, fixed = 3 - (0 * 0.5 + 4 * 0.25) = 2; C = A * 0.5 + B * 0.25 + 2
  Tensor a = u8({2, 3}, {0, 1, 2, 255, 3, 5});
  Tensor b = u8({3}, {4, 6, 0});
  Tensor sa = f32({}, {0.5f}), za = u8({}, {0}), sb = f32({}, {0.25f}), zb = u8({}, {4});
  Tensor sc = f32({}, {1.f}), zc = u8({}, {3});
  Node n = node("QLinearAdd", 8, "com.microsoft");
  // [3, 4, 3; 130.5 -> 130, 5, 4.5 -> 4]
  EXPECT_EQ(ints(run(n, {&a, &sa, &za, &b, &sb, &zb, &sc, &zc})), (std::vector<int>{3, 4, 3, 130, 5, 4}));
  // int8 saturation at both ends, C zero point omitted (0); B broadcast along axis 0
  Tensor a8 = s8({2, 2}, {127, -128, 0, 1});
  Tensor b8 = s8({2, 1}, {127, -128});
  Tensor s1 = f32({}, {1.f}), z8 = s8({}, {0}), sc8 = f32({}, {0.5f});
  Node n7 = node("QLinearAdd", 7, "com.microsoft");
  // (a + b) / 0.5 = [508, -2; -256, -254] -> [127, -2; -128, -128]
  EXPECT_EQ(ints(run(n7, {&a8, &s1, &z8, &b8, &s1, &z8, &sc8})), (std::vector<int>{127, -2, -128, -128}));
}

TEST(QuantOps, QLinearGlobalAveragePoolNchwAndChannelsLast) {
  // channel sums 10 and 1001 over 4 pixels; scale 1 / (1 * 4) -> 2.5 -> 2 (even), 250.25 -> 250
  Tensor x = u8({1, 2, 2, 2}, {1, 2, 3, 4, 250, 250, 250, 251});
  Tensor s = f32({}, {1.f}), z = u8({}, {0});
  Node n = node("QLinearGlobalAveragePool", 5, "com.microsoft");
  Tensor y = run(n, {&x, &s, &z, &s, &z});
  EXPECT_EQ(y.shape, (Shape{1, 2, 1, 1}));
  EXPECT_EQ(ints(y), (std::vector<int>{2, 250}));
  // NHWC: the same data interleaved; zero points 10 in and 20 out, y scale 2: (sum - 40) / 8 + 20
  Tensor xl = u8({1, 2, 2, 2}, {11, 250, 12, 250, 13, 250, 14, 251});
  Tensor zi = u8({}, {10}), zo = u8({}, {20}), s2 = f32({}, {2.f});
  n.attrs["channels_last"] = int64_t(1);
  Tensor yl = run(n, {&xl, &s, &zi, &s2, &zo});
  EXPECT_EQ(yl.shape, (Shape{1, 1, 1, 2}));
  // ch0: 50 - 40 = 10 -> 1.25 -> 1 + 20; ch1: 1001 - 40 = 961 -> 120.125 -> 120 + 20
  EXPECT_EQ(ints(yl), (std::vector<int>{21, 140}));
}

TEST(QuantOps, MalformedQuantizedNodesGiveOneLineErrors) {
  Tensor x = u8({1, 2, 3, 3}, std::vector<uint8_t>(18, 5));
  Tensor xs = f32({}, {0.5f}), xz = u8({}, {1});
  Tensor w = s8({3, 2, 1, 1}, {1, 2, 3, 4, 5, 6});
  Tensor ws = f32({3}, {1.f, 1.f, 1.f}), wz = s8({3}, {0, 0, 0});
  Tensor ys = f32({}, {1.f}), yz = u8({}, {10});
  Tensor b = s32({3}, {1, 2, 3});
  const Node conv = node("QLinearConv", 9);
  auto expect_error = [&](std::vector<const Tensor*> in, const std::string& what) {
    const std::string e = error_of(conv, in);
    EXPECT_NE(e.find("node 'q1' (QLinearConv)"), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << "want '" << what << "' in: " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  };
  EXPECT_EQ(error_of(conv, {&x, &xs, &xz, &w, &ws, &wz, &ys, &yz, &b}), "");
  expect_error({&x, nullptr, &xz, &w, &ws, &wz, &ys, &yz, &b}, "x scale (input 1) is missing");
  Tensor xz8 = s8({}, {1});
  expect_error({&x, &xs, &xz8, &w, &ws, &wz, &ys, &yz, &b}, "x zero point 'in2' has type int8 but the x tensor is uint8");
  Tensor wzu = u8({3}, {0, 0, 0});
  expect_error({&x, &xs, &xz, &w, &ws, &wzu, &ys, &yz, &b}, "w zero point 'in5' has type uint8 but the w tensor is int8");
  Tensor zero = f32({}, {0.f}), neg = f32({3}, {1.f, -1.f, 1.f}), nan = f32({}, {NAN}), inf = f32({}, {INFINITY});
  expect_error({&x, &zero, &xz, &w, &ws, &wz, &ys, &yz, &b}, "x scale 'in1' must be positive and finite, got 0");
  expect_error({&x, &xs, &xz, &w, &neg, &wz, &ys, &yz, &b}, "w scale 'in4' must be positive and finite, got -1 at index 1");
  expect_error({&x, &xs, &xz, &w, &ws, &wz, &nan, &yz, &b}, "y scale 'in6' must be positive and finite, got nan");
  expect_error({&x, &xs, &xz, &w, &ws, &wz, &inf, &yz, &b}, "y scale 'in6' must be positive and finite, got inf");
  Tensor ws2 = f32({2}, {1.f, 1.f});
  expect_error({&x, &xs, &xz, &w, &ws2, &wz, &ys, &yz, &b}, "w scale 'in4' has 2 values, expected 1 or 3 (one per channel)");
  Tensor wz2 = s8({2}, {0, 0});
  expect_error({&x, &xs, &xz, &w, &ws, &wz2, &ys, &yz, &b}, "w zero point 'in5' has shape [2] but its scale has 3 values");
  Tensor bf = f32({3}, {1.f, 2.f, 3.f});
  expect_error({&x, &xs, &xz, &w, &ws, &wz, &ys, &yz, &bf}, "bias 'in8' must be int32, got float32");
  Tensor yz8 = s8({}, {0});
  expect_error({&x, &xs, &xz, &w, &ws, &wz, &ys, &yz8, &b}, "mixed types: x is uint8 but y is int8");
  // the contrib ops and Q/DQ say the same
  Node add = node("QLinearAdd", 8, "com.microsoft");
  Tensor a = u8({2}, {1, 2}), a8 = s8({2}, {1, 2});
  std::string e = error_of(add, {&a, &xs, &xz, &a8, &xs, &xz8, &ys, &yz});
  EXPECT_NE(e.find("mixed types: A is uint8 but B is int8"), std::string::npos) << e;
  Node q = node("QuantizeLinear", 3);
  Tensor xf = f32({2}, {1.f, 2.f});
  e = error_of(q, {&xf, &zero, &yz});
  EXPECT_NE(e.find("node 'q1' (QuantizeLinear): y scale 'in1' must be positive and finite"), std::string::npos) << e;
  Node dq = node("DequantizeLinear", 3);
  dq.attrs["axis"] = int64_t(0);
  Tensor s3 = f32({3}, {1.f, 1.f, 1.f});
  e = error_of(dq, {&a, &s3, nullptr});
  EXPECT_NE(e.find("x scale 'in1' has 3 values, expected 1 or 2 (one per channel)"), std::string::npos) << e;
}

TEST(QuantOps, UnsupportedSummaryNamesEachOpOnceAndTheContribOpsAreInTheCatalogue) {
  Graph g;
  for (int i = 0; i < 3; ++i) {
    Node n = node("QLinearFoo", 1);
    n.name = "f" + std::to_string(i);
    g.nodes.push_back(n);
  }
  Node other = node("QLinearAdd", 1, "com.example");
  other.name = "e1";
  g.nodes.push_back(other);
  Node ok = node("QLinearAdd", 1, "com.microsoft");
  ok.name = "ok";
  g.nodes.push_back(ok);
  EXPECT_EQ(unsupported_summary(g),
            "unsupported operators: QLinearFoo \u00d73, first 'f0'; QLinearAdd of domain 'com.example' (node 'e1')");
  EXPECT_EQ(microsoft_ops(), (std::vector<std::string>{"QLinearAdd", "QLinearGlobalAveragePool"}));
  EXPECT_TRUE(is_supported_op("QLinearConv"));
  EXPECT_TRUE(is_supported_op("QuantizeLinear"));
}
