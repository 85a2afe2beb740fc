// `locus energy` end to end: the JSON report of the builtin MobileNetV2 has the three schedules, their
// totals and per-layer rows, under both pacings (compute-paced and DRAM-paced; --sweep-macs), and fused-scan moves less DRAM data and spends less DRAM energy than
// baseline; bad input is one line on stderr and a non-zero exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "accel/json_reader.h"
#include "tests/cli_util.h"
#include "tests/test_support.h"

namespace {

using Result = locus::test::CliResult;
using locus::test::expect_one_line_error;
using locus::test::number_after;
using locus::test::run_locus;

double number(const locus::accel::json::Value& v, const char* key) {
  const auto* f = v.find(key);
  EXPECT_TRUE(f && f->is_number()) << key;
  return f && f->is_number() ? f->number : 0;
}

}  // namespace

TEST(EnergyCli, MobileNetV2Json) {
  Result r = run_locus("energy builtin:mobilenetv2 --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  namespace json = locus::accel::json;
  json::Value doc = json::parse(r.out, "locus energy output");
  const json::Value* schema = doc.find("schema");  // every JSON output names its schema
  ASSERT_TRUE(schema && schema->kind == json::Value::Kind::String);
  EXPECT_EQ(schema->string, "locus-energy/1");
  const json::Value* cfg = doc.find("config");
  ASSERT_TRUE(cfg);
  EXPECT_EQ(number(*cfg, "buffer_entries"), 65536);
  EXPECT_EQ(number(*cfg, "word_bits"), 16);
  const json::Value* scheds = doc.find("schedules");
  ASSERT_TRUE(scheds && scheds->kind == json::Value::Kind::Array);
  ASSERT_EQ(scheds->array.size(), 3u);
  std::map<std::string, const json::Value*> by;
  for (auto& s : scheds->array) by[s.find("name")->string] = &s;
  ASSERT_TRUE(by.count("baseline") && by.count("scan") && by.count("fused-scan"));
  auto total = [&](const std::string& s) { return by[s]->find("total"); };
  auto dram_uj = [&](const std::string& s) { return number(*total(s)->find("energy_uj"), "dram"); };
  auto bytes = [&](const std::string& s) {
    return number(*total(s), "dram_read_bytes") + number(*total(s), "dram_write_bytes");
  };
  for (auto& [name, s] : by) {
    const json::Value* t = s->find("total");
    ASSERT_TRUE(t);
    for (const char* k : {"macs", "dram_read_bytes", "dram_write_bytes", "buffer_accesses", "row_hit_rate"})
      EXPECT_GT(number(*t, k), 0) << name << " " << k;
    const json::Value* e = t->find("energy_uj");
    ASSERT_TRUE(e);
    for (const char* k : {"dram_read", "dram_write", "dram_act_pre", "dram_refresh", "dram_background", "dram", "buffer", "mac", "total"})
      EXPECT_GT(number(*e, k), 0) << name << " " << k;
    EXPECT_GT(s->find("layers")->array.size(), 10u);
  }
  // MobileNetV2 at 224x224: 300.8M MACs (the architecture's published count is 300M)
  EXPECT_NEAR(number(*total("baseline"), "macs"), 300.8e6, 1e6);
  EXPECT_EQ(number(*total("baseline"), "macs"), number(*total("fused-scan"), "macs"));
  EXPECT_LT(bytes("fused-scan"), 0.5 * bytes("baseline"));
  EXPECT_LT(dram_uj("fused-scan"), dram_uj("baseline"));
  EXPECT_LE(bytes("scan"), bytes("baseline"));
  EXPECT_NEAR(number(*by["fused-scan"], "dram_energy_saving"), 1 - dram_uj("fused-scan") / dram_uj("baseline"), 1e-6);
  // Access energy (bursts + activate/precharge) leaves out background and refresh, which fusion
  // does not shorten: its saving is the larger one.
  auto access_uj = [&](const std::string& s) {
    const json::Value* e = total(s)->find("energy_uj");
    return number(*e, "dram_read") + number(*e, "dram_write") + number(*e, "dram_act_pre");
  };
  EXPECT_NEAR(number(*by["fused-scan"], "dram_access_energy_saving"),
              1 - access_uj("fused-scan") / access_uj("baseline"), 1e-6);
  EXPECT_GT(number(*by["fused-scan"], "dram_access_energy_saving"), number(*by["fused-scan"], "dram_energy_saving"));
  const json::Value* th = doc.find("thesis");
  ASSERT_TRUE(th);
  EXPECT_EQ(number(*th, "mobilenetv2_dram_energy_saving"), 0.67);
}

TEST(EnergyCli, SweepAndErrors) {
  const std::string svg = locus::test::temp_dir() + "/sweep.svg";
  Result r = run_locus("energy builtin:mobilenetv2 --sweep 32K:128K --format csv --svg " + svg);
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  std::string header, line;
  std::getline(lines, header);
  EXPECT_EQ(header.rfind("buffer_entries,baseline_dram_uj,scan_dram_uj,fused-scan_dram_uj", 0), 0u) << header;
  int rows = 0;
  while (std::getline(lines, line)) ++rows;
  EXPECT_EQ(rows, 3);
  EXPECT_NE(r.err.find("sweep: S = 128K entries (3/3)"), std::string::npos) << r.err;
  std::ifstream f(svg);
  std::string doc((std::istreambuf_iterator<char>(f)), {});
  EXPECT_NE(doc.find("<svg"), std::string::npos);
  EXPECT_NE(doc.find("fused-scan"), std::string::npos);
  EXPECT_NE(doc.find("64K"), std::string::npos);

  for (auto [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"energy builtin:mobilenetv2 --accel nosuch", "nosuch"},
           {"energy builtin:mobilenetv2 --buffer 16", "too small"},
           {"energy builtin:mobilenetv2 --schedule fused", "fused"},
           {"energy builtin:mobilenetv2 --sweep 8K:3K", "--sweep"}}) {
    expect_one_line_error(args, needle);
  }
  Result h = run_locus("energy --help");
  EXPECT_EQ(h.status, 0);
  for (const char* opt : {"--accel", "--dram", "--buffer", "--schedule", "--sweep", "--svg", "--format", "--trace",
                          "--trace-schedule", "--batch", "--model-dir", "--no-fuse"})
    EXPECT_NE(h.out.find(opt), std::string::npos) << opt;
}

