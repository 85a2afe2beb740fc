// ONNX model -> graph IR: model-level checks (IR version, opset), initializers, graph inputs and
// outputs, nodes with typed attributes and unique names. The opset-specific rewriting into the
// canonical op forms lives in opset_normalize.cpp; tensor conversion in tensor_proto.cpp.
#include "importers/onnx/onnx_importer.h"

#include <onnx/onnx_pb.h>

#include <filesystem>
#include <map>
#include <set>

#include "importers/onnx/importer_internal.h"

namespace fs = std::filesystem;

namespace locus::onnx_import {
namespace {

// Opsets 1 to 6 are accepted only for the ops (and forms) listed in legacy_opsets.cpp.
constexpr int64_t kMinOpset = 1, kMaxOpset = 17;
// IR 3 (ONNX 1.0) is the first with opset imports; IR 10 is what ONNX 1.16 writes, and a newer
// exporter may write a newer IR for an old opset. Newer IRs only add dtypes we refuse.
constexpr int64_t kMinIrVersion = 3, kMaxIrVersion = 10;

// Marker attribute for attributes the IR cannot hold (GRAPH, SPARSE_TENSOR, TENSORS, TYPE_PROTO,
// function-body references...). Such attributes are left out and their names listed here, so the node
// stays in the graph (and can be reported with all other unsupported nodes) but is never executed
// with a silently missing attribute: shape inference must refuse any node that carries this attr.
constexpr const char* kUnsupportedAttr = "locus.unsupported_attr";

using AP = onnx::AttributeProto;

// The attribute's type, inferred from the field that is set when an old exporter left it out.
int attr_type(const AP& a) {
  if (a.type() != AP::UNDEFINED) return a.type();
  if (a.has_f()) return AP::FLOAT;
  if (a.has_i()) return AP::INT;
  if (a.has_s()) return AP::STRING;
  if (a.has_t()) return AP::TENSOR;
  if (a.has_g()) return AP::GRAPH;
  if (a.has_sparse_tensor()) return AP::SPARSE_TENSOR;
  if (a.floats_size()) return AP::FLOATS;
  if (a.ints_size()) return AP::INTS;
  if (a.strings_size()) return AP::STRINGS;
  if (a.tensors_size()) return AP::TENSORS;
  if (a.graphs_size()) return AP::GRAPHS;
  return AP::UNDEFINED;
}

// Converts one attribute. Returns false if the IR cannot represent it (see kUnsupportedAttr).
bool convert_attr(const AP& a, const std::string& base_dir, Attr* out) {
  if (!a.ref_attr_name().empty()) return false;
  switch (attr_type(a)) {
    case AP::FLOAT: *out = a.f(); return true;
    case AP::INT: *out = int64_t(a.i()); return true;
    case AP::STRING: *out = a.s(); return true;
    case AP::TENSOR: *out = tensor_from_proto(a.t(), base_dir); return true;
    case AP::FLOATS: *out = std::vector<float>(a.floats().begin(), a.floats().end()); return true;
    case AP::INTS: *out = std::vector<int64_t>(a.ints().begin(), a.ints().end()); return true;
    case AP::STRINGS: *out = std::vector<std::string>(a.strings().begin(), a.strings().end()); return true;
    case AP::UNDEFINED: fail("attribute '", a.name(), "' has no value");
    default: return false;  // GRAPH(S), TENSORS, SPARSE_TENSOR(S), TYPE_PROTO(S)
  }
}

Node convert_node(const onnx::NodeProto& np, int index, const std::string& base_dir) {
  Node n;
  n.op = np.op_type();
  n.name = np.name();
  n.domain = np.domain() == "ai.onnx" ? "" : np.domain();
  const std::string what = cat("node ", index, " ('", np.name(), "')");
  LOCUS_CHECK(!n.op.empty(), what, " has no op_type");
  n.inputs.assign(np.input().begin(), np.input().end());
  n.outputs.assign(np.output().begin(), np.output().end());
  std::string unsupported;
  for (const auto& a : np.attribute()) {
    LOCUS_CHECK(!a.name().empty(), what, " (", n.op, ") has an attribute without a name");
    LOCUS_CHECK(a.name().rfind("locus.", 0) != 0, what, " (", n.op, ") has attribute '", a.name(),
                "': the 'locus.' prefix is reserved for the runtime");
    LOCUS_CHECK(!n.attrs.count(a.name()), what, " (", n.op, ") has attribute '", a.name(), "' twice");
    Attr v;
    try {
      if (!convert_attr(a, base_dir, &v)) {
        unsupported += (unsupported.empty() ? "" : ",") + a.name();
        continue;
      }
    } catch (...) {
      detail::rethrow_with_prefix(cat(what, " (", n.op, ") attribute '", a.name(), "': "));
    }
    n.attrs.emplace(a.name(), std::move(v));
  }
  if (!unsupported.empty()) n.attrs[kUnsupportedAttr] = unsupported;
  return n;
}

// Node names as in the model; empty ones become "<op>_<index>"; duplicates get a "_<k>" suffix.
void make_node_names_unique(std::vector<Node>& nodes) {
  std::set<std::string> explicit_names, used;
  std::map<std::string, int> next_suffix;  // per base name, so many duplicates stay linear
  for (auto& n : nodes)
    if (!n.name.empty()) explicit_names.insert(n.name);
  for (size_t i = 0; i < nodes.size(); ++i) {
    Node& n = nodes[i];
    if (!n.name.empty() && used.insert(n.name).second) continue;
    std::string base = n.name.empty() ? cat(n.op, "_", i) : n.name;
    std::string name = base;
    int& k = next_suffix[base];
    while (used.count(name) || (name != n.name && explicit_names.count(name))) name = cat(base, "_", ++k);
    n.name = name;
    used.insert(name);
  }
}

DType input_dtype(int32_t onnx_type, const std::string& name) {
  DType dt = detail::dtype_from_onnx(onnx_type);
  if (dt == DType::Undefined)
    throw Unsupported(cat("graph input '", name, "' has data type ", detail::onnx_dtype_name(onnx_type),
                          ", which is not supported"));
  return dt;
}

void add_graph_input(Graph& g, const onnx::ValueInfoProto& vi, const ImportOptions& opts) {
  const std::string& name = vi.name();
  LOCUS_CHECK(!name.empty(), "a graph input has no name");
  if (g.constants.count(name)) return;  // IR < 4 lists initializers as inputs: not a runtime input
  LOCUS_CHECK(!g.values.count(name), "graph input '", name, "' is listed twice");
  if (!vi.type().has_tensor_type())
    throw Unsupported(cat("graph input '", name, "' is not a tensor (sequence, map and optional inputs are not supported)"));
  const auto& tt = vi.type().tensor_type();
  DType dt = input_dtype(tt.elem_type(), name);
  LOCUS_CHECK(tt.has_shape(), "graph input '", name, "' has no shape (rank unknown)");
  Shape shape;
  std::vector<std::string> symbolic;
  bool any_symbolic = false;
  for (const auto& d : tt.shape().dim()) {
    shape.push_back(d.has_dim_value() ? d.dim_value() : opts.default_dim);
    symbolic.push_back(d.has_dim_value() ? "" : d.has_dim_param() && !d.dim_param().empty() ? d.dim_param() : "?");
    any_symbolic = any_symbolic || !d.has_dim_value();
  }
  if (any_symbolic) g.symbolic_dims[name] = std::move(symbolic);
  try {
    checked_numel(shape, "input");
  } catch (const Error&) {
    fail("graph input '", name, "' has absurd dimensions ", shape_str(shape), " (negative, or more than ",
         kMaxTensorElements, " elements)");
  }
  g.inputs.push_back(name);
  g.values[name] = ValueInfo{dt, shape, true};
}

// Consumes gp's initializer data (cleared once copied, to halve the peak memory of big models).
Graph build_graph(onnx::GraphProto& gp, int64_t opset, const std::string& base_dir, const ImportOptions& opts) {
  LOCUS_CHECK(opts.default_dim >= 1, "ImportOptions::default_dim must be at least 1, not ", opts.default_dim);
  Graph g;
  g.name = gp.name();
  g.opset = opset;
  if (gp.sparse_initializer_size())
    throw Unsupported(cat("sparse initializer '", gp.sparse_initializer(0).values().name(), "' is not supported"));
  for (auto& t : *gp.mutable_initializer()) {
    LOCUS_CHECK(!t.name().empty(), "an initializer has no name");
    LOCUS_CHECK(!g.constants.count(t.name()), "initializer '", t.name(), "' is defined twice");
    g.constants.emplace(t.name(), tensor_from_proto(t, base_dir));
    t.clear_raw_data();
    t.clear_float_data();
  }
  for (const auto& vi : gp.input()) add_graph_input(g, vi, opts);
  for (const auto& vi : gp.output()) {
    LOCUS_CHECK(!vi.name().empty(), "a graph output has no name");
    g.outputs.push_back(vi.name());
  }
  for (int k = 0; k < gp.node_size(); ++k) g.nodes.push_back(convert_node(gp.node(k), k, base_dir));
  make_node_names_unique(g.nodes);

  detail::canonicalize(g);

  // Definitions must be unique; topo_sort checks node/node and node/constant clashes.
  std::set<std::string> defined(g.inputs.begin(), g.inputs.end());
  for (auto& [name, t] : g.constants) defined.insert(name);
  for (const Node& n : g.nodes)
    for (const auto& o : n.outputs) {
      if (o.empty()) continue;
      LOCUS_CHECK(!g.values.count(o), "value '", o, "' is both a graph input and the output of node '", n.name, "'");
      defined.insert(o);
    }
  for (const auto& o : g.outputs)
    LOCUS_CHECK(defined.count(o), "graph output '", o, "' is not produced by any node, input or constant");
  g.topo_sort();
  detail::resolve_legacy_broadcast(g);  // needs the topological order
  return g;
}

void parse_model(const void* data, size_t size, const std::string& label, onnx::ModelProto* m) {
  LOCUS_CHECK(detail::parse_bounded(data, size, m), label,
              " is not a valid ONNX model (protobuf parse failed; truncated or not ONNX?)");
}

// Checks the model header and builds the graph; consumes m's tensor data.
Graph import_model(onnx::ModelProto& m, const std::string& base_dir, const ImportOptions& opts,
                   const std::string& label) {
  LOCUS_CHECK(m.has_ir_version() && m.ir_version() > 0, label, " has no ir_version (not an ONNX model?)");
  if (m.ir_version() < kMinIrVersion || m.ir_version() > kMaxIrVersion)
    throw Unsupported(cat(label, " has IR version ", m.ir_version(), "; supported are ", kMinIrVersion, " to ",
                          kMaxIrVersion));
  LOCUS_CHECK(m.has_graph(), label, " has no graph");
  int64_t opset = 0;
  bool has_default = false;
  for (const auto& o : m.opset_import()) {
    if (o.domain() != "" && o.domain() != "ai.onnx") continue;  // other domains: their nodes are kept
    LOCUS_CHECK(!has_default || opset == o.version(), label, " imports the default ONNX domain twice (opsets ",
                opset, " and ", o.version(), ")");
    opset = o.version();
    has_default = true;
  }
  if (!has_default) {
    std::string msg = cat(label, " declares no opset for the default ONNX domain");
    if (m.opset_import_size() > 0)  // e.g. only ai.onnx.preview.training: a model we cannot run
      throw Unsupported(cat(msg, " (only '", m.opset_import(0).domain(), "')"));
    fail(msg);
  }
  if (opset < kMinOpset || opset > kMaxOpset)
    throw Unsupported(cat(label, " uses opset ", opset, " of the default ONNX domain; supported are opsets ",
                          kMinOpset, " to ", kMaxOpset, " (opsets before 7 only for some ops)"));
  try {
    return build_graph(*m.mutable_graph(), opset, base_dir, opts);
  } catch (...) {
    detail::rethrow_with_prefix(label + ": ");
  }
}

}  // namespace

Graph load_model(const std::string& path, const ImportOptions& opts) {
  const std::string label = cat("model '", path, "'");
  onnx::ModelProto m;
  {
    std::string bytes = detail::read_file_bytes(path, "model file");
    parse_model(bytes.data(), bytes.size(), label, &m);
  }  // the file's bytes are freed before the tensors are copied out of m
  fs::path dir = fs::path(path).parent_path();
  return import_model(m, dir.empty() ? std::string(".") : dir.string(), opts, label);
}

Graph load_model_from_bytes(const void* data, size_t size, const ImportOptions& opts) {
  LOCUS_CHECK(size > 0, "model bytes are empty");
  LOCUS_CHECK(size <= size_t(detail::kMaxFileBytes), "model bytes are larger than 2 GiB");
  onnx::ModelProto m;
  parse_model(data, size, "model bytes", &m);
  return import_model(m, "", opts, "model bytes");
}

}  // namespace locus::onnx_import
