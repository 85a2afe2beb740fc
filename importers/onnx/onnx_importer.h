// ONNX importer: a .onnx file (opset 7..17 of the default domain; opsets 1..6 only if every op is
// one whose legacy form is canonicalised, see legacy_opsets.cpp) into the graph IR, in the
// canonical op forms of graph/ops.h. Initializers and Constant nodes become Graph::constants;
// attributes are typed; ONNX defaults are left to the consumers (Node::i(name, default)).
//
// Safety: the file is size-checked and parsed with protobuf limits; every tensor's data length must
// match its dims; dims beyond kMaxTensorElements are refused before any allocation; external data is
// read only from files inside the model's folder (no absolute paths, no "..", symlinks resolved and
// checked), within the file's bounds.
#pragma once

#include <string>

#include "graph/ir.h"

namespace onnx {
class TensorProto;
class ModelProto;
}  // namespace onnx

namespace locus::onnx_import {

struct ImportOptions {
  // Value for symbolic / unknown dimensions of graph inputs (the batch size, usually). Each
  // symbolic dim is recorded in Graph::symbolic_dims; a Session takes the default only for axis 0.
  int64_t default_dim = 1;
};

// Loads a model file. Throws Error with a one-line message naming the problem (missing file, empty
// file, not an ONNX model, truncated, bad tensor, unsupported opset/domain, ...). Operators that are
// not in the catalogue are NOT an error here: they stay in the graph so that the caller can report
// all of them at once (graph/ops.h: unsupported_nodes). Exception: a model older than opset 7 with
// an op outside the legacy table is refused here (Unsupported naming the op and the opset).
Graph load_model(const std::string& path, const ImportOptions& opts = {});

// Same, from bytes already in memory (external data then refused). Used by the fuzzer.
Graph load_model_from_bytes(const void* data, size_t size, const ImportOptions& opts = {});

// A serialized TensorProto file (the ONNX test layout's input_N.pb / output_N.pb) into a Tensor.
// `name` receives the proto's name if non-null.
Tensor load_tensor_file(const std::string& path, std::string* name = nullptr);
// Tensor -> serialized TensorProto file.
void save_tensor_file(const std::string& path, const Tensor& t, const std::string& name);

// TensorProto <-> Tensor. `base_dir` is the folder external data is confined to ("" = refuse).
Tensor tensor_from_proto(const onnx::TensorProto& p, const std::string& base_dir);
void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p);

}  // namespace locus::onnx_import
