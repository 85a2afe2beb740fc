// The backend interface. A backend compiles an optimised graph once (packs weights, chooses kernels
// and tiles, plans buffers) into an Executable whose run() only computes. The native CPU backend is
// the first; the oneDNN and accelerator-model backends slot in beside it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "runtime/memory_budget.h"
#include "schedule/tile_order.h"
#include "schedule/fused_block_planner.h"
#include "schedule/tiling_planner.h"

namespace locus {

// ---- pointwise tiling settings ----

// The planner's buffer is S = L2 bytes / 4 (floats) x this fraction. The other half is headroom for
// what the model leaves out: the L2 is not a fully associative LRU buffer (set conflicts, pseudo-LRU
// replacement), it also holds the code, stack, bias, the packed B's padding to 16 columns and the
// output tiles' write-allocate lines, and the next tile's prefetched lines arrive before the current
// ones are dead.
inline constexpr double kL2SafetyFraction = 0.5;
// The planner's buffer S (floats) for an L2 of l2_bytes.
inline int64_t l2_buffer_entries(int64_t l2_bytes) { return int64_t(double(l2_bytes / 4) * kL2SafetyFraction); }
// The L2 the fused inverted-residual blocks plan for when the pointwise tiling is off or the L2 is
// unknown: a fused block has no unfused fallback, so it always needs a buffer (512K: Zen 2-4, and
// less than most server cores have).
inline constexpr int64_t kFusedFallbackL2Bytes = 512 * 1024;
// Smaller l2_bytes are refused (a size of a few hundred is almost surely a missing "K").
inline constexpr int64_t kMinL2Bytes = 1024;

// Where a setting came from: the option (SessionOptions / BackendOptions, CLI --l2, --tile-order),
// the environment ($LOCUS_L2, $LOCUS_TILE_ORDER), the OS (the core's L2), or the default (for the
// L2: the OS reported none, tiling off).
enum class SettingSource { Option, Env, OS, Default };
// The one label of each source, in text and JSON: "option", "env", "os", "default".
const char* setting_source_name(SettingSource s);
// Why l2_bytes (> 0) is refused as an L2 size, as the end of a sentence naming it
// (" is below the minimum of 1K (...)"); empty when it is valid. The one check for --l2,
// BackendOptions::l2_bytes and $LOCUS_L2.
std::string l2_bytes_problem(int64_t l2_bytes);

struct PointwiseTilingSettings {
  int64_t l2_bytes = 0;  // planned for; 0: tiling off
  SettingSource l2_source = SettingSource::Default;  // Default: the OS did not report an L2 size
  int64_t buffer_entries = 0;  // S = l2_bytes / 4 * kL2SafetyFraction; 0 when off
  schedule::TileOrder order = schedule::TileOrder::Scan;
  SettingSource order_source = SettingSource::Default;
  bool enabled() const { return buffer_entries > 0; }
  // One line, e.g. "pointwise tiling: L2 512K (os), S = 65536 floats (x0.5), scan order (default)"
  // or "pointwise tiling off: the OS reports no L2 size (set --l2 or LOCUS_L2); 1x1 convs run as one GEMM".
  std::string describe() const;
};

struct BackendOptions {
  int threads = 0;  // 0: OpenMP default
  // Cache tiling of pointwise (1x1) convolutions (native backend; the others ignore both).
  // l2_bytes: the L2 size the tiling planner plans for. -1: $LOCUS_L2 if set, else the L2 of the
  // core running the compilation as the OS reports it (tiling off if the OS does not say);
  // 0: off (every 1x1 conv one plain GEMM); otherwise a size in bytes, at least kMinL2Bytes.
  int64_t l2_bytes = -1;
  // The order family the planner chooses from. Unset: $LOCUS_TILE_ORDER if set, else Scan.
  std::optional<schedule::TileOrder> tile_order;
  // Accelerator-model backend ("accel"; the others ignore these): the schedule whose projected
  // energy is computed at compile time (baseline, scan, fused-scan), the accelerator config (a preset
  // name or a JSON file, accel/accel_config.h) and the on-chip buffer in entries (0: the
  // config's).
  std::string accel_schedule = "fused-scan";
  std::string accel_config = "default";
  int64_t accel_buffer_entries = 0;
  // What the backend may allocate in all (arena, packed weights, scratch); it checks its own plan
  // against it before allocating. The Session resolves it (runtime/memory_budget.h).
  MemoryBudget memory_budget;
  // The pointwise tiling settings already resolved from l2_bytes / tile_order (the Session resolves
  // them once, resolve_pointwise_tiling); unset: the backend resolves them itself.
  std::optional<PointwiseTilingSettings> tiling;
  // Winograd F(4x4, 3x3) or F(2x2, 3x3) for 3x3 stride-1 convolutions where the planner models it faster (native
  // backend; CLI --no-winograd turns it off).
  bool winograd = true;
  // At batch > 1, run the first layers image by image, one image per thread, where the planner
  // finds it pays (native backend; runtime/native/image_major.h; CLI --no-image-major turns it off).
  bool image_major = true;
};

// Resolves the settings: option > environment ($LOCUS_L2, $LOCUS_TILE_ORDER) > OS > default.
// Throws Error with one line naming the option or variable and its value when it is not valid.
PointwiseTilingSettings resolve_pointwise_tiling(const BackendOptions& o);

// How one 1x1 convolution runs (native backend): its GEMM view and the cache plan made for it at
// compile time, or why it has none.
struct PointwisePlanRow {
  std::string node;
  int64_t M = 0, K = 0, N = 0;  // pixels (N*OH*OW), input channels, output channels
  int64_t stride_h = 1, stride_w = 1;  // > 1: the strided pixels are gathered into rows first
  int64_t groups = 1;
  std::optional<schedule::Plan> plan;  // m n k, order, resident strips, modelled traffic
  std::string why_not;               // when !plan, one word: "off" (tiling off), "grouped", "padded",
                                     // "no-fit" (the planner found no tile for S)
};

// How one 3x3 stride-1 convolution runs (native backend): Winograd or not, and why.
struct WinogradPlanRow {
  std::string node;
  int64_t C = 0, OC = 0, OH = 0, OW = 0;
  bool winograd = false;  // runs as Winograd F(m x m, 3x3)
  int64_t m = 0;          // with winograd: the output tile, 4 or 2
  std::string why;        // "off (--no-winograd)", "grouped", ... or the planner's figures
};

// How one FusedInvertedResidual runs (native backend): the fused-block plan made at compile time.
struct FusedBlockPlanRow {
  std::string node;
  schedule::FusedBlockPlan plan;  // band rows, chunk, modelled traffic per image
  // A FusedSEBlock: its plan (plan above = se->block), with the strategy: two-pass or recompute.
  std::optional<schedule::SeBlockPlan> se;
};

// What runs one node: the backend's implementation, as its op registry names it.
struct NodeImplementation {
  std::string node, op, implementation;
};

// Per-node timing collected when profiling is on.
struct NodeTiming {
  std::string node, op;
  double ms = 0;
};

// A read-only view of a dense row-major tensor held by the caller (Session::run_views: e.g. a NumPy
// array read in place by the Python module). `data` holds `bytes` bytes and outlives the run.
struct TensorView {
  DType dtype = DType::Undefined;
  Shape shape;
  const void* data = nullptr;
  size_t bytes = 0;
};

class Executable {
 public:
  virtual ~Executable() = default;
  // inputs/outputs in the order of Graph::inputs / Graph::outputs, logical (NCHW) row-major.
  // Input shapes and dtypes were checked by the Session.
  virtual void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) = 0;
  // The same with inputs held by the caller. By default they are copied into Tensors and run();
  // the native backend reads them in place.
  virtual void run_views(const std::vector<TensorView>& inputs, std::vector<Tensor>& outputs);
  // Bytes of activation memory the backend allocated for intermediate values (the planned arena,
  // with the step workspaces planned in it where the backend does so).
  virtual int64_t activation_bytes() const = 0;
  // The largest workspace one step asked for, in bytes (planned in the arena); 0 if none did.
  virtual int64_t largest_step_workspace() const { return 0; }
  // Enables per-node timing; timings() then holds the last run's times.
  virtual void set_profiling(bool on) { (void)on; }
  virtual std::vector<NodeTiming> timings() const { return {}; }
  // One line about how the backend ran the graph (e.g. how many layers it fused); may be empty.
  virtual std::string describe() const { return {}; }
  // The pointwise tiling settings it compiled with; nullopt for backends without that path.
  virtual std::optional<PointwiseTilingSettings> pointwise_tiling() const { return std::nullopt; }
  // One row per 1x1 convolution, in graph order, as planned at compile time (empty if not native).
  virtual std::vector<PointwisePlanRow> pointwise_plans() const { return {}; }
  // One row per fused inverted-residual block, in graph order (empty if none or not native).
  virtual std::vector<FusedBlockPlanRow> fused_block_plans() const { return {}; }
  // One row per 3x3 convolution (stride 1 or not), in graph order (empty if not native).
  virtual std::vector<WinogradPlanRow> winograd_plans() const { return {}; }
  // One row per node, in graph order: the implementation chosen for it (empty if the backend does
  // not say).
  virtual std::vector<NodeImplementation> implementations() const { return {}; }
};

