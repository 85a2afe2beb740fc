// The inverted-residual fusion (graph/passes/fuse_inverted_residual.cpp) and the op it creates,
// FusedInvertedResidual (graph/ops.h): the op's shape inference and reference semantics against an
// independent naive implementation, every chain form the pass fuses (with the same numbers as the
// unfused graph on the reference backend), every reason it refuses (remark naming the node, graph
// unchanged), the pipeline that runs it, and the blocks it finds in MobileNetV2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "graph/ops.h"
#include "graph/passes/pass_manager.h"
#include "importers/onnx/onnx_importer.h"
#include "graph/eval/eval_ops.h"
#include "models/builders.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"

using namespace locus;
using locus::test::GraphBuilder;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

int count_op(const Graph& g, const std::string& op) {
  return int(std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op == op; }));
}

std::vector<Tensor> run_reference(Graph g, const std::map<std::string, Tensor>& in) {
  SessionOptions o;
  o.backend_name = "reference";
  o.pipeline.optimize = false;
  return Session::from_graph(std::move(g), o).run(in);
}

// Everything a pass could change, as text: nodes (op, domain, name, inputs, outputs, attribute
// names), graph inputs/outputs, constants and value names.
std::string dump(const Graph& g) {
  std::ostringstream s;
  for (const Node& n : g.nodes) {
    s << test::node_signature(n) << " {";
    for (auto& [k, v] : n.attrs) s << k << ",";
    s << "}\n";
  }
  for (auto& i : g.inputs) s << "in " << i << "\n";
  for (auto& o : g.outputs) s << "out " << o << "\n";
  for (auto& [k, t] : g.constants) s << "const " << k << shape_str(t.shape) << "\n";
  for (auto& [k, v] : g.values) s << "value " << k << shape_str(v.shape) << "\n";
  return s.str();
}

std::string remarks_text(const std::vector<PassRemark>& r) {
  std::string s;
  for (auto& x : r) s += x.pass + " [" + x.node + "] " + x.message + "\n";
  return s;
}

// The refusals (missed remarks) of `pass`; others, e.g. of fold-batchnorm, and the rewrites it
// reports as applied are ignored.
std::vector<PassRemark> remarks_of(const std::vector<PassRemark>& r, const std::string& pass) {
  std::vector<PassRemark> out;
  for (auto& x : r)
    if (x.pass == pass && x.kind == RemarkKind::Missed) out.push_back(x);
  return out;
}

// A Relu 'spy' reading `value`, its output a graph output: `value` then has a second reader.
void add_spy(Graph& g, const std::string& value) {
  Node r;
  r.op = "Relu";
  r.name = "spy";
  r.inputs = {value};
  r.outputs = {"spy_out"};
  g.nodes.push_back(r);
  g.outputs.push_back("spy_out");
  infer_shapes(g);
}

// The refusals among a pass's remarks.
std::vector<PassRemark> missed(const std::vector<PassRemark>& r) {
  std::vector<PassRemark> out;
  for (auto& x : r)
    if (x.kind == RemarkKind::Missed) out.push_back(x);
  return out;
}

struct Act {
  std::string kind = "none";
  float lo = -kInf, hi = kInf;
};
Act none() { return {}; }
Act relu() { return {"relu", -kInf, kInf}; }
Act clip(float lo, float hi) { return {"clip", lo, hi}; }

std::map<std::string, Attr> conv_attrs(int64_t group, std::vector<int64_t> strides, std::vector<int64_t> pads,
                                       const Act& a, std::vector<int64_t> dilations = {1, 1}) {
  std::map<std::string, Attr> m{{"group", group}, {"strides", strides}, {"pads", pads}, {"dilations", dilations}};
  if (a.kind != "none") {
    m["locus.activation"] = a.kind;
    if (a.kind == "clip") {
      m["locus.activation_min"] = a.lo;
      m["locus.activation_max"] = a.hi;
    }
  }
  return m;
}

// A block as the pass sees it after fold-batchnorm and fuse-activation: Convs with bias and the
// activation as attributes.
struct Spec {
  int64_t N = 1, C = 5, E = 13, OC = 7, H = 9, W = 10, K = 3, stride = 1;
  std::vector<int64_t> pads;  // empty: K / 2 on every side
  bool expand = true, project = true, residual = false, bias = true;
  bool tail = false;  // a Relu reads the block output, which stays a graph output too
  // The depthwise stage as a 4-way CP decomposition writes it: K x 1 (stride (stride, 1), pads top
  // and bottom) then 1 x K (stride (1, stride), pads left and right), activation `d1a` then `da`.
  bool cp4 = false;
  Act d1a = none();
  Act ea = clip(-0.2f, 0.6f), da = relu(), pa = none();
};

struct Built {
  Graph g;
  std::vector<std::string> names;  // the chain's node names in order (E, D, P, Add)
  std::string out;                 // the block's output value
};

// A stride-1 chain of convs on a [1,4,6,6] input, shapes inferred: each stage is {weight shape,
// group, pads, activation}. For refusals a hand-made chain shows better than build_chain.
struct ConvStage {
  Shape w;
  int64_t group;
  std::vector<int64_t> pads;
  Act act;
};
Graph conv_chain(const std::vector<ConvStage>& stages) {
  GraphBuilder gb;
  std::string h = gb.input("x", {1, 4, 6, 6});
  uint32_t seed = 1;
  for (const ConvStage& st : stages) {
    h = gb.node("Conv", {h, gb.random_constant(cat("w", seed), st.w, seed)}, conv_attrs(st.group, {1, 1}, st.pads, st.act));
    ++seed;
  }
  Graph g = gb.finish({h});
  infer_shapes(g);
  return g;
}

Built build_chain(const Spec& s, uint32_t seed) {
  GraphBuilder b;
  std::string x = b.input("x", {s.N, s.C, s.H, s.W});
  Built r;
  std::string h = x;
  const int64_t E = s.expand ? s.E : s.C;
  auto bias = [&](const std::string& name, int64_t n) {
    return s.bias ? b.random_constant(name, {n}, seed++, -0.5f, 0.5f) : std::string();
  };
  if (s.expand) {
    std::vector<std::string> in = {h, b.random_constant("we", {E, s.C, 1, 1}, seed++)};
    if (s.bias) in.push_back(bias("be", E));
    h = b.node("Conv", in, conv_attrs(1, {1, 1}, {0, 0, 0, 0}, s.ea));
    r.names.push_back(b.g.nodes.back().name);
  }
  std::vector<int64_t> pads = s.pads.empty() ? std::vector<int64_t>(4, s.K / 2) : s.pads;
  if (s.cp4) {
    std::vector<std::string> d1 = {h, b.random_constant("wd", {E, 1, s.K, 1}, seed++)};
    if (s.bias) d1.push_back(bias("bd", E));
    h = b.node("Conv", d1, conv_attrs(E, {s.stride, 1}, {pads[0], 0, pads[2], 0}, s.d1a));
    r.names.push_back(b.g.nodes.back().name);
    std::vector<std::string> d2 = {h, b.random_constant("wd2", {E, 1, 1, s.K}, seed++)};
    if (s.bias) d2.push_back(bias("bd2", E));
    h = b.node("Conv", d2, conv_attrs(E, {1, s.stride}, {0, pads[1], 0, pads[3]}, s.da));
    r.names.push_back(b.g.nodes.back().name);
  } else {
    std::vector<std::string> din = {h, b.random_constant("wd", {E, 1, s.K, s.K}, seed++)};
    if (s.bias) din.push_back(bias("bd", E));
    h = b.node("Conv", din, conv_attrs(E, {s.stride, s.stride}, pads, s.da));
    r.names.push_back(b.g.nodes.back().name);
  }
  if (s.project) {
    std::vector<std::string> in = {h, b.random_constant("wp", {s.OC, E, 1, 1}, seed++)};
    if (s.bias) in.push_back(bias("bp", s.OC));
    h = b.node("Conv", in, conv_attrs(1, {1, 1}, {0, 0, 0, 0}, s.pa));
    r.names.push_back(b.g.nodes.back().name);
  }
  if (s.residual) {
    h = b.node("Add", {x, h});
    r.names.push_back(b.g.nodes.back().name);
  }
  r.out = h;
  std::vector<std::string> outs = {h};
  if (s.tail) outs.insert(outs.begin(), b.node("Relu", {h}));
  r.g = b.finish(outs);
  infer_shapes(r.g);
  return r;
}

