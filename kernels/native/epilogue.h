// The epilogue every micro-kernel applies to its tile before storing it (the GEMM, depthwise and
// direct-convolution micro-kernels alike): add a bias, then clamp, which is how a fused Relu or
// Clip runs. The clamp keeps NaN and sends +-inf to the bounds (activation.h).
#pragma once

#include "kernels/native/activation.h"

namespace locus::kernels {

struct Epilogue {
  const float* bias = nullptr;  // one entry per output channel of the tile, or nullptr
  bool clamp = false;
  float lo = 0.f, hi = 0.f;
};

// The epilogue that applies `act` (Relu -> clamp [0, inf), Clip -> clamp [lo, hi]); no bias.
inline Epilogue epilogue_for(const Activation& act) {
  Epilogue ep;
  if (act.kind == ActKind::Relu) {
    ep.clamp = true;
    ep.lo = 0.f;
    ep.hi = __builtin_inff();
  } else if (act.kind == ActKind::Clip) {
    ep.clamp = true;
    ep.lo = act.lo;
    ep.hi = act.hi;
  }
  return ep;
}

}  // namespace locus::kernels
