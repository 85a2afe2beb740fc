// Fusion through squeeze-excite (graph/passes/fuse_inverted_residual.cpp, FusedSEBlock in
// graph/ops.h): a MobileNetV3 block written as exporters write it (1x1 -> [decomposed HardSwish]
// -> depthwise -> [decomposed HardSwish] -> GlobalAveragePool -> 1x1 -> Relu -> 1x1 -> HardSigmoid
// -> Mul -> 1x1 [-> Add of the block input]) becomes one node; the reference backend's composition
// gives the unfused graph's bytes, the native kernel the same within fp32 tolerance; the pass refuses
// with a remark what it cannot fuse; the op's shape inference refuses broken nodes; the PP-OCR
// classifier fuses its squeeze-excite blocks and still matches ONNX Runtime (native, fused and
// --no-fuse; `locus check` on both PP-OCR models), its plans say which strategy each block takes,
// and `locus energy` models the same blocks (fused-scan below --no-fuse, the strategy in the mapping
// file, read back or changed).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "accel/json_reader.h"
#include "graph/ops.h"
#include "graph/passes/pass_manager.h"
#include "importers/onnx/onnx_importer.h"
#include "runtime/session.h"
#include "tests/cli_util.h"
#include "tests/graph_builder_util.h"
#include "tests/real_model_util.h"

using namespace locus;
using locus::test::GraphBuilder;

namespace {

namespace fs = std::filesystem;

int count_op(const Graph& g, const std::string& op) {
  return int(std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op == op; }));
}

struct SeSpec {
  int64_t C = 6, E = 20, SQ = 5, H = 9, W = 11, K = 3, stride = 1;
  bool expand = true, residual = true;
  bool hardswish_ops = true;  // the exporters' decomposed HardSwish after expand and dw (else Relu)
  bool spy = false;           // a Relu also reads the depthwise output (the pass must refuse)
  bool standard = false;      // the "depthwise" conv is a standard one (group 1), as in PP-OCRv4's neck
};

struct SeBuilt {
  Graph g;
  std::string dw_name, dw_out;
};

// x -> [1x1 E] -> act -> dw -> act -> GAP -> 1x1 SQ -> Relu -> 1x1 E -> HardSigmoid -> Mul -> 1x1 C [+ x]
SeBuilt build_se(const SeSpec& s, uint32_t seed) {
  GraphBuilder gb;
  const std::string x = gb.input("x", {1, s.C, s.H, s.W});
  auto conv = [&](const std::string& in, int64_t cout, int64_t cin, int64_t k, int64_t group, int64_t stride) {
    const std::string w = gb.random_constant("w" + std::to_string(gb.counter), {cout, cin / group, k, k}, seed++, -0.5f, 0.5f);
    const std::string b = gb.random_constant("b" + std::to_string(gb.counter), {cout}, seed++, -0.5f, 0.5f);
    std::map<std::string, Attr> a{{"kernel_shape", std::vector<int64_t>{k, k}},
                                  {"strides", std::vector<int64_t>{stride, stride}},
                                  {"pads", std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2}},
                                  {"group", group}};
    return gb.node("Conv", {in, w, b}, a);
  };
  const std::string three = gb.constant("three", Tensor::scalar_f32(3.f));
  const std::string zero = gb.constant("zero", Tensor::scalar_f32(0.f));
  const std::string six = gb.constant("six", Tensor::scalar_f32(6.f));
  auto act = [&](const std::string& v) {
    if (!s.hardswish_ops) return gb.node("Relu", {v});
    const std::string a = gb.node("Add", {v, three});
    const std::string c = gb.node("Clip", {a, zero, six});
    const std::string m = gb.node("Mul", {v, c});
    return gb.node("Div", {m, six});
  };
  std::string cur = x;
  if (s.expand) cur = act(conv(x, s.E, s.C, 1, 1, 1));
  const std::string dconv = conv(cur, s.E, s.E, s.K, s.standard ? 1 : s.E, s.stride);
  SeBuilt r;
  r.dw_name = gb.g.nodes.back().name;
  const std::string d = act(dconv);
  r.dw_out = d;
  const std::string pooled = gb.node("GlobalAveragePool", {d});
  const std::string sq = gb.node("Relu", {conv(pooled, s.SQ, s.E, 1, 1, 1)});
  const std::string gate = gb.node("HardSigmoid", {conv(sq, s.E, s.SQ, 1, 1, 1)},
                                   {{"alpha", 0.2f}, {"beta", 0.5f}});
  const std::string scaled = gb.node("Mul", {d, gate});
  std::string y = conv(scaled, s.C, s.E, 1, 1, 1);
  if (s.residual) y = gb.node("Add", {y, x});
  std::vector<std::string> outs{y};
  if (s.spy) outs.push_back(gb.node("Relu", {d}, {}, "spy_out"));
  r.g = gb.finish(outs);
  infer_shapes(r.g);
  return r;
}

