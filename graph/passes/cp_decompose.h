// The cp-decompose pass (docs/method.md section 6): replaces standard KxK convolutions (group 1,
// not 1x1) by a CP-decomposed chain that the fuse-inverted-residual pass can then fuse:
//   3-way (default): 1x1 (Cin -> R) -> depthwise KhxKw over R channels -> 1x1 (R -> Cout, + bias)
//   4-way (Lebedev): 1x1 (Cin -> R) -> depthwise Khx1 -> depthwise 1xKw -> 1x1 (R -> Cout, + bias)
// Stride, padding and dilation go to the depthwise stage(s) exactly; the original bias and any fused
// activation (locus.activation) go to the last 1x1. 1x1 and depthwise convolutions are left alone.
// Not in the default pipeline: the session adds it when asked (--decompose POLICY).
//
// INTERFACE CONTRACT (shared by the pass, the CLI and the exporter side): extend, do not change.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "graph/passes/pass_manager.h"

namespace locus {

enum class CpForm { ThreeWay, FourWay };

// How the rank R of each layer is chosen.
struct RankPolicy {
  enum class Kind { Fixed, Ratio, Error, MacBudget };
  // Default: error-driven (method.md section 6: nothing is retrained, so the rank follows the
  // accuracy a layer can keep; a fixed ratio can wreck a small layer, e.g. rank 2 for an RGB stem).
  Kind kind = Kind::Error;
  double value = 0.05;  // Fixed: R; Ratio: R = ceil(value x min(Cin, Cout)); Error: the smallest R whose
                       // relative reconstruction error is <= value, searched up to min(full rank,
                       // MAC break-even, max(Cin, Cout)); the layer is left alone if none is; MacBudget: the largest R whose
                       // decomposed MACs are <= value x the original MACs
  // "rank=16", "ratio=0.5", "error=0.05", "macs=0.3" (case-sensitive keys). Throws locus::Error naming the
  // text otherwise.
  static RankPolicy parse(const std::string& text);
  std::string describe() const;  // e.g. "ratio 0.5 of min(Cin, Cout)"
};

struct CpDecomposeOptions {
  RankPolicy policy;
  CpForm form = CpForm::ThreeWay;
  // Only convolutions whose node name is listed (empty: all eligible ones).
  std::vector<std::string> only_nodes;
  int max_iterations = 200;  // ALS iteration cap
  double tolerance = 1e-6;   // stop when the relative error improves by less than this
  int threads = 0;           // ALS threads (0: OpenMP's default); the factors do not depend on it
  // Shapes only: no fitting. Each chain gets the rank the policy gives (rank=, ratio=, macs=: they
  // need only the shapes) and all-zero factor weights; nodes, attributes, shapes and the report's
  // ranks, MACs and parameters are those of the fitted decomposition. For consumers that read only
  // shapes (`locus energy`: the accelerator model's workload). error=E needs fits to choose the rank:
  // cp_decompose refuses it (locus::Error).
  bool shapes_only = false;
};

// One row per convolution considered.
struct CpLayerReport {
  std::string node;
  int64_t cout = 0, cin = 0, kh = 0, kw = 0;
  bool decomposed = false;
  std::string why_not;      // when !decomposed: "1x1", "depthwise", "grouped", "filtered", ...
  int64_t rank = 0;
  double rel_error = 0;     // ||W - W_R||_F / ||W||_F (NaN when not fitted)
  int iterations = 0;
  bool fitted = true;       // false with shapes_only: the chain's weights are zeros
  int64_t params_before = 0, params_after = 0;
  int64_t macs_before = 0, macs_after = 0;  // per image, from the output shape
};

// Runs the decomposition on g (shapes must be inferred); returns the per-layer report. Names of the
// new nodes and weights derive from the original node's name (e.g. "conv1/cp_in", "conv1/cp_dw",
// "conv1/cp_out") so a decomposed model reads back with recognisable names.
std::vector<CpLayerReport> cp_decompose(Graph& g, const CpDecomposeOptions& o);

// The same as a Pass (remarks say why a convolution was not decomposed).
std::unique_ptr<Pass> make_cp_decompose_pass(const CpDecomposeOptions& o);

}  // namespace locus
