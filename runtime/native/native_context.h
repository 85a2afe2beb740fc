// What the native backend's op builders see while a session is compiled: the values as the backend
// stores them (4-D activations NHWC, everything else row-major), buffers, the thread count and the
// plans. A builder turns one node into a Step, a closure whose pointers are bound now and which
// only computes when the session runs. Builders live one family per file (runtime/native/ops_*.cpp)
// and are found through the op registry (runtime/native/op_registry.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "kernels/native/activation.h"
#include "runtime/backend.h"

namespace locus::native {

enum class Layout { RowMajor, NHWC };

inline std::vector<int64_t> rowmajor_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

// A value as the native backend stores it: 4-D values NHWC, everything else row-major. Its strides
// are computed once, when the value is created at compile time, so run-time steps only read them.
// float32 values, and uint8 / int8 ones (the quantized ops, runtime/native/ops_quant.cpp): those have
// the same layouts and element strides, one byte per element, read through bytes().
class Val {
 public:
  Val() = default;
  Val(Shape s, float* p, DType t = DType::F32) : shape(std::move(s)), ptr(p), dtype(t) {
    layout = shape.size() == 4 ? Layout::NHWC : Layout::RowMajor;
    rowmajor_ = rowmajor_strides(shape);
    if (layout == Layout::NHWC) strides_ = {shape[1] * shape[2] * shape[3], 1, shape[3] * shape[1], shape[1]};
    else strides_ = rowmajor_;
  }
  Shape shape;
  Layout layout = Layout::RowMajor;
  float* ptr = nullptr;  // the first element (of a 1-byte value too: see bytes())
  DType dtype = DType::F32;
  uint8_t* bytes() const { return reinterpret_cast<uint8_t*>(ptr); }
  bool is_byte() const { return dtype == DType::U8 || dtype == DType::I8; }
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
inline std::vector<int64_t> broadcast_strides(const Val& v, const Shape& out) {
  const auto& st = v.strides();
  std::vector<int64_t> r(out.size(), 0);
  size_t off = out.size() - v.shape.size();
  for (size_t i = 0; i < v.shape.size(); ++i) r[off + i] = v.shape[i] == 1 ? 0 : st[i];
  return r;
}

using Step = std::function<void()>;

// Where a step's workspace is (NativeContext::workspace): bound after every step is built.
struct StepWorkspace {
  float* p = nullptr;
  float* data() const { return p; }
};

// The fused activation of a Conv (attrs locus.activation / _min / _max), none if it has none.
kernels::Activation activation_of(const Node& n);

class NativeContext {
 public:
  virtual ~NativeContext() = default;
  virtual const Graph& graph() const = 0;
  // The thread count every kernel is planned for and runs with.
  virtual int threads() const = 0;
  // The pointwise tiling settings (resolved once, before any Conv is packed).
  virtual const PointwiseTilingSettings& tiling() const = 0;
  // A runtime value (in the arena) or a constant materialised in the backend's layout.
  virtual Val& val(const std::string& name) = 0;
  // A step-owned buffer of `floats`, allocated now and counted in the memory budget.
  virtual float* scratch(int64_t floats) = 0;
  // A step-owned buffer of `bytes` bytes (for 1-byte values), allocated now like scratch().
  virtual uint8_t* scratch_bytes(int64_t bytes) = 0;
  // A row-major view of x: x itself, or a scratch copy that `pre` refreshes.
  virtual const float* rowmajor_in(const Val& x, Step& pre) = 0;
  // A row-major place to write y: y itself, or scratch whose contents `post` moves into y.
  virtual float* rowmajor_out(const Val& y, Step& post) = 0;
  // The same for 1-byte (uint8 / int8) values.
  virtual const uint8_t* rowmajor_in_bytes(const Val& x, Step& pre) = 0;
  virtual uint8_t* rowmajor_out_bytes(const Val& y, Step& post) = 0;
  // The step's workspace: a step asks for `floats` now and reads workspace()->data() when it runs
  // (the address is bound once every step is built). When the values' arena fits in the L2 it is
  // planned in the arena, alive during this step only: it takes memory that values dead by then
  // have left (still in the cache: their producers and readers have just run). Otherwise the
  // workspaces share one buffer.
  virtual void need_workspace(int64_t floats) = 0;
  // Bytes of the arena not live during this step, the arena as large as the values and the steps
  // built before this one make it: a workspace up to this size (if the free memory is one gap)
  // leaves the arena's size as it is. A step may size its buffers by it (the fused int8 block does).
  // -1 when workspaces are not planned in the arena (its values do not fit in the L2, or the L2 is
  // unknown): they then share one buffer.
  virtual int64_t workspace_room() const = 0;
  virtual const StepWorkspace* workspace() = 0;
  // Plans made while building, for `locus info --plans` and the benchmarks.
  virtual void add_pointwise_plan(PointwisePlanRow row) = 0;
  virtual void add_fused_plan(FusedBlockPlanRow row) = 0;
  virtual void add_winograd_plan(WinogradPlanRow row) = 0;
  // Whether 3x3 stride-1 convs may run as Winograd (BackendOptions::winograd).
  virtual bool winograd() const = 0;
  // A more specific name of the implementation chosen for the node being built (e.g. which
  // convolution path), reported by --remarks; defaults to the registry entry's name.
  virtual void set_implementation(std::string name) = 0;
};

}  // namespace locus::native
