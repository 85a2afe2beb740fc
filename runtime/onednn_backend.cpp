// The oneDNN backends: the baseline locus is judged against. Every layer is a oneDNN primitive, run
// the way a framework built on oneDNN runs it:
//   Conv               convolution_forward (direct), bias and the fused Relu/Clip as eltwise post-ops;
//                      src/weights/dst in the formats oneDNN picks (format_tag::any), weights
//                      reordered once at compile time
//   Relu / Clip        eltwise_forward (eltwise_relu / eltwise_clip)
//   BatchNormalization batch_normalization_forward, inference with global statistics
//   MaxPool / AveragePool / GlobalAveragePool   pooling_v2_forward (global: one window over H x W)
//   Add / Sub / Mul / Div   binary (the second operand may broadcast)
//   Gemm               inner_product_forward (alpha and beta folded into the constant weights/bias);
//                      other forms (transA, runtime B or C, 2-D C) matmul, alpha and C as eltwise
//                      (linear) and binary-add post-ops
//   MatMul             matmul (equal ranks after padding with leading 1s)
//   Concat / Softmax   concat / softmax_forward
//   Reshape / Flatten / Squeeze / Unsqueeze / Identity   a reorder into plain (row-major) layout if
//                      the value is blocked, then a view of the same buffer
// A reorder is inserted only where a consumer wants a different layout than its producer wrote.
//
// "onednn-dwfused" additionally runs a 1x1 convolution followed by a depthwise 3x3 (stride 1 or 2,
// pads 1) as one primitive with oneDNN's depthwise post-op (post_ops::append_dw) when the 1x1 output
// has no other reader; where oneDNN refuses, the pair runs unfused and describe() says so. Which
// implementation oneDNN picks for a fused pair is its own choice and describe() lists it: on AVX2
// (oneDNN 2.6) jit_1x1 computes the depthwise conv inside its kernel only when the 1x1 output is
// larger than twice the L2 of all threads; smaller pairs get ref_fused_convolution, which runs the
// jit 1x1 and jit dw primitives back to back through a scratchpad buffer.
//
// NaN and infinities: oneDNN 2.6 maps NaN to a finite value where the ONNX semantics keep it
// (measured with its x64 jit on AVX-512, jit:avx512_core eltwise and brdgmm_dw convolution, layouts
// nchw, nhwc and nChw16c): eltwise_relu gives 0 for NaN (alpha 0 or -0), eltwise_clip and
// eltwise_clip_v2 give the lower bound, both as primitives and as convolution post-ops, and max
// pooling ignores a NaN tap. No eltwise algorithm both keeps NaN and clamps exactly (eltwise_relu
// with alpha != 0 keeps NaN but gives alpha * x for x < 0 and -inf for -inf), and a separate
// NaN-restoring pass would cost what the fused post-ops save. Left alone, an all-NaN image came
// out as a confident "class 904". So the behaviour is made explicit instead: when a graph input
// holds a NaN, every output computed by the primitives is NaN (outputs that are constants of the
// graph are not). That is exact for the classifiers this backend is compared on (global pooling
// and the classifier mix every position and channel, so the reference gives all-NaN logits too)
// and conservative elsewhere: an output the ONNX semantics would leave finite (one no NaN input
// reaches) is NaN here. Infinities are left to oneDNN, whose
// relu/clip treat them exactly (relu(-inf) = 0, clip(+-inf) = the bounds; one +-inf pixel in
// MobileNetV2 gives the same finite logits as the reference, tests/nan_inf_test.cpp), but a NaN
// that arises inside the network (inf - inf when a window holds infinities of both signs after a
// convolution, or overflow) is still dropped by oneDNN's relu/clip/max pooling, so there this
// backend can return finite values where the ONNX semantics give NaN. The native and reference
// backends propagate NaN exactly.
//
// compile (the constructor) creates every primitive, reorders the weights, plans one arena for all
// activation buffers and every primitive's scratchpad (scratchpad_mode::user) with the memory
// planner and binds the memory objects; run() only executes. Graph inputs are read in place.
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include "graph/ops.h"
#include "runtime/backend.h"
#include "runtime/memory_planner.h"
#include "runtime/omp_threads.h"

namespace locus {
namespace {

namespace dn = dnnl;
using md = dn::memory::desc;
using dims = dn::memory::dims;
using tag = dn::memory::format_tag;
using dt = dn::memory::data_type;
using alg = dn::algorithm;
constexpr auto kInference = dn::prop_kind::forward_inference;

// Every primitive takes its scratchpad from us: it is planned in the arena like the activations.
dn::primitive_attr scratch_attr() {
  dn::primitive_attr a;
  a.set_scratchpad_mode(dn::scratchpad_mode::user);
  return a;
}

dims dims_of(const Shape& s) {
  if (s.empty()) return {1};  // oneDNN has no rank-0 tensors: scalars are [1]
  return dims(s.begin(), s.end());
}

// Row-major (logical order) layout of `s`.
md plain_md(const Shape& s) {
  dims d = dims_of(s), st(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) st[i - 1] = st[i] * d[i];
  return md(d, dt::f32, st);
}

// A value as this backend holds it: a buffer (planned in the arena, or a graph input whose storage
// run() supplies) viewed through a memory descriptor, or a constant's own memory.
struct Val {
  int buf = -1;      // index into buffers_, or -1: `fixed` holds the data
  md desc;           // layout (may be blocked, with padding)
  dn::memory fixed;  // constants
  Shape shape;       // logical shape
};

struct BufInfo {
  int64_t bytes = 0;
  int first = 0, last = 0;  // steps during which it must stay intact
  int input = -1;           // graph input index: not in the arena
  bool scratch = false;     // a primitive's scratchpad (lives for one step)
};

struct ArgRef {
  int arg;
  Val v;
};

struct PlannedStep {
  std::string node, op;
  dn::primitive prim;
  std::vector<ArgRef> args;
};

struct Step {
  std::string node, op;
  dn::primitive prim;
  std::unordered_map<int, dn::memory> args;
};

struct OutputPlan {
  Shape shape;
  dn::memory src;
  bool plain = true;    // memcpy, otherwise reorder into the output tensor
  dn::reorder reorder;
  dn::memory dst;       // plain, handle set to the output tensor per run
};

class OnednnExecutable : public Executable {
 public:
  OnednnExecutable(const Graph& g, const BackendOptions& o, bool dw_fusion);
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override;
  int64_t activation_bytes() const override { return arena_bytes_; }
  void set_profiling(bool on) override { profiling_ = on; }
  std::vector<NodeTiming> timings() const override { return timings_; }
  std::string describe() const override;