std::string join(const std::vector<std::string>& v) {
  std::string r;
  for (auto& s : v) r += (r.empty() ? "" : ", ") + s;
  return r;
}

const Node* find_op(const Graph& g, const std::string& op) {
  for (const Node& n : g.nodes)
    if (n.op == op) return &n;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// The op: an independent naive implementation of the contract in graph/ops.h.

float act_apply(const std::string& kind, float lo, float hi, double v) {
  float f = float(v);
  if (kind == "relu") return f > 0.f ? f : 0.f;
  if (kind == "clip") return std::min(std::max(f, lo), hi);
  return f;
}

// X [N,C,H,W] -> Y, stage by stage, straight from the contract's input positions.
std::vector<float> naive_block(const Tensor& x, const Tensor* we, const Tensor* be, const Tensor& wd,
                               const Tensor* bd, const Tensor* wp, const Tensor* bp, int64_t sh, int64_t sw,
                               std::vector<int64_t> pads, bool residual, const Act& ea, const Act& da,
                               const Act& pa, Shape& yshape) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t E = we ? we->shape[0] : C, KH = wd.shape[2], KW = wd.shape[3];
  const int64_t OH = (H + pads[0] + pads[2] - KH) / sh + 1, OW = (W + pads[1] + pads[3] - KW) / sw + 1;
  const int64_t OC = wp ? wp->shape[0] : E;
  auto X = [&](int64_t n, int64_t c, int64_t h, int64_t w) { return x.data<float>()[((n * C + c) * H + h) * W + w]; };
  std::vector<float> e(size_t(N * E * H * W)), d(size_t(N * E * OH * OW)), y(size_t(N * OC * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < E; ++k)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) {
          float v;
          if (we) {
            double acc = be ? be->data<float>()[k] : 0.0;
            for (int64_t c = 0; c < C; ++c) acc += double(we->data<float>()[k * C + c]) * X(n, c, h, w);
            v = act_apply(ea.kind, ea.lo, ea.hi, acc);
          } else {
            v = X(n, k, h, w);
          }
          e[size_t(((n * E + k) * H + h) * W + w)] = v;
        }
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < E; ++k)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = bd ? bd->data<float>()[k] : 0.0;
          for (int64_t i = 0; i < KH; ++i)
            for (int64_t j = 0; j < KW; ++j) {
              int64_t ih = oh * sh - pads[0] + i, iw = ow * sw - pads[1] + j;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              acc += double(wd.data<float>()[(k * KH + i) * KW + j]) * e[size_t(((n * E + k) * H + ih) * W + iw)];
            }
          d[size_t(((n * E + k) * OH + oh) * OW + ow)] = act_apply(da.kind, da.lo, da.hi, acc);
        }
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < OC; ++o)
      for (int64_t p = 0; p < OH * OW; ++p) {
        float v;
        if (wp) {
          double acc = bp ? bp->data<float>()[o] : 0.0;
          for (int64_t k = 0; k < E; ++k) acc += double(wp->data<float>()[o * E + k]) * d[size_t((n * E + k) * OH * OW + p)];
          v = act_apply(pa.kind, pa.lo, pa.hi, acc);
        } else {
          v = d[size_t((n * E + o) * OH * OW + p)];
        }
        if (residual) v = float(double(v) + double(x.data<float>()[(n * C + o) * OH * OW + p]));
        y[size_t((n * OC + o) * OH * OW + p)] = v;
      }
  yshape = {N, OC, OH, OW};
  return y;
}

Node fused_node(bool expand, bool project, bool residual, const Act& ea, const Act& da, const Act& pa,
                std::vector<int64_t> strides, std::vector<int64_t> pads) {
  Node n;
  n.op = "FusedInvertedResidual";
  n.domain = "locus";
  n.name = "block";
  n.outputs = {"y"};
  auto set = [&](const std::string& stage, const Act& a) {
    n.attrs[stage + "_activation"] = a.kind;
    if (a.kind == "clip") {
      n.attrs[stage + "_activation_min"] = a.lo;
      n.attrs[stage + "_activation_max"] = a.hi;
    }
  };
  if (expand) set("expand", ea);
  set("dw", da);
  if (project) set("project", pa);
  n.attrs["dw_strides"] = strides;
  n.attrs["dw_pads"] = pads;
  n.attrs["residual"] = int64_t(residual);
  return n;
}

}  // namespace

TEST(FusedInvertedResidualOp, IsALocusDomainOpOnly) {
  EXPECT_TRUE(is_locus_op("FusedInvertedResidual"));
  EXPECT_FALSE(is_supported_op("FusedInvertedResidual"));  // not a default-domain op
  GraphBuilder b;
  b.input("x", {1, 2, 4, 4});
  Node n;
  n.op = "FusedInvertedResidual";
  n.name = "f";
  n.inputs = {"x"};
  n.outputs = {"y"};
  b.g.nodes.push_back(n);  // default domain: not in the catalogue
  n.name = "g";
  n.domain = "locus";
  n.op = "FusedSomethingElse";
  b.g.nodes.push_back(n);
  EXPECT_EQ(unsupported_nodes(b.g),
            (std::vector<std::string>{"FusedInvertedResidual (node 'f')", "FusedSomethingElse (node 'g')"}));
  b.g.nodes.pop_back();
  b.g.nodes.back().domain = "locus";
  EXPECT_TRUE(unsupported_nodes(b.g).empty());
  EXPECT_TRUE(is_parameter_operand(b.g.nodes.back(), 3));
  EXPECT_FALSE(is_parameter_operand(b.g.nodes.back(), 0));
}

TEST(FusedInvertedResidualOp, ShapeInferenceWritesEveryAttributeBack) {
  Node n = fused_node(true, true, false, clip(0.f, 6.f), relu(), none(), {2, 2}, {1, 1, 1, 1});
  n.attrs.erase("project_activation");
  n.inputs = {"x", "we", "", "wd", "bd", "wp", ""};
  std::vector<ValueInfo> in(7);
  in[0] = {DType::F32, {2, 5, 9, 10}, true};
  in[1] = {DType::F32, {13, 5, 1, 1}, true};
  in[3] = {DType::F32, {13, 1, 3, 3}, true};
  in[4] = {DType::F32, {13}, true};
  in[5] = {DType::F32, {7, 13, 1, 1}, true};
  auto out = infer_node(n, in, std::vector<const Tensor*>(7, nullptr));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape, (Shape{2, 7, 5, 5}));  // (9 + 2 - 3) / 2 + 1 = 5, (10 + 2 - 3) / 2 + 1 = 5
  EXPECT_EQ(n.s("expand_activation", ""), "clip");
  EXPECT_EQ(n.f("expand_activation_max", 0), 6.f);
  EXPECT_EQ(n.s("dw_activation", ""), "relu");
  EXPECT_EQ(n.f("dw_activation_min", 0), -kInf);
  EXPECT_EQ(n.s("project_activation", ""), "none");
  EXPECT_EQ(n.f("project_activation_max", 0), kInf);
  EXPECT_EQ(n.i("residual", -1), 0);
  EXPECT_TRUE(n.has("fused_nodes"));

  // no expand: E = C; no project: Y has E channels
  Node m = fused_node(false, false, false, none(), clip(0, 6), none(), {1, 1}, {2, 2, 2, 2});
  m.inputs = {"x", "", "", "wd"};
  std::vector<ValueInfo> in2(4);
  in2[0] = {DType::F32, {1, 5, 9, 10}, true};
  in2[3] = {DType::F32, {5, 1, 5, 5}, true};
  EXPECT_EQ(infer_node(m, in2, std::vector<const Tensor*>(4, nullptr))[0].shape, (Shape{1, 5, 9, 10}));
}

