// The op registry every backend and the IR evaluator keep: one entry per op (keyed by its
// domain-qualified op key), each naming its implementation and holding what builds or runs it.
// Each op family registers its entries from its own file; a node whose key has no entry is declined
// with a reason naming the op and its domain (why_not).
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "graph/error.h"
#include "graph/ir.h"

namespace locus {

// "Conv" for the default domain ("" or "ai.onnx"), "<domain>.<op>" otherwise
// ("locus.FusedInvertedResidual", "com.example.FusedInvertedResidual").
inline std::string op_key(const std::string& domain, const std::string& op) {
  if (domain.empty() || domain == "ai.onnx") return op;
  return domain + "." + op;
}
inline std::string op_key(const Node& n) { return op_key(n.domain, n.op); }

// "Relu", or "Relu of domain 'com.example'" for an op outside the default domain.
inline std::string op_with_domain(const Node& n) {
  if (n.domain.empty() || n.domain == "ai.onnx") return n.op;
  return cat(n.op, " of domain '", n.domain, "'");
}

template <class Fn>
struct OpEntry {
  std::string op;              // op key: "Conv", "locus.FusedInvertedResidual"
  std::string implementation;  // what runs it, e.g. "dnnl convolution_forward"
  Fn fn;                       // the builder or kernel
  bool byte_values = false;    // also takes uint8 / int8 runtime values, besides float32 ones
};

template <class Fn>
class OpRegistry {
 public:
  using Entry = OpEntry<Fn>;
  // `what` names the registry in messages ("oneDNN backend", "reference evaluator").
  explicit OpRegistry(std::string what) : what_(std::move(what)) {}
  void add(OpEntry<Fn> e) {
    const std::string key = e.op;
    LOCUS_CHECK(!ops_.count(key), "internal error: ", what_, " op '", key, "' registered twice");
    ops_.emplace(key, std::move(e));
  }
  // The entry for a node (by domain and op type), or nullptr.
  const OpEntry<Fn>* find(const Node& n) const { return find(op_key(n)); }
  const OpEntry<Fn>* find(const std::string& key) const {
    auto it = ops_.find(key);
    return it == ops_.end() ? nullptr : &it->second;
  }
  bool handles(const std::string& key) const { return ops_.count(key) != 0; }
  // Why the registry declines the node ("" if it has an entry for it), e.g. "reference evaluator:
  // no implementation of FusedInvertedResidual of domain 'com.example' (node 'b1')".
  std::string why_not(const Node& n) const {
    if (find(n)) return "";
    return cat(what_, ": no implementation of ", op_with_domain(n), " (node '", n.name, "')");
  }
  // Every op key, sorted ("Add", ..., "locus.FusedInvertedResidual").
  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (auto& [key, e] : ops_) k.push_back(key);
    return k;
  }
  // (op key, implementation) of every entry, sorted by key.
  std::vector<std::pair<std::string, std::string>> entries() const {
    std::vector<std::pair<std::string, std::string>> r;
    for (auto& [key, e] : ops_) r.push_back({key, e.implementation});
    return r;
  }
  const std::string& what() const { return what_; }

 private:
  std::string what_;
  std::map<std::string, OpEntry<Fn>> ops_;
};

// A registry named `what`, filled by each op family's register function in turn: what every backend's
// registry function keeps in a function-local static.
template <class Fn>
OpRegistry<Fn> make_op_registry(std::string what, std::initializer_list<void (*)(OpRegistry<Fn>&)> families) {
  OpRegistry<Fn> r(std::move(what));
  for (auto* register_family : families) register_family(r);
  return r;
}

}  // namespace locus
