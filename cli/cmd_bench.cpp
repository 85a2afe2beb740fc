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

#include "cli/args.h"
#include "cli/callgrind_runner.h"
#include "cli/commands.h"
#include "cli/json_writer.h"
#include "graph/passes/pipeline.h"
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
    "\n"
    "options:\n"
    "  --backend LIST     comma-separated: native (default), native-unfused (no block fusion), onednn,\n"
    "                     onednn-dwfused, reference, accel\n"
    "  --batch N          value for a symbolic batch dimension (default 1)\n"
    "  --threads N        OpenMP threads (default: all cores)\n"
    "  --warmup N         untimed runs first (default 5)\n"
    "  --runs N           timed runs (default 50)\n"
    "  --profile          also time every node (separate runs) and list each node's share\n"
    "  --cachegrind       instead of timing, run one inference per backend (after one warm-up)\n"
    "                     under valgrind's cache simulator with the host's D1/LL geometry, one\n"
    "                     thread, and report D1 and LL misses of that inference only\n"
    "  --ll-level N       with --cachegrind: simulate cache level N (2 or 3) as the last level\n"
    "                     (default: the host's last level; 2 shows what misses an L2-sized buffer)\n"
    "  --json FILE        write the results as JSON (schema locus-bench/1)\n"
    "  --model-dir DIR    folder searched for MODEL\n";

static const char* kBenchTilingNote =
    "\n"
    "The table and the JSON (results[].pointwise_tiling) give, for the native backend, the L2 size\n"
    "the 1x1 convs were tiled for and where it came from (--l2, LOCUS_L2 or the OS), the tile order\n"
    "family and how many 1x1 convs got a plan; 'locus info MODEL --plans' lists the plans.\n";

