// The native backend's data movement: Reshape, Flatten, Squeeze, Unsqueeze, Identity, Concat, Slice,
// Transpose, Gather (all but Gather also for the 1-byte values of the quantized ops), and Cast between equal
// types (the runtime values are float32 or 1-byte; other casts are folded as constants).
#include "runtime/native/op_registry.h"


#include <cstring>
#include <vector>

#include "kernels/native/elementwise.h"
#include "kernels/native/qelementwise.h"

#include "graph/ops.h"

namespace locus::native {
namespace {

using namespace kernels;

// y receives x's elements in logical row-major order (Reshape, Flatten, Squeeze, Unsqueeze, Identity).
Step build_logical_copy(NativeContext& c, const Val& x, const Val& y) {
  Step pre, post;
  if (x.is_byte()) {
    c.set_implementation("memcpy (1-byte values, copy_strided_u8 for a layout change)");
    const uint8_t* src = c.rowmajor_in_bytes(x, pre);
    uint8_t* dst = c.rowmajor_out_bytes(y, post);
    return [pre, post, src, dst, cnt = y.numel()] {
      if (pre) pre();
      if (dst != src) std::memcpy(dst, src, size_t(cnt));
      if (post) post();
    };
  }
  const float* src = c.rowmajor_in(x, pre);
  float* dst = c.rowmajor_out(y, post);
  int64_t cnt = y.numel();
  return [pre, post, src, dst, cnt] {
    if (pre) pre();
    if (dst != src) std::memcpy(dst, src, size_t(cnt) * sizeof(float));
    if (post) post();
  };
}

Step build_concat(NativeContext& c, const Node& n) {
  const Val& y = c.val(n.outputs[0]);
  int64_t axis = n.i("axis", 0);
  auto ys = y.strides();
  std::vector<Step> parts;
  int64_t offset = 0;
  for (auto& in : n.inputs) {
    if (in.empty()) continue;
    const Val& x = c.val(in);
    if (y.is_byte()) {
      c.set_implementation("copy_strided_u8");
      uint8_t* dst = y.bytes() + offset * ys[size_t(axis)];
      parts.push_back([x, dst, ys] { copy_strided_u8(x.shape, x.bytes(), x.strides(), dst, ys); });
    } else {
      float* dst = y.ptr + offset * ys[size_t(axis)];
      parts.push_back([x, dst, ys] { copy_strided_f32(x.shape, x.ptr, x.strides(), dst, ys); });
    }
    offset += x.shape[size_t(axis)];
  }
  return [parts] {
    for (auto& p : parts) p();
  };
}

Step build_gather(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  const Tensor* idx = c.graph().constant(n.input(1));
  if (!idx) throw Unsupported(cat("native backend: Gather '", n.name, "' with runtime indices"));
  int64_t axis = n.i("axis", 0);
  int64_t outer = 1, inner = 1, dim = x.shape[size_t(axis)];
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
  std::vector<int64_t> ids = idx->to_i64();
  for (auto& i : ids) {
    LOCUS_CHECK(i >= -dim && i < dim, "node '", n.name, "' (Gather): index ", i, " out of range for axis of size ", dim);
    if (i < 0) i += dim;
  }
  Step pre, post;
  const float* src = c.rowmajor_in(x, pre);
  float* dst = c.rowmajor_out(y, post);
  return [=] {
    if (pre) pre();
    float* o = dst;
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t i : ids) {
        std::memcpy(o, src + (a * dim + i) * inner, size_t(inner) * sizeof(float));
        o += inner;
      }
    if (post) post();
  };
}

// Slice: a strided view of x (locus.starts / locus.steps per logical axis) copied into y.
Step build_slice(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  const std::vector<int64_t> first = n.ints("locus.starts"), step = n.ints("locus.steps");
  int64_t offset = 0;
  std::vector<int64_t> src_strides(x.shape.size());
  for (size_t d = 0; d < x.shape.size(); ++d) {
    offset += first[d] * x.strides()[d];
    src_strides[d] = x.strides()[d] * step[d];
  }
  if (y.numel() == 0) return [] {};
  if (x.is_byte()) {
    c.set_implementation("copy_strided_u8");
    return [x, y, offset, src_strides] { copy_strided_u8(y.shape, x.bytes() + offset, src_strides, y.bytes(), y.strides()); };
  }
  return [x, y, offset, src_strides] { copy_strided_f32(y.shape, x.ptr + offset, src_strides, y.ptr, y.strides()); };
}

// Transpose: y's axis d reads x's axis perm[d] (a strided copy in the values' own layouts).
Step build_transpose(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  const std::vector<int64_t> perm = n.ints("perm");
  std::vector<int64_t> src_strides;
  for (int64_t p : perm) src_strides.push_back(x.strides()[size_t(p)]);
  if (x.is_byte()) {
    c.set_implementation("copy_strided_u8");
    return [x, y, src_strides] { copy_strided_u8(y.shape, x.bytes(), src_strides, y.bytes(), y.strides()); };
  }
  return [x, y, src_strides] { copy_strided_f32(y.shape, x.ptr, src_strides, y.ptr, y.strides()); };
}

Step build_cast(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  if (x.dtype != y.dtype)
    throw Unsupported(cat("native backend: Cast '", n.name, "' from ", dtype_name(x.dtype), " to ", dtype_name(y.dtype),
                          " of a runtime value (only casts to the same type run; constant ones are folded)"));
  return build_logical_copy(c, x, y);
}

}  // namespace

Step build_view(NativeContext& c, const Node& n) { return build_logical_copy(c, c.val(n.input(0)), c.val(n.outputs[0])); }

void register_tensor_ops(NativeOpRegistry& r) {
  // the data movement ops move 1-byte (quantized) values as well
  for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})
    r.add({op, "copy_strided_f32", build_view, /*byte_values=*/true});
  r.add({"Concat", "memcpy", build_concat, true});
  r.add({"Gather", "memcpy", build_gather});
  r.add({"Slice", "copy_strided_f32", build_slice, true});
  r.add({"Transpose", "copy_strided_f32", build_transpose, true});
  r.add({"Cast", "copy_strided_f32 (same type)", build_cast, true});
}

}  // namespace locus::native
