// onednn_ops(): the oneDNN backend's registry, filled once by each op family's file.
#include "runtime/onednn/op_registry.h"

namespace locus::onednn {

const OnednnOpRegistry& onednn_ops() {
  static const OnednnOpRegistry registry =
      make_op_registry<Builder>("oneDNN backend", {register_conv_ops, register_eltwise_ops, register_pool_ops,
                                                   register_binary_ops, register_tensor_ops, register_linear_ops,
                                                   register_quant_ops, register_resample_ops,
                                                   register_reduce_ops});
  return registry;
}

}  // namespace locus::onednn
