// The accelerator model's schedules (accel/schedule.h): GEMM traffic against the planner's
// closed form and the buffer simulator, a fused block against a count made here by walking its
// bands and chunks, MACs of a hand-built graph, the ordering baseline >= scan >= fused-scan, the
// "buffer too small" error, and the accel backend's numerics.
#include <gtest/gtest.h>

#include <set>

#include "graph/ops.h"
#include "graph/passes/pass_manager.h"
#include "schedule/buffer_simulator.h"
#include "accel/schedule.h"
#include "accel/workload.h"
#include "runtime/session.h"
#include "tests/error_util.h"
#include "tests/graph_builder_util.h"

using namespace locus;
using namespace locus::accel;

namespace {

struct Recorded {
  uint64_t addr, bytes;
  bool write;
  uint64_t cycle;
};

// A sink that keeps every request.
struct Recorder {
  std::vector<Recorded> reqs;
  RequestSink sink() {
    return [this](uint64_t a, uint64_t b, bool w, uint64_t c) { reqs.push_back({a, b, w, c}); };
  }
  uint64_t bytes(bool write) const {
    uint64_t s = 0;
    for (auto& r : reqs)
      if (r.write == write) s += r.bytes;
    return s;
  }
};

// A config that needs no DRAM preset (the struct's defaults).
AccelConfig plain_config(int64_t S) {
  AccelConfig c;
  c.buffer_entries = S;
  return c;
}

// conv attrs
std::map<std::string, Attr> conv_attrs(int64_t k, int64_t stride, int64_t pad, int64_t group = 1) {
  return {{"kernel_shape", std::vector<int64_t>{k, k}},
          {"strides", std::vector<int64_t>{stride, stride}},
          {"pads", std::vector<int64_t>{pad, pad, pad, pad}},
          {"group", group}};
}

Graph optimise(Graph g, bool fuse) {
  infer_shapes_and_fold(g);
  PassManager::default_pipeline({}, fuse).run(g);
  return g;
}

// An inverted-residual block: 1x1 expand C -> E (+Relu), dw 3x3 stride s (+Relu), 1x1 project E -> OC
// [+ input].
Graph ir_block(int64_t H, int64_t C, int64_t E, int64_t OC, int64_t stride, bool residual) {
  test::GraphBuilder b;
  auto x = b.input("x", {1, C, H, H});
  auto e = b.node("Conv", {x, b.random_constant("we", {E, C, 1, 1}, 1), b.random_constant("be", {E}, 2)}, conv_attrs(1, 1, 0));
  e = b.node("Relu", {e});
  auto d = b.node("Conv", {e, b.random_constant("wd", {E, 1, 3, 3}, 3), b.random_constant("bd", {E}, 4)},
                  conv_attrs(3, stride, 1, E));
  d = b.node("Relu", {d});
  auto p = b.node("Conv", {d, b.random_constant("wp", {OC, E, 1, 1}, 5), b.random_constant("bp", {OC}, 6)}, conv_attrs(1, 1, 0));
  if (residual) p = b.node("Add", {p, x});
  return b.finish({p});
}

}  // namespace

// ---- single GEMMs: the replayed stream moves exactly what the planner's model and the simulator count

