// The graph IR: values with static shapes and dtypes, nodes with typed attributes.
//
// Semantics follow ONNX (logical NCHW shapes, ONNX operator names and attribute names), so an
// imported model reads the same here as in Netron. Layout (NHWC inside the native backend) is a
// backend decision and never appears in the IR.
//
// Values are referred to by name. A name is either a graph input, a constant (initializer or folded
// value, held in Graph::constants) or the output of exactly one node. The empty name "" stands for an
// omitted optional input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "graph/error.h"

namespace locus {

enum class DType : uint8_t { Undefined, F32, F64, I64, I32, I8, U8, Bool };

const char* dtype_name(DType t);
size_t dtype_size(DType t);  // bytes per element, 0 for Undefined

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[1,3,224,224]"

// Upper bound on the elements of any one tensor the runtime will create (2^31: 8 GiB of fp32).
// Anything a model file claims beyond this is refused before allocation.
inline constexpr int64_t kMaxTensorElements = int64_t(1) << 31;

// Number of elements; throws Error if a dim is negative or the product exceeds kMaxTensorElements.
int64_t checked_numel(const Shape& s, const std::string& what);

// A dense row-major tensor in logical (ONNX) order: constants, session inputs and outputs.
struct Tensor {
  DType dtype = DType::Undefined;
  Shape shape;
  std::vector<std::byte> bytes;

  Tensor() = default;
  Tensor(DType t, Shape s);  // zero-filled; checks the size
  static Tensor scalar_f32(float v);
  static Tensor from_f32(Shape s, const std::vector<float>& v);
  static Tensor from_i64(Shape s, const std::vector<int64_t>& v);

  int64_t numel() const;
  template <class T> T* data() { return reinterpret_cast<T*>(bytes.data()); }
  template <class T> const T* data() const { return reinterpret_cast<const T*>(bytes.data()); }
  // Element i converted to double / int64 (any numeric dtype).
  double get(int64_t i) const;
  int64_t get_int(int64_t i) const;
  std::vector<int64_t> to_i64() const;  // all elements as int64 (for shape-like inputs)
};

// Attribute value. Ints are int64, floats are float, as in ONNX.
using Attr = std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>,
                          std::vector<std::string>, Tensor>;

struct Node {
  std::string op;      // ONNX op_type, or a locus op (e.g. "FusedConv" later)
  std::string name;    // node name (generated if the model had none)
  std::string domain;  // "" for the default ONNX domain
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::map<std::string, Attr> attrs;

  bool has(const std::string& a) const { return attrs.count(a) != 0; }
  int64_t i(const std::string& a, int64_t def) const;
  float f(const std::string& a, float def) const;
  std::string s(const std::string& a, const std::string& def) const;
  std::vector<int64_t> ints(const std::string& a, std::vector<int64_t> def = {}) const;
  std::vector<float> floats(const std::string& a, std::vector<float> def = {}) const;
  const Tensor* tensor(const std::string& a) const;
  // Number of inputs actually present (trailing "" omitted).
  size_t num_inputs() const;
  const std::string& input(size_t k) const;  // "" if absent
};

struct ValueInfo {
  DType dtype = DType::Undefined;
  Shape shape;
  bool known = false;  // dtype and shape known
};

struct Graph {
  std::string name;
  int64_t opset = 0;  // default-domain opset the model was written for
  std::vector<Node> nodes;          // kept in topological order by passes
  std::vector<std::string> inputs;  // runtime inputs (not constants)
  std::vector<std::string> outputs;
  std::map<std::string, Tensor> constants;
  std::map<std::string, ValueInfo> values;  // every non-constant value with inferred info
  // Graph inputs whose shape in the model file has symbolic (or missing) dims: per axis the dim's
  // name ("?" if it has none), "" for a fixed dim. The importer gives axis 0 the batch size and the
  // other symbolic axes a placeholder of 1 that a Session refuses unless it is told the real value
  // (SessionOptions::input_shapes).
  std::map<std::string, std::vector<std::string>> symbolic_dims;

  bool is_constant(const std::string& v) const { return constants.count(v) != 0; }
  const Tensor* constant(const std::string& v) const;
  // dtype/shape of a value whether constant or not; throws if unknown.
  ValueInfo info(const std::string& v) const;
  // Index of the node producing v, or -1 (the first, if a malformed graph has two).
  int producer(const std::string& v) const;
  // Indices of the nodes reading v, ascending, each once.
  std::vector<int> consumers(const std::string& v) const;
  // producer() and consumers() answer from an index of the nodes' inputs and outputs, built in
  // O(nodes) on first use and rebuilt when `nodes` is reallocated or resized, or by erase_nodes and
  // topo_sort. A pass that renames a node's input or output in place keeps it right with set_input /
  // set_output, or calls invalidate_uses() after editing `nodes` by hand.
  void set_input(int node, size_t k, const std::string& v);
  void set_output(int node, size_t k, const std::string& v);
  void invalidate_uses() const { uses_.reset(); }
  bool is_graph_output(const std::string& v) const;
  // A name not yet used by any value, derived from base.
  std::string fresh_name(const std::string& base) const;
  // Sort nodes topologically; throws Error on a cycle or a value with no producer.
  void topo_sort();
  // Remove nodes for which keep[i] is false.
  void erase_nodes(const std::vector<bool>& keep);

 private:
  struct UseIndex;
  // The producer/consumer index: a cache, so a copy of the graph starts without one.
  class UseCache {
   public:
    UseCache() = default;
    UseCache(const UseCache&) {}
    UseCache& operator=(const UseCache&) {
      p_.reset();
      return *this;
    }
    UseCache(UseCache&&) noexcept = default;
    UseCache& operator=(UseCache&&) noexcept = default;
    UseIndex* get() const { return p_.get(); }
    void set(std::shared_ptr<UseIndex> p) { p_ = std::move(p); }
    void reset() { p_.reset(); }

   private:
    std::shared_ptr<UseIndex> p_;  // shared_ptr: deletable where UseIndex is incomplete
  };
  mutable UseCache uses_;
  UseIndex* current_uses() const;  // the index if it is still valid for `nodes`, else nullptr
  const UseIndex& uses() const;    // the index, rebuilt if stale
};

}  // namespace locus
