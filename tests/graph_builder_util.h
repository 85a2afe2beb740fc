// Building small graphs by hand in tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "tests/test_support.h"

namespace locus::test {

struct GraphBuilder {
  Graph g;
  int counter = 0;

  GraphBuilder() { g.opset = 13; }
  std::string input(const std::string& name, Shape s) {
    g.inputs.push_back(name);
    g.values[name] = ValueInfo{DType::F32, std::move(s), true};
    return name;
  }
  std::string constant(const std::string& name, Tensor t) {
    g.constants[name] = std::move(t);
    return name;
  }
  std::string random_constant(const std::string& name, Shape s, uint32_t seed, float lo = -1.f, float hi = 1.f) {
    int64_t n = 1;
    for (auto d : s) n *= d;
    return constant(name, Tensor::from_f32(s, random_floats(size_t(n), seed, lo, hi)));
  }
  std::string node(const std::string& op, std::vector<std::string> ins, std::map<std::string, Attr> attrs = {},
                   const std::string& out_name = "") {
    Node n;
    n.op = op;
    n.name = op + "_" + std::to_string(counter++);
    n.inputs = std::move(ins);
    n.outputs = {out_name.empty() ? n.name + "_out" : out_name};
    n.attrs = std::move(attrs);
    g.nodes.push_back(n);
    return n.outputs[0];
  }
  Graph finish(std::vector<std::string> outputs) {
    g.outputs = std::move(outputs);
    g.topo_sort();
    return g;
  }
};

// One node as text without its attributes: "domain:op 'name' (in,in,) -> (out,)".
inline std::string node_signature(const Node& n) {
  std::string s = n.domain + ":" + n.op + " '" + n.name + "' (";
  for (auto& i : n.inputs) s += i + ",";
  s += ") -> (";
  for (auto& o : n.outputs) s += o + ",";
  return s + ")";
}

inline Tensor random_tensor(Shape s, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return Tensor::from_f32(s, random_floats(size_t(n), seed, lo, hi));
}

inline int64_t argmax(const Tensor& t) {
  const float* p = t.data<float>();
  return std::max_element(p, p + t.numel()) - p;
}

// numpy.allclose on float32 tensors; on failure `why` names the first offending element.
inline bool allclose(const Tensor& got, const Tensor& want, double rtol, double atol, std::string& why) {
  if (got.shape != want.shape) {
    why = "shape " + shape_str(got.shape) + " vs " + shape_str(want.shape);
    return false;
  }
  for (int64_t i = 0; i < got.numel(); ++i) {
    double g = got.data<float>()[i], w = want.data<float>()[i];
    if (!(std::fabs(g - w) <= atol + rtol * std::fabs(w))) {
      why = cat("index ", i, ": got ", g, ", want ", w);
      return false;
    }
  }
  return true;
}

}  // namespace locus::test
