// The native CPU backend. compile() does everything that depends only on shapes and weights: it
// decides each value's layout (4-D activations NHWC, everything else row-major), plans the arena with
// the memory planner, packs weights and builds one step per node with its pointers bound. When the
// values' arena fits in the L2, a step's workspace is planned in the arena too, alive during its
// step only: the steps are built once to learn what each asks for, then again on the arena planned
// with them (otherwise the workspaces share one buffer). run() converts the inputs at the boundary
// (NCHW -> NHWC), runs the steps and converts the outputs back. A float input that only feeds a per-tensor QuantizeLinear (a quantized
// model's) is quantized straight into that node's NHWC bytes at the boundary, in one pass. Runtime
// values are float32, or uint8 / int8 for the quantized ops (one byte per element, in the same layouts).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <optional>

#include "graph/ops.h"
#include "graph/quant_params.h"
#include "kernels/native/activation.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/inverted_residual.h"
#include "kernels/native/meet_split.h"
#include "kernels/native/elementwise.h"
#include "kernels/native/gemm.h"
#include "kernels/native/pool2d_nhwc.h"
#include "kernels/native/qelementwise.h"
#include "runtime/backend.h"
#include "runtime/memory_planner.h"
#include "runtime/native/image_major.h"
#include "runtime/native/in_place.h"
#include "runtime/native/native_context.h"
#include "runtime/native/op_registry.h"
#include "runtime/omp_threads.h"

