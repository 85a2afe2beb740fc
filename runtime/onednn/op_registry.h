// The oneDNN backend's op registry: one entry per op it runs, each naming the oneDNN primitive that
// runs it and holding its builder. Each op family registers its entries from its own file
// (runtime/onednn/ops_*.cpp); the list of families is onednn_ops() in op_registry.cpp. Adding an op
// is one entry in its family's file, or a new file and one line in onednn_ops().
//
// A builder that cannot run a particular node (non-constant weights, a form oneDNN cannot express)
// throws Unsupported naming why: that is the registry's "why not" for the node.
#pragma once

#include <functional>
#include <string>

#include "graph/op_registry.h"
#include "runtime/onednn/onednn_context.h"

namespace locus::onednn {

using Builder = std::function<void(OnednnContext&, const Node&)>;
using OnednnOp = OpEntry<Builder>;
using OnednnOpRegistry = OpRegistry<Builder>;

// The registry, filled once by the families below.
const OnednnOpRegistry& onednn_ops();

// One function per family file.
void register_conv_ops(OnednnOpRegistry& r);     // ops_conv.cpp
void register_eltwise_ops(OnednnOpRegistry& r);  // ops_eltwise.cpp
void register_pool_ops(OnednnOpRegistry& r);     // ops_pool.cpp
void register_binary_ops(OnednnOpRegistry& r);   // ops_binary.cpp
void register_tensor_ops(OnednnOpRegistry& r);   // ops_tensor.cpp
void register_linear_ops(OnednnOpRegistry& r);   // ops_linear.cpp
void register_quant_ops(OnednnOpRegistry& r);    // ops_quant.cpp
void register_resample_ops(OnednnOpRegistry& r); // ops_resample.cpp
void register_reduce_ops(OnednnOpRegistry& r);   // ops_reduce.cpp

// Appends a node's fused activation (locus.activation: relu, clip, hardsigmoid, hardswish, sigmoid)
// as eltwise post-ops (ops_conv.cpp).
void append_activation(dn::post_ops& po, const Node& n);

// --- the pw -> dw post-op fusion of "onednn-dwfused" (ops_conv.cpp) ---

// Whether pw (a 1x1 conv) and dw (its only reader) are a pair post_ops::append_dw can express:
// dw a 3x3 depthwise conv, channel multiplier 1, pads 1, stride 1 or 2, constant weights.
bool dw_fusable_pair(const Graph& g, const Node& pw, const Node& dw);
// pw with dw as its depthwise post-op: one primitive writing dw's output. Returns the name of the
// implementation oneDNN picked, or "" and `why` if oneDNN refuses (nothing is recorded then).
std::string build_fused_conv(OnednnContext& c, const Node& pw, const Node& dw, std::string& why);

}  // namespace locus::onednn
