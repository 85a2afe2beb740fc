// Shape inference (graph/ops.h): the catalogue, per-op output shapes and attribute normalisation,
// and the errors / Unsupported reports. Expected shapes are worked out by hand in the comments.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>

#include "graph/ops.h"

namespace locus {
namespace {

// A one-node (or few-node) graph under construction.
struct GraphBuilder {
  Graph g;
  GraphBuilder& input(const std::string& name, Shape s, DType t = DType::F32) {
    g.inputs.push_back(name);
    g.values[name] = ValueInfo{t, std::move(s), true};
    return *this;
  }
  GraphBuilder& weight(const std::string& name, Shape s) {
    g.constants[name] = Tensor(DType::F32, std::move(s));
    return *this;
  }
  GraphBuilder& ints(const std::string& name, std::vector<int64_t> v) {
    g.constants[name] = Tensor::from_i64({int64_t(v.size())}, v);
    return *this;
  }
  Node& node(const std::string& op, std::vector<std::string> in, const std::string& out,
             const std::string& name = "n") {
    g.nodes.push_back(Node{op, name, /*domain=*/"", std::move(in), {out}, {}});
    return g.nodes.back();
  }
  // Runs infer_shapes and returns the info of `out`.
  ValueInfo infer(const std::string& out = "y") {
    infer_shapes(g);
    return g.values.at(out);
  }
};

// The message of the exception `f` throws as type E ("" and a test failure if none).
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no exception thrown";
  return "";
}

bool is_unsupported(const std::function<void()>& f) {
  try {
    f();
  } catch (const Unsupported&) {
    return true;
  } catch (const Error&) {
    return false;
  }
  return false;
}

#define EXPECT_CONTAINS(hay, needle) EXPECT_NE(std::string(hay).find(needle), std::string::npos) << (hay)

// ---------------------------------------------------------------------------------------------
// catalogue

TEST(Catalogue, ListsExactlyTheSupportedOpsSorted) {
  const std::vector<std::string> expected = {
      "Add",       "AveragePool", "BatchNormalization", "Cast",    "Clip",    "Concat",  "Conv",
      "ConvTranspose", "DequantizeLinear", "Div", "Flatten", "Gather",   "Gemm",    "GlobalAveragePool",
      "HardSigmoid", "HardSwish", "Identity",  "MatMul",      "MaxPool",            "Mul",     "Pow", "QLinearConv",
      "QLinearMatMul", "QuantizeLinear", "ReduceMean", "Relu",   "Reshape",   "Resize", "Shape", "Sigmoid",
      "Slice", "Softmax",            "Sqrt", "Squeeze", "Sub",    "Transpose", "Unsqueeze"};
  EXPECT_EQ(supported_ops(), expected);
  EXPECT_TRUE(std::is_sorted(supported_ops().begin(), supported_ops().end()));
  for (const std::string& op : expected) EXPECT_TRUE(is_supported_op(op)) << op;
  EXPECT_TRUE(is_supported_op("Conv"));
  EXPECT_FALSE(is_supported_op("Dropout"));
  EXPECT_FALSE(is_supported_op("conv"));
}

TEST(Catalogue, UnsupportedNodesNamesEveryOffender) {
  GraphBuilder b;
  b.input("x", {1, 3, 4, 4});
  b.node("Relu", {"x"}, "a", "ok");
  b.node("Foo", {"a"}, "b", "f1");
  b.node("Dropout", {"b"}, "c", "drop");
  b.node("Relu", {"c"}, "d", "msft").domain = "com.microsoft";
  b.node("MaxPool", {"d"}, "e", "mp").attrs["locus.indices"] = int64_t(1);
  b.node("BatchNormalization", {"e"}, "f", "bn").attrs["locus.training"] = int64_t(1);
  b.node("Conv", {"f"}, "g", "cv").attrs["locus.unsupported_attr"] = std::string("foo");
  b.node("Relu", {"g"}, "y", "ok2").domain = "ai.onnx";
  const std::vector<std::string> expected = {"Foo (node 'f1')", "Dropout (node 'drop')",
                                             "Relu of domain 'com.microsoft' (node 'msft')", "MaxPool (node 'mp')",
                                             "BatchNormalization (node 'bn')", "Conv (node 'cv')"};
  EXPECT_EQ(unsupported_nodes(b.g), expected);
  std::string m = message_of<Unsupported>([&] { infer_shapes(b.g); });
  EXPECT_EQ(m, "unsupported operators: Foo (node 'f1'); Dropout (node 'drop'); Relu of domain 'com.microsoft' "
               "(node 'msft'); MaxPool (node 'mp'); BatchNormalization (node 'bn'); Conv (node 'cv')");
}

// Seventy unsupported nodes of two ops: each op named once, with its count and first node.
TEST(Catalogue, UnsupportedOperatorsAreCountedOncePerOp) {
  GraphBuilder b;
  b.input("x", {1, 3, 4, 4});
  std::string prev = "x";
  for (int i = 0; i < 70; ++i) {
    const std::string out = "v" + std::to_string(i);
    b.node(i % 10 == 3 ? "DynamicQuantizeLinear" : "ConvInteger", {prev}, out, "node_" + std::to_string(i));
    prev = out;
  }
  b.node("QLinearSigmoid", {prev}, "y", "sig").domain = "com.microsoft";
  EXPECT_EQ(unsupported_summary(b.g),
            "unsupported operators: ConvInteger \u00d763, first 'node_0'; DynamicQuantizeLinear \u00d77, first 'node_3'; "
            "QLinearSigmoid of domain 'com.microsoft' (node 'sig')");
  std::string m = message_of<Unsupported>([&] { infer_shapes(b.g); });
  EXPECT_EQ(m, unsupported_summary(b.g));
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

TEST(Catalogue, SupportedGraphHasNoUnsupportedNodes) {
  GraphBuilder b;
  b.input("x", {2, 2});
  b.node("Relu", {"x"}, "y");
  EXPECT_TRUE(unsupported_nodes(b.g).empty());
}

// ---------------------------------------------------------------------------------------------
// Conv

TEST(ConvShape, StridedPaddedAndAttributesWrittenBack) {
  GraphBuilder b;
  b.input("x", {1, 3, 224, 224}).weight("w", {32, 3, 3, 3}).weight("bias", {32});
  Node& n = b.node("Conv", {"x", "w", "bias"}, "y");
  n.attrs["strides"] = std::vector<int64_t>{2, 2};
  n.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  ValueInfo y = b.infer();
  // (224 + 2 - 3) / 2 + 1 = 112
  EXPECT_EQ(y.shape, (Shape{1, 32, 112, 112}));
  EXPECT_EQ(y.dtype, DType::F32);
  EXPECT_TRUE(y.known);
  const Node& c = b.g.nodes[0];
  EXPECT_EQ(c.ints("kernel_shape"), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(c.ints("dilations"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(c.ints("strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(c.i("group", -1), 1);
}

TEST(ConvShape, SameUpperAndSameLowerStride2OddSizes) {
  for (std::string mode : {"SAME_UPPER", "SAME_LOWER"}) {
    GraphBuilder b;
    b.input("x", {1, 2, 7, 5}).weight("w", {4, 2, 4, 2});
    Node& n = b.node("Conv", {"x", "w"}, "y");
    n.attrs["strides"] = std::vector<int64_t>{2, 2};
    n.attrs["auto_pad"] = mode;
    ValueInfo y = b.infer();
    // out = ceil(in / 2): H 7 -> 4, W 5 -> 3.
    EXPECT_EQ(y.shape, (Shape{1, 4, 4, 3})) << mode;
    // total pad H: (4-1)*2 + 4 - 7 = 3, W: (3-1)*2 + 2 - 5 = 1. SAME_UPPER puts the odd one at the
    // end, SAME_LOWER at the beginning. pads = {top, left, bottom, right}.
    std::vector<int64_t> pads = mode == "SAME_UPPER" ? std::vector<int64_t>{1, 0, 2, 1}
                                                     : std::vector<int64_t>{2, 1, 1, 0};
    EXPECT_EQ(b.g.nodes[0].ints("pads"), pads) << mode;
    EXPECT_FALSE(b.g.nodes[0].has("auto_pad"));
  }
}

TEST(ConvShape, ValidWithDilation) {
  GraphBuilder b;
  b.input("x", {1, 1, 9, 10}).weight("w", {1, 1, 3, 3});
  Node& n = b.node("Conv", {"x", "w"}, "y");
  n.attrs["auto_pad"] = std::string("VALID");
  n.attrs["pads"] = std::vector<int64_t>{5, 5, 5, 5};  // ignored with VALID
  n.attrs["dilations"] = std::vector<int64_t>{2, 2};
  n.attrs["strides"] = std::vector<int64_t>{2, 3};
  // dilated kernel 5: H (9-5)/2+1 = 3, W (10-5)/3+1 = 2
  EXPECT_EQ(b.infer().shape, (Shape{1, 1, 3, 2}));
  EXPECT_EQ(b.g.nodes[0].ints("pads"), (std::vector<int64_t>{0, 0, 0, 0}));
}

TEST(ConvShape, DepthwiseAndGrouped) {
  GraphBuilder b;
  b.input("x", {2, 8, 10, 10}).weight("dw", {8, 1, 3, 3}).weight("gw", {6, 4, 1, 1});
  Node& d = b.node("Conv", {"x", "dw"}, "a", "dw");
  d.attrs["group"] = int64_t(8);
  d.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  b.node("Conv", {"a", "gw"}, "y", "grouped").attrs["group"] = int64_t(2);
  EXPECT_EQ(b.infer().shape, (Shape{2, 6, 10, 10}));
  EXPECT_EQ(b.g.values.at("a").shape, (Shape{2, 8, 10, 10}));
}

TEST(ConvShape, ChannelMismatchNamesNode) {
  GraphBuilder b;
  b.input("x", {1, 5, 8, 8}).weight("w", {8, 3, 3, 3});
  b.node("Conv", {"x", "w"}, "y", "conv1");
  std::string m = message_of<Error>([&] { infer_shapes(b.g); });
  EXPECT_EQ(m, "node 'conv1' (Conv): input channels 5 do not match weight [8,3,3,3] with group 1");
  EXPECT_FALSE(is_unsupported([&] { infer_shapes(b.g); }));
}

TEST(ConvShape, BadBiasAndKernelShapeAndGroup) {
  {
    GraphBuilder b;
    b.input("x", {1, 3, 8, 8}).weight("w", {8, 3, 3, 3}).weight("bias", {7});
    b.node("Conv", {"x", "w", "bias"}, "y");
    EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(b.g); }), "bias");
  }
  {
    GraphBuilder b;
    b.input("x", {1, 3, 8, 8}).weight("w", {8, 3, 3, 3});
    b.node("Conv", {"x", "w"}, "y").attrs["kernel_shape"] = std::vector<int64_t>{5, 5};
    EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(b.g); }), "kernel_shape");
  }
  {
    GraphBuilder b;  // 6 output channels cannot be split into 4 groups
    b.input("x", {1, 8, 8, 8}).weight("w", {6, 2, 3, 3});
    b.node("Conv", {"x", "w"}, "y").attrs["group"] = int64_t(4);
    EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(b.g); }), "not divisible by group 4");
  }
  {
    GraphBuilder b;  // kernel larger than the input
    b.input("x", {1, 1, 2, 2}).weight("w", {1, 1, 3, 3});
    b.node("Conv", {"x", "w"}, "y");
    EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(b.g); }), "does not fit");
  }
}

