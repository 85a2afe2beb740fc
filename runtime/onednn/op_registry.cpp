// onednn_ops(): the oneDNN backend's registry, filled once by each op family's file.
#include "runtime/onednn/op_registry.h"

namespace locus::onednn {

const OnednnOpRegistry& onednn_ops() {
  static const OnednnOpRegistry registry = [] {
    OnednnOpRegistry r("oneDNN backend");
    register_conv_ops(r);
    register_eltwise_ops(r);
    register_pool_ops(r);
    register_binary_ops(r);
    register_tensor_ops(r);
    register_linear_ops(r);
    return r;
  }();
  return registry;
}

}  // namespace locus::onednn
