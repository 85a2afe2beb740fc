// The accelerator backend's DRAM model (accel/dram_model.h) against hand-computed counts and
// energies, and the accelerator/DRAM config loading (accel/accel_config.h).
//
// Expected values are computed here from DRAMSim2's formulas (docs/accelerator-model.md) with the
// numbers of method.md section 7 written out, never by calling the code under test.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "graph/error.h"
#include "accel/accel_config.h"
#include "accel/dram_model.h"
#include "accel/json_reader.h"
#include "tests/test_support.h"
#include "tests/error_util.h"

namespace locus::accel {
namespace {

// method.md section 7: Micron DDR3 x8 -15, 8 devices per rank, Vdd 1.5 V (DRAMSim2's
// DDR3_micron_32M_8B_x8_sg15.ini; tRFC, tRCD, tRP, tWR, tREFI from the same file).
constexpr double kDevices = 8, kTck = 1.5, kVdd = 1.5;
constexpr double kIdd0 = 130, kIdd2n = 70, kIdd3n = 90, kIdd4r = 255, kIdd4w = 300, kIdd5 = 305;
constexpr int kBL = 8, kCL = 10, kTrcd = 10, kTrp = 10, kTras = 24, kTrc = 34, kTrfc = 107, kTwr = 10;
constexpr int kTrefi = 5200;  // 7800 ns / 1.5 ns
constexpr int kTrrd = 4, kTfaw = 20;  // DRAMSim2's same file: tRRD 4, tFAW 20 (30 ns)
constexpr int64_t kBurstBytes = 64;       // 8 devices x 8 bits / 8 x BL 8
constexpr int64_t kRowBytes = 1024 * 8;   // 1024 columns x 8 devices x 1 byte
constexpr int kBanks = 8;
// mA x cycles -> pJ
constexpr double kScale = kDevices * kTck * kVdd;  // 18

constexpr double kEread = (kIdd4r - kIdd3n) * kBL / 2 * kScale;                                 // 11880 pJ
constexpr double kEwrite = (kIdd4w - kIdd3n) * kBL / 2 * kScale;                                // 15120 pJ
constexpr double kEactpre = (kIdd0 * kTrc - (kIdd3n * kTras + kIdd2n * (kTrc - kTras))) * kScale;  // 28080 pJ
constexpr double kErefresh = (kIdd5 - kIdd3n) * kTrfc * kScale;                                  // 414090 pJ

DramSpec ddr3() { return dram_preset("ddr3-1333-micron-x8"); }

void expect_near_rel(double got, double want) { EXPECT_NEAR(got, want, 1e-9 * std::max(1.0, std::fabs(want))); }

// Runs f, expects a locus::Error whose message is one line and contains every `parts`.
void expect_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  test::expect_one_line_error(f, parts);
}

TEST(DramSpec, Ddr3PresetHasMethodNumbers) {
  const DramSpec s = ddr3();
  EXPECT_EQ(s.name, "ddr3-1333-micron-x8");
  EXPECT_FALSE(s.source.empty());
  EXPECT_EQ(s.devices_per_rank, 8);
  EXPECT_EQ(s.device_width_bits, 8);
  EXPECT_EQ(s.burst_length, kBL);
  EXPECT_EQ(s.banks, kBanks);
  EXPECT_EQ(s.columns, 1024);
  EXPECT_DOUBLE_EQ(s.tck_ns, kTck);
  EXPECT_EQ(s.cl, kCL);
  EXPECT_EQ(s.trcd, kTrcd);
  EXPECT_EQ(s.trp, kTrp);
  EXPECT_EQ(s.tras, kTras);
  EXPECT_EQ(s.trc, kTrc);
  EXPECT_EQ(s.trfc, kTrfc);
  EXPECT_EQ(s.twr, kTwr);
  EXPECT_EQ(s.trrd, kTrrd);
  EXPECT_EQ(s.tfaw, kTfaw);
  EXPECT_DOUBLE_EQ(s.trefi_cycles, kTrefi);
  EXPECT_DOUBLE_EQ(s.idd0, kIdd0);
  EXPECT_DOUBLE_EQ(s.idd2n, kIdd2n);
  EXPECT_DOUBLE_EQ(s.idd3n, kIdd3n);
  EXPECT_DOUBLE_EQ(s.idd4r, kIdd4r);
  EXPECT_DOUBLE_EQ(s.idd4w, kIdd4w);
  EXPECT_DOUBLE_EQ(s.idd5, kIdd5);
  EXPECT_DOUBLE_EQ(s.vdd, kVdd);
  EXPECT_EQ(s.burst_bytes(), kBurstBytes);
  EXPECT_EQ(s.row_bytes(), kRowBytes);
}

TEST(DramSpec, PerEventEnergiesMatchMethodFigures) {
  const DramSpec s = ddr3();
  // method.md: "roughly 12 nJ per 64-byte read burst, 15 nJ per write burst and 28 nJ per
  // activate/precharge pair" -- the formula gives 11.88, 15.12 and 28.08 nJ.
  expect_near_rel(burst_energy_pj(s, false), kEread);
  expect_near_rel(burst_energy_pj(s, true), kEwrite);
  expect_near_rel(act_pre_energy_pj(s), kEactpre);
  expect_near_rel(refresh_energy_pj(s), kErefresh);
  EXPECT_NEAR(kEread / 1000, 12, 0.2);
  EXPECT_NEAR(kEwrite / 1000, 15, 0.2);
  EXPECT_NEAR(kEactpre / 1000, 28, 0.2);
  expect_near_rel(background_energy_pj_per_cycle(s, true), kIdd3n * kScale);
  expect_near_rel(background_energy_pj_per_cycle(s, false), kIdd2n * kScale);
}

TEST(DramModel, SequentialWithinOneRowIsAllHits) {
  DramModel m(ddr3());
  const int n = 16;  // 16 bursts = 1 KiB, all in row 0 of bank 0
  m.access(0, n * kBurstBytes, false, 0);
  const DramStats st = m.finish(0);
  EXPECT_EQ(st.read_bursts, n);
  EXPECT_EQ(st.write_bursts, 0);
  EXPECT_EQ(st.row_misses, 1);  // the first burst opens the row
  EXPECT_EQ(st.row_hits, n - 1);
  EXPECT_EQ(st.activates, 1);
  EXPECT_EQ(st.precharges, 0);
  EXPECT_EQ(st.refreshes, 0);
  EXPECT_DOUBLE_EQ(st.row_hit_rate(), (n - 1.0) / n);
  // ACT at 0, first column command at tRCD, data after CL, then back to back every BL/2 cycles
  const int64_t cycles = kTrcd + kCL + n * kBL / 2;
  EXPECT_EQ(st.cycles, cycles);
  expect_near_rel(st.e_read_pj, n * kEread);
  EXPECT_EQ(st.e_write_pj, 0);
  expect_near_rel(st.e_act_pre_pj, kEactpre);
  EXPECT_EQ(st.e_refresh_pj, 0);
  expect_near_rel(st.e_background_pj, kIdd3n * cycles * kScale);  // a bank open the whole time
  expect_near_rel(st.total_pj(), n * kEread + kEactpre + kIdd3n * cycles * kScale);
  EXPECT_EQ(st.bytes_read(m.spec()), n * kBurstBytes);
}

TEST(DramModel, RowStrideTimesBanksIsAllMisses) {
  DramModel m(ddr3());
  const int n = 8;
  const uint64_t stride = kRowBytes * kBanks;  // same bank, next row
  for (int i = 0; i < n; ++i) m.access(i * stride, kBurstBytes, false, 0);
  const DramStats st = m.finish(0);
  EXPECT_EQ(st.read_bursts, n);
  EXPECT_EQ(st.row_hits, 0);
  EXPECT_EQ(st.row_misses, n);
  EXPECT_EQ(st.activates, n);
  EXPECT_EQ(st.precharges, n - 1);  // the first activate finds the bank precharged
  EXPECT_DOUBLE_EQ(st.row_hit_rate(), 0.0);
  // each further burst waits tRAS after the previous ACT, then tRP: one tRC per burst
  const int64_t cycles = kTrcd + kCL + kBL / 2 + (n - 1) * kTrc;
  EXPECT_EQ(st.cycles, cycles);
  expect_near_rel(st.e_read_pj, n * kEread);
  expect_near_rel(st.e_act_pre_pj, n * kEactpre);
  expect_near_rel(st.e_background_pj, kIdd3n * cycles * kScale);
}

TEST(DramModel, OpenPagePerBank) {
  DramModel m(ddr3());
  m.access(0, kBurstBytes, false, 0);          // bank 0 row 0: miss
  m.access(kRowBytes, kBurstBytes, false, 0);  // bank 1 row 0: miss, nothing to precharge
  m.access(64, kBurstBytes, false, 0);         // bank 0 row 0 still open: hit
  m.access(kRowBytes + 128, kBurstBytes, false, 0);  // bank 1 row 0: hit
  const DramStats st = m.finish(0);
  EXPECT_EQ(st.row_misses, 2);
  EXPECT_EQ(st.row_hits, 2);
  EXPECT_EQ(st.activates, 2);
  EXPECT_EQ(st.precharges, 0);
}

TEST(DramModel, RefreshOverLongIdleInterval) {
  DramModel m(ddr3());
  const int64_t end = 1000000;
  const DramStats st = m.finish(end);
  const int64_t refreshes = end / kTrefi;  // 192
  ASSERT_EQ(refreshes, 192);
  EXPECT_EQ(st.cycles, end);
  EXPECT_EQ(st.refreshes, refreshes);
  EXPECT_EQ(st.read_bursts + st.write_bursts + st.activates + st.precharges, 0);
  EXPECT_TRUE(std::isnan(st.row_hit_rate()));
  expect_near_rel(st.e_refresh_pj, refreshes * kErefresh);
  // IDD3N while refreshing (the formula charges IDD5 above IDD3N), IDD2N the rest
  const double active = double(refreshes) * kTrfc;
  expect_near_rel(st.e_background_pj, (kIdd3n * active + kIdd2n * (end - active)) * kScale);
  expect_near_rel(st.total_pj(), refreshes * kErefresh + (kIdd3n * active + kIdd2n * (end - active)) * kScale);
}

TEST(DramModel, RefreshClosesOpenRows) {
  DramModel m(ddr3());
  m.access(0, kBurstBytes, false, 0);  // opens bank 0 at cycle 0
  const int64_t end = 20000;           // refreshes at 5200, 10400, 15600
  DramStats st = m.finish(end);
  EXPECT_EQ(st.refreshes, 3);
  EXPECT_EQ(st.precharges, 1);  // the first refresh precharges the open bank
  const double active = kTrefi + 3.0 * kTrfc;  // bank open until the first refresh, plus refresh time
  expect_near_rel(st.e_background_pj, (kIdd3n * active + kIdd2n * (end - active)) * kScale);
  // the same row after the refresh is a miss again
  m.access(0, kBurstBytes, false, 6000);
  st = m.finish(end);
  EXPECT_EQ(st.row_misses, 2);
  EXPECT_EQ(st.activates, 2);
  EXPECT_EQ(st.refreshes, 3);
}

TEST(DramModel, ReadVersusWriteEnergy) {
  DramModel r(ddr3()), w(ddr3());
  r.access(0, kBurstBytes, false, 0);
  w.access(0, kBurstBytes, true, 0);
  const DramStats sr = r.finish(100), sw = w.finish(100);
  EXPECT_EQ(sr.read_bursts, 1);
  EXPECT_EQ(sw.write_bursts, 1);
  EXPECT_EQ(sw.read_bursts, 0);
  expect_near_rel(sr.e_read_pj, kEread);
  expect_near_rel(sw.e_write_pj, kEwrite);
  expect_near_rel(sw.total_pj() - sr.total_pj(), (kIdd4w - kIdd4r) * kBL / 2 * kScale);  // 3240 pJ
  EXPECT_EQ(sw.bytes_written(w.spec()), kBurstBytes);
}

TEST(DramModel, WriteRecoveryDelaysPrecharge) {
  DramModel m(ddr3());
  m.access(0, kBurstBytes, true, 0);                     // write: ACT 0, data 20..24
  m.access(kRowBytes * kBanks, kBurstBytes, false, 0);   // same bank, other row
  const DramStats st = m.finish(0);
  // PRE waits for the write data end + tWR (34 > ACT + tRAS = 24), then tRP, tRCD, CL, BL/2
  EXPECT_EQ(st.cycles, kTrcd + kCL + kBL / 2 + kTwr + kTrp + kTrcd + kCL + kBL / 2);
}

TEST(DramModel, CyclesNeverGoBackwards) {
  DramModel m(ddr3());
  m.access(0, kBurstBytes, false, 1000);
  m.access(64, kBurstBytes, false, 0);  // issued "earlier" but served after the first
  const DramStats st = m.finish(0);
  EXPECT_EQ(st.cycles, 1000 + kTrcd + kCL + 2 * kBL / 2);
  EXPECT_EQ(st.row_hits, 1);
}

TEST(DramModel, SplitsUnalignedAndMultiBurstAccesses) {
  std::ostringstream trace;
  DramModel m(ddr3());
  m.set_trace(&trace);
  m.access(60, 8, false, 0);     // crosses 64: bursts 0x0 and 0x40
  m.access(64, 64, false, 0);    // exactly one burst
  m.access(1, 1, false, 0);      // one burst
  m.access(100, 200, true, 0);   // bytes 100..299: bursts 0x40, 0x80, 0xc0, 0x100
  const DramStats st = m.finish(0);
  EXPECT_EQ(st.read_bursts, 2 + 1 + 1);
  EXPECT_EQ(st.write_bursts, 4);
  EXPECT_EQ(trace.str(),
            "0x0 READ 0\n0x40 READ 0\n0x40 READ 0\n0x0 READ 0\n"
            "0x40 WRITE 0\n0x80 WRITE 0\n0xc0 WRITE 0\n0x100 WRITE 0\n");
  expect_error([&] { m.access(0, 0, false, 0); }, {"0 bytes"});
}

TEST(DramModel, TraceLinesAreDramsim2Format) {
  std::ostringstream trace;
  DramModel m(ddr3());
  m.set_trace(&trace);
  m.access(0x1000, 128, false, 5);
  m.access(0x2000, 64, true, 3);   // earlier issue cycle: the trace stays non-decreasing
  m.access(0xabc0, 64, false, 42);
  m.set_trace(nullptr);
  m.access(0x3000, 64, false, 50);  // not traced
  EXPECT_EQ(trace.str(), "0x1000 READ 5\n0x1040 READ 5\n0x2000 WRITE 5\n0xabc0 READ 42\n");
}

TEST(DramModel, FinishDoesNotChangeTheModel) {
  DramModel m(ddr3());
  m.access(0, 4096, false, 0);
  const DramStats a = m.finish(30000), b = m.finish(30000);
  EXPECT_EQ(a.precharges, b.precharges);
  EXPECT_EQ(a.refreshes, b.refreshes);
  EXPECT_DOUBLE_EQ(a.total_pj(), b.total_pj());
}

TEST(DramModel, ChannelsAreIndependent) {
  DramSpec s = ddr3();
  s.channels = 2;
  DramModel m(s);
  // row:bank:rank:channel:column -- one row's worth of bytes further is the other channel
  m.access(0, kBurstBytes, false, 0);
  m.access(kRowBytes, kBurstBytes, false, 0);
  const DramStats st = m.finish(0);
  EXPECT_EQ(st.activates, 2);
  EXPECT_EQ(st.cycles, kTrcd + kCL + kBL / 2);  // served in parallel
  EXPECT_EQ(st.refreshes, 0);
}

// ---- bank parallelism, tRRD / tFAW, absolute refresh -------------------------------------------

// Two banks with rows open, then a row miss in each: the second bank's precharge and activate start
// when that bank is free, overlapping the first bank's, not after the first miss's column command.
//   1. bank 0 row 0 (closed):  ACT 0,  COL 10, data 20..24
//   2. bank 1 row 0 (closed):  ACT max(0, ACT0 + tRRD 4) = 4, COL 14, data max(24, 24) = 24..28
//   3. bank 0 row 1:           PRE max(ACT0 + tRAS 24, bank 0's COL 10) = 24, ACT 24 + tRP = 34
//                              (= ACT0 + tRC 34; >= ACT1 + tRRD 8), COL 44, data max(54, 28) = 54..58
//   4. bank 1 row 1:           PRE max(ACT1 + tRAS = 28, bank 1's COL 14) = 28, ACT 38
//                              (= ACT1 + tRC 38 = ACT3 + tRRD 38), COL 48, data max(58, 58) = 58..62
// End: 62. Serialised (the previous model: every request after the previous COL) request 4 would
// precharge at COL3 = 44: ACT 54, COL 64, data 74..78.
TEST(DramModel, TwoBanksMissesOverlap) {
  DramModel m(ddr3());
  const uint64_t next_row = kRowBytes * kBanks;  // same bank, next row
  m.access(0, kBurstBytes, false, 0);
  m.access(kRowBytes, kBurstBytes, false, 0);
  m.access(next_row, kBurstBytes, false, 0);
  m.access(next_row + kRowBytes, kBurstBytes, false, 0);
  const DramStats st = m.finish(0);
  EXPECT_EQ(st.row_misses, 4);
  EXPECT_EQ(st.activates, 4);
  EXPECT_EQ(st.precharges, 2);
  EXPECT_EQ(st.cycles, 62);
  EXPECT_LT(st.cycles, 78);
}

// Eight banks opened at once (one read burst each, all issued at 0): activates are spaced by
// tRRD = 4, and the fifth waits for the four-activate window: ACT4 >= ACT0 + tFAW.
//   ACT 0, 4, 8, 12, then max(16, 0 + 20) = 20, max(24, 4 + 20) = 24, max(28, 8 + 20) = 28,
//   max(32, 12 + 20) = 32; COL = ACT + 10; data = max(COL + 10, previous end), 4 cycles:
//   20..24, 24..28, 28..32, 32..36, 40..44, 44..48, 48..52, 52..56. End: 56.
TEST(DramModel, ActivatesRespectTrrdAndTfaw) {
  auto run = [](const DramSpec& s) {
    DramModel m(s);
    for (int b = 0; b < kBanks; ++b) m.access(uint64_t(b) * kRowBytes, kBurstBytes, false, 0);
    return m.finish(0);
  };
  DramStats st = run(ddr3());
  EXPECT_EQ(st.activates, 8);
  EXPECT_EQ(st.cycles, 56);
  // Without the window (tFAW 0): ACTs every 4 cycles, data back to back from 20: 20 + 8 x 4 = 52.
  DramSpec s = ddr3();
  s.tfaw = 0;
  EXPECT_EQ(run(s).cycles, 52);
  // A wider window, tFAW 40: ACT 0, 4, 8, 12, 40, 44, 48, 52; data 20..36, then the fifth's COL at
  // 50, data 60..64, 64..68, 68..72, 72..76. End: 76.
  s.tfaw = 40;
  EXPECT_EQ(run(s).cycles, 76);
  // tRRD 10, no window: ACT 0, 10, ..., 70; the last COL 80, data 90..94.
  s.tfaw = 0;
  s.trrd = 10;
  EXPECT_EQ(run(s).cycles, 94);
}

// A precharge waits for the bank's last column command: a run of hits to bank 0 then a miss to it.
//   ACT 0; 16 bursts: COLs 10, 14, ..., 70 (data 20..84, one burst every 4 cycles); the miss:
//   PRE max(ACT + tRAS 24, last COL 70) = 70, ACT 80, COL 90, data 100..104.
TEST(DramModel, PrechargeWaitsForTheBanksLastColumn) {
  DramModel m(ddr3());
  m.access(0, 16 * kBurstBytes, false, 0);
  m.access(kRowBytes * kBanks, kBurstBytes, false, 0);
  EXPECT_EQ(m.finish(0).cycles, 104);
}

// Refresh counted from the absolute start: a model starting at cycle 5000 and ending at 5300 holds
// the refresh at 5200 (a model from 0 over 300 cycles holds none); its stats cover 300 cycles:
// the refresh from 5200 to the end, 100 cycles, at IDD3N (the rest of its tRFC 107 falls after the
// end), the other 200 at IDD2N (nothing open).
TEST(DramModel, RefreshFromTheAbsoluteStart) {
  DramModel late(ddr3(), 5000);
  DramStats st = late.finish(5300);
  EXPECT_EQ(st.cycles, 300);
  EXPECT_EQ(st.refreshes, 1);
  expect_near_rel(st.e_refresh_pj, kErefresh);
  expect_near_rel(st.e_background_pj, (kIdd3n * 100 + kIdd2n * 200) * kScale);
  DramModel early(ddr3());
  EXPECT_EQ(early.finish(300).refreshes, 0);
  // From 5250 (inside the refresh at 5200, which ends at 5307): no refresh of its own, the 57
  // cycles left of the running one at IDD3N, and an activate waits for its end: ACT 5307, COL
  // 5317, data 5327..5331.
  DramModel mid(ddr3(), 5250);
  mid.access(0, kBurstBytes, false, 5250);
  st = mid.finish(0);
  EXPECT_EQ(st.refreshes, 0);
  EXPECT_EQ(st.cycles, 5331 - 5250);
  // open from ACT 5307 to 5331 (24 cycles) and refreshing 5250..5307 (57): 81 cycles at IDD3N
  expect_near_rel(st.e_background_pj, kIdd3n * 81 * kScale);
  // Requests before the start are served from the start.
  DramModel s2(ddr3(), 1000);
  s2.access(0, kBurstBytes, false, 0);
  EXPECT_EQ(s2.finish(0).cycles, kTrcd + kCL + kBL / 2);
}

TEST(DramModel, RejectsBadSpecs) {
  DramSpec s = ddr3();
  s.banks = 0;
  expect_error([&] { DramModel m(s); }, {"banks"});
  s = ddr3();
  s.columns = 1020;  // not a multiple of BL
  expect_error([&] { DramModel m(s); }, {"columns"});
  s = ddr3();
  s.idd4r = 80;  // below IDD3N
  expect_error([&] { DramModel m(s); }, {"idd4r"});
  s = ddr3();
  s.tfaw = -1;
  expect_error([&] { DramModel m(s); }, {"tfaw"});
}

// ---- configs ------------------------------------------------------------------------------------

TEST(AccelConfig, EveryPresetLoads) {
  const auto accel = accel_preset_names();
  const auto dram = dram_preset_names();
  ASSERT_FALSE(accel.empty());
  EXPECT_NE(std::find(accel.begin(), accel.end(), "default"), accel.end());
  int ddr3n = 0, ddr4n = 0, lpddr4n = 0;
  for (const auto& n : dram) {
    const DramSpec s = dram_preset(n);
    EXPECT_EQ(s.name, n);
    EXPECT_GT(s.source.size(), 40u) << n << " must cite its datasheet";
    EXPECT_EQ(s.burst_bytes(), 64) << n;
    EXPECT_GT(burst_energy_pj(s, false), 0) << n;
    EXPECT_GT(act_pre_energy_pj(s), 0) << n;
    ddr3n += n.rfind("ddr3", 0) == 0;
    ddr4n += n.rfind("ddr4", 0) == 0;
    lpddr4n += n.rfind("lpddr4", 0) == 0;
  }
  EXPECT_GE(ddr3n, 1);
  EXPECT_GE(ddr4n, 1);
  EXPECT_GE(lpddr4n, 1);
  for (const auto& n : accel) {
    const AccelConfig c = load_accel_config(n);
    EXPECT_EQ(c.name, n);
    EXPECT_FALSE(c.source.empty()) << n;
    EXPECT_GT(c.e_mac_pj, 0) << n;
    EXPECT_GT(c.e_buffer_pj, 0) << n;
    EXPECT_FALSE(c.dram.name.empty()) << n;
  }
}

TEST(AccelConfig, DefaultPreset) {
  const AccelConfig c = load_accel_config("default");
  EXPECT_EQ(c.buffer_entries, 65536);
  EXPECT_EQ(c.word_bits, 16);
  EXPECT_EQ(c.word_bytes(), 2);
  EXPECT_GT(c.mac_array, 0);
  // Horowitz 45 nm scaled to 16 bits: SRAM 5 pJ x 16/32; fp32 mul 3.7 x (16/32)^2 + add 0.9 x 16/32
  EXPECT_DOUBLE_EQ(c.e_buffer_pj, 5.0 * 16 / 32);
  EXPECT_DOUBLE_EQ(c.e_mac_pj, 3.7 * 0.25 + 0.9 * 0.5);
  EXPECT_EQ(c.dram.name, "ddr3-1333-micron-x8");
  EXPECT_EQ(c.dram.trfc, kTrfc);
  EXPECT_EQ(load_accel_config("default-ddr4").dram.name, "ddr4-2400-micron-x8");
  EXPECT_EQ(load_accel_config("default-ddr4").buffer_entries, 65536);
}

TEST(AccelConfig, JsonOverridesFields) {
  const AccelConfig c = accel_config_from_json(
      R"({"base": "default", "buffer_entries": "32K", "e_mac_pj": 0.5,
          "dram": {"base": "ddr4-2400-micron-x8", "cl": 17}})",
      "override.json");
  EXPECT_EQ(c.buffer_entries, 32768);
  EXPECT_DOUBLE_EQ(c.e_mac_pj, 0.5);
  EXPECT_DOUBLE_EQ(c.e_buffer_pj, 2.5);  // from the base
  EXPECT_EQ(c.word_bits, 16);
  EXPECT_EQ(c.dram.name, "ddr4-2400-micron-x8");
  EXPECT_EQ(c.dram.cl, 17);
  EXPECT_EQ(c.dram.trcd, 16);  // the rest of the DDR4 part
  // without "base" a file starts from "default"; a "dram" object overrides the current part
  const AccelConfig d = accel_config_from_json(R"({"word_bits": 8, "dram": {"idd0": 140}})", "x.json");
  EXPECT_EQ(d.word_bits, 8);
  EXPECT_EQ(d.buffer_entries, 65536);
  EXPECT_EQ(d.dram.name, "ddr3-1333-micron-x8");
  EXPECT_DOUBLE_EQ(d.dram.idd0, 140);
}

