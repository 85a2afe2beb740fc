// The backend interface. A backend compiles an optimised graph once (packs weights, chooses kernels
// and tiles, plans buffers) into an Executable whose run() only computes. The native CPU backend is
// the first; the oneDNN and accelerator-model backends slot in beside it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace locus {

struct BackendOptions {
  int threads = 0;  // 0: OpenMP default
};

// Per-node timing collected when profiling is on.
struct NodeTiming {
  std::string node, op;
  double ms = 0;
};

class Executable {
 public:
  virtual ~Executable() = default;
  // inputs/outputs in the order of Graph::inputs / Graph::outputs, logical (NCHW) row-major.
  // Input shapes and dtypes were checked by the Session.
  virtual void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) = 0;
  // Bytes of activation memory the backend allocated for intermediate values (the planned arena).
  virtual int64_t activation_bytes() const = 0;
  // Enables per-node timing; timings() then holds the last run's times.
  virtual void set_profiling(bool on) { (void)on; }
  virtual std::vector<NodeTiming> timings() const { return {}; }
  // One line about how the backend ran the graph (e.g. how many layers it fused); may be empty.
  virtual std::string describe() const { return {}; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Throws Unsupported naming every node it cannot run.
  virtual std::unique_ptr<Executable> compile(const Graph& g, const BackendOptions& o) = 0;
};

// Throws Unsupported naming, all at once, every node whose op `handles` rejects and every
// non-float32 runtime value (integer tensors exist only as constants in the CPU backends).
void require_float_graph(const Graph& g, const std::string& backend,
                         const std::function<bool(const std::string& op)>& handles);

// Registered backends: "native", "onednn", "onednn-dwfused", "reference". Throws Error listing the known ones otherwise.
std::unique_ptr<Backend> make_backend(const std::string& name);
std::vector<std::string> backend_names();

}  // namespace locus
