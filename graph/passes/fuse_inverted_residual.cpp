// Pass `fuse-inverted-residual`.
// Matches: the MobileNetV2 inverted-residual block around a depthwise Conv D (group = input channels
//   = output channels, dilation 1, any kernel, stride and pads), after fold-batchnorm and
//   fuse-activation have left activations as Conv attributes (locus.activation relu | clip):
//     [expand 1x1 Conv E ->] D [-> depthwise D2] [-> project 1x1 Conv P [-> Add(P, X)]]
//   where X is the block input (E's input, or D's without E) and at least one of E, P is present
//   (a lone depthwise conv is not fused). D2, a second depthwise conv reading only D's output, is
//   the dw(Kx1) -> dw(1xK) pair of a 4-way CP decomposition (cp-decompose).
//   Longest form first: E D [D2] P + Add > E D [D2] P > D [D2] P or E D [D2].
//   Depthwise convs are visited in graph order; a node is fused into at most one block.
// Requires of every fused node: default-domain Conv with constant weight and bias, activation
//   none | relu | clip; 1x1 convs with stride 1, no pads, group 1; each intermediate value
//   (E's, D's, P's output when the next stage is fused) read only by the next stage and not a graph
//   output; the Add's other operand is X itself, with X's shape.
// Guarantees: the chain becomes one FusedInvertedResidual node (domain locus, contract in
//   graph/ops.h) at the position of its last node, named "<first>..<last>", with the original
//   weight/bias constants as inputs (nothing is copied or renamed) and the output name of its last
//   node, so readers and graph outputs still resolve; intermediate values are removed from
//   g.values; the output's shape is unchanged (checked with infer_node before rewriting). The
//   reference backend evaluates the fused node by composition, so the numbers are identical.
// Refuses with a remark on the node at fault, when a 1x1 conv neighbours a depthwise candidate
//   (a Conv with group > 1): not depthwise (group vs channels), dilation != 1, strided / padded /
//   grouped 1x1, non-constant weight or bias, unknown activation, an intermediate value read
//   elsewhere or a graph output, an unfused Relu/Clip node between the stages, an Add whose other
//   operand is not the block input or whose shapes differ. A refused stage only shortens the block
//   (e.g. E D P with a strided P becomes E D); the graph is unchanged when no stage is left.
// The int8 form (quantized models, after fold-qdq has turned a QDQ model into the same ops):
//     [expand 1x1 QLinearConv E ->] depthwise QLinearConv D [-> project 1x1 QLinearConv P
//     [-> com.microsoft QLinearAdd(P, X) or QLinearAdd(X, P)]]
//   with the same rules (single-reader intermediates that are not graph outputs, 1x1 stages stride 1
//   unpadded group 1, D depthwise with dilation 1, constant weights, biases, scales and zero
//   points, the add's other operand X itself with X's shape; no second depthwise stage; without a
//   1x1 expand, a dense KxK QLinearConv producing D's input, dilation 1, is taken as the expand stage:
//   MobileNetV2's stem, whose 112 x 112 x 32 output then never goes to memory) becomes one
//   FusedQLinearInvertedResidual node (graph/ops.h), carrying every original input, so the reference
//   backend's composition of the original kernels gives identical bytes. Remarks as above.
// The squeeze-excite form (fp32, MobileNetV3 / PP-OCR; matched first, so its depthwise conv is not
//   taken by a plain block): [expand 1x1 E [-> HardSwish as exporters write it: Div(Mul(e, Clip(
//   Add(e, 3), 0, 6)), 6)] ->] depthwise D [-> the same HardSwish] -> GlobalAveragePool (or
//   ReduceMean over axes [2, 3], keepdims) -> 1x1 squeeze -> 1x1 excite -> Mul(D's output, gate) ->
//   project 1x1 P [-> Add(P, X)] becomes one FusedSEBlock node (graph/ops.h), the activations
//   fused into the convs (relu, clip, hardsigmoid, hardswish, sigmoid) or the decomposed HardSwish
//   (hardswish_ops) kept as attributes. Refused, with a remark "not fused into a squeeze-excite
//   block with depthwise conv 'D': why" on the node at fault, when D's (activated) output is read by
//   anything but the pool and the Mul or is a graph output, the pool is not read by one 1x1 conv
//   alone, the squeeze is not read by one 1x1 conv alone, the gate is not read only by the Mul of
//   D's output, the Mul's output is not read by one 1x1 conv alone, or a conv has a problem listed
//   above (strided / padded / grouped 1x1, non-constant weights, an activation not in the list).
//   The graph is then unchanged by this form (the plain block may still fuse part of it). A
//   depthwise output that does not feed both a spatial mean and a Mul is not a squeeze-excite block
//   (no remark).
// Runs in PassManager::default_pipeline(disabled, fuse_inverted_residuals, fuse_qlinear_blocks),
//   which sessions use for the backends that execute the op (fp32: native, reference, accel; int8:
//   native and reference; each form only for the backends that run it).
#include <algorithm>
#include <limits>
#include <optional>
#include <set>

#include "graph/fused_qlinear.h"
#include "graph/ops.h"
#include "graph/passes/pass_manager.h"

