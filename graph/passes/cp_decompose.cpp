// Pass `cp-decompose` (interface: graph/passes/cp_decompose.h; method: docs/decomposition.md).
// Matches: default-domain Conv nodes with a 4-D constant float32 weight [Cout, Cin, Kh, Kw], group 1,
//   kernel other than 1x1, constant bias (if any), named in only_nodes when that list is not empty.
// Rank R per layer (RankPolicy), always capped at the full rank (graph/decompose/cp_als.h:
//   cp_full_rank of the fitted tensor, where the CP form is exact by construction):
//   Fixed R; Ratio ceil(value x min(Cin, Cout)) (at least 1); Error: the R found by doubling
//   R = 1, 2, 4, ... until the fit's relative error is <= value (the full rank always is), then
//   bisecting between the last failing and the first passing R, so that the chosen R meets the
//   target and R - 1 (fitted) does not; each fit but the first is warm-started (cp_als_warm) from
//   the fit of the largest rank below it tried so far; MacBudget: the largest R whose decomposed
//   MACs are <= value x the original MACs (refused when even R = 1 exceeds it).
// shapes_only: the same rank choice for Fixed, Ratio and MacBudget (from the shapes), no fit, zero
//   factor weights (report: fitted false, rel_error NaN); Error is refused with a locus::Error.
// Guarantees: the Conv becomes (names from the node's name; weights are new constants "<node>/cp_*.W")
//   3-way: "<node>/cp_in"  Conv 1x1, Cin -> R, no bias, stride 1, no pads
//          "<node>/cp_dw"  Conv depthwise KhxKw, group R, no bias, the original strides, pads, dilations
//          "<node>/cp_out" Conv 1x1, R -> Cout, the original bias and locus.activation* attributes
//   4-way: cp_in, then "<node>/cp_dwh" depthwise Khx1 (strides (SH, 1), pads (top, 0, bottom, 0),
//          dilations (DH, 1)), "<node>/cp_dww" depthwise 1xKw (strides (1, SW), pads (0, left, 0,
//          right), dilations (1, DW)), then cp_out.
//   The last node keeps the original output name (readers and graph outputs are untouched); the
//   intermediate values get shapes from infer_node; the original weight constant is removed when
//   nothing else reads it. The chain computes the CP approximation of W exactly: with R = full rank it
//   equals the original convolution up to float rounding.
// Refuses (CpLayerReport::why_not, and a pass remark "not decomposed: ..."): "filtered", "1x1",
//   "depthwise", "grouped", "non-constant weights", "non-constant bias", "weights are not float32",
//   "not a 2-D convolution", "MAC budget ...".
#include "graph/passes/cp_decompose.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <map>
#include <optional>

#include "graph/decompose/cp_als.h"
#include "graph/ops.h"

