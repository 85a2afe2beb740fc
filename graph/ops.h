// The operator catalogue: which ops the runtime executes, in which canonical form, and their shape
// inference.
//
// The ONNX importer rewrites every opset 1..17 variant it accepts into one canonical form, so that nothing after
// the importer needs to know the opset:
//   Conv(X, W, [B])            attrs strides, pads[4] (top, left, bottom, right), dilations, group,
//                              kernel_shape; after infer_shapes auto_pad is resolved into pads and
//                              removed. locus attrs: locus.activation ("relu"|"clip"), locus.activation_min,
//                              locus.activation_max (set by the fuse-activation pass). 2-D only (4-D X).
//   BatchNormalization(X, scale, B, mean, var)  attr epsilon; inference form only, one output.
//   Relu(X)   Clip(X, [min], [max])  (attribute form of opset < 11 becomes constant inputs)
//   Add/Sub/Mul/Div(A, B)      multidirectional (numpy) broadcasting.
//   GlobalAveragePool(X)  AveragePool(X)  MaxPool(X)  attrs kernel_shape, strides, pads[4],
//                              dilations (MaxPool), ceil_mode, count_include_pad (AveragePool).
//   Flatten(X) attr axis (normalised to >= 0).   Reshape(X, shape) attr allowzero.
//   Gemm(A, B, [C]) attrs alpha, beta, transA, transB.   MatMul(A, B) numpy semantics.
//   Concat(inputs...) attr axis (>= 0).   Identity(X).   Dropout(X) -> Identity (importer).
//   Softmax(X) attrs axis (>= 0), legacy (1: opset < 13, coerce to 2-D at axis).
//   Shape(X) attrs start, end.   Gather(X, indices) attr axis (>= 0).
//   Unsqueeze(X, axes)   Squeeze(X, [axes])  (the opset < 13 attribute forms become constant inputs)
// Constant nodes become Graph::constants in the importer.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace locus {

// Op types (default domain) that the runtime can execute, sorted.
const std::vector<std::string>& supported_ops();
bool is_supported_op(const std::string& op);

// Names (with node names) of every node whose op is not supported, e.g. "Foo (node 'n3')".
// Empty if all are supported.
std::vector<std::string> unsupported_nodes(const Graph& g);

// Infers dtype and shape of every node output and stores them in g.values; resolves auto_pad into
// explicit pads; normalises negative axes. Requires g.values to hold the graph inputs' info and the
// nodes to be topologically sorted. Throws Unsupported for unsupported ops / forms (all unsupported
// op names at once), Error for inconsistent models (shape mismatch, bad attribute, absurd sizes).
//
// `fold`, if given, is called after each node's outputs are inferred; if it returns true it has
// replaced the node's outputs by constants and the node is removed. This lets shape-computing
// subgraphs (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) hand later nodes constant inputs.
using FoldHook = std::function<bool(const Node&, Graph&)>;
void infer_shapes(Graph& g, const FoldHook& fold = nullptr);

// Shape inference for one node given its input infos (constants given in `consts`, nullptr where
// the input is not constant). Returns output infos. May normalise the node's attributes.
std::vector<ValueInfo> infer_node(Node& n, const std::vector<ValueInfo>& in,
                                  const std::vector<const Tensor*>& consts);

// Output spatial size of a window op along one axis (floor or ceil mode).
int64_t pooled_size(int64_t in, int64_t k, int64_t stride, int64_t pad_begin, int64_t pad_end,
                    int64_t dilation, bool ceil_mode);

// True if input `k` of `n` is a parameter rather than data: Conv weights and bias,
// BatchNormalization statistics, Clip bounds, shape/axes/indices operands. Backends may require
// parameters to be constants; a session can bind graph inputs used only this way as constants.
bool is_parameter_operand(const Node& n, size_t k);

// Multidirectional broadcast of two shapes; throws Error naming `what` if incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const std::string& what);

}  // namespace locus
