// Tests of the ONNX importer: the real MobileNetV2, small models built here with the protobuf API
// (opset canonicalisation, attributes, tensors, external data) and malformed files (each must give a
// one-line locus::Error, never a crash).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cfloat>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "importers/onnx/onnx_importer.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace locus;
using namespace locus::onnx_import;

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers: build small ModelProtos and write them to the test's scratch folder.

std::string scratch(const std::string& name) {
  fs::path p = fs::path(test::temp_dir()) / name;
  fs::create_directories(p.parent_path());
  return p.string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::string read_bytes(const std::string& path, size_t limit = SIZE_MAX) {
  std::ifstream f(path, std::ios::binary);
  std::string s(size_t(std::min<uintmax_t>(fs::file_size(path), limit)), '\0');
  f.read(s.data(), std::streamsize(s.size()));
  return s;
}

onnx::ModelProto make_model(int64_t opset, int64_t ir_version = 7) {
  onnx::ModelProto m;
  m.set_ir_version(ir_version);
  m.set_producer_name("locus importer_test");
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  m.mutable_graph()->set_name("test");
  return m;
}

// dims: -1 = symbolic ("N")
void add_input(onnx::ModelProto& m, const std::string& name, std::vector<int64_t> dims,
               int elem = onnx::TensorProto::FLOAT) {
  auto* vi = m.mutable_graph()->add_input();
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* shape = tt->mutable_shape();
  for (int64_t d : dims) {
    auto* dim = shape->add_dim();
    if (d < 0)
      dim->set_dim_param("N");
    else
      dim->set_dim_value(d);
  }
}

void add_output(onnx::ModelProto& m, const std::string& name) {
  m.mutable_graph()->add_output()->set_name(name);
}

onnx::NodeProto* add_node(onnx::ModelProto& m, const std::string& op, std::vector<std::string> in,
                          std::vector<std::string> out, const std::string& name = "") {
  auto* n = m.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (auto& s : in) n->add_input(s);
  for (auto& s : out) n->add_output(s);
  return n;
}

void attr_int(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void attr_float(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

void attr_ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}

onnx::TensorProto* attr_tensor(onnx::NodeProto* n, const std::string& name) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::TENSOR);
  return a->mutable_t();
}

onnx::TensorProto* add_initializer(onnx::ModelProto& m, const std::string& name, std::vector<int64_t> dims,
                                   int dtype = onnx::TensorProto::FLOAT) {
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(dtype);
  for (auto d : dims) t->add_dims(d);
  return t;
}

void set_raw_floats(onnx::TensorProto* t, const std::vector<float>& v) {
  t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
}

// x [1,4] -> op -> y
onnx::ModelProto unary_model(int64_t opset, const std::string& op, onnx::NodeProto** node = nullptr) {
  auto m = make_model(opset);
  add_input(m, "x", {1, 4});
  auto* n = add_node(m, op, {"x"}, {"y"}, "n0");
  add_output(m, "y");
  if (node) *node = n;
  return m;
}

int model_counter = 0;

std::string save_model(const onnx::ModelProto& m, const std::string& name = "") {
  std::string path = scratch(name.empty() ? "model_" + std::to_string(model_counter++) + ".onnx" : name);
  std::string bytes;
  EXPECT_TRUE(m.SerializeToString(&bytes));
  write_bytes(path, bytes);
  return path;
}

Graph load(const onnx::ModelProto& m, const ImportOptions& opts = {}) { return load_model(save_model(m), opts); }

// Runs f, expects a locus::Error whose message contains every one of `parts`; returns the message.
std::string expect_error(const std::function<void()>& f, std::vector<std::string> parts) {
  try {
    f();
  } catch (const Error& e) {
    std::string msg = e.what();
    for (auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nexpected: " << p;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected locus::Error, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected locus::Error, nothing was thrown";
  return "";
}

const Node* find_node(const Graph& g, const std::string& op) {
  for (auto& n : g.nodes)
    if (n.op == op) return &n;
  return nullptr;
}

int count_op(const Graph& g, const std::string& op) {
  int k = 0;
  for (auto& n : g.nodes) k += n.op == op;
  return k;
}

std::string mobilenet_model() {
  std::string d = test::mobilenet_fp32_dir();
  return d.empty() ? "" : d + "/mobilenetv2-12-fp32-from-int8.onnx";
}

#define REQUIRE_MOBILENET()                                                                            \
  if (mobilenet_model().empty()) GTEST_SKIP() << "shared models folder not found (set LOCUS_MODEL_DIR)"

// ---------------------------------------------------------------------------------------------
// The real MobileNetV2

TEST(ImporterMobileNet, Structure) {
  REQUIRE_MOBILENET();
  Graph g = load_model(mobilenet_model());
  EXPECT_EQ(g.opset, 12);
  ASSERT_EQ(g.inputs, std::vector<std::string>{"input"});
  ValueInfo in = g.values.at("input");
  EXPECT_TRUE(in.known);
  EXPECT_EQ(in.dtype, DType::F32);
  EXPECT_EQ(in.shape, (Shape{1, 3, 224, 224}));  // batch_size is symbolic: default_dim 1
  EXPECT_EQ(g.outputs, std::vector<std::string>{"output"});
  EXPECT_EQ(count_op(g, "Conv"), 52);
  EXPECT_EQ(count_op(g, "Clip"), 35);
  EXPECT_EQ(count_op(g, "Constant"), 0);
  for (auto& n : g.nodes) {
    if (n.op == "Clip") {
      EXPECT_EQ(n.num_inputs(), 3u) << n.name;
    }
    EXPECT_TRUE(n.domain.empty()) << n.name;
  }
  EXPECT_EQ(g.nodes.size(), 104u);
  // 110 initializers plus the axes input created for the opset-12 Unsqueeze
  EXPECT_EQ(g.constants.size(), 111u);
  const Node* unsq = find_node(g, "Unsqueeze");
  ASSERT_NE(unsq, nullptr);
  ASSERT_EQ(unsq->num_inputs(), 2u);
  EXPECT_FALSE(unsq->has("axes"));
  EXPECT_EQ(g.constant(unsq->inputs[1])->to_i64(), std::vector<int64_t>{0});
  const Tensor* w = g.constant("474_W");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, DType::F32);
  EXPECT_EQ(w->bytes.size(), size_t(w->numel()) * 4);
  // topologically sorted: every input of a node is available before it
  std::set<std::string> avail(g.inputs.begin(), g.inputs.end());
  for (auto& n : g.nodes) {
    for (auto& i : n.inputs) EXPECT_TRUE(i.empty() || avail.count(i) || g.is_constant(i)) << n.name;
    avail.insert(n.outputs.begin(), n.outputs.end());
  }
}

TEST(ImporterMobileNet, DefaultDimSetsBatch) {
  REQUIRE_MOBILENET();
  ImportOptions opts;
  opts.default_dim = 4;
  Graph g = load_model(mobilenet_model(), opts);
  EXPECT_EQ(g.values.at("input").shape, (Shape{4, 3, 224, 224}));
}

TEST(ImporterMobileNet, TestDataTensor) {
  REQUIRE_MOBILENET();
  std::string name;
  Tensor t = load_tensor_file(test::mobilenet_fp32_dir() + "/test_data_set_0/input_0.pb", &name);
  EXPECT_EQ(name, "input");
  EXPECT_EQ(t.dtype, DType::F32);
  EXPECT_EQ(t.shape, (Shape{1, 3, 224, 224}));
  Tensor out = load_tensor_file(test::mobilenet_fp32_dir() + "/test_data_set_0/output_0.pb");
  EXPECT_EQ(out.shape, (Shape{1, 1000}));
}

TEST(ImporterMobileNet, TruncatedFileIsAnError) {
  REQUIRE_MOBILENET();
  for (size_t n : {size_t(1000), size_t(100000)}) {
    std::string path = scratch("truncated_" + std::to_string(n) + ".onnx");
    write_bytes(path, read_bytes(mobilenet_model(), n));
    expect_error([&] { load_model(path); }, {path, "not a valid ONNX model"});
  }
}

// ---------------------------------------------------------------------------------------------
// Canonicalisation

// Clip-1 and Clip-6 (opsets 1..10) have min/max attributes.
TEST(ImporterCanonical, ClipAttributesBecomeInputs) {
  onnx::NodeProto* n;
  auto m = unary_model(7, "Clip", &n);
  attr_float(n, "min", 0.f);
  attr_float(n, "max", 6.f);
  Graph g = load(m);
  const Node* c = find_node(g, "Clip");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->num_inputs(), 3u);
  EXPECT_FALSE(c->has("min"));
  EXPECT_FALSE(c->has("max"));
  ASSERT_TRUE(g.is_constant(c->inputs[1]) && g.is_constant(c->inputs[2]));
  EXPECT_EQ(g.constant(c->inputs[1])->shape, Shape{});
  EXPECT_EQ(g.constant(c->inputs[1])->get(0), 0.0);
  EXPECT_EQ(g.constant(c->inputs[2])->get(0), 6.0);

  auto m2 = unary_model(10, "Clip", &n);  // defaults: the whole float range
  attr_float(n, "min", -1.f);
  Graph g2 = load(m2);
  const Node* c2 = find_node(g2, "Clip");
  EXPECT_EQ(g2.constant(c2->inputs[1])->get(0), -1.0);
  EXPECT_EQ(g2.constant(c2->inputs[2])->get(0), double(FLT_MAX));
}

