#include "runtime/native/in_place.h"

#include <algorithm>

#include "kernels/native/conv2d_nhwc.h"
#include "runtime/native/op_registry.h"

namespace locus::native {
std::map<std::string, std::string> in_place_residuals(const Graph& g, const std::vector<BufferRequest>& requests) {
  std::map<std::string, const BufferRequest*> req;
  for (const BufferRequest& r : requests) req[r.name] = &r;
  std::map<std::string, std::string> alias;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& n = g.nodes[k];
    if (n.op != "Conv" || n.i("locus.residual", 0) == 0 || n.inputs.size() < 4 || n.outputs.empty()) continue;
    const std::string &x = n.input(0), &r = n.input(3), &y = n.outputs[0];
    const Tensor* w = g.constant(n.input(1));
    if (x.empty() || r.empty() || y.empty() || r == x || !w || w->shape.size() != 4) continue;
    const ValueInfo &xi = g.info(x), &ri = g.info(r), &yi = g.info(y);
    if (!xi.known || !ri.known || !yi.known || xi.shape.size() != 4 || yi.shape.size() != 4) continue;
    if (ri.dtype != DType::F32 || yi.dtype != DType::F32 || ri.shape != yi.shape) continue;
    if (!kernels::conv_can_write_over_residual(conv2d_shape_of(n, xi.shape, yi.shape, w->shape))) continue;
    const bool graph_input = std::find(g.inputs.begin(), g.inputs.end(), r) != g.inputs.end();
    if (g.is_constant(r) || graph_input || g.is_graph_output(r) || g.is_graph_output(y)) continue;
    auto it = req.find(r);
    if (it == req.end() || it->second->last != int(k) || !req.count(y)) continue;
    auto root = alias.find(r);
    alias[y] = root != alias.end() ? root->second : r;
  }
  return alias;
}

void apply_in_place(const std::map<std::string, std::string>& aliases, std::vector<BufferRequest>& requests) {
  if (aliases.empty()) return;
  std::map<std::string, size_t> at;
  for (size_t i = 0; i < requests.size(); ++i) at[requests[i].name] = i;
  for (const auto& [y, root] : aliases) {
    BufferRequest &ry = requests[at.at(y)], &rr = requests[at.at(root)];
    rr.last = std::max(rr.last, ry.last);
    ry.bytes = 0;
  }
}

}  // namespace locus::native
