#include "cli/model_stats.h"

namespace locus::cli {

int64_t count_parameters(const Graph& g) {
  int64_t n = 0;
  for (auto& [name, t] : g.constants)
    if (t.dtype == DType::F32 && t.numel() > 1) n += t.numel();
  return n;
}

int64_t node_macs(const Graph& g, const Node& n) {
  if (n.op == "Conv") {
    ValueInfo w = g.info(n.input(1)), y = g.info(n.outputs[0]);
    int64_t per_output = w.shape[1];  // C / G
    for (size_t d = 2; d < w.shape.size(); ++d) per_output *= w.shape[d];
    int64_t outputs = 1;
    for (auto d : y.shape) outputs *= d;
    return outputs * per_output;
  }
  if (n.op == "Gemm") {
    ValueInfo a = g.info(n.input(0)), y = g.info(n.outputs[0]);
    int64_t K = n.i("transA", 0) ? a.shape[0] : a.shape[1];
    return y.shape[0] * y.shape[1] * K;
  }
  if (n.op == "MatMul") {
    ValueInfo a = g.info(n.input(0)), y = g.info(n.outputs[0]);
    int64_t outputs = 1;
    for (auto d : y.shape) outputs *= d;
    return outputs * a.shape.back();
  }
  return 0;
}

}  // namespace locus::cli