TEST(AccelSchedule, GemmReplayEqualsPlannerAndSimulator) {
  struct Case {
    int64_t M, K, N, S;
  };
  const std::vector<Case> cases = {{196, 64, 384, 4096},  {784, 128, 512, 65536}, {49, 960, 320, 8192},
                                   {3136, 24, 144, 2048}, {100, 37, 53, 600},     {12544, 16, 96, 16384},
                                   {49, 320, 1280, 1000}};
  int checked = 0;
  for (const Case& c : cases) {
    for (ScheduleKind kind : {ScheduleKind::Baseline, ScheduleKind::Scan}) {
      schedule::GemmShape g{c.M, c.K, c.N, 2};
      std::vector<schedule::Plan> plans = {schedule::TilingPlanner(c.S, gemm_planner_options(kind, 32)).plan(g)};
      // fixed tiles as well, every order: k = K with resident strips, and k < K with partial tiles
      schedule::TilingPlanner any(c.S, gemm_planner_options(ScheduleKind::Scan, 1));
      for (schedule::Order o : {schedule::Order::RowMajor, schedule::Order::ColMajor, schedule::Order::ScanRows, schedule::Order::ScanCols}) {
        for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{7, 5, c.K}, {13, 11, 3}}) {
          if (m * k + k * n + m * n <= c.S) plans.push_back(any.make_plan(g, m, n, k, o));
        }
      }
      for (const schedule::Plan& p : plans) {
        SCOPED_TRACE(p.describe());
        Recorder rec;
        const uint64_t a = 0, b = 1u << 28, cc = 1u << 29;
        ReplayCounts r = replay_plain_gemm(p, a, b, cc, 2, 256, rec.sink());
        schedule::SimResult sim = schedule::BufferSimulator(c.S).run(p);
        EXPECT_EQ(sim.violations, 0);
        EXPECT_EQ(r.reads_a, p.traffic.reads_a);
        EXPECT_EQ(r.reads_b, p.traffic.reads_b);
        EXPECT_EQ(r.writes_c, p.traffic.writes_c);
        EXPECT_EQ(r.reads_a, sim.loads_a);
        EXPECT_EQ(r.reads_b, sim.loads_b);
        EXPECT_EQ(r.writes_c, sim.stores_c);
        // the requests carry exactly those entries, each inside its operand's region
        EXPECT_EQ(rec.bytes(false), uint64_t(2 * (r.reads_a + r.reads_b)));
        EXPECT_EQ(rec.bytes(true), uint64_t(2 * r.writes_c));
        for (auto& q : rec.reqs) {
          if (q.write) {
            EXPECT_GE(q.addr, cc);
            EXPECT_LE(q.addr + q.bytes, cc + uint64_t(2 * c.M * c.N));
          } else if (q.addr >= b) {
            EXPECT_LE(q.addr + q.bytes, b + uint64_t(2 * c.K * c.N));
          } else {
            EXPECT_LE(q.addr + q.bytes, a + uint64_t(2 * c.M * c.K));
          }
        }
        // compute time: every MAC once, on a 256-wide array
        EXPECT_EQ(r.ops, c.M * c.K * c.N);
        EXPECT_GE(r.cycles, c.M * c.K * c.N / 256);
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 40);
}

TEST(AccelSchedule, BaselineUsesConventionalOrdersOnly) {
  auto o = gemm_planner_options(ScheduleKind::Baseline, 32);
  EXPECT_EQ(std::set<schedule::Order>(o.orders.begin(), o.orders.end()),
            (std::set<schedule::Order>{schedule::Order::RowMajor, schedule::Order::ColMajor}));
  EXPECT_EQ(gemm_planner_options(ScheduleKind::Scan, 32).orders.size(), 4u);
}

// A 1x1 conv graph through run_schedule: the layer's traffic is its plan's.
TEST(AccelSchedule, PointwiseLayerTrafficIsThePlans) {
  for (int64_t S : {2048, 16384, 65536}) {
    test::GraphBuilder b;
    auto x = b.input("x", {1, 48, 14, 14});
    auto y = b.node("Conv", {x, b.random_constant("w", {80, 48, 1, 1}, 7)}, conv_attrs(1, 1, 0));
    Graph g = optimise(b.finish({y}), false);
    Workload wl = extract_workload(g);
    ASSERT_EQ(wl.layers.size(), 1u);
    EXPECT_EQ(wl.layers[0].kind, LayerKind::Pointwise);
    for (ScheduleKind k : {ScheduleKind::Baseline, ScheduleKind::Scan}) {
      ScheduleOptions so;
      so.simulate_dram = false;
      ScheduleResult r = run_schedule(wl, k, plain_config(S), so);
      ASSERT_TRUE(r.layers[0].gemm_plan.has_value());
      const schedule::Plan& p = *r.layers[0].gemm_plan;
      EXPECT_EQ(p.shape.M, 196);
      EXPECT_EQ(p.shape.K, 48);
      EXPECT_EQ(p.shape.N, 80);
      EXPECT_LE(p.buffer_entries(), S);
      EXPECT_EQ(r.layers[0].read_entries, p.traffic.reads_a + p.traffic.reads_b);
      EXPECT_EQ(r.layers[0].write_entries, p.traffic.writes_c);
      EXPECT_EQ(r.layers[0].read_bytes, 2 * r.layers[0].read_entries);  // 16-bit words
      schedule::SimResult sim = schedule::BufferSimulator(S).run(p);
      EXPECT_EQ(r.layers[0].read_entries, sim.loads_a + sim.loads_b);
    }
  }
}

