// The `locus` program end to end: bad input of every kind gets a one-line error naming the
// problem and a non-zero exit (never a crash or a hang); the real model classifies the photos and
// passes `locus check`.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "cli/cli.h"
#include "graph/ops.h"
#include "importers/onnx/onnx_importer.h"
#include "accel/json_reader.h"
#include "tests/cli_util.h"
#include "tests/onnx_util.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace locus;

namespace {

using Result = test::CliResult;

// A shorter timeout than the default: every command here is quick.
Result run_locus(const std::string& args, const std::string& env = "") { return test::run_locus(args, env, 120); }

// A bad input: exit status 1 (not a crash, not a timeout), exactly one line on stderr, naming it.
void expect_clean_error(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err << " (wanted '" << needle << "')";
}

std::string write_file(const std::string& name, const std::string& bytes) {
  std::string p = test::temp_dir() + "/" + name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

// Runs the Python program `py` (written to `name`) with `args`; its exit status (0: its asserts held).
// The JSON the CLI writes is checked by Python's json module, independently of our writer.
int python_check(const std::string& name, const std::string& py, const std::string& args) {
  return std::system(("python3 " + write_file(name, py) + " " + args).c_str());
}

// A one-node model: input x [dims] -> op -> y
std::string write_model(const std::string& name, const std::vector<std::string>& ops,
                        const std::vector<int64_t>& dims) {
  onnx::ModelProto m = test::model_with_float_input("t", "x", dims);
  auto* g = m.mutable_graph();
  std::string prev = "x";
  for (size_t i = 0; i < ops.size(); ++i) {
    auto* n = g->add_node();
    n->set_op_type(ops[i]);
    n->set_name("node" + std::to_string(i));
    n->add_input(prev);
    prev = "v";
    prev += std::to_string(i);
    n->add_output(prev);
  }
  g->add_output()->set_name(prev);
  std::string bytes;
  m.SerializeToString(&bytes);
  return write_file(name, bytes);
}

// Two 1x1 convs: x [1,16,14,14] -> conv_a (24 channels, bias) -> conv_b (40 channels, stride 2).
std::string write_pointwise_model() {
  onnx::ModelProto m = test::model_with_float_input("pw", "x", {1, 16, 14, 14});
  auto* g = m.mutable_graph();
  std::mt19937 rng(7);
  auto init = [&](const std::string& name, std::vector<int64_t> dims) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (auto d : dims) {
      t->add_dims(d);
      n *= d;
    }
    for (int64_t i = 0; i < n; ++i) t->add_float_data(float(int(rng() % 2001) - 1000) / 4000.f);
  };
  init("wa", {24, 16, 1, 1});
  init("ba", {24});
  init("wb", {40, 24, 1, 1});
  auto* a = g->add_node();
  a->set_op_type("Conv");
  a->set_name("conv_a");
  for (const char* i : {"x", "wa", "ba"}) a->add_input(i);
  a->add_output("ya");
  auto* b = g->add_node();
  b->set_op_type("Conv");
  b->set_name("conv_b");
  for (const char* i : {"ya", "wb"}) b->add_input(i);
  b->add_output("y");
  auto* st = b->add_attribute();
  st->set_name("strides");
  st->set_type(onnx::AttributeProto::INTS);
  st->add_ints(2);
  st->add_ints(2);
  g->add_output()->set_name("y");
  std::string bytes;
  m.SerializeToString(&bytes);
  return write_file("pointwise.onnx", bytes);
}

// The --plans rows (after the column header), one per 1x1 conv.
std::vector<std::string> plan_rows(const std::string& out) {
  std::vector<std::string> rows;
  auto at = out.find("\nplans ");
  if (at == std::string::npos) return rows;
  std::istringstream is(out.substr(at + 1));
  std::string line;
  std::getline(is, line);  // plans  <settings>
  std::getline(is, line);  // column header
  while (std::getline(is, line) && !line.empty()) rows.push_back(line);
  return rows;
}

std::string plans_line(const std::string& out) {
  auto at = out.find("\nplans ");
  return at == std::string::npos ? "" : out.substr(at + 1, out.find('\n', at + 1) - at - 1);
}

std::string real_model() {
  std::string d = test::mobilenet_fp32_dir();
  return d.empty() ? "" : d + "/mobilenetv2-12-fp32-from-int8.onnx";
}

}  // namespace

TEST(Cli, MissingFile) { expect_clean_error(run_locus("run /nonexistent/model.onnx --image x.jpg"), "not found"); }

TEST(Cli, EmptyFile) { expect_clean_error(run_locus("info " + write_file("empty.onnx", "")), "empty"); }

TEST(Cli, RandomBytes) {
  std::mt19937 rng(3);
  std::string junk(4096, '\0');
  for (auto& c : junk) c = char(rng());
  expect_clean_error(run_locus("info " + write_file("junk.onnx", junk)), "junk.onnx");
}

TEST(Cli, TruncatedModel) {
  std::string src = real_model();
  if (src.empty()) GTEST_SKIP() << "shared models not found";
  std::ifstream f(src, std::ios::binary);
  std::string bytes(std::istreambuf_iterator<char>(f), {});
  expect_clean_error(run_locus("info " + write_file("truncated.onnx", bytes.substr(0, bytes.size() / 2))),
                     "truncated.onnx");
}

TEST(Cli, UnsupportedOperatorsAreAllNamed) {
  auto r = run_locus("info " + write_model("unsup.onnx", {"Relu", "LSTMish", "Relu", "Erf"}, {1, 4}));
  expect_clean_error(r, "LSTMish (node 'node1')");
  EXPECT_NE(r.err.find("Erf (node 'node3')"), std::string::npos) << r.err;
}