 private:
  // --- compile helpers ---
  const Val& val(const std::string& name);
  int new_buffer(const md& d);
  Val new_value(const md& d, const Shape& s) { return Val{new_buffer(d), d, {}, s}; }
  void add_step(const std::string& node, const std::string& op, dn::primitive p, std::vector<ArgRef> args);
  Val to_desc(const Val& v, const md& want, const std::string& node);
  Val view(const Val& v, const Shape& s, const std::string& node);
  dn::memory constant_memory(const Tensor& t, const md& user, const md& want, float scale = 1.f);
  const Shape& out_shape(const Node& n) { return shapes_.at(n.outputs[0]); }
  void build(const Node& n);
  void conv(const Node& n);
  bool try_fused_conv(const Node& pw, const Node& dw, std::string& why);
  void eltwise(const Node& n);
  void batchnorm(const Node& n);
  void pool(const Node& n);
  void binary(const Node& n, alg a, bool commutative);
  void concat(const Node& n);
  void softmax(const Node& n);
  void gemm(const Node& n);
  void matmul(const Node& n);
  void finish_memory(const Graph& g);

  const Graph& g_;  // valid during compilation only
  BackendOptions opts_;
  bool dw_fusion_;
  dn::engine eng_{dn::engine::kind::cpu, 0};
  dn::stream strm_{eng_};
  std::map<std::string, Shape> shapes_;
  std::map<std::string, Val> vals_;
  std::vector<BufInfo> buffers_;
  std::map<int, std::vector<std::pair<md, Val>>> converted_;  // buffer -> (layout read, reordered copy)
  std::vector<PlannedStep> planned_;
  std::vector<dn::memory> constants_;  // owners of all constant storage
  std::vector<std::string> input_names_, output_names_;
  std::map<std::string, Tensor> constant_outputs_;
  // pw->dw fusion
  std::map<int, int> pairs_;  // pw node index -> dw node index (eligible)
  std::set<int> skip_;        // dw nodes computed by a fused primitive
  int fused_ = 0, eligible_ = 0, reorders_ = 0;
  std::vector<std::string> refused_;
  std::map<std::string, int> fused_impls_;  // implementation name -> pairs
  int64_t scratch_peak_ = 0;

  // --- bound state ---
  std::byte* arena_ = nullptr;
  std::vector<std::byte> arena_storage_;
  int64_t arena_bytes_ = 0;
  std::vector<Step> steps_;
  std::vector<std::pair<dn::memory, int>> input_mems_;  // memories whose handle is graph input k
  std::vector<OutputPlan> outputs_;
  bool profiling_ = false;
  std::vector<NodeTiming> timings_;
};

// ---------------------------------------------------------------------------------------------
// pw -> dw eligibility

bool is_pointwise(const Node& n, const Graph& g) {
  const Tensor* w = g.constant(n.input(1));
  return n.op == "Conv" && w && w->shape.size() == 4 && w->shape[2] == 1 && w->shape[3] == 1 &&
         n.i("group", 1) == 1 && n.ints("strides", {1, 1}) == std::vector<int64_t>{1, 1} &&
         n.ints("pads", {0, 0, 0, 0}) == std::vector<int64_t>{0, 0, 0, 0} &&
         n.ints("dilations", {1, 1}) == std::vector<int64_t>{1, 1} &&
         (n.input(2).empty() || g.constant(n.input(2)));
}

// Depthwise 3x3, channel multiplier 1, pads 1, stride 1 or 2: what append_dw can express.
bool is_dw3x3(const Node& n, const Graph& g) {
  const Tensor* w = g.constant(n.input(1));
  if (n.op != "Conv" || !w || w->shape.size() != 4) return false;
  int64_t C = g.info(n.input(0)).shape[1];
  auto st = n.ints("strides", {1, 1});
  return w->shape[0] == C && w->shape[1] == 1 && w->shape[2] == 3 && w->shape[3] == 3 && n.i("group", 1) == C &&
         st[0] == st[1] && (st[0] == 1 || st[0] == 2) &&
         n.ints("pads", {0, 0, 0, 0}) == std::vector<int64_t>{1, 1, 1, 1} &&
         n.ints("dilations", {1, 1}) == std::vector<int64_t>{1, 1} && (n.input(2).empty() || g.constant(n.input(2)));
}

// Ops mapped to primitives (Gather and Shape are not: oneDNN has no gather; Shape is folded away).
const std::set<std::string>& handled_ops() {
  static const std::set<std::string> ops = {
      "Add",      "AveragePool", "BatchNormalization", "Clip",    "Concat",  "Conv",    "Div",
      "Flatten",  "Gemm",        "GlobalAveragePool",  "Identity", "MatMul", "MaxPool", "Mul",
      "Relu",     "Reshape",     "Softmax",            "Squeeze", "Sub",     "Unsqueeze"};
  return ops;
}

// ---------------------------------------------------------------------------------------------

OnednnExecutable::OnednnExecutable(const Graph& g, const BackendOptions& o, bool dw_fusion)
    : g_(g), opts_(o), dw_fusion_(dw_fusion) {
  const char* who = dw_fusion ? "onednn-dwfused" : "onednn";
  require_float_graph(g, who, [](const std::string& op) { return handled_ops().count(op) != 0; });
  OmpThreadsScope omp_threads(opts_.threads);  // primitives are created for this thread count

  for (auto& [name, vi] : g.values) shapes_[name] = vi.shape;
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    const std::string& in = g.inputs[k];
    BufInfo b;
    b.input = int(k);
    md d = plain_md(shapes_.at(in));
    b.bytes = int64_t(d.get_size());
    buffers_.push_back(b);
    vals_[in] = Val{int(buffers_.size()) - 1, d, {}, shapes_.at(in)};
  }