namespace locus {
namespace {

constexpr const char* kPassName = "fuse-inverted-residual";

bool default_domain(const Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }
bool is_conv(const Node& n) { return (n.op == "Conv" || n.op == "QLinearConv") && default_domain(n); }
bool is_qconv(const Node& n) { return n.op == "QLinearConv"; }
// Where a Conv / QLinearConv keeps its weight and bias.
size_t weight_index(const Node& n) { return is_qconv(n) ? 3 : 1; }
size_t bias_index(const Node& n) { return is_qconv(n) ? 8 : 2; }

std::string ints_text(const std::vector<int64_t>& v) { return shape_str(v); }

// Weight shape of a Conv (its weight input has a known shape after shape inference).
Shape weight_shape(const Graph& g, const Node& conv) { return g.info(conv.input(weight_index(conv))).shape; }

// A 1x1 conv of the same form (float or quantized) as `like`.
bool is_1x1_conv(const Graph& g, const Node& n, bool q) {
  if (!is_conv(n) || is_qconv(n) != q || n.input(weight_index(n)).empty()) return false;
  Shape w = weight_shape(g, n);
  return w.size() == 4 && w[2] == 1 && w[3] == 1;
}

bool is_dw_candidate(const Node& n) { return is_conv(n) && n.i("group", 1) > 1; }

// "'a', 'b'" of the readers of v other than `except`.
std::string other_readers(const Graph& g, const std::string& v, int except) {
  std::string r;
  for (int c : g.consumers(v))
    if (c != except) r += (r.empty() ? "'" : ", '") + g.nodes[size_t(c)].name + "'";
  return r;
}

// Why the value `v` (output of a stage) cannot be an intermediate of the block, read only by node
// `next`; nullopt if it can.
std::optional<std::string> intermediate_problem(const Graph& g, const std::string& v, int next) {
  if (g.is_graph_output(v)) return cat("its output '", v, "' is a graph output");
  std::string others = other_readers(g, v, next);
  if (!others.empty()) return cat("its output '", v, "' is also read by ", others);
  return std::nullopt;
}

// Problems every fused Conv must not have: weights, activation (QLinearConv: also its scales and
// zero points).
// extended: the squeeze-excite block's stages also take hardsigmoid, hardswish and sigmoid.
std::optional<std::string> conv_common_problem(const Graph& g, const Node& n, bool extended = false) {
  const size_t wk = weight_index(n), bk = bias_index(n);
  if (!g.is_constant(n.input(wk))) return cat("its weight '", n.input(wk), "' is not a constant");
  if (!n.input(bk).empty() && !g.is_constant(n.input(bk)))
    return cat("its bias '", n.input(bk), "' is not a constant");
  if (is_qconv(n))
    for (size_t k : {1, 2, 4, 5, 6, 7})
      if (!n.input(k).empty() && !g.is_constant(n.input(k)))
        return cat("its ", k == 1 || k == 4 || k == 6 ? "scale" : "zero point", " '", n.input(k), "' is not a constant");
  if (n.has("locus.activation")) {
    std::string act = n.s("locus.activation", "");
    const bool more = act == "hardsigmoid" || act == "hardswish" || act == "sigmoid";
    if (act != "relu" && act != "clip" && !(extended && more))
      return cat("its activation '", act, "' is not relu or clip", extended ? " (or hardsigmoid, hardswish, sigmoid)" : "");
  }
  return std::nullopt;
}

std::optional<std::string> pointwise_problem(const Graph& g, const Node& n, bool extended = false) {
  auto strides = n.ints("strides", {1, 1});
  if (strides != std::vector<int64_t>{1, 1})
    return cat("the 1x1 conv has strides ", ints_text(strides), " (a fused 1x1 conv must have stride 1)");
  auto pads = n.ints("pads", {0, 0, 0, 0});
  if (pads != std::vector<int64_t>{0, 0, 0, 0})
    return cat("the 1x1 conv has pads ", ints_text(pads), " (a fused 1x1 conv must be unpadded)");
  if (int64_t group = n.i("group", 1); group != 1)
    return cat("the 1x1 conv has group ", group, " (a fused 1x1 conv must have group 1)");
  return conv_common_problem(g, n, extended);
}

std::optional<std::string> depthwise_problem(const Graph& g, const Node& n, bool extended = false) {
  const int64_t group = n.i("group", 1);
  const int64_t C = g.info(n.input(0)).shape[1];
  const int64_t OC = weight_shape(g, n)[0];
  if (group != C || OC != C)
    return cat("the grouped conv (group ", group, ", ", C, " input and ", OC,
               " output channels) is not depthwise (needs group = input channels = output channels)");
  auto dil = n.ints("dilations", {1, 1});
  if (dil != std::vector<int64_t>{1, 1})
    return cat("the depthwise conv has dilations ", ints_text(dil), " (only dilation 1 is fused)");
  return conv_common_problem(g, n, extended);
}

// The activation attributes of one stage from a Conv's locus.activation*.
void copy_activation(Node& fused, const std::string& stage, const Node* conv, const std::string& override_act = "") {
  std::string act = !override_act.empty() ? override_act : conv ? conv->s("locus.activation", "none") : "none";
  if (act == "hardsigmoid") {
    fused.attrs[stage + "_activation_alpha"] = conv->f("locus.activation_alpha", 0.2f);
    fused.attrs[stage + "_activation_beta"] = conv->f("locus.activation_beta", 0.5f);
  }
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  if (act == "clip") {
    lo = conv->f("locus.activation_min", lo);
    hi = conv->f("locus.activation_max", hi);
  }
  fused.attrs[stage + "_activation"] = act;
  fused.attrs[stage + "_activation_min"] = lo;
  fused.attrs[stage + "_activation_max"] = hi;
}

struct Chain {
  int expand = -1, dw = -1, dw2 = -1, project = -1, add = -1;
  bool quantized = false;  // QLinearConv stages (FusedQLinearInvertedResidual)
  bool x_first = false;    // quantized: X is the QLinearAdd's first operand
  std::vector<int> indices() const {
    std::vector<int> r;
    for (int i : {expand, dw, dw2, project, add})
      if (i >= 0) r.push_back(i);
    return r;
  }
};

// ---- squeeze-excite blocks (FusedSEBlock) ----

// A constant scalar (any rank, one element) equal to v.
bool is_const_scalar(const Graph& g, const std::string& name, double v) {
  const Tensor* t = name.empty() ? nullptr : g.constant(name);
  return t && t->dtype == DType::F32 && t->numel() == 1 && t->get(0) == v;
}

// The exporters' HardSwish, Div(Mul(o, Clip(Add(o, 3), 0, 6)), 6), on the value o: its four nodes
// {Add, Clip, Mul, Div} when o is read by exactly that and the inner values only by the next node.
std::optional<std::vector<int>> hardswish_ops_on(const Graph& g, const std::string& o) {
  const std::vector<int> rd = g.consumers(o);
  if (rd.size() != 2 || g.is_graph_output(o)) return std::nullopt;
  auto sole_reader = [&](const std::string& v) {
    const std::vector<int> r = g.consumers(v);
    return r.size() == 1 && !g.is_graph_output(v) ? r[0] : -1;
  };
  for (int k = 0; k < 2; ++k) {
    const Node& a = g.nodes[size_t(rd[size_t(k)])];
    const Node& m = g.nodes[size_t(rd[size_t(1 - k)])];
    if (a.op != "Add" || !default_domain(a) || m.op != "Mul" || !default_domain(m)) continue;
    if (!((a.input(0) == o && is_const_scalar(g, a.input(1), 3)) || (a.input(1) == o && is_const_scalar(g, a.input(0), 3))))
      continue;
    const int ci = sole_reader(a.outputs[0]);
    if (ci < 0) continue;
    const Node& c = g.nodes[size_t(ci)];
    if (c.op != "Clip" || !default_domain(c) || !is_const_scalar(g, c.input(1), 0) || !is_const_scalar(g, c.input(2), 6))
      continue;
    if (sole_reader(c.outputs[0]) != rd[size_t(1 - k)]) continue;
    if (!((m.input(0) == o && m.input(1) == c.outputs[0]) || (m.input(1) == o && m.input(0) == c.outputs[0]))) continue;
    const int di = sole_reader(m.outputs[0]);
    if (di < 0) continue;
    const Node& d = g.nodes[size_t(di)];
    if (d.op != "Div" || !default_domain(d) || d.input(0) != m.outputs[0] || !is_const_scalar(g, d.input(1), 6)) continue;
    return std::vector<int>{rd[size_t(k)], ci, rd[size_t(1 - k)], di};
  }
  return std::nullopt;
}

// A conv stage with its activation: the conv, the nodes of a decomposed HardSwish after it (empty
// when the activation is the conv's own), and the value the next stage reads.
struct SeStage {
  int conv = -1;
  std::vector<int> act_nodes;
  std::string out;
  std::string act_override() const { return act_nodes.empty() ? "" : "hardswish_ops"; }
};
SeStage se_stage(const Graph& g, int conv) {
  SeStage st;
  st.conv = conv;
  st.out = g.nodes[size_t(conv)].outputs[0];
  if (!g.nodes[size_t(conv)].has("locus.activation"))
    if (auto ops = hardswish_ops_on(g, st.out)) st.act_nodes = *ops, st.out = g.nodes[size_t(ops->back())].outputs[0];
  return st;
}

struct SeChain {
  SeStage expand, dw;
  int pool = -1, squeeze = -1, excite = -1, mul = -1, project = -1, add = -1;
  std::vector<int> indices() const {
    std::vector<int> r;
    for (const SeStage* st : {&expand, &dw})
      if (st->conv >= 0) {
        r.push_back(st->conv);
        r.insert(r.end(), st->act_nodes.begin(), st->act_nodes.end());
      }
    for (int i : {pool, squeeze, excite, mul, project, add})
      if (i >= 0) r.push_back(i);
    std::sort(r.begin(), r.end());
    return r;
  }
};

// GlobalAveragePool, or ReduceMean over H and W with keepdims (the same op on a 4-D tensor).
bool is_spatial_mean(const Graph& g, const Node& n) {
  if (!default_domain(n)) return false;
  if (n.op == "GlobalAveragePool") return true;
  return n.op == "ReduceMean" && n.i("keepdims", 1) == 1 && g.info(n.input(0)).shape.size() == 4 &&
         n.ints("axes", {}) == std::vector<int64_t>{2, 3};
}

// The squeeze-excite block around depthwise candidate `d` (fp32): nullopt without a remark when the
// depthwise output (after its activation) feeds no spatial mean; nullopt with a remark (why) when
// it does but the block cannot be fused.
std::optional<SeChain> match_se(const Graph& g, int d, const std::vector<bool>& taken, std::vector<PassRemark>& remarks) {
  SeChain ch;
  ch.dw = se_stage(g, d);
  const Node& dw = g.nodes[size_t(d)];
  int pool = -1, mul = -1;
  for (int r : g.consumers(ch.dw.out)) {
    if (taken[size_t(r)]) continue;
    if (is_spatial_mean(g, g.nodes[size_t(r)])) pool = r;
    else if (g.nodes[size_t(r)].op == "Mul" && default_domain(g.nodes[size_t(r)])) mul = r;
  }
  if (pool < 0 || mul < 0) return std::nullopt;  // no squeeze-excite here (e.g. a classifier's global pool)
  const std::string what = cat("not fused into a squeeze-excite block with depthwise conv '", dw.name, "': ");
  auto refuse = [&](int node, const std::string& why) {
    remarks.push_back({kPassName, g.nodes[size_t(node)].name, what + why});
    return std::nullopt;
  };
  if (auto why = depthwise_problem(g, dw, true)) return refuse(d, *why);
  // pool -> squeeze 1x1 -> excite 1x1 -> Mul(dw output, gate)
  auto sole = [&](const std::string& v) {
    const std::vector<int> r = g.consumers(v);
    return r.size() == 1 && !g.is_graph_output(v) ? r[0] : -1;
  };
  ch.pool = pool;
  const Node& pn = g.nodes[size_t(pool)];
  ch.squeeze = sole(pn.outputs[0]);
  if (ch.squeeze < 0 || !is_1x1_conv(g, g.nodes[size_t(ch.squeeze)], false))
    return refuse(pool, cat("the pooled value '", pn.outputs[0], "' is not read by one 1x1 conv (the squeeze) alone"));
  const Node& sq = g.nodes[size_t(ch.squeeze)];
  if (auto why = pointwise_problem(g, sq, true)) return refuse(ch.squeeze, cat("the squeeze conv: ", *why));
  ch.excite = sole(sq.outputs[0]);
  if (ch.excite < 0 || !is_1x1_conv(g, g.nodes[size_t(ch.excite)], false))
    return refuse(ch.squeeze, cat("its output '", sq.outputs[0], "' is not read by one 1x1 conv (the excite) alone"));
  const Node& ex = g.nodes[size_t(ch.excite)];
  if (auto why = pointwise_problem(g, ex, true)) return refuse(ch.excite, cat("the excite conv: ", *why));
  if (sole(ex.outputs[0]) < 0 || sole(ex.outputs[0]) != mul)
    return refuse(ch.excite, cat("the gate '", ex.outputs[0], "' is not read only by a Mul with the depthwise output '",
                                 ch.dw.out, "'"));
  const Node& mn = g.nodes[size_t(mul)];
  if (!((mn.input(0) == ch.dw.out && mn.input(1) == ex.outputs[0]) || (mn.input(1) == ch.dw.out && mn.input(0) == ex.outputs[0])))
    return refuse(mul, "the Mul does not multiply the depthwise output by the gate");
  ch.mul = mul;
  if (g.is_graph_output(ch.dw.out)) return refuse(d, cat("the depthwise output '", ch.dw.out, "' is a graph output"));
  if (std::string others = other_readers(g, ch.dw.out, -1); g.consumers(ch.dw.out).size() != 2)
    return refuse(d, cat("the depthwise output '", ch.dw.out, "' is read by ", others,
                         " (a fused block can only pool it and scale it)"));
  // project
  ch.project = sole(mn.outputs[0]);
  if (ch.project < 0 || !is_1x1_conv(g, g.nodes[size_t(ch.project)], false) || taken[size_t(ch.project)])
    return refuse(mul, cat("the scaled value '", mn.outputs[0], "' is not read by one 1x1 conv (the project) alone"));
  const Node& pr = g.nodes[size_t(ch.project)];
  if (auto why = pointwise_problem(g, pr, true)) return refuse(ch.project, cat("the project conv: ", *why));
  // expand: a 1x1 conv producing the depthwise input (its activation included), read only by it
  const int prod = g.producer(dw.input(0));
  if (prod >= 0 && !taken[size_t(prod)]) {
    const Node& pn2 = g.nodes[size_t(prod)];
    int conv = is_1x1_conv(g, pn2, false) ? prod : -1;
    if (conv < 0 && pn2.op == "Div") {  // the end of a decomposed HardSwish on a 1x1 conv?
      const int m = g.producer(pn2.input(0));
      const int c = m >= 0 ? g.producer(g.nodes[size_t(m)].input(0)) : -1;
      const int c2 = m >= 0 ? g.producer(g.nodes[size_t(m)].input(1)) : -1;
      for (int cand : {c, c2})
        if (cand >= 0 && !taken[size_t(cand)] && is_1x1_conv(g, g.nodes[size_t(cand)], false)) {
          SeStage st = se_stage(g, cand);
          if (!st.act_nodes.empty() && st.out == dw.input(0)) conv = cand;
        }
    }
    if (conv >= 0) {
      SeStage st = se_stage(g, conv);
      const std::string ewhat = cat("not fused as the expand stage of squeeze-excite block '", dw.name, "': ");
      if (auto why = intermediate_problem(g, st.out, d)) remarks.push_back({kPassName, g.nodes[size_t(conv)].name, ewhat + *why});
      else if (auto why2 = pointwise_problem(g, g.nodes[size_t(conv)], true))
        remarks.push_back({kPassName, g.nodes[size_t(conv)].name, ewhat + *why2});
      else ch.expand = st;
    }
  }
  // residual Add(project, X)
  const std::string x = ch.expand.conv >= 0 ? g.nodes[size_t(ch.expand.conv)].input(0) : dw.input(0);
  const int a = sole(pr.outputs[0]);
  if (a >= 0) {
    const Node& an = g.nodes[size_t(a)];
    if (an.op == "Add" && default_domain(an) &&
        ((an.input(0) == pr.outputs[0] && an.input(1) == x) || (an.input(1) == pr.outputs[0] && an.input(0) == x)) &&
        g.info(x).shape == g.info(pr.outputs[0]).shape && g.info(an.outputs[0]).shape == g.info(x).shape)
      ch.add = a;
  }
  return ch;
}

class FuseInvertedResidual : public Pass {
 public:
  FuseInvertedResidual(bool fp32, bool int8) : fp32_(fp32), int8_(int8) {}
  std::string name() const override { return kPassName; }
  std::string description() const override {
    return "fuses MobileNetV2 blocks (1x1 -> depthwise -> 1x1 [+ input]) into FusedInvertedResidual, MobileNetV3 "
           "blocks with squeeze-excite into FusedSEBlock, and the int8 form (QLinearConv chains [+ QLinearAdd]) into "
           "FusedQLinearInvertedResidual";
  }

