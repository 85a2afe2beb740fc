// The accelerator model's fused chains (accel/mapper.h, accel/replay.h): fused-scan maps a
// FusedChain from the chain planner's plan and replays exactly the plan's traffic; on the
// CP-decomposed ResNet-50 at 64K entries, DRAM-paced, whole-bottleneck fusion saves at least the
// thesis's 20% of the DRAM energy (docs/accelerator-model.md).
#include <gtest/gtest.h>

#include "accel/accel_config.h"
#include "accel/schedule.h"
#include "accel/workload.h"
#include "cli/energy_report.h"
#include "graph/passes/pipeline.h"
#include "tests/graph_builder_util.h"

using namespace locus;
using namespace locus::accel;
using namespace locus::test;

namespace {

// x [1,32,14,14] -> 1x1 (16) -> 1x1 (8) -> dw 3x3 -> 1x1 (16) -> 1x1 (32) -> Add x -> Relu
Graph bottleneck() {
  GraphBuilder b;
  const std::string x = b.input("x", {1, 32, 14, 14});
  auto conv = [&](const std::string& in, int64_t oc, int64_t ic, int64_t k, int64_t group, uint32_t seed) {
    const std::string w = b.random_constant("w" + std::to_string(seed), {oc, ic / group, k, k}, seed);
    return b.node("Conv", {in, w}, {{"group", group}, {"pads", std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2}}});
  };
  std::string h = b.node("Relu", {conv(x, 16, 32, 1, 1, 1)});
  h = conv(conv(h, 8, 16, 1, 1, 2), 8, 8, 3, 8, 3);
  h = conv(b.node("Relu", {conv(h, 16, 8, 1, 1, 4)}), 32, 16, 1, 1, 5);
  return b.finish({b.node("Relu", {b.node("Add", {h, x})})});
}

TEST(AccelChain, FusedScanReplaysThePlansTraffic) {
  Graph g = bottleneck();
  PipelineOptions po;
  po.fuse_chains = true;
  prepare_graph(g, po);
  const Workload wl = extract_workload(g);
  ASSERT_EQ(wl.layers.size(), 1u);
  const Layer& l = wl.layers[0];
  ASSERT_TRUE(l.chain.has_value());
  EXPECT_EQ(l.chain->n(), 5);
  EXPECT_EQ(l.chain->residual, schedule::ChainResidual::Input);
  EXPECT_EQ(l.stages.size(), 7u);  // five convs, the Add, the Relu
  AccelConfig cfg;
  cfg.buffer_entries = 4096;
  ScheduleOptions so;
  so.simulate_dram = false;
  const ScheduleResult fused = run_schedule(wl, ScheduleKind::FusedScan, cfg, so);
  ASSERT_EQ(fused.layers.size(), 1u);
  const LayerResult& r = fused.layers[0];
  EXPECT_EQ(r.tiling.rfind("fused chain", 0), 0u) << r.tiling << " " << r.note;
  // the plan the mapper chose, searched again: its traffic is what the replay moved
  schedule::FusedChainPlannerOptions o;
  o.chunk_step = std::max<int64_t>(cfg.dram.burst_bytes() / cfg.word_bytes(), 8);
  const schedule::FusedChainPlan p = schedule::plan_fused_chain(*l.chain, cfg.buffer_entries, o);
  EXPECT_EQ(r.read_entries, p.reads_input + p.reads_residual + p.reads_weights);
  EXPECT_EQ(r.write_entries, p.writes_output);
  EXPECT_LE(p.buffer_entries, cfg.buffer_entries);
  // and less than the same layers one by one
  const ScheduleResult scan = run_schedule(wl, ScheduleKind::Scan, cfg, so);
  EXPECT_LT(r.read_entries + r.write_entries, scan.total.read_entries + scan.total.write_entries);
}

TEST(AccelChain, DecomposedResNet50SavesTheThesisFifthDramPaced) {
  CpDecomposeOptions d;
  d.policy = RankPolicy::parse("ratio=0.25");
  const Workload wl = cli::energy_workload("builtin:resnet50", 1, false, d, false);
  int chains = 0;
  for (const Layer& l : wl.layers) chains += l.chain ? 1 : 0;
  EXPECT_EQ(chains, 16);
  const AccelConfig cfg = load_accel_config("default");
  ScheduleOptions so;
  so.pacing = Pacing::Dram;
  so.buffer_entries = 65536;
  const double base = run_schedule(wl, ScheduleKind::Baseline, cfg, so).total.e_dram_pj();
  const double fused = run_schedule(wl, ScheduleKind::FusedScan, cfg, so).total.e_dram_pj();
  EXPECT_GE(1.0 - fused / base, 0.20) << base << " " << fused;
}

}  // namespace
