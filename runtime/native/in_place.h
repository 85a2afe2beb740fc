// In-place residual convolutions (native backend): which fused-residual 1x1 convs write their output
// over their residual's memory, decided on the graph before the activation arena is planned.
//
// A conv with a fused residual Add (locus.residual: out = post_act(conv(x) + bias + r)) reads r and
// writes out, two activations of the output's size. When r is read by nothing after the conv, out
// can take r's memory: the GEMM then starts from r in place and adds the conv to it
// (kernels/native/conv2d_nhwc.h). Each output line is then fetched once and written once, instead of
// a line of r fetched, a fresh line of out fetched for the write and written back. ResNet-50's
// bottleneck expansions (3 per stage at 56x56: 3.2 MB each) are such convs.
//
// Matches: Conv, locus.residual, a 1x1 unpadded stride-1 one-group kernel (conv_can_write_over_
// residual), float32 output and residual of the same shape, the residual a runtime value that is not
// the conv's input, not a graph input or output, and read last by this conv; the output not a graph
// output. A residual that is itself written over an earlier value shares that value's memory: the
// chain resolves to its root.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "runtime/memory_planner.h"

namespace locus::native {

// For each conv that writes over its residual: output value -> the value whose memory it takes
// (the residual, or the root the residual itself shares). `requests` are value_lifetimes(g).
std::map<std::string, std::string> in_place_residuals(const Graph& g, const std::vector<BufferRequest>& requests);

// Applies the aliases to the requests before planning: each root lives until the last reader of
// every value sharing it, and each aliased value asks for no memory of its own (bytes 0).
void apply_in_place(const std::map<std::string, std::string>& aliases, std::vector<BufferRequest>& requests);

}  // namespace locus::native