TEST(AccelConfig, LoadsAFile) {
  const std::string path = test::temp_dir() + "/small-buffer.json";
  {
    std::ofstream f(path);
    f << "{\n  \"buffer_entries\": 16384,\n  \"dram\": \"lpddr4-3200-micron-x16\"\n}\n";
  }
  const AccelConfig c = load_accel_config(path);
  EXPECT_EQ(c.name, "small-buffer");
  EXPECT_EQ(c.buffer_entries, 16384);
  EXPECT_EQ(c.dram.name, "lpddr4-3200-micron-x16");
  EXPECT_DOUBLE_EQ(c.e_mac_pj, 1.375);
}

TEST(AccelConfig, ErrorsAreOneLineAndNameTheProblem) {
  expect_error([] { load_accel_config("nope"); }, {"unknown accelerator preset 'nope'", "default", "default-ddr4"});
  expect_error([] { load_accel_config("/no/such/file.json"); }, {"cannot open", "/no/such/file.json"});
  expect_error([] { dram_preset("ddr9"); }, {"unknown DRAM preset 'ddr9'", "ddr3-1333-micron-x8", "lpddr4"});
  auto bad = [](const std::string& json, std::initializer_list<std::string> parts) {
    expect_error([&] { accel_config_from_json(json, "cfg.json"); }, parts);
  };
  bad(R"({"buffer_entrys": 5})", {"cfg.json:1:19", "unknown key 'buffer_entrys'"});
  bad(R"({"dram": {"tck": 1}})", {"unknown key 'tck'", "DRAM spec"});
  bad(R"({"buffer_entries": 0})", {"buffer_entries", "> 0"});
  bad(R"({"buffer_entries": -4})", {"buffer_entries", "> 0"});
  bad(R"({"buffer_entries": "12Q"})", {"12Q"});
  bad(R"({"word_bits": 4})", {"word_bits", "8..64"});
  bad(R"({"word_bits": 65})", {"word_bits", "8..64"});
  bad(R"({"word_bits": 16.5})", {"word_bits", "whole number"});
  bad(R"({"word_bits": "16"})", {"word_bits", "must be a number"});
  bad(R"({"e_mac_pj": -1})", {"e_mac_pj", ">= 0"});
  bad(R"({"e_buffer_pj": -0.5})", {"e_buffer_pj", ">= 0"});
  bad(R"({"mac_array": 0})", {"mac_array"});
  bad(R"({"dram": "ddr9"})", {"cfg.json:1:10", "unknown DRAM preset 'ddr9'"});
  bad(R"({"base": "fast"})", {"unknown accelerator preset 'fast'"});
  bad(R"({"dram": {"idd4r": 10}})", {"idd4r"});
  bad(R"({"dram": {"vdd": -1.5}})", {"vdd", "> 0"});
  bad(R"([1, 2])", {"must be a JSON object"});
}