TEST(FusedInvertedResidualOp, ShapeInferenceRefusesBrokenNodes) {
  struct Case {
    const char* what;
    std::function<void(Node&, std::vector<ValueInfo>&)> edit;
    const char* message;
    bool unsupported = false;
  };
  const std::vector<Case> cases = {
      {"no W_dw", [](Node& n, auto&) { n.inputs[3] = ""; }, "input 3 (W_dw) is required"},
      {"W_expand channels", [](Node&, auto& in) { in[1].shape = {13, 4, 1, 1}; }, "W_expand 'we' must have shape [E,5,1,1]"},
      {"W_expand 3x3", [](Node&, auto& in) { in[1].shape = {13, 5, 3, 3}; }, "W_expand 'we' must have shape"},
      {"B_expand alone", [](Node& n, auto& in) { n.inputs[1] = ""; n.inputs[2] = "be"; in[2] = {DType::F32, {5}, true}; },
       "B_expand 'be' is given without W_expand"},
      {"W_dw not depthwise", [](Node&, auto& in) { in[3].shape = {13, 2, 3, 3}; }, "W_dw 'wd' must have shape [13,1,KH,KW]"},
      {"B_dw", [](Node&, auto& in) { in[4].shape = {7}; }, "B_dw 'bd' must have shape [E] = [13], got [7]"},
      {"W_project", [](Node&, auto& in) { in[5].shape = {7, 12, 1, 1}; }, "W_project 'wp' must have shape [OC,13,1,1]"},
      {"B_project alone", [](Node& n, auto& in) { n.inputs[5] = ""; n.inputs[6] = "bp"; in[6] = {DType::F32, {7}, true}; },
       "B_project 'bp' is given without W_project"},
      {"activation", [](Node& n, auto&) { n.attrs["dw_activation"] = std::string("sigmoid"); },
       "dw_activation 'sigmoid' is not supported", true},
      {"activation of absent stage",
       [](Node& n, auto& in) {
         n.inputs[1] = "";
         n.attrs["expand_activation"] = std::string("relu");
         in[3].shape = {5, 1, 3, 3};
         in[4].shape = {5};
         in[5].shape = {7, 5, 1, 1};
       },
       "expand_activation is 'relu' but there is no expand stage"},
      {"strides", [](Node& n, auto&) { n.attrs["dw_strides"] = std::vector<int64_t>{0, 1}; }, "attribute dw_strides has invalid value 0"},
      {"pads", [](Node& n, auto&) { n.attrs["dw_pads"] = std::vector<int64_t>{1, 1}; }, "attribute dw_pads must have 4 values"},
      {"residual channels", [](Node& n, auto&) { n.attrs["residual"] = int64_t(1); },
       "residual = 1 needs the output shape [1,7,9,10] to equal the input shape [1,5,9,10]"},
      {"residual without project", [](Node& n, auto&) { n.attrs["residual"] = int64_t(1); n.inputs[5] = ""; },
       "residual = 1 needs the project stage"},
      {"residual value", [](Node& n, auto&) { n.attrs["residual"] = int64_t(2); }, "residual must be 0 or 1"},
      {"kernel too big", [](Node&, auto& in) { in[3].shape = {13, 1, 12, 3}; }, "depthwise kernel 12 does not fit input size 9"},
  };
  for (const Case& c : cases) {
    Node n = fused_node(true, true, false, relu(), relu(), none(), {1, 1}, {1, 1, 1, 1});
    n.inputs = {"x", "we", "", "wd", "bd", "wp", ""};
    std::vector<ValueInfo> in(7);
    in[0] = {DType::F32, {1, 5, 9, 10}, true};
    in[1] = {DType::F32, {13, 5, 1, 1}, true};
    in[3] = {DType::F32, {13, 1, 3, 3}, true};
    in[4] = {DType::F32, {13}, true};
    in[5] = {DType::F32, {7, 13, 1, 1}, true};
    c.edit(n, in);
    std::string msg;
    bool unsupported = false;
    try {
      infer_node(n, in, std::vector<const Tensor*>(in.size(), nullptr));
    } catch (const Unsupported& e) {
      msg = e.what();
      unsupported = true;
    } catch (const Error& e) {
      msg = e.what();
    }
    EXPECT_NE(msg.find(c.message), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find("node 'block' (FusedInvertedResidual)"), std::string::npos) << c.what << ": " << msg;
    EXPECT_EQ(unsupported, c.unsupported) << c.what;
  }
}

TEST(FusedInvertedResidualOp, ReferenceMatchesAnIndependentNaiveBlock) {
  struct Case {
    bool expand, project, residual, bias;
    int64_t C, E, OC, H, W, K, s;
    std::vector<int64_t> pads;
    Act ea, da, pa;
  };
  const std::vector<Case> cases = {
      {true, true, false, true, 5, 13, 7, 9, 10, 3, 1, {1, 1, 1, 1}, clip(-0.2f, 0.6f), relu(), none()},
      {true, true, true, true, 7, 13, 7, 9, 10, 3, 1, {1, 1, 1, 1}, relu(), clip(0.f, 0.5f), clip(-kInf, 0.3f)},
      {true, true, false, false, 5, 13, 7, 10, 9, 3, 2, {1, 1, 1, 1}, clip(0, 6), clip(0, 6), relu()},
      {false, true, false, true, 5, 5, 7, 9, 9, 3, 2, {0, 1, 1, 0}, none(), relu(), none()},
      {true, false, false, true, 5, 13, 13, 9, 10, 5, 2, {2, 2, 2, 2}, relu(), clip(-0.1f, 0.4f), none()},
      {false, true, true, true, 6, 6, 6, 8, 7, 3, 1, {1, 1, 1, 1}, none(), relu(), relu()},
  };
  uint32_t seed = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "expand " << c.expand << " project " << c.project << " residual "
                                    << c.residual << " stride " << c.s);
    const int64_t E = c.expand ? c.E : c.C, OC = c.project ? c.OC : E;
    Tensor x = test::random_tensor({2, c.C, c.H, c.W}, seed++);
    Tensor we = test::random_tensor({E, c.C, 1, 1}, seed++), be = test::random_tensor({E}, seed++, -0.5f, 0.5f);
    Tensor wd = test::random_tensor({E, 1, c.K, c.K}, seed++), bd = test::random_tensor({E}, seed++, -0.5f, 0.5f);
    Tensor wp = test::random_tensor({OC, E, 1, 1}, seed++), bp = test::random_tensor({OC}, seed++, -0.5f, 0.5f);
    const Tensor* pwe = c.expand ? &we : nullptr;
    const Tensor* pbe = c.expand && c.bias ? &be : nullptr;
    const Tensor* pbd = c.bias ? &bd : nullptr;
    const Tensor* pwp = c.project ? &wp : nullptr;
    const Tensor* pbp = c.project && c.bias ? &bp : nullptr;
    Shape want_shape;
    std::vector<float> want = naive_block(x, pwe, pbe, wd, pbd, pwp, pbp, c.s, c.s, c.pads, c.residual, c.ea, c.da,
                                          c.pa, want_shape);
    Node n = fused_node(c.expand, c.project, c.residual, c.ea, c.da, c.pa, {c.s, c.s}, c.pads);
    std::vector<Tensor> got = eval::evaluate(n, {&x, pwe, pbe, &wd, pbd, pwp, pbp});
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(got[0].shape, want_shape);
    EXPECT_LE(test::max_abs_diff(got[0].data<float>(), want.data(), want.size()), 1e-6);
  }
}

