// CP decomposition: the ALS fitting (graph/decompose/cp_als.h) on synthetic tensors of known rank and
// the exact full-rank construction; the cp-decompose pass (graph/passes/cp_decompose.h): the chain it
// builds equals the original convolution at full rank on ragged shapes (stride 2, asymmetric pads,
// dilation 2) in both forms, and the convolution with the CP-reconstructed kernel at lower ranks; each
// rank policy's choice; the refusals and their reasons; RankPolicy::parse.
//
// Expected values are computed here independently: tensors are built from their factors by explicit
// loops, reconstructions of the chain's weights by explicit sums, MACs and full ranks by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "accel/accel_config.h"
#include "accel/evaluator.h"
#include "accel/mapper.h"
#include "accel/workload.h"
#include "graph/decompose/cp_als.h"
#include "graph/ops.h"
#include "graph/passes/cp_decompose.h"
#include "graph/passes/pass_manager.h"
#include "graph/passes/pipeline.h"
#include "runtime/backend.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"

using namespace locus;
using locus::decompose::CpAlsOptions;
using locus::decompose::CpFit;
using locus::decompose::DenseTensor;
using locus::test::GraphBuilder;

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers for the ALS tests

// Uniform factors in [-1, 1) (fixed seed), one matrix dims[n] x rank per mode.
std::vector<std::vector<double>> random_factors(const std::vector<int64_t>& dims, int64_t rank, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<std::vector<double>> f;
  for (int64_t d : dims) {
    std::vector<double> a(size_t(d * rank));
    for (auto& v : a) v = u(gen);
    f.push_back(std::move(a));  // a[i * rank + r]
  }
  return f;
}

// Multi-index (row-major) of element e.
std::vector<int64_t> unravel(int64_t e, const std::vector<int64_t>& dims) {
  std::vector<int64_t> idx(dims.size());
  for (size_t n = dims.size(); n-- > 0;) {
    idx[n] = e % dims[n];
    e /= dims[n];
  }
  return idx;
}

int64_t numel(const std::vector<int64_t>& dims) {
  int64_t p = 1;
  for (int64_t d : dims) p *= d;
  return p;
}

// The tensor sum_r prod_n f[n][i_n, r], element by element.
DenseTensor tensor_from_factors(const std::vector<int64_t>& dims, const std::vector<std::vector<double>>& f,
                                int64_t rank) {
  DenseTensor x;
  x.dims = dims;
  x.data.resize(size_t(numel(dims)));
  for (int64_t e = 0; e < numel(dims); ++e) {
    auto idx = unravel(e, dims);
    double s = 0;
    for (int64_t r = 0; r < rank; ++r) {
      double p = 1;
      for (size_t n = 0; n < dims.size(); ++n) p *= f[n][size_t(idx[n] * rank + r)];
      s += p;
    }
    x.data[size_t(e)] = s;
  }
  return x;
}

// ||x - [[factors]]|| / ||x|| with the reconstruction done element by element (not cp_reconstruct).
double independent_rel_error(const DenseTensor& x, const std::vector<Eigen::MatrixXd>& f) {
  double num = 0, den = 0;
  for (int64_t e = 0; e < numel(x.dims); ++e) {
    auto idx = unravel(e, x.dims);
    double s = 0;
    for (int64_t r = 0; r < f[0].cols(); ++r) {
      double p = 1;
      for (size_t n = 0; n < x.dims.size(); ++n) p *= f[n](idx[n], r);
      s += p;
    }
    num += (x.data[size_t(e)] - s) * (x.data[size_t(e)] - s);
    den += x.data[size_t(e)] * x.data[size_t(e)];
  }
  return std::sqrt(num / den);
}

DenseTensor random_dense(const std::vector<int64_t>& dims, uint32_t seed) {
  DenseTensor x;
  x.dims = dims;
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  x.data.resize(size_t(numel(dims)));
  for (auto& v : x.data) v = u(gen);
  return x;
}

struct LowRankCase {
  std::vector<int64_t> dims;
  int64_t rank;
};

void expect_recovers(const LowRankCase& c, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "dims " << shape_str(c.dims) << " rank " << c.rank);
  DenseTensor x = tensor_from_factors(c.dims, random_factors(c.dims, c.rank, seed), c.rank);
  CpAlsOptions o;
  o.max_iterations = 2000;
  o.tolerance = 1e-12;
  CpFit fit = decompose::cp_als(x, c.rank, o);
  EXPECT_EQ(fit.rank, c.rank);
  EXPECT_FALSE(fit.exact);
  ASSERT_EQ(fit.factors.size(), c.dims.size());
  for (size_t n = 0; n < c.dims.size(); ++n) {
    EXPECT_EQ(fit.factors[n].rows(), c.dims[n]);
    EXPECT_EQ(fit.factors[n].cols(), c.rank);
  }
  EXPECT_LT(fit.rel_error, 1e-4);
  EXPECT_LT(independent_rel_error(x, fit.factors), 1e-4);
  EXPECT_NEAR(fit.rel_error, independent_rel_error(x, fit.factors), 1e-9);
  EXPECT_GE(fit.iterations, 1);
  EXPECT_LE(fit.iterations, o.max_iterations);
  ASSERT_EQ(fit.error_history.size(), size_t(fit.iterations));
  // ALS never makes the fit worse (up to the ~1e-8 resolution of the Gram-identity estimate)
  for (size_t k = 1; k < fit.error_history.size(); ++k)
    EXPECT_LE(fit.error_history[k], fit.error_history[k - 1] + 1e-7) << "sweep " << k;
  // a rank below the true one cannot fit exactly
  if (c.rank > 1) {
    EXPECT_GT(decompose::cp_als(x, c.rank - 1, o).rel_error, 1e-3);
  }
}

}  // namespace

TEST(CpAls, RecoversLowRankThreeWayTensors) {
  uint32_t seed = 11;
  for (const LowRankCase& c : {LowRankCase{{8, 6, 9}, 3}, LowRankCase{{16, 12, 9}, 5},
                               LowRankCase{{5, 7, 4}, 4}, LowRankCase{{20, 3, 9}, 2}})
    expect_recovers(c, seed++);
}

TEST(CpAls, RecoversLowRankFourWayTensors) {
  uint32_t seed = 101;
  for (const LowRankCase& c :
       {LowRankCase{{8, 5, 3, 3}, 3}, LowRankCase{{6, 7, 3, 4}, 4}, LowRankCase{{12, 10, 3, 3}, 6}})
    expect_recovers(c, seed++);
}

