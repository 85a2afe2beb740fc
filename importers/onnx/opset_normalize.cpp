// Opset canonicalisation: rewrites the opset 1..17 variants of default-domain ops into the single
// canonical form of each op described in graph/ops.h, so nothing after the importer needs the opset.
// Opsets older than 7 are first checked against the table of legacy_opsets.cpp.
//   Constant                      -> Graph::constants (node removed)
//   consumed_inputs (opsets < 6)  -> dropped (a legacy optimisation hint)
//   Add/Sub/Mul/Div < 7           -> broadcast / axis dropped: numpy broadcasting (an axis becomes
//                                    locus.legacy_axis, resolved by resolve_legacy_broadcast)
//   Gemm < 7 (broadcast)          -> dropped (unidirectional broadcasting of C)
//   Reshape < 5 (attr shape)      -> constant int64 input 1
//   Concat < 4                    -> explicit axis (default 1)
//   Clip < 11 (attrs min/max)     -> constant inputs 1 and 2
//   Unsqueeze/Squeeze < 13 (axes) -> constant int64 input 1
//   Slice < 10 (attrs starts/ends/axes) -> constant int64 inputs 1..3
//   Resize 10 (X, scales)         -> Resize(X, "", scales), asymmetric coordinates, nearest_mode floor
//   Softmax (+LogSoftmax/Hardmax) -> explicit axis and legacy (1 for opset < 13)
//   Dropout                       -> Identity (unless its mask is used or it runs in training mode;
//                                    is_test=0 of opsets < 7 is refused by check_legacy_opset)
//   BatchNormalization            -> one output, no spatial/is_test/training_mode/consumed_inputs
//   MaxPool                       -> one output (unless Indices is used)
// Forms we cannot rewrite are left in place with a "locus.*" marker or their original op so that
// shape inference reports them as unsupported.
#include <cfloat>
#include <set>

#include "importers/onnx/importer_internal.h"

namespace locus::onnx_import::detail {
namespace {

// Value names already in use anywhere in the graph, so that created constants never collide with a
// value, including names only referenced (and thus left for topo_sort to report).
class Names {
 public:
  explicit Names(const Graph& g) {
    names_.insert(g.inputs.begin(), g.inputs.end());
    names_.insert(g.outputs.begin(), g.outputs.end());
    for (auto& [name, t] : g.constants) names_.insert(name);
    for (auto& n : g.nodes) {
      names_.insert(n.inputs.begin(), n.inputs.end());
      names_.insert(n.outputs.begin(), n.outputs.end());
    }
  }
  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int k = 1; names_.count(name); ++k) name = cat(base, "_", k);
    names_.insert(name);
    return name;
  }

 private:
  std::set<std::string> names_;
};