namespace locus {

namespace {

// A double from the whole of `s` (no leading/trailing junk), or nullopt.
std::optional<double> parse_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

RankPolicy RankPolicy::parse(const std::string& text) {
  const std::string expect = "expected rank=N, ratio=X, error=X or macs=X";
  auto eq = text.find('=');
  if (eq == std::string::npos) fail("bad rank policy '", text, "': ", expect);
  const std::string key = text.substr(0, eq), val = text.substr(eq + 1);
  std::optional<double> v = parse_number(val);
  RankPolicy p;
  if (key == "rank") {
    p.kind = Kind::Fixed;
    if (!v || *v < 1 || *v != std::floor(*v) || *v > 1e9)
      fail("bad rank policy '", text, "': the rank must be a positive integer");
  } else if (key == "ratio") {
    p.kind = Kind::Ratio;
    if (!v || *v <= 0) fail("bad rank policy '", text, "': the ratio must be a number > 0");
  } else if (key == "error") {
    p.kind = Kind::Error;
    if (!v || *v <= 0 || *v >= 1)
      fail("bad rank policy '", text, "': the relative error target must be a number in (0, 1)");
  } else if (key == "macs") {
    p.kind = Kind::MacBudget;
    if (!v || *v <= 0) fail("bad rank policy '", text, "': the MAC budget must be a number > 0");
  } else {
    fail("bad rank policy '", text, "': unknown key '", key, "', ", expect);
  }
  p.value = *v;
  return p;
}

std::string RankPolicy::describe() const {
  switch (kind) {
    case Kind::Fixed: return cat("rank ", int64_t(value), " (capped at the full rank)");
    case Kind::Ratio: return cat("ratio ", number_text(value), " of min(Cin, Cout)");
    case Kind::Error: return cat("relative error <= ", number_text(value));
    case Kind::MacBudget: return cat("MACs <= ", number_text(value), " x original");
  }
  return "?";
}

namespace {

constexpr const char* kPassName = "cp-decompose";

bool default_domain(const Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

// Geometry of an eligible Conv (after shape inference).
struct ConvGeom {
  int64_t cout = 0, cin = 0, kh = 0, kw = 0;
  int64_t h = 0, w = 0, oh = 0, ow = 0;  // input and output spatial size
  std::vector<int64_t> strides, pads, dilations;
};

int64_t original_macs(const ConvGeom& c) { return c.oh * c.ow * c.cout * c.cin * c.kh * c.kw; }

// MACs of the decomposed chain per unit of rank (the chain's MACs are rank x this).
int64_t macs_per_rank(const ConvGeom& c, CpForm form) {
  const int64_t in = c.h * c.w * c.cin, out = c.oh * c.ow * c.cout;
  if (form == CpForm::ThreeWay) return in + c.oh * c.ow * c.kh * c.kw + out;
  return in + c.oh * c.w * c.kh + c.oh * c.ow * c.kw + out;  // Khx1 runs at OH x W, 1xKw at OH x OW
}

int64_t params_per_rank(const ConvGeom& c, CpForm form) {
  return c.cin + (form == CpForm::ThreeWay ? c.kh * c.kw : c.kh + c.kw) + c.cout;
}

std::vector<int64_t> kernel_dims(const ConvGeom& c, CpForm form) {
  return form == CpForm::ThreeWay ? std::vector<int64_t>{c.cout, c.cin, c.kh * c.kw}
                                  : std::vector<int64_t>{c.cout, c.cin, c.kh, c.kw};
}

decompose::DenseTensor kernel_tensor(const Tensor& w, const ConvGeom& c, CpForm form) {
  decompose::DenseTensor x;
  x.dims = kernel_dims(c, form);
  x.data.resize(size_t(w.numel()));
  for (int64_t i = 0; i < w.numel(); ++i) x.data[size_t(i)] = w.data<float>()[i];
  return x;
}

// Why conv n is not eligible, or nullopt (then `geom` is filled). Fills the report's dims when known.
std::optional<std::string> ineligible(const Graph& g, const Node& n, const CpDecomposeOptions& o, ConvGeom& geom,
                                      CpLayerReport& rep) {
  if (!o.only_nodes.empty() && std::find(o.only_nodes.begin(), o.only_nodes.end(), n.name) == o.only_nodes.end())
    return "filtered";
  if (n.input(1).empty()) return "not a 2-D convolution";
  ValueInfo wi, xi, yi;
  try {
    wi = g.info(n.input(1));
    xi = g.info(n.input(0));
    yi = g.info(n.outputs.at(0));
  } catch (const Error&) {
    return "shapes unknown";
  }
  if (wi.shape.size() != 4 || xi.shape.size() != 4 || yi.shape.size() != 4) return "not a 2-D convolution";
  rep.cout = wi.shape[0];
  rep.cin = wi.shape[1];
  rep.kh = wi.shape[2];
  rep.kw = wi.shape[3];
  const int64_t group = n.i("group", 1);
  if (group != 1) return group == xi.shape[1] && wi.shape[1] == 1 ? "depthwise" : "grouped";
  if (rep.kh == 1 && rep.kw == 1) return "1x1";
  const Tensor* w = g.constant(n.input(1));
  if (!w) return "non-constant weights";
  if (!n.input(2).empty() && !g.is_constant(n.input(2))) return "non-constant bias";
  if (w->dtype != DType::F32) return "weights are not float32";
  geom.cout = rep.cout;
  geom.cin = rep.cin;
  geom.kh = rep.kh;
  geom.kw = rep.kw;
  geom.h = xi.shape[2];
  geom.w = xi.shape[3];
  geom.oh = yi.shape[2];
  geom.ow = yi.shape[3];
  geom.strides = n.ints("strides", {1, 1});
  geom.pads = n.ints("pads", {0, 0, 0, 0});
  geom.dilations = n.ints("dilations", {1, 1});
  if (geom.strides.size() != 2 || geom.pads.size() != 4 || geom.dilations.size() != 2 ||
      n.s("auto_pad", "NOTSET") != "NOTSET")
    return "not a 2-D convolution";
  return std::nullopt;
}

// The rank of a policy that needs only the shapes (Fixed, Ratio, MacBudget), capped at the full rank
// of the kernel tensor; nullopt (with `why`) when the policy cannot be met.
std::optional<int64_t> rank_from_shapes(const ConvGeom& c, const CpDecomposeOptions& o, std::string& why) {
  const int64_t full = decompose::cp_full_rank(kernel_dims(c, o.form));
  const double v = o.policy.value;
  switch (o.policy.kind) {
    case RankPolicy::Kind::Fixed: {
      LOCUS_CHECK(v >= 1, "cp-decompose: the fixed rank must be at least 1, got ", v);
      return std::min(full, int64_t(v));
    }
    case RankPolicy::Kind::Ratio: {
      LOCUS_CHECK(v > 0, "cp-decompose: the rank ratio must be > 0, got ", v);
      int64_t r = int64_t(std::ceil(v * double(std::min(c.cin, c.cout))));
      return std::clamp<int64_t>(r, 1, full);
    }
    case RankPolicy::Kind::MacBudget: {
      LOCUS_CHECK(v > 0, "cp-decompose: the MAC budget must be > 0, got ", v);
      const double budget = v * double(original_macs(c));
      const int64_t per = macs_per_rank(c, o.form);
      int64_t r = int64_t(std::floor(budget / double(per)));
      while (r > 0 && double(r) * double(per) > budget) --r;
      while (double(r + 1) * double(per) <= budget) ++r;
      if (r < 1) {
        why = cat("MAC budget ", number_text(v), " x ", original_macs(c), " is below rank 1 (", per, " MACs)");
        return std::nullopt;
      }
      return std::min(r, full);
    }
    case RankPolicy::Kind::Error:
      fail("cp-decompose: the rank of policy '", o.policy.describe(), "' needs a fit, not only shapes");
  }
  return std::nullopt;
}

// Chooses the rank and fits; nullopt (with `why`) when the policy cannot be met.
std::optional<decompose::CpFit> choose_and_fit(const decompose::DenseTensor& x, const ConvGeom& c,
                                               const CpDecomposeOptions& o, std::string& why) {
  const int64_t full = decompose::cp_full_rank(x.dims);
  decompose::CpAlsOptions ao;
  ao.max_iterations = o.max_iterations;
  ao.tolerance = o.tolerance;
  ao.threads = o.threads;
  const double v = o.policy.value;
  if (o.policy.kind != RankPolicy::Kind::Error) {
    const std::optional<int64_t> r = rank_from_shapes(c, o, why);
    if (!r) return std::nullopt;
    return decompose::cp_fit(x, *r, ao);
  }
  LOCUS_CHECK(v >= 0, "cp-decompose: the error target must not be negative, got ", v);
  std::map<int64_t, decompose::CpFit> fits;
  auto passes = [&](int64_t r) {
    auto it = fits.find(r);
    if (it == fits.end()) {
      // warm start from the largest rank below r fitted so far (the first fit starts cold)
      auto above = fits.upper_bound(r);
      decompose::CpFit f = above == fits.begin() ? decompose::cp_fit(x, r, ao)
                                                 : decompose::cp_fit_warm(x, r, std::prev(above)->second, ao);
      it = fits.emplace(r, std::move(f)).first;
    }
    return it->second.rel_error <= v;
  };
  // The search stops at the largest rank worth fitting: the MAC break-even (a chain costing
  // more MACs than the convolution gains nothing) and max(Cin, Cout) (beyond it ALS takes
  // minutes per fit on large layers, and published CP ranks stay below it), or the full rank
  // (exact) when that is smaller.
  const int64_t break_even = original_macs(c) / macs_per_rank(c, o.form);
  const int64_t cap = std::min(full, std::max<int64_t>(1, std::min(break_even, std::max(c.cin, c.cout))));
  int64_t lo = 0, hi = 1;  // lo fails (0: none tried), hi is the candidate
  while (hi < cap && !passes(hi)) {
    lo = hi;
    hi = std::min(cap, hi * 2);
  }
  if (!passes(hi)) {
    why = cat("no rank up to ", cap, " meets relative error <= ", number_text(v), " (", number_text(fits.at(hi).rel_error),
              " at rank ", hi, "; ranks above ", cap, " are not tried: ",
              cap == break_even ? "the chain would cost more MACs than the convolution" : "more than max(Cin, Cout)",
              ")");
    return std::nullopt;
  }
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (passes(mid)) hi = mid;
    else lo = mid;
  }
  return fits.at(hi);
}

// The factors of a shapes-only decomposition: zeros of the fitted factors' shapes.
decompose::CpFit placeholder_fit(const ConvGeom& c, CpForm form, int64_t rank) {
  decompose::CpFit f;
  f.rank = rank;
  for (int64_t d : kernel_dims(c, form)) f.factors.push_back(Eigen::MatrixXd::Zero(d, rank));
  f.rel_error = std::nan("");
  return f;
}

Node make_conv(const std::string& name, const std::string& x, const std::string& w, const std::string& b,
               const std::string& y, std::vector<int64_t> kernel, std::vector<int64_t> strides,
               std::vector<int64_t> pads, std::vector<int64_t> dilations, int64_t group) {
  Node n;
  n.op = "Conv";
  n.name = name;
  n.inputs = {x, w};
  if (!b.empty()) n.inputs.push_back(b);
  n.outputs = {y};
  n.attrs["kernel_shape"] = std::move(kernel);
  n.attrs["strides"] = std::move(strides);
  n.attrs["pads"] = std::move(pads);
  n.attrs["dilations"] = std::move(dilations);
  n.attrs["group"] = group;
  return n;
}

// Builds the chain replacing `conv` from the fitted factors. Adds constants and intermediate values to g.
std::vector<Node> build_chain(Graph& g, const Node& conv, const ConvGeom& c, const decompose::CpFit& fit,
                              CpForm form) {
  const int64_t R = fit.rank;
  const auto& f = fit.factors;  // U (Cout x R), V (Cin x R), S (KhKw x R) | P (Kh x R), Q (Kw x R)
  auto add_weight = [&](const std::string& suffix, Shape shape, auto value) {
    Tensor t(DType::F32, shape);
    float* p = t.data<float>();
    for (int64_t k = 0; k < t.numel(); ++k) p[k] = float(value(k));
    std::string nm = g.fresh_name(conv.name + "/" + suffix + ".W");
    g.constants[nm] = std::move(t);
    return nm;
  };
  auto fresh_value = [&](const std::string& suffix) {
    std::string nm = g.fresh_name(conv.name + "/" + suffix);
    g.values[nm] = ValueInfo{};  // reserve the name; filled by shape inference below
    return nm;
  };
  std::vector<Node> chain;
  const std::string w_in = add_weight("cp_in", {R, c.cin, 1, 1}, [&](int64_t k) { return f[1](k % c.cin, k / c.cin); });
  const std::string v_in = fresh_value("cp_in_out");
  chain.push_back(make_conv(conv.name + "/cp_in", conv.input(0), w_in, "", v_in, {1, 1}, {1, 1}, {0, 0, 0, 0},
                            {1, 1}, 1));
  std::string last = v_in;
  if (form == CpForm::ThreeWay) {
    const int64_t K = c.kh * c.kw;
    const std::string w_dw = add_weight("cp_dw", {R, 1, c.kh, c.kw}, [&](int64_t k) { return f[2](k % K, k / K); });
    const std::string v_dw = fresh_value("cp_dw_out");
    chain.push_back(make_conv(conv.name + "/cp_dw", last, w_dw, "", v_dw, {c.kh, c.kw}, c.strides, c.pads,
                              c.dilations, R));
    last = v_dw;
  } else {
    const std::string w_h = add_weight("cp_dwh", {R, 1, c.kh, 1}, [&](int64_t k) { return f[2](k % c.kh, k / c.kh); });
    const std::string v_h = fresh_value("cp_dwh_out");
    chain.push_back(make_conv(conv.name + "/cp_dwh", last, w_h, "", v_h, {c.kh, 1}, {c.strides[0], 1},
                              {c.pads[0], 0, c.pads[2], 0}, {c.dilations[0], 1}, R));
    const std::string w_w = add_weight("cp_dww", {R, 1, 1, c.kw}, [&](int64_t k) { return f[3](k % c.kw, k / c.kw); });
    const std::string v_w = fresh_value("cp_dww_out");
    chain.push_back(make_conv(conv.name + "/cp_dww", v_h, w_w, "", v_w, {1, c.kw}, {1, c.strides[1]},
                              {0, c.pads[1], 0, c.pads[3]}, {1, c.dilations[1]}, R));
    last = v_w;
  }
  const std::string w_out = add_weight("cp_out", {c.cout, R, 1, 1}, [&](int64_t k) { return f[0](k / R, k % R); });
  Node out = make_conv(conv.name + "/cp_out", last, w_out, conv.input(2), conv.outputs[0], {1, 1}, {1, 1},
                       {0, 0, 0, 0}, {1, 1}, 1);
  for (const auto& [k, v] : conv.attrs)
    if (k.rfind("locus.", 0) == 0) out.attrs[k] = v;
  chain.push_back(std::move(out));

  // shapes of the new values; the last output must keep the original shape
  for (Node& n : chain) {
    std::vector<ValueInfo> in(n.inputs.size());
    std::vector<const Tensor*> consts(n.inputs.size(), nullptr);
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      in[k] = g.info(n.inputs[k]);
      consts[k] = g.constant(n.inputs[k]);
    }
    std::vector<ValueInfo> outs = infer_node(n, in, consts);
    if (&n == &chain.back()) {
      const ValueInfo want = g.info(conv.outputs[0]);
      LOCUS_CHECK(outs.at(0).shape == want.shape && outs.at(0).dtype == want.dtype, "cp-decompose: internal error: ",
                  conv.name, " decomposes to shape ", shape_str(outs.at(0).shape), " instead of ",
                  shape_str(want.shape));
    } else {
      g.values[n.outputs[0]] = outs.at(0);
    }
  }
  return chain;
}

std::string success_text(const CpLayerReport& r) {
  const std::string fit = !r.fitted ? std::string("shapes only, not fitted")
                                    : cat("relative error ", r.rel_error, " (",
                                          r.iterations == 0 ? std::string("exact") : cat(r.iterations, " ALS sweeps"), ")");
  return cat("decomposed ", r.cout, "x", r.cin, "x", r.kh, "x", r.kw, " at rank ", r.rank, ", ", fit, ", MACs ",
             r.macs_before, " -> ", r.macs_after, ", parameters ", r.params_before, " -> ", r.params_after);
}

class CpDecomposePass : public Pass {
 public:
  explicit CpDecomposePass(CpDecomposeOptions o) : o_(std::move(o)) {}
  std::string name() const override { return kPassName; }
  std::string description() const override {
    return "CP-decomposes standard KxK convolutions into 1x1 -> depthwise -> 1x1 chains (" + o_.policy.describe() +
           ")";
  }
  int run(Graph& g, std::vector<PassRemark>& remarks) override {
    int changes = 0;
    for (const CpLayerReport& r : cp_decompose(g, o_)) {
      if (r.decomposed) {
        ++changes;
        remarks.push_back({kPassName, r.node, success_text(r), RemarkKind::Applied});
      } else {
        remarks.push_back({kPassName, r.node, "not decomposed: " + r.why_not});
      }
    }
    return changes;
  }

