#include "graph/ir.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_map>

namespace locus {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I64: return "int64";
    case DType::I32: return "int32";
    case DType::I8: return "int8";
    case DType::U8: return "uint8";
    case DType::Bool: return "bool";
    default: return "undefined";
  }
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::F64: case DType::I64: return 8;
    case DType::I8: case DType::U8: case DType::Bool: return 1;
    default: return 0;
  }
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ',';
    r += std::to_string(s[i]);
  }
  r += ']';
  return r;
}

int64_t checked_numel(const Shape& s, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : s) {
    LOCUS_CHECK(d >= 0, what, " has a negative dimension in shape ", shape_str(s));
    if (d == 0) return 0;
    LOCUS_CHECK(n <= kMaxTensorElements / d, what, " has shape ", shape_str(s),
                ", more than the limit of ", kMaxTensorElements, " elements");
    n *= d;
  }
  return n;
}

Tensor::Tensor(DType t, Shape s) : dtype(t), shape(std::move(s)) {
  bytes.resize(size_t(checked_numel(shape, "tensor")) * dtype_size(t));
}

Tensor Tensor::scalar_f32(float v) { return from_f32({}, {v}); }

Tensor Tensor::from_f32(Shape s, const std::vector<float>& v) {
  Tensor t(DType::F32, std::move(s));
  LOCUS_CHECK(size_t(t.numel()) == v.size(), "Tensor::from_f32: size mismatch");
  if (!v.empty()) std::memcpy(t.bytes.data(), v.data(), v.size() * 4);
  return t;
}

Tensor Tensor::from_i64(Shape s, const std::vector<int64_t>& v) {
  Tensor t(DType::I64, std::move(s));
  LOCUS_CHECK(size_t(t.numel()) == v.size(), "Tensor::from_i64: size mismatch");
  if (!v.empty()) std::memcpy(t.bytes.data(), v.data(), v.size() * 8);
  return t;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

double Tensor::get(int64_t i) const {
  switch (dtype) {
    case DType::F32: return data<float>()[i];
    case DType::F64: return data<double>()[i];
    case DType::I64: return double(data<int64_t>()[i]);
    case DType::I32: return data<int32_t>()[i];
    case DType::I8: return data<int8_t>()[i];
    case DType::U8: case DType::Bool: return data<uint8_t>()[i];
    default: fail("tensor of undefined dtype");
  }
}

// Integer value of a float element; NaN or values outside int64 are an error, not undefined behaviour.
static int64_t float_to_int(double v) {
  LOCUS_CHECK(v == v && v > -9.2e18 && v < 9.2e18, "float value ", v, " used where an integer is expected");
  return int64_t(v);
}

int64_t Tensor::get_int(int64_t i) const {
  switch (dtype) {
    case DType::I64: return data<int64_t>()[i];
    case DType::I32: return data<int32_t>()[i];
    case DType::I8: return data<int8_t>()[i];
    case DType::U8: case DType::Bool: return data<uint8_t>()[i];
    case DType::F32: return float_to_int(data<float>()[i]);
    case DType::F64: return float_to_int(data<double>()[i]);
    default: fail("tensor of undefined dtype");
  }
}

std::vector<int64_t> Tensor::to_i64() const {
  std::vector<int64_t> r(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) r[size_t(i)] = get_int(i);
  return r;
}

int64_t Node::i(const std::string& a, int64_t def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  if (auto p = std::get_if<int64_t>(&it->second)) return *p;
  fail("node '", name, "' (", op, "): attribute '", a, "' should be an int");
}

float Node::f(const std::string& a, float def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  if (auto p = std::get_if<float>(&it->second)) return *p;
  if (auto p = std::get_if<int64_t>(&it->second)) return float(*p);
  fail("node '", name, "' (", op, "): attribute '", a, "' should be a float");
}

std::string Node::s(const std::string& a, const std::string& def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  if (auto p = std::get_if<std::string>(&it->second)) return *p;
  fail("node '", name, "' (", op, "): attribute '", a, "' should be a string");
}

std::vector<int64_t> Node::ints(const std::string& a, std::vector<int64_t> def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  if (auto p = std::get_if<std::vector<int64_t>>(&it->second)) return *p;
  fail("node '", name, "' (", op, "): attribute '", a, "' should be a list of ints");
}

std::vector<float> Node::floats(const std::string& a, std::vector<float> def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  if (auto p = std::get_if<std::vector<float>>(&it->second)) return *p;
  fail("node '", name, "' (", op, "): attribute '", a, "' should be a list of floats");
}

const Tensor* Node::tensor(const std::string& a) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return nullptr;
  if (auto p = std::get_if<Tensor>(&it->second)) return p;
  fail("node '", name, "' (", op, "): attribute '", a, "' should be a tensor");
}

