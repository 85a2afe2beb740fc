// Hostile accelerator configs: the JSON reader on large objects (the duplicate-key check must not be
// quadratic, and must still refuse a duplicate anywhere), the datasheet ranges of every DRAM and
// accelerator field (one-line errors naming the key, the value and the range), and that the most
// extreme config the ranges allow still gives finite energies, through the library and through
// `locus energy`.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <string>

#include "graph/error.h"
#include "accel/accel_config.h"
#include "accel/dram_model.h"
#include "accel/json_reader.h"
#include "tests/test_support.h"
#include "tests/error_util.h"

namespace locus::accel {
namespace {

// Runs f, expects a locus::Error whose message is one line and contains every `parts`.
void expect_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  test::expect_one_line_error(f, parts);
}

// {"k0000000": 0,\n "k0000001": 1,\n ...}: n keys, one per line (key i on line i + 1).
std::string many_keys(int n, int duplicate_at = -1) {
  std::string s = "{";
  char key[32];
  for (int i = 0; i < n; ++i) {
    std::snprintf(key, sizeof key, "k%07d", i == duplicate_at ? 0 : i);
    s += std::string(i ? ",\n" : "") + "\"" + key + "\": " + std::to_string(i);
  }
  return s + "}";
}

TEST(AccelJson, LargeObjectWithManyKeysParses) {
  const int n = 55000;  // ~1 MiB of text, just under json::kMaxBytes
  const std::string text = many_keys(n);
  ASSERT_LT(text.size(), json::kMaxBytes);
  ASSERT_GT(text.size(), json::kMaxBytes * 3 / 4);
  const json::Value v = json::parse(text, "big.json");
  ASSERT_TRUE(v.is_object());
  ASSERT_EQ(v.object.size(), size_t(n));
  EXPECT_EQ(v.object.front().first, "k0000000");
  EXPECT_EQ(v.object.back().first, "k0054999");
  ASSERT_NE(v.find("k0031415"), nullptr);
  EXPECT_EQ(v.find("k0031415")->number, 31415);
  EXPECT_EQ(v.find("k0031415")->line, 31416);
}

TEST(AccelJson, DuplicateLateInALargeObjectIsRefused) {
  const int n = 55000;
  // key n-1 repeats key 0; it starts on line n, column 1 (after the newline)
  expect_error([&] { json::parse(many_keys(n, n - 1), "big.json"); },
               {"big.json:" + std::to_string(n) + ":1:", "duplicate key 'k0000000'"});
  // and in a nested object, with the same keys in a sibling object (which is fine)
  expect_error([] { json::parse(R"({"a": {"x": 1, "y": 2}, "b": {"x": 1, "y": 2, "x": 3}})", "n.json"); },
               {"n.json:1:47", "duplicate key 'x'"});
  EXPECT_NO_THROW(json::parse(R"({"a": {"x": 1}, "b": {"x": 1}, "x": {"x": {"x": 1}}})", "ok.json"));
}

// ---- ranges -------------------------------------------------------------------------------------

void bad(const std::string& json, std::initializer_list<std::string> parts) {
  expect_error([&] { accel_config_from_json(json, "cfg.json"); }, parts);
}

TEST(AccelConfigRanges, HugeCountsAreRefusedBeforeAnyAllocation) {
  // 2^30 channels and ranks once took 16.8 GB and 39 s and ended in "vector::_M_default_append"
  bad(R"({"dram": {"channels": 1073741824, "ranks": 1073741824}})",
      {"cfg.json:1:23", "'channels'", "1073741824", "1..32"});
  bad(R"({"dram": {"ranks": 1073741824}})", {"'ranks'", "1073741824", "1..16"});
  bad(R"({"dram": {"banks": 65}})", {"'banks'", "65", "1..64"});
  bad(R"({"dram": {"rows": 1099511627776}})", {"'rows'", "1099511627776", "1..1048576"});
  bad(R"({"dram": {"columns": 32768}})", {"'columns'", "32768", "1..16384"});
  bad(R"({"dram": {"device_width_bits": 256}})", {"'device_width_bits'", "256", "4..128"});
  bad(R"({"dram": {"device_width_bits": 2}})", {"'device_width_bits'", "2", "4..128"});
  bad(R"({"dram": {"devices_per_rank": 100}})", {"'devices_per_rank'", "100", "1..36"});
  bad(R"({"dram": {"burst_length": 64}})", {"'burst_length'", "64", "2..32"});
  bad(R"({"dram": {"burst_length": 1}})", {"'burst_length'", "1", "2..32"});
  bad(R"({"dram": {"cl": 20000}})", {"'cl'", "20000", "1..10000"});
  bad(R"({"dram": {"tras": 0}})", {"'tras'", "0", "1..10000"});
  bad(R"({"dram": {"twr": -1}})", {"'twr'", "-1", "0..10000"});
  bad(R"({"dram": {"trrd": -1}})", {"'trrd'", "-1", "0..10000"});
  bad(R"({"dram": {"tfaw": 10001}})", {"'tfaw'", "10001", "0..10000"});
  bad(R"({"dram": {"trfc": 1e9}})", {"'trfc'", "1000000000", "1..100000"});
}

TEST(AccelConfigRanges, CurrentsVoltageAndClockHaveDatasheetBounds) {
  // huge IDD/VDD/tCK values once gave -nan and inf energies with exit 0
  for (const char* key : {"idd0", "idd2n", "idd3n", "idd4r", "idd4w", "idd5"}) {
    bad(std::string(R"({"dram": {")") + key + R"(": 1e300}})", {std::string("'") + key + "'", "1e+300", "<= 10000 mA"});
    bad(std::string(R"({"dram": {")") + key + R"(": 0}})", {std::string("'") + key + "'", "> 0"});
  }
  bad(R"({"dram": {"vdd": 1e308}})", {"'vdd'", "1e+308", "<= 3.6 V"});
  bad(R"({"dram": {"vdd": 12}})", {"'vdd'", "12", "<= 3.6 V"});
  bad(R"({"dram": {"tck_ns": 1e200}})", {"'tck_ns'", "1e+200", "0.1..100 ns"});
  bad(R"({"dram": {"tck_ns": -0.5}})", {"'tck_ns'", "-0.5", "0.1..100 ns"});
  bad(R"({"dram": {"tck_ns": 1e-300}})", {"'tck_ns'", "1e-300", "0.1..100 ns"});
  bad(R"({"dram": {"trefi_cycles": 1e12}})", {"'trefi_cycles'", "1000000000000", "<= 10000000 cycles"});
  bad(R"({"clock_mhz": 1e300})", {"'clock_mhz'", "1e+300", "1..10000 MHz"});
  bad(R"({"clock_mhz": 1e-300})", {"'clock_mhz'", "1e-300", "1..10000 MHz"});
  bad(R"({"e_mac_pj": 1e300})", {"'e_mac_pj'", "1e+300", "<= 1000000 pJ"});
  bad(R"({"e_buffer_pj": 2e6})", {"'e_buffer_pj'", "2000000", "<= 1000000 pJ"});
}

// The most extreme DRAM part the ranges allow (every count, timing, current and energy at its
// bound, consistent with the cross-field rules), as a config file.
const char* kExtremeConfig = R"({
  "name": "extreme", "clock_mhz": 1, "e_mac_pj": 1000000, "e_buffer_pj": 1000000, "mac_array": 1,
  "dram": {"name": "extreme", "channels": 32, "ranks": 16, "banks": 64, "rows": 1048576, "columns": 16384,
           "device_width_bits": 128, "devices_per_rank": 36, "burst_length": 32, "tck_ns": 100,
           "cl": 10000, "trcd": 10000, "trp": 10000, "tras": 10000, "trc": 10000, "twr": 10000, "trrd": 10000, "tfaw": 10000,
           "trfc": 100000, "trefi_cycles": 10000000,
           "idd0": 10000, "idd2n": 0.001, "idd3n": 0.001, "idd4r": 10000, "idd4w": 10000, "idd5": 10000, "vdd": 3.6}
})";

TEST(AccelConfigRanges, TheExtremeConfigGivesFiniteEnergies) {
  const AccelConfig c = accel_config_from_json(kExtremeConfig, "extreme.json");
  EXPECT_EQ(c.dram.channels, 32);
  // mA x cycles x devices x ns x V: (10000 - 0.001) x 16 x 36 x 100 x 3.6 pJ per read burst
  EXPECT_NEAR(burst_energy_pj(c.dram, false), (10000 - 0.001) * 16 * 36 * 100 * 3.6, 1);
  for (double e : {burst_energy_pj(c.dram, true), act_pre_energy_pj(c.dram), refresh_energy_pj(c.dram),
                   background_energy_pj_per_cycle(c.dram, true)})
    EXPECT_TRUE(std::isfinite(e) && e >= 0) << e;
  DramModel m(c.dram);
  for (uint64_t i = 0; i < 64; ++i) m.access(i * 1000003, 4096, i % 2 == 1, i * 100000);
  const DramStats st = m.finish(uint64_t(1) << 40);
  EXPECT_TRUE(std::isfinite(st.total_pj())) << st.total_pj();
  EXPECT_GT(st.total_pj(), 0);
}

struct CmdResult {
  int status = -1;
  std::string out, err;
};

CmdResult run_locus(const std::string& args) {
  const std::string dir = test::temp_dir();
  const std::string out = dir + "/accel_cfg_out.txt", err = dir + "/accel_cfg_err.txt";
  const std::string cmd = "timeout 300 " + std::string(LOCUS_BINARY_DIR) + "/locus " + args + " >" + out + " 2>" + err;
  const int rc = std::system(cmd.c_str());
  CmdResult r;
  if (WIFEXITED(rc)) r.status = WEXITSTATUS(rc);
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

TEST(AccelConfigRanges, EnergyCommandPrintsOnlyFiniteNumbers) {
  const std::string dir = test::temp_dir();
  {
    std::ofstream f(dir + "/extreme.json");
    f << kExtremeConfig;
  }
  const CmdResult r = run_locus("energy builtin:mobilenetv2 --summary --schedule baseline,fused-scan --accel " + dir +
                          "/extreme.json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("total energy"), std::string::npos) << r.out;
  for (const char* word : {"nan", "inf", "NaN", "Inf"}) EXPECT_EQ(r.out.find(word), std::string::npos) << word << " in:\n" << r.out;

  // an out-of-range value: one line on stderr naming key, value and range, non-zero exit
  {
    std::ofstream f(dir + "/huge.json");
    f << R"({"dram": {"base": "ddr4-2400-micron-x8", "channels": 1073741824, "ranks": 1073741824}})";
  }
  const CmdResult e = run_locus("energy builtin:mobilenetv2 --accel " + dir + "/huge.json");
  EXPECT_EQ(e.status, 1) << e.err;
  EXPECT_EQ(std::count(e.err.begin(), e.err.end(), '\n'), 1) << e.err;
  for (const char* part : {"huge.json:1:", "'channels'", "1073741824", "1..32"})
    EXPECT_NE(e.err.find(part), std::string::npos) << part << " not in: " << e.err;
  EXPECT_TRUE(e.out.empty()) << e.out;
}

}  // namespace
}  // namespace locus::accel
