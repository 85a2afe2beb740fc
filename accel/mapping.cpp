// Mappings (accel/mapping.h): schedule names and the JSON form, written and read with nlohmann-json;
// reading validates the file against the workload and the config.
#include "accel/mapping.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "accel/mapper.h"
#include "accel/replay.h"
#include "graph/error.h"

namespace locus::accel {

const char* schedule_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::Baseline: return "baseline";
    case ScheduleKind::Scan: return "scan";
    case ScheduleKind::FusedScan: return "fused-scan";
  }
  return "?";
}

ScheduleKind parse_schedule(const std::string& name) {
  for (ScheduleKind k : all_schedules())
    if (name == schedule_name(k)) return k;
  fail("unknown schedule '", name, "' (known: baseline, scan, fused-scan)");
}

std::vector<ScheduleKind> all_schedules() {
  return {ScheduleKind::Baseline, ScheduleKind::Scan, ScheduleKind::FusedScan};
}

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr const char* kSchema = "locus-mapping/1";
constexpr uint64_t kMaxAddress = uint64_t(1) << 52;  // far beyond any DRAM part; keeps sums exact
constexpr size_t kMaxFileBytes = size_t(64) << 20;

ojson layer_to_json(const LayerMapping& m) {
  ojson j;
  j["name"] = m.name;
  if (m.gemm) j["gemm"] = {{"m", m.gemm->m}, {"n", m.gemm->n}, {"k", m.gemm->k}, {"order", schedule::order_name(m.gemm->order)}};
  if (m.band) j["band"] = {{"rows", m.band->rows}, {"chunk", m.band->chunk}};
  if (m.fused) j["fused"] = {{"rows", m.fused->rows}, {"chunk", m.fused->chunk}, {"halo_cache", m.fused->halo_cache}};
  if (m.se) j["fused"]["squeeze_excite"] = schedule::se_strategy_name(m.se->strategy);
  if (m.chain)
    j["chain"] = {{"rows", m.chain->rows}, {"chunk", m.chain->chunk}, {"resident", m.chain->resident}, {"staged", m.chain->staged}};
  if (!m.stages.empty()) {
    ojson st = ojson::array();
    for (const LayerMapping& s : m.stages) st.push_back(layer_to_json(s));
    j["stages"] = std::move(st);
  }
  if (!m.note.empty()) j["note"] = m.note;
  return j;
}

// Parses strict JSON: a syntax error or a duplicate key anywhere is a one-line Error.
json parse_strict(const std::string& text, const std::string& where) {
  std::vector<std::set<std::string>> keys;  // the keys seen in each open object
  std::string duplicate;
  json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (ev == json::parse_event_t::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (ev == json::parse_event_t::key && !keys.empty()) {
      const std::string k = parsed.get<std::string>();
      if (!keys.back().insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text, cb);
  } catch (const json::exception& e) {
    fail(where, ": not valid JSON: ", e.what());
  }
  if (!duplicate.empty()) fail(where, ": duplicate key '", duplicate, "'");
  return j;
}

void expect_keys(const json& j, const std::string& ctx, std::initializer_list<const char*> allowed) {
  if (!j.is_object()) fail(ctx, ": expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known |= it.key() == a;
    if (!known) fail(ctx, ": unknown key '", it.key(), "'");
  }
}

const json& member(const json& j, const std::string& ctx, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) fail(ctx, ": missing key '", key, "'");
  return *it;
}

int64_t int_member(const json& j, const std::string& ctx, const char* key, int64_t lo, int64_t hi) {
  const json& v = member(j, ctx, key);
  if (!v.is_number_integer()) fail(ctx, ": '", key, "' must be an integer");
  if (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t(hi) : (v.get<int64_t>() < lo || v.get<int64_t>() > hi))
    fail(ctx, ": '", key, "' = ", v.dump(), " is outside [", lo, ", ", hi, "]");
  return v.get<int64_t>();
}

std::string string_member(const json& j, const std::string& ctx, const char* key) {
  const json& v = member(j, ctx, key);
  if (!v.is_string()) fail(ctx, ": '", key, "' must be a string");
  return v.get<std::string>();
}

schedule::Order parse_order(const std::string& s, const std::string& ctx) {
  for (schedule::Order o : {schedule::Order::RowMajor, schedule::Order::ColMajor, schedule::Order::ScanRows,
                            schedule::Order::ScanCols})
    if (s == schedule::order_name(o)) return o;
  fail(ctx, ": unknown order '", s, "' (known: RowMajor, ColMajor, ScanRows, ScanCols)");
}

struct Reader {
  const Workload& wl;
  const AccelConfig& cfg;
  int64_t S = 0;
  int64_t burst_entries = 1;