TEST(AccelConfig, MalformedJson) {
  auto bad = [](const std::string& json, std::initializer_list<std::string> parts) {
    expect_error([&] { json::parse(json, "m.json"); }, parts);
  };
  bad("{\"word_bits\": 16,}", {"m.json:1:18", "expected string literal"});
  bad("{\"a\": 1}\n x", {"m.json:2:2", "after the JSON value"});
  bad("{\"a\": \"abc", {"m.json:1:7", "missing closing quote"});
  bad("{\"a\" 1}", {"expected ':'"});
  bad("{\"a\": 01}", {"m.json:1:8", "unexpected number literal"});
  bad("{\"a\": tru}", {"invalid literal"});
  bad("{\"a\": 1, \"a\": 2}", {"duplicate key 'a'"});
  bad("", {"unexpected end"});
  bad("{\"a\": \"\\q\"}", {"m.json:1:7", "forbidden character after backslash"});
  bad(std::string(100, '[') + std::string(100, ']'), {"nesting deeper than 64"});
  bad(std::string(json::kMaxBytes + 1, ' '), {"larger than"});
  // and what is valid
  const json::Value v = json::parse(R"({"s": "a\u00e9\ud83d\ude00", "n": -1.5e2, "l": [true, false, null], "o": {}})", "ok");
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.find("s")->string, "a\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_DOUBLE_EQ(v.find("n")->number, -150);
  EXPECT_EQ(v.find("l")->array.size(), 3u);
  EXPECT_EQ(v.find("missing"), nullptr);
  // through load_accel_config: the file name and position
  const std::string path = test::temp_dir() + "/broken.json";
  {
    std::ofstream f(path);
    f << "{\n  \"word_bits\": 16\n  \"mac_array\": 4\n}\n";
  }
  expect_error([&] { load_accel_config(path); }, {path + ":3:3", "unexpected string literal; expected '}'"});
}

TEST(AccelConfig, ParseEntries) {
  EXPECT_EQ(parse_entries("65536"), 65536);
  EXPECT_EQ(parse_entries("64K"), 65536);
  EXPECT_EQ(parse_entries("2M"), 2 * 1024 * 1024);
  EXPECT_EQ(parse_entries("1"), 1);
  for (const char* s : {"0", "", "-1", "1.5K", "64KB", "K", " 64", "0K", "99999999999999999999"})
    expect_error([&] { parse_entries(s); }, {"entries"});
}

}  // namespace
}  // namespace locus::accel
