#include "runtime/session.h"

#include <omp.h>

#include <algorithm>
#include <unordered_map>

#include "graph/ops.h"
#include "importers/onnx/onnx_importer.h"
#include "runtime/omp_threads.h"

namespace locus {
namespace {

// What any backend holds at least, computed from shapes alone before anything is allocated: the
// peak of the activations alive at the same time (an arena can share memory only between values
// whose lifetimes do not overlap), the weights twice (the graph's constants and a backend's packed
// copy) and the caller's inputs and outputs. All sums saturate.
struct MemoryEstimate {
  int64_t activations = 0, weights = 0, io = 0;
  int64_t total() const { return add_bytes(add_bytes(activations, mul_bytes(weights, 2)), io); }
};

// Bytes of one value (at least 4 per element: the CPU backends hold integers as floats), capped at
// 2^40 so that sums of a few million of them cannot overflow.
int64_t value_bytes(const ValueInfo& vi) {
  int64_t n = 1;
  for (int64_t d : vi.shape) n = mul_bytes(n, std::max<int64_t>(d, 0));
  return std::min(mul_bytes(n, int64_t(std::max<size_t>(dtype_size(vi.dtype), 4))), int64_t(1) << 40);
}

MemoryEstimate estimate_memory(const Graph& g) {
  MemoryEstimate e;
  const size_t steps = g.nodes.size() + 1;
  std::unordered_map<std::string, std::pair<size_t, size_t>> life;  // first, last step
  for (const std::string& in : g.inputs) life[in] = {0, 0};
  for (size_t s = 0; s < g.nodes.size(); ++s) {
    for (const std::string& in : g.nodes[s].inputs)
      if (auto it = life.find(in); it != life.end()) it->second.second = s;
    for (const std::string& out : g.nodes[s].outputs)
      if (!out.empty() && g.values.count(out)) life[out] = {s, s};
  }
  for (const std::string& out : g.outputs)
    if (auto it = life.find(out); it != life.end()) it->second.second = steps - 1;
  std::vector<int64_t> delta(steps + 1, 0);
  for (auto& [name, fl] : life) {
    auto it = g.values.find(name);
    if (it == g.values.end()) continue;
    const int64_t b = value_bytes(it->second);
    delta[fl.first] += b;
    delta[fl.second + 1] -= b;
  }
  int64_t live = 0;
  for (size_t s = 0; s < steps; ++s) {
    live += delta[s];
    e.activations = std::max(e.activations, live);
  }
  for (auto& [name, t] : g.constants) e.weights = add_bytes(e.weights, int64_t(t.bytes.size()));
  for (const std::string& in : g.inputs)
    if (auto it = g.values.find(in); it != g.values.end()) e.io = add_bytes(e.io, value_bytes(it->second));
  for (const std::string& out : g.outputs)
    if (auto it = g.values.find(out); it != g.values.end()) e.io = add_bytes(e.io, value_bytes(it->second));
  return e;
}

// Applies SessionOptions::input_shapes and refuses symbolic dims (other than the batch axis) that
// nothing gave a value.
void resolve_input_shapes(Graph& g, const SessionOptions& o) {
  for (auto& [name, shape] : o.input_shapes) {
    LOCUS_CHECK(std::find(g.inputs.begin(), g.inputs.end(), name) != g.inputs.end(),
                "a shape is given for input '", name, "', but the model has no such input");
    ValueInfo& vi = g.values[name];
    LOCUS_CHECK(shape.size() == vi.shape.size(), "input '", name, "' has rank ", vi.shape.size(),
                " in the model; the shape given for it, ", shape_str(shape), ", has rank ", shape.size());
    auto sym = g.symbolic_dims.find(name);
    for (size_t k = 0; k < shape.size(); ++k) {
      const bool symbolic = sym != g.symbolic_dims.end() && !sym->second[k].empty();
      LOCUS_CHECK(symbolic || shape[k] == vi.shape[k], "input '", name, "' has the fixed shape ",
                  shape_str(vi.shape), " in the model; the shape given for it is ", shape_str(shape));
      LOCUS_CHECK(shape[k] >= 1, "input '", name, "': the shape given for it, ", shape_str(shape),
                  ", has a dimension below 1");
    }
    try {
      checked_numel(shape, name);
    } catch (const Error&) {
      fail("input '", name, "': the shape given for it, ", shape_str(shape), ", has more than ",
           kMaxTensorElements, " elements");
    }
    vi.shape = shape;
    if (sym != g.symbolic_dims.end()) g.symbolic_dims.erase(sym);
  }
  for (auto& [name, dims] : g.symbolic_dims) {
    if (std::find(g.inputs.begin(), g.inputs.end(), name) == g.inputs.end()) continue;  // bound constant
    std::string unresolved;
    for (size_t k = 1; k < dims.size(); ++k)
      if (!dims[k].empty()) unresolved += cat(unresolved.empty() ? "" : ", ", "'", dims[k], "' at axis ", k);
    LOCUS_CHECK(unresolved.empty(), "input '", name, "' has symbolic dimensions (", unresolved,
                ") that nothing gives a value: feed it a tensor file (locus run --input ", name,
                "=FILE.pb), or set SessionOptions::input_shapes");
  }
}

}  // namespace

Session Session::from_file(const std::string& model_path, const SessionOptions& o) {
  onnx_import::ImportOptions io;
  io.default_dim = o.batch;
  return from_graph(onnx_import::load_model(model_path, io), o);
}

Session Session::from_graph(Graph g, const SessionOptions& o) {
  LOCUS_CHECK(o.batch >= 1, "batch size must be at least 1 (got ", o.batch, ")");
  for (auto& [name, t] : o.bind_constants) {
    auto it = std::find(g.inputs.begin(), g.inputs.end(), name);
    LOCUS_CHECK(it != g.inputs.end(), "cannot bind '", name, "': the model has no such input");
    g.inputs.erase(it);
    g.values.erase(name);
    g.constants[name] = t;
  }
  LOCUS_CHECK(!g.outputs.empty(), "the model has no outputs: there is nothing to compute");
  for (auto& in : g.inputs) {
    auto it = g.values.find(in);
    LOCUS_CHECK(it != g.values.end() && it->second.known, "input '", in, "' has no known shape");
  }
  resolve_input_shapes(g, o);
  const MemoryBudget budget = MemoryBudget::resolve(o.max_memory_bytes);
  if (std::string bad = unsupported_summary(g); !bad.empty()) throw Unsupported(bad);
  int folded = infer_shapes_and_fold(g);
  Session s;
  s.report_.results.push_back({"constant-folding (during shape inference)", folded});
  if (o.decompose) {
    // Before the default pipeline, so BatchNorm folding / activation fusion and the inverted-residual
    // fusion see the decomposed 1x1 -> depthwise -> 1x1 chains like any other.
    s.decompose_report_ = cp_decompose(g, *o.decompose);
    int decomposed = 0;
    for (const CpLayerReport& r : s.decompose_report_) {
      if (r.decomposed) {
        ++decomposed;
        s.report_.remarks.push_back({"cp-decompose", r.node,
                                     cat("decomposed ", r.cout, "x", r.cin, "x", r.kh, "x", r.kw, " at rank ", r.rank,
                                         ", relative error ", r.rel_error, ", MACs ", r.macs_before, " -> ",
                                         r.macs_after)});
      } else {
        s.report_.remarks.push_back({"cp-decompose", r.node, "not decomposed: " + r.why_not});
      }
    }
    s.report_.results.push_back({"cp-decompose (" + o.decompose->policy.describe() + ")", decomposed});
  }
  if (o.optimize) {
    for (auto& d : o.disabled_passes) {
      auto names = all_pass_names();
      LOCUS_CHECK(std::find(names.begin(), names.end(), d) != names.end(), "unknown pass '", d, "'");
    }
    // Inverted-residual fusion only for the backends that execute FusedInvertedResidual (the native
    // kernel and the reference's composition); turned off with --disable-pass fuse-inverted-residual.
    const bool fuse_blocks = o.backend == "native" || o.backend == "reference" || o.backend == "accel";
    PassReport r = PassManager::default_pipeline(o.disabled_passes, fuse_blocks).run(g);
    s.report_.results.insert(s.report_.results.end(), r.results.begin(), r.results.end());
    s.report_.remarks.insert(s.report_.remarks.end(), r.remarks.begin(), r.remarks.end());
  }
  const MemoryEstimate est = estimate_memory(g);
  budget.check("the model", est.total(),
               cat("activations ", human_bytes(est.activations), ", weights 2 x ", human_bytes(est.weights),
                   ", inputs and outputs ", human_bytes(est.io)));
  s.planned_bytes_ = est.total();
  s.budget_ = budget;
  BackendOptions bo;
  bo.threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  bo.memory_budget = budget;
  OmpThreadsScope omp_threads(bo.threads);
  bo.l2_bytes = o.l2_bytes;
  bo.tile_order = o.tile_order;
  bo.accel_schedule = o.accel_schedule;
  bo.accel_config = o.accel_config;
  bo.accel_buffer_entries = o.accel_buffer_entries;
  s.exe_ = make_backend(o.backend)->compile(g, bo);
  s.graph_ = std::move(g);
  return s;
}

std::vector<Tensor> Session::run(const std::map<std::string, Tensor>& inputs) {
  std::vector<const Tensor*> ins;
  for (auto& name : graph_.inputs) {
    auto it = inputs.find(name);
    LOCUS_CHECK(it != inputs.end(), "missing input '", name, "'");
    ValueInfo vi = graph_.info(name);
    const Tensor& t = it->second;
    LOCUS_CHECK(t.dtype == vi.dtype, "input '", name, "' has type ", dtype_name(t.dtype), ", the model expects ",
                dtype_name(vi.dtype));
    LOCUS_CHECK(t.shape == vi.shape, "input '", name, "' has shape ", shape_str(t.shape), ", the model expects ",
                shape_str(vi.shape));
    LOCUS_CHECK(t.bytes.size() == size_t(t.numel()) * dtype_size(t.dtype), "input '", name,
                "' holds the wrong number of bytes for its shape");
    ins.push_back(&t);
  }
  for (auto& [name, t] : inputs)
    LOCUS_CHECK(std::find(graph_.inputs.begin(), graph_.inputs.end(), name) != graph_.inputs.end(),
                "the model has no input named '", name, "'");
  std::vector<Tensor> outs;
  std::lock_guard<std::mutex> lock(*run_mutex_);
  exe_->run(ins, outs);
  return outs;
}

}  // namespace locus