  if (dw_fusion_) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& pw = g.nodes[i];
      if (!is_pointwise(pw, g) || g.is_graph_output(pw.outputs[0])) continue;
      auto readers = g.consumers(pw.outputs[0]);
      if (readers.size() != 1) continue;
      const Node& dw = g.nodes[size_t(readers[0])];
      if (dw.input(0) != pw.outputs[0] || !is_dw3x3(dw, g)) continue;
      if (shapes_.at(pw.outputs[0])[0] != shapes_.at(dw.outputs[0])[0]) continue;
      pairs_[int(i)] = readers[0];
    }
    eligible_ = int(pairs_.size());
  }

  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (skip_.count(int(i))) continue;
    try {
      if (auto p = pairs_.find(int(i)); p != pairs_.end()) {
        const Node& dw = g.nodes[size_t(p->second)];
        std::string why;
        if (try_fused_conv(n, dw, why)) {
          ++fused_;
          skip_.insert(p->second);
          continue;
        }
        refused_.push_back(cat(n.name, "+", dw.name, ": ", why));
      }
      build(n);
    } catch (const Unsupported&) {
      throw;
    } catch (const dn::error& e) {
      throw Unsupported(cat(who, " backend: oneDNN refused ", n.op, " (node '", n.name, "'): ", e.what()));
    }
  }
  finish_memory(g);
}

const Val& OnednnExecutable::val(const std::string& name) {
  if (auto it = vals_.find(name); it != vals_.end()) return it->second;
  const Tensor* c = g_.constant(name);
  LOCUS_CHECK(c, "onednn backend: value '", name, "' is unknown");
  if (c->dtype != DType::F32)
    throw Unsupported(cat("onednn backend: constant '", name, "' of type ", dtype_name(c->dtype), " used as a float operand"));
  md d = plain_md(c->shape);
  return vals_[name] = Val{-1, d, constant_memory(*c, d, d), c->shape};
}

int OnednnExecutable::new_buffer(const md& d) {
  BufInfo b;
  b.bytes = int64_t(d.get_size());
  b.first = b.last = int(planned_.size());
  buffers_.push_back(b);
  return int(buffers_.size()) - 1;
}

void OnednnExecutable::add_step(const std::string& node, const std::string& op, dn::primitive p, std::vector<ArgRef> args) {
  const_dnnl_primitive_desc_t cpd = p.get_primitive_desc();
  const dnnl_memory_desc_t* scratch = dnnl_primitive_desc_query_md(cpd, dnnl_query_scratchpad_md, 0);
  if (scratch && scratch->ndims > 0) {
    md d(*scratch);
    if (d.get_size() > 0) {
      args.push_back({DNNL_ARG_SCRATCHPAD, new_value(d, {int64_t(d.get_size() / 4)})});
      buffers_.back().scratch = true;
    }
  }
  int s = int(planned_.size());
  for (auto& a : args)
    if (a.v.buf >= 0) {
      auto& b = buffers_[size_t(a.v.buf)];
      b.first = std::min(b.first, s);
      b.last = std::max(b.last, s);
    }
  planned_.push_back({node, op, std::move(p), std::move(args)});
}

// v in layout `want`: v itself, or a reordered copy (shared by every consumer wanting that layout).
Val OnednnExecutable::to_desc(const Val& v, const md& want, const std::string& node) {
  if (v.desc == want) return v;
  if (v.buf >= 0)
    for (auto& [from, c] : converted_[v.buf])
      if (from == v.desc && c.desc == want) return c;
  Val out = new_value(want, v.shape);
  dn::reorder::primitive_desc rpd(eng_, v.desc, eng_, want, scratch_attr());
  add_step(node + ":reorder", "Reorder", dn::reorder(rpd), {{DNNL_ARG_FROM, v}, {DNNL_ARG_TO, out}});
  ++reorders_;
  if (v.buf >= 0) converted_[v.buf].push_back({v.desc, out});
  return out;
}

// v's elements in logical row-major order seen as shape s (same element count).
Val OnednnExecutable::view(const Val& v, const Shape& s, const std::string& node) {
  Val p = to_desc(v, plain_md(v.shape), node);
  md d = plain_md(s);
  LOCUS_CHECK(d.get_size() == p.desc.get_size(), "onednn backend: view of ", shape_str(v.shape), " as ", shape_str(s));
  Val r{p.buf, d, {}, s};
  if (p.buf < 0) r.fixed = dn::memory(d, eng_, p.fixed.get_data_handle());
  return r;
}

// A constant's data (row-major, layout `user`) in layout `want`, optionally scaled.
dn::memory OnednnExecutable::constant_memory(const Tensor& t, const md& user, const md& want, float scale) {
  LOCUS_CHECK(t.dtype == DType::F32, "onednn backend: non-float constant");
  std::vector<float> data(t.data<float>(), t.data<float>() + t.numel());
  if (scale != 1.f)
    for (auto& x : data) x *= scale;
  if (data.empty()) data.push_back(0.f);
  dn::memory src(user, eng_, data.data());
  dn::memory dst(want, eng_);
  dn::reorder(src, dst).execute(strm_, src, dst);
  strm_.wait();
  constants_.push_back(dst);  // views of it (reshapes) do not own the storage
  return dst;
}