TEST(ImporterCanonical, ClipInputFormKept) {
  auto m = unary_model(12, "Clip");
  add_initializer(m, "lo", {})->add_float_data(0.f);
  m.mutable_graph()->mutable_node(0)->add_input("lo");
  Graph g = load(m);
  EXPECT_EQ(find_node(g, "Clip")->inputs, (std::vector<std::string>{"x", "lo"}));
}

TEST(ImporterCanonical, CreatedConstantNamesDoNotCollide) {
  // a value already called "n0_min" must not be taken over by the constant the importer creates
  onnx::NodeProto* n;
  auto m = unary_model(9, "Clip", &n);
  attr_float(n, "min", 0.f);
  add_initializer(m, "n0_min", {})->add_float_data(42.f);
  Graph g = load(m);
  const Node* c = find_node(g, "Clip");
  EXPECT_NE(c->inputs[1], "n0_min");
  EXPECT_EQ(g.constant(c->inputs[1])->get(0), 0.0);
  EXPECT_EQ(g.constant("n0_min")->get(0), 42.0);
}

TEST(ImporterCanonical, UnsqueezeAxesAttributeBecomesInput) {
  onnx::NodeProto* n;
  auto m = unary_model(11, "Unsqueeze", &n);
  attr_ints(n, "axes", {0, 2});
  Graph g = load(m);
  const Node* u = find_node(g, "Unsqueeze");
  ASSERT_EQ(u->num_inputs(), 2u);
  EXPECT_FALSE(u->has("axes"));
  const Tensor* axes = g.constant(u->inputs[1]);
  ASSERT_NE(axes, nullptr);
  EXPECT_EQ(axes->dtype, DType::I64);
  EXPECT_EQ(axes->shape, Shape{2});
  EXPECT_EQ(axes->to_i64(), (std::vector<int64_t>{0, 2}));
}

TEST(ImporterCanonical, SqueezeWithAndWithoutAxes) {
  onnx::NodeProto* n;
  auto m = unary_model(11, "Squeeze", &n);
  attr_ints(n, "axes", {0});
  Graph g = load(m);
  EXPECT_EQ(g.constant(find_node(g, "Squeeze")->inputs[1])->to_i64(), std::vector<int64_t>{0});
  Graph g2 = load(unary_model(11, "Squeeze"));
  EXPECT_EQ(find_node(g2, "Squeeze")->num_inputs(), 1u);
}

TEST(ImporterCanonical, UnsqueezeOpset13Unchanged) {
  auto m = unary_model(13, "Unsqueeze");
  add_initializer(m, "axes", {1}, onnx::TensorProto::INT64)->add_int64_data(0);
  m.mutable_graph()->mutable_node(0)->add_input("axes");
  Graph g = load(m);
  EXPECT_EQ(find_node(g, "Unsqueeze")->inputs, (std::vector<std::string>{"x", "axes"}));
  EXPECT_EQ(g.constants.size(), 1u);
}

