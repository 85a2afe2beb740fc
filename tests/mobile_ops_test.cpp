// The ops of mobile CNNs (HardSigmoid, HardSwish, Sigmoid, Cast, Slice, Resize, ConvTranspose):
// shape inference and canonical attributes, the reference kernels against values worked out from
// the ONNX definitions, the native (and oneDNN) kernels against the reference on ragged shapes,
// and the two PP-OCR models against ONNX Runtime's outputs (when /work/shared/models is there).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "graph/eval/eval_ops.h"
#include "graph/ops.h"
#include "importers/onnx/onnx_importer.h"
#include "runtime/session.h"
#include "tests/cli_util.h"
#include "cli/image.h"
#include "tests/graph_builder_util.h"
#include "tests/image_encode.h"

using namespace locus;
using locus::test::GraphBuilder;
using locus::test::random_tensor;
namespace fs = std::filesystem;

namespace {

using A = std::map<std::string, Attr>;
using Ints = std::vector<int64_t>;
using Floats = std::vector<float>;

Tensor i64(const Ints& v) { return Tensor::from_i64({int64_t(v.size())}, v); }
Tensor f32(const Floats& v) { return Tensor::from_f32({int64_t(v.size())}, v); }

// Shape inference of one node whose inputs are given as infos (constants where non-null).
std::vector<ValueInfo> infer(Node& n, const std::vector<ValueInfo>& in, const std::vector<const Tensor*>& consts) {
  for (size_t k = 0; k < in.size(); ++k)
    if (n.inputs.size() <= k) n.inputs.push_back("in" + std::to_string(k));
  if (n.outputs.empty()) n.outputs = {"y"};
  if (n.name.empty()) n.name = "n";
  return infer_node(n, in, consts);
}

ValueInfo vf(Shape s) { return ValueInfo{DType::F32, std::move(s), true}; }
ValueInfo vi(const Tensor& t) { return ValueInfo{t.dtype, t.shape, true}; }

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// The one-node graph `op` on input x of `shape` (plus constant inputs), run on backend b.
Tensor run_one(const std::string& backend, const std::string& op, const Tensor& x, const std::vector<Tensor>& consts,
               const A& attrs) {
  GraphBuilder b;
  std::vector<std::string> ins = {b.input("x", x.shape)};
  for (size_t k = 0; k < consts.size(); ++k)
    ins.push_back(consts[k].dtype == DType::Undefined ? "" : b.constant("c" + std::to_string(k), consts[k]));
  std::string y = b.node(op, ins, attrs, "y");
  SessionOptions o;
  o.backend_name = backend;
  o.pipeline.optimize = false;
  return Session::from_graph(b.finish({y}), o).run({{"x", x}})[0];
}

void expect_near_all(const Tensor& got, const std::vector<float>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.numel(), int64_t(want.size())) << what;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got.data<float>()[i], want[i], tol) << what << " index " << i;
}

double max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape, b.shape);
  if (a.shape != b.shape) return INFINITY;
  return test::max_abs_diff(a.data<float>(), b.data<float>(), size_t(a.numel()));
}

}  // namespace

// ---------------------------------------------------------------- shape inference

TEST(MobileShapes, ResizeFromScalesOrSizesAndItsRefusals) {
  Tensor scales = f32({1, 1, 2.f, 0.6f}), sizes = i64({1, 3, 11, 4}), none;
  Node n;
  n.op = "Resize";
  n.inputs = {"x", "", "s"};
  auto out = infer(n, {vf({1, 3, 5, 7}), {}, vi(scales)}, {nullptr, nullptr, &scales});
  EXPECT_EQ(out[0].shape, (Shape{1, 3, 10, 4}));  // floor(7 * 0.6) = 4
  EXPECT_EQ(n.s("mode", ""), "nearest");           // written explicitly
  EXPECT_EQ(n.s("coordinate_transformation_mode", ""), "half_pixel");
  EXPECT_EQ(n.s("nearest_mode", ""), "round_prefer_floor");
  EXPECT_EQ(n.floats("locus.scales"), (Floats{1, 1, 2.f, 0.6f}));

  Node m;
  m.op = "Resize";
  m.inputs = {"x", "", "", "z"};
  out = infer(m, {vf({1, 3, 5, 7}), {}, {}, vi(sizes)}, {nullptr, nullptr, nullptr, &sizes});
  EXPECT_EQ(out[0].shape, (Shape{1, 3, 11, 4}));
  EXPECT_FLOAT_EQ(m.floats("locus.scales")[2], 11.f / 5.f);  // out / in

  Node cubic = n;
  cubic.attrs = {{"mode", std::string("cubic")}};
  EXPECT_THROW(infer(cubic, {vf({1, 3, 5, 7}), {}, vi(scales)}, {nullptr, nullptr, &scales}), Unsupported);
  EXPECT_NE(message_of([&] { infer(cubic, {vf({1, 3, 5, 7}), {}, vi(scales)}, {nullptr, nullptr, &scales}); })
                .find("mode cubic is not supported"),
            std::string::npos);
  Node both;
  both.op = "Resize";
  both.inputs = {"x", "", "s", "z"};
  EXPECT_NE(message_of([&] {
              infer(both, {vf({1, 3, 5, 7}), {}, vi(scales), vi(sizes)}, {nullptr, nullptr, &scales, &sizes});
            }).find("exactly one of scales and sizes"),
            std::string::npos);
}

