// ONNX exporter: graph IR -> a standard ONNX model (onnx::ModelProto), e.g. a CP-decomposed network
// written by `locus decompose` so that any other runtime can run it.
//
// What is written:
//   - one opset import of the default domain: ExportOptions::opset, or (0) max(the graph's opset, 13).
//     The IR holds every op in its canonical form (graph/ops.h), which is the opset-13 form, so older
//     opsets are written as 13; forms that need a newer opset (Reshape allowzero=1, Shape start/end)
//     are refused below that opset;
//   - graph inputs and outputs with element type and the IR's (concrete) shapes: the IR keeps no
//     symbolic dims, the batch is the one the graph was loaded with;
//   - initializers: the constants the nodes (and outputs) read, raw_data little-endian;
//   - value_info for every intermediate value whose dtype and shape are known;
//   - nodes with their names, inputs, outputs and typed attributes; value names are kept.
// Only standard ONNX is written. Conv's fused activation (locus.activation = relu | clip, with
// locus.activation_min/_max, from the fuse-activation pass) becomes a Relu or Clip node after the
// Conv (Clip bounds as scalar initializers, an infinite bound omitted); the canonical Softmax
// attribute `legacy` is dropped (legacy=1 with an axis other than the last becomes
// Flatten -> Softmax -> Reshape, the opset < 13 semantics). Anything else the runtime added is refused
// with a one-line Error naming the node: ops of the locus domain (FusedInvertedResidual) or of any
// non-standard domain, other "locus." attributes (training-mode BatchNorm, MaxPool Indices, attributes
// the importer could not read), so a refused graph is never half written.
// If a graph output's shape is not yet inferred, shapes are inferred on a copy (no folding).
#pragma once

#include <cstdint>
#include <string>

#include "graph/ir.h"

namespace onnx {
class ModelProto;
}  // namespace onnx

namespace locus::onnx_export {

struct ExportOptions {
  int64_t opset = 0;                  // 13..17; 0 = max(g.opset, 13) (capped at 17)
  std::string producer_name = "locus";
  std::string doc_string;             // written as the model's doc_string if not empty
};

// The IR version written (ONNX 1.10+ reads it; opsets 13 to 17).
inline constexpr int64_t kExportIrVersion = 8;

// The default-domain opset the model is written with (see ExportOptions::opset). Throws Error if
// o.opset is outside 13..17.
int64_t export_opset(const Graph& g, const ExportOptions& o = {});

// Fills `m` (cleared first). Throws Error (one line) for graphs that cannot be written as standard ONNX.
void to_model_proto(const Graph& g, onnx::ModelProto* m, const ExportOptions& o = {});

// The serialized ModelProto.
std::string serialize_model(const Graph& g, const ExportOptions& o = {});

// Writes the model to `path` through a temporary file in the same folder and a rename, so an existing
// file is replaced only by a complete model. One-line Error if the folder is missing or unwritable.
void save_model(const Graph& g, const std::string& path, const ExportOptions& o = {});

// ONNX's own checker (onnx::checker::check_model, with the model's opsets) on a written file:
// throws Error with its one-line reason when the file is not a valid ONNX model.
void check_model_file(const std::string& path);

}  // namespace locus::onnx_export
