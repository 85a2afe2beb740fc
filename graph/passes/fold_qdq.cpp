// Pass `fold-qdq`.
// Matches: the QDQ form quantization tools write, DequantizeLinear -> float op -> QuantizeLinear:
//   DQ(x) -> Conv(., DQ(W const)[, DQ(B const)]) -> Q   becomes QLinearConv
//   DQ(a) -> MatMul(., DQ(B const [K,N]))         -> Q   becomes QLinearMatMul
//   DQ(a), DQ(b) -> Add                           -> Q   becomes com.microsoft QLinearAdd
//   DQ(x) -> GlobalAveragePool                    -> Q   becomes com.microsoft QLinearGlobalAveragePool
//   where the float op's output is read only by the QuantizeLinear (and is not a graph output),
//   activation scales are per tensor, a weight's are per tensor or per output channel (DQ axis 0 for
//   Conv's [OC,C,KH,KW], axis 1 for MatMul's [K,N]), a Conv bias is int32 with zero point 0 and scale
//   x_scale * w_scale[c] (computed in float, as quantizers write it), and the activation types agree.
// Guarantees: the QuantizeLinear is replaced by the quantized op (it keeps the Q's output name and
//   shape), reading the DQs' quantized inputs, scales and zero points directly (an omitted zero point
//   becomes a 0 constant of the right type); the float op is removed, and the DQs when nothing else
//   reads them are left to dead-code elimination. Both forms then run the same quantized ops, so a
//   QDQ model and its QOperator twin give identical outputs.
// Explains: every QuantizeLinear left unfolded gets a remark saying why.
// Runs first in the default pipeline; constant folding never folds DequantizeLinear, so DQ(W) is
// still there when it runs.
#include <algorithm>
#include <optional>

#include "graph/ops.h"
#include "graph/passes/pass_manager.h"

namespace locus {
namespace {

struct Dq {  // a DequantizeLinear feeding the float op
  std::string x, scale, zero;  // zero "" if omitted
  int64_t axis = 1;
  const Tensor* scale_t = nullptr;
};

class FoldQdq : public Pass {
 public:
  std::string name() const override { return "fold-qdq"; }
  std::string description() const override {
    return "rewrites DequantizeLinear -> Conv/MatMul/Add/GlobalAveragePool -> QuantizeLinear groups into "
           "QLinearConv, QLinearMatMul, QLinearAdd, QLinearGlobalAveragePool";
  }

  int run(Graph& g, std::vector<PassRemark>& remarks) override {
    int changes = 0;
    std::vector<bool> keep(g.nodes.size(), true);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (g.nodes[i].op != "QuantizeLinear" || !g.nodes[i].domain.empty()) continue;
      std::string why;
      Node q = g.nodes[i];
      int p = g.producer(q.input(0));
      if (p < 0) why = cat("its input '", q.input(0), "' is a graph input or a constant (no float op to fold)");
      else if (!keep[size_t(p)]) why = "its producer was already rewritten";
      std::optional<Node> made;
      if (why.empty()) made = rewrite(g, q, g.nodes[size_t(p)], why);
      if (!made) {
        remarks.push_back({name(), q.name, "not folded: " + why});
        continue;
      }
      const std::string what = g.nodes[size_t(p)].op;
      remarks.push_back({name(), q.name,
                         cat("DequantizeLinear -> ", what, " -> QuantizeLinear became ", made->op, " '", made->name, "'"),
                         RemarkKind::Applied});
      g.values.erase(g.nodes[size_t(p)].outputs[0]);
      keep[size_t(p)] = false;
      g.nodes[i] = std::move(*made);
      g.invalidate_uses();
      ++changes;
    }
    g.erase_nodes(keep);
    return changes;
  }