  int run(Graph& g, std::vector<PassRemark>& remarks) override {
    std::vector<bool> taken(g.nodes.size(), false);
    struct Fused {
      std::vector<int> indices;  // the chain's nodes, sorted (the last one is replaced)
      Node node;
    };
    std::vector<Fused> fused;
    // Squeeze-excite blocks first (fp32): their depthwise conv is then not a plain block's.
    for (size_t i = 0; i < g.nodes.size() && fp32_; ++i) {
      if (taken[i] || !is_dw_candidate(g.nodes[i]) || is_qconv(g.nodes[i])) continue;
      std::optional<SeChain> chain = match_se(g, int(i), taken, remarks);
      if (!chain) continue;
      std::optional<Node> node = build_se(g, *chain, remarks);
      if (!node) continue;
      for (int k : chain->indices()) taken[size_t(k)] = true;
      fused.push_back({chain->indices(), std::move(*node)});
    }
    // A squeeze-excite that gates something other than a depthwise conv's output (e.g. a standard
    // conv's, as in PP-OCRv4's neck): said once per pool, at the pool.
    if (fp32_) {
      std::set<std::string> dw_outs;
      for (size_t i = 0; i < g.nodes.size(); ++i)
        if (is_dw_candidate(g.nodes[i]) && !is_qconv(g.nodes[i])) dw_outs.insert(se_stage(g, int(i)).out);
      for (size_t i = 0; i < g.nodes.size(); ++i) {
        const Node& pn = g.nodes[i];
        if (taken[i] || !is_spatial_mean(g, pn) || dw_outs.count(pn.input(0))) continue;
        const std::vector<int> rd = g.consumers(pn.outputs[0]);
        if (rd.size() != 1 || !is_1x1_conv(g, g.nodes[size_t(rd[0])], false)) continue;  // not a squeeze-excite
        const int prod = g.producer(pn.input(0));
        remarks.push_back({kPassName, pn.name,
                           cat("not fused into a squeeze-excite block: the pooled value '", pn.input(0), "' is ",
                               prod >= 0 ? cat("the output of ", g.nodes[size_t(prod)].op, " '", g.nodes[size_t(prod)].name, "'")
                                         : std::string("not computed by a node"),
                               ", not of a depthwise conv (and its activation)")});
      }
    }
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (taken[i] || !is_dw_candidate(g.nodes[i])) continue;
      if (!(is_qconv(g.nodes[i]) ? int8_ : fp32_)) continue;
      std::optional<Chain> chain = match(g, int(i), taken, remarks);
      if (!chain) continue;
      std::optional<Node> node = build(g, *chain, remarks);
      if (!node) continue;
      for (int k : chain->indices()) taken[size_t(k)] = true;
      fused.push_back({chain->indices(), std::move(*node)});
    }
    if (fused.empty()) return 0;

