// Mappings of the accelerator model (accel/mapping.h, accel/mapper.h, accel/evaluator.h): a mapping
// written as JSON and read back evaluates exactly as the mapper's (all three schedules, the builtin
// MobileNetV2 at 64K and 8K entries and ResNet-50); an edited GEMM tile changes the layer's traffic
// to what a hand count of the tile walk gives; malformed mapping files are one-line errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "accel/schedule.h"
#include "graph/passes/pipeline.h"
#include "models/builders.h"
#include "tests/error_util.h"
#include "tests/graph_builder_util.h"

using namespace locus;
using namespace locus::accel;
using json = nlohmann::json;

namespace {

Workload workload_of(Graph g) {
  PipelineOptions po;
  prepare_graph(g, po);
  return extract_workload(g);
}

AccelConfig config(int64_t S) {
  AccelConfig c = load_accel_config("default");
  c.buffer_entries = S;
  return c;
}

void expect_same(const ScheduleResult& a, const ScheduleResult& b, const std::string& what) {
  ASSERT_EQ(a.layers.size(), b.layers.size()) << what;
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const LayerResult &x = a.layers[i], &y = b.layers[i];
    EXPECT_EQ(x.name, y.name) << what;
    EXPECT_EQ(x.tiling, y.tiling) << what << " " << x.name;
    EXPECT_EQ(x.note, y.note) << what << " " << x.name;
    EXPECT_EQ(x.read_entries, y.read_entries) << what << " " << x.name;
    EXPECT_EQ(x.write_entries, y.write_entries) << what << " " << x.name;
    EXPECT_EQ(x.buffer_accesses, y.buffer_accesses) << what << " " << x.name;
    EXPECT_EQ(x.dram.row_hits, y.dram.row_hits) << what << " " << x.name;
  }
  EXPECT_EQ(a.total.macs, b.total.macs) << what;
  EXPECT_EQ(a.total.compute_cycles, b.total.compute_cycles) << what;
  EXPECT_EQ(a.total.dram.activates, b.total.dram.activates) << what;
  EXPECT_EQ(a.total.dram.cycles, b.total.dram.cycles) << what;
  EXPECT_EQ(a.total.e_total_pj(), b.total.e_total_pj()) << what;
}

// One 1x1 conv: M = 8 x 8 = 64 pixels, K = 32 channels in, N = 64 out.
Graph one_pointwise() {
  test::GraphBuilder b;
  auto x = b.input("x", {1, 32, 8, 8});
  auto y = b.node("Conv", {x, b.random_constant("w", {64, 32, 1, 1}, 1)},
                  {{"kernel_shape", std::vector<int64_t>{1, 1}}, {"strides", std::vector<int64_t>{1, 1}},
                   {"pads", std::vector<int64_t>{0, 0, 0, 0}}, {"group", int64_t(1)}});
  return b.finish({y});
}

}  // namespace

TEST(AccelMapping, JsonRoundTripEvaluatesIdentically) {
  struct Case {
    const char* name;
    Graph g;
    int64_t S;
  };
  std::vector<Case> cases;
  cases.push_back({"mobilenetv2 64K", models::build_mobilenet_v2(), 65536});
  cases.push_back({"mobilenetv2 8K", models::build_mobilenet_v2(), 8192});  // fused groups that do not fit
  cases.push_back({"resnet50 64K", models::build_resnet50(), 65536});
  for (Case& c : cases) {
    const Workload wl = workload_of(std::move(c.g));
    const AccelConfig cfg = config(c.S);
    std::vector<Mapping> ms;
    for (ScheduleKind k : all_schedules()) ms.push_back(map_workload(wl, k, cfg));
    const std::string text = mappings_to_json(ms, wl, cfg, c.name);
    const std::vector<Mapping> back = mappings_from_json(text, wl, cfg, "round trip");
    ASSERT_EQ(back.size(), 3u);
    EXPECT_EQ(mappings_to_json(back, wl, cfg, c.name), text) << c.name;
    int layer_by_layer = 0;
    for (size_t i = 0; i < ms.size(); ++i) {
      const ScheduleResult a = evaluate_mapping(wl, ms[i], cfg), b = evaluate_mapping(wl, back[i], cfg);
      expect_same(a, b, std::string(c.name) + " " + schedule_name(ms[i].kind));
      // and map + evaluate is run_schedule
      expect_same(run_schedule(wl, ms[i].kind, cfg), a, std::string(c.name) + " run_schedule");
      for (const LayerResult& l : b.layers) layer_by_layer += l.note.empty() ? 0 : 1;
    }
    if (c.S == 8192) {
      EXPECT_GT(layer_by_layer, 0) << "the 8K case should exercise fused groups run layer by layer";
    }
  }
}

