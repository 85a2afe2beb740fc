// In-code model builders: the MobileNetV2 (width 1.0, 224x224) and ResNet-50 architectures as graph
// IR, in the form torchvision's ONNX export has (Conv without bias -> BatchNormalization -> Relu or
// Clip(0, 6), Add for residuals, GlobalAveragePool -> Flatten -> Gemm), with deterministic
// pseudo-random weights (a fixed seed gives bit-identical graphs on every machine). For tests and
// benchmarks that need the architecture but not a trained file.
#pragma once

#include <cstdint>

#include "graph/ir.h"

namespace locus::models {

struct BuildOptions {
  int64_t batch = 1;
  int64_t resolution = 224;  // input height = width
  int64_t num_classes = 1000;
  uint32_t seed = 1;
};

// Input "input" [batch, 3, R, R] float32, output "output" [batch, num_classes] (logits).
Graph build_mobilenet_v2(const BuildOptions& o = {});
Graph build_resnet50(const BuildOptions& o = {});

}  // namespace locus::models
