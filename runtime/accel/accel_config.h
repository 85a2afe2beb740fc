// The accelerator description the accelerator-model backend runs on (docs/method.md section 7):
// an on-chip buffer of S entries of a given word size, a MAC array, energy per MAC and per buffer
// access, and a DRAM part. Read from a small JSON file or a named preset.
//
// INTERFACE CONTRACT (shared by the schedule side, the CLI and the tests): extend, do not change.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/accel/dram_model.h"

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
