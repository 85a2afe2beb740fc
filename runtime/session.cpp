#include "runtime/session.h"

#include <omp.h>

#include <algorithm>

#include "graph/ops.h"
#include "graph/passes/pipeline.h"
#include "importers/onnx/onnx_importer.h"
#include "runtime/memory_planner.h"
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

MemoryEstimate estimate_memory(const Graph& g) {
  MemoryEstimate e;
  const std::vector<BufferRequest> values = value_lifetimes(g);
  e.activations = peak_live_bytes(values);
  for (auto& [name, t] : g.constants) e.weights = add_bytes(e.weights, int64_t(t.bytes.size()));
  // the caller's copies of the inputs and outputs (values are in name order)
  auto bytes_of = [&](const std::string& v) {
    auto it = std::lower_bound(values.begin(), values.end(), v,
                               [](const BufferRequest& r, const std::string& name) { return r.name < name; });
    return it != values.end() && it->name == v ? it->bytes : int64_t(0);
  };
  for (const std::string& in : g.inputs) e.io = add_bytes(e.io, bytes_of(in));
  for (const std::string& out : g.outputs) e.io = add_bytes(e.io, bytes_of(out));
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
                "=FILE.pb; locus bench --shape ", name, "=1x3x640x640), or set SessionOptions::input_shapes");
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
  // The backend first: its capabilities decide how the pipeline prepares the graph.
  std::unique_ptr<Backend> backend = make_backend(o.backend_name);
  const BackendCapabilities caps = backend->capabilities();
  PipelineOptions po = o.pipeline;
  po.fuse_blocks = caps.fused_inverted_residual;
  po.fuse_qblocks = caps.fused_qlinear_inverted_residual;
  po.fuse_residual = caps.conv_residual;
  // Resolved before any work, so a bad setting fails first; the backend compiles with these.
  BackendOptions bo = o.backend;
  if (caps.pointwise_tiling && !bo.tiling) bo.tiling = resolve_pointwise_tiling(bo);
  PreparedGraph prepared = prepare_graph(g, po);
  Session s;
  s.report_ = std::move(prepared.report);
  s.decompose_report_ = std::move(prepared.decompose_report);
  s.tiling_ = caps.pointwise_tiling ? bo.tiling : std::nullopt;
  const MemoryEstimate est = estimate_memory(g);
  budget.check("the model", est.total(),
               cat("activations ", human_bytes(est.activations), ", weights 2 x ", human_bytes(est.weights),
                   ", inputs and outputs ", human_bytes(est.io)));
  s.planned_bytes_ = est.total();
  s.budget_ = budget;
  bo.threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  bo.memory_budget = budget;
  OmpThreadsScope omp_threads(bo.threads);
  s.exe_ = backend->compile(g, bo);
  s.graph_ = std::move(g);
  return s;
}

std::vector<Tensor> Session::run(const std::map<std::string, Tensor>& inputs) {
  std::map<std::string, TensorView> views;
  for (auto& [name, t] : inputs) views[name] = {t.dtype, t.shape, t.bytes.data(), t.bytes.size()};
  return run_views(views);
}

std::vector<Tensor> Session::run_views(const std::map<std::string, TensorView>& inputs) {
  std::vector<TensorView> ins;
  for (auto& name : graph_.inputs) {
    auto it = inputs.find(name);
    LOCUS_CHECK(it != inputs.end(), "missing input '", name, "'");
    ValueInfo vi = graph_.info(name);
    const TensorView& t = it->second;
    LOCUS_CHECK(t.dtype == vi.dtype, "input '", name, "' has type ", dtype_name(t.dtype), ", the model expects ",
                dtype_name(vi.dtype));
    LOCUS_CHECK(t.shape == vi.shape, "input '", name, "' has shape ", shape_str(t.shape), ", the model expects ",
                shape_str(vi.shape));
    LOCUS_CHECK(t.bytes == size_t(checked_numel(t.shape, "input '" + name + "'")) * dtype_size(t.dtype), "input '",
                name, "' holds the wrong number of bytes for its shape");
    ins.push_back(t);
  }
  for (auto& [name, t] : inputs)
    LOCUS_CHECK(std::find(graph_.inputs.begin(), graph_.inputs.end(), name) != graph_.inputs.end(),
                "the model has no input named '", name, "'");
  std::vector<Tensor> outs;
  std::lock_guard<std::mutex> lock(*run_mutex_);
  exe_->run_views(ins, outs);
  return outs;
}

}  // namespace locus
