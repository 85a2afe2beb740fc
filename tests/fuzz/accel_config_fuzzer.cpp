// libFuzzer target for the accelerator configs users feed (`--accel FILE.json`): the bytes go
// through the strict JSON reader and accel_config_from_json, which builds an AccelConfig (presets as
// bases, DRAM parts, range checks). Any input must either give a config or throw locus::Error;
// anything else (another exception type, a crash, a sanitizer report, a hang, a large allocation) is
// a bug. A config that is accepted must also be usable: its per-event DRAM energies are finite and
// non-negative, and a DRAM model built from it serves a few accesses and reports a finite energy.
//
// With LOCUS_FUZZ_WRITE_SEEDS=<dir> the binary writes seed configs into <dir> and exits (the real
// presets, accel/presets/*/*.json, are added to the corpus by scripts/run-fuzzer.sh).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "graph/error.h"
#include "accel/accel_config.h"
#include "accel/dram_model.h"
#include "accel/json_reader.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

void write_seeds(const std::string& dir) {
  auto save = [&](const std::string& name, const std::string& text) { locus_fuzz::write_bytes(dir + "/" + name + ".json", text); };
  save("minimal", "{}");
  save("base_override", R"({"base": "default-ddr4", "name": "x", "buffer_entries": "128K", "word_bits": 8,
  "mac_array": 1024, "clock_mhz": 800, "e_mac_pj": 0.5, "e_buffer_pj": 1.25})");
  save("dram_inline", R"({"dram": {"base": "ddr3-1333-micron-x8", "channels": 2, "ranks": 2, "banks": 8,
  "rows": 16384, "columns": 1024, "burst_length": 8, "tck_ns": 1.25, "idd0": 100, "idd2n": 40, "idd3n": 50,
  "idd4r": 200, "idd4w": 210, "idd5": 220, "vdd": 1.35, "trefi_cycles": 6240, "trfc": 128, "twr": 12}})");
  save("dram_preset", R"({"dram": "lpddr4-3200-micron-x16", "buffer_entries": 65536})");
  save("strings", R"({"name": "caf\u00e9 \ud83d\ude00", "source": "a\"b\\c\/d\b\f\n\r\t"})");
  save("nested", R"({"dram": {"base": "ddr4-2400-micron-x8", "source": [1, 2.5e3, -0, true, false, null, {}]}})");
}

}  // namespace

LOCUS_FUZZ_INITIALIZE_WITH_SEEDS(write_seeds)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)locus::accel::json::parse(text, "fuzz.json");  // the reader on its own (any JSON value)
  } catch (const locus::Error&) {
  }
  try {
    const locus::accel::AccelConfig c = locus::accel::accel_config_from_json(text, "fuzz.json");
    using namespace locus::accel;
    const DramSpec& s = c.dram;
    for (double e : {burst_energy_pj(s, false), burst_energy_pj(s, true), act_pre_energy_pj(s), refresh_energy_pj(s),
                     background_energy_pj_per_cycle(s, false), background_energy_pj_per_cycle(s, true)})
      if (!std::isfinite(e) || e < 0) std::abort();
    DramModel m(s);
    const uint64_t step = uint64_t(s.row_bytes()) + uint64_t(s.burst_bytes());
    for (uint64_t i = 0; i < 8; ++i) m.access(i * step, uint64_t(s.burst_bytes()) * 2, i % 3 == 0, i * 10);
    const DramStats st = m.finish(1000);
    if (!std::isfinite(st.total_pj()) || st.total_pj() < 0) std::abort();
  } catch (const locus::Error&) {
    // expected for malformed configs and out-of-range values
  }
  return 0;
}
