// The ONNX exporter (exporters/onnx/onnx_exporter.h) and `locus decompose`: a hand-built graph
// written and read back has the same structure and gives the same outputs; the runtime's own forms
// (fused activations, legacy Softmax) come back as standard nodes; locus-domain ops and runtime
// attributes are refused with one line; a model decomposed and exported gives the same outputs as the
// on-the-fly --decompose pass; the written files pass onnx.checker (python3-onnx, required); the CLI.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>

#include "graph/ops.h"
#include "graph/passes/cp_decompose.h"
#include "graph/passes/pass_manager.h"
#include "exporters/onnx/onnx_exporter.h"
#include "importers/onnx/onnx_importer.h"
#include "exporters/onnx/temp_file.h"
#include "runtime/session.h"
#include "tests/cli_util.h"
#include "tests/error_util.h"
#include "tests/graph_builder_util.h"
#include "tests/onnx_util.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace locus;
using test::GraphBuilder;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<int64_t> ints(std::initializer_list<int64_t> v) { return v; }

// x [1,3,16,16] -> conv1 (8, 3x3, stride 2, pad 1, bias) -> relu -> conv2 (8, 3x3, pad 1) ->
// add(relu out) -> maxpool 2x2 -> avgpool 3x3 pad 1 -> clip [0, 6] -> global avg pool -> flatten -> gemm (10)
// -> softmax
Graph small_net() {
  GraphBuilder b;
  b.input("x", {1, 3, 16, 16});
  b.random_constant("w1", {8, 3, 3, 3}, 1);
  b.random_constant("b1", {8}, 2);
  b.random_constant("w2", {8, 8, 3, 3}, 3);
  b.random_constant("fc_w", {10, 8}, 4);
  b.random_constant("fc_b", {10}, 5);
  b.constant("lo", Tensor::scalar_f32(0.f));
  b.constant("hi", Tensor::scalar_f32(6.f));
  auto c1 = b.node("Conv", {"x", "w1", "b1"},
                   {{"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}, {"kernel_shape", ints({3, 3})}}, "c1");
  auto r1 = b.node("Relu", {c1}, {}, "r1");
  auto c2 = b.node("Conv", {r1, "w2"}, {{"pads", ints({1, 1, 1, 1})}}, "c2");
  auto s = b.node("Add", {c2, r1}, {}, "sum");
  auto mp = b.node("MaxPool", {s}, {{"kernel_shape", ints({2, 2})}, {"strides", ints({2, 2})}}, "mp");
  auto ap = b.node("AveragePool", {mp}, {{"kernel_shape", ints({3, 3})}, {"pads", ints({1, 1, 1, 1})}}, "ap");
  auto cl = b.node("Clip", {ap, "lo", "hi"}, {}, "clipped");
  auto gp = b.node("GlobalAveragePool", {cl}, {}, "gap");
  auto fl = b.node("Flatten", {gp}, {{"axis", int64_t(1)}}, "flat");
  auto fc = b.node("Gemm", {fl, "fc_w", "fc_b"}, {{"transB", int64_t(1)}}, "logits");
  b.node("Softmax", {fc}, {{"axis", int64_t(-1)}}, "prob");
  return b.finish({"prob", "logits"});
}

// x [1,4,12,12] -> conv_a (8, 3x3, stride 2, pad 1, bias) -> relu -> conv_b (6, 3x3, dilation 2, pad 2) ->
// gap -> flatten: two standard convolutions for the decomposition.
Graph conv_net() {
  GraphBuilder b;
  b.input("x", {1, 4, 12, 12});
  b.random_constant("wa", {8, 4, 3, 3}, 11);
  b.random_constant("ba", {8}, 12);
  b.random_constant("wb", {6, 8, 3, 3}, 13);
  auto a = b.node("Conv", {"x", "wa", "ba"}, {{"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}}, "ya");
  b.g.nodes.back().name = "conv_a";
  auto r = b.node("Relu", {a}, {}, "ra");
  auto c = b.node("Conv", {r, "wb"}, {{"dilations", ints({2, 2})}, {"pads", ints({2, 2, 2, 2})}}, "yb");
  b.g.nodes.back().name = "conv_b";
  auto gp = b.node("GlobalAveragePool", {c}, {}, "gap");
  b.node("Flatten", {gp}, {}, "y");
  return b.finish({"y"});
}

std::vector<Tensor> run(Graph g, const std::map<std::string, Tensor>& in, const std::string& backend = "reference",
                        std::optional<CpDecomposeOptions> decompose = std::nullopt) {
  SessionOptions o;
  o.backend_name = backend;
  o.pipeline.decompose = std::move(decompose);
  return Session::from_graph(std::move(g), o).run(in);
}

Graph reload(const std::string& bytes) { return onnx_import::load_model_from_bytes(bytes.data(), bytes.size()); }

std::string attr_text(const Attr& a) {
  std::ostringstream s;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Tensor>) {
          s << "tensor" << shape_str(v.shape);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<float>> ||
                             std::is_same_v<T, std::vector<std::string>>) {
          for (auto& x : v) s << x << ",";
        } else {
          s << v;
        }
      },
      a);
  return s.str();
}

// Nodes (op, name, inputs, outputs, attributes with values), graph inputs/outputs, constants read by nodes.
std::string structure(const Graph& g) {
  std::ostringstream s;
  for (const Node& n : g.nodes) {
    s << test::node_signature(n);
    for (auto& [k, v] : n.attrs) s << " " << k << "=" << attr_text(v);
    s << "\n";
  }
  s << "inputs";
  for (auto& i : g.inputs) s << " " << i << shape_str(g.info(i).shape);
  s << "\noutputs";
  for (auto& o : g.outputs) s << " " << o;
  s << "\n";
  return s.str();
}

void expect_same_tensors(const std::vector<Tensor>& got, const std::vector<Tensor>& want, double rtol, double atol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    std::string why;
    EXPECT_TRUE(test::allclose(got[i], want[i], rtol, atol, why)) << "output " << i << ": " << why;
  }
}

const onnx::ValueInfoProto* find_vi(const onnx::GraphProto& g, const std::string& name) {
  for (auto& v : g.value_info())
    if (v.name() == name) return &v;
  return nullptr;
}

std::vector<int64_t> dims_of(const onnx::ValueInfoProto& v) {
  std::vector<int64_t> d;
  for (auto& x : v.type().tensor_type().shape().dim()) d.push_back(x.dim_value());
  return d;
}

// The python interpreter with the onnx module: $LOCUS_PYTHON, else Debian's /usr/bin/python3
// (python3-onnx), else python3 on the PATH.
std::string python() {
  if (const char* p = std::getenv("LOCUS_PYTHON"); p && *p) return p;
  if (fs::exists("/usr/bin/python3")) return "/usr/bin/python3";
  return "python3";
}

int shell(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

using test::slurp;

// onnx.checker.check_model(full_check=True) on `path` (also runs ONNX's shape inference in strict mode).
// The python onnx module is a dependency (scripts/install-deps.sh: python3-onnx): its absence fails.
void expect_onnx_checker_passes(const std::string& path) {
  const std::string log = test::temp_dir() + "/checker.log";
  const std::string script =
      "import sys, onnx; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); "
      "print('ok', len(m.graph.node))";
  int rc = shell(python() + " -c \"" + script + "\" '" + path + "' >'" + log + "' 2>&1");
  EXPECT_EQ(rc, 0) << python() << " with onnx.checker on " << path << ":\n"
                   << slurp(log) << "(python3-onnx is required: scripts/install-deps.sh)";
}

using test::CliResult;
using test::run_locus;

int lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST(Exporter, RoundTripKeepsStructureAndOutputs) {
  Graph g = small_net();
  const std::string bytes = onnx_export::serialize_model(g);
  Graph back = reload(bytes);
  // the exporter writes the attributes shape inference makes explicit: compare with the inferred original
  Graph want = g;
  infer_shapes(want);
  infer_shapes(back);
  EXPECT_EQ(structure(back), structure(want));
  for (auto& [name, t] : g.constants) {
    ASSERT_TRUE(back.is_constant(name)) << name;
    EXPECT_EQ(back.constant(name)->shape, t.shape) << name;
    EXPECT_TRUE(back.constant(name)->bytes == t.bytes) << name;
  }
  EXPECT_EQ(back.opset, 13);

  auto x = test::random_tensor({1, 3, 16, 16}, 99);
  expect_same_tensors(run(back, {{"x", x}}), run(g, {{"x", x}}), 0, 0);  // the same graph: identical
  expect_same_tensors(run(back, {{"x", x}}, "native"), run(g, {{"x", x}}, "native"), 0, 0);

  // The proto: opset 13 of the default domain, typed inputs/outputs, value_info of the intermediates
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(bytes));
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).domain(), "");
  EXPECT_EQ(m.opset_import(0).version(), 13);
  ASSERT_EQ(m.graph().input_size(), 1);
  EXPECT_EQ(dims_of(m.graph().input(0)), ints({1, 3, 16, 16}));
  EXPECT_EQ(m.graph().input(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
  ASSERT_EQ(m.graph().output_size(), 2);
  EXPECT_EQ(dims_of(m.graph().output(0)), ints({1, 10}));
  // (16 + 2 - 3) / 2 + 1 = 8; max pool 2x2/2: 4; the 3x3 average pool with pad 1 keeps 4
  ASSERT_TRUE(find_vi(m.graph(), "c1"));
  EXPECT_EQ(dims_of(*find_vi(m.graph(), "c1")), ints({1, 8, 8, 8}));
  ASSERT_TRUE(find_vi(m.graph(), "mp"));
  EXPECT_EQ(dims_of(*find_vi(m.graph(), "mp")), ints({1, 8, 4, 4}));
  ASSERT_TRUE(find_vi(m.graph(), "ap"));
  EXPECT_EQ(dims_of(*find_vi(m.graph(), "ap")), ints({1, 8, 4, 4}));
  EXPECT_FALSE(find_vi(m.graph(), "prob"));  // outputs are not repeated in value_info
  // the canonical Softmax attribute 'legacy' is not ONNX
  for (auto& n : m.graph().node())
    for (auto& a : n.attribute()) EXPECT_NE(a.name(), "legacy") << n.name();
  // initializers are raw little-endian data
  for (auto& t : m.graph().initializer()) EXPECT_TRUE(t.has_raw_data()) << t.name();
}

TEST(Exporter, SavedFilePassesOnnxChecker) {
  const std::string path = test::temp_dir() + "/small_net.onnx";
  onnx_export::save_model(small_net(), path);
  ASSERT_TRUE(fs::exists(path));
  for (auto& e : fs::directory_iterator(test::temp_dir()))  // no temporary left behind
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  Graph back = onnx_import::load_model(path);
  EXPECT_EQ(back.nodes.size(), small_net().nodes.size());
  expect_onnx_checker_passes(path);
}

TEST(Exporter, FusedActivationsBecomeStandardNodes) {
  GraphBuilder b;
  b.input("x", {1, 2, 6, 6});
  b.random_constant("w1", {4, 2, 3, 3}, 21);
  b.random_constant("w2", {4, 4, 1, 1}, 22);
  b.random_constant("w3", {3, 4, 1, 1}, 23);
  b.constant("six", Tensor::scalar_f32(6.f));
  b.constant("zero", Tensor::scalar_f32(0.f));
  b.constant("top", Tensor::scalar_f32(0.25f));
  auto c1 = b.node("Conv", {"x", "w1"}, {{"pads", ints({1, 1, 1, 1})}}, "c1");
  auto r = b.node("Relu", {c1}, {}, "r");
  auto c2 = b.node("Conv", {r, "w2"}, {}, "c2");
  auto k = b.node("Clip", {c2, "zero", "six"}, {}, "k");
  auto c3 = b.node("Conv", {k, "w3"}, {}, "c3");
  b.node("Clip", {c3, "", "top"}, {}, "y");  // only a max
  Graph plain = b.finish({"y"});

  Graph fused = plain;
  infer_shapes_and_fold(fused);
  PassManager::default_pipeline().run(fused);
  int with_act = 0;
  for (const Node& n : fused.nodes) with_act += n.has("locus.activation");
  ASSERT_EQ(with_act, 3) << "the fuse-activation pass should have fused all three";
  ASSERT_EQ(fused.nodes.size(), 3u);

  const std::string bytes = onnx_export::serialize_model(fused);
  Graph back = reload(bytes);
  std::map<std::string, int> ops;
  for (const Node& n : back.nodes) {
    ops[n.op]++;
    for (auto& [key, v] : n.attrs) EXPECT_NE(key.rfind("locus.", 0), 0u) << n.name << " " << key;
  }
  EXPECT_EQ(ops["Conv"], 3);
  EXPECT_EQ(ops["Relu"], 1);
  EXPECT_EQ(ops["Clip"], 2);
  // the original value names are kept (the activation produces them)
  EXPECT_GE(back.producer("r"), 0);
  EXPECT_EQ(back.nodes[size_t(back.producer("r"))].op, "Relu");
  EXPECT_EQ(back.nodes[size_t(back.producer("y"))].op, "Clip");
  // the max-only Clip has no min input
  const Node& last = back.nodes[size_t(back.producer("y"))];
  EXPECT_TRUE(last.input(1).empty());
  ASSERT_FALSE(last.input(2).empty());
  EXPECT_EQ(back.constant(last.input(2))->get(0), 0.25);

  auto x = test::random_tensor({1, 2, 6, 6}, 5, -2.f, 2.f);
  auto want = run(plain, {{"x", x}});
  const float* w = want[0].data<float>();
  EXPECT_TRUE(std::any_of(w, w + want[0].numel(), [](float v) { return v == 0.25f; })) << "max bound not exercised";
  expect_same_tensors(run(back, {{"x", x}}), want, 1e-6, 1e-7);
  expect_onnx_checker_passes([&] {
    const std::string p = test::temp_dir() + "/fused_act.onnx";
    onnx_export::save_model(fused, p);
    return p;
  }());
}

TEST(Exporter, LegacySoftmaxIsWrittenWithItsSemantics) {
  // legacy=1 (opset < 13): softmax over everything from axis 1 on, i.e. over 3 x 4 values per row
  GraphBuilder b;
  b.input("x", {2, 3, 4});
  b.node("Softmax", {"x"}, {{"axis", int64_t(1)}, {"legacy", int64_t(1)}}, "y");
  Graph g = b.finish({"y"});
  g.opset = 11;
  const std::string bytes = onnx_export::serialize_model(g);
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(bytes));
  EXPECT_EQ(m.opset_import(0).version(), 13);
  Graph back = reload(bytes);
  auto x = test::random_tensor({2, 3, 4}, 3, -3.f, 3.f);
  auto got = run(back, {{"x", x}});
  // by hand: each of the 2 rows of 12 values sums to 1 (an opset-13 softmax over axis 1 would not)
  ASSERT_EQ(got[0].shape, Shape({2, 3, 4}));
  for (int r = 0; r < 2; ++r) {
    double s = 0;
    for (int i = 0; i < 12; ++i) s += got[0].data<float>()[r * 12 + i];
    EXPECT_NEAR(s, 1.0, 1e-5);
  }
  expect_same_tensors(got, run(g, {{"x", x}}), 1e-6, 1e-7);
}

TEST(Exporter, RefusesLocusOpsAndRuntimeAttributes) {
  // A FusedInvertedResidual made by the fusion pass
  GraphBuilder b;
  b.input("x", {1, 8, 6, 6});
  b.random_constant("we", {16, 8, 1, 1}, 1);
  b.random_constant("wd", {16, 1, 3, 3}, 2);
  b.random_constant("wp", {8, 16, 1, 1}, 3);
  auto e = b.node("Conv", {"x", "we"}, {}, "e");
  auto d = b.node("Conv", {e, "wd"}, {{"group", int64_t(16)}, {"pads", ints({1, 1, 1, 1})}}, "d");
  b.node("Conv", {d, "wp"}, {}, "y");
  Graph g = b.finish({"y"});
  infer_shapes_and_fold(g);
  PassManager::default_pipeline({}, true).run(g);
  ASSERT_TRUE(std::any_of(g.nodes.begin(), g.nodes.end(), [](auto& n) { return n.op == "FusedInvertedResidual"; }));
  test::expect_one_line_error([&] { onnx_export::serialize_model(g); }, {"FusedInvertedResidual", "locus"});
  // ...and nothing is written
  const std::string path = test::temp_dir() + "/refused.onnx";
  EXPECT_THROW(onnx_export::save_model(g, path), Error);
  EXPECT_FALSE(fs::exists(path));

  // another domain
  GraphBuilder c;
  c.input("x", {1, 4});
  c.node("Gelu", {"x"}, {}, "y");
  c.g.nodes.back().domain = "com.microsoft";
  Graph other = c.finish({"y"});
  other.values["y"] = ValueInfo{DType::F32, {1, 4}, true};
  EXPECT_THROW(onnx_export::serialize_model(other), Error);

  // a runtime attribute other than the fused activation
  GraphBuilder t;
  t.input("x", {1, 2, 3, 3});
  for (const char* p : {"s", "bb", "m", "v"}) t.random_constant(p, {2}, 7, 0.5f, 1.f);
  t.node("BatchNormalization", {"x", "s", "bb", "m", "v"}, {{"locus.training", int64_t(1)}}, "y");
  Graph bn = t.finish({"y"});
  bn.values["y"] = ValueInfo{DType::F32, {1, 2, 3, 3}, true};
  try {
    onnx_export::serialize_model(bn);
    ADD_FAILURE() << "locus.training was exported";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("locus.training"), std::string::npos) << err.what();
  }
}

