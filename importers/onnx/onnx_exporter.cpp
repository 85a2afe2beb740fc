// Graph IR -> standard ONNX ModelProto (see onnx_exporter.h for what is written and what is refused).
#include "importers/onnx/onnx_exporter.h"

#include <onnx/onnx_pb.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "graph/ops.h"
#include "importers/onnx/importer_internal.h"
#include "importers/onnx/onnx_importer.h"
#include "importers/onnx/temp_file.h"

namespace fs = std::filesystem;

namespace locus::onnx_export {
namespace {

constexpr int64_t kMinExportOpset = 13, kMaxExportOpset = 17;

using AP = onnx::AttributeProto;

void set_attr(const std::string& name, const Attr& v, AP* a) {
  a->set_name(name);
  if (auto p = std::get_if<int64_t>(&v)) {
    a->set_type(AP::INT);
    a->set_i(*p);
  } else if (auto p = std::get_if<float>(&v)) {
    a->set_type(AP::FLOAT);
    a->set_f(*p);
  } else if (auto p = std::get_if<std::string>(&v)) {
    a->set_type(AP::STRING);
    a->set_s(*p);
  } else if (auto p = std::get_if<std::vector<int64_t>>(&v)) {
    a->set_type(AP::INTS);
    for (int64_t x : *p) a->add_ints(x);
  } else if (auto p = std::get_if<std::vector<float>>(&v)) {
    a->set_type(AP::FLOATS);
    for (float x : *p) a->add_floats(x);
  } else if (auto p = std::get_if<std::vector<std::string>>(&v)) {
    a->set_type(AP::STRINGS);
    for (auto& x : *p) a->add_strings(x);
  } else if (auto p = std::get_if<Tensor>(&v)) {
    a->set_type(AP::TENSOR);
    onnx_import::tensor_to_proto(*p, "", a->mutable_t());
  }
}

void set_type(const ValueInfo& vi, const std::string& name, onnx::ValueInfoProto* p) {
  p->set_name(name);
  auto* tt = p->mutable_type()->mutable_tensor_type();
  const int32_t et = onnx_import::detail::dtype_to_onnx(vi.dtype);
  LOCUS_CHECK(et != onnx::TensorProto::UNDEFINED, "value '", name, "' has no ONNX element type");
  tt->set_elem_type(et);
  auto* sh = tt->mutable_shape();
  for (int64_t d : vi.shape) sh->add_dim()->set_dim_value(d);
}

// Builds the list of standard nodes (and the extra constants they need) from the IR's nodes.
class Lowering {
 public:
  Lowering(const Graph& g, int64_t opset) : g_(g), opset_(opset) {
    for (auto& [name, t] : g.constants) used_.insert(name);
    for (auto& [name, v] : g.values) used_.insert(name);
    used_.insert(g.inputs.begin(), g.inputs.end());
    used_.insert(g.outputs.begin(), g.outputs.end());
    for (const Node& n : g.nodes) {
      used_.insert(n.inputs.begin(), n.inputs.end());
      used_.insert(n.outputs.begin(), n.outputs.end());
      node_names_.insert(n.name);
    }
  }

  void run() {
    for (const Node& n : g_.nodes) lower(n);
    // A graph output that is a constant gets an Identity, so every output is a node's output.
    for (const std::string& o : g_.outputs) {
      if (!g_.is_constant(o)) continue;
      const std::string c = fresh_value(o + "/value");
      extra_constants_[c] = *g_.constant(o);
      Node id;
      id.op = "Identity";
      id.name = fresh_node(o + "/identity");
      id.inputs = {c};
      id.outputs = {o};
      nodes_.push_back(std::move(id));
      extra_info_[o] = ValueInfo{g_.constant(o)->dtype, g_.constant(o)->shape, true};
    }
  }

  std::vector<Node> nodes_;
  std::map<std::string, Tensor> extra_constants_;
  std::map<std::string, ValueInfo> extra_info_;  // infos of values the lowering created

 private:
  const Graph& g_;
  int64_t opset_;
  std::set<std::string> used_, node_names_;

