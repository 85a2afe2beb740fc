// Shape inference for the ops of the "locus" domain that passes create (graph/ops.h documents their
// contract): FusedInvertedResidual, FusedSEBlock and FusedQLinearInvertedResidual. Every attribute is written back explicitly, so that kernels
// read them without defaults.
#include <limits>

#include "graph/fused_qlinear.h"
#include "graph/ops.h"
#include "graph/shape_inference_internal.h"

namespace locus::shape_inference {
namespace {

// Checks that input k has exactly `want` as shape (error naming the role otherwise).
void require_shape(NodeContext& c, size_t k, const char* role, const Shape& want, const char* form) {
  if (c.shape(k) != want)
    c.error(role, " '", c.input_name(k), "' must have shape ", form, " = ", shape_str(want), ", got ",
            shape_str(c.shape(k)));
}

// Reads, validates and writes back <stage>_activation and <stage>_activation_min/_max.
// extended (FusedSEBlock): also hardsigmoid (+ _alpha/_beta), hardswish, sigmoid, hardswish_ops.
void stage_activation(NodeContext& c, const std::string& stage, bool present, bool extended = false) {
  Node& n = c.node();
  const std::string key = stage + "_activation";
  const std::string act = n.s(key, "none");
  const bool more = act == "hardsigmoid" || act == "hardswish" || act == "sigmoid" || act == "hardswish_ops";
  if (act != "none" && act != "relu" && act != "clip" && !(extended && more))
    c.unsupported(key, " '", act, "' is not supported (none, relu or clip",
                  extended ? ", hardsigmoid, hardswish, sigmoid or hardswish_ops)" : ")");
  if (!present && act != "none") c.error(key, " is '", act, "' but there is no ", stage, " stage");
  if (act == "hardsigmoid") {
    n.attrs[key + "_alpha"] = n.f(key + "_alpha", 0.2f);
    n.attrs[key + "_beta"] = n.f(key + "_beta", 0.5f);
  }
  const float lo = n.f(key + "_min", -std::numeric_limits<float>::infinity());
  const float hi = n.f(key + "_max", std::numeric_limits<float>::infinity());
  n.attrs[key] = act;
  n.attrs[key + "_min"] = lo;
  n.attrs[key + "_max"] = hi;
}

}  // namespace

ValueInfo infer_fused_inverted_residual(NodeContext& c) {
  Node& n = c.node();
  const bool se = n.op == "FusedSEBlock";  // inputs 7..10 are the SE's (infer_fused_se_block), no dw2
  c.require_inputs(1, se ? 11 : 9);
  if (!c.has(3)) c.error("input 3 (W_dw) is required: the depthwise stage is always present");
  for (size_t k = 0; k < 9; ++k)
    if (c.has(k)) c.require_f32(k);
  const Shape& x = c.shape(0);
  if (x.size() != 4) c.error("input '", c.input_name(0), "' must have rank 4 [N,C,H,W], got shape ", shape_str(x));
  const int64_t C = x[1];
  const bool expand = c.has(1), project = c.has(5);
  if (!expand && c.has(2)) c.error("B_expand '", c.input_name(2), "' is given without W_expand");
  if (!project && c.has(6)) c.error("B_project '", c.input_name(6), "' is given without W_project");

  int64_t E = C;
  if (expand) {
    const Shape& w = c.shape(1);
    if (w.size() != 4 || w[1] != C || w[2] != 1 || w[3] != 1 || w[0] < 1)
      c.error("W_expand '", c.input_name(1), "' must have shape [E,", C, ",1,1], got ", shape_str(w));
    E = w[0];
    if (c.has(2)) require_shape(c, 2, "B_expand", {E}, "[E]");
  }
  const Shape& wd = c.shape(3);
  if (wd.size() != 4 || wd[0] != E || wd[1] != 1 || wd[2] < 1 || wd[3] < 1)
    c.error("W_dw '", c.input_name(3), "' must have shape [", E, ",1,KH,KW] (E = ", E, "), got ", shape_str(wd));
  if (c.has(4)) require_shape(c, 4, "B_dw", {E}, "[E]");
  const bool dw2 = !se && c.has(7);
  if (!se && !dw2 && c.has(8)) c.error("B_dw2 '", c.input_name(8), "' is given without W_dw2");
  if (dw2) {
    const Shape& w2 = c.shape(7);
    if (w2.size() != 4 || w2[0] != E || w2[1] != 1 || w2[2] < 1 || w2[3] < 1)
      c.error("W_dw2 '", c.input_name(7), "' must have shape [", E, ",1,KH2,KW2] (E = ", E, "), got ", shape_str(w2));
    if (c.has(8)) require_shape(c, 8, "B_dw2", {E}, "[E]");
  }
  int64_t OC = E;
  if (project) {
    const Shape& w = c.shape(5);
    if (w.size() != 4 || w[1] != E || w[2] != 1 || w[3] != 1 || w[0] < 1)
      c.error("W_project '", c.input_name(5), "' must have shape [OC,", E, ",1,1], got ", shape_str(w));
    OC = w[0];
    if (c.has(6)) require_shape(c, 6, "B_project", {OC}, "[OC]");
  }

  stage_activation(c, "expand", expand, se);
  stage_activation(c, "dw", true, se);
  stage_activation(c, "project", project, se);
  // A depthwise stage's output size (error if its kernel does not fit).
  auto stage_out = [&](const std::string& stage, const Shape& w, int64_t in_h, int64_t in_w, int64_t out[2]) {
    const auto strides = window_attr(c, (stage + "_strides").c_str(), {1, 1}, 2, 1);
    const auto pads = window_attr(c, (stage + "_pads").c_str(), {0, 0, 0, 0}, 4, 0);
    const int64_t in_size[2] = {in_h, in_w};
    for (size_t i = 0; i < 2; ++i) {
      out[i] = pooled_size(in_size[i], w[2 + i], strides[i], pads[i], pads[i + 2], 1, false);
      if (out[i] <= 0)
        c.error(stage == "dw" ? "depthwise" : "second depthwise", " kernel ", w[2 + i], " does not fit input size ", in_size[i], " with pads ", pads[i], "+",
                pads[i + 2], " on spatial axis ", i);
    }
    n.attrs[stage + "_strides"] = strides;
    n.attrs[stage + "_pads"] = pads;
  };
  int64_t out[2];
  stage_out("dw", wd, x[2], x[3], out);
  if (dw2) {
    stage_activation(c, "dw2", true);
    const int64_t mid[2] = {out[0], out[1]};
    stage_out("dw2", c.shape(7), mid[0], mid[1], out);
  } else {
    for (const char* k : {"dw2_strides", "dw2_pads"})
      if (n.has(k)) c.error(k, " is given without W_dw2 (input 7)");
    stage_activation(c, "dw2", false);
  }
  const Shape y = {x[0], OC, out[0], out[1]};
  const int64_t residual = n.i("residual", 0);
  if (residual != 0 && residual != 1) c.error("residual must be 0 or 1, got ", residual);
  if (residual == 1 && !project) c.error("residual = 1 needs the project stage (W_project)");
  if (residual == 1 && y != x)
    c.error("residual = 1 needs the output shape ", shape_str(y), " to equal the input shape ", shape_str(x));
  n.attrs["residual"] = residual;
  n.attrs["fused_nodes"] = n.s("fused_nodes", "");
  return c.output(DType::F32, y);
}

// The squeeze-excite block: the block part as FusedInvertedResidual's (inputs 0..6, project
// required), then the two SE convs (7..10) and the extended activations.
ValueInfo infer_fused_se_block(NodeContext& c) {
  c.require_inputs(1, 11);
  if (!c.has(5)) c.error("input 5 (W_project) is required: the squeeze-excite gate scales the project conv's input");
  if (!c.has(7) || !c.has(9)) c.error("inputs 7 (W_squeeze) and 9 (W_excite) are required");
  const ValueInfo y = infer_fused_inverted_residual(c);  // the block part (it knows FusedSEBlock)
  for (size_t k = 7; k < 11; ++k)
    if (c.has(k)) c.require_f32(k);
  const int64_t E = c.shape(3)[0];
  const Shape& ws = c.shape(7);
  if (ws.size() != 4 || ws[1] != E || ws[2] != 1 || ws[3] != 1 || ws[0] < 1)
    c.error("W_squeeze '", c.input_name(7), "' must have shape [S,", E, ",1,1], got ", shape_str(ws));
  const int64_t S = ws[0];
  if (c.has(8)) require_shape(c, 8, "B_squeeze", {S}, "[S]");
  require_shape(c, 9, "W_excite", {E, S, 1, 1}, "[E,S,1,1]");
  if (c.has(10)) require_shape(c, 10, "B_excite", {E}, "[E]");
  stage_activation(c, "squeeze", true, true);
  stage_activation(c, "excite", true, true);
  return y;
}

// The int8 block: each stage is inferred as the QLinearConv it replaces (fused_qlinear::stage_node,
// every check of QLinearConv applies, errors name "<fused>/<stage>"), the residual as its QLinearAdd.
ValueInfo infer_fused_qlinear_inverted_residual(NodeContext& c) {
  namespace fq = fused_qlinear;
  Node& n = c.node();
  c.require_inputs(1, fq::kInputs);
  const Shape& x = c.shape(0);
  if (x.size() != 4) c.error("input '", c.input_name(0), "' must have rank 4 [N,C,H,W], got shape ", shape_str(x));
  if (!c.has(fq::kDw + 2)) c.error("input ", fq::kDw + 2, " (w of the depthwise stage) is required");
  const bool expand = c.has(fq::kExpand + 2), project = c.has(fq::kProject + 2);
  for (auto [stage, present] : {std::pair<const char*, bool>{"expand", expand}, {"project", project}})
    for (size_t k = 0; k < fq::kStageInputs && !present; ++k)
      if (c.has(fq::stage_base(stage) + k))
        c.error("input ", fq::stage_base(stage) + k, " ('", c.input_name(fq::stage_base(stage) + k), "') is given without the ",
                stage, " stage's w (input ", fq::stage_base(stage) + 2, ")");
  const int64_t residual = n.i("residual", 0), x_first = n.i("residual_x_first", 0);
  if (residual != 0 && residual != 1) c.error("residual must be 0 or 1, got ", residual);
  if (x_first != 0 && x_first != 1) c.error("residual_x_first must be 0 or 1, got ", x_first);
  if (residual == 1 && !project) c.error("residual = 1 needs the project stage");
  for (size_t k = fq::kAdd; k < fq::kInputs && residual == 0; ++k)
    if (c.has(k)) c.error("input ", k, " ('", c.input_name(k), "') of the residual QLinearAdd is given with residual = 0");
  n.attrs["dw_strides"] = window_attr(c, "dw_strides", {1, 1}, 2, 1);
  n.attrs["dw_pads"] = window_attr(c, "dw_pads", {0, 0, 0, 0}, 4, 0);
  if (expand) {  // the expand stage may be a KxK conv (the stem): its strides and pads
    n.attrs["expand_strides"] = window_attr(c, "expand_strides", {1, 1}, 2, 1);
    n.attrs["expand_pads"] = window_attr(c, "expand_pads", {0, 0, 0, 0}, 4, 0);
  } else if (n.attrs.count("expand_strides") || n.attrs.count("expand_pads")) {
    c.error("expand_strides / expand_pads are given without the expand stage");
  }

  // Infers sub-node `sub` from the infos of its operands `ops` (value infos) and of the fused node's
  // inputs `params` (positions in n, in sub's order after the operands).
  auto infer_sub = [&](Node& sub, const std::vector<std::pair<size_t, ValueInfo>>& ops, const std::vector<size_t>& params) {
    std::vector<ValueInfo> in(sub.inputs.size());
    std::vector<const Tensor*> consts(sub.inputs.size(), nullptr);
    for (const auto& [pos, info] : ops) in[pos] = info;
    size_t pos = 0;
    for (size_t k : params) {
      while (pos < sub.inputs.size() && in[pos].known) ++pos;
      if (pos >= sub.inputs.size()) break;
      if (c.has(k)) in[pos] = c.info(k), consts[pos] = c.constant(k);
      ++pos;
    }
    return infer_node(sub, in, consts).at(0);
  };
  auto stage = [&](const char* name, const ValueInfo& in, const std::string& in_name, const std::string& out_name) {
    const size_t base = fq::stage_base(name);
    const Shape& w = c.shape(base + 2);
    const bool dw = std::string(name) == "dw", ex = std::string(name) == "expand";
    // the expand stage: 1x1, or a dense KxK conv; the project stage: 1x1
    if (w.size() != 4 || (dw ? (w[0] != in.shape[1] || w[1] != 1) : !ex && (w[2] != 1 || w[3] != 1)))
      c.error(dw ? "the depthwise stage's w '" : cat("the ", name, " stage's w '"), c.input_name(base + 2), "' must have shape ",
              dw ? cat("[", in.shape[1], ",1,KH,KW]") : ex ? std::string("[E,C,KH,KW]") : std::string("[OC,C,1,1]"),
              ", got ", shape_str(w));
    Node sub = fq::stage_node(n, name, in_name, out_name, w, in.shape[1]);
    std::vector<size_t> params;
    for (size_t k = 0; k < sub.inputs.size() - 1; ++k) params.push_back(base + k);
    return infer_sub(sub, {{0, in}}, params);
  };
  ValueInfo cur = c.info(0);
  if (expand) cur = stage("expand", cur, c.input_name(0), n.name + "/expanded");
  cur = stage("dw", cur, expand ? n.name + "/expanded" : c.input_name(0), n.name + "/filtered");
  if (project) cur = stage("project", cur, n.name + "/filtered", n.name + "/projected");
  if (residual == 1) {
    if (cur.shape != x)
      c.error("residual = 1 needs the project output ", shape_str(cur.shape), " to equal the input shape ", shape_str(x));
    Node add = fq::add_node(n, c.input_name(0), n.name + "/projected", n.outputs.empty() ? "" : n.outputs[0]);
    std::vector<size_t> params;
    for (size_t k = fq::kAdd; k < fq::kAdd + add.inputs.size() - 2; ++k) params.push_back(k);
    cur = infer_sub(add, {{x_first ? size_t(0) : size_t(3), c.info(0)}, {x_first ? size_t(3) : size_t(0), cur}}, params);
  }
  n.attrs["residual"] = residual;
  n.attrs["residual_x_first"] = x_first;
  n.attrs["fused_nodes"] = n.s("fused_nodes", "");
  return c.output(cur.dtype, cur.shape);
}

}  // namespace locus::shape_inference