TEST(ImporterCanonical, ConstantNodesAreFolded) {
  auto m = make_model(13);
  add_input(m, "x", {2});
  auto* c1 = add_node(m, "Constant", {}, {"c1"});
  auto* t = attr_tensor(c1, "value");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(2);
  t->add_float_data(1.5f);
  t->add_float_data(-2.f);
  auto* c2 = add_node(m, "Constant", {}, {"c2"});
  attr_ints(c2, "value_ints", {3, 4});
  auto* c3 = add_node(m, "Constant", {}, {"c3"});
  attr_float(c3, "value_float", 0.25f);
  auto* c4 = add_node(m, "Constant", {}, {"c4"});
  attr_int(c4, "value_int", 7);
  auto* c5 = add_node(m, "Constant", {}, {"c5"});
  attr_ints(c5, "value_ints", {});  // empty list (found by the fuzzer: must not memcpy from null)
  add_node(m, "Add", {"x", "c1"}, {"y"});
  add_output(m, "y");
  add_output(m, "c2");
  Graph g = load(m);
  EXPECT_EQ(g.constant("c5")->shape, Shape{0});
  EXPECT_EQ(count_op(g, "Constant"), 0);
  EXPECT_EQ(g.nodes.size(), 1u);
  ASSERT_TRUE(g.is_constant("c1"));
  EXPECT_EQ(g.constant("c1")->shape, Shape{2});
  EXPECT_EQ(g.constant("c1")->get(1), -2.0);
  EXPECT_EQ(g.constant("c2")->dtype, DType::I64);
  EXPECT_EQ(g.constant("c2")->to_i64(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(g.constant("c3")->shape, Shape{});
  EXPECT_EQ(g.constant("c3")->get(0), 0.25);
  EXPECT_EQ(g.constant("c4")->dtype, DType::I64);
  EXPECT_EQ(g.constant("c4")->get_int(0), 7);
}

TEST(ImporterCanonical, ConstantStringIsUnsupported) {
  auto m = make_model(13);
  auto* c = add_node(m, "Constant", {}, {"c"}, "cs");
  auto* a = c->add_attribute();
  a->set_name("value_string");
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s("hello");
  add_output(m, "c");
  std::string path = save_model(m);
  EXPECT_THROW(load_model(path), Unsupported);
  expect_error([&] { load_model(path); }, {path, "cs", "string"});
}

TEST(ImporterCanonical, ConstantClashingWithInitializerIsAnError) {
  auto m = make_model(13);
  add_initializer(m, "c", {})->add_float_data(1.f);
  attr_float(add_node(m, "Constant", {}, {"c"}), "value_float", 2.f);
  add_output(m, "c");
  expect_error([&] { load(m); }, {"'c'", "defined twice"});
}

TEST(ImporterCanonical, SoftmaxLegacyFlag) {
  Graph g11 = load(unary_model(11, "Softmax"));
  const Node* s = find_node(g11, "Softmax");
  EXPECT_EQ(s->i("axis", 99), 1);
  EXPECT_EQ(s->i("legacy", 99), 1);
  Graph g13 = load(unary_model(13, "Softmax"));
  s = find_node(g13, "Softmax");
  EXPECT_EQ(s->i("axis", 99), -1);
  EXPECT_EQ(s->i("legacy", 99), 0);
  onnx::NodeProto* n;
  auto m = unary_model(12, "Softmax", &n);
  attr_int(n, "axis", -1);
  Graph g12 = load(m);
  EXPECT_EQ(find_node(g12, "Softmax")->i("axis", 99), -1);
  EXPECT_EQ(find_node(g12, "Softmax")->i("legacy", 99), 1);
}

TEST(ImporterCanonical, DropoutBecomesIdentity) {
  for (int64_t opset : {7, 10, 12, 13}) {
    onnx::NodeProto* n;
    auto m = unary_model(opset, "Dropout", &n);
    n->add_output("mask");  // unused mask
    attr_float(n, "ratio", 0.5f);
    Graph g = load(m);
    const Node* id = find_node(g, "Identity");
    ASSERT_NE(id, nullptr) << "opset " << opset;
    EXPECT_EQ(id->inputs, std::vector<std::string>{"x"});
    EXPECT_EQ(id->outputs, std::vector<std::string>{"y"});
    EXPECT_TRUE(id->attrs.empty());
  }
  // training_mode = constant false: still inference
  auto m = unary_model(13, "Dropout");
  add_initializer(m, "ratio", {})->add_float_data(0.1f);
  add_initializer(m, "train", {}, onnx::TensorProto::BOOL)->add_int32_data(0);
  m.mutable_graph()->mutable_node(0)->add_input("ratio");
  m.mutable_graph()->mutable_node(0)->add_input("train");
  Graph g = load(m);
  EXPECT_EQ(find_node(g, "Identity")->inputs, std::vector<std::string>{"x"});
}

TEST(ImporterCanonical, DropoutKeptWhenMaskUsedOrTraining) {
  onnx::NodeProto* n;
  auto m = unary_model(12, "Dropout", &n);
  n->add_output("mask");
  add_output(m, "mask");
  EXPECT_EQ(count_op(load(m), "Dropout"), 1);

  auto m2 = unary_model(13, "Dropout");
  add_initializer(m2, "train", {}, onnx::TensorProto::BOOL)->add_int32_data(1);
  auto* d = m2.mutable_graph()->mutable_node(0);
  d->add_input("");
  d->add_input("train");
  EXPECT_EQ(count_op(load(m2), "Dropout"), 1);
}

TEST(ImporterCanonical, BatchNormLegacyAttributes) {
  auto bn_model = [](int64_t opset, int64_t spatial, bool use_mean_out) {
    auto m = make_model(opset);
    add_input(m, "x", {1, 2, 3, 3});
    for (auto name : {"s", "b", "mean", "var"}) {
      auto* t = add_initializer(m, name, {2});
      t->add_float_data(1.f);
      t->add_float_data(1.f);
    }
    auto* n = add_node(m, "BatchNormalization", {"x", "s", "b", "mean", "var"}, {"y", "mean_out"}, "bn");
    attr_int(n, "spatial", spatial);
    attr_int(n, "is_test", 1);
    attr_float(n, "epsilon", 1e-3f);
    add_output(m, "y");
    if (use_mean_out) add_output(m, "mean_out");
    return m;
  };
  Graph g = load(bn_model(7, 1, false));
  const Node* bn = find_node(g, "BatchNormalization");
  EXPECT_FALSE(bn->has("spatial"));
  EXPECT_FALSE(bn->has("is_test"));
  EXPECT_FALSE(bn->has("locus.training"));
  EXPECT_EQ(bn->outputs, std::vector<std::string>{"y"});
  EXPECT_FLOAT_EQ(bn->f("epsilon", 0), 1e-3f);

  Graph g0 = load(bn_model(7, 0, false));
  EXPECT_EQ(find_node(g0, "BatchNormalization")->i("spatial", 1), 0);  // left so it gets reported

  Graph gt = load(bn_model(9, 1, true));
  EXPECT_EQ(find_node(gt, "BatchNormalization")->i("locus.training", 0), 1);
}

TEST(ImporterCanonical, MaxPoolIndices) {
  auto mp_model = [](bool use_indices) {
    auto m = make_model(12);
    add_input(m, "x", {1, 1, 4, 4});
    auto* n = add_node(m, "MaxPool", {"x"}, {"y", "idx"});
    attr_ints(n, "kernel_shape", {2, 2});
    add_output(m, "y");
    if (use_indices) add_output(m, "idx");
    return m;
  };
  Graph g = load(mp_model(false));
  EXPECT_EQ(find_node(g, "MaxPool")->outputs, std::vector<std::string>{"y"});
  EXPECT_FALSE(find_node(g, "MaxPool")->has("locus.indices"));
  Graph g2 = load(mp_model(true));
  EXPECT_EQ(find_node(g2, "MaxPool")->i("locus.indices", 0), 1);
}

// ---------------------------------------------------------------------------------------------
// Legacy opsets 1..6: accepted only for the ops of importers/onnx/legacy_opsets.cpp

// x [2,3,4,5] (op) b -> y, b a constant of shape b_dims or, if b_input, a graph input.
onnx::ModelProto legacy_binary_model(int64_t opset, const std::string& op, std::vector<int64_t> b_dims,
                                     bool b_input = false, onnx::NodeProto** node = nullptr) {
  auto m = make_model(opset, 3);
  add_input(m, "x", {2, 3, 4, 5});
  if (b_input) {
    add_input(m, "b", b_dims);
  } else {
    int64_t n = 1;
    for (auto d : b_dims) n *= d;
    auto* t = add_initializer(m, "b", b_dims);
    for (int64_t i = 0; i < n; ++i) t->add_float_data(float(i));
  }
  auto* nd = add_node(m, op, {"x", "b"}, {"y"}, "n0");
  add_output(m, "y");
  if (node) *node = nd;
  return m;
}

TEST(ImporterLegacy, BinaryBroadcastRightAlignedBecomesNumpy) {
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    onnx::NodeProto* n;
    auto m = legacy_binary_model(6, op, {4, 5}, false, &n);
    attr_int(n, "broadcast", 1);
    Graph g = load(m);
    ASSERT_EQ(g.nodes.size(), 1u) << op;
    const Node& b = g.nodes[0];
    EXPECT_EQ(b.op, op);
    EXPECT_EQ(b.inputs, (std::vector<std::string>{"x", "b"}));
    EXPECT_TRUE(b.attrs.empty()) << op;  // broadcast removed, no marker left
    EXPECT_EQ(g.constant("b")->shape, (Shape{4, 5}));
  }
  // broadcast=0 (equal shapes), and an axis equal to the suffix alignment: nothing to rewrite
  onnx::NodeProto* n;
  auto m0 = legacy_binary_model(6, "Add", {2, 3, 4, 5}, false, &n);
  attr_int(n, "broadcast", 0);
  attr_int(n, "axis", 1);  // ignored without broadcast
  EXPECT_TRUE(load(m0).nodes[0].attrs.empty());
  auto m1 = legacy_binary_model(6, "Mul", {4, 5}, false, &n);
  attr_int(n, "broadcast", 1);
  attr_int(n, "axis", 2);
  Graph g1 = load(m1);
  EXPECT_TRUE(g1.nodes[0].attrs.empty());
  EXPECT_EQ(g1.nodes[0].inputs[1], "b");
}

TEST(ImporterLegacy, BinaryBroadcastAxisPadsConstant) {
  onnx::NodeProto* n;
  auto m = legacy_binary_model(6, "Add", {3, 4}, false, &n);
  attr_int(n, "broadcast", 1);
  attr_int(n, "axis", 1);  // B [3,4] at dims 1,2 of [2,3,4,5] -> [3,4,1]
  Graph g = load(m);
  ASSERT_EQ(g.nodes.size(), 1u);
  const Node& add = g.nodes[0];
  EXPECT_TRUE(add.attrs.empty());
  const Tensor* b = g.constant(add.inputs[1]);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->shape, (Shape{3, 4, 1}));
  EXPECT_EQ(b->get(5), 5.0);
  EXPECT_EQ(g.constant("b")->shape, (Shape{3, 4}));  // the original is untouched
}