TEST(Exporter, UnwritablePathsAreOneLineErrors) {
  Graph g = small_net();
  for (const std::string& p : std::vector<std::string>{test::temp_dir() + "/no/such/folder/m.onnx", test::temp_dir()}) {
    test::expect_one_line_error([&] { onnx_export::save_model(g, p); }, {p});
  }
  // an existing file is replaced whole
  const std::string p = test::temp_dir() + "/replaced.onnx";
  std::ofstream(p) << "not a model";
  onnx_export::save_model(g, p);
  EXPECT_NO_THROW(onnx_import::load_model(p));
}

// decompose -> export -> reload gives what the on-the-fly pass (SessionOptions::pipeline.decompose) gives
void check_decompose_export(CpForm form, const std::string& tag) {
  CpDecomposeOptions opts;
  opts.policy = RankPolicy::parse("rank=3");
  opts.form = form;
  Graph g = conv_net();
  Graph d = g;
  infer_shapes_and_fold(d);
  auto rep = cp_decompose(d, opts);
  int decomposed = 0;
  for (auto& r : rep) decomposed += r.decomposed;
  ASSERT_EQ(decomposed, 2);
  const std::string path = test::temp_dir() + "/decomposed_" + tag + ".onnx";
  onnx_export::save_model(d, path);
  Graph back = onnx_import::load_model(path);
  // the chains are in the file under recognisable names
  std::set<std::string> names;
  for (const Node& n : back.nodes) names.insert(n.name);
  EXPECT_TRUE(names.count("conv_a/cp_in") && names.count("conv_a/cp_out")) << tag;
  EXPECT_FALSE(names.count("conv_a")) << tag;
  int convs = 0;
  for (const Node& n : back.nodes) convs += n.op == "Conv";
  EXPECT_EQ(convs, form == CpForm::FourWay ? 8 : 6) << tag;

  auto x = test::random_tensor({1, 4, 12, 12}, 17);
  for (const char* backend : {"reference", "native"}) {
    auto on_the_fly = run(g, {{"x", x}}, backend, opts);
    auto exported = run(back, {{"x", x}}, backend);
    expect_same_tensors(exported, on_the_fly, 1e-5, 1e-6);
    // rank 3 is lossy: the output really is the decomposed network's, not the original's
    auto original = run(g, {{"x", x}}, backend);
    std::string why;
    EXPECT_FALSE(test::allclose(exported[0], original[0], 1e-3, 1e-4, why)) << tag << " " << backend;
  }
  expect_onnx_checker_passes(path);
}

