#include "runtime/native/image_major.h"

#include <map>
#include <set>

#include "graph/ops.h"

namespace locus::native {
namespace {

// Ops that treat every image on its own (given [N, ...] runtime operands of one shape), fp32 and int8.
bool per_image_op(const Node& n) {
  if (n.domain == kLocusDomain) return n.op == "FusedInvertedResidual" || n.op == "FusedQLinearInvertedResidual";
  if (n.domain == "com.microsoft") return n.op == "QLinearAdd";
  if (!n.domain.empty() && n.domain != "ai.onnx") return false;
  static const std::set<std::string> ops = {"Conv",        "MaxPool",        "AveragePool",      "Relu",
                                            "Clip",        "Add",            "Mul",              "Sigmoid",
                                            "HardSigmoid", "HardSwish",      "LeakyRelu",        "BatchNormalization",
                                            "QLinearConv", "QuantizeLinear", "DequantizeLinear"};
  return ops.count(n.op) != 0;
}

// Ops whose constant inputs are weights (any shape): the others' constants broadcast over the images.
bool weight_op(const Node& n) { return n.op == "Conv" || n.op == "QLinearConv" || n.domain == kLocusDomain; }

bool activation_dtype(DType t) { return t == DType::F32 || t == DType::U8 || t == DType::I8; }

int64_t bytes_of(const ValueInfo& v, const std::string& name) {
  return checked_numel(v.shape, name) * int64_t(dtype_size(v.dtype));
}

// Nodes [k0, k1) of g with the constants they read and the values g knows (no constant copied
// beyond those: the other part's weights stay out), inputs and outputs as given.
Graph part_of(const Graph& g, size_t k0, size_t k1, std::vector<std::string> inputs, std::vector<std::string> outputs) {
  Graph p;
  p.name = g.name;
  p.opset = g.opset;
  p.nodes.assign(g.nodes.begin() + std::ptrdiff_t(k0), g.nodes.begin() + std::ptrdiff_t(k1));
  p.inputs = std::move(inputs);
  p.outputs = std::move(outputs);
  p.values = g.values;
  auto take = [&](const std::string& v) {
    if (const Tensor* c = g.constant(v)) p.constants.emplace(v, *c);
  };
  for (const Node& n : p.nodes)
    for (const std::string& in : n.inputs) take(in);
  for (const std::string& out : p.outputs) take(out);  // a constant graph output
  return p;
}

}  // namespace

std::vector<schedule::ImageMajorNode> image_major_nodes(const Graph& g) {
  if (g.inputs.size() != 1) return {};
  const ValueInfo x = g.info(g.inputs[0]);
  if (x.dtype != DType::F32 || x.shape.size() != 4 || x.shape[0] < 1) return {};
  const int64_t N = x.shape[0];
  // Consumers of every runtime value not yet passed (a value is live across the cut after node k
  // while some later node reads it, or it is a graph output).
  std::map<std::string, int64_t> readers;
  for (const Node& n : g.nodes) {
    std::set<std::string> seen;
    for (const std::string& in : n.inputs)
      if (!in.empty() && !g.is_constant(in) && seen.insert(in).second) ++readers[in];
  }
  std::set<std::string> live;
  if (readers[g.inputs[0]] > 0) live.insert(g.inputs[0]);
  std::vector<schedule::ImageMajorNode> r;
  for (const Node& n : g.nodes) {
    schedule::ImageMajorNode d;
    d.name = n.name;
    bool ok = per_image_op(n);
    std::set<std::string> seen;
    Shape first_shape;
    for (const std::string& in : n.inputs) {
      if (in.empty()) continue;
      const ValueInfo v = g.info(in);
      if (g.is_constant(in)) {
        d.weight_bytes += bytes_of(v, in);
        // a constant operand of an element-wise op must not hold a per-image axis
        if (!weight_op(n) && v.shape.size() == 4 && v.shape[0] != 1) ok = false;
        continue;
      }
      ok = ok && activation_dtype(v.dtype) && v.shape.size() == 4 && v.shape[0] == N;
      if (first_shape.empty()) first_shape = v.shape;
      else if (!weight_op(n)) ok = ok && v.shape == first_shape;  // no broadcast between images
      if (seen.insert(in).second) {
        d.in_bytes += bytes_of(v, in) / std::max<int64_t>(N, 1);
        if (--readers[in] == 0 && !g.is_graph_output(in)) live.erase(in);
      }
    }
    for (const std::string& out : n.outputs) {
      if (out.empty()) continue;
      const ValueInfo v = g.info(out);
      ok = ok && activation_dtype(v.dtype) && v.shape.size() == 4 && v.shape[0] == N;
      d.out_bytes += bytes_of(v, out) / std::max<int64_t>(N, 1);
      if (readers[out] > 0 || g.is_graph_output(out)) live.insert(out);
    }
    d.per_image = ok;
    d.single_cut_after = live.size() == 1 && !g.is_graph_output(*live.begin()) && *live.begin() != g.inputs[0];
    if (d.single_cut_after) {
      // Not a value read only by a QuantizeLinear: the rest's executable would quantize it at its
      // boundary (NativeExecutable's InputQuantize) and hold no float copy for the lanes to write.
      const std::vector<int> users = g.consumers(*live.begin());
      if (users.size() == 1 && g.nodes[size_t(users[0])].op == "QuantizeLinear") d.single_cut_after = false;
      else d.crossing = *live.begin();
    }
    r.push_back(d);
  }
  return r;
}

std::optional<ImageMajorSplit> split_image_major(const Graph& g, int64_t l2_bytes, std::string* why) {
  const std::vector<schedule::ImageMajorNode> nodes = image_major_nodes(g);
  int64_t N = 1;  // the batch: axis 0 of the first input, when 4-D
  if (!g.inputs.empty() && g.info(g.inputs[0]).shape.size() == 4) N = g.info(g.inputs[0]).shape[0];
  schedule::ImageMajorPlan plan = schedule::plan_image_major(nodes, N, l2_bytes);
  if (nodes.empty() && N > 1) plan.why = "not one 4-D float input";
  if (why) *why = plan.why;
  if (plan.nodes <= 0) return std::nullopt;
  const size_t k = size_t(plan.nodes);
  ImageMajorSplit s;
  s.plan = plan;
  s.cut = nodes[k - 1].crossing;
  s.prefix = part_of(g, 0, k, g.inputs, {s.cut});
  ValueInfo x = g.info(g.inputs[0]);  // at batch 1, and every value after it inferred again
  x.shape[0] = 1;
  s.prefix.values = {{g.inputs[0], x}};
  infer_shapes(s.prefix);
  s.rest = part_of(g, k, g.nodes.size(), {s.cut}, g.outputs);
  return s;
}

}  // namespace locus::native
