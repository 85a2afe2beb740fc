// native_ops(): the native backend's registry, filled once by each op family's file; activation_of, the
// fused activation every Conv builder reads.
#include "runtime/native/op_registry.h"

#include <limits>

#include "graph/error.h"

namespace locus::native {

kernels::Activation activation_of(const Node& n) {
  std::string a = n.s("locus.activation", "");
  if (a == "relu") return {kernels::ActKind::Relu};
  if (a == "clip")
    return {kernels::ActKind::Clip, n.f("locus.activation_min", -std::numeric_limits<float>::infinity()),
            n.f("locus.activation_max", std::numeric_limits<float>::infinity())};
  if (a == "hardsigmoid") return {kernels::ActKind::HardSigmoid, n.f("locus.activation_alpha", 0.2f),
                                  n.f("locus.activation_beta", 0.5f)};
  if (a == "hardswish") return {kernels::ActKind::HardSwish};
  if (a == "sigmoid") return {kernels::ActKind::Sigmoid};
  LOCUS_CHECK(a.empty(), "node '", n.name, "': unknown fused activation '", a, "'");
  return {};
}

const NativeOpRegistry& native_ops() {
  static const NativeOpRegistry registry =
      make_op_registry<NativeBuilder>("native backend", {register_conv_ops, register_elementwise_ops, register_pool_ops,
                                                         register_tensor_ops, register_linear_ops, register_quant_ops,
                                                         register_qfused_ops, register_resample_ops,
                                                         register_reduce_ops, register_chain_ops});
  return registry;
}

}  // namespace locus::native