// The accel backend through a session: --accel-schedule / --buffer choose what it projects (the
// scan and baseline schedules of MobileNetV2 move more DRAM bytes than fused-scan), bad values are
// one-line usage errors.
TEST(EnergyCli, AccelBackendTakesScheduleAndBuffer) {
  auto mj = [](const std::string& out) { return number_after(out, "projected DRAM energy "); };
  Result fused = run_locus("bench builtin:mobilenetv2 --backend accel --runs 1 --warmup 0");
  Result base = run_locus("bench builtin:mobilenetv2 --backend accel --accel-schedule baseline --runs 1 --warmup 0");
  ASSERT_EQ(fused.status, 0) << fused.err;
  ASSERT_EQ(base.status, 0) << base.err;
  EXPECT_NE(fused.out.find("fused-scan schedule"), std::string::npos) << fused.out;
  EXPECT_NE(base.out.find("baseline schedule"), std::string::npos) << base.out;
  EXPECT_GT(mj(fused.out), 0);
  EXPECT_LT(mj(fused.out), mj(base.out));
  Result small = run_locus("bench builtin:mobilenetv2 --backend accel --buffer 32K --runs 1 --warmup 0");
  ASSERT_EQ(small.status, 0) << small.err;
  EXPECT_NE(small.out.find("S = 32768 entries"), std::string::npos) << small.out;
  Result bad = run_locus("bench builtin:mobilenetv2 --backend accel --accel-schedule banana");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--accel-schedule"), std::string::npos) << bad.err;
  Result badbuf = run_locus("run builtin:mobilenetv2 --backend accel --buffer lots --image x.jpg");
  EXPECT_EQ(badbuf.status, 2);
  EXPECT_NE(badbuf.err.find("--buffer"), std::string::npos) << badbuf.err;
  // the same bad value is wrong usage for energy too (it exited 1 there)
  Result badbuf_energy = run_locus("energy builtin:mobilenetv2 --buffer lots");
  EXPECT_EQ(badbuf_energy.status, 2) << badbuf_energy.err;
  EXPECT_NE(badbuf_energy.err.find("option --buffer"), std::string::npos) << badbuf_energy.err;
}

