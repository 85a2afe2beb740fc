// Passes and the pass manager. A pass is a small file that says what it matches and what it
// guarantees; run() returns how many rewrites it made and may explain why it did not fire.
#pragma once

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace locus {

// What a remark reports, as LLVM's optimisation remarks: a rewrite made (applied), a candidate the
// pass refused and why (missed), or a finding that is neither (analysis).
enum class RemarkKind { Applied, Missed, Analysis };
const char* remark_kind_name(RemarkKind k);  // "applied", "missed", "analysis"

struct PassRemark {
  std::string pass, node, message;  // e.g. {"fold-batchnorm", "bn3", "not folded: ..."}
  RemarkKind kind = RemarkKind::Missed;
};

struct PassResult {
  std::string pass;
  int changes = 0;
};

struct PassReport {
  std::vector<PassResult> results;
  std::vector<PassRemark> remarks;
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  // Rewrites g; returns the number of changes. Shapes in g.values are valid on entry and must be
  // valid on exit. Remarks explain matches that were refused.
  virtual int run(Graph& g, std::vector<PassRemark>& remarks) = 0;
};

// A pass made of its name, its one-line description and its run function (the contract of Pass::run):
// the frame of the passes that need no state of their own.
using PassFunction = std::function<int(Graph& g, std::vector<PassRemark>& remarks)>;
std::unique_ptr<Pass> make_pass(std::string name, std::string description, PassFunction run);

// The loop of the passes that replace nodes one at a time: calls replaced(i) for every node index in
// order; the nodes for which it returns true are erased together at the end. Returns how many were.
template <class Replaced>
int erase_replaced_nodes(Graph& g, Replaced&& replaced) {
  int changes = 0;
  std::vector<bool> keep(g.nodes.size(), true);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (replaced(i)) {
      keep[i] = false;
      ++changes;
    }
  g.erase_nodes(keep);
  return changes;
}

// The frame of the passes that fold a node into the Conv producing its first input (fold-batchnorm,
// fuse-activation): for every node whose op is one of `ops`, finds that Conv (else the remark
// "<refused>: input is not produced by a Conv"), then calls fold(node, conv index, conv, refuse),
// which checks the pair (calling refuse(why) and returning false when it cannot fold) or rewrites the
// Conv and returns true. The Conv then takes over the node's output and the node is erased. Returns the folds.
template <class Fold>
int fold_into_producing_conv(Graph& g, std::vector<PassRemark>& remarks, const char* pass,
                             std::initializer_list<const char*> ops, const char* refused, Fold&& fold) {
  return erase_replaced_nodes(g, [&](size_t i) {
    const Node& n = g.nodes[i];
    if (std::find(ops.begin(), ops.end(), n.op) == ops.end()) return false;
    auto refuse = [&](const std::string& why) { remarks.push_back({pass, n.name, refused + (": " + why)}); };
    const int p = g.producer(n.input(0));
    if (p < 0 || g.nodes[size_t(p)].op != "Conv") {
      refuse("input is not produced by a Conv");
      return false;
    }
    Node& conv = g.nodes[size_t(p)];
    if (!fold(n, p, conv, refuse)) return false;
    g.values.erase(conv.outputs[0]);
    g.set_output(p, 0, n.outputs[0]);
    return true;
  });
}

std::unique_ptr<Pass> make_constant_folding_pass();
std::unique_ptr<Pass> make_dead_code_elimination_pass();
std::unique_ptr<Pass> make_fold_batchnorm_pass();
std::unique_ptr<Pass> make_fuse_activation_pass();
// Folds Conv -> Mul / Add by a per-channel constant into the Conv's weights and bias (fold_affine.cpp).
std::unique_ptr<Pass> make_fold_affine_pass();
// Rewrites the exporters' decomposed HardSwish x * Clip(x + 3, 0, 6) / 6 into one HardSwish
// (recognize_hardswish.cpp), before fuse-activation so that it folds into the Conv's epilogue.
std::unique_ptr<Pass> make_recognize_hardswish_pass();
std::unique_ptr<Pass> make_eliminate_identity_pass();
// Rewrites QDQ groups (DequantizeLinear -> Conv/MatMul/Add/GlobalAveragePool -> QuantizeLinear) into the
// quantized ops (graph/passes/fold_qdq.cpp). First in the default pipeline.
std::unique_ptr<Pass> make_fold_qdq_pass();
// Fuses MobileNetV2 blocks (and CP-decomposed chains) into FusedInvertedResidual (fp32) and their
// int8 QLinearConv chains into FusedQLinearInvertedResidual (graph/ops.h), each form only when asked.
// Added to the pipeline by default_pipeline(disabled, fp32, int8) for the backends that execute the ops.
std::unique_ptr<Pass> make_fuse_inverted_residual_pass(bool fp32 = true, bool int8 = true);
// Fuses chains of 1x1 / depthwise convs ending in a residual Add [+ Relu] into FusedChain (fuse_chain.cpp).
// Run by prepare_graph after the default pipeline when PipelineOptions::fuse_chains.
std::unique_ptr<Pass> make_fuse_chain_pass();
// Fuses Conv -> Add(conv, R) [-> Relu] into the Conv (locus.residual, graph/ops.h; fuse_residual.cpp).
// Added last by default_pipeline(disabled, blocks, qblocks, true) for the backends whose Conv takes a residual.
std::unique_ptr<Pass> make_fuse_residual_pass();

// Names of every pass (for --help and for validating --disable-pass).
std::vector<std::string> all_pass_names();

// Constant folding of one node (see constant_folding.cpp): replaces its outputs by constants and
// returns true, or returns false (with a remark if `remarks` is given). `folded_elements`, if given,
// counts the elements folded so far in one run and caps their total.
bool fold_node(const Node& n, Graph& g, std::vector<PassRemark>* remarks, int64_t* folded_elements = nullptr);

// Shape inference with constant folding as it goes: what a Session runs before the passes.
// Returns the number of nodes folded.
int infer_shapes_and_fold(Graph& g);

class PassManager {
 public:
  void add(std::unique_ptr<Pass> p) { passes_.push_back(std::move(p)); }
  // The default pipeline: QDQ folding, constant folding, identity elimination, dead-code elimination, BatchNorm folding,
  // affine folding, HardSwish recognition, activation fusion, dead-code elimination. Passes named in `disabled` are left out.
  static PassManager default_pipeline(const std::vector<std::string>& disabled = {});
  // The default pipeline, plus (if fuse_inverted_residuals or fuse_qlinear_blocks)
  // fuse-inverted-residual and another dead-code elimination after fuse-activation; the pass fuses
  // fp32 blocks into FusedInvertedResidual when fuse_inverted_residuals (backends that execute it:
  // native, reference, accel) and int8 ones into FusedQLinearInvertedResidual when
  // fuse_qlinear_blocks (native, reference); then, when fuse_residuals (backends whose Conv takes a
  // residual: native), fuse-residual last. With all false it is default_pipeline(disabled).
  static PassManager default_pipeline(const std::vector<std::string>& disabled, bool fuse_inverted_residuals,
                                      bool fuse_qlinear_blocks = false, bool fuse_residuals = false);
  PassReport run(Graph& g) const;
  std::vector<std::string> names() const;

 private:
  std::vector<std::unique_ptr<Pass>> passes_;
};

}  // namespace locus
