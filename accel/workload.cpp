// Workload extraction (accel/workload.h): a small registry of op families (conv, the fused inverted
// residual, gemm, pool, reduce, view, eltwise), each with the test that takes a node and the builder
// of its Layer; the first family that takes a node builds it, and a family that cannot describe a
// node it took (a Conv that is not 2-D) throws Unsupported saying why.
#include "accel/workload.h"

#include <algorithm>
#include <set>
#include <utility>

#include "graph/cost.h"
#include "graph/ops.h"

namespace locus::accel {

const char* layer_kind_name(LayerKind k) {
  switch (k) {
    case LayerKind::Pointwise: return "pointwise";
    case LayerKind::Depthwise: return "depthwise";
    case LayerKind::Conv: return "conv";
    case LayerKind::Gemm: return "gemm";
    case LayerKind::Pool: return "pool";
    case LayerKind::Reduce: return "reduce";
    case LayerKind::Eltwise: return "eltwise";
    case LayerKind::View: return "view";
    case LayerKind::Fused: return "fused";
  }
  return "?";
}

std::string Workload::storage(const std::string& name) const {
  std::string v = name;
  for (int guard = 0; guard < 1000; ++guard) {
    auto it = alias.find(v);
    if (it == alias.end()) return v;
    v = it->second;
  }
  return v;
}

namespace {

// Window attributes as shape inference wrote them back (pads: top, left, bottom, right).
ConvGeom window_geom(const Node& n, const Shape& x, const Shape& y, int64_t kh, int64_t kw,
                     const std::string& prefix = "") {
  ConvGeom g;
  g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3];
  g.OC = y[1], g.OH = y[2], g.OW = y[3];
  auto st = n.ints(prefix + "strides", {1, 1});
  auto pads = n.ints(prefix + "pads", {0, 0, 0, 0});
  auto dil = prefix.empty() ? n.ints("dilations", {1, 1}) : std::vector<int64_t>{1, 1};
  if (st.size() < 2) st = {1, 1};
  if (pads.size() < 4) pads = {0, 0, 0, 0};
  if (dil.size() < 2) dil = {1, 1};
  g.SH = st[0], g.SW = st[1];
  g.PT = pads[0], g.PL = pads[1], g.PB = pads[2], g.PR = pads[3];
  g.KH = (kh - 1) * dil[0] + 1;
  g.KW = (kw - 1) * dil[1] + 1;
  g.taps = kh * kw;
  return g;
}

bool is_view(const std::string& op) {
  static const std::set<std::string> v = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"};
  return v.count(op) != 0;
}

// The stage layers of a FusedInvertedResidual (the same work, one layer per original node).
std::vector<Layer> fused_stages(const Layer& f, const Node& n, const Graph& g) {
  std::vector<Layer> st;
  const Shape x = g.info(n.input(0)).shape;
  const Shape y = g.info(n.outputs[0]).shape;
  const int64_t N = x[0], C = x[1], H = x[2], W = x[3], E = f.block.E, OC = y[1];
  std::string cur = n.input(0);
  int64_t ch = C, h = H, w = W;
  auto tensor = [&](const std::string& suffix) { return n.name + "/" + suffix; };
  const bool project = !n.input(5).empty();
  // One stage layer with its name, op, kind and tensors.
  auto stage = [&](const std::string& suffix, const char* op, LayerKind kind, std::vector<std::string> inputs,
                   std::vector<std::string> weights, std::string output) {
    Layer l;
    l.name = n.name + "/" + suffix;
    l.op = op;
    l.kind = kind;
    l.inputs = std::move(inputs);
    l.weights = std::move(weights);
    l.outputs = {std::move(output)};
    return l;
  };
  // A 1x1 convolution stage of cin -> cout channels on the current h x w map, reading `cur`.
  auto pointwise = [&](const std::string& suffix, const std::string& weight, std::string output, int64_t cin,
                       int64_t cout) {
    Layer l = stage(suffix, "Conv", LayerKind::Pointwise, {cur}, {weight}, std::move(output));
    l.geom = ConvGeom{N, cin, h, w, cout, h, w, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1};
    l.M = N * h * w, l.K = cin, l.N = cout;
    l.macs = l.ops = l.M * l.K * l.N;
    st.push_back(l);
    cur = l.outputs[0];
  };
  // The exporters' decomposed HardSwish (FusedSEBlock's "hardswish_ops") after a stage: its four
  // streamed element-wise layers (Add 3, Clip 0..6, Mul, Div 6), as the unfused graph runs them.
  auto hardswish_ops = [&](const std::string& stage_name) {
    if (n.s(stage_name + "_activation", "") != "hardswish_ops") return;
    const std::string x0 = cur;
    const ConvGeom geom{N, ch, h, w, ch, h, w, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1};
    const char* ops[] = {"Add", "Clip", "Mul", "Div"};
    for (int k = 0; k < 4; ++k) {
      std::vector<std::string> ins = k == 2 ? std::vector<std::string>{x0, cur} : std::vector<std::string>{cur};
      Layer l = stage(cat(stage_name, "_hardswish_", k), ops[k], LayerKind::Eltwise, std::move(ins), {},
                      tensor(cat(stage_name, "_hardswish_", k)));
      l.geom = geom;
      l.ops = N * ch * h * w;
      st.push_back(l);
      cur = l.outputs[0];
    }
  };
  if (!n.input(1).empty()) {
    pointwise("expand", n.input(1), tensor("expanded"), C, E);
    ch = E;
    hardswish_ops("expand");
  }
  const bool dw2 = !f.se && !n.input(7).empty();
  for (int s = 0; s < (dw2 ? 2 : 1); ++s) {
    const std::string wname = n.input(s == 0 ? 3 : 7);
    const Shape ws = g.info(wname).shape;
    const std::string prefix = s == 0 ? "dw_" : "dw2_";
    const bool last = !project && (s == (dw2 ? 1 : 0));
    Layer l = stage(s == 0 ? "dw" : "dw2", "Conv", LayerKind::Depthwise, {cur}, {wname},
                    last ? n.outputs[0] : tensor(s == 0 ? "dw" : "dw2"));
    // output size of this stage
    auto stv = n.ints(prefix + "strides", {1, 1});
    auto pads = n.ints(prefix + "pads", {0, 0, 0, 0});
    const int64_t oh = (h + pads[0] + pads[2] - ws[2]) / stv[0] + 1;
    const int64_t ow = (w + pads[1] + pads[3] - ws[3]) / stv[1] + 1;
    l.geom = window_geom(n, {N, ch, h, w}, {N, ch, oh, ow}, ws[2], ws[3], prefix);
    l.geom.G = ch;
    l.macs = l.ops = N * ch * oh * ow * ws[2] * ws[3];
    st.push_back(l);
    cur = l.outputs[0];
    h = oh, w = ow;
    if (s == 0) hardswish_ops("dw");
  }
  if (f.se) {
    // the squeeze-excite: the mean of D, two 1x1 convs on 1 x 1, D scaled by the gate
    const std::string d = cur;
    const int64_t dh = h, dw_ = w;
    Layer pool = stage("pool", "GlobalAveragePool", LayerKind::Reduce, {d}, {}, tensor("pooled"));
    pool.geom = ConvGeom{N, E, h, w, E, 1, 1, h, w, 1, 1, 0, 0, 0, 0, 1, 1};
    pool.ops = N * E * h * w;
    st.push_back(pool);
    cur = pool.outputs[0];
    h = w = 1;
    pointwise("squeeze", n.input(7), tensor("squeezed"), E, f.se_squeeze);
    pointwise("excite", n.input(9), tensor("gate"), f.se_squeeze, E);
    Layer mul = stage("scale", "Mul", LayerKind::Eltwise, {d, cur}, {}, tensor("scaled"));
    mul.geom = ConvGeom{N, E, dh, dw_, E, dh, dw_, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1};
    mul.ops = N * E * dh * dw_;
    st.push_back(mul);
    cur = mul.outputs[0];
    h = dh, w = dw_;
  }
  if (project) pointwise("project", n.input(5), f.residual ? tensor("projected") : n.outputs[0], E, OC);
  if (f.residual) {
    Layer l = stage("add", "Add", LayerKind::Eltwise, {cur, n.input(0)}, {}, n.outputs[0]);
    l.ops = shape_elements(y);
    st.push_back(l);
  }
  return st;
}

// ---- the op families: one entry per family, tried in order; the first that takes a node builds its
// layer. A family that takes a node it cannot describe throws Unsupported saying why.

void build_conv(const Node& n, const Graph& g, Layer& l, Workload&) {
  const Shape y = g.info(l.outputs[0]).shape;
  const Shape x = g.info(n.input(0)).shape;
  const Shape w = g.info(n.input(1)).shape;
  if (x.size() != 4 || w.size() != 4)
    throw Unsupported(cat("accelerator model: Conv '", n.name, "' is not 2-D (input ", shape_str(x), ")"));
  l.inputs = {n.input(0)};
  l.weights = {n.input(1)};
  l.geom = window_geom(n, x, y, w[2], w[3]);
  l.geom.G = n.i("group", 1);
  const ConvGeom& c = l.geom;
  l.macs = l.ops = shape_elements(y) * w[1] * w[2] * w[3];
  if (c.G == 1 && w[2] == 1 && w[3] == 1 && c.PT == 0 && c.PL == 0 && c.PB == 0 && c.PR == 0) {
    l.kind = LayerKind::Pointwise;
    l.M = c.N * c.OH * c.OW, l.K = c.C, l.N = c.OC;
  } else if (c.G > 1 && c.G == c.C && c.OC == c.C && w[1] == 1) {
    l.kind = LayerKind::Depthwise;
  } else {
    l.kind = LayerKind::Conv;
    l.M = c.N * c.OH * c.OW, l.K = w[1] * w[2] * w[3], l.N = c.OC;
  }
}

void build_fused(const Node& n, const Graph& g, Layer& l, Workload& wl) {
  const Shape y = g.info(l.outputs[0]).shape;
  const Shape x = g.info(n.input(0)).shape;
  const Shape wd = g.info(n.input(3)).shape;
  l.kind = LayerKind::Fused;
  l.inputs = {n.input(0)};
  l.se = n.op == "FusedSEBlock";
  for (size_t k : l.se ? std::vector<size_t>{1, 3, 5, 7, 9} : std::vector<size_t>{1, 3, 7, 5})
    if (!n.input(k).empty()) l.weights.push_back(n.input(k));
  if (l.se) l.se_squeeze = g.info(n.input(7)).shape[0];
  l.residual = n.i("residual", 0) != 0;
  schedule::FusedBlockShape& b = l.block;
  b.H = x[2], b.W = x[3], b.C = x[1];
  b.E = wd[0];
  b.OC = y[1];
  b.expand = !n.input(1).empty();
  b.project = !n.input(5).empty();
  auto st = n.ints("dw_strides", {1, 1});
  auto pads = n.ints("dw_pads", {0, 0, 0, 0});
  b.KH = wd[2], b.KW = wd[3], b.SH = st[0], b.SW = st[1];
  b.PT = pads[0], b.PL = pads[1], b.PB = pads[2], b.PR = pads[3];
  l.dw_taps = wd[2] * wd[3];
  if (!l.se && !n.input(7).empty()) {
    // A second depthwise stage (CP chains): the planner maps bands through both stages.
    const Shape w2 = g.info(n.input(7)).shape;
    auto st2 = n.ints("dw2_strides", {1, 1});
    auto pads2 = n.ints("dw2_pads", {0, 0, 0, 0});
    b.dw2 = true;
    b.KH2 = w2[2], b.KW2 = w2[3], b.SH2 = st2[0], b.SW2 = st2[1];
    b.PT2 = pads2[0], b.PL2 = pads2[1], b.PB2 = pads2[2], b.PR2 = pads2[3];
    l.dw_taps += w2[2] * w2[3];
  }
  l.stages = fused_stages(l, n, g);
  for (auto& s : l.stages) l.macs += s.macs;
  l.ops = l.macs;
  // The stages' intermediates are not in the graph: extract_workload sizes them from the stage
  // geometry. The group's own output is a graph value, sized from its shape like any other.
  for (auto& s : l.stages)
    for (auto& o : s.outputs)
      if (o != l.outputs[0]) wl.entries[o] = 0;
}

// A FusedChain (graph/ops.h): the chain shape the planner plans, and the same work stage by stage
// (one Pointwise / Depthwise layer per stage, then Eltwise Add of R and Relu when fused), with
// intermediates named "<node>/s<i>", "<node>/sum".
void build_chain(const Node& n, const Graph& g, Layer& l, Workload& wl) {
  const Shape x = g.info(n.input(0)).shape;
  const Shape y = g.info(l.outputs[0]).shape;
  const auto kinds = n.ints("kinds"), st = n.ints("strides"), pads = n.ints("pads");
  const size_t stages = kinds.size();
  const bool relu = n.s("output_activation", "none") == "relu", residual = !n.input(1).empty();
  l.kind = LayerKind::Fused;
  l.inputs = {n.input(0)};
  if (residual && n.input(1) != n.input(0)) l.inputs.push_back(n.input(1));
  l.residual = residual;
  schedule::FusedChainShape cs;
  cs.H = x[2], cs.W = x[3], cs.C = x[1];
  cs.residual = !residual ? schedule::ChainResidual::None
                          : n.input(1) == n.input(0) ? schedule::ChainResidual::Input : schedule::ChainResidual::External;
  std::string cur = n.input(0);
  int64_t h = x[2], w = x[3], ch = x[1];
  for (size_t s = 0; s < stages; ++s) {
    const std::string wn = n.input(2 + 2 * s);
    const Shape ws = g.info(wn).shape;
    l.weights.push_back(wn);
    schedule::ChainStage cg;
    cg.depthwise = kinds[s] == 1;
    cg.OC = ws[0];
    cg.KH = ws[2], cg.KW = ws[3], cg.SH = st[2 * s], cg.SW = st[2 * s + 1];
    cg.PT = pads[4 * s], cg.PL = pads[4 * s + 1], cg.PB = pads[4 * s + 2], cg.PR = pads[4 * s + 3];
    cs.stages.push_back(cg);
    const int64_t oh = (h + cg.PT + cg.PB - cg.KH) / cg.SH + 1, ow = (w + cg.PL + cg.PR - cg.KW) / cg.SW + 1;
    Layer sl;
    sl.name = cat(n.name, "/s", s);
    sl.op = "Conv";
    sl.inputs = {cur};
    sl.weights = {wn};
    sl.outputs = {s + 1 == stages && !residual ? l.outputs[0] : cat(n.name, "/s", s)};
    sl.geom = ConvGeom{x[0], ch, h, w, cg.OC, oh, ow, cg.KH, cg.KW, cg.SH, cg.SW, cg.PT, cg.PL, cg.PB, cg.PR,
                       cg.depthwise ? ch : 1, cg.KH * cg.KW};
    sl.macs = sl.ops = x[0] * oh * ow * ws[0] * ws[1] * ws[2] * ws[3];
    if (cg.depthwise) {
      sl.kind = LayerKind::Depthwise;
    } else {
      sl.kind = LayerKind::Pointwise;
      sl.M = x[0] * oh * ow, sl.K = ch, sl.N = cg.OC;
    }
    l.dw_taps += cg.depthwise ? cg.KH * cg.KW : 0;
    l.stages.push_back(sl);
    cur = sl.outputs[0];
    h = oh, w = ow, ch = cg.OC;
  }
  if (residual) {
    Layer a;
    a.name = n.name + "/add", a.op = "Add", a.kind = LayerKind::Eltwise;
    a.inputs = {cur, n.input(1)};
    a.outputs = {relu ? n.name + "/sum" : l.outputs[0]};
    a.ops = shape_elements(y);
    l.stages.push_back(a);
    cur = a.outputs[0];
  }
  if (relu) {
    Layer r;
    r.name = n.name + "/relu", r.op = "Relu", r.kind = LayerKind::Eltwise;
    r.inputs = {cur};
    r.outputs = {l.outputs[0]};
    r.ops = shape_elements(y);
    l.stages.push_back(r);
  }
  cs.check();
  l.chain = cs;
  for (auto& s : l.stages) l.macs += s.macs;
  l.ops = l.macs;
  for (auto& s : l.stages)
    for (auto& o : s.outputs)
      if (o != l.outputs[0]) wl.entries[o] = 0;
}

void build_gemm(const Node& n, const Graph& g, Layer& l, Workload&) {
  const Shape a = g.info(n.input(0)).shape;
  const Shape bs = g.info(n.input(1)).shape;
  l.kind = LayerKind::Gemm;
  l.inputs = {n.input(0)};
  l.weights = {n.input(1)};
  const bool transB = n.op == "Gemm" && n.i("transB", 0) != 0;
  l.b_kn = !transB;
  l.K = transB ? bs[1] : bs[0];
  l.N = transB ? bs[0] : bs[1];
  l.M = shape_elements(a) / l.K;
  l.macs = l.ops = l.M * l.K * l.N;
}

void build_pool(const Node& n, const Graph& g, Layer& l, Workload&) {
  const Shape y = g.info(l.outputs[0]).shape;
  const Shape x = g.info(n.input(0)).shape;
  auto k = n.ints("kernel_shape", {1, 1});
  l.kind = LayerKind::Pool;
  l.inputs = {n.input(0)};
  l.geom = window_geom(n, x, y, k[0], k[1]);
  l.geom.G = x[1];
  l.ops = shape_elements(y) * k[0] * k[1];
}

void build_reduce(const Node& n, const Graph& g, Layer& l, Workload&) {
  l.kind = LayerKind::Reduce;
  l.inputs = {n.input(0)};
  l.ops = shape_elements(g.info(n.input(0)).shape);
}

void build_view(const Node& n, const Graph&, Layer& l, Workload& wl) {
  l.kind = LayerKind::View;
  l.inputs = {n.input(0)};
  wl.alias[l.outputs[0]] = n.input(0);
}

void build_eltwise(const Node& n, const Graph& g, Layer& l, Workload&) {
  l.kind = LayerKind::Eltwise;
  for (size_t k = 0; k < n.inputs.size(); ++k) {
    const std::string& v = n.inputs[k];
    if (v.empty()) continue;
    if (g.is_constant(v)) {
      if (!is_parameter_operand(n, k)) l.weights.push_back(v);
    } else {
      l.inputs.push_back(v);
    }
  }
  int64_t outs = 0;
  for (auto& o : l.outputs) outs += shape_elements(g.info(o).shape);
  l.ops = outs;
}

struct OpFamily {
  const char* name;
  bool (*takes)(const Node&, const Graph&);
  void (*build)(const Node&, const Graph&, Layer&, Workload&);
};

// In order; the last takes every node.
const std::vector<OpFamily>& op_families() {
  static const std::vector<OpFamily> families = {
      {"conv", [](const Node& n, const Graph&) { return n.op == "Conv" && n.domain.empty(); }, build_conv},
      {"fused-inverted-residual",
       [](const Node& n, const Graph&) {
         return (n.op == "FusedInvertedResidual" || n.op == "FusedSEBlock") && n.domain == kLocusDomain;
       },
       build_fused},
      {"fused-chain", [](const Node& n, const Graph&) { return n.op == "FusedChain" && n.domain == kLocusDomain; },
       build_chain},
      {"gemm",  // a constant B only: a product of two activations is streamed
       [](const Node& n, const Graph& g) {
         return (n.op == "Gemm" || n.op == "MatMul") && n.domain.empty() && g.is_constant(n.input(1)) &&
                g.info(n.input(0)).shape.size() >= 2 && g.info(n.input(1)).shape.size() == 2;
       },
       build_gemm},
      {"pool",  // 2-D windows only
       [](const Node& n, const Graph& g) {
         return (n.op == "MaxPool" || n.op == "AveragePool" || n.op == "LpPool") &&
                g.info(n.input(0)).shape.size() == 4;
       },
       build_pool},
      {"reduce",
       [](const Node& n, const Graph&) {
         return n.op == "GlobalAveragePool" || n.op == "GlobalMaxPool" || n.op == "ReduceMean" || n.op == "ReduceMax";
       },
       build_reduce},
      {"view",  // of an activation (a view of a constant is computed like any op)
       [](const Node& n, const Graph& g) {
         return is_view(n.op) && !n.input(0).empty() && !g.is_constant(n.input(0));
       },
       build_view},
      {"eltwise", [](const Node&, const Graph&) { return true; }, build_eltwise},
  };
  return families;
}

}  // namespace