  // `kind`: the schedule whose planner options the layer's tiles must respect.
  LayerMapping layer(const json& j, const Layer& l, ScheduleKind kind, bool top_fused_scan, const std::string& ctx) {
    expect_keys(j, ctx, {"name", "gemm", "band", "fused", "chain", "stages", "note"});
    LayerMapping m;
    m.name = string_member(j, ctx, "name");
    if (m.name != l.name) fail(ctx, ": names layer '", m.name, "', the model's layer is '", l.name, "'");
    if (j.contains("note")) m.note = string_member(j, ctx, "note");
    const bool is_gemm = l.kind == LayerKind::Pointwise || l.kind == LayerKind::Conv || l.kind == LayerKind::Gemm;
    const bool is_band = l.kind == LayerKind::Depthwise || l.kind == LayerKind::Pool;
    const bool is_fused = l.kind == LayerKind::Fused;
    auto refuse = [&](const char* key, bool allowed) {
      if (!allowed && j.contains(key))
        fail(ctx, ": '", key, "' does not apply to a ", layer_kind_name(l.kind), " layer",
             is_fused && std::string(key) == "fused" ? " outside fused-scan" : "");
    };
    refuse("gemm", is_gemm);
    refuse("band", is_band);
    refuse("fused", is_fused && top_fused_scan && !l.chain);
    refuse("chain", is_fused && top_fused_scan && l.chain.has_value());
    refuse("stages", is_fused);
    if (is_gemm) {
      const std::string c = ctx + " gemm";
      const json& g = member(j, ctx, "gemm");
      expect_keys(g, c, {"m", "n", "k", "order"});
      const int64_t tm = int_member(g, c, "m", 1, l.M), tn = int_member(g, c, "n", 1, l.N);
      const int64_t tk = int_member(g, c, "k", 1, l.K);
      const schedule::Order order = parse_order(string_member(g, c, "order"), c);
      const schedule::PlannerOptions po = gemm_planner_options(kind, burst_entries);
      if (std::find(po.orders.begin(), po.orders.end(), order) == po.orders.end())
        fail(c, ": order ", schedule::order_name(order), " is not one schedule ", schedule_name(kind), " uses");
      if (tm * tk + tk * tn + tm * tn > S)
        fail(c, ": tiles m=", tm, " n=", tn, " k=", tk, " need ", tm * tk + tk * tn + tm * tn,
             " entries, more than the buffer S=", S);
      m.gemm = schedule::TilingPlanner(S, po).make_plan({l.M, l.K, l.N, int(cfg.word_bytes())}, tm, tn, tk, order);
    }
    if (is_band) {
      const std::string c = ctx + " band";
      const json& b = member(j, ctx, "band");
      expect_keys(b, c, {"rows", "chunk"});
      const int64_t rows = int_member(b, c, "rows", 1, l.geom.OH), chunk = int_member(b, c, "chunk", 1, l.geom.C);
      if (band_entries(l, rows, chunk) > S)
        fail(c, ": rows=", rows, " chunk=", chunk, " need ", band_entries(l, rows, chunk),
             " entries, more than the buffer S=", S);
      m.band = BandPlan{rows, chunk};
    }
    if (is_fused) {
      const char* fk = l.chain ? "chain" : "fused";  // a FusedChain's plan, or a fused block's
      if (j.contains(fk) == j.contains("stages"))
        fail(ctx, top_fused_scan ? cat(": a fused group needs exactly one of '", fk, "' and 'stages'")
                                 : std::string(": a fused group needs 'stages' outside fused-scan"));
      if (j.contains("chain")) {
        const std::string c = ctx + " chain";
        const json& f = member(j, ctx, "chain");
        expect_keys(f, c, {"rows", "chunk", "resident", "staged"});
        const int64_t rows = int_member(f, c, "rows", 1, l.chain->TH(l.chain->n()));
        const json &ch = member(f, c, "chunk"), &res = member(f, c, "resident"), &staged = member(f, c, "staged");
        if (!ch.is_array() || !res.is_array() || !staged.is_boolean())
          fail(c, ": 'chunk' and 'resident' must be arrays, 'staged' true or false");
        try {
          const schedule::FusedChainPlanAttempt a = schedule::try_fused_chain_plan(
              *l.chain, S, rows, ch.get<std::vector<int64_t>>(), res.get<std::vector<bool>>(), staged.get<bool>());
          if (!a.plan) fail(a.why_not);
          m.chain = *a.plan;
        } catch (const Error& e) {
          fail(c, ": ", e.what());
        } catch (const json::exception&) {
          fail(c, ": 'chunk' must hold integers and 'resident' true / false values");
        }
      } else if (j.contains("fused")) {
        const std::string c = ctx + " fused";
        const json& f = member(j, ctx, "fused");
        expect_keys(f, c, {"rows", "chunk", "halo_cache", "squeeze_excite"});
        const int64_t rows = int_member(f, c, "rows", 1, l.block.OH()), chunk = int_member(f, c, "chunk", 1, l.block.E);
        const json& halo = member(f, c, "halo_cache");
        if (!halo.is_boolean()) fail(c, ": 'halo_cache' must be true or false");
        if (f.contains("squeeze_excite") != l.se)
          fail(c, l.se ? ": a squeeze-excite block needs 'squeeze_excite' (\"two-pass\" or \"recompute\")"
                       : ": 'squeeze_excite' is only for squeeze-excite blocks");
        try {
          if (l.se) {
            // the planner's bands (two-pass keeps what fits beside them), with the strategy asked for
            const json& st = member(f, c, "squeeze_excite");
            const std::string name = st.is_string() ? st.get<std::string>() : "";
            if (name != "two-pass" && name != "recompute") fail(c, ": 'squeeze_excite' must be \"two-pass\" or \"recompute\"");
            const int64_t burst = std::max<int64_t>(1, cfg.dram.burst_bytes() / cfg.word_bytes());
            m.se = schedule::plan_se_block(l.block, S, fused_planner_options(burst), name == "two-pass" ? schedule::SeStrategy::TwoPass
                                                                                                : schedule::SeStrategy::Recompute);
            if (m.se->block.rows != rows || m.se->block.chunk != chunk || halo.get<bool>())
              fail(c, ": a squeeze-excite block runs the planner's bands (rows=", m.se->block.rows, " chunk=",
                   m.se->block.chunk, " halo_cache=false)");
            m.fused = m.se->block;
          } else {
            m.fused = schedule::make_fused_block_plan(l.block, S, rows, chunk, halo.get<bool>());
          }
        } catch (const Error& e) {
          fail(c, ": ", e.what());
        }
      } else {
        const json& st = member(j, ctx, "stages");
        if (!st.is_array() || st.size() != l.stages.size())
          fail(ctx, ": 'stages' must be an array of the group's ", l.stages.size(), " stages");
        for (size_t i = 0; i < l.stages.size(); ++i)
          m.stages.push_back(layer(st[i], l.stages[i], top_fused_scan ? ScheduleKind::Scan : kind, false,
                                   cat(ctx, " stage ", i)));
      }
    }
    return m;
  }