TEST(Cli, AbsurdDimensions) {
  expect_clean_error(run_locus("info " + write_model("absurd.onnx", {"Relu"}, {1 << 20, 1 << 20, 1 << 20})), "absurd dimensions");
}

TEST(Cli, WrongInputShapeAndType) {
  std::string model = write_model("relu.onnx", {"Relu"}, {1, 3, 4, 4});
  std::string bad_shape = test::temp_dir() + "/bad_shape.pb";
  onnx_import::save_tensor_file(bad_shape, Tensor(DType::F32, {1, 3, 4, 5}), "x");
  expect_clean_error(run_locus("run " + model + " --input x=" + bad_shape), "expects [1,3,4,4]");
  std::string bad_type = test::temp_dir() + "/bad_type.pb";
  onnx_import::save_tensor_file(bad_type, Tensor(DType::I64, {1, 3, 4, 4}), "x");
  expect_clean_error(run_locus("run " + model + " --input x=" + bad_type), "int64");
}

TEST(Cli, ImageThatIsNotAnImage) {
  std::string src = real_model();
  if (src.empty()) GTEST_SKIP() << "shared models not found";
  expect_clean_error(run_locus("run " + src + " --image " + write_file("notes.jpg", "hello, not a jpeg\n")), "notes.jpg");
}

TEST(Cli, UsageErrorsExitWithTwo) {
  EXPECT_EQ(run_locus("frobnicate").status, 2);
  EXPECT_EQ(run_locus("run").status, 2);
  EXPECT_EQ(run_locus("check --rtol banana /tmp").status, 2);
  auto h = run_locus("run --help");
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.out.find("--image"), std::string::npos);
}

TEST(Cli, ClassifiesTheSharedPhotos) {
  std::string dir = test::shared_models_dir();
  if (dir.empty() || real_model().empty()) GTEST_SKIP() << "shared models not found";
  const std::pair<const char*, const char*> photos[] = {
      {"cat", "\t282\t"}, {"dog", "\t249\t"}, {"eagle", "\t22\t"}, {"finch", "\t12\t"}, {"grace_hopper", "\t457\t"}};
  for (auto& [photo, top1] : photos) {
    auto r = run_locus("run " + real_model() + " --top 3 --image " + dir + "/images/" + photo + ".jpg");
    ASSERT_EQ(r.status, 0) << r.err;
    // line 2 is the top-1: "1\t<class>\t<prob>\t<label>"
    auto first = r.out.find('\n');
    auto second = r.out.find('\n', first + 1);
    std::string line = r.out.substr(first + 1, second - first - 1);
    EXPECT_EQ(line.rfind(std::string("1") + top1, 0), 0u) << photo << ": " << r.out;
  }
}

// The quantized model classifies the photos as ONNX Runtime does (its top-5 per photo, from the shared
// models' test_data_sets.tsv). Its logits come in steps, so classes tie: a class of ORT's top-5 that
// locus's tie-break (the lower id) leaves out must be named on the '# rank 5 ties with' line.
TEST(Cli, ClassifiesTheSharedPhotosWithTheInt8Model) {
  std::string dir = test::shared_models_dir();
  if (dir.empty()) GTEST_SKIP() << "shared models not found";
  const std::pair<const char*, std::vector<int>> photos[] = {{"cat", {282, 278, 277, 281, 287}},
                                                             {"dog", {249, 537, 248, 250, 444}},
                                                             {"eagle", {22, 23, 21, 8, 83}},
                                                             {"finch", {12, 10, 11, 14, 86}},
                                                             {"grace_hopper", {457, 652, 667, 400, 834}}};
  for (auto& [photo, ort] : photos) {
    auto r = run_locus("run " + dir + "/mobilenetv2-12-int8 --top 5 --image " + dir + "/images/" + photo + ".jpg");
    ASSERT_EQ(r.status, 0) << r.err;
    const size_t tie = r.out.find("# rank 5 ties with ");
    const std::string ranked = r.out.substr(0, tie), tied = tie == std::string::npos ? "" : r.out.substr(tie);
    for (int c : ort) {
      const std::string id = std::to_string(c);
      EXPECT_TRUE(ranked.find("\t" + id + "\t") != std::string::npos || tied.find(" " + id + " (") != std::string::npos)
          << photo << ": ORT's class " << c << " is missing from\n" << r.out;
    }
    EXPECT_EQ(ranked.find("\n1\t" + std::to_string(ort[0]) + "\t") != std::string::npos, true) << photo << ": " << r.out;
  }
  // the cat's fifth place is a tie (285 and 287 have the same logit, in ORT's output too)
  auto cat = run_locus("run " + dir + "/mobilenetv2-12-int8 --top 5 --image " + dir + "/images/cat.jpg");
  EXPECT_NE(cat.out.find("\n5\t285\t"), std::string::npos) << cat.out;
  EXPECT_NE(cat.out.find("# rank 5 ties with 287 (lynx, catamount)"), std::string::npos) << cat.out;
}

