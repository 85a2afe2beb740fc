// Building small ONNX models in tests (the protobuf, not the IR: what a user's file holds).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

namespace locus::test {

// A model (IR version 7, opset 13 of the default domain) whose graph `graph_name` has one float32
// input `input` of shape `dims`; the caller adds nodes, initializers and outputs.
inline onnx::ModelProto model_with_float_input(const std::string& graph_name, const std::string& input,
                                               const std::vector<int64_t>& dims) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name(graph_name);
  auto* in = g->add_input();
  in->set_name(input);
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
  return m;
}

}  // namespace locus::test