TEST(Exporter, DecomposedModelMatchesOnTheFlyPass3Way) { check_decompose_export(CpForm::ThreeWay, "3way"); }
TEST(Exporter, DecomposedModelMatchesOnTheFlyPass4Way) { check_decompose_export(CpForm::FourWay, "4way"); }

// ---- the CLI ----

TEST(DecomposeCli, WritesModelAndReport) {
  const std::string model = test::temp_dir() + "/cli_conv_net.onnx";
  onnx_export::save_model(conv_net(), model);
  const std::string out = test::temp_dir() + "/cli_conv_net_r2.onnx";
  CliResult r = run_locus("decompose '" + model + "' -o '" + out + "' --rank rank=2 --layers conv_a");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* col : {"node", "CoutxCinxKhxKw", "rank", "rel_error", "params_before", "params_after",
                          "MACs_before", "MACs_after"})
    EXPECT_NE(r.out.find(col), std::string::npos) << col << "\n" << r.out;
  EXPECT_NE(r.out.find("reloaded"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("conv_a"), std::string::npos) << "progress on stderr: " << r.err;
  // conv_a: 8x4x3x3 at rank 2 -> 1x1 4->2, dw 3x3 over 2, 1x1 2->8 + bias 8: 8 + 18 + 16 + 8 = 50 parameters
  // (296 before); output 6x6 from 12x12: MACs 144*4*2 + 36*2*9 + 36*2*8 = 2376 (36*8*4*9 = 10368 before)
  std::istringstream is(r.out);
  std::string line, row_a, row_b;
  while (std::getline(is, line)) {
    if (line.rfind("conv_a ", 0) == 0) row_a = line;
    if (line.rfind("conv_b ", 0) == 0) row_b = line;
  }
  ASSERT_FALSE(row_a.empty()) << r.out;
  std::istringstream ra(row_a);
  std::string node, dims, rank, err, iters;
  int64_t pb = 0, pa = 0, mb = 0, ma = 0;
  ra >> node >> dims >> rank >> err >> iters >> pb >> pa >> mb >> ma;
  EXPECT_EQ(dims, "8x4x3x3");
  EXPECT_EQ(rank, "2");
  EXPECT_GT(std::stod(err), 0.0);
  EXPECT_LT(std::stod(err), 1.0);
  EXPECT_EQ(pb, 296);
  EXPECT_EQ(pa, 50);
  EXPECT_EQ(mb, 10368);
  EXPECT_EQ(ma, 2376);
  // conv_b was not selected: left as it is
  EXPECT_NE(row_b.find("filtered"), std::string::npos) << row_b;
  Graph back = onnx_import::load_model(out);
  int convs = 0;
  for (const Node& n : back.nodes) convs += n.op == "Conv";
  EXPECT_EQ(convs, 4);
  expect_onnx_checker_passes(out);

  CliResult j = run_locus("decompose '" + model + "' -o '" + out + "' --rank error=0.3 --form 4 --format json");
  ASSERT_EQ(j.status, 0) << j.err;
  EXPECT_EQ(j.out.rfind("{\"schema\":\"locus-decompose/1\"", 0), 0u) << j.out;
  EXPECT_NE(j.out.find("\"layers\""), std::string::npos);
}