TEST(CpAls, StopsOnStagnationOrAtTheCap) {
  DenseTensor x = random_dense({10, 8, 9}, 5);  // full-rank noise: ALS converges slowly
  CpAlsOptions capped;
  capped.max_iterations = 3;
  capped.tolerance = 0;
  CpFit a = decompose::cp_als(x, 6, capped);
  EXPECT_EQ(a.iterations, 3);
  CpAlsOptions loose;
  loose.max_iterations = 1000;
  loose.tolerance = 1e-2;
  CpFit b = decompose::cp_als(x, 6, loose);
  ASSERT_GE(b.iterations, 2);
  EXPECT_LT(b.iterations, 1000);
  const auto& h = b.error_history;
  EXPECT_LT(std::fabs(h[h.size() - 1] - h[h.size() - 2]), 1e-2);
  for (size_t k = 1; k + 1 < h.size(); ++k) EXPECT_GE(std::fabs(h[k] - h[k - 1]), 1e-2) << "stopped late, sweep " << k;
}

TEST(CpAls, IsDeterministic) {
  DenseTensor x = random_dense({9, 7, 9}, 3);
  CpFit a = decompose::cp_als(x, 5), b = decompose::cp_als(x, 5);
  ASSERT_EQ(a.iterations, b.iterations);
  for (size_t n = 0; n < a.factors.size(); ++n) EXPECT_TRUE(a.factors[n] == b.factors[n]) << "factor " << n;
  EXPECT_EQ(a.rel_error, b.rel_error);
}

TEST(CpAls, RankAboveAModeSizeIsPaddedAndStaysFinite) {
  // Cin = 3 < R = 7: the initial V has 3 singular vectors and 4 padded columns
  DenseTensor x = random_dense({12, 3, 9}, 8);
  CpFit fit = decompose::cp_als(x, 7);
  for (auto& f : fit.factors) EXPECT_TRUE(f.allFinite());
  EXPECT_LT(fit.rel_error, decompose::cp_als(x, 1).rel_error);
  EXPECT_NEAR(fit.rel_error, independent_rel_error(x, fit.factors), 1e-9);
}

TEST(CpAls, RejectsBadArguments) {
  DenseTensor x = random_dense({4, 3, 2}, 1);
  EXPECT_THROW(decompose::cp_als(x, 0), Error);
  DenseTensor bad = x;
  bad.data.pop_back();
  EXPECT_THROW(decompose::cp_als(bad, 2), Error);
  DenseTensor vec;
  vec.dims = {5};
  vec.data.assign(5, 1.0);
  EXPECT_THROW(decompose::cp_als(vec, 1), Error);
}

TEST(CpExact, FullRankIsTheSmallestProductOfAllModesButOne) {
  // products of all modes but one, by hand
  EXPECT_EQ(decompose::cp_full_rank({7, 5, 9}), 35);      // 45, 63, 35
  EXPECT_EQ(decompose::cp_full_rank({32, 3, 9}), 27);     // 27, 288, 96 (MobileNetV2 stem, 3-way)
  EXPECT_EQ(decompose::cp_full_rank({3, 10, 4}), 12);     // 40, 12, 30
  EXPECT_EQ(decompose::cp_full_rank({6, 4, 3, 3}), 36);   // 36, 54, 72, 72
  EXPECT_EQ(decompose::cp_full_rank({64, 64, 3, 3}), 576);
}

TEST(CpExact, ReconstructsAnyTensorAtNumericalNoise) {
  uint32_t seed = 40;
  for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{
           {7, 5, 9}, {3, 10, 4}, {5, 11, 2}, {6, 4, 3, 3}, {2, 3, 5, 4}}) {
    SCOPED_TRACE(shape_str(dims));
    DenseTensor x = random_dense(dims, seed++);
    const int64_t full = decompose::cp_full_rank(dims);
    CpFit e = decompose::cp_fit(x, full);
    EXPECT_TRUE(e.exact);
    EXPECT_EQ(e.rank, full);
    EXPECT_EQ(e.iterations, 0);
    EXPECT_LT(e.rel_error, 1e-6);
    EXPECT_LT(independent_rel_error(x, e.factors), 1e-6);
    // asking for more gives the same construction; asking for less fits (and cannot be exact here)
    EXPECT_EQ(decompose::cp_fit(x, full + 5).rank, full);
    CpFit low = decompose::cp_fit(x, 2);
    EXPECT_FALSE(low.exact);
    EXPECT_GT(low.rel_error, 1e-3);
  }
}

// ---------------------------------------------------------------------------------------------
// The pass

namespace {

struct ConvSpec {
  int64_t n = 1, cin = 5, cout = 7, h = 11, w = 8, kh = 3, kw = 3;
  std::vector<int64_t> strides{1, 1}, pads{1, 1, 1, 1}, dilations{1, 1};
  int64_t group = 1;
  bool bias = true;
  std::string activation;  // "", "relu" or "clip" (as fuse-activation leaves it)
  float act_lo = 0.f, act_hi = 6.f;
  bool weight_is_input = false;
};

struct OneConv {
  Graph g;
  std::string conv, out;
};

OneConv one_conv(const ConvSpec& s, uint32_t seed) {
  GraphBuilder b;
  std::string x = b.input("x", {s.n, s.cin, s.h, s.w});
  std::string w = s.weight_is_input ? b.input("w", {s.cout, s.cin / s.group, s.kh, s.kw})
                                    : b.random_constant("w", {s.cout, s.cin / s.group, s.kh, s.kw}, seed);
  std::vector<std::string> ins = {x, w};
  if (s.bias) ins.push_back(b.random_constant("b", {s.cout}, seed + 1, -0.5f, 0.5f));
  std::map<std::string, Attr> attrs{{"group", s.group},         {"strides", s.strides},
                                    {"pads", s.pads},           {"dilations", s.dilations},
                                    {"kernel_shape", std::vector<int64_t>{s.kh, s.kw}}};
  if (!s.activation.empty()) {
    attrs["locus.activation"] = s.activation;
    if (s.activation == "clip") {
      attrs["locus.activation_min"] = s.act_lo;
      attrs["locus.activation_max"] = s.act_hi;
    }
  }
  OneConv r;
  r.out = b.node("Conv", ins, attrs, "y");
  r.conv = b.g.nodes.back().name;
  r.g = b.finish({r.out});
  infer_shapes(r.g);
  return r;
}

std::vector<Tensor> run_reference(Graph g, const std::map<std::string, Tensor>& in, bool optimize = false) {
  SessionOptions o;
  o.backend_name = "reference";
  o.pipeline.optimize = optimize;
  return Session::from_graph(std::move(g), o).run(in);
}

const Node* node_named(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

CpDecomposeOptions options(const std::string& policy, CpForm form = CpForm::ThreeWay) {
  CpDecomposeOptions o;
  o.policy = RankPolicy::parse(policy);
  o.form = form;
  return o;
}

double frob(const std::vector<double>& a) {
  double s = 0;
  for (double v : a) s += v * v;
  return std::sqrt(s);
}

// The kernel W_hat [Cout, Cin, Kh, Kw] the decomposed chain of `conv` computes, from its weights.
std::vector<double> chain_kernel(const Graph& g, const std::string& conv, CpForm form, int64_t cout, int64_t cin,
                                 int64_t kh, int64_t kw) {
  const Node* in = node_named(g, conv + "/cp_in");
  const Node* out = node_named(g, conv + "/cp_out");
  EXPECT_TRUE(in && out);
  if (!in || !out) return {};
  const Tensor& win = *g.constant(in->input(1));
  const Tensor& wout = *g.constant(out->input(1));
  const int64_t R = win.shape[0];
  std::vector<double> k(size_t(cout * cin * kh * kw), 0.0);
  auto spatial = [&](int64_t r, int64_t y, int64_t x) -> double {
    if (form == CpForm::ThreeWay) {
      const Tensor& wd = *g.constant(node_named(g, conv + "/cp_dw")->input(1));
      return wd.data<float>()[(r * kh + y) * kw + x];
    }
    const Tensor& wh = *g.constant(node_named(g, conv + "/cp_dwh")->input(1));
    const Tensor& ww = *g.constant(node_named(g, conv + "/cp_dww")->input(1));
    return double(wh.data<float>()[r * kh + y]) * double(ww.data<float>()[r * kw + x]);
  };
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t i = 0; i < cin; ++i)
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t x = 0; x < kw; ++x) {
          double s = 0;
          for (int64_t r = 0; r < R; ++r)
            s += double(wout.data<float>()[o * R + r]) * double(win.data<float>()[r * cin + i]) * spatial(r, y, x);
          k[size_t(((o * cin + i) * kh + y) * kw + x)] = s;
        }
  return k;
}