TEST(ConvShape, UnsupportedForms) {
  {
    GraphBuilder b;  // 1-D conv
    b.input("x", {1, 3, 16}).weight("w", {4, 3, 3});
    b.node("Conv", {"x", "w"}, "y", "c1d");
    std::string m = message_of<Unsupported>([&] { infer_shapes(b.g); });
    EXPECT_CONTAINS(m, "node 'c1d' (Conv)");
    EXPECT_CONTAINS(m, "1-D");
  }
  {
    GraphBuilder b;  // 3-D conv
    b.input("x", {1, 3, 4, 4, 4}).weight("w", {4, 3, 1, 1, 1});
    b.node("Conv", {"x", "w"}, "y");
    EXPECT_TRUE(is_unsupported([&] { infer_shapes(b.g); }));
  }
  {
    GraphBuilder b;  // int64 data
    b.input("x", {1, 3, 4, 4}, DType::I64).weight("w", {4, 3, 1, 1});
    b.node("Conv", {"x", "w"}, "y");
    EXPECT_CONTAINS(message_of<Unsupported>([&] { infer_shapes(b.g); }), "int64");
  }
  {
    GraphBuilder b;
    b.input("x", {1, 3, 4, 4}).weight("w", {4, 3, 1, 1});
    b.node("Conv", {"x", "w"}, "y").attrs["locus.activation"] = std::string("gelu");
    EXPECT_CONTAINS(message_of<Unsupported>([&] { infer_shapes(b.g); }), "gelu");
  }
}