TEST(Cli, ExplainListsFusedBlocksAndNoFuseKeepsTopOne) {
  std::string dir = test::shared_models_dir();
  if (dir.empty() || real_model().empty()) GTEST_SKIP() << "shared models not found";
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
  };
  const std::string photo = " --top 1 --image " + dir + "/images/dog.jpg";
  auto fused = run_locus("run " + real_model() + photo + " --explain");
  ASSERT_EQ(fused.status, 0) << fused.err;
  EXPECT_EQ(count(fused.err, "explain: fused "), 17u) << fused.err;
  EXPECT_EQ(count(fused.err, "(with residual add)"), 10u) << fused.err;
  EXPECT_NE(fused.err.find("17 inverted-residual blocks fused"), std::string::npos) << fused.err;
  auto unfused = run_locus("run " + real_model() + photo + " --explain --no-fuse");
  ASSERT_EQ(unfused.status, 0) << unfused.err;
  EXPECT_EQ(count(unfused.err, "explain: fused "), 0u) << unfused.err;
  // Same top-1 either way (the output line after the header: "1\t249\t...").
  EXPECT_NE(fused.out.find("\n1\t249\t"), std::string::npos) << fused.out;
  EXPECT_NE(unfused.out.find("\n1\t249\t"), std::string::npos) << unfused.out;
}

TEST(Cli, CheckPassesTheRealModelAndFailsOnAWrongTolerance) {
  std::string d = test::mobilenet_fp32_dir();
  if (d.empty()) GTEST_SKIP() << "shared models not found";
  auto ok = run_locus("check " + d);
  EXPECT_EQ(ok.status, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("1 passed, 0 failed, 0 skipped"), std::string::npos) << ok.out;
  // an impossible tolerance must fail: the check really compares
  auto strict = run_locus("check " + d + " --rtol 0 --atol 1e-12");
  EXPECT_EQ(strict.status, 1);
  EXPECT_NE(strict.out.find("FAIL"), std::string::npos) << strict.out;
  // by name, through the model search path like run / bench / info
  const fs::path p(d);
  auto named = run_locus("check " + p.filename().string() + " --model-dir " + p.parent_path().string());
  EXPECT_EQ(named.status, 0) << named.out << named.err;
  EXPECT_NE(named.out.find("1 passed, 0 failed, 0 skipped"), std::string::npos) << named.out;
  auto missing = run_locus("check no-such-model --model-dir " + p.parent_path().string());
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("model 'no-such-model' not found (searched: " + p.parent_path().string()),
            std::string::npos)
      << missing.err;
}

// A small L2 (Zen 2/3 cores have 512 KiB; --l2 256K is a quarter of this machine's): the int8 model's
// widest fused block (7x7, 960 -> 320, 307200 bytes of project weights) cannot keep its project
// weights resident and streams them; the outputs stay ONNX Runtime's, bit for bit.
TEST(Cli, CheckPassesTheInt8ModelWithASmallL2) {
  const fs::path fp32(test::mobilenet_fp32_dir());
  if (fp32.empty()) GTEST_SKIP() << "shared models not found";
  const std::string d = (fp32.parent_path() / "mobilenetv2-12-int8").string();
  for (const char* l2 : {"512K", "256K"}) {
    auto r = run_locus("check " + d + " --l2 " + l2);
    EXPECT_EQ(r.status, 0) << l2 << ": " << r.out << r.err;
    EXPECT_NE(r.out.find("max abs err 0\n"), std::string::npos) << l2 << ": " << r.out;
  }
  auto info = run_locus("info " + d + " --plans --l2 512K");
  ASSERT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.out.find("bytes, filtered band, project streamed"), std::string::npos) << info.out;
}

TEST(Cli, BenchWritesItsJsonSchema) {
  std::string src = real_model();
  if (src.empty()) GTEST_SKIP() << "shared models not found";
  std::string json = test::temp_dir() + "/bench.json";
  auto r = run_locus("bench " + src + " --runs 3 --warmup 1 --profile --json " + json);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("median ms"), std::string::npos) << r.out;
  // Validated by Python's json module, independently of our writer: required keys and types, and
  // counters that are null (unknown) rather than zero when the machine has none.
  std::string py =
      "import json,sys\n"
      "d=json.load(open(sys.argv[1]))\n"
      "assert d['schema']=='locus-bench/1'\n"
      "assert d['batch']==1 and d['runs']==3 and d['warmup']==1\n"
      "m=d['machine']; assert isinstance(m['cpu'],str) and m['logical_cpus']>=1\n"
      "r=d['results'][0]; assert r['backend']=='native'\n"
      "assert 0 < r['min_ms'] <= r['median_ms'] <= r['p90_ms']\n"
      "assert r['images_per_s'] > 0 and r['activation_bytes'] > 0\n"
      "c=r['counters_per_inference']\n"
      "assert set(c) >= {'cycles','instructions'}\n"
      "assert all(v is None or v > 0 for v in c.values())\n"
      "assert d['counters_available'] or all(v is None for v in c.values())\n"
      "p=r['profile']; assert len(p) > 20 and all(x['ms'] >= 0 for x in p)\n"
      "assert sum(x['op'] == 'FusedInvertedResidual' for x in p) == 17\n"
      "t=r['pointwise_tiling']; assert t['l2_source'] in ('os','env','default') and t['order'] in ('scan','row','col')\n"
      "assert (t['l2_bytes'] > 0) == (t['planned_convs'] > 0) and t['pointwise_convs'] == 1\n";
  EXPECT_EQ(python_check("check_bench.py", py, json), 0);
}