// ---------------------------------------------------------------------------------------------
// The pass: every form it fuses.

namespace {

void expect_fuses(const Spec& s, uint32_t seed) {
  Built b = build_chain(s, seed);
  Graph unfused = b.g;
  std::vector<PassRemark> remarks;
  ASSERT_EQ(make_fuse_inverted_residual_pass()->run(b.g, remarks), 1) << remarks_text(remarks);
  remarks = missed(remarks);
  EXPECT_TRUE(remarks.empty()) << remarks_text(remarks);
  ASSERT_EQ(count_op(b.g, "FusedInvertedResidual"), 1);
  EXPECT_EQ(b.g.nodes.size(), s.tail ? 2u : 1u);  // every node of the chain went into the fused node
  const Node& f = b.g.nodes[0];
  EXPECT_EQ(f.domain, "locus");
  EXPECT_EQ(f.name, b.names.front() + ".." + b.names.back());
  EXPECT_EQ(f.s("fused_nodes", ""), join(b.names));
  ASSERT_EQ(f.inputs.size(), s.cp4 ? 9u : 7u);
  auto opt = [](bool present, const char* name) { return present ? std::string(name) : std::string(); };
  std::vector<std::string> want_inputs = {"x", opt(s.expand, "we"), opt(s.expand && s.bias, "be"), "wd",
                                          opt(s.bias, "bd"), opt(s.project, "wp"), opt(s.project && s.bias, "bp")};
  if (s.cp4) want_inputs.insert(want_inputs.end(), {"wd2", opt(s.bias, "bd2")});
  EXPECT_EQ(f.inputs, want_inputs);
  ASSERT_EQ(f.outputs, std::vector<std::string>{b.out});  // the last fused node's output name
  if (s.tail) {
    EXPECT_EQ(b.g.nodes[1].inputs[0], b.out);
  }
  EXPECT_EQ(f.s("expand_activation", ""), s.expand ? s.ea.kind : "none");
  EXPECT_EQ(f.s("dw_activation", ""), s.cp4 ? s.d1a.kind : s.da.kind);
  if (s.cp4) {
    EXPECT_EQ(f.s("dw2_activation", ""), s.da.kind);
    EXPECT_EQ(f.ints("dw2_strides"), (std::vector<int64_t>{1, s.stride}));
  }
  EXPECT_EQ(f.s("project_activation", ""), s.project ? s.pa.kind : "none");
  if (s.expand && s.ea.kind == "clip") {
    EXPECT_EQ(f.f("expand_activation_min", 0), s.ea.lo);
    EXPECT_EQ(f.f("expand_activation_max", 0), s.ea.hi);
  }
  if (s.da.kind == "clip") {
    const std::string stage = s.cp4 ? "dw2" : "dw";
    EXPECT_EQ(f.f(stage + "_activation_min", 0), s.da.lo);
    EXPECT_EQ(f.f(stage + "_activation_max", 0), s.da.hi);
  }
  EXPECT_EQ(f.ints("dw_strides"), (std::vector<int64_t>{s.stride, s.cp4 ? 1 : s.stride}));
  EXPECT_EQ(f.i("residual", -1), s.residual ? 1 : 0);
  // intermediates are gone, weights stay constants, the output keeps its shape
  for (auto& [name, vi] : unfused.values)
    if (name != b.out && name != "x" && !(s.tail && name == b.g.outputs[0])) {
      EXPECT_EQ(b.g.values.count(name), 0u) << name;
    }
  EXPECT_EQ(b.g.constants.size(), unfused.constants.size());
  EXPECT_EQ(b.g.info(b.out).shape, unfused.info(b.out).shape);

  std::map<std::string, Tensor> in{{"x", test::random_tensor({s.N, s.C, s.H, s.W}, seed + 1000)}};
  auto want = run_reference(unfused, in);
  auto got = run_reference(b.g, in);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    ASSERT_EQ(got[k].shape, want[k].shape);
    // composition of the same reference kernels: bit-identical
    EXPECT_EQ(test::max_abs_diff(got[k].data<float>(), want[k].data<float>(), size_t(got[k].numel())), 0.0);
  }
}

}  // namespace

TEST(FuseInvertedResidual, ThreeLayersPlusAddStride1) {
  Spec s;
  s.C = s.OC = 7;
  s.residual = true;
  s.ea = clip(0.f, 6.f);
  s.da = clip(-0.1f, 0.5f);
  expect_fuses(s, 1);
  s.N = 2;
  s.H = 10;
  s.W = 9;
  s.ea = relu();
  s.pa = relu();
  s.tail = true;
  expect_fuses(s, 2);
}

TEST(FuseInvertedResidual, ThreeLayersStride1And2) {
  Spec s;  // C 5, E 13, OC 7, 9x10
  expect_fuses(s, 3);
  s.stride = 2;
  s.ea = relu();
  s.da = clip(0.f, 6.f);
  s.pa = clip(-kInf, 0.25f);  // only an upper bound
  expect_fuses(s, 4);
  s.H = s.W = 10;
  s.bias = false;
  s.K = 5;
  s.pads = {2, 1, 1, 2};
  s.ea = none();
  s.da = none();
  expect_fuses(s, 5);
  // same channels but stride 2: no residual Add exists, still three layers
  s = Spec();
  s.C = s.OC = 7;
  s.stride = 2;
  expect_fuses(s, 6);
}

TEST(FuseInvertedResidual, DepthwiseThenProject) {
  Spec s;
  s.expand = false;
  expect_fuses(s, 7);
  s.stride = 2;
  s.da = clip(0.f, 6.f);
  s.pa = relu();
  expect_fuses(s, 8);
  // with the residual Add of the block input
  s = Spec();
  s.expand = false;
  s.C = s.OC = 6;
  s.residual = true;
  s.tail = true;
  expect_fuses(s, 9);
}

TEST(FuseInvertedResidual, ExpandThenDepthwise) {
  Spec s;
  s.project = false;
  expect_fuses(s, 10);
  s.stride = 2;
  s.N = 2;
  s.ea = relu();
  s.da = clip(-0.3f, 0.3f);
  s.tail = true;
  expect_fuses(s, 11);
}

// ---------------------------------------------------------------------------------------------
// The pass: every refusal, with the remark naming the node and the reason.

namespace {

// Runs the pass, expects no change, the graph unchanged and one remark on `node` containing `reason`.
void expect_refused(Graph g, const std::string& node, const std::string& reason) {
  const std::string before = dump(g);
  std::vector<PassRemark> remarks;
  EXPECT_EQ(make_fuse_inverted_residual_pass()->run(g, remarks), 0);
  remarks = missed(remarks);
  EXPECT_EQ(dump(g), before);
  ASSERT_EQ(remarks.size(), 1u) << remarks_text(remarks);
  EXPECT_EQ(remarks[0].pass, "fuse-inverted-residual");
  EXPECT_EQ(remarks[0].node, node);
  EXPECT_NE(remarks[0].message.find(reason), std::string::npos) << remarks[0].message;
}

}  // namespace