TEST(ConvShape, AbsurdAttributesRefused) {
  GraphBuilder b;
  b.input("x", {1, 1, 4, 4}).weight("w", {1, 1, 1, 1});
  b.node("Conv", {"x", "w"}, "y").attrs["pads"] = std::vector<int64_t>{int64_t(1) << 40, 0, 0, 0};
  EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(b.g); }), "pads");
}

TEST(ConvShape, InferNodeIsIdempotent) {
  GraphBuilder b;
  b.input("x", {1, 2, 7, 5}).weight("w", {4, 2, 4, 2});
  Node& n = b.node("Conv", {"x", "w"}, "y");
  n.attrs["strides"] = std::vector<int64_t>{2, 2};
  n.attrs["auto_pad"] = std::string("SAME_LOWER");
  std::vector<ValueInfo> in = {b.g.info("x"), b.g.info("w")};
  std::vector<const Tensor*> cs = {nullptr, b.g.constant("w")};
  auto first = infer_node(n, in, cs);
  auto pads = n.ints("pads");
  EXPECT_EQ(pads, (std::vector<int64_t>{2, 1, 1, 0}));
  auto second = infer_node(n, in, cs);
  EXPECT_EQ(first[0].shape, (Shape{1, 4, 4, 3}));
  EXPECT_EQ(second[0].shape, first[0].shape);
  EXPECT_EQ(n.ints("pads"), pads);
  EXPECT_EQ(n.ints("strides"), (std::vector<int64_t>{2, 2}));
}

// ---------------------------------------------------------------------------------------------
// pools

TEST(PooledSize, FloorAndCeilModes) {
  // (in + pads - window) / stride + 1
  EXPECT_EQ(pooled_size(6, 3, 2, 0, 0, 1, false), 2);  // 3/2 = 1.5 -> 1 + 1
  EXPECT_EQ(pooled_size(6, 3, 2, 0, 0, 1, true), 3);   // ceil(1.5) + 1; last window starts at 4 < 6
  EXPECT_EQ(pooled_size(112, 3, 2, 0, 0, 1, false), 55);
  EXPECT_EQ(pooled_size(112, 3, 2, 0, 0, 1, true), 56);
  EXPECT_EQ(pooled_size(10, 3, 1, 0, 0, 2, false), 6);  // dilated window 5
  // in 5, k 2, s 2, pads 1+1: ceil(5/2) + 1 = 4, but window 3 would start at 3*2 = 6 >= 5 + 1, i.e.
  // entirely in the right padding, so ONNX drops it: 3.
  EXPECT_EQ(pooled_size(5, 2, 2, 1, 1, 1, true), 3);
  EXPECT_EQ(pooled_size(5, 2, 2, 1, 1, 1, false), 3);
  EXPECT_EQ(pooled_size(2, 3, 1, 0, 0, 1, false), 0);  // does not fit
}

