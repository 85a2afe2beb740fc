// `locus check`: run folders in the ONNX test layout (one .onnx file plus
// test_data_set_*/input_N.pb, output_N.pb) and compare with the stored outputs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/options.h"
#include "graph/ops.h"
#include "importers/onnx/onnx_importer.h"
#include "models/model_path.h"

namespace fs = std::filesystem;

namespace locus::cli {

static const char* kCheckHelp =
    "usage: locus check DIR... [options]\n"
    "\n"
    "Each DIR is a folder in the ONNX test layout, or a folder of such folders (e.g.\n"
    "/usr/share/libonnx-testdata/data/node). A DIR that is not an existing path is looked up in the\n"
    "model search path like the other commands' MODEL (--model-dir, $LOCUS_MODEL_DIR, shared/models),\n"
    "so 'locus check mobilenetv2-12-int8' checks the shared model. Every data set is run and each output compared with\n"
    "|got - want| <= atol + rtol * |want|. One line per test: PASS, FAIL with the worst error, or\n"
    "SKIP with the reason (unsupported operators or types); then 'N passed, N failed, N skipped'.\n"
    "Exit status 0 only if nothing failed. Integer inputs, and float inputs read only as parameters\n"
    "(Conv weights and bias, BatchNormalization statistics, Clip bounds), are bound as constants at\n"
    "session creation, as a framework holding the weights would.\n"
;

namespace {

enum class Outcome { Pass, Fail, Skip };

struct Result {
  Outcome outcome;
  std::string detail;
};

std::vector<fs::path> sorted_glob(const fs::path& dir, const std::string& prefix, const std::string& ext) {
  std::vector<fs::path> r;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) == 0 && (ext.empty() || e.path().extension() == ext)) r.push_back(e.path());
  }
  // numeric order of the trailing index: input_2 before input_10
  std::sort(r.begin(), r.end(), [&](const fs::path& a, const fs::path& b) {
    auto idx = [&](const fs::path& p) {
      std::string s = p.stem().string().substr(prefix.size());
      return s.empty() ? 0L : std::strtol(s.c_str(), nullptr, 10);
    };
    return idx(a) < idx(b);
  });
  return r;
}

// Compares one output; returns "" when within tolerance, else a description of the worst element.
std::string compare(const Tensor& got, const Tensor& want, double rtol, double atol, double& worst_abs) {
  if (got.shape != want.shape && got.numel() == want.numel() && got.numel() == 1) {
    // scalar vs [1]: same value
  } else if (got.shape != want.shape) {
    return cat("shape ", shape_str(got.shape), ", expected ", shape_str(want.shape));
  }
  bool fp = want.dtype == DType::F32 || want.dtype == DType::F64;
  if (!fp && got.dtype != want.dtype) return cat("type ", dtype_name(got.dtype), ", expected ", dtype_name(want.dtype));
  int64_t bad = -1;
  double bad_excess = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    double g = got.get(i), w = want.get(i);
    if (std::isnan(w) && std::isnan(g)) continue;
    double err = std::fabs(g - w);
    if (std::isnan(err)) err = INFINITY;
    if (!(std::isinf(w) && g == w)) worst_abs = std::max(worst_abs, err);
    double excess = err - (atol + rtol * std::fabs(w));
    if (std::isinf(w) && g == w) excess = 0;
    if (excess > 0 && (bad < 0 || excess > bad_excess)) {
      bad = i;
      bad_excess = excess;
    }
  }
  if (bad < 0) return "";
  return cat("max abs err ", worst_abs, "; worst at index ", bad, ": got ", got.get(bad), ", want ", want.get(bad));
}

// A graph input read only as a parameter (Conv weights, BatchNormalization statistics, Clip
// bounds, shapes, indices): bound as a constant, as a framework would hold it.
bool parameter_only(const Graph& g, const std::string& name) {
  bool used = false;
  for (auto& n : g.nodes)
    for (size_t k = 0; k < n.inputs.size(); ++k)
      if (n.inputs[k] == name) {
        if (!is_parameter_operand(n, k)) return false;
        used = true;
      }
  return used && !g.is_graph_output(name);
}

