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
//   the quantized ops  QLinearConv (convolution_forward u8s8 with output scales and zero points),
//                      QLinearMatMul (matmul u8s8), Quantize/DequantizeLinear (reorders with scales),
//                      QLinearAdd / QLinearGlobalAveragePool (reorders through f32 around binary_add /
//                      pooling): runtime/onednn/ops_quant.cpp; values between them are u8/s8
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
// Each op's builder is an entry of the op registry (runtime/onednn/op_registry.h, one file per op
// family, runtime/onednn/ops_*.cpp), named by the primitive that runs it; implementations() reports
// it per node. compile (the constructor) creates every primitive, reorders the weights, plans one
// arena for all activation buffers and every primitive's scratchpad (scratchpad_mode::user) with
// the memory planner and binds the memory objects; run() only executes. Graph inputs are read in
// place.
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
#include "runtime/onednn/onednn_context.h"
#include "runtime/onednn/op_registry.h"

namespace locus {
namespace {

using namespace onednn;

struct BufInfo {
  int64_t bytes = 0;
  int first = 0, last = 0;  // steps during which it must stay intact
  int input = -1;           // graph input index: not in the arena
  bool scratch = false;     // a primitive's scratchpad (lives for one step)
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
  DType dtype = DType::F32;  // u8/s8 for a quantized graph output
  dn::memory src;
  bool plain = true;    // memcpy, otherwise reorder into the output tensor
  dn::reorder reorder;
  dn::memory dst;       // plain, handle set to the output tensor per run
};

class OnednnExecutable : public Executable, public OnednnContext {
 public:
  OnednnExecutable(const Graph& g, const BackendOptions& o, bool dw_fusion);
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override;
  int64_t activation_bytes() const override { return arena_bytes_; }
  void set_profiling(bool on) override { profiling_ = on; }
  std::vector<NodeTiming> timings() const override { return timings_; }
  std::string describe() const override;
  std::vector<NodeImplementation> implementations() const override { return implementations_; }

 private:
  // --- OnednnContext: what the op builders (runtime/onednn/ops_*.cpp) use ---
  const Graph& graph() const override { return g_; }
  const dn::engine& engine() const override { return eng_; }
  const Val& val(const std::string& name) override;
  void set_val(const std::string& name, Val v) override { vals_[name] = std::move(v); }
  const Shape& shape(const std::string& name) const override { return shapes_.at(name); }
  Val new_value(const md& d, const Shape& s) override { return Val{new_buffer(d), d, {}, s}; }
  void add_step(const std::string& node, const std::string& op, dn::primitive p, std::vector<ArgRef> args) override;
  Val to_desc(const Val& v, const md& want, const std::string& node) override;
  Val view(const Val& v, const Shape& s, const std::string& node) override;
  dn::memory constant_memory(const Tensor& t, const md& user, const md& want, float scale = 1.f) override;
  void set_implementation(std::string name) override { implementation_ = std::move(name); }

  int new_buffer(const md& d);
  // The primitives of one node, by the op registry.
  void build(const Node& n);
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
  std::string implementation_;  // of the node being built
  std::vector<NodeImplementation> implementations_;  // one per node, in graph order
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

OnednnExecutable::OnednnExecutable(const Graph& g, const BackendOptions& o, bool dw_fusion)
    : g_(g), opts_(o), dw_fusion_(dw_fusion) {
  const char* who = dw_fusion ? "onednn-dwfused" : "onednn";
  // Runtime values are f32, or u8/s8 between the quantized ops (runtime/onednn/ops_quant.cpp).
  require_supported_graph(
      g, who, [](const std::string& op) { return onednn_ops().handles(op); },
      [](const std::string& op, DType t) { return t == DType::F32 || (!op.empty() && (t == DType::U8 || t == DType::I8)); });
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
      if (pw.op != "Conv" || g.is_graph_output(pw.outputs[0])) continue;
      auto readers = g.consumers(pw.outputs[0]);
      if (readers.size() != 1) continue;
      if (!dw_fusable_pair(g, pw, g.nodes[size_t(readers[0])])) continue;
      pairs_[int(i)] = readers[0];
    }
    eligible_ = int(pairs_.size());
  }