namespace {

struct BackendResult {
  std::string backend, describe;
  std::vector<double> ms;  // per timed run
  int64_t activation_bytes = 0;
  std::vector<CounterReading> counters;  // per inference
  std::vector<NodeTiming> profile;       // mean per node
  std::map<std::string, double> cachegrind;
  std::optional<PointwiseTilingSettings> tiling;  // native backend only
  int64_t planned_convs = -1, pointwise_convs = -1;  // 1x1 convs with a plan / all (timing mode)
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

int cmd_bench(int argc, char** argv) {
  Args a(argc, argv, 2,
         {"--backend", "--batch", "--threads", "--warmup", "--runs", "--json", "--model-dir", "--ll-level", "--l2", "--max-memory",
          "--tile-order", "--decompose", "--decompose-form", "--accel-schedule", "--accel", "--buffer"},
         {"--help", "-h", "--profile", "--cachegrind", "--single-inference", "--no-fuse"});
  if (a.flag("--help") || a.flag("-h")) {
    std::fputs(kBenchHelp, stdout);
    std::fputs(tiling_options_help(21).c_str(), stdout);
    std::fputs(memory_options_help(21).c_str(), stdout);
    std::fputs(decompose_options_help(21).c_str(), stdout);
    std::fputs(accel_options_help(21).c_str(), stdout);
    std::fputs(kBenchTilingNote, stdout);
    return 0;
  }
  if (a.positional().size() != 1) throw UsageError("bench: expected exactly one MODEL");
  SessionOptions o;
  apply_tiling_options(a, o);
  apply_memory_options(a, o);  // bad values fail before any work
  apply_decompose_options(a, o);
  apply_accel_options(a, o);
  auto backends = split(a.get("--backend", "native"), ',');
  if (backends.empty()) throw UsageError("bench: --backend needs at least one name");
  for (auto& b : backends) make_backend(b);  // unknown names fail before any work
  if (std::find(backends.begin(), backends.end(), "native") != backends.end()) {
    BackendOptions bo;  // so does a bad LOCUS_L2 / LOCUS_TILE_ORDER
    bo.l2_bytes = o.l2_bytes;
    bo.tile_order = o.tile_order;
    resolve_pointwise_tiling(bo);
  }
  o.batch = a.get_int("--batch", 1, 1, 4096);
  o.threads = int(a.get_int("--threads", 0, 1, 1024));
  int64_t warmup = a.get_int("--warmup", 5, 0, 100000), runs = a.get_int("--runs", 50, 1, 1000000);
  bool profile = a.flag("--profile");
  int ll_level = int(a.get_int("--ll-level", 0, 2, 4));
  if (stop_after_options()) return 0;
  std::string model = resolve_model(a.positional()[0], a.get("--model-dir"));

  // Internal mode used by --cachegrind: one inference inside locus_measured_inference.
  if (a.flag("--single-inference")) {
    o.backend = backends[0];
    Session s = Session::from_graph(load_model_graph(model, o.batch), o);
    auto in = make_inputs(s);
    std::vector<Tensor> out = s.run(in);  // not counted: lazy setup done, simulated caches warm
    locus_measured_inference(&s, &in, &out);
    return 0;
  }

  MachineInfo mi = read_machine_info();
  int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  // Counters are opened before any session so that the OpenMP threads created later inherit them.
  PerfCounters pc = a.flag("--cachegrind") ? PerfCounters() : PerfCounters::open_default();

  // The CP decomposition is fitted once for all backends (ALS takes seconds to minutes), then each
  // session starts from the decomposed graph.
  std::optional<Graph> decomposed;
  if (o.decompose && !a.flag("--cachegrind")) {
    std::fprintf(stderr, "bench: CP-decomposing (%s) once for all backends...\n", o.decompose->policy.describe().c_str());
    decomposed = load_model_graph(model, o.batch);
    PipelineOptions po;
    po.optimize = false;
    po.decompose = o.decompose;
    prepare_graph(*decomposed, po);
  }
  std::vector<BackendResult> results;
  for (auto& b : backends) {
    BackendResult r;
    r.backend = b;
    o.backend = b;
    if (a.flag("--cachegrind")) {
      std::string note;
      std::fprintf(stderr, "bench: %s: one inference under valgrind (slow: about a minute)...\n", b.c_str());
      std::vector<std::string> extra;  // the validated options, passed on as arguments (no shell)
      if (o.l2_bytes >= 0) extra.insert(extra.end(), {"--l2", std::to_string(o.l2_bytes)});
      if (o.tile_order) extra.insert(extra.end(), {"--tile-order", schedule::tile_order_name(*o.tile_order)});
      if (a.flag("--no-fuse")) extra.push_back("--no-fuse");
      if (o.max_memory_bytes > 0) extra.insert(extra.end(), {"--max-memory", std::to_string(o.max_memory_bytes)});
      if (o.decompose) {
        extra.insert(extra.end(), {"--decompose", decompose_policy_arg(*o.decompose)});
        if (o.decompose->form == CpForm::FourWay) extra.insert(extra.end(), {"--decompose-form", "4"});
      }
      if (b == "accel") {
        extra.insert(extra.end(), {"--accel-schedule", o.accel_schedule});
        if (o.accel_buffer_entries > 0) extra.insert(extra.end(), {"--buffer", std::to_string(o.accel_buffer_entries)});
        if (a.has("--accel")) extra.insert(extra.end(), {"--accel", o.accel_config});
      }
      r.cachegrind = run_under_callgrind(model, b, o.batch, ll_level, extra, &note);
      r.describe = note;
      if (b == "native" || b == "native-unfused") {  // the child resolves the same options, environment and OS
        BackendOptions bo;
        bo.l2_bytes = o.l2_bytes;
        bo.tile_order = o.tile_order;
        r.tiling = resolve_pointwise_tiling(bo);
      }
      results.push_back(r);
      continue;
    }
    std::fprintf(stderr, "bench: %s: %lld warm-up + %lld timed runs...\n", b.c_str(), (long long)warmup, (long long)runs);
    SessionOptions so = o;
    if (decomposed) so.decompose.reset();  // already applied
    Session s = Session::from_graph(decomposed ? *decomposed : load_model_graph(model, o.batch), so);
    r.describe = s.executable().describe();
    r.activation_bytes = s.activation_bytes();
    r.tiling = s.executable().pointwise_tiling();
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
      for (int64_t i = 0; i < runs; ++i) {
        s.run(in);
        for (auto& t : s.executable().timings()) {
          auto it = index.find(t.node);
          if (it == index.end()) {
            index[t.node] = r.profile.size();
            r.profile.push_back({t.node, t.op, 0});
            it = index.find(t.node);
          }
          r.profile[it->second].ms += t.ms / double(runs);
        }
      }
      s.executable().set_profiling(false);
      if (r.profile.empty()) std::fprintf(stderr, "bench: %s: this backend has no per-node profile\n", b.c_str());
    }
    results.push_back(std::move(r));
  }

