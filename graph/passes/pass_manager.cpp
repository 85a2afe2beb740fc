#include "graph/passes/pass_manager.h"

#include <algorithm>
#include <utility>

#include "graph/passes/cp_decompose.h"

namespace locus {

const char* remark_kind_name(RemarkKind k) {
  switch (k) {
    case RemarkKind::Applied: return "applied";
    case RemarkKind::Missed: return "missed";
    case RemarkKind::Analysis: return "analysis";
  }
  return "?";
}

namespace {

class FunctionPass : public Pass {
 public:
  FunctionPass(std::string name, std::string description, PassFunction run)
      : name_(std::move(name)), description_(std::move(description)), run_(std::move(run)) {}
  std::string name() const override { return name_; }
  std::string description() const override { return description_; }
  int run(Graph& g, std::vector<PassRemark>& remarks) override { return run_(g, remarks); }

 private:
  std::string name_, description_;
  PassFunction run_;
};

}  // namespace

std::unique_ptr<Pass> make_pass(std::string name, std::string description, PassFunction run) {
  return std::make_unique<FunctionPass>(std::move(name), std::move(description), std::move(run));
}

PassManager PassManager::default_pipeline(const std::vector<std::string>& disabled) {
  return default_pipeline(disabled, false);
}

PassManager PassManager::default_pipeline(const std::vector<std::string>& disabled, bool fuse_inverted_residuals,
                                          bool fuse_qlinear_blocks, bool fuse_residuals) {
  PassManager pm;
  auto add = [&](std::unique_ptr<Pass> p) {
    if (std::find(disabled.begin(), disabled.end(), p->name()) == disabled.end()) pm.add(std::move(p));
  };
  add(make_fold_qdq_pass());
  add(make_constant_folding_pass());
  add(make_eliminate_identity_pass());
  add(make_dead_code_elimination_pass());
  add(make_fold_batchnorm_pass());
  add(make_fold_affine_pass());          // before recognize-hardswish: the affine sits between Conv and the pattern
  add(make_recognize_hardswish_pass());  // before fuse-activation, which folds the HardSwish into the Conv
  add(make_fuse_activation_pass());
  add(make_dead_code_elimination_pass());
  if (fuse_inverted_residuals || fuse_qlinear_blocks) {
    add(make_fuse_inverted_residual_pass(fuse_inverted_residuals, fuse_qlinear_blocks));
    add(make_dead_code_elimination_pass());
  }
  if (fuse_residuals) add(make_fuse_residual_pass());
  return pm;
}

std::vector<std::string> PassManager::names() const {
  std::vector<std::string> r;
  for (auto& p : passes_) r.push_back(p->name());
  return r;
}

std::vector<std::string> all_pass_names() {
  return {make_fold_qdq_pass()->name(), make_constant_folding_pass()->name(), make_eliminate_identity_pass()->name(),
          make_dead_code_elimination_pass()->name(), make_fold_batchnorm_pass()->name(),
          make_fold_affine_pass()->name(), make_recognize_hardswish_pass()->name(),
          make_fuse_activation_pass()->name(), make_fuse_inverted_residual_pass()->name(),
          make_fuse_residual_pass()->name(), make_fuse_chain_pass()->name(),
          // not in any default pipeline: a Session runs it only when SessionOptions::decompose is set
          make_cp_decompose_pass(CpDecomposeOptions{})->name()};
}

PassReport PassManager::run(Graph& g) const {
  PassReport report;
  for (auto& p : passes_) {
    int n = p->run(g, report.remarks);
    report.results.push_back({p->name(), n});
  }
  return report;
}

}  // namespace locus
