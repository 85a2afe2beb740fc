// The fixed-tile order comparison report (order_report.h): rows, energies, table and CSV.
#include "cli/order_report.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <fstream>
#include <tuple>

#include "accel/mapper.h"
#include "cli/commands.h"
#include "cli/svg_plot.h"
#include "graph/error.h"

namespace locus::cli {

const char* const kTilesHelp =
    "with --sweep (energy) or --plans (info): fixed compares row, column and Scan\n"
    "order under the same fixed tiles (os-square, full-k, thesis) and with each\n"
    "order's own best tiles (free), per distinct 1x1 conv and in total\n"
    "(docs/scan-order.md); free (default): the usual report";

bool parse_tiles_fixed(const std::string& v) {
  if (v == "fixed") return true;
  if (v == "free") return false;
  throw UsageError("option --tiles expects fixed or free, got '" + v + "'");
}

namespace {

std::string size_label(int64_t e) {
  if (e >= (1 << 20) && e % (1 << 20) == 0) return std::to_string(e >> 20) + "M";
  if (e >= 1024 && e % 1024 == 0) return std::to_string(e >> 10) + "K";
  return std::to_string(e);
}

std::string pct(double f) {
  if (std::isnan(f)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100 * f);
  return b;
}

double saving(double base, double x) { return base > 0 ? 1.0 - x / base : std::nan(""); }

// The DRAM energy of layer `l` of `wl` run with plan `p` alone (its own DRAM model, as the evaluator
// prices every layer), and the traffic the replay counted.
double layer_dram_pj(const accel::Workload& wl, const accel::Layer& l, const schedule::Plan& p,
                     const accel::AccelConfig& cfg, accel::Pacing pacing, int64_t* entries) {
  accel::Workload sub;
  sub.layers = {l};
  sub.entries = wl.entries;
  sub.alias = wl.alias;
  sub.batch = wl.batch;
  accel::MapOptions mo;
  mo.buffer_entries = p.S;
  accel::Mapping mp = accel::map_workload(sub, accel::ScheduleKind::Baseline, cfg, mo);
  mp.layers.at(0).gemm = p;
  accel::EvaluateOptions eo;
  eo.pacing = pacing;
  const accel::ScheduleResult r = accel::evaluate_mapping(sub, mp, cfg, eo);
  *entries = r.layers.at(0).read_entries + r.layers.at(0).write_entries;
  return r.layers.at(0).e_dram_pj();
}

void check_sim(const DistinctGemm& d, const schedule::OrderComparison& c) {
  for (auto o : {schedule::CompareOrder::Row, schedule::CompareOrder::Col, schedule::CompareOrder::Scan}) {
    const schedule::OrderResult& r = c.get(o);
    LOCUS_CHECK(r.sim_agrees(), "order comparison: layer '", d.name, "' S=", c.S, " tiles ", c.tiles, " order ",
                schedule::order_name(r.plan.order), ": the buffer simulator counts ", r.sim.total(),
                " entries (violations ", r.sim.violations, "), the model ", r.plan.traffic.total);
  }
}

}  // namespace

std::vector<DistinctGemm> distinct_pointwise(const accel::Workload& wl, int elem_bytes) {
  std::vector<DistinctGemm> out;
  std::map<std::tuple<int64_t, int64_t, int64_t>, size_t> seen;
  auto add = [&](const accel::Layer& l) {
    if (l.kind != accel::LayerKind::Pointwise) return;
    auto key = std::make_tuple(l.M, l.K, l.N);
    auto it = seen.find(key);
    if (it != seen.end()) {
      ++out[it->second].count;
      return;
    }
    seen[key] = out.size();
    DistinctGemm d;
    // a fused group's stage "first..last/expand": the first node and the stage
    const size_t dots = l.name.find(".."), slash = l.name.rfind('/');
    d.name = dots != std::string::npos && slash != std::string::npos && slash > dots
                 ? l.name.substr(0, dots) + l.name.substr(slash)
                 : l.name;
    d.shape = {l.M, l.K, l.N, elem_bytes};
    d.count = 1;
    d.layer = l;
    out.push_back(std::move(d));
  };
  for (const accel::Layer& l : wl.layers) {
    add(l);
    for (const accel::Layer& s : l.stages) add(s);
  }
  return out;
}

std::vector<OrderRow> order_table(const std::vector<DistinctGemm>& layers, const OrderTableOptions& o) {
  std::vector<OrderRow> rows;
  for (size_t si = 0; si < o.sizes.size(); ++si) {
    const int64_t S = o.sizes[si];
    if (o.progress)
      std::fprintf(stderr, "order comparison: S = %s entries (%zu/%zu)\n", size_label(S).c_str(), si + 1,
                   o.sizes.size());
    for (const std::string& tiles : o.tiles) {
      for (size_t i = 0; i < layers.size(); ++i) {
        const DistinctGemm& d = layers[i];
        OrderRow r;
        r.layer = i;
        r.S = S;
        r.tiles = tiles;
        if (tiles == "free") {
          r.cmp = schedule::compare_free(d.shape, S, o.free_opts);
        } else {
          bool known = false;
          for (schedule::FixedTiles f : schedule::all_fixed_tiles()) {
            if (tiles != schedule::fixed_tiles_name(f)) continue;
            known = true;
            if (auto t = schedule::fixed_tile_size(d.shape, S, f)) r.cmp = schedule::compare_fixed(d.shape, S, *t, tiles);
          }
          LOCUS_CHECK(known, "order comparison: unknown tile choice '", tiles, "'");
        }
        if (r.cmp) {
          check_sim(d, *r.cmp);
          if (o.wl && o.cfg && d.layer) {
            int64_t e1 = 0, e2 = 0;
            r.e_conventional_pj = layer_dram_pj(*o.wl, *d.layer, r.cmp->best_conventional().plan, *o.cfg, o.pacing, &e1);
            r.e_scan_pj = layer_dram_pj(*o.wl, *d.layer, r.cmp->scan.plan, *o.cfg, o.pacing, &e2);
            LOCUS_CHECK(e1 == r.cmp->best_conventional().plan.traffic.total && e2 == r.cmp->scan.plan.traffic.total,
                        "order comparison: layer '", d.name, "' S=", S, " tiles ", tiles,
                        ": the accelerator replay moves ", e1, " / ", e2, " entries, the model ",
                        r.cmp->best_conventional().plan.traffic.total, " / ", r.cmp->scan.plan.traffic.total);
          }
        }
        rows.push_back(std::move(r));
      }
    }
  }
  return rows;
}

void print_order_table(const std::vector<DistinctGemm>& layers, const std::vector<OrderRow>& rows, bool csv,
                       bool with_energy) {
  if (csv) {
    std::printf("buffer_entries,tiles,layer,count,M,K,N,m,n,k,row,col,scan,scan_order,best_conventional,"
                "scan_saving,sim_agrees%s\n",
                with_energy ? ",e_conventional_uj,e_scan_uj,energy_saving" : "");
  }
  size_t i = 0;
  while (i < rows.size()) {
    // one block: the rows of one (S, tiles)
    size_t j = i;
    while (j < rows.size() && rows[j].S == rows[i].S && rows[j].tiles == rows[i].tiles) ++j;
    const int64_t S = rows[i].S;
    const std::string& tiles = rows[i].tiles;
    if (!csv) {
      std::printf("\nS = %s entries, tiles %s%s\n", size_label(S).c_str(), tiles.c_str(),
                  tiles == "free" ? " (each order its own best tiles)" : " (the same tiles in every order)");
      std::printf("%-30s %3s %7s %5s %5s %6s %5s %5s %12s %12s %12s %-8s %7s", "layer", "x", "M", "K", "N", "m", "n",
                  "k", "row", "col", "scan", "scan_ord", "saving");
      if (with_energy) std::printf(" %10s %10s %8s", "E_conv_uJ", "E_scan_uJ", "E_saving");
      std::printf(" %s\n", "sim");
    }
    double tot_row = 0, tot_col = 0, tot_conv = 0, tot_scan = 0, e_conv = 0, e_scan = 0;
    int64_t covered = 0, all = 0;
    for (size_t q = i; q < j; ++q) {
      const OrderRow& r = rows[q];
      const DistinctGemm& d = layers[r.layer];
      all += d.count;
      const schedule::GemmShape& g = d.shape;
      if (!r.cmp) {
        if (csv)
          std::printf("%lld,%s,%s,%lld,%lld,%lld,%lld,,,,,,,,,,%s\n", (long long)S, tiles.c_str(), d.name.c_str(),
                      (long long)d.count, (long long)g.M, (long long)g.K, (long long)g.N, with_energy ? ",,," : "");
        else
          std::printf("%-30s %3lld %7lld %5lld %5lld %6s %5s %5s %12s %12s %12s %-8s %7s%s %s\n", d.name.c_str(),
                      (long long)d.count, (long long)g.M, (long long)g.K, (long long)g.N, "-", "-", "-", "-", "-", "-",
                      "-", "-", with_energy ? "          -          -        -" : "", "no tile fits");
        continue;
      }
      const schedule::OrderComparison& c = *r.cmp;
      const double cnt = double(d.count);
      covered += d.count;
      tot_row += cnt * double(c.row.plan.traffic.total);
      tot_col += cnt * double(c.col.plan.traffic.total);
      tot_conv += cnt * double(c.best_conventional().plan.traffic.total);
      tot_scan += cnt * double(c.scan.plan.traffic.total);
      e_conv += cnt * r.e_conventional_pj;
      e_scan += cnt * r.e_scan_pj;
      const schedule::Plan& sp = c.scan.plan;
      // free tiles differ per order: show Scan's
      if (csv) {
        std::printf("%lld,%s,%s,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%s,%s,%.5f,%d", (long long)S,
                    tiles.c_str(), d.name.c_str(), (long long)d.count, (long long)g.M, (long long)g.K, (long long)g.N,
                    (long long)sp.m, (long long)sp.n, (long long)sp.k, (long long)c.row.plan.traffic.total,
                    (long long)c.col.plan.traffic.total, (long long)sp.traffic.total, schedule::order_name(sp.order),
                    &c.best_conventional() == &c.row ? "row" : "col", c.scan_saving(), c.sim_agrees() ? 1 : 0);
        if (with_energy)
          std::printf(",%.4f,%.4f,%.5f", r.e_conventional_pj * 1e-6, r.e_scan_pj * 1e-6,
                      saving(r.e_conventional_pj, r.e_scan_pj));
        std::printf("\n");
      } else {
        std::printf("%-30s %3lld %7lld %5lld %5lld %6lld %5lld %5lld %12lld %12lld %12lld %-8s %7s", d.name.c_str(),
                    (long long)d.count, (long long)g.M, (long long)g.K, (long long)g.N, (long long)sp.m,
                    (long long)sp.n, (long long)sp.k, (long long)c.row.plan.traffic.total,
                    (long long)c.col.plan.traffic.total, (long long)sp.traffic.total, schedule::order_name(sp.order),
                    pct(c.scan_saving()).c_str());
        if (with_energy)
          std::printf(" %10.2f %10.2f %8s", r.e_conventional_pj * 1e-6, r.e_scan_pj * 1e-6,
                      pct(saving(r.e_conventional_pj, r.e_scan_pj)).c_str());
        std::printf(" %s\n", c.sim_agrees() ? "ok" : "DIFFERS");
      }
    }
    const std::string cover = covered == all ? "" : " (" + std::to_string(covered) + " of " + std::to_string(all) +
                                                        " layers: the others have no such tile)";
    if (csv) {
      std::printf("%lld,%s,total,%lld,,,,,,,%.0f,%.0f,%.0f,,,%.5f,1", (long long)S, tiles.c_str(), (long long)covered,
                  tot_row, tot_col, tot_scan, saving(tot_conv, tot_scan));
      if (with_energy) std::printf(",%.4f,%.4f,%.5f", e_conv * 1e-6, e_scan * 1e-6, saving(e_conv, e_scan));
      std::printf("\n");
    } else {
      std::printf("total (layers x count%s): row %.0f, col %.0f, best conventional per layer %.0f, scan %.0f entries: "
                  "Scan saves %s of the traffic",
                  cover.c_str(), tot_row, tot_col, tot_conv, tot_scan, pct(saving(tot_conv, tot_scan)).c_str());
      if (with_energy)
        std::printf("; DRAM energy %.2f -> %.2f uJ (%s)", e_conv * 1e-6, e_scan * 1e-6, pct(saving(e_conv, e_scan)).c_str());
      std::printf("\n");
    }
    i = j;
  }
}

void print_order_sweep(const accel::Workload& wl, const accel::AccelConfig& cfg, const std::vector<int64_t>& sizes,
                       accel::Pacing pacing, bool csv, const std::string& svg, const std::string& title) {
  const std::vector<DistinctGemm> layers = distinct_pointwise(wl, cfg.word_bytes());
  LOCUS_CHECK(!layers.empty(), "--tiles fixed: the model has no 1x1 convolution to compare orders on");
  OrderTableOptions o;
  o.sizes = sizes;
  o.free_opts = accel::gemm_planner_options(accel::ScheduleKind::Scan,
                                            std::max<int64_t>(1, cfg.dram.burst_bytes() / cfg.word_bytes()));
  o.wl = &wl;
  o.cfg = &cfg;
  o.pacing = pacing;
  o.progress = true;
  const std::vector<OrderRow> rows = order_table(layers, o);
  if (!csv) {
    int64_t n = 0;
    for (const DistinctGemm& d : layers) n += d.count;
    std::printf("order comparison: %zu distinct 1x1 convs (%lld layers), batch %lld, entries of %d bits, DRAM %s, "
                "%s-paced; traffic in entries, saving = 1 - scan / best conventional (row or col)\n",
                layers.size(), (long long)n, (long long)wl.batch, cfg.word_bits, cfg.dram.name.c_str(),
                accel::pacing_name(pacing));
  }
  print_order_table(layers, rows, csv, true);
  if (svg.empty()) return;
  LinePlot p;
  p.title = "Scan saving over the best conventional order: " + title;
  p.x_label = "on-chip buffer (entries of " + std::to_string(cfg.word_bits) + " bits)";
  p.y_label = "DRAM traffic saved by Scan (%)";
  p.x_tick = [](double v) { return size_label(int64_t(v)); };
  for (const std::string& tiles : o.tiles) {
    PlotSeries s;
    s.label = tiles == "free" ? "free tiles" : "fixed " + tiles;
    for (int64_t S : sizes) {
      double conv = 0, scan = 0;
      for (const OrderRow& r : rows)
        if (r.S == S && r.tiles == tiles && r.cmp) {
          conv += double(layers[r.layer].count) * double(r.cmp->best_conventional().plan.traffic.total);
          scan += double(layers[r.layer].count) * double(r.cmp->scan.plan.traffic.total);
        }
      if (conv > 0) s.points.push_back({double(S), 100 * saving(conv, scan)});
    }
    p.series.push_back(std::move(s));
  }
  std::ofstream f(svg);
  LOCUS_CHECK(f.good(), "cannot write '", svg, "'");
  f << render_svg(p);
  LOCUS_CHECK(f.good(), "cannot write '", svg, "'");
}

}  // namespace locus::cli
