// `locus run`: classify photos with a model, or run it on serialized TensorProto inputs.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/image.h"
#include "cli/ppocr.h"
#include "cli/json.h"
#include "importers/onnx/onnx_importer.h"
#include "models/model_path.h"

namespace fs = std::filesystem;

namespace locus::cli {

static const char* kRunHelp =
    "usage: locus run MODEL --image PHOTO [--image PHOTO ...] [options]\n"
    "       locus run MODEL --input NAME=FILE.pb [--output-dir DIR] [options]\n"
    "\n"
    "Photos (JPEG or PNG) are decoded as PIL decodes them, resized (short side 256, long side\n"
    "rounded, PIL bilinear with antialias), centre-cropped to 224, scaled to [0,1] and\n"
    "normalised with the ImageNet mean/std (RGB, NCHW), then classified one at a time; further\n"
    "positional arguments after MODEL are taken as photos too. Prints, per photo, the top-K classes\n"
    "(rank, class id, probability, label) and the inference latency; ties are broken by the lower\n"
    "class id, and classes tied with rank K are named on a line '# rank K ties with ...'.\n"
;

static std::vector<std::string> load_labels(const std::string& path) {
  std::ifstream f(path);
  LOCUS_CHECK(f, "cannot open labels file '", path, "'");
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // "n01440764 tench, Tinca tinca" -> "tench, Tinca tinca"
    if (line.size() > 10 && line[0] == 'n' && line[9] == ' ' &&
        std::all_of(line.begin() + 1, line.begin() + 9, ::isdigit))
      line = line.substr(10);
    labels.push_back(line);
  }
  return labels;
}

// Probabilities from the output: softmax unless it already is a distribution.
static std::vector<double> to_probabilities(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  LOCUS_CHECK(!v.empty(), "output 0 is empty ", shape_str(t.shape), ": there are no classes to rank");
  for (size_t i = 0; i < v.size(); ++i) v[i] = t.get(int64_t(i));
  double sum = std::accumulate(v.begin(), v.end(), 0.0);
  bool is_dist = std::all_of(v.begin(), v.end(), [](double x) { return x >= 0 && x <= 1; }) && std::fabs(sum - 1) < 1e-3;
  if (is_dist) return v;
  double mx = *std::max_element(v.begin(), v.end());
  double s = 0;
  for (auto& x : v) s += (x = std::exp(x - mx));
  for (auto& x : v) x /= s;
  return v;
}

// Makes DIR (and its parents) or refuses with one line: not a folder, not writable.
static void prepare_output_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  LOCUS_CHECK(!ec, "cannot create the output folder '", dir, "': ", ec.message());
  LOCUS_CHECK(fs::is_directory(dir, ec), "the output folder '", dir, "' exists and is not a folder");
  const fs::path probe = fs::path(dir) / ".locus-write-test";
  {
    std::ofstream f(probe);
    LOCUS_CHECK(f.good(), "the output folder '", dir, "' is not writable");
  }
  fs::remove(probe, ec);
}

// --remarks FILE.json: every pass remark with its kind, and every node of the optimised graph.
static void write_remarks(const std::string& path, const std::string& model, const std::string& backend,
                          const Session& s) {
  Json j = json_document("locus-remarks/1");
  j["model"] = model;
  j["backend"] = backend;
  Json& remarks = j["remarks"] = Json::array();
  for (const PassRemark& r : s.pass_report().remarks)
    remarks.push_back({{"pass", r.pass}, {"node", r.node}, {"kind", remark_kind_name(r.kind)}, {"message", r.message}});
  Json& nodes = j["nodes"] = Json::array();
  std::map<std::string, std::string> impl;  // node -> implementation, where the backend says
  for (const NodeImplementation& ni : s.executable().implementations()) impl[ni.node] = ni.implementation;
  for (const Node& n : s.graph().nodes) {
    Json node = {{"node", n.name}, {"op", n.domain.empty() ? n.op : n.domain + "." + n.op}};
    if (auto it = impl.find(n.name); it != impl.end()) node["implementation"] = it->second;
    nodes.push_back(std::move(node));
  }
  std::ofstream f(path);
  f << json_text(j) << "\n";
  LOCUS_CHECK(f.good(), "cannot write the remarks to '", path, "'");
}