std::vector<Tensor> run(const Graph& g, const std::string& backend, bool fuse, const Tensor& x) {
  SessionOptions o;
  o.backend_name = backend;
  if (!fuse) o.pipeline.disabled_passes = {"fuse-inverted-residual"};
  return Session::from_graph(g, o).run({{"x", x}});
}

// The native backend (fused as far as the pass goes) within fp32 tolerance of the unfused reference.
void expect_native_matches_reference(const Graph& g, const SeSpec& s, uint32_t seed) {
  const Tensor x = test::random_tensor({1, s.C, s.H, s.W}, seed, -3.f, 3.f);
  std::string why;
  EXPECT_TRUE(test::allclose(run(g, "native", true, x)[0], run(g, "reference", false, x)[0], 1e-4, 1e-5, why)) << why;
}

TEST(FuseSeBlock, ExporterFormBecomesOneNodeMatchingTheUnfusedGraph) {
  uint32_t seed = 10;
  for (bool residual : {true, false})
    for (bool hs : {true, false})
      for (int64_t stride : {1, 2}) {
        SeSpec s;
        s.residual = residual && stride == 1;
        s.hardswish_ops = hs;
        s.stride = stride;
        s.K = hs ? 5 : 3;
        SCOPED_TRACE(cat("residual=", s.residual, " hardswish_ops=", hs, " stride=", stride));
        SeBuilt b = build_se(s, seed);
        seed += 20;
        Graph fused = b.g;
        PassReport rep = PassManager::default_pipeline({}, true).run(fused);
        EXPECT_EQ(count_op(fused, "FusedSEBlock"), 1);
        EXPECT_EQ(count_op(fused, "GlobalAveragePool"), 0);
        EXPECT_EQ(count_op(fused, "Mul"), 0);
        EXPECT_EQ(fused.nodes.size(), 1u) << "the whole block is one node";
        const Node& n = fused.nodes.back();
        // recognize-hardswish turns the decomposed HardSwish into a conv epilogue first; with it
        // disabled the block keeps the four nodes' arithmetic (hardswish_ops)
        EXPECT_EQ(n.s("dw_activation", ""), hs ? "hardswish" : "relu");
        if (hs) {
          Graph kept = b.g;
          PassManager::default_pipeline({"recognize-hardswish"}, true).run(kept);
          ASSERT_EQ(kept.nodes.size(), 1u);
          EXPECT_EQ(kept.nodes.back().s("dw_activation", ""), "hardswish_ops");
        }
        EXPECT_EQ(n.s("excite_activation", ""), "hardsigmoid");
        EXPECT_EQ(n.i("residual", -1), s.residual ? 1 : 0);
        bool applied = false;
        for (const PassRemark& r : rep.remarks)
          applied |= r.kind == RemarkKind::Applied && r.message.find("with the squeeze-excite") != std::string::npos;
        EXPECT_TRUE(applied);

        const Tensor x = test::random_tensor({1, s.C, s.H, s.W}, seed++, -3.f, 3.f);
        const std::vector<Tensor> want = run(b.g, "reference", false, x);
        // the reference evaluates the fused node by composition: the same bytes
        const std::vector<Tensor> ref = run(b.g, "reference", true, x);
        ASSERT_EQ(ref[0].shape, want[0].shape);
        EXPECT_EQ(ref[0].bytes, want[0].bytes);
        // the native kernel: within fp32 tolerance of the unfused native graph and of the reference
        const std::vector<Tensor> nat = run(b.g, "native", true, x), unf = run(b.g, "native", false, x);
        for (const std::vector<Tensor>* other : {&want, &unf}) {
          std::string why;
          EXPECT_TRUE(test::allclose(nat[0], (*other)[0], 1e-4, 1e-5, why)) << why;
        }
      }
}