void OnednnExecutable::build(const Node& n) {
  const std::string& op = n.op;
  if (op == "Conv") return conv(n);
  if (op == "Relu" || op == "Clip") return eltwise(n);
  if (op == "BatchNormalization") return batchnorm(n);
  if (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool") return pool(n);
  if (op == "Add") return binary(n, alg::binary_add, true);
  if (op == "Mul") return binary(n, alg::binary_mul, true);
  if (op == "Sub") return binary(n, alg::binary_sub, false);
  if (op == "Div") return binary(n, alg::binary_div, false);
  if (op == "Identity") { vals_[n.outputs[0]] = val(n.input(0)); return; }
  if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") {
    vals_[n.outputs[0]] = view(val(n.input(0)), out_shape(n), n.name);
    return;
  }
  if (op == "Concat") return concat(n);
  if (op == "Softmax") return softmax(n);
  if (op == "Gemm") return gemm(n);
  if (op == "MatMul") return matmul(n);
  throw Unsupported(cat("onednn backend: no primitive for ", op, " (node '", n.name, "')"));
}

// --- convolution -----------------------------------------------------------------------------

struct ConvGeometry {
  dims src, wei, bias, dst, strides, dil, pad_l, pad_r;
  int64_t groups = 1;
  const Tensor* w = nullptr;
  const Tensor* b = nullptr;
};

// The right padding to give oneDNN: the node's own if oneDNN's (floor) output-size formula then gives
// `out`, otherwise the padding that does (ceil_mode pooling).
int64_t pad_right(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t dil, int64_t pad_l, int64_t pad_r) {
  int64_t ext = (k - 1) * dil + 1;
  if ((in + pad_l + pad_r - ext) / stride + 1 == out) return pad_r;
  return (out - 1) * stride + ext - in - pad_l;
}

ConvGeometry conv_geometry(const Node& n, const Graph& g, const Shape& xs, const Shape& ys) {
  ConvGeometry c;
  c.w = g.constant(n.input(1));
  if (!c.w) throw Unsupported(cat("onednn backend: Conv '", n.name, "' with non-constant weights"));
  if (!n.input(2).empty()) {
    c.b = g.constant(n.input(2));
    if (!c.b) throw Unsupported(cat("onednn backend: Conv '", n.name, "' with non-constant bias"));
  }
  if (xs.size() != 4) throw Unsupported(cat("onednn backend: Conv '", n.name, "' is not 2-D"));
  auto st = n.ints("strides", {1, 1}), pads = n.ints("pads", {0, 0, 0, 0}), dil = n.ints("dilations", {1, 1});
  const Shape& ws = c.w->shape;
  c.groups = n.i("group", 1);
  c.src = dims_of(xs);
  c.dst = dims_of(ys);
  if (c.groups > 1)
    c.wei = {c.groups, ws[0] / c.groups, ws[1], ws[2], ws[3]};
  else
    c.wei = {ws[0], ws[1], ws[2], ws[3]};
  c.bias = {ws[0]};
  c.strides = {st[0], st[1]};
  c.dil = {dil[0] - 1, dil[1] - 1};
  c.pad_l = {pads[0], pads[1]};
  c.pad_r = {pad_right(xs[2], ys[2], ws[2], st[0], dil[0], pads[0], pads[2]),
             pad_right(xs[3], ys[3], ws[3], st[1], dil[1], pads[1], pads[3])};
  return c;
}

dn::convolution_forward::desc conv_desc(const ConvGeometry& c) {
  md any_src(c.src, dt::f32, tag::any), any_w(c.wei, dt::f32, tag::any), any_dst(c.dst, dt::f32, tag::any);
  md bias(c.bias, dt::f32, tag::x);
  return dn::convolution_forward::desc(kInference, alg::convolution_direct, any_src, any_w, bias, any_dst, c.strides,
                                       c.dil, c.pad_l, c.pad_r);
}

// Appends the node's fused activation (locus.activation) as an eltwise post-op.
void append_activation(dn::post_ops& po, const Node& n) {
  std::string a = n.s("locus.activation", "");
  if (a == "relu") {
    po.append_eltwise(1.f, alg::eltwise_relu, 0.f, 0.f);
  } else if (a == "clip") {
    po.append_eltwise(1.f, alg::eltwise_clip, n.f("locus.activation_min", -std::numeric_limits<float>::infinity()),
                      n.f("locus.activation_max", std::numeric_limits<float>::infinity()));
  } else {
    LOCUS_CHECK(a.empty(), "node '", n.name, "': unknown fused activation '", a, "'");
  }
}

md weights_user_md(const ConvGeometry& c) { return md(c.wei, dt::f32, c.groups > 1 ? tag::goihw : tag::oihw); }

void OnednnExecutable::conv(const Node& n) {
  const Val& x = val(n.input(0));
  ConvGeometry c = conv_geometry(n, g_, x.shape, out_shape(n));
  dn::post_ops po;
  append_activation(po, n);
  dn::primitive_attr attr = scratch_attr();
  attr.set_post_ops(po);
  dn::convolution_forward::primitive_desc pd(conv_desc(c), attr, eng_);
  Val src = to_desc(x, pd.src_desc(), n.name);
  dn::memory w = constant_memory(*c.w, weights_user_md(c), pd.weights_desc());
  md bias_md(c.bias, dt::f32, tag::x);
  Tensor zeros(DType::F32, {c.bias[0]});
  dn::memory b = constant_memory(c.b ? *c.b : zeros, bias_md, bias_md);
  Val y = new_value(pd.dst_desc(), out_shape(n));
  add_step(n.name, "Conv", dn::convolution_forward(pd),
           {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, Val{-1, pd.weights_desc(), w, {}}},
            {DNNL_ARG_BIAS, Val{-1, bias_md, b, {}}}, {DNNL_ARG_DST, y}});
  vals_[n.outputs[0]] = y;
}

