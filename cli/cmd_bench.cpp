// `locus bench`: latency, throughput, activation memory and hardware counters of one model under
// one or several backends, side by side; --json for machine-readable results; --profile for a
// per-node time table.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include "cli/callgrind_runner.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/json.h"
#include "graph/cost.h"
#include "graph/passes/pipeline.h"
#include "kernels/native/fp32_peak.h"
#include "kernels/native/int8_peak.h"
#include "runtime/machine_info.h"
#include "runtime/perf_counters.h"

// The inference that --cachegrind measures: valgrind collects only inside this function.
extern "C" __attribute__((noinline)) void locus_measured_inference(locus::Session* s,
                                                                    const std::map<std::string, locus::Tensor>* in,
                                                                    std::vector<locus::Tensor>* out) {
  *out = s->run(*in);
}

namespace locus::cli {

static const char* kBenchHelp =
    "usage: locus bench MODEL [options]\n"
    "\n"
    "Runs MODEL with deterministic pseudo-random inputs: warm-up runs, then timed runs, for each\n"
    "backend. Prints median, min and p90 latency, images/s, the planned activation memory and,\n"
    "where the machine exposes them, hardware counters per inference (cycles, instructions, L1D\n"
    "read misses, LLC references and misses). On machines without counters it says so; use\n"
    "--cachegrind for simulated cache misses instead. Timings are wall-clock per inference.\n"
    "A model with symbolic input dims (e.g. PP-OCR's [N,3,H,W]) is compiled for --shape.\n"
;

static const char* kBenchTilingNote =
    "The table and the JSON (results[].pointwise_tiling) give, for the native backend, the L2 size\n"
    "the 1x1 convs were tiled for and where it came from (--l2, LOCUS_L2 or the OS), the tile order\n"
    "family and how many 1x1 convs got a plan; 'locus info MODEL --plans' lists the plans.\n";

namespace {

struct BackendResult {
  std::string backend, describe;
  std::vector<double> ms;  // per timed run
  int64_t activation_bytes = 0;
  std::vector<CounterReading> counters;  // per inference
  std::vector<NodeTiming> profile;       // median per node (robust to other processes' bursts)
  std::map<std::string, double> cachegrind;
  std::optional<PointwiseTilingSettings> tiling;  // native backend only
  int64_t planned_convs = -1, pointwise_convs = -1;  // 1x1 convs with a plan / all (timing mode)
  int64_t macs = -1, int8_macs = 0;  // per inference (the optimised graph; int8: QLinear* ops)
};

// The share of a session's MACs done by int8 ops (QLinearConv, QLinearMatMul and the fused int8
// blocks), whose peak is the int8 one.
int64_t int8_macs(const Graph& g) {
  int64_t m = 0;
  for (const Node& n : g.nodes)
    if (n.op.find("QLinear") != std::string::npos) m += node_macs(g, n);
  return m;
}

// --peak: this machine's measured peak on the run's threads, once per kind (fp32 GFLOP/s, int8
// GOP/s; kernels/native/*_peak.h), and what share of it a backend's median reaches.
struct PeakFigures {
  std::optional<double> fp32, int8;
  double of(const BackendResult& r, int threads) {
    const bool q = 2 * r.int8_macs > r.macs;  // mostly int8: compare with the int8 peak
    std::optional<double>& p = q ? int8 : fp32;
    if (!p) p = q ? kernels::measured_int8_peak_gops(threads) : kernels::measured_fp32_peak_gflops(threads);
    return *p;
  }
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return NAN;
  double idx = p * double(v.size() - 1);
  size_t lo = size_t(std::floor(idx)), hi = size_t(std::ceil(idx));
  return v[lo] + (v[hi] - v[lo]) * (idx - double(lo));
}

std::map<std::string, Tensor> make_inputs(const Session& s) {
  std::map<std::string, Tensor> in;
  std::mt19937 rng(1);
  for (auto& name : s.input_names()) {
    ValueInfo vi = s.input_info(name);
    LOCUS_CHECK(vi.dtype == DType::F32, "bench: input '", name, "' is ", dtype_name(vi.dtype), "; only float32 inputs are generated");
    Tensor t(DType::F32, vi.shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(int32_t(rng() >> 8) - (1 << 23)) / float(1 << 23);
    in[name] = std::move(t);
  }
  return in;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> r;
  std::istringstream is(s);
  for (std::string p; std::getline(is, p, sep);)
    if (!p.empty()) r.push_back(p);
  return r;
}

std::string fmt(std::optional<double> v, const char* f = "%.0f") {
  if (!v) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, f, *v);
  return b;
}

}  // namespace


// The validated --decompose policy as the argument for the child process of --cachegrind.
static std::string decompose_policy_arg(const CpDecomposeOptions& d) {
  const char* key = "ratio";
  switch (d.policy.kind) {
    case RankPolicy::Kind::Fixed: key = "rank"; break;
    case RankPolicy::Kind::Ratio: key = "ratio"; break;
    case RankPolicy::Kind::Error: key = "error"; break;
    case RankPolicy::Kind::MacBudget: key = "macs"; break;
  }
  char v[64];
  std::snprintf(v, sizeof v, "%s=%.17g", key, d.policy.value);
  return v;
}

// --shape [NAME=]DIMS (DIMS like 1x3x640x640): the input's shape; without NAME, the model's only
// input. Bad text is a usage error naming the option.
static void apply_shape_option(const std::string& spec, const std::string& model, int64_t batch, SessionOptions& o) {
  auto [name, shape] = parse_shape_spec(spec);
  if (name.empty()) {
    const Graph g = load_model_graph(model, batch);
    if (g.inputs.size() != 1)
      throw UsageError("--shape without NAME= needs a model with one input; this one has " + std::to_string(g.inputs.size()));
    name = g.inputs[0];
  }
  o.input_shapes[name] = shape;
}

int cmd_bench(int argc, char** argv) {
  auto app = make_command("bench", kBenchHelp, kBenchTilingNote);
  std::string model_arg, backend_list = "native", json_file;
  int64_t warmup = 5, runs = 50;
  int ll_level = 0;
  bool profile = false, cachegrind = false, single_inference = false, peak = false;
  SessionOptions o;
  ModelLookup ml;
  app->add_option("MODEL", model_arg, "a .onnx file, a folder holding one, or builtin:NAME")->required()->type_name("");
  app->add_option("--backend", backend_list,
                  "comma-separated: native (default), native-unfused (no block fusion), onednn,\n"
                  "onednn-dwfused, reference, accel")
      ->type_name("LIST");
  add_int_option(*app, "--threads", o.threads, 1, 1024, "OpenMP threads (default: all cores)");
  add_int_option(*app, "--warmup", warmup, 0, 100000, "untimed runs first (default 5)");
  add_int_option(*app, "--runs", runs, 1, 1000000, "timed runs (default 50)");
  app->add_flag("--profile", profile, "also time every node (separate runs) and list each node's median time and share");
  app->add_flag("--peak", peak,
                "also measure this machine's peak on --threads threads (fp32 FMA, or int8 VNNI/AVX2 dot\n"
                "products for a mostly-int8 model; about 0.3 s) and report GFLOP/s and % of it per backend");
  app->add_flag("--cachegrind", cachegrind,
                "instead of timing, run one inference per backend (after one warm-up)\n"
                "under valgrind's cache simulator with the host's D1/LL geometry, one\n"
                "thread, and report D1 and LL misses of that inference only");
  add_int_option(*app, "--ll-level", ll_level, 2, 4,
                 "with --cachegrind: simulate cache level N (2 or 3) as the last level\n"
                 "(default: the host's last level; 2 shows what misses an L2-sized buffer)");
  app->add_option("--json", json_file, "write the results as JSON (schema locus-bench/1)")->type_name("FILE");
  std::vector<std::string> shape_specs;
  app->add_option("--shape", shape_specs,
                  "[NAME=]DIMS, e.g. x=1x3x640x640: the shape of an input whose model shape has\n"
                  "symbolic dims (repeatable; NAME may be left out for a one-input model)")
      ->type_name("SHAPE");
  app->add_flag("--single-inference", single_inference, "")->group("");  // internal: the --cachegrind child
  add_model_options(*app, ml);
  add_tiling_options(*app, o);
  add_memory_options(*app, o);  // bad values fail before any work
  const DecomposeGroup dg = add_decompose_options(*app, o.pipeline.decompose);
  add_accel_options(*app, o.backend);
  if (!parse_command(*app, argc, argv)) return 0;
  check_decompose_options(dg);
  if (peak && cachegrind) throw UsageError("bench: --peak needs timed runs; it cannot be combined with --cachegrind");
  o.batch = ml.batch;
  auto backends = split(backend_list, ',');
  if (backends.empty()) throw UsageError("bench: --backend needs at least one name");
  for (auto& b : backends) make_backend(b);  // unknown names fail before any work
  resolve_tiling_once(o, backends);  // so does a bad LOCUS_L2 / LOCUS_TILE_ORDER; every session uses it
  if (stop_after_options()) return 0;
  std::string model = resolve_model(model_arg, ml.model_dir);
  for (const std::string& spec : shape_specs) apply_shape_option(spec, model, o.batch, o);

  // Internal mode used by --cachegrind: one inference inside locus_measured_inference.
  if (single_inference) {
    o.backend_name = backends[0];
    Session s = Session::from_graph(load_model_graph(model, o.batch), o);
    auto in = make_inputs(s);
    std::vector<Tensor> out = s.run(in);  // not counted: lazy setup done, simulated caches warm
    locus_measured_inference(&s, &in, &out);
    return 0;
  }

  MachineInfo mi = read_machine_info();
  int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  // Counters are opened before any session so that the OpenMP threads created later inherit them.
  PerfCounters pc = cachegrind ? PerfCounters() : PerfCounters::open_default();

  // The CP decomposition is fitted once for all backends (ALS takes seconds to minutes), then each
  // session starts from the decomposed graph.
  std::optional<Graph> decomposed;
  const std::optional<CpDecomposeOptions>& decompose = o.pipeline.decompose;
  if (decompose && !cachegrind) {
    std::fprintf(stderr, "bench: CP-decomposing (%s) once for all backends...\n", decompose->policy.describe().c_str());
    decomposed = load_model_graph(model, o.batch);
    PipelineOptions po;
    po.optimize = false;
    po.decompose = decompose;
    prepare_graph(*decomposed, po);
  }
  std::vector<BackendResult> results;
  for (auto& b : backends) {
    BackendResult r;
    r.backend = b;
    o.backend_name = b;
    if (cachegrind) {
      std::string note;
      std::fprintf(stderr, "bench: %s: one inference under valgrind (slow: about a minute)...\n", b.c_str());
      std::vector<std::string> extra;  // the validated options, passed on as arguments (no shell)
      if (o.backend.l2_bytes >= 0) extra.insert(extra.end(), {"--l2", std::to_string(o.backend.l2_bytes)});
      if (o.backend.tile_order)
        extra.insert(extra.end(), {"--tile-order", schedule::tile_order_name(*o.backend.tile_order)});
      if (!o.pipeline.disabled_passes.empty()) extra.push_back("--no-fuse");
      if (o.pipeline.fuse_chains) extra.push_back("--fuse-chains");
      for (const auto& [name, shape] : o.input_shapes) {
        std::string dims;
        for (int64_t d : shape) dims += (dims.empty() ? "" : "x") + std::to_string(d);
        extra.insert(extra.end(), {"--shape", name + "=" + dims});
      }
      if (o.max_memory_bytes > 0) extra.insert(extra.end(), {"--max-memory", std::to_string(o.max_memory_bytes)});
      if (decompose) {
        extra.insert(extra.end(), {"--decompose", decompose_policy_arg(*decompose)});
        if (decompose->form == CpForm::FourWay) extra.insert(extra.end(), {"--decompose-form", "4"});
      }
      if (b == "accel") {
        extra.insert(extra.end(), {"--accel-schedule", o.backend.accel_schedule});
        if (o.backend.accel_buffer_entries > 0)
          extra.insert(extra.end(), {"--buffer", std::to_string(o.backend.accel_buffer_entries)});
        if (app->count("--accel")) extra.insert(extra.end(), {"--accel", o.backend.accel_config});
      }
      r.cachegrind = run_under_callgrind(model, b, o.batch, ll_level, extra, &note);
      r.describe = note;
      // the child resolves the same options, environment and OS
      if (make_backend(b)->capabilities().pointwise_tiling) r.tiling = o.backend.tiling;
      results.push_back(r);
      continue;
    }
    std::fprintf(stderr, "bench: %s: %lld warm-up + %lld timed runs...\n", b.c_str(), (long long)warmup, (long long)runs);
    SessionOptions so = o;
    if (decomposed) so.pipeline.decompose.reset();  // already applied
    Session s = Session::from_graph(decomposed ? *decomposed : load_model_graph(model, o.batch), so);
    r.describe = s.executable().describe();
    r.activation_bytes = s.activation_bytes();
    r.macs = graph_macs(s.graph());
    r.int8_macs = int8_macs(s.graph());
    r.tiling = s.tiling();  // the object resolved once above, as the backend compiled with it
    if (r.tiling) {
      auto plans = s.executable().pointwise_plans();
      r.pointwise_convs = int64_t(plans.size());
      r.planned_convs = std::count_if(plans.begin(), plans.end(), [](auto& p) { return p.plan.has_value(); });
    }
    auto in = make_inputs(s);
    for (int64_t i = 0; i < warmup; ++i) s.run(in);
    pc.reset();
    for (int64_t i = 0; i < runs; ++i) {
      pc.start();  // the counters' own start and stop stay outside the timed interval
      const auto t0 = std::chrono::steady_clock::now();
      s.run(in);
      const auto t1 = std::chrono::steady_clock::now();
      pc.stop();
      r.ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    r.counters = pc.read();
    for (auto& c : r.counters)
      if (c.value) *c.value /= double(runs);
    if (profile) {
      s.executable().set_profiling(true);
      std::map<std::string, size_t> index;
      std::vector<std::vector<double>> node_ms;  // per node, one entry per run
      for (int64_t i = 0; i < runs; ++i) {
        s.run(in);
        for (auto& t : s.executable().timings()) {
          auto it = index.find(t.node);
          if (it == index.end()) {
            index[t.node] = r.profile.size();
            r.profile.push_back({t.node, t.op, 0});
            node_ms.emplace_back();
            it = index.find(t.node);
          }
          node_ms[it->second].push_back(t.ms);
        }
      }
      for (size_t k = 0; k < r.profile.size(); ++k) {
        auto& v = node_ms[k];
        std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
        r.profile[k].ms = v[v.size() / 2];
      }
      s.executable().set_profiling(false);
      if (r.profile.empty()) std::fprintf(stderr, "bench: %s: this backend has no per-node profile\n", b.c_str());
    }
    results.push_back(std::move(r));
  }

  // ---- table ----
  PeakFigures peaks;  // measured after every timed run (--peak)
  std::printf("model    %s\n", model.c_str());
  std::printf("machine  %s\n", mi.summary().c_str());
  if (cachegrind)
    std::printf("setting  batch %lld, 1 thread, 1 warm-up inference, 1 measured inference under valgrind\n",
                (long long)o.batch);
  else
    std::printf("setting  batch %lld, %d threads, %lld warm-up, %lld timed runs\n", (long long)o.batch, threads,
                (long long)warmup, (long long)runs);
  if (!cachegrind && threads > 1) std::printf("omp wait %s\n", wait_policy_summary().c_str());
  if (decompose)
    std::printf("decompose %s, %s form (lossy: see locus decompose for the per-layer error)\n",
                decompose->policy.describe().c_str(), decompose->form == CpForm::FourWay ? "4-way" : "3-way");
  auto row = [&](const std::string& label, auto cell) {
    std::printf("%-24s", label.c_str());
    for (auto& r : results) std::printf(" %16s", cell(r).c_str());
    std::printf("\n");
  };
  row("", [](const BackendResult& r) { return r.backend; });
  if (std::any_of(results.begin(), results.end(), [](auto& r) { return r.tiling.has_value(); })) {
    row("1x1 tiling L2", [](const BackendResult& r) { return r.tiling ? l2_setting_label(*r.tiling) : "n/a"; });
    row("1x1 tile order", [](const BackendResult& r) { return r.tiling ? order_setting_label(*r.tiling) : "n/a"; });
    if (!cachegrind)
      row("1x1 convs planned", [](const BackendResult& r) {
        return r.pointwise_convs >= 0 ? std::to_string(r.planned_convs) + "/" + std::to_string(r.pointwise_convs)
                                      : std::string("n/a");
      });
  }
  if (!cachegrind) {
    row("median ms", [](const BackendResult& r) { return fmt(percentile(r.ms, 0.5), "%.3f"); });
    row("min ms", [](const BackendResult& r) { return fmt(*std::min_element(r.ms.begin(), r.ms.end()), "%.3f"); });
    row("p90 ms", [](const BackendResult& r) { return fmt(percentile(r.ms, 0.9), "%.3f"); });
    row("images/s", [&](const BackendResult& r) { return fmt(1000.0 * double(o.batch) / percentile(r.ms, 0.5), "%.1f"); });
    row("activation MiB", [](const BackendResult& r) { return fmt(double(r.activation_bytes) / (1 << 20), "%.2f"); });
    if (peak) {
      row("GMAC/inference", [](const BackendResult& r) { return fmt(double(r.macs) * 1e-9, "%.3f"); });
      row("GFLOP/s (2 x MACs)", [](const BackendResult& r) { return fmt(2e-6 * double(r.macs) / percentile(r.ms, 0.5), "%.1f"); });
      row("peak GFLOP/s", [&](const BackendResult& r) {
        return fmt(peaks.of(r, threads), "%.1f") + (2 * r.int8_macs > r.macs ? " i8" : " f32");
      });
      row("% of peak", [&](const BackendResult& r) {
        return fmt(100.0 * 2e-6 * double(r.macs) / percentile(r.ms, 0.5) / peaks.of(r, threads), "%.1f");
      });
    }
    if (!results.empty())
      for (size_t k = 0; k < results[0].counters.size(); ++k)
        row(results[0].counters[k].name + "/inf", [k](const BackendResult& r) { return fmt(r.counters[k].value); });
    if (!pc.any_available()) std::printf("counters %s\n", pc.unavailable_reason().c_str());
  } else {
    std::vector<std::string> keys;
    for (auto& r : results)
      for (auto& [k, v] : r.cachegrind)
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    for (auto& k : keys)
      row(k, [&](const BackendResult& r) {
        auto it = r.cachegrind.find(k);
        return it == r.cachegrind.end() ? std::string("n/a") : fmt(it->second);
      });
    std::printf("cache    simulated by valgrind (callgrind --cache-sim=yes, host D1/LL geometry), one inference, 1 thread\n");
  }
  for (auto& r : results)
    if (!r.describe.empty()) std::printf("note     %s\n", r.describe.c_str());
  for (auto& r : results) {
    if (r.profile.empty()) continue;
    double total = 0;
    for (auto& t : r.profile) total += t.ms;
    std::printf("\nprofile  %s (median per node over %lld runs, total %.3f ms)\n", r.backend.c_str(), (long long)runs, total);
    std::printf("%-4s %-40s %-16s %10s %7s\n", "#", "node", "op", "ms", "share");
    for (size_t i = 0; i < r.profile.size(); ++i)
      std::printf("%-4zu %-40s %-16s %10.4f %6.1f%%\n", i, r.profile[i].node.c_str(), r.profile[i].op.c_str(),
                  r.profile[i].ms, 100.0 * r.profile[i].ms / total);
  }

  // ---- json ----
  if (!json_file.empty()) {
    Json j = json_document("locus-bench/1");
    j["model"] = model;
    Json caches = Json::array();
    for (auto& c : mi.caches)
      caches.push_back({{"level", c.level}, {"type", c.type}, {"bytes", c.size_bytes}, {"ways", c.ways}, {"line", c.line_bytes}});
    j["machine"] = {{"cpu", mi.cpu_model},
                    {"logical_cpus", mi.logical_cpus},
                    {"virtual_machine", mi.hypervisor},
                    {"caches", std::move(caches)},
                    {"isa", mi.isa}};
    j["batch"] = o.batch;
    j["threads"] = threads;
    j["omp_wait_policy"] = wait_policy_summary();
    j["warmup"] = warmup;
    j["runs"] = runs;
    j["mode"] = cachegrind ? "cachegrind" : "timing";
    if (decompose) {
      j["decompose"] = decompose->policy.describe();
      j["decompose_form"] = decompose->form == CpForm::FourWay ? 4 : 3;
    } else {
      j["decompose"] = nullptr;
    }
    if (cachegrind) j["ll_level"] = ll_level;
    j["counters_available"] = pc.any_available();
    if (!pc.any_available() && !cachegrind) j["counters_note"] = pc.unavailable_reason();
    Json& out = j["results"] = Json::array();
    for (auto& r : results) {
      Json e = {{"backend", r.backend}};
      if (!r.describe.empty()) e["describe"] = r.describe;
      if (r.tiling) {
        Json t = {{"l2_bytes", r.tiling->l2_bytes},
                  {"l2_source", setting_source_name(r.tiling->l2_source)},
                  {"order", schedule::tile_order_name(r.tiling->order)},
                  {"order_source", setting_source_name(r.tiling->order_source)},
                  {"buffer_entries", r.tiling->buffer_entries},
                  {"safety_fraction", kL2SafetyFraction}};
        if (r.pointwise_convs >= 0) {
          t["pointwise_convs"] = r.pointwise_convs;
          t["planned_convs"] = r.planned_convs;
        }
        e["pointwise_tiling"] = std::move(t);
      } else {
        e["pointwise_tiling"] = nullptr;
      }
      if (!r.ms.empty()) {
        e["median_ms"] = finite_or_null(percentile(r.ms, 0.5));
        e["min_ms"] = finite_or_null(*std::min_element(r.ms.begin(), r.ms.end()));
        e["p90_ms"] = finite_or_null(percentile(r.ms, 0.9));
        e["images_per_s"] = finite_or_null(1000.0 * double(o.batch) / percentile(r.ms, 0.5));
        e["activation_bytes"] = r.activation_bytes;
        e["macs"] = r.macs;
        if (peak) {
          const double gflops = 2e-6 * double(r.macs) / percentile(r.ms, 0.5);
          e["gflops"] = finite_or_null(gflops);
          e["peak_gflops"] = finite_or_null(peaks.of(r, threads));
          e["peak_kind"] = 2 * r.int8_macs > r.macs ? "int8" : "fp32";
          e["pct_peak"] = finite_or_null(100.0 * gflops / peaks.of(r, threads));
        }
        Json c = Json::object();
        for (auto& k : r.counters) c[k.name] = k.value ? finite_or_null(*k.value) : Json(nullptr);
        e["counters_per_inference"] = std::move(c);
      }
      if (!r.cachegrind.empty()) {
        Json c = Json::object();
        for (auto& [k, v] : r.cachegrind) c[k] = finite_or_null(v);
        e["cachegrind"] = std::move(c);
      }
      if (!r.profile.empty()) {
        Json p = Json::array();
        for (auto& t : r.profile) p.push_back({{"node", t.node}, {"op", t.op}, {"ms", finite_or_null(t.ms)}});
        e["profile"] = std::move(p);
      }
      out.push_back(std::move(e));
    }
    write_json_file(json_file, j);
  }
  return 0;
}

}  // namespace locus::cli
