// The passes fold-affine and recognize-hardswish on hand-built graphs (PP-LCNetV3's learnable affine
// and the exporters' decomposed HardSwish): each fires on its pattern, keeps the numbers (the
// unoptimized graph on the reference backend against the optimized one on the native backend) and
// refuses, with a remark, what it must not rewrite.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "graph/ops.h"
#include "graph/passes/pass_manager.h"
#include "graph/passes/pipeline.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"

using namespace locus;
using locus::test::GraphBuilder;

namespace {

constexpr int64_t kC = 5;  // output channels of the test convs
const Shape kIn{1, 3, 9, 7};

int count_op(const Graph& g, const std::string& op) {
  return int(std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op == op; }));
}

Tensor run(Graph g, const std::string& backend, bool optimize, const Tensor& x) {
  SessionOptions o;
  o.backend_name = backend;
  o.pipeline.optimize = optimize;
  return Session::from_graph(std::move(g), o).run({{"x", x}})[0];
}

// The optimized graph on the native backend equals the unoptimized one on the reference backend
// (independent fp32 arithmetic) within fp32 tolerance.
void expect_same_numbers(const Graph& g, uint32_t seed) {
  const Tensor x = test::random_tensor(kIn, seed, -3.f, 3.f);
  const Tensor want = run(g, "reference", false, x);
  std::string why;
  EXPECT_TRUE(test::allclose(run(g, "native", true, x), want, 1e-5, 1e-5, why)) << why;
}

std::string conv(GraphBuilder& b, bool bias) {
  auto x = b.input("x", kIn);
  std::vector<std::string> ins{x, b.random_constant("w", {kC, 3, 3, 3}, 1)};
  if (bias) ins.push_back(b.random_constant("b", {kC}, 2));
  return b.node("Conv", ins, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}});
}

std::vector<PassRemark> run_pass(std::unique_ptr<Pass> p, Graph& g, int want_changes) {
  infer_shapes(g);
  std::vector<PassRemark> remarks;
  EXPECT_EQ(p->run(g, remarks), want_changes) << p->name();
  return remarks;
}

bool has_remark(const std::vector<PassRemark>& rs, RemarkKind kind, const std::string& text) {
  return std::any_of(rs.begin(), rs.end(),
                     [&](const PassRemark& r) { return r.kind == kind && r.message.find(text) != std::string::npos; });
}

std::string remarks_text(const std::vector<PassRemark>& rs) {
  std::string s;
  for (const PassRemark& r : rs) s += r.pass + " " + r.node + ": " + r.message + "\n";
  return s;
}

// Conv -> Mul(s) -> Add(t), PP-LCNetV3's learnable affine: s and t as given, constant first or second.
Graph conv_affine(bool bias, Shape s_shape, Shape t_shape, bool const_first, bool second_reader = false) {
  GraphBuilder b;
  auto c = conv(b, bias);
  auto s = b.random_constant("s", s_shape, 3, 0.5f, 2.f);
  auto t = b.random_constant("t", t_shape, 4);
  auto m = b.node("Mul", const_first ? std::vector<std::string>{s, c} : std::vector<std::string>{c, s});
  auto a = b.node("Add", const_first ? std::vector<std::string>{t, m} : std::vector<std::string>{m, t});
  std::vector<std::string> outs{a};
  if (second_reader) outs.push_back(b.node("Relu", {c}));
  return b.finish(outs);
}

// The decomposed HardSwish of the Paddle exporter on x: Div(Mul(x, Clip(Add(x, k3), lo, hi)), k6),
// or Mul by 1/6 in place of the Div; `swap` puts the operands of the Add and the Muls the other way.
struct HardSwishSpec {
  float k3 = 3.f, lo = 0.f, hi = 6.f, k6 = 6.f;
  bool mul_form = false, swap = false;
  bool clip_read_elsewhere = false;
};