namespace locus {
namespace {

using namespace kernels;
using native::Step;
using native::Val;

// Cache tiling of pointwise convolutions (docs/method.md section 8) is ON by default: every G = 1,
// unpadded 1x1 conv (strided ones through a row gather) runs pointwise_scan_f32 on a plan made at
// compile time, with the core's L2 as the planner's buffer (settings: resolve_pointwise_tiling in
// runtime/backend.h: option > LOCUS_L2 / LOCUS_TILE_ORDER > the OS). When the L2 size is unknown,
// or l2_bytes is 0, they run as one gemm_f32 each, and describe() says so.

// A float model input whose only consumer is a per-tensor QuantizeLinear: run_views quantizes the
// caller's NCHW floats straight into the QuantizeLinear's NHWC output (quantize_f32_nchw_to_nhwc,
// the same bits as the copy followed by the node), so the input's float NHWC copy is never written
// (in MobileNetV2-int8 it was 602 KB written and read back: 11k of the 96k L2 misses, docs/int8.md),
// and the node's step does nothing.
struct InputQuantize {
  int node = -1;        // the QuantizeLinear's index
  std::string output;   // its output
  float scale = 1.f;
  int32_t zp = 0;
  bool s8 = false;
};

std::optional<InputQuantize> input_quantize(const Graph& g, const std::string& x) {
  const ValueInfo& xi = g.info(x);
  if (xi.dtype != DType::F32 || xi.shape.size() != 4) return std::nullopt;
  if (std::find(g.outputs.begin(), g.outputs.end(), x) != g.outputs.end()) return std::nullopt;
  const std::vector<int> users = g.consumers(x);
  if (users.size() != 1) return std::nullopt;
  const Node& q = g.nodes[size_t(users[0])];
  if (q.op != "QuantizeLinear" || !q.domain.empty() || q.inputs.size() < 2 || q.input(0) != x ||
      q.outputs.size() != 1)
    return std::nullopt;
  for (size_t k = 1; k < q.inputs.size(); ++k)
    if (q.input(k) == x) return std::nullopt;
  const Tensor* s = g.constant(q.input(1));
  const Tensor* z = q.input(2).empty() ? nullptr : g.constant(q.input(2));
  if (!s || s->dtype != DType::F32 || s->numel() != 1 || (!q.input(2).empty() && (!z || z->numel() != 1)))
    return std::nullopt;
  const DType yt = g.info(q.outputs[0]).dtype;
  if (yt != DType::U8 && yt != DType::I8) return std::nullopt;
  return InputQuantize{users[0], q.outputs[0], quant_scale_at(*s, 0), quant_zero_at(z, 0), yt == DType::I8};
}

struct StepInfo {
  std::string node, op, implementation;
  Step fn;
};

class NativeExecutable : public Executable, public native::NativeContext {
 public:
  NativeExecutable(const Graph& g, const BackendOptions& o);
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override;
  void run_views(const std::vector<TensorView>& inputs, std::vector<Tensor>& outputs) override;
  int64_t activation_bytes() const override {
    int64_t b = arena_bytes_;
    for (auto& l : lanes_) b = add_bytes(b, l->arena_bytes_);
    return b;
  }
  int64_t largest_step_workspace() const override {
    int64_t b = ws_need_.empty() ? 0 : *std::max_element(ws_need_.begin(), ws_need_.end());
    for (auto& l : lanes_) b = std::max(b, l->largest_step_workspace());
    return b;
  }
  void set_profiling(bool on) override {
    profiling_ = on;
    for (auto& l : lanes_) l->profiling_ = on;
  }
  std::vector<NodeTiming> timings() const override { return timings_; }
  std::string describe() const override;
  std::optional<PointwiseTilingSettings> pointwise_tiling() const override { return tiling_; }
  // With image-major lanes, their plans (the prefix at batch 1) come first.
  std::vector<PointwisePlanRow> pointwise_plans() const override { return with_lane(plans_, &NativeExecutable::plans_); }
  std::vector<FusedBlockPlanRow> fused_block_plans() const override {
    return with_lane(fused_plans_, &NativeExecutable::fused_plans_);
  }
  std::vector<WinogradPlanRow> winograd_plans() const override {
    return with_lane(winograd_plans_, &NativeExecutable::winograd_plans_);
  }
  std::vector<NodeImplementation> implementations() const override {
    std::vector<NodeImplementation> r;
    for (const NativeExecutable* e : {lanes_.empty() ? nullptr : static_cast<const NativeExecutable*>(lanes_[0].get()), this})
      if (e)
        for (const StepInfo& s : e->steps_) r.push_back({s.node, s.op, s.implementation});
    return r;
  }
  // Image-major execution (runtime/native/image_major.h): this executable runs the graph after the
  // cut; `lanes` (one per thread, the prefix at batch 1 on one thread each) take the images first.
  // What each image hands over is resolved here, once: where the cut value's slices go and their size.
  void set_image_major(std::vector<std::unique_ptr<NativeExecutable>> lanes, std::string cut, std::string why) {
    lanes_ = std::move(lanes);
    cut_ = std::move(cut);
    image_major_why_ = std::move(why);
    const Val& v = vals_.at(cut_);  // float32, or uint8 / int8 (one byte per element)
    cut_dst_ = v.bytes();
    cut_image_bytes_ = size_t(v.numel() / v.shape[0]) * dtype_size(v.dtype);
    for (auto& l : lanes_) {
      const Val& y = l->vals_.at(l->output_names_[0]);
      l->lane_out_ = y.bytes();
      l->cut_image_bytes_ = cut_image_bytes_;
      LOCUS_CHECK(size_t(y.numel()) * dtype_size(y.dtype) == cut_image_bytes_,
                  "image-major: a lane's output is not one image of '", cut_, "'");
    }
  }
  int threads() const override { return threads_; }  // (NativeContext's; public: the backend sizes the lanes by it)
  void set_image_major_why(std::string why) { image_major_why_ = std::move(why); }
  // What the constructor allocated: arena, packed weights and step buffers, shared workspace.
  int64_t planned_bytes() const { return planned_bytes_; }

