// Reference kernels (graph/eval/eval_ops.h). Expected values are worked out by hand
// (in the comments) or by an independent direct formula written here in a different form (explicit
// zero-padded input, explicit transposes, element lists) — never taken from the kernels' output.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "graph/ops.h"
#include "graph/eval/eval_ops.h"
#include "tests/test_support.h"

namespace locus {
namespace {

Node make_node(const std::string& op, size_t num_inputs, const std::string& name = "n") {
  Node n;
  n.op = op;
  n.name = name;
  for (size_t k = 0; k < num_inputs; ++k) n.inputs.push_back(cat("i", k));
  n.outputs = {"y"};
  return n;
}

Tensor f32(Shape s, std::vector<float> v) { return Tensor::from_f32(std::move(s), v); }
Tensor i64(Shape s, std::vector<int64_t> v) { return Tensor::from_i64(std::move(s), v); }
Tensor i32(Shape s, const std::vector<int32_t>& v) {
  Tensor t(DType::I32, std::move(s));
  for (size_t i = 0; i < v.size(); ++i) t.data<int32_t>()[i] = v[i];
  return t;
}

std::vector<float> floats(const Tensor& t) {
  EXPECT_EQ(t.dtype, DType::F32);
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}
std::vector<int64_t> longs(const Tensor& t) {
  EXPECT_EQ(t.dtype, DType::I64);
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

Tensor eval1(const Node& n, const std::vector<const Tensor*>& in) {
  std::vector<Tensor> out = eval::evaluate(n, in);
  EXPECT_EQ(out.size(), 1u);
  return std::move(out.at(0));
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, double tol = 1e-5) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "at " << i;
}

// ---------------------------------------------------------------------------------------------
// Conv

// Direct convolution on an explicitly zero-padded copy of the input (no bounds tests at all).
std::vector<float> conv_by_padding(const Tensor& x, const Tensor& w, const std::vector<float>& bias,
                                   int64_t group, std::vector<int64_t> stride, std::vector<int64_t> dil,
                                   std::vector<int64_t> pads /*t,l,b,r*/, int64_t OH, int64_t OW) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OC = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3];
  const int64_t PH = H + pads[0] + pads[2], PW = W + pads[1] + pads[3];
  std::vector<double> padded(size_t(N * C * PH * PW), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t v = 0; v < W; ++v)
          padded[size_t(((n * C + c) * PH + h + pads[0]) * PW + v + pads[1])] =
              x.data<float>()[((n * C + c) * H + h) * W + v];
  std::vector<float> y;
  const int64_t per_group = OC / group;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < OC; ++oc)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = bias.empty() ? 0.0 : bias[size_t(oc)];
          const int64_t g = oc / per_group;
          for (int64_t ic = 0; ic < Cg; ++ic)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw)
                acc += padded[size_t(((n * C + g * Cg + ic) * PH + oh * stride[0] + kh * dil[0]) * PW +
                                     ow * stride[1] + kw * dil[1])] *
                       w.data<float>()[((oc * Cg + ic) * KH + kh) * KW + kw];
          y.push_back(float(acc));
        }
  return y;
}

