#include "graph/passes/pipeline.h"

#include <algorithm>

#include "graph/ops.h"

namespace locus {

PreparedGraph prepare_graph(Graph& g, const PipelineOptions& o) {
  if (std::string bad = unsupported_summary(g); !bad.empty()) throw Unsupported(bad);
  const auto names = all_pass_names();
  for (const std::string& d : o.disabled_passes)
    LOCUS_CHECK(std::find(names.begin(), names.end(), d) != names.end(), "unknown pass '", d, "'");
  PreparedGraph p;
  p.report.results.push_back({"constant-folding (during shape inference)", infer_shapes_and_fold(g)});
  if (o.decompose) {
    p.decompose_report = cp_decompose(g, *o.decompose);
    int decomposed = 0;
    for (const CpLayerReport& r : p.decompose_report) {
      if (r.decomposed) {
        ++decomposed;
        p.report.remarks.push_back({"cp-decompose", r.node,
                                    cat("decomposed ", r.cout, "x", r.cin, "x", r.kh, "x", r.kw, " at rank ", r.rank,
                                        r.fitted ? cat(", relative error ", r.rel_error) : std::string(" (shapes only)"),
                                        ", MACs ", r.macs_before, " -> ", r.macs_after),
                                    RemarkKind::Applied});
      } else {
        p.report.remarks.push_back({"cp-decompose", r.node, "not decomposed: " + r.why_not});
      }
    }
    p.report.results.push_back({"cp-decompose (" + o.decompose->policy.describe() + ")", decomposed});
  }
  if (o.optimize) {
    // fuse-chain takes the residual Adds before fuse-residual would fold them into the Convs
    const auto& off = o.disabled_passes;
    const bool chains = o.fuse_chains && std::find(off.begin(), off.end(), make_fuse_chain_pass()->name()) == off.end();
    PassReport r = PassManager::default_pipeline(o.disabled_passes, o.fuse_blocks, o.fuse_qblocks,
                                                 o.fuse_residual && !chains).run(g);
    p.report.results.insert(p.report.results.end(), r.results.begin(), r.results.end());
    p.report.remarks.insert(p.report.remarks.end(), r.remarks.begin(), r.remarks.end());
    if (chains) {
      PassManager pm;
      pm.add(make_fuse_chain_pass());
      pm.add(make_dead_code_elimination_pass());
      if (o.fuse_residual && std::find(off.begin(), off.end(), make_fuse_residual_pass()->name()) == off.end())
        pm.add(make_fuse_residual_pass());
      PassReport c = pm.run(g);
      p.report.results.insert(p.report.results.end(), c.results.begin(), c.results.end());
      p.report.remarks.insert(p.report.remarks.end(), c.remarks.begin(), c.remarks.end());
    }
  }
  return p;
}

}  // namespace locus
