// Accelerator configs and DRAM presets (docs/accelerator-model.md, "Accelerator configs").
//
// Presets are the JSON files under accel/presets/accel/ and accel/presets/dram/
// (the file stem is the preset name). The top-level CMakeLists.txt embeds them into locus_runtime as
// byte arrays (a generated accel_presets_data.cpp defining detail::kEmbeddedPresets), so nothing
// is read from the source tree at run time.
#include "accel/accel_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string_view>

#include "graph/error.h"
#include "accel/json_reader.h"

namespace locus::accel {

namespace detail {
struct EmbeddedPreset {
  const char* kind;  // "accel" or "dram"
  const char* name;  // file stem
  const unsigned char* data;
  size_t size;
};
extern const EmbeddedPreset kEmbeddedPresets[];
extern const size_t kEmbeddedPresetCount;
}  // namespace detail

namespace {

constexpr int kMaxBaseDepth = 8;

std::optional<std::string_view> preset_text(std::string_view kind, std::string_view name) {
  for (size_t i = 0; i < detail::kEmbeddedPresetCount; ++i) {
    const auto& p = detail::kEmbeddedPresets[i];
    if (kind == p.kind && name == p.name)
      return std::string_view(reinterpret_cast<const char*>(p.data), p.size);
  }
  return std::nullopt;
}

std::vector<std::string> preset_names(std::string_view kind) {
  std::vector<std::string> out;
  for (size_t i = 0; i < detail::kEmbeddedPresetCount; ++i)
    if (kind == detail::kEmbeddedPresets[i].kind) out.emplace_back(detail::kEmbeddedPresets[i].name);
  std::sort(out.begin(), out.end());
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// "<where>:<line>:<col>: " for a value
std::string at(const std::string& where, const json::Value& v) { return cat(where, ":", v.line, ":", v.column, ": "); }

// Re-throws a nested error with the location of the value that caused it.
template <class F>
auto with_location(const std::string& where, const json::Value& v, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(at(where, v) + e.what());
  }
}

// A JSON number as the user wrote it, as near as a double allows: whole numbers in full
// ("1073741824"), others in the shortest round-trip form ("1e+300", "0.1"), not the 6 significant
// digits of an ostream.
std::string num(double d) {
  if (d == std::floor(d) && std::fabs(d) < 1e18) return std::to_string(static_cast<int64_t>(d));
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

double number_field(const std::string& where, const std::string& key, const json::Value& v) {
  if (!v.is_number()) fail(at(where, v), "'", key, "' must be a number, not ", json::kind_name(v.kind));
  return v.number;
}

int64_t integer_field(const std::string& where, const std::string& key, const json::Value& v, int64_t lo,
                      int64_t hi) {
  const double d = number_field(where, key, v);
  if (d != std::floor(d)) fail(at(where, v), "'", key, "' must be a whole number (got ", num(d), ")");
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    fail(at(where, v), "'", key, "' must be in ", lo, "..", hi, " (got ", num(d), ")");
  return static_cast<int64_t>(d);
}

// A number in (0, hi] (`unit` printed after the bounds, e.g. " mA"); in [lo, hi] if lo > 0.
double positive_field(const std::string& where, const std::string& key, const json::Value& v, double hi,
                      const char* unit = "", double lo = 0) {
  const double d = number_field(where, key, v);
  if (lo > 0 && !(d >= lo && d <= hi))
    fail(at(where, v), "'", key, "' must be in ", num(lo), "..", num(hi), unit, " (got ", num(d), ")");
  if (!(d > 0 && d <= hi)) fail(at(where, v), "'", key, "' must be > 0 and <= ", num(hi), unit, " (got ", num(d), ")");
  return d;
}

// A number in [0, hi].
double non_negative_field(const std::string& where, const std::string& key, const json::Value& v, double hi,
                          const char* unit = "") {
  const double d = number_field(where, key, v);
  if (!(d >= 0 && d <= hi)) fail(at(where, v), "'", key, "' must be >= 0 and <= ", num(hi), unit, " (got ", num(d), ")");
  return d;
}

std::string string_field(const std::string& where, const std::string& key, const json::Value& v) {
  if (!v.is_string()) fail(at(where, v), "'", key, "' must be a string, not ", json::kind_name(v.kind));
  return v.string;
}

using Setter = std::function<void(const json::Value&)>;

template <class Map>
std::string keys_of(const Map& m) {
  std::vector<std::string> k;
  for (const auto& [name, unused] : m) k.push_back(name);
  return join(k);
}

DramSpec dram_from_preset(const std::string& name, int depth);

// Applies the members of `obj` to `s`. "base" (a DRAM preset name) is applied first.
void apply_dram(DramSpec& s, const json::Value& obj, const std::string& where, int depth) {
  if (!obj.is_object()) fail(at(where, obj), "a DRAM spec must be an object or a preset name, not ", json::kind_name(obj.kind));
  if (const json::Value* base = obj.find("base")) {
    const std::string b = string_field(where, "base", *base);
    s = with_location(where, *base, [&] { return dram_from_preset(b, depth + 1); });
  }
  const std::string& w = where;
  std::map<std::string, Setter> fields;
  auto int_field = [&](const char* key, int& field, int lo, int hi) {
    fields[key] = [&field, lo, hi, &w, key](const json::Value& v) {
      field = static_cast<int>(integer_field(w, key, v, lo, hi));
    };
  };
  auto i64_field = [&](const char* key, int64_t& field, int64_t hi) {
    fields[key] = [&field, hi, &w, key](const json::Value& v) { field = integer_field(w, key, v, 1, hi); };
  };
  auto pos_field = [&](const char* key, double& field, double hi, const char* unit, double lo = 0) {
    fields[key] = [&field, lo, hi, unit, &w, key](const json::Value& v) { field = positive_field(w, key, v, hi, unit, lo); };
  };
  fields["base"] = [](const json::Value&) {};
  fields["name"] = [&s, &w](const json::Value& v) { s.name = string_field(w, "name", v); };
  fields["source"] = [&s, &w](const json::Value& v) { s.source = string_field(w, "source", v); };
  // Ranges (kDram* in accel_config.h): what DRAM datasheets allow, with headroom.
  int_field("channels", s.channels, 1, kDramMaxChannels);
  int_field("ranks", s.ranks, 1, kDramMaxRanks);
  int_field("banks", s.banks, 1, kDramMaxBanks);
  i64_field("rows", s.rows, kDramMaxRows);
  i64_field("columns", s.columns, kDramMaxColumns);
  int_field("device_width_bits", s.device_width_bits, 4, kDramMaxDeviceWidthBits);
  int_field("devices_per_rank", s.devices_per_rank, 1, kDramMaxDevicesPerRank);
  int_field("burst_length", s.burst_length, 2, kDramMaxBurstLength);
  pos_field("tck_ns", s.tck_ns, kDramMaxTckNs, " ns", kDramMinTckNs);
  int_field("cl", s.cl, 1, kDramMaxTimingCycles);
  int_field("trcd", s.trcd, 1, kDramMaxTimingCycles);
  int_field("trp", s.trp, 1, kDramMaxTimingCycles);
  int_field("tras", s.tras, 1, kDramMaxTimingCycles);
  int_field("trc", s.trc, 1, kDramMaxTimingCycles);
  int_field("trfc", s.trfc, 1, kDramMaxTrfcCycles);
  int_field("twr", s.twr, 0, kDramMaxTimingCycles);
  int_field("trrd", s.trrd, 0, kDramMaxTimingCycles);
  int_field("tfaw", s.tfaw, 0, kDramMaxTimingCycles);
  pos_field("trefi_cycles", s.trefi_cycles, kDramMaxTrefiCycles, " cycles");
  for (auto [key, field] : {std::pair{"idd0", &s.idd0}, std::pair{"idd2n", &s.idd2n}, std::pair{"idd3n", &s.idd3n},
                            std::pair{"idd4r", &s.idd4r}, std::pair{"idd4w", &s.idd4w}, std::pair{"idd5", &s.idd5}})
    pos_field(key, *field, kDramMaxCurrentMa, " mA");
  pos_field("vdd", s.vdd, kDramMaxVdd, " V");
  for (const auto& [key, v] : obj.object) {
    auto it = fields.find(key);
    if (it == fields.end()) fail(at(where, v), "unknown key '", key, "' in a DRAM spec (known: ", keys_of(fields), ")");
    it->second(v);
  }
  with_location(where, obj, [&] { validate_dram_spec(s); });
}

DramSpec dram_from_preset(const std::string& name, int depth) {
  LOCUS_CHECK(depth <= kMaxBaseDepth, "DRAM preset '", name, "': 'base' chain deeper than ", kMaxBaseDepth,
              " (a cycle?)");
  const auto text = preset_text("dram", name);
  if (!text) fail("unknown DRAM preset '", name, "' (known: ", join(preset_names("dram")), ")");
  const std::string where = "DRAM preset '" + name + "'";
  const json::Value v = json::parse(*text, where);
  DramSpec s;
  apply_dram(s, v, where, depth);
  LOCUS_CHECK(s.name == name, where, ": its \"name\" is '", s.name, "', not the file name");
  return s;
}

AccelConfig accel_from_preset(const std::string& name, int depth);

void validate_accel(const AccelConfig& c, const std::string& where) {
  LOCUS_CHECK(!c.name.empty(), where, ": 'name' must not be empty");
  LOCUS_CHECK(c.buffer_entries > 0, where, ": 'buffer_entries' must be > 0 (got ", c.buffer_entries, ")");
  LOCUS_CHECK(c.word_bits >= 8 && c.word_bits <= 64, where, ": 'word_bits' must be in 8..64 (got ", c.word_bits, ")");
  LOCUS_CHECK(c.mac_array > 0, where, ": 'mac_array' must be > 0 (got ", c.mac_array, ")");
  LOCUS_CHECK(c.clock_mhz >= kAccelMinClockMhz && c.clock_mhz <= kAccelMaxClockMhz, where, ": 'clock_mhz' must be in ",
              num(kAccelMinClockMhz), "..", num(kAccelMaxClockMhz), " (got ", num(c.clock_mhz), ")");
  LOCUS_CHECK(c.e_mac_pj >= 0 && c.e_mac_pj <= kAccelMaxEventPj, where, ": 'e_mac_pj' must be >= 0 and <= ",
              kAccelMaxEventPj, " (got ", c.e_mac_pj, ")");
  LOCUS_CHECK(c.e_buffer_pj >= 0 && c.e_buffer_pj <= kAccelMaxEventPj, where, ": 'e_buffer_pj' must be >= 0 and <= ",
              kAccelMaxEventPj, " (got ", c.e_buffer_pj, ")");
}

// Applies the members of `obj` to `c`; "base" (an accelerator preset) is applied first, else
// `default_base` if not empty.
void apply_accel(AccelConfig& c, const json::Value& obj, const std::string& where, int depth,
                 const std::string& default_base) {
  if (!obj.is_object()) fail(at(where, obj), "an accelerator config must be a JSON object, not ", json::kind_name(obj.kind));
  if (const json::Value* base = obj.find("base")) {
    const std::string b = string_field(where, "base", *base);
    c = with_location(where, *base, [&] { return accel_from_preset(b, depth + 1); });
  } else if (!default_base.empty()) {
    c = accel_from_preset(default_base, depth + 1);
  }
  const std::string& w = where;
  std::map<std::string, Setter> fields;
  fields["base"] = [](const json::Value&) {};
  fields["name"] = [&](const json::Value& v) { c.name = string_field(w, "name", v); };
  fields["source"] = [&](const json::Value& v) { c.source = string_field(w, "source", v); };
  fields["buffer_entries"] = [&](const json::Value& v) {
    if (v.is_string()) {
      c.buffer_entries = with_location(w, v, [&] { return parse_entries(v.string); });
    } else {
      const double d = number_field(w, "buffer_entries", v);
      if (!(d > 0)) fail(at(w, v), "'buffer_entries' must be > 0 (got ", num(d), ")");
      c.buffer_entries = integer_field(w, "buffer_entries", v, 1, int64_t{1} << 50);
    }
  };
  fields["word_bits"] = [&](const json::Value& v) { c.word_bits = static_cast<int>(integer_field(w, "word_bits", v, 8, 64)); };
  fields["mac_array"] = [&](const json::Value& v) {
    c.mac_array = static_cast<int>(integer_field(w, "mac_array", v, 1, 1 << 30));
  };
  fields["clock_mhz"] = [&](const json::Value& v) { c.clock_mhz = positive_field(w, "clock_mhz", v, kAccelMaxClockMhz, " MHz", kAccelMinClockMhz); };
  fields["e_mac_pj"] = [&](const json::Value& v) { c.e_mac_pj = non_negative_field(w, "e_mac_pj", v, kAccelMaxEventPj, " pJ"); };
  fields["e_buffer_pj"] = [&](const json::Value& v) {
    c.e_buffer_pj = non_negative_field(w, "e_buffer_pj", v, kAccelMaxEventPj, " pJ");
  };
  fields["dram"] = [&](const json::Value& v) {
    if (v.is_string()) c.dram = with_location(w, v, [&] { return dram_from_preset(v.string, depth + 1); });
    else apply_dram(c.dram, v, w, depth + 1);
  };
  for (const auto& [key, v] : obj.object) {
    auto it = fields.find(key);
    if (it == fields.end())
      fail(at(where, v), "unknown key '", key, "' in an accelerator config (known: ", keys_of(fields), ")");
    it->second(v);
  }
  validate_accel(c, where);
}

AccelConfig accel_from_preset(const std::string& name, int depth) {
  LOCUS_CHECK(depth <= kMaxBaseDepth, "accelerator preset '", name, "': 'base' chain deeper than ", kMaxBaseDepth,
              " (a cycle?)");
  const auto text = preset_text("accel", name);
  if (!text) fail("unknown accelerator preset '", name, "' (known: ", join(preset_names("accel")), ")");
  const std::string where = "accelerator preset '" + name + "'";
  AccelConfig c;
  apply_accel(c, json::parse(*text, where), where, depth, "");
  LOCUS_CHECK(c.name == name, where, ": its \"name\" is '", c.name, "', not the file name");
  return c;
}

}  // namespace

std::vector<std::string> accel_preset_names() { return preset_names("accel"); }
std::vector<std::string> dram_preset_names() { return preset_names("dram"); }

DramSpec dram_preset(const std::string& name) { return dram_from_preset(name, 0); }

AccelConfig accel_config_from_json(const std::string& json_text, const std::string& where) {
  AccelConfig c;
  apply_accel(c, json::parse(json_text, where), where, 0, "default");
  return c;
}

AccelConfig load_accel_config(const std::string& what) {
  if (preset_text("accel", what)) return accel_from_preset(what, 0);
  std::error_code ec;
  if (std::filesystem::is_regular_file(what, ec)) {
    const json::Value v = json::parse_file(what);
    AccelConfig c;
    apply_accel(c, v, what, 0, "default");
    // a file without "name" is called after its stem, not after its base
    if (!v.find("name")) c.name = std::filesystem::path(what).stem().string();
    return c;
  }
  const bool looks_like_path = what.find('/') != std::string::npos || what.ends_with(".json");
  if (looks_like_path) fail("cannot open accelerator config '", what, "'");
  fail("unknown accelerator preset '", what, "' (known: ", join(accel_preset_names()),
       "; or give the path of a JSON file)");
}

int64_t parse_entries(const std::string& text) {
  auto bad = [&]() -> int64_t {
    fail("bad number of entries '", text, "': expected a positive whole number, optionally followed by K (x1024) or M (x1024^2)");
  };
  if (text.empty()) bad();
  size_t i = 0;
  int64_t n = 0;
  constexpr int64_t kMax = int64_t{1} << 50;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    n = n * 10 + (text[i] - '0');
    if (n > kMax) fail("bad number of entries '", text, "': too large");
    ++i;
  }
  if (i == 0) bad();
  int64_t mult = 1;
  if (i < text.size()) {
    const char u = text[i];
    if (u == 'K' || u == 'k') mult = 1024;
    else if (u == 'M' || u == 'm') mult = 1024 * 1024;
    else bad();
    ++i;
  }
  if (i != text.size()) bad();
  if (n > kMax / mult) fail("bad number of entries '", text, "': too large");
  if (n * mult <= 0) fail("bad number of entries '", text, "': must be > 0");
  return n * mult;
}

}  // namespace locus::accel
