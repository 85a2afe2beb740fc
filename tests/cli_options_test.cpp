// The CLI's shared option groups (cli/options.h) and its JSON documents (cli/json.h): every command
// that should take a group takes all of its options (and the others refuse them), a bad value of any
// of them is a one-line usage error with exit status 2, every command's --help lists them, the
// decompose command's --rank / --form are the shared --decompose / --decompose-form, and every JSON
// document the CLI writes is valid JSON whose first key is "schema".
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/cli.h"
#include "cli/commands.h"
#include "exporters/onnx/onnx_exporter.h"
#include "importers/onnx/onnx_importer.h"
#include "tests/cli_util.h"
#include "tests/graph_builder_util.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace locus;

namespace {

using Result = test::CliResult;
using nlohmann::ordered_json;

Result run_locus(const std::string& args, const std::string& env = "") { return test::run_locus(args, env, 300); }

std::vector<std::string> words(const std::string& s) {
  std::istringstream is(s);
  std::vector<std::string> w;
  for (std::string x; is >> x;) w.push_back(x);
  return w;
}

// `locus ARGS` in this process with stop_after_options(): the status once the options are parsed
// and checked, or "usage: MESSAGE" when they are refused.
std::string parse_only(const std::string& args) {
  std::vector<std::string> w = words("locus " + args);
  std::vector<char*> argv;
  for (auto& s : w) argv.push_back(s.data());
  argv.push_back(nullptr);
  cli::stop_after_options() = true;
  std::string r;
  try {
    r = std::to_string(cli::run_command(int(w.size()), argv.data()));
  } catch (const cli::UsageError& e) {
    r = std::string("usage: ") + e.what();
  } catch (const Error& e) {
    r = std::string("error: ") + e.what();
  } catch (const std::exception& e) {
    r = std::string("other exception: ") + e.what();
  }
  cli::stop_after_options() = false;
  return r;
}

// The groups as the brief and docs name them, with valid values.
const std::map<std::string, std::string> kGroups = {
    {"tiling", "--l2 1M --tile-order col --no-fuse"},
    {"memory", "--max-memory 512M"},
    {"decomposition", "--decompose rank=8 --decompose-form 4"},
    {"accel", "--accel-schedule scan --accel default --buffer 64K"},
    {"model", "--model-dir /tmp --batch 2"},
};

// Each command with the arguments it needs besides options, and the groups it takes.
struct Command {
  std::string name, base;
  std::set<std::string> groups;
};

std::vector<Command> commands() {
  const std::string t = test::temp_dir();
  return {
      {"run", "run m.onnx --image x.jpg", {"tiling", "memory", "decomposition", "accel", "model"}},
      {"check", "check " + t, {"tiling", "memory", "decomposition", "accel"}},
      {"bench", "bench m.onnx", {"tiling", "memory", "decomposition", "accel", "model"}},
      {"info", "info m.onnx", {"tiling", "model"}},
      {"energy", "energy m.onnx", {"decomposition", "model"}},
      {"decompose", "decompose m.onnx -o " + t + "/never_written.onnx", {"decomposition", "model"}},
  };
}

// x [1,4,12,12] -> conv_a (8, 3x3, stride 2, pad 1) -> relu -> conv_b (6, 3x3, pad 1) -> gap -> flatten
std::string write_conv_net() {
  test::GraphBuilder b;
  b.input("x", {1, 4, 12, 12});
  b.random_constant("wa", {8, 4, 3, 3}, 11);
  b.random_constant("wb", {6, 8, 3, 3}, 13);
  auto a = b.node("Conv", {"x", "wa"},
                  {{"strides", std::vector<int64_t>{2, 2}}, {"pads", std::vector<int64_t>{1, 1, 1, 1}}}, "ya");
  b.g.nodes.back().name = "conv_a";
  auto r = b.node("Relu", {a}, {}, "ra");
  auto c = b.node("Conv", {r, "wb"}, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}}, "yb");
  b.g.nodes.back().name = "conv_b";
  auto gp = b.node("GlobalAveragePool", {c}, {}, "gap");
  b.node("Flatten", {gp}, {}, "y");
  const std::string path = test::temp_dir() + "/cli_options_conv_net.onnx";
  onnx_export::save_model(b.finish({"y"}), path);
  return path;
}

// The JSON document in `text` (throws on invalid JSON, NaN included): its first key must be
// "schema" with the value `schema`.
ordered_json expect_schema(const std::string& text, const std::string& schema) {
  ordered_json j = ordered_json::parse(text);
  EXPECT_TRUE(j.is_object());
  EXPECT_FALSE(j.empty());
  if (j.is_object() && !j.empty()) {
    EXPECT_EQ(j.begin().key(), "schema");
    EXPECT_EQ(j.begin().value(), schema);
  }
  return j;
}

}  // namespace

