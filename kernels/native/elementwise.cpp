// Element-wise kernels: broadcasting binary ops over strided views (inner loop specialised for the
// stride patterns 1/1, 1/0 and 0/1), same-shape binary ops, NHWC channel affine, row softmax.
#include "kernels/native/elementwise.h"

#include <cmath>

#include "kernels/native/strided_loop.h"

namespace locus::kernels {
namespace {

template <BinaryOp OP>
inline float op(float a, float b) {
  if constexpr (OP == BinaryOp::Add) return a + b;
  if constexpr (OP == BinaryOp::Sub) return a - b;
  if constexpr (OP == BinaryOp::Mul) return a * b;
  return a / b;
}

// Activation over n elements at stride s.
void apply_act(const Activation& act, float* __restrict y, int64_t n, int64_t s) {
  if (act.kind == ActKind::None) return;
  if (s == 1 && act.kind == ActKind::Relu) {
    for (int64_t i = 0; i < n; ++i) y[i] = relu_keep_nan(y[i]);
  } else if (s == 1 && act.kind == ActKind::Clip) {
    for (int64_t i = 0; i < n; ++i) y[i] = clip_keep_nan(y[i], act.lo, act.hi);
  } else {  // any stride, or HardSigmoid / HardSwish / Sigmoid
    for (int64_t i = 0; i < n; ++i) y[i * s] = act.apply(y[i * s]);
  }
}

// One innermost row: n elements, operand strides sa, sb, output stride so.
template <BinaryOp OP>
// No __restrict: callers may run in place (y == a or y == b).
void binary_row(int64_t n, const float* a, int64_t sa, const float* b, int64_t sb, float* y,
                int64_t so) {
  if (so == 1 && sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = op<OP>(a[i], b[i]);
  } else if (so == 1 && sa == 1 && sb == 0) {
    const float bv = *b;
    for (int64_t i = 0; i < n; ++i) y[i] = op<OP>(a[i], bv);
  } else if (so == 1 && sa == 0 && sb == 1) {
    const float av = *a;
    for (int64_t i = 0; i < n; ++i) y[i] = op<OP>(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i * so] = op<OP>(a[i * sa], b[i * sb]);
  }
}

template <BinaryOp OP>
void binary_strided(const std::vector<int64_t>& shape, const StridedF32& a, const StridedF32& b,
                    float* out, const std::vector<int64_t>& out_strides, const Activation& act) {
  const std::vector<int64_t>* st[3] = {&a.strides, &b.strides, &out_strides};
  detail::StridedDims<3> d = detail::collapse<3>(shape, st);
  if (d.empty) return;
  if (d.rank == 0) {
    out[0] = act.apply(op<OP>(a.p[0], b.p[0]));
    return;
  }
  const int n_outer = d.rank - 1;
  const int64_t inner = d.size[n_outer];
  const int64_t sa = d.stride[0][n_outer], sb = d.stride[1][n_outer], so = d.stride[2][n_outer];
  const int64_t rows = d.outer_count(n_outer);
  detail::parallel_ranges(rows, rows * inner, [&](int64_t r0, int64_t r1) {
    detail::for_each_outer(d, n_outer, r0, r1, [&](const int64_t* off) {
      float* y = out + off[2];
      binary_row<OP>(inner, a.p + off[0], sa, b.p + off[1], sb, y, so);
      apply_act(act, y, inner, so);
    });
  });
}

template <BinaryOp OP>
void binary_same(int64_t n, const float* a, const float* b, float* out, const Activation& act) {
  detail::parallel_ranges(n, n, [&](int64_t i0, int64_t i1) {
    // Chunks keep the activation pass in L1.
    constexpr int64_t kChunk = 2048;
    for (int64_t i = i0; i < i1; i += kChunk) {
      const int64_t m = std::min(kChunk, i1 - i);
      binary_row<OP>(m, a + i, 1, b + i, 1, out + i, 1);
      apply_act(act, out + i, m, 1);
    }
  });
}

}  // namespace

void binary_f32(BinaryOp o, const std::vector<int64_t>& shape, const StridedF32& a,
                const StridedF32& b, float* out, const std::vector<int64_t>& out_strides,
                const Activation& act) {
  switch (o) {
    case BinaryOp::Add: return binary_strided<BinaryOp::Add>(shape, a, b, out, out_strides, act);
    case BinaryOp::Sub: return binary_strided<BinaryOp::Sub>(shape, a, b, out, out_strides, act);
    case BinaryOp::Mul: return binary_strided<BinaryOp::Mul>(shape, a, b, out, out_strides, act);
    case BinaryOp::Div: return binary_strided<BinaryOp::Div>(shape, a, b, out, out_strides, act);
  }
}

void binary_same_f32(BinaryOp o, int64_t n, const float* a, const float* b, float* out,
                     const Activation& act) {
  switch (o) {
    case BinaryOp::Add: return binary_same<BinaryOp::Add>(n, a, b, out, act);
    case BinaryOp::Sub: return binary_same<BinaryOp::Sub>(n, a, b, out, act);
    case BinaryOp::Mul: return binary_same<BinaryOp::Mul>(n, a, b, out, act);
    case BinaryOp::Div: return binary_same<BinaryOp::Div>(n, a, b, out, act);
  }
}

void channel_affine_f32(int64_t rows, int64_t C, const float* x, const float* scale,
                        const float* shift, float* y, const Activation& act) {
  detail::parallel_ranges(rows, rows * C, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * C;  // may alias yr (in place)
      float* yr = y + r * C;
      for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * scale[c] + shift[c];
      apply_act(act, yr, C, 1);
    }
  });
}

void softmax_rows_f32(int64_t rows, int64_t cols, const float* x, float* y) {
  detail::parallel_ranges(rows, rows * cols * 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      if (cols <= 0) continue;
      float mx = xr[0];
      for (int64_t c = 1; c < cols; ++c) mx = std::max(mx, xr[c]);
      double sum = 0.0;
      for (int64_t c = 0; c < cols; ++c) {
        const float e = std::exp(xr[c] - mx);
        yr[c] = e;
        sum += e;
      }
      const float inv = float(1.0 / sum);
      for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
    }
  });
}

}  // namespace locus::kernels