Graph conv_hardswish(const HardSwishSpec& sp) {
  GraphBuilder b;
  auto x = conv(b, true);
  auto k3 = b.constant("k3", Tensor::scalar_f32(sp.k3));
  auto a = b.node("Add", sp.swap ? std::vector<std::string>{k3, x} : std::vector<std::string>{x, k3});
  auto c = b.node("Clip", {a, b.constant("lo", Tensor::scalar_f32(sp.lo)), b.constant("hi", Tensor::scalar_f32(sp.hi))});
  auto m = b.node("Mul", sp.swap ? std::vector<std::string>{c, x} : std::vector<std::string>{x, c});
  std::string y;
  if (sp.mul_form) {
    auto k = b.constant("k6", Tensor::scalar_f32(sp.k6));
    y = b.node("Mul", sp.swap ? std::vector<std::string>{k, m} : std::vector<std::string>{m, k});
  } else {
    y = b.node("Div", {m, b.constant("k6", Tensor::scalar_f32(sp.k6))});
  }
  std::vector<std::string> outs{y};
  if (sp.clip_read_elsewhere) outs.push_back(b.node("Relu", {c}));
  return b.finish(outs);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// fold-affine

TEST(FoldAffine, FoldsPerChannelAndScalarAffinesIntoTheConv) {
  struct Case {
    bool bias;
    Shape s, t;
    bool const_first;
  };
  for (const Case& k : {Case{true, {1, kC, 1, 1}, {kC, 1, 1}, false}, Case{false, {1}, {}, true},
                        Case{true, {kC, 1, 1}, {1, 1, 1, 1}, true}}) {
    SCOPED_TRACE(shape_str(k.s) + " " + shape_str(k.t));
    const Graph orig = conv_affine(k.bias, k.s, k.t, k.const_first);
    Graph g = orig;
    auto remarks = run_pass(make_fold_affine_pass(), g, 2);
    EXPECT_EQ(g.nodes.size(), 1u);
    ASSERT_EQ(count_op(g, "Conv"), 1);
    EXPECT_EQ(g.nodes[0].outputs[0], g.outputs[0]);
    EXPECT_TRUE(has_remark(remarks, RemarkKind::Applied, "folded into the weights and bias")) << remarks_text(remarks);
    EXPECT_TRUE(has_remark(remarks, RemarkKind::Applied, "folded into the bias")) << remarks_text(remarks);
    // the folded weights: W * s per output channel, computed here from the originals
    const Tensor& w0 = orig.constants.at("w");
    const Tensor& s = orig.constants.at("s");
    const Tensor& w1 = *g.constant(g.nodes[0].input(1));
    const int64_t per = w0.numel() / kC;
    for (int64_t o = 0; o < kC; ++o)
      EXPECT_FLOAT_EQ(w1.data<float>()[o * per + 2], w0.data<float>()[o * per + 2] * float(s.get(s.numel() == 1 ? 0 : o)));
    expect_same_numbers(orig, 11);
  }
}

TEST(FoldAffine, DefaultPipelineFoldsThenFusesTheActivation) {
  GraphBuilder b;
  auto c = conv(b, true);
  auto m = b.node("Mul", {c, b.random_constant("s", {kC, 1, 1}, 3)});
  auto a = b.node("Add", {m, b.random_constant("t", {1}, 4)});
  Graph g = b.finish({b.node("Relu", {a})});
  const Graph orig = g;
  auto report = prepare_graph(g, PipelineOptions{});
  ASSERT_EQ(g.nodes.size(), 1u) << remarks_text(report.report.remarks);
  EXPECT_EQ(g.nodes[0].s("locus.activation", ""), "relu");
  expect_same_numbers(orig, 12);
}

TEST(FoldAffine, RefusesWhenTheConvOutputHasAnotherReader) {
  Graph g = conv_affine(true, {kC, 1, 1}, {kC, 1, 1}, false, true);
  auto remarks = run_pass(make_fold_affine_pass(), g, 0);
  EXPECT_EQ(count_op(g, "Mul"), 1);
  EXPECT_TRUE(has_remark(remarks, RemarkKind::Missed, "is also read elsewhere")) << remarks_text(remarks);
  // the Add's input comes from the Mul, which stayed
  EXPECT_TRUE(has_remark(remarks, RemarkKind::Missed, "produced by Mul")) << remarks_text(remarks);
}

TEST(FoldAffine, RefusesConstantsThatAreNotPerChannel) {
  for (const Shape& bad : {Shape{1, 1, 1, 7}, Shape{kC, 9, 7}, Shape{1, 1, 1, 1, 1}}) {
    SCOPED_TRACE(shape_str(bad));
    const Graph orig = conv_affine(true, bad, {1}, false);
    Graph g = orig;
    auto remarks = run_pass(make_fold_affine_pass(), g, 0);
    EXPECT_EQ(count_op(g, "Mul"), 1);
    EXPECT_EQ(count_op(g, "Add"), 1);
    EXPECT_TRUE(has_remark(remarks, RemarkKind::Missed, bad.size() > 4 ? "higher rank" : "is not per-channel"))
        << remarks_text(remarks);
  }
}

// ---------------------------------------------------------------------------------------------
// recognize-hardswish

TEST(RecognizeHardSwish, RewritesEveryFormIntoOneHardSwishThatFoldsIntoTheConv) {
  for (bool mul_form : {false, true})
    for (bool swap : {false, true}) {
      SCOPED_TRACE(cat(mul_form ? "Mul by 1/6" : "Div by 6", swap ? ", operands swapped" : ""));
      HardSwishSpec sp;
      sp.mul_form = mul_form;
      sp.swap = swap;
      if (mul_form) sp.k6 = 1.f / 6.f;
      const Graph orig = conv_hardswish(sp);
      Graph g = orig;
      auto remarks = run_pass(make_recognize_hardswish_pass(), g, 1);
      EXPECT_TRUE(has_remark(remarks, RemarkKind::Applied, "rewritten as one HardSwish")) << remarks_text(remarks);
      ASSERT_EQ(g.nodes.size(), 2u);
      EXPECT_EQ(g.nodes[1].op, "HardSwish");
      EXPECT_EQ(g.nodes[1].inputs, std::vector<std::string>{g.nodes[0].outputs[0]});
      EXPECT_EQ(g.nodes[1].outputs[0], g.outputs[0]);
      // the whole pipeline: one Conv with HardSwish in its epilogue
      Graph p = orig;
      prepare_graph(p, PipelineOptions{});
      ASSERT_EQ(p.nodes.size(), 1u);
      EXPECT_EQ(p.nodes[0].s("locus.activation", ""), "hardswish");
      expect_same_numbers(orig, 13);
    }
}

TEST(RecognizeHardSwish, RefusesOtherConstantsWithARemark) {
  struct Case {
    HardSwishSpec sp;
    std::string why;
  };
  HardSwishSpec add2, clip5, div5, mul_sixth_wrong;
  add2.k3 = 2.f;
  clip5.hi = 5.f;
  div5.k6 = 5.f;
  mul_sixth_wrong.mul_form = true;
  mul_sixth_wrong.k6 = 0.1666f;
  for (const Case& k : {Case{add2, "not the scalar 3"}, Case{clip5, "does not clip to [0, 6]"},
                        Case{div5, "not the scalar 6"}, Case{mul_sixth_wrong, "not the scalar 1/6"}}) {
    SCOPED_TRACE(k.why);
    Graph g = conv_hardswish(k.sp);
    auto remarks = run_pass(make_recognize_hardswish_pass(), g, 0);
    EXPECT_EQ(count_op(g, "HardSwish"), 0);
    EXPECT_EQ(count_op(g, "Clip"), 1);
    EXPECT_TRUE(has_remark(remarks, RemarkKind::Missed, k.why)) << remarks_text(remarks);
  }
}

TEST(RecognizeHardSwish, RefusesWhenAnIntermediateHasAnotherReader) {
  HardSwishSpec sp;
  sp.clip_read_elsewhere = true;
  const Graph orig = conv_hardswish(sp);
  Graph g = orig;
  auto remarks = run_pass(make_recognize_hardswish_pass(), g, 0);
  EXPECT_EQ(count_op(g, "HardSwish"), 0);
  EXPECT_TRUE(has_remark(remarks, RemarkKind::Missed, "is also read elsewhere")) << remarks_text(remarks);
  expect_same_numbers(orig, 14);  // the pipeline leaves it decomposed and still right
}

// The fp32 difference the rewrite makes: HardSwish (x * clip(x / 6 + 0.5, 0, 1)) against the
// decomposed x * clip(x + 3, 0, 6) / 6, both on the native backend, is at most 2e-7 * |x|.
TEST(RecognizeHardSwish, DiffersFromTheDecomposedFormByAtMostTwoTenMillionthsOfX) {
  GraphBuilder b;
  const int64_t n = 200001;
  auto x = b.input("x", {1, n});
  auto a = b.node("Add", {x, b.constant("k3", Tensor::scalar_f32(3.f))});
  auto c = b.node("Clip", {a, b.constant("lo", Tensor::scalar_f32(0.f)), b.constant("hi", Tensor::scalar_f32(6.f))});
  auto y = b.node("Div", {b.node("Mul", {x, c}), b.constant("k6", Tensor::scalar_f32(6.f))});
  const Graph g = b.finish({y});
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = -10.f + 20.f * float(i) / float(n - 1);  // [-10, 10]
  const Tensor in = Tensor::from_f32({1, n}, v);
  SessionOptions dec, rec;
  dec.backend_name = rec.backend_name = "native";
  dec.pipeline.disabled_passes = {"recognize-hardswish"};
  Session sd = Session::from_graph(g, dec), sr = Session::from_graph(g, rec);
  const Tensor yd = sd.run({{"x", in}})[0], yr = sr.run({{"x", in}})[0];
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double xi = v[size_t(i)];
    const double want = xi * std::min(1.0, std::max(0.0, xi / 6 + 0.5));  // in double: the spec
    EXPECT_NEAR(yr.data<float>()[i], want, 2e-7 * std::max(1.0, std::fabs(xi))) << xi;
    if (xi != 0) worst = std::max(worst, std::fabs(double(yr.data<float>()[i]) - yd.data<float>()[i]) / std::fabs(xi));
  }
  EXPECT_LE(worst, 2e-7);
}
