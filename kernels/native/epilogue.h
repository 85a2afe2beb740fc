// The epilogue every micro-kernel applies to its tile before storing it (the GEMM, depthwise and
// direct-convolution micro-kernels alike): add a bias, then clamp, which is how a fused Relu or
// Clip runs, then a HardSigmoid, HardSwish or Sigmoid (`post`, on the registers: epilogue_vec.h).
// The GEMM micro-kernels can also add a residual tile after the bias (Epilogue::residual).
// The clamp keeps NaN and sends +-inf to the bounds (activation.h).
#pragma once

#include <cstdint>

#include "kernels/native/activation.h"

namespace locus::kernels {

struct Epilogue {
  const float* bias = nullptr;  // one entry per output channel of the tile, or nullptr
  // A residual added after the bias, before the clamp (GEMM micro-kernels only: a fused residual
  // Add): element (i, j) of the tile at residual[i * ldr + j], like the bias offset by the tile's
  // first column; nullptr for none.
  const float* residual = nullptr;
  int64_t ldr = 0;
  bool clamp = false;
  float lo = 0.f, hi = 0.f;
  ActKind post = ActKind::None;   // None, HardSigmoid, HardSwish or Sigmoid, after the clamp
  float alpha = 0.f, beta = 0.f;  // HardSigmoid's

  // Whether there is an activation to apply (the bias alone is not one).
  bool has_act() const { return clamp || post != ActKind::None; }
};

// The epilogue that applies `act` (Relu -> clamp [0, inf), Clip -> clamp [lo, hi], HardSigmoid,
// HardSwish, Sigmoid -> post); no bias.
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
  } else if (act.kind != ActKind::None) {
    ep.post = act.kind;
    ep.alpha = act.lo;
    ep.beta = act.hi;
  }
  return ep;
}

}  // namespace locus::kernels