  // Every tensor region a layer touches, as mapped.
  void used(const Layer& l, const LayerMapping& m, std::set<std::string>& out) {
    if (l.kind == LayerKind::Fused && !m.fused && !m.chain) {
      for (size_t i = 0; i < l.stages.size(); ++i) used(l.stages[i], m.stages[i], out);
      return;
    }
    for (auto* v : {&l.inputs, &l.weights, &l.outputs})
      for (const std::string& t : *v) out.insert(wl.storage(t));
    if (m.se && m.se->strategy == schedule::SeStrategy::TwoPass && m.se->spilled > 0) out.insert(wl.storage(l.name + "/dw"));
  }

  void placement(const json& p, Mapping& m, const std::string& ctx) {
    if (!p.is_object()) fail(ctx, ": expected a JSON object of tensor -> address");
    const int64_t wb = cfg.word_bytes();
    std::vector<std::pair<uint64_t, std::string>> regions;
    for (auto it = p.begin(); it != p.end(); ++it) {
      const std::string& t = it.key();
      if (!wl.entries.count(t) || wl.storage(t) != t) fail(ctx, ": '", t, "' is not a tensor region of the model");
      const json& v = it.value();
      if (!v.is_number_unsigned() || v.get<uint64_t>() > kMaxAddress)
        fail(ctx, ": the address of '", t, "' must be an integer in [0, 2^52]");
      m.placement[t] = v.get<uint64_t>();
      regions.push_back({v.get<uint64_t>(), t});
    }
    std::set<std::string> need;
    for (size_t i = 0; i < wl.layers.size(); ++i) used(wl.layers[i], m.layers[i], need);
    for (const std::string& t : need)
      if (!m.placement.count(t)) fail(ctx, ": tensor '", t, "' has no address");
    std::sort(regions.begin(), regions.end());
    for (size_t i = 1; i < regions.size(); ++i) {
      const auto& [a, t] = regions[i - 1];
      const uint64_t bytes = uint64_t(wl.entries.at(t) * wb);
      if (bytes > 0 && a + bytes > regions[i].first)
        fail(ctx, ": tensors '", t, "' (", bytes, " bytes at ", a, ") and '", regions[i].second, "' (at ",
             regions[i].first, ") overlap");
    }
  }
};

}  // namespace