// ---- fused block: the replay against a walk of the bands and chunks written out here

namespace {

struct Direct {
  int64_t input = 0, weights = 0, output = 0;
};

// The schedule the fused planner describes, counted independently: band b covers output rows
// [b.rows, (b+1).rows); it needs input rows [oh0.SH - PT, (oh1-1).SH - PT + KH) clamped to the image;
// with the halo cache rows already read by the band before are not read again. Chunks are walked
// forward on even bands and backward on odd ones; the first chunk of every band after the first is
// the one the previous band ended with (still on chip). One chunk: weights read once.
Direct direct_count(const schedule::FusedBlockShape& s, int64_t rows, int64_t chunk, bool halo) {
  Direct d;
  const int64_t OH = s.OH(), OW = s.OW();
  const int64_t bands = (OH + rows - 1) / rows, chunks = (s.E + chunk - 1) / chunk;
  int64_t read_up_to = 0;
  for (int64_t b = 0; b < bands; ++b) {
    const int64_t oh0 = b * rows, oh1 = std::min(OH, oh0 + rows);
    int64_t first = std::max<int64_t>(0, oh0 * s.SH - s.PT);
    const int64_t last = std::min(s.H, (oh1 - 1) * s.SH - s.PT + s.KH);
    if (halo && b > 0) first = std::max(first, read_up_to);
    d.input += std::max<int64_t>(0, last - first) * s.W * s.C;
    read_up_to = last;
    for (int64_t t = 0; t < chunks; ++t) {
      const int64_t q = b % 2 == 0 ? t : chunks - 1 - t;
      const int64_t width = std::min(s.E, (q + 1) * chunk) - q * chunk;
      const bool on_chip = chunks == 1 ? b > 0 : (b > 0 && t == 0);
      if (!on_chip) d.weights += width * (s.C + s.KH * s.KW + s.OC);
    }
    d.output += (oh1 - oh0) * OW * s.OC;
  }
  return d;
}

}  // namespace

TEST(AccelSchedule, FusedBlockReplayEqualsDirectCount) {
  schedule::FusedBlockShape s;
  s.H = s.W = 10, s.C = 8, s.E = 48, s.OC = 8;  // 3x3, stride 1, pad 1
  struct Case {
    int64_t SH, rows, chunk;
    bool halo;
  };
  for (const Case& c : std::vector<Case>{{1, 3, 16, true}, {1, 3, 16, false}, {2, 2, 16, true}, {1, 4, 20, true},
                                         {2, 1, 48, false}, {1, 10, 16, true}}) {
    s.SH = s.SW = c.SH;
    SCOPED_TRACE(cat("SH=", c.SH, " rows=", c.rows, " chunk=", c.chunk, " halo=", c.halo));
    schedule::FusedBlockPlan p = schedule::make_fused_block_plan(s, 1 << 20, c.rows, c.chunk, c.halo);
    const bool halo = p.halo_cache;  // the planner turns it off where no rows are shared
    Direct d = direct_count(s, c.rows, c.chunk, halo);
    FusedAddresses fa;
    fa.x = 0, fa.y = 1 << 20, fa.w_expand = 2 << 20, fa.w_dw = 3 << 20, fa.w_project = 4 << 20, fa.taps = 9;
    Recorder rec;
    ReplayCounts r = replay_fused_block(p, 1, fa, 2, 256, rec.sink());
    EXPECT_EQ(r.reads_input, d.input);
    EXPECT_EQ(r.reads_weights, d.weights);
    EXPECT_EQ(r.writes_output, d.output);
    EXPECT_EQ(rec.bytes(false), uint64_t(2 * (d.input + d.weights)));
    EXPECT_EQ(rec.bytes(true), uint64_t(2 * d.output));
    // the planner's closed form agrees wherever the chunk at a turn is a full one
    EXPECT_EQ(r.reads_input, p.reads_input);
    EXPECT_EQ(r.writes_output, p.writes_output);
    if (s.E % c.chunk == 0) {
      EXPECT_EQ(r.reads_weights, p.reads_weights);
    }
    // two images: twice the traffic
    ReplayCounts r2 = replay_fused_block(p, 2, fa, 2, 256, {});
    EXPECT_EQ(r2.reads_input + r2.reads_weights + r2.writes_output, 2 * (d.input + d.weights + d.output));
  }
}

