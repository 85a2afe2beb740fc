#include "runtime/backend.h"

#include <cstdlib>
#include <cstring>
#include <map>

#include "graph/op_registry.h"
#include "runtime/machine_info.h"

namespace locus {

std::unique_ptr<Backend> make_native_backend();
std::unique_ptr<Backend> make_native_unfused_backend();
std::unique_ptr<Backend> make_reference_backend();
std::unique_ptr<Backend> make_onednn_backend();
std::unique_ptr<Backend> make_onednn_dwfused_backend();
std::unique_ptr<Backend> make_accel_backend();  // runtime/accel_backend.cpp

void Executable::run_views(const std::vector<TensorView>& inputs, std::vector<Tensor>& outputs) {
  std::vector<Tensor> copies;
  copies.reserve(inputs.size());
  std::vector<const Tensor*> ptrs;
  for (const TensorView& v : inputs) {
    Tensor t(v.dtype, v.shape);
    if (v.bytes) std::memcpy(t.bytes.data(), v.data, v.bytes);
    copies.push_back(std::move(t));
  }
  for (const Tensor& t : copies) ptrs.push_back(&t);
  run(ptrs, outputs);
}

void require_float_graph(const Graph& g, const std::string& backend,
                         const std::function<bool(const std::string& op)>& handles) {
  require_supported_graph(g, backend, handles, [](const std::string&, DType t) { return t == DType::F32; });
}

void require_supported_graph(const Graph& g, const std::string& backend,
                             const std::function<bool(const std::string& op)>& handles,
                             const std::function<bool(const std::string& op, DType t)>& handles_dtype) {
  // One entry per distinct problem, with its count and first node, in order of first appearance (a
  // quantized model has dozens of nodes of each op: the message stays one short line).
  struct Problem {
    std::string what, first;
    int64_t count = 0;
  };
  std::vector<Problem> problems;
  std::map<std::string, size_t> index;
  auto add = [&](const std::string& what, const std::string& node) {
    auto [it, fresh] = index.emplace(what, problems.size());
    if (fresh) problems.push_back({what, node, 0});
    ++problems[it->second].count;
  };
  for (auto& n : g.nodes) {
    // Ops of another domain are asked for as "<domain>.<op>" (e.g. "locus.FusedInvertedResidual").
    const std::string key = op_key(n);
    if (!handles(key)) {
      add(key, n.name);
      continue;
    }
    for (auto& in : n.inputs)  // runtime values only: constants are the builders' business
      if (!in.empty() && !g.constant(in) && !handles_dtype(key, g.info(in).dtype))
        add(cat(n.op, " reading ", dtype_name(g.info(in).dtype)), n.name);
    for (auto& out : n.outputs)
      if (!out.empty() && !handles_dtype(key, g.info(out).dtype))
        add(cat(n.op, " producing ", dtype_name(g.info(out).dtype)), n.name);
  }
  std::string msg;
  for (size_t i = 0; i < problems.size(); ++i) {
    const Problem& p = problems[i];
    msg += i ? "; " : "";
    msg += p.count == 1 ? cat(p.what, " (node '", p.first, "')") : cat(p.what, " \u00d7", p.count, ", first '", p.first, "'");
  }
  for (auto& in : g.inputs)
    if (!handles_dtype("", g.info(in).dtype)) msg += cat(msg.empty() ? "" : "; ", "input '", in, "' of type ", dtype_name(g.info(in).dtype));
  if (msg.empty()) return;
  throw Unsupported(backend + " backend cannot run: " + msg);
}

const char* setting_source_name(SettingSource s) {
  switch (s) {
    case SettingSource::Option: return "option";
    case SettingSource::Env: return "env";
    case SettingSource::OS: return "os";
    case SettingSource::Default: return "default";
  }
  return "?";
}

std::string PointwiseTilingSettings::describe() const {
  const char* how = "; 1x1 convs run as one GEMM each";
  if (!enabled()) {
    if (l2_source == SettingSource::Default)
      return cat("pointwise tiling off: the OS reports no L2 size (set --l2 or LOCUS_L2)", how);
    return cat("pointwise tiling off (L2 0 from ", setting_source_name(l2_source), ")", how);
  }
  return cat("pointwise tiling: L2 ", format_bytes(l2_bytes), " (", setting_source_name(l2_source), "), S = ",
             buffer_entries, " floats (x", kL2SafetyFraction, "), ", schedule::tile_order_name(order), " order (",
             setting_source_name(order_source), ")");
}

std::string l2_bytes_problem(int64_t l2_bytes) {
  if (l2_bytes == 0 || l2_bytes >= kMinL2Bytes) return {};
  return cat(" is below the minimum of ", format_bytes(kMinL2Bytes),
             " (sizes are in bytes, e.g. 512K, 1M; 0 turns tiling off)");
}

PointwiseTilingSettings resolve_pointwise_tiling(const BackendOptions& o) {
  PointwiseTilingSettings t;
  LOCUS_CHECK(o.l2_bytes >= -1, "l2_bytes must be -1 (environment or OS), 0 (off) or a size in bytes, got ",
              o.l2_bytes);
  if (o.l2_bytes >= 0) {
    LOCUS_CHECK(l2_bytes_problem(o.l2_bytes).empty(), "l2_bytes ", o.l2_bytes, l2_bytes_problem(o.l2_bytes));
    t.l2_bytes = o.l2_bytes;
    t.l2_source = SettingSource::Option;
  } else if (const char* e = std::getenv("LOCUS_L2"); e && *e) {
    t.l2_bytes = parse_bytes(e);
    LOCUS_CHECK(t.l2_bytes >= 0, "LOCUS_L2='", e, "' is not a size (e.g. 512K, 1M, 0 = off)");
    LOCUS_CHECK(l2_bytes_problem(t.l2_bytes).empty(), "LOCUS_L2='", e, "'", l2_bytes_problem(t.l2_bytes));
    t.l2_source = SettingSource::Env;
  } else {
    const int64_t os = current_core_cache_bytes(2);
    if (os >= kMinL2Bytes) {
      t.l2_bytes = os;
      t.l2_source = SettingSource::OS;
    }  // else: unknown, off (l2_source stays Default)
  }
  t.buffer_entries = l2_buffer_entries(t.l2_bytes);
  if (o.tile_order) {
    t.order = *o.tile_order;
    t.order_source = SettingSource::Option;
  } else if (const char* e = std::getenv("LOCUS_TILE_ORDER"); e && *e) {
    LOCUS_CHECK(schedule::parse_tile_order(e, &t.order), "LOCUS_TILE_ORDER='", e, "' is not one of scan, row, col");
    t.order_source = SettingSource::Env;
  }
  return t;
}

std::vector<std::string> backend_names() { return {"native", "native-unfused", "reference", "onednn", "onednn-dwfused", "accel"}; }

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "native") return make_native_backend();
  if (name == "native-unfused") return make_native_unfused_backend();
  if (name == "reference") return make_reference_backend();
  if (name == "onednn") return make_onednn_backend();
  if (name == "onednn-dwfused") return make_onednn_dwfused_backend();
  if (name == "accel") return make_accel_backend();
  std::string known;
  for (auto& b : backend_names()) known += (known.empty() ? "" : ", ") + b;
  fail("unknown backend '", name, "' (known: ", known, ")");
}

}  // namespace locus
