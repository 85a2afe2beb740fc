// Reference kernels of the elementwise and shape-manipulation ops, for float32, int64 and int32
// (constant folding evaluates the Shape -> Gather -> Unsqueeze -> Concat -> Reshape idiom on int64):
// Add/Sub/Mul/Div with broadcasting, Identity/Reshape/Flatten/Squeeze/Unsqueeze (a copy), Concat,
// Shape, Gather.
#include <cstring>
#include <type_traits>

#include "graph/eval/eval_internal.h"

namespace locus::eval::detail {
namespace {

enum class BinaryOp { Add, Sub, Mul, Div };

BinaryOp binary_op_of(const Node& n) {
  if (n.op == "Add") return BinaryOp::Add;
  if (n.op == "Sub") return BinaryOp::Sub;
  if (n.op == "Mul") return BinaryOp::Mul;
  return BinaryOp::Div;
}

double apply_float(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    default: return a / b;
  }
}

// Integer arithmetic wraps (two's complement) instead of overflowing; division truncates toward
// zero, as onnxruntime; division by zero is an error.
int64_t apply_int(const Node& n, BinaryOp op, int64_t a, int64_t b) {
  const uint64_t ua = uint64_t(a), ub = uint64_t(b);
  switch (op) {
    case BinaryOp::Add: return int64_t(ua + ub);
    case BinaryOp::Sub: return int64_t(ua - ub);
    case BinaryOp::Mul: return int64_t(ua * ub);
    default:
      LOCUS_CHECK(b != 0, "node '", n.name, "' (Div): integer division by zero");
      if (b == -1) return int64_t(0 - ua);
      return a / b;
  }
}

template <class T>
void binary_typed(const Node& n, const Tensor& a, const Tensor& b, Tensor& y) {
  const BinaryOp op = binary_op_of(n);
  const auto sa = broadcast_strides(a.shape, y.shape), sb = broadcast_strides(b.shape, y.shape);
  const T *ad = a.data<T>(), *bd = b.data<T>();
  T* yd = y.data<T>();
  for (int64_t i = 0; i < y.numel(); ++i) {
    const T va = ad[broadcast_offset(i, y.shape, sa)], vb = bd[broadcast_offset(i, y.shape, sb)];
    if constexpr (std::is_floating_point_v<T>)
      yd[i] = T(apply_float(op, double(va), double(vb)));
    else
      yd[i] = T(apply_int(n, op, int64_t(va), int64_t(vb)));
  }
}

}  // namespace

void binary(const Node& n, const Inputs& in, Tensor& y) {
  switch (y.dtype) {
    case DType::F32: return binary_typed<float>(n, *in[0], *in[1], y);
    case DType::I64: return binary_typed<int64_t>(n, *in[0], *in[1], y);
    case DType::I32: return binary_typed<int32_t>(n, *in[0], *in[1], y);
    default: throw Unsupported(cat("node '", n.name, "' (", n.op, "): dtype ", dtype_name(y.dtype)));
  }
}

void copy_data(const Node& n, const Inputs& in, Tensor& y) {
  // Same elements in the same row-major order; only the shape changes.
  if (!y.bytes.empty()) std::memcpy(y.bytes.data(), in[0]->bytes.data(), y.bytes.size());
}

void concat(const Node& n, const Inputs& in, Tensor& y) {
  const size_t axis = size_t(n.i("axis", 0));
  const size_t esize = dtype_size(y.dtype);
  const int64_t outer = dims_product(y.shape, 0, axis);
  const int64_t inner = dims_product(y.shape, axis + 1, y.shape.size());
  const int64_t out_row = y.shape[axis] * inner;  // elements per outer index in the output
  int64_t at = 0;                                  // offset of this input's block within a row
  for (const Tensor* t : in) {
    const int64_t row = t->shape[axis] * inner;
    if (row == 0) continue;  // an empty input contributes nothing
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(y.bytes.data() + size_t(o * out_row + at) * esize,
                  t->bytes.data() + size_t(o * row) * esize, size_t(row) * esize);
    at += row;
  }
}

void shape_of(const Node& n, const Inputs& in, Tensor& y) {
  const int64_t start = n.i("start", 0);
  for (int64_t i = 0; i < y.numel(); ++i) y.data<int64_t>()[i] = in[0]->shape[size_t(start + i)];
}

void gather(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const Tensor& idx = *in[1];
  const size_t axis = size_t(n.i("axis", 0));
  const size_t esize = dtype_size(x.dtype);
  const int64_t outer = dims_product(x.shape, 0, axis);
  const int64_t dim = x.shape[axis];
  const int64_t inner = dims_product(x.shape, axis + 1, x.shape.size());
  const int64_t count = idx.numel();
  if (inner == 0 || outer == 0) return;
  for (int64_t j = 0; j < count; ++j) {
    int64_t k = idx.get_int(j);
    LOCUS_CHECK(k >= -dim && k < dim, "node '", n.name, "' (Gather): index ", k,
                " is out of range for axis ", axis, " of size ", dim);
    if (k < 0) k += dim;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(y.bytes.data() + size_t((o * count + j) * inner) * esize,
                  x.bytes.data() + size_t((o * dim + k) * inner) * esize, size_t(inner) * esize);
  }
}

void register_tensor_ops(EvalRegistry& r) {
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) r.add({op, "reference binary (broadcasting)", binary});
  for (const char* op : {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze"})
    r.add({op, "reference copy", copy_data});
  r.add({"Concat", "reference concat", concat});
  r.add({"Shape", "reference shape", shape_of});
  r.add({"Gather", "reference gather", gather});
}

}  // namespace locus::eval::detail