// --emit-mapping then --mapping: the same report (every total and layer); a mapping file used with
// another buffer, schedule list or model is refused with one line.
TEST(EnergyCli, EmitMappingThenMappingGivesTheSameTotals) {
  const std::string file = locus::test::temp_dir() + "/mnv2_mapping.json";
  Result a = run_locus("energy builtin:mobilenetv2 --format json --emit-mapping " + file);
  ASSERT_EQ(a.status, 0) << a.err;
  namespace json = locus::accel::json;
  std::ifstream f(file);
  const std::string text((std::istreambuf_iterator<char>(f)), {});
  const json::Value doc = json::parse(text, file);
  ASSERT_TRUE(doc.find("schema") && doc.find("schema")->is_string());
  EXPECT_EQ(doc.find("schema")->string, "locus-mapping/1");
  ASSERT_EQ(doc.find("mappings")->array.size(), 3u);
  Result b = run_locus("energy builtin:mobilenetv2 --format json --mapping " + file);
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  const json::Value ra = json::parse(a.out, "a"), rb = json::parse(b.out, "b");
  for (size_t i = 0; i < 3; ++i) {
    const json::Value& ta = *ra.find("schedules")->array[i].find("total");
    const json::Value& tb = *rb.find("schedules")->array[i].find("total");
    EXPECT_EQ(number(*ta.find("energy_uj"), "total"), number(*tb.find("energy_uj"), "total"));
    EXPECT_EQ(number(ta, "dram_read_bytes"), number(tb, "dram_read_bytes"));
  }
  for (auto [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"energy builtin:mobilenetv2 --buffer 32K --mapping " + file, "mapped for a buffer of 65536"},
           {"energy builtin:resnet50 --mapping " + file, "layers, the model has"},
           {"energy builtin:mobilenetv2 --batch 2 --mapping " + file, "batch"},
           {"energy builtin:mobilenetv2 --schedule scan --mapping " + file, "--schedule"},
           {"energy builtin:mobilenetv2 --sweep 8K:16K --mapping " + file, "--sweep"},
           {"energy builtin:mobilenetv2 --mapping /nonexistent/m.json", "/nonexistent/m.json"}}) {
    expect_one_line_error(args, needle);
  }
  Result h = run_locus("energy --help");
  EXPECT_NE(h.out.find("--emit-mapping FILE"), std::string::npos);
  EXPECT_NE(h.out.find("--mapping FILE"), std::string::npos);
}

// --decompose: rank=, ratio= and macs= decompose from shapes only (nothing fitted); error=E needs fits
// to choose the ranks and says so. The builder MobileNetV2 has one standard conv (the stem).
TEST(EnergyCli, DecomposeIsShapesOnlyUnlessTheRanksNeedFits) {
  Result shapes = run_locus("energy builtin:mobilenetv2 --decompose rank=8 --summary");
  ASSERT_EQ(shapes.status, 0) << shapes.err;
  EXPECT_NE(shapes.err.find("1 of 52 convolutions decomposed (shapes only, not fitted)"), std::string::npos)
      << shapes.err;
  EXPECT_EQ(shapes.err.find("ALS"), std::string::npos) << shapes.err;
  Result fitted = run_locus("energy builtin:mobilenetv2 --decompose error=0.5 --summary");
  ASSERT_EQ(fitted.status, 0) << fitted.err;
  EXPECT_NE(fitted.err.find("relative error <= 0.5 chooses ranks by fitting (ALS)"), std::string::npos) << fitted.err;
  EXPECT_EQ(fitted.err.find("shapes only"), std::string::npos) << fitted.err;
}