void expect_chain_structure(const Graph& g, const ConvSpec& s, const std::string& conv, CpForm form, int64_t R) {
  const Node* in = node_named(g, conv + "/cp_in");
  const Node* out = node_named(g, conv + "/cp_out");
  ASSERT_TRUE(in && out);
  EXPECT_EQ(node_named(g, conv), nullptr) << "the original node is gone";
  EXPECT_EQ(in->i("group", 1), 1);
  EXPECT_EQ(in->ints("strides"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(in->ints("pads"), (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(in->input(0), "x");
  EXPECT_TRUE(in->input(2).empty());
  EXPECT_EQ(g.constant(in->input(1))->shape, (Shape{R, s.cin, 1, 1}));
  EXPECT_EQ(out->outputs[0], "y");
  EXPECT_EQ(out->i("group", 1), 1);
  EXPECT_EQ(g.constant(out->input(1))->shape, (Shape{s.cout, R, 1, 1}));
  if (s.bias) {
    EXPECT_EQ(out->input(2), "b");
  }
  EXPECT_EQ(g.constants.count("w"), 0u) << "the original weight is removed";
  if (form == CpForm::ThreeWay) {
    const Node* dw = node_named(g, conv + "/cp_dw");
    ASSERT_TRUE(dw);
    EXPECT_EQ(dw->i("group", 1), R);
    EXPECT_EQ(dw->ints("strides"), s.strides);
    EXPECT_EQ(dw->ints("pads"), s.pads);
    EXPECT_EQ(dw->ints("dilations"), s.dilations);
    EXPECT_TRUE(dw->input(2).empty());
    EXPECT_EQ(g.constant(dw->input(1))->shape, (Shape{R, 1, s.kh, s.kw}));
    EXPECT_EQ(g.nodes.size(), 3u);
  } else {
    const Node* h = node_named(g, conv + "/cp_dwh");
    const Node* w = node_named(g, conv + "/cp_dww");
    ASSERT_TRUE(h && w);
    EXPECT_EQ(h->i("group", 1), R);
    EXPECT_EQ(w->i("group", 1), R);
    EXPECT_EQ(h->ints("strides"), (std::vector<int64_t>{s.strides[0], 1}));
    EXPECT_EQ(w->ints("strides"), (std::vector<int64_t>{1, s.strides[1]}));
    EXPECT_EQ(h->ints("pads"), (std::vector<int64_t>{s.pads[0], 0, s.pads[2], 0}));
    EXPECT_EQ(w->ints("pads"), (std::vector<int64_t>{0, s.pads[1], 0, s.pads[3]}));
    EXPECT_EQ(h->ints("dilations"), (std::vector<int64_t>{s.dilations[0], 1}));
    EXPECT_EQ(w->ints("dilations"), (std::vector<int64_t>{1, s.dilations[1]}));
    EXPECT_EQ(g.constant(h->input(1))->shape, (Shape{R, 1, s.kh, 1}));
    EXPECT_EQ(g.constant(w->input(1))->shape, (Shape{R, 1, 1, s.kw}));
    EXPECT_EQ(g.nodes.size(), 4u);
  }
  for (const Node& n : g.nodes)
    for (const std::string& o : n.outputs) {
      ASSERT_TRUE(g.values.count(o)) << o;
      EXPECT_TRUE(g.values.at(o).known) << o;
    }
}

// Full rank: the chain computes the same function as the convolution (reference backend).
void expect_full_rank_equal(const ConvSpec& s, CpForm form, int64_t full, uint32_t seed, bool optimize) {
  SCOPED_TRACE(::testing::Message() << "form " << (form == CpForm::ThreeWay ? 3 : 4) << " cin " << s.cin
                                    << " cout " << s.cout << " kernel " << s.kh << "x" << s.kw);
  OneConv c = one_conv(s, seed);
  Graph d = c.g;
  auto rep = cp_decompose(d, options("rank=100000", form));
  ASSERT_EQ(rep.size(), 1u);
  ASSERT_TRUE(rep[0].decomposed) << rep[0].why_not;
  EXPECT_EQ(rep[0].node, c.conv);
  EXPECT_EQ(rep[0].rank, full);
  EXPECT_EQ(rep[0].iterations, 0);
  EXPECT_LT(rep[0].rel_error, 1e-6);
  EXPECT_EQ(d.info("y").shape, c.g.info("y").shape);
  expect_chain_structure(d, s, c.conv, form, full);
  Tensor x = test::random_tensor({s.n, s.cin, s.h, s.w}, seed + 7);
  auto want = run_reference(c.g, {{"x", x}}, optimize);
  auto got = run_reference(d, {{"x", x}}, optimize);
  std::string why;
  EXPECT_TRUE(test::allclose(got[0], want[0], 1e-4, 1e-4, why)) << why;
}

}  // namespace

namespace {

// Stride 2, asymmetric pads, dilation 2 on the default 5 -> 7 channels, 11 x 8 image.
ConvSpec strided_dilated() {
  ConvSpec s;
  s.strides = {2, 2};
  s.pads = {1, 0, 2, 1};
  s.dilations = {2, 2};
  return s;
}

// A non-square kernel, different strides / dilations per axis, batch 2, no bias, more in than out.
ConvSpec ragged_non_square() {
  ConvSpec t;
  t.n = 2, t.cin = 9, t.cout = 4, t.h = 13, t.w = 10, t.kh = 3, t.kw = 2;
  t.strides = {2, 1};
  t.pads = {2, 1, 0, 1};
  t.dilations = {1, 2};
  t.bias = false;
  return t;
}

}  // namespace

TEST(CpDecomposePass, FullRankChainEqualsTheConvolutionThreeWay) {
  const ConvSpec s = strided_dilated();  // 5 -> 7 channels, 11 x 8 image
  // 3-way dims (7, 5, 9): full rank min(45, 63, 35) = 35
  expect_full_rank_equal(s, CpForm::ThreeWay, 35, 1, false);
  expect_full_rank_equal(s, CpForm::ThreeWay, 35, 1, true);
  // a non-square kernel, different strides / dilations per axis, batch 2, no bias, more in than out
  const ConvSpec t = ragged_non_square();
  // (4, 9, 6): min(54, 24, 36) = 24
  expect_full_rank_equal(t, CpForm::ThreeWay, 24, 2, false);
}

TEST(CpDecomposePass, FullRankChainEqualsTheConvolutionFourWay) {
  const ConvSpec s = strided_dilated();
  // 4-way dims (7, 5, 3, 3): min(45, 63, 105, 105) = 45
  expect_full_rank_equal(s, CpForm::FourWay, 45, 3, false);
  expect_full_rank_equal(s, CpForm::FourWay, 45, 3, true);
  const ConvSpec t = ragged_non_square();
  // (4, 9, 3, 2): min(54, 24, 72, 108) = 24
  expect_full_rank_equal(t, CpForm::FourWay, 24, 4, false);
}

TEST(CpDecomposePass, LowRankChainComputesTheReconstructedKernel) {
  for (CpForm form : {CpForm::ThreeWay, CpForm::FourWay}) {
    ConvSpec s;
    s.cin = 6, s.cout = 10, s.h = 9, s.w = 12;
    s.strides = {2, 2};
    s.pads = {0, 1, 1, 2};
    s.dilations = {2, 1};
    OneConv c = one_conv(s, 21);
    Graph d = c.g;
    auto rep = cp_decompose(d, options("rank=4", form));
    ASSERT_EQ(rep.size(), 1u);
    ASSERT_TRUE(rep[0].decomposed);
    EXPECT_EQ(rep[0].rank, 4);
    EXPECT_GE(rep[0].iterations, 1);
    expect_chain_structure(d, s, c.conv, form, 4);
    // the error the report gives is the error of the kernel the chain computes
    std::vector<double> k = chain_kernel(d, c.conv, form, s.cout, s.cin, s.kh, s.kw);
    const Tensor& w = *c.g.constant("w");
    std::vector<double> diff(k.size()), orig(k.size());
    for (size_t i = 0; i < k.size(); ++i) orig[i] = w.data<float>()[i], diff[i] = orig[i] - k[i];
    const double err = frob(diff) / frob(orig);
    EXPECT_NEAR(rep[0].rel_error, err, 1e-5);
    EXPECT_GT(err, 0.05);  // random weights are far from rank 4
    EXPECT_LT(err, 1.0);
    // and the chain equals the convolution with that kernel
    Graph h = c.g;
    std::vector<float> kf(k.begin(), k.end());
    h.constants["w"] = Tensor::from_f32(w.shape, kf);
    Tensor x = test::random_tensor({s.n, s.cin, s.h, s.w}, 99);
    auto want = run_reference(h, {{"x", x}});
    auto got = run_reference(d, {{"x", x}});
    std::string why;
    EXPECT_TRUE(test::allclose(got[0], want[0], 1e-4, 1e-4, why)) << why;
  }
}

TEST(CpDecomposePass, CarriesTheFusedActivationToTheLastConv) {
  for (const char* act : {"relu", "clip"}) {
    ConvSpec s;
    s.activation = act;
    s.act_lo = -0.25f;
    s.act_hi = 0.5f;
    OneConv c = one_conv(s, 31);
    Graph d = c.g;
    auto rep = cp_decompose(d, options("rank=1000"));
    ASSERT_TRUE(rep.at(0).decomposed);
    const Node* out = node_named(d, c.conv + "/cp_out");
    ASSERT_TRUE(out);
    EXPECT_EQ(out->s("locus.activation", ""), act);
    for (const char* stage : {"/cp_in", "/cp_dw"}) EXPECT_FALSE(node_named(d, c.conv + stage)->has("locus.activation"));
    if (std::string(act) == "clip") {
      EXPECT_EQ(out->f("locus.activation_min", 0), -0.25f);
      EXPECT_EQ(out->f("locus.activation_max", 0), 0.5f);
    }
    Tensor x = test::random_tensor({s.n, s.cin, s.h, s.w}, 5);
    auto want = run_reference(c.g, {{"x", x}});
    auto got = run_reference(d, {{"x", x}});
    std::string why;
    EXPECT_TRUE(test::allclose(got[0], want[0], 1e-4, 1e-4, why)) << act << ": " << why;
  }
}

// ---------------------------------------------------------------------------------------------
// Rank policies. The layer: 12 -> 16 channels, 3x3, stride 1, pads 1 on a 10 x 10 image.
// Original MACs 10*10*16*12*9 = 172800. Per unit of rank: 3-way 10*10*12 + 10*10*9 + 10*10*16 = 3700;
// 4-way 10*10*12 + 10*10*3 + 10*10*3 + 10*10*16 = 3400. 3-way full rank (16, 12, 9): min(108, 144, 192).

namespace {

ConvSpec policy_layer() {
  ConvSpec s;
  s.cin = 12, s.cout = 16, s.h = 10, s.w = 10;
  return s;
}

CpLayerReport decompose_one(const std::string& policy, CpForm form = CpForm::ThreeWay, uint32_t seed = 50) {
  OneConv c = one_conv(policy_layer(), seed);
  auto rep = cp_decompose(c.g, options(policy, form));
  EXPECT_EQ(rep.size(), 1u);
  return rep.empty() ? CpLayerReport{} : rep[0];
}

DenseTensor policy_kernel(CpForm form, uint32_t seed = 50) {
  OneConv c = one_conv(policy_layer(), seed);
  const Tensor& w = *c.g.constant("w");
  DenseTensor x;
  x.dims = form == CpForm::ThreeWay ? std::vector<int64_t>{16, 12, 9} : std::vector<int64_t>{16, 12, 3, 3};
  for (int64_t i = 0; i < w.numel(); ++i) x.data.push_back(w.data<float>()[i]);
  return x;
}

}  // namespace

TEST(CpRankPolicy, FixedRankIsCappedAtTheFullRank) {
  CpLayerReport r = decompose_one("rank=5");
  ASSERT_TRUE(r.decomposed);
  EXPECT_EQ(r.rank, 5);
  EXPECT_EQ(r.cout, 16);
  EXPECT_EQ(r.cin, 12);
  EXPECT_EQ(r.kh, 3);
  EXPECT_EQ(r.kw, 3);
  EXPECT_EQ(r.params_before, 16 * 12 * 9 + 16);
  EXPECT_EQ(r.params_after, 5 * (12 + 9 + 16) + 16);
  EXPECT_EQ(r.macs_before, 172800);
  EXPECT_EQ(r.macs_after, 5 * 3700);
  EXPECT_GT(r.rel_error, 0.1);
  CpLayerReport big = decompose_one("rank=500");
  EXPECT_EQ(big.rank, 108);
  EXPECT_LT(big.rel_error, 1e-6);
  CpLayerReport four = decompose_one("rank=5", CpForm::FourWay);
  EXPECT_EQ(four.params_after, 5 * (12 + 3 + 3 + 16) + 16);
  EXPECT_EQ(four.macs_after, 5 * 3400);
}

TEST(CpRankPolicy, RatioOfTheSmallerChannelCount) {
  EXPECT_EQ(decompose_one("ratio=0.5").rank, 6);    // ceil(0.5 * 12)
  EXPECT_EQ(decompose_one("ratio=0.26").rank, 4);   // ceil(3.12)
  EXPECT_EQ(decompose_one("ratio=0.01").rank, 1);   // ceil(0.12)
  EXPECT_EQ(decompose_one("ratio=100").rank, 108);  // capped at the full rank
}

// A target no rank up to the search's cap meets leaves the layer alone, saying why (random 12 -> 16
// weights: rank 16 = max(Cin, Cout) has error 0.64; the full rank 108 is not tried).
TEST(CpRankPolicy, ErrorTargetBeyondTheSearchCapLeavesTheLayerAlone) {
  CpLayerReport r = decompose_one("error=0.01");
  EXPECT_FALSE(r.decomposed);
  EXPECT_NE(r.why_not.find("no rank up to 16 meets relative error <= 0.01"), std::string::npos) << r.why_not;
  EXPECT_NE(r.why_not.find("more than max(Cin, Cout)"), std::string::npos) << r.why_not;
}

TEST(CpRankPolicy, ErrorTargetIsMetAndTwoRanksLessAreNot) {
  for (CpForm form : {CpForm::ThreeWay, CpForm::FourWay}) {
    // the errors of the rank-12 and rank-5 fits (random weights: rank 16 = max(Cin, Cout), the most
    // the search tries here, still has error 0.64)
    const double e12 = decompose::cp_fit(policy_kernel(form), 12, CpAlsOptions{}).rel_error;
    const double e5 = decompose::cp_fit(policy_kernel(form), 5, CpAlsOptions{}).rel_error;
    for (double target : {e12 * (1 + 1e-4), e5 * (1 + 1e-4)}) {  // policy text keeps 6 digits
      SCOPED_TRACE(::testing::Message() << "target " << target << " form " << (form == CpForm::ThreeWay ? 3 : 4));
      CpLayerReport r = decompose_one(cat("error=", target), form);
      ASSERT_TRUE(r.decomposed);
      EXPECT_LE(r.rel_error, target);
      ASSERT_GT(r.rank, 2);
      // The search warm-starts each fit from a lower rank's (cp_als_warm), so its fits differ from
      // cold ones (here by up to 0.006, mostly better): the fit at the chosen rank is no worse than
      // the cold fit at that rank within 1e-3, and the chosen rank is at most one above the smallest
      // rank whose cold fit meets the target.
      CpAlsOptions o;  // the pass's defaults
      CpFit less = decompose::cp_fit(policy_kernel(form), r.rank - 2, o);
      EXPECT_GT(less.rel_error, target) << "rank " << r.rank - 2 << " already meets the target";
      CpFit same = decompose::cp_fit(policy_kernel(form), r.rank, o);
      EXPECT_LE(r.rel_error, same.rel_error + 1e-3);
    }
  }
  // a tensor of exact rank 3 (a 3-way kernel built from factors): any small target gives rank 3
  GraphBuilder b;
  auto f = random_factors({6, 4, 9}, 3, 77);
  DenseTensor k = tensor_from_factors({6, 4, 9}, f, 3);
  std::vector<float> wf(k.data.begin(), k.data.end());
  std::string x = b.input("x", {1, 4, 7, 7});
  b.node("Conv", {x, b.constant("w", Tensor::from_f32({6, 4, 3, 3}, wf))},
         {{"pads", std::vector<int64_t>{1, 1, 1, 1}}}, "y");
  Graph g = b.finish({"y"});
  infer_shapes(g);
  // This tensor puts ALS into a "swamp" (the error sits near 0.31 for ~200 sweeps before dropping
  // to 1e-6), so the default cap of 200 sweeps would stop at rank 3 too early and choose 4.
  CpDecomposeOptions o = options("error=0.001");
  o.max_iterations = 2000;
  auto rep = cp_decompose(g, o);
  ASSERT_TRUE(rep.at(0).decomposed);
  EXPECT_EQ(rep[0].rank, 3);
  EXPECT_LT(rep[0].rel_error, 0.001);
}

TEST(CpRankPolicy, MacBudgetTakesTheLargestRankWithinIt) {
  // 3-way: 0.3 * 172800 = 51840 -> 14 * 3700 = 51800 fits, 15 * 3700 = 55500 does not
  CpLayerReport r = decompose_one("macs=0.3");
  ASSERT_TRUE(r.decomposed);
  EXPECT_EQ(r.rank, 14);
  EXPECT_LE(r.macs_after, 0.3 * r.macs_before);
  EXPECT_GT((r.rank + 1) * 3700, 0.3 * 172800);
  // 4-way: 15 * 3400 = 51000 fits, 16 * 3400 = 54400 does not
  CpLayerReport f = decompose_one("macs=0.3", CpForm::FourWay);
  EXPECT_EQ(f.rank, 15);
  EXPECT_EQ(f.macs_after, 51000);
  // a budget above the full rank's MACs is capped at the full rank
  EXPECT_EQ(decompose_one("macs=10").rank, 108);
  // below rank 1: refused, with the reason
  CpLayerReport none = decompose_one("macs=0.001");
  EXPECT_FALSE(none.decomposed);
  EXPECT_NE(none.why_not.find("MAC budget"), std::string::npos) << none.why_not;
}

TEST(CpRankPolicy, MacsUseTheInputResolutionForTheFirstStageAndOhTimesWForTheKhx1Stage) {
  // stride 2 on 12 x 11 (pads 1) -> 6 x 6. Per unit of rank:
  //   3-way 12*11*12 (1x1 at the input) + 6*6*9 (depthwise) + 6*6*16 (1x1) = 2484
  //   4-way 12*11*12 + 6*11*3 (Kx1 at OH x W) + 6*6*3 (1xK) + 6*6*16 = 2466
  ConvSpec s = policy_layer();
  s.h = 12, s.w = 11;
  s.strides = {2, 2};
  OneConv c = one_conv(s, 60);
  EXPECT_EQ(c.g.info("y").shape, (Shape{1, 16, 6, 6}));
  Graph g3 = c.g, g4 = c.g;
  auto r3 = cp_decompose(g3, options("rank=2"));
  auto r4 = cp_decompose(g4, options("rank=2", CpForm::FourWay));
  EXPECT_EQ(r3.at(0).macs_before, 6 * 6 * 16 * 12 * 9);
  EXPECT_EQ(r3.at(0).macs_after, 2 * 2484);
  EXPECT_EQ(r4.at(0).macs_after, 2 * 2466);
}

// ---------------------------------------------------------------------------------------------
// Refusals

TEST(CpDecomposePass, LeavesIneligibleConvolutionsAloneWithTheirReasons) {
  GraphBuilder b;
  std::string x = b.input("x", {1, 8, 9, 9});
  std::string wq = b.input("wq", {8, 8, 3, 3});
  auto conv = [&](const std::string& name, const std::string& in, const std::string& w, int64_t group) {
    b.node("Conv", {in, w}, {{"group", group}, {"pads", std::vector<int64_t>{1, 1, 1, 1}}}, name + "_y");
    b.g.nodes.back().name = name;
    return name + "_y";
  };
  std::string h = conv("pw", x, b.random_constant("w1", {8, 8, 1, 1}, 1), 1);
  b.g.nodes.back().attrs["pads"] = std::vector<int64_t>{0, 0, 0, 0};
  h = conv("dw", h, b.random_constant("w2", {8, 1, 3, 3}, 2), 8);
  h = conv("grouped", h, b.random_constant("w3", {8, 4, 3, 3}, 3), 2);
  h = conv("dynamic", h, wq, 1);
  h = conv("std_a", h, b.random_constant("w5", {8, 8, 3, 3}, 5), 1);
  h = conv("std_b", h, b.random_constant("w6", {8, 8, 3, 3}, 6), 1);
  Graph g = b.finish({h});
  infer_shapes(g);
  const Graph before = g;

  CpDecomposeOptions o = options("rank=3");
  o.only_nodes = {"std_b", "pw", "dw", "grouped", "dynamic"};
  std::vector<PassRemark> remarks;
  auto pass = make_cp_decompose_pass(o);
  EXPECT_EQ(pass->name(), "cp-decompose");
  EXPECT_EQ(pass->run(g, remarks), 1);
  std::map<std::string, std::string> want = {{"pw", "1x1"},           {"dw", "depthwise"},
                                             {"grouped", "grouped"},  {"dynamic", "non-constant weights"},
                                             {"std_a", "filtered"}};
  ASSERT_EQ(remarks.size(), 6u);
  for (const PassRemark& r : remarks) {
    EXPECT_EQ(r.pass, "cp-decompose");
    EXPECT_EQ(r.kind, r.node == "std_b" ? RemarkKind::Applied : RemarkKind::Missed) << r.node;
    if (r.node == "std_b") {
      EXPECT_EQ(r.message.find("decomposed"), 0u) << r.message;
      EXPECT_NE(r.message.find("rank 3"), std::string::npos) << r.message;
      continue;
    }
    ASSERT_TRUE(want.count(r.node)) << r.node;
    EXPECT_EQ(r.message, "not decomposed: " + want[r.node]);
  }
  // the refused nodes are untouched, std_b is replaced in place (order kept)
  std::vector<std::string> names;
  for (const Node& n : g.nodes) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"pw", "dw", "grouped", "dynamic", "std_a", "std_b/cp_in", "std_b/cp_dw",
                                             "std_b/cp_out"}));
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(g.nodes[i].inputs, before.nodes[i].inputs);
    EXPECT_EQ(g.nodes[i].outputs, before.nodes[i].outputs);
  }
  EXPECT_EQ(g.constants.count("w6"), 0u);
  EXPECT_EQ(g.constants.count("w5"), 1u);

  // the report says the same through cp_decompose; without a filter std_a is decomposed too
  Graph g2 = before;
  auto rep = cp_decompose(g2, options("rank=3"));
  ASSERT_EQ(rep.size(), 6u);
  for (const CpLayerReport& r : rep) {
    if (r.node == "std_a" || r.node == "std_b") {
      EXPECT_TRUE(r.decomposed) << r.node;
      EXPECT_TRUE(r.why_not.empty());
    } else {
      EXPECT_FALSE(r.decomposed) << r.node;
      EXPECT_EQ(r.why_not, want[r.node]);
      EXPECT_EQ(r.rank, 0);
    }
  }
  // the whole graph still runs and, at full rank, computes the same thing
  Graph g3 = before;
  cp_decompose(g3, options("rank=1000"));
  Tensor xin = test::random_tensor({1, 8, 9, 9}, 3), wqin = test::random_tensor({8, 8, 3, 3}, 4);
  auto want_out = run_reference(before, {{"x", xin}, {"wq", wqin}});
  auto got_out = run_reference(g3, {{"x", xin}, {"wq", wqin}});
  std::string why;
  EXPECT_TRUE(test::allclose(got_out[0], want_out[0], 1e-4, 1e-4, why)) << why;
}