// ---- MACs of a hand-built graph

TEST(AccelSchedule, LayerMacsOfSmallGraph) {
  test::GraphBuilder b;
  auto x = b.input("x", {1, 3, 8, 8});
  auto c1 = b.node("Conv", {x, b.random_constant("w1", {4, 3, 3, 3}, 1)}, conv_attrs(3, 1, 1));      // 8x8x4, 27 taps
  auto c2 = b.node("Conv", {c1, b.random_constant("w2", {4, 1, 3, 3}, 2)}, conv_attrs(3, 2, 1, 4));  // dw, 4x4x4
  auto c3 = b.node("Conv", {c2, b.random_constant("w3", {6, 4, 1, 1}, 3)}, conv_attrs(1, 1, 0));     // 4x4x6
  auto p = b.node("MaxPool", {c3}, {{"kernel_shape", std::vector<int64_t>{2, 2}}, {"strides", std::vector<int64_t>{2, 2}}});
  auto f = b.node("Flatten", {p});  // [1, 24]
  auto fc = b.node("Gemm", {f, b.random_constant("wf", {5, 24}, 4)}, {{"transB", int64_t(1)}});
  Graph g = optimise(b.finish({fc}), false);
  Workload wl = extract_workload(g);
  std::vector<std::pair<LayerKind, int64_t>> want = {{LayerKind::Conv, 8 * 8 * 4 * 27},
                                                     {LayerKind::Depthwise, 4 * 4 * 4 * 9},
                                                     {LayerKind::Pointwise, 4 * 4 * 6 * 4},
                                                     {LayerKind::Pool, 0},
                                                     {LayerKind::View, 0},
                                                     {LayerKind::Gemm, 24 * 5}};
  ASSERT_EQ(wl.layers.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(wl.layers[i].kind, want[i].first) << wl.layers[i].name;
    EXPECT_EQ(wl.layers[i].macs, want[i].second) << wl.layers[i].name;
  }
  for (ScheduleKind k : all_schedules()) {
    ScheduleOptions so;
    so.simulate_dram = false;
    ScheduleResult r = run_schedule(wl, k, plain_config(4096), so);
    ASSERT_EQ(r.layers.size(), want.size());
    int64_t total = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(r.layers[i].macs, want[i].second);
      total += want[i].second;
    }
    EXPECT_EQ(r.total.macs, total);
    // the view moves nothing; the pool reads its input once and writes its output once (fits)
    EXPECT_EQ(r.layers[4].read_entries + r.layers[4].write_entries, 0);
    EXPECT_EQ(r.layers[3].read_entries, 6 * 4 * 4);
    EXPECT_EQ(r.layers[3].write_entries, 6 * 2 * 2);
    // the depthwise layer fits whole: compulsory traffic (input, weights, output once)
    EXPECT_EQ(r.layers[1].read_entries, 4 * 8 * 8 + 4 * 9);
    EXPECT_EQ(r.layers[1].write_entries, 4 * 4 * 4);
  }
}