TEST(PoolShape, MaxPoolCeilModeAndWrittenAttrs) {
  // A 3x3 stride-2 MaxPool over 5x5 with pads top/left 1: (5 + 1 - 3) / 2 = 1.5, floor 2, ceil 3.
  auto max_pool = [](GraphBuilder& b) -> Node& {
    b.input("x", {1, 4, 5, 5});
    Node& n = b.node("MaxPool", {"x"}, "y");
    n.attrs["kernel_shape"] = std::vector<int64_t>{3, 3};
    n.attrs["strides"] = std::vector<int64_t>{2, 2};
    n.attrs["pads"] = std::vector<int64_t>{1, 1, 0, 0};
    return n;
  };
  GraphBuilder b;
  Node& n = max_pool(b);
  n.attrs["ceil_mode"] = int64_t(1);
  n.attrs["storage_order"] = int64_t(1);  // irrelevant without the Indices output
  EXPECT_EQ(b.infer().shape, (Shape{1, 4, 3, 3}));
  const Node& c = b.g.nodes[0];
  EXPECT_EQ(c.ints("dilations"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(c.i("ceil_mode", -1), 1);

  GraphBuilder f;
  max_pool(f);
  EXPECT_EQ(f.infer().shape, (Shape{1, 4, 2, 2}));
}

TEST(PoolShape, AveragePoolSameUpperAndDefaults) {
  GraphBuilder b;
  b.input("x", {2, 3, 7, 7});
  Node& n = b.node("AveragePool", {"x"}, "y");
  n.attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
  n.attrs["strides"] = std::vector<int64_t>{2, 2};
  n.attrs["auto_pad"] = std::string("SAME_UPPER");
  // ceil(7/2) = 4; total pad (4-1)*2 + 2 - 7 = 1 at the end
  EXPECT_EQ(b.infer().shape, (Shape{2, 3, 4, 4}));
  const Node& c = b.g.nodes[0];
  EXPECT_EQ(c.ints("pads"), (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(c.i("count_include_pad", -1), 0);
  EXPECT_EQ(c.i("ceil_mode", -1), 0);
  EXPECT_FALSE(c.has("dilations"));
}

TEST(PoolShape, Errors) {
  {
    GraphBuilder b;
    b.input("x", {1, 1, 4, 4});
    b.node("MaxPool", {"x"}, "y", "mp");
    EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(b.g); }), "kernel_shape is required");
  }
  {
    GraphBuilder b;
    b.input("x", {1, 1, 4, 4});
    Node& n = b.node("AveragePool", {"x"}, "y");
    n.attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
    n.attrs["pads"] = std::vector<int64_t>{2, 0, 0, 0};
    EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(b.g); }), "smaller than the kernel");
  }
  {
    GraphBuilder b;
    b.input("x", {1, 1, 4, 4});
    Node& n = b.node("MaxPool", {"x"}, "y");
    n.attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
    n.attrs["pads"] = std::vector<int64_t>{0, 0, 0};  // wrong length
    EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(b.g); }), "pads must have 4 values");
  }
  {
    GraphBuilder b;
    b.input("x", {1, 1, 4}, DType::F32);
    b.node("MaxPool", {"x"}, "y").attrs["kernel_shape"] = std::vector<int64_t>{2};
    EXPECT_TRUE(is_unsupported([&] { infer_shapes(b.g); }));
  }
}