TEST(ReferenceConv, TinyHandComputed) {
  // x = 1..9 in 3x3, 2x2 kernel of ones: window sums 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9
  Tensor x = f32({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor w = f32({1, 1, 2, 2}, {1, 1, 1, 1});
  Tensor b = f32({1}, {-20});
  Node n = make_node("Conv", 2);
  expect_near(floats(eval1(n, {&x, &w})), {12, 16, 24, 28});

  Node r = make_node("Conv", 3);
  r.attrs["locus.activation"] = std::string("relu");
  Tensor y = eval1(r, {&x, &w, &b});
  EXPECT_EQ(y.shape, (Shape{1, 1, 2, 2}));
  expect_near(floats(y), {0, 0, 4, 8});

  Node c = make_node("Conv", 3);
  c.attrs["locus.activation"] = std::string("clip");
  c.attrs["locus.activation_min"] = 1.f;
  c.attrs["locus.activation_max"] = 6.f;
  expect_near(floats(eval1(c, {&x, &w, &b})), {1, 1, 4, 6});
}

TEST(ReferenceConv, PadsStride2Dilation2Group2) {
  // N=1, C=4, 9x8, OC=6, group 2 (2 input channels per group), kernel 3x2, stride 2, dilation 2,
  // pads top 1, left 2, bottom 0, right 1.
  // OH = (9 + 1 + 0 - (2*2+1)) / 2 + 1 = 3;  OW = (8 + 2 + 1 - (1*2+1)) / 2 + 1 = 5
  Tensor x = f32({1, 4, 9, 8}, test::random_floats(4 * 9 * 8, 1));
  Tensor w = f32({6, 2, 3, 2}, test::random_floats(6 * 2 * 3 * 2, 2));
  std::vector<float> bias = test::random_floats(6, 3);
  Tensor b = f32({6}, bias);
  Node n = make_node("Conv", 3, "conv");
  n.attrs["group"] = int64_t(2);
  n.attrs["strides"] = std::vector<int64_t>{2, 2};
  n.attrs["dilations"] = std::vector<int64_t>{2, 2};
  n.attrs["pads"] = std::vector<int64_t>{1, 2, 0, 1};
  Tensor y = eval1(n, {&x, &w, &b});
  ASSERT_EQ(y.shape, (Shape{1, 6, 3, 5}));
  expect_near(floats(y), conv_by_padding(x, w, bias, 2, {2, 2}, {2, 2}, {1, 2, 0, 1}, 3, 5));
}

TEST(ReferenceConv, DepthwiseSameUpper) {
  // C = OC = group = 3, 3x3 kernel, SAME_UPPER stride 1 on 4x5 -> pads 1 all round, output 4x5.
  Tensor x = f32({2, 3, 4, 5}, test::random_floats(2 * 3 * 4 * 5, 4));
  Tensor w = f32({3, 1, 3, 3}, test::random_floats(27, 5));
  Node n = make_node("Conv", 2);
  n.attrs["group"] = int64_t(3);
  n.attrs["auto_pad"] = std::string("SAME_UPPER");
  Tensor y = eval1(n, {&x, &w});
  ASSERT_EQ(y.shape, (Shape{2, 3, 4, 5}));
  expect_near(floats(y), conv_by_padding(x, w, {}, 3, {1, 1}, {1, 1}, {1, 1, 1, 1}, 4, 5));
  EXPECT_TRUE(n.has("auto_pad")) << "evaluate must not modify the caller's node";
}

TEST(ReferenceConv, RejectsNonFloat) {
  Tensor x = i64({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor w = i64({1, 1, 1, 1}, {1});
  EXPECT_THROW(eval::evaluate(make_node("Conv", 2), {&x, &w}), Unsupported);
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization, activations

TEST(ReferenceBatchNorm, HandComputed) {
  // epsilon 1: channel 0 divides by sqrt(3+1) = 2, channel 1 by sqrt(0+1) = 1.
  // ch0: (x - 1) / 2 * 2 + 1   -> 1 -> 1, 2 -> 2
  // ch1: (x - 2) / 1 * 0.5 - 1 -> 3 -> -0.5, 4 -> 0
  Tensor x = f32({1, 2, 1, 2}, {1, 2, 3, 4});
  Tensor scale = f32({2}, {2, 0.5f}), bias = f32({2}, {1, -1});
  Tensor mean = f32({2}, {1, 2}), var = f32({2}, {3, 0});
  Node n = make_node("BatchNormalization", 5);
  n.attrs["epsilon"] = 1.f;
  expect_near(floats(eval1(n, {&x, &scale, &bias, &mean, &var})), {1, 2, -0.5f, 0});
}

TEST(ReferenceActivation, ReluAndClip) {
  Tensor x = f32({4}, {-1, 0, 0.5f, 3});
  expect_near(floats(eval1(make_node("Relu", 1), {&x})), {0, 0, 0.5f, 3});
  Tensor lo = f32({}, {0}), hi = f32({1}, {1});
  expect_near(floats(eval1(make_node("Clip", 3), {&x, &lo, &hi})), {0, 0, 0.5f, 1});
  expect_near(floats(eval1(make_node("Clip", 2), {&x, &lo})), {0, 0, 0.5f, 3});
  expect_near(floats(eval1(make_node("Clip", 3), {&x, nullptr, &hi})), {-1, 0, 0.5f, 1});
  expect_near(floats(eval1(make_node("Clip", 1), {&x})), {-1, 0, 0.5f, 3});
}

// ---------------------------------------------------------------------------------------------
// pools

Tensor ramp_5x5() {
  std::vector<float> v(25);
  for (int i = 0; i < 25; ++i) v[size_t(i)] = float(i);  // x[r][c] = 5r + c
  return f32({1, 1, 5, 5}, v);
}

Node pool_3x3_s2_ceil(const std::string& op) {
  Node n = make_node(op, 1);
  n.attrs["kernel_shape"] = std::vector<int64_t>{3, 3};
  n.attrs["strides"] = std::vector<int64_t>{2, 2};
  n.attrs["pads"] = std::vector<int64_t>{1, 1, 0, 0};
  n.attrs["ceil_mode"] = int64_t(1);
  return n;
}

// 5x5 ramp, kernel 3, stride 2, pads top/left 1, bottom/right 0, ceil_mode: 3x3 output.
// Window rows (cols alike): {-1,0,1}, {1,2,3}, {3,4,5}. Row -1 is explicit padding; row 5 exists
// only because of ceil_mode (beyond the pads) and is never counted.
TEST(ReferencePool, MaxPoolCeilMode) {
  Tensor x = ramp_5x5();
  Tensor y = eval1(pool_3x3_s2_ceil("MaxPool"), {&x});
  ASSERT_EQ(y.shape, (Shape{1, 1, 3, 3}));
  // max of a window = x[last valid row][last valid col]; last valid rows/cols are 1, 3, 4
  expect_near(floats(y), {6, 8, 9, 16, 18, 19, 21, 23, 24});
}

TEST(ReferencePool, AveragePoolCeilModeCountIncludePad) {
  // Sums: valid rows R0={0,1}, R1={1,2,3}, R2={3,4}; S = |C|*sum(5r) + |R|*sum(c):
  //   12 27 24 / 63 108 81 / 72 117 84
  // count_include_pad=1 divides by taps inside the padded input: rows (3,3,2) x cols (3,3,2)
  Tensor x = ramp_5x5();
  Node inc = pool_3x3_s2_ceil("AveragePool");
  inc.attrs["count_include_pad"] = int64_t(1);
  expect_near(floats(eval1(inc, {&x})), {12.f / 9, 3, 4, 7, 12, 13.5f, 12, 19.5f, 21});
  // count_include_pad=0 divides by valid taps: rows (2,3,2) x cols (2,3,2)
  Node exc = pool_3x3_s2_ceil("AveragePool");
  expect_near(floats(eval1(exc, {&x})), {3, 4.5f, 6, 10.5f, 12, 13.5f, 18, 19.5f, 21});
}

TEST(ReferencePool, AveragePoolPadsWithoutCeil) {
  // 3x3 ones, kernel 3, stride 1, pads 1: a corner window holds 4 ones of 9 taps, an edge 6.
  Tensor x = f32({1, 1, 3, 3}, std::vector<float>(9, 1.f));
  Node n = make_node("AveragePool", 1);
  n.attrs["kernel_shape"] = std::vector<int64_t>{3, 3};
  n.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  n.attrs["count_include_pad"] = int64_t(1);
  const float c = 4.f / 9, e = 6.f / 9;
  expect_near(floats(eval1(n, {&x})), {c, e, c, e, 1, e, c, e, c});
  n.attrs["count_include_pad"] = int64_t(0);
  expect_near(floats(eval1(n, {&x})), std::vector<float>(9, 1.f));
}

TEST(ReferencePool, MaxPoolDilatedAndNegative) {
  // 4x4 ramp x[r][c] = 4r + c, kernel 2x2 dilation 2: taps (r, r+2) x (c, c+2), out 2x2;
  // max is the bottom-right tap x[r+2][c+2].
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[size_t(i)] = float(i);
  Tensor x = f32({1, 1, 4, 4}, v);
  Node n = make_node("MaxPool", 1);
  n.attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
  n.attrs["dilations"] = std::vector<int64_t>{2, 2};
  expect_near(floats(eval1(n, {&x})), {10, 11, 14, 15});
  // padding never wins a max, even over negative values
  Tensor neg = f32({1, 1, 2, 2}, {-5, -6, -7, -8});
  Node p = make_node("MaxPool", 1);
  p.attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
  p.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  expect_near(floats(eval1(p, {&neg})), {-5, -5, -6, -5, -5, -6, -7, -7, -8});
}

TEST(ReferencePool, GlobalAveragePool) {
  Tensor x = f32({1, 2, 2, 2}, {1, 2, 3, 4, 10, 20, 30, 40});
  Tensor y = eval1(make_node("GlobalAveragePool", 1), {&x});
  EXPECT_EQ(y.shape, (Shape{1, 2, 1, 1}));
  expect_near(floats(y), {2.5f, 25});
}

// ---------------------------------------------------------------------------------------------
// Softmax, Gemm, MatMul

// softmax of x over the listed element positions, written into out
void softmax_group(const std::vector<float>& x, const std::vector<int>& idx, std::vector<float>& out) {
  double sum = 0;
  for (int i : idx) sum += std::exp(double(x[size_t(i)]));
  for (int i : idx) out[size_t(i)] = float(std::exp(double(x[size_t(i)])) / sum);
}

TEST(ReferenceSoftmax, LegacyVersusAxis) {
  std::vector<float> v = {0.1f, -1, 2, 0.5f, 3, -2, 1, 1, 0, -0.5f, 2.5f, 0.25f};
  Tensor x = f32({2, 3, 2}, v);
  // legacy, axis 1: coerced to [2, 6], one softmax per row of 6
  std::vector<float> legacy(12);
  softmax_group(v, {0, 1, 2, 3, 4, 5}, legacy);
  softmax_group(v, {6, 7, 8, 9, 10, 11}, legacy);
  // opset 13, axis 1: along the 3-long axis only; elements 2 apart
  std::vector<float> along(12);
  for (std::vector<int> g : {std::vector<int>{0, 2, 4}, {1, 3, 5}, {6, 8, 10}, {7, 9, 11}})
    softmax_group(v, g, along);

  Node l = make_node("Softmax", 1);
  l.attrs["legacy"] = int64_t(1);  // default axis 1
  expect_near(floats(eval1(l, {&x})), legacy);
  Node a = make_node("Softmax", 1);
  a.attrs["axis"] = int64_t(-2);
  expect_near(floats(eval1(a, {&x})), along);
  EXPECT_GT(std::fabs(legacy[0] - along[0]), 1e-3);  // the two forms really differ here
  // default (opset 13) axis -1: pairs
  std::vector<float> last(12);
  for (int i = 0; i < 12; i += 2) softmax_group(v, {i, i + 1}, last);
  expect_near(floats(eval1(make_node("Softmax", 1), {&x})), last);
}

TEST(ReferenceGemm, TransposesAlphaBetaBroadcastC) {
  // A stored [K=2, M=3] (transA): A' = [[1,4],[2,5],[3,6]]
  // B stored [N=2, K=2] (transB): B' = [[1,1],[0,1]]
  // A'B' = [[1,5],[2,7],[3,9]]; alpha 2 -> [[2,10],[4,14],[6,18]]; + 0.5 * C(row {1,-1})
  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = f32({2, 2}, {1, 0, 1, 1});
  Tensor c = f32({2}, {1, -1});
  Node n = make_node("Gemm", 3);
  n.attrs["transA"] = int64_t(1);
  n.attrs["transB"] = int64_t(1);
  n.attrs["alpha"] = 2.f;
  n.attrs["beta"] = 0.5f;
  Tensor y = eval1(n, {&a, &b, &c});
  EXPECT_EQ(y.shape, (Shape{3, 2}));
  expect_near(floats(y), {2.5f, 9.5f, 4.5f, 13.5f, 6.5f, 17.5f});

  // no transposes, C as a column [M,1]: [[1,2],[3,4]] x [[1,0],[0,2]] = [[1,4],[3,8]] + {10; 20}
  Tensor a2 = f32({2, 2}, {1, 2, 3, 4}), b2 = f32({2, 2}, {1, 0, 0, 2}), c2 = f32({2, 1}, {10, 20});
  expect_near(floats(eval1(make_node("Gemm", 3), {&a2, &b2, &c2})), {11, 14, 23, 28});
  expect_near(floats(eval1(make_node("Gemm", 2), {&a2, &b2})), {1, 4, 3, 8});
}

TEST(ReferenceMatMul, BatchedBroadcast) {
  // A [2,1,2,3] x B [3,3,2] -> [2,3,2,2]: y[i,j] = A[i,0] @ B[j]
  std::vector<float> av = test::random_floats(12, 7), bv = test::random_floats(18, 8);
  Tensor a = f32({2, 1, 2, 3}, av), b = f32({3, 3, 2}, bv);
  Tensor y = eval1(make_node("MatMul", 2), {&a, &b});
  ASSERT_EQ(y.shape, (Shape{2, 3, 2, 2}));
  std::vector<float> want;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int m = 0; m < 2; ++m)
        for (int n = 0; n < 2; ++n) {
          double s = 0;
          for (int k = 0; k < 3; ++k) s += double(av[size_t(i * 6 + m * 3 + k)]) * bv[size_t(j * 6 + k * 2 + n)];
          want.push_back(float(s));
        }
  expect_near(floats(y), want);

  // vector promotion: [3] x [3,2] -> [2]
  Tensor v = f32({3}, {1, 2, 3}), m = f32({3, 2}, {1, 0, 0, 1, 1, 1});
  Tensor vy = eval1(make_node("MatMul", 2), {&v, &m});
  EXPECT_EQ(vy.shape, (Shape{2}));
  expect_near(floats(vy), {4, 5});
}

// ---------------------------------------------------------------------------------------------
// elementwise

TEST(ReferenceBinary, FloatBroadcast) {
  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6}), b = f32({3}, {10, 20, 30}), col = f32({2, 1}, {2, 4});
  expect_near(floats(eval1(make_node("Add", 2), {&a, &b})), {11, 22, 33, 14, 25, 36});
  expect_near(floats(eval1(make_node("Sub", 2), {&b, &a})), {9, 18, 27, 6, 15, 24});
  expect_near(floats(eval1(make_node("Mul", 2), {&a, &col})), {2, 4, 6, 16, 20, 24});
  expect_near(floats(eval1(make_node("Div", 2), {&a, &col})), {0.5f, 1, 1.5f, 1, 1.25f, 1.5f});
}

TEST(ReferenceBinary, Integers) {
  Tensor a = i64({2}, {-7, 7}), two = i64({1}, {2}), zero = i64({}, {0});
  EXPECT_EQ(longs(eval1(make_node("Div", 2), {&a, &two})), (std::vector<int64_t>{-3, 3}));  // truncation
  EXPECT_EQ(longs(eval1(make_node("Mul", 2), {&a, &two})), (std::vector<int64_t>{-14, 14}));
  EXPECT_EQ(longs(eval1(make_node("Sub", 2), {&two, &a})), (std::vector<int64_t>{9, -5}));
  EXPECT_THROW(eval::evaluate(make_node("Div", 2), {&a, &zero}), Error);
  Tensor p = i32({3}, {1, -2, 3}), q = i32({3}, {4, 5, -6});
  Tensor y = eval1(make_node("Add", 2), {&p, &q});
  ASSERT_EQ(y.dtype, DType::I32);
  EXPECT_EQ(y.data<int32_t>()[0], 5);
  EXPECT_EQ(y.data<int32_t>()[1], 3);
  EXPECT_EQ(y.data<int32_t>()[2], -3);
  EXPECT_THROW(eval::evaluate(make_node("Add", 2), {&a, &p}), Error);  // int64 + int32
}

// ---------------------------------------------------------------------------------------------
// shape manipulation

TEST(ReferenceGather, AxesAndDtypes) {
  // data[r][c] = 10r + c, 3x4; take columns {-1, 0} -> {10r+3, 10r}
  std::vector<float> v;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) v.push_back(float(10 * r + c));
  Tensor x = f32({3, 4}, v);
  Tensor idx = i64({2}, {-1, 0});
  Node n = make_node("Gather", 2);
  n.attrs["axis"] = int64_t(-1);
  Tensor y = eval1(n, {&x, &idx});
  EXPECT_EQ(y.shape, (Shape{3, 2}));
  expect_near(floats(y), {3, 0, 13, 10, 23, 20});

  // rows {2, 2, 0} along axis 0 with int32 indices of shape [3,1] -> [3,1,4]
  Tensor rows = i32({3, 1}, {2, 2, 0});
  Tensor z = eval1(make_node("Gather", 2), {&x, &rows});
  EXPECT_EQ(z.shape, (Shape{3, 1, 4}));
  expect_near(floats(z), {20, 21, 22, 23, 20, 21, 22, 23, 0, 1, 2, 3});

  Tensor s = i64({4}, {5, 6, 7, 8}), at = i64({}, {2});
  Tensor one = eval1(make_node("Gather", 2), {&s, &at});
  EXPECT_EQ(one.shape, Shape{});
  EXPECT_EQ(longs(one), (std::vector<int64_t>{7}));

  Tensor bad = i64({1}, {4});
  EXPECT_THROW(eval::evaluate(make_node("Gather", 2), {&s, &bad}), Error);
}

TEST(ReferenceConcat, FloatAxis1AndInt64) {
  Tensor a = f32({2, 1}, {1, 2}), b = f32({2, 2}, {3, 4, 5, 6});
  Node n = make_node("Concat", 2);
  n.attrs["axis"] = int64_t(1);
  Tensor y = eval1(n, {&a, &b});
  EXPECT_EQ(y.shape, (Shape{2, 3}));
  expect_near(floats(y), {1, 3, 4, 2, 5, 6});

  Tensor p = i64({2}, {1, 2}), q = i64({1}, {3}), r = i64({0}, {});
  Node m = make_node("Concat", 3);
  m.attrs["axis"] = int64_t(0);
  EXPECT_EQ(longs(eval1(m, {&p, &r, &q})), (std::vector<int64_t>{1, 2, 3}));
}

TEST(ReferenceShapeOps, ShapeStartEnd) {
  Tensor x(DType::F32, {2, 3, 4, 5});
  EXPECT_EQ(longs(eval1(make_node("Shape", 1), {&x})), (std::vector<int64_t>{2, 3, 4, 5}));
  Node n = make_node("Shape", 1);
  n.attrs["start"] = int64_t(1);
  n.attrs["end"] = int64_t(-1);
  EXPECT_EQ(longs(eval1(n, {&x})), (std::vector<int64_t>{3, 4}));
  Node l = make_node("Shape", 1);
  l.attrs["start"] = int64_t(-1);
  EXPECT_EQ(longs(eval1(l, {&x})), (std::vector<int64_t>{5}));
}

TEST(ReferenceShapeOps, ReshapeFamilyKeepsData) {
  std::vector<float> v = {1, 2, 3, 4, 5, 6};
  Tensor x = f32({1, 2, 3}, v);
  Tensor axes0 = i64({1}, {0}), shape = i64({2}, {3, -1});
  Tensor u = eval1(make_node("Unsqueeze", 2), {&x, &axes0});
  EXPECT_EQ(u.shape, (Shape{1, 1, 2, 3}));
  Tensor s = eval1(make_node("Squeeze", 1), {&x});
  EXPECT_EQ(s.shape, (Shape{2, 3}));
  Tensor r = eval1(make_node("Reshape", 2), {&x, &shape});
  EXPECT_EQ(r.shape, (Shape{3, 2}));
  Tensor f = eval1(make_node("Flatten", 1), {&x});
  EXPECT_EQ(f.shape, (Shape{1, 6}));
  Tensor id = eval1(make_node("Identity", 1), {&x});
  EXPECT_EQ(id.shape, x.shape);
  for (const Tensor* t : {&u, &s, &r, &f, &id}) expect_near(floats(*t), v);
}

// The exporter idiom x.reshape(x.shape[0], -1), evaluated node by node as constant folding does.
TEST(ReferenceShapeOps, ShapeGatherUnsqueezeConcatReshapeChain) {
  std::vector<float> v(24);
  for (int i = 0; i < 24; ++i) v[size_t(i)] = float(i) * 0.5f;
  Tensor x = f32({2, 3, 4}, v);
  Tensor shape = eval1(make_node("Shape", 1), {&x});
  EXPECT_EQ(longs(shape), (std::vector<int64_t>{2, 3, 4}));
  Tensor zero = i64({}, {0});
  Tensor batch = eval1(make_node("Gather", 2), {&shape, &zero});
  EXPECT_EQ(batch.shape, Shape{});
  EXPECT_EQ(longs(batch), (std::vector<int64_t>{2}));
  Tensor axes = i64({1}, {0});
  Tensor batch1 = eval1(make_node("Unsqueeze", 2), {&batch, &axes});
  EXPECT_EQ(batch1.shape, (Shape{1}));
  Tensor minus1 = i64({1}, {-1});
  Node cat_node = make_node("Concat", 2);
  cat_node.attrs["axis"] = int64_t(0);
  Tensor target = eval1(cat_node, {&batch1, &minus1});
  EXPECT_EQ(longs(target), (std::vector<int64_t>{2, -1}));
  Tensor y = eval1(make_node("Reshape", 2), {&x, &target});
  EXPECT_EQ(y.shape, (Shape{2, 12}));
  expect_near(floats(y), v);
}

TEST(ReferenceOps, UnsupportedOpAndDtype) {
  Tensor x = f32({2}, {1, 2});
  EXPECT_THROW(eval::evaluate(make_node("Foo", 1), {&x}), Unsupported);
  Node d = make_node("Relu", 1);
  d.domain = "com.example";
  EXPECT_THROW(eval::evaluate(d, {&x}), Unsupported);
  Tensor b(DType::Bool, {2});
  EXPECT_THROW(eval::evaluate(make_node("Identity", 1), {&b}), Unsupported);
  Tensor q(DType::U8, {2});  // a quantized tensor is data a reshape-like op moves, but not computes with
  EXPECT_THROW(eval::evaluate(make_node("Relu", 1), {&q}), Unsupported);
  Tensor li = i64({2}, {1, 2});
  EXPECT_THROW(eval::evaluate(make_node("Softmax", 1), {&li}), Unsupported);
}

}  // namespace
}  // namespace locus