size_t Node::num_inputs() const {
  size_t n = inputs.size();
  while (n > 0 && inputs[n - 1].empty()) --n;
  return n;
}

const std::string& Node::input(size_t k) const {
  static const std::string empty;
  return k < inputs.size() ? inputs[k] : empty;
}

const Tensor* Graph::constant(const std::string& v) const {
  auto it = constants.find(v);
  return it == constants.end() ? nullptr : &it->second;
}

ValueInfo Graph::info(const std::string& v) const {
  if (auto c = constant(v)) return ValueInfo{c->dtype, c->shape, true};
  auto it = values.find(v);
  LOCUS_CHECK(it != values.end() && it->second.known, "value '", v, "' has no known shape");
  return it->second;
}

struct Graph::UseIndex {
  const Node* data = nullptr;  // nodes.data() and nodes.size() when built: a reallocated or
  size_t size = 0;             // resized vector makes the index stale
  // per value, the nodes writing it and the nodes reading it, ascending, each once
  std::unordered_map<std::string, std::vector<int>> producers, consumers;
};

namespace {
void insert_sorted(std::vector<int>& v, int x) {
  auto pos = std::lower_bound(v.begin(), v.end(), x);
  if (pos == v.end() || *pos != x) v.insert(pos, x);
}
void erase_sorted(std::vector<int>& v, int x) {
  auto pos = std::lower_bound(v.begin(), v.end(), x);
  if (pos != v.end() && *pos == x) v.erase(pos);
}
}  // namespace

Graph::UseIndex* Graph::current_uses() const {
  UseIndex* u = uses_.get();
  return u && u->data == nodes.data() && u->size == nodes.size() ? u : nullptr;
}

const Graph::UseIndex& Graph::uses() const {
  if (UseIndex* u = current_uses()) return *u;
  auto fresh = std::make_shared<UseIndex>();
  fresh->data = nodes.data();
  fresh->size = nodes.size();
  fresh->producers.reserve(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const std::string& o : nodes[i].outputs) {
      if (o.empty()) continue;
      std::vector<int>& p = fresh->producers[o];
      if (p.empty() || p.back() != int(i)) p.push_back(int(i));
    }
    for (const std::string& in : nodes[i].inputs) {
      if (in.empty()) continue;
      std::vector<int>& c = fresh->consumers[in];
      if (c.empty() || c.back() != int(i)) c.push_back(int(i));
    }
  }
  uses_.set(std::move(fresh));
  return *uses_.get();
}

int Graph::producer(const std::string& v) const {
  const UseIndex& u = uses();
  auto it = u.producers.find(v);
  return it == u.producers.end() || it->second.empty() ? -1 : it->second.front();
}

std::vector<int> Graph::consumers(const std::string& v) const {
  const UseIndex& u = uses();
  auto it = u.consumers.find(v);
  return it == u.consumers.end() ? std::vector<int>{} : it->second;
}