// pw (1x1) with dw (3x3 depthwise) as its depthwise post-op: one primitive writing dw's output.
// Returns false (and why) if oneDNN refuses; nothing is recorded then.
bool OnednnExecutable::try_fused_conv(const Node& pw, const Node& dw, std::string& why) {
  const Val& x = val(pw.input(0));
  const Shape& mid = shapes_.at(pw.outputs[0]);
  const Shape& ys = out_shape(dw);
  ConvGeometry c = conv_geometry(pw, g_, x.shape, mid);
  ConvGeometry d = conv_geometry(dw, g_, mid, ys);
  int64_t stride = d.strides[0];
  dn::post_ops po;
  append_activation(po, pw);
  po.append_dw(dt::f32, dt::f32, dt::f32, 3, stride, 1, 0, {});
  append_activation(po, dw);
  dn::primitive_attr attr = scratch_attr();
  attr.set_post_ops(po);
  dn::convolution_forward::primitive_desc pd;
  try {
    pd = dn::convolution_forward::primitive_desc(conv_desc(c), attr, eng_);
  } catch (const dn::error& e) {
    why = e.what();
    return false;
  }
  md dst = pd.dst_desc();
  if (dst.dims() != dims_of(ys)) {
    why = "the fused primitive's output dims differ from the depthwise conv's";
    return false;
  }
  md dw_w = pd.query_md(dn::query::exec_arg_md, DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_WEIGHTS);
  md dw_b = pd.query_md(dn::query::exec_arg_md, DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_BIAS);
  if (dw_w.dims() != d.wei) {
    why = "oneDNN did not report the depthwise weights' layout";
    return false;
  }
  // jit_1x1 fuses the depthwise conv into its kernel only when the 1x1 output is larger than twice
  // the L2 of all threads; otherwise oneDNN picks ref_fused_convolution, which runs its 1x1 and dw
  // primitives one after the other through a scratchpad buffer
  ++fused_impls_[pd.impl_info_str()];
  Val src = to_desc(x, pd.src_desc(), pw.name);
  dn::memory w = constant_memory(*c.w, weights_user_md(c), pd.weights_desc());
  md bias_md(c.bias, dt::f32, tag::x);
  Tensor zeros_pw(DType::F32, {c.bias[0]}), zeros_dw(DType::F32, {d.bias[0]});
  dn::memory b = constant_memory(c.b ? *c.b : zeros_pw, bias_md, bias_md);
  dn::memory ww = constant_memory(*d.w, weights_user_md(d), dw_w);
  md dw_bias_user(d.bias, dt::f32, tag::x);
  if (dw_b.get_size() == 0) dw_b = dw_bias_user;
  dn::memory wb = constant_memory(d.b ? *d.b : zeros_dw, dw_bias_user, dw_b);
  Val y = new_value(dst, ys);
  add_step(pw.name + "+" + dw.name, "Conv+DwConv", dn::convolution_forward(pd),
           {{DNNL_ARG_SRC, src},
            {DNNL_ARG_WEIGHTS, Val{-1, pd.weights_desc(), w, {}}},
            {DNNL_ARG_BIAS, Val{-1, bias_md, b, {}}},
            {DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_WEIGHTS, Val{-1, dw_w, ww, {}}},
            {DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_BIAS, Val{-1, dw_b, wb, {}}},
            {DNNL_ARG_DST, y}});
  vals_[dw.outputs[0]] = y;
  return true;
}

// --- other layers ------------------------------------------------------------------------------

void OnednnExecutable::eltwise(const Node& n) {
  const Val& x = val(n.input(0));
  alg a = alg::eltwise_relu;
  float lo = 0.f, hi = 0.f;
  if (n.op == "Clip") {
    a = alg::eltwise_clip;
    lo = -std::numeric_limits<float>::infinity();
    hi = std::numeric_limits<float>::infinity();
    for (size_t k : {size_t(1), size_t(2)}) {
      if (n.input(k).empty()) continue;
      const Tensor* t = g_.constant(n.input(k));
      if (!t) throw Unsupported(cat("onednn backend: Clip '", n.name, "' with non-constant bounds"));
      (k == 1 ? lo : hi) = float(t->get(0));
    }
  }
  dn::eltwise_forward::primitive_desc pd(dn::eltwise_forward::desc(kInference, a, x.desc, lo, hi), scratch_attr(), eng_);
  Val y = new_value(pd.dst_desc(), out_shape(n));
  add_step(n.name, n.op, dn::eltwise_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
  vals_[n.outputs[0]] = y;
}

void OnednnExecutable::batchnorm(const Node& n) {
  const Val& x = val(n.input(0));
  const Tensor *scale = g_.constant(n.input(1)), *beta = g_.constant(n.input(2)), *mean = g_.constant(n.input(3)),
               *var = g_.constant(n.input(4));
  if (!scale || !beta || !mean || !var)
    throw Unsupported(cat("onednn backend: BatchNormalization '", n.name, "' with non-constant parameters"));
  if (x.shape.size() < 2) throw Unsupported(cat("onednn backend: BatchNormalization '", n.name, "' of rank < 2"));
  auto flags = dn::normalization_flags::use_global_stats | dn::normalization_flags::use_scale |
               dn::normalization_flags::use_shift;
  dn::batch_normalization_forward::primitive_desc pd(
      dn::batch_normalization_forward::desc(kInference, x.desc, n.f("epsilon", 1e-5f), flags), scratch_attr(), eng_);
  md c_md({x.shape[1]}, dt::f32, tag::x);
  auto param = [&](const Tensor* t) { return Val{-1, c_md, constant_memory(*t, c_md, c_md), {}}; };
  Val y = new_value(pd.dst_desc(), out_shape(n));
  add_step(n.name, n.op, dn::batch_normalization_forward(pd),
           {{DNNL_ARG_SRC, x}, {DNNL_ARG_MEAN, param(mean)}, {DNNL_ARG_VARIANCE, param(var)},
            {DNNL_ARG_SCALE, param(scale)}, {DNNL_ARG_SHIFT, param(beta)}, {DNNL_ARG_DST, y}});
  vals_[n.outputs[0]] = y;
}

void OnednnExecutable::pool(const Node& n) {
  const Val& x = val(n.input(0));
  const Shape& ys = out_shape(n);
  if (x.shape.size() != 4) throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "' is not 2-D"));
  dims k, st, dil, pl, pr;
  alg a;
  if (n.op == "GlobalAveragePool") {
    k = {x.shape[2], x.shape[3]};
    st = {1, 1};
    dil = {0, 0};
    pl = pr = {0, 0};
    a = alg::pooling_avg_exclude_padding;
  } else {
    auto ks = n.ints("kernel_shape"), s = n.ints("strides", {1, 1}), pads = n.ints("pads", {0, 0, 0, 0}),
         d = n.ints("dilations", {1, 1});
    k = {ks[0], ks[1]};
    st = {s[0], s[1]};
    dil = {d[0] - 1, d[1] - 1};
    pl = {pads[0], pads[1]};
    pr = {pad_right(x.shape[2], ys[2], ks[0], s[0], d[0], pads[0], pads[2]),
          pad_right(x.shape[3], ys[3], ks[1], s[1], d[1], pads[1], pads[3])};
    bool include = n.i("count_include_pad", 0) != 0;
    if (n.op == "MaxPool") {
      a = alg::pooling_max;
    } else {
      a = include ? alg::pooling_avg_include_padding : alg::pooling_avg_exclude_padding;
      // ceil_mode windows hanging past the explicit padding are not counted by ONNX; oneDNN would
      // count them with include-padding
      if (include && (pr[0] > pads[2] || pr[1] > pads[3]))
        throw Unsupported(cat("onednn backend: AveragePool '", n.name, "' with count_include_pad and ceil_mode overhang"));
    }
  }
  md dst(dims_of(ys), dt::f32, tag::any);
  dn::pooling_v2_forward::primitive_desc pd(dn::pooling_v2_forward::desc(kInference, a, x.desc, dst, st, k, dil, pl, pr), scratch_attr(), eng_);
  Val y = new_value(pd.dst_desc(), ys);
  std::vector<ArgRef> args{{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}};
  add_step(n.name, n.op, dn::pooling_v2_forward(pd), args);
  vals_[n.outputs[0]] = y;
}