// The chains a 4-way CP decomposition produces: 1x1 -> dw Kx1 -> dw 1xK -> 1x1 (and shorter forms).
TEST(FuseInvertedResidual, TwoDepthwiseStages) {
  Spec s;
  s.cp4 = true;
  s.ea = none();
  s.da = none();
  expect_fuses(s, 70);
  s.stride = 2;
  s.K = 5;
  s.pads = {2, 1, 1, 2};
  s.d1a = relu();
  s.da = clip(0.f, 6.f);
  expect_fuses(s, 71);
  s = Spec();
  s.cp4 = true;
  s.C = s.OC = 6;
  s.residual = true;
  expect_fuses(s, 72);
  s = Spec();
  s.cp4 = true;
  s.project = false;
  expect_fuses(s, 73);
}

// The same chains on the native backend (the fused kernel's second stage) against the reference.
TEST(FuseInvertedResidual, TwoDepthwiseStagesRunNatively) {
  for (int stride : {1, 2}) {
    Spec s;
    s.cp4 = true;
    s.stride = stride;
    s.N = 2;
    s.H = 11;
    s.W = 13;
    s.da = relu();
    Built b = build_chain(s, 80 + uint32_t(stride));
    std::map<std::string, Tensor> in{{"x", test::random_tensor({s.N, s.C, s.H, s.W}, 90 + uint32_t(stride))}};
    auto want = run_reference(b.g, in);
    SessionOptions o;
    o.backend_name = "native";
    Session session = Session::from_graph(b.g, o);
    EXPECT_EQ(count_op(session.graph(), "FusedInvertedResidual"), 1);
    auto got = session.run(in);
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(got[0].shape, want[0].shape);
    for (int64_t i = 0; i < got[0].numel(); ++i)
      ASSERT_NEAR(got[0].data<float>()[i], want[0].data<float>()[i], 1e-4f * (1.f + std::fabs(want[0].data<float>()[i])))
          << "stride " << stride << " element " << i;
  }
}

TEST(FuseInvertedResidual, RefusesIntermediateReadElsewhereOrAGraphOutput) {
  Spec s;
  s.expand = false;  // dw -> 1x1
  Built b = build_chain(s, 20);
  b.g.outputs.push_back(b.g.nodes[0].outputs[0]);  // the dw output is also a graph output
  expect_refused(b.g, b.names[0], "not fused with the project stage '" + b.names[1] + "': its output '" +
                                      b.g.nodes[0].outputs[0] + "' is a graph output");

  b = build_chain(s, 21);
  add_spy(b.g, b.g.nodes[0].outputs[0]);
  expect_refused(b.g, b.names[0], "its output '" + b.g.nodes[0].outputs[0] + "' is also read by 'spy'");

  s = Spec();
  s.project = false;  // 1x1 -> dw, the 1x1 output read by a second node
  b = build_chain(s, 22);
  add_spy(b.g, b.g.nodes[0].outputs[0]);
  expect_refused(b.g, b.names[0], "not fused as the expand stage of depthwise conv '" + b.names[1] +
                                      "': its output '" + b.g.nodes[0].outputs[0] + "' is also read by 'spy'");
}

TEST(FuseInvertedResidual, RefusesDilatedOrNonDepthwiseConvs) {
  Spec s;
  Built b = build_chain(s, 30);
  b.g.nodes[1].attrs["dilations"] = std::vector<int64_t>{2, 2};
  b.g.nodes[1].attrs["pads"] = std::vector<int64_t>{2, 2, 2, 2};
  infer_shapes(b.g);
  expect_refused(b.g, b.names[1], "the depthwise conv has dilations [2,2] (only dilation 1 is fused)");

  // group 2 over 12 channels: a grouped conv, not a depthwise one
  expect_refused(conv_chain({{{12, 4, 1, 1}, 1, {0, 0, 0, 0}, relu()},
                             {{12, 6, 3, 3}, 2, {1, 1, 1, 1}, relu()},
                             {{4, 12, 1, 1}, 1, {0, 0, 0, 0}, none()}}),
                 "Conv_1", "the grouped conv (group 2, 12 input and 12 output channels) is not depthwise");

  // channel multiplier 2 (group = input channels, but twice as many outputs)
  expect_refused(conv_chain({{{8, 1, 3, 3}, 4, {1, 1, 1, 1}, relu()}, {{4, 8, 1, 1}, 1, {0, 0, 0, 0}, none()}}),
                 "Conv_0", "(group 4, 4 input and 8 output channels) is not depthwise");
}

TEST(FuseInvertedResidual, RefusesStridedPaddedOrGroupedOneByOnes) {
  Spec s;
  s.project = false;
  Built b = build_chain(s, 40);
  b.g.nodes[0].attrs["strides"] = std::vector<int64_t>{2, 2};
  infer_shapes(b.g);
  expect_refused(b.g, b.names[0], "not fused as the expand stage of depthwise conv '" + b.names[1] +
                                      "': the 1x1 conv has strides [2,2] (a fused 1x1 conv must have stride 1)");
  b = build_chain(s, 41);
  b.g.nodes[0].attrs["pads"] = std::vector<int64_t>{0, 1, 0, 1};
  infer_shapes(b.g);
  expect_refused(b.g, b.names[0], "the 1x1 conv has pads [0,1,0,1] (a fused 1x1 conv must be unpadded)");

  // dw (4 ch) -> 1x1 with group 2
  expect_refused(conv_chain({{{4, 1, 3, 3}, 4, {1, 1, 1, 1}, relu()}, {{6, 2, 1, 1}, 2, {0, 0, 0, 0}, none()}}),
                 "Conv_1", "not fused as the project stage of depthwise conv 'Conv_0': the 1x1 conv has group 2 "
                           "(a fused 1x1 conv must have group 1)");
}

TEST(FuseInvertedResidual, RefusesNonConstantWeights) {
  Spec s;
  s.expand = false;
  Built b = build_chain(s, 50);
  // the depthwise weight becomes a graph input
  b.g.inputs.push_back("wd");
  b.g.values["wd"] = ValueInfo{DType::F32, b.g.constants.at("wd").shape, true};
  b.g.constants.erase("wd");
  expect_refused(b.g, b.names[0], "not fused into an inverted residual block: its weight 'wd' is not a constant");

  b = build_chain(s, 51);  // the project bias
  b.g.inputs.push_back("bp");
  b.g.values["bp"] = ValueInfo{DType::F32, b.g.constants.at("bp").shape, true};
  b.g.constants.erase("bp");
  expect_refused(b.g, b.names[1], "not fused as the project stage of depthwise conv '" + b.names[0] +
                                      "': its bias 'bp' is not a constant");

  s = Spec();
  s.project = false;
  b = build_chain(s, 52);  // the expand weight, computed at run time
  {
    Node r;
    r.op = "Relu";
    r.name = "make_we";
    r.inputs = {"we_src"};
    r.outputs = {"we"};
    b.g.constants["we_src"] = b.g.constants.at("we");
    b.g.constants.erase("we");
    b.g.nodes.insert(b.g.nodes.begin(), r);
    infer_shapes(b.g);
  }
  expect_refused(b.g, b.names[0], "its weight 'we' is not a constant");
}

TEST(FuseInvertedResidual, RefusesActivationsOtherThanReluOrClip) {
  Spec s;
  s.expand = false;
  Built b = build_chain(s, 60);
  b.g.nodes[1].attrs["locus.activation"] = std::string("sigmoid");  // set after shape inference
  expect_refused(b.g, b.names[1], "its activation 'sigmoid' is not relu or clip");

  // an activation left as its own node between the stages (fuse-activation did not run)
  GraphBuilder gb;
  auto x = gb.input("x", {1, 4, 6, 6});
  auto e = gb.node("Conv", {x, gb.random_constant("we", {8, 4, 1, 1}, 1)}, conv_attrs(1, {1, 1}, {0, 0, 0, 0}, none()));
  auto r = gb.node("Relu", {e});
  auto d = gb.node("Conv", {r, gb.random_constant("wd", {8, 1, 3, 3}, 2)}, conv_attrs(8, {1, 1}, {1, 1, 1, 1}, none()));
  Graph g = gb.finish({d});
  infer_shapes(g);
  expect_refused(g, "Relu_1", "this Relu node between the 1x1 conv 'Conv_0' and the depthwise conv is not fused");
}