  std::string fresh(std::set<std::string>& used, const std::string& base) {
    std::string n = base;
    for (int k = 1; used.count(n); ++k) n = cat(base, "_", k);
    used.insert(n);
    return n;
  }
  std::string fresh_value(const std::string& base) { return fresh(used_, base); }
  std::string fresh_node(const std::string& base) { return fresh(node_names_, base); }

  std::optional<ValueInfo> info(const std::string& v) const {
    if (auto c = g_.constant(v)) return ValueInfo{c->dtype, c->shape, true};
    auto it = g_.values.find(v);
    if (it == g_.values.end() || !it->second.known) return std::nullopt;
    return it->second;
  }

  [[noreturn]] void refuse(const Node& n, const std::string& why) const {
    fail("cannot export node '", n.name, "' (", n.op, ") as standard ONNX: ", why);
  }

  void lower(const Node& in) {
    if (!in.domain.empty() && in.domain != "ai.onnx") {
      if (in.domain == kLocusDomain)
        refuse(in, cat("'", in.op, "' is an op of the locus domain, which only this runtime knows "
                       "(export the graph before the fusion passes run)"));
      refuse(in, cat("its domain '", in.domain, "' is not the default ONNX domain"));
    }
    Node n = in;
    n.domain.clear();
    std::string activation;
    float act_min = -INFINITY, act_max = INFINITY;
    for (auto it = n.attrs.begin(); it != n.attrs.end();) {
      const std::string& key = it->first;
      if (key.rfind("locus.", 0) != 0) {
        ++it;
        continue;
      }
      if (n.op == "Conv" && key == "locus.activation") {
        activation = n.s(key, "");
        if (activation != "relu" && activation != "clip")
          refuse(in, cat("its fused activation '", activation, "' has no standard form here"));
      } else if (n.op == "Conv" && key == "locus.activation_min") {
        act_min = n.f(key, -INFINITY);
      } else if (n.op == "Conv" && key == "locus.activation_max") {
        act_max = n.f(key, INFINITY);
      } else {
        refuse(in, cat("it carries the runtime's attribute '", key, "'"));
      }
      it = n.attrs.erase(it);
    }

    if (n.op == "Softmax") return softmax(n);
    if (n.op == "Reshape" && n.has("allowzero")) {
      if (n.i("allowzero", 0) == 0)
        n.attrs.erase("allowzero");
      else if (opset_ < 14)
        refuse(in, cat("allowzero=1 needs opset 14 or later, the export opset is ", opset_));
    }
    if (n.op == "Shape" && (n.has("start") || n.has("end"))) {
      const auto x = info(n.input(0));
      const int64_t rank = x ? int64_t(x->shape.size()) : -1;
      if (n.i("start", 0) == 0 && (!n.has("end") || n.i("end", -1) == rank)) {
        n.attrs.erase("start");
        n.attrs.erase("end");
      } else if (opset_ < 15) {
        refuse(in, cat("start/end need opset 15 or later, the export opset is ", opset_));
      }
    }
    if (activation.empty()) {
      nodes_.push_back(std::move(n));
      return;
    }
    // Conv with a fused activation: Conv -> (pre-activation value) -> Relu | Clip -> the original output.
    LOCUS_CHECK(n.outputs.size() == 1 && !n.outputs[0].empty(), "cannot export node '", in.name,
                "' (Conv): it must have exactly one output");
    const std::string out = n.outputs[0];
    const std::string pre = fresh_value(out + "/preact");
    n.outputs[0] = pre;
    if (auto vi = info(out)) extra_info_[pre] = *vi;
    Node act;
    act.name = fresh_node(in.name + "/" + activation);
    act.inputs = {pre};
    act.outputs = {out};
    if (activation == "relu") {
      act.op = "Relu";
    } else {
      act.op = "Clip";
      auto bound = [&](float v, const char* what) -> std::string {
        if (std::isinf(v)) return "";
        const std::string c = fresh_value(in.name + "/clip_" + what);
        extra_constants_[c] = Tensor::scalar_f32(v);
        return c;
      };
      act.inputs.push_back(bound(act_min, "min"));
      act.inputs.push_back(bound(act_max, "max"));
      while (act.inputs.size() > 1 && act.inputs.back().empty()) act.inputs.pop_back();
    }
    nodes_.push_back(std::move(n));
    nodes_.push_back(std::move(act));
  }

