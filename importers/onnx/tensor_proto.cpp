// TensorProto <-> Tensor conversion (raw_data, typed fields and confined external data) and the
// ONNX test layout's tensor files (input_N.pb / output_N.pb).
//
// Every size a file claims is checked before anything is allocated: dims go through checked_numel,
// and the data actually present (raw bytes, typed values, or the external file's range) must match
// numel * dtype size exactly, so no allocation is larger than the data that backs it.
#include <onnx/onnx_pb.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "importers/onnx/importer_internal.h"
#include "importers/onnx/onnx_importer.h"

static_assert(std::endian::native == std::endian::little, "raw_data is little-endian");

namespace fs = std::filesystem;

namespace locus::onnx_import {
namespace {

// A non-negative decimal integer from an external_data entry (digits only, no overflow).
int64_t parse_size(const std::string& s, const std::string& what, const std::string& key) {
  LOCUS_CHECK(!s.empty() && s.size() <= 18, what, ": external data '", key, "' is not a valid size: '", s, "'");
  int64_t v = 0;
  for (char c : s) {
    LOCUS_CHECK(c >= '0' && c <= '9', what, ": external data '", key, "' is not a valid size: '", s, "'");
    v = v * 10 + (c - '0');
  }
  return v;
}

// True if `p` equals `dir` or lies below it (both absolute and canonical).
bool is_within(const fs::path& p, const fs::path& dir) {
  auto pi = p.begin();
  for (auto di = dir.begin(); di != dir.end(); ++di, ++pi) {
    if (di->empty() && std::next(di) == dir.end()) break;  // trailing separator of dir
    if (pi == p.end() || *pi != *di) return false;
  }
  return true;
}

// Resolves an external data location to a canonical file path inside base_dir, or throws.
fs::path resolve_external(const std::string& location, const std::string& base_dir, const std::string& what) {
  LOCUS_CHECK(!base_dir.empty(), what, ": external data not allowed here (no model folder to read it from)");
  LOCUS_CHECK(!location.empty(), what, ": external data has no 'location'");
  LOCUS_CHECK(location.find('\0') == std::string::npos, what, ": external data location contains a NUL byte");
  fs::path loc(location);
  LOCUS_CHECK(!loc.is_absolute() && !loc.has_root_directory() && !loc.has_root_name(), what,
              ": external data location '", location, "' is absolute; it must be relative to the model folder");
  for (const auto& part : loc)
    LOCUS_CHECK(part != "..", what, ": external data location '", location,
                "' contains '..'; it must stay inside the model folder");

  std::error_code ec;
  fs::path base = fs::weakly_canonical(fs::absolute(base_dir, ec), ec);
  LOCUS_CHECK(!ec, what, ": cannot resolve model folder '", base_dir, "': ", ec.message());
  fs::path full = fs::weakly_canonical(base / loc, ec);
  LOCUS_CHECK(!ec, what, ": cannot resolve external data file '", location, "': ", ec.message());
  LOCUS_CHECK(is_within(full, base), what, ": external data file '", location, "' resolves to '",
              full.string(), "', outside the model folder '", base.string(), "'");
  fs::file_status st = fs::status(full, ec);
  LOCUS_CHECK(!ec && fs::exists(st), what, ": external data file '", full.string(), "' does not exist");
  LOCUS_CHECK(fs::is_regular_file(st), what, ": external data file '", full.string(), "' is not a regular file");
  return full;
}

std::vector<std::byte> read_external(const onnx::TensorProto& p, const std::string& base_dir,
                                     size_t nbytes, const std::string& what) {
  std::map<std::string, std::string> kv;
  for (const auto& e : p.external_data()) {
    LOCUS_CHECK(!kv.count(e.key()), what, ": external data key '", e.key(), "' given twice");
    kv[e.key()] = e.value();
  }
  std::string location = kv.count("location") ? kv["location"] : "";
  int64_t offset = kv.count("offset") ? parse_size(kv["offset"], what, "offset") : 0;
  int64_t length = kv.count("length") ? parse_size(kv["length"], what, "length") : int64_t(nbytes);
  LOCUS_CHECK(length == int64_t(nbytes), what, ": external data length ", length, " does not match its shape ",
              shape_str(Shape(p.dims().begin(), p.dims().end())), " (", nbytes, " bytes)");
  fs::path file = resolve_external(location, base_dir, what);

  std::error_code ec;
  uintmax_t fsize = fs::file_size(file, ec);
  LOCUS_CHECK(!ec, what, ": cannot read external data file '", file.string(), "': ", ec.message());
  LOCUS_CHECK(uintmax_t(offset) <= fsize && uintmax_t(length) <= fsize - uintmax_t(offset), what,
              ": external data range [", offset, ", ", offset + length, ") lies beyond the end of '",
              file.string(), "' (", fsize, " bytes)");

  std::vector<std::byte> bytes(nbytes);
  if (nbytes == 0) return bytes;
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  LOCUS_CHECK(f, what, ": cannot open external data file '", file.string(), "': ", std::strerror(errno));
  LOCUS_CHECK(fseeko(f.get(), off_t(offset), SEEK_SET) == 0, what, ": cannot seek in '", file.string(), "'");
  size_t got = std::fread(bytes.data(), 1, nbytes, f.get());
  LOCUS_CHECK(got == nbytes, what, ": short read from external data file '", file.string(), "'");
  return bytes;
}

// Copies `count` typed values into t.bytes, converting each with `convert(value) -> T`.
template <class T, class Field, class Convert>
void copy_typed(const Field& field, const char* field_name, int64_t n, Tensor& t, const std::string& what,
                Convert convert) {
  LOCUS_CHECK(int64_t(field.size()) == n, what, " has ", field.size(), " values in ", field_name,
              " but its shape ", shape_str(t.shape), " needs ", n);
  t.bytes.resize(size_t(n) * sizeof(T));
  T* out = t.data<T>();
  for (int64_t i = 0; i < n; ++i) out[i] = convert(field.Get(int(i)));
}

template <class T>
auto int32_to(const std::string& what, int32_t lo, int32_t hi) {
  return [&what, lo, hi](int32_t v) {
    LOCUS_CHECK(v >= lo && v <= hi, what, " has value ", v, " in int32_data, out of range for its dtype");
    return T(v);
  };
}

}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto& p, const std::string& base_dir) {
  const std::string what = cat("tensor '", p.name(), "'");
  if (p.has_segment()) throw Unsupported(what + " is segmented, which is not supported");
  DType dt = detail::dtype_from_onnx(p.data_type());
  if (dt == DType::Undefined)
    throw Unsupported(cat(what, " has data type ", detail::onnx_dtype_name(p.data_type()), ", which is not supported"));

  Tensor t;
  t.dtype = dt;
  t.shape.assign(p.dims().begin(), p.dims().end());
  const int64_t n = checked_numel(t.shape, what);  // refuses absurd dims before any allocation
  const size_t nbytes = size_t(n) * dtype_size(dt);

  if (p.data_location() == onnx::TensorProto::EXTERNAL) {
    t.bytes = read_external(p, base_dir, nbytes, what);
  } else if (p.has_raw_data()) {
    const std::string& raw = p.raw_data();
    LOCUS_CHECK(raw.size() == nbytes, what, " has ", raw.size(), " bytes of raw_data but its shape ",
                shape_str(t.shape), " of ", dtype_name(dt), " needs ", nbytes, " bytes");
    t.bytes.resize(nbytes);
    if (nbytes) std::memcpy(t.bytes.data(), raw.data(), nbytes);
  } else {
    auto same = [](auto v) { return v; };
    switch (dt) {
      case DType::F32: copy_typed<float>(p.float_data(), "float_data", n, t, what, same); break;
      case DType::F64: copy_typed<double>(p.double_data(), "double_data", n, t, what, same); break;
      case DType::I64: copy_typed<int64_t>(p.int64_data(), "int64_data", n, t, what, same); break;
      case DType::I32: copy_typed<int32_t>(p.int32_data(), "int32_data", n, t, what, same); break;
      case DType::I8:
        copy_typed<int8_t>(p.int32_data(), "int32_data", n, t, what, int32_to<int8_t>(what, -128, 127));
        break;
      case DType::U8:
        copy_typed<uint8_t>(p.int32_data(), "int32_data", n, t, what, int32_to<uint8_t>(what, 0, 255));
        break;
      case DType::Bool:
        copy_typed<uint8_t>(p.int32_data(), "int32_data", n, t, what, [](int32_t v) { return uint8_t(v != 0); });
        break;
      default: fail(what, ": unexpected dtype");
    }
  }
  if (dt == DType::Bool)  // raw bytes may hold any value; the runtime relies on 0/1
    for (auto& b : t.bytes) b = std::byte(b != std::byte{0});
  return t;
}

