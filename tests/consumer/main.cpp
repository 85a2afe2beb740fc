// Uses only the installed public API (include/locus/locus.h): opens the in-code MobileNetV2, checks
// its input and output, runs it on a constant image and checks the result, and checks that errors
// arrive as one-line std::runtime_error. Prints "consumer: ok" and exits 0 when all hold.
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <locus/locus.h>

static int failures = 0;
#define EXPECT(cond)                                              \
  do {                                                            \
    if (!(cond)) {                                                \
      std::fprintf(stderr, "consumer: failed: %s\n", #cond);      \
      ++failures;                                                 \
    }                                                             \
  } while (0)

int main() {
  locus::api::Options o;
  o.threads = 1;
  locus::api::Session s("builtin:mobilenetv2", o);
  EXPECT(s.inputs().size() == 1);
  EXPECT(s.outputs().size() == 1);
  const locus::api::TensorInfo in = s.inputs()[0];
  EXPECT(in.dtype == "float32");
  EXPECT((in.shape == std::vector<int64_t>{1, 3, 224, 224}));
  const locus::api::Tensor x = locus::api::Tensor::f32(in.shape, std::vector<float>(3 * 224 * 224, 0.5f));
  const auto out = s.run({{in.name, x}});
  EXPECT(out.size() == 1);
  EXPECT((out[0].shape == std::vector<int64_t>{1, 1000}));
  bool finite = out[0].numel() == 1000;
  for (int64_t i = 0; finite && i < out[0].numel(); ++i) finite = std::isfinite(out[0].f32_data()[i]);
  EXPECT(finite);
  // the same input again gives the same output
  const auto again = s.run({{in.name, x}});
  EXPECT(again[0].data == out[0].data);
  // a wrong shape: one-line error naming the input
  try {
    s.run({{in.name, locus::api::Tensor::f32({1, 3, 2, 2}, std::vector<float>(12, 0.f))}});
    EXPECT(!"a wrong shape was accepted");
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT(m.find("has shape [1,3,2,2]") != std::string::npos && m.find('\n') == std::string::npos);
  }
  try {
    locus::api::Session missing("no-such-model-anywhere.onnx");
    EXPECT(!"a missing model was accepted");
  } catch (const std::runtime_error& e) {
    EXPECT(std::string(e.what()).find("not found") != std::string::npos);
  }
  EXPECT(locus::api::version() == "0.1.0");
  if (failures) return 1;
  std::printf("consumer: ok (%s)\n", locus::api::version().c_str());
  return 0;
}
