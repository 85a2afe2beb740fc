// Pass `recognize-hardswish`.
// Matches: the decomposed HardSwish some exporters write (Paddle2ONNX for PP-LCNet / MobileNetV3):
//   Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6), or the same ending in Mul by 1/6 instead of Div by 6; the
//   Mul's and the Add's operands in either order. Rewritten only when the constants are float32
//   scalars (of rank at most x's) exactly equal to 3, 0, 6 and 6 (1/6 rounded to float32 for the
//   Mul form), the Clip has both bounds, and the three intermediates (Add, Clip, inner Mul outputs)
//   are read only by the pattern and are not graph outputs.
// Guarantees: the four nodes become one HardSwish(x) (ONNX: x * max(0, min(1, x / 6 + 0.5))) that
//   takes over the last node's name and output; run before fuse-activation it then folds into the
//   producing Conv's epilogue. Mathematically equal; in float32 the decomposed form rounds after the
//   add, the multiply and the divide and HardSwish after x / 6 + 0.5 and the multiply, so results
//   differ by |difference| <= 2e-7 * |x| (1.9e-7 * |x| measured over [-8, 8] and [-1000, 1000];
//   tests/fold_affine_test.cpp asserts it on the native backend).
// Explains: every Div / Mul ending the pattern's shape that is left alone gets a remark saying why.
#include "graph/passes/pass_manager.h"

namespace locus {
namespace {

constexpr const char* kName = "recognize-hardswish";

bool default_domain(const Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

// The node producing v if it has op `op` in the default domain, else nullptr.
const Node* produced_by(const Graph& g, const std::string& v, const char* op) {
  const int p = g.producer(v);
  if (p < 0) return nullptr;
  const Node& n = g.nodes[size_t(p)];
  return n.op == op && default_domain(n) ? &n : nullptr;
}

// The one constant operand of a two-input node (its index in *k), or nullptr.
const Tensor* one_constant(const Graph& g, const Node& n, int* k) {
  if (n.num_inputs() != 2) return nullptr;
  const bool c0 = g.is_constant(n.input(0)), c1 = g.is_constant(n.input(1));
  if (c0 == c1) return nullptr;
  *k = c0 ? 0 : 1;
  return g.constant(n.input(size_t(*k)));
}

int recognize_hardswish(Graph& g, std::vector<PassRemark>& remarks) {
  std::vector<bool> keep(g.nodes.size(), true);
  int changes = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& d = g.nodes[i];
    if ((d.op != "Div" && d.op != "Mul") || !default_domain(d)) continue;
    // The shape of the pattern: d = Div(m, k6) | Mul(m, 1/6) | Mul(1/6, m), m = Mul(x, c) | Mul(c, x),
    // c = Clip(a, lo, hi), a = Add(x, k3) | Add(k3, x).
    int kd = -1;
    const Tensor* six = one_constant(g, d, &kd);
    if (!six || (d.op == "Div" && kd != 1)) continue;
    const Node* m = produced_by(g, d.input(size_t(1 - kd)), "Mul");
    if (!m || m->num_inputs() != 2) continue;
    const Node* c = nullptr;
    std::string x;
    for (int k = 0; k < 2 && !c; ++k)
      if ((c = produced_by(g, m->input(size_t(k)), "Clip"))) x = m->input(size_t(1 - k));
    if (!c) continue;
    const Node* a = produced_by(g, c->input(0), "Add");
    int ka = -1;
    const Tensor* three = a ? one_constant(g, *a, &ka) : nullptr;
    if (!three || a->input(size_t(1 - ka)) != x) continue;
    auto refuse = [&](const std::string& why) {
      remarks.push_back({kName, d.name, cat("not recognized as HardSwish of '", x, "': ", why)});
    };
    if (g.is_constant(x)) { refuse("x is a constant"); continue; }
    const ValueInfo xi = g.info(x);
    auto scalar_is = [&](const Tensor* t, double want) {
      return t && t->dtype == DType::F32 && t->numel() == 1 && t->shape.size() <= xi.shape.size() && t->get(0) == want;
    };
    if (xi.dtype != DType::F32) { refuse(cat("x is ", dtype_name(xi.dtype), ", not float32")); continue; }
    const Tensor* lo = c->input(1).empty() ? nullptr : g.constant(c->input(1));
    const Tensor* hi = c->input(2).empty() ? nullptr : g.constant(c->input(2));
    if (!scalar_is(three, 3.0)) { refuse(cat("Add '", a->name, "' adds ", three->get(0), ", not the scalar 3")); continue; }
    if (!scalar_is(lo, 0.0) || !scalar_is(hi, 6.0)) { refuse(cat("Clip '", c->name, "' does not clip to [0, 6]")); continue; }
    if (d.op == "Div" && !scalar_is(six, 6.0)) { refuse(cat("Div '", d.name, "' divides by ", six->get(0), ", not the scalar 6")); continue; }
    if (d.op == "Mul" && !scalar_is(six, double(1.f / 6.f))) {
      refuse(cat("Mul '", d.name, "' multiplies by ", six->get(0), ", not the scalar 1/6")); continue;
    }
    std::string shared;
    for (const std::string& v : {a->outputs[0], c->outputs[0], m->outputs[0]})
      if (shared.empty() && (g.consumers(v).size() != 1 || g.is_graph_output(v))) shared = v;
    if (!shared.empty()) { refuse("the intermediate '" + shared + "' is also read elsewhere"); continue; }
    const std::string msg = cat("Add '", a->name, "' -> Clip '", c->name, "' -> Mul '", m->name, "' -> ", d.op, " '",
                                d.name, "' rewritten as one HardSwish of '", x, "'");
    for (const Node* n : {a, c, m}) {
      keep[size_t(n - g.nodes.data())] = false;
      g.values.erase(n->outputs[0]);
    }
    Node& h = g.nodes[i];
    h.op = "HardSwish";
    h.attrs.clear();
    h.inputs = {x};
    g.invalidate_uses();
    remarks.push_back({kName, h.name, msg, RemarkKind::Applied});
    ++changes;
  }
  g.erase_nodes(keep);
  return changes;
}

}  // namespace

std::unique_ptr<Pass> make_recognize_hardswish_pass() {
  return make_pass(kName, "rewrites x * Clip(x + 3, 0, 6) / 6 (the exporters' decomposed HardSwish) into one HardSwish",
                   recognize_hardswish);
}

}  // namespace locus