void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  LOCUS_CHECK(t.dtype != DType::Undefined, "tensor '", name, "' has no dtype");
  int64_t n = checked_numel(t.shape, cat("tensor '", name, "'"));
  LOCUS_CHECK(t.bytes.size() == size_t(n) * dtype_size(t.dtype), "tensor '", name, "' holds ", t.bytes.size(),
              " bytes but its shape ", shape_str(t.shape), " needs ", size_t(n) * dtype_size(t.dtype));
  p->Clear();
  p->set_name(name);
  p->set_data_type(detail::dtype_to_onnx(t.dtype));
  for (int64_t d : t.shape) p->add_dims(d);
  p->set_raw_data(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
}

Tensor load_tensor_file(const std::string& path, std::string* name) {
  std::string bytes = detail::read_file_bytes(path, "tensor file");
  try {
    onnx::TensorProto p;
    LOCUS_CHECK(detail::parse_bounded(bytes.data(), bytes.size(), &p),
                "not a valid TensorProto (protobuf parse failed; truncated or not a tensor file?)");
    fs::path dir = fs::path(path).parent_path();
    Tensor t = tensor_from_proto(p, dir.empty() ? std::string(".") : dir.string());
    if (name) *name = p.name();
    return t;
  } catch (...) {
    detail::rethrow_with_prefix("tensor file '" + path + "': ");
  }
}

void save_tensor_file(const std::string& path, const Tensor& t, const std::string& name) {
  onnx::TensorProto p;
  tensor_to_proto(t, name, &p);
  std::string bytes;
  LOCUS_CHECK(p.SerializeToString(&bytes), "cannot serialize tensor '", name, "' for '", path, "'");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  LOCUS_CHECK(f, "cannot write tensor file '", path, "': ", std::strerror(errno));
  LOCUS_CHECK(std::fwrite(bytes.data(), 1, bytes.size(), f.get()) == bytes.size(),
              "cannot write tensor file '", path, "': ", std::strerror(errno));
  LOCUS_CHECK(std::fclose(f.release()) == 0, "cannot write tensor file '", path, "': ", std::strerror(errno));
}

}  // namespace locus::onnx_import
