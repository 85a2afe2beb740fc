// libFuzzer target for the tensor files users feed (`locus run --input NAME=FILE.pb`, the
// input_N.pb / output_N.pb files `locus check` reads): the bytes are written to a file in a scratch
// folder and read back with onnx_import::load_tensor_file, the function both commands call. Any input
// must either load or throw locus::Error; anything else (another exception type, a crash, a
// sanitizer report, a hang, a large allocation) is a bug. A loaded tensor must hold exactly
// numel x dtype size bytes.
//
// The scratch folder also holds a small data file (weights.bin, 64 bytes), so tensors whose data is
// "external" can resolve it. With LOCUS_FUZZ_WRITE_SEEDS=<dir> the binary writes seed tensors (every
// dtype, raw and typed encodings, external data, scalars, empty tensors) into <dir> and exits.
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "graph/error.h"
#include "importers/onnx/onnx_importer.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

namespace fs = std::filesystem;
using onnx::TensorProto;

std::string g_dir;   // scratch folder
std::string g_file;  // the tensor file written for each input

void write_seeds(const std::string& dir) {
  auto save = [&](const std::string& name, const TensorProto& t) { locus_fuzz::write_message(dir + "/" + name + ".pb", t); };
  {
    TensorProto t;
    t.set_name("x");
    t.set_data_type(TensorProto::FLOAT);
    for (int64_t d : {1, 3, 2, 2}) t.add_dims(d);
    t.set_raw_data(std::string(12 * 4, '\x3f'));
    save("raw_f32", t);
  }
  {
    TensorProto t;
    t.set_name("typed");
    t.set_data_type(TensorProto::FLOAT);
    t.add_dims(3);
    for (float v : {1.f, -2.f, 0.5f}) t.add_float_data(v);
    save("typed_f32", t);
  }
  {
    TensorProto t;
    t.set_data_type(TensorProto::INT64);
    t.add_dims(2);
    t.add_int64_data(-1);
    t.add_int64_data(7);
    save("i64", t);
  }
  {
    TensorProto t;
    t.set_data_type(TensorProto::DOUBLE);
    t.add_double_data(3.25);
    save("scalar_f64", t);
  }
  for (auto [name, dt] : {std::pair{"i8", TensorProto::INT8}, std::pair{"u8", TensorProto::UINT8},
                          std::pair{"i32", TensorProto::INT32}, std::pair{"bool", TensorProto::BOOL}}) {
    TensorProto t;
    t.set_data_type(dt);
    t.add_dims(2);
    t.add_int32_data(1);
    t.add_int32_data(0);
    save(name, t);
  }
  {
    TensorProto t;
    t.set_data_type(TensorProto::FLOAT);
    t.add_dims(0);
    t.add_dims(5);
    save("empty", t);
  }
  {
    TensorProto t;
    t.set_name("ext");
    t.set_data_type(TensorProto::FLOAT);
    t.add_dims(4);
    t.set_data_location(TensorProto::EXTERNAL);
    auto* e = t.add_external_data();
    e->set_key("location");
    e->set_value("weights.bin");
    e = t.add_external_data();
    e->set_key("offset");
    e->set_value("16");
    e = t.add_external_data();
    e->set_key("length");
    e->set_value("16");
    save("external", t);
  }
  {
    TensorProto t;  // an unsupported dtype and a segment
    t.set_data_type(TensorProto::FLOAT16);
    t.add_dims(1);
    t.set_raw_data(std::string(2, '\0'));
    save("f16", t);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  locus_fuzz::write_seeds_if_asked(write_seeds);
  char tmpl[] = "/tmp/locus-tensor-fuzz-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  g_dir = tmpl;
  g_file = g_dir + "/input_0.pb";
  locus_fuzz::write_bytes(g_dir + "/weights.bin", std::string(64, '\x11'));
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(g_dir, ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  locus_fuzz::write_bytes(g_file, std::string(reinterpret_cast<const char*>(data), size));
  try {
    std::string name;
    locus::Tensor t = locus::onnx_import::load_tensor_file(g_file, &name);
    if (t.bytes.size() != size_t(t.numel()) * locus::dtype_size(t.dtype)) std::abort();
  } catch (const locus::Error&) {
    // expected for malformed or unsupported tensors
  }
  return 0;
}