TEST(PoolShape, GlobalAveragePool) {
  GraphBuilder b;
  b.input("x", {2, 16, 7, 9});
  b.node("GlobalAveragePool", {"x"}, "y");
  EXPECT_EQ(b.infer().shape, (Shape{2, 16, 1, 1}));
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization, activations, Softmax

TEST(BatchNormShape, SameShapeAndParamCheck) {
  GraphBuilder b;
  b.input("x", {1, 4, 5, 5}).weight("s", {4}).weight("bb", {4}).weight("m", {4}).weight("v", {4});
  b.node("BatchNormalization", {"x", "s", "bb", "m", "v"}, "y");
  EXPECT_EQ(b.infer().shape, (Shape{1, 4, 5, 5}));

  GraphBuilder bad;
  bad.input("x", {1, 4, 5, 5}).weight("s", {4}).weight("bb", {3}).weight("m", {4}).weight("v", {4});
  bad.node("BatchNormalization", {"x", "s", "bb", "m", "v"}, "y", "bn");
  std::string m = message_of<Error>([&] { infer_shapes(bad.g); });
  EXPECT_CONTAINS(m, "node 'bn' (BatchNormalization)");
  EXPECT_CONTAINS(m, "'bb'");

  GraphBuilder train;
  train.input("x", {1, 4, 2, 2}).weight("s", {4}).weight("bb", {4}).weight("m", {4}).weight("v", {4});
  Node& n = train.node("BatchNormalization", {"x", "s", "bb", "m", "v"}, "y");
  n.outputs.push_back("running_mean");
  EXPECT_TRUE(is_unsupported([&] { infer_shapes(train.g); }));

  GraphBuilder old;  // opset < 9 spatial=0, kept by the importer to be reported here
  old.input("x", {1, 4, 2, 2}).weight("s", {4}).weight("bb", {4}).weight("m", {4}).weight("v", {4});
  old.node("BatchNormalization", {"x", "s", "bb", "m", "v"}, "y").attrs["spatial"] = int64_t(0);
  EXPECT_CONTAINS(message_of<Unsupported>([&] { infer_shapes(old.g); }), "spatial=0");
}

TEST(ActivationShape, ReluClipAndDtypes) {
  GraphBuilder b;
  b.input("x", {3, 5}).weight("lo", {}).weight("hi", {1});
  b.node("Relu", {"x"}, "a", "r");
  b.node("Clip", {"a", "lo", "hi"}, "c", "c1");
  b.node("Clip", {"c", "", "hi"}, "y", "c2");
  EXPECT_EQ(b.infer().shape, (Shape{3, 5}));

  GraphBuilder i;
  i.input("x", {3}, DType::I64);
  i.node("Relu", {"x"}, "y");
  EXPECT_CONTAINS(message_of<Unsupported>([&] { infer_shapes(i.g); }), "int64");

  GraphBuilder v;
  v.input("x", {3}).weight("lo", {2});
  v.node("Clip", {"x", "lo"}, "y");
  EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(v.g); }), "scalar");
}

TEST(SoftmaxShape, AxisNormalisedAndLegacyDefault) {
  GraphBuilder b;
  b.input("x", {2, 3, 4});
  b.node("Softmax", {"x"}, "a", "s13");
  Node& l = b.node("Softmax", {"a"}, "y", "s11");
  l.attrs["legacy"] = int64_t(1);
  EXPECT_EQ(b.infer().shape, (Shape{2, 3, 4}));
  EXPECT_EQ(b.g.nodes[0].i("axis", -99), 2);  // default -1
  EXPECT_EQ(b.g.nodes[1].i("axis", -99), 1);  // legacy default 1

  GraphBuilder e;
  e.input("x", {2, 3});
  e.node("Softmax", {"x"}, "y").attrs["axis"] = int64_t(2);
  EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(e.g); }), "out of range");
}

// ---------------------------------------------------------------------------------------------
// elementwise

TEST(BinaryShape, Broadcasting) {
  EXPECT_EQ(broadcast_shapes({2, 3, 4, 5}, {5}, "t"), (Shape{2, 3, 4, 5}));
  EXPECT_EQ(broadcast_shapes({4, 1, 5}, {3, 1}, "t"), (Shape{4, 3, 5}));
  EXPECT_EQ(broadcast_shapes({}, {2, 2}, "t"), (Shape{2, 2}));
  EXPECT_EQ(broadcast_shapes({0, 1}, {1, 3}, "t"), (Shape{0, 3}));
  EXPECT_CONTAINS(message_of<Error>([] { broadcast_shapes({2, 3}, {4}, "my add"); }), "my add");

  GraphBuilder b;
  b.input("x", {2, 1, 4}).input("z", {3, 1});
  b.node("Mul", {"x", "z"}, "y");
  EXPECT_EQ(b.infer().shape, (Shape{2, 3, 4}));
}

TEST(BinaryShape, DtypeRules) {
  GraphBuilder ok;
  ok.input("a", {2}, DType::I64).input("b", {1}, DType::I64);
  ok.node("Div", {"a", "b"}, "y");
  EXPECT_EQ(ok.infer().dtype, DType::I64);

  GraphBuilder mixed;
  mixed.input("a", {2}, DType::F32).input("b", {2}, DType::I64);
  mixed.node("Add", {"a", "b"}, "y");
  EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(mixed.g); }), "same dtype");
  EXPECT_FALSE(is_unsupported([&] { infer_shapes(mixed.g); }));

  GraphBuilder u8;
  u8.input("a", {2}, DType::U8).input("b", {2}, DType::U8);
  u8.node("Sub", {"a", "b"}, "y");
  EXPECT_CONTAINS(message_of<Unsupported>([&] { infer_shapes(u8.g); }), "uint8");

  GraphBuilder bad;
  bad.input("a", {2, 3}).input("b", {4});
  bad.node("Add", {"a", "b"}, "y", "add7");
  EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(bad.g); }), "node 'add7' (Add)");
}

// ---------------------------------------------------------------------------------------------
// shape manipulation