// --peak: the MACs are the model's (hand-counted: conv_a 14x14x24x16 + conv_b (stride 2) 7x7x40x24 =
// 122304), GFLOP/s is 2 x MACs over the median, and % of peak is that over a measured fp32 peak; the
// int8 model is compared with the int8 peak. --peak with --cachegrind is a usage error.
TEST(Cli, BenchPeakReportsTheShareOfTheMeasuredPeak) {
  std::string json = test::temp_dir() + "/bench_peak.json";
  auto r = run_locus("bench " + write_pointwise_model() + " --runs 3 --warmup 1 --threads 1 --peak --json " + json);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("% of peak"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" f32\n"), std::string::npos) << r.out;
  std::string py =
      "import json,sys\n"
      "r=json.load(open(sys.argv[1]))['results'][0]\n"
      "assert r['macs']==122304, r['macs']\n"
      "g=2*122304/(r['median_ms']*1e-3)/1e9\n"
      "assert abs(r['gflops']-g) <= 1e-6*g, (r['gflops'], g)\n"
      "assert r['peak_kind']=='fp32' and r['peak_gflops'] > 1\n"
      "assert abs(r['pct_peak']-100*r['gflops']/r['peak_gflops']) < 1e-6*r['pct_peak']\n";
  EXPECT_EQ(python_check("check_bench_peak.py", py, json), 0);
  auto bad = run_locus("bench " + write_pointwise_model() + " --peak --cachegrind");
  EXPECT_EQ(bad.status, 2) << bad.err;
  EXPECT_NE(bad.err.find("--peak needs timed runs"), std::string::npos) << bad.err;

  const std::string fp32 = real_model();
  if (fp32.empty()) GTEST_SKIP() << "shared models not found";
  const std::string q = (std::filesystem::path(fp32).parent_path().parent_path() / "mobilenetv2-12-int8").string();
  std::string qjson = test::temp_dir() + "/bench_peak_int8.json";
  auto qr = run_locus("bench " + q + " --runs 2 --warmup 1 --threads 1 --peak --json " + qjson);
  ASSERT_EQ(qr.status, 0) << qr.err;
  EXPECT_NE(qr.out.find(" i8\n"), std::string::npos) << qr.out;
  std::string qpy =
      "import json,sys\n"
      "r=json.load(open(sys.argv[1]))['results'][0]\n"
      "assert r['peak_kind']=='int8' and r['macs'] > 290e6, r\n";
  EXPECT_EQ(python_check("check_bench_peak_int8.py", qpy, qjson), 0);
}

// Unless the environment chooses a libgomp wait policy, the program runs itself again with
// GOMP_SPINCOUNT=kLocusSpinCount (cli.cpp), and bench reports the policy in effect; a policy the
// user set is kept and reported as theirs.
TEST(Cli, BenchReportsTheOpenMpWaitPolicy) {
  const std::string model = write_pointwise_model(), json = test::temp_dir() + "/bench_wait.json";
  const std::string clean = "-u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u LOCUS_OMP_SPIN";
  auto r = run_locus("bench " + model + " --threads 2 --runs 1 --warmup 0 --json " + json, clean);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string ours = std::string("GOMP_SPINCOUNT=") + cli::kLocusSpinCount + " (locus default)";
  EXPECT_NE(r.out.find("omp wait " + ours + "\n"), std::string::npos) << r.out;
  std::string py = "import json,sys\nassert json.load(open(sys.argv[1]))['omp_wait_policy'] == sys.argv[2]\n";
  EXPECT_EQ(python_check("check_wait.py", py, json + " '" + ours + "'"), 0);
  auto u = run_locus("bench " + model + " --threads 2 --runs 1 --warmup 0", clean + " GOMP_SPINCOUNT=7");
  ASSERT_EQ(u.status, 0) << u.err;
  EXPECT_NE(u.out.find("omp wait GOMP_SPINCOUNT=7 (environment)\n"), std::string::npos) << u.out;
  auto p = run_locus("bench " + model + " --threads 2 --runs 1 --warmup 0", clean + " OMP_WAIT_POLICY=passive");
  ASSERT_EQ(p.status, 0) << p.err;
  EXPECT_NE(p.out.find("omp wait OMP_WAIT_POLICY=passive (environment)\n"), std::string::npos) << p.out;
  // Under valgrind (its preload in LD_PRELOAD; the loader only warns about a missing one) and with
  // LOCUS_OMP_SPIN set beforehand there is no second run: libgomp's default.
  for (const std::string e : {clean + " LD_PRELOAD=/nonexistent/vgpreload_core-amd64-linux.so", clean + " LOCUS_OMP_SPIN=off"}) {
    auto v = run_locus("bench " + model + " --threads 2 --runs 1 --warmup 0", e);
    ASSERT_EQ(v.status, 0) << e << ": " << v.err;
    EXPECT_NE(v.out.find("omp wait libgomp default"), std::string::npos) << e << ": " << v.out;
  }
}