 private:
  CpDecomposeOptions o_;
};

}  // namespace

std::vector<CpLayerReport> cp_decompose(Graph& g, const CpDecomposeOptions& o) {
  LOCUS_CHECK(!o.shapes_only || o.policy.kind != RankPolicy::Kind::Error, "cp-decompose: policy '",
              o.policy.describe(), "' chooses ranks by fitting: a shapes-only decomposition needs rank=N, ratio=X or macs=X");
  std::vector<CpLayerReport> reports;
  std::vector<Node> nodes;
  std::vector<std::string> replaced_weights;
  nodes.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.op != "Conv" || !default_domain(n)) {
      nodes.push_back(n);
      continue;
    }
    CpLayerReport rep;
    rep.node = n.name;
    ConvGeom c;
    std::optional<std::string> why = ineligible(g, n, o, c, rep);
    std::optional<decompose::CpFit> fit;
    if (!why) {
      std::string reason;
      if (o.shapes_only) {
        if (std::optional<int64_t> r = rank_from_shapes(c, o, reason)) fit = placeholder_fit(c, o.form, *r);
      } else {
        fit = choose_and_fit(kernel_tensor(*g.constant(n.input(1)), c, o.form), c, o, reason);
      }
      if (!fit) why = reason;
    }
    if (why) {
      rep.why_not = *why;
      reports.push_back(rep);
      nodes.push_back(n);
      continue;
    }
    const int64_t bias = n.input(2).empty() ? 0 : c.cout;
    rep.decomposed = true;
    rep.rank = fit->rank;
    rep.rel_error = fit->rel_error;
    rep.iterations = fit->iterations;
    rep.fitted = !o.shapes_only;
    rep.params_before = c.cout * c.cin * c.kh * c.kw + bias;
    rep.params_after = fit->rank * params_per_rank(c, o.form) + bias;
    rep.macs_before = original_macs(c);
    rep.macs_after = fit->rank * macs_per_rank(c, o.form);
    std::vector<Node> chain = build_chain(g, n, c, *fit, o.form);
    replaced_weights.push_back(n.input(1));
    for (Node& m : chain) nodes.push_back(std::move(m));
    reports.push_back(rep);
  }
  g.nodes = std::move(nodes);
  for (const std::string& w : replaced_weights) {
    bool read = g.is_graph_output(w);
    for (const Node& n : g.nodes)
      if (std::find(n.inputs.begin(), n.inputs.end(), w) != n.inputs.end()) read = true;
    if (!read) g.constants.erase(w);
  }
  return reports;
}

std::unique_ptr<Pass> make_cp_decompose_pass(const CpDecomposeOptions& o) {
  return std::make_unique<CpDecomposePass>(o);
}

}  // namespace locus