TEST(MobileShapes, ConvTransposeOutputSizeFromPadsOutputPaddingAndOutputShape) {
  Tensor w(DType::F32, {4, 3, 3, 3});  // [C, OC/G, KH, KW], group 2: OC = 6
  Node n;
  n.op = "ConvTranspose";
  n.attrs = {{"group", int64_t(2)}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}, {"output_padding", Ints{1, 1}}};
  auto out = infer(n, {vf({1, 4, 5, 6}), vi(w)}, {nullptr, &w});
  // (in - 1) * stride + output_padding + kernel - pads: 4*2 + 1 + 3 - 2 = 10, 5*2 + 1 + 3 - 2 = 12
  EXPECT_EQ(out[0].shape, (Shape{1, 6, 10, 12}));
  EXPECT_EQ(n.ints("dilations"), (Ints{1, 1}));

  Node same;
  same.op = "ConvTranspose";
  same.attrs = {{"strides", Ints{2, 2}}, {"auto_pad", std::string("SAME_UPPER")}};
  Tensor w1(DType::F32, {4, 2, 3, 3});
  out = infer(same, {vf({1, 4, 5, 6}), vi(w1)}, {nullptr, &w1});
  EXPECT_EQ(out[0].shape, (Shape{1, 2, 10, 12}));  // input * stride
  EXPECT_FALSE(same.has("auto_pad"));
  // full size 11 x 13, total padding 1: SAME_UPPER puts the larger half at the end
  EXPECT_EQ(same.ints("pads"), (Ints{0, 0, 1, 1}));

  // an output_shape beyond the full output: the extra rows are output padding
  Node big;
  big.op = "ConvTranspose";
  big.attrs = {{"strides", Ints{3, 2}}, {"output_shape", Ints{10, 8}}};
  Tensor w2(DType::F32, {1, 2, 3, 3});
  out = infer(big, {vf({1, 1, 3, 3}), vi(w2)}, {nullptr, &w2});
  EXPECT_EQ(out[0].shape, (Shape{1, 2, 10, 8}));
  EXPECT_EQ(big.ints("pads"), (Ints{0, 0, 0, 0}));
  EXPECT_EQ(big.ints("output_padding"), (Ints{1, 1}));

  Node bad;
  bad.op = "ConvTranspose";
  Tensor w3(DType::F32, {3, 2, 3, 3});
  EXPECT_NE(message_of([&] { infer(bad, {vf({1, 4, 5, 6}), vi(w3)}, {nullptr, &w3}); }).find("input channels 4"),
            std::string::npos);
}

TEST(MobileShapes, SliceClampsCountsFromTheEndAndStepsBackwards) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  Tensor starts = i64({-3, 100}), ends = i64({big, -100}), axes = i64({0, -1}), steps = i64({1, -2});
  Node n;
  n.op = "Slice";
  auto out = infer(n, {vf({10, 20}), vi(starts), vi(ends), vi(axes), vi(steps)},
                   {nullptr, &starts, &ends, &axes, &steps});
  // axis 0: 7, 8, 9; axis 1: 19, 17, ..., 1 (start clamped to 19, end below 0)
  EXPECT_EQ(out[0].shape, (Shape{3, 10}));
  EXPECT_EQ(n.ints("locus.starts"), (Ints{7, 19}));
  EXPECT_EQ(n.ints("locus.steps"), (Ints{1, -2}));

  Tensor zero = i64({0, 0});
  Node z;
  z.op = "Slice";
  EXPECT_NE(message_of([&] {
              infer(z, {vf({10, 20}), vi(starts), vi(ends), vi(axes), vi(zero)}, {nullptr, &starts, &ends, &axes, &zero});
            }).find("steps must not be 0"),
            std::string::npos);
}