TEST(Cli, InfoPlansFollowL2AndTileOrder) {
  std::string model = write_pointwise_model();
  auto r = run_locus("info " + model + " --plans --l2 1M");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(plans_line(r.out).find("L2 1M (option), S = 131072 floats"), std::string::npos) << r.out;
  auto rows = plan_rows(r.out);
  ASSERT_EQ(rows.size(), 2u) << r.out;
  EXPECT_EQ(rows[0].rfind("conv_a ", 0), 0u) << rows[0];
  EXPECT_NE(rows[0].find(" 196 "), std::string::npos) << rows[0];  // M = 14 x 14
  EXPECT_NE(rows[0].find(" Scan"), std::string::npos) << rows[0];
  EXPECT_EQ(rows[1].rfind("conv_b ", 0), 0u) << rows[1];
  EXPECT_NE(rows[1].find(" 49 "), std::string::npos) << rows[1];  // M = 7 x 7 after stride 2
  EXPECT_NE(rows[1].find(" 2x2 "), std::string::npos) << rows[1];
  EXPECT_NE(rows[1].find("gathered"), std::string::npos) << rows[1];

  // a smaller L2 gives other tiles; the order family is obeyed
  auto small = run_locus("info " + model + " --plans --l2 24K");
  ASSERT_EQ(small.status, 0) << small.err;
  ASSERT_EQ(plan_rows(small.out).size(), 2u) << small.out;
  EXPECT_NE(plan_rows(small.out)[0], rows[0]);
  for (auto [order, name] : {std::pair{"row", "RowMajor"}, std::pair{"col", "ColMajor"}}) {
    auto o = run_locus("info " + model + " --plans --tile-order " + order);
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_NE(plans_line(o.out).find(std::string("order ") + order + " (option)"), std::string::npos) << o.out;
    for (auto& row : plan_rows(o.out)) EXPECT_NE(row.find(name), std::string::npos) << order << ": " << row;
  }
  // 0 = off: every row says gemm / off
  auto off = run_locus("info " + model + " --plans --l2 0");
  ASSERT_EQ(off.status, 0) << off.err;
  EXPECT_NE(plans_line(off.out).find("no tiling"), std::string::npos) << off.out;
  for (auto& row : plan_rows(off.out)) {
    EXPECT_NE(row.find(" gemm "), std::string::npos) << row;
    EXPECT_NE(row.find(" off"), std::string::npos) << row;
  }
  // the environment is used when no flag is given, and the flag wins over it
  auto env = run_locus("info " + model + " --plans", "LOCUS_L2=64K LOCUS_TILE_ORDER=col");
  ASSERT_EQ(env.status, 0) << env.err;
  EXPECT_NE(plans_line(env.out).find("L2 64K (env)"), std::string::npos) << env.out;
  EXPECT_NE(plans_line(env.out).find("order col (env)"), std::string::npos) << env.out;
  auto flag = run_locus("info " + model + " --plans --l2 1M", "LOCUS_L2=64K");
  EXPECT_NE(plans_line(flag.out).find("L2 1M (option)"), std::string::npos) << flag.out;
}

// A setting given on the command line reaches the native plans: --l2 64K --tile-order row plans every
// 1x1 conv exactly as LOCUS_L2=64K LOCUS_TILE_ORDER=row does (an independent path to the same
// settings), and differently from the 1M plans, in info --plans and in bench's JSON.
TEST(Cli, L2OptionReachesTheNativePlans) {
  std::string model = write_pointwise_model();
  auto flag = run_locus("info " + model + " --plans --l2 64K --tile-order row");
  auto env = run_locus("info " + model + " --plans", "LOCUS_L2=64K LOCUS_TILE_ORDER=row");
  auto big = run_locus("info " + model + " --plans --l2 1M --tile-order row");
  ASSERT_EQ(flag.status, 0) << flag.err;
  ASSERT_EQ(env.status, 0) << env.err;
  ASSERT_EQ(big.status, 0) << big.err;
  EXPECT_NE(plans_line(flag.out).find("L2 64K (option), S = 8192 floats"), std::string::npos) << flag.out;
  EXPECT_NE(plans_line(flag.out).find("order row (option)"), std::string::npos) << flag.out;
  ASSERT_EQ(plan_rows(flag.out).size(), 2u) << flag.out;
  EXPECT_EQ(plan_rows(flag.out), plan_rows(env.out));
  EXPECT_NE(plan_rows(flag.out), plan_rows(big.out));
  std::string json = test::temp_dir() + "/bench_l2_64k.json";
  auto b = run_locus("bench " + model + " --runs 1 --warmup 0 --l2 64K --tile-order row --json " + json, "LOCUS_L2=1M");
  ASSERT_EQ(b.status, 0) << b.err;
  std::string py =
      "import json,sys\n"
      "t=json.load(open(sys.argv[1]))['results'][0]['pointwise_tiling']\n"
      "assert t['l2_bytes']==65536 and t['l2_source']=='option', t\n"
      "assert t['buffer_entries']==65536//4//2 and t['order']=='row' and t['order_source']=='option', t\n"
      "assert t['planned_convs']==2, t\n";
  EXPECT_EQ(python_check("check_bench_l2_64k.py", py, json), 0);
}

TEST(Cli, BadTilingValuesAreOneLineErrors) {
  std::string model = write_pointwise_model();
  // wrong flag values: usage errors (exit 2), one line naming the flag and the value, for every command
  auto usage = [](const Result& r, const std::string& flag, const std::string& value) {
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(flag), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(value), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;  // nothing done before the check
  };
  for (const std::string& cmd : std::vector<std::string>{"info " + model + " --plans", "run " + model + " --input x=none.pb",
                                "bench " + model + " --runs 1", "check " + test::temp_dir()}) {
    usage(run_locus(cmd + " --l2 banana"), "--l2", "'banana'");
    usage(run_locus(cmd + " --l2 -1"), "--l2", "'-1'");
    usage(run_locus(cmd + " --l2 1.5T"), "--l2", "'1.5T'");
    usage(run_locus(cmd + " --tile-order zigzag"), "--tile-order", "'zigzag'");
  }
  usage(run_locus("info " + model + " --plans --l2 512"), "--l2", "below the minimum");
  // wrong environment values: errors (exit 1), one line naming the variable and the value
  expect_clean_error(run_locus("info " + model + " --plans", "LOCUS_L2=banana"), "LOCUS_L2='banana'");
  expect_clean_error(run_locus("info " + model + " --plans", "LOCUS_TILE_ORDER=zigzag"), "LOCUS_TILE_ORDER='zigzag'");
  expect_clean_error(run_locus("bench " + model + " --runs 1", "LOCUS_L2=12x"), "LOCUS_L2='12x'");
  // a flag makes the variable irrelevant
  EXPECT_EQ(run_locus("info " + model + " --plans --l2 1M", "LOCUS_L2=banana").status, 0);
}

