// The operator catalogue (which ops run), whole-graph shape inference, and the two shape helpers
// shared with the kernels (pooled_size, broadcast_shapes). Per-op rules live in
// graph/shape_inference*.cpp.
#include "graph/ops.h"

#include <algorithm>
#include <map>

#include "graph/shape_inference_internal.h"

namespace locus {

// The catalogue is the shape-inference registry (graph/shape_inference.cpp): its keys of the
// default domain, and of the locus domain without the prefix.
const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> ops = [] {
    std::vector<std::string> r;
    for (const std::string& key : shape_inference::rules().keys())
      if (key.find('.') == std::string::npos) r.push_back(key);
    return r;
  }();  // sorted (the registry's keys are): is_supported_op binary-searches it
  return ops;
}

bool is_supported_op(const std::string& op) {
  const auto& ops = supported_ops();
  return std::binary_search(ops.begin(), ops.end(), op);
}

const std::vector<std::string>& locus_ops() {
  static const std::vector<std::string> ops = [] {
    std::vector<std::string> r;
    const std::string prefix = std::string(kLocusDomain) + ".";
    for (const std::string& key : shape_inference::rules().keys())
      if (key.rfind(prefix, 0) == 0) r.push_back(key.substr(prefix.size()));
    return r;
  }();  // sorted
  return ops;
}

bool is_locus_op(const std::string& op) {
  const auto& ops = locus_ops();
  return std::binary_search(ops.begin(), ops.end(), op);
}

const std::vector<std::string>& microsoft_ops() {
  static const std::vector<std::string> ops = [] {
    std::vector<std::string> r;
    const std::string prefix = std::string(kMicrosoftDomain) + ".";
    for (const std::string& key : shape_inference::rules().keys())
      if (key.rfind(prefix, 0) == 0) r.push_back(key.substr(prefix.size()));
    return r;
  }();  // sorted
  return ops;
}

namespace shape_inference {

namespace {
std::string attr_text(const Attr& a) {
  if (auto s = std::get_if<std::string>(&a)) return *s;
  if (auto v = std::get_if<std::vector<std::string>>(&a)) {
    std::string r;
    for (auto& s : *v) r += (r.empty() ? "" : ", ") + s;
    return r;
  }
  return "";
}
}  // namespace

std::string unsupported_reason(const Node& n) {
  if (n.domain == kLocusDomain) {
    if (!is_locus_op(n.op)) return cat("operator ", n.op, " of domain '", n.domain, "' is not supported");
  } else if (n.domain == kMicrosoftDomain) {
    const auto& ms = microsoft_ops();
    if (!std::binary_search(ms.begin(), ms.end(), n.op))
      return cat("operator ", n.op, " of domain '", n.domain, "' is not supported");
  } else {
    if (!n.domain.empty() && n.domain != "ai.onnx")
      return cat("operator ", n.op, " of domain '", n.domain, "' is not supported");
    if (!is_supported_op(n.op)) return cat("operator ", n.op, " is not supported");
  }
  if (auto it = n.attrs.find("locus.unsupported_attr"); it != n.attrs.end()) {
    std::string what = attr_text(it->second);
    return what.empty() ? std::string("an attribute value is not supported")
                        : cat("attribute ", what, " is not supported");
  }
  if (n.has("locus.training")) return "the training-mode form is not supported";
  if (n.has("locus.indices")) return "the Indices output is not supported";
  return "";
}

}  // namespace shape_inference

namespace {
// "Relu", or "Relu of domain 'com.microsoft'" for a domain other than the default and locus's.
std::string op_label(const Node& n) {
  if (n.domain.empty() || n.domain == "ai.onnx" || n.domain == kLocusDomain) return n.op;
  return cat(n.op, " of domain '", n.domain, "'");
}
}  // namespace

std::vector<std::string> unsupported_nodes(const Graph& g) {
  std::vector<std::string> r;
  for (const Node& n : g.nodes)
    if (!shape_inference::unsupported_reason(n).empty()) r.push_back(cat(op_label(n), " (node '", n.name, "')"));
  return r;
}

