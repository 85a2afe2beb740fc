// Element-wise and data-movement kernels over strided views. A stride of 0 broadcasts; strides are
// in elements and given per logical dimension, so the same kernel serves NHWC and row-major buffers.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/native/activation.h"

namespace locus::kernels {

enum class BinaryOp : uint8_t { Add, Sub, Mul, Div };

struct StridedF32 {
  const float* p = nullptr;
  std::vector<int64_t> strides;  // one per dimension of the iteration shape
};

// out (contiguous in the order given by out_strides) = act(a op b) over `shape`.
void binary_f32(BinaryOp op, const std::vector<int64_t>& shape, const StridedF32& a,
                const StridedF32& b, float* out, const std::vector<int64_t>& out_strides,
                const Activation& act = {});

// Fast path: same-shape, same-layout operands: out[i] = act(a[i] op b[i]).
void binary_same_f32(BinaryOp op, int64_t n, const float* a, const float* b, float* out,
                     const Activation& act = {});

// dst[idx . dst_strides] = src[idx . src_strides] for every index of `shape`.
void copy_strided_f32(const std::vector<int64_t>& shape, const float* src,
                      const std::vector<int64_t>& src_strides, float* dst,
                      const std::vector<int64_t>& dst_strides);

// y[r, c] = x[r, c] * scale[c] + shift[c] for rows r (NHWC channel affine, e.g. unfused BatchNorm).
void channel_affine_f32(int64_t rows, int64_t C, const float* x, const float* scale,
                        const float* shift, float* y, const Activation& act = {});

// Softmax over the contiguous last dimension of a [rows, cols] block.
void softmax_rows_f32(int64_t rows, int64_t cols, const float* x, float* y);

}  // namespace locus::kernels