TEST(CpDecomposePass, IsNotInTheDefaultPipelineButIsAKnownName) {
  auto all = all_pass_names();
  EXPECT_NE(std::find(all.begin(), all.end(), "cp-decompose"), all.end());
  for (bool fuse : {false, true}) {
    auto names = PassManager::default_pipeline({}, fuse).names();
    EXPECT_EQ(std::find(names.begin(), names.end(), "cp-decompose"), names.end());
  }
}

// ---------------------------------------------------------------------------------------------
// RankPolicy::parse

TEST(CpRankPolicy, ParsesTheFourForms) {
  RankPolicy p = RankPolicy::parse("rank=16");
  EXPECT_EQ(p.kind, RankPolicy::Kind::Fixed);
  EXPECT_EQ(p.value, 16);
  p = RankPolicy::parse("ratio=0.5");
  EXPECT_EQ(p.kind, RankPolicy::Kind::Ratio);
  EXPECT_EQ(p.value, 0.5);
  p = RankPolicy::parse("error=0.05");
  EXPECT_EQ(p.kind, RankPolicy::Kind::Error);
  EXPECT_EQ(p.value, 0.05);
  p = RankPolicy::parse("macs=0.3");
  EXPECT_EQ(p.kind, RankPolicy::Kind::MacBudget);
  EXPECT_EQ(p.value, 0.3);
  EXPECT_NE(RankPolicy::parse("ratio=0.5").describe().find("0.5"), std::string::npos);
  EXPECT_NE(RankPolicy::parse("rank=16").describe().find("16"), std::string::npos);
  EXPECT_NE(RankPolicy::parse("error=0.05").describe().find("0.05"), std::string::npos);
  EXPECT_NE(RankPolicy::parse("macs=0.3").describe().find("0.3"), std::string::npos);
}

