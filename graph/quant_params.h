// Reading the quantization parameters of the quantized ops (QuantizeLinear, DequantizeLinear,
// QLinearConv, ...): a scale or zero-point tensor holds one value (per tensor) or one per channel
// (per axis). Shape inference (graph/shape_inference_quant.cpp) has checked their types and lengths.
#pragma once

#include <cstdint>

#include "graph/ir.h"

namespace locus {

// Scale k of a float scale tensor; a per-tensor scale answers for every k.
inline float quant_scale_at(const Tensor& s, int64_t k) { return s.data<float>()[s.numel() == 1 ? 0 : k]; }

// Zero point k of a u8 / s8 / s32 zero-point tensor, 0 when the tensor is absent.
inline int32_t quant_zero_at(const Tensor* z, int64_t k) {
  return z ? int32_t(z->get_int(z->numel() == 1 ? 0 : k)) : 0;
}

}  // namespace locus
