// The public C++ API of locus, installed as include/locus/locus.h (find_package(locus) and
// target_link_libraries(app locus::locus)): load a model, create a session with options, run it,
// read its outputs. It includes no internal header; the runtime behind it is runtime/session.h.
//
//   locus::api::Session s("mobilenetv2-12", {});           // a path, a name in the model search path, builtin:NAME
//   locus::api::Tensor x = locus::api::Tensor::f32({1, 3, 224, 224}, pixels);
//   std::vector<locus::api::Tensor> out = s.run({{s.inputs()[0].name, x}});
//
// Errors (a missing model, a bad option, an input of the wrong shape or type) are thrown as
// std::runtime_error with the CLI's one-line message. Threads: as runtime/session.h says, one
// session runs one inference at a time (concurrent run() calls wait); use one session per thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace locus::api {

// A dense row-major tensor: dtype "float32", "float64", "int64", "int32", "int8", "uint8" or "bool".
struct Tensor {
  std::string dtype = "float32";
  std::vector<int64_t> shape;
  std::vector<unsigned char> data;  // numel x element size bytes

  static Tensor f32(std::vector<int64_t> shape, const std::vector<float>& values);
  int64_t numel() const;
  const float* f32_data() const;  // throws unless dtype is float32
};

// The name, dtype and shape of a session input or output.
struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
};

struct Options {
  std::string backend = "native";  // native, native-unfused, onednn, onednn-dwfused, reference, accel
  int threads = 0;                 // 0: all cores (OpenMP default)
  int64_t l2_bytes = -1;           // cache tiling buffer: -1 = $LOCUS_L2, then the OS; 0 = off
  bool fuse = true;                // fuse inverted-residual blocks (the CLI's --no-fuse when false)
  std::string decompose;           // CP decomposition policy ("rank=16", "ratio=0.25", ...); empty: none
  std::string model_dir;           // searched before $LOCUS_MODEL_DIR and ../shared/models
  int64_t batch = 1;               // value of a symbolic batch axis
  int64_t max_memory_bytes = 0;    // 0: 75% of the machine's usable memory
};

class Session {
 public:
  explicit Session(const std::string& model, const Options& options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  std::vector<TensorInfo> inputs() const;
  std::vector<TensorInfo> outputs() const;
  // Named inputs; the outputs in outputs() order.
  std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "0.1.0"
std::string version();

}  // namespace locus::api
