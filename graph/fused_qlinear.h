// The stages of a locus.FusedQLinearInvertedResidual node (contract in graph/ops.h) as the ordinary
// quantized nodes they replace: shape inference checks the fused node by inferring them, and the
// reference evaluator runs it by evaluating them, so a fused int8 graph is the unfused one by
// construction.
#pragma once

#include <string>

#include "graph/ir.h"

namespace locus::fused_qlinear {

// Input positions: X, then each stage's QLinearConv inputs 1..8 (x_scale, x_zero_point, w, w_scale,
// w_zero_point, y_scale, y_zero_point, B), then the residual QLinearAdd's inputs 1, 2, 4, 5, 6, 7.
inline constexpr size_t kX = 0;
inline constexpr size_t kExpand = 1, kDw = 9, kProject = 17;  // a stage's x_scale; its w at + 2
inline constexpr size_t kStageInputs = 8;
inline constexpr size_t kAdd = 25;  // A_scale, A_zero_point, B_scale, B_zero_point, C_scale, C_zero_point
inline constexpr size_t kInputs = 31;

// The first input of stage "expand", "dw" or "project".
size_t stage_base(const std::string& stage);

// The QLinearConv of one stage of fused node f, reading value `x` and writing `y`, with its
// attributes: 1x1 stages stride 1, no pads, group 1; the depthwise stage f's dw_strides / dw_pads
// (defaults 1 / 0), dilation 1, group `group` (its weight's output channels). kernel_shape from
// the weight's shape `w`.
Node stage_node(const Node& f, const std::string& stage, const std::string& x, const std::string& y, const Shape& w,
                int64_t group);

// Whether f's expand stage (weight shape w) is a KxK conv rather than a 1x1 one: a kernel above 1x1,
// or expand_strides / expand_pads other than 1 / 0 (MobileNetV2's stem in front of its first block).
bool expand_is_conv(const Node& f, const Shape& w);

// The residual QLinearAdd of f: (A, B) = (X, P) when f's residual_x_first is 1, else (P, X).
Node add_node(const Node& f, const std::string& x, const std::string& p, const std::string& y);

}  // namespace locus::fused_qlinear
