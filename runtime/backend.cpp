#include "runtime/backend.h"

namespace locus {

std::unique_ptr<Backend> make_native_backend();
std::unique_ptr<Backend> make_reference_backend();
std::unique_ptr<Backend> make_onednn_backend();
std::unique_ptr<Backend> make_onednn_dwfused_backend();

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
