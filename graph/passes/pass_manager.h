// Passes and the pass manager. A pass is a small file that says what it matches and what it
// guarantees; run() returns how many rewrites it made and may explain why it did not fire.
#pragma once

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

std::unique_ptr<Pass> make_constant_folding_pass();
std::unique_ptr<Pass> make_dead_code_elimination_pass();
std::unique_ptr<Pass> make_fold_batchnorm_pass();
std::unique_ptr<Pass> make_fuse_activation_pass();
std::unique_ptr<Pass> make_eliminate_identity_pass();
// Rewrites QDQ groups (DequantizeLinear -> Conv/MatMul/Add/GlobalAveragePool -> QuantizeLinear) into the
// quantized ops (graph/passes/fold_qdq.cpp). First in the default pipeline.
std::unique_ptr<Pass> make_fold_qdq_pass();
// Fuses MobileNetV2 blocks (and CP-decomposed chains) into FusedInvertedResidual (graph/ops.h). Added
// to the pipeline by default_pipeline(disabled, true) for the backends that execute that op.
std::unique_ptr<Pass> make_fuse_inverted_residual_pass();

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
  // The default pipeline: QDQ folding, constant folding, identity elimination, dead-code elimination, BatchNorm folding, activation
  // fusion, dead-code elimination. Passes named in `disabled` are left out.
  static PassManager default_pipeline(const std::vector<std::string>& disabled = {});
  // The default pipeline, plus (if fuse_inverted_residuals) fuse-inverted-residual and another
  // dead-code elimination after fuse-activation. With false it is default_pipeline(disabled).
  // Only for backends that execute FusedInvertedResidual (native, reference, accel).
  static PassManager default_pipeline(const std::vector<std::string>& disabled, bool fuse_inverted_residuals);
  PassReport run(Graph& g) const;
  std::vector<std::string> names() const;

 private:
  std::vector<std::unique_ptr<Pass>> passes_;
};

}  // namespace locus
