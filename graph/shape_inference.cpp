// infer_node: checks that a node is executable (catalogue op of its domain, supported form),
// then dispatches to the per-op rule. Also the NodeContext helpers every rule uses.
#include <algorithm>
#include <map>

#include "graph/ops.h"
#include "graph/shape_inference_internal.h"

namespace locus {
namespace shape_inference {

std::string NodeContext::prefix() const { return cat("node '", n_.name, "' (", n_.op, "): "); }

std::string NodeContext::input_name(size_t k) const {
  return k < n_.inputs.size() ? n_.inputs[k] : std::string();
}

bool NodeContext::has(size_t k) const { return k < n_.inputs.size() && !n_.inputs[k].empty(); }

void NodeContext::require_inputs(size_t min, size_t max) const {
  for (size_t k = 0; k < min; ++k)
    if (!has(k)) error("input ", k, " is required but missing (", n_.num_inputs(), " given)");
  if (n_.num_inputs() > max) error("takes at most ", max, " inputs, got ", n_.num_inputs());
}

const ValueInfo& NodeContext::info(size_t k) const {
  if (!has(k)) error("input ", k, " is missing");
  if (k >= in_.size() || !in_[k].known) error("input '", n_.inputs[k], "' has no known shape");
  return in_[k];
}

const Tensor* NodeContext::constant(size_t k) const {
  return has(k) && k < consts_.size() ? consts_[k] : nullptr;
}

std::vector<int64_t> NodeContext::constant_ints(size_t k, const char* what) const {
  const Tensor* t = constant(k);
  if (!t) unsupported(what, " input must be constant ('", input_name(k), "' is computed at run time)");
  if (t->dtype != DType::I64 && t->dtype != DType::I32)
    error(what, " input '", input_name(k), "' must be int64, got ", dtype_name(t->dtype));
  if (t->shape.size() > 1)
    error(what, " input '", input_name(k), "' must be 1-D, got shape ", shape_str(t->shape));
  return t->to_i64();
}

void NodeContext::require_f32(size_t k) const {
  DType t = dtype(k);
  if (t != DType::F32)
    unsupported("input '", input_name(k), "' has dtype ", dtype_name(t), "; only float32 is supported");
}

void NodeContext::require_shape_dtype(size_t k) const {
  DType t = dtype(k);
  if (t != DType::F32 && t != DType::I64 && t != DType::I32)
    unsupported("input '", input_name(k), "' has dtype ", dtype_name(t),
                "; only float32, int64 and int32 are supported");
}

void NodeContext::require_data_dtype(size_t k) const {
  DType t = dtype(k);
  if (t != DType::F32 && t != DType::I64 && t != DType::I32 && t != DType::U8 && t != DType::I8)
    unsupported("input '", input_name(k), "' has dtype ", dtype_name(t),
                "; only float32, int64, int32, uint8 and int8 are supported");
}

void NodeContext::require_same_dtype(size_t a, size_t b) const {
  if (dtype(a) != dtype(b))
    error("inputs '", input_name(a), "' (", dtype_name(dtype(a)), ") and '", input_name(b), "' (",
          dtype_name(dtype(b)), ") must have the same dtype");
}

int64_t NodeContext::normalize_axis(int64_t axis, int64_t rank, const char* what, bool inclusive) const {
  int64_t hi = inclusive ? rank : rank - 1;
  if (axis < -rank || axis > hi)
    error(what, " ", axis, " is out of range for rank ", rank, " (valid: ", -rank, "..", hi, ")");
  return axis < 0 ? axis + rank : axis;
}

ValueInfo NodeContext::output(DType t, Shape s) const {
  std::string out = n_.outputs.empty() ? std::string("?") : n_.outputs[0];
  checked_numel(s, cat(prefix(), "output '", out, "'"));
  return ValueInfo{t, std::move(s), true};
}

const RuleRegistry& rules() {
  static const RuleRegistry registry = [] {
    RuleRegistry r("shape inference");
    r.add({"Add", "binary (broadcasting)", infer_binary});
    r.add({"AveragePool", "pool", infer_pool});
    r.add({"BatchNormalization", "batch_norm", infer_batch_norm});
    r.add({"Cast", "cast", infer_cast});
    r.add({"Clip", "activation", infer_activation});
    r.add({"Concat", "concat", infer_concat});
    r.add({"Conv", "conv", infer_conv});
    r.add({"ConvTranspose", "conv_transpose", infer_conv_transpose});
    r.add({"DequantizeLinear", "dequantize_linear", infer_dequantize_linear});
    r.add({"Div", "binary (broadcasting)", infer_binary});
    r.add({"Flatten", "flatten", infer_flatten});
    r.add({op_key(kLocusDomain, "FusedInvertedResidual"), "fused_inverted_residual", infer_fused_inverted_residual});
    r.add({op_key(kLocusDomain, "FusedSEBlock"), "fused_se_block", infer_fused_se_block});
    r.add({op_key(kLocusDomain, "FusedChain"), "fused_chain", infer_fused_chain});
    r.add({op_key(kLocusDomain, "FusedQLinearInvertedResidual"), "fused_qlinear_inverted_residual",
           infer_fused_qlinear_inverted_residual});
    r.add({"Gather", "gather", infer_gather});
    r.add({"Gemm", "gemm", infer_gemm});
    r.add({"GlobalAveragePool", "global_average_pool", infer_global_average_pool});
    r.add({"HardSigmoid", "unary", infer_unary_f32});
    r.add({"HardSwish", "unary", infer_unary_f32});
    r.add({"Identity", "identity", infer_identity});
    r.add({"MatMul", "matmul", infer_matmul});
    r.add({"MaxPool", "pool", infer_pool});
    r.add({"Mul", "binary (broadcasting)", infer_binary});
    r.add({"Pow", "pow (constant exponent)", infer_pow});
    r.add({"QLinearConv", "qlinear_conv", infer_qlinear_conv});
    r.add({"QLinearMatMul", "qlinear_matmul", infer_qlinear_matmul});
    r.add({"QuantizeLinear", "quantize_linear", infer_quantize_linear});
    r.add({op_key(kMicrosoftDomain, "QLinearAdd"), "qlinear_add (broadcasting)", infer_qlinear_add});
    r.add({op_key(kMicrosoftDomain, "QLinearGlobalAveragePool"), "qlinear_global_average_pool",
           infer_qlinear_global_average_pool});
    r.add({"ReduceMean", "reduce_mean", infer_reduce_mean});
    r.add({"Relu", "activation", infer_activation});
    r.add({"Reshape", "reshape", infer_reshape});
    r.add({"Resize", "resize", infer_resize});
    r.add({"Shape", "shape", infer_shape});
    r.add({"Sigmoid", "unary", infer_unary_f32});
    r.add({"Slice", "slice", infer_slice});
    r.add({"Softmax", "softmax", infer_softmax});
    r.add({"Sqrt", "unary", infer_unary_f32});
    r.add({"Squeeze", "squeeze", infer_squeeze});
    r.add({"Sub", "binary (broadcasting)", infer_binary});
    r.add({"Transpose", "transpose", infer_transpose});
    r.add({"Unsqueeze", "unsqueeze", infer_unsqueeze});
    return r;
  }();
  return registry;
}

}  // namespace shape_inference

std::vector<ValueInfo> infer_node(Node& n, const std::vector<ValueInfo>& in,
                                  const std::vector<const Tensor*>& consts) {
  using namespace shape_inference;
  NodeContext c(n, in, consts);
  if (std::string why = unsupported_reason(n); !why.empty()) c.unsupported(why);
  const RuleRegistry::Entry* rule = rules().find(n);
  if (!rule) c.unsupported("operator ", n.op, " has no shape inference");
  if (n.outputs.empty() || n.outputs[0].empty()) c.error("has no output");
  // Every catalogue op has one output in its inference form (BatchNormalization's running
  // statistics, MaxPool's Indices and Dropout's mask are training / unsupported forms).
  for (size_t k = 1; k < n.outputs.size(); ++k)
    if (!n.outputs[k].empty())
      c.unsupported("output ", k, " ('", n.outputs[k], "') is not supported (only the first output is)");
  return {rule->fn(c)};
}

}  // namespace locus
