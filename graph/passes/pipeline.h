// The graph pipeline, once: what every consumer of a model (a Session, `locus info`, `locus
// energy`, `locus decompose`) does between the importer and a backend. In order:
//   1. refuse unsupported operators (one line naming each op once, with its count and first node);
//   2. shape inference with constant folding;
//   3. CP decomposition of standard convolutions, when asked (before the passes, so the decomposed
//      1x1 -> depthwise -> 1x1 chains can be fused);
//   4. the default pass pipeline, with inverted-residual fusion when the consumer runs fused blocks
//      (fp32 and int8 separately).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "graph/passes/cp_decompose.h"
#include "graph/passes/pass_manager.h"

namespace locus {

struct PipelineOptions {
  bool optimize = true;                      // run the default pass pipeline (step 4)
  std::vector<std::string> disabled_passes;  // names from all_pass_names(); an unknown name is an Error
  bool fuse_blocks = true;                   // the consumer executes FusedInvertedResidual
  bool fuse_qblocks = false;                 // the consumer executes FusedQLinearInvertedResidual
  bool fuse_residual = false;                // the consumer's Conv takes a residual (locus.residual)
  bool fuse_chains = false;                  // the consumer executes FusedChain (fuse-chain runs last)
  std::optional<CpDecomposeOptions> decompose;
};

struct PreparedGraph {
  PassReport report;                             // constant folding, cp-decompose, each pass; remarks
  std::vector<CpLayerReport> decompose_report;  // one row per convolution considered (step 3)
};

// Runs steps 1-4 on g in place.
PreparedGraph prepare_graph(Graph& g, const PipelineOptions& o);

}  // namespace locus