  std::map<std::string, std::string> impl;  // node -> what runs it
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (skip_.count(int(i))) continue;
    try {
      if (auto p = pairs_.find(int(i)); p != pairs_.end()) {
        const Node& dw = g.nodes[size_t(p->second)];
        std::string why;
        std::string picked = build_fused_conv(*this, n, dw, why);
        if (!picked.empty()) {
          ++fused_;
          ++fused_impls_[picked];
          skip_.insert(p->second);
          impl[n.name] = cat("dnnl convolution_forward + post_ops::append_dw (", picked, ")");
          impl[dw.name] = cat("fused into '", n.name, "' (dnnl post_ops::append_dw)");
          continue;
        }
        refused_.push_back(cat(n.name, "+", dw.name, ": ", why));
      }
      build(n);
      impl[n.name] = implementation_;
    } catch (const Unsupported&) {
      throw;
    } catch (const dn::error& e) {
      throw Unsupported(cat(who, " backend: oneDNN refused ", n.op, " (node '", n.name, "'): ", e.what()));
    }
  }
  for (const Node& n : g.nodes) implementations_.push_back({n.name, op_key(n), impl[n.name]});
  finish_memory(g);
}

const Val& OnednnExecutable::val(const std::string& name) {
  if (auto it = vals_.find(name); it != vals_.end()) return it->second;
  const Tensor* c = g_.constant(name);
  LOCUS_CHECK(c, "onednn backend: value '", name, "' is unknown");
  if (c->dtype == DType::U8 || c->dtype == DType::I8) {  // an operand of the quantized ops
    md d = plain_md(c->shape, c->dtype == DType::U8 ? dt::u8 : dt::s8);
    dn::memory m(d, eng_);
    if (c->numel() > 0) std::memcpy(m.get_data_handle(), c->bytes.data(), size_t(c->numel()));
    constants_.push_back(m);
    return vals_[name] = Val{-1, d, m, c->shape};
  }
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
  const dt type = v.desc.data_type();
  Val p = to_desc(v, plain_md(v.shape, type), node);
  md d = plain_md(s, type);
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
  const OnednnOp* op = onednn_ops().find(n);
  if (!op) throw Unsupported(cat("onednn backend: no primitive for ", op_key(n), " (node '", n.name, "')"));
  implementation_ = op->implementation;
  op->fn(*this, n);
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
    op.dtype = g.info(o).dtype;
    op.src = bind(v);
    md want = plain_md(v.shape, v.desc.data_type());
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
    Tensor t(op.dtype, op.shape);
    if (op.plain) {
      std::memcpy(t.bytes.data(), op.src.get_data_handle(), t.bytes.size());
    } else {
      op.dst.set_data_handle(t.bytes.data());
      op.reorder.execute(strm_, op.src, op.dst);
      strm_.wait();
    }
    if (nan_input && t.dtype == DType::F32) std::fill_n(t.data<float>(), t.numel(), std::numeric_limits<float>::quiet_NaN());
    outputs[i] = std::move(t);
  }
}

std::string OnednnExecutable::describe() const {
  int convs = 0;
  for (auto& s : steps_) convs += s.op == "Conv" || s.op == "Conv+DwConv" || s.op == "QLinearConv";
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
  std::vector<std::pair<std::string, std::string>> op_implementations() const override {
    return onednn::onednn_ops().entries();
  }

 private:
  bool dw_fusion_;
};

}  // namespace

std::unique_ptr<Backend> make_onednn_backend() { return std::make_unique<OnednnBackend>(false); }
std::unique_ptr<Backend> make_onednn_dwfused_backend() { return std::make_unique<OnednnBackend>(true); }

}  // namespace locus