TEST(Cli, HelpListsTheTilingOptions) {
  for (const char* cmd : {"run", "check", "bench", "info"}) {
    auto h = run_locus(std::string(cmd) + " --help");
    EXPECT_EQ(h.status, 0) << cmd;
    EXPECT_NE(h.out.find("--l2 SIZE"), std::string::npos) << cmd << ": " << h.out;
    EXPECT_NE(h.out.find("--tile-order"), std::string::npos) << cmd << ": " << h.out;
    EXPECT_NE(h.out.find("LOCUS_L2"), std::string::npos) << cmd << ": " << h.out;
  }
  auto info = run_locus("info --help");
  EXPECT_NE(info.out.find("--plans"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("compulsory"), std::string::npos) << info.out;
}

TEST(Cli, BenchReportsTheTilingSettings) {
  std::string model = write_pointwise_model();
  std::string json = test::temp_dir() + "/bench_tiling.json";
  auto r = run_locus("bench " + model + " --runs 2 --warmup 0 --backend native,reference --l2 1M --tile-order col --json " +
                     json);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("1M (option)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("col (option)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2/2"), std::string::npos) << r.out;  // both 1x1 convs planned
  std::string py =
      "import json,sys\n"
      "d=json.load(open(sys.argv[1]))\n"
      "n,ref=d['results']\n"
      "t=n['pointwise_tiling']\n"
      "assert t['l2_bytes']==1048576 and t['l2_source']=='option', t\n"
      "assert t['order']=='col' and t['order_source']=='option', t\n"
      "assert t['buffer_entries']==131072 and t['safety_fraction']==0.5, t\n"
      "assert t['pointwise_convs']==2 and t['planned_convs']==2, t\n"
      "assert ref['backend']=='reference' and ref['pointwise_tiling'] is None\n";
  EXPECT_EQ(python_check("check_bench_tiling.py", py, json), 0);
  // from the environment: the source says so
  auto e = run_locus("bench " + model + " --runs 1 --warmup 0 --json " + json, "LOCUS_L2=0");
  ASSERT_EQ(e.status, 0) << e.err;
  EXPECT_NE(e.out.find("off (env)"), std::string::npos) << e.out;
  std::string py2 =
      "import json,sys\n"
      "t=json.load(open(sys.argv[1]))['results'][0]['pointwise_tiling']\n"
      "assert t['l2_bytes']==0 and t['l2_source']=='env' and t['planned_convs']==0, t\n";
  EXPECT_EQ(python_check("check_bench_tiling_env.py", py2, json), 0);
}

// `locus info` counts the MACs of fused blocks: the total is the same with and without fusion, and
// equals MobileNetV2's published 300M multiply-adds (v2 paper, Table 3: 300M at width 1.0, 224).
TEST(Cli, InfoCountsTheSameMacsFusedAndUnfused) {
  auto macs = [](const std::string& out) { return test::number_after(out, "total MACs "); };
  auto fused = run_locus("info builtin:mobilenetv2");
  auto unfused = run_locus("info builtin:mobilenetv2 --no-fuse");
  ASSERT_EQ(fused.status, 0) << fused.err;
  ASSERT_EQ(unfused.status, 0) << unfused.err;
  EXPECT_NE(fused.out.find("FusedInvertedResidual"), std::string::npos) << fused.out;
  EXPECT_EQ(macs(fused.out), macs(unfused.out));
  EXPECT_GT(macs(fused.out), 295'000'000);
  EXPECT_LT(macs(fused.out), 305'000'000);
}

// ---- hostile inputs (issue 12's probes) ----

namespace {

// x [dims, symbolic where the name is not empty] -> Relu (in `domain`) -> y; no outputs if !with_output.
std::string write_relu_model(const std::string& name, const std::vector<int64_t>& dims,
                             const std::vector<std::string>& dim_names, const std::string& domain = "",
                             bool with_output = true) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  if (!domain.empty()) {
    auto* o = m.add_opset_import();
    o->set_domain(domain);
    o->set_version(1);
  }
  auto* g = m.mutable_graph();
  g->set_name("t");
  auto* in = g->add_input();
  in->set_name("x");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  for (size_t k = 0; k < dims.size(); ++k) {
    auto* d = tt->mutable_shape()->add_dim();
    if (k < dim_names.size() && !dim_names[k].empty()) d->set_dim_param(dim_names[k]);
    else d->set_dim_value(dims[k]);
  }
  auto* n = g->add_node();
  n->set_op_type("Relu");
  n->set_name("relu");
  n->set_domain(domain);
  n->add_input("x");
  n->add_output("y");
  if (with_output) g->add_output()->set_name("y");
  std::string bytes;
  m.SerializeToString(&bytes);
  return write_file(name, bytes);
}

// `locus bench` prints its progress on stderr first: exit 1 and the error as the last line.
void expect_bench_error(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.status, 1) << r.err;
  const std::string last = r.err.substr(r.err.rfind('\n', r.err.size() - 2) + 1);
  EXPECT_EQ(last.rfind("locus: error: ", 0), 0u) << r.err;
  EXPECT_NE(last.find(needle), std::string::npos) << "stderr: " << r.err << " (wanted '" << needle << "')";
}

}  // namespace