Shape left_pad(const Shape& s, size_t rank) {
  Shape r(rank - s.size(), 1);
  r.insert(r.end(), s.begin(), s.end());
  return r;
}

void OnednnExecutable::binary(const Node& n, alg a, bool commutative) {
  Val x = val(n.input(0)), y = val(n.input(1));
  const Shape& ys = out_shape(n);
  if (x.shape != ys) {
    if (commutative && y.shape == ys)
      std::swap(x, y);
    else
      throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "' broadcasts its first operand"));
  }
  if (y.shape != ys)
    y = view(y, left_pad(y.shape, ys.size()), n.name);
  else
    y = to_desc(y, x.desc, n.name);
  dn::binary::primitive_desc pd(dn::binary::desc(a, x.desc, y.desc, x.desc), scratch_attr(), eng_);
  Val out = new_value(pd.dst_desc(), ys);
  add_step(n.name, n.op, dn::binary(pd), {{DNNL_ARG_SRC_0, x}, {DNNL_ARG_SRC_1, y}, {DNNL_ARG_DST, out}});
  vals_[n.outputs[0]] = out;
}

void OnednnExecutable::concat(const Node& n) {
  std::vector<Val> srcs;
  std::vector<md> descs;
  for (auto& in : n.inputs) {
    if (in.empty()) continue;
    Val v = val(in);
    if (v.shape.empty()) throw Unsupported(cat("onednn backend: Concat '", n.name, "' of scalars"));
    srcs.push_back(v);
    descs.push_back(v.desc);
  }
  dn::concat::primitive_desc pd(int(n.i("axis", 0)), descs, eng_, scratch_attr());
  Val y = new_value(pd.dst_desc(), out_shape(n));
  std::vector<ArgRef> args;
  for (size_t i = 0; i < srcs.size(); ++i) args.push_back({DNNL_ARG_MULTIPLE_SRC + int(i), srcs[i]});
  args.push_back({DNNL_ARG_DST, y});
  add_step(n.name, n.op, dn::concat(pd), args);
  vals_[n.outputs[0]] = y;
}

void OnednnExecutable::softmax(const Node& n) {
  Val x = val(n.input(0));
  const Shape& ys = out_shape(n);
  int64_t rank = int64_t(x.shape.size());
  int64_t axis = n.i("axis", rank - 1);
  bool legacy = n.i("legacy", 0) != 0;
  if (rank == 0) throw Unsupported(cat("onednn backend: Softmax '", n.name, "' of a scalar"));
  if (legacy && axis != rank - 1) {
    // coerce to 2-D at axis, softmax the rows
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < rank; ++d) (d < axis ? outer : inner) *= x.shape[size_t(d)];
    x = view(x, {outer, inner}, n.name);
    axis = 1;
  }
  dn::softmax_forward::primitive_desc pd(dn::softmax_forward::desc(kInference, x.desc, int(axis)), scratch_attr(), eng_);
  Val y = new_value(pd.dst_desc(), x.shape);
  add_step(n.name, n.op, dn::softmax_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
  vals_[n.outputs[0]] = y.shape == ys ? y : view(y, ys, n.name);
}

