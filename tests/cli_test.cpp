// The `locus` program end to end: bad input of every kind gets a one-line error naming the
// problem and a non-zero exit (never a crash or a hang); the real model classifies the photos and
// passes `locus check`.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "importers/onnx/onnx_importer.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace locus;

namespace {

struct Result {
  int status = -1;  // exit code; -1 if killed by a signal or timed out
  std::string out, err;
};

Result run_locus(const std::string& args) {
  std::string dir = test::temp_dir();
  std::string out = dir + "/stdout.txt", err = dir + "/stderr.txt";
  std::string cmd = "timeout 120 " + std::string(LOCUS_BINARY_DIR) + "/locus " + args + " >" + out + " 2>" + err;
  int rc = std::system(cmd.c_str());
  Result r;
  if (WIFEXITED(rc)) r.status = WEXITSTATUS(rc);
  if (r.status == 124) r.status = -1;  // timeout(1)
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

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

// A one-node model: input x [dims] -> op -> y
std::string write_model(const std::string& name, const std::vector<std::string>& ops,
                        const std::vector<int64_t>& dims) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("t");
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  for (auto d : dims) in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  std::string prev = "x";
  for (size_t i = 0; i < ops.size(); ++i) {
    auto* n = g->add_node();
    n->set_op_type(ops[i]);
    n->set_name("node" + std::to_string(i));
    n->add_input(prev);
    prev = "v" + std::to_string(i);
    n->add_output(prev);
  }
  g->add_output()->set_name(prev);
  std::string bytes;
  m.SerializeToString(&bytes);
  return write_file(name, bytes);
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
      "p=r['profile']; assert len(p) > 50 and all(x['ms'] >= 0 for x in p)\n";
  std::string script = write_file("check_bench.py", py);
  EXPECT_EQ(std::system(("python3 " + script + " " + json).c_str()), 0);
}
