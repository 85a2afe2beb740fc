// The oneDNN backend's matrix products: Gemm as inner_product_forward (alpha and beta folded into
// the constant weights/bias), other Gemm forms (transA, runtime B or C, 2-D C) as matmul with alpha
// and C as eltwise (linear) and binary-add post-ops; MatMul as matmul (equal ranks after padding
// with leading 1s).
#include "runtime/onednn/op_registry.h"

namespace locus::onednn {
namespace {

// Gemm: Y = alpha * A' B' + beta * C. inner_product when A is not transposed, B constant and C a
// constant per-column bias (or absent); matmul otherwise.
void build_gemm(OnednnContext& ctx, const Node& n) {
  const Graph& g = ctx.graph();
  const dn::engine& eng = ctx.engine();
  const Shape& ys = ctx.out_shape(n);
  int64_t M = ys[0], N = ys[1];
  bool ta = n.i("transA", 0) != 0, tb = n.i("transB", 0) != 0;
  float alpha = n.f("alpha", 1.f), beta = n.f("beta", 1.f);
  Val a = ctx.val(n.input(0));
  int64_t K = ta ? a.shape[0] : a.shape[1];
  const Tensor* bc = g.constant(n.input(1));
  const Tensor* cc = n.input(2).empty() ? nullptr : g.constant(n.input(2));
  bool no_c = n.input(2).empty() || beta == 0.f;
  bool column_bias = cc && cc->numel() == N && (cc->shape.size() == 1 || (cc->shape.size() == 2 && cc->shape[0] == 1));
  // B as a {K, N} matrix: row-major [K, N], or [N, K] transposed
  auto b_layout = [&](const Shape& kn) { return tb ? md(dims{kn[0], kn[1]}, dt::f32, dims{1, kn[0]}) : plain_md(kn); };
  if (!ta && bc && (no_c || column_bias)) {
    a = ctx.to_desc(a, plain_md(a.shape), n.name);
    md w_user(dims{N, K}, dt::f32, tb ? tag::ab : tag::ba);
    md bias_md(dims{N}, dt::f32, tag::x);
    dn::inner_product_forward::desc d(kInference, a.desc, md(dims{N, K}, dt::f32, tag::any), bias_md,
                                      md(dims{M, N}, dt::f32, tag::any));
    dn::inner_product_forward::primitive_desc pd(d, scratch_attr(), eng);
    a = ctx.to_desc(a, pd.src_desc(), n.name);
    dn::memory w = ctx.constant_memory(*bc, w_user, pd.weights_desc(), alpha);
    Tensor zeros(DType::F32, {N});
    dn::memory b = ctx.constant_memory(no_c ? zeros : *cc, bias_md, bias_md, no_c ? 1.f : beta);
    Val y = ctx.new_value(pd.dst_desc(), ys);
    ctx.add_step(n.name, n.op, dn::inner_product_forward(pd),
                 {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, Val{-1, pd.weights_desc(), w, {}}},
                  {DNNL_ARG_BIAS, Val{-1, bias_md, b, {}}}, {DNNL_ARG_DST, y}});
    ctx.set_val(n.outputs[0], y);
    return;
  }
  ctx.set_implementation("dnnl matmul (with eltwise_linear / binary_add post-ops)");
  // matmul: A {M, K} (strided view when transposed), B {K, N}; alpha (runtime B) and beta * C as
  // post-ops (eltwise_linear, binary_add)
  a = ctx.to_desc(a, plain_md(a.shape), n.name);
  Val src{a.buf, ta ? md(dims{M, K}, dt::f32, dims{1, M}) : a.desc, {}, {M, K}};
  if (a.buf < 0) src.fixed = dn::memory(src.desc, eng, a.fixed.get_data_handle());
  Val wei;
  float scale = 1.f;  // what multiplies A'B' after the product
  if (bc) {
    md want = b_layout({K, N});
    wei = Val{-1, want, ctx.constant_memory(*bc, want, want, alpha), {K, N}};
  } else {
    Val b = ctx.to_desc(ctx.val(n.input(1)), plain_md(ctx.val(n.input(1)).shape), n.name);
    wei = Val{b.buf, b_layout({K, N}), {}, {K, N}};
    if (b.buf < 0) wei.fixed = dn::memory(wei.desc, eng, b.fixed.get_data_handle());
    scale = alpha;
  }
  std::vector<ArgRef> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}};
  dn::post_ops po;
  if (!no_c) {
    Shape cs = left_pad(g.values.count(n.input(2)) ? g.values.at(n.input(2)).shape : cc->shape, 2);
    if (cs.size() != 2) throw Unsupported(cat("onednn backend: Gemm '", n.name, "' with C of rank > 2"));
    md c_md = plain_md(cs);
    Val c;
    if (cc) {
      c = Val{-1, c_md, ctx.constant_memory(*cc, c_md, c_md, beta), cs};
    } else {
      c = ctx.view(ctx.val(n.input(2)), cs, n.name);
      if (beta != 1.f) {
        // beta * C by its own eltwise primitive (oneDNN 2.6's gemm-based matmul gets an eltwise
        // post-op after a binary post-op wrong)
        dn::eltwise_forward::primitive_desc epd(
            dn::eltwise_forward::desc(kInference, alg::eltwise_linear, c.desc, beta, 0.f), scratch_attr(), eng);
        Val scaled = ctx.new_value(epd.dst_desc(), cs);
        ctx.add_step(n.name + ":beta", "Eltwise", dn::eltwise_forward(epd), {{DNNL_ARG_SRC, c}, {DNNL_ARG_DST, scaled}});
        c = scaled;
      }
    }
    if (scale != 1.f) po.append_eltwise(1.f, alg::eltwise_linear, scale, 0.f);
    po.append_binary(alg::binary_add, c.desc);
    args.push_back({DNNL_ARG_ATTR_MULTIPLE_POST_OP(po.len() - 1) | DNNL_ARG_SRC_1, c});
  } else if (scale != 1.f) {
    po.append_eltwise(1.f, alg::eltwise_linear, scale, 0.f);
  }
  dn::primitive_attr attr = scratch_attr();
  attr.set_post_ops(po);
  dn::matmul::primitive_desc pd(dn::matmul::desc(src.desc, wei.desc, md(dims{M, N}, dt::f32, tag::ab)), attr, eng);
  Val y = ctx.new_value(pd.dst_desc(), ys);
  args.push_back({DNNL_ARG_DST, y});
  ctx.add_step(n.name, n.op, dn::matmul(pd), args);
  ctx.set_val(n.outputs[0], y);
}

void build_matmul(OnednnContext& ctx, const Node& n) {
  Val a = ctx.val(n.input(0)), b = ctx.val(n.input(1));
  const Shape& ys = ctx.out_shape(n);
  if (a.shape.size() < 2 || b.shape.size() < 2)
    throw Unsupported(cat("onednn backend: MatMul '", n.name, "' with a 1-D operand"));
  size_t rank = std::max(a.shape.size(), b.shape.size());
  a = ctx.view(a, left_pad(a.shape, rank), n.name);
  b = ctx.view(b, left_pad(b.shape, rank), n.name);
  dn::matmul::primitive_desc pd(dn::matmul::desc(a.desc, b.desc, plain_md(ys)), scratch_attr(), ctx.engine());
  Val y = ctx.new_value(pd.dst_desc(), ys);
  ctx.add_step(n.name, n.op, dn::matmul(pd), {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, y}});
  ctx.set_val(n.outputs[0], y);
}

}  // namespace

void register_linear_ops(OnednnOpRegistry& r) {
  r.add({"Gemm", "dnnl inner_product_forward", build_gemm});
  r.add({"MatMul", "dnnl matmul", build_matmul});
}

}  // namespace locus::onednn