std::string mappings_to_json(const std::vector<Mapping>& mappings, const Workload& wl, const AccelConfig& cfg,
                             const std::string& model) {
  ojson root;
  root["schema"] = kSchema;
  root["model"] = model;
  root["batch"] = wl.batch;
  root["word_bits"] = cfg.word_bits;
  ojson ms = ojson::array();
  for (const Mapping& m : mappings) {
    ojson jm;
    jm["schedule"] = schedule_name(m.kind);
    jm["buffer_entries"] = m.buffer_entries;
    ojson layers = ojson::array();
    for (const LayerMapping& l : m.layers) layers.push_back(layer_to_json(l));
    jm["layers"] = std::move(layers);
    std::vector<std::pair<uint64_t, std::string>> by_address;
    for (const auto& [t, a] : m.placement) by_address.push_back({a, t});
    std::sort(by_address.begin(), by_address.end());
    ojson pl = ojson::object();
    for (const auto& [a, t] : by_address) pl[t] = a;
    jm["placement"] = std::move(pl);
    ms.push_back(std::move(jm));
  }
  root["mappings"] = std::move(ms);
  return root.dump(1) + "\n";
}

std::vector<Mapping> mappings_from_json(const std::string& text, const Workload& wl, const AccelConfig& cfg,
                                        const std::string& where) {
  const json root = parse_strict(text, where);
  expect_keys(root, where, {"schema", "model", "batch", "word_bits", "mappings"});
  const std::string schema = string_member(root, where, "schema");
  if (schema != kSchema) fail(where, ": schema '", schema, "' is not ", kSchema);
  if (root.contains("model")) string_member(root, where, "model");
  const int64_t batch = int_member(root, where, "batch", 1, int64_t(1) << 30);
  if (batch != wl.batch) fail(where, ": mapped for batch ", batch, ", the model has batch ", wl.batch);
  const int64_t bits = int_member(root, where, "word_bits", 1, 1024);
  if (bits != cfg.word_bits) fail(where, ": mapped for ", bits, "-bit words, the accelerator has ", cfg.word_bits);
  const json& ms = member(root, where, "mappings");
  if (!ms.is_array() || ms.empty()) fail(where, ": 'mappings' must be a non-empty array");
  std::vector<Mapping> out;
  for (size_t i = 0; i < ms.size(); ++i) {
    std::string ctx = cat(where, ": mappings[", i, "]");
    const json& jm = ms[i];
    expect_keys(jm, ctx, {"schedule", "buffer_entries", "layers", "placement"});
    Mapping m;
    try {
      m.kind = parse_schedule(string_member(jm, ctx, "schedule"));
    } catch (const Error& e) {
      fail(ctx, ": ", e.what());
    }
    ctx += cat(" (", schedule_name(m.kind), ")");
    for (const Mapping& prev : out)
      if (prev.kind == m.kind) fail(ctx, ": schedule ", schedule_name(m.kind), " is mapped twice");
    m.buffer_entries = int_member(jm, ctx, "buffer_entries", 1, int64_t(1) << 40);
    Reader rd{wl, cfg, m.buffer_entries, std::max<int64_t>(1, cfg.dram.burst_bytes() / cfg.word_bytes())};
    const json& layers = member(jm, ctx, "layers");
    if (!layers.is_array()) fail(ctx, ": 'layers' must be an array");
    if (layers.size() != wl.layers.size())
      fail(ctx, ": ", layers.size(), " layers, the model has ", wl.layers.size());
    for (size_t li = 0; li < wl.layers.size(); ++li)
      m.layers.push_back(rd.layer(layers[li], wl.layers[li], m.kind, m.kind == ScheduleKind::FusedScan,
                                  cat(ctx, " layer ", li, " '", wl.layers[li].name, "'")));
    rd.placement(member(jm, ctx, "placement"), m, ctx + " placement");
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<Mapping> read_mapping_file(const std::string& path, const Workload& wl, const AccelConfig& cfg) {
  std::ifstream f(path, std::ios::binary);
  LOCUS_CHECK(f.good(), "cannot read the mapping file '", path, "'");
  std::string text;
  char buf[1 << 16];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    text.append(buf, size_t(f.gcount()));
    LOCUS_CHECK(text.size() <= kMaxFileBytes, "mapping file '", path, "' is larger than 64 MiB");
  }
  return mappings_from_json(text, wl, cfg, path);
}

}  // namespace locus::accel
