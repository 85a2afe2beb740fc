// Private to the IR evaluator (the reference kernels): one function per op family and the small index helpers they
// share. Each kernel receives the node after infer_node has normalised its attributes (explicit
// pads/strides/dilations, axes >= 0), its inputs (nullptr where omitted) and the output tensor
// already allocated with the inferred dtype and shape.
#pragma once

#include <vector>

#include "graph/eval/eval_ops.h"
#include "graph/ir.h"

namespace locus::eval::detail {

using Inputs = std::vector<const Tensor*>;

// Row-major strides of a shape (in elements).
std::vector<int64_t> strides_of(const Shape& s);
// Strides of `in` viewed as broadcast to `out` (numpy rules): 0 along broadcast dimensions,
// one entry per dimension of `out`.
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);
// Offset into a tensor with per-dimension strides `st` of the element at linear index `i` of `out`.
int64_t broadcast_offset(int64_t i, const Shape& out, const std::vector<int64_t>& st);
// Product of s[begin, end).
int64_t dims_product(const Shape& s, size_t begin, size_t end);

// Window geometry of Conv / pools (kernel, strides, pads top/left/bottom/right, dilations).
struct Window {
  int64_t kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
};
// From the canonical attributes kernel_shape, strides, pads, dilations.
Window window_of(const Node& n);
// A Conv's fused hardsigmoid / hardswish / sigmoid (locus.activation) of v, in double.
float mobile_activation(const Node& n, const std::string& act, float v);

// f(kh, kw, ih, iw) for every tap of output pixel (oh, ow)'s window that lies inside an H x W
// input, kh-major: padding and dilation gaps are skipped.
template <class F>
void for_each_tap(const Window& g, int64_t oh, int64_t ow, int64_t H, int64_t W, F f) {
  for (int64_t kh = 0; kh < g.kh; ++kh) {
    const int64_t ih = oh * g.sh - g.pt + kh * g.dh;
    if (ih < 0 || ih >= H) continue;
    for (int64_t kw = 0; kw < g.kw; ++kw) {
      const int64_t iw = ow * g.sw - g.pl + kw * g.dw;
      if (iw >= 0 && iw < W) f(kh, kw, ih, iw);
    }
  }
}

// eval_nn.cpp (float32)
void conv(const Node& n, const Inputs& in, Tensor& y);
void max_pool(const Node& n, const Inputs& in, Tensor& y);
void average_pool(const Node& n, const Inputs& in, Tensor& y);
void global_average_pool(const Node& n, const Inputs& in, Tensor& y);
void batch_norm(const Node& n, const Inputs& in, Tensor& y);
void relu(const Node& n, const Inputs& in, Tensor& y);
void clip(const Node& n, const Inputs& in, Tensor& y);
void softmax(const Node& n, const Inputs& in, Tensor& y);
void gemm(const Node& n, const Inputs& in, Tensor& y);
void matmul(const Node& n, const Inputs& in, Tensor& y);

// eval_tensor.cpp (float32, int64, int32)
void binary(const Node& n, const Inputs& in, Tensor& y);  // Add, Sub, Mul, Div
void copy_data(const Node& n, const Inputs& in, Tensor& y);  // Identity, Reshape, Flatten, (Un)Squeeze
void concat(const Node& n, const Inputs& in, Tensor& y);
void shape_of(const Node& n, const Inputs& in, Tensor& y);
void gather(const Node& n, const Inputs& in, Tensor& y);

// eval_fused.cpp (float32): locus-domain ops, by composition of the kernels above
void fused_inverted_residual(const Node& n, const Inputs& in, Tensor& y);
void fused_se_block(const Node& n, const Inputs& in, Tensor& y);
void fused_qlinear_inverted_residual(const Node& n, const Inputs& in, Tensor& y);
void fused_chain(const Node& n, const Inputs& in, Tensor& y);
// The reference QLinearConv and com.microsoft.QLinearAdd (eval_quant.cpp), for the fused int8 block.
void qlinear_conv_eval(const Node& n, const Inputs& in, Tensor& y);
void qlinear_add_eval(const Node& n, const Inputs& in, Tensor& y);

// The entries each family file adds to the registry (eval_ops()).
void register_nn_ops(EvalRegistry& r);      // eval_nn.cpp
void register_tensor_ops(EvalRegistry& r);  // eval_tensor.cpp
void register_fused_ops(EvalRegistry& r);   // eval_fused.cpp
void register_quant_ops(EvalRegistry& r);   // eval_quant.cpp (uint8 / int8)
void register_mobile_ops(EvalRegistry& r);  // eval_mobile.cpp (HardSigmoid ... ConvTranspose)

}  // namespace locus::eval::detail