 private:
  // The DQ producing value v, or why not.
  static bool dq_of(const Graph& g, const std::string& v, Dq& d, std::string& why, const char* role) {
    int p = g.producer(v);
    if (p < 0 || g.nodes[size_t(p)].op != "DequantizeLinear" || !g.nodes[size_t(p)].domain.empty()) {
      why = cat(role, " '", v, "' is not produced by a DequantizeLinear");
      return false;
    }
    const Node& n = g.nodes[size_t(p)];
    d.x = n.input(0);
    d.scale = n.input(1);
    d.zero = n.input(2);
    d.axis = n.i("axis", 1);
    d.scale_t = g.constant(d.scale);
    if (!d.scale_t || (!d.zero.empty() && !g.is_constant(d.zero))) {
      why = cat(role, " DequantizeLinear '", n.name, "' has a scale or zero point computed at run time");
      return false;
    }
    return true;
  }

  // A 0 constant of dtype t (for an omitted zero point).
  static std::string zero_constant(Graph& g, DType t, const std::string& base) {
    std::string name = g.fresh_name(base + "_zero_point");
    g.constants[name] = Tensor(t, {});
    return name;
  }
  static std::string zero_of(Graph& g, const Dq& d, DType t, const std::string& base) {
    return d.zero.empty() ? zero_constant(g, t, base) : d.zero;
  }