int cmd_run(int argc, char** argv) {
  auto app = make_command("run", kRunHelp);
  std::vector<std::string> positional, images, inputs;
  std::string out_dir, labels_file, remarks_file, ppocr;
  int64_t top = 5;
  bool no_optimize = false, explain = false;
  SessionOptions so;
  ModelLookup ml;
  app->add_option("MODEL", positional, "the model, then photos to classify")->required()->type_name("");
  app->add_option("--image", images, "a photo to classify (repeatable)")->type_name("FILE");
  app->add_option("--input", inputs, "feed a serialized ONNX TensorProto to input NAME (repeatable)")
      ->type_name("NAME=FILE")
      ->check(CLI::Validator(
          [](std::string& spec) -> std::string {
            const auto eq = spec.find('=');
            return eq == std::string::npos || eq == 0 ? "option --input expects NAME=FILE.pb, got '" + spec + "'" : "";
          },
          ""));
  app->add_option("--output-dir", out_dir, "write every output as DIR/output_N.pb")->type_name("DIR");
  app->add_option("--labels", labels_file,
                  "class labels, one per line ('nXXXXXXXX label' or 'label');\ndefault: imagenet_synset.txt from "
                  "the model search path for 1000 classes")
      ->type_name("FILE");
  app->add_option("--ppocr", ppocr,
                  "photos through a PP-OCR model: det writes the text probability map as\n"
                  "DIR/<photo>_prob.png (--output-dir, default the current folder); cls prints\n"
                  "the text orientation (0 or 180 degrees)")
      ->type_name("det|cls")
      ->check(CLI::IsMember({"det", "cls"}));
  add_int_option(*app, "--top", top, 1, 1000000, "classes to print per photo (default 5)", "K");
  add_int_option(*app, "--threads", so.threads, 1, 1024, "OpenMP threads (default: all cores)");
  app->add_option("--backend", so.backend_name, "native (default), onednn, onednn-dwfused, reference, accel")
      ->type_name("NAME");
  add_model_options(*app, ml);
  app->add_flag("--no-optimize", no_optimize, "skip the graph passes");
  app->add_flag("--explain", explain,
                "before running, print to stderr how the graph was rewritten: one line\n"
                "per fused inverted-residual block (the nodes it replaced) and one per\n"
                "pass remark, with its kind: applied (a rewrite made), missed (a\n"
                "candidate refused, and why) or analysis");
  app->add_option("--remarks", remarks_file,
                  "write the pass remarks (pass, node, kind, message) and the nodes of the\n"
                  "optimised graph as JSON (schema locus-remarks/1)")
      ->type_name("FILE");
  add_tiling_options(*app, so);
  add_memory_options(*app, so);
  const DecomposeGroup dg = add_decompose_options(*app, so.pipeline.decompose);
  add_accel_options(*app, so.backend);
  if (!parse_command(*app, argc, argv)) return 0;  // bad option values fail before any work
  check_decompose_options(dg);
  so.batch = ml.batch;
  so.pipeline.optimize = !no_optimize;
  images.insert(images.end(), positional.begin() + 1, positional.end());
  if (images.empty() && inputs.empty()) throw UsageError("run: give --image PHOTO or --input NAME=FILE.pb");
  if (!images.empty() && !inputs.empty()) throw UsageError("run: use either --image or --input, not both");
  if (stop_after_options()) return 0;
  std::string model = resolve_model(positional[0], ml.model_dir);

  // The output folder is made (or refused) before any work, not after the inference.
  if (!out_dir.empty()) prepare_output_dir(out_dir);

  if (!ppocr.empty()) {
    LOCUS_CHECK(!images.empty(), "run --ppocr needs photos (--image FILE)");
    for (const std::string& photo : images) {
      const Image image = decode_image(photo);
      Tensor x = ppocr == "det" ? ppocr_det_input(image) : ppocr_cls_input(image);
      Graph graph = load_model_graph(model, so.batch);
      LOCUS_CHECK(graph.inputs.size() == 1, "run --ppocr needs a model with one input; this one has ", graph.inputs.size());
      const std::string in_name = graph.inputs[0];
      SessionOptions opts = so;
      if (graph.symbolic_dims.count(in_name)) opts.input_shapes[in_name] = x.shape;  // the photo's size
      Session session = Session::from_graph(std::move(graph), opts);
      auto t0 = std::chrono::steady_clock::now();
      auto out = session.run({{in_name, std::move(x)}});
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      const Tensor& y = out[0];
      LOCUS_CHECK(y.dtype == DType::F32, "output 0 is not float32");
      if (ppocr == "det") {
        LOCUS_CHECK(y.shape.size() == 4 && y.shape[0] == 1 && y.shape[1] == 1,
                    "run --ppocr det needs a [1,1,H,W] probability map; output 0 is ", shape_str(y.shape));
        const fs::path png = fs::path(out_dir.empty() ? "." : out_dir) / (fs::path(photo).stem().string() + "_prob.png");
        write_grey_png(png.string(), y.data<float>(), y.shape[2], y.shape[3]);
        int64_t text = 0;
        for (int64_t i = 0; i < y.numel(); ++i) text += y.data<float>()[i] > 0.3f;
        std::printf("%s\t%lldx%lld\ttext pixels (p > 0.3) %.2f%%\t%s\t%.2f ms\n", photo.c_str(), (long long)y.shape[3],
                    (long long)y.shape[2], 100.0 * double(text) / double(std::max<int64_t>(1, y.numel())),
                    png.string().c_str(), ms);
      } else {
        LOCUS_CHECK(y.numel() == 2, "run --ppocr cls needs 2 class scores; output 0 is ", shape_str(y.shape));
        const float* p = y.data<float>();
        const bool rotated = p[1] > p[0];
        std::printf("%s\t%s\tp=%.4f\t%.2f ms\n", photo.c_str(), rotated ? "180" : "0", double(rotated ? p[1] : p[0]), ms);
      }
      std::fflush(stdout);
    }
    return 0;
  }

  Graph graph = load_model_graph(model, so.batch);
  SessionOptions opts = so;
  // Tensor files are read before the session is made: their shapes give the model's symbolic dims.
  std::map<std::string, Tensor> feed;
  for (auto& spec : inputs) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("--input expects NAME=FILE.pb, got '" + spec + "'");
    const std::string name = spec.substr(0, eq);
    Tensor t = onnx_import::load_tensor_file(spec.substr(eq + 1));
    if (graph.symbolic_dims.count(name)) opts.input_shapes[name] = t.shape;
    feed[name] = std::move(t);
  }
  // A photo classifier whose input is [N, C, H, W] with symbolic dims: photos are 3 x 224 x 224.
  if (!images.empty() && graph.inputs.size() == 1 && graph.symbolic_dims.count(graph.inputs[0])) {
    const ValueInfo& vi = graph.values.at(graph.inputs[0]);
    const auto& sym = graph.symbolic_dims.at(graph.inputs[0]);
    if (vi.shape.size() == 4) {
      Shape shape = vi.shape;
      if (!sym[1].empty()) shape[1] = 3;
      if (!sym[2].empty()) shape[2] = 224;
      if (!sym[3].empty()) shape[3] = 224;
      opts.input_shapes[graph.inputs[0]] = shape;
    }
  }
  Session session = Session::from_graph(std::move(graph), opts);
  if (explain) {
    int fused = 0;
    for (const Node& n : session.graph().nodes)
      if (n.op == "FusedInvertedResidual" || n.op == "FusedSEBlock" || n.op == "FusedQLinearInvertedResidual") {
        ++fused;
        std::fprintf(stderr, "explain: fused %s <- %s%s\n", n.name.c_str(), n.s("fused_nodes", "?").c_str(),
                     n.i("residual", 0) ? " (with residual add)" : "");
      }
    for (const PassRemark& r : session.pass_report().remarks)
      std::fprintf(stderr, "explain: %s: %s: %s: %s\n", remark_kind_name(r.kind), r.pass.c_str(), r.node.c_str(),
                   r.message.c_str());
    std::fprintf(stderr, "explain: %d inverted-residual blocks fused, %zu remarks (%s backend)\n", fused,
                 session.pass_report().remarks.size(), so.backend_name.c_str());
  }
  if (!remarks_file.empty()) write_remarks(remarks_file, model, opts.backend_name, session);
  auto run_timed = [&](const std::map<std::string, Tensor>& feed, double& ms) {
    auto t0 = std::chrono::steady_clock::now();
    auto out = session.run(feed);
    ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return out;
  };

  if (!inputs.empty()) {
    double ms = 0;
    auto out = run_timed(feed, ms);
    const std::string& dir = out_dir;
    for (size_t i = 0; i < out.size(); ++i) {
      std::printf("output %zu '%s' %s %s\n", i, session.output_names()[i].c_str(), dtype_name(out[i].dtype),
                  shape_str(out[i].shape).c_str());
      if (!dir.empty()) {
        onnx_import::save_tensor_file((fs::path(dir) / ("output_" + std::to_string(i) + ".pb")).string(), out[i],
                                      session.output_names()[i]);
      }
    }
    std::printf("latency %.3f ms\n", ms);
    return 0;
  }

  LOCUS_CHECK(session.input_names().size() == 1, "run --image needs a model with one input; this one has ",
              session.input_names().size());
  const std::string& in_name = session.input_names()[0];
  ValueInfo vi = session.input_info(in_name);
  LOCUS_CHECK(vi.dtype == DType::F32 && vi.shape.size() == 4 && vi.shape[1] == 3,
              "run --image needs a float32 [N,3,H,W] input; '", in_name, "' is ", dtype_name(vi.dtype), " ",
              shape_str(vi.shape));
  LOCUS_CHECK(vi.shape[0] == 1, "run --image classifies one photo at a time; the model input has batch ", vi.shape[0]);
  LOCUS_CHECK(vi.shape[2] == vi.shape[3], "run --image needs a square input, got ", shape_str(vi.shape));
  int64_t crop = vi.shape[2];
  int64_t resize = crop * 256 / 224;

  std::vector<std::string> labels;
  if (!labels_file.empty()) {
    labels = load_labels(labels_file);
  } else {
    try {
      labels = load_labels(models::find_model("imagenet_synset.txt", ml.model_dir));
    } catch (const Error&) {
      // no labels: class ids only
    }
  }

  const std::string& dir = out_dir;
  for (size_t k = 0; k < images.size(); ++k) {
    Tensor x = preprocess_imagenet(decode_image(images[k]), resize, crop, LongSide::Round);
    double ms = 0;
    auto out = run_timed({{in_name, std::move(x)}}, ms);
    const Tensor& logits = out[0];
    LOCUS_CHECK(logits.dtype == DType::F32, "output 0 is not float32");
    auto prob = to_probabilities(logits);
    std::vector<size_t> order(prob.size());
    std::iota(order.begin(), order.end(), 0);
    size_t kk = std::min<size_t>(size_t(top), order.size());
    std::partial_sort(order.begin(), order.begin() + long(kk), order.end(),
                      [&](size_t i, size_t j) {
                        // NaN ranks last (a strict weak order even when the model returns NaN)
                        const bool ni = std::isnan(prob[i]), nj = std::isnan(prob[j]);
                        if (ni || nj) return !ni && nj ? true : (ni && nj && i < j);
                        return prob[i] > prob[j] || (prob[i] == prob[j] && i < j);
                      });
    std::printf("# %s  %.2f ms\n", images[k].c_str(), ms);
    for (size_t r = 0; r < kk; ++r) {
      size_t c = order[r];
      std::string label = (labels.size() == prob.size()) ? labels[c] : "";
      std::printf("%zu\t%zu\t%.4f\t%s\n", r + 1, c, prob[c], label.c_str());
    }
    // Classes outside the top K with exactly the probability of rank K (a quantized model's logits
    // come in steps, so ties are common): which of them is listed is only the tie-break (the lower
    // class id), so name the others.
    if (kk > 0 && kk < order.size()) {
      const double last = prob[order[kk - 1]];
      std::string tied;
      for (size_t c = 0; c < prob.size(); ++c)
        if (prob[c] == last && std::find(order.begin(), order.begin() + long(kk), c) == order.begin() + long(kk))
          tied += cat(tied.empty() ? "" : ", ", c, labels.size() == prob.size() ? cat(" (", labels[c], ")") : "");
      if (!tied.empty()) std::printf("# rank %zu ties with %s\n", kk, tied.c_str());
    }
    if (!dir.empty()) {
      for (size_t i = 0; i < out.size(); ++i)
        onnx_import::save_tensor_file(
            (fs::path(dir) / (fs::path(images[k]).stem().string() + "_output_" + std::to_string(i) + ".pb")).string(),
            out[i], session.output_names()[i]);
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace locus::cli