  // ---- table ----
  std::printf("model    %s\n", model.c_str());
  std::printf("machine  %s\n", mi.summary().c_str());
  if (a.flag("--cachegrind"))
    std::printf("setting  batch %lld, 1 thread, 1 warm-up inference, 1 measured inference under valgrind\n",
                (long long)o.batch);
  else
    std::printf("setting  batch %lld, %d threads, %lld warm-up, %lld timed runs\n", (long long)o.batch, threads,
                (long long)warmup, (long long)runs);
  if (o.decompose)
    std::printf("decompose %s, %s form (lossy: see locus decompose for the per-layer error)\n",
                o.decompose->policy.describe().c_str(), o.decompose->form == CpForm::FourWay ? "4-way" : "3-way");
  auto row = [&](const std::string& label, auto cell) {
    std::printf("%-24s", label.c_str());
    for (auto& r : results) std::printf(" %16s", cell(r).c_str());
    std::printf("\n");
  };
  row("", [](const BackendResult& r) { return r.backend; });
  if (std::any_of(results.begin(), results.end(), [](auto& r) { return r.tiling.has_value(); })) {
    row("1x1 tiling L2", [](const BackendResult& r) { return r.tiling ? l2_setting_label(*r.tiling) : "n/a"; });
    row("1x1 tile order", [](const BackendResult& r) { return r.tiling ? order_setting_label(*r.tiling) : "n/a"; });
    if (!a.flag("--cachegrind"))
      row("1x1 convs planned", [](const BackendResult& r) {
        return r.pointwise_convs >= 0 ? std::to_string(r.planned_convs) + "/" + std::to_string(r.pointwise_convs)
                                      : std::string("n/a");
      });
  }
  if (!a.flag("--cachegrind")) {
    row("median ms", [](const BackendResult& r) { return fmt(percentile(r.ms, 0.5), "%.3f"); });
    row("min ms", [](const BackendResult& r) { return fmt(*std::min_element(r.ms.begin(), r.ms.end()), "%.3f"); });
    row("p90 ms", [](const BackendResult& r) { return fmt(percentile(r.ms, 0.9), "%.3f"); });
    row("images/s", [&](const BackendResult& r) { return fmt(1000.0 * double(o.batch) / percentile(r.ms, 0.5), "%.1f"); });
    row("activation MiB", [](const BackendResult& r) { return fmt(double(r.activation_bytes) / (1 << 20), "%.2f"); });
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
    std::printf("\nprofile  %s (mean over %lld runs, total %.3f ms)\n", r.backend.c_str(), (long long)runs, total);
    std::printf("%-4s %-40s %-16s %10s %7s\n", "#", "node", "op", "ms", "share");
    for (size_t i = 0; i < r.profile.size(); ++i)
      std::printf("%-4zu %-40s %-16s %10.4f %6.1f%%\n", i, r.profile[i].node.c_str(), r.profile[i].op.c_str(),
                  r.profile[i].ms, 100.0 * r.profile[i].ms / total);
  }

