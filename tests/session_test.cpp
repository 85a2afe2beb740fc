// Session contract under misuse: the memory budget, symbolic input dims, models without outputs,
// and sessions used from several threads (shared, and one per thread).
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <thread>

#include "models/builders.h"
#include "runtime/memory_budget.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"

namespace locus {
namespace {

using test::GraphBuilder;

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- options: every setting reaches the backend ----

// SessionOptions::backend's tiling settings are resolved once (Session::tiling) and are what the
// native backend compiled with; the pipeline's options reach the pipeline (a disabled pass does not
// run); a backend without the tiling path has no settings.
TEST(SessionOptions, SettingsReachTheBackendAndThePipeline) {
  GraphBuilder b;
  b.input("x", {1, 32, 14, 14});
  std::string w = b.random_constant("w", {64, 32, 1, 1}, 1);
  std::string y = b.node("Conv", {"x", w}, {{"kernel_shape", std::vector<int64_t>{1, 1}}});
  Graph g = b.finish({b.node("Relu", {y})});
  SessionOptions o;
  o.backend.l2_bytes = 64 * 1024;
  o.backend.tile_order = schedule::TileOrder::Col;
  Session s = Session::from_graph(g, o);
  ASSERT_TRUE(s.tiling().has_value());
  EXPECT_EQ(s.tiling()->l2_bytes, 64 * 1024);
  EXPECT_EQ(s.tiling()->l2_source, SettingSource::Option);
  EXPECT_EQ(s.tiling()->buffer_entries, 64 * 1024 / 4 / 2);  // L2 / 4 bytes x the 0.5 safety fraction
  EXPECT_EQ(s.tiling()->order, schedule::TileOrder::Col);
  EXPECT_EQ(s.tiling()->order_source, SettingSource::Option);
  auto compiled = s.executable().pointwise_tiling();
  ASSERT_TRUE(compiled.has_value());
  EXPECT_EQ(compiled->l2_bytes, 64 * 1024);
  EXPECT_EQ(compiled->order, schedule::TileOrder::Col);
  ASSERT_EQ(s.executable().pointwise_plans().size(), 1u);
  ASSERT_TRUE(s.executable().pointwise_plans()[0].plan.has_value());
  EXPECT_TRUE(s.executable().pointwise_plans()[0].plan->order == schedule::Order::ColMajor)
      << schedule::order_name(s.executable().pointwise_plans()[0].plan->order);

  o.pipeline.disabled_passes = {"fuse-activation"};
  Session unfused = Session::from_graph(g, o);
  EXPECT_EQ(unfused.graph().nodes.size(), 2u);  // Conv and Relu stay apart
  EXPECT_EQ(s.graph().nodes.size(), 1u);        // Conv+Relu

  o.backend_name = "reference";
  EXPECT_FALSE(Session::from_graph(g, o).tiling().has_value());
}

// ---- memory budget ----

TEST(MemoryBudget, HugeTensorIsRefusedBeforeAllocation) {
  // The probe: a Relu over [1,1,1,2^31] (8 GiB in, 8 GiB out) from a 93-byte model. With a 1 GiB
  // budget the session must refuse, naming the figure and the budget, without allocating (this test
  // would take 16 GiB and minutes otherwise).
  GraphBuilder b;
  b.input("x", {1, 1, 1, int64_t(1) << 31});
  Graph g = b.finish({b.node("Relu", {"x"})});
  SessionOptions o;
  o.max_memory_bytes = int64_t(1) << 30;
  const std::string m = error_of([&] { Session::from_graph(g, o); });
  EXPECT_NE(m.find("needs 32.0 GiB"), std::string::npos) << m;
  EXPECT_NE(m.find("memory budget of 1.0 GiB"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

TEST(MemoryBudget, DefaultIsAFractionOfUsableMemory) {
  const MemoryBudget d = MemoryBudget::resolve(0);
  const int64_t usable = usable_memory_bytes();
  ASSERT_GT(usable, 0) << "this machine reports no memory size";
  EXPECT_EQ(d.limit_bytes, int64_t(double(usable) * kDefaultBudgetFraction));
  EXPECT_EQ(MemoryBudget::resolve(12345).limit_bytes, 12345);
  EXPECT_THROW(MemoryBudget::resolve(-1), Error);
}

// Each backend checks its own plan too: a model whose activations fit the session's estimate but
// whose native plan (arena + packed weights) does not.
TEST(MemoryBudget, BudgetSeparatesModelsThatFitFromThoseThatDoNot) {
  GraphBuilder b;
  b.input("x", {1, 16, 64, 64});  // 256 KiB
  std::string w = b.random_constant("w", {16, 16, 1, 1}, 1);
  std::string y = b.node("Conv", {"x", w}, {{"kernel_shape", std::vector<int64_t>{1, 1}}});
  Graph g = b.finish({b.node("Relu", {y})});
  SessionOptions o;
  o.max_memory_bytes = 100 * 1024;  // below the input alone
  for (const char* backend : {"native", "onednn", "reference"}) {
    o.backend_name = backend;
    const std::string m = error_of([&] { Session::from_graph(g, o); });
    EXPECT_NE(m.find("memory budget of 100 KiB"), std::string::npos) << backend << ": " << m;
  }
  o.max_memory_bytes = 64 << 20;
  o.backend_name = "native";
  Session s = Session::from_graph(g, o);
  EXPECT_GT(s.planned_memory_bytes(), 3 * 256 * 1024);  // input, conv output, relu output (or in place)
  EXPECT_LE(s.planned_memory_bytes(), 64 << 20);
}

TEST(MemoryBudget, SaturatingArithmetic) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(add_bytes(big - 1, 5), big);
  EXPECT_EQ(add_bytes(2, 3), 5);
  EXPECT_EQ(mul_bytes(int64_t(1) << 40, int64_t(1) << 40), big);
  EXPECT_EQ(mul_bytes(0, big), 0);
  EXPECT_EQ(mul_bytes(6, 7), 42);
}

// ---- graph inputs ----

TEST(SessionInputs, SymbolicDimsNeedValues) {
  GraphBuilder b;
  b.input("x", {1, 1, 1, 1});  // as the importer leaves a fully symbolic [N,C,H,W]
  Graph g = b.finish({b.node("Relu", {"x"})});
  g.symbolic_dims["x"] = {"N", "C", "H", "W"};
  const std::string m = error_of([&] { Session::from_graph(g); });
  EXPECT_NE(m.find("'C' at axis 1, 'H' at axis 2, 'W' at axis 3"), std::string::npos) << m;
  EXPECT_EQ(m.find("'N'"), std::string::npos) << "the batch axis takes --batch: " << m;

  SessionOptions o;
  o.input_shapes["x"] = {2, 3, 5, 7};
  Session s = Session::from_graph(g, o);
  EXPECT_EQ(s.input_info("x").shape, (Shape{2, 3, 5, 7}));
  Tensor x = test::random_tensor({2, 3, 5, 7}, 3);
  auto out = s.run({{"x", x}});
  ASSERT_EQ(out[0].shape, (Shape{2, 3, 5, 7}));
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(out[0].data<float>()[i], std::max(0.f, x.data<float>()[i]));

  o.input_shapes["x"] = {2, 3, 5};
  EXPECT_NE(error_of([&] { Session::from_graph(g, o); }).find("has rank 4"), std::string::npos);
  o.input_shapes.clear();
  o.input_shapes["y"] = {1};
  EXPECT_NE(error_of([&] { Session::from_graph(g, o); }).find("no such input"), std::string::npos);
}

TEST(SessionInputs, GivenShapeMustAgreeWithFixedDims) {
  GraphBuilder b;
  b.input("x", {1, 3, 1, 1});
  Graph g = b.finish({b.node("Relu", {"x"})});
  g.symbolic_dims["x"] = {"N", "", "H", "W"};  // C is fixed at 3
  SessionOptions o;
  o.input_shapes["x"] = {1, 4, 8, 8};
  EXPECT_NE(error_of([&] { Session::from_graph(g, o); }).find("fixed shape"), std::string::npos);
  o.input_shapes["x"] = {1, 3, 8, 8};
  EXPECT_EQ(Session::from_graph(g, o).input_info("x").shape, (Shape{1, 3, 8, 8}));
}

TEST(SessionInputs, ModelWithoutOutputsIsRefused) {
  GraphBuilder b;
  b.input("x", {1, 2});
  b.node("Relu", {"x"});
  b.g.outputs.clear();
  EXPECT_NE(error_of([&] { Session::from_graph(b.g); }).find("has no outputs"), std::string::npos);
}

// ---- inputs held by the caller (Session::run_views: the Python module's NumPy arrays) ----

// A view of the caller's buffer gives the outputs run() gives for a Tensor with the same bytes, on
// the native backend (read in place) and on one that copies (reference), and is checked the same
// way: wrong type, wrong shape, wrong byte count, missing and unknown names.
TEST(SessionInputs, ViewsRunLikeTensorsAndAreCheckedTheSame) {
  for (const char* backend : {"native", "reference"}) {
    SCOPED_TRACE(backend);
    models::BuildOptions bo;
    bo.resolution = 32;
    bo.num_classes = 8;
    SessionOptions o;
    o.backend_name = backend;
    o.threads = 1;
    Session s = Session::from_graph(models::build_mobilenet_v2(bo), o);
    const std::string in = s.input_names()[0];
    const Tensor x = test::random_tensor(s.input_info(in).shape, 7);
    const std::vector<float> buffer(x.data<float>(), x.data<float>() + x.numel());  // the caller's memory
    const TensorView v{DType::F32, x.shape, buffer.data(), buffer.size() * sizeof(float)};
    const std::vector<Tensor> want = s.run({{in, x}});
    const std::vector<Tensor> got = s.run_views({{in, v}});
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(got[0].shape, want[0].shape);
    EXPECT_EQ(got[0].bytes, want[0].bytes);
    TensorView wrong_type = v;
    wrong_type.dtype = DType::F64;
    EXPECT_EQ(error_of([&] { s.run_views({{in, wrong_type}}); }),
              "input '" + in + "' has type float64, the model expects float32");
    TensorView wrong_shape = v;
    wrong_shape.shape = {1, 3, 32, 16};
    EXPECT_EQ(error_of([&] { s.run_views({{in, wrong_shape}}); }),
              "input '" + in + "' has shape [1,3,32,16], the model expects [1,3,32,32]");
    TensorView short_buffer = v;
    short_buffer.bytes -= 4;
    EXPECT_EQ(error_of([&] { s.run_views({{in, short_buffer}}); }),
              "input '" + in + "' holds the wrong number of bytes for its shape");
    EXPECT_EQ(error_of([&] { s.run_views({}); }), "missing input '" + in + "'");
    EXPECT_EQ(error_of([&] { s.run_views({{in, v}, {"extra", v}}); }), "the model has no input named 'extra'");
  }
}

// ---- threads ----

Graph small_mobilenet() {
  models::BuildOptions bo;
  bo.resolution = 64;
  bo.num_classes = 16;
  return models::build_mobilenet_v2(bo);
}

// Eight different inputs and their outputs from one thread, one at a time.
struct Expected {
  std::vector<Tensor> inputs, outputs;
};

Expected expected_outputs(Session& s) {
  Expected e;
  for (uint32_t k = 0; k < 8; ++k) {
    e.inputs.push_back(test::random_tensor(s.input_info(s.input_names()[0]).shape, 100 + k));
    e.outputs.push_back(s.run({{s.input_names()[0], e.inputs.back()}})[0]);
  }
  return e;
}

bool same(const Tensor& a, const Tensor& b) {
  return a.shape == b.shape && a.bytes == b.bytes;  // bit-identical: same plan, same kernels
}

class SessionThreads : public ::testing::TestWithParam<const char*> {
 protected:
  // A session of the backend under test on one OpenMP thread, and its outputs run one at a time.
  SessionOptions one_thread() const {
    SessionOptions o;
    o.backend_name = GetParam();
    o.threads = 1;
    return o;
  }
};

// Four threads share one session, each running different inputs: every output must be the one the
// same input gives when run alone (before serialisation: 178 of 200 wrong on native, a crash on
// oneDNN).
TEST_P(SessionThreads, SharedSessionGivesEachCallerItsOwnResult) {
  Session s = Session::from_graph(small_mobilenet(), one_thread());
  const Expected e = expected_outputs(s);
  std::atomic<int> wrong{0}, done{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int r = 0; r < 12; ++r) {
        const size_t k = size_t((t * 5 + r) % 8);
        auto out = s.run({{s.input_names()[0], e.inputs[k]}});
        if (!same(out[0], e.outputs[k])) ++wrong;
        ++done;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(done.load(), 48);
  EXPECT_EQ(wrong.load(), 0);
}

// One session per thread, run at the same time.
TEST_P(SessionThreads, OneSessionPerThread) {
  const SessionOptions o = one_thread();
  Session ref = Session::from_graph(small_mobilenet(), o);
  const Expected e = expected_outputs(ref);
  std::atomic<int> wrong{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t)
    ts.emplace_back([&, t] {
      Session mine = Session::from_graph(small_mobilenet(), o);
      for (int r = 0; r < 8; ++r) {
        const size_t k = size_t((t + r) % 8);
        if (!same(mine.run({{mine.input_names()[0], e.inputs[k]}})[0], e.outputs[k])) ++wrong;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// The thread count belongs to the session: an application that changes its OpenMP thread count
// after creating a session neither changes how the session runs (its scratch was sized for its
// count; more threads wrote past it) nor gets its own setting changed by a run.
TEST_P(SessionThreads, RunKeepsTheCallersOpenMpSettings) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  SessionOptions o;
  o.backend_name = GetParam();
  Session s = Session::from_graph(small_mobilenet(), o);  // threads 0: the count at creation, 1
  EXPECT_EQ(omp_get_max_threads(), 1);
  const Expected e = expected_outputs(s);
  omp_set_num_threads(8);
  EXPECT_TRUE(same(s.run({{s.input_names()[0], e.inputs[3]}})[0], e.outputs[3]));
  EXPECT_EQ(omp_get_max_threads(), 8);
  SessionOptions two = o;
  two.threads = 2;
  Session s2 = Session::from_graph(small_mobilenet(), two);
  s2.run({{s2.input_names()[0], e.inputs[0]}});
  EXPECT_EQ(omp_get_max_threads(), 8);
  omp_set_num_threads(saved);
}

INSTANTIATE_TEST_SUITE_P(Backends, SessionThreads, ::testing::Values("native", "native-unfused", "onednn"));

}  // namespace
}  // namespace locus
