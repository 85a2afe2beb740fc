// eval::evaluate: finds the node's kernel in the registry (eval_ops(), filled by the family files),
// normalises a copy of the node with infer_node (which also validates the inputs and rejects
// unsupported forms), allocates the output and runs the kernel.
// Also the index helpers shared by the reference kernels.
#include "graph/eval/eval_ops.h"

#include <algorithm>
#include <map>

#include "graph/ops.h"
#include "graph/eval/eval_internal.h"

namespace locus::eval {
namespace detail {

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> own = strides_of(in);
  std::vector<int64_t> st(out.size(), 0);
  const size_t lead = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) st[lead + i] = in[i] == 1 ? 0 : own[i];
  return st;
}

int64_t broadcast_offset(int64_t i, const Shape& out, const std::vector<int64_t>& st) {
  int64_t off = 0;
  for (size_t d = out.size(); d-- > 0;) {
    off += (i % out[d]) * st[d];
    i /= out[d];
  }
  return off;
}

int64_t dims_product(const Shape& s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= s[i];
  return p;
}

}  // namespace detail

const EvalRegistry& eval_ops() {
  static const EvalRegistry registry = [] {
    EvalRegistry r("reference evaluator");
    detail::register_nn_ops(r);
    detail::register_tensor_ops(r);
    detail::register_fused_ops(r);
    detail::register_quant_ops(r);
    detail::register_mobile_ops(r);
    return r;
  }();
  return registry;
}

std::vector<Tensor> evaluate(const Node& n, const std::vector<const Tensor*>& inputs) {
  const EvalRegistry::Entry* kernel = eval_ops().find(n);
  if (!kernel) throw Unsupported(eval_ops().why_not(n));
  // Work on a copy: infer_node normalises attributes, and inputs are named by position here.
  Node node = n;
  if (node.outputs.empty()) node.outputs.push_back("output");
  node.inputs.resize(std::max(node.inputs.size(), inputs.size()));
  std::vector<ValueInfo> infos(node.inputs.size());
  std::vector<const Tensor*> given(node.inputs.size(), nullptr);
  for (size_t k = 0; k < node.inputs.size(); ++k) {
    const Tensor* t = k < inputs.size() ? inputs[k] : nullptr;
    if (!t) {
      node.inputs[k].clear();
      continue;
    }
    LOCUS_CHECK(dtype_size(t->dtype) > 0 &&
                    t->bytes.size() == size_t(checked_numel(t->shape, "input")) * dtype_size(t->dtype),
                "node '", n.name, "' (", n.op, "): input ", k, " holds ", t->bytes.size(),
                " bytes, inconsistent with ", dtype_name(t->dtype), " ", shape_str(t->shape));
    if (node.inputs[k].empty()) node.inputs[k] = cat("input", k);
    infos[k] = ValueInfo{t->dtype, t->shape, true};
    given[k] = t;
  }
  std::vector<ValueInfo> out = infer_node(node, infos, given);
  Tensor y(out[0].dtype, out[0].shape);
  kernel->fn(node, given, y);
  std::vector<Tensor> result;
  result.push_back(std::move(y));
  return result;
}

}  // namespace locus::eval
