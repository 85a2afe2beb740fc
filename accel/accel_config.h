// The accelerator description the accelerator-model backend runs on (docs/method.md section 7):
// an on-chip buffer of S entries of a given word size, a MAC array, energy per MAC and per buffer
// access, and a DRAM part. Read from a small JSON file or a named preset.
//
// INTERFACE CONTRACT (shared by the schedule side, the CLI and the tests): extend, do not change.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "accel/dram_model.h"

namespace locus::accel {

struct AccelConfig {
  std::string name = "default";
  std::string source;  // where the numbers come from (preset files cite their sources)
  int64_t buffer_entries = 64 * 1024;  // on-chip buffer, in words
  int word_bits = 16;
  int mac_array = 256;        // MACs per accelerator cycle
  double clock_mhz = 500;     // accelerator clock (converted to DRAM cycles for the address stream)
  double e_mac_pj = 0;        // per MAC
  double e_buffer_pj = 0;     // per word read or written in the on-chip buffer
  DramSpec dram;
  int64_t word_bytes() const { return (word_bits + 7) / 8; }
};

// Ranges a config file may give (the JSON keys of the same names; anything outside is a one-line
// locus::Error naming the key, its value and the range). They are what DRAM datasheets allow, with
// some headroom: DDR3..DDR5, LPDDR4/5, GDDR6 and HBM2/3 parts have up to 32 channels (HBM3 pseudo
// channels), 8 ranks (LRDIMM, 3DS), 64 banks, 2^18 rows per bank, 2K columns, x4..x128 devices, 18
// devices per rank (x4 with ECC), BL 2..32, tCK 0.2..10 ns (allowed: 0.1..100), tRFC under 1 us and tREFI under 10 us;
// IDD currents are at most a few hundred mA per device (a few A per HBM stack) and supplies 0.5..3.3
// V. They also keep the DRAM model small (it keeps state per channel x rank x bank) and every energy
// finite.
inline constexpr int kDramMaxChannels = 32;
inline constexpr int kDramMaxRanks = 16;
inline constexpr int kDramMaxBanks = 64;
inline constexpr int64_t kDramMaxRows = int64_t{1} << 20;
inline constexpr int64_t kDramMaxColumns = int64_t{1} << 14;
inline constexpr int kDramMaxDeviceWidthBits = 128;
inline constexpr int kDramMaxDevicesPerRank = 36;
inline constexpr int kDramMaxBurstLength = 32;
inline constexpr double kDramMinTckNs = 0.1;          // 10 GHz
inline constexpr double kDramMaxTckNs = 100;          // 10 MHz
inline constexpr int kDramMaxTimingCycles = 10000;    // cl, trcd, trp, tras, trc, twr, trrd, tfaw
inline constexpr int kDramMaxTrfcCycles = 100000;
inline constexpr double kDramMaxTrefiCycles = 1e7;
inline constexpr double kDramMaxCurrentMa = 10000;    // idd0 .. idd5, per device
inline constexpr double kDramMaxVdd = 3.6;            // V
inline constexpr double kAccelMinClockMhz = 1;
inline constexpr double kAccelMaxClockMhz = 10000;    // 10 GHz
inline constexpr double kAccelMaxEventPj = 1e6;       // e_mac_pj, e_buffer_pj (1 uJ per event)

// `what` is a preset name (see accel_preset_names()) or a path to a JSON file. A JSON file may name
// a preset to start from ("base": "default") and override any field; "dram" is a DRAM preset name.
// Throws locus::Error with one line naming the problem (unknown preset, bad field, bad value).
AccelConfig load_accel_config(const std::string& what);
std::vector<std::string> accel_preset_names();
// The same from JSON text; `where` names it in errors (e.g. a path).
AccelConfig accel_config_from_json(const std::string& json_text, const std::string& where);

// DRAM parts: "ddr3-..." (method.md's Micron DDR3 x8 -15), at least one DDR4 and one LPDDR4, each
// citing its datasheet. Throws locus::Error listing the known names.
DramSpec dram_preset(const std::string& name);
std::vector<std::string> dram_preset_names();

// "65536", "64K" (x1024), "2M" (x1024^2) -> entries; throws locus::Error on anything else or <= 0.
int64_t parse_entries(const std::string& text);

}  // namespace locus::accel
