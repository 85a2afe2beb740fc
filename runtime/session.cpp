#include "runtime/session.h"

#include <omp.h>

#include <algorithm>

#include "graph/ops.h"
#include "importers/onnx/onnx_importer.h"

namespace locus {

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
  for (auto& in : g.inputs) {
    auto it = g.values.find(in);
    LOCUS_CHECK(it != g.values.end() && it->second.known, "input '", in, "' has no known shape");
  }
  if (auto bad = unsupported_nodes(g); !bad.empty()) {
    std::string msg = "unsupported operators: ";
    for (size_t i = 0; i < bad.size(); ++i) msg += (i ? ", " : "") + bad[i];
    throw Unsupported(msg);
  }
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
  if (o.threads > 0) omp_set_num_threads(o.threads);
  BackendOptions bo;
  bo.threads = o.threads;
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
  exe_->run(ins, outs);
  return outs;
}

}  // namespace locus