// ---- the three schedules on a MobileNetV2-like block

TEST(AccelSchedule, BaselineScanFusedOrdering) {
  Graph g = optimise(ir_block(28, 16, 96, 16, 1, true), true);
  Workload wl = extract_workload(g);
  ASSERT_EQ(wl.layers.size(), 1u);
  ASSERT_EQ(wl.layers[0].kind, LayerKind::Fused);
  EXPECT_TRUE(wl.layers[0].residual);
  ASSERT_EQ(wl.layers[0].stages.size(), 4u);  // expand, dw, project, add
  const int64_t macs = 28 * 28 * (16 * 96 + 96 * 9 + 96 * 16);
  EXPECT_EQ(wl.layers[0].macs, macs);
  for (int64_t S : {8192, 16384, 65536}) {
    SCOPED_TRACE(cat("S=", S));
    std::map<ScheduleKind, int64_t> bytes;
    for (ScheduleKind k : all_schedules()) {
      ScheduleResult r = run_schedule(wl, k, plain_config(S));
      bytes[k] = r.total.read_bytes + r.total.write_bytes;
      if (k == ScheduleKind::FusedScan && r.layers[0].fused_plan) {
        // plus the expansions of halo rows the plan recomputes (none with the halo cache)
        const schedule::FusedBlockPlan& p = *r.layers[0].fused_plan;
        EXPECT_EQ(r.total.macs, macs + p.expand_macs - 28 * 28 * 16 * 96);
        if (p.halo_cache) {
          EXPECT_EQ(p.expand_macs, 28 * 28 * 16 * 96);
        }
      } else {
        EXPECT_EQ(r.total.macs, macs);
      }
      EXPECT_GT(r.total.e_dram_pj(), 0);
      // the DRAM moved at least what the schedule asked for (whole bursts)
      EXPECT_GE(r.total.dram.bytes_read(plain_config(S).dram) + r.total.dram.bytes_written(plain_config(S).dram),
                r.total.read_bytes + r.total.write_bytes);
      if (k == ScheduleKind::FusedScan) {
        ASSERT_EQ(r.layers.size(), 1u);
        EXPECT_TRUE(r.layers[0].fused_plan.has_value()) << r.layers[0].note;
      } else {
        EXPECT_EQ(r.layers.size(), 4u);
      }
    }
    EXPECT_GE(bytes[ScheduleKind::Baseline], bytes[ScheduleKind::Scan]);
    EXPECT_GT(bytes[ScheduleKind::Scan], bytes[ScheduleKind::FusedScan]);
    // fused: the expanded tensor (28x28x96 written and read twice at least) never goes to DRAM
    EXPECT_GE(bytes[ScheduleKind::Scan] - bytes[ScheduleKind::FusedScan], 2 * 2 * 28 * 28 * 96);
  }
}

// The fused group's output is a graph value of its full size, and run layer by layer the residual
// Add reads both of its inputs and writes its output: 3 x 28 x 28 x 16 entries. (The group's output
// was once sized 0: the Add then read only the block input, and the output got one DRAM row.)
TEST(AccelSchedule, FusedGroupOutputHasItsSizeLayerByLayer) {
  Graph g = optimise(ir_block(28, 16, 96, 16, 1, true), true);
  Workload wl = extract_workload(g);
  ASSERT_EQ(wl.layers.size(), 1u);
  const Layer& l = wl.layers[0];
  ASSERT_EQ(l.kind, LayerKind::Fused);
  EXPECT_EQ(wl.entries.at(l.outputs[0]), 28 * 28 * 16);
  ScheduleResult r = run_schedule(wl, ScheduleKind::Scan, plain_config(65536));
  ASSERT_EQ(r.layers.size(), 4u);  // expand, dw, project, add
  const LayerResult& add = r.layers[3];
  EXPECT_EQ(add.read_entries, 2 * 28 * 28 * 16);
  EXPECT_EQ(add.write_entries, 28 * 28 * 16);
}

// ---- errors