TEST(FuseSeBlock, WithoutExpandStage) {
  SeSpec s;
  s.expand = false;
  s.C = s.E;  // the depthwise conv reads the block input
  SeBuilt b = build_se(s, 300);
  Graph fused = b.g;
  PassManager::default_pipeline({}, true).run(fused);
  ASSERT_EQ(count_op(fused, "FusedSEBlock"), 1);
  EXPECT_TRUE(fused.nodes.back().input(1).empty());
  expect_native_matches_reference(b.g, s, 301);
}

TEST(FuseSeBlock, RefusesWhenTheDepthwiseOutputHasAnotherReader) {
  SeSpec s;
  s.spy = true;
  SeBuilt b = build_se(s, 400);
  Graph g = b.g;
  PassReport rep = PassManager::default_pipeline({}, true).run(g);
  EXPECT_EQ(count_op(g, "FusedSEBlock"), 0);
  bool found = false;
  for (const PassRemark& r : rep.remarks)
    // (the plain inverted-residual matcher may also remark on the conv, which now carries the
    // HardSwish recognize-hardswish folded into it: only the squeeze-excite remark is checked)
    if (r.pass == "fuse-inverted-residual" && r.kind == RemarkKind::Missed && r.node == b.dw_name &&
        r.message.find("squeeze-excite") != std::string::npos) {
      EXPECT_NE(r.message.find("not fused into a squeeze-excite block with depthwise conv '" + b.dw_name + "'"),
                std::string::npos)
          << r.message;
      EXPECT_NE(r.message.find("is read by"), std::string::npos) << r.message;
      for (const Node& n : b.g.nodes)  // names the third reader
        if (n.outputs[0] == "spy_out") EXPECT_NE(r.message.find("'" + n.name + "'"), std::string::npos) << r.message;
      found = true;
    }
  EXPECT_TRUE(found) << "no remark on the depthwise conv";
  // and the graph still computes the same thing on the native backend
  expect_native_matches_reference(b.g, s, 401);
}

TEST(FuseSeBlock, RefusesAGateThatIsNotTwoOneByOnes) {
  SeSpec s;
  s.hardswish_ops = false;
  SeBuilt b = build_se(s, 500);
  // the excite conv becomes 3x3 (padded): not a 1x1, the block is refused at the squeeze conv
  for (Node& n : b.g.nodes)
    if (n.op == "HardSigmoid") {
      const std::string conv_out = n.inputs[0];
      for (Node& c : b.g.nodes)
        if (c.outputs[0] == conv_out) {
          Tensor& w = b.g.constants[c.inputs[1]];
          w = test::random_tensor({w.shape[0], w.shape[1], 3, 3}, 501);
          c.attrs["kernel_shape"] = std::vector<int64_t>{3, 3};
          c.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
        }
    }
  infer_shapes(b.g);
  Graph g = b.g;
  PassReport rep = PassManager::default_pipeline({}, true).run(g);
  EXPECT_EQ(count_op(g, "FusedSEBlock"), 0);
  bool found = false;
  for (const PassRemark& r : rep.remarks)
    found |= r.kind == RemarkKind::Missed && r.message.find("is not read by one 1x1 conv (the excite) alone") != std::string::npos;
  EXPECT_TRUE(found);
}

TEST(FuseSeBlock, SaysWhyASqueezeExciteOnAStandardConvIsNotFused) {
  SeSpec s;
  s.standard = true;
  s.hardswish_ops = false;
  SeBuilt b = build_se(s, 550);
  Graph g = b.g;
  PassReport rep = PassManager::default_pipeline({}, true).run(g);
  EXPECT_EQ(count_op(g, "FusedSEBlock"), 0);
  bool found = false;
  for (const PassRemark& r : rep.remarks)
    if (r.kind == RemarkKind::Missed && r.node.rfind("GlobalAveragePool", 0) == 0) {
      EXPECT_NE(r.message.find("is the output of Conv '" + b.dw_name + "', not of a depthwise conv"), std::string::npos)
          << r.message;
      found = true;
    }
  EXPECT_TRUE(found) << "no remark at the pool";
}