// Gemm: Y = alpha * A' B' + beta * C. inner_product when A is not transposed, B constant and C a
// constant per-column bias (or absent); matmul otherwise.
void OnednnExecutable::gemm(const Node& n) {
  const Shape& ys = out_shape(n);
  int64_t M = ys[0], N = ys[1];
  bool ta = n.i("transA", 0) != 0, tb = n.i("transB", 0) != 0;
  float alpha = n.f("alpha", 1.f), beta = n.f("beta", 1.f);
  Val a = val(n.input(0));
  int64_t K = ta ? a.shape[0] : a.shape[1];
  const Tensor* bc = g_.constant(n.input(1));
  const Tensor* cc = n.input(2).empty() ? nullptr : g_.constant(n.input(2));
  bool no_c = n.input(2).empty() || beta == 0.f;
  bool column_bias = cc && cc->numel() == N && (cc->shape.size() == 1 || (cc->shape.size() == 2 && cc->shape[0] == 1));
  // B as a {K, N} matrix: row-major [K, N], or [N, K] transposed
  auto b_layout = [&](const Shape& kn) { return tb ? md(dims{kn[0], kn[1]}, dt::f32, dims{1, kn[0]}) : plain_md(kn); };
  if (!ta && bc && (no_c || column_bias)) {
    a = to_desc(a, plain_md(a.shape), n.name);
    md w_user(dims{N, K}, dt::f32, tb ? tag::ab : tag::ba);
    md bias_md(dims{N}, dt::f32, tag::x);
    dn::inner_product_forward::desc d(kInference, a.desc, md(dims{N, K}, dt::f32, tag::any), bias_md,
                                      md(dims{M, N}, dt::f32, tag::any));
    dn::inner_product_forward::primitive_desc pd(d, scratch_attr(), eng_);
    a = to_desc(a, pd.src_desc(), n.name);
    dn::memory w = constant_memory(*bc, w_user, pd.weights_desc(), alpha);
    Tensor zeros(DType::F32, {N});
    dn::memory b = constant_memory(no_c ? zeros : *cc, bias_md, bias_md, no_c ? 1.f : beta);
    Val y = new_value(pd.dst_desc(), ys);
    add_step(n.name, n.op, dn::inner_product_forward(pd),
             {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, Val{-1, pd.weights_desc(), w, {}}},
              {DNNL_ARG_BIAS, Val{-1, bias_md, b, {}}}, {DNNL_ARG_DST, y}});
    vals_[n.outputs[0]] = y;
    return;
  }
  // matmul: A {M, K} (strided view when transposed), B {K, N}; alpha (runtime B) and beta * C as
  // post-ops (eltwise_linear, binary_add)
  a = to_desc(a, plain_md(a.shape), n.name);
  Val src{a.buf, ta ? md(dims{M, K}, dt::f32, dims{1, M}) : a.desc, {}, {M, K}};
  if (a.buf < 0) src.fixed = dn::memory(src.desc, eng_, a.fixed.get_data_handle());
  Val wei;
  float scale = 1.f;  // what multiplies A'B' after the product
  if (bc) {
    md want = b_layout({K, N});
    wei = Val{-1, want, constant_memory(*bc, want, want, alpha), {K, N}};
  } else {
    Val b = to_desc(val(n.input(1)), plain_md(val(n.input(1)).shape), n.name);
    wei = Val{b.buf, b_layout({K, N}), {}, {K, N}};
    if (b.buf < 0) wei.fixed = dn::memory(wei.desc, eng_, b.fixed.get_data_handle());
    scale = alpha;
  }
  std::vector<ArgRef> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}};
  dn::post_ops po;
  if (!no_c) {
    Shape cs = left_pad(shapes_.count(n.input(2)) ? shapes_.at(n.input(2)) : cc->shape, 2);
    if (cs.size() != 2) throw Unsupported(cat("onednn backend: Gemm '", n.name, "' with C of rank > 2"));
    md c_md = plain_md(cs);
    Val c;
    if (cc) {
      c = Val{-1, c_md, constant_memory(*cc, c_md, c_md, beta), cs};
    } else {
      c = view(val(n.input(2)), cs, n.name);
      if (beta != 1.f) {
        // beta * C by its own eltwise primitive (oneDNN 2.6's gemm-based matmul gets an eltwise
        // post-op after a binary post-op wrong)
        dn::eltwise_forward::primitive_desc epd(dn::eltwise_forward::desc(kInference, alg::eltwise_linear, c.desc, beta, 0.f),
                                                scratch_attr(), eng_);
        Val scaled = new_value(epd.dst_desc(), cs);
        add_step(n.name + ":beta", "Eltwise", dn::eltwise_forward(epd), {{DNNL_ARG_SRC, c}, {DNNL_ARG_DST, scaled}});
        c = scaled;
      }
    }
    if (scale != 1.f) po.append_eltwise(1.f, alg::eltwise_linear, scale, 0.f);
    po.append_binary(alg::binary_add, c.desc);
    args.push_back({DNNL_ARG_ATTR_MULTIPLE_POST_OP(po.len() - 1) | DNNL_ARG_SRC_1, c});
  } else if (scale != 1.f) {
    po.append_eltwise(1.f, alg::eltwise_linear, scale, 0.f);
  }
  dn::primitive_attr attr = scratch_attr();
  attr.set_post_ops(po);
  dn::matmul::primitive_desc pd(dn::matmul::desc(src.desc, wei.desc, md(dims{M, N}, dt::f32, tag::ab)), attr, eng_);
  Val y = new_value(pd.dst_desc(), ys);
  args.push_back({DNNL_ARG_DST, y});
  add_step(n.name, n.op, dn::matmul(pd), args);
  vals_[n.outputs[0]] = y;
}

void OnednnExecutable::matmul(const Node& n) {
  Val a = val(n.input(0)), b = val(n.input(1));
  const Shape& ys = out_shape(n);
  if (a.shape.size() < 2 || b.shape.size() < 2)
    throw Unsupported(cat("onednn backend: MatMul '", n.name, "' with a 1-D operand"));
  size_t rank = std::max(a.shape.size(), b.shape.size());
  a = view(a, left_pad(a.shape, rank), n.name);
  b = view(b, left_pad(b.shape, rank), n.name);
  dn::matmul::primitive_desc pd(dn::matmul::desc(a.desc, b.desc, plain_md(ys)), scratch_attr(), eng_);
  Val y = new_value(pd.dst_desc(), ys);
  add_step(n.name, n.op, dn::matmul(pd), {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, y}});
  vals_[n.outputs[0]] = y;
}

// --- memory planning and binding ---------------------------------------------------------------