  std::optional<Node> rewrite(Graph& g, const Node& q, const Node& op, std::string& why) {
    const std::string& mid = op.outputs.empty() ? std::string() : op.outputs[0];
    const bool known = op.domain.empty() && (op.op == "Conv" || op.op == "MatMul" || op.op == "Add" ||
                                             op.op == "GlobalAveragePool");
    if (!known) {
      why = cat("its input is produced by ", op.op, " '", op.name,
                "', not by Conv, MatMul, Add or GlobalAveragePool");
      return std::nullopt;
    }
    if (g.consumers(mid).size() != 1 || g.is_graph_output(mid)) {
      why = cat("the ", op.op, " output '", mid, "' is also read elsewhere");
      return std::nullopt;
    }
    if (op.has("locus.activation")) {
      why = cat(op.op, " '", op.name, "' has a fused activation");
      return std::nullopt;
    }
    const Tensor* ys = g.constant(q.input(1));
    if (!ys || (!q.input(2).empty() && !g.is_constant(q.input(2)))) {
      why = "the QuantizeLinear's scale or zero point is computed at run time";
      return std::nullopt;
    }
    if (ys->numel() != 1) {
      why = "the QuantizeLinear is per axis (the quantized ops take a per-tensor output scale)";
      return std::nullopt;
    }
    const DType yt = g.info(q.outputs[0]).dtype;
    const std::string yz = q.input(2).empty() ? zero_constant(g, yt, q.name) : q.input(2);

    Node r;
    r.name = op.name;
    r.outputs = {q.outputs[0]};
    Dq x;
    if (!dq_of(g, op.input(0), x, why, "input")) return std::nullopt;
    if (x.scale_t->numel() != 1) {
      why = cat("input DequantizeLinear of '", x.x, "' is per axis (activations must be per tensor)");
      return std::nullopt;
    }
    const DType xt = g.info(x.x).dtype;
    if (xt != yt) {
      why = cat("mixed types: the input is ", dtype_name(xt), ", the output ", dtype_name(yt));
      return std::nullopt;
    }
    if (op.op == "Conv" || op.op == "MatMul") {
      const bool conv = op.op == "Conv";
      Dq w;
      if (!dq_of(g, op.input(1), w, why, "weight")) return std::nullopt;
      const Tensor* wt = g.constant(w.x);
      if (!wt) {
        why = cat("weight '", w.x, "' is not a constant");
        return std::nullopt;
      }
      const int64_t channels = conv ? wt->shape[0] : (wt->shape.size() == 2 ? wt->shape[1] : -1);
      const int64_t want_axis = conv ? 0 : 1;
      if (w.scale_t->numel() != 1 && (w.axis != want_axis || w.scale_t->numel() != channels)) {
        why = cat("weight DequantizeLinear of '", w.x, "' is per axis ", w.axis, ", not per output channel (axis ",
                  want_axis, ")");
        return std::nullopt;
      }
      r.op = conv ? "QLinearConv" : "QLinearMatMul";
      r.inputs = {x.x, x.scale, zero_of(g, x, xt, r.name + "_x"), w.x, w.scale, zero_of(g, w, wt->dtype, r.name + "_w"),
                  q.input(1), yz};
      if (conv) {
        r.attrs = op.attrs;
        if (!op.input(2).empty()) {
          Dq b;
          if (!dq_of(g, op.input(2), b, why, "bias")) return std::nullopt;
          const Tensor* bt = g.constant(b.x);
          if (!bt || bt->dtype != DType::I32) {
            why = cat("bias '", b.x, "' is not an int32 constant");
            return std::nullopt;
          }
          if (!b.zero.empty()) {
            const Tensor* bz = g.constant(b.zero);
            for (int64_t k = 0; k < bz->numel(); ++k)
              if (bz->get_int(k) != 0) {
                why = cat("bias '", b.x, "' has a nonzero zero point");
                return std::nullopt;
              }
          }
          const Tensor& xs = *x.scale_t;
          const Tensor& ws = *w.scale_t;
          const int64_t oc = wt->shape[0];
          const Tensor& bs = *b.scale_t;
          if (bs.numel() != 1 && (bs.numel() != oc || b.axis != 0)) {
            why = cat("bias '", b.x, "' has ", bs.numel(), " scales for ", oc, " channels");
            return std::nullopt;
          }
          for (int64_t c = 0; c < oc; ++c) {
            const float want = xs.data<float>()[0] * ws.data<float>()[ws.numel() == 1 ? 0 : c];
            const float got = bs.data<float>()[bs.numel() == 1 ? 0 : c];
            if (got != want) {
              why = cat("bias '", b.x, "' scale ", got, " at channel ", c, " is not x_scale * w_scale = ", want);
              return std::nullopt;
            }
          }
          r.inputs.push_back(b.x);
        }
      }
    } else if (op.op == "Add") {
      Dq b;
      if (!dq_of(g, op.input(1), b, why, "input")) return std::nullopt;
      if (b.scale_t->numel() != 1) {
        why = cat("input DequantizeLinear of '", b.x, "' is per axis (QLinearAdd takes per-tensor scales)");
        return std::nullopt;
      }
      const DType bt = g.info(b.x).dtype;
      if (bt != xt) {
        why = cat("mixed types: '", x.x, "' is ", dtype_name(xt), ", '", b.x, "' is ", dtype_name(bt));
        return std::nullopt;
      }
      r.op = "QLinearAdd";
      r.domain = kMicrosoftDomain;
      r.inputs = {x.x, x.scale, zero_of(g, x, xt, r.name + "_a"), b.x, b.scale, zero_of(g, b, bt, r.name + "_b"),
                  q.input(1), yz};
    } else {  // GlobalAveragePool
      r.op = "QLinearGlobalAveragePool";
      r.domain = kMicrosoftDomain;
      r.inputs = {x.x, x.scale, zero_of(g, x, xt, r.name + "_x"), q.input(1), yz};
      r.attrs["channels_last"] = int64_t(0);
    }
    // validate (and normalise) the new node as shape inference would
    std::vector<ValueInfo> infos;
    std::vector<const Tensor*> consts;
    for (const std::string& v : r.inputs) {
      consts.push_back(g.constant(v));
      infos.push_back(g.info(v));
    }
    try {
      std::vector<ValueInfo> out = infer_node(r, infos, consts);
      if (out[0].shape != g.info(q.outputs[0]).shape || out[0].dtype != yt) {
        why = cat("the quantized op's output ", shape_str(out[0].shape), " differs from the QuantizeLinear's");
        return std::nullopt;
      }
    } catch (const Error& e) {
      why = e.what();
      return std::nullopt;
    }
    return r;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fold_qdq_pass() { return std::make_unique<FoldQdq>(); }

}  // namespace locus
