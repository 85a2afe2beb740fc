// Helpers shared by the libFuzzer targets in tests/fuzz/: a small ONNX model builder for the seeds
// the binaries write under LOCUS_FUZZ_WRITE_SEEDS=<dir>, and file writing.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace locus_fuzz {

using onnx::AttributeProto;
using onnx::TensorProto;

struct ModelBuilder {
  onnx::ModelProto m;

  explicit ModelBuilder(int64_t opset, int64_t ir = 7) {
    m.set_ir_version(ir);
    auto* o = m.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    m.mutable_graph()->set_name("seed");
  }
  onnx::GraphProto& g() { return *m.mutable_graph(); }

  void input(const std::string& name, std::vector<int64_t> dims, int elem = TensorProto::FLOAT) {
    auto* tt = g().add_input();
    tt->set_name(name);
    auto* t = tt->mutable_type()->mutable_tensor_type();
    t->set_elem_type(elem);
    for (auto d : dims) {
      if (d < 0)
        t->mutable_shape()->add_dim()->set_dim_param("N");
      else
        t->mutable_shape()->add_dim()->set_dim_value(d);
    }
  }
  void output(const std::string& name) { g().add_output()->set_name(name); }
  onnx::NodeProto* node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
    auto* n = g().add_node();
    n->set_op_type(op);
    for (auto& s : in) n->add_input(s);
    for (auto& s : out) n->add_output(s);
    return n;
  }
  TensorProto* init(const std::string& name, std::vector<int64_t> dims, int dt = TensorProto::FLOAT) {
    auto* t = g().add_initializer();
    t->set_name(name);
    t->set_data_type(dt);
    for (auto d : dims) t->add_dims(d);
    return t;
  }
  // A float initializer filled with `v` (small deterministic values when v < 0).
  TensorProto* init_filled(const std::string& name, std::vector<int64_t> dims, float v = -1) {
    auto* t = init(name, dims);
    int64_t n = 1;
    for (auto d : dims) n *= d;
    for (int64_t i = 0; i < n; ++i) t->add_float_data(v >= 0 ? v : float((i * 7) % 5 - 2) * 0.25f);
    return t;
  }
};

inline AttributeProto* attr(onnx::NodeProto* n, const std::string& name, AttributeProto::AttributeType type) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(type);
  return a;
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

inline void write_message(const std::string& path, const google::protobuf::MessageLite& m) {
  std::string bytes;
  m.SerializeToString(&bytes);
  write_bytes(path, bytes);
}

}  // namespace locus_fuzz