TEST(CliOptions, EveryCommandTakesItsGroupsAndRefusesTheOthers) {
  for (const Command& c : commands()) {
    EXPECT_EQ(parse_only(c.base), "0") << c.base;
    for (auto& [group, opts] : kGroups) {
      // the accel group of energy is --accel and --buffer (its schedules are --schedule)
      const std::string args = c.base + " " + opts;
      const std::string r = parse_only(args);
      if (c.groups.count(group))
        EXPECT_EQ(r, "0") << args;
      else if (!(c.name == "energy" && group == "accel"))
        EXPECT_EQ(r.rfind("usage: unknown option '", 0), 0u) << args << ": " << r;
    }
  }
  EXPECT_EQ(parse_only("energy m.onnx --accel default --buffer 64K"), "0");
  EXPECT_EQ(parse_only("energy m.onnx --accel-schedule scan"), "usage: unknown option '--accel-schedule'");
}

// Odd argument vectors: each is accepted or refused as wrong usage in one line, never another
// exception (as the CLI fuzzer requires).
TEST(CliOptions, OddArgumentsAreAcceptedOrUsageErrors) {
  for (const std::string odd :
       {"--l2", "--l2=", "--l2 99999999999999999999K", "--no-fuse=banana", "--no-fuse=0", "--batch 99999999999999999999",
        "--batch=-1", "--threads 1e3", "--rtol 1e999", "--rtol nan", "--buffer 99999999999999999999M", "--buffer -1",
        "--decompose ratio=nan", "--decompose rank=99999999999999999999", "--tile-order=", "-x", "--=", "---l2 1M",
        "-- --l2", "- -", "--max-memory 1.5", "--accel-schedule", "--decompose-form 4 --decompose-form 3"})
    for (const std::string cmd : {"run m.onnx --image x.jpg", "check /tmp", "bench m.onnx", "info m.onnx", "energy m.onnx"}) {
      const std::string r = parse_only(cmd + " " + odd);
      EXPECT_TRUE(r == "0" || r.rfind("usage: ", 0) == 0 || r.rfind("error: ", 0) == 0) << cmd << " " << odd << ": " << r;
      EXPECT_EQ(r.find('\n'), std::string::npos) << cmd << " " << odd << ": " << r;
    }
}

TEST(CliOptions, BadGroupValuesAreUsageErrorsInEveryCommand) {
  // option -> bad values; each must exit 2 with one line naming the option and the value
  const std::vector<std::tuple<std::string, std::string, std::string>> bad = {
      {"tiling", "--l2", "banana"},         {"tiling", "--l2", "-1"},
      {"tiling", "--l2", "512"},            {"tiling", "--tile-order", "zigzag"},
      {"memory", "--max-memory", "lots"},   {"memory", "--max-memory", "0"},
      {"decomposition", "--decompose", "rank="},      {"decomposition", "--decompose", "bogus"},
      {"decomposition", "--decompose-form", "5"},     {"accel", "--accel-schedule", "banana"},
      {"accel", "--buffer", "lots"},        {"model", "--batch", "0"},
      {"model", "--batch", "x"},            {"model", "--batch", "5000"},
  };
  for (const Command& c : commands())
    for (auto& [group, opt, value] : bad) {
      const bool energy_buffer = c.name == "energy" && opt == "--buffer";
      if (!c.groups.count(group) && !energy_buffer) continue;
      std::string args = c.base + " " + opt + " " + value;
      if (opt == "--decompose-form") args += " --decompose rank=2";
      Result r = run_locus(args);
      EXPECT_EQ(r.status, 2) << args << ": " << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
      EXPECT_NE(r.err.find(opt), std::string::npos) << args << ": " << r.err;
      EXPECT_NE(r.err.find("--help"), std::string::npos) << args << ": " << r.err;
      EXPECT_TRUE(r.out.empty()) << args << ": " << r.out;
    }
  // --decompose-form without --decompose, in every command but decompose (where it is --form)
  for (const char* cmd : {"run m.onnx --image x.jpg", "bench m.onnx", "energy m.onnx"})
    EXPECT_EQ(run_locus(std::string(cmd) + " --decompose-form 4").status, 2) << cmd;
}

