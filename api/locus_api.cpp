// The public C++ API (include/locus/locus.h) over the runtime's Session (runtime/session.h): the
// one translation unit of the installed library locus::locus.
#include "locus/locus.h"

#include <cstring>

#include "cli/commands.h"
#include "graph/error.h"
#include "runtime/session.h"

namespace locus::api {

namespace {

DType parse_dtype(const std::string& name) {
  for (DType t : {DType::F32, DType::F64, DType::I64, DType::I32, DType::I8, DType::U8, DType::Bool})
    if (name == dtype_name(t)) return t;
  fail("unknown dtype '", name, "' (float32, float64, int64, int32, int8, uint8 or bool)");
}

TensorInfo info_of(const locus::Session& s, const std::string& name) {
  const ValueInfo vi = s.graph().info(name);
  return {name, dtype_name(vi.dtype), vi.shape};
}

}  // namespace

Tensor Tensor::f32(std::vector<int64_t> shape, const std::vector<float>& values) {
  Tensor t;
  t.shape = std::move(shape);
  LOCUS_CHECK(size_t(checked_numel(t.shape, "tensor")) == values.size(), "Tensor::f32: shape ", shape_str(t.shape),
              " holds ", checked_numel(t.shape, "tensor"), " values, given ", values.size());
  t.data.resize(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

int64_t Tensor::numel() const { return checked_numel(shape, "tensor"); }

const float* Tensor::f32_data() const {
  LOCUS_CHECK(dtype == "float32", "the tensor is ", dtype, ", not float32");
  return reinterpret_cast<const float*>(data.data());
}

struct Session::Impl {
  locus::Session session;
};

Session::Session(const std::string& model, const Options& o) {
  const SessionOptions so = cli::simple_session_options(o.backend, o.threads, o.l2_bytes, o.fuse, o.decompose,
                                                        o.batch, o.max_memory_bytes);
  impl_ = std::make_unique<Impl>(Impl{cli::open_session(model, o.model_dir, so)});
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

std::vector<TensorInfo> Session::inputs() const {
  std::vector<TensorInfo> r;
  for (const std::string& n : impl_->session.input_names()) r.push_back(info_of(impl_->session, n));
  return r;
}

std::vector<TensorInfo> Session::outputs() const {
  std::vector<TensorInfo> r;
  for (const std::string& n : impl_->session.output_names()) r.push_back(info_of(impl_->session, n));
  return r;
}

std::vector<Tensor> Session::run(const std::map<std::string, Tensor>& inputs) {
  std::map<std::string, TensorView> views;
  for (const auto& [name, t] : inputs)
    views[name] = TensorView{parse_dtype(t.dtype), t.shape, t.data.data(), t.data.size()};
  std::vector<locus::Tensor> outs = impl_->session.run_views(views);
  std::vector<Tensor> r;
  for (locus::Tensor& t : outs) {
    Tensor x;
    x.dtype = dtype_name(t.dtype);
    x.shape = t.shape;
    x.data.resize(t.bytes.size());
    if (!t.bytes.empty()) std::memcpy(x.data.data(), t.bytes.data(), t.bytes.size());
    r.push_back(std::move(x));
  }
  return r;
}

std::string version() { return LOCUS_VERSION; }

}  // namespace locus::api
