// The reference backend: runs the graph node by node with the reference kernels (naive, logical
// NCHW, double accumulation). It is the yardstick the native backend is tested against; slow.
// It keeps every intermediate value, so its activation memory is the unshared total. It runs exactly
// the ops of the evaluator's registry (eval::eval_ops(), graph/eval/eval_ops.h) and reports, per
// node, the reference kernel that runs it.
#include "graph/eval/eval_ops.h"
#include "runtime/backend.h"

namespace locus {
namespace {

class ReferenceExecutable : public Executable {
 public:
  explicit ReferenceExecutable(const Graph& g) : g_(g) {
    std::string why;
    for (const Node& n : g_.nodes) {
      if (const eval::EvalRegistry::Entry* e = eval::eval_ops().find(n))
        implementations_.push_back({n.name, op_key(n), e->implementation});
      else
        why += (why.empty() ? "" : "; ") + eval::eval_ops().why_not(n);
    }
    if (!why.empty()) throw Unsupported(cat("reference backend cannot run: ", why));
    for (auto& [name, vi] : g_.values) bytes_ += checked_numel(vi.shape, name) * int64_t(dtype_size(vi.dtype));
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    std::map<std::string, Tensor> env;
    for (size_t i = 0; i < g_.inputs.size(); ++i) env[g_.inputs[i]] = *inputs[i];
    auto lookup = [&](const std::string& v) -> const Tensor* {
      if (v.empty()) return nullptr;
      if (auto c = g_.constant(v)) return c;
      auto it = env.find(v);
      LOCUS_CHECK(it != env.end(), "reference backend: value '", v, "' not computed");
      return &it->second;
    };
    for (auto& n : g_.nodes) {
      std::vector<const Tensor*> ins;
      for (auto& in : n.inputs) ins.push_back(lookup(in));
      auto outs = eval::evaluate(n, ins);
      for (size_t k = 0; k < n.outputs.size() && k < outs.size(); ++k)
        if (!n.outputs[k].empty()) env[n.outputs[k]] = std::move(outs[k]);
    }
    outputs.clear();
    for (auto& o : g_.outputs) outputs.push_back(*lookup(o));
  }
  int64_t activation_bytes() const override { return bytes_; }
  std::vector<NodeImplementation> implementations() const override { return implementations_; }

 private:
  Graph g_;  // its own copy: the reference evaluates straight from the graph
  int64_t bytes_ = 0;
  std::vector<NodeImplementation> implementations_;
};

class ReferenceBackend : public Backend {
 public:
  std::string name() const override { return "reference"; }
  // runs the fused blocks' composition (fp32 and int8)
  BackendCapabilities capabilities() const override { return {true, false, true}; }
  std::unique_ptr<Executable> compile(const Graph& g, const BackendOptions&) override {
    return std::make_unique<ReferenceExecutable>(g);
  }
  std::vector<std::pair<std::string, std::string>> op_implementations() const override {
    return eval::eval_ops().entries();
  }
};

}  // namespace

std::unique_ptr<Backend> make_reference_backend() { return std::make_unique<ReferenceBackend>(); }

}  // namespace locus