TEST(ImporterLegacy, BinaryBroadcastAxisUnsqueezesComputedInput) {
  // B computed by a node: its rank is learned by a shape-inference pre-pass, then an Unsqueeze
  // appends the trailing 1s
  auto m = make_model(6, 3);
  add_input(m, "x", {2, 3, 4, 5});
  add_input(m, "b", {3});
  add_node(m, "Relu", {"b"}, {"rb"}, "relu");
  auto* n = add_node(m, "Mul", {"x", "rb"}, {"y"}, "mul");
  attr_int(n, "broadcast", 1);
  attr_int(n, "axis", 1);
  add_output(m, "y");
  Graph g = load(m);
  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(g.nodes[0].op, "Relu");
  const Node& u = g.nodes[1];
  EXPECT_EQ(u.op, "Unsqueeze");
  EXPECT_EQ(u.inputs[0], "rb");
  ASSERT_TRUE(g.is_constant(u.inputs[1]));
  EXPECT_EQ(g.constant(u.inputs[1])->to_i64(), (std::vector<int64_t>{1, 2}));  // [3] -> [3,1,1]
  const Node& mul = g.nodes[2];
  EXPECT_EQ(mul.op, "Mul");
  EXPECT_EQ(mul.inputs[1], u.outputs[0]);
  EXPECT_TRUE(mul.attrs.empty());
}

TEST(ImporterLegacy, BinaryBroadcastAxisProblems) {
  onnx::NodeProto* n;
  auto m = legacy_binary_model(6, "Add", {3, 4}, false, &n);
  attr_int(n, "broadcast", 1);
  attr_int(n, "axis", 3);  // [3,4] does not fit at dim 3 of a rank-4 input
  expect_error([&] { load(m); }, {"Add at opset 6", "'n0'", "axis 3"});
  auto m2 = legacy_binary_model(6, "Add", {3}, false, &n);
  attr_int(n, "broadcast", 1);
  attr_int(n, "axis", -2);
  std::string p2 = save_model(m2);
  EXPECT_THROW(load_model(p2), Unsupported);
  expect_error([&] { load_model(p2); }, {"Add at opset 6 (legacy broadcast with axis)", "axis -2"});
  // the rank of A cannot be learned: its producer is not an op shape inference knows
  auto m3 = make_model(6, 3);
  auto* ms = m3.add_opset_import();
  ms->set_domain("com.example");
  ms->set_version(1);
  add_input(m3, "x", {2, 3});
  add_initializer(m3, "b", {2})->add_float_data(1.f);
  m3.mutable_graph()->mutable_initializer(0)->add_float_data(2.f);
  add_node(m3, "Mystery", {"x"}, {"a"}, "mystery")->set_domain("com.example");
  auto* sub = add_node(m3, "Sub", {"a", "b"}, {"y"}, "sub");
  attr_int(sub, "broadcast", 1);
  attr_int(sub, "axis", 0);
  add_output(m3, "y");
  std::string p3 = save_model(m3);
  EXPECT_THROW(load_model(p3), Unsupported);
  expect_error([&] { load_model(p3); }, {"Sub at opset 6 (legacy broadcast with axis)", "'a'", "'sub'"});
}

TEST(ImporterLegacy, ReshapeShapeAttributeBecomesInput) {
  onnx::NodeProto* n;
  auto m = unary_model(4, "Reshape", &n);  // Reshape-1 (opsets 1..4): attribute shape
  attr_ints(n, "shape", {2, -1});
  attr_ints(n, "consumed_inputs", {0});
  Graph g = load(m);
  const Node* r = find_node(g, "Reshape");
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->attrs.empty());
  ASSERT_EQ(r->num_inputs(), 2u);
  const Tensor* shape = g.constant(r->inputs[1]);
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(shape->dtype, DType::I64);
  EXPECT_EQ(shape->to_i64(), (std::vector<int64_t>{2, -1}));

  auto m5 = unary_model(5, "Reshape", &n);  // Reshape-5: the input form, kept
  add_initializer(m5, "s", {1}, onnx::TensorProto::INT64)->add_int64_data(4);
  n->add_input("s");
  EXPECT_EQ(find_node(load(m5), "Reshape")->inputs, (std::vector<std::string>{"x", "s"}));

  auto bad = unary_model(4, "Reshape");  // no shape attribute
  expect_error([&] { load(bad); }, {"Reshape at opset 4", "shape"});
}