 private:
  // --- NativeContext: what the op builders (runtime/native/ops_*.cpp) use ---
  const Graph& graph() const override { return g_; }
  const PointwiseTilingSettings& tiling() const override { return tiling_; }
  Val& val(const std::string& name) override;
  float* scratch(int64_t floats) override;
  uint8_t* scratch_bytes(int64_t bytes) override { return reinterpret_cast<uint8_t*>(scratch((bytes + 3) / 4)); }
  const float* rowmajor_in(const Val& x, Step& pre) override;
  float* rowmajor_out(const Val& y, Step& post) override;
  const uint8_t* rowmajor_in_bytes(const Val& x, Step& pre) override;
  uint8_t* rowmajor_out_bytes(const Val& y, Step& post) override;
  void need_workspace(int64_t floats) override {
    ws_need_[building_] = std::max(ws_need_[building_], mul_bytes(std::max<int64_t>(floats, 0), 4));
    if (!live_.empty()) ws_floor_ = std::max(ws_floor_, live_[building_] + ws_need_[building_]);
  }
  const native::StepWorkspace* workspace() override { return &step_ws_[building_]; }
  int64_t workspace_room() const override {
    if (live_.empty()) return -1;
    return std::max<int64_t>(0, std::max(values_arena_, ws_floor_) - live_[building_]);
  }
  void add_pointwise_plan(PointwisePlanRow row) override { plans_.push_back(std::move(row)); }
  void add_fused_plan(FusedBlockPlanRow row) override { fused_plans_.push_back(std::move(row)); }
  void add_winograd_plan(WinogradPlanRow row) override { winograd_plans_.push_back(std::move(row)); }
  bool winograd() const override { return opts_.winograd; }
  void set_implementation(std::string name) override { implementation_ = std::move(name); }

  // The step of one node, by the op registry (runtime/native/op_registry.h).
  Step build(const Node& n);
  // Plans the arena for `list` (its first `values` requests are the runtime values, the rest step
  // workspaces, each alive during its step), allocates it and a shared workspace of `shared_ws`
  // bytes for the other steps, and builds every step from a clean state (a second call replaces
  // the first).
  void compile_steps(const std::vector<BufferRequest>& list, size_t values, int64_t shared_ws,
                     const std::map<int, std::string>& boundary_quantize);

