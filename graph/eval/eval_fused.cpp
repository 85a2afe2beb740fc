// Reference kernels of the locus-domain ops (graph/ops.h), by composition of the reference kernels
// of the ops they replace, so that a fused graph evaluates to exactly the numbers of the unfused one
// (each stage rounds to float32 as the separate nodes do).
//   FusedInvertedResidual: expand 1x1 Conv (+act) -> depthwise Conv (+act) [-> second depthwise
//   Conv (+act)] -> project 1x1 Conv
//   (+act) [-> Add X], stages absent when their weight is.
//   FusedSEBlock: the same stages with the squeeze-excite (GlobalAveragePool -> 1x1 Conv -> 1x1 Conv ->
//   Mul) between the depthwise and the project conv.
//   FusedChain: each 1x1 / depthwise Conv stage (+act) in turn [-> Add R] [-> Relu].
//   FusedQLinearInvertedResidual: the QLinearConv stages and the residual QLinearAdd it replaces
//   (graph/fused_qlinear.h), evaluated by the reference QLinearConv / QLinearAdd kernels.
#include <limits>

#include "graph/fused_qlinear.h"
#include "graph/ops.h"
#include "graph/eval/eval_internal.h"

namespace locus::eval::detail {
namespace {

const Tensor* optional_input(const Inputs& in, size_t k) { return k < in.size() ? in[k] : nullptr; }

// One Conv stage of a fused node: `stage` names the attributes (<stage>_activation[_min|_max]).
Tensor conv_stage(const Node& fused, const std::string& stage, const Tensor& x, const Tensor& w, const Tensor* b,
                  int64_t group, const std::vector<int64_t>& strides, const std::vector<int64_t>& pads) {
  Node c;
  c.op = "Conv";
  c.name = fused.name + "/" + stage;
  c.attrs["kernel_shape"] = std::vector<int64_t>{w.shape[2], w.shape[3]};
  c.attrs["strides"] = strides;
  c.attrs["pads"] = pads;
  c.attrs["dilations"] = std::vector<int64_t>{1, 1};
  c.attrs["group"] = group;
  const std::string act = fused.s(stage + "_activation", "none");
  if (act != "none" && act != "hardswish_ops") {
    c.attrs["locus.activation"] = act;
    c.attrs["locus.activation_min"] = fused.f(stage + "_activation_min", -std::numeric_limits<float>::infinity());
    c.attrs["locus.activation_max"] = fused.f(stage + "_activation_max", std::numeric_limits<float>::infinity());
    if (act == "hardsigmoid") {
      c.attrs["locus.activation_alpha"] = fused.f(stage + "_activation_alpha", 0.2f);
      c.attrs["locus.activation_beta"] = fused.f(stage + "_activation_beta", 0.5f);
    }
  }
  Shape s = {x.shape[0], w.shape[0], 0, 0};
  for (size_t i = 0; i < 2; ++i)
    s[2 + i] = pooled_size(x.shape[2 + i], w.shape[2 + i], strides[i], pads[i], pads[i + 2], 1, false);
  Tensor y(DType::F32, s);
  conv(c, {&x, &w, b}, y);
  if (act == "hardswish_ops") {
    // Div(Mul(y, Clip(Add(y, 3), 0, 6)), 6), node by node as the exporter wrote it
    Node op;
    op.name = c.name;
    const Tensor three = Tensor::scalar_f32(3.f), zero = Tensor::scalar_f32(0.f), six = Tensor::scalar_f32(6.f);
    Tensor a(DType::F32, s), k(DType::F32, s), m(DType::F32, s), r(DType::F32, s);
    op.op = "Add";
    binary(op, {&y, &three}, a);
    op.op = "Clip";
    clip(op, {&a, &zero, &six}, k);
    op.op = "Mul";
    binary(op, {&y, &k}, m);
    op.op = "Div";
    binary(op, {&m, &six}, r);
    return r;
  }
  return y;
}

// The expand (when present) and first depthwise stage of a fused block, on input 0.
Tensor expand_and_filter(const Node& n, const Inputs& in) {
  const Tensor& x = *in[0];
  const std::vector<int64_t> one{1, 1}, none{0, 0, 0, 0};
  Tensor h;
  const Tensor* cur = &x;
  if (const Tensor* we = optional_input(in, 1)) {
    h = conv_stage(n, "expand", x, *we, optional_input(in, 2), 1, one, none);
    cur = &h;
  }
  const Tensor& wd = *in[3];
  return conv_stage(n, "dw", *cur, wd, optional_input(in, 4), wd.shape[0], n.ints("dw_strides"), n.ints("dw_pads"));
}

// y = p, or p + input 0 when the node fused the residual Add.
void finish_block(const Node& n, const Inputs& in, Tensor p, Tensor& y) {
  LOCUS_CHECK(p.shape == y.shape, "node '", n.name, "' (", n.op, "): stages produce ", shape_str(p.shape),
              ", expected ", shape_str(y.shape));
  if (n.i("residual", 0) == 1) {
    Node add;
    add.op = "Add";
    add.name = n.name + "/residual";
    binary(add, {&p, in[0]}, y);
  } else {
    y = std::move(p);
  }
}

}  // namespace

void fused_inverted_residual(const Node& n, const Inputs& in, Tensor& y) {
  const std::vector<int64_t> one{1, 1}, none{0, 0, 0, 0};
  Tensor d = expand_and_filter(n, in);
  if (const Tensor* wd2 = optional_input(in, 7))
    d = conv_stage(n, "dw2", d, *wd2, optional_input(in, 8), wd2->shape[0], n.ints("dw2_strides"),
                   n.ints("dw2_pads"));
  Tensor p;
  if (const Tensor* wp = optional_input(in, 5))
    p = conv_stage(n, "project", d, *wp, optional_input(in, 6), 1, one, none);
  else
    p = std::move(d);
  finish_block(n, in, std::move(p), y);
}

void fused_se_block(const Node& n, const Inputs& in, Tensor& y) {
  const std::vector<int64_t> one{1, 1}, none{0, 0, 0, 0};
  Tensor d = expand_and_filter(n, in);
  Node op;
  op.name = n.name + "/se";
  op.op = "GlobalAveragePool";
  Tensor pooled(DType::F32, {d.shape[0], d.shape[1], 1, 1});
  global_average_pool(op, {&d}, pooled);
  Tensor sq = conv_stage(n, "squeeze", pooled, *in[7], optional_input(in, 8), 1, one, none);
  Tensor gate = conv_stage(n, "excite", sq, *in[9], optional_input(in, 10), 1, one, none);
  op.op = "Mul";
  Tensor scaled(DType::F32, d.shape);
  binary(op, {&d, &gate}, scaled);
  finish_block(n, in, conv_stage(n, "project", scaled, *in[5], optional_input(in, 6), 1, one, none), y);
}

void fused_chain(const Node& n, const Inputs& in, Tensor& y) {
  const auto kinds = n.ints("kinds"), strides = n.ints("strides"), pads = n.ints("pads");
  const auto acts = std::get<std::vector<std::string>>(n.attrs.at("activations"));
  const auto lo = n.floats("activation_min"), hi = n.floats("activation_max");
  Tensor cur = *in[0];
  for (size_t s = 0; s < kinds.size(); ++s) {
    // the stage as the Conv it was (its activation as fuse-activation left it)
    Node c;
    c.name = cat(n.name, "/s", s);
    c.attrs["stage_activation"] = acts[s];
    c.attrs["stage_activation_min"] = lo[s];
    c.attrs["stage_activation_max"] = hi[s];
    const Tensor& w = *in[2 + 2 * s];
    cur = conv_stage(c, "stage", cur, w, optional_input(in, 3 + 2 * s), kinds[s] == 1 ? w.shape[0] : 1,
                     {strides[2 * s], strides[2 * s + 1]},
                     {pads[4 * s], pads[4 * s + 1], pads[4 * s + 2], pads[4 * s + 3]});
  }
  LOCUS_CHECK(cur.shape == y.shape, "node '", n.name, "' (", n.op, "): stages produce ", shape_str(cur.shape),
              ", expected ", shape_str(y.shape));
  if (const Tensor* r = optional_input(in, 1)) {
    Node add;
    add.op = "Add";
    add.name = n.name + "/residual";
    Tensor sum(DType::F32, y.shape);
    binary(add, {&cur, r}, sum);
    cur = std::move(sum);
  }
  if (n.s("output_activation", "none") == "relu") {
    Node r;
    r.op = "Relu";
    r.name = n.name + "/relu";
    relu(r, {&cur}, y);
  } else {
    y = std::move(cur);
  }
}

void fused_qlinear_inverted_residual(const Node& n, const Inputs& in, Tensor& y) {
  namespace fq = fused_qlinear;
  const Tensor& x = *in[fq::kX];
  auto at = [&](size_t k) { return optional_input(in, k); };
  // One QLinearConv stage on `cur` (its output has cur's type).
  auto stage = [&](const std::string& name, const Tensor& cur) {
    const size_t base = fq::stage_base(name);
    const Tensor& w = *in[base + 2];
    const Node c = fq::stage_node(n, name, "", "", w.shape, w.shape[0]);
    Inputs sub{&cur};
    for (size_t k = 0; k < fq::kStageInputs; ++k) sub.push_back(at(base + k));
    const auto st = c.ints("strides"), pads = c.ints("pads");
    Shape s = {cur.shape[0], w.shape[0], 0, 0};
    for (size_t i = 0; i < 2; ++i)
      s[2 + i] = pooled_size(cur.shape[2 + i], w.shape[2 + i], st[i], pads[i], pads[i + 2], 1, false);
    Tensor t(cur.dtype, s);
    qlinear_conv_eval(c, sub, t);
    return t;
  };
  Tensor e, d, p;
  const Tensor* cur = &x;
  if (at(fq::kExpand + 2)) e = stage("expand", x), cur = &e;
  d = stage("dw", *cur);
  cur = &d;
  if (at(fq::kProject + 2)) p = stage("project", d), cur = &p;
  if (n.i("residual", 0) != 1) {
    LOCUS_CHECK(cur->shape == y.shape, "node '", n.name, "' (", n.op, "): stages produce ", shape_str(cur->shape),
                ", expected ", shape_str(y.shape));
    y = *cur;
    return;
  }
  const bool x_first = n.i("residual_x_first", 0) == 1;
  const Node a = fq::add_node(n, "", "", "");
  const Tensor* A = x_first ? &x : cur;
  const Tensor* B = x_first ? cur : &x;
  qlinear_add_eval(a, {A, at(fq::kAdd), at(fq::kAdd + 1), B, at(fq::kAdd + 2), at(fq::kAdd + 3), at(fq::kAdd + 4),
                       at(fq::kAdd + 5)}, y);
}

void register_fused_ops(EvalRegistry& r) {
  r.add({op_key(kLocusDomain, "FusedInvertedResidual"), "reference composition (conv -> dw conv -> conv)",
         fused_inverted_residual});
  r.add({op_key(kLocusDomain, "FusedSEBlock"),
         "reference composition (conv -> dw conv -> global average pool -> conv -> conv -> mul -> conv)",
         fused_se_block});
  r.add({op_key(kLocusDomain, "FusedChain"), "reference composition (each conv stage, Add, Relu)", fused_chain});
  r.add({op_key(kLocusDomain, "FusedQLinearInvertedResidual"),
         "reference composition (QLinearConv -> depthwise QLinearConv -> QLinearConv -> QLinearAdd)",
         fused_qlinear_inverted_residual});
}

}  // namespace locus::eval::detail