TEST(ImporterLegacy, ConsumedInputsDropped) {
  for (const char* op : {"Relu", "Clip", "Dropout"}) {
    onnx::NodeProto* n;
    auto m = unary_model(5, op, &n);
    attr_ints(n, "consumed_inputs", {0});
    if (std::string(op) == "Dropout") attr_int(n, "is_test", 1);
    Graph g = load(m);
    ASSERT_EQ(g.nodes.size(), 1u) << op;
    EXPECT_FALSE(g.nodes[0].has("consumed_inputs")) << op;
    EXPECT_FALSE(g.nodes[0].has("is_test")) << op;
  }
  onnx::NodeProto* n;
  auto m = legacy_binary_model(1, "Add", {5}, false, &n);
  attr_ints(n, "consumed_inputs", {0, 0});
  attr_int(n, "broadcast", 1);
  EXPECT_TRUE(load(m).nodes[0].attrs.empty());

  // BatchNormalization-1: consumed_inputs (required there) and is_test=1
  auto bn = make_model(5, 3);
  add_input(bn, "x", {1, 2, 3, 3});
  for (auto name : {"s", "b", "mean", "var"}) {
    auto* t = add_initializer(bn, name, {2});
    t->add_float_data(1.f);
    t->add_float_data(1.f);
  }
  auto* b = add_node(bn, "BatchNormalization", {"x", "s", "b", "mean", "var"}, {"y"}, "bn");
  attr_ints(b, "consumed_inputs", {0, 0, 0, 1, 1});
  attr_int(b, "is_test", 1);
  add_output(bn, "y");
  Graph gb = load(bn);
  EXPECT_FALSE(find_node(gb, "BatchNormalization")->has("consumed_inputs"));
  EXPECT_FALSE(find_node(gb, "BatchNormalization")->has("is_test"));
}

TEST(ImporterLegacy, OtherLegacyAttributes) {
  // Concat-1: axis defaults to 1
  auto m = make_model(3, 3);
  add_input(m, "x", {2, 3});
  add_node(m, "Concat", {"x", "x"}, {"y"});
  add_output(m, "y");
  EXPECT_EQ(find_node(load(m), "Concat")->i("axis", 99), 1);
  auto m4 = make_model(4, 3);  // Concat-4: axis required, left as it is (shape inference reports it)
  add_input(m4, "x", {2, 3});
  add_node(m4, "Concat", {"x", "x"}, {"y"});
  add_output(m4, "y");
  EXPECT_FALSE(find_node(load(m4), "Concat")->has("axis"));

  // Gemm-6: broadcast dropped
  auto gm = make_model(6, 3);
  add_input(gm, "a", {2, 3});
  add_input(gm, "b", {3, 4});
  add_input(gm, "c", {4});
  auto* n = add_node(gm, "Gemm", {"a", "b", "c"}, {"y"});
  attr_int(n, "broadcast", 1);
  attr_float(n, "beta", 0.5f);
  add_output(gm, "y");
  const Graph g = load(gm);  // kept alive: find_node points into it
  const Node* gemm = find_node(g, "Gemm");
  EXPECT_FALSE(gemm->has("broadcast"));
  EXPECT_FLOAT_EQ(gemm->f("beta", 0), 0.5f);
}

TEST(ImporterLegacy, TrainingModeRefused) {
  // is_test=0 (the opset < 7 default, but written explicitly) is training mode, as in ONNX's converter
  onnx::NodeProto* n;
  auto m = unary_model(6, "Dropout", &n);
  attr_int(n, "is_test", 0);
  std::string p = save_model(m);
  EXPECT_THROW(load_model(p), Unsupported);
  expect_error([&] { load_model(p); }, {"Dropout at opset 6", "is_test=0"});
  auto m2 = unary_model(6, "Dropout");  // no is_test: the inference form
  EXPECT_EQ(count_op(load(m2), "Identity"), 1);
}

TEST(ImporterLegacy, UnhandledOpsRefusedWithOpset) {
  onnx::NodeProto* n;
  auto m = unary_model(6, "Elu", &n);  // Elu is not canonicalised (nor executed) at any opset
  std::string p = save_model(m);
  EXPECT_THROW(load_model(p), Unsupported);
  expect_error([&] { load_model(p); }, {p, "Elu at opset 6 is not supported", "'n0'"});
  // LogSoftmax is canonicalised from opset 7 on (not executed), but is not in the legacy table
  expect_error([&] { load(unary_model(2, "LogSoftmax")); }, {"LogSoftmax at opset 2"});
  // the same op at opset 7 is kept, to be reported with the other unsupported nodes
  EXPECT_EQ(count_op(load(unary_model(7, "Elu")), "Elu"), 1);
  // other domains do not follow the default opset: kept
  auto m3 = unary_model(6, "Relu");
  auto* ms = m3.add_opset_import();
  ms->set_domain("com.example");
  ms->set_version(1);
  m3.mutable_graph()->mutable_node(0)->set_domain("com.example");
  EXPECT_EQ(load(m3).nodes.size(), 1u);
}

TEST(ImporterLegacy, PytorchConvertedConv2d) {
  fs::path model = "/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx";
  if (!fs::exists(model)) GTEST_SKIP() << "ONNX backend test data (pytorch-converted) not installed";
  Graph g = load_model(model.string());
  EXPECT_EQ(g.opset, 6);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, "Conv");
  EXPECT_EQ(g.nodes[0].num_inputs(), 3u);
  EXPECT_TRUE(g.is_constant(g.nodes[0].inputs[1]));
}

// ---------------------------------------------------------------------------------------------
// Graph construction