std::string unsupported_summary(const Graph& g) {
  struct Group {
    std::string label, first;
    int64_t count = 0;
  };
  std::vector<Group> groups;
  std::map<std::string, size_t> index;
  for (const Node& n : g.nodes) {
    if (shape_inference::unsupported_reason(n).empty()) continue;
    const std::string label = op_label(n);
    auto [it, fresh] = index.emplace(label, groups.size());
    if (fresh) groups.push_back({label, n.name, 0});
    ++groups[it->second].count;
  }
  if (groups.empty()) return "";
  std::string s = "unsupported operators: ";
  for (size_t i = 0; i < groups.size(); ++i) {
    const Group& gr = groups[i];
    s += i ? "; " : "";
    s += gr.count == 1 ? cat(gr.label, " (node '", gr.first, "')")
                       : cat(gr.label, " \u00d7", gr.count, ", first '", gr.first, "'");
  }
  return s;
}

void infer_shapes(Graph& g, const FoldHook& fold) {
  if (std::string bad = unsupported_summary(g); !bad.empty()) throw Unsupported(bad);
  std::vector<bool> keep(g.nodes.size(), true);
  for (size_t idx = 0; idx < g.nodes.size(); ++idx) {
    Node& n = g.nodes[idx];
    std::vector<ValueInfo> in(n.inputs.size());
    std::vector<const Tensor*> consts(n.inputs.size(), nullptr);
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const std::string& v = n.inputs[k];
      if (v.empty()) continue;
      if (const Tensor* t = g.constant(v)) {
        consts[k] = t;
        in[k] = ValueInfo{t->dtype, t->shape, true};
        continue;
      }
      auto it = g.values.find(v);
      LOCUS_CHECK(it != g.values.end() && it->second.known, "node '", n.name, "' (", n.op,
                  "): input '", v, "' has no known shape (not a graph input, a constant or the output "
                  "of an earlier node)");
      in[k] = it->second;
    }
    std::vector<ValueInfo> out = infer_node(n, in, consts);
    for (size_t k = 0; k < n.outputs.size() && k < out.size(); ++k) {
      if (n.outputs[k].empty()) continue;
      out[k].known = true;
      g.values[n.outputs[k]] = out[k];
    }
    if (fold && fold(n, g)) keep[idx] = false;
  }
  g.erase_nodes(keep);
}

int64_t pooled_size(int64_t in, int64_t k, int64_t stride, int64_t pad_begin, int64_t pad_end,
                    int64_t dilation, bool ceil_mode) {
  const int64_t window = (k - 1) * dilation + 1;
  const int64_t span = in + pad_begin + pad_end - window;  // room for the window to slide
  if (span < 0 || stride <= 0) return 0;
  if (!ceil_mode) return span / stride + 1;
  int64_t out = (span + stride - 1) / stride + 1;
  // ONNX (opset 10+ reference, as PyTorch): the last window must start inside the input or the
  // left padding; a window that would start in the right padding or beyond is dropped.
  if ((out - 1) * stride >= in + pad_begin) --out;
  return out;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const std::string& what) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    // align from the right
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da == db || db == 1) out[i] = da;
    else if (da == 1) out[i] = db;
    else fail(what, ": shapes ", shape_str(a), " and ", shape_str(b), " cannot be broadcast");
  }
  return out;
}

bool is_parameter_operand(const Node& n, size_t k) {
  if (k == 0) return false;
  const std::string& op = n.op;
  // quantization parameters (scales, zero points) and QLinearConv's weights and bias
  if (op == "QuantizeLinear" || op == "DequantizeLinear" || op == "QLinearConv" || op == "QLinearGlobalAveragePool" ||
      op == "FusedQLinearInvertedResidual")
    return true;
  if (op == "QLinearMatMul" || op == "QLinearAdd") return k != 3;  // input 3 is the second operand
  if (op == "Conv" && k == 3) return false;  // the fused residual (locus.residual) is data
  if (op == "FusedChain") return k >= 2;  // X and the residual R are data, the stages' W and B parameters
  return op == "Conv" || op == "FusedInvertedResidual" || op == "FusedSEBlock" || op == "BatchNormalization" || op == "Clip" ||
         op == "Reshape" || op == "Gather" || op == "Unsqueeze" || op == "Squeeze" || op == "ConvTranspose" ||
         op == "Slice" || op == "Resize" || op == "Pow" || op == "ReduceMean";
}

}  // namespace locus
