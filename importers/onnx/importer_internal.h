// Internal helpers shared by the ONNX importer's translation units (not part of the public
// interface in onnx_importer.h): bounded file reading, protobuf parsing with limits, dtype mapping,
// and the opset canonicalisation step.
#pragma once

#include <cstdint>
#include <string>

#include "graph/ir.h"

namespace google::protobuf {
class MessageLite;
}

namespace locus::onnx_import::detail {

// Largest file we read into memory (protobuf cannot parse messages of 2 GiB or more).
inline constexpr int64_t kMaxFileBytes = (int64_t(1) << 31) - 1;

// Reads a whole regular file. Throws Error naming `what` and the path if it is missing, a
// directory, not a regular file, empty, larger than kMaxFileBytes or unreadable.
std::string read_file_bytes(const std::string& path, const std::string& what);

// Parses `size` bytes into `msg` with a total-bytes limit of `size`. Returns false on failure.
bool parse_bounded(const void* data, size_t size, google::protobuf::MessageLite* msg);

// ONNX TensorProto.DataType value -> DType; DType::Undefined if the runtime does not support it.
DType dtype_from_onnx(int32_t onnx_type);
int32_t dtype_to_onnx(DType t);
// Name of an ONNX data type value, e.g. "FLOAT16", or "data type 99" if unknown.
std::string onnx_dtype_name(int32_t onnx_type);

// Rethrows the exception in flight with `prefix` prepended to its message, keeping Unsupported
// distinct from Error. Other exceptions pass through unchanged (they are bugs, and the fuzzer must
// see them). Call only inside a catch block.
[[noreturn]] void rethrow_with_prefix(const std::string& prefix);

// Rewrites opset-specific node forms into the canonical forms of graph/ops.h and folds Constant
// nodes into g.constants. g.opset must be set; g.inputs / g.outputs / g.constants filled.
void canonicalize(Graph& g);

}  // namespace locus::onnx_import::detail
