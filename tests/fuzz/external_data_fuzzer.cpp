// libFuzzer target for external tensor data: initializers whose bytes live in other files of the
// model's folder (importers/onnx/tensor_proto.cpp: resolve_external / read_external). The fuzz bytes
// choose a tensor (dtype, dims) and its external_data entries (keys, location strings, offsets and
// lengths, as free text or picked from interesting values), against a small real folder:
//
//   <tmp>/model/weights.bin (256 bytes)  sub/w.bin (64)  empty.bin (0)  dir/  fifo (a FIFO)
//   <tmp>/model/link_in -> weights.bin   link_out -> ../outside.bin   loop -> loop
//   <tmp>/outside.bin (256 bytes of 0xEE, outside the model folder)
//
// Every file inside the folder holds byte (i mod 256) at offset i, so a tensor that loads must hold
// exactly the bytes at its offset; data from outside.bin or from a wrong offset aborts.
//
// Each input is converted with tensor_from_proto(proto, "<tmp>/model") and, when the selector byte
// says so, also written as a one-initializer model to <tmp>/model/model.onnx and loaded with
// load_model (the path `locus run MODEL` takes). Any input must either load or throw locus::Error;
// anything else (another exception type, a crash, a sanitizer report, a hang, a read outside the
// folder, a large allocation) is a bug.
//
// With LOCUS_FUZZ_WRITE_SEEDS=<dir> the binary writes seed inputs into <dir> and exits.
#include <fuzzer/FuzzedDataProvider.h>
#include <onnx/onnx_pb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "graph/error.h"
#include "importers/onnx/onnx_importer.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

namespace fs = std::filesystem;
using onnx::TensorProto;

std::string g_root, g_model_dir;

using namespace std::string_view_literals;
const std::string_view kLocations[] = {
    "weights.bin", "sub/w.bin", "empty.bin", "dir", "fifo", "link_in", "link_out", "loop", "missing.bin",
    "../outside.bin", "/etc/passwd", "./weights.bin", "sub/../weights.bin", "weights.bin/", "sub//w.bin",
    "dir/../../outside.bin", "", ".", "..", "~/x", "weights.bin\0x"sv, "C:\\w.bin",
};
const std::string_view kKeys[] = {"location", "offset", "length", "checksum", "basepath", "location"};
const std::string_view kNumbers[] = {"0", "1", "4", "16", "63", "64", "252", "256", "257", "-1", "+4", " 4",
                                "4 ", "0x10", "1e2", "18446744073709551615", "9223372036854775807",
                                "999999999999999999", "9999999999999999999", "00000000000000000016", ""};
const int kDtypes[] = {TensorProto::FLOAT, TensorProto::DOUBLE, TensorProto::INT64, TensorProto::INT32,
                       TensorProto::INT8,  TensorProto::UINT8,  TensorProto::BOOL,  TensorProto::FLOAT16,
                       TensorProto::STRING, 0,                  1000};

template <size_t N>
std::string pick(FuzzedDataProvider& p, const std::string_view (&table)[N]) {
  return std::string(table[p.ConsumeIntegralInRange<size_t>(0, N - 1)]);
}

// The tensor described by the fuzz bytes. Layout (FuzzedDataProvider): dtype, dims, location kind,
// then entries until the bytes run out.
TensorProto make_tensor(FuzzedDataProvider& p) {
  TensorProto t;
  t.set_name("w");
  t.set_data_type(kDtypes[p.ConsumeIntegralInRange<size_t>(0, std::size(kDtypes) - 1)]);
  const int rank = p.ConsumeIntegralInRange<int>(0, 4);
  for (int i = 0; i < rank; ++i) {
    if (p.ConsumeBool())
      t.add_dims(p.ConsumeIntegralInRange<int64_t>(0, 70));
    else
      t.add_dims(p.ConsumeIntegral<int64_t>());
  }
  const uint8_t mode = p.ConsumeIntegral<uint8_t>();
  if (mode % 8 != 0) t.set_data_location(TensorProto::EXTERNAL);
  if (mode % 16 == 1) t.set_raw_data("abcd");  // raw data and external at once
  const int entries = p.ConsumeIntegralInRange<int>(0, 6);
  for (int i = 0; i < entries && p.remaining_bytes() > 0; ++i) {
    auto* e = t.add_external_data();
    const uint8_t kind = p.ConsumeIntegral<uint8_t>();
    const std::string key = kind % 5 == 4 ? p.ConsumeRandomLengthString(16) : pick(p, kKeys);
    e->set_key(key);
    std::string value;
    if (kind / 5 % 2 == 0) {
      value = p.ConsumeRandomLengthString(64);
    } else if (key == "location") {
      value = pick(p, kLocations);
    } else {
      value = pick(p, kNumbers);
    }
    e->set_value(value);
  }
  return t;
}