TEST(CliOptions, HelpOfEveryCommandListsItsGroups) {
  const std::map<std::string, std::vector<std::string>> listed = {
      {"tiling", {"--l2 SIZE", "--tile-order O", "--no-fuse", "LOCUS_L2"}},
      {"memory", {"--max-memory SIZE"}},
      {"decomposition", {"--decompose POLICY", "--decompose-form F", "ratio=F"}},
      {"accel", {"--accel-schedule S", "--accel CONFIG", "--buffer SIZE"}},
      {"model", {"--model-dir DIR", "--batch N"}},
  };
  for (const Command& c : commands()) {
    Result h = run_locus(c.name + " --help");
    ASSERT_EQ(h.status, 0) << c.name << ": " << h.err;
    EXPECT_EQ(h.out.rfind("usage: locus " + c.name, 0), 0u) << h.out;
    for (auto& g : c.groups)
      for (std::string text : listed.at(g)) {
        if (c.name == "decompose" && text == "--decompose POLICY") text = "--decompose,--rank POLICY";
        if (c.name == "decompose" && text == "--decompose-form F") text = "--decompose-form,--form F";
        EXPECT_NE(h.out.find(text), std::string::npos) << c.name << ": " << text;
      }
  }
  Result d = run_locus("decompose --help");
  EXPECT_NE(d.out.find("--rank POLICY"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("--form F"), std::string::npos) << d.out;
  Result e = run_locus("energy --help");
  EXPECT_NE(e.out.find("--buffer SIZE"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("--accel CONFIG"), std::string::npos) << e.out;
}

// locus decompose --rank/--form are the shared --decompose/--decompose-form: same layers, ranks,
// errors and totals.
TEST(CliOptions, DecomposeRankIsTheSharedDecomposeOption) {
  const std::string model = write_conv_net();
  const std::string t = test::temp_dir();
  Result a = run_locus("decompose " + model + " -o " + t + "/dec_a.onnx --decompose rank=3 --decompose-form 4 --format json");
  Result b = run_locus("decompose " + model + " -o " + t + "/dec_b.onnx --rank rank=3 --form 4 --format json");
  Result c = run_locus("decompose " + model + " -o " + t + "/dec_c.onnx --rank rank=2 --format json");
  ASSERT_EQ(a.status, 0) << a.err;
  ASSERT_EQ(b.status, 0) << b.err;
  ASSERT_EQ(c.status, 0) << c.err;
  ordered_json ja = expect_schema(a.out, "locus-decompose/1"), jb = expect_schema(b.out, "locus-decompose/1"),
               jc = expect_schema(c.out, "locus-decompose/1");
  EXPECT_EQ(ja["form"], 4);
  EXPECT_EQ(ja["policy"], jb["policy"]);
  EXPECT_EQ(ja["form"], jb["form"]);
  EXPECT_EQ(ja["layers"], jb["layers"]);
  EXPECT_EQ(ja["totals"], jb["totals"]);
  ASSERT_EQ(ja["layers"].size(), 2u);
  for (auto& l : ja["layers"]) EXPECT_EQ(l["rank"], 3) << l;
  // and the values are used: another rank and the default form give other figures
  EXPECT_EQ(jc["form"], 3);
  for (auto& l : jc["layers"]) EXPECT_EQ(l["rank"], 2) << l;
  EXPECT_NE(ja["totals"], jc["totals"]);
}

// Every JSON document: bench --json, run --remarks, energy --format json (and with --sweep),
// decompose --format json.
TEST(CliOptions, EveryJsonDocumentHasASchema) {
  const std::string model = write_conv_net();
  const std::string t = test::temp_dir();
  Result b = run_locus("bench " + model + " --runs 1 --warmup 0 --backend native,reference --json " + t + "/opt_bench.json");
  ASSERT_EQ(b.status, 0) << b.err;
  ordered_json jb = expect_schema(test::slurp(t + "/opt_bench.json"), "locus-bench/1");
  EXPECT_EQ(jb["results"].size(), 2u);

  const std::string in = t + "/opt_x.pb";
  onnx_import::save_tensor_file(in, test::random_tensor({1, 4, 12, 12}, 3), "x");
  Result r = run_locus("run " + model + " --input x=" + in + " --remarks " + t + "/opt_remarks.json");
  ASSERT_EQ(r.status, 0) << r.err;
  ordered_json jr = expect_schema(test::slurp(t + "/opt_remarks.json"), "locus-remarks/1");
  EXPECT_FALSE(jr["nodes"].empty());

  Result e = run_locus("energy " + model + " --format json");
  ASSERT_EQ(e.status, 0) << e.err;
  ordered_json je = expect_schema(e.out, "locus-energy/1");
  EXPECT_EQ(je["schedules"].size(), 3u);
  for (auto& s : je["schedules"]) EXPECT_TRUE(s["total"]["energy_uj"]["total"].is_number()) << s["total"];

  Result s = run_locus("energy " + model + " --format json --sweep 32K:64K");
  ASSERT_EQ(s.status, 0) << s.err;
  ordered_json js = expect_schema(s.out, "locus-energy-sweep/1");
  EXPECT_EQ(js["sweep"].size(), 2u);

  Result d = run_locus("decompose " + model + " -o " + t + "/opt_dec.onnx --rank rank=2 --format json");
  ASSERT_EQ(d.status, 0) << d.err;
  expect_schema(d.out, "locus-decompose/1");
}