TEST(MobileShapes, CastTakesTheCatalogueTypesOnly) {
  Node n;
  n.op = "Cast";
  n.attrs = {{"to", int64_t(7)}};
  EXPECT_EQ(infer(n, {vf({2, 3})}, {nullptr})[0].dtype, DType::I64);
  Node h;
  h.op = "Cast";
  h.attrs = {{"to", int64_t(10)}};  // float16
  EXPECT_THROW(infer(h, {vf({2, 3})}, {nullptr}), Unsupported);
}

// ---------------------------------------------------------------- reference kernels

TEST(MobileReference, ActivationsFollowTheOnnxDefinitions) {
  Tensor x = f32({-4, -3, -1, 0, 1, 3, 4});
  // HardSigmoid(alpha 0.5, beta 0.6) = max(0, min(1, 0.5 x + 0.6))
  expect_near_all(run_one("reference", "HardSigmoid", x, {}, {{"alpha", 0.5f}, {"beta", 0.6f}}),
                  {0, 0, 0.1f, 0.6f, 1, 1, 1}, 1e-6, "HardSigmoid");
  // HardSwish = x * max(0, min(1, x / 6 + 0.5))
  expect_near_all(run_one("reference", "HardSwish", x, {}, {}), {0, 0, -1.f / 3, 0, 2.f / 3, 3, 4}, 1e-6, "HardSwish");
  // Sigmoid = 1 / (1 + e^-x)
  expect_near_all(run_one("reference", "Sigmoid", x, {}, {}),
                  {0.0179862f, 0.0474259f, 0.2689414f, 0.5f, 0.7310586f, 0.9525741f, 0.9820138f}, 1e-6, "Sigmoid");
}

