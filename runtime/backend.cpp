#include "runtime/backend.h"

namespace locus {

std::unique_ptr<Backend> make_native_backend();
std::unique_ptr<Backend> make_reference_backend();
std::unique_ptr<Backend> make_onednn_backend();
std::unique_ptr<Backend> make_onednn_dwfused_backend();

void require_float_graph(const Graph& g, const std::string& backend,
                         const std::function<bool(const std::string& op)>& handles) {
  std::vector<std::string> problems;
  for (auto& n : g.nodes) {
    if (!handles(n.op) || !n.domain.empty()) problems.push_back(cat(n.op, " (node '", n.name, "')"));
    for (auto& out : n.outputs)
      if (!out.empty() && g.info(out).dtype != DType::F32)
        problems.push_back(cat(n.op, " (node '", n.name, "') producing ", dtype_name(g.info(out).dtype)));
  }
  for (auto& in : g.inputs)
    if (g.info(in).dtype != DType::F32) problems.push_back(cat("input '", in, "' of type ", dtype_name(g.info(in).dtype)));
  if (problems.empty()) return;
  std::string msg = backend + " backend cannot run: ";
  for (size_t i = 0; i < problems.size(); ++i) msg += (i ? ", " : "") + problems[i];
  throw Unsupported(msg);
}

std::vector<std::string> backend_names() { return {"native", "reference", "onednn", "onednn-dwfused"}; }

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "native") return make_native_backend();
  if (name == "reference") return make_reference_backend();
  if (name == "onednn") return make_onednn_backend();
  if (name == "onednn-dwfused") return make_onednn_dwfused_backend();
  std::string known;
  for (auto& b : backend_names()) known += (known.empty() ? "" : ", ") + b;
  fail("unknown backend '", name, "' (known: ", known, ")");
}

}  // namespace locus