TEST(FusedSEBlockOp, ShapeInferenceRefusesBrokenNodes) {
  SeSpec s;
  SeBuilt b = build_se(s, 600);
  Graph g = b.g;
  PassManager::default_pipeline({}, true).run(g);
  ASSERT_EQ(count_op(g, "FusedSEBlock"), 1);
  const Node base = g.nodes.back();
  auto infer = [&](Node n, size_t k, Shape shape) {
    std::vector<ValueInfo> in(n.inputs.size());
    std::vector<const Tensor*> consts(n.inputs.size(), nullptr);
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (!n.inputs[i].empty()) in[i] = g.info(n.inputs[i]);
    if (k < in.size()) in[k].shape = std::move(shape);
    return infer_node(n, in, consts);
  };
  EXPECT_NO_THROW(infer(base, 99, {}));
  auto expect_error = [&](Node n, size_t k, Shape shape, const std::string& what) {
    try {
      infer(std::move(n), k, std::move(shape));
      ADD_FAILURE() << "accepted: " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_error(base, 9, {s.E, s.SQ + 1, 1, 1}, "W_excite");
  expect_error(base, 7, {s.SQ, s.E + 2, 1, 1}, "W_squeeze");
  Node no_project = base;
  no_project.inputs[5] = "";
  no_project.inputs[6] = "";
  expect_error(no_project, 99, {}, "input 5 (W_project) is required");
  Node bad_act = base;
  bad_act.attrs["dw_activation"] = std::string("tanh");
  expect_error(bad_act, 99, {}, "dw_activation 'tanh' is not supported");
}

// ---------------------------------------------------------------- the PP-OCR classifier

std::string cls_dir() {
  const std::string d = test::shared_models_dir();
  if (d.empty()) return "";
  fs::path p = fs::path(d) / "ch_ppocr_mobile_v2.0_cls_infer";
  return fs::is_directory(p) ? p.string() : "";
}

TEST(PpOcrSe, ClassifierFusesItsSqueezeExciteBlocksAndMatchesOnnxRuntime) {
  const std::string dir = cls_dir();
  if (dir.empty()) GTEST_SKIP() << "no shared models";
  const std::string model = dir + "/ch_ppocr_mobile_v2.0_cls_infer.onnx";
  for (bool fuse : {true, false})
    for (int k = 0; fs::is_directory(cat(dir, "/test_data_set_", k)); ++k) {
      const std::string set = cat(dir, "/test_data_set_", k);
      Tensor in = onnx_import::load_tensor_file(set + "/input_0.pb");
      Tensor want = onnx_import::load_tensor_file(set + "/output_0.pb");
      SessionOptions o;
      o.input_shapes["x"] = in.shape;
      if (!fuse) o.pipeline.disabled_passes = {"fuse-inverted-residual"};
      Session s = Session::from_file(model, o);
      // the classifier has 9 squeeze-excite blocks after a depthwise conv (MobileNetV3-small style)
      EXPECT_EQ(count_op(s.graph(), "FusedSEBlock"), fuse ? 9 : 0);
      if (fuse) {
        EXPECT_NE(s.executable().describe().find("9 with squeeze-excite"), std::string::npos) << s.executable().describe();
        int se_rows = 0;
        for (const FusedBlockPlanRow& r : s.executable().fused_block_plans()) se_rows += r.se.has_value();
        EXPECT_EQ(se_rows, 9);
      }
      auto out = s.run({{"x", in}});
      std::string why;
      EXPECT_TRUE(test::allclose(out[0], want, 1e-3, 1e-4, why)) << (fuse ? "fused" : "--no-fuse") << " set " << k << ": " << why;
    }
}

// `locus info --plans --shape` lists each squeeze-excite block's strategy; --shape takes
// [NAME=]DIMS as bench does; a bad --shape (info and energy) is one line naming the option.
TEST(PpOcrSe, InfoPlansSayTheStrategyAndShapeIsChecked) {
  const std::string dir = cls_dir();
  if (dir.empty()) GTEST_SKIP() << "no shared models";
  test::CliResult r = test::run_locus("info --plans --shape x=1x3x48x192 " + dir);
  ASSERT_EQ(r.status, 0) << r.err;
  size_t n = 0;
  for (size_t at = r.out.find("squeeze-excite two-pass: D "); at != std::string::npos;
       at = r.out.find("squeeze-excite two-pass: D ", at + 1))
    ++n;
  EXPECT_EQ(n, 9u) << r.out;
  for (const char* cmd : {"info", "energy"}) {
    test::expect_one_line_error(cat(cmd, " --shape 1x3xfoo ", dir), "--shape expects [NAME=]DIMS like x=1x3x640x640, got '1x3xfoo'");
    test::expect_one_line_error(cat(cmd, " --shape =1x3x48x192 ", dir),
                                "--shape expects [NAME=]DIMS like x=1x3x640x640, got '=1x3x48x192'");
    test::expect_one_line_error(cat(cmd, " --shape y=1x3x48x192 ", dir),
                                "--shape names 'y', which is not an input of the model");
    test::expect_one_line_error(cat(cmd, " --shape 3x48x192 ", dir), "--shape 3x48x192 has rank 3; input 'x' has rank 4");
  }
}

// `locus check` passes both PP-OCR models against ONNX Runtime's outputs with fusion on and off
// (native backend; the detector has no block that fuses, its graph is the same either way).
TEST(PpOcrSe, CheckPassesFusedAndUnfused) {
  const std::string cls = cls_dir();
  if (cls.empty()) GTEST_SKIP() << "no shared models";
  const std::string det = (fs::path(cls).parent_path() / "ch_PP-OCRv4_det_infer").string();
  for (const std::string& dir : {cls, det})
    for (const char* fuse : {"", " --no-fuse"}) {
      test::CliResult r = test::run_locus(cat("check --backend native", fuse, " ", dir));
      EXPECT_EQ(r.status, 0) << dir << fuse << ": " << r.out << r.err;
      EXPECT_NE(r.out.find("1 passed, 0 failed, 0 skipped"), std::string::npos) << dir << fuse << ": " << r.out;
    }
}

double total_of(const std::string& json_text, size_t schedule, const char* key) {
  namespace json = locus::accel::json;
  const json::Value doc = json::parse(json_text, "locus energy output");
  const json::Value* v = doc.find("schedules")->array.at(schedule).find("total")->find(key);
  return v && v->is_number() ? v->number : -1;
}

TEST(PpOcrSe, EnergyModelsTheSqueezeExciteBlocks) {
  const std::string dir = cls_dir();
  if (dir.empty()) GTEST_SKIP() << "no shared models";
  const std::string base = "energy " + dir + " --shape 1x3x96x384 --format json --pacing compute";
  const std::string file = test::temp_dir() + "/se_mapping.json";
  test::CliResult fused = test::run_locus(base + " --emit-mapping " + file);
  test::CliResult unfused = test::run_locus(base + " --no-fuse");
  ASSERT_EQ(fused.status, 0) << fused.err;
  ASSERT_EQ(unfused.status, 0) << unfused.err;
  // schedules: baseline, scan, fused-scan. Layer by layer the fused workload is the unfused one (its
  // groups' stages include the HardSwish nodes they replaced); fused-scan reads and writes far less.
  EXPECT_NEAR(total_of(fused.out, 1, "dram_read_bytes"), total_of(unfused.out, 1, "dram_read_bytes"),
              0.001 * total_of(unfused.out, 1, "dram_read_bytes"));
  EXPECT_LT(total_of(fused.out, 2, "dram_read_bytes"), 0.5 * total_of(unfused.out, 2, "dram_read_bytes"));
  // the mapping says each block's strategy: all nine two-pass at 64K entries
  std::ifstream f(file);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  size_t n = 0;
  for (size_t at = text.find("\"squeeze_excite\""); at != std::string::npos; at = text.find("\"squeeze_excite\"", at + 1)) ++n;
  EXPECT_EQ(n, 9u * 1);  // fused-scan only (the other schedules run the groups layer by layer)
  // read back: the same report; one block switched to recompute: more MACs (expand and dw again)
  test::CliResult again = test::run_locus(base + " --mapping " + file);
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.out, fused.out);
  const size_t at = text.find("\"two-pass\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 10, "\"recompute\"");
  const std::string file2 = test::temp_dir() + "/se_mapping_recompute.json";
  std::ofstream(file2) << text;
  test::CliResult re = test::run_locus(base + " --mapping " + file2);
  ASSERT_EQ(re.status, 0) << re.err;
  EXPECT_GT(total_of(re.out, 2, "macs"), total_of(fused.out, 2, "macs"));
  EXPECT_EQ(total_of(re.out, 1, "macs"), total_of(fused.out, 1, "macs"));
  text.replace(at, 11, "\"sideways\"");
  const std::string file3 = test::temp_dir() + "/se_mapping_bad.json";
  std::ofstream(file3) << text;
  test::expect_one_line_error(base + " --mapping " + file3, "'squeeze_excite' must be \"two-pass\" or \"recompute\"");
}

}  // namespace