// A 16 GiB tensor from a model of a hundred bytes: refused by the memory budget before anything is
// allocated (the probe allocated and zeroed 16.8 GB first). The test would take minutes and all the
// memory otherwise.
TEST(CliHostile, HugeTensorIsRefusedByTheMemoryBudget) {
  const std::string model = write_relu_model("huge.onnx", {1, 1, 1, int64_t(1) << 31}, {});
  auto r = run_locus("bench " + model + " --runs 1 --max-memory 4G");
  expect_bench_error(r, "more than the memory budget of 4.0 GiB");
  EXPECT_NE(r.err.find("needs 32.0 GiB"), std::string::npos) << r.err;
  // the default budget (a fraction of this machine's memory) refuses it too
  expect_bench_error(run_locus("bench " + model + " --runs 1"), "memory budget");
  // a small model over a small budget, and bad budget values
  const std::string small = write_relu_model("small.onnx", {1, 3, 256, 256}, {});
  expect_bench_error(run_locus("bench " + small + " --runs 1 --max-memory 1M"), "memory budget of 1 MiB");
  EXPECT_EQ(run_locus("bench " + small + " --runs 1 --max-memory 64M").status, 0);
  for (const char* bad : {"0", "-1", "lots", "1T"}) {
    auto u = run_locus("bench " + small + " --max-memory " + bad);
    EXPECT_EQ(u.status, 2) << bad << ": " << u.err;
    EXPECT_NE(u.err.find("--max-memory"), std::string::npos) << u.err;
  }
}

TEST(CliHostile, UnknownDomainIsNamed) {
  expect_clean_error(run_locus("info " + write_relu_model("msft.onnx", {1, 4}, {}, "com.example")),
                     "Relu of domain 'com.example' (node 'relu')");
}

TEST(CliHostile, ModelWithoutOutputsIsAnError) {
  const std::string model = write_relu_model("noout.onnx", {1, 4}, {}, "", false);
  const std::string in = test::temp_dir() + "/noout_x.pb";
  onnx_import::save_tensor_file(in, Tensor(DType::F32, {1, 4}), "x");
  expect_clean_error(run_locus("run " + model + " --input x=" + in), "has no outputs");
}

// A fully symbolic [N,C,H,W] input: --input gives the shape (the probe said "model expects
// [1,1,1,1]"); without a tensor, the error names the symbolic dims.
TEST(CliHostile, SymbolicDimsComeFromTheInputFile) {
  const std::string model = write_relu_model("sym.onnx", {0, 0, 0, 0}, {"N", "C", "H", "W"});
  const std::string in = test::temp_dir() + "/sym_x.pb";
  Tensor x(DType::F32, {1, 3, 8, 5});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(i % 7) - 3.f;
  onnx_import::save_tensor_file(in, x, "x");
  const std::string out_dir = test::temp_dir() + "/sym_out";
  auto r = run_locus("run " + model + " --input x=" + in + " --output-dir " + out_dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("float32 [1,3,8,5]"), std::string::npos) << r.out;
  Tensor y = onnx_import::load_tensor_file(out_dir + "/output_0.pb");
  ASSERT_EQ(y.shape, (Shape{1, 3, 8, 5}));
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(y.data<float>()[i], std::max(0.f, x.data<float>()[i]));
  expect_bench_error(run_locus("bench " + model + " --runs 1"), "'C' at axis 1, 'H' at axis 2, 'W' at axis 3");
}

// The output folder is checked before the inference, with one line (was: a raw filesystem error
// after the work).
TEST(CliHostile, OutputFolderIsCheckedFirst) {
  const std::string model = write_relu_model("relu4.onnx", {1, 4}, {});
  const std::string in = test::temp_dir() + "/relu4_x.pb";
  onnx_import::save_tensor_file(in, Tensor(DType::F32, {1, 4}), "x");
  const std::string file = write_file("not_a_folder", "x");
  auto r = run_locus("run " + model + " --input x=" + in + " --output-dir " + file + "/sub");
  expect_clean_error(r, "cannot create the output folder");
  EXPECT_EQ(r.out, "");  // nothing ran
}

// An unknown LOCUS_ISA is an error like a bad LOCUS_L2 (it was silently ignored).
TEST(CliHostile, UnknownIsaIsRefused) {
  const std::string model = write_relu_model("relu_isa.onnx", {1, 4}, {});
  const std::string in = test::temp_dir() + "/relu_isa_x.pb";
  onnx_import::save_tensor_file(in, Tensor(DType::F32, {1, 4}), "x");
  expect_clean_error(run_locus("run " + model + " --input x=" + in, "LOCUS_ISA=avx3"), "LOCUS_ISA='avx3' names no ISA");
  EXPECT_EQ(run_locus("run " + model + " --input x=" + in, "LOCUS_ISA=generic").status, 0);
}

// Models are found in shared/models above the executable, wherever it is (an installed or copied
// binary used to look in the source tree it was built from).
TEST(CliModelPath, SharedModelsAboveTheExecutable) {
  const fs::path root = fs::path(test::temp_dir()) / "moved_install";
  fs::remove_all(root);
  fs::create_directories(root / "bin");
  fs::create_directories(root / "shared" / "models");
  fs::copy_file(fs::path(LOCUS_BINARY_DIR) / "locus", root / "bin" / "locus");
  fs::copy_file(write_relu_model("found_me.onnx", {1, 4}, {}), root / "shared" / "models" / "found_me.onnx");
  const std::string cmd = "cd / && env -u LOCUS_MODEL_DIR " + (root / "bin" / "locus").string() + " info found_me.onnx >" +
                          test::temp_dir() + "/mp_out.txt 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream f(test::temp_dir() + "/mp_out.txt");
  const std::string out(std::istreambuf_iterator<char>(f), {});
  EXPECT_NE(out.find("Relu"), std::string::npos) << out;
  const std::string miss = "cd / && env -u LOCUS_MODEL_DIR " + (root / "bin" / "locus").string() +
                           " info not_there.onnx 2>" + test::temp_dir() + "/mp_err.txt";
  EXPECT_NE(std::system(miss.c_str()), 0);
  std::ifstream e(test::temp_dir() + "/mp_err.txt");
  const std::string err(std::istreambuf_iterator<char>(e), {});
  EXPECT_NE(err.find((root / "shared" / "models").string()), std::string::npos) << err;
  EXPECT_EQ(err.find(fs::path(LOCUS_BINARY_DIR).parent_path().parent_path().string() + "/shared"), std::string::npos)
      << "the source tree's model folder was searched: " << err;
}