  const Graph& g_;  // valid during compilation only (the constructor)
  BackendOptions opts_;
  // The thread count every kernel is planned for and runs with (passed to them explicitly; the
  // scratch is sized for it): the option, else the OpenMP default when the session was made.
  int threads_ = 1;
  std::vector<std::string> input_names_, output_names_;
  std::vector<std::optional<InputQuantize>> input_quant_;  // per input: quantized at the boundary
  std::map<std::string, Tensor> constant_outputs_;
  std::map<std::string, Val> vals_;
  std::map<std::string, std::string> in_place_;  // output -> the value whose memory it takes (in_place.h)
  std::deque<std::vector<float>> owned_;  // materialised constants and step scratch
  kernels::AlignedVector<float> arena_;
  std::vector<native::StepWorkspace> step_ws_;  // per node: its workspace, in the arena or workspace_
  kernels::AlignedVector<float> workspace_;                // the workspaces that do not fit in the arena's room
  std::vector<int64_t> ws_need_;                // per node: the workspace bytes it asked for
  size_t building_ = 0;                         // the node being built
  // Workspaces in the arena (the values' arena fits in the L2): per node the bytes of values live
  // then (empty otherwise), the values' arena, and the most live + workspace of the steps built so far.
  std::vector<int64_t> live_;
  int64_t values_arena_ = 0, ws_floor_ = 0;
  int64_t arena_bytes_ = 0;
  std::vector<StepInfo> steps_;
  bool profiling_ = false;
  std::vector<NodeTiming> timings_;
  PointwiseTilingSettings tiling_;        // resolved once, before any Conv is packed
  std::vector<PointwisePlanRow> plans_;   // one per 1x1 conv, in graph order
  std::vector<FusedBlockPlanRow> fused_plans_;  // one per FusedInvertedResidual, in graph order
  std::vector<WinogradPlanRow> winograd_plans_;  // one per 3x3 conv, in graph order
  std::string implementation_;  // of the node being built
  // Image-major prefix: the lanes, the value they hand over (an input of this graph) and the
  // planner's remark.
  std::vector<std::unique_ptr<NativeExecutable>> lanes_;
  std::string cut_, image_major_why_;
  uint8_t* cut_dst_ = nullptr;     // the cut value in this arena (image n's slice at n * cut_image_bytes_)
  size_t cut_image_bytes_ = 0;
  const uint8_t* lane_out_ = nullptr;  // in a lane: its output, one image (cut_image_bytes_) of the cut value
  int64_t planned_bytes_ = 0;
  template <class Row>
  std::vector<Row> with_lane(const std::vector<Row>& own, std::vector<Row> NativeExecutable::*m) const {
    if (lanes_.empty()) return own;
    std::vector<Row> r = (*lanes_[0]).*m;
    r.insert(r.end(), own.begin(), own.end());
    return r;
  }
  // Input i from the caller's row-major data into the arena (the boundary conversion).
  void copy_input(size_t i, const void* data);
  // With profiling: timings_ one zero row per step; run_steps adds each step's time to its row.
  void reset_timings();
  void run_steps();
  // One image through a lane: its input (batch 1, NCHW) in, its output (one image of the cut value,
  // NHWC) copied to dst.
  void run_image(const void* input, uint8_t* dst);
};

NativeExecutable::NativeExecutable(const Graph& g, const BackendOptions& o)
    : g_(g), opts_(o), threads_(o.threads > 0 ? o.threads : omp_get_max_threads()) {
  // every op has an entry, and every runtime value a dtype its kernels handle (float32 everywhere,
  // uint8 / int8 in the quantized and data-movement ops: native::handles_dtype)
  require_supported_graph(g, "native", [](const std::string& op) { return native::native_ops().handles(op); },
                          native::handles_dtype);
  tiling_ = o.tiling ? *o.tiling : resolve_pointwise_tiling(o);
  if (std::string bad = invalid_isa_env(); !bad.empty())
    fail("LOCUS_ISA='", bad, "' names no ISA: use generic, avx2 or avx512 (or unset it for the best this CPU has)");

  // Inputs quantized at the boundary (InputQuantize): the QuantizeLinear's output is written before
  // the first step, and the float input is never stored.
  std::map<int, std::string> boundary_quantize;  // node index -> its input
  std::map<std::string, std::string> quantized_at_boundary;  // input -> the QuantizeLinear's output
  for (const std::string& x : g.inputs) {
    input_quant_.push_back(input_quantize(g, x));
    if (input_quant_.back()) {
      boundary_quantize[input_quant_.back()->node] = x;
      quantized_at_boundary[x] = input_quant_.back()->output;
    }
  }
  // Every runtime value in the arena, shared between values whose lifetimes do not overlap.
  std::vector<BufferRequest> list = value_lifetimes(g);
  for (BufferRequest& r : list) {
    if (quantized_at_boundary.count(r.name)) r.bytes = 0;
    for (auto& [x, y] : quantized_at_boundary)
      if (r.name == y) r.first = 0;
  }
  // Fused-residual 1x1 convs whose residual dies with them write their output over it (in_place.h).
  in_place_ = native::in_place_residuals(g, list);
  native::apply_in_place(in_place_, list);
  // When the values' arena fits in the L2, every line of it costs one miss per inference (the last
  // layers' weights flush the cache between inferences) and nothing more: then every step's
  // workspace joins the arena, alive during its step, and reuses the memory of activations that have
  // just died instead of memory of its own (MobileNetV2-int8: the fused blocks' bands). Steps may
  // size their buffers by workspace_room(): what the arena, as large as the steps built so far have
  // made it, leaves free during the step (the same in both builds). When the arena does not fit,
  // the workspaces share one buffer (one step runs at a time): the memory every step reuses, which
  // is what stays in the cache then.
  values_arena_ = plan_memory(list).arena_bytes;
  live_.clear();
  if (tiling_.l2_bytes > 0 && values_arena_ <= tiling_.l2_bytes) live_ = placed_live_bytes(list, int(g.nodes.size()));
  compile_steps(list, list.size(), 0, boundary_quantize);
  std::vector<BufferRequest> with_ws = list;
  int64_t shared = 0;
  for (size_t k = 0; k < ws_need_.size(); ++k) {
    if (ws_need_[k] <= 0) continue;
    if (!live_.empty()) with_ws.push_back({cat("#workspace ", k), ws_need_[k], int(k), int(k)});
    else shared = std::max(shared, ws_need_[k]);
  }
  if (with_ws.size() > list.size()) {  // build again on the arena planned with them
    const std::vector<int64_t> need = ws_need_;
    compile_steps(with_ws, list.size(), shared, boundary_quantize);
    LOCUS_CHECK(ws_need_ == need, "native backend: a step asked for another workspace when it was built again");
  } else if (shared > 0) {  // the steps read their workspace's address when they run: bind it now
    workspace_.assign(size_t(shared / 4 + 16), 0.f);
    for (size_t k = 0; k < step_ws_.size(); ++k)
      if (ws_need_[k] > 0) step_ws_[k].p = workspace_.data();
  }
  int64_t owned_bytes = 0;
  for (auto& b : owned_) owned_bytes = add_bytes(owned_bytes, int64_t(b.size() * sizeof(float)));
  const int64_t ws_bytes = int64_t(workspace_.size() * sizeof(float));
  planned_bytes_ = add_bytes(add_bytes(arena_bytes_, owned_bytes), ws_bytes);
  o.memory_budget.check("the native backend's plan", planned_bytes_,
                        cat("activation arena ", human_bytes(arena_bytes_), ", packed weights and step buffers ",
                            human_bytes(owned_bytes), ", shared workspace ", human_bytes(ws_bytes)));
  input_names_ = g.inputs;
  output_names_ = g.outputs;
  for (auto& o : g.outputs)
    if (const Tensor* c = g.constant(o)) constant_outputs_[o] = *c;
}

void NativeExecutable::compile_steps(const std::vector<BufferRequest>& list, size_t values, int64_t shared_ws,
                                     const std::map<int, std::string>& boundary_quantize) {
  const Graph& g = g_;
  vals_.clear();
  owned_.clear();
  steps_.clear();
  plans_.clear();
  fused_plans_.clear();
  winograd_plans_.clear();
  workspace_.assign(size_t(shared_ws > 0 ? shared_ws / 4 + 16 : 0), 0.f);
  ws_floor_ = 0;
  step_ws_.assign(g.nodes.size(), {workspace_.empty() ? nullptr : workspace_.data()});
  ws_need_.assign(g.nodes.size(), 0);
  for (size_t i = 0; i < values; ++i)
    vals_[list[i].name] = Val(g.info(list[i].name).shape, nullptr, g.info(list[i].name).dtype);
  MemoryPlan plan = plan_memory(list);
  arena_bytes_ = plan.arena_bytes;
  int64_t weight_bytes = 0;
  for (auto& [name, t] : g.constants) weight_bytes = add_bytes(weight_bytes, int64_t(t.bytes.size()));
  // packed weights are at most a padded copy of the constants; checked again with the real figures
  // once the steps are built
  opts_.memory_budget.check("the native backend's plan", add_bytes(arena_bytes_, weight_bytes),
                            cat("activation arena ", human_bytes(arena_bytes_), ", weights ", human_bytes(weight_bytes)));
  arena_.clear();
  arena_.shrink_to_fit();
  arena_.assign(size_t(plan.arena_bytes / 4 + 16), 0.f);
  for (size_t i = 0; i < list.size(); ++i) {
    float* at = arena_.data() + plan.offsets[i] / 4;
    if (i < values) vals_[list[i].name].ptr = at;
    else step_ws_[size_t(list[i].first)].p = at;
  }
  for (const auto& [y, root] : in_place_) vals_.at(y).ptr = vals_.at(root).ptr;

  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& n = g.nodes[k];
    building_ = k;
    if (auto it = boundary_quantize.find(int(k)); it != boundary_quantize.end()) {
      steps_.push_back({n.name, n.op, cat("quantize_f32_nchw_to_nhwc (at the boundary, from input '", it->second, "')"),
                        [] {}});
      continue;
    }
    Step fn = build(n);
    steps_.push_back({n.name, n.op, implementation_, std::move(fn)});
  }
}

Val& NativeExecutable::val(const std::string& name) {
  auto it = vals_.find(name);
  if (it != vals_.end()) return it->second;
  const Tensor* c = g_.constant(name);
  LOCUS_CHECK(c, "native backend: value '", name, "' is unknown");
  if (c->dtype == DType::U8 || c->dtype == DType::I8) {  // a 1-byte operand of a quantized op
    Val v(c->shape, nullptr, c->dtype);
    v.ptr = reinterpret_cast<float*>(scratch_bytes(v.numel()));
    copy_strided_u8(v.shape, c->data<uint8_t>(), v.rowmajor(), v.bytes(), v.strides());
    return vals_[name] = v;
  }
  if (c->dtype != DType::F32) throw Unsupported(cat("native backend: constant '", name, "' of type ", dtype_name(c->dtype), " used as a float operand"));
  Val v(c->shape, nullptr);
  v.ptr = scratch(v.numel());
  copy_strided_f32(v.shape, c->data<float>(), v.rowmajor(), v.ptr, v.strides());
  return vals_[name] = v;
}

float* NativeExecutable::scratch(int64_t floats) {
  owned_.emplace_back(size_t(std::max<int64_t>(floats, 1)), 0.f);
  return owned_.back().data();
}

const float* NativeExecutable::rowmajor_in(const Val& x, Step& pre) {
  if (x.is_rowmajor()) return x.ptr;
  float* buf = scratch(x.numel());
  pre = [x, buf] { copy_strided_f32(x.shape, x.ptr, x.strides(), buf, x.rowmajor()); };
  return buf;
}

float* NativeExecutable::rowmajor_out(const Val& y, Step& post) {
  if (y.is_rowmajor()) return y.ptr;
  float* buf = scratch(y.numel());
  post = [y, buf] { copy_strided_f32(y.shape, buf, y.rowmajor(), y.ptr, y.strides()); };
  return buf;
}

const uint8_t* NativeExecutable::rowmajor_in_bytes(const Val& x, Step& pre) {
  if (x.is_rowmajor()) return x.bytes();
  uint8_t* buf = scratch_bytes(x.numel());
  pre = [x, buf] { copy_strided_u8(x.shape, x.bytes(), x.strides(), buf, x.rowmajor()); };
  return buf;
}

uint8_t* NativeExecutable::rowmajor_out_bytes(const Val& y, Step& post) {
  if (y.is_rowmajor()) return y.bytes();
  uint8_t* buf = scratch_bytes(y.numel());
  post = [y, buf] { copy_strided_u8(y.shape, buf, y.rowmajor(), y.bytes(), y.strides()); };
  return buf;
}

Step NativeExecutable::build(const Node& n) {
  const native::NativeOp* op = native::native_ops().find(n);
  if (!op) throw Unsupported(cat("native backend: no kernel for ", native::op_key(n), " (node '", n.name, "')"));
  implementation_ = op->implementation;
  return op->fn(*this, n);
}

std::string NativeExecutable::describe() const {
  size_t planned = 0;
  const std::vector<PointwisePlanRow> plans = pointwise_plans();
  const std::vector<FusedBlockPlanRow> fused = fused_block_plans();
  for (auto& r : plans) planned += r.plan.has_value();
  std::string d = tiling_.describe();
  if (tiling_.enabled()) d += cat("; ", planned, " of ", plans.size(), " 1x1 convs planned");
  if (!fused.empty()) d += cat("; ", fused.size(), " inverted-residual blocks fused");
  int64_t two_pass = 0, recompute = 0;
  for (const FusedBlockPlanRow& r : fused)
    if (r.se) ++(r.se->strategy == schedule::SeStrategy::TwoPass ? two_pass : recompute);
  if (two_pass + recompute > 0)
    d += cat(" (", two_pass + recompute, " with squeeze-excite: ", two_pass, " two-pass, ", recompute, " recompute)");
  if (!lanes_.empty())
    d += cat("; image-major: the first ", lanes_[0]->steps_.size(), " nodes (to '", cut_, "') one image per thread, ",
             lanes_.size(), " lanes (", image_major_why_, ")");
  else if (!image_major_why_.empty() && image_major_why_ != "batch 1")
    d += cat("; image-major: none (", image_major_why_, ")");
  return d;
}

void NativeExecutable::run(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) {
  std::vector<TensorView> views;
  views.reserve(inputs.size());
  for (const Tensor* t : inputs) views.push_back({t->dtype, t->shape, t->bytes.data(), t->bytes.size()});
  run_views(views, outputs);
}

void NativeExecutable::copy_input(size_t i, const void* data) {
  const Val& v = vals_.at(input_names_[i]);
  if (const std::optional<InputQuantize>& q = input_quant_[i]) {
    const Val& y = vals_.at(q->output);
    quantize_f32_nchw_to_nhwc(v.shape[0], v.shape[1], v.shape[2] * v.shape[3], static_cast<const float*>(data),
                              q->scale, q->zp, q->s8, y.bytes());
  } else if (v.is_byte())
    copy_strided_u8(v.shape, static_cast<const uint8_t*>(data), v.rowmajor(), v.bytes(), v.strides());
  else
    copy_strided_f32(v.shape, static_cast<const float*>(data), v.rowmajor(), v.ptr, v.strides());
}

void NativeExecutable::reset_timings() {
  timings_.clear();
  for (auto& s : steps_) timings_.push_back({s.node, s.op, 0.0});
}

void NativeExecutable::run_steps() {
  if (!profiling_) {
    for (auto& s : steps_) s.fn();
    return;
  }
  for (size_t k = 0; k < steps_.size(); ++k) {
    auto t0 = std::chrono::steady_clock::now();
    steps_[k].fn();
    auto t1 = std::chrono::steady_clock::now();
    timings_[k].ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
  }
}

void NativeExecutable::run_image(const void* input, uint8_t* dst) {
  copy_input(0, input);
  run_steps();
  std::memcpy(dst, lane_out_, cut_image_bytes_);
}

// The inputs are read in place (copied into the arena in the kernels' layout, as run() does).
void NativeExecutable::run_views(const std::vector<TensorView>& inputs, std::vector<Tensor>& outputs) {
  // The kernels with scratch take their thread count from their plans; the scope keeps the other
  // kernels (pooling, element-wise, depthwise) on the session's count too.
  OmpThreadsScope omp_threads(threads_);
  if (profiling_) reset_timings();
  if (!lanes_.empty()) {
    // Image-major: the lanes take the images, each writing its image's slice of the cut value; then
    // the rest of the graph runs over the batch. Contiguous stretches balanced at run time
    // (MeetSplit): a lane on a slower vCPU takes fewer images, and the rest's band split still finds
    // most of its images in its own core's cache.
    const int64_t N = vals_.at(cut_).shape[0];
    const size_t in_image = inputs[0].bytes / size_t(N);
    const auto* x = static_cast<const uint8_t*>(inputs[0].data);
    if (profiling_)
      for (auto& l : lanes_) l->reset_timings();
    const int T = int(std::min<int64_t>(int64_t(lanes_.size()), N));
    kernels::meet_split_parallel(N, T, [&](int t, kernels::MeetSplit& split) {
      split.run(t, [&](int64_t n) {
        lanes_[size_t(t)]->run_image(x + size_t(n) * in_image, cut_dst_ + size_t(n) * cut_image_bytes_);
      });
    });
  } else {
    for (size_t i = 0; i < input_names_.size(); ++i) copy_input(i, inputs[i].data);
  }
  run_steps();
  // Lane 0's time per prefix node over its images (the lanes run theirs at the same time), first.
  if (profiling_ && !lanes_.empty())
    timings_.insert(timings_.begin(), lanes_[0]->timings_.begin(), lanes_[0]->timings_.end());
  outputs.resize(output_names_.size());
  for (size_t i = 0; i < output_names_.size(); ++i) {
    const std::string& name = output_names_[i];
    if (auto c = constant_outputs_.find(name); c != constant_outputs_.end()) { outputs[i] = c->second; continue; }
    const Val& v = vals_.at(name);
    Tensor t(v.dtype, v.shape);
    if (v.is_byte()) copy_strided_u8(v.shape, v.bytes(), v.strides(), t.data<uint8_t>(), v.rowmajor());
    else copy_strided_f32(v.shape, v.ptr, v.strides(), t.data<float>(), v.rowmajor());
    outputs[i] = std::move(t);
  }
}

// "native-unfused" is the same backend without the fused-block capability: the pipeline does not
// fuse inverted-residual blocks for it, so it runs the unfused graph (what --no-fuse does), for
// side-by-side benchmarks.
class NativeBackend : public Backend {
 public:
  explicit NativeBackend(std::string name = "native", bool fused = true) : name_(std::move(name)), fused_(fused) {}
  std::string name() const override { return name_; }
  BackendCapabilities capabilities() const override { return {fused_, true, fused_, true}; }
  std::unique_ptr<Executable> compile(const Graph& g, const BackendOptions& o) override {
    // At batch > 1 the planner may run the first layers image by image (runtime/native/image_major.h).
    // The tiling settings are resolved once, for every part.
    BackendOptions opts = o;
    if (!opts.tiling) opts.tiling = resolve_pointwise_tiling(o);
    std::string why = "off (--no-image-major)";
    std::optional<native::ImageMajorSplit> split;
    if (o.image_major) split = native::split_image_major(g, opts.tiling->l2_bytes, &why);
    if (!split) {
      auto e = std::make_unique<NativeExecutable>(g, opts);
      e->set_image_major_why(why);
      return e;
    }
    auto e = std::make_unique<NativeExecutable>(split->rest, opts);
    BackendOptions lane = opts;
    lane.threads = 1;
    std::vector<std::unique_ptr<NativeExecutable>> lanes;  // one per thread of the rest
    for (int t = 0; t < e->threads(); ++t) lanes.push_back(std::make_unique<NativeExecutable>(split->prefix, lane));
    // Each part checked its own plan against the budget; the lanes and the rest together must fit too.
    int64_t total = e->planned_bytes();
    for (auto& l : lanes) total = add_bytes(total, l->planned_bytes());
    o.memory_budget.check("the native backend's plan with its image-major lanes", total,
                          cat(lanes.size(), " lanes of ", human_bytes(lanes[0]->planned_bytes()), ", the rest ",
                              human_bytes(e->planned_bytes()), " (--no-image-major runs without the lanes)"));
    e->set_image_major(std::move(lanes), split->cut, split->plan.why);
    return e;
  }
  std::vector<std::pair<std::string, std::string>> op_implementations() const override {
    auto ops = native::native_ops().entries();
    if (!fused_)  // the unfused graph never holds the fused op
      ops.erase(std::remove_if(ops.begin(), ops.end(),
                               [](auto& e) {
                                 return e.first == "locus.FusedInvertedResidual" || e.first == "locus.FusedSEBlock" ||
                                        e.first == "locus.FusedQLinearInvertedResidual";
                               }),
                ops.end());
    return ops;
  }

 private:
  std::string name_;
  bool fused_;
};

}  // namespace

std::unique_ptr<Backend> make_native_backend() { return std::make_unique<NativeBackend>(); }
std::unique_ptr<Backend> make_native_unfused_backend() { return std::make_unique<NativeBackend>("native-unfused", false); }

}  // namespace locus