TEST(DecomposeCli, BadInputIsOneLineAndNonZero) {
  const std::string model = test::temp_dir() + "/cli_conv_net_bad.onnx";
  onnx_export::save_model(conv_net(), model);
  const std::string out = test::temp_dir() + "/never.onnx";
  struct Case {
    std::string args, needle;
  };
  for (const Case& c : std::vector<Case>{
           {"--rank bogus", "bogus"},
           {"--rank ratio=abc", "ratio=abc"},
           {"--form 5", "--form"},
           {"--layers nope", "nope"},
           {"--format xml", "xml"},
       }) {
    CliResult r = run_locus("decompose '" + model + "' -o '" + out + "' " + c.args);
    EXPECT_NE(r.status, 0) << c.args;
    EXPECT_GT(r.status, 0) << c.args << " crashed or timed out";
    EXPECT_EQ(lines(r.err), 1) << c.args << ": " << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.args << ": " << r.err;
  }
  CliResult r = run_locus("decompose '" + model + "'");
  EXPECT_EQ(r.status, 2) << r.err;
  r = run_locus("decompose '" + model + "' -o " + test::temp_dir() + "/missing/dir/m.onnx");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists(out));
  r = run_locus("decompose --help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("--rank POLICY"), std::string::npos);
}

TEST(DecomposeCli, RunTakesDecomposeOption) {
  const std::string model = test::temp_dir() + "/cli_conv_net_run.onnx";
  onnx_export::save_model(conv_net(), model);
  const std::string in = test::temp_dir() + "/x.pb";
  onnx_import::save_tensor_file(in, test::random_tensor({1, 4, 12, 12}, 3), "x");
  CliResult r = run_locus("run '" + model + "' --input x=" + in + " --decompose rank=2 --explain --backend reference");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("cp-decompose"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rank 2"), std::string::npos) << r.err;
  r = run_locus("run '" + model + "' --input x=" + in + " --decompose rank=");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  r = run_locus("run '" + model + "' --input x=" + in + " --decompose-form 4");
  EXPECT_EQ(r.status, 2) << r.err;
  for (const char* cmd : {"run", "check", "bench"}) {
    r = run_locus(std::string(cmd) + " --help");
    EXPECT_NE(r.out.find("--decompose POLICY"), std::string::npos) << cmd;
  }
}

// An interrupted write leaves no temporary file: a child process registers one, is sent each
// signal, and must end by that signal with the file gone. Without a guard the file stays.
namespace locus {
namespace {

TEST(ExporterTempFile, SignalRemovesTheTemporaryFile) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(test::temp_dir()) / "signal_guard";
  fs::create_directories(dir);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    const fs::path tmp = dir / (".model.onnx.tmp-" + std::to_string(sig));
    std::ofstream(tmp) << "partial";
    ASSERT_TRUE(fs::exists(tmp));
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      onnx_export::TempFileGuard guard(tmp.string());
      raise(sig);
      _exit(0);  // not reached: the signal ends the process
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "signal " << sig;
    EXPECT_EQ(WTERMSIG(status), sig);
    EXPECT_FALSE(fs::exists(tmp)) << "signal " << sig << " left " << tmp;
  }
  // After the guard is gone the handlers are the previous ones: the file is no longer removed.
  const fs::path kept = dir / ".kept.tmp";
  std::ofstream(kept) << "x";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    { onnx_export::TempFileGuard guard(kept.string()); }
    raise(SIGTERM);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(fs::exists(kept));
}

}  // namespace
}  // namespace locus

namespace locus {
namespace {

// locus decompose runs ONNX's own checker on the file it wrote: a valid model passes, a model that
// imports but breaks the spec (an operator the default domain does not have) fails with one line.
TEST(ExporterChecker, CheckerAcceptsValidAndRefusesInvalidFiles) {
  const std::string good = test::temp_dir() + "/checker_good.onnx";
  onnx_export::save_model(small_net(), good);
  EXPECT_NO_THROW(onnx_export::check_model_file(good));

  onnx::ModelProto m = test::model_with_float_input("bad", "x", {4});
  auto* g = m.mutable_graph();
  auto* n = g->add_node();
  n->set_op_type("NoSuchOp");
  n->add_input("x");
  n->add_output("y");
  auto* out = g->add_output();
  out->set_name("y");
  out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  out->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(4);
  const std::string bad = test::temp_dir() + "/checker_bad.onnx";
  {
    std::ofstream f(bad, std::ios::binary);
    m.SerializeToOstream(&f);
  }
  test::expect_one_line_error([&] { onnx_export::check_model_file(bad); }, {"fails the ONNX checker", "NoSuchOp"});
}

}  // namespace
}  // namespace locus