// --remarks FILE.json: every pass remark with its kind (applied / missed / analysis), every node.
TEST(CliRemarks, RemarksFileNamesKindsAndNodes) {
  const std::string in = test::temp_dir() + "/remarks_x.pb";
  onnx_import::save_tensor_file(in, Tensor(DType::F32, {1, 3, 224, 224}), "input");
  const std::string path = test::temp_dir() + "/remarks.json";
  auto r = run_locus("run builtin:mobilenetv2 --input input=" + in + " --remarks " + path);
  ASSERT_EQ(r.status, 0) << r.err;
  namespace json = locus::accel::json;
  const json::Value doc = json::parse(test::slurp(path), "remarks");
  ASSERT_TRUE(doc.find("schema") && doc.find("schema")->string == "locus-remarks/1");
  const json::Value* remarks = doc.find("remarks");
  ASSERT_TRUE(remarks && remarks->kind == json::Value::Kind::Array);
  std::map<std::string, int> applied;
  for (const json::Value& rm : remarks->array) {
    const std::string kind = rm.find("kind")->string;
    EXPECT_TRUE(kind == "applied" || kind == "missed" || kind == "analysis") << kind;
    if (kind == "applied") ++applied[rm.find("pass")->string];
  }
  EXPECT_EQ(applied["fuse-inverted-residual"], 17);  // MobileNetV2's 17 blocks
  EXPECT_EQ(applied["fold-batchnorm"], 52);           // every conv of the built model has a BatchNorm
  const json::Value* nodes = doc.find("nodes");
  ASSERT_TRUE(nodes && nodes->kind == json::Value::Kind::Array);
  int fused_nodes = 0;
  for (const json::Value& n : nodes->array) {
    const std::string op = n.find("op")->string;
    fused_nodes += op == "locus.FusedInvertedResidual";
    const json::Value* impl = n.find("implementation");  // the native registry names what runs each node
    ASSERT_TRUE(impl && !impl->string.empty()) << n.find("node")->string;
    if (op == "locus.FusedInvertedResidual") {
      // the registry name, then the plan's note where it has one ("inverted_residual_nhwc; chunks not re-cut ...")
      EXPECT_EQ(impl->string.substr(0, impl->string.find(";")), "inverted_residual_nhwc") << impl->string;
    }
    if (op == "Gemm") {
      EXPECT_EQ(impl->string, "gemm_f32");
    }
  }
  EXPECT_EQ(fused_nodes, 17);
  // with fusion off, no block fuses and the reason is not a refusal (the pass does not run)
  auto u = run_locus("run builtin:mobilenetv2 --input input=" + in + " --remarks " + path + " --no-fuse");
  ASSERT_EQ(u.status, 0) << u.err;
  EXPECT_EQ(test::slurp(path).find("\"pass\":\"fuse-inverted-residual\""), std::string::npos);
}

// `locus info --ops`: one tab-separated row per operator of the catalogue (graph/ops.h), one column
// per backend, '-' where a backend's registry has no entry. The shape of the table and what it must
// say follow from what each backend runs: every ONNX op has a reference implementation; Shape is
// folded away before any CPU backend sees it; oneDNN has no fused inverted-residual op.
TEST(Cli, InfoOpsListsEveryOperatorPerBackend) {
  auto r = run_locus("info --ops");
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  std::map<std::string, std::vector<std::string>> rows;
  std::getline(in, line);
  EXPECT_EQ(line, "op\tnative\tonednn\treference");
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::stringstream ls(line);
    for (std::string c; std::getline(ls, c, '\t');) cols.push_back(c);
    ASSERT_EQ(cols.size(), 4u) << line;
    rows[cols[0]] = {cols[1], cols[2], cols[3]};
  }
  for (const std::string& op : supported_ops()) {
    ASSERT_TRUE(rows.count(op)) << op;
    EXPECT_NE(rows[op][2], "-") << op << ": the reference evaluator runs every catalogue op";
  }
  ASSERT_TRUE(rows.count("locus.FusedInvertedResidual"));
  EXPECT_EQ(rows["locus.FusedInvertedResidual"][1], "-");
  EXPECT_NE(rows["locus.FusedInvertedResidual"][0], "-");
  EXPECT_EQ(rows["Shape"][0], "-");
  EXPECT_NE(rows["Conv"][0], "-");
  EXPECT_NE(rows["Conv"][1].find("convolution"), std::string::npos) << rows["Conv"][1];
  // the quantized ops, com.microsoft's in their domain: every backend runs them (oneDNN with dnnl primitives)
  for (const std::string& op : {std::string("QLinearConv"), std::string("com.microsoft.QLinearAdd"),
                                std::string("com.microsoft.QLinearGlobalAveragePool")}) {
    ASSERT_TRUE(rows.count(op)) << op;
    EXPECT_NE(rows[op][0], "-") << op;
    EXPECT_EQ(rows[op][1].rfind("dnnl ", 0), 0u) << op << ": " << rows[op][1];
    EXPECT_NE(rows[op][2], "-") << op;
  }
  // --ops takes no model, and info without --ops needs one
  EXPECT_EQ(run_locus("info --ops builtin:mobilenetv2").status, 2);
  EXPECT_EQ(run_locus("info").status, 2);
}
