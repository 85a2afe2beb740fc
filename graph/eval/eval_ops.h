// The IR evaluator (graph/eval, namespace locus::eval): reference kernels, the plainest possible
// implementation of every catalogue op (graph/ops.h), on logical row-major (NCHW) tensors, accumulating in double. They are the numerical yardstick for the
// optimised kernels and for whole networks (the `reference` backend), and constant folding uses them
// to evaluate nodes whose inputs are all constant. Not fast, never used on the native run path.
#pragma once

#include <vector>

#include "graph/ir.h"
#include "graph/op_registry.h"

namespace locus::eval {

// The evaluator's op registry: one entry per op key (the domain-qualified op: "Conv",
// "locus.FusedInvertedResidual"), naming the reference kernel that evaluates it. Each family file
// (eval_nn.cpp, eval_tensor.cpp, eval_fused.cpp) registers its own entries; the reference backend
// and constant folding run exactly what it lists, and decline anything else with its why_not.
using Kernel = void (*)(const Node& n, const std::vector<const Tensor*>& inputs, Tensor& y);
using EvalRegistry = OpRegistry<Kernel>;
const EvalRegistry& eval_ops();

// Evaluate one node (in canonical form, after infer_shapes) on the given inputs (nullptr for an
// omitted optional input). F32 for every op; I64/I32 too for the shape-manipulation ops used in
// folding (Shape, Gather, Unsqueeze, Squeeze, Concat, Reshape, Flatten, Identity, Add, Sub, Mul, Div).
// Locus-domain ops (FusedInvertedResidual) evaluate as the composition of the ops they replace.
// Throws Unsupported for anything else, naming the op and its domain.
std::vector<Tensor> evaluate(const Node& n, const std::vector<const Tensor*>& inputs);

}  // namespace locus::eval