// The 1x1 conv on S = 1280 entries with tiles that fill the buffer exactly (no resident strips), row
// major: each A tile (m x K) is read once, every B tile (K x n) once per row strip of A (more than
// one tile along N, so none stays on chip across strips), every C entry written once.
TEST(AccelMapping, EditedTileGivesTheHandCountedTraffic) {
  const Workload wl = workload_of(one_pointwise());
  ASSERT_EQ(wl.layers.size(), 1u);
  ASSERT_EQ(wl.layers[0].kind, LayerKind::Pointwise);
  const int64_t M = 64, K = 32, N = 64, S = 1280;
  const AccelConfig cfg = config(S);
  const std::string text = mappings_to_json({map_workload(wl, ScheduleKind::Scan, cfg)}, wl, cfg, "pw");
  for (auto [m, n] : std::vector<std::pair<int64_t, int64_t>>{{16, 16}, {32, 4}}) {
    ASSERT_EQ(m * K + K * n + m * n, S);
    json j = json::parse(text);
    j["mappings"][0]["layers"][0]["gemm"] = {{"m", m}, {"n", n}, {"k", K}, {"order", "RowMajor"}};
    const std::vector<Mapping> ms = mappings_from_json(j.dump(), wl, cfg, "edited");
    const ScheduleResult r = evaluate_mapping(wl, ms[0], cfg);
    const LayerResult& l = r.layers[0];
    EXPECT_EQ(l.read_entries, M * K + (M / m) * K * N) << "m=" << m << " n=" << n;
    EXPECT_EQ(l.write_entries, M * N) << "m=" << m << " n=" << n;
    EXPECT_EQ(l.read_bytes, l.read_entries * cfg.word_bytes());
  }
}

TEST(AccelMapping, MalformedFilesAreOneLineErrors) {
  const Workload wl = workload_of(models::build_mobilenet_v2());
  const AccelConfig cfg = config(65536);
  const std::string text = mappings_to_json({map_workload(wl, ScheduleKind::FusedScan, cfg),
                                             map_workload(wl, ScheduleKind::Baseline, cfg)},
                                            wl, cfg, "mnv2");
  const json good = json::parse(text);
  // the first GEMM layer and the first fused group of the fused-scan mapping
  size_t gemm_at = 0, fused_at = 0;
  const json& layers = good["mappings"][0]["layers"];
  while (!layers[gemm_at].contains("gemm")) ++gemm_at;
  while (!layers[fused_at].contains("fused")) ++fused_at;
  const Layer& gl = wl.layers[gemm_at];
  auto refused = [&](const std::function<void(json&)>& edit, std::initializer_list<std::string> parts) {
    json j = good;
    edit(j);
    const std::string t = j.dump();
    test::expect_one_line_error([&] { mappings_from_json(t, wl, cfg, "bad.json"); }, parts);
  };
  refused([](json& j) { j["schema"] = "locus-mapping/2"; }, {"bad.json", "schema 'locus-mapping/2'"});
  refused([](json& j) { j["mappings"][0]["layers"].erase(0); },
          {"mappings[0] (fused-scan)", std::to_string(wl.layers.size() - 1) + " layers, the model has " +
                                           std::to_string(wl.layers.size())});
  refused([&](json& j) { j["mappings"][0]["layers"][gemm_at]["gemm"]["m"] = gl.M + 1; },
          {"layer " + std::to_string(gemm_at), "'m' = " + std::to_string(gl.M + 1), "outside [1, " + std::to_string(gl.M) + "]"});
  refused([&](json& j) {
    auto& g = j["mappings"][0]["layers"][gemm_at]["gemm"];
    g["m"] = gl.M, g["n"] = gl.N, g["k"] = gl.K;
  }, {"gemm: tiles", "more than the buffer S=65536"});
  refused([&](json& j) {
    auto& f = j["mappings"][0]["layers"][fused_at]["fused"];
    f["rows"] = wl.layers[fused_at].block.OH(), f["chunk"] = wl.layers[fused_at].block.E;
  }, {"layer " + std::to_string(fused_at), "fused", "S=65536"});
  refused([&](json& j) { j["mappings"][1]["layers"][gemm_at]["gemm"]["order"] = "ScanRows"; },
          {"mappings[1] (baseline)", "ScanRows is not one schedule baseline uses"});
  refused([&](json& j) { j["mappings"][0]["layers"][gemm_at]["name"] = "other"; }, {"names layer 'other'"});
  refused([](json& j) { j["mappings"][0]["layers"][0]["tiles"] = 3; }, {"unknown key 'tiles'"});
  refused([](json& j) { j["batch"] = 2; }, {"batch 2", "batch 1"});
  refused([](json& j) { j["mappings"][1]["schedule"] = "fused-scan"; }, {"mapped twice"});
  refused([&](json& j) { j["mappings"][0]["placement"].erase(wl.layers[gemm_at].weights[0]); },
          {"placement", "'" + wl.layers[gemm_at].weights[0] + "' has no address"});
  refused([&](json& j) {
    auto& p = j["mappings"][0]["placement"];
    p[wl.layers[gemm_at].weights[0]] = p[wl.layers[gemm_at].outputs[0]];
  }, {"placement", "overlap"});
  refused([](json& j) { j["mappings"][0]["placement"]["nosuch"] = 0; }, {"'nosuch' is not a tensor region"});
  // a duplicate key (nlohmann's object cannot hold one: made in the text)
  std::string dup = text;
  dup.insert(dup.find('{') + 1, "\"batch\": 1,");
  test::expect_one_line_error([&] { mappings_from_json(dup, wl, cfg, "dup.json"); }, {"dup.json", "duplicate key 'batch'"});
  test::expect_one_line_error([&] { mappings_from_json(text.substr(0, 100), wl, cfg, "cut.json"); },
                              {"cut.json", "not valid JSON"});
  // another model
  const Workload r50 = workload_of(models::build_resnet50());
  test::expect_one_line_error([&] { mappings_from_json(text, r50, cfg, "mnv2.json"); }, {"layers, the model has"});
}