TEST(FuseInvertedResidual, RefusesAnAddOfSomethingElseButKeepsTheThreeLayers) {
  GraphBuilder gb;
  auto x = gb.input("x", {1, 5, 6, 6});
  auto z = gb.input("z", {1, 5, 6, 6});
  auto e = gb.node("Conv", {x, gb.random_constant("we", {10, 5, 1, 1}, 1)}, conv_attrs(1, {1, 1}, {0, 0, 0, 0}, relu()));
  auto d = gb.node("Conv", {e, gb.random_constant("wd", {10, 1, 3, 3}, 2)}, conv_attrs(10, {1, 1}, {1, 1, 1, 1}, relu()));
  auto p = gb.node("Conv", {d, gb.random_constant("wp", {5, 10, 1, 1}, 3)}, conv_attrs(1, {1, 1}, {0, 0, 0, 0}, none()));
  auto a = gb.node("Add", {p, z});
  Graph g = gb.finish({a});
  infer_shapes(g);
  Graph unfused = g;
  std::vector<PassRemark> remarks;
  EXPECT_EQ(make_fuse_inverted_residual_pass()->run(g, remarks), 1);
  remarks = missed(remarks);
  ASSERT_EQ(remarks.size(), 1u) << remarks_text(remarks);
  EXPECT_EQ(remarks[0].node, "Add_3");
  EXPECT_EQ(remarks[0].message,
            "not fused as the residual Add of depthwise conv 'Conv_1': its other operand 'z' is not the block input 'x'");
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op, "FusedInvertedResidual");
  EXPECT_EQ(g.nodes[0].i("residual", -1), 0);
  EXPECT_EQ(g.nodes[0].outputs[0], p);
  EXPECT_EQ(g.nodes[1].op, "Add");
  std::map<std::string, Tensor> in{{"x", test::random_tensor({1, 5, 6, 6}, 1)}, {"z", test::random_tensor({1, 5, 6, 6}, 2)}};
  EXPECT_EQ(test::max_abs_diff(run_reference(g, in)[0].data<float>(), run_reference(unfused, in)[0].data<float>(), 180), 0.0);
}

TEST(FuseInvertedResidual, RefusesAnAddWhoseShapesDiffer) {
  // the dw conv pads 3 rows top and bottom, so the block output is taller than x: Add broadcasts x
  GraphBuilder gb2;
  auto x = gb2.input("x", {1, 2, 1, 6});
  auto d = gb2.node("Conv", {x, gb2.random_constant("wd", {2, 1, 3, 3}, 2)}, conv_attrs(2, {1, 1}, {1, 1, 1, 1}, relu()));
  auto p = gb2.node("Conv", {d, gb2.random_constant("wp", {2, 2, 1, 1}, 3)}, conv_attrs(1, {1, 1}, {0, 0, 0, 0}, none()));
  gb2.g.nodes[0].attrs["pads"] = std::vector<int64_t>{3, 1, 3, 1};
  auto a = gb2.node("Add", {x, p});
  Graph g = gb2.finish({a});
  infer_shapes(g);
  ASSERT_EQ(g.info(p).shape, (Shape{1, 2, 5, 6}));
  std::vector<PassRemark> remarks;
  EXPECT_EQ(make_fuse_inverted_residual_pass()->run(g, remarks), 1);  // dw -> 1x1 without the Add
  remarks = missed(remarks);
  ASSERT_EQ(remarks.size(), 1u) << remarks_text(remarks);
  EXPECT_EQ(remarks[0].node, "Add_2");
  EXPECT_EQ(remarks[0].message, "not fused as the residual Add of depthwise conv 'Conv_0': the block input [1,2,1,6] "
                                "and the project output [1,2,5,6] have different shapes");
  EXPECT_EQ(count_op(g, "Add"), 1);
}

TEST(FuseInvertedResidual, ARefusedStageOnlyShortensTheBlock) {
  // 1x1 -> dw -> strided 1x1: the expand and the dw are fused, the project stays
  Spec s;
  Built b = build_chain(s, 70);
  b.g.nodes[2].attrs["strides"] = std::vector<int64_t>{2, 2};
  infer_shapes(b.g);
  Graph unfused = b.g;
  std::vector<PassRemark> remarks;
  EXPECT_EQ(make_fuse_inverted_residual_pass()->run(b.g, remarks), 1);
  remarks = missed(remarks);
  ASSERT_EQ(remarks.size(), 1u) << remarks_text(remarks);
  EXPECT_EQ(remarks[0].node, b.names[2]);
  EXPECT_NE(remarks[0].message.find("not fused as the project stage"), std::string::npos);
  ASSERT_EQ(b.g.nodes.size(), 2u);
  EXPECT_EQ(b.g.nodes[0].op, "FusedInvertedResidual");
  EXPECT_EQ(b.g.nodes[0].input(5), "");
  EXPECT_EQ(b.g.nodes[0].s("fused_nodes", ""), b.names[0] + ", " + b.names[1]);
  EXPECT_EQ(b.g.nodes[1].name, b.names[2]);
  std::map<std::string, Tensor> in{{"x", test::random_tensor({1, 5, 9, 10}, 3)}};
  auto want = run_reference(unfused, in)[0];
  EXPECT_EQ(test::max_abs_diff(run_reference(b.g, in)[0].data<float>(), want.data<float>(), size_t(want.numel())), 0.0);

  // 3 layers + Add, but the project output is also read elsewhere: 3 layers, the Add stays
  s = Spec();
  s.C = s.OC = 7;
  s.residual = true;
  b = build_chain(s, 71);
  b.g.outputs.push_back(b.g.nodes[2].outputs[0]);
  remarks.clear();
  EXPECT_EQ(make_fuse_inverted_residual_pass()->run(b.g, remarks), 1);
  remarks = missed(remarks);
  ASSERT_EQ(remarks.size(), 1u) << remarks_text(remarks);
  EXPECT_EQ(remarks[0].node, b.names[2]);
  EXPECT_NE(remarks[0].message.find("not fused with the residual Add '" + b.names[3] + "': its output"),
            std::string::npos)
      << remarks[0].message;
  EXPECT_EQ(count_op(b.g, "Add"), 1);
  EXPECT_EQ(b.g.nodes[0].i("residual", -1), 0);
}

TEST(FuseInvertedResidual, LeavesLoneConvsAlone) {
  // a lone 1x1, a lone depthwise conv and a dense 3x3 between 1x1s: nothing to fuse, no remarks
  GraphBuilder gb;
  auto x = gb.input("x", {1, 4, 6, 6});
  auto a = gb.node("Conv", {x, gb.random_constant("w1", {4, 4, 1, 1}, 1)}, conv_attrs(1, {1, 1}, {0, 0, 0, 0}, relu()));
  auto b = gb.node("Conv", {a, gb.random_constant("w2", {4, 4, 3, 3}, 2)}, conv_attrs(1, {1, 1}, {1, 1, 1, 1}, relu()));
  auto c = gb.node("Conv", {b, gb.random_constant("w3", {4, 4, 1, 1}, 3)}, conv_attrs(1, {1, 1}, {0, 0, 0, 0}, none()));
  auto p = gb.node("MaxPool", {c}, {{"kernel_shape", std::vector<int64_t>{2, 2}}, {"strides", std::vector<int64_t>{2, 2}}});
  auto d = gb.node("Conv", {p, gb.random_constant("w4", {4, 1, 3, 3}, 4)}, conv_attrs(4, {1, 1}, {1, 1, 1, 1}, relu()));
  Graph g = gb.finish({gb.node("GlobalAveragePool", {d})});
  infer_shapes(g);
  const std::string before = dump(g);
  std::vector<PassRemark> remarks;
  EXPECT_EQ(make_fuse_inverted_residual_pass()->run(g, remarks), 0);
  remarks = missed(remarks);
  EXPECT_TRUE(remarks.empty()) << remarks_text(remarks);
  EXPECT_EQ(dump(g), before);
}