TEST(AccelSchedule, BufferTooSmallNamesTheLayer) {
  Graph g = optimise(ir_block(28, 16, 96, 16, 1, false), true);
  Workload wl = extract_workload(g);
  for (ScheduleKind k : all_schedules()) {
    // the 1x1 convs fit tiles, no depthwise band does
    test::expect_one_line_error([&] { run_schedule(wl, k, plain_config(64)); },
                                {"too small for any tile", "/dw'", "S=64"});
  }
  try {
    run_schedule(wl, ScheduleKind::Scan, plain_config(2));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too small for any tile of layer"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_schedule("fused"), Error);
}

// ---- the accel backend: native numerics, energy at compile time

TEST(AccelBackend, OutputsEqualNative) {
  Graph g = ir_block(14, 8, 48, 8, 1, true);
  std::map<std::string, Tensor> in = {{"x", test::random_tensor({1, 8, 14, 14}, 11)}};
  SessionOptions no, ao;
  no.backend_name = "native";
  ao.backend_name = "accel";
  Session ns = Session::from_graph(g, no), as = Session::from_graph(g, ao);
  auto want = ns.run(in), got = as.run(in);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(got[0].shape, want[0].shape);
  EXPECT_EQ(got[0].bytes, want[0].bytes);
  const std::string d = as.executable().describe();
  EXPECT_NE(d.find("fused-scan"), std::string::npos) << d;
  EXPECT_NE(d.find("projected DRAM energy"), std::string::npos) << d;
  // the accel backend gets the fused graph, as the native one does
  bool fused = false;
  for (auto& n : as.graph().nodes) fused |= n.op == "FusedInvertedResidual";
  EXPECT_TRUE(fused);
  const auto names = backend_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "accel"), names.end());
}