Workload extract_workload(const Graph& g) {
  Workload wl;
  if (!g.inputs.empty()) {
    const Shape& s = g.info(g.inputs[0]).shape;
    if (!s.empty()) wl.batch = s[0];
  }
  auto note = [&](const std::string& v) {
    if (!v.empty() && !wl.entries.count(v)) wl.entries[v] = shape_elements(g.info(v).shape);
  };
  for (auto& in : g.inputs) note(in);
  for (const Node& n : g.nodes) {
    Layer l;
    l.name = n.name;
    l.op = n.op;
    for (auto& o : n.outputs)
      if (!o.empty()) l.outputs.push_back(o);
    if (l.outputs.empty()) continue;
    for (const OpFamily& f : op_families())
      if (f.takes(n, g)) {
        f.build(n, g, l, wl);
        break;
      }
    for (auto& v : l.inputs) note(v);
    for (auto& v : l.weights) note(v);
    for (auto& v : l.outputs) note(v);
    if (l.kind == LayerKind::Fused) {
      // intermediate tensors of the layer-by-layer form: sized from the stage geometry
      for (auto& s : l.stages)
        for (auto& o : s.outputs) {
          if (o == l.outputs[0]) continue;
          const ConvGeom& c = s.geom;
          wl.entries[o] = s.kind == LayerKind::Eltwise && c.OC == 0 ? wl.entries[l.outputs[0]] : c.N * c.OC * c.OH * c.OW;
        }
    }
    wl.layers.push_back(std::move(l));
  }
  return wl;
}

}  // namespace locus::accel
