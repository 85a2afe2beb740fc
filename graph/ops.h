// The operator catalogue: which ops the runtime executes, in which canonical form, and their shape
// inference.
//
// The ONNX importer rewrites every opset 1..17 variant it accepts into one canonical form, so that nothing after
// the importer needs to know the opset:
//   Conv(X, W, [B])            attrs strides, pads[4] (top, left, bottom, right), dilations, group,
//                              kernel_shape; after infer_shapes auto_pad is resolved into pads and
//                              removed. locus attrs: locus.activation ("relu"|"clip"|"hardsigmoid"|"hardswish"|
//                              "sigmoid"), locus.activation_min, locus.activation_max (clip),
//                              locus.activation_alpha, locus.activation_beta (hardsigmoid) (set by the
//                              fuse-activation pass). 2-D only (4-D X).
//                              locus.residual = 1 (set by the fuse-residual pass, native backend): a 4th
//                              input R [N, OC, OH, OW] (data, not a parameter; B may be "") and
//                              Y = act(conv(X, W) + B + R): R is added in float after the convolution's
//                              sum and before the activation, as the unfused Conv -> Add -> act would.
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
// Ops of mobile CNNs (MobileNetV3, PP-OCR; graph/shape_inference_mobile.cpp):
//   HardSigmoid(X) attrs alpha, beta (written explicitly).   HardSwish(X).   Sigmoid(X).
//   Cast(X) attr to (an ONNX TensorProto dtype among float32, float64, int64, int32, int8, uint8, bool).
//   Slice(X, starts, ends, [axes], [steps]) (constant; the opset < 10 attribute form becomes constant
//     inputs); shape inference adds locus.starts and locus.steps (one per axis of X: the first index
//     and the step, steps 1 on axes not sliced), the output shape gives the counts.
//   Sqrt(X).   Pow(X, Y) Y constant (float32 / int64 / int32), broadcasting to X's shape.
//   ReduceMean(X, [axes]) attrs axes (sorted, >= 0; the opset 18 input is read into it; empty:
//     nothing reduced, as with noop_with_empty_axes; absent: every axis), keepdims (0 | 1).
//   Transpose(X) attr perm (explicit, entries >= 0; default: the axes reversed).
//   Resize(X, [roi], [scales], [sizes]) (constant scales or sizes; opset 10's Resize(X, scales)
//     becomes this form with coordinate_transformation_mode asymmetric and nearest_mode floor).
//     attrs mode ("nearest" | "linear"), coordinate_transformation_mode ("half_pixel",
//     "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nearest"), nearest_mode
//     ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"), all written explicitly, and
//     locus.scales (floats, one per axis: the scale of the coordinate transformation, out/in when
//     sizes are given). Linear interpolates along every axis whose size changes.
//   ConvTranspose(X, W, [B]) W [C, OC/group, KH, KW]; attrs kernel_shape, strides, dilations,
//     pads[4], output_padding[2], group, all explicit after infer_shapes (auto_pad and output_shape
//     are resolved into pads). 2-D only.
// Quantized ops (graph/shape_inference_quant.cpp; uint8 / int8 tensors, scales float32 constants > 0,
// zero points constants of the quantized tensor's type, docs/int8.md):
//   QuantizeLinear(X, y_scale, [y_zero_point]) -> u8 (no zero point) or the zero point's type;
//   DequantizeLinear(X, x_scale, [x_zero_point]) -> f32 (X u8, s8 or s32 with zero point 0); both
//     per tensor or per axis (attr axis, normalised to >= 0, only for a scale of more than one value).
//   QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp[, B]) Conv's attributes (canonical
//     as Conv's); w_scale / w_zp per tensor or per output channel [OC]; B int32 [OC]; y has x's type.
//   QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp) a [..., M, K], b [..., K, N]
//     (batch dims broadcast), b_scale / b_zp per tensor or per column [N]; y has a's type.
//   com.microsoft QLinearAdd(A, A_scale, [A_zp], B, B_scale, [B_zp], C_scale, [C_zp]) broadcasting.
//   com.microsoft QLinearGlobalAveragePool(X, x_scale, x_zp, y_scale, y_zp) attr channels_last (0|1).
// Reshape, Flatten, Identity, Squeeze and Unsqueeze also move uint8 / int8 tensors.
// Constant nodes become Graph::constants in the importer.
//
// Ops of the "locus" domain (kLocusDomain) are created by passes, never by the importer's
// canonicalisation (a model may still name them; they are then checked like any other node):
//   FusedInvertedResidual(X, W_expand, B_expand, W_dw, B_dw, W_project, B_project[, W_dw2, B_dw2])
//     (graph/passes/fuse_inverted_residual.cpp) One MobileNetV2 block,
//       Y = act_p(project(act_d(dw(act_e(expand(X)))))) [+ X],
//     fixed input positions, "" when absent (the pass writes all seven; read them with
//     Node::input(k)): 0 X [N,C,H,W]; 1 W_expand [E,C,1,1]; 2 B_expand [E];
//     3 W_dw [E,1,KH,KW] (required); 4 B_dw [E]; 5 W_project [OC,E,1,1]; 6 B_project [OC];
//     optionally 7 W_dw2 [E,1,KH2,KW2] and 8 B_dw2 [E]: a second depthwise stage applied to the
//     first one's output (the dw(Kx1) -> dw(1xK) pair of a 4-way CP decomposition), then
//     Y = act_p(project(act_d2(dw2(act_d(dw(act_e(expand(X)))))))) [+ X].
//     W_expand absent: no expand stage, E = C (B_expand must be absent too). W_project absent: no
//     project stage, Y has E channels (B_project must be absent too). Absent biases are zero.
//     The 1x1 stages have stride 1, no pads, group 1; the dw stage has group E, dilation 1.
//     attrs (shape inference writes every one back explicitly):
//       expand_activation, dw_activation, project_activation: "none" | "relu" | "clip"
//         (a stage that is absent must say "none");
//       expand_activation_min/_max, dw_activation_min/_max, project_activation_min/_max: float,
//         used only for "clip", -inf / +inf for an omitted bound (as Conv's locus.activation_*);
//       dw_strides [SH, SW] (>= 1), dw_pads [top, left, bottom, right] (>= 0);
//       with W_dw2: dw2_activation (+ _min/_max), dw2_strides, dw2_pads, the same for the second
//         stage (without W_dw2 they must be absent or dw2_activation "none");
//       residual: 0 | 1. 1: the Add of the block input was fused, Y = act_p(project(...)) + X;
//         needs the project stage and Y's shape equal to X's;
//       fused_nodes: the names of the original nodes, joined by ", " (for explanations).
//     Output Y [N, OC (or E without project), OH, OW], OH/OW as the (last) dw conv's (dilation 1).
//   FusedSEBlock(X, W_expand, B_expand, W_dw, B_dw, W_project, B_project, W_squeeze, B_squeeze,
//     W_excite, B_excite)  (graph/passes/fuse_inverted_residual.cpp) One MobileNetV3 block with
//     squeeze-excite between the depthwise and the project conv:
//       D = act_d(dw(act_e(expand(X))));  g = act_g(excite(act_s(squeeze(mean_hw(D)))))  [N, E, 1, 1];
//       Y = act_p(project(D * g)) [+ X].
//     Inputs 0..6 as FusedInvertedResidual's (W_dw and W_project required, W_expand optional);
//     7 W_squeeze [S,E,1,1], 8 B_squeeze [S] (optional), 9 W_excite [E,S,1,1], 10 B_excite [E]
//     (optional). mean_hw is GlobalAveragePool (ReduceMean over H, W with keepdims is the same op).
//     attrs (written back explicitly): expand_/dw_/project_/squeeze_/excite_activation: "none" |
//       "relu" | "clip" (_min/_max as above) | "hardsigmoid" (_alpha/_beta) | "hardswish" |
//       "sigmoid" | "hardswish_ops": the exporters' decomposition Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6),
//       evaluated as those four float operations; dw_strides, dw_pads; residual 0 | 1 (as above);
//       fused_nodes. The reference backend evaluates it by composition of the reference kernels of
//       the nodes it replaced (so a fused graph gives the unfused numbers exactly).
//   FusedChain(X, R, W_0, B_0, W_1, B_1, ...)  (graph/passes/fuse_chain.cpp) A chain of n stages,
//     each a 1x1 conv (W_s [OC,C,1,1], stride 1, no pads, group 1) or a depthwise conv (W_s
//     [C,1,KH,KW], group C, dilation 1), every intermediate read only by the next stage:
//       Y = out_act(act_{n-1}(stage_{n-1}(... act_0(stage_0(X)))) [+ R]),
//     e.g. a CP-decomposed ResNet-50 bottleneck (1x1 reduce -> 1x1 U -> dw -> 1x1 V -> 1x1 expand,
//     + the shortcut, Relu). Inputs: 0 X [N,C,H,W]; 1 R ("" for none) with Y's shape; 2 + 2s W_s,
//     3 + 2s B_s [OC_s] ("" for zero). attrs: kinds [n] (0 1x1, 1 depthwise); strides [2n] (SH, SW
//     per stage); pads [4n] (top, left, bottom, right per stage); activations [n] strings
//     "none" | "relu" | "clip", activation_min / activation_max [n] floats (clip bounds, +-inf when
//     omitted); output_activation "none" | "relu" (after the residual Add); fused_nodes: the names
//     of the original nodes, joined by ", ". Output Y [N, OC_{n-1}, OH, OW].
//   FusedQLinearInvertedResidual(X, <expand>, <dw>, <project>, <residual>)  (same pass) The int8 block
//     of a quantized MobileNetV2, QLinearConv 1x1 expand -> depthwise QLinearConv -> QLinearConv 1x1
//     project [-> com.microsoft QLinearAdd of X], Y = the last stage's output. Fixed input positions
//     (graph/fused_qlinear.h), "" when absent: 0 X (uint8 or int8) [N,C,H,W]; each stage is the
//     QLinearConv's own inputs 1..8 (x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
//     y_zero_point, B): expand at 1..8 (w [E,C,1,1]), dw at 9..16 (w [E,1,KH,KW], required),
//     project at 17..24 (w [OC,E,1,1]); the residual QLinearAdd's inputs 1, 2, 4, 5, 6, 7 (A_scale,
//     A_zero_point, B_scale, B_zero_point, C_scale, C_zero_point) at 25..30. A stage is absent
//     when its w is (then all its inputs are ""); the pass always fuses at least one 1x1 stage. Every stage
//     reads the scale and zero point its QLinearConv read (they need not be the same constants as
//     the previous stage's output ones), so the node means exactly the chain it replaced.
//     The expand stage may instead be a dense KxK QLinearConv (w [E,C,KH,KW], group 1, dilation 1):
//     the stem conv in front of a block without a 1x1 expand (MobileNetV2's first).
//     attrs (written back by shape inference): dw_strides [SH, SW], dw_pads [t, l, b, r] (the
//       depthwise conv's; dilation 1, group E; the project stage stride 1, no pads, group 1);
//       expand_strides, expand_pads (with the expand stage; 1 / 0 for a 1x1 one);
//       residual 0 | 1 (1: the QLinearAdd was fused; needs the project stage and Y's shape = X's);
//       residual_x_first 0 | 1 (1: X is the QLinearAdd's operand A and the project output B, else
//       the other way round: its rounding is not symmetric); fused_nodes as above.
//     Shape inference infers each stage as its QLinearConv and the add as its QLinearAdd (their
//     checks apply); Y has X's type. No activation attributes: a quantized model's Relu / Relu6 is
//     the output quantization's range.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace locus {

