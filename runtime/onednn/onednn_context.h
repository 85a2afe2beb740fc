// What the oneDNN backend's op builders share while a session is compiled: the values as the backend
// holds them (a planned buffer or a constant's memory, seen through a oneDNN memory descriptor), the
// engine, and the calls that add a primitive step, reorder a value into the layout a primitive wants
// and make constant memory. A builder turns one node into primitives whose arguments are bound after
// the arena is planned. Builders live one family per file (runtime/onednn/ops_*.cpp) and are found
// through the op registry (runtime/onednn/op_registry.h).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace locus::onednn {

namespace dn = dnnl;
using md = dn::memory::desc;
using dims = dn::memory::dims;
using tag = dn::memory::format_tag;
using dt = dn::memory::data_type;
using alg = dn::algorithm;
constexpr auto kInference = dn::prop_kind::forward_inference;

// Every primitive takes its scratchpad from us: it is planned in the arena like the activations.
inline dn::primitive_attr scratch_attr() {
  dn::primitive_attr a;
  a.set_scratchpad_mode(dn::scratchpad_mode::user);
  return a;
}

inline dims dims_of(const Shape& s) {
  if (s.empty()) return {1};  // oneDNN has no rank-0 tensors: scalars are [1]
  return dims(s.begin(), s.end());
}

// Row-major (logical order) layout of `s`.
inline md plain_md(const Shape& s, dt type = dt::f32) {
  dims d = dims_of(s), st(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) st[i - 1] = st[i] * d[i];
  return md(d, type, st);
}

// s with leading 1s up to `rank`.
inline Shape left_pad(const Shape& s, size_t rank) {
  Shape r(rank - s.size(), 1);
  r.insert(r.end(), s.begin(), s.end());
  return r;
}

// The right padding to give oneDNN: the node's own if oneDNN's (floor) output-size formula then gives
// `out`, otherwise the padding that does (ceil_mode pooling).
inline int64_t pad_right(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t dil, int64_t pad_l, int64_t pad_r) {
  int64_t ext = (k - 1) * dil + 1;
  if ((in + pad_l + pad_r - ext) / stride + 1 == out) return pad_r;
  return (out - 1) * stride + ext - in - pad_l;
}

// A value as this backend holds it: a buffer (planned in the arena, or a graph input whose storage
// run() supplies) viewed through a memory descriptor, or a constant's own memory.
struct Val {
  int buf = -1;      // index into the backend's buffers, or -1: `fixed` holds the data
  md desc;           // layout (may be blocked, with padding)
  dn::memory fixed;  // constants
  Shape shape;       // logical shape
};

struct ArgRef {
  int arg;
  Val v;
};

class OnednnContext {
 public:
  virtual ~OnednnContext() = default;
  virtual const Graph& graph() const = 0;
  virtual const dn::engine& engine() const = 0;
  // A value computed so far, or a constant (plain layout).
  virtual const Val& val(const std::string& name) = 0;
  // Records what computes value `name`.
  virtual void set_val(const std::string& name, Val v) = 0;
  // The logical shape of a value of the graph.
  virtual const Shape& shape(const std::string& name) const = 0;
  const Shape& out_shape(const Node& n) const { return shape(n.outputs[0]); }
  // A new buffer (planned in the arena) in layout d.
  virtual Val new_value(const md& d, const Shape& s) = 0;
  // One primitive step; its scratchpad, if any, is added as a buffer that lives for the step.
  // `op` names the step in profiles ("Conv", "Reorder", "Conv+DwConv").
  virtual void add_step(const std::string& node, const std::string& op, dn::primitive p, std::vector<ArgRef> args) = 0;
  // v in layout `want`: v itself, or a reordered copy (shared by every consumer wanting that layout).
  virtual Val to_desc(const Val& v, const md& want, const std::string& node) = 0;
  // v's elements in logical row-major order seen as shape s (same element count).
  virtual Val view(const Val& v, const Shape& s, const std::string& node) = 0;
  // A constant's data (row-major, layout `user`) in layout `want`, optionally scaled.
  virtual dn::memory constant_memory(const Tensor& t, const md& user, const md& want, float scale = 1.f) = 0;
  // A more specific name of the implementation chosen for the node being built (e.g. Gemm's matmul
  // path); defaults to the registry entry's name.
  virtual void set_implementation(std::string name) = 0;
};

}  // namespace locus::onednn