void Graph::set_input(int node, size_t k, const std::string& v) {
  Node& n = nodes.at(size_t(node));
  LOCUS_CHECK(k < n.inputs.size(), "internal error: node '", n.name, "' has no input ", k);
  if (n.inputs[k] == v) return;
  UseIndex* u = current_uses();
  const std::string old = n.inputs[k];
  n.inputs[k] = v;
  if (!u) return;  // built from the nodes on next use
  if (!old.empty() && std::find(n.inputs.begin(), n.inputs.end(), old) == n.inputs.end())
    erase_sorted(u->consumers[old], node);
  if (!v.empty()) insert_sorted(u->consumers[v], node);
}

void Graph::set_output(int node, size_t k, const std::string& v) {
  Node& n = nodes.at(size_t(node));
  LOCUS_CHECK(k < n.outputs.size(), "internal error: node '", n.name, "' has no output ", k);
  if (n.outputs[k] == v) return;
  UseIndex* u = current_uses();
  const std::string old = n.outputs[k];
  n.outputs[k] = v;
  if (!u) return;
  if (!old.empty() && std::find(n.outputs.begin(), n.outputs.end(), old) == n.outputs.end())
    erase_sorted(u->producers[old], node);
  if (!v.empty()) insert_sorted(u->producers[v], node);
}

bool Graph::is_graph_output(const std::string& v) const {
  return std::find(outputs.begin(), outputs.end(), v) != outputs.end();
}

std::string Graph::fresh_name(const std::string& base) const {
  auto used = [&](const std::string& n) {
    if (constants.count(n) || values.count(n)) return true;
    if (std::find(inputs.begin(), inputs.end(), n) != inputs.end()) return true;
    return producer(n) >= 0;
  };
  if (!used(base)) return base;
  for (int k = 1;; ++k) {
    std::string n = base + "_" + std::to_string(k);
    if (!used(n)) return n;
  }
}

void Graph::topo_sort() {
  std::map<std::string, int> prod;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (auto& o : nodes[i].outputs) {
      if (o.empty()) continue;
      LOCUS_CHECK(!prod.count(o), "value '", o, "' is produced by two nodes ('",
                  nodes[size_t(prod[o])].name, "' and '", nodes[i].name, "')");
      LOCUS_CHECK(!constants.count(o), "value '", o, "' is both a constant and the output of node '",
                  nodes[i].name, "'");
      prod[o] = int(i);
    }
  std::set<std::string> available(inputs.begin(), inputs.end());
  std::vector<int> state(nodes.size(), 0);  // 0 new, 1 in progress, 2 done
  std::vector<Node> sorted;
  sorted.reserve(nodes.size());
  // iterative DFS so a deep graph cannot overflow the stack
  for (size_t root = 0; root < nodes.size(); ++root) {
    if (state[root]) continue;
    std::vector<std::pair<int, size_t>> stack{{int(root), 0}};
    state[root] = 1;
    while (!stack.empty()) {
      auto& [n, k] = stack.back();
      const Node& node = nodes[size_t(n)];
      if (k < node.inputs.size()) {
        const std::string& in = node.inputs[k++];
        if (in.empty() || constants.count(in) || available.count(in)) continue;
        auto it = prod.find(in);
        LOCUS_CHECK(it != prod.end(), "node '", node.name, "' (", node.op, ") reads value '", in,
                    "' which no node produces and which is neither an input nor a constant");
        int p = it->second;
        LOCUS_CHECK(state[size_t(p)] != 1, "the graph has a cycle through node '", nodes[size_t(p)].name, "'");
        if (state[size_t(p)] == 0) {
          state[size_t(p)] = 1;
          stack.push_back({p, 0});
        }
      } else {
        state[size_t(n)] = 2;
        sorted.push_back(node);
        stack.pop_back();
      }
    }
  }
  nodes = std::move(sorted);
  invalidate_uses();
}

void Graph::erase_nodes(const std::vector<bool>& keep) {
  std::vector<Node> kept;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (keep[i]) kept.push_back(std::move(nodes[i]));
  nodes = std::move(kept);
  invalidate_uses();
}

}  // namespace locus