// Op types (default domain) that the runtime can execute, sorted.
const std::vector<std::string>& supported_ops();
bool is_supported_op(const std::string& op);

// The domain of the ops passes create, and its op types (sorted). A node is in the catalogue if it
// is a supported_ops() op of the default domain ("" or "ai.onnx") or a locus_ops() op of kLocusDomain.
inline constexpr const char* kLocusDomain = "locus";
const std::vector<std::string>& locus_ops();
bool is_locus_op(const std::string& op);

// ONNX Runtime's contrib domain: the runtime executes its QLinearAdd and QLinearGlobalAveragePool
// (the ops of this domain in the catalogue, sorted, without the prefix).
inline constexpr const char* kMicrosoftDomain = "com.microsoft";
const std::vector<std::string>& microsoft_ops();

// Names (with node names) of every node whose op is not supported, e.g. "Foo (node 'n3')", or
// "Relu of domain 'com.microsoft' (node 'n4')" for an op of a domain the runtime does not run.
// Empty if all are supported.
std::vector<std::string> unsupported_nodes(const Graph& g);
// One line naming each distinct unsupported op once, with its count and first node, in order of
// first appearance: "unsupported operators: QLinearConv \u00d752, first 'Conv_0_quant'; Foo (node
// 'f1')". Empty if all are supported.
std::string unsupported_summary(const Graph& g);

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

// True if input `k` of `n` is a parameter rather than data: Conv, ConvTranspose (and FusedInvertedResidual) weights and bias,
// BatchNormalization statistics, Clip bounds, shape/axes/indices operands. Backends may require
// parameters to be constants; a session can bind graph inputs used only this way as constants.
bool is_parameter_operand(const Node& n, size_t k);

// Multidirectional broadcast of two shapes; throws Error naming `what` if incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const std::string& what);

// Resize along one axis: for each output index o, the input index (nearest: i0; linear: y = x[i0] *
// (1 - w) + x[i1] * w), from the node's canonical attributes (mode, coordinate_transformation_mode,
// nearest_mode) and the axis' scale (locus.scales). Shared by the reference and native kernels; the
// coordinates are computed in float, as ONNX Runtime does.
struct ResizeTaps {
  std::vector<int64_t> i0, i1;
  std::vector<float> w;  // weight of i1 (linear), 0 for nearest
};
ResizeTaps resize_taps(const Node& n, int64_t in, int64_t out, float scale);

// ONNX TensorProto data type number -> DType (Undefined if outside the catalogue's dtypes).
DType dtype_from_onnx(int64_t onnx_type);

}  // namespace locus
