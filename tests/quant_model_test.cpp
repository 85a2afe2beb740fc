// The quantized MobileNetV2 (../shared/models/mobilenetv2-12-int8, QOperator form) on the reference
// backend against ONNX Runtime's stored outputs (issue 14's bar: at least 99% of the 1000 dequantized
// logits bit-identical, none more than one quantization step away, the same top-1 and top-5 on all
// five sets), and its QDQ form (written by scripts/make-qdq-model.py into the build folder), which
// the fold-qdq pass turns into the same quantized ops: bit-identical outputs. A missing model is a
// failure here, not a skip.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>

#include "graph/cost.h"
#include "importers/onnx/onnx_importer.h"
#include "runtime/session.h"
#include "tests/error_util.h"
#include "tests/real_model_util.h"
#include "tests/test_support.h"

using namespace locus;
namespace fs = std::filesystem;

namespace {

std::string int8_dir() {
  std::string d = test::shared_models_dir();
  if (d.empty()) return "";
  fs::path p = fs::path(d) / "mobilenetv2-12-int8";
  return fs::is_directory(p) ? p.string() : "";
}

Session reference_session(const std::string& model) {
  SessionOptions o;
  o.backend_name = "reference";
  return Session::from_file(model, o);
}

// The QDQ twin, generated once per test process into the build folder.
std::string qdq_dir() {
  static std::string dir = [] {
    const std::string src = int8_dir();
    if (src.empty()) return std::string();
    const std::string out = std::string(LOCUS_BINARY_DIR) + "/test-models/mobilenetv2-12-int8-qdq";
    const std::string cmd = std::string("/usr/bin/python3 ") + LOCUS_SOURCE_DIR + "/scripts/make-qdq-model.py '" +
                            src + "' '" + out + "' > /dev/null";
    if (std::system(cmd.c_str()) != 0) return std::string();
    return out;
  }();
  return dir;
}

}  // namespace

TEST(QuantModel, Int8MobileNetV2ReferenceMatchesOnnxRuntime) {
  const std::string dir = int8_dir();
  ASSERT_FALSE(dir.empty()) << "the int8 model is missing: ../shared/models/mobilenetv2-12-int8 (or $LOCUS_MODEL_DIR)";
  Session s = reference_session(dir + "/mobilenetv2-12-int8.onnx");
  // one quantization step of the output: the scale of its DequantizeLinear
  const Tensor* step_t = s.graph().constant("output_scale");
  ASSERT_NE(step_t, nullptr);
  const double step = step_t->get(0);
  int64_t identical = 0, total = 0;
  for (int k = 0; k < 5; ++k) {
    const std::string set = dir + "/test_data_set_" + std::to_string(k);
    Tensor in = onnx_import::load_tensor_file(set + "/input_0.pb");
    Tensor want = onnx_import::load_tensor_file(set + "/output_0.pb");
    auto out = s.run({{"input", in}});
    ASSERT_EQ(out[0].shape, want.shape);
    int64_t same = 0;
    double worst = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      same += out[0].data<float>()[i] == want.data<float>()[i];
      worst = std::max(worst, std::fabs(double(out[0].data<float>()[i]) - want.data<float>()[i]));
    }
    identical += same;
    total += want.numel();
    EXPECT_GE(double(same), 0.99 * double(want.numel())) << "set " << k << ": " << same << " of " << want.numel()
                                                          << " logits bit-identical";
    EXPECT_LE(worst, step * 1.0001) << "set " << k << ": a logit is more than one step (" << step << ") away";
    EXPECT_EQ(test::top5(out[0]), test::top5(want)) << "set " << k;
    EXPECT_EQ(test::top5(out[0])[0], test::top5(want)[0]) << "set " << k;
  }
  std::printf("int8 MobileNetV2, reference backend: %lld of %lld logits bit-identical to ONNX Runtime (%.2f%%)\n",
              (long long)identical, (long long)total, 100.0 * double(identical) / double(total));
}

TEST(QuantModel, QdqFormFoldsAndMatchesQOperatorBitForBit) {
  const std::string dir = int8_dir();
  ASSERT_FALSE(dir.empty()) << "the int8 model is missing: ../shared/models/mobilenetv2-12-int8 (or $LOCUS_MODEL_DIR)";
  const std::string qdq = qdq_dir();
  ASSERT_FALSE(qdq.empty()) << "scripts/make-qdq-model.py failed";
  Session qop = reference_session(dir + "/mobilenetv2-12-int8.onnx");
  Session s = reference_session(qdq + "/mobilenetv2-12-int8-qdq.onnx");
  // the pass fires once per group: 52 Conv, 1 MatMul, 11 Add, 1 GlobalAveragePool
  std::map<std::string, int> applied;
  for (const PassRemark& r : s.pass_report().remarks)
    if (r.pass == "fold-qdq" && r.kind == RemarkKind::Applied) {
      for (const char* op : {"QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearGlobalAveragePool"})
        if (r.message.find(std::string("became ") + op + " ") != std::string::npos) ++applied[op];
    } else if (r.pass == "fold-qdq" && r.node != "input_QuantizeLinear") {  // that one quantizes the graph input
      ADD_FAILURE() << "fold-qdq missed '" << r.node << "': " << r.message;
    }
  EXPECT_EQ(applied["QLinearConv"], 52);
  EXPECT_EQ(applied["QLinearMatMul"], 1);
  EXPECT_EQ(applied["QLinearAdd"], 11);
  EXPECT_EQ(applied["QLinearGlobalAveragePool"], 1);
  // no float compute op is left
  for (const Node& n : s.graph().nodes)
    EXPECT_TRUE(n.op != "Conv" && n.op != "MatMul" && n.op != "Add" && n.op != "GlobalAveragePool")
        << n.op << " '" << n.name << "' left after fold-qdq";
  for (int k = 0; k < 5; ++k) {
    Tensor in = onnx_import::load_tensor_file(dir + "/test_data_set_" + std::to_string(k) + "/input_0.pb");
    auto a = qop.run({{"input", in}});
    auto b = s.run({{"input", in}});
    ASSERT_EQ(a[0].shape, b[0].shape);
    EXPECT_EQ(a[0].bytes, b[0].bytes) << "set " << k << ": QDQ and QOperator outputs differ";
  }
}

// The native backend runs the model (tests/native_quant_test.cpp), and so does the oneDNN backend with
// its int8 primitives (tests/quant_onednn_test.cpp); the one-line summary of unsupported ops is
// tested in tests/quant_ops_test.cpp.

// The quantized model does the fp32 model's multiply-accumulates (the same layers, int8).
TEST(QuantModel, Int8ModelCountsTheFp32ModelsMacs) {
  const std::string dir = int8_dir(), fp32 = test::mobilenet_fp32_dir();
  ASSERT_FALSE(dir.empty()) << "the int8 model is missing: ../shared/models/mobilenetv2-12-int8 (or $LOCUS_MODEL_DIR)";
  ASSERT_FALSE(fp32.empty()) << "the fp32 model is missing: ../shared/models/mobilenetv2-12-fp32-from-int8";
  Session q = reference_session(dir + "/mobilenetv2-12-int8.onnx");
  SessionOptions o;
  o.backend_name = "reference";
  o.pipeline.disabled_passes = {"fuse-inverted-residual"};
  Session f = Session::from_file(fp32 + "/mobilenetv2-12-fp32-from-int8.onnx", o);
  EXPECT_GT(graph_macs(q.graph()), 290'000'000);
  EXPECT_EQ(graph_macs(q.graph()), graph_macs(f.graph()));
}
