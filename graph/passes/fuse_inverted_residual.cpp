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
//   points, the add's other operand X itself with X's shape; no second depthwise stage) becomes one
//   FusedQLinearInvertedResidual node (graph/ops.h), carrying every original input, so the reference
//   backend's composition of the original kernels gives identical bytes. Remarks as above.
// Runs in PassManager::default_pipeline(disabled, fuse_inverted_residuals, fuse_qlinear_blocks),
//   which sessions use for the backends that execute the op (fp32: native, reference, accel; int8:
//   native and reference; each form only for the backends that run it).
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
std::optional<std::string> conv_common_problem(const Graph& g, const Node& n) {
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
    if (act != "relu" && act != "clip") return cat("its activation '", act, "' is not relu or clip");
  }
  return std::nullopt;
}

std::optional<std::string> pointwise_problem(const Graph& g, const Node& n) {
  auto strides = n.ints("strides", {1, 1});
  if (strides != std::vector<int64_t>{1, 1})
    return cat("the 1x1 conv has strides ", ints_text(strides), " (a fused 1x1 conv must have stride 1)");
  auto pads = n.ints("pads", {0, 0, 0, 0});
  if (pads != std::vector<int64_t>{0, 0, 0, 0})
    return cat("the 1x1 conv has pads ", ints_text(pads), " (a fused 1x1 conv must be unpadded)");
  if (int64_t group = n.i("group", 1); group != 1)
    return cat("the 1x1 conv has group ", group, " (a fused 1x1 conv must have group 1)");
  return conv_common_problem(g, n);
}

std::optional<std::string> depthwise_problem(const Graph& g, const Node& n) {
  const int64_t group = n.i("group", 1);
  const int64_t C = g.info(n.input(0)).shape[1];
  const int64_t OC = weight_shape(g, n)[0];
  if (group != C || OC != C)
    return cat("the grouped conv (group ", group, ", ", C, " input and ", OC,
               " output channels) is not depthwise (needs group = input channels = output channels)");
  auto dil = n.ints("dilations", {1, 1});
  if (dil != std::vector<int64_t>{1, 1})
    return cat("the depthwise conv has dilations ", ints_text(dil), " (only dilation 1 is fused)");
  return conv_common_problem(g, n);
}

// The activation attributes of one stage from a Conv's locus.activation*.
void copy_activation(Node& fused, const std::string& stage, const Node* conv) {
  std::string act = conv ? conv->s("locus.activation", "none") : "none";
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

class FuseInvertedResidual : public Pass {
 public:
  FuseInvertedResidual(bool fp32, bool int8) : fp32_(fp32), int8_(int8) {}
  std::string name() const override { return kPassName; }
  std::string description() const override {
    return "fuses MobileNetV2 blocks (1x1 -> depthwise -> 1x1 [+ input]) into FusedInvertedResidual, and their "
           "int8 form (QLinearConv chains [+ QLinearAdd]) into FusedQLinearInvertedResidual";
  }

  int run(Graph& g, std::vector<PassRemark>& remarks) override {
    std::vector<bool> taken(g.nodes.size(), false);
    std::vector<std::pair<Chain, Node>> fused;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (taken[i] || !is_dw_candidate(g.nodes[i])) continue;
      if (!(is_qconv(g.nodes[i]) ? int8_ : fp32_)) continue;
      std::optional<Chain> chain = match(g, int(i), taken, remarks);
      if (!chain) continue;
      std::optional<Node> node = build(g, *chain, remarks);
      if (!node) continue;
      for (int k : chain->indices()) taken[size_t(k)] = true;
      fused.emplace_back(*chain, std::move(*node));
    }
    if (fused.empty()) return 0;

    // Rewrite: each block's node replaces its last node; the others go; intermediates are dropped.
    std::vector<bool> keep(g.nodes.size(), true);
    std::set<std::string> node_names;
    for (const Node& n : g.nodes) node_names.insert(n.name);
    for (auto& [chain, node] : fused) {
      std::vector<int> idx = chain.indices();
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
                             chain.add >= 0 ? ", with the residual add" : ""),
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
