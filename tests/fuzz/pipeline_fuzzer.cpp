// libFuzzer target for the whole pipeline on small fuzzed models: ONNX bytes -> importer -> shape
// inference and the default passes -> native backend compile -> one run on zero inputs. Any input
// must either run or throw locus::Error; anything else (another exception type, a crash, a
// sanitizer report, a hang, a large allocation) is a bug. Outputs must have the sizes their shapes
// say.
//
// Budget: the session gets SessionOptions::max_memory_bytes = 256 MiB (it refuses bigger plans with a
// locus::Error before allocating); scripts/run-fuzzer.sh also runs it with -rss_limit_mb and
// -malloc_limit_mb (a bigger allocation is then a bug: the budget missed it) and -timeout. Graph inputs larger
// than kMaxInputElements are skipped (fuzzer policy, not an error).
//
// With LOCUS_FUZZ_WRITE_SEEDS=<dir> the binary writes small seed models into <dir> and exits; with
// LOCUS_FUZZ_VERBOSE=1 it prints one line per input (ran, or the error).
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "graph/error.h"
#include "graph/ops.h"
#include "importers/onnx/onnx_importer.h"
#include "runtime/session.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

using locus_fuzz::attr;
using locus_fuzz::ModelBuilder;
using onnx::AttributeProto;
using onnx::TensorProto;

constexpr int64_t kMaxInputElements = int64_t{1} << 20;
constexpr int64_t kMemoryBudget = int64_t{256} << 20;
// LOCUS_FUZZ_VERBOSE=1: one line per input (ran / the error), to see what a corpus exercises
const bool g_verbose = std::getenv("LOCUS_FUZZ_VERBOSE") != nullptr;

onnx::NodeProto* conv(ModelBuilder& b, const std::string& x, const std::string& w, const std::string& y,
                      int64_t k, int64_t group, int64_t stride) {
  auto* c = b.node("Conv", {x, w}, {y});
  auto* ks = attr(c, "kernel_shape", AttributeProto::INTS);
  ks->add_ints(k);
  ks->add_ints(k);
  auto* pads = attr(c, "pads", AttributeProto::INTS);
  for (int i = 0; i < 4; ++i) pads->add_ints(k / 2);
  auto* st = attr(c, "strides", AttributeProto::INTS);
  st->add_ints(stride);
  st->add_ints(stride);
  attr(c, "group", AttributeProto::INT)->set_i(group);
  return c;
}

void write_seeds(const std::string& dir) {
  auto save = [&](const std::string& name, const onnx::ModelProto& m) { locus_fuzz::write_message(dir + "/" + name + ".onnx", m); };
  {  // inverted residual block (fused by the native backend): 1x1 -> ReLU6 -> dw 3x3 -> ReLU6 -> 1x1 (+x)
    ModelBuilder b(13);
    b.input("x", {1, 4, 6, 6});
    b.init_filled("w1", {8, 4, 1, 1});
    b.init_filled("w2", {8, 1, 3, 3});
    b.init_filled("w3", {4, 8, 1, 1});
    b.init_filled("lo", {}, 0.f);
    b.init_filled("hi", {}, 6.f);
    conv(b, "x", "w1", "a", 1, 1, 1);
    b.node("Clip", {"a", "lo", "hi"}, {"ar"});
    conv(b, "ar", "w2", "d", 3, 8, 1);
    b.node("Clip", {"d", "lo", "hi"}, {"dr"});
    conv(b, "dr", "w3", "p", 1, 1, 1);
    b.node("Add", {"p", "x"}, {"y"});
    b.output("y");
    save("inverted_residual", b.m);
  }
  {  // classifier head: conv stride 2, BN, ReLU, max pool, GAP, flatten, Gemm, softmax
    ModelBuilder b(13);
    b.input("x", {-1, 3, 8, 8});
    b.init_filled("w", {4, 3, 3, 3});
    for (const char* n : {"s", "bb", "mean"}) b.init_filled(n, {4}, 0.5f);
    b.init_filled("var", {4}, 1.f);
    b.init_filled("fc", {5, 4});
    b.init_filled("fb", {5});
    conv(b, "x", "w", "c", 3, 1, 2);
    b.node("BatchNormalization", {"c", "s", "bb", "mean", "var"}, {"bn"});
    b.node("Relu", {"bn"}, {"r"});
    auto* mp = b.node("MaxPool", {"r"}, {"mp"});
    auto* ks = attr(mp, "kernel_shape", AttributeProto::INTS);
    ks->add_ints(2);
    ks->add_ints(2);
    b.node("GlobalAveragePool", {"mp"}, {"gap"});
    b.node("Flatten", {"gap"}, {"f"});
    auto* g = b.node("Gemm", {"f", "fc", "fb"}, {"logits"});
    attr(g, "transB", AttributeProto::INT)->set_i(1);
    b.node("Softmax", {"logits"}, {"y"});
    b.output("y");
    save("classifier", b.m);
  }
  {  // elementwise and shape ops: Concat, Mul, Sigmoid, Reshape, Transpose, AveragePool
    ModelBuilder b(13);
    b.input("x", {1, 2, 4, 4});
    b.input("z", {1, 2, 4, 4});
    b.node("Concat", {"x", "z"}, {"c"});
    attr(b.g().mutable_node(0), "axis", AttributeProto::INT)->set_i(1);
    b.node("Sigmoid", {"c"}, {"s"});
    b.node("Mul", {"c", "s"}, {"m"});
    auto* ap = b.node("AveragePool", {"m"}, {"ap"});
    auto* ks = attr(ap, "kernel_shape", AttributeProto::INTS);
    ks->add_ints(2);
    ks->add_ints(2);
    b.init("shape", {2}, TensorProto::INT64)->add_int64_data(1);
    b.g().mutable_initializer(0)->add_int64_data(-1);
    b.node("Reshape", {"ap", "shape"}, {"r"});
    auto* t = b.node("Transpose", {"r"}, {"y"});
    auto* perm = attr(t, "perm", AttributeProto::INTS);
    perm->add_ints(1);
    perm->add_ints(0);
    b.output("y");
    save("elementwise", b.m);
  }
}

}  // namespace

LOCUS_FUZZ_INITIALIZE_WITH_SEEDS(write_seeds)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    locus::Graph g = locus::onnx_import::load_model_from_bytes(data, size);
    if (!locus::unsupported_nodes(g).empty()) return 0;  // refused by every command, with the list
    locus::SessionOptions o;
    o.backend_name = "native";
    o.threads = 1;
    o.backend.l2_bytes = 64 * 1024;  // cache tiling on, with small tiles
    o.max_memory_bytes = kMemoryBudget;  // refused with a locus::Error beyond it
    locus::Session s = locus::Session::from_graph(std::move(g), o);
    std::map<std::string, locus::Tensor> feed;
    for (const auto& name : s.input_names()) {
      const locus::ValueInfo vi = s.input_info(name);
      if (locus::checked_numel(vi.shape, name) > kMaxInputElements) return 0;
      feed[name] = locus::Tensor(vi.dtype, vi.shape);
    }
    const auto out = s.run(feed);
    for (const auto& t : out)
      if (t.bytes.size() != size_t(t.numel()) * locus::dtype_size(t.dtype)) std::abort();
    if (g_verbose) std::fprintf(stderr, "ran: %zu outputs\n", out.size());
  } catch (const locus::Error& e) {
    // expected for malformed, unsupported or over-budget models
    if (g_verbose) std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 0;
}
