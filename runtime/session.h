// Session: load -> optimise -> compile once, then run many times.
//
//   locus::SessionOptions o;  o.backend_name = "native";  o.backend.l2_bytes = 1 << 20;
//   locus::Session s = locus::Session::from_file("mobilenetv2.onnx", o);
//   auto out = s.run({{"input", tensor}});   // named inputs, outputs in graph order
//
// Threads. A session owns one activation arena and one workspace, planned at creation, so one
// inference runs on it at a time: Session::run may be called from several threads, and concurrent
// calls on the same session are serialised (each waits for the one before it; none sees another's
// buffers). For inferences in parallel, create one session per thread: sessions share nothing
// mutable. Each run uses SessionOptions::threads OpenMP threads (0: the OpenMP default when the
// session was created) and leaves the calling thread's OpenMP settings as they were. Do not run the
// Executable (executable()) directly while another thread runs the session.
//
// Memory. Before the backend allocates anything, the session adds up what it will hold (activation
// arena, weights and their packed copies, inputs and outputs) and refuses with one line naming the
// figure when it exceeds the memory budget (runtime/memory_budget.h; SessionOptions::max_memory_bytes).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "graph/passes/cp_decompose.h"
#include "graph/passes/pass_manager.h"
#include "graph/passes/pipeline.h"
#include "runtime/backend.h"
#include "runtime/memory_budget.h"

namespace locus {

// Everything a session is created with, resolved once: the graph pipeline's options (pipeline),
// the backend's (backend: tiling, accel, ...) and what only the session uses. Nothing is copied field
// by field: Session::from_graph hands `pipeline` to prepare_graph and `backend` to the backend,
// filling in what it resolves itself (fuse_blocks from the backend's capabilities, threads, the
// memory budget, the pointwise tiling settings).
struct SessionOptions {
  std::string backend_name = "native";  // make_backend name
  // The pass pipeline (graph/passes/pipeline.h): optimize, disabled_passes, decompose (CP
  // decomposition of standard convolutions, CLI --decompose POLICY / --decompose-form 3|4). Its
  // fuse_blocks is set from the backend's capabilities.
  PipelineOptions pipeline;
  // The backend (runtime/backend.h): l2_bytes / tile_order (CLI --l2 SIZE, --tile-order; resolved
  // once per session into backend.tiling, see Session::tiling()), accel_schedule / accel_config /
  // accel_buffer_entries (CLI --accel-schedule, --accel, --buffer). Its threads and memory_budget
  // are set by the session from the fields below.
  BackendOptions backend;
  int threads = 0;          // 0: OpenMP default (all cores)
  int64_t batch = 1;        // value for a symbolic axis 0 (batch) of graph inputs
  // Shapes for graph inputs whose model shape has symbolic dims (Graph::symbolic_dims): each given
  // shape must have the input's rank and agree with its fixed dims. A symbolic dim other than axis 0
  // without a shape here is an error, not a guess. The CLI fills it from --input files.
  std::map<std::string, Shape> input_shapes;
  // Memory budget in bytes (runtime/memory_budget.h): 0 = the default fraction of this machine's
  // usable memory. CLI: --max-memory SIZE.
  int64_t max_memory_bytes = 0;
  // Inputs whose values are fixed at session creation (folded as constants), e.g. the int64 shape
  // inputs of ONNX node tests. They are then no longer session inputs.
  std::map<std::string, Tensor> bind_constants;
};

class Session {
 public:
  static Session from_file(const std::string& model_path, const SessionOptions& o = {});
  static Session from_graph(Graph g, const SessionOptions& o = {});

  const Graph& graph() const { return graph_; }  // the optimised graph
  const std::vector<std::string>& input_names() const { return graph_.inputs; }
  const std::vector<std::string>& output_names() const { return graph_.outputs; }
  ValueInfo input_info(const std::string& name) const { return graph_.info(name); }
  const PassReport& pass_report() const { return report_; }
  // One row per convolution the cp-decompose pass considered (empty without SessionOptions::decompose).
  const std::vector<CpLayerReport>& decompose_report() const { return decompose_report_; }
  int64_t activation_bytes() const { return exe_->activation_bytes(); }
  int64_t largest_step_workspace() const { return exe_->largest_step_workspace(); }
  // What the session planned to hold, as checked against the memory budget before compiling.
  int64_t planned_memory_bytes() const { return planned_bytes_; }
  const MemoryBudget& memory_budget() const { return budget_; }
  // The pointwise tiling settings, resolved once at creation (SessionOptions::backend.l2_bytes /
  // tile_order, then $LOCUS_L2 / $LOCUS_TILE_ORDER, then the OS) and handed to the backend; nullopt
  // for backends without that path (BackendCapabilities::pointwise_tiling).
  const std::optional<PointwiseTilingSettings>& tiling() const { return tiling_; }
  Executable& executable() { return *exe_; }
  const Executable& executable() const { return *exe_; }

  // Checks names, dtypes and shapes of the inputs (one-line Error on mismatch), runs, returns the
  // outputs in output_names() order. Thread-safe: concurrent calls are serialised (see above).
  std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs);
  // The same with inputs held by the caller (a NumPy array, ...), read in place by the native
  // backend (other backends copy them). The same checks and the same one-line errors.
  std::vector<Tensor> run_views(const std::map<std::string, TensorView>& inputs);

 private:
  Session() = default;
  std::unique_ptr<std::mutex> run_mutex_ = std::make_unique<std::mutex>();
  int64_t planned_bytes_ = 0;
  MemoryBudget budget_;
  std::optional<PointwiseTilingSettings> tiling_;
  Graph graph_;
  PassReport report_;
  std::vector<CpLayerReport> decompose_report_;
  std::unique_ptr<Executable> exe_;
};

}  // namespace locus