    // Rewrite: each block's node replaces its last node; the others go; intermediates are dropped.
    std::vector<bool> keep(g.nodes.size(), true);
    std::set<std::string> node_names;
    for (const Node& n : g.nodes) node_names.insert(n.name);
    for (auto& [idx, node] : fused) {
      const int last = idx.back();
      for (int k : idx) {
        node_names.erase(g.nodes[size_t(k)].name);
        if (k != last) {
          for (auto& o : g.nodes[size_t(k)].outputs) g.values.erase(o);
          keep[size_t(k)] = false;
        }
      }
      std::string base = node.name;
      for (int s = 1; node_names.count(node.name); ++s) node.name = cat(base, "_", s);
      node_names.insert(node.name);
      remarks.push_back({kPassName, node.name,
                         cat("fused ", idx.size(), " nodes (", node.s("fused_nodes", "?"), ") into one kernel",
                             node.op == "FusedSEBlock" ? ", with the squeeze-excite" : "",
                             node.i("residual", 0) == 1 ? ", with the residual add" : ""),
                         RemarkKind::Applied});
      g.nodes[size_t(last)] = std::move(node);
    }
    g.erase_nodes(keep);
    return int(fused.size());
  }

 private:
  bool fp32_, int8_;

  // Finds the longest block around the depthwise candidate `d`; remarks on the near misses.
  std::optional<Chain> match(const Graph& g, int d, const std::vector<bool>& taken,
                             std::vector<PassRemark>& remarks) const {
    const Node& dw = g.nodes[size_t(d)];
    const bool q = is_qconv(dw);
    auto remark = [&](int node, const std::string& what, const std::string& why) {
      remarks.push_back({kPassName, g.nodes[size_t(node)].name, cat(what, why)});
    };
    const std::string dw_ref = cat("depthwise conv '", dw.name, "'");

    // Neighbours: the producer of D's input (a 1x1 conv, or a Relu/Clip node on one) and D's readers.
    const int prod = g.producer(dw.input(0));
    const bool prod_1x1 = prod >= 0 && !taken[size_t(prod)] && is_1x1_conv(g, g.nodes[size_t(prod)], q);
    int act_between = -1;
    const Node* pn = prod >= 0 && !taken[size_t(prod)] ? &g.nodes[size_t(prod)] : nullptr;
    if (pn && (pn->op == "Relu" || pn->op == "Clip") && default_domain(*pn)) {
      int pp = g.producer(pn->input(0));
      if (pp >= 0 && !taken[size_t(pp)] && is_1x1_conv(g, g.nodes[size_t(pp)], q)) act_between = prod;
    }
    // A second depthwise stage: D's one reader is another depthwise candidate (CP's Kx1 -> 1xK;
    // float only).
    int d2 = -1;
    if (const std::vector<int> rd = g.consumers(dw.outputs[0]);
        !q && rd.size() == 1 && !taken[size_t(rd[0])] && is_dw_candidate(g.nodes[size_t(rd[0])]) &&
        !is_qconv(g.nodes[size_t(rd[0])]) && !is_1x1_conv(g, g.nodes[size_t(rd[0])], q) &&
        !g.is_graph_output(dw.outputs[0]))
      d2 = rd[0];
    auto find_reader_1x1 = [&](const Node& last_dw) {
      for (int r : g.consumers(last_dw.outputs[0]))
        if (!taken[size_t(r)] && is_1x1_conv(g, g.nodes[size_t(r)], q)) return r;
      return -1;
    };
    int reader_1x1 = find_reader_1x1(d2 >= 0 ? g.nodes[size_t(d2)] : dw);
    if (!prod_1x1 && act_between < 0 && reader_1x1 < 0) return std::nullopt;  // nothing to fuse with

    if (auto why = depthwise_problem(g, dw)) {
      remark(d, "not fused into an inverted residual block: ", *why);
      return std::nullopt;
    }
    Chain chain;
    chain.dw = d;
    chain.quantized = q;
    if (d2 >= 0) {
      if (auto why = depthwise_problem(g, g.nodes[size_t(d2)])) {
        remark(d2, cat("not fused as the second depthwise stage of ", dw_ref, ": "), *why);
        reader_1x1 = find_reader_1x1(dw);  // the block ends at D
      } else {
        chain.dw2 = d2;
      }
    }
    const Node& last_dw = chain.dw2 >= 0 ? g.nodes[size_t(chain.dw2)] : dw;
    const int last_d = chain.dw2 >= 0 ? chain.dw2 : d;

    // Expand stage.
    if (prod_1x1) {
      const Node& e = g.nodes[size_t(prod)];
      const std::string what = cat("not fused as the expand stage of ", dw_ref, ": ");
      if (auto why = intermediate_problem(g, e.outputs[0], d)) remark(prod, what, *why);
      else if (auto why2 = pointwise_problem(g, e)) remark(prod, what, *why2);
      else chain.expand = prod;
    } else if (q && pn && is_qconv(*pn) && pn->i("group", 1) == 1 && default_domain(*pn)) {
      // int8: a dense KxK conv in front of a block without a 1x1 expand (MobileNetV2's stem) is its
      // expand stage, computed band by band (kernels/native/qinverted_residual.h)
      const std::string what = cat("not fused as the expand conv of ", dw_ref, ": ");
      const Shape w = weight_shape(g, *pn);
      if (auto why = intermediate_problem(g, pn->outputs[0], d)) remark(prod, what, *why);
      else if (auto why2 = conv_common_problem(g, *pn)) remark(prod, what, *why2);
      else if (pn->ints("dilations", {1, 1}) != std::vector<int64_t>{1, 1})
        remark(prod, what, cat("it has dilations ", ints_text(pn->ints("dilations", {1, 1})), " (only dilation 1 is fused)"));
      else if (w.size() != 4 || w[2] > 16)
        remark(prod, what, cat("its kernel ", shape_str(w), " is taller than 16 rows"));
      else chain.expand = prod;
    } else if (act_between >= 0) {
      const Node& a = g.nodes[size_t(act_between)];
      remark(act_between, cat("blocks the expand stage of ", dw_ref, ": "),
             cat("this ", a.op, " node between the 1x1 conv '", g.nodes[size_t(g.producer(a.input(0)))].name,
                 "' and the depthwise conv is not fused into the 1x1 conv (fuse-activation did not fire)"));
    }

    // Project stage.
    if (reader_1x1 >= 0) {
      const Node& p = g.nodes[size_t(reader_1x1)];
      if (auto why = intermediate_problem(g, last_dw.outputs[0], reader_1x1))
        remark(last_d, cat("not fused with the project stage '", p.name, "': "), *why);
      else if (auto why2 = pointwise_problem(g, p))
        remark(reader_1x1, cat("not fused as the project stage of ", dw_ref, ": "), *why2);
      else chain.project = reader_1x1;
    }

    // Residual Add: an Add reading P's output and X. An Add reading P's output and something else
    // is a near miss only if it is P's one reader (otherwise it is typically the next block's
    // residual, which reads this block's output as its input).
    if (chain.project >= 0) {
      const Node& p = g.nodes[size_t(chain.project)];
      const std::string x = chain.expand >= 0 ? g.nodes[size_t(chain.expand)].input(0) : dw.input(0);
      const std::vector<int> p_readers = g.consumers(p.outputs[0]);
      const bool sole = p_readers.size() == 1 && !g.is_graph_output(p.outputs[0]);
      // Add(A, B), or com.microsoft QLinearAdd(A, A_scale, A_zp, B, ...) in the int8 form
      const size_t b_index = q ? 3 : 1;
      auto is_add = [&](int r) {
        const Node& a = g.nodes[size_t(r)];
        return q ? a.op == "QLinearAdd" && a.domain == kMicrosoftDomain : a.op == "Add" && default_domain(a);
      };
      auto other_operand = [&](const Node& a) {
        return a.input(0) == p.outputs[0] ? a.input(b_index) : a.input(0);
      };
      int add = -1;
      for (int r : p_readers)
        if (is_add(r) && other_operand(g.nodes[size_t(r)]) == x) add = r;
      const std::string what = cat("not fused as the residual Add of ", dw_ref, ": ");
      if (add >= 0) {
        const Node& a = g.nodes[size_t(add)];
        if (auto why = intermediate_problem(g, p.outputs[0], add))
          remark(chain.project, cat("not fused with the residual Add '", a.name, "': "), *why);
        else if (g.info(x).shape != g.info(p.outputs[0]).shape || g.info(a.outputs[0]).shape != g.info(x).shape)
          remark(add, what,
                 cat("the block input ", shape_str(g.info(x).shape), " and the project output ",
                     shape_str(g.info(p.outputs[0]).shape), " have different shapes"));
        else chain.add = add, chain.x_first = a.input(0) == x;
      } else if (sole && is_add(p_readers[0])) {
        remark(p_readers[0], what,
               cat("its other operand '", other_operand(g.nodes[size_t(p_readers[0])]), "' is not the block input '", x,
                   "'"));
      }
    }

    if (chain.expand < 0 && chain.project < 0 && chain.dw2 < 0) return std::nullopt;  // the remarks say why
    return chain;
  }

