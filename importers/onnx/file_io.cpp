// Bounded file reading and protobuf parsing for the ONNX importer, the ONNX <-> locus dtype mapping,
// and the error-prefixing helper used to make every message name the file it is about.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <onnx/onnx_pb.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "importers/onnx/importer_internal.h"

namespace fs = std::filesystem;

namespace locus::onnx_import::detail {

std::string read_file_bytes(const std::string& path, const std::string& what) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail(what, " '", path, "' does not exist");
  if (fs::is_directory(st)) fail(what, " '", path, "' is a directory, not a file");
  if (!fs::is_regular_file(st)) fail(what, " '", path, "' is not a regular file");
  uintmax_t size = fs::file_size(path, ec);
  if (ec) fail("cannot read ", what, " '", path, "': ", ec.message());
  if (size == 0) fail(what, " '", path, "' is empty");
  if (size > uintmax_t(kMaxFileBytes))
    fail(what, " '", path, "' is larger than 2 GiB (", size, " bytes), which ONNX protobuf files cannot be");

  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail("cannot open ", what, " '", path, "': ", std::strerror(errno));
  std::string bytes(size_t(size), '\0');
  size_t got = std::fread(bytes.data(), 1, bytes.size(), f.get());
  if (got != bytes.size()) fail("cannot read ", what, " '", path, "': got ", got, " of ", size, " bytes");
  return bytes;
}

bool parse_bounded(const void* data, size_t size, google::protobuf::MessageLite* msg) {
  if (size > size_t(kMaxFileBytes)) return false;
  google::protobuf::io::ArrayInputStream array(data, int(size));
  google::protobuf::io::CodedInputStream coded(&array);
  coded.SetTotalBytesLimit(int(size));
  return msg->ParseFromCodedStream(&coded) && coded.ConsumedEntireMessage();
}

DType dtype_from_onnx(int32_t t) {
  switch (t) {
    case onnx::TensorProto::FLOAT: return DType::F32;
    case onnx::TensorProto::DOUBLE: return DType::F64;
    case onnx::TensorProto::INT64: return DType::I64;
    case onnx::TensorProto::INT32: return DType::I32;
    case onnx::TensorProto::INT8: return DType::I8;
    case onnx::TensorProto::UINT8: return DType::U8;
    case onnx::TensorProto::BOOL: return DType::Bool;
    default: return DType::Undefined;
  }
}

int32_t dtype_to_onnx(DType t) {
  switch (t) {
    case DType::F32: return onnx::TensorProto::FLOAT;
    case DType::F64: return onnx::TensorProto::DOUBLE;
    case DType::I64: return onnx::TensorProto::INT64;
    case DType::I32: return onnx::TensorProto::INT32;
    case DType::I8: return onnx::TensorProto::INT8;
    case DType::U8: return onnx::TensorProto::UINT8;
    case DType::Bool: return onnx::TensorProto::BOOL;
    default: return onnx::TensorProto::UNDEFINED;
  }
}

std::string onnx_dtype_name(int32_t t) {
  if (onnx::TensorProto_DataType_IsValid(t)) return onnx::TensorProto_DataType_Name(t);
  return cat("data type ", t);
}

void rethrow_with_prefix(const std::string& prefix) {
  try {
    throw;
  } catch (const Unsupported& e) {
    throw Unsupported(prefix + e.what());
  } catch (const Error& e) {
    throw Error(prefix + e.what());
  }
}

}  // namespace locus::onnx_import::detail