TEST(ImporterGraph, UnknownOpsAndDomainsAreKept) {
  auto m = make_model(13);
  auto* ms = m.add_opset_import();
  ms->set_domain("com.microsoft");
  ms->set_version(1);
  add_input(m, "x", {1, 4});
  auto* f = add_node(m, "FancyOp", {"x"}, {"a"});
  attr_ints(f, "sizes", {1, 2, 3});
  auto* q = add_node(m, "QuickGelu", {"a"}, {"y"});
  q->set_domain("com.microsoft");
  add_output(m, "y");
  Graph g = load(m);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op, "FancyOp");
  EXPECT_EQ(g.nodes[0].domain, "");
  EXPECT_EQ(g.nodes[0].ints("sizes"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(g.nodes[1].op, "QuickGelu");
  EXPECT_EQ(g.nodes[1].domain, "com.microsoft");
}

TEST(ImporterGraph, AttributeTypes) {
  onnx::NodeProto* n;
  auto m = unary_model(13, "Custom", &n);
  attr_int(n, "i", -3);
  attr_float(n, "f", 2.5f);
  attr_ints(n, "is", {4, 5});
  auto* s = n->add_attribute();
  s->set_name("s");
  s->set_type(onnx::AttributeProto::STRING);
  s->set_s("SAME_UPPER");
  auto* fs_ = n->add_attribute();
  fs_->set_name("fs");
  fs_->set_type(onnx::AttributeProto::FLOATS);
  fs_->add_floats(0.5f);
  auto* ss = n->add_attribute();
  ss->set_name("ss");
  ss->set_type(onnx::AttributeProto::STRINGS);
  ss->add_strings("a");
  ss->add_strings("b");
  auto* untyped = n->add_attribute();  // old exporters left `type` out
  untyped->set_name("old");
  untyped->set_i(9);
  auto* t = attr_tensor(n, "t");
  t->set_data_type(onnx::TensorProto::INT32);
  t->add_dims(1);
  t->add_int32_data(-7);
  auto* gattr = n->add_attribute();
  gattr->set_name("body");
  gattr->set_type(onnx::AttributeProto::GRAPH);
  gattr->mutable_g()->set_name("sub");
  Graph g = load(m);
  const Node& c = g.nodes.at(0);
  EXPECT_EQ(c.i("i", 0), -3);
  EXPECT_EQ(c.f("f", 0), 2.5f);
  EXPECT_EQ(c.ints("is"), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(c.s("s", ""), "SAME_UPPER");
  EXPECT_EQ(c.floats("fs"), std::vector<float>{0.5f});
  EXPECT_EQ(std::get<std::vector<std::string>>(c.attrs.at("ss")), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.i("old", 0), 9);
  ASSERT_NE(c.tensor("t"), nullptr);
  EXPECT_EQ(c.tensor("t")->dtype, DType::I32);
  EXPECT_EQ(c.tensor("t")->get_int(0), -7);
  EXPECT_FALSE(c.has("body"));
  EXPECT_EQ(c.s("locus.unsupported_attr", ""), "body");
}

TEST(ImporterGraph, ReservedAttributePrefix) {
  onnx::NodeProto* n;
  auto m = unary_model(13, "BatchNormalization", &n);
  attr_int(n, "locus.training", 0);  // a model must not set the runtime's own markers
  expect_error([&] { load(m); }, {"n0", "locus.training", "reserved"});
}

TEST(ImporterGraph, NodeNamesGeneratedAndUnique) {
  auto m = make_model(13);
  add_input(m, "x", {1});
  add_node(m, "Relu", {"x"}, {"a"});           // unnamed -> Relu_0
  add_node(m, "Relu", {"a"}, {"b"}, "dup");
  add_node(m, "Relu", {"b"}, {"c"}, "dup");    // duplicate name
  add_node(m, "Relu", {"c"}, {"y"}, "Relu_0");  // explicit name equal to a generated one
  add_output(m, "y");
  Graph g = load(m);
  std::set<std::string> names;
  for (auto& n : g.nodes) {
    EXPECT_FALSE(n.name.empty());
    EXPECT_TRUE(names.insert(n.name).second) << "duplicate node name " << n.name;
  }
  EXPECT_EQ(g.nodes[1].name, "dup");
  EXPECT_EQ(g.nodes[3].name, "Relu_0");
  EXPECT_NE(g.nodes[0].name.find("Relu_0"), std::string::npos);
}

TEST(ImporterGraph, InitializersListedAsInputsAreNotRuntimeInputs) {
  auto m = make_model(8, 3);  // IR 3: initializers are also graph inputs
  add_input(m, "x", {-1, 2});
  add_input(m, "w", {2});
  auto* w = add_initializer(m, "w", {2});
  w->add_float_data(1.f);
  w->add_float_data(2.f);
  add_node(m, "Add", {"x", "w"}, {"y"});
  add_output(m, "y");
  ImportOptions opts;
  opts.default_dim = 3;
  Graph g = load(m, opts);
  EXPECT_EQ(g.inputs, std::vector<std::string>{"x"});
  EXPECT_EQ(g.values.at("x").shape, (Shape{3, 2}));
  EXPECT_FALSE(g.values.count("w"));
  EXPECT_TRUE(g.is_constant("w"));
}

TEST(ImporterGraph, MissingDimsTakeDefault) {
  auto m = make_model(13);
  add_input(m, "x", {-1, 3});
  m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim();  // no value
  add_node(m, "Relu", {"x"}, {"y"});
  add_output(m, "y");
  ImportOptions opts;
  opts.default_dim = 2;
  EXPECT_EQ(load(m, opts).values.at("x").shape, (Shape{2, 3, 2}));
}

TEST(ImporterGraph, InputProblems) {
  auto no_shape = make_model(13);
  auto* vi = no_shape.mutable_graph()->add_input();
  vi->set_name("x");
  vi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  add_node(no_shape, "Relu", {"x"}, {"y"});
  add_output(no_shape, "y");
  expect_error([&] { load(no_shape); }, {"'x'", "no shape"});

  for (int64_t bad : {int64_t(-5), int64_t(1) << 40}) {
    auto m = unary_model(13, "Relu");
    m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1)->set_dim_value(bad);
    expect_error([&] { load(m); }, {"'x'", "absurd dimensions"});
  }
  auto f16 = unary_model(13, "Relu");
  f16.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT16);
  EXPECT_THROW(load(f16), Unsupported);
}

TEST(ImporterGraph, CycleIsAnError) {
  auto m = make_model(13);
  add_input(m, "x", {1});
  add_node(m, "Add", {"x", "b"}, {"a"}, "first");
  add_node(m, "Relu", {"a"}, {"b"}, "second");
  add_output(m, "b");
  std::string path = save_model(m);
  expect_error([&] { load_model(path); }, {path, "cycle"});
}

TEST(ImporterGraph, UndefinedValuesAreErrors) {
  auto m = make_model(13);
  add_input(m, "x", {1});
  add_node(m, "Add", {"x", "ghost"}, {"y"}, "adder");
  add_output(m, "y");
  expect_error([&] { load(m); }, {"'ghost'", "adder"});

  auto m2 = unary_model(13, "Relu");
  add_output(m2, "nowhere");
  expect_error([&] { load(m2); }, {"graph output 'nowhere'"});

  auto m3 = unary_model(13, "Relu");
  add_node(m3, "Relu", {"x"}, {"y"}, "twice");
  expect_error([&] { load(m3); }, {"'y'", "two nodes"});
}

TEST(ImporterGraph, OpsetAndIrVersionLimits) {
  std::string p18 = save_model(unary_model(18, "Relu"));
  EXPECT_THROW(load_model(p18), Unsupported);
  expect_error([&] { load_model(p18); }, {p18, "opset 18"});
  std::string p0 = save_model(unary_model(0, "Relu"));
  EXPECT_THROW(load_model(p0), Unsupported);
  expect_error([&] { load_model(p0); }, {p0, "opset 0", "supported are opsets 1 to 17"});
  EXPECT_EQ(load(unary_model(6, "Relu")).opset, 6);  // legacy opsets: see ImporterLegacy
  auto no_default = unary_model(13, "Relu");
  no_default.mutable_opset_import(0)->set_domain("com.example");
  expect_error([&] { load(no_default); }, {"no opset for the default ONNX domain"});
  auto ai_onnx = unary_model(13, "Relu");  // "ai.onnx" is the default domain too
  ai_onnx.mutable_opset_import(0)->set_domain("ai.onnx");
  EXPECT_EQ(load(ai_onnx).opset, 13);
  auto ml = unary_model(13, "Relu");  // an unused ai.onnx.ml import is fine
  auto* o = ml.add_opset_import();
  o->set_domain("ai.onnx.ml");
  o->set_version(3);
  EXPECT_EQ(load(ml).nodes.size(), 1u);
  auto ir = unary_model(13, "Relu");
  ir.set_ir_version(99);
  expect_error([&] { load(ir); }, {"IR version 99"});
  auto no_ir = unary_model(13, "Relu");
  no_ir.clear_ir_version();
  expect_error([&] { load(no_ir); }, {"no ir_version"});
  auto no_graph = make_model(13);
  no_graph.clear_graph();
  expect_error([&] { load(no_graph); }, {"no graph"});
}

