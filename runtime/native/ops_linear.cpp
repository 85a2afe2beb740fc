// The native backend's dense layers: Gemm, MatMul, Softmax.
#include "runtime/native/op_registry.h"


#include <memory>
#include <vector>

#include "kernels/native/elementwise.h"
#include "kernels/native/gemm.h"

#include "graph/ops.h"

namespace locus::native {
namespace {

using namespace kernels;

Step build_gemm(NativeContext& c, const Node& n) {
  const Val& a = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  bool ta = n.i("transA", 0) != 0, tb = n.i("transB", 0) != 0;
  float alpha = n.f("alpha", 1.f), beta = n.f("beta", 1.f);
  int64_t M = y.shape[0], N = y.shape[1], K = ta ? a.shape[0] : a.shape[1];
  // A (row-major 2-D); transposed into scratch when transA
  const float* pa = a.ptr;
  Step pre_a;
  if (ta) {
    float* t = c.scratch(M * K);
    pre_a = [a, t, M, K] { copy_strided_f32({M, K}, a.ptr, {1, M}, t, {K, 1}); };
    pa = t;
  }
  // B: packed once if constant
  auto packed = std::make_shared<PackedB>();
  Step pre_b;
  if (const Tensor* bc = c.graph().constant(n.input(1))) {
    *packed = pack_b(K, N, bc->data<float>(), tb ? K : N, tb, alpha);
  } else {
    const Val& b = c.val(n.input(1));
    pre_b = [packed, b, K, N, tb, alpha] { *packed = pack_b(K, N, b.ptr, tb ? K : N, tb, alpha); };
  }
  // C: a per-column bias when it is constant and of length N, otherwise a broadcast add
  const float* bias = nullptr;
  Step post_c;
  if (!n.input(2).empty() && beta != 0.f) {
    const Tensor* cc = c.graph().constant(n.input(2));
    if (cc && cc->numel() == N && (cc->shape.size() == 1 || (cc->shape.size() == 2 && cc->shape[0] == 1))) {
      float* bb = c.scratch(N);
      for (int64_t j = 0; j < N; ++j) bb[j] = beta * float(cc->get(j));
      bias = bb;
    } else {
      const Val& cv = c.val(n.input(2));
      float* scaled = c.scratch(cv.numel());
      StridedF32 sc{scaled, broadcast_strides(Val(cv.shape, scaled), y.shape)};
      int64_t cn = cv.numel();
      StridedF32 sy{y.ptr, y.strides()};
      post_c = [cv, scaled, cn, beta, sc, sy, y] {
        for (int64_t i = 0; i < cn; ++i) scaled[i] = beta * cv.ptr[i];
        binary_f32(BinaryOp::Add, y.shape, sy, sc, y.ptr, y.strides());
      };
    }
  }
  return [pre_a, pre_b, post_c, packed, M, pa, K, bias, py = y.ptr, N, threads = c.threads()] {
    if (pre_a) pre_a();
    if (pre_b) pre_b();
    gemm_f32(M, pa, K, *packed, py, N, bias, {}, false, threads);
    if (post_c) post_c();
  };
}

Step build_matmul(NativeContext& c, const Node& n) {
  const Val& a = c.val(n.input(0));
  const Val& b = c.val(n.input(1));
  const Val& y = c.val(n.outputs[0]);
  Step pre_a, pre_b, post;
  const float* pa = c.rowmajor_in(a, pre_a);
  const float* pb = c.rowmajor_in(b, pre_b);
  float* py = c.rowmajor_out(y, post);
  Shape as = a.shape, bs = b.shape;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
  Shape batch = broadcast_shapes(abatch, bbatch, n.name);
  int64_t nb = 1;
  for (auto d : batch) nb *= d;
  // offsets of each batch entry into A and B (broadcast)
  auto offsets = [&](const Shape& sub, int64_t mat) {
    std::vector<int64_t> offs(static_cast<size_t>(nb), 0);
    Shape padded(batch.size() - sub.size(), 1);
    padded.insert(padded.end(), sub.begin(), sub.end());
    auto st = rowmajor_strides(padded);
    for (int64_t i = 0; i < nb; ++i) {
      int64_t rem = i, off = 0;
      for (size_t d = batch.size(); d-- > 0;) {
        int64_t idx = rem % batch[d];
        rem /= batch[d];
        if (padded[d] != 1) off += idx * st[d];
      }
      offs[size_t(i)] = off * mat;
    }
    return offs;
  };
  auto offa = offsets(abatch, M * K), offb = offsets(bbatch, K * N);
  const Tensor* bc = c.graph().constant(n.input(1));
  if (bc && bbatch.empty()) {
    // one packed weight, all batch rows of A in one GEMM (A's batches are contiguous when B is 2-D)
    auto packed = std::make_shared<PackedB>(pack_b(K, N, bc->data<float>(), N, false));
    int64_t rows = nb * M;
    bool contiguous = true;
    for (int64_t i = 0; i < nb; ++i) contiguous &= offa[size_t(i)] == i * M * K;
    if (contiguous)
      return [pre_a, post, packed, rows, pa, K, py, N, threads = c.threads()] {
        if (pre_a) pre_a();
        gemm_f32(rows, pa, K, *packed, py, N, nullptr, {}, false, threads);
        if (post) post();
      };
  }
  auto packed = std::make_shared<PackedB>();
  const int threads = c.threads();
  return [=] {
    if (pre_a) pre_a();
    if (pre_b) pre_b();
    for (int64_t i = 0; i < nb; ++i) {
      *packed = pack_b(K, N, pb + offb[size_t(i)], N, false);
      gemm_f32(M, pa + offa[size_t(i)], K, *packed, py + i * M * N, N, nullptr, {}, false, threads);
    }
    if (post) post();
  };
}

Step build_softmax(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  Step pre, post;
  const float* src = c.rowmajor_in(x, pre);
  float* dst = c.rowmajor_out(y, post);
  int64_t axis = n.i("axis", int64_t(x.shape.size()) - 1);
  bool legacy = n.i("legacy", 0) != 0;
  int64_t total = x.numel();
  if (legacy || axis == int64_t(x.shape.size()) - 1) {
    int64_t cols = 1;
    for (size_t d = size_t(axis); d < x.shape.size(); ++d) cols *= x.shape[d];
    int64_t rows = cols ? total / cols : 0;
    if (!legacy) { cols = x.shape.back(); rows = cols ? total / cols : 0; }
    return [pre, post, rows, cols, src, dst] {
      if (pre) pre();
      softmax_rows_f32(rows, cols, src, dst);
      if (post) post();
    };
  }
  // move `axis` last, softmax the rows, move it back
  Shape perm_shape;
  std::vector<int64_t> src_st, rm = rowmajor_strides(x.shape);
  for (size_t d = 0; d < x.shape.size(); ++d)
    if (int64_t(d) != axis) { perm_shape.push_back(x.shape[d]); src_st.push_back(rm[d]); }
  perm_shape.push_back(x.shape[size_t(axis)]);
  src_st.push_back(rm[size_t(axis)]);
  float* t1 = c.scratch(total);
  float* t2 = c.scratch(total);
  auto perm_rm = rowmajor_strides(perm_shape);
  int64_t cols = x.shape[size_t(axis)], rows = cols ? total / cols : 0;
  return [=] {
    if (pre) pre();
    copy_strided_f32(perm_shape, src, src_st, t1, perm_rm);
    softmax_rows_f32(rows, cols, t1, t2);
    copy_strided_f32(perm_shape, t2, perm_rm, dst, src_st);
    if (post) post();
  };
}

}  // namespace

void register_linear_ops(NativeOpRegistry& r) {
  r.add({"Gemm", "gemm_f32", build_gemm});
  r.add({"MatMul", "gemm_f32", build_matmul});
  r.add({"Softmax", "softmax_rows_f32", build_softmax});
}

}  // namespace locus::native