  // ---- json ----
  if (a.has("--json")) {
    JsonWriter j;
    j.begin_object();
    j.kv("schema", "locus-bench/1");
    j.kv("model", model);
    j.key("machine");
    j.begin_object();
    j.kv("cpu", mi.cpu_model);
    j.kv("logical_cpus", int64_t(mi.logical_cpus));
    j.kv("virtual_machine", mi.hypervisor);
    j.key("caches");
    j.begin_array();
    for (auto& c : mi.caches) {
      j.begin_object();
      j.kv("level", int64_t(c.level));
      j.kv("type", c.type);
      j.kv("bytes", c.size_bytes);
      j.kv("ways", int64_t(c.ways));
      j.kv("line", int64_t(c.line_bytes));
      j.end_object();
    }
    j.end_array();
    j.key("isa");
    j.begin_array();
    for (auto& f : mi.isa) j.value(f);
    j.end_array();
    j.end_object();
    j.kv("batch", o.batch);
    j.kv("threads", int64_t(threads));
    j.kv("warmup", warmup);
    j.kv("runs", runs);
    j.kv("mode", a.flag("--cachegrind") ? "cachegrind" : "timing");
    if (o.decompose) {
      j.kv("decompose", o.decompose->policy.describe());
      j.kv("decompose_form", int64_t(o.decompose->form == CpForm::FourWay ? 4 : 3));
    } else {
      j.kv_null("decompose");
    }
    if (a.flag("--cachegrind")) j.kv("ll_level", int64_t(ll_level));
    j.kv("counters_available", pc.any_available());
    if (!pc.any_available() && !a.flag("--cachegrind")) j.kv("counters_note", pc.unavailable_reason());
    j.key("results");
    j.begin_array();
    for (auto& r : results) {
      j.begin_object();
      j.kv("backend", r.backend);
      if (!r.describe.empty()) j.kv("describe", r.describe);
      if (r.tiling) {
        j.key("pointwise_tiling");
        j.begin_object();
        j.kv("l2_bytes", r.tiling->l2_bytes);
        j.kv("l2_source", setting_source_label(r.tiling->l2_source, true));
        j.kv("order", schedule::tile_order_name(r.tiling->order));
        j.kv("order_source", setting_source_label(r.tiling->order_source, false));
        j.kv("buffer_entries", r.tiling->buffer_entries);
        j.kv("safety_fraction", kL2SafetyFraction);
        if (r.pointwise_convs >= 0) {
          j.kv("pointwise_convs", r.pointwise_convs);
          j.kv("planned_convs", r.planned_convs);
        }
        j.end_object();
      } else {
        j.kv_null("pointwise_tiling");
      }
      if (!r.ms.empty()) {
        j.kv("median_ms", percentile(r.ms, 0.5));
        j.kv("min_ms", *std::min_element(r.ms.begin(), r.ms.end()));
        j.kv("p90_ms", percentile(r.ms, 0.9));
        j.kv("images_per_s", 1000.0 * double(o.batch) / percentile(r.ms, 0.5));
        j.kv("activation_bytes", r.activation_bytes);
        j.key("counters_per_inference");
        j.begin_object();
        for (auto& c : r.counters) {
          if (c.value) j.kv(c.name, *c.value);
          else j.kv_null(c.name);
        }
        j.end_object();
      }
      if (!r.cachegrind.empty()) {
        j.key("cachegrind");
        j.begin_object();
        for (auto& [k, v] : r.cachegrind) j.kv(k, v);
        j.end_object();
      }
      if (!r.profile.empty()) {
        j.key("profile");
        j.begin_array();
        for (auto& t : r.profile) {
          j.begin_object();
          j.kv("node", t.node);
          j.kv("op", t.op);
          j.kv("ms", t.ms);
          j.end_object();
        }
        j.end_array();
      }
      j.end_object();
    }
    j.end_array();
    j.end_object();
    std::ofstream f(a.get("--json"));
    LOCUS_CHECK(f, "cannot write '", a.get("--json"), "'");
    f << j.str() << "\n";
  }
  return 0;
}

}  // namespace locus::cli