  // The fused node of a matched chain, checked with shape inference (nullopt + remark if it fails,
  // which would be a bug in match()).
  std::optional<Node> build(const Graph& g, const Chain& chain, std::vector<PassRemark>& remarks) const {
    if (chain.quantized) return checked(g, chain, build_quantized(g, chain), remarks);
    const Node* e = chain.expand >= 0 ? &g.nodes[size_t(chain.expand)] : nullptr;
    const Node& d = g.nodes[size_t(chain.dw)];
    const Node* d2 = chain.dw2 >= 0 ? &g.nodes[size_t(chain.dw2)] : nullptr;
    const Node* p = chain.project >= 0 ? &g.nodes[size_t(chain.project)] : nullptr;
    std::vector<int> idx = chain.indices();
    const Node& first = g.nodes[size_t(idx.front())];
    const Node& last = g.nodes[size_t(idx.back())];

    Node f;
    f.op = "FusedInvertedResidual";
    f.domain = kLocusDomain;
    f.name = cat(first.name, "..", last.name);
    f.inputs.assign(7, "");
    f.inputs[0] = e ? e->input(0) : d.input(0);
    if (e) f.inputs[1] = e->input(1), f.inputs[2] = e->input(2);
    f.inputs[3] = d.input(1);
    f.inputs[4] = d.input(2);
    if (p) f.inputs[5] = p->input(1), f.inputs[6] = p->input(2);
    f.outputs = {last.outputs[0]};
    copy_activation(f, "expand", e);
    copy_activation(f, "dw", &d);
    copy_activation(f, "project", p);
    f.attrs["dw_strides"] = d.ints("strides", {1, 1});
    f.attrs["dw_pads"] = d.ints("pads", {0, 0, 0, 0});
    if (d2) {
      f.inputs.resize(9);
      f.inputs[7] = d2->input(1);
      f.inputs[8] = d2->input(2);
      copy_activation(f, "dw2", d2);
      f.attrs["dw2_strides"] = d2->ints("strides", {1, 1});
      f.attrs["dw2_pads"] = d2->ints("pads", {0, 0, 0, 0});
    }
    f.attrs["residual"] = int64_t(chain.add >= 0 ? 1 : 0);
    std::string names;
    for (int k : idx) names += (names.empty() ? "" : ", ") + g.nodes[size_t(k)].name;
    f.attrs["fused_nodes"] = names;

    return checked(g, chain, std::move(f), remarks);
  }