TEST(ImporterGraph, FromBytes) {
  std::string bytes;
  ASSERT_TRUE(unary_model(13, "Relu").SerializeToString(&bytes));
  Graph g = load_model_from_bytes(bytes.data(), bytes.size());
  EXPECT_EQ(g.nodes.size(), 1u);
  expect_error([&] { load_model_from_bytes(bytes.data(), 0); }, {"empty"});
}

// ---------------------------------------------------------------------------------------------
// Tensors

TEST(ImporterTensor, TypedFieldsAndRawData) {
  onnx::TensorProto p;
  p.set_name("t");
  p.set_data_type(onnx::TensorProto::INT8);
  p.add_dims(3);
  for (int v : {-128, 0, 127}) p.add_int32_data(v);
  Tensor t = tensor_from_proto(p, "");
  EXPECT_EQ(t.dtype, DType::I8);
  EXPECT_EQ(t.to_i64(), (std::vector<int64_t>{-128, 0, 127}));

  p.set_data_type(onnx::TensorProto::UINT8);
  p.set_int32_data(0, 255);
  EXPECT_EQ(tensor_from_proto(p, "").to_i64(), (std::vector<int64_t>{255, 0, 127}));
  p.set_int32_data(0, 256);
  expect_error([&] { tensor_from_proto(p, ""); }, {"'t'", "out of range"});

  p.Clear();
  p.set_name("b");
  p.set_data_type(onnx::TensorProto::BOOL);
  p.add_dims(2);
  p.set_raw_data(std::string("\x00\x05", 2));
  EXPECT_EQ(tensor_from_proto(p, "").to_i64(), (std::vector<int64_t>{0, 1}));

  p.Clear();
  p.set_data_type(onnx::TensorProto::DOUBLE);
  p.add_dims(1);
  p.add_double_data(0.125);
  EXPECT_EQ(tensor_from_proto(p, "").get(0), 0.125);

  p.Clear();
  p.set_data_type(onnx::TensorProto::INT64);
  p.add_dims(2);
  p.add_dims(0);  // empty tensor: no data needed
  EXPECT_EQ(tensor_from_proto(p, "").numel(), 0);
}

TEST(ImporterTensor, SizeMismatchesAreErrors) {
  auto m = unary_model(13, "Add");
  set_raw_floats(add_initializer(m, "short_w", {2, 3}), {1, 2, 3, 4});  // 16 bytes, needs 24
  m.mutable_graph()->mutable_node(0)->add_input("short_w");
  std::string path = save_model(m);
  expect_error([&] { load_model(path); }, {path, "'short_w'", "raw_data", "24"});

  onnx::TensorProto p;
  p.set_name("few");
  p.set_data_type(onnx::TensorProto::FLOAT);
  p.add_dims(3);
  p.add_float_data(1.f);
  expect_error([&] { tensor_from_proto(p, ""); }, {"'few'", "float_data"});
  p.clear_float_data();
  expect_error([&] { tensor_from_proto(p, ""); }, {"'few'"});
}

TEST(ImporterTensor, AbsurdDimsRefusedBeforeAllocation) {
  auto m = unary_model(13, "Add");
  add_initializer(m, "huge", {int64_t(1) << 40});  // claims 4 TiB, holds nothing
  m.mutable_graph()->mutable_node(0)->add_input("huge");
  expect_error([&] { load(m); }, {"'huge'", "limit"});
  onnx::TensorProto p;
  p.set_name("neg");
  p.set_data_type(onnx::TensorProto::FLOAT);
  p.add_dims(-1);
  expect_error([&] { tensor_from_proto(p, ""); }, {"'neg'", "negative"});
  // the product overflows int64 when multiplied naively
  p.set_dims(0, int64_t(1) << 62);
  p.add_dims(int64_t(1) << 62);
  expect_error([&] { tensor_from_proto(p, ""); }, {"limit"});
}

TEST(ImporterTensor, UnsupportedDtypes) {
  for (int dt : {int(onnx::TensorProto::FLOAT16), int(onnx::TensorProto::STRING), int(onnx::TensorProto::BFLOAT16),
                 int(onnx::TensorProto::COMPLEX64), 1234}) {
    onnx::TensorProto p;
    p.set_name("odd");
    p.set_data_type(dt);
    p.add_dims(1);
    EXPECT_THROW(tensor_from_proto(p, ""), Unsupported) << dt;
    expect_error([&] { tensor_from_proto(p, ""); }, {"'odd'", "not supported"});
  }
  auto m = unary_model(13, "Add");
  add_initializer(m, "half", {1}, onnx::TensorProto::FLOAT16)->add_int32_data(0);
  m.mutable_graph()->mutable_node(0)->add_input("half");
  expect_error([&] { load(m); }, {"'half'", "FLOAT16"});
}

TEST(ImporterTensor, TensorFileRoundTrip) {
  std::vector<Tensor> ts = {Tensor::from_f32({2, 2}, {1, -2, 3.5f, 4}), Tensor::from_i64({3}, {-1, 0, 1LL << 40}),
                            Tensor(DType::U8, {2}), Tensor(DType::Bool, {}), Tensor(DType::F64, {1, 1})};
  for (size_t i = 0; i < ts.size(); ++i) {
    const std::string tname = cat("t", i);  // (cat, not "t" + ...: avoids a GCC 12 -Wrestrict false positive)
    std::string path = scratch(cat("roundtrip_", i, ".pb"));
    save_tensor_file(path, ts[i], tname);
    std::string name;
    Tensor back = load_tensor_file(path, &name);
    EXPECT_EQ(name, tname);
    EXPECT_EQ(back.dtype, ts[i].dtype);
    EXPECT_EQ(back.shape, ts[i].shape);
    EXPECT_EQ(back.bytes, ts[i].bytes);
  }
  expect_error([&] { load_tensor_file(scratch("no_such.pb")); }, {"no_such.pb", "does not exist"});
  std::string junk = scratch("junk.pb");
  write_bytes(junk, "\xff\xff\xff\xff\xff");
  expect_error([&] { load_tensor_file(junk); }, {junk, "not a valid TensorProto"});
  expect_error([&] { save_tensor_file(scratch("no_dir/x/y.pb") + "/z", ts[0], "t"); }, {"cannot write"});
}