TEST(FlattenShape, Axes) {
  struct Case {
    int64_t axis;
    Shape out;
    int64_t normalised;
  };
  for (const Case& k : {Case{-1, {6, 4}, 2}, Case{0, {1, 24}, 0}, Case{3, {24, 1}, 3}, Case{1, {2, 12}, 1}}) {
    GraphBuilder b;
    b.input("x", {2, 3, 4});
    b.node("Flatten", {"x"}, "y").attrs["axis"] = k.axis;
    EXPECT_EQ(b.infer().shape, k.out) << k.axis;
    EXPECT_EQ(b.g.nodes[0].i("axis", -99), k.normalised);
  }
  GraphBuilder e;
  e.input("x", {2, 3});
  e.node("Flatten", {"x"}, "y").attrs["axis"] = int64_t(-3);
  EXPECT_THROW(infer_shapes(e.g), Error);
}

ValueInfo reshape(Shape in, std::vector<int64_t> spec, int64_t allowzero = 0) {
  GraphBuilder b;
  b.input("x", std::move(in)).ints("s", std::move(spec));
  b.node("Reshape", {"x", "s"}, "y", "rs").attrs["allowzero"] = allowzero;
  return b.infer();
}

TEST(ReshapeShape, ZeroMinusOneAllowzero) {
  EXPECT_EQ(reshape({2, 3, 4}, {0, -1}).shape, (Shape{2, 12}));
  EXPECT_EQ(reshape({2, 3, 4}, {-1}).shape, (Shape{24}));
  EXPECT_EQ(reshape({2, 3, 4}, {2, -1, 2}).shape, (Shape{2, 6, 2}));
  EXPECT_EQ(reshape({2, 3, 4}, {0, 0, 4}).shape, (Shape{2, 3, 4}));
  EXPECT_EQ(reshape({1, 1}, {}).shape, Shape{});  // empty shape: a scalar
  EXPECT_THROW(reshape({1, 24}, {}), Error);
}

TEST(ReshapeShape, AllowzeroKeepsZeros) {
  // allowzero=1: 0 is a real zero-size dim; input [0,3] has 0 elements, so [3,0] matches.
  EXPECT_EQ(reshape({0, 3}, {3, 0}, 1).shape, (Shape{3, 0}));
  // allowzero=0: the 0 copies input dim 1 (3), giving [3,3] = 9 elements != 0.
  EXPECT_THROW(reshape({0, 3}, {3, 0}, 0), Error);
  EXPECT_THROW(reshape({0, 3}, {0, -1}, 1), Error);  // 0 and -1 with allowzero
}

TEST(ReshapeShape, Errors) {
  std::string m = message_of<Error>([] { reshape({2, 3, 4}, {5, 5}); });
  EXPECT_CONTAINS(m, "node 'rs' (Reshape)");
  EXPECT_CONTAINS(m, "cannot reshape [2,3,4]");
  EXPECT_THROW(reshape({2, 3, 4}, {-1, -1}), Error);
  EXPECT_THROW(reshape({2, 3, 4}, {5, -1}), Error);  // 24 not divisible by 5
  EXPECT_THROW(reshape({2, 3, 4}, {-2, 12}), Error);
  EXPECT_EQ(reshape({2, 3}, {0, 0, 1}).shape, (Shape{2, 3, 1}));
  EXPECT_CONTAINS(message_of<Error>([] { reshape({2, 3}, {0, 0, 0}); }), "copies dimension 2");
}

TEST(ReshapeShape, NonConstantShapeIsUnsupported) {
  GraphBuilder b;
  b.input("x", {2, 3}).input("s", {2}, DType::I64);
  b.node("Reshape", {"x", "s"}, "y", "dyn");
  std::string m = message_of<Unsupported>([&] { infer_shapes(b.g); });
  EXPECT_CONTAINS(m, "node 'dyn' (Reshape)");
  EXPECT_CONTAINS(m, "shape input must be constant");
}

TEST(GemmShape, TransposesAndC) {
  auto gemm = [](Shape a, Shape b, Shape c, bool ta, bool tb) {
    GraphBuilder g;
    g.input("a", std::move(a)).input("b", std::move(b));
    g.weight("c", std::move(c));
    Node& n = g.node("Gemm", {"a", "b", "c"}, "y", "gemm");
    n.attrs["transA"] = int64_t(ta);
    n.attrs["transB"] = int64_t(tb);
    return g.infer().shape;
  };
  // A [4,3]^T = [3,4], B [5,4]^T = [4,5] -> [3,5]
  EXPECT_EQ(gemm({4, 3}, {5, 4}, {5}, true, true), (Shape{3, 5}));
  EXPECT_EQ(gemm({3, 4}, {4, 5}, {3, 1}, false, false), (Shape{3, 5}));
  EXPECT_EQ(gemm({3, 4}, {5, 4}, {3, 5}, false, true), (Shape{3, 5}));
  EXPECT_EQ(gemm({3, 4}, {4, 5}, {}, false, false), (Shape{3, 5}));  // scalar C
  EXPECT_THROW(gemm({3, 4}, {4, 5}, {4, 5}, false, false), Error);  // C rows 4 != M 3
  EXPECT_THROW(gemm({3, 4}, {5, 4}, {5}, false, false), Error);     // K 4 vs 5
  EXPECT_THROW(gemm({3, 4}, {4, 5}, {1, 1, 5}, false, false), Error);

  GraphBuilder noc;
  noc.input("a", {2, 3}).input("b", {3, 7});
  noc.node("Gemm", {"a", "b"}, "y");
  EXPECT_EQ(noc.infer().shape, (Shape{2, 7}));
}