void check_loaded(const TensorProto& t, const locus::Tensor& x) {
  if (x.bytes.size() != size_t(x.numel()) * locus::dtype_size(x.dtype)) std::abort();
  if (t.data_location() != TensorProto::EXTERNAL || x.dtype == locus::DType::Bool) return;
  uint64_t offset = 0;
  for (const auto& e : t.external_data())
    if (e.key() == "offset") offset = std::strtoull(e.value().c_str(), nullptr, 10);
  for (size_t k = 0; k < x.bytes.size(); ++k)
    if (uint8_t(x.bytes[k]) != uint8_t(offset + k)) std::abort();
}

void write_seeds(const std::string& dir) {
  // raw FuzzedDataProvider streams: integral values are taken from the end of the data, strings and
  // bools from the front; these are just a few varied starting points.
  const std::vector<std::string> seeds = {
      std::string("\x00\x10\x01\x00\x05\x00\x10\x01", 8),
      std::string("weights.bin\\\x00\x11\x22\x01\x02\x03\x04\x04\x01\x02\x03\x01\x00", 25),
      std::string("16\\\x00location\\\x00\x05\x01\x01\x06\x03\x07\x02\x01\x00\x04\x08\x02", 27),
      std::string("../outside.bin\\\x00\x06\x09\x02\x0b\x07\x01\x00\x01\x01", 25),
  };
  int i = 0;
  for (const auto& s : seeds) locus_fuzz::write_bytes(dir + "/ext_" + std::to_string(i++) + ".bin", s);
}

void make_folder() {
  char tmpl[] = "/tmp/locus-extdata-fuzz-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  g_root = tmpl;
  g_model_dir = g_root + "/model";
  fs::create_directories(g_model_dir + "/sub");
  fs::create_directories(g_model_dir + "/dir");
  std::string bytes(256, '\0');
  for (int i = 0; i < 256; ++i) bytes[size_t(i)] = char(i);
  locus_fuzz::write_bytes(g_model_dir + "/weights.bin", bytes);
  locus_fuzz::write_bytes(g_model_dir + "/sub/w.bin", bytes.substr(0, 64));
  locus_fuzz::write_bytes(g_model_dir + "/empty.bin", "");
  locus_fuzz::write_bytes(g_root + "/outside.bin", std::string(256, '\xee'));
  mkfifo((g_model_dir + "/fifo").c_str(), 0600);
  std::error_code ec;
  fs::create_symlink("weights.bin", g_model_dir + "/link_in", ec);
  fs::create_symlink("../outside.bin", g_model_dir + "/link_out", ec);
  fs::create_symlink("loop", g_model_dir + "/loop", ec);
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(g_root, ec);
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  locus_fuzz::write_seeds_if_asked(write_seeds);
  make_folder();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider p(data, size);
  const bool as_model = p.ConsumeIntegral<uint8_t>() % 4 == 0;
  const TensorProto t = make_tensor(p);
  try {
    check_loaded(t, locus::onnx_import::tensor_from_proto(t, g_model_dir));
  } catch (const locus::Error&) {
    // expected: refused locations, bad sizes, ranges beyond the file, unsupported dtypes
  }
  if (as_model) {
    locus_fuzz::ModelBuilder b(13);
    *b.g().add_initializer() = t;
    b.input("x", {1});
    b.node("Identity", {"w"}, {"y"});
    b.output("y");
    const std::string path = g_model_dir + "/model.onnx";
    locus_fuzz::write_message(path, b.m);
    try {
      locus::onnx_import::load_model(path);
    } catch (const locus::Error&) {
    }
  }
  return 0;
}