TEST(CpRankPolicy, RejectsBadText) {
  for (const char* bad : {"", "rank", "rank=", "rank=0", "rank=-3", "rank=2.5", "rank=16x", "Rank=16", "ratio=0",
                          "ratio=-0.5", "ratio=abc", "error=0", "error=1", "error=1.5", "macs=0", "macs=-1",
                          "flops=0.3", "=0.3", "ratio=nan", "macs=inf", " rank=4"}) {
    try {
      RankPolicy::parse(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos) << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Threads and warm start of the ALS fit (issue 15)

namespace {

void expect_same_fit(const CpFit& a, const CpFit& b) {
  ASSERT_EQ(a.factors.size(), b.factors.size());
  EXPECT_EQ(a.iterations, b.iterations);
  EXPECT_EQ(a.rel_error, b.rel_error);
  EXPECT_EQ(a.error_history, b.error_history);
  for (size_t n = 0; n < a.factors.size(); ++n) {
    ASSERT_EQ(a.factors[n].rows(), b.factors[n].rows());
    ASSERT_EQ(a.factors[n].cols(), b.factors[n].cols());
    for (Eigen::Index i = 0; i < a.factors[n].size(); ++i)
      ASSERT_EQ(a.factors[n].data()[i], b.factors[n].data()[i]) << "mode " << n << " element " << i;
  }
}

}  // namespace

// The products are split into fixed blocks of 64 columns whatever the thread count: a rank above 64
// and a tensor above the parallel threshold (numel x R = 27648 x 80 multiply-adds) use every
// parallel path; 1, 2 and 3 threads must give bit-identical factors, cold and warm-started.
TEST(CpAls, ThreadCountDoesNotChangeTheFactors) {
  DenseTensor x = random_dense({64, 48, 9}, 11);
  CpAlsOptions o;
  o.max_iterations = 8;
  o.tolerance = 0;
  o.threads = 1;
  CpFit one = decompose::cp_als(x, 80, o);
  CpFit low = decompose::cp_als(x, 40, o);
  CpFit warm_one = decompose::cp_als_warm(x, 90, low, o);
  for (int threads : {2, 3}) {
    SCOPED_TRACE(::testing::Message() << threads << " threads");
    o.threads = threads;
    expect_same_fit(one, decompose::cp_als(x, 80, o));
    expect_same_fit(warm_one, decompose::cp_als_warm(x, 90, decompose::cp_als(x, 40, o), o));
  }
  // and the fit is a fit: its reported error is the independent one
  EXPECT_NEAR(one.rel_error, independent_rel_error(x, one.factors), 1e-9);
}

// A tensor of known CP rank 6: cold ALS at rank 6 reaches ~0; warm-started from the fits at ranks 2
// and 4 (the error=E search's doubling) and from rank 5 (its bisection), rank 6 must reach ~0 too,
// no worse than the cold start within 1e-6.
TEST(CpAls, WarmStartReachesTheTrueRankLikeTheColdStart) {
  for (std::vector<int64_t> dims : {std::vector<int64_t>{12, 10, 9}, std::vector<int64_t>{10, 8, 3, 3}}) {
    SCOPED_TRACE(::testing::Message() << "dims " << shape_str(dims));
    DenseTensor x = tensor_from_factors(dims, random_factors(dims, 6, 21), 6);
    CpAlsOptions o;
    o.max_iterations = 2000;
    o.tolerance = 1e-12;
    const CpFit cold = decompose::cp_als(x, 6, o);
    ASSERT_LT(cold.rel_error, 1e-4);
    const CpFit r2 = decompose::cp_als(x, 2, o);
    const CpFit r4 = decompose::cp_als_warm(x, 4, r2, o);
    const CpFit r5 = decompose::cp_als_warm(x, 5, r4, o);
    EXPECT_GT(r4.rel_error, 1e-3);  // below the true rank nothing fits exactly
    for (const CpFit* from : {&r4, &r5}) {
      CpFit warm = decompose::cp_als_warm(x, 6, *from, o);
      SCOPED_TRACE(::testing::Message() << "from rank " << from->rank);
      EXPECT_EQ(warm.rank, 6);
      EXPECT_FALSE(warm.exact);
      EXPECT_LT(warm.rel_error, 1e-4);
      EXPECT_LE(warm.rel_error, cold.rel_error + 1e-6);
      EXPECT_NEAR(warm.rel_error, independent_rel_error(x, warm.factors), 1e-9);
      // ALS from the warm start never makes the fit worse either
      for (size_t k = 1; k < warm.error_history.size(); ++k)
        EXPECT_LE(warm.error_history[k], warm.error_history[k - 1] + 1e-7) << "sweep " << k;
      // the start is the lower-rank fit, so the first sweep is already at least as good as it
      ASSERT_FALSE(warm.error_history.empty());
      EXPECT_LE(warm.error_history[0], from->rel_error + 1e-7);
    }
  }
}

// A start that cannot seed the fit (not a lower rank, or exact) gives the cold fit.
TEST(CpAls, WarmStartFallsBackToTheColdStart) {
  DenseTensor x = random_dense({6, 5, 4}, 3);
  const CpFit cold = decompose::cp_als(x, 4);
  expect_same_fit(cold, decompose::cp_als_warm(x, 4, decompose::cp_als(x, 5)));
  expect_same_fit(cold, decompose::cp_als_warm(x, 4, decompose::cp_als(x, 4)));
  expect_same_fit(cold, decompose::cp_als_warm(x, 4, decompose::cp_exact(random_dense({2, 2, 2}, 1))));
  EXPECT_THROW(decompose::cp_als_warm(x, 0, cold), Error);
}

// ---------------------------------------------------------------------------------------------
// Shapes-only decomposition (issue 15): the chain of the fitted decomposition without the fit.

namespace {

// x [1, 8, 16, 16] -> Conv 3x3 8 -> 16 (pads 1, bias) -> Relu -> Conv 3x3 16 -> 24 stride 2 (pads 1)
// -> Relu -> Conv 1x1 24 -> 12 -> y.
Graph small_net() {
  GraphBuilder b;
  std::string x = b.input("x", {1, 8, 16, 16});
  std::string a = b.node("Conv", {x, b.random_constant("w1", {16, 8, 3, 3}, 1), b.random_constant("b1", {16}, 2)},
                         {{"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  a = b.node("Relu", {a});
  a = b.node("Conv", {a, b.random_constant("w2", {24, 16, 3, 3}, 3)},
             {{"pads", std::vector<int64_t>{1, 1, 1, 1}}, {"strides", std::vector<int64_t>{2, 2}}});
  a = b.node("Relu", {a});
  b.node("Conv", {a, b.random_constant("w3", {12, 24, 1, 1}, 4)}, {}, "y");
  Graph g = b.finish({"y"});
  infer_shapes(g);
  return g;
}

}  // namespace

TEST(CpDecomposePass, ShapesOnlyBuildsTheFittedChainWithZeroWeights) {
  for (CpForm form : {CpForm::ThreeWay, CpForm::FourWay})
    for (const char* policy : {"rank=5", "ratio=0.5", "macs=0.4", "rank=1000"}) {
      SCOPED_TRACE(::testing::Message() << policy << " form " << (form == CpForm::ThreeWay ? 3 : 4));
      Graph fitted = small_net(), shapes = small_net();
      CpDecomposeOptions o = options(policy, form);
      auto rf = cp_decompose(fitted, o);
      o.shapes_only = true;
      auto rs = cp_decompose(shapes, o);
      ASSERT_EQ(rf.size(), rs.size());
      for (size_t i = 0; i < rf.size(); ++i) {
        EXPECT_EQ(rs[i].node, rf[i].node);
        EXPECT_EQ(rs[i].decomposed, rf[i].decomposed);
        EXPECT_EQ(rs[i].why_not, rf[i].why_not);
        EXPECT_EQ(rs[i].rank, rf[i].rank);
        EXPECT_EQ(rs[i].macs_after, rf[i].macs_after);
        EXPECT_EQ(rs[i].params_after, rf[i].params_after);
        EXPECT_TRUE(rf[i].fitted);
        if (rs[i].decomposed) {
          EXPECT_FALSE(rs[i].fitted);
          EXPECT_TRUE(std::isnan(rs[i].rel_error));
          EXPECT_EQ(rs[i].iterations, 0);
        }
      }
      ASSERT_EQ(shapes.nodes.size(), fitted.nodes.size());
      for (size_t i = 0; i < fitted.nodes.size(); ++i)
        EXPECT_EQ(test::node_signature(shapes.nodes[i]), test::node_signature(fitted.nodes[i]));
      for (const Node& n : fitted.nodes) {
        for (const std::string& v : n.outputs) EXPECT_EQ(shapes.info(v).shape, fitted.info(v).shape) << v;
        if (n.op == "Conv" && n.name.find("/cp_") != std::string::npos) {
          const Tensor* wf = fitted.constant(n.input(1));
          const Tensor* ws = shapes.constant(n.input(1));
          ASSERT_TRUE(wf && ws) << n.name;
          EXPECT_EQ(ws->shape, wf->shape) << n.name;
          EXPECT_EQ(ws->dtype, DType::F32);
          for (int64_t k = 0; k < ws->numel(); ++k) ASSERT_EQ(ws->data<float>()[k], 0.f) << n.name;
        }
      }
      EXPECT_EQ(shapes.constants.size(), fitted.constants.size());
    }
}

TEST(CpDecomposePass, ShapesOnlyRefusesTheErrorPolicy) {
  Graph g = small_net();
  CpDecomposeOptions o = options("error=0.1");
  o.shapes_only = true;
  try {
    cp_decompose(g, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs rank=N, ratio=X or macs=X"), std::string::npos) << e.what();
  }
}

// The accelerator model's energy of the decomposed network, prepared as `locus energy` prepares it
// (the accel backend's pipeline, fused chains), is the same with the fitted and the shapes-only
// decomposition: every schedule, every layer, every energy and byte count.
TEST(CpDecomposePass, ShapesOnlyGivesTheFittedDecompositionsEnergy) {
  accel::AccelConfig cfg = accel::load_accel_config("default");
  cfg.buffer_entries = 4096;  // small enough that the layers are tiled
  for (const char* policy : {"ratio=0.5", "rank=3", "macs=0.6"})
    for (CpForm form : {CpForm::ThreeWay, CpForm::FourWay}) {
      SCOPED_TRACE(::testing::Message() << policy << " form " << (form == CpForm::ThreeWay ? 3 : 4));
      std::vector<std::vector<accel::ScheduleResult>> results;
      for (bool shapes_only : {false, true}) {
        Graph g = small_net();
        PipelineOptions po;
        po.decompose = options(policy, form);
        po.decompose->shapes_only = shapes_only;
        po.fuse_blocks = make_backend("accel")->capabilities().fused_inverted_residual;
        PreparedGraph p = prepare_graph(g, po);
        int decomposed = 0;
        for (const CpLayerReport& r : p.decompose_report) decomposed += r.decomposed;
        EXPECT_EQ(decomposed, 2);
        const accel::Workload wl = accel::extract_workload(g);
        results.emplace_back();
        for (auto k : {accel::ScheduleKind::Baseline, accel::ScheduleKind::Scan, accel::ScheduleKind::FusedScan})
          results.back().push_back(accel::evaluate_mapping(wl, accel::map_workload(wl, k, cfg), cfg));
      }
      const auto& fitted = results[0];
      const auto& shapes = results[1];
      for (size_t s = 0; s < fitted.size(); ++s) {
        ASSERT_EQ(fitted[s].layers.size(), shapes[s].layers.size());
        EXPECT_GT(fitted[s].total.e_total_pj(), 0);
        auto same = [](const accel::LayerResult& a, const accel::LayerResult& b) {
          EXPECT_EQ(a.name, b.name);
          EXPECT_EQ(a.macs, b.macs);
          EXPECT_EQ(a.read_bytes, b.read_bytes);
          EXPECT_EQ(a.write_bytes, b.write_bytes);
          EXPECT_EQ(a.buffer_accesses, b.buffer_accesses);
          EXPECT_EQ(a.tiling, b.tiling);
          EXPECT_EQ(a.dram.row_hits, b.dram.row_hits);
          EXPECT_EQ(a.dram.activates, b.dram.activates);
          EXPECT_EQ(a.e_dram_pj(), b.e_dram_pj());
          EXPECT_EQ(a.e_total_pj(), b.e_total_pj());
        };
        for (size_t l = 0; l < fitted[s].layers.size(); ++l) same(fitted[s].layers[l], shapes[s].layers[l]);
        same(fitted[s].total, shapes[s].total);
      }
      // the chains are fused (otherwise this would test less)
      int fused = 0;
      for (const auto& l : fitted[2].layers) fused += l.op == "FusedInvertedResidual";
      EXPECT_EQ(fused, 2);
    }
}
