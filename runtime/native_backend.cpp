// The native CPU backend. compile() does everything that depends only on shapes and weights: it
// decides each value's layout (4-D activations NHWC, everything else row-major), plans the arena with
// the memory planner, packs weights, sizes the shared workspace and builds one step per node with
// its pointers bound. run() converts the inputs at the boundary (NCHW -> NHWC), runs the steps and
// converts the outputs back.
#include <omp.h>

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
#include "kernels/native/activation.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/inverted_residual.h"
#include "kernels/native/elementwise.h"
#include "kernels/native/gemm.h"
#include "kernels/native/pool2d_nhwc.h"
#include "runtime/backend.h"
#include "runtime/memory_planner.h"
#include "runtime/omp_threads.h"

namespace locus {
namespace {

using namespace kernels;

enum class Layout { RowMajor, NHWC };

std::vector<int64_t> rowmajor_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

// A value as the native backend stores it: 4-D values NHWC, everything else row-major. Its strides
// are computed once, when the value is created at compile time, so run-time steps only read them.
class Val {
 public:
  Val() = default;
  Val(Shape s, float* p) : shape(std::move(s)), ptr(p) {
    layout = shape.size() == 4 ? Layout::NHWC : Layout::RowMajor;
    rowmajor_ = rowmajor_strides(shape);
    if (layout == Layout::NHWC) strides_ = {shape[1] * shape[2] * shape[3], 1, shape[3] * shape[1], shape[1]};
    else strides_ = rowmajor_;
  }
  Shape shape;
  Layout layout = Layout::RowMajor;
  float* ptr = nullptr;
  int64_t numel() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  // Element stride of each logical dimension in this value's physical layout.
  const std::vector<int64_t>& strides() const { return strides_; }
  // Strides of the same shape stored row-major (the logical, ONNX order).
  const std::vector<int64_t>& rowmajor() const { return rowmajor_; }
  // NHWC and row-major coincide when C == 1 or H * W == 1.
  bool is_rowmajor() const {
    return layout == Layout::RowMajor || shape[1] == 1 || shape[2] * shape[3] == 1;
  }

 private:
  std::vector<int64_t> strides_, rowmajor_;
};

// Strides of `v` broadcast to `out` (numpy rules: align right, size-1 dims get stride 0).
std::vector<int64_t> broadcast_strides(const Val& v, const Shape& out) {
  const auto& st = v.strides();
  std::vector<int64_t> r(out.size(), 0);
  size_t off = out.size() - v.shape.size();
  for (size_t i = 0; i < v.shape.size(); ++i) r[off + i] = v.shape[i] == 1 ? 0 : st[i];
  return r;
}

using Step = std::function<void()>;

// Cache tiling of pointwise convolutions (docs/method.md section 8) is ON by default: every G = 1,
// unpadded 1x1 conv (strided ones through a row gather) runs pointwise_scan_f32 on a plan made at
// compile time, with the core's L2 as the planner's buffer (settings: resolve_pointwise_tiling in
// runtime/backend.h: option > LOCUS_L2 / LOCUS_TILE_ORDER > the OS). When the L2 size is unknown,
// or l2_bytes is 0, they run as one gemm_f32 each, and describe() says so.

struct StepInfo {
  std::string node, op;
  Step fn;
};

class NativeExecutable : public Executable {
 public:
  NativeExecutable(const Graph& g, const BackendOptions& o);
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override;
  int64_t activation_bytes() const override { return arena_bytes_; }
  void set_profiling(bool on) override { profiling_ = on; }
  std::vector<NodeTiming> timings() const override { return timings_; }
  std::string describe() const override;
  std::optional<PointwiseTilingSettings> pointwise_tiling() const override { return tiling_; }
  std::vector<PointwisePlanRow> pointwise_plans() const override { return plans_; }
  std::vector<FusedBlockPlanRow> fused_block_plans() const override { return fused_plans_; }

