// Default-domain opsets 1 to 6 (older than the opset 7 of ONNX 1.2): which ops we accept there, and
// the one legacy form that needs shapes to be rewritten (binary ops broadcasting with an `axis`).
//
// A model older than opset 7 is accepted only if every default-domain node is an op listed in
// kLegacyOps below, at or above that op's lowest accepted opset, and in a form whose behaviour we
// canonicalise exactly; anything else is refused at import, naming the op and the opset. The
// attribute rewrites themselves (consumed_inputs, Reshape's shape attribute, Concat's default axis,
// Gemm's broadcast, is_test...) are done with the other opset rewrites in opset_normalize.cpp. The
// semantics follow ONNX's own version converter (onnx/version_converter/convert.h, adapters 1 -> 7).
#include <set>

#include "graph/ops.h"
#include "importers/onnx/importer_internal.h"

namespace locus::onnx_import::detail {
namespace {

struct LegacyOp {
  const char* op;
  int64_t min_opset;  // lowest default-domain opset at which we canonicalise the op exactly
  // (the comment after each entry says what changed between that opset and opset 7)
};

// Ops accepted in models older than opset 7, sorted by name. "consumed_inputs" (opsets 1 to 5) is a
// legacy in-place optimisation hint without effect on the result; it is dropped wherever it appears.
constexpr LegacyOp kLegacyOps[] = {
    // Add-1/Add-6: attrs broadcast and axis (legacy unidirectional broadcast: B broadcast to A,
    // aligned at A's dimension `axis`, suffix-matched without it); Add-1 also consumed_inputs.
    // broadcast=0 (equal shapes) and broadcast=1 without axis give the same result as numpy
    // broadcasting; with an axis, B gets trailing 1s (resolve_legacy_broadcast).
    {"Add", 1},
    // AveragePool-1: no count_include_pad; its opset 7 default (0) is the only behaviour there.
    {"AveragePool", 1},
    // BatchNormalization-1/-6: is_test (0, the schema default, is training mode: an explicit 0 is
    // refused; absent or 1 is the inference form, as ONNX's 6 -> 7 converter), spatial (opsets < 9;
    // spatial=0 is refused by shape inference); BatchNormalization-1 also consumed_inputs (required).
    {"BatchNormalization", 1},
    // Cast-1: attribute `to` is a string (refused by shape inference); Cast-6 is the opset 7..8 form.
    {"Cast", 6},
    // Clip-1: consumed_inputs. Clip-6 is the opset 7..10 form (min/max attributes -> inputs).
    {"Clip", 1},
    // Concat-1: axis optional with default 1 (required from Concat-4); written explicitly.
    {"Concat", 1},
    // Constant-1: only the `value` tensor attribute (the other value_* forms come with opset 12).
    {"Constant", 1},
    // Conv-1 is the schema of opsets 1 to 10: nothing changes before 7.
    {"Conv", 1},
    // Div: as Add.
    {"Div", 1},
    // Dropout-1/-6: is_test (explicit 0 = training mode: refused, as ONNX's converter), ratio;
    // Dropout-1 also consumed_inputs. The inference form becomes Identity.
    {"Dropout", 1},
    // Flatten-1 is the schema of opsets 1 to 8.
    {"Flatten", 1},
    // Gather-1 is the schema of opsets 1 to 10.
    {"Gather", 1},
    // Gemm-1/-6: attr broadcast (C broadcast to [M, N]); dropped: opset 7's unidirectional
    // broadcasting of C covers broadcast=1, and with broadcast=0 C is already [M, N].
    {"Gemm", 1},
    // GlobalAveragePool-1 is the only version.
    {"GlobalAveragePool", 1},
    // HardSigmoid-1: consumed_inputs. HardSigmoid-6 is the current schema.
    {"HardSigmoid", 1},
    // Identity-1 is the schema of opsets 1 to 12.
    {"Identity", 1},
    // MatMul-1 is the schema of opsets 1 to 8.
    {"MatMul", 1},
    // MaxPool-1 is the schema of opsets 1 to 7 (one output, no storage_order).
    {"MaxPool", 1},
    // Mul: as Add.
    {"Mul", 1},
    // Relu-1: consumed_inputs.
    {"Relu", 1},
    // Reshape-1: the shape is an attribute (an input from Reshape-5), plus consumed_inputs; the
    // attribute becomes a constant int64 input.
    {"Reshape", 1},
    // Shape-1 is the schema of opsets 1 to 12.
    {"Shape", 1},
    // Sigmoid-1: consumed_inputs. Sigmoid-6 is the opset 7..12 form.
    {"Sigmoid", 1},
    // Slice-1 is the schema of opsets 1 to 9 (starts, ends, axes attributes -> inputs).
    {"Slice", 1},
    // Softmax-1 is the schema of opsets 1 to 10 (2-D coercion at axis, default 1: legacy=1).
    {"Softmax", 1},
    // Squeeze-1 / Unsqueeze-1 are the schemas of opsets 1 to 10 (axes attribute -> input).
    {"Squeeze", 1},
    // Sub: as Add.
    {"Sub", 1},
    {"Unsqueeze", 1},
};

constexpr int64_t kFirstModernOpset = 7;

const LegacyOp* find_legacy_op(const std::string& op) {
  for (const LegacyOp& e : kLegacyOps)
    if (op == e.op) return &e;
  return nullptr;
}

}  // namespace

void check_legacy_opset(const Graph& g) {
  if (g.opset >= kFirstModernOpset) return;
  for (const Node& n : g.nodes) {
    if (!n.domain.empty()) continue;  // other domains do not follow the default opset
    const LegacyOp* e = find_legacy_op(n.op);
    if (!e)
      throw Unsupported(cat(n.op, " at opset ", g.opset, " is not supported (node '", n.name, "')"));
    if (g.opset < e->min_opset)
      throw Unsupported(cat(n.op, " at opset ", g.opset, " is not supported (node '", n.name,
                            "'; accepted from opset ", e->min_opset, ")"));
    if ((n.op == "BatchNormalization" || n.op == "Dropout") && n.has("is_test") && n.i("is_test", 1) == 0)
      throw Unsupported(cat(n.op, " at opset ", g.opset, " with is_test=0 (training mode) is not supported (node '",
                            n.name, "')"));
  }
}

namespace {

// Rank of a value from the infos learned so far, or -1 if unknown.
int64_t known_rank(const Graph& g, const std::map<std::string, ValueInfo>& known, const std::string& v) {
  if (const Tensor* t = g.constant(v)) return int64_t(t->shape.size());
  auto it = known.find(v);
  return it == known.end() || !it->second.known ? -1 : int64_t(it->second.shape.size());
}

// Infers the outputs of `node` (on a copy: the graph is left as imported) into `known`, if all its
// inputs are known and shape inference accepts it; otherwise its outputs stay unknown.
void learn_outputs(const Graph& g, const Node& node, std::map<std::string, ValueInfo>& known) {
  std::vector<ValueInfo> in(node.inputs.size());
  std::vector<const Tensor*> consts(node.inputs.size(), nullptr);
  for (size_t k = 0; k < node.inputs.size(); ++k) {
    const std::string& v = node.inputs[k];
    if (v.empty()) continue;
    if (const Tensor* t = g.constant(v)) {
      consts[k] = t;
      in[k] = ValueInfo{t->dtype, t->shape, true};
      continue;
    }
    auto it = known.find(v);
    if (it == known.end() || !it->second.known) return;
    in[k] = it->second;
  }
  Node copy = node;
  std::vector<ValueInfo> out;
  try {
    out = infer_node(copy, in, consts);
  } catch (const Error&) {
    return;  // reported (or not reached) by the real shape inference
  }
  for (size_t k = 0; k < node.outputs.size() && k < out.size(); ++k)
    if (!node.outputs[k].empty()) known[node.outputs[k]] = out[k];
}

}  // namespace

void resolve_legacy_broadcast(Graph& g) {
  bool any = false;
  for (const Node& n : g.nodes) any |= n.has(kLegacyAxisAttr);
  if (!any) return;

  std::set<std::string> node_names;
  for (const Node& n : g.nodes) node_names.insert(n.name);
  std::map<std::string, ValueInfo> known = g.values;  // graph inputs
  std::map<std::pair<std::string, int64_t>, std::string> padded;  // (constant, trailing 1s) -> constant

  for (size_t idx = 0; idx < g.nodes.size(); ++idx) {
    if (g.nodes[idx].has(kLegacyAxisAttr)) {
      Node& n = g.nodes[idx];
      const std::string what = cat(n.op, " at opset ", g.opset, " (legacy broadcast with axis)");
      LOCUS_CHECK(n.num_inputs() == 2 && !n.input(0).empty() && !n.input(1).empty(), what, " node '", n.name,
                  "' must have two inputs");
      const std::string a = n.inputs[0], b = n.inputs[1];
      const int64_t ra = known_rank(g, known, a), rb = known_rank(g, known, b);
      if (ra < 0 || rb < 0)
        throw Unsupported(cat(what, " is not supported when the rank of input '", ra < 0 ? a : b,
                              "' is not known at import (node '", n.name, "')"));
      int64_t axis = n.i(kLegacyAxisAttr, 0);
      // Caffe2, where this form comes from, used axis=-1 for suffix matching (numpy's alignment);
      // any other negative value has no defined meaning.
      if (axis == -1) axis = ra - rb;
      if (axis < 0)
        throw Unsupported(cat(what, " with axis ", n.i(kLegacyAxisAttr, 0), " is not supported (node '", n.name, "')"));
      const int64_t trailing = ra - axis - rb;  // B's dims start at `axis` of A; pad to A's rank
      LOCUS_CHECK(trailing >= 0, what, " node '", n.name, "': input '", b, "' of rank ", rb,
                  " does not fit into input '", a, "' of rank ", ra, " at axis ", axis);
      n.attrs.erase(kLegacyAxisAttr);
      if (trailing > 0) {
        if (const Tensor* t = g.constant(b)) {
          auto key = std::make_pair(b, trailing);
          auto it = padded.find(key);
          if (it == padded.end()) {
            Tensor p = *t;
            p.shape.insert(p.shape.end(), size_t(trailing), 1);
            std::string name = g.fresh_name(b + "_legacy_axis");
            g.constants.emplace(name, std::move(p));
            it = padded.emplace(key, name).first;
          }
          n.inputs[1] = it->second;
        } else {
          // B is computed: an Unsqueeze (canonical form: constant axes input) appends the 1s
          Tensor axes(DType::I64, {trailing});
          for (int64_t k = 0; k < trailing; ++k) axes.data<int64_t>()[k] = rb + k;
          std::string axes_name = g.fresh_name(b + "_legacy_axes");
          g.constants.emplace(axes_name, std::move(axes));
          Node u;
          u.op = "Unsqueeze";
          u.name = n.name + "_legacy_unsqueeze";
          for (int k = 1; node_names.count(u.name); ++k) u.name = cat(n.name, "_legacy_unsqueeze_", k);
          node_names.insert(u.name);
          u.inputs = {b, axes_name};
          u.outputs = {g.fresh_name(b + "_legacy_axis")};
          n.inputs[1] = u.outputs[0];
          g.nodes.insert(g.nodes.begin() + std::ptrdiff_t(idx), std::move(u));  // invalidates n
          learn_outputs(g, g.nodes[idx], known);
          ++idx;
        }
      }
    }
    learn_outputs(g, g.nodes[idx], known);
  }
}

}  // namespace locus::onnx_import::detail