// Issue 15: both pacings by default. The thesis's set-up (DRAM requests as fast as the DRAM serves
// them) gives fused-scan 67% +- 3 of MobileNetV2's DRAM energy at 64K entries (Wu & Huang, DATE
// 2019); compute-paced the same traffic saves less, as background and refresh follow the MAC
// array's time.
TEST(EnergyCli, PacingsDramBoundReachesTheThesisFigure) {
  Result r = run_locus("energy builtin:mobilenetv2 --format json --schedule baseline,fused-scan");
  ASSERT_EQ(r.status, 0) << r.err;
  namespace json = locus::accel::json;
  const json::Value doc = json::parse(r.out, "locus energy output");
  const json::Value* pacings = doc.find("pacings");
  ASSERT_TRUE(pacings && pacings->kind == json::Value::Kind::Array);
  ASSERT_EQ(pacings->array.size(), 2u);
  EXPECT_EQ(pacings->array[0].string, "compute");
  EXPECT_EQ(pacings->array[1].string, "dram");
  const json::Value* cs = doc.find("schedules");
  const json::Value* ds = doc.find("schedules_dram_paced");
  ASSERT_TRUE(cs && ds);
  ASSERT_EQ(cs->array.size(), 2u);
  ASSERT_EQ(ds->array.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(cs->array[i].find("pacing")->string, "compute");
    EXPECT_EQ(ds->array[i].find("pacing")->string, "dram");
    EXPECT_EQ(cs->array[i].find("name")->string, ds->array[i].find("name")->string);
    // same traffic; the DRAM-paced schedule is no longer than the compute-paced one, which is no
    // shorter than its compute time
    const json::Value& tc = *cs->array[i].find("total");
    const json::Value& td = *ds->array[i].find("total");
    EXPECT_EQ(number(tc, "dram_read_bytes"), number(td, "dram_read_bytes"));
    EXPECT_LE(number(ds->array[i], "duration_us"), number(cs->array[i], "duration_us"));
    EXPECT_GE(number(cs->array[i], "duration_us"), number(cs->array[i], "compute_us") * 0.999);
  }
  const json::Value& fc = cs->array[1];
  const json::Value& fd = ds->array[1];
  ASSERT_EQ(fd.find("name")->string, "fused-scan");
  EXPECT_NEAR(number(fd, "dram_energy_saving"), 0.67, 0.03);
  EXPECT_LT(number(fc, "dram_energy_saving"), number(fd, "dram_energy_saving"));
  // DRAM-paced, time follows traffic: the energy saving is close to the byte saving
  EXPECT_NEAR(number(fd, "dram_energy_saving"), number(fd, "dram_bytes_saving"), 0.03);

  // one pacing: only "schedules"
  Result one = run_locus("energy builtin:mobilenetv2 --format json --schedule fused-scan --pacing dram");
  ASSERT_EQ(one.status, 0) << one.err;
  const json::Value d1 = json::parse(one.out, "locus energy output");
  EXPECT_EQ(d1.find("schedules_dram_paced"), nullptr);
  EXPECT_EQ(d1.find("schedules")->array[0].find("pacing")->string, "dram");

  // the table has one totals block per pacing, and the thesis line gives both savings
  Result t = run_locus("energy builtin:mobilenetv2 --summary --schedule baseline,fused-scan");
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_NE(t.out.find("totals, compute-paced"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("totals, DRAM-paced"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("; DRAM-paced 6"), std::string::npos) << t.out;  // "... measured here (...): compute-paced 5x.x% ...; DRAM-paced 6x.x% ..."
}

// --sweep-macs: compute-paced per MAC array size; small arrays are compute-bound, large ones
// DRAM-bound, and the compute-paced saving grows towards the DRAM-paced one.
TEST(EnergyCli, SweepMacs) {
  Result r = run_locus("energy builtin:mobilenetv2 --schedule baseline,fused-scan --sweep-macs 64:4096 --format csv");
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  std::string header, line;
  std::getline(lines, header);
  EXPECT_EQ(header, "mac_array,baseline_dram_uj,baseline_us,baseline_compute_us,baseline_bound,fused-scan_dram_uj,"
                    "fused-scan_us,fused-scan_compute_us,fused-scan_bound,fused-scan_saving");
  std::vector<std::string> rows;
  while (std::getline(lines, line)) rows.push_back(line);
  ASSERT_EQ(rows.size(), 7u);  // 64, 128, ..., 4096
  auto field = [](const std::string& row, int i) {
    std::istringstream s(row);
    std::string f;
    for (int k = 0; k <= i; ++k) std::getline(s, f, ',');
    return f;
  };
  EXPECT_EQ(field(rows.front(), 0), "64");
  EXPECT_EQ(field(rows.front(), 8), "compute");  // 300.8M MACs / 64 at 500 MHz = 9.4 ms
  EXPECT_EQ(field(rows.back(), 8), "dram");      // / 4096: 0.15 ms
  double prev_saving = -1, prev_us = 1e30;
  for (const std::string& row : rows) {
    const double saving = std::stod(field(row, 9)), us = std::stod(field(row, 6));
    const double compute_us = std::stod(field(row, 7));
    // compute time = MACs / array / 500 MHz, to the step rounding
    EXPECT_NEAR(compute_us, 300.8e6 / std::stod(field(row, 0)) / 500, 0.02 * compute_us + 1) << row;
    EXPECT_GE(saving, prev_saving - 1e-9) << row;
    EXPECT_LE(us, prev_us + 1e-9) << row;
    prev_saving = saving, prev_us = us;
  }
  for (auto [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"energy builtin:mobilenetv2 --sweep-macs 100:200", "--sweep-macs"},
           {"energy builtin:mobilenetv2 --sweep-macs 64", "--sweep-macs"},
           {"energy builtin:mobilenetv2 --sweep-macs 64:x", "MAC array size"},
           {"energy builtin:mobilenetv2 --sweep 8K:16K --sweep-macs 64:128", "--sweep-macs"},
           {"energy builtin:mobilenetv2 --sweep-macs 64:128 --pacing dram", "--pacing"},
           {"energy builtin:mobilenetv2 --sweep 8K:16K --pacing both", "--pacing"},
           {"energy builtin:mobilenetv2 --pacing fast", "--pacing"}}) {
    expect_one_line_error(args, needle);
  }
  Result h = run_locus("energy --help");
  EXPECT_NE(h.out.find("--pacing P"), std::string::npos);
  EXPECT_NE(h.out.find("--sweep-macs LO:HI"), std::string::npos);
}