 private:
  // --- compile helpers ---
  Val& val(const std::string& name);     // a runtime value or a materialised constant
  float* scratch(int64_t floats);        // step-owned buffer, allocated now
  Step build(const Node& n);
  Step conv(const Node& n);
  Step fused_block(const Node& n);
  Step binary(const Node& n, BinaryOp op);
  Step activation(const Node& n);
  Step batchnorm(const Node& n);
  Step pool(const Node& n, bool is_max);
  Step global_avgpool(const Node& n);
  Step logical_copy(const Val& x, const Val& y);
  Step concat(const Node& n);
  Step gemm(const Node& n);
  Step matmul(const Node& n);
  Step softmax(const Node& n);
  Step gather(const Node& n);
  // Gives a row-major view of x: x itself, or a scratch copy refreshed by the returned step.
  const float* rowmajor_in(const Val& x, Step& pre);
  // A row-major place to write y: y itself, or scratch whose contents `post` moves into y.
  float* rowmajor_out(const Val& y, Step& post);

  const Graph& g_;  // valid during compilation only (the constructor)
  BackendOptions opts_;
  std::vector<std::string> input_names_, output_names_;
  std::map<std::string, Tensor> constant_outputs_;
  std::map<std::string, Val> vals_;
  std::deque<std::vector<float>> owned_;  // materialised constants and step scratch
  std::vector<float> arena_;
  std::vector<float> workspace_;
  int64_t workspace_floats_ = 0;
  int64_t arena_bytes_ = 0;
  std::vector<StepInfo> steps_;
  bool profiling_ = false;
  std::vector<NodeTiming> timings_;
  PointwiseTilingSettings tiling_;        // resolved once, before any Conv is packed
  std::vector<PointwisePlanRow> plans_;   // one per 1x1 conv, in graph order
  std::vector<FusedBlockPlanRow> fused_plans_;  // one per FusedInvertedResidual, in graph order
};

NativeExecutable::NativeExecutable(const Graph& g, const BackendOptions& o) : g_(g), opts_(o) {
  require_float_graph(g, "native", [](const std::string& op) {
    return op == "locus.FusedInvertedResidual" || (op.find('.') == std::string::npos && is_supported_op(op));
  });
  tiling_ = resolve_pointwise_tiling(o);
  if (std::string bad = invalid_isa_env(); !bad.empty())
    fail("LOCUS_ISA='", bad, "' names no ISA: use generic, avx2 or avx512 (or unset it for the best this CPU has)");

  // Lifetimes: inputs live from step 0, node outputs from their step; all until their last reader;
  // graph outputs until the end.
  const int end = int(g.nodes.size());
  std::map<std::string, BufferRequest> req;
  for (auto& in : g.inputs) req[in] = {in, 0, 0, 0};
  for (int s = 0; s < end; ++s) {
    for (auto& in : g.nodes[size_t(s)].inputs)
      if (req.count(in)) req[in].last = s;
    for (auto& out : g.nodes[size_t(s)].outputs)
      if (!out.empty()) req[out] = {out, 0, s, s};
  }
  for (auto& out : g.outputs)
    if (req.count(out)) req[out].last = end;
  std::vector<BufferRequest> list;
  for (auto& [name, r] : req) {
    ValueInfo vi = g.info(name);
    Val v(vi.shape, nullptr);
    r.bytes = v.numel() * int64_t(sizeof(float));
    vals_[name] = v;
    list.push_back(r);
  }
  MemoryPlan plan = plan_memory(list);
  arena_bytes_ = plan.arena_bytes;
  int64_t weight_bytes = 0;
  for (auto& [name, t] : g.constants) weight_bytes = add_bytes(weight_bytes, int64_t(t.bytes.size()));
  // packed weights are at most a padded copy of the constants; checked again with the real figures
  // once the steps are built
  o.memory_budget.check("the native backend's plan", add_bytes(arena_bytes_, weight_bytes),
                        cat("activation arena ", human_bytes(arena_bytes_), ", weights ", human_bytes(weight_bytes)));
  arena_.assign(size_t(plan.arena_bytes / 4 + 16), 0.f);
  for (size_t i = 0; i < list.size(); ++i) vals_[list[i].name].ptr = arena_.data() + plan.offsets[i] / 4;

  for (auto& n : g.nodes) steps_.push_back({n.name, n.op, build(n)});
  int64_t owned_bytes = 0;
  for (auto& b : owned_) owned_bytes = add_bytes(owned_bytes, int64_t(b.size() * sizeof(float)));
  const int64_t workspace_bytes = mul_bytes(workspace_floats_ + 16, int64_t(sizeof(float)));
  o.memory_budget.check("the native backend's plan", add_bytes(add_bytes(arena_bytes_, owned_bytes), workspace_bytes),
                        cat("activation arena ", human_bytes(arena_bytes_), ", packed weights and step buffers ",
                            human_bytes(owned_bytes), ", workspace ", human_bytes(workspace_bytes)));
  workspace_.assign(size_t(workspace_floats_ + 16), 0.f);
  input_names_ = g.inputs;
  output_names_ = g.outputs;
  for (auto& o : g.outputs)
    if (const Tensor* c = g.constant(o)) constant_outputs_[o] = *c;
}

Val& NativeExecutable::val(const std::string& name) {
  auto it = vals_.find(name);
  if (it != vals_.end()) return it->second;
  const Tensor* c = g_.constant(name);
  LOCUS_CHECK(c, "native backend: value '", name, "' is unknown");
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

Activation activation_of(const Node& n) {
  std::string a = n.s("locus.activation", "");
  if (a == "relu") return {ActKind::Relu};
  if (a == "clip")
    return {ActKind::Clip, n.f("locus.activation_min", -std::numeric_limits<float>::infinity()),
            n.f("locus.activation_max", std::numeric_limits<float>::infinity())};
  LOCUS_CHECK(a.empty(), "node '", n.name, "': unknown fused activation '", a, "'");
  return {};
}

Step NativeExecutable::build(const Node& n) {
  const std::string& op = n.op;
  if (op == "Conv") return conv(n);
  if (op == "FusedInvertedResidual" && n.domain == "locus") return fused_block(n);
  if (op == "Add") return binary(n, BinaryOp::Add);
  if (op == "Sub") return binary(n, BinaryOp::Sub);
  if (op == "Mul") return binary(n, BinaryOp::Mul);
  if (op == "Div") return binary(n, BinaryOp::Div);
  if (op == "Relu" || op == "Clip") return activation(n);
  if (op == "BatchNormalization") return batchnorm(n);
  if (op == "MaxPool") return pool(n, true);
  if (op == "AveragePool") return pool(n, false);
  if (op == "GlobalAveragePool") return global_avgpool(n);
  if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" || op == "Identity")
    return logical_copy(val(n.input(0)), val(n.outputs[0]));
  if (op == "Concat") return concat(n);
  if (op == "Gemm") return gemm(n);
  if (op == "MatMul") return matmul(n);
  if (op == "Softmax") return softmax(n);
  if (op == "Gather") return gather(n);
  throw Unsupported(cat("native backend: no kernel for ", op, " (node '", n.name, "')"));
}

Step NativeExecutable::conv(const Node& n) {
  const Val& x = val(n.input(0));
  const Val& y = val(n.outputs[0]);
  const Tensor* w = g_.constant(n.input(1));
  if (!w) throw Unsupported(cat("native backend: Conv '", n.name, "' with non-constant weights"));
  const Tensor* b = n.input(2).empty() ? nullptr : g_.constant(n.input(2));
  if (!n.input(2).empty() && !b) throw Unsupported(cat("native backend: Conv '", n.name, "' with non-constant bias"));
  auto st = n.ints("strides", {1, 1}), pads = n.ints("pads", {0, 0, 0, 0}), dil = n.ints("dilations", {1, 1});
  Conv2dShape s;
  s.N = x.shape[0]; s.C = x.shape[1]; s.H = x.shape[2]; s.W = x.shape[3];
  s.OC = y.shape[1]; s.OH = y.shape[2]; s.OW = y.shape[3];
  s.KH = w->shape[2]; s.KW = w->shape[3];
  s.SH = st[0]; s.SW = st[1];
  s.PT = pads[0]; s.PL = pads[1]; s.PB = pads[2]; s.PR = pads[3];
  s.DH = dil[0]; s.DW = dil[1];
  s.G = n.i("group", 1);
  auto packed = std::make_shared<PackedConv2d>(pack_conv2d(s, w->data<float>(), b ? b->data<float>() : nullptr,
                                                           activation_of(n), tiling_.buffer_entries, tiling_.order));
  if (s.KH == 1 && s.KW == 1) {
    PointwisePlanRow r;
    r.node = n.name;
    r.M = s.N * s.OH * s.OW;
    r.K = s.C / s.G;
    r.N = s.OC / s.G;
    r.stride_h = s.SH;
    r.stride_w = s.SW;
    r.groups = s.G;
    if (packed->scan) r.plan = packed->scan->plan;
    else if (!tiling_.enabled()) r.why_not = "off";
    else if (s.G > 1) r.why_not = "grouped";
    else if (s.PT || s.PL || s.PB || s.PR) r.why_not = "padded";
    else r.why_not = "no-fit";  // the planner found no tile for the buffer
    plans_.push_back(std::move(r));
  }
  int threads = opts_.threads > 0 ? opts_.threads : omp_get_max_threads();
  workspace_floats_ = std::max(workspace_floats_, conv2d_scratch_floats(*packed, threads));
  const float* in = x.ptr;
  float* out = y.ptr;
  return [this, packed, in, out] { conv2d_nhwc(*packed, in, out, workspace_.data()); };
}

// Stage activation of a FusedInvertedResidual: attrs <stage>_activation ("none" | "relu" | "clip")
// and <stage>_activation_min / _max.
Activation stage_activation(const Node& n, const std::string& stage) {
  const std::string a = n.s(stage + "_activation", "none");
  if (a == "relu") return {ActKind::Relu};
  if (a == "clip")
    return {ActKind::Clip, n.f(stage + "_activation_min", -std::numeric_limits<float>::infinity()),
            n.f(stage + "_activation_max", std::numeric_limits<float>::infinity())};
  LOCUS_CHECK(a == "none", "node '", n.name, "': unknown ", stage, " activation '", a, "'");
  return {};
}

// FusedInvertedResidual (graph/ops.h): expand -> depthwise [-> depthwise] -> project [+ X] as one kernel
// (kernels/native/inverted_residual.h), planned with the same L2 buffer as the pointwise tiling.
Step NativeExecutable::fused_block(const Node& n) {
  const Val& x = val(n.input(0));
  const Val& y = val(n.outputs[0]);
  auto weight = [&](size_t i) -> const float* {
    if (n.input(i).empty()) return nullptr;
    const Tensor* t = g_.constant(n.input(i));
    if (!t) throw Unsupported(cat("native backend: FusedInvertedResidual '", n.name, "' input ", i, " is not constant"));
    return t->data<float>();
  };
  const Tensor* wd = n.input(3).empty() ? nullptr : g_.constant(n.input(3));
  if (!wd) throw Unsupported(cat("native backend: FusedInvertedResidual '", n.name, "' without constant depthwise weights"));
  auto st = n.ints("dw_strides", {1, 1}), pads = n.ints("dw_pads", {0, 0, 0, 0});
  InvertedResidualShape s;
  s.N = x.shape[0], s.C = x.shape[1], s.H = x.shape[2], s.W = x.shape[3];
  s.E = wd->shape[0], s.OC = y.shape[1];
  s.KH = wd->shape[2], s.KW = wd->shape[3], s.SH = st[0], s.SW = st[1];
  s.PT = pads[0], s.PL = pads[1], s.PB = pads[2], s.PR = pads[3];
  s.expand = !n.input(1).empty();
  s.project = !n.input(5).empty();
  s.residual = n.i("residual", 0) != 0;
  const Tensor* wd2 = n.input(7).empty() ? nullptr : g_.constant(n.input(7));
  if (!n.input(7).empty() && !wd2)
    throw Unsupported(cat("native backend: FusedInvertedResidual '", n.name, "' input 7 is not constant"));
  if (wd2) {
    auto st2 = n.ints("dw2_strides", {1, 1}), pads2 = n.ints("dw2_pads", {0, 0, 0, 0});
    s.dw2 = true;
    s.KH2 = wd2->shape[2], s.KW2 = wd2->shape[3], s.SH2 = st2[0], s.SW2 = st2[1];
    s.PT2 = pads2[0], s.PL2 = pads2[1], s.PB2 = pads2[2], s.PR2 = pads2[3];
  }
  LOCUS_CHECK(s.OH() == y.shape[2] && s.OW() == y.shape[3], "native backend: FusedInvertedResidual '", n.name,
              "': output shape does not match the depthwise geometry");
  InvertedResidualWeights w;
  w.expand = weight(1), w.expand_bias = weight(2), w.expand_act = stage_activation(n, "expand");
  w.dw = wd->data<float>(), w.dw_bias = weight(4), w.dw_act = stage_activation(n, "dw");
  w.project = weight(5), w.project_bias = weight(6), w.project_act = stage_activation(n, "project");
  if (wd2) w.dw2 = wd2->data<float>(), w.dw2_bias = weight(8), w.dw2_act = stage_activation(n, "dw2");
  const int64_t S = tiling_.enabled() ? tiling_.buffer_entries : l2_buffer_entries(kFusedFallbackL2Bytes);
  // Threads split the walk over the batch's bands, or the chunks when there are too few bands.
  const int threads = opts_.threads > 0 ? opts_.threads : omp_get_max_threads();
  auto packed = std::make_shared<PackedInvertedResidual>(pack_inverted_residual(s, w, S, threads));
  fused_plans_.push_back({n.name, packed->plan});
  workspace_floats_ = std::max(workspace_floats_, inverted_residual_scratch_floats(*packed, threads));
  return [this, packed, in = x.ptr, out = y.ptr] { inverted_residual_nhwc(*packed, in, out, workspace_.data()); };
}

Step NativeExecutable::binary(const Node& n, BinaryOp op) {
  const Val& a = val(n.input(0));
  const Val& b = val(n.input(1));
  const Val& y = val(n.outputs[0]);
  if (a.shape == y.shape && b.shape == y.shape && a.layout == y.layout && b.layout == y.layout) {
    int64_t cnt = y.numel();
    return [op, cnt, pa = a.ptr, pb = b.ptr, py = y.ptr] { binary_same_f32(op, cnt, pa, pb, py); };
  }
  StridedF32 sa{a.ptr, broadcast_strides(a, y.shape)}, sb{b.ptr, broadcast_strides(b, y.shape)};
  return [op, sa, sb, shape = y.shape, py = y.ptr, ys = y.strides()] { binary_f32(op, shape, sa, sb, py, ys); };
}

Step NativeExecutable::activation(const Node& n) {
  Activation act{ActKind::Relu};
  if (n.op == "Clip") {
    act.kind = ActKind::Clip;
    act.lo = -std::numeric_limits<float>::infinity();
    act.hi = std::numeric_limits<float>::infinity();
    for (int k : {1, 2}) {
      if (n.input(size_t(k)).empty()) continue;
      const Tensor* t = g_.constant(n.input(size_t(k)));
      if (!t) throw Unsupported(cat("native backend: Clip '", n.name, "' with non-constant bounds"));
      (k == 1 ? act.lo : act.hi) = float(t->get(0));
    }
  }
  const Val& x = val(n.input(0));
  const Val& y = val(n.outputs[0]);
  int64_t cnt = y.numel();
  return [act, cnt, px = x.ptr, py = y.ptr] { activation_f32(act, px, py, cnt); };
}

Step NativeExecutable::batchnorm(const Node& n) {
  const Val& x = val(n.input(0));
  const Val& y = val(n.outputs[0]);
  const Tensor *scale = g_.constant(n.input(1)), *beta = g_.constant(n.input(2)),
               *mean = g_.constant(n.input(3)), *var = g_.constant(n.input(4));
  if (!scale || !beta || !mean || !var)
    throw Unsupported(cat("native backend: BatchNormalization '", n.name, "' with non-constant parameters"));
  int64_t C = x.shape[1];
  float* sc = scratch(C);
  float* sh = scratch(C);
  double eps = n.f("epsilon", 1e-5f);
  for (int64_t c = 0; c < C; ++c) {
    double s = scale->get(c) / std::sqrt(var->get(c) + eps);
    sc[c] = float(s);
    sh[c] = float(beta->get(c) - mean->get(c) * s);
  }
  if (x.layout == Layout::NHWC || x.shape.size() == 2) {
    int64_t rows = x.numel() / C;
    return [rows, C, sc, sh, px = x.ptr, py = y.ptr] { channel_affine_f32(rows, C, px, sc, sh, py); };
  }
  // general rank: y = x * scale[c] + shift[c] with the channel on dimension 1
  std::vector<int64_t> cs(x.shape.size(), 0);
  cs[1] = 1;
  StridedF32 vx{x.ptr, x.strides()}, vs{sc, cs}, vh{sh, cs}, vy{y.ptr, y.strides()};
  return [x, y, vx, vs, vh, vy] {
    binary_f32(BinaryOp::Mul, x.shape, vx, vs, y.ptr, y.strides());
    binary_f32(BinaryOp::Add, x.shape, vy, vh, y.ptr, y.strides());
  };
}

Step NativeExecutable::pool(const Node& n, bool is_max) {
  const Val& x = val(n.input(0));
  const Val& y = val(n.outputs[0]);
  auto k = n.ints("kernel_shape"), st = n.ints("strides", {1, 1}), pads = n.ints("pads", {0, 0, 0, 0}),
       dil = n.ints("dilations", {1, 1});
  Pool2dShape s;
  s.N = x.shape[0]; s.C = x.shape[1]; s.H = x.shape[2]; s.W = x.shape[3];
  s.OH = y.shape[2]; s.OW = y.shape[3];
  s.KH = k[0]; s.KW = k[1]; s.SH = st[0]; s.SW = st[1];
  s.PT = pads[0]; s.PL = pads[1]; s.PB = pads[2]; s.PR = pads[3];
  s.DH = dil[0]; s.DW = dil[1];
  s.count_include_pad = n.i("count_include_pad", 0) != 0;
  if (is_max) return [s, px = x.ptr, py = y.ptr] { maxpool2d_nhwc(s, px, py); };
  return [s, px = x.ptr, py = y.ptr] { avgpool2d_nhwc(s, px, py); };
}

Step NativeExecutable::global_avgpool(const Node& n) {
  const Val& x = val(n.input(0));
  const Val& y = val(n.outputs[0]);
  int64_t N = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
  return [N, C, HW, px = x.ptr, py = y.ptr] { global_avgpool_nhwc(N, HW, C, px, py); };
}

// y receives x's elements in logical row-major order (Reshape, Flatten, Squeeze, Unsqueeze, Identity).
Step NativeExecutable::logical_copy(const Val& x, const Val& y) {
  Step pre, post;
  const float* src = rowmajor_in(x, pre);
  float* dst = rowmajor_out(y, post);
  int64_t cnt = y.numel();
  return [pre, post, src, dst, cnt] {
    if (pre) pre();
    if (dst != src) std::memcpy(dst, src, size_t(cnt) * sizeof(float));
    if (post) post();
  };
}

Step NativeExecutable::concat(const Node& n) {
  const Val& y = val(n.outputs[0]);
  int64_t axis = n.i("axis", 0);
  auto ys = y.strides();
  std::vector<Step> parts;
  int64_t offset = 0;
  for (auto& in : n.inputs) {
    if (in.empty()) continue;
    const Val& x = val(in);
    float* dst = y.ptr + offset * ys[size_t(axis)];
    parts.push_back([x, dst, ys] { copy_strided_f32(x.shape, x.ptr, x.strides(), dst, ys); });
    offset += x.shape[size_t(axis)];
  }
  return [parts] {
    for (auto& p : parts) p();
  };
}

Step NativeExecutable::gemm(const Node& n) {
  const Val& a = val(n.input(0));
  const Val& y = val(n.outputs[0]);
  bool ta = n.i("transA", 0) != 0, tb = n.i("transB", 0) != 0;
  float alpha = n.f("alpha", 1.f), beta = n.f("beta", 1.f);
  int64_t M = y.shape[0], N = y.shape[1], K = ta ? a.shape[0] : a.shape[1];
  // A (row-major 2-D); transposed into scratch when transA
  const float* pa = a.ptr;
  Step pre_a;
  if (ta) {
    float* t = scratch(M * K);
    pre_a = [a, t, M, K] { copy_strided_f32({M, K}, a.ptr, {1, M}, t, {K, 1}); };
    pa = t;
  }
  // B: packed once if constant
  auto packed = std::make_shared<PackedB>();
  Step pre_b;
  if (const Tensor* bc = g_.constant(n.input(1))) {
    *packed = pack_b(K, N, bc->data<float>(), tb ? K : N, tb, alpha);
  } else {
    const Val& b = val(n.input(1));
    pre_b = [packed, b, K, N, tb, alpha] { *packed = pack_b(K, N, b.ptr, tb ? K : N, tb, alpha); };
  }
  // C: a per-column bias when it is constant and of length N, otherwise a broadcast add
  const float* bias = nullptr;
  Step post_c;
  if (!n.input(2).empty() && beta != 0.f) {
    const Tensor* cc = g_.constant(n.input(2));
    if (cc && cc->numel() == N && (cc->shape.size() == 1 || (cc->shape.size() == 2 && cc->shape[0] == 1))) {
      float* bb = scratch(N);
      for (int64_t j = 0; j < N; ++j) bb[j] = beta * float(cc->get(j));
      bias = bb;
    } else {
      const Val& c = val(n.input(2));
      float* scaled = scratch(c.numel());
      StridedF32 sc{scaled, broadcast_strides(Val(c.shape, scaled), y.shape)};
      int64_t cn = c.numel();
      StridedF32 sy{y.ptr, y.strides()};
      post_c = [c, scaled, cn, beta, sc, sy, y] {
        for (int64_t i = 0; i < cn; ++i) scaled[i] = beta * c.ptr[i];
        binary_f32(BinaryOp::Add, y.shape, sy, sc, y.ptr, y.strides());
      };
    }
  }
  return [pre_a, pre_b, post_c, packed, M, pa, K, bias, py = y.ptr, N] {
    if (pre_a) pre_a();
    if (pre_b) pre_b();
    gemm_f32(M, pa, K, *packed, py, N, bias, {});
    if (post_c) post_c();
  };
}

Step NativeExecutable::matmul(const Node& n) {
  const Val& a = val(n.input(0));
  const Val& b = val(n.input(1));
  const Val& y = val(n.outputs[0]);
  Step pre_a, pre_b, post;
  const float* pa = rowmajor_in(a, pre_a);
  const float* pb = rowmajor_in(b, pre_b);
  float* py = rowmajor_out(y, post);
  Shape as = a.shape, bs = b.shape;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
  Shape batch = broadcast_shapes(abatch, bbatch, n.name);
  int64_t nb = 1;
  for (auto d : batch) nb *= d;
  // offsets of each batch entry into A and B (broadcast)
  auto offsets = [&](const Shape& sub, int64_t mat) {
    std::vector<int64_t> offs(static_cast<size_t>(nb), 0);
    Shape padded(batch.size() - sub.size(), 1);
    padded.insert(padded.end(), sub.begin(), sub.end());
    auto st = rowmajor_strides(padded);
    for (int64_t i = 0; i < nb; ++i) {
      int64_t rem = i, off = 0;
      for (size_t d = batch.size(); d-- > 0;) {
        int64_t idx = rem % batch[d];
        rem /= batch[d];
        if (padded[d] != 1) off += idx * st[d];
      }
      offs[size_t(i)] = off * mat;
    }
    return offs;
  };
  auto offa = offsets(abatch, M * K), offb = offsets(bbatch, K * N);
  const Tensor* bc = g_.constant(n.input(1));
  if (bc && bbatch.empty()) {
    // one packed weight, all batch rows of A in one GEMM (A's batches are contiguous when B is 2-D)
    auto packed = std::make_shared<PackedB>(pack_b(K, N, bc->data<float>(), N, false));
    int64_t rows = nb * M;
    bool contiguous = true;
    for (int64_t i = 0; i < nb; ++i) contiguous &= offa[size_t(i)] == i * M * K;
    if (contiguous)
      return [pre_a, post, packed, rows, pa, K, py, N] {
        if (pre_a) pre_a();
        gemm_f32(rows, pa, K, *packed, py, N, nullptr, {});
        if (post) post();
      };
  }
  auto packed = std::make_shared<PackedB>();
  return [=] {
    if (pre_a) pre_a();
    if (pre_b) pre_b();
    for (int64_t i = 0; i < nb; ++i) {
      *packed = pack_b(K, N, pb + offb[size_t(i)], N, false);
      gemm_f32(M, pa + offa[size_t(i)], K, *packed, py + i * M * N, N, nullptr, {});
    }
    if (post) post();
  };
}

Step NativeExecutable::softmax(const Node& n) {
  const Val& x = val(n.input(0));
  const Val& y = val(n.outputs[0]);
  Step pre, post;
  const float* src = rowmajor_in(x, pre);
  float* dst = rowmajor_out(y, post);
  int64_t axis = n.i("axis", int64_t(x.shape.size()) - 1);
  bool legacy = n.i("legacy", 0) != 0;
  int64_t total = x.numel();
  if (legacy || axis == int64_t(x.shape.size()) - 1) {
    int64_t cols = 1;
    for (size_t d = size_t(axis); d < x.shape.size(); ++d) cols *= x.shape[d];
    int64_t rows = cols ? total / cols : 0;
    if (!legacy) { cols = x.shape.back(); rows = cols ? total / cols : 0; }
    return [pre, post, rows, cols, src, dst] {
      if (pre) pre();
      softmax_rows_f32(rows, cols, src, dst);
      if (post) post();
    };
  }
  // move `axis` last, softmax the rows, move it back
  Shape perm_shape;
  std::vector<int64_t> src_st, rm = rowmajor_strides(x.shape);
  for (size_t d = 0; d < x.shape.size(); ++d)
    if (int64_t(d) != axis) { perm_shape.push_back(x.shape[d]); src_st.push_back(rm[d]); }
  perm_shape.push_back(x.shape[size_t(axis)]);
  src_st.push_back(rm[size_t(axis)]);
  float* t1 = scratch(total);
  float* t2 = scratch(total);
  auto perm_rm = rowmajor_strides(perm_shape);
  int64_t cols = x.shape[size_t(axis)], rows = cols ? total / cols : 0;
  return [=] {
    if (pre) pre();
    copy_strided_f32(perm_shape, src, src_st, t1, perm_rm);
    softmax_rows_f32(rows, cols, t1, t2);
    copy_strided_f32(perm_shape, t2, perm_rm, dst, src_st);
    if (post) post();
  };
}

Step NativeExecutable::gather(const Node& n) {
  const Val& x = val(n.input(0));
  const Val& y = val(n.outputs[0]);
  const Tensor* idx = g_.constant(n.input(1));
  if (!idx) throw Unsupported(cat("native backend: Gather '", n.name, "' with runtime indices"));
  int64_t axis = n.i("axis", 0);
  int64_t outer = 1, inner = 1, dim = x.shape[size_t(axis)];
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
  std::vector<int64_t> ids = idx->to_i64();
  for (auto& i : ids) {
    LOCUS_CHECK(i >= -dim && i < dim, "node '", n.name, "' (Gather): index ", i, " out of range for axis of size ", dim);
    if (i < 0) i += dim;
  }
  Step pre, post;
  const float* src = rowmajor_in(x, pre);
  float* dst = rowmajor_out(y, post);
  return [=] {
    if (pre) pre();
    float* o = dst;
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t i : ids) {
        std::memcpy(o, src + (a * dim + i) * inner, size_t(inner) * sizeof(float));
        o += inner;
      }
    if (post) post();
  };
}

std::string NativeExecutable::describe() const {
  size_t planned = 0;
  for (auto& r : plans_) planned += r.plan.has_value();
  std::string d = tiling_.describe();
  if (tiling_.enabled()) d += cat("; ", planned, " of ", plans_.size(), " 1x1 convs planned");
  if (!fused_plans_.empty()) d += cat("; ", fused_plans_.size(), " inverted-residual blocks fused");
  return d;
}

void NativeExecutable::run(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) {
  OmpThreadsScope omp_threads(opts_.threads);  // the count the scratch was sized for
  for (size_t i = 0; i < input_names_.size(); ++i) {
    const Val& v = vals_.at(input_names_[i]);
    copy_strided_f32(v.shape, inputs[i]->data<float>(), v.rowmajor(), v.ptr, v.strides());
  }
  if (profiling_) {
    timings_.clear();
    for (auto& s : steps_) {
      auto t0 = std::chrono::steady_clock::now();
      s.fn();
      auto t1 = std::chrono::steady_clock::now();
      timings_.push_back({s.node, s.op, std::chrono::duration<double, std::milli>(t1 - t0).count()});
    }
  } else {
    for (auto& s : steps_) s.fn();
  }
  outputs.resize(output_names_.size());
  for (size_t i = 0; i < output_names_.size(); ++i) {
    const std::string& name = output_names_[i];
    if (auto c = constant_outputs_.find(name); c != constant_outputs_.end()) { outputs[i] = c->second; continue; }
    const Val& v = vals_.at(name);
    Tensor t(DType::F32, v.shape);
    copy_strided_f32(v.shape, v.ptr, v.strides(), t.data<float>(), v.rowmajor());
    outputs[i] = std::move(t);
  }
}

// "native-unfused" is the same backend under another name: sessions fuse inverted-residual blocks
// only for "native" (runtime/session.cpp), so it runs the unfused graph (what --no-fuse does), for
// side-by-side benchmarks.
class NativeBackend : public Backend {
 public:
  explicit NativeBackend(std::string name = "native") : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  std::unique_ptr<Executable> compile(const Graph& g, const BackendOptions& o) override {
    return std::make_unique<NativeExecutable>(g, o);
  }

 private:
  std::string name_;
};

}  // namespace

std::unique_ptr<Backend> make_native_backend() { return std::make_unique<NativeBackend>(); }
std::unique_ptr<Backend> make_native_unfused_backend() { return std::make_unique<NativeBackend>("native-unfused"); }

}  // namespace locus