  // The FusedSEBlock node of a squeeze-excite chain (contract in graph/ops.h).
  std::optional<Node> build_se(const Graph& g, const SeChain& ch, std::vector<PassRemark>& remarks) const {
    const Node* e = ch.expand.conv >= 0 ? &g.nodes[size_t(ch.expand.conv)] : nullptr;
    const Node& d = g.nodes[size_t(ch.dw.conv)];
    const Node& sq = g.nodes[size_t(ch.squeeze)];
    const Node& ex = g.nodes[size_t(ch.excite)];
    const Node& p = g.nodes[size_t(ch.project)];
    const std::vector<int> idx = ch.indices();
    const Node& last = g.nodes[size_t(idx.back())];
    Node f;
    f.op = "FusedSEBlock";
    f.domain = kLocusDomain;
    f.name = cat(g.nodes[size_t(idx.front())].name, "..", last.name);
    f.inputs.assign(11, "");
    f.inputs[0] = e ? e->input(0) : d.input(0);
    if (e) f.inputs[1] = e->input(1), f.inputs[2] = e->input(2);
    f.inputs[3] = d.input(1), f.inputs[4] = d.input(2);
    f.inputs[5] = p.input(1), f.inputs[6] = p.input(2);
    f.inputs[7] = sq.input(1), f.inputs[8] = sq.input(2);
    f.inputs[9] = ex.input(1), f.inputs[10] = ex.input(2);
    f.outputs = {last.outputs[0]};
    copy_activation(f, "expand", e, e ? ch.expand.act_override() : "");
    copy_activation(f, "dw", &d, ch.dw.act_override());
    copy_activation(f, "project", &p);
    copy_activation(f, "squeeze", &sq);
    copy_activation(f, "excite", &ex);
    f.attrs["dw_strides"] = d.ints("strides", {1, 1});
    f.attrs["dw_pads"] = d.ints("pads", {0, 0, 0, 0});
    f.attrs["residual"] = int64_t(ch.add >= 0 ? 1 : 0);
    std::string names;
    for (int k : idx) names += (names.empty() ? "" : ", ") + g.nodes[size_t(k)].name;
    f.attrs["fused_nodes"] = names;
    Chain c;
    c.dw = ch.dw.conv;
    c.project = idx.back();
    return checked(g, c, std::move(f), remarks);
  }