TEST(FuseInvertedResidual, ConsecutiveDepthwisePointwisePairsEachFuseOnce) {
  // MobileNetV1-like: dw -> pw -> dw -> pw. The first pw is the first block's project, so the
  // second block is dw -> pw too (no node is fused twice).
  GraphBuilder gb;
  auto x = gb.input("x", {1, 4, 8, 8});
  auto d1 = gb.node("Conv", {x, gb.random_constant("d1", {4, 1, 3, 3}, 1)}, conv_attrs(4, {1, 1}, {1, 1, 1, 1}, relu()));
  auto p1 = gb.node("Conv", {d1, gb.random_constant("p1", {6, 4, 1, 1}, 2)}, conv_attrs(1, {1, 1}, {0, 0, 0, 0}, relu()));
  auto d2 = gb.node("Conv", {p1, gb.random_constant("d2", {6, 1, 3, 3}, 3)}, conv_attrs(6, {2, 2}, {1, 1, 1, 1}, relu()));
  auto p2 = gb.node("Conv", {d2, gb.random_constant("p2", {3, 6, 1, 1}, 4)}, conv_attrs(1, {1, 1}, {0, 0, 0, 0}, none()));
  Graph g = gb.finish({p2});
  infer_shapes(g);
  Graph unfused = g;
  std::vector<PassRemark> remarks;
  EXPECT_EQ(make_fuse_inverted_residual_pass()->run(g, remarks), 2);
  remarks = missed(remarks);
  EXPECT_TRUE(remarks.empty()) << remarks_text(remarks);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].s("fused_nodes", ""), "Conv_0, Conv_1");
  EXPECT_EQ(g.nodes[1].s("fused_nodes", ""), "Conv_2, Conv_3");
  EXPECT_EQ(g.nodes[1].input(0), p1);
  std::map<std::string, Tensor> in{{"x", test::random_tensor({1, 4, 8, 8}, 5)}};
  auto want = run_reference(unfused, in)[0];
  EXPECT_EQ(test::max_abs_diff(run_reference(g, in)[0].data<float>(), want.data<float>(), size_t(want.numel())), 0.0);
}

// ---------------------------------------------------------------------------------------------
// The pipeline.

TEST(FuseInvertedResidualPipeline, OnlyTheFusingPipelineRunsThePass) {
  const std::vector<std::string> base = {"fold-qdq", "constant-folding", "eliminate-identity", "dead-code-elimination",
                                         "fold-batchnorm", "fold-affine", "recognize-hardswish",
                                         "fuse-activation", "dead-code-elimination"};
  EXPECT_EQ(PassManager::default_pipeline().names(), base);
  EXPECT_EQ(PassManager::default_pipeline({}, false).names(), base);
  std::vector<std::string> fusing = base;
  fusing.push_back("fuse-inverted-residual");
  fusing.push_back("dead-code-elimination");
  EXPECT_EQ(PassManager::default_pipeline({}, true).names(), fusing);
  auto without = PassManager::default_pipeline({"fuse-inverted-residual"}, true).names();
  EXPECT_EQ(std::count(without.begin(), without.end(), "fuse-inverted-residual"), 0);
  auto all = all_pass_names();
  EXPECT_NE(std::find(all.begin(), all.end(), "fuse-inverted-residual"), all.end());
  // naming it in disabled_passes is accepted
  GraphBuilder b;
  auto x = b.input("x", {1, 4});
  SessionOptions o;
  o.backend_name = "reference";
  o.pipeline.disabled_passes = {"fuse-inverted-residual"};
  EXPECT_NO_THROW(Session::from_graph(b.finish({b.node("Relu", {x})}), o));
}

namespace {

struct BlockCounts {
  int fused = 0, residual = 0, no_expand = 0, no_project = 0, three_layer = 0;
};

BlockCounts count_blocks(const Graph& g) {
  BlockCounts c;
  for (const Node& n : g.nodes) {
    if (n.op != "FusedInvertedResidual") continue;
    ++c.fused;
    c.residual += n.i("residual", 0) == 1;
    c.no_expand += n.input(1).empty();
    c.no_project += n.input(5).empty();
    c.three_layer += !n.input(1).empty() && !n.input(5).empty();
  }
  return c;
}

}  // namespace

TEST(FuseInvertedResidualPipeline, MobileNetV2HasSeventeenBlocks) {
  Graph g = models::build_mobilenet_v2();
  infer_shapes_and_fold(g);
  const int convs = count_op(g, "Conv"), adds = count_op(g, "Add");
  PassReport r = PassManager::default_pipeline({}, true).run(g);
  auto ours = remarks_of(r.remarks, "fuse-inverted-residual");
  EXPECT_TRUE(ours.empty()) << remarks_text(ours);
  BlockCounts c = count_blocks(g);
  EXPECT_EQ(convs, 52);
  EXPECT_EQ(adds, 10);
  EXPECT_EQ(c.fused, 17);
  EXPECT_EQ(c.no_expand, 1);   // features.1: dw -> 1x1
  EXPECT_EQ(c.no_project, 0);
  EXPECT_EQ(c.three_layer, 16);
  EXPECT_EQ(c.residual, 10);
  EXPECT_EQ(count_op(g, "Conv"), 2);  // features.0 (3x3, stride 2) and features.18 (1x1 to 1280)
  EXPECT_EQ(count_op(g, "Add"), 0);
  EXPECT_EQ(count_op(g, "BatchNormalization") + count_op(g, "Clip") + count_op(g, "Relu"), 0);
  const Node* first = find_op(g, "FusedInvertedResidual");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->s("fused_nodes", ""), "features.1.conv.0.0, features.1.conv.1");
  EXPECT_EQ(first->s("dw_activation", ""), "clip");
  EXPECT_EQ(first->f("dw_activation_max", 0), 6.f);
  EXPECT_EQ(first->s("project_activation", ""), "none");
  int strided = 0;
  for (const Node& n : g.nodes)
    if (n.op == "FusedInvertedResidual") strided += n.ints("dw_strides") == std::vector<int64_t>{2, 2};
  EXPECT_EQ(strided, 4);  // features.2, 4, 7, 14
}

TEST(FuseInvertedResidualPipeline, MobileNetV2FusedMatchesUnfusedOnTheReference) {
  models::BuildOptions bo;
  bo.resolution = 32;
  bo.num_classes = 10;
  Graph g = models::build_mobilenet_v2(bo);
  infer_shapes_and_fold(g);
  Graph fused = g;
  PassManager::default_pipeline().run(g);
  PassManager::default_pipeline({}, true).run(fused);
  ASSERT_EQ(count_blocks(fused).fused, 17);
  std::map<std::string, Tensor> in{{"input", test::random_tensor({1, 3, 32, 32}, 7)}};
  auto want = run_reference(g, in)[0];
  auto got = run_reference(fused, in)[0];
  ASSERT_EQ(got.shape, want.shape);
  EXPECT_EQ(test::max_abs_diff(got.data<float>(), want.data<float>(), size_t(want.numel())), 0.0);
}