void OnednnExecutable::finish_memory(const Graph& g) {
  const int end = int(planned_.size());
  input_names_ = g.inputs;
  output_names_ = g.outputs;
  for (auto& o : g.outputs) {
    if (const Tensor* c = g.constant(o)) {
      constant_outputs_[o] = *c;
      continue;
    }
    const Val& v = vals_.at(o);
    if (v.buf >= 0) buffers_[size_t(v.buf)].last = end;
  }
  std::vector<BufferRequest> reqs;
  std::vector<int> req_buf;
  for (size_t i = 0; i < buffers_.size(); ++i) {
    if (buffers_[i].input >= 0) continue;
    reqs.push_back({cat("buf", i), buffers_[i].bytes, buffers_[i].first, buffers_[i].last});
    if (buffers_[i].scratch) scratch_peak_ = std::max(scratch_peak_, buffers_[i].bytes);
    req_buf.push_back(int(i));
  }
  MemoryPlan plan = plan_memory(reqs);
  arena_bytes_ = plan.arena_bytes;
  opts_.memory_budget.check(cat("the ", dw_fusion_ ? "onednn-dwfused" : "onednn", " backend's plan"), arena_bytes_,
                            cat("activation and scratchpad arena ", human_bytes(arena_bytes_)));
  arena_storage_.assign(size_t(plan.arena_bytes + 64), std::byte{0});
  auto base = reinterpret_cast<uintptr_t>(arena_storage_.data());
  arena_ = arena_storage_.data() + ((64 - base % 64) % 64);
  std::vector<std::byte*> ptr(buffers_.size(), nullptr);
  for (size_t r = 0; r < reqs.size(); ++r) ptr[size_t(req_buf[r])] = arena_ + plan.offsets[r];

  auto bind = [&](const Val& v) {
    if (v.buf < 0) return v.fixed;
    dn::memory m(v.desc, eng_, ptr[size_t(v.buf)]);
    if (buffers_[size_t(v.buf)].input >= 0) input_mems_.push_back({m, buffers_[size_t(v.buf)].input});
    return m;
  };
  for (auto& p : planned_) {
    Step s{p.node, p.op, p.prim, {}};
    for (auto& a : p.args) s.args[a.arg] = bind(a.v);
    steps_.push_back(std::move(s));
  }
  planned_.clear();
  for (auto& o : g.outputs) {
    OutputPlan op;
    if (constant_outputs_.count(o)) { outputs_.push_back(op); continue; }
    const Val& v = vals_.at(o);
    op.shape = v.shape;
    op.src = bind(v);
    md want = plain_md(v.shape);
    op.plain = v.desc == want;
    if (!op.plain) {
      op.dst = dn::memory(want, eng_, nullptr);
      op.reorder = dn::reorder(dn::reorder::primitive_desc(eng_, v.desc, eng_, want));  // library scratchpad
    }
    outputs_.push_back(op);
  }
  vals_.clear();
  converted_.clear();
}

void OnednnExecutable::run(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) {
  OmpThreadsScope omp_threads(opts_.threads);
  for (auto& [m, k] : input_mems_) m.set_data_handle(const_cast<float*>(inputs[size_t(k)]->data<float>()));
  // A NaN input: the outputs are NaN (see the header comment for why).
  bool nan_input = false;
  for (const Tensor* t : inputs) {
    if (t->dtype != DType::F32) continue;
    const float* d = t->data<float>();
    const int64_t n = t->numel();
    bool bad = false;
    for (int64_t i = 0; i < n; ++i) bad |= d[i] != d[i];
    nan_input |= bad;
  }
  if (profiling_) {
    timings_.clear();
    for (auto& s : steps_) {
      auto t0 = std::chrono::steady_clock::now();
      s.prim.execute(strm_, s.args);
      strm_.wait();
      auto t1 = std::chrono::steady_clock::now();
      timings_.push_back({s.node, s.op, std::chrono::duration<double, std::milli>(t1 - t0).count()});
    }
  } else {
    for (auto& s : steps_) s.prim.execute(strm_, s.args);
  }
  strm_.wait();
  outputs.resize(output_names_.size());
  for (size_t i = 0; i < output_names_.size(); ++i) {
    const std::string& name = output_names_[i];
    if (auto c = constant_outputs_.find(name); c != constant_outputs_.end()) {
      outputs[i] = c->second;
      continue;
    }
    OutputPlan& op = outputs_[i];
    Tensor t(DType::F32, op.shape);
    if (op.plain) {
      std::memcpy(t.data<float>(), op.src.get_data_handle(), t.bytes.size());
    } else {
      op.dst.set_data_handle(t.data<float>());
      op.reorder.execute(strm_, op.src, op.dst);
      strm_.wait();
    }
    if (nan_input) std::fill_n(t.data<float>(), t.numel(), std::numeric_limits<float>::quiet_NaN());
    outputs[i] = std::move(t);
  }
}

std::string OnednnExecutable::describe() const {
  int convs = 0;
  for (auto& s : steps_) convs += s.op == "Conv" || s.op == "Conv+DwConv";
  std::string r;
  if (dw_fusion_) {
    r = cat("onednn-dwfused: ", fused_, " of ", eligible_, " pw->dw pairs fused");
    if (!fused_impls_.empty()) {
      r += " (";
      bool first = true;
      for (auto& [impl, k] : fused_impls_) r += cat(first ? "" : ", ", k, " by ", impl), first = false;
      r += ")";
    }
    if (!refused_.empty()) {
      r += "; refused:";
      for (auto& x : refused_) r += " [" + x + "]";
    }
    r += "; ";
  } else {
    r = "onednn: ";
  }
  return r + cat(steps_.size(), " primitives (", convs, " convolutions, ", reorders_, " activation reorders); arena ",
                 arena_bytes_ / 1024, " KiB including scratchpads (largest ", scratch_peak_ / 1024, " KiB)");
}

class OnednnBackend : public Backend {
 public:
  explicit OnednnBackend(bool dw_fusion) : dw_fusion_(dw_fusion) {}
  std::string name() const override { return dw_fusion_ ? "onednn-dwfused" : "onednn"; }
  std::unique_ptr<Executable> compile(const Graph& g, const BackendOptions& o) override {
    return std::make_unique<OnednnExecutable>(g, o, dw_fusion_);
  }

 private:
  bool dw_fusion_;
};

}  // namespace

std::unique_ptr<Backend> make_onednn_backend() { return std::make_unique<OnednnBackend>(false); }
std::unique_ptr<Backend> make_onednn_dwfused_backend() { return std::make_unique<OnednnBackend>(true); }

}  // namespace locus
