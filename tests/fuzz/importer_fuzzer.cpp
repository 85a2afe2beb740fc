// libFuzzer entry point for the ONNX importer: any input must either import or throw locus::Error.
// Any other exception, a crash, a sanitizer report, a hang or a large allocation is a bug.
//
// With LOCUS_FUZZ_WRITE_SEEDS=<dir> set, the binary instead writes a few small seed models (covering
// every canonicalisation path, every tensor encoding and the error paths) into <dir> and exits;
// scripts/run-fuzzer.sh uses this to build the starting corpus.
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "importers/onnx/onnx_importer.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

using locus_fuzz::attr;
using locus_fuzz::ModelBuilder;
using onnx::AttributeProto;
using onnx::TensorProto;

void write_seed(const std::string& dir, const std::string& name, const onnx::ModelProto& m) {
  locus_fuzz::write_message(dir + "/" + name + ".onnx", m);
}

void write_seeds(const std::string& dir) {
  {  // small conv net with every initializer encoding
    ModelBuilder b(12);
    b.input("x", {-1, 2, 4, 4});
    auto* w = b.init("w", {2, 2, 1, 1});
    for (int i = 0; i < 4; ++i) w->add_float_data(0.5f);
    b.init("bias", {2})->set_raw_data(std::string(8, '\0'));
    auto* c = b.node("Conv", {"x", "w", "bias"}, {"c"});
    attr(c, "kernel_shape", AttributeProto::INTS)->add_ints(1);
    attr(c, "auto_pad", AttributeProto::STRING)->set_s("SAME_UPPER");
    auto* lo = b.init("lo", {});
    lo->add_float_data(0.f);
    b.node("Clip", {"c", "lo", ""}, {"r"});
    auto* mp = b.node("MaxPool", {"r"}, {"p", "idx"});
    attr(mp, "kernel_shape", AttributeProto::INTS)->add_ints(2);
    b.node("GlobalAveragePool", {"p"}, {"gap"});
    b.init("shape", {2}, TensorProto::INT64)->add_int64_data(1);
    b.g().mutable_initializer(b.g().initializer_size() - 1)->add_int64_data(-1);
    b.node("Reshape", {"gap", "shape"}, {"flat"});
    auto* sm = b.node("Softmax", {"flat"}, {"y"});
    attr(sm, "axis", AttributeProto::INT)->set_i(-1);
    b.output("y");
    write_seed(dir, "convnet", b.m);
  }
  {  // opset 7 forms: Clip attrs, Unsqueeze/Squeeze axes, Dropout, BatchNorm spatial, IR 3 inputs
    ModelBuilder b(7, 3);
    b.input("x", {1, 3});
    b.input("s", {3});
    for (const char* n : {"s", "b", "mean", "var"}) {
      auto* t = b.init(n, {3});
      for (int i = 0; i < 3; ++i) t->add_float_data(1.f);
    }
    auto* clip = b.node("Clip", {"x"}, {"c"});
    attr(clip, "min", AttributeProto::FLOAT)->set_f(0.f);
    attr(clip, "max", AttributeProto::FLOAT)->set_f(6.f);
    auto* u = b.node("Unsqueeze", {"c"}, {"u"});
    attr(u, "axes", AttributeProto::INTS)->add_ints(2);
    auto* bn = b.node("BatchNormalization", {"u", "s", "b", "mean", "var"}, {"bn", "m_out"});
    attr(bn, "spatial", AttributeProto::INT)->set_i(1);
    attr(bn, "is_test", AttributeProto::INT)->set_i(1);
    auto* sq = b.node("Squeeze", {"bn"}, {"sq"});
    attr(sq, "axes", AttributeProto::INTS)->add_ints(2);
    auto* d = b.node("Dropout", {"sq"}, {"d", "mask"});
    attr(d, "ratio", AttributeProto::FLOAT)->set_f(0.5f);
    b.node("Softmax", {"d"}, {"y"});
    b.output("y");
    write_seed(dir, "opset7_forms", b.m);
  }
  {  // Constant nodes of every kind, tensor dtypes, other domains, unsupported attributes
    ModelBuilder b(13);
    auto* ms = b.m.add_opset_import();
    ms->set_domain("com.microsoft");
    ms->set_version(1);
    b.input("x", {2}, TensorProto::FLOAT);
    auto* c1 = b.node("Constant", {}, {"c1"});
    auto* t = attr(c1, "value", AttributeProto::TENSOR)->mutable_t();
    t->set_data_type(TensorProto::INT8);
    t->add_dims(2);
    t->add_int32_data(-1);
    t->add_int32_data(1);
    attr(b.node("Constant", {}, {"c2"}), "value_ints", AttributeProto::INTS)->add_ints(0);
    attr(b.node("Constant", {}, {"c3"}), "value_float", AttributeProto::FLOAT)->set_f(1.f);
    attr(b.node("Constant", {}, {"c4"}), "value_floats", AttributeProto::FLOATS)->add_floats(1.f);
    attr(b.node("Constant", {}, {"c5"}), "value_int", AttributeProto::INT)->set_i(3);
    b.init("d", {1}, TensorProto::DOUBLE)->add_double_data(2.0);
    b.init("u8", {1}, TensorProto::UINT8)->add_int32_data(200);
    b.init("bo", {1}, TensorProto::BOOL)->set_raw_data(std::string(1, '\1'));
    b.init("i32", {1}, TensorProto::INT32)->add_int32_data(-5);
    auto* train = b.init("train", {}, TensorProto::BOOL);
    train->add_int32_data(0);
    b.node("Unsqueeze", {"x", "c2"}, {"u"});
    b.node("Dropout", {"u", "", "train"}, {"dr"});
    auto* q = b.node("QuickGelu", {"dr"}, {"q"});
    q->set_domain("com.microsoft");
    auto* ifn = b.node("If", {"bo"}, {"y"});
    attr(ifn, "then_branch", AttributeProto::GRAPH)->mutable_g()->set_name("then");
    b.output("y");
    b.output("c1");
    write_seed(dir, "constants_domains", b.m);
  }
  {  // external data reference (refused when loading from bytes)
    ModelBuilder b(13);
    b.input("x", {1});
    auto* t = b.init("w", {1});
    t->set_data_location(TensorProto::EXTERNAL);
    auto* e = t->add_external_data();
    e->set_key("location");
    e->set_value("weights.bin");
    e = t->add_external_data();
    e->set_key("offset");
    e->set_value("0");
    b.node("Add", {"x", "w"}, {"y"});
    b.output("y");
    write_seed(dir, "external", b.m);
  }
  {  // opset 17: training-mode BatchNorm, Shape, Gather
    ModelBuilder b(17);
    b.input("x", {1, 1, 2, 2});
    for (const char* n : {"s", "b", "mean", "var"}) b.init(n, {1})->add_float_data(1.f);
    auto* bn = b.node("BatchNormalization", {"x", "s", "b", "mean", "var"}, {"bn"});
    attr(bn, "training_mode", AttributeProto::INT)->set_i(1);
    b.node("Shape", {"bn"}, {"sh"});
    b.node("Gather", {"sh", "i"}, {"y"});
    b.init("i", {}, TensorProto::INT64)->set_raw_data(std::string(8, '\0'));
    b.output("y");
    write_seed(dir, "opset17", b.m);
  }
}

}  // namespace

LOCUS_FUZZ_INITIALIZE_WITH_SEEDS(write_seeds)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    locus::Graph g = locus::onnx_import::load_model_from_bytes(data, size);
  } catch (const locus::Error&) {
    // expected for malformed or unsupported models
  }
  return 0;
}