  // The fused node of a quantized chain (contract in graph/ops.h, positions in graph/fused_qlinear.h).
  Node build_quantized(const Graph& g, const Chain& chain) const {
    namespace fq = fused_qlinear;
    const Node* e = chain.expand >= 0 ? &g.nodes[size_t(chain.expand)] : nullptr;
    const Node& d = g.nodes[size_t(chain.dw)];
    const Node* p = chain.project >= 0 ? &g.nodes[size_t(chain.project)] : nullptr;
    const Node* a = chain.add >= 0 ? &g.nodes[size_t(chain.add)] : nullptr;
    std::vector<int> idx = chain.indices();
    Node f;
    f.op = "FusedQLinearInvertedResidual";
    f.domain = kLocusDomain;
    f.name = cat(g.nodes[size_t(idx.front())].name, "..", g.nodes[size_t(idx.back())].name);
    f.inputs.assign(fq::kInputs, "");
    f.inputs[fq::kX] = e ? e->input(0) : d.input(0);
    auto stage = [&](size_t base, const Node* c) {
      if (c)
        for (size_t k = 0; k < fq::kStageInputs; ++k) f.inputs[base + k] = c->input(1 + k);
    };
    stage(fq::kExpand, e);
    stage(fq::kDw, &d);
    stage(fq::kProject, p);
    if (a) {
      size_t k = fq::kAdd;
      for (size_t j : {1, 2, 4, 5, 6, 7}) f.inputs[k++] = a->input(j);
    }
    f.outputs = {g.nodes[size_t(idx.back())].outputs[0]};
    f.attrs["dw_strides"] = d.ints("strides", {1, 1});
    f.attrs["dw_pads"] = d.ints("pads", {0, 0, 0, 0});
    if (e) {  // 1 / 0 for a 1x1 expand; a KxK one (the stem) keeps its own
      f.attrs["expand_strides"] = e->ints("strides", {1, 1});
      f.attrs["expand_pads"] = e->ints("pads", {0, 0, 0, 0});
    }
    f.attrs["residual"] = int64_t(a ? 1 : 0);
    f.attrs["residual_x_first"] = int64_t(a && chain.x_first ? 1 : 0);
    std::string names;
    for (int k : idx) names += (names.empty() ? "" : ", ") + g.nodes[size_t(k)].name;
    f.attrs["fused_nodes"] = names;
    return f;
  }