TEST(MatMulShape, NumpySemantics) {
  auto matmul = [](Shape a, Shape b) {
    GraphBuilder g;
    g.input("a", std::move(a)).input("b", std::move(b));
    g.node("MatMul", {"a", "b"}, "y", "mm");
    return g.infer().shape;
  };
  EXPECT_EQ(matmul({2, 1, 3, 4}, {5, 4, 6}), (Shape{2, 5, 3, 6}));  // batch [2,1] x [5] -> [2,5]
  EXPECT_EQ(matmul({3, 4}, {4, 6}), (Shape{3, 6}));
  EXPECT_EQ(matmul({4}, {2, 4, 6}), (Shape{2, 6}));  // [4] -> [1,4], prepended 1 removed
  EXPECT_EQ(matmul({2, 3, 4}, {4}), (Shape{2, 3}));  // [4] -> [4,1], appended 1 removed
  EXPECT_EQ(matmul({4}, {4}), Shape{});
  EXPECT_CONTAINS(message_of<Error>([&] { matmul({3, 4}, {5, 6}); }), "node 'mm' (MatMul)");
  EXPECT_THROW(matmul({2, 3, 4}, {3, 4, 5}), Error);  // batch 2 vs 3
}

TEST(ConcatShape, AxisNormalisedAndChecks) {
  GraphBuilder b;
  b.input("a", {2, 3}).input("b", {2, 5}).input("c", {2, 1});
  b.node("Concat", {"a", "b", "c"}, "y").attrs["axis"] = int64_t(-1);
  EXPECT_EQ(b.infer().shape, (Shape{2, 9}));
  EXPECT_EQ(b.g.nodes[0].i("axis", -99), 1);

  GraphBuilder i;
  i.ints("a", {1, 2}).input("b", {3}, DType::I64);
  i.node("Concat", {"a", "b"}, "y").attrs["axis"] = int64_t(0);
  ValueInfo y = i.infer();
  EXPECT_EQ(y.shape, (Shape{5}));
  EXPECT_EQ(y.dtype, DType::I64);

  GraphBuilder bad;
  bad.input("a", {2, 3}).input("b", {3, 3});
  bad.node("Concat", {"a", "b"}, "y").attrs["axis"] = int64_t(1);
  EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(bad.g); }), "outside axis 1");

  GraphBuilder mixed;
  mixed.input("a", {2}).input("b", {2}, DType::I64);
  mixed.node("Concat", {"a", "b"}, "y").attrs["axis"] = int64_t(0);
  EXPECT_THROW(infer_shapes(mixed.g), Error);
}

TEST(ShapeOpShape, StartEndClamping) {
  auto shape_len = [](int64_t* start, int64_t* end) {
    GraphBuilder b;
    b.input("x", {2, 3, 4, 5}, DType::F32);
    Node& n = b.node("Shape", {"x"}, "y");
    if (start) n.attrs["start"] = *start;
    if (end) n.attrs["end"] = *end;
    ValueInfo y = b.infer();
    EXPECT_EQ(y.dtype, DType::I64);
    EXPECT_EQ(y.shape.size(), 1u);
    return y.shape.at(0);
  };
  int64_t m1 = -1, one = 1, big = 100, mbig = -100, three = 3;
  EXPECT_EQ(shape_len(nullptr, nullptr), 4);
  EXPECT_EQ(shape_len(&m1, nullptr), 1);
  EXPECT_EQ(shape_len(&one, &m1), 2);
  EXPECT_EQ(shape_len(&mbig, &big), 4);
  EXPECT_EQ(shape_len(&three, &one), 0);
}

TEST(GatherShape, AxisAndIndices) {
  GraphBuilder b;
  b.input("x", {5, 6, 7}).input("i", {2, 3}, DType::I64);
  b.node("Gather", {"x", "i"}, "y").attrs["axis"] = int64_t(-2);
  EXPECT_EQ(b.infer().shape, (Shape{5, 2, 3, 7}));
  EXPECT_EQ(b.g.nodes[0].i("axis", -99), 1);

  GraphBuilder s;  // scalar index removes the axis
  s.input("x", {4}, DType::I64);
  s.g.constants["i"] = Tensor(DType::I32, {});
  s.node("Gather", {"x", "i"}, "y");
  ValueInfo y = s.infer();
  EXPECT_EQ(y.shape, Shape{});
  EXPECT_EQ(y.dtype, DType::I64);

  GraphBuilder f;
  f.input("x", {4}).input("i", {2}, DType::F32);
  f.node("Gather", {"x", "i"}, "y");
  EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(f.g); }), "int64 or int32");

  GraphBuilder r;
  r.input("x", {4, 2}).ints("i", {1, -5});
  r.node("Gather", {"x", "i"}, "y");
  EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(r.g); }), "index -5 is out of range");
}