// ---------------------------------------------------------------------------------------------
// External data

class ImporterExternal : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = scratch("ext_" + std::to_string(counter_++));
    fs::create_directories(dir_ + "/model/sub");
    std::vector<float> w = {1, 2, 3, 4, 5, 6};
    write_bytes(dir_ + "/model/sub/weights.bin", std::string(8, 'x') +
                                                     std::string(reinterpret_cast<char*>(w.data()), w.size() * 4));
    write_bytes(dir_ + "/outside.bin", std::string(24, '\0'));
  }

  // A model whose initializer "w" [2,3] lives in `location` at `offset`.
  std::string model_with(const std::string& location, const std::string& offset = "8",
                         const std::string& length = "24") {
    auto m = unary_model(13, "Add");
    auto* t = add_initializer(m, "w", {2, 3});
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto kv = [&](const std::string& k, const std::string& v) {
      if (v.empty()) return;
      auto* e = t->add_external_data();
      e->set_key(k);
      e->set_value(v);
    };
    kv("location", location);
    kv("offset", offset);
    kv("length", length);
    m.mutable_graph()->mutable_node(0)->add_input("w");
    std::string path = dir_ + "/model/model.onnx";
    std::string bytes;
    EXPECT_TRUE(m.SerializeToString(&bytes));
    write_bytes(path, bytes);
    return path;
  }

  std::string dir_;
  static inline int counter_ = 0;
};

TEST_F(ImporterExternal, RelativeFileInsideModelFolder) {
  Graph g = load_model(model_with("sub/weights.bin"));
  const Tensor* w = g.constant("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape, (Shape{2, 3}));
  EXPECT_EQ(w->get(0), 1.0);
  EXPECT_EQ(w->get(5), 6.0);
  // "./" prefixes are harmless; length may be omitted
  EXPECT_EQ(load_model(model_with("./sub/weights.bin", "8", "")).constant("w")->get(5), 6.0);
}

TEST_F(ImporterExternal, EscapesAreRefused) {
  fs::copy_file(dir_ + "/outside.bin", dir_ + "/model/copy.bin");
  expect_error([&] { load_model(model_with("../outside.bin", "0")); }, {"'w'", ".."});
  expect_error([&] { load_model(model_with("sub/../../outside.bin", "0")); }, {"'w'", ".."});
  expect_error([&] { load_model(model_with(dir_ + "/outside.bin", "0")); }, {"'w'", "absolute"});
  fs::create_symlink(dir_ + "/outside.bin", dir_ + "/model/link.bin");
  expect_error([&] { load_model(model_with("link.bin", "0")); }, {"'w'", "outside the model folder"});
  fs::create_directory_symlink(dir_, dir_ + "/model/linkdir");
  expect_error([&] { load_model(model_with("linkdir/outside.bin", "0")); }, {"outside the model folder"});
  // a symlink that stays inside the folder is fine
  fs::create_symlink("copy.bin", dir_ + "/model/inner_link.bin");
  EXPECT_NO_THROW(load_model(model_with("inner_link.bin", "0")));
}

TEST_F(ImporterExternal, BadRangesAndFiles) {
  std::string path = model_with("sub/weights.bin", "100");
  expect_error([&] { load_model(path); }, {path, "'w'", "beyond the end"});
  expect_error([&] { load_model(model_with("sub/weights.bin", "16")); }, {"beyond the end"});
  expect_error([&] { load_model(model_with("sub/weights.bin", "8", "20")); }, {"length 20"});
  expect_error([&] { load_model(model_with("sub/weights.bin", "-8")); }, {"offset"});
  expect_error([&] { load_model(model_with("sub/weights.bin", "99999999999999999999")); }, {"offset"});
  expect_error([&] { load_model(model_with("sub/missing.bin")); }, {"does not exist"});
  expect_error([&] { load_model(model_with("sub")); }, {"not a regular file"});
  expect_error([&] { load_model(model_with("")); }, {"no 'location'"});
}

TEST_F(ImporterExternal, RefusedWithoutModelFolder) {
  std::string bytes = read_bytes(model_with("sub/weights.bin"));
  expect_error([&] { load_model_from_bytes(bytes.data(), bytes.size()); }, {"'w'", "external data not allowed here"});
}

// ---------------------------------------------------------------------------------------------
// Malformed files

TEST(ImporterFiles, MissingDirectoryEmptyHuge) {
  std::string missing = scratch("does_not_exist.onnx");
  expect_error([&] { load_model(missing); }, {missing, "does not exist"});
  std::string dir = scratch("a_directory.onnx");
  fs::create_directories(dir);
  expect_error([&] { load_model(dir); }, {dir, "directory"});
  std::string empty = scratch("empty.onnx");
  write_bytes(empty, "");
  expect_error([&] { load_model(empty); }, {empty, "empty"});
  std::string huge = scratch("huge.onnx");  // sparse: takes no disk space
  write_bytes(huge, "");
  fs::resize_file(huge, (uintmax_t(1) << 31) + 1);
  expect_error([&] { load_model(huge); }, {huge, "larger than 2 GiB"});
  fs::remove(huge);
  expect_error([&] { load_model("/dev/null"); }, {"/dev/null", "not a regular file"});
}

TEST(ImporterFiles, RandomBytesNeverCrash) {
  std::mt19937 rng(1234);
  int errors = 0;
  for (int k = 0; k < 200; ++k) {
    std::string bytes(1 + rng() % 2000, '\0');
    for (auto& c : bytes) c = char(rng());
    std::string path = scratch("random.onnx");
    write_bytes(path, bytes);
    try {
      load_model(path);
    } catch (const Error& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(errors, 200);
  std::string text = scratch("text.onnx");
  write_bytes(text, "this is not a model\n");
  expect_error([&] { load_model(text); }, {text});
}

// Every model of the ONNX backend test suite (if installed) either loads or gives a locus::Error,
// and so does every tensor file beside it.
TEST(ImporterFiles, OnnxBackendTestModels) {
  fs::path root = "/usr/share/libonnx-testdata/data/node";
  if (!fs::is_directory(root)) GTEST_SKIP() << "ONNX backend test data not installed";
  int loaded = 0, refused = 0, tensors = 0;
  for (auto& entry : fs::directory_iterator(root)) {
    fs::path model = entry.path() / "model.onnx";
    if (!fs::exists(model)) continue;
    try {
      Graph g = load_model(model.string());
      ++loaded;
    } catch (const Error&) {
      ++refused;
    }
    for (auto& f : fs::recursive_directory_iterator(entry.path())) {
      if (f.path().extension() != ".pb") continue;
      try {
        load_tensor_file(f.path().string());
        ++tensors;
      } catch (const Error&) {
      }
    }
  }
  EXPECT_GT(loaded, 300);
  EXPECT_GT(tensors, 500);
  std::printf("backend test models: %d loaded, %d refused; %d tensor files loaded\n", loaded, refused, tensors);
}

}  // namespace
