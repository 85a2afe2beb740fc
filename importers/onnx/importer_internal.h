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
// nodes into g.constants. g.opset must be set; g.inputs / g.outputs / g.constants filled. For opsets
// older than 7 it first calls check_legacy_opset. Binary ops with a legacy broadcast axis are left
// with the attribute kLegacyAxisAttr for resolve_legacy_broadcast.
void canonicalize(Graph& g);

// Legacy opsets 1..6 (legacy_opsets.cpp). Throws Unsupported naming the op and the opset if g.opset
// is older than 7 and a default-domain node is not an op (or form) whose behaviour at that opset the
// importer canonicalises exactly. No-op for opsets 7 and later.
void check_legacy_opset(const Graph& g);

// Add/Sub/Mul/Div of opsets < 7 with broadcast=1 and an axis: the axis the second input is aligned at.
inline constexpr const char* kLegacyAxisAttr = "locus.legacy_axis";

// Rewrites every node carrying kLegacyAxisAttr into numpy broadcasting by giving its second input B
// trailing 1s up to the rank of A (a reshaped copy if B is a constant, an Unsqueeze node otherwise),
// learning ranks by a shape-inference pre-pass. Throws Unsupported if a rank cannot be learned. Needs
// the nodes in topological order and g.values holding the graph inputs.
void resolve_legacy_broadcast(Graph& g);

}  // namespace locus::onnx_import::detail
