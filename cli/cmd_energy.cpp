// `locus energy`: projected energy of a model on the accelerator model (accel/), per
// schedule (baseline, scan, fused-scan) and pacing (compute-paced, DRAM-bound), per layer and in
// total; --sweep over buffer sizes with an SVG plot, --sweep-macs over MAC array sizes; --emit-mapping / --mapping write and read the schedules' mappings (accel/mapping.h). Everything is computed from the optimised graph; nothing is executed.
// --decompose builds the chains from shapes only (CpDecomposeOptions::shapes_only) unless the policy
// (error=E) needs fits to choose the ranks.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <tuple>
#include <utility>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/json.h"
#include "cli/svg_plot.h"
#include "cli/energy_report.h"
#include "cli/order_report.h"
#include "graph/ops.h"
#include "graph/passes/cp_decompose.h"
#include "graph/passes/pipeline.h"
#include "accel/accel_config.h"
#include "accel/evaluator.h"
#include "accel/mapper.h"
#include "accel/mapping.h"
#include "accel/schedule.h"
#include "accel/workload.h"

namespace locus::cli {

static const char* kEnergyHelp =
    "usage: locus energy MODEL [options]\n"
    "\n"
    "Projects the energy of one inference of MODEL on the accelerator model (an on-chip buffer of S\n"
    "entries, a MAC array and a DRAM part; docs/accelerator-model.md) under each schedule:\n"
    "  baseline    layer by layer, the best tiles for the buffer with conventional (row- or\n"
    "              column-major) orders\n"
    "  scan        layer by layer, Scan orders allowed\n"
    "  fused-scan  each fused inverted-residual group as one band x chunk schedule (Scan over the\n"
    "              chunks), the other layers as scan\n"
    "Every schedule places the tensors in one DRAM address space and feeds its loads and stores, tile\n"
    "by tile, to the DRAM model (banks, rows, open-page row buffers, refresh, background), under each\n"
    "pacing (--pacing):\n"
    "  compute     a request is issued when the step that needs it starts (loads) or ends (stores),\n"
    "              at the MAC array's pace; a layer lasts until its compute and its DRAM traffic end\n"
    "  dram        every request is issued as soon as the DRAM can take it (compute fully\n"
    "              overlapped: the DRAM-bound bound, as a trace-driven DRAM simulation runs)\n"
    "Background and refresh energy scale with the schedule's duration, so the two pacings give\n"
    "different DRAM energies and savings for the same traffic.\n"
    "\n"
    "With --decompose rank=N, ratio=X or macs=X the decomposition is shapes only: the chains get the\n"
    "policy's ranks and zero weights, nothing is fitted (the energy depends only on shapes; the figures\n"
    "equal those of the fitted model). error=E chooses ranks by fitting, so it runs ALS (minutes on\n"
    "large layers).\n"
;

static const char* kEnergyHelpColumns =
    "Per-layer columns (table and csv): MACs; DRAM MiB read and written (the schedule's traffic,\n"
    "entries x word bytes); buffer accesses (words read or written in the on-chip buffer); the\n"
    "row-buffer hit rate of the DRAM bursts; energy in uJ: DRAM read, write, activate+precharge,\n"
    "refresh, background and their sum, buffer, MAC, total; the tiling chosen (csv: then the pacing).\n"
    "Totals are printed per pacing and schedule side by side (with the duration and the compute time\n"
    "in us) with the saving of scan and fused-scan over\n"
    "baseline in DRAM energy, in DRAM access energy (bursts and activate/precharge: without the\n"
    "time-proportional background and refresh) and in DRAM bytes, and the thesis's figures\n"
    "(67% of DRAM energy saved on MobileNetV2, 20% on\n"
    "CP-decomposed ResNet-50, both at 64K entries) next to the measured saving.\n"
    "JSON: \"schedules\" holds the first pacing's results (compute by default), \"schedules_dram_paced\"\n"
    "the DRAM-paced ones when both are evaluated; each schedule names its \"pacing\".\n"
    "--sweep-macs LO:HI evaluates every MAC array size LO, 2LO, ..., HI at --buffer: per schedule the\n"
    "compute-paced DRAM energy and duration, and whether the schedule is compute-bound (its compute\n"
    "time exceeds its DRAM-paced duration) or DRAM-bound.\n"
    "\n"
    "Presets: accelerators ";

namespace {

std::string entries_label(double v) {
  const int64_t e = int64_t(v);
  if (e >= (1 << 20) && e % (1 << 20) == 0) return std::to_string(e >> 20) + "M";
  if (e >= 1024 && e % 1024 == 0) return std::to_string(e >> 10) + "K";
  return std::to_string(e);
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

double uj(double pj) { return pj * 1e-6; }
double mib(int64_t b) { return double(b) / double(1 << 20); }

std::vector<accel::ScheduleKind> parse_schedules(const std::string& list) {
  std::vector<accel::ScheduleKind> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    accel::ScheduleKind k;
    try {
      k = accel::parse_schedule(item);
    } catch (const Error& e) {
      throw UsageError(std::string("option --schedule: ") + e.what());
    }
    for (auto x : out)
      if (x == k) throw UsageError("option --schedule names '" + item + "' twice");
    out.push_back(k);
  }
  if (out.empty()) throw UsageError("option --schedule expects baseline, scan and/or fused-scan");
  return out;
}

bool is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }


std::string pct(double f) {
  if (std::isnan(f)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100 * f);
  return b;
}

const accel::ScheduleResult* find(const std::vector<accel::ScheduleResult>& rs, accel::ScheduleKind k) {
  for (auto& r : rs)
    if (r.kind == k) return &r;
  return nullptr;
}


// The head of a sweep's JSON document: schema, model, accelerator and DRAM names.
Json sweep_document(const char* schema, const std::string& path, const accel::AccelConfig& cfg) {
  Json j = json_document(schema);
  j["model"] = path;
  j["accel"] = cfg.name;
  j["dram"] = cfg.dram.name;
  return j;
}

std::vector<accel::Pacing> parse_pacings(const std::string& v) {
  if (v == "both") return {accel::Pacing::Compute, accel::Pacing::Dram};
  return {accel::parse_pacing(v)};
}

// "LO:HI", powers of two, LO <= HI; `parse` reads one bound (throws Error); `example` for messages
std::pair<int64_t, int64_t> parse_pow2_range(const std::string& option, const std::string& v, const char* example,
                                             const std::function<int64_t(const std::string&)>& parse);

// One line: the thesis's figures and the measured saving under each pacing evaluated.
std::string thesis_line(const std::vector<std::vector<accel::ScheduleResult>>& by_pacing, const std::string& where) {
  std::string measured;
  for (const auto& rs : by_pacing) {
    const auto* b = find(rs, accel::ScheduleKind::Baseline);
    const auto* f = find(rs, accel::ScheduleKind::FusedScan);
    const bool dram = rs.front().pacing == accel::Pacing::Dram;
    measured += std::string(measured.empty() ? "" : "; ") + (dram ? "DRAM-paced " : "compute-paced ");
    if (b && f)
      measured += pct(energy_saving(b->total.e_dram_pj(), f->total.e_dram_pj())) + " of DRAM energy, " +
                  pct(energy_saving(dram_access_pj(b->total), dram_access_pj(f->total))) + " of DRAM access energy";
    else
      measured += "not measured (needs baseline and fused-scan)";
  }
  return "thesis (Wu & Huang, DATE 2019): fused-scan saves 67% of DRAM energy on MobileNetV2 and 20% on "
         "CP-decomposed ResNet-50 at 64K entries; measured here (fused-scan vs baseline" + where + "): " + measured;
}

void print_layer_table(const accel::ScheduleResult& r) {
  std::printf("\nschedule %s (S = %s entries): %zu layers\n", accel::schedule_name(r.kind),
              entries_label(double(r.buffer_entries)).c_str(), r.layers.size());
  std::printf("%-4s %-36s %-10s %13s %9s %9s %12s %6s %9s %9s %9s %9s %9s %9s %9s %9s %9s  %s\n", "#", "layer",
              "kind", "MACs", "rd_MiB", "wr_MiB", "buf_access", "hit%", "E_rd", "E_wr", "E_actpre", "E_ref", "E_bg",
              "E_dram", "E_buf", "E_mac", "E_total", "tiling");
  auto row = [&](const std::string& idx, const accel::LayerResult& l, const char* kind) {
    const double hit = l.dram.row_hit_rate();
    char hits[16];
    if (std::isnan(hit))
      std::snprintf(hits, sizeof hits, "-");
    else
      std::snprintf(hits, sizeof hits, "%.1f", 100 * hit);
    std::printf("%-4s %-36s %-10s %13lld %9.3f %9.3f %12lld %6s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f  %s%s%s\n",
                idx.c_str(), l.name.c_str(), kind, (long long)l.macs, mib(l.read_bytes), mib(l.write_bytes),
                (long long)l.buffer_accesses, hits, uj(l.dram.e_read_pj), uj(l.dram.e_write_pj),
                uj(l.dram.e_act_pre_pj), uj(l.dram.e_refresh_pj), uj(l.dram.e_background_pj), uj(l.e_dram_pj()),
                uj(l.e_buffer_pj), uj(l.e_mac_pj), uj(l.e_total_pj()), l.tiling.c_str(), l.note.empty() ? "" : "; ",
                l.note.c_str());
  };
  for (size_t i = 0; i < r.layers.size(); ++i) row(std::to_string(i), r.layers[i], accel::layer_kind_name(r.layers[i].kind));
  row("", r.total, "");
}

void print_totals(const std::vector<accel::ScheduleResult>& rs, const accel::AccelConfig& cfg) {
  const bool dram_paced = !rs.empty() && rs.front().pacing == accel::Pacing::Dram;
  std::printf("\n%-35s", dram_paced ? "totals, DRAM-paced (energy in uJ)" : "totals, compute-paced (uJ)");
  for (auto& r : rs) std::printf(" %14s", accel::schedule_name(r.kind));
  std::printf("\n");
  auto line = [&](const char* what, auto get, const char* fmt) {
    std::printf("%-35s", what);
    for (auto& r : rs) std::printf(fmt, get(r.total));
    std::printf("\n");
  };
  using L = const accel::LayerResult&;
  line("MACs", [](L t) { return (long long)t.macs; }, " %14lld");
  line("duration us", [&](L t) { return schedule_duration_us(t, cfg); }, " %14.1f");
  line("compute time us", [&](L t) { return schedule_compute_us(t, cfg); }, " %14.1f");
  line("DRAM read MiB", [](L t) { return mib(t.read_bytes); }, " %14.3f");
  line("DRAM written MiB", [](L t) { return mib(t.write_bytes); }, " %14.3f");
  line("buffer accesses", [](L t) { return (long long)t.buffer_accesses; }, " %14lld");
  line("row-buffer hit rate %", [](L t) { return 100 * t.dram.row_hit_rate(); }, " %14.1f");
  line("DRAM read energy", [](L t) { return uj(t.dram.e_read_pj); }, " %14.2f");
  line("DRAM write energy", [](L t) { return uj(t.dram.e_write_pj); }, " %14.2f");
  line("DRAM activate+precharge energy", [](L t) { return uj(t.dram.e_act_pre_pj); }, " %14.2f");
  line("DRAM refresh energy", [](L t) { return uj(t.dram.e_refresh_pj); }, " %14.2f");
  line("DRAM background energy", [](L t) { return uj(t.dram.e_background_pj); }, " %14.2f");
  line("DRAM energy", [](L t) { return uj(t.e_dram_pj()); }, " %14.2f");
  line("buffer energy", [](L t) { return uj(t.e_buffer_pj); }, " %14.2f");
  line("MAC energy", [](L t) { return uj(t.e_mac_pj); }, " %14.2f");
  line("total energy", [](L t) { return uj(t.e_total_pj()); }, " %14.2f");
  if (const auto* b = find(rs, accel::ScheduleKind::Baseline)) {
    std::printf("%-35s", "DRAM energy saved vs baseline");
    for (auto& r : rs) std::printf(" %14s", pct(energy_saving(b->total.e_dram_pj(), r.total.e_dram_pj())).c_str());
    std::printf("\n%-35s", "DRAM access energy saved");
    for (auto& r : rs) std::printf(" %14s", pct(energy_saving(dram_access_pj(b->total), dram_access_pj(r.total))).c_str());
    std::printf("\n%-35s", "DRAM bytes saved vs baseline");
    for (auto& r : rs)
      std::printf(" %14s", pct(energy_saving(double(b->total.read_bytes + b->total.write_bytes),
                                      double(r.total.read_bytes + r.total.write_bytes)))
                               .c_str());
    std::printf("\n");
  }
}

std::pair<int64_t, int64_t> parse_pow2_range(const std::string& option, const std::string& v, const char* example,
                                             const std::function<int64_t(const std::string&)>& parse) {
  const size_t colon = v.find(':');
  if (colon == std::string::npos)
    throw UsageError("option " + option + " expects LO:HI (e.g. " + example + "), got '" + v + "'");
  int64_t lo = 0, hi = 0;
  try {
    lo = parse(v.substr(0, colon));
    hi = parse(v.substr(colon + 1));
  } catch (const Error& e) {
    throw UsageError("option " + option + " " + v + ": " + e.what());
  }
  if (!is_pow2(lo) || !is_pow2(hi) || lo > hi)
    throw UsageError("option " + option + " expects powers of two LO <= HI (e.g. " + example + "), got '" + v + "'");
  return {lo, hi};
}

// a MAC array size: a whole number in 1 .. 2^30
int64_t parse_macs(const std::string& t) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  LOCUS_CHECK(used == t.size() && !t.empty() && v >= 1 && v <= (1 << 30), "'", t,
              "' is not a MAC array size (a whole number 1..1073741824)");
  return v;
}

}  // namespace

