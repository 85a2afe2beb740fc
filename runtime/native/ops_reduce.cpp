// The native backend's Sqrt, Pow (constant exponent, broadcast to X once at compile time) and
// ReduceMean (any axes, on the row-major view of the value; double accumulation): plain loops, for
// the heads and normalisations of mobile CNNs, not their hot paths.
#include <cmath>
#include <vector>

#include "graph/ops.h"
#include "kernels/native/elementwise.h"
#include "runtime/native/op_registry.h"

namespace locus::native {
namespace {

using namespace kernels;

Step build_sqrt(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  return [px = x.ptr, py = y.ptr, cnt = y.numel()] {
    for (int64_t i = 0; i < cnt; ++i) py[i] = std::sqrt(px[i]);
  };
}

Step build_pow(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  const Tensor* e = c.graph().constant(n.input(1));
  if (!e) throw Unsupported(cat("native backend: Pow '", n.name, "' with a runtime exponent"));
  if (e->numel() == 1) {
    const float p = float(e->get(0));
    if (p == 2.f) return [px = x.ptr, py = y.ptr, cnt = y.numel()] { for (int64_t i = 0; i < cnt; ++i) py[i] = px[i] * px[i]; };
    return [px = x.ptr, py = y.ptr, cnt = y.numel(), p] { for (int64_t i = 0; i < cnt; ++i) py[i] = std::pow(px[i], p); };
  }
  // the exponent of every element, in y's layout
  std::vector<float> ef(size_t(e->numel()));
  for (int64_t i = 0; i < e->numel(); ++i) ef[size_t(i)] = float(e->get(i));
  float* pe = c.scratch(y.numel());
  copy_strided_f32(y.shape, ef.data(), broadcast_strides(Val(e->shape, ef.data()), y.shape), pe, y.strides());
  return [px = x.ptr, py = y.ptr, pe, cnt = y.numel()] { for (int64_t i = 0; i < cnt; ++i) py[i] = std::pow(px[i], pe[i]); };
}

Step build_reduce_mean(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  Step pre, post;
  const float* src = c.rowmajor_in(x, pre);
  float* dst = c.rowmajor_out(y, post);
  std::vector<bool> reduced(x.shape.size(), false);
  for (int64_t a : n.ints("axes")) reduced[size_t(a)] = true;
  Shape kept = x.shape;
  int64_t count = 1;
  for (size_t d = 0; d < kept.size(); ++d)
    if (reduced[d]) count *= kept[d], kept[d] = 1;
  // per input dimension: its stride in the output (0 where reduced)
  std::vector<int64_t> ks = rowmajor_strides(kept);
  for (size_t d = 0; d < kept.size(); ++d)
    if (reduced[d]) ks[d] = 0;
  double* acc = reinterpret_cast<double*>(c.scratch(2 * y.numel()));
  return [=, shape = x.shape] {
    if (pre) pre();
    const int64_t out = y.numel(), in = x.numel();
    for (int64_t i = 0; i < out; ++i) acc[i] = 0;
    for (int64_t i = 0; i < in; ++i) {
      int64_t rem = i, off = 0;
      for (size_t d = shape.size(); d-- > 0;) {
        off += (rem % shape[d]) * ks[d];
        rem /= shape[d];
      }
      acc[off] += src[i];
    }
    for (int64_t i = 0; i < out; ++i) dst[i] = float(acc[i] / double(count));
    if (post) post();
  };
}

}  // namespace

void register_reduce_ops(NativeOpRegistry& r) {
  r.add({"Sqrt", "sqrt loop", build_sqrt});
  r.add({"Pow", "pow loop (constant exponent)", build_pow});
  r.add({"ReduceMean", "reduce_mean loop (row-major, double accumulation)", build_reduce_mean});
}

}  // namespace locus::native