  // Canonical Softmax: drop `legacy`. legacy=1 (opset < 13: the input coerced to 2-D at axis, softmax
  // over everything from axis on) equals the opset-13 form only when axis is the last one; otherwise
  // it is written as Flatten(axis) -> Softmax(axis=1) -> Reshape(original shape).
  void softmax(Node& n) {
    const bool legacy = n.i("legacy", 0) != 0;
    n.attrs.erase("legacy");
    const auto x = info(n.input(0));
    const int64_t axis = n.i("axis", legacy ? 1 : -1);
    if (!legacy) {
      nodes_.push_back(std::move(n));
      return;
    }
    LOCUS_CHECK(x, "cannot export node '", n.name, "' (Softmax): the shape of its input is not known");
    const int64_t rank = int64_t(x->shape.size());
    const int64_t a = axis < 0 ? axis + rank : axis;
    if (a == rank - 1) {
      n.attrs["axis"] = a;
      nodes_.push_back(std::move(n));
      return;
    }
    const std::string out = n.outputs.at(0);
    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < rank; ++k) (k < a ? outer : inner) *= x->shape[size_t(k)];
    Node flat;
    flat.op = "Flatten";
    flat.name = fresh_node(n.name + "/flatten");
    flat.inputs = {n.input(0)};
    flat.outputs = {fresh_value(out + "/2d")};
    flat.attrs["axis"] = a;
    extra_info_[flat.outputs[0]] = ValueInfo{x->dtype, {outer, inner}, true};
    Node sm = n;
    sm.inputs = {flat.outputs[0]};
    sm.outputs = {fresh_value(out + "/softmax_2d")};
    sm.attrs["axis"] = int64_t(1);
    extra_info_[sm.outputs[0]] = ValueInfo{x->dtype, {outer, inner}, true};
    Node re;
    re.op = "Reshape";
    re.name = fresh_node(n.name + "/reshape");
    const std::string shape_c = fresh_value(out + "/shape");
    extra_constants_[shape_c] = Tensor::from_i64({rank}, x->shape);
    re.inputs = {sm.outputs[0], shape_c};
    re.outputs = {out};
    nodes_.push_back(std::move(flat));
    nodes_.push_back(std::move(sm));
    nodes_.push_back(std::move(re));
  }
};

}  // namespace

int64_t export_opset(const Graph& g, const ExportOptions& o) {
  if (o.opset == 0) return std::clamp<int64_t>(g.opset, kMinExportOpset, kMaxExportOpset);
  LOCUS_CHECK(o.opset >= kMinExportOpset && o.opset <= kMaxExportOpset, "cannot export at opset ", o.opset,
              ": the exporter writes opsets ", kMinExportOpset, " to ", kMaxExportOpset);
  return o.opset;
}