int cmd_energy(int argc, char** argv) {
  auto app = make_command("energy", kEnergyHelp,
                          kEnergyHelpColumns + join(accel::accel_preset_names()) + "; DRAM parts " +
                              join(accel::dram_preset_names()) + ".\n");
  std::string model_arg, dram, schedule_list = "baseline,scan,fused-scan", sweep_arg, svg, format = "table", trace_file,
                         trace_schedule, emit_mapping, mapping_file, pacing_arg = "both", sweep_macs_arg;
  bool summary = false, no_fuse = false;
  std::string tiles_arg = "free";  // --tiles
  BackendOptions accel_opts;  // --accel, --buffer
  SessionOptions so;          // --decompose, --decompose-form
  ModelLookup ml;
  app->add_option("MODEL", model_arg, "a .onnx file, a folder holding one, or builtin:NAME")->required()->type_name("");
  app->add_option("--dram", dram, "DRAM part, overriding the config's")->type_name("PRESET");
  app->add_option("--schedule", schedule_list, "comma-separated schedules (default: baseline,scan,fused-scan)")
      ->type_name("LIST");
  app->add_option("--sweep", sweep_arg,
                  "DRAM energy per schedule for every buffer size LO, 2LO, ..., HI (powers\n"
                  "of two, e.g. 8K:2M) instead of the per-layer report; progress on stderr")
      ->type_name("LO:HI");
  add_choice_option(*app, "--pacing", pacing_arg, {"compute", "dram", "both"},
                    "compute (requests at the MAC array's pace), dram (as fast as the DRAM\n"
                    "serves them: the DRAM-bound bound) or both (default; --sweep: compute)", "P");
  app->add_option("--sweep-macs", sweep_macs_arg,
                  "compute-paced DRAM energy, duration and compute- or DRAM-bound per\n"
                  "schedule for every MAC array size LO, 2LO, ..., HI (powers of two, e.g.\n"
                  "64:8192) at --buffer, instead of the per-layer report")
      ->type_name("LO:HI");
  app->add_option("--svg", svg, "with --sweep: also write an SVG plot of DRAM energy against buffer size")
      ->type_name("FILE");
  add_choice_option(*app, "--format", format, {"table", "csv", "json"},
                    "table (default), csv or json (schema locus-energy/1, with --sweep\nlocus-energy-sweep/1, with --sweep-macs locus-energy-mac-sweep/1)", "F");
  app->add_flag("--summary", summary, "table format: totals only, no per-layer tables");
  app->add_option("--trace", trace_file,
                  "write the DRAM request trace (one line per burst, '0x<address> READ|WRITE\n"
                  "<cycle>', DRAMSim2's .trc format) of one schedule at --buffer, under the\n"
                  "first pacing (compute unless --pacing dram)")
      ->type_name("FILE");
  app->add_option("--trace-schedule", trace_schedule, "the schedule traced (default: fused-scan)")->type_name("S");
  app->add_option("--emit-mapping", emit_mapping,
                  "also write the mapping of every schedule evaluated (per layer the tiles,\n"
                  "row bands, fused plan or layer-by-layer choice, and the DRAM address of\n"
                  "every tensor) to FILE as JSON (schema locus-mapping/1)")
      ->type_name("FILE");
  app->add_option("--mapping", mapping_file,
                  "evaluate the mappings in FILE (from --emit-mapping, possibly edited)\n"
                  "instead of mapping: its schedules are the ones reported; the model,\n"
                  "batch, word size and buffer must be those it was written for, and every\n"
                  "tile, band and address is checked (one-line error otherwise)")
      ->type_name("FILE");
  add_choice_option(*app, "--tiles", tiles_arg, {"fixed", "free"}, kTilesHelp, "T");
  app->add_flag("--no-fuse", no_fuse, "do not fuse inverted-residual blocks (fused-scan then equals scan)");
  std::string input_shape;
  app->add_option("--shape", input_shape, "[NAME=]DIMS like x=1x3x640x640: the shape of input NAME (default: the model's one\ninput; binds symbolic H, W)")
      ->type_name("[NAME=]DIMS");
  add_model_options(*app, ml);
  add_accel_options(*app, accel_opts, /*with_schedule=*/false);
  const DecomposeGroup dg = add_decompose_options(*app, so.pipeline.decompose);
  if (!parse_command(*app, argc, argv)) return 0;
  check_decompose_options(dg);
  const auto schedules = parse_schedules(schedule_list);
  const bool sweep = app->count("--sweep") > 0, sweep_macs = app->count("--sweep-macs") > 0;
  const bool fixed_tiles = parse_tiles_fixed(tiles_arg);
  if (fixed_tiles && !sweep) throw UsageError("option --tiles fixed needs --sweep");
  if (fixed_tiles && format == "json") throw UsageError("option --tiles fixed prints a table or csv, not json");
  if (sweep && sweep_macs) throw UsageError("option --sweep cannot be combined with --sweep-macs");
  if (app->count("--svg") && !sweep) throw UsageError("option --svg needs --sweep");
  if (app->count("--trace") && (sweep || sweep_macs))
    throw UsageError(std::string("option --trace cannot be combined with ") + (sweep ? "--sweep" : "--sweep-macs"));
  if (sweep_macs && app->count("--pacing"))
    throw UsageError("option --sweep-macs evaluates both pacings: it cannot be combined with --pacing");
  if (sweep && pacing_arg == "both" && app->count("--pacing"))
    throw UsageError("option --sweep evaluates one pacing: choose --pacing compute or --pacing dram");
  const std::vector<accel::Pacing> pacings =
      sweep ? parse_pacings(app->count("--pacing") ? pacing_arg : "compute") : parse_pacings(pacing_arg);
  if (app->count("--trace-schedule") && !app->count("--trace")) throw UsageError("option --trace-schedule needs --trace");
  const bool from_mapping = app->count("--mapping") != 0, emit = app->count("--emit-mapping") != 0;
  if ((from_mapping || emit) && (sweep || sweep_macs))
    throw UsageError(std::string("option ") + (from_mapping ? "--mapping" : "--emit-mapping") +
                     " cannot be combined with " + (sweep ? "--sweep" : "--sweep-macs"));
  if (from_mapping && app->count("--schedule"))
    throw UsageError("option --mapping takes its schedules from the file: it cannot be combined with --schedule");
  if (from_mapping && emit) throw UsageError("option --mapping cannot be combined with --emit-mapping");
  int64_t lo = 0, hi = 0;
  if (sweep) std::tie(lo, hi) = parse_pow2_range("--sweep", sweep_arg, "8K:2M", accel::parse_entries);
  if (sweep_macs) std::tie(lo, hi) = parse_pow2_range("--sweep-macs", sweep_macs_arg, "64:8192", parse_macs);
  accel::ScheduleKind trace_kind = accel::ScheduleKind::FusedScan;
  if (app->count("--trace-schedule")) {
    try {
      trace_kind = accel::parse_schedule(trace_schedule);
    } catch (const Error& e) {
      throw UsageError(std::string("option --trace-schedule: ") + e.what());
    }
    bool listed = false;
    for (auto k : schedules) listed |= k == trace_kind;
    if (!listed && !from_mapping) throw UsageError("option --trace-schedule names a schedule not in --schedule");
  }
  const int64_t batch = ml.batch;

  // config before the model, so that a bad preset fails fast
  accel::AccelConfig cfg = accel::load_accel_config(accel_opts.accel_config);
  if (app->count("--dram")) cfg.dram = accel::dram_preset(dram);
  if (app->count("--buffer")) cfg.buffer_entries = accel_opts.accel_buffer_entries;
  if (stop_after_options()) return 0;

  const std::string path = resolve_model(model_arg, ml.model_dir);
  std::string graph_name;
  const accel::Workload wl = energy_workload(path, batch, no_fuse, so.pipeline.decompose, true, &graph_name, input_shape);

  if (sweep) {
    std::vector<int64_t> sizes;
    for (int64_t s = lo; s <= hi; s *= 2) sizes.push_back(s);
    if (fixed_tiles) {
      print_order_sweep(wl, cfg, sizes, pacings.front(), format == "csv", svg,
                        (graph_name.empty() ? path : graph_name) + (so.pipeline.decompose ? " (CP-decomposed)" : "") +
                            (batch > 1 ? ", batch " + std::to_string(batch) : ""));
      return 0;
    }
    // [size][schedule]
    std::vector<std::vector<accel::ScheduleResult>> res;
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::fprintf(stderr, "sweep: S = %s entries (%zu/%zu)\n", entries_label(double(sizes[i])).c_str(), i + 1,
                   sizes.size());
      std::vector<accel::ScheduleResult> row;
      for (auto k : schedules) {
        accel::ScheduleOptions so;
        so.buffer_entries = sizes[i];
        so.pacing = pacings.front();
        row.push_back(accel::run_schedule(wl, k, cfg, so));
        check_energies_finite(row.back(), cfg);
      }
      res.push_back(std::move(row));
    }
    const auto* has_base = find(res[0], accel::ScheduleKind::Baseline);
    if (format == "json") {
      Json j = sweep_document("locus-energy-sweep/1", path, cfg);
      j["word_bits"] = cfg.word_bits;
      j["pacing"] = accel::pacing_name(pacings.front());
      Json& sweep_rows = j["sweep"] = Json::array();
      for (size_t i = 0; i < sizes.size(); ++i) {
        Json scheds = Json::object();
        for (auto& r : res[i]) {
          Json e = {{"dram_energy_uj", finite_or_null(uj(r.total.e_dram_pj()))},
                    {"total_energy_uj", finite_or_null(uj(r.total.e_total_pj()))},
                    {"dram_read_bytes", r.total.read_bytes},
                    {"dram_write_bytes", r.total.write_bytes},
                    {"row_hit_rate", finite_or_null(r.total.dram.row_hit_rate())}};
          if (has_base)
            e["dram_energy_saving"] = finite_or_null(
                energy_saving(find(res[i], accel::ScheduleKind::Baseline)->total.e_dram_pj(), r.total.e_dram_pj()));
          scheds[accel::schedule_name(r.kind)] = std::move(e);
        }
        sweep_rows.push_back({{"buffer_entries", sizes[i]}, {"schedules", std::move(scheds)}});
      }
      std::printf("%s\n", json_text(j).c_str());
    } else {
      const bool csv = format == "csv";
      std::printf(csv ? "buffer_entries" : "%-10s", csv ? "" : "buffer");
      for (auto k : schedules)
        std::printf(csv ? ",%s_dram_uj" : " %16s", csv ? accel::schedule_name(k) : (std::string(accel::schedule_name(k)) + "_uJ").c_str());
      if (has_base)
        for (auto k : schedules)
          if (k != accel::ScheduleKind::Baseline)
            std::printf(csv ? ",%s_saving" : " %18s", (std::string(accel::schedule_name(k)) + (csv ? "" : "_saving")).c_str());
      std::printf("\n");
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (csv)
          std::printf("%lld", (long long)sizes[i]);
        else
          std::printf("%-10s", entries_label(double(sizes[i])).c_str());
        for (auto& r : res[i]) std::printf(csv ? ",%.3f" : " %16.2f", uj(r.total.e_dram_pj()));
        if (has_base) {
          const double b = find(res[i], accel::ScheduleKind::Baseline)->total.e_dram_pj();
          for (auto& r : res[i])
            if (r.kind != accel::ScheduleKind::Baseline) {
              if (csv)
                std::printf(",%.4f", energy_saving(b, r.total.e_dram_pj()));
              else
                std::printf(" %18s", pct(energy_saving(b, r.total.e_dram_pj())).c_str());
            }
        }
        std::printf("\n");
      }
    }
    if (!svg.empty()) {
      LinePlot p;
      p.title = "Projected DRAM energy per inference: " + graph_name + " (" + cfg.dram.name + ")";
      if (graph_name.empty()) p.title = "Projected DRAM energy per inference (" + cfg.dram.name + ")";
      p.x_label = "on-chip buffer (entries of " + std::to_string(cfg.word_bits) + " bits)";
      p.y_label = "DRAM energy (uJ)";
      p.x_tick = entries_label;
      for (size_t k = 0; k < schedules.size(); ++k) {
        PlotSeries s;
        s.label = accel::schedule_name(schedules[k]);
        for (size_t i = 0; i < sizes.size(); ++i) s.points.push_back({double(sizes[i]), uj(res[i][k].total.e_dram_pj())});
        p.series.push_back(std::move(s));
      }
      std::ofstream f(svg);
      LOCUS_CHECK(f.good(), "cannot write '", svg, "'");
      f << render_svg(p);
      LOCUS_CHECK(f.good(), "cannot write '", svg, "'");
    }
    return 0;
  }

  if (sweep_macs) {
    // the mappings do not depend on the MAC array: map once, evaluate per size (the DRAM-paced
    // figures do not depend on it either)
    std::vector<accel::Mapping> ms;
    std::vector<accel::ScheduleResult> dram_paced;
    for (auto k : schedules) {
      ms.push_back(accel::map_workload(wl, k, cfg));
      accel::EvaluateOptions eo;
      eo.pacing = accel::Pacing::Dram;
      dram_paced.push_back(accel::evaluate_mapping(wl, ms.back(), cfg, eo));
      check_energies_finite(dram_paced.back(), cfg);
    }
    std::vector<int64_t> sizes;
    for (int64_t v = lo; v <= hi; v *= 2) sizes.push_back(v);
    std::vector<std::vector<accel::ScheduleResult>> res;  // [size][schedule], compute-paced
    std::vector<accel::AccelConfig> cfgs;
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::fprintf(stderr, "sweep: MAC array %lld (%zu/%zu)\n", (long long)sizes[i], i + 1, sizes.size());
      accel::AccelConfig c = cfg;
      c.mac_array = int(sizes[i]);
      std::vector<accel::ScheduleResult> row;
      for (const accel::Mapping& m : ms) {
        row.push_back(accel::evaluate_mapping(wl, m, c, {}));
        check_energies_finite(row.back(), c);
      }
      res.push_back(std::move(row));
      cfgs.push_back(c);
    }
    // compute-bound: the compute time exceeds the DRAM-paced duration
    auto bound = [&](size_t i, size_t k) {
      return schedule_compute_us(res[i][k].total, cfgs[i]) > schedule_duration_us(dram_paced[k].total, cfg) ? "compute" : "dram";
    };
    const auto* base_dp = find(dram_paced, accel::ScheduleKind::Baseline);
    if (format == "json") {
      Json j = sweep_document("locus-energy-mac-sweep/1", path, cfg);
      j["buffer_entries"] = cfg.buffer_entries;
      j["clock_mhz"] = finite_or_null(cfg.clock_mhz);
      Json dp = Json::object();
      for (auto& r : dram_paced) {
        Json e = {{"dram_energy_uj", finite_or_null(uj(r.total.e_dram_pj()))},
                  {"duration_us", finite_or_null(schedule_duration_us(r.total, cfg))}};
        if (base_dp) e["dram_energy_saving"] = finite_or_null(energy_saving(base_dp->total.e_dram_pj(), r.total.e_dram_pj()));
        dp[accel::schedule_name(r.kind)] = std::move(e);
      }
      j["dram_paced"] = std::move(dp);
      Json& rows = j["sweep"] = Json::array();
      for (size_t i = 0; i < sizes.size(); ++i) {
        Json scheds = Json::object();
        const auto* b = find(res[i], accel::ScheduleKind::Baseline);
        for (size_t k = 0; k < res[i].size(); ++k) {
          const auto& r = res[i][k];
          Json e = {{"dram_energy_uj", finite_or_null(uj(r.total.e_dram_pj()))},
                    {"duration_us", finite_or_null(schedule_duration_us(r.total, cfgs[i]))},
                    {"compute_us", finite_or_null(schedule_compute_us(r.total, cfgs[i]))},
                    {"bound", bound(i, k)}};
          if (b) e["dram_energy_saving"] = finite_or_null(energy_saving(b->total.e_dram_pj(), r.total.e_dram_pj()));
          scheds[accel::schedule_name(r.kind)] = std::move(e);
        }
        rows.push_back({{"mac_array", sizes[i]}, {"schedules", std::move(scheds)}});
      }
      std::printf("%s\n", json_text(j).c_str());
      return 0;
    }
    const bool csv = format == "csv";
    if (!csv) {
      std::printf("DRAM-paced (independent of the MAC array):");
      for (size_t k = 0; k < dram_paced.size(); ++k) {
        const auto& r = dram_paced[k];
        std::printf("%s %s %.2f uJ in %.1f us%s", k ? ";" : "", accel::schedule_name(r.kind), uj(r.total.e_dram_pj()),
                    schedule_duration_us(r.total, cfg), base_dp && r.kind != accel::ScheduleKind::Baseline
                        ? (" (saving " + pct(energy_saving(base_dp->total.e_dram_pj(), r.total.e_dram_pj())) + ")").c_str()
                        : "");
      }
      std::printf("\ncompute-paced:\n");
    }
    std::printf(csv ? "mac_array" : "%-9s", csv ? "" : "macs");
    for (auto k : schedules) {
      const std::string n = accel::schedule_name(k);
      if (csv)
        std::printf(",%s_dram_uj,%s_us,%s_compute_us,%s_bound", n.c_str(), n.c_str(), n.c_str(), n.c_str());
      else
        std::printf(" %16s %12s %10s", (n + "_uJ").c_str(), (n + "_us").c_str(), "bound");
    }
    const bool has_fused_saving = find(res[0], accel::ScheduleKind::Baseline) && find(res[0], accel::ScheduleKind::FusedScan);
    if (has_fused_saving) std::printf(csv ? ",fused-scan_saving" : " %18s", csv ? "" : "fused-scan_saving");
    std::printf("\n");
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::printf(csv ? "%lld" : "%-9lld", (long long)sizes[i]);
      for (size_t k = 0; k < res[i].size(); ++k) {
        const auto& t = res[i][k].total;
        if (csv)
          std::printf(",%.3f,%.3f,%.3f,%s", uj(t.e_dram_pj()), schedule_duration_us(t, cfgs[i]), schedule_compute_us(t, cfgs[i]), bound(i, k));
        else
          std::printf(" %16.2f %12.1f %10s", uj(t.e_dram_pj()), schedule_duration_us(t, cfgs[i]), bound(i, k));
      }
      if (has_fused_saving) {
        const double f = energy_saving(find(res[i], accel::ScheduleKind::Baseline)->total.e_dram_pj(),
                                find(res[i], accel::ScheduleKind::FusedScan)->total.e_dram_pj());
        if (csv)
          std::printf(",%.4f", f);
        else
          std::printf(" %18s", pct(f).c_str());
      }
      std::printf("\n");
    }
    return 0;
  }

  std::ofstream trace;
  if (app->count("--trace")) {
    trace.open(trace_file);
    LOCUS_CHECK(trace.good(), "cannot write the trace to '", trace_file, "'");
  }
  std::vector<accel::Mapping> mappings;
  if (from_mapping) {
    mappings = accel::read_mapping_file(mapping_file, wl, cfg);
    for (const accel::Mapping& m : mappings)
      LOCUS_CHECK(m.buffer_entries == cfg.buffer_entries, "mapping file '", mapping_file, "': schedule ",
                  accel::schedule_name(m.kind), " was mapped for a buffer of ", m.buffer_entries,
                  " entries, the accelerator has ", cfg.buffer_entries, " (--buffer)");
    if (app->count("--trace-schedule")) {
      bool listed = false;
      for (const accel::Mapping& m : mappings) listed |= m.kind == trace_kind;
      LOCUS_CHECK(listed, "option --trace-schedule names a schedule not in the mapping file '", mapping_file, "'");
    }
  } else {
    for (auto k : schedules) mappings.push_back(accel::map_workload(wl, k, cfg));
  }
  if (emit) {
    std::ofstream f(emit_mapping);
    LOCUS_CHECK(f.good(), "cannot write the mapping to '", emit_mapping, "'");
    f << accel::mappings_to_json(mappings, wl, cfg, path);
    f.flush();
    LOCUS_CHECK(f.good(), "cannot write the mapping to '", emit_mapping, "'");
  }
  // [pacing][schedule]; the trace is written under the first pacing
  std::vector<std::vector<accel::ScheduleResult>> by_pacing;
  for (size_t p = 0; p < pacings.size(); ++p) {
    std::vector<accel::ScheduleResult> rs;
    for (const accel::Mapping& m : mappings) {
      accel::EvaluateOptions eo;
      eo.pacing = pacings[p];
      if (p == 0 && trace.is_open() && m.kind == trace_kind) eo.trace = &trace;
      rs.push_back(accel::evaluate_mapping(wl, m, cfg, eo));
      check_energies_finite(rs.back(), cfg);
    }
    by_pacing.push_back(std::move(rs));
  }
  if (trace.is_open()) {
    trace.flush();
    LOCUS_CHECK(trace.good(), "cannot write the trace to '", trace_file, "'");
  }
  const std::string where = ", S = " + entries_label(double(cfg.buffer_entries)) + " entries";

  if (format == "json") {
    std::printf("%s\n", json_text(energy_json(path, cfg, by_pacing)).c_str());
    return 0;
  }
  if (format == "csv") {
    std::printf("schedule,buffer_entries,index,layer,op,kind,macs,dram_read_bytes,dram_write_bytes,buffer_accesses,"
                "row_hit_rate,e_dram_read_uj,e_dram_write_uj,e_dram_act_pre_uj,e_dram_refresh_uj,e_dram_background_uj,"
                "e_dram_uj,e_buffer_uj,e_mac_uj,e_total_uj,tiling,pacing\n");
    for (const auto& prs : by_pacing)
    for (auto& r : prs) {
      auto row = [&](const std::string& idx, const accel::LayerResult& l, const char* kind) {
        std::printf("%s,%lld,%s,%s,%s,%s,%lld,%lld,%lld,%lld,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,\"%s\",%s\n",
                    accel::schedule_name(r.kind), (long long)r.buffer_entries, idx.c_str(), l.name.c_str(),
                    l.op.c_str(), kind, (long long)l.macs, (long long)l.read_bytes, (long long)l.write_bytes,
                    (long long)l.buffer_accesses, l.dram.row_hit_rate(), uj(l.dram.e_read_pj), uj(l.dram.e_write_pj),
                    uj(l.dram.e_act_pre_pj), uj(l.dram.e_refresh_pj), uj(l.dram.e_background_pj), uj(l.e_dram_pj()),
                    uj(l.e_buffer_pj), uj(l.e_mac_pj), uj(l.e_total_pj()), l.tiling.c_str(), accel::pacing_name(r.pacing));
      };
      for (size_t i = 0; i < r.layers.size(); ++i)
        row(std::to_string(i), r.layers[i], accel::layer_kind_name(r.layers[i].kind));
      row("total", r.total, "");
    }
    return 0;
  }
  std::printf("model      %s\n", path.c_str());
  std::printf("accel      %s: S = %s entries of %d bits, MAC array %d at %g MHz, %g pJ/MAC, %g pJ/buffer access\n",
              cfg.name.c_str(), entries_label(double(cfg.buffer_entries)).c_str(), cfg.word_bits, cfg.mac_array,
              cfg.clock_mhz, cfg.e_mac_pj, cfg.e_buffer_pj);
  std::printf("dram       %s (%s)\n", cfg.dram.name.c_str(), cfg.dram.source.c_str());
  for (const auto& prs : by_pacing) {
    if (!summary) {
      std::printf("\n== %s ==\n", prs.front().pacing == accel::Pacing::Compute
                                       ? "compute-paced (requests at the MAC array's pace)"
                                       : "DRAM-paced (requests as fast as the DRAM serves them)");
      for (auto& r : prs) print_layer_table(r);
    }
    print_totals(prs, cfg);
  }
  std::printf("\n%s\n", thesis_line(by_pacing, where).c_str());
  return 0;
}

}  // namespace locus::cli