TEST(SqueezeShape, UnsqueezeAndSqueeze) {
  GraphBuilder b;
  b.input("x", {3, 4}).ints("ax", {0, -1}).ints("sq", {-1});
  b.node("Unsqueeze", {"x", "ax"}, "u", "u");  // [1,3,4,1]
  b.node("Squeeze", {"u", "sq"}, "s", "s");    // [1,3,4]
  b.node("Squeeze", {"s"}, "y", "all");        // [3,4]
  EXPECT_EQ(b.infer().shape, (Shape{3, 4}));
  EXPECT_EQ(b.g.values.at("u").shape, (Shape{1, 3, 4, 1}));
  EXPECT_EQ(b.g.values.at("s").shape, (Shape{1, 3, 4}));

  GraphBuilder mid;  // axes are positions in the output
  mid.input("x", {3, 4}).ints("ax", {1, 3});
  mid.node("Unsqueeze", {"x", "ax"}, "y");
  EXPECT_EQ(mid.infer().shape, (Shape{3, 1, 4, 1}));

  GraphBuilder bad;
  bad.input("x", {3, 1}).ints("ax", {0});
  bad.node("Squeeze", {"x", "ax"}, "y");
  EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(bad.g); }), "cannot squeeze axis 0");

  GraphBuilder dup;
  dup.input("x", {3}).ints("ax", {0, -3});  // both are axis 0 of the rank-3 output
  dup.node("Unsqueeze", {"x", "ax"}, "y");
  EXPECT_THROW(infer_shapes(dup.g), Error);

  GraphBuilder dyn;
  dyn.input("x", {3}).input("ax", {1}, DType::I64);
  dyn.node("Unsqueeze", {"x", "ax"}, "y");
  EXPECT_CONTAINS(message_of<Unsupported>([&] { infer_shapes(dyn.g); }), "axes input must be constant");
}

TEST(IdentityShape, DtypesAccepted) {
  GraphBuilder b;
  b.input("x", {2, 2}, DType::I32);
  b.node("Identity", {"x"}, "y");
  EXPECT_EQ(b.infer().dtype, DType::I32);

  GraphBuilder u;
  u.input("x", {2}, DType::Bool);
  u.node("Identity", {"x"}, "y");
  EXPECT_TRUE(is_unsupported([&] { infer_shapes(u.g); }));
}

// ---------------------------------------------------------------------------------------------
// whole-graph behaviour

TEST(InferShapes, AbsurdOutputSizeRefused) {
  // [65536,1] x [1,65536] = 2^32 elements > kMaxTensorElements (2^31)
  GraphBuilder b;
  b.input("a", {65536, 1}).input("b", {1, 65536});
  b.node("MatMul", {"a", "b"}, "y", "outer");
  std::string m = message_of<Error>([&] { infer_shapes(b.g); });
  EXPECT_CONTAINS(m, "node 'outer' (MatMul)");
  EXPECT_CONTAINS(m, "limit");
  EXPECT_FALSE(is_unsupported([&] { infer_shapes(b.g); }));

  GraphBuilder r;  // a constant Reshape shape claiming 2^80 elements
  r.input("x", {4}).ints("s", {int64_t(1) << 40, int64_t(1) << 40});
  r.node("Reshape", {"x", "s"}, "y", "huge");
  std::string rm = message_of<Error>([&] { infer_shapes(r.g); });
  EXPECT_CONTAINS(rm, "node 'huge' (Reshape)");
  EXPECT_CONTAINS(rm, "limit");
}

TEST(InferShapes, ChainStoresEveryValue) {
  GraphBuilder b;
  b.input("x", {1, 3, 8, 8}).weight("w", {4, 3, 3, 3}).ints("flat", {1, -1});
  Node& c = b.node("Conv", {"x", "w"}, "c", "conv");
  c.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  b.node("Relu", {"c"}, "r", "relu");
  Node& p = b.node("MaxPool", {"r"}, "p", "pool");
  p.attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
  p.attrs["strides"] = std::vector<int64_t>{2, 2};
  b.node("Reshape", {"p", "flat"}, "y", "reshape");
  EXPECT_EQ(b.infer().shape, (Shape{1, 64}));
  EXPECT_EQ(b.g.values.at("c").shape, (Shape{1, 4, 8, 8}));
  EXPECT_EQ(b.g.values.at("p").shape, (Shape{1, 4, 4, 4}));
  for (const char* v : {"c", "r", "p", "y"}) EXPECT_TRUE(b.g.values.at(v).known) << v;
}

TEST(InferShapes, UnknownInputNamesNode) {
  GraphBuilder b;
  b.node("Relu", {"nowhere"}, "y", "lost");
  std::string m = message_of<Error>([&] { infer_shapes(b.g); });
  EXPECT_CONTAINS(m, "node 'lost' (Relu)");
  EXPECT_CONTAINS(m, "'nowhere'");
}

TEST(InferShapes, ExtraOutputsAndMissingInputs) {
  GraphBuilder b;
  b.input("x", {1, 1, 4, 4});
  Node& n = b.node("MaxPool", {"x"}, "y");
  n.attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
  n.outputs.push_back("indices");
  EXPECT_TRUE(is_unsupported([&] { infer_shapes(b.g); }));

  GraphBuilder m;
  m.input("x", {2, 2});
  m.node("Add", {"x"}, "y");
  EXPECT_CONTAINS(message_of<Error>([&] { infer_shapes(m.g); }), "input 1 is required");
}

}  // namespace
}  // namespace locus