TEST(AccelBackend, BadOptionsFailAtCompile) {
  Graph g = optimise(ir_block(14, 8, 48, 8, 1, true), true);
  BackendOptions o;
  o.accel_config = "no-such-accelerator";
  EXPECT_THROW(make_backend("accel")->compile(g, o), Error);
  o = {};
  o.accel_schedule = "zigzag";
  try {
    make_backend("accel")->compile(g, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zigzag"), std::string::npos);
  }
  o = {};
  o.accel_buffer_entries = 16;
  try {
    make_backend("accel")->compile(g, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too small"), std::string::npos) << e.what();
  }
}

// A fused group for which the fused-block planner finds no band runs layer by layer, and the layer's
// note carries the planner's reason (the buffer size and the block's shape), not only the verdict.
TEST(AccelSchedule, FusedGroupThatFitsNoBandSaysWhy) {
  Graph g = optimise(ir_block(28, 16, 96, 16, 1, false), true);
  Workload wl = extract_workload(g);
  ASSERT_EQ(wl.layers.size(), 1u);
  ASSERT_EQ(wl.layers[0].kind, LayerKind::Fused);
  // 512 entries: the 1x1 tiles and a depthwise band of a few channels fit; a fused band cannot (its
  // three input rows alone are 3 x 28 x 16 = 1344 entries)
  ScheduleResult r = run_schedule(wl, ScheduleKind::FusedScan, plain_config(512));
  ASSERT_EQ(r.layers.size(), 1u);
  const std::string& note = r.layers[0].note;
  EXPECT_FALSE(r.layers[0].fused_plan.has_value());
  EXPECT_EQ(r.layers[0].tiling, "layer by layer");
  EXPECT_NE(note.find("no band fits the buffer ("), std::string::npos) << note;
  EXPECT_NE(note.find("S=512"), std::string::npos) << note;
  EXPECT_NE(note.find("H=28 W=28 C=16 E=96 OC=16"), std::string::npos) << note;
  EXPECT_NE(note.find("run layer by layer (scan)"), std::string::npos) << note;
  // the same traffic as the scan schedule of the group
  EXPECT_EQ(r.total.read_entries, run_schedule(wl, ScheduleKind::Scan, plain_config(512)).total.read_entries);
}

// The workload's conv family takes every Conv and says why it cannot describe a 1-D one (shape
// inference refuses those first; the output's shape is set here by hand).
TEST(AccelWorkload, OneDimensionalConvIsRefusedWithTheReason) {
  test::GraphBuilder b;
  auto x = b.input("x", {1, 4, 10});
  auto y = b.node("Conv", {x, b.random_constant("w", {8, 4, 3}, 1)},
                  {{"kernel_shape", std::vector<int64_t>{3}}, {"strides", std::vector<int64_t>{1}},
                   {"pads", std::vector<int64_t>{0, 0}}});
  Graph g = b.finish({y});
  g.values[y] = ValueInfo{DType::F32, {1, 8, 8}, true};
  try {
    extract_workload(g);
    FAIL() << "expected Unsupported";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("is not 2-D"), std::string::npos) << e.what();
  }
}

// ---- pacing (issue 15): the DRAM-paced schedule is the compute-paced one with compute overlapped

TEST(AccelSchedule, PacingBoundsAndAbsoluteRefresh) {
  Graph g = optimise(ir_block(28, 16, 96, 16, 1, true), true);
  Workload wl = extract_workload(g);
  AccelConfig cfg = load_accel_config("default");
  for (ScheduleKind k : all_schedules()) {
    const Mapping m = map_workload(wl, k, cfg);
    EvaluateOptions dram;
    dram.pacing = Pacing::Dram;
    const ScheduleResult c = evaluate_mapping(wl, m, cfg), d = evaluate_mapping(wl, m, cfg, dram);
    EXPECT_EQ(c.pacing, Pacing::Compute);
    EXPECT_EQ(d.pacing, Pacing::Dram);
    // same traffic, same bursts; DRAM-paced takes no longer than compute-paced, which takes at
    // least its compute time: an accelerator cycle (2 ns at 500 MHz) is 4/3 DRAM cycles (1.5 ns),
    // rounded per layer, so 3 x DRAM cycles >= 4 x accelerator cycles - 1.5 per layer
    EXPECT_EQ(c.total.dram.read_bursts, d.total.dram.read_bursts);
    EXPECT_EQ(c.total.dram.write_bursts, d.total.dram.write_bursts);
    EXPECT_LE(d.total.dram.cycles, c.total.dram.cycles) << schedule_name(k);
    EXPECT_GE(3 * c.total.dram.cycles + 2 * int64_t(c.layers.size()), 4 * c.total.compute_cycles) << schedule_name(k);
    EXPECT_LE(d.total.e_dram_pj(), c.total.e_dram_pj()) << schedule_name(k);
    // layers run back to back from cycle 0 and count refresh from their absolute start, so the
    // schedule holds floor(duration / tREFI) refreshes (one rank, tREFI 5200 cycles), as one
    // stream of that length would, however short its layers
    for (const ScheduleResult* r : {&c, &d}) {
      EXPECT_EQ(r->total.dram.refreshes, r->total.dram.cycles / 5200) << schedule_name(k);
    }
    EXPECT_GE(c.total.dram.refreshes, 2) << schedule_name(k);  // ~3.1M MACs / 256 x 4/3: ~16K cycles
    // an unbounded MAC array makes compute pacing DRAM pacing: every step takes one accelerator
    // cycle, so every request is issued before the DRAM is ready for it
    AccelConfig fast = cfg;
    fast.mac_array = 1 << 30;
    const ScheduleResult f = evaluate_mapping(wl, m, fast);
    EXPECT_EQ(f.total.dram.cycles, d.total.dram.cycles) << schedule_name(k);
    EXPECT_DOUBLE_EQ(f.total.e_dram_pj(), d.total.e_dram_pj()) << schedule_name(k);
  }
  EXPECT_EQ(parse_pacing("dram"), Pacing::Dram);
  EXPECT_STREQ(pacing_name(Pacing::Compute), "compute");
  test::expect_one_line_error([] { parse_pacing("fast"); }, {"pacing 'fast'", "compute, dram"});
}