void to_model_proto(const Graph& graph, onnx::ModelProto* m, const ExportOptions& o) {
  const int64_t opset = export_opset(graph, o);

  // Output types are required: infer shapes on a copy if the graph has not been through inference.
  const Graph* g = &graph;
  std::optional<Graph> inferred;
  const bool need_inference = std::any_of(graph.outputs.begin(), graph.outputs.end(), [&](const std::string& v) {
    if (graph.is_constant(v)) return false;
    auto it = graph.values.find(v);
    return it == graph.values.end() || !it->second.known;
  });
  if (need_inference) {
    inferred = graph;
    infer_shapes(*inferred);
    g = &*inferred;
  }

  Lowering low(*g, opset);
  low.run();

  m->Clear();
  m->set_ir_version(kExportIrVersion);
  m->set_producer_name(o.producer_name);
  m->set_producer_version("0.1.0");
  if (!o.doc_string.empty()) m->set_doc_string(o.doc_string);
  auto* imp = m->add_opset_import();
  imp->set_domain("");
  imp->set_version(opset);

  onnx::GraphProto* gp = m->mutable_graph();
  gp->set_name(g->name.empty() ? "locus" : g->name);
  std::set<std::string> io(g->inputs.begin(), g->inputs.end());
  for (const std::string& in : g->inputs) {
    auto it = g->values.find(in);
    LOCUS_CHECK(it != g->values.end() && it->second.known, "cannot export: graph input '", in,
                "' has no known type and shape");
    set_type(it->second, in, gp->add_input());
  }
  auto value_info = [&](const std::string& v) -> std::optional<ValueInfo> {
    if (auto it = low.extra_info_.find(v); it != low.extra_info_.end()) return it->second;
    if (auto c = g->constant(v)) return ValueInfo{c->dtype, c->shape, true};
    auto it = g->values.find(v);
    if (it == g->values.end() || !it->second.known) return std::nullopt;
    return it->second;
  };
  for (const std::string& out : g->outputs) {
    auto vi = value_info(out);
    LOCUS_CHECK(vi, "cannot export: graph output '", out, "' has no known type and shape");
    set_type(*vi, out, gp->add_output());
    io.insert(out);
  }

  std::set<std::string> initializers;
  for (const Node& n : low.nodes_) {
    onnx::NodeProto* np = gp->add_node();
    np->set_op_type(n.op);
    np->set_name(n.name);
    for (const auto& in : n.inputs) {
      np->add_input(in);
      if (!in.empty() && (g->is_constant(in) || low.extra_constants_.count(in))) initializers.insert(in);
    }
    for (const auto& out : n.outputs) np->add_output(out);
    for (const auto& [key, v] : n.attrs) set_attr(key, v, np->add_attribute());
  }
  for (const std::string& name : initializers) {
    auto it = low.extra_constants_.find(name);
    const Tensor& t = it != low.extra_constants_.end() ? it->second : *g->constant(name);
    onnx_import::tensor_to_proto(t, name, gp->add_initializer());
  }
  for (const Node& n : low.nodes_)
    for (const auto& out : n.outputs) {
      if (out.empty() || io.count(out)) continue;
      if (auto vi = value_info(out)) set_type(*vi, out, gp->add_value_info());
    }
}

std::string serialize_model(const Graph& g, const ExportOptions& o) {
  onnx::ModelProto m;
  to_model_proto(g, &m, o);
  LOCUS_CHECK(m.ByteSizeLong() < (size_t(1) << 31), "cannot export: the model is larger than 2 GiB, "
              "the limit of a single protobuf (external data is not written)");
  std::string bytes;
  LOCUS_CHECK(m.SerializeToString(&bytes), "cannot serialize the ONNX model");
  return bytes;
}

void save_model(const Graph& g, const std::string& path, const ExportOptions& o) {
  LOCUS_CHECK(!path.empty(), "cannot write the model: empty output path");
  const std::string bytes = serialize_model(g, o);  // refusals happen before anything is written
  const fs::path target(path);
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code ec;
  LOCUS_CHECK(fs::is_directory(dir, ec), "cannot write model '", path, "': folder '", dir.string(),
              "' does not exist");
  LOCUS_CHECK(!fs::is_directory(target, ec), "cannot write model '", path, "': it is a folder");
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  // Signals are held while the temporary file is created and its name registered, so that no
  // interrupt falls between the two.
  sigset_t block, old;
  sigemptyset(&block);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&block, s);
  ::sigprocmask(SIG_BLOCK, &block, &old);
  const int fd = mkstemp(tmp.data());
  const int mk_errno = errno;
  std::optional<TempFileGuard> guard;
  if (fd >= 0) guard.emplace(tmp);  // an interrupt from here on removes the temporary file
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  LOCUS_CHECK(fd >= 0, "cannot write model '", path, "': ", std::strerror(mk_errno));
  auto cleanup = [&](const std::string& why) {
    ::unlink(tmp.c_str());
    fail("cannot write model '", path, "': ", why);
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      cleanup(why);
    }
    done += size_t(w);
  }
  const bool synced = ::fsync(fd) == 0;
  const int sync_errno = errno;
  if (::close(fd) != 0) cleanup(std::strerror(errno));
  if (!synced) cleanup(std::strerror(sync_errno));
  // mkstemp creates 0600; give the model the usual permissions (umask applies).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(tmp.c_str(), 0666 & ~mask);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) cleanup(std::strerror(errno));
}

}  // namespace locus::onnx_export
