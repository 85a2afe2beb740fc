// Private to the shape-inference translation units (graph/ops.cpp, graph/shape_inference*.cpp):
// the per-node context that reads inputs and attributes and reports errors naming the node, and the
// per-op inference functions. Not part of the public IR interface.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "graph/op_registry.h"

namespace locus::shape_inference {

// Why a node cannot be executed at all ("" if its op and form are in the catalogue): an op outside
// the catalogue, another domain, or an importer marker attribute (locus.unsupported_attr,
// locus.training, locus.indices).
std::string unsupported_reason(const Node& n);

class NodeContext {
 public:
  NodeContext(Node& n, const std::vector<ValueInfo>& in, const std::vector<const Tensor*>& consts)
      : n_(n), in_(in), consts_(consts) {}

  Node& node() { return n_; }
  const Node& node() const { return n_; }

  // Error / Unsupported whose message starts with "node 'name' (Op): ".
  template <class... A>
  [[noreturn]] void error(const A&... a) const {
    throw Error(cat(prefix(), a...));
  }
  template <class... A>
  [[noreturn]] void unsupported(const A&... a) const {
    throw Unsupported(cat(prefix(), a...));
  }

  // Input k is given (not omitted).
  bool has(size_t k) const;
  // Checks that inputs [0, min) are present and nothing beyond max is.
  void require_inputs(size_t min, size_t max) const;
  // Info of a present input (Error if absent or unknown).
  const ValueInfo& info(size_t k) const;
  const Shape& shape(size_t k) const { return info(k).shape; }
  int64_t rank(size_t k) const { return int64_t(shape(k).size()); }
  DType dtype(size_t k) const { return info(k).dtype; }
  // Constant value of input k, or nullptr.
  const Tensor* constant(size_t k) const;
  // Constant input k as int64 values; Unsupported "<what> input must be constant" if it is not.
  std::vector<int64_t> constant_ints(size_t k, const char* what) const;

  // Compute ops: input k must be float32 (Unsupported naming the dtype otherwise).
  void require_f32(size_t k) const;
  // Shape-manipulation ops: float32, int64 or int32.
  void require_shape_dtype(size_t k) const;
  // Data-movement ops (Identity, Flatten, Reshape, (Un)Squeeze): those and uint8 / int8 (quantized
  // tensors).
  void require_data_dtype(size_t k) const;
  // Inputs a and b must have the same dtype (Error otherwise).
  void require_same_dtype(size_t a, size_t b) const;

  // Normalises an axis in [-rank, rank) (or [-rank, rank] if inclusive) to [0, rank).
  int64_t normalize_axis(int64_t axis, int64_t rank, const char* what, bool inclusive = false) const;

  // Output info; the shape goes through checked_numel so absurd sizes are refused.
  ValueInfo output(DType t, Shape s) const;

  std::string input_name(size_t k) const;

 private:
  std::string prefix() const;
  Node& n_;
  const std::vector<ValueInfo>& in_;
  const std::vector<const Tensor*>& consts_;
};

// Compute ops (graph/shape_inference_nn.cpp).
// An ints attribute of exactly `size` entries, each in [lo, kMaxTensorElements] (else c.error).
std::vector<int64_t> window_attr(NodeContext& c, const char* name, std::vector<int64_t> def, size_t size,
                                 int64_t lo);

ValueInfo infer_conv(NodeContext& c);
// Conv's window (strides, dilations, pads incl. auto_pad), written back; returns {OH, OW}.
std::vector<int64_t> conv_window(NodeContext& c, const Shape& x, const std::vector<int64_t>& kernel);
ValueInfo infer_pool(NodeContext& c);  // MaxPool, AveragePool
ValueInfo infer_global_average_pool(NodeContext& c);
ValueInfo infer_batch_norm(NodeContext& c);
ValueInfo infer_activation(NodeContext& c);  // Relu, Clip
ValueInfo infer_softmax(NodeContext& c);
ValueInfo infer_gemm(NodeContext& c);
ValueInfo infer_matmul(NodeContext& c);

// Shape-manipulation and elementwise ops (graph/shape_inference_tensor.cpp).
ValueInfo infer_binary(NodeContext& c);  // Add, Sub, Mul, Div
ValueInfo infer_identity(NodeContext& c);
ValueInfo infer_flatten(NodeContext& c);
ValueInfo infer_reshape(NodeContext& c);
ValueInfo infer_concat(NodeContext& c);
ValueInfo infer_shape(NodeContext& c);
ValueInfo infer_gather(NodeContext& c);
ValueInfo infer_unsqueeze(NodeContext& c);
ValueInfo infer_squeeze(NodeContext& c);

// Quantized ops (graph/shape_inference_quant.cpp): QuantizeLinear, DequantizeLinear, QLinearConv,
// QLinearMatMul, com.microsoft.QLinearAdd, com.microsoft.QLinearGlobalAveragePool.
ValueInfo infer_quantize_linear(NodeContext& c);
ValueInfo infer_dequantize_linear(NodeContext& c);
ValueInfo infer_qlinear_conv(NodeContext& c);
ValueInfo infer_qlinear_matmul(NodeContext& c);
ValueInfo infer_qlinear_add(NodeContext& c);
ValueInfo infer_qlinear_global_average_pool(NodeContext& c);

// Ops of mobile CNNs (graph/shape_inference_mobile.cpp).
ValueInfo infer_unary_f32(NodeContext& c);  // HardSigmoid, HardSwish, Sigmoid
ValueInfo infer_cast(NodeContext& c);
ValueInfo infer_slice(NodeContext& c);
ValueInfo infer_resize(NodeContext& c);
ValueInfo infer_transpose(NodeContext& c);
ValueInfo infer_pow(NodeContext& c);
ValueInfo infer_reduce_mean(NodeContext& c);
ValueInfo infer_conv_transpose(NodeContext& c);

// Ops of the locus domain (graph/shape_inference_fused.cpp).
ValueInfo infer_fused_inverted_residual(NodeContext& c);
ValueInfo infer_fused_se_block(NodeContext& c);
ValueInfo infer_fused_qlinear_inverted_residual(NodeContext& c);
ValueInfo infer_fused_chain(NodeContext& c);  // graph/shape_inference_chain.cpp

// The shape rule of each catalogue op, by op key ("Conv", "locus.FusedInvertedResidual"): the
// catalogue itself (supported_ops() and locus_ops() in graph/ops.h list its keys).
using Rule = ValueInfo (*)(NodeContext&);
using RuleRegistry = OpRegistry<Rule>;
const RuleRegistry& rules();

}  // namespace locus::shape_inference