// What a backend can execute beyond the catalogue ops, so that the pipeline prepares the graph for
// it (no decisions by backend name).
struct BackendCapabilities {
  bool fused_inverted_residual = false;  // runs locus.FusedInvertedResidual: the pipeline fuses blocks
  bool pointwise_tiling = false;  // plans 1x1 convs for an L2: the session resolves the tiling settings
  bool fused_qlinear_inverted_residual = false;  // runs locus.FusedQLinearInvertedResidual (int8 blocks)
  bool conv_residual = false;     // runs Conv with locus.residual: the pipeline fuses residual Adds
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual BackendCapabilities capabilities() const { return {}; }
  // Throws Unsupported naming every node it cannot run.
  virtual std::unique_ptr<Executable> compile(const Graph& g, const BackendOptions& o) = 0;
  // (op key, implementation) of every op its registry holds, sorted by key: "Conv" ->
  // "conv2d_nhwc", "locus.FusedInvertedResidual" -> ... (`locus info --ops`).
  virtual std::vector<std::pair<std::string, std::string>> op_implementations() const = 0;
};

// Throws Unsupported naming, all at once (each problem once, with a count and the first node),
// every node whose op `handles` rejects and every runtime value (graph input, node input or output;
// not constants) whose dtype the kernel of the op reading or writing it does not handle:
// handles_dtype(op key, dtype), with op "" for the graph's inputs (the boundary copy).
void require_supported_graph(const Graph& g, const std::string& backend,
                             const std::function<bool(const std::string& op)>& handles,
                             const std::function<bool(const std::string& op, DType t)>& handles_dtype);
// The same for a backend whose kernels handle float32 runtime values only (integer tensors exist only
// as constants there).
void require_float_graph(const Graph& g, const std::string& backend,
                         const std::function<bool(const std::string& op)>& handles);

// Registered backends: "native", "native-unfused" (native without block fusion), "onednn", "onednn-dwfused", "reference", "accel". Throws Error listing the known ones otherwise.
std::unique_ptr<Backend> make_backend(const std::string& name);
std::vector<std::string> backend_names();

}  // namespace locus
