// Parameters and multiply-accumulates of a graph: the MAC formula of each op is one entry of
// mac_table(), keyed by op key.
#include "graph/cost.h"

#include "graph/ops.h"

namespace locus {

int64_t shape_elements(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

int64_t count_parameters(const Graph& g) {
  int64_t n = 0;
  for (auto& [name, t] : g.constants)  // float weights, and the int8 / uint8 / int32 ones of a quantized model
    if ((t.dtype == DType::F32 || t.dtype == DType::I8 || t.dtype == DType::U8 || t.dtype == DType::I32) &&
        t.numel() > 1)
      n += t.numel();
  return n;
}

namespace {

// Every output takes C / G x KH x KW (x ...) MACs (the weight is input 1 of Conv, 3 of QLinearConv).
int64_t conv_macs(const Graph& g, const Node& n) {
  ValueInfo w = g.info(n.input(n.op == "QLinearConv" ? 3 : 1)), y = g.info(n.outputs[0]);
  int64_t per_output = w.shape[1];  // C / G
  for (size_t d = 2; d < w.shape.size(); ++d) per_output *= w.shape[d];
  return shape_elements(y.shape) * per_output;
}

int64_t gemm_macs(const Graph& g, const Node& n) {
  ValueInfo a = g.info(n.input(0)), y = g.info(n.outputs[0]);
  int64_t K = n.i("transA", 0) ? a.shape[0] : a.shape[1];
  return y.shape[0] * y.shape[1] * K;
}

int64_t matmul_macs(const Graph& g, const Node& n) {
  ValueInfo a = g.info(n.input(0)), y = g.info(n.outputs[0]);
  return shape_elements(y.shape) * a.shape.back();
}

// expand (H x W x C x E) + depthwise (MH x MW x E x KH x KW) [+ second depthwise] + project
// (OH x OW x E x OC), per image.
int64_t fused_inverted_residual_macs(const Graph& g, const Node& n) {
  const Shape x = g.info(n.input(0)).shape, y = g.info(n.outputs[0]).shape, wd = g.info(n.input(3)).shape;
  const int64_t N = x[0], C = x[1], H = x[2], W = x[3], E = wd[0], OH = y[2], OW = y[3];
  const auto st = n.ints("dw_strides", {1, 1}), pads = n.ints("dw_pads", {0, 0, 0, 0});
  const int64_t MH = (H + pads[0] + pads[2] - wd[2]) / st[0] + 1, MW = (W + pads[1] + pads[3] - wd[3]) / st[1] + 1;
  int64_t macs = MH * MW * E * wd[2] * wd[3];
  if (!n.input(1).empty()) macs += H * W * C * E;
  const bool se = n.op == "FusedSEBlock";
  if (!se && !n.input(7).empty()) {
    const Shape wd2 = g.info(n.input(7)).shape;
    macs += OH * OW * E * wd2[2] * wd2[3];
  }
  if (!n.input(5).empty()) macs += OH * OW * E * y[1];
  if (se) macs += 2 * E * g.info(n.input(7)).shape[0];  // the squeeze and excite 1x1 convs on 1 x 1
  return N * macs;
}

// A fused chain: every stage's MACs, as the convs it replaced (the residual Add is not a MAC).
int64_t fused_chain_macs(const Graph& g, const Node& n) {
  const Shape x = g.info(n.input(0)).shape;
  const auto st = n.ints("strides"), pads = n.ints("pads");
  int64_t h = x[2], w = x[3], macs = 0;
  for (size_t s = 0; 2 + 2 * s < n.inputs.size(); ++s) {
    const Shape ws = g.info(n.input(2 + 2 * s)).shape;
    h = (h + pads[4 * s] + pads[4 * s + 2] - ws[2]) / st[2 * s] + 1;
    w = (w + pads[4 * s + 1] + pads[4 * s + 3] - ws[3]) / st[2 * s + 1] + 1;
    macs += h * w * ws[0] * ws[1] * ws[2] * ws[3];
  }
  return x[0] * macs;
}

// The int8 block: expand + depthwise + project, as the QLinearConvs it replaced.
int64_t fused_qlinear_inverted_residual_macs(const Graph& g, const Node& n) {
  const Shape x = g.info(n.input(0)).shape, y = g.info(n.outputs[0]).shape, wd = g.info(n.input(11)).shape;
  const int64_t E = wd[0], OH = y[2], OW = y[3];
  int64_t macs = OH * OW * E * wd[2] * wd[3];
  if (!n.input(3).empty()) {  // 1x1, or a KxK conv (expand_strides / expand_pads) onto the depthwise input
    const Shape we = g.info(n.input(3)).shape;
    const auto es = n.ints("expand_strides", {1, 1}), ep = n.ints("expand_pads", {0, 0, 0, 0});
    const int64_t eh = (x[2] + ep[0] + ep[2] - we[2]) / es[0] + 1, ew = (x[3] + ep[1] + ep[3] - we[3]) / es[1] + 1;
    macs += eh * ew * E * we[1] * we[2] * we[3];
  }
  if (!n.input(19).empty()) macs += OH * OW * E * y[1];
  return x[0] * macs;
}

}  // namespace

const MacTable& mac_table() {
  static const MacTable table = [] {
    MacTable t("MAC counter");
    t.add({"Conv", "outputs x C/G x KH x KW", conv_macs});
    t.add({"Gemm", "M x N x K", gemm_macs});
    t.add({"MatMul", "outputs x K", matmul_macs});
    t.add({"QLinearConv", "outputs x C/G x KH x KW (int8)", conv_macs});
    t.add({"QLinearMatMul", "outputs x K (int8)", matmul_macs});
    t.add({op_key(kLocusDomain, "FusedInvertedResidual"), "expand + depthwise (+ second depthwise) + project",
           fused_inverted_residual_macs});
    t.add({op_key(kLocusDomain, "FusedSEBlock"), "expand + depthwise + squeeze + excite + project",
           fused_inverted_residual_macs});
    t.add({op_key(kLocusDomain, "FusedQLinearInvertedResidual"), "expand + depthwise + project (int8)",
           fused_qlinear_inverted_residual_macs});
    t.add({op_key(kLocusDomain, "FusedChain"), "every 1x1 and depthwise stage", fused_chain_macs});
    return t;
  }();
  return table;
}

int64_t node_macs(const Graph& g, const Node& n) {
  const MacTable::Entry* e = mac_table().find(n);
  return e ? e->fn(g, n) : 0;
}

int64_t graph_macs(const Graph& g) {
  int64_t t = 0;
  for (const Node& n : g.nodes) t += node_macs(g, n);
  return t;
}

}  // namespace locus
