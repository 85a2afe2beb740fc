// Shape inference for locus.FusedChain (graph/ops.h documents its contract; created by the
// fuse-chain pass, graph/passes/fuse_chain.cpp): the output of a chain of 1x1 and depthwise stages
// [+ a residual operand], with every per-stage attribute checked against the stage count.
#include <limits>

#include "graph/ops.h"
#include "graph/shape_inference_internal.h"

namespace locus::shape_inference {

ValueInfo infer_fused_chain(NodeContext& c) {
  Node& n = c.node();
  const size_t ni = n.inputs.size();
  if (ni < 4 || ni % 2 != 0) c.error("needs X, R and a (W, B) pair per stage, got ", ni, " inputs");
  const size_t stages = (ni - 2) / 2;
  const std::vector<int64_t> kinds = n.ints("kinds");
  const std::vector<int64_t> strides = n.ints("strides"), pads = n.ints("pads");
  if (kinds.size() != stages || strides.size() != 2 * stages || pads.size() != 4 * stages)
    c.error("kinds, strides and pads need ", stages, ", ", 2 * stages, " and ", 4 * stages, " entries");
  auto acts = n.has("activations") ? std::get<std::vector<std::string>>(n.attrs.at("activations"))
                                   : std::vector<std::string>(stages, "none");
  std::vector<float> lo = n.floats("activation_min"), hi = n.floats("activation_max");
  if (lo.empty()) lo.assign(stages, -std::numeric_limits<float>::infinity());
  if (hi.empty()) hi.assign(stages, std::numeric_limits<float>::infinity());
  if (acts.size() != stages || lo.size() != stages || hi.size() != stages)
    c.error("activations, activation_min and activation_max need ", stages, " entries");
  for (const std::string& a : acts)
    if (a != "none" && a != "relu" && a != "clip") c.unsupported("activation '", a, "' is not supported (none, relu or clip)");
  const std::string out_act = n.s("output_activation", "none");
  if (out_act != "none" && out_act != "relu") c.unsupported("output_activation '", out_act, "' is not supported (none or relu)");
  c.require_f32(0);
  Shape y = c.shape(0);
  if (y.size() != 4) c.error("input '", c.input_name(0), "' must have rank 4 [N,C,H,W], got shape ", shape_str(y));
  for (size_t s = 0; s < stages; ++s) {
    const size_t k = 2 + 2 * s;
    c.require_f32(k);
    const Shape& w = c.shape(k);
    const bool dw = kinds[s] == 1;
    if (kinds[s] != 0 && !dw) c.error("kinds[", s, "] must be 0 (1x1) or 1 (depthwise)");
    if (w.size() != 4 || w[0] < 1 || w[2] < 1 || w[3] < 1 || (dw ? (w[0] != y[1] || w[1] != 1) : (w[1] != y[1] || w[2] != 1 || w[3] != 1)))
      c.error("stage ", s, " weight '", c.input_name(k), "' must have shape ", dw ? "[C,1,KH,KW]" : "[OC,C,1,1]", " with C = ",
              y[1], ", got ", shape_str(w));
    if (c.has(k + 1) && c.shape(k + 1) != Shape{w[0]})
      c.error("stage ", s, " bias '", c.input_name(k + 1), "' must have shape [", w[0], "]");
    const int64_t sh = strides[2 * s], sw = strides[2 * s + 1];
    const int64_t* p = &pads[4 * s];
    if (sh < 1 || sw < 1 || p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0) c.error("stage ", s, " has bad strides or pads");
    if (!dw && (sh != 1 || sw != 1 || p[0] + p[1] + p[2] + p[3] != 0)) c.error("1x1 stage ", s, " must have stride 1 and no pads");
    y[1] = w[0];
    y[2] = (y[2] + p[0] + p[2] - w[2]) / sh + 1;
    y[3] = (y[3] + p[1] + p[3] - w[3]) / sw + 1;
    if (y[2] < 1 || y[3] < 1) c.error("stage ", s, " has an empty output");
  }
  if (c.has(1)) {
    c.require_f32(1);
    if (c.shape(1) != y) c.error("residual '", c.input_name(1), "' must have the output's shape ", shape_str(y), ", got ",
                                 shape_str(c.shape(1)));
  }
  n.attrs["activations"] = acts;
  n.attrs["activation_min"] = lo;
  n.attrs["activation_max"] = hi;
  n.attrs["output_activation"] = out_act;
  return {DType::F32, y, true};
}

}  // namespace locus::shape_inference