// A 1-D (or, with `scalar`, 0-D) tensor holding v. Not Tensor::from_f32/from_i64: those memcpy from
// v.data(), which is null for an empty vector (undefined behaviour, found by the fuzzer).
template <class T>
Tensor vector_tensor(DType dt, const std::vector<T>& v, bool scalar = false) {
  Tensor t(dt, scalar ? Shape{} : Shape{int64_t(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<T>()[i] = v[i];
  return t;
}

Tensor constant_value(const Node& n) {
  const std::string what = cat("Constant node '", n.name, "'");
  if (n.has("locus.unsupported_attr"))
    throw Unsupported(cat(what, " has a '", n.s("locus.unsupported_attr", ""), "' value, which is not supported"));
  if (n.has("value_string") || n.has("value_strings"))
    throw Unsupported(cat(what, " holds strings, which are not supported"));
  LOCUS_CHECK(n.attrs.size() == 1, what, " must have exactly one value attribute, not ", n.attrs.size());
  const auto& [key, attr] = *n.attrs.begin();
  if (key == "value") return *n.tensor("value");
  if (key == "value_float") return vector_tensor(DType::F32, std::vector<float>{n.f(key, 0)}, true);
  if (key == "value_floats") return vector_tensor(DType::F32, n.floats(key));
  if (key == "value_int") return vector_tensor(DType::I64, std::vector<int64_t>{n.i(key, 0)}, true);
  if (key == "value_ints") return vector_tensor(DType::I64, n.ints(key));
  throw Unsupported(cat(what, " has attribute '", key, "', which is not supported"));
}

// Moves every default-domain Constant node into g.constants.
void fold_constant_nodes(Graph& g) {
  std::vector<bool> keep(g.nodes.size(), true);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.op != "Constant" || !n.domain.empty()) continue;
    LOCUS_CHECK(n.outputs.size() == 1 && !n.outputs[0].empty(), "Constant node '", n.name,
                "' must have exactly one output");
    const std::string& out = n.outputs[0];
    LOCUS_CHECK(!g.constants.count(out), "value '", out, "' is defined twice (Constant node '", n.name,
                "' and an initializer or another Constant)");
    LOCUS_CHECK(!g.values.count(out), "value '", out, "' is both a graph input and the output of Constant node '",
                n.name, "'");
    g.constants.emplace(out, constant_value(n));
    keep[i] = false;
  }
  g.erase_nodes(keep);
}

// A scalar of `dt` (F32 or F64) holding v.
Tensor scalar(DType dt, double v) {
  Tensor t(dt, {});
  if (dt == DType::F64)
    *t.data<double>() = v;
  else
    *t.data<float>() = float(v);
  return t;
}

struct Canonicalizer {
  Graph& g;
  Names names{g};
  std::map<std::string, int> uses;  // node-input uses plus graph-output uses of each value

  explicit Canonicalizer(Graph& graph) : g(graph) {
    for (auto& n : g.nodes)
      for (auto& in : n.inputs)
        if (!in.empty()) ++uses[in];
    for (auto& o : g.outputs) ++uses[o];
  }

  bool used(const std::string& v) const { return !v.empty() && uses.count(v); }

  std::string add_constant(const std::string& base, Tensor t) {
    std::string name = names.fresh(base);
    g.constants.emplace(name, std::move(t));
    return name;
  }

  DType known_dtype(const std::string& v) const {
    if (auto c = g.constant(v)) return c->dtype;
    auto it = g.values.find(v);
    return it == g.values.end() ? DType::Undefined : it->second.dtype;
  }

  void clip(Node& n) {
    if (g.opset >= 11 || n.inputs.empty()) return;
    double lo = n.f("min", -FLT_MAX), hi = n.f("max", FLT_MAX);
    n.attrs.erase("min");
    n.attrs.erase("max");
    DType dt = known_dtype(n.inputs[0]) == DType::F64 ? DType::F64 : DType::F32;
    n.inputs.resize(1);
    n.inputs.push_back(add_constant(n.name + "_min", scalar(dt, lo)));
    n.inputs.push_back(add_constant(n.name + "_max", scalar(dt, hi)));
  }

  void squeeze_unsqueeze(Node& n) {
    if (g.opset >= 13 || n.inputs.empty() || !n.has("axes")) return;
    std::vector<int64_t> axes = n.ints("axes");
    n.attrs.erase("axes");
    n.inputs.resize(1);
    n.inputs.push_back(add_constant(n.name + "_axes", vector_tensor(DType::I64, axes)));
  }

  void slice(Node& n) {
    if (g.opset >= 10 || n.inputs.empty() || n.num_inputs() > 1) return;
    for (const char* a : {"starts", "ends", "axes"}) {
      if (!n.has(a)) continue;
      std::vector<int64_t> v = n.ints(a);
      n.attrs.erase(a);
      n.inputs.resize(std::string(a) == "starts" ? 1 : std::string(a) == "ends" ? 2 : 3);
      n.inputs.push_back(add_constant(n.name + "_" + a, vector_tensor(DType::I64, v)));
    }
  }

  void resize(Node& n) {
    if (g.opset >= 11 || n.num_inputs() != 2) return;
    n.inputs = {n.inputs[0], "", n.inputs[1]};
    n.attrs["coordinate_transformation_mode"] = std::string("asymmetric");
    n.attrs["nearest_mode"] = std::string("floor");
  }

  void softmax(Node& n) {
    bool legacy = g.opset < 13;
    n.attrs["axis"] = n.i("axis", legacy ? 1 : -1);
    n.attrs["legacy"] = int64_t(legacy);
  }

  void dropout(Node& n) {
    if (n.outputs.empty() || n.outputs[0].empty()) return;
    if (n.outputs.size() > 1 && used(n.outputs[1])) return;  // mask needed: left as Dropout
    if (g.opset >= 12 && !n.input(2).empty()) {               // training_mode input
      const Tensor* t = g.constant(n.input(2));
      if (!t || t->numel() != 1 || t->get(0) != 0) return;    // training or unknown: left as Dropout
    }
    n.op = "Identity";
    n.inputs.resize(1);
    n.outputs.resize(1);
    n.attrs.clear();  // ratio, seed, is_test (opset < 7)
  }

  void batch_norm(Node& n) {
    if (g.opset < 9) {
      n.attrs.erase("is_test");  // opsets < 7; an explicit is_test=0 was refused by check_legacy_opset
      if (n.has("spatial") && n.i("spatial", 1) == 1) n.attrs.erase("spatial");  // spatial=0 stays: reported
    }
    bool training = n.i("training_mode", 0) != 0;  // opset 14+
    n.attrs.erase("training_mode");
    for (size_t k = 1; k < n.outputs.size(); ++k) training |= used(n.outputs[k]);
    if (training)
      n.attrs["locus.training"] = int64_t(1);
    else if (n.outputs.size() > 1)
      n.outputs.resize(1);
  }

  // Add/Sub/Mul/Div of opsets < 7. broadcast=0 needs equal shapes and broadcast=1 without axis
  // aligns B's dims with A's last ones: both as numpy broadcasting for any valid model.
  void legacy_broadcast(Node& n) {
    const bool broadcast = n.i("broadcast", 0) != 0;
    const bool has_axis = n.has("axis");
    const int64_t axis = n.i("axis", 0);
    n.attrs.erase("broadcast");
    n.attrs.erase("axis");  // without broadcast=1 the axis has no effect
    if (broadcast && has_axis) n.attrs[kLegacyAxisAttr] = axis;
  }

  // Reshape of opsets < 5: the target shape is attribute `shape`.
  void legacy_reshape(Node& n) {
    LOCUS_CHECK(n.num_inputs() == 1 && n.has("shape"), "node '", n.name, "' (Reshape at opset ", g.opset,
                ") must have one input and a 'shape' attribute");
    std::vector<int64_t> shape = n.ints("shape");
    n.attrs.erase("shape");
    n.inputs.resize(1);
    n.inputs.push_back(add_constant(n.name + "_shape", vector_tensor(DType::I64, shape)));
  }

  void max_pool(Node& n) {
    if (n.outputs.size() < 2) return;
    if (used(n.outputs[1]))
      n.attrs["locus.indices"] = int64_t(1);
    else
      n.outputs.resize(1);
  }

  void run() {
    for (Node& n : g.nodes) {
      if (!n.domain.empty()) continue;
      // errors from the Node accessors below name the node and op
      if (g.opset < 7) {  // only the ops of legacy_opsets.cpp's table get here
        n.attrs.erase("consumed_inputs");
        if (n.op == "Add" || n.op == "Sub" || n.op == "Mul" || n.op == "Div") legacy_broadcast(n);
        else if (n.op == "Gemm") n.attrs.erase("broadcast");
        else if (n.op == "Reshape" && g.opset < 5) legacy_reshape(n);
        else if (n.op == "Concat" && g.opset < 4 && !n.has("axis")) n.attrs["axis"] = int64_t(1);
      }
      if (n.op == "Clip") clip(n);
      else if (n.op == "Unsqueeze" || n.op == "Squeeze") squeeze_unsqueeze(n);
      else if (n.op == "Slice") slice(n);
      else if (n.op == "Resize") resize(n);
      else if (n.op == "Softmax" || n.op == "LogSoftmax" || n.op == "Hardmax") softmax(n);
      else if (n.op == "Dropout") dropout(n);
      else if (n.op == "BatchNormalization") batch_norm(n);
      else if (n.op == "MaxPool") max_pool(n);
    }
  }
};

}  // namespace

void canonicalize(Graph& g) {
  check_legacy_opset(g);
  fold_constant_nodes(g);
  Canonicalizer(g).run();
}

}  // namespace locus::onnx_import::detail
