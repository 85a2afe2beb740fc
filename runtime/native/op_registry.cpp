#include "runtime/native/op_registry.h"

#include <limits>

#include "graph/error.h"

namespace locus::native {

void NativeOpRegistry::add(NativeOp op) {
  const std::string key = op.op;
  LOCUS_CHECK(!ops_.count(key), "internal error: native op '", key, "' registered twice");
  ops_.emplace(key, std::move(op));
}

const NativeOp* NativeOpRegistry::find(const Node& n) const {
  auto it = ops_.find(op_key(n));
  return it == ops_.end() ? nullptr : &it->second;
}

std::vector<std::string> NativeOpRegistry::keys() const {
  std::vector<std::string> k;
  for (auto& [key, op] : ops_) k.push_back(key);
  return k;
}

kernels::Activation activation_of(const Node& n) {
  std::string a = n.s("locus.activation", "");
  if (a == "relu") return {kernels::ActKind::Relu};
  if (a == "clip")
    return {kernels::ActKind::Clip, n.f("locus.activation_min", -std::numeric_limits<float>::infinity()),
            n.f("locus.activation_max", std::numeric_limits<float>::infinity())};
  LOCUS_CHECK(a.empty(), "node '", n.name, "': unknown fused activation '", a, "'");
  return {};
}

const NativeOpRegistry& native_ops() {
  static const NativeOpRegistry registry = [] {
    NativeOpRegistry r;
    register_conv_ops(r);
    register_elementwise_ops(r);
    register_pool_ops(r);
    register_tensor_ops(r);
    register_linear_ops(r);
    return r;
  }();
  return registry;
}

}  // namespace locus::native