Result check_one(const fs::path& dir, const SessionOptions& base, double rtol, double atol) {
  std::vector<fs::path> models = sorted_glob(dir, "", ".onnx");
  if (models.size() != 1) return {Outcome::Fail, cat("expected one .onnx file, found ", models.size())};
  auto sets = sorted_glob(dir, "test_data_set_", "");
  if (sets.empty()) return {Outcome::Fail, "no test_data_set_* folders"};
  double worst = 0;
  try {
    // the model's runtime inputs, in order (initializers excluded); loaded once, copied per set
    const Graph model = onnx_import::load_model(models[0].string(), {base.batch});
    for (auto& set : sets) {
      auto in_files = sorted_glob(set, "input_", ".pb");
      auto out_files = sorted_glob(set, "output_", ".pb");
      Graph probe = model;
      if (in_files.size() != probe.inputs.size())
        return {Outcome::Fail, cat(set.filename().string(), ": ", in_files.size(), " input files for ",
                                   probe.inputs.size(), " model inputs")};
      SessionOptions o = base;
      std::map<std::string, Tensor> feed;
      for (size_t i = 0; i < in_files.size(); ++i) {
        Tensor t = onnx_import::load_tensor_file(in_files[i].string());
        const std::string& name = probe.inputs[i];
        if (t.dtype != DType::F32 || parameter_only(probe, name)) {
          o.bind_constants[name] = std::move(t);
        } else {
          if (probe.symbolic_dims.count(name)) o.input_shapes[name] = t.shape;  // the file says
          feed[name] = std::move(t);
        }
      }
      Session s = Session::from_graph(std::move(probe), o);
      auto outs = s.run(feed);
      if (out_files.size() != outs.size())
        return {Outcome::Fail, cat(set.filename().string(), ": ", out_files.size(), " output files for ",
                                   outs.size(), " model outputs")};
      for (size_t i = 0; i < outs.size(); ++i) {
        Tensor want = onnx_import::load_tensor_file(out_files[i].string());
        std::string diff = compare(outs[i], want, rtol, atol, worst);
        if (!diff.empty()) return {Outcome::Fail, cat(set.filename().string(), " output ", i, ": ", diff)};
      }
    }
  } catch (const Unsupported& e) {
    return {Outcome::Skip, e.what()};
  } catch (const std::exception& e) {
    return {Outcome::Fail, e.what()};
  }
  return {Outcome::Pass, cat(sets.size(), " data sets, max abs err ", worst)};
}

bool is_test_dir(const fs::path& d) {
  std::error_code ec;
  if (!fs::is_directory(d, ec)) return false;
  for (auto& e : fs::directory_iterator(d, ec))
    if (e.path().extension() == ".onnx") return true;
  return false;
}

}  // namespace

int cmd_check(int argc, char** argv) {
  auto app = make_command("check", kCheckHelp);
  std::vector<std::string> dir_args;
  double rtol = 1e-3, atol = 1e-4;
  bool quiet = false;
  std::string model_dir;
  SessionOptions o;
  app->add_option("DIR", dir_args, "test folders, or folders of them (a name: found in the model search path)")
      ->required()
      ->type_name("");
  app->add_option("--model-dir", model_dir, "folder searched for a DIR that is not a path")->type_name("DIR");
  add_nonneg_option(*app, "--rtol", rtol, "relative tolerance (default 1e-3)");
  add_nonneg_option(*app, "--atol", atol, "absolute tolerance (default 1e-4)");
  app->add_option("--backend", o.backend_name, "native (default), onednn, onednn-dwfused, reference, accel")
      ->type_name("NAME");
  add_int_option(*app, "--threads", o.threads, 1, 1024, "OpenMP threads (default: all cores)");
  app->add_flag("--quiet", quiet, "print only failures and the closing line");
  add_tiling_options(*app, o);
  add_memory_options(*app, o);
  const DecomposeGroup dg = add_decompose_options(*app, o.pipeline.decompose);  // lossy: expect FAILs (--rtol/--atol)
  add_accel_options(*app, o.backend);
  if (!parse_command(*app, argc, argv)) return 0;
  check_decompose_options(dg);
  resolve_tiling_once(o, {o.backend_name});  // a bad LOCUS_L2 / LOCUS_TILE_ORDER: one error, not a FAIL per test
  if (stop_after_options()) return 0;

  std::vector<fs::path> dirs;
  for (auto& arg : dir_args) {
    std::error_code ec;
    const std::string p = fs::exists(arg, ec) ? arg : models::find_model(arg, model_dir);
    LOCUS_CHECK(fs::is_directory(p, ec), "'", p, "' is not a folder");
    if (is_test_dir(p)) {
      dirs.push_back(p);
      continue;
    }
    std::vector<fs::path> sub;
    for (auto& e : fs::directory_iterator(p, ec))
      if (is_test_dir(e.path())) sub.push_back(e.path());
    LOCUS_CHECK(!sub.empty(), "'", p, "' holds no .onnx file and no test folders");
    std::sort(sub.begin(), sub.end());
    dirs.insert(dirs.end(), sub.begin(), sub.end());
  }
  int passed = 0, failed = 0, skipped = 0;
  for (auto& d : dirs) {
    Result r = check_one(d, o, rtol, atol);
    const char* tag = r.outcome == Outcome::Pass ? "PASS" : r.outcome == Outcome::Fail ? "FAIL" : "SKIP";
    (r.outcome == Outcome::Pass ? passed : r.outcome == Outcome::Fail ? failed : skipped)++;
    if (!quiet || r.outcome == Outcome::Fail) std::printf("%s  %s  %s\n", tag, d.filename().c_str(), r.detail.c_str());
    std::fflush(stdout);
  }
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed ? 1 : 0;
}

}  // namespace locus::cli