TEST(MobileReference, ResizeNearestAndLinearExamples) {
  Tensor x = Tensor::from_f32({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor scales = f32({1, 1, 2, 2});
  // nearest, asymmetric, floor (PP-OCR's FPN): every pixel repeated 2 x 2
  expect_near_all(run_one("reference", "Resize", x, {Tensor(), scales},
                          {{"mode", std::string("nearest")},
                           {"coordinate_transformation_mode", std::string("asymmetric")},
                           {"nearest_mode", std::string("floor")}}),
                  {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 0, "nearest");
  // linear, half_pixel: the example of the ONNX operator documentation (resize_upsample_scales_linear)
  expect_near_all(run_one("reference", "Resize", x, {Tensor(), scales}, {{"mode", std::string("linear")}}),
                  {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4}, 1e-6,
                  "linear");
}

TEST(MobileReference, ConvTransposeExample) {
  // The ONNX documentation's ConvTranspose example: x = 0..8 (3 x 3), W all ones [1, 2, 3, 3].
  Tensor x = Tensor::from_f32({1, 1, 3, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8});
  Tensor w = Tensor::from_f32({1, 2, 3, 3}, std::vector<float>(18, 1.f));
  const std::vector<float> plane = {0, 1, 3, 3, 2, 3, 8, 15, 12, 7, 9, 21, 36, 27, 15, 9, 20, 33, 24, 13, 6, 13, 21, 15, 8};
  std::vector<float> want = plane;
  want.insert(want.end(), plane.begin(), plane.end());
  Tensor y = run_one("reference", "ConvTranspose", x, {w}, {});
  EXPECT_EQ(y.shape, (Shape{1, 2, 5, 5}));
  expect_near_all(y, want, 0, "ConvTranspose");
}

// ---------------------------------------------------------------- native (and oneDNN) vs reference

TEST(MobileNative, ActivationsOnRaggedNhwcValues) {
  Tensor x = random_tensor({2, 7, 5, 9}, 11, -6.f, 6.f);
  for (const char* op : {"HardSigmoid", "HardSwish", "Sigmoid"}) {
    const A attrs = std::string(op) == "HardSigmoid" ? A{{"alpha", 0.3f}, {"beta", 0.4f}} : A{};
    const Tensor want = run_one("reference", op, x, {}, attrs);
    EXPECT_LE(max_diff(run_one("native", op, x, {}, attrs), want), 1e-6) << op;
    EXPECT_LE(max_diff(run_one("onednn", op, x, {}, attrs), want), 1e-5) << op << " (onednn)";
  }
}

TEST(MobileNative, SliceOfNhwcAndRowMajorValuesWithNegativeSteps) {
  const int64_t lowest = std::numeric_limits<int64_t>::min();
  Tensor x = random_tensor({2, 7, 5, 9}, 12);
  // C from 1 by 2, W backwards by 2 from the last, H 1..3
  std::vector<Tensor> c = {i64({1, -1, 1}), i64({7, lowest, 4}), i64({1, 3, 2}), i64({2, -2, 1})};
  const Tensor want = run_one("reference", "Slice", x, c, {});
  EXPECT_EQ(want.shape, (Shape{2, 3, 3, 5}));
  EXPECT_EQ(max_diff(run_one("native", "Slice", x, c, {}), want), 0);
  Tensor r = random_tensor({6, 11, 3}, 13);
  std::vector<Tensor> c3 = {i64({-4, 2}), i64({100, -1}), i64({0, 1}), i64({1, 3})};
  const Tensor want3 = run_one("reference", "Slice", r, c3, {});
  EXPECT_EQ(want3.shape, (Shape{4, 3, 3}));
  EXPECT_EQ(max_diff(run_one("native", "Slice", r, c3, {}), want3), 0);
  // steps of 1 run on oneDNN too
  std::vector<Tensor> c1 = {i64({1, 2}), i64({6, 9}), i64({1, 3})};
  EXPECT_EQ(max_diff(run_one("onednn", "Slice", x, c1, {}), run_one("reference", "Slice", x, c1, {})), 0);
}

TEST(MobileNative, ResizeEveryModeOnRaggedSizes) {
  Tensor x = random_tensor({2, 5, 5, 7}, 14);
  const Tensor sizes = i64({2, 5, 11, 4}), scales = f32({1, 1, 2.5f, 0.6f});
  int cases = 0;
  for (const char* ctm : {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nearest"})
    for (const char* mode : {"nearest", "linear"})
      for (const char* nearest : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}) {
        // (tf_half_pixel_for_nearest is nearest's: linear would blend neighbouring images and channels)
        if (std::string(mode) == "linear" && (std::string(nearest) != "floor" || std::string(ctm) == std::string("tf_half_pixel_for_nearest")))
          continue;
        const A attrs = {{"mode", std::string(mode)}, {"coordinate_transformation_mode", std::string(ctm)},
                         {"nearest_mode", std::string(nearest)}};
        for (bool by_sizes : {true, false}) {
          std::vector<Tensor> c = by_sizes ? std::vector<Tensor>{Tensor(), Tensor(), sizes}
                                           : std::vector<Tensor>{Tensor(), scales};
          const Tensor want = run_one("reference", "Resize", x, c, attrs);
          EXPECT_LE(max_diff(run_one("native", "Resize", x, c, attrs), want), 1e-6)
              << mode << " " << ctm << " " << nearest << (by_sizes ? " sizes" : " scales");
          ++cases;
        }
      }
  EXPECT_EQ(cases, 48);
  // oneDNN: nearest at an integer factor with asymmetric / floor (PP-OCR's), linear half_pixel with sizes
  const Tensor twice = f32({1, 1, 2, 2});
  const A nn = {{"mode", std::string("nearest")}, {"coordinate_transformation_mode", std::string("asymmetric")},
                {"nearest_mode", std::string("floor")}};
  EXPECT_EQ(max_diff(run_one("onednn", "Resize", x, {Tensor(), twice}, nn), run_one("reference", "Resize", x, {Tensor(), twice}, nn)), 0);
  const A lin = {{"mode", std::string("linear")}};
  const std::vector<Tensor> by_sizes = {Tensor(), Tensor(), sizes};
  EXPECT_LE(max_diff(run_one("onednn", "Resize", x, by_sizes, lin), run_one("reference", "Resize", x, by_sizes, lin)), 1e-5);
  // and a mapping it does not have is refused naming the node
  const A ceil = {{"mode", std::string("nearest")}, {"nearest_mode", std::string("ceil")}};
  EXPECT_NE(message_of([&] { run_one("onednn", "Resize", x, by_sizes, ceil); }).find("Resize 'Resize_0'"), std::string::npos);
}

TEST(MobileNative, ConvTransposeGroupsStridesDilationsPadsOutputPadding) {
  Tensor x = random_tensor({2, 6, 5, 7}, 15);
  Tensor w = random_tensor({6, 3, 3, 2}, 16);  // group 2: OC 6
  Tensor b = random_tensor({6}, 17);
  const A attrs = {{"group", int64_t(2)}, {"strides", Ints{2, 3}}, {"dilations", Ints{2, 1}},
                   {"pads", Ints{1, 0, 2, 1}}, {"output_padding", Ints{1, 2}}};
  const Tensor want = run_one("reference", "ConvTranspose", x, {w, b}, attrs);
  // (5-1)*2 + 1 + (3-1)*2+1 - 3 = 11; (7-1)*3 + 2 + 2 - 1 = 21
  EXPECT_EQ(want.shape, (Shape{2, 6, 11, 21}));
  EXPECT_LE(max_diff(run_one("native", "ConvTranspose", x, {w, b}, attrs), want), 1e-5);
  // oneDNN takes output padding up to the end pads
  const A fits = {{"group", int64_t(2)}, {"strides", Ints{2, 3}}, {"dilations", Ints{2, 1}},
                  {"pads", Ints{1, 0, 2, 1}}, {"output_padding", Ints{1, 1}}};
  EXPECT_LE(max_diff(run_one("onednn", "ConvTranspose", x, {w, b}, fits), run_one("reference", "ConvTranspose", x, {w, b}, fits)),
            1e-5);
  EXPECT_NE(message_of([&] { run_one("onednn", "ConvTranspose", x, {w, b}, attrs); }).find("ConvTranspose 'ConvTranspose_0'"),
            std::string::npos);
}

// ---------------------------------------------------------------- the PP-OCR models

namespace {

std::string ppocr_dir(const std::string& name) {
  const std::string d = test::shared_models_dir();
  if (d.empty()) return "";
  fs::path p = fs::path(d) / name;
  return fs::is_directory(p) ? p.string() : "";
}

// Every test set of `dir` through a session of the model with the set's input shape.
void expect_ppocr_matches_ort(const std::string& dir, const std::string& model, SessionOptions o, const std::string& label) {
  for (int k = 0; fs::is_directory(dir + "/test_data_set_" + std::to_string(k)); ++k) {
    const std::string set = dir + "/test_data_set_" + std::to_string(k);
    Tensor in = onnx_import::load_tensor_file(set + "/input_0.pb");
    Tensor want = onnx_import::load_tensor_file(set + "/output_0.pb");
    o.input_shapes["x"] = in.shape;  // H and W are symbolic: bound to the set's
    Session s = Session::from_file(dir + "/" + model, o);
    auto out = s.run({{"x", in}});
    std::string why;
    EXPECT_TRUE(test::allclose(out[0], want, 1e-3, 1e-4, why)) << label << " set " << k << ": " << why;
  }
}

}  // namespace

TEST(PpOcr, ClassifierMatchesOnnxRuntimeAndReadsTheOrientation) {
  const std::string dir = ppocr_dir("ch_ppocr_mobile_v2.0_cls_infer");
  if (dir.empty()) GTEST_SKIP() << "no shared models";
  for (const char* backend : {"native", "onednn"})
    for (bool fuse : {true, false}) {
      SessionOptions o;
      o.backend_name = backend;
      if (!fuse)
        o.pipeline.disabled_passes = {"fuse-activation", "fold-batchnorm", "fold-affine", "recognize-hardswish",
                                      "fuse-inverted-residual"};
      expect_ppocr_matches_ort(dir, "ch_ppocr_mobile_v2.0_cls_infer.onnx", o, cat(backend, fuse ? "" : " unfused"));
    }
  // set 0 is upright text (class 0), set 1 the same rotated 180 degrees (class 1)
  SessionOptions o;
  o.input_shapes["x"] = {1, 3, 48, 192};
  Session s = Session::from_file(dir + "/ch_ppocr_mobile_v2.0_cls_infer.onnx", o);
  for (int k = 0; k < 2; ++k) {
    auto out = s.run({{"x", onnx_import::load_tensor_file(cat(dir, "/test_data_set_", k, "/input_0.pb"))}});
    EXPECT_EQ(test::argmax(out[0]), k);
  }
}

TEST(PpOcr, DetectorMatchesOnnxRuntimeAndTakesOtherSizes) {
  const std::string dir = ppocr_dir("ch_PP-OCRv4_det_infer");
  if (dir.empty()) GTEST_SKIP() << "no shared models";
  const std::string model = dir + "/ch_PP-OCRv4_det_infer.onnx";
  for (const char* backend : {"native", "onednn"}) {
    SessionOptions o;
    o.backend_name = backend;
    expect_ppocr_matches_ort(dir, "ch_PP-OCRv4_det_infer.onnx", o, backend);
  }
  // another input size (H and W multiples of 32): native against the reference
  Tensor x = random_tensor({1, 3, 96, 160}, 18, -2.f, 2.f);
  SessionOptions ref, nat;
  ref.backend_name = "reference";
  ref.input_shapes["x"] = nat.input_shapes["x"] = x.shape;
  const Tensor want = Session::from_file(model, ref).run({{"x", x}})[0];
  EXPECT_EQ(want.shape, (Shape{1, 1, 96, 160}));
  EXPECT_LE(max_diff(Session::from_file(model, nat).run({{"x", x}})[0], want), 1e-4);
}

// ---------------------------------------------------------------- fused activations

// Conv -> HardSigmoid / HardSwish / Sigmoid: the fuse-activation pass folds the activation into the
// Conv (locus.activation), and every backend runs it: native, oneDNN (post-ops) and the reference.
TEST(MobileFusion, ConvActivationsAreFusedAndAgreeWithTheUnfusedReference) {
  for (const char* op : {"HardSigmoid", "HardSwish", "Sigmoid"})
    for (bool depthwise : {false, true}) {
      GraphBuilder b;
      b.input("x", {1, 6, 7, 9});
      const std::string w = b.random_constant("w", depthwise ? Shape{6, 1, 3, 3} : Shape{5, 6, 3, 3}, 21, -2.f, 2.f);
      const std::string c = b.node("Conv", {"x", w, b.random_constant("b", {depthwise ? 6 : 5}, 22)},
                                   {{"pads", Ints{1, 1, 1, 1}}, {"group", int64_t(depthwise ? 6 : 1)}});
      const A attrs = std::string(op) == "HardSigmoid" ? A{{"alpha", 0.25f}, {"beta", 0.45f}} : A{};
      const std::string y = b.node(op, {c}, attrs, "y");
      const Graph g = b.finish({y});
      const Tensor x = random_tensor({1, 6, 7, 9}, 23, -3.f, 3.f);
      SessionOptions ref;
      ref.backend_name = "reference";
      ref.pipeline.optimize = false;
      const Tensor want = Session::from_graph(g, ref).run({{"x", x}})[0];
      for (const char* backend : {"native", "onednn", "reference"}) {
        SessionOptions o;
        o.backend_name = backend;
        Session s = Session::from_graph(g, o);
        ASSERT_EQ(s.graph().nodes.size(), 1u) << op << " on " << backend << ": the activation is not fused";
        EXPECT_EQ(s.graph().nodes[0].s("locus.activation", ""), [&] {
          std::string a = op;
          for (char& ch : a) ch = char(std::tolower(ch));
          return a;
        }());
        std::string why;  // float accumulation against double: relative to the conv's magnitude
        EXPECT_TRUE(test::allclose(s.run({{"x", x}})[0], want, 1e-5, 1e-5, why))
            << op << (depthwise ? " depthwise" : "") << " on " << backend << ": " << why;
      }
    }
}

TEST(MobileNative, TransposeOfNhwcAndRowMajorValues) {
  Tensor x = random_tensor({2, 7, 5, 3}, 31);
  for (const Ints& perm : {Ints{0, 2, 3, 1}, Ints{3, 1, 0, 2}, Ints{0, 1, 3, 2}}) {
    const Tensor want = run_one("reference", "Transpose", x, {}, {{"perm", perm}});
    EXPECT_EQ(want.shape, (Shape{x.shape[size_t(perm[0])], x.shape[size_t(perm[1])], x.shape[size_t(perm[2])],
                                 x.shape[size_t(perm[3])]}));
    // element (i, j, k, l) of the output is x at the permuted index: checked directly for one element
    const int64_t idx[4] = {1, 2, 1, 2};
    int64_t src[4];
    for (int d = 0; d < 4; ++d) src[perm[size_t(d)]] = idx[d];
    const float at = x.data<float>()[((src[0] * 7 + src[1]) * 5 + src[2]) * 3 + src[3]];
    EXPECT_EQ(want.data<float>()[((idx[0] * want.shape[1] + idx[1]) * want.shape[2] + idx[2]) * want.shape[3] + idx[3]], at);
    EXPECT_EQ(max_diff(run_one("native", "Transpose", x, {}, {{"perm", perm}}), want), 0);
    EXPECT_EQ(max_diff(run_one("onednn", "Transpose", x, {}, {{"perm", perm}}), want), 0);
  }
  Tensor m = random_tensor({4, 6, 5}, 32);  // the default reverses the axes
  const Tensor want = run_one("reference", "Transpose", m, {}, {});
  EXPECT_EQ(want.shape, (Shape{5, 6, 4}));
  EXPECT_EQ(max_diff(run_one("native", "Transpose", m, {}, {}), want), 0);
}

// `locus bench --shape` binds the symbolic H and W (with or without the input's name); without it the
// session's error says how; bad text is a usage error.
TEST(PpOcr, BenchTakesTheInputShape) {
  const std::string dir = ppocr_dir("ch_ppocr_mobile_v2.0_cls_infer");
  if (dir.empty()) GTEST_SKIP() << "no shared models";
  for (const char* shape : {"x=1x3x48x192", "1x3x48x100"}) {
    test::CliResult r = test::run_locus(cat("bench --runs 2 --warmup 0 --shape ", shape, " ", dir));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("median"), std::string::npos) << r.out;
  }
  test::CliResult none = test::run_locus(cat("bench --runs 1 ", dir));
  EXPECT_EQ(none.status, 1);
  EXPECT_NE(none.err.find("locus bench --shape x="), std::string::npos) << none.err;
  test::CliResult bad = test::run_locus(cat("bench --shape x=1x3x0 ", dir));
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--shape expects [NAME=]DIMS"), std::string::npos) << bad.err;
}

namespace {

// The [1, 3, H, W] test input of a PP-OCR set back as an RGB PNG (inverting (x / 255 - mean) / std),
// optionally rotated by 180 degrees.
std::string input_as_png(const Tensor& t, const float mean[3], const float stdev[3], bool rotate, const std::string& path) {
  const int64_t H = t.shape[2], W = t.shape[3];
  test::PngSpec spec;
  spec.w = int(W);
  spec.h = int(H);
  spec.rows.resize(size_t(H * W * 3));
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int c = 0; c < 3; ++c) {
        const float v = t.data<float>()[(c * H + y) * W + x] * stdev[c] + mean[c];
        const int64_t oy = rotate ? H - 1 - y : y, ox = rotate ? W - 1 - x : x;
        spec.rows[size_t((oy * W + ox) * 3 + c)] = uint8_t(std::clamp<long>(std::lround(v * 255.f), 0, 255));
      }
  std::ofstream(path, std::ios::binary) << test::encode_png(spec);
  return path;
}

}  // namespace

// `locus run --ppocr cls` reads the orientation of the rendered text of set 0 (upright) and of the
// same photo turned by 180 degrees; `--ppocr det` writes the probability map as a PNG of the
// (multiple-of-32) input size with text found on the page of set 0.
TEST(PpOcr, RunOnPhotosPrintsTheOrientationAndWritesTheProbabilityMap) {
  const std::string cls = ppocr_dir("ch_ppocr_mobile_v2.0_cls_infer"), det = ppocr_dir("ch_PP-OCRv4_det_infer");
  if (cls.empty() || det.empty()) GTEST_SKIP() << "no shared models";
  const std::string dir = test::temp_dir();
  const float half[3] = {0.5f, 0.5f, 0.5f};
  const Tensor text = onnx_import::load_tensor_file(cls + "/test_data_set_0/input_0.pb");
  const std::string upright = input_as_png(text, half, half, false, dir + "/upright.png");
  const std::string turned = input_as_png(text, half, half, true, dir + "/turned.png");
  test::CliResult r = test::run_locus(cat("run --ppocr cls ", cls, " --image ", upright, " --image ", turned));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(upright + "\t0\t"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(turned + "\t180\t"), std::string::npos) << r.out;

  const float mean[3] = {0.485f, 0.456f, 0.406f}, stdev[3] = {0.229f, 0.224f, 0.225f};
  const Tensor page = onnx_import::load_tensor_file(det + "/test_data_set_0/input_0.pb");
  const std::string photo = input_as_png(page, mean, stdev, false, dir + "/page.png");
  r = test::run_locus(cat("run --ppocr det ", det, " --output-dir ", dir, " --image ", photo));
  ASSERT_EQ(r.status, 0) << r.err;
  const cli::Image map = cli::decode_image(dir + "/page_prob.png");
  EXPECT_EQ(map.width, 640);
  EXPECT_EQ(map.height, 640);
  // the same map as the model's on the stored input, within the 8-bit steps and the PNG round trip
  const Tensor want = onnx_import::load_tensor_file(det + "/test_data_set_0/output_0.pb");
  int64_t text_pixels = 0, far = 0;
  for (int64_t y = 0; y < 640; ++y)
    for (int64_t x = 0; x < 640; ++x) {
      const float p = want.data<float>()[y * 640 + x];
      text_pixels += p > 0.5f;
      far += std::fabs(map.at(y, x, 0) / 255.f - p) > 0.05f;
    }
  EXPECT_GT(text_pixels, 1000);  // four lines of text
  EXPECT_LT(far, 640 * 640 / 100) << "pixels of the PNG far from ONNX Runtime's map";
  EXPECT_EQ(test::run_locus(cat("run --ppocr box ", det, " --image ", photo)).status, 2);
}

TEST(MobileNative, SqrtPowReduceMean) {
  Tensor x = random_tensor({2, 7, 5, 9}, 41, 0.1f, 3.f);
  // Sqrt, Pow by a scalar and by a per-channel exponent
  EXPECT_LE(max_diff(run_one("native", "Sqrt", x, {}, {}), run_one("reference", "Sqrt", x, {}, {})), 1e-6);
  EXPECT_NEAR(run_one("reference", "Sqrt", Tensor::from_f32({2}, {4, 2.25f}), {}, {}).data<float>()[1], 1.5f, 1e-7);
  for (const Tensor& e : {Tensor::from_f32({}, {2.f}), Tensor::from_f32({}, {0.5f}), random_tensor({7, 1, 1}, 42, -2.f, 2.f)}) {
    const Tensor want = run_one("reference", "Pow", x, {e}, {});
    EXPECT_LE(max_diff(run_one("native", "Pow", x, {e}, {}), want), 1e-4) << shape_str(e.shape);
    if (e.numel() == 1) {
      EXPECT_LE(max_diff(run_one("onednn", "Pow", x, {e}, {}), want), 1e-4);
    }
  }
  EXPECT_NEAR(run_one("reference", "Pow", Tensor::from_f32({1}, {3.f}), {Tensor::from_i64({}, {3})}, {}).data<float>()[0], 27.f, 1e-5);
  // ReduceMean over H and W (kept), over C (dropped), over everything
  for (const A& attrs : {A{{"axes", Ints{2, 3}}}, A{{"axes", Ints{1}}, {"keepdims", int64_t(0)}}, A{{"keepdims", int64_t(0)}}}) {
    const Tensor want = run_one("reference", "ReduceMean", x, {}, attrs);
    EXPECT_LE(max_diff(run_one("native", "ReduceMean", x, {}, attrs), want), 1e-6);
    EXPECT_LE(max_diff(run_one("onednn", "ReduceMean", x, {}, attrs), want), 1e-5);
  }
  // the mean of 1..4 over the last axis
  const Tensor m = run_one("reference", "ReduceMean", Tensor::from_f32({1, 4}, {1, 2, 3, 4}), {}, {{"axes", Ints{-1}}});
  EXPECT_EQ(m.shape, (Shape{1, 1}));
  EXPECT_FLOAT_EQ(m.data<float>()[0], 2.5f);
}