  // f, checked with shape inference against the chain's last output (nullopt + remark if it fails,
  // which would be a bug in match()).
  std::optional<Node> checked(const Graph& g, const Chain& chain, Node f, std::vector<PassRemark>& remarks) const {
    const Node& d = g.nodes[size_t(chain.dw)];
    const Node& last = g.nodes[size_t(chain.indices().back())];
    std::vector<ValueInfo> in(f.inputs.size());
    std::vector<const Tensor*> consts(f.inputs.size(), nullptr);
    for (size_t k = 0; k < f.inputs.size(); ++k)
      if (!f.inputs[k].empty()) {
        in[k] = g.info(f.inputs[k]);
        consts[k] = g.constant(f.inputs[k]);
      }
    try {
      std::vector<ValueInfo> out = infer_node(f, in, consts);
      const ValueInfo want = g.info(last.outputs[0]);
      if (out.empty() || out[0].shape != want.shape || out[0].dtype != want.dtype)
        throw Error(cat("fused output ", out.empty() ? std::string("?") : shape_str(out[0].shape), " differs from ",
                        shape_str(want.shape)));
    } catch (const Error& err) {
      remarks.push_back({kPassName, d.name, cat("not fused into an inverted residual block: internal check failed: ",
                                                err.what())});
      return std::nullopt;
    }
    return f;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_inverted_residual_pass(bool fp32, bool int8) {
  return std::make_unique<FuseInvertedResidual>(fp32, int8);
}

}  // namespace locus