TEST(FuseInvertedResidualPipeline, RealMobileNetV2) {
  const std::string dir = test::mobilenet_fp32_dir();
  if (dir.empty()) GTEST_SKIP() << "shared MobileNetV2 model not found";
  Graph g = onnx_import::load_model(dir + "/mobilenetv2-12-fp32-from-int8.onnx");
  infer_shapes_and_fold(g);
  Graph unfused = g;
  PassReport r = PassManager::default_pipeline({}, true).run(g);
  auto ours = remarks_of(r.remarks, "fuse-inverted-residual");
  EXPECT_TRUE(ours.empty()) << remarks_text(ours);
  BlockCounts c = count_blocks(g);
  EXPECT_EQ(c.fused, 17);
  EXPECT_EQ(c.no_expand, 1);
  EXPECT_EQ(c.three_layer, 16);
  EXPECT_EQ(c.residual, 10);
  EXPECT_EQ(count_op(g, "Conv"), 2);
  // the same numbers on the reference backend (one 224x224 image)
  PassManager::default_pipeline().run(unfused);
  const std::string in_name = g.inputs.at(0);
  std::map<std::string, Tensor> in{{in_name, test::random_tensor(g.info(in_name).shape, 8, 0.f, 1.f)}};
  auto want = run_reference(unfused, in)[0];
  auto got = run_reference(g, in)[0];
  ASSERT_EQ(got.shape, want.shape);
  EXPECT_EQ(test::max_abs_diff(got.data<float>(), want.data<float>(), size_t(want.numel())), 0.0);
}

// ---- fuse-residual: Conv -> Add(conv, R) [-> Relu] into the Conv's epilogue ------------------

namespace {

// Two residual blocks on x [2, 24, 9, 7]: a 3x3 conv (Winograd-eligible) + Add(conv, x) + Relu, then a
// 1x1 conv + Add(r, conv) (the Conv second) + Relu.
Graph residual_blocks() {
  GraphBuilder b;
  const auto x = b.input("x", {2, 24, 9, 7});
  const auto w1 = b.random_constant("w1", {24, 24, 3, 3}, 1, -0.2f, 0.2f);
  const auto b1 = b.random_constant("b1", {24}, 2);
  const auto w2 = b.random_constant("w2", {24, 24, 1, 1}, 3, -0.3f, 0.3f);
  const auto c1 = b.node("Conv", {x, w1, b1}, {{"kernel_shape", std::vector<int64_t>{3, 3}},
                                               {"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  const auto r1 = b.node("Relu", {b.node("Add", {c1, x})});
  const auto c2 = b.node("Conv", {r1, w2}, {{"kernel_shape", std::vector<int64_t>{1, 1}}});
  const auto r2 = b.node("Relu", {b.node("Add", {r1, c2})}, {}, "y");
  return b.finish({r2});
}

}  // namespace

TEST(FuseResidual, ConvAddReluBecomesOneConvMatchingTheUnfusedGraph) {
  const Graph g = residual_blocks();
  std::map<std::string, Tensor> in{{"x", test::random_tensor({2, 24, 9, 7}, 5)}};
  const auto want = run_reference(g, in)[0];
  // the pass on its own: the reference evaluator runs the fused Conv by composition, bit-identical
  Graph fused = g;
  PipelineOptions po;
  po.fuse_residual = true;
  const PreparedGraph p = prepare_graph(fused, po);
  EXPECT_EQ(count_op(fused, "Add"), 0);
  EXPECT_EQ(count_op(fused, "Relu"), 0);
  int residual = 0;
  for (const Node& n : fused.nodes) residual += n.op == "Conv" && n.i("locus.residual", 0) == 1;
  EXPECT_EQ(residual, 2);
  const auto composed = run_reference(fused, in)[0];
  EXPECT_EQ(test::max_abs_diff(composed.data<float>(), want.data<float>(), size_t(want.numel())), 0.0);
  // the native backend (Winograd and im2col for the 3x3, pointwise for the 1x1) against the unfused reference
  for (bool winograd : {true, false}) {
    SessionOptions o;
    o.backend.winograd = winograd;
    Session s = Session::from_graph(g, o);
    EXPECT_EQ(count_op(s.graph(), "Add"), 0);
    const auto impl = s.executable().implementations();
    bool saw_winograd = false;
    for (const auto& i : impl) saw_winograd |= i.implementation.find("winograd") != std::string::npos;
    EXPECT_EQ(saw_winograd, winograd);
    const auto got = s.run(in)[0];
    ASSERT_EQ(got.shape, want.shape);
    for (int64_t i = 0; i < got.numel(); ++i)
      ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-4f * (1.f + std::fabs(want.data<float>()[i])))
          << "winograd " << winograd << " element " << i;
  }
}

TEST(FuseResidual, RefusesWithARemark) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 5, 5});
  const auto w = b.random_constant("w", {4, 4, 1, 1}, 7);
  const auto bias = b.random_constant("bias", {1, 4, 1, 1}, 8);
  // Conv -> Relu (fused as its activation) -> Add: the residual would have to come before the Relu
  const auto c1 = b.node("Conv", {x, w}, {{"kernel_shape", std::vector<int64_t>{1, 1}}});
  const auto a1 = b.node("Add", {b.node("Relu", {c1}), x});
  // Add of a broadcast constant
  const auto c2 = b.node("Conv", {a1, w}, {{"kernel_shape", std::vector<int64_t>{1, 1}}});
  const auto a2 = b.node("Add", {c2, bias}, {}, "y");
  Graph g = b.finish({a2});
  PipelineOptions po;
  po.fuse_residual = true;
  po.disabled_passes = {"fold-affine"};  // which would fold the constant Add into the Conv's bias
  const PreparedGraph p = prepare_graph(g, po);
  EXPECT_EQ(count_op(g, "Add"), 2);
  auto remark_of = [&](const std::string& node) {
    for (const PassRemark& r : p.report.remarks)
      if (r.pass == "fuse-residual" && r.node == node) return r.message;
    return std::string();
  };
  EXPECT_NE(remark_of("Add_2").find("already has an activation"), std::string::npos) << remark_of("Add_2");
  EXPECT_NE(remark_of("Add_4").find("constant"), std::string::npos) << remark_of("Add_4");
  // and the graph still runs natively, matching the reference
  std::map<std::string, Tensor> in{{"x", test::random_tensor({1, 4, 5, 5}, 9)}};
  const auto want = run_reference(b.g, in)[0];
  const auto got = Session::from_graph(b.g).run(in)[0];
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-4f * (1.f + std::fabs(want.data<float>()[i])));
}

TEST(FuseResidual, ShapeInferenceChecksTheResidualInput) {
  auto build = [](Shape rshape, bool with_residual) {
    GraphBuilder b;
    const auto x = b.input("x", {1, 4, 5, 5});
    const auto r = b.input("r", rshape);
    const auto w = b.random_constant("w", {4, 4, 1, 1}, 7);
    std::vector<std::string> ins{x, w, ""};
    if (with_residual) ins.push_back(r);
    b.node("Conv", ins, {{"kernel_shape", std::vector<int64_t>{1, 1}}, {"locus.residual", int64_t(1)}}, "y");
    return b.finish({"y"});
  };
  Graph ok = build({1, 4, 5, 5}, true);
  EXPECT_NO_THROW(infer_shapes(ok));
  Graph bad = build({1, 4, 5, 1}, true);
  EXPECT_THROW(
      {
        try {
          infer_shapes(bad);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("residual 'r' must have the output's shape [1,4,5,5]"), std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  Graph missing = build({1, 4, 5, 5}, false);
  EXPECT_THROW(infer_shapes(missing), Error);
}
