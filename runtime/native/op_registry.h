// The native backend's op registry: one entry per op it runs, each with the name of its
// implementation and a builder. Each op family registers its entries from its own file
// (runtime/native/ops_*.cpp); the list of families is native_ops() in op_registry.cpp. Adding an
// op is one entry in its family's file, or a new file and one line in native_ops().
//
// A builder that cannot run a particular node (non-constant weights, an attribute it lacks) throws
// Unsupported naming why: that is the registry's "why not" for the node.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/op_registry.h"
#include "runtime/native/native_context.h"

namespace locus::kernels {
struct Conv2dShape;
}

namespace locus::native {

using NativeBuilder = std::function<Step(NativeContext&, const Node&)>;
// op: "Conv", or "locus.FusedInvertedResidual" for a locus-domain op; implementation: what runs it,
// e.g. "conv2d_nhwc"; fn: the builder (graph/op_registry.h)
using NativeOp = OpEntry<NativeBuilder>;
using NativeOpRegistry = OpRegistry<NativeBuilder>;

// "Conv" for the default domain, "locus.FusedInvertedResidual" for locus's (graph/op_registry.h).
using locus::op_key;

// The registry, filled once by the families below.
const NativeOpRegistry& native_ops();

// One function per family file.
void register_conv_ops(NativeOpRegistry& r);         // ops_conv.cpp
void register_elementwise_ops(NativeOpRegistry& r);  // ops_elementwise.cpp
void register_pool_ops(NativeOpRegistry& r);         // ops_pool.cpp
void register_tensor_ops(NativeOpRegistry& r);       // ops_tensor.cpp
void register_linear_ops(NativeOpRegistry& r);       // ops_linear.cpp
void register_quant_ops(NativeOpRegistry& r);        // ops_quant.cpp
void register_qfused_ops(NativeOpRegistry& r);       // ops_qfused.cpp (the fused int8 block)
void register_resample_ops(NativeOpRegistry& r);     // ops_resample.cpp
void register_reduce_ops(NativeOpRegistry& r);       // ops_reduce.cpp
void register_chain_ops(NativeOpRegistry& r);        // ops_chain.cpp (the fused chain)

// Whether the native kernel of `op` (an op key) reads or writes runtime values of dtype t: float32
// for every op; uint8 / int8 for the quantized ops and the data movement that carries their values
// (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Concat); op "" (the graph's inputs, copied in at
// the boundary): float32, uint8, int8. Each registry entry says whether it takes them (OpEntry::byte_values).
bool handles_dtype(const std::string& op, DType t);

// The geometry of a 2-D Conv / QLinearConv node n (attributes strides, pads, dilations, group) with
// input x [N,C,H,W], output y [N,OC,OH,OW] and weights w [OC,C/G,KH,KW] (ops_conv.cpp).
kernels::Conv2dShape conv2d_shape_of(const Node& n, const Shape& x, const Shape& y, const Shape& w);

// The constant weights (input wk) and bias (input bk; nullptr when absent) of a Conv / QLinearConv
// node n, which the builders pack once: Unsupported naming the node when either is a runtime value
// (ops_conv.cpp).
struct ConvConstants {
  const Tensor* w;
  const Tensor* b;
};
ConvConstants conv_constants(NativeContext& c, const Node& n, size_t wk, size_t bk);

}  // namespace locus::native
