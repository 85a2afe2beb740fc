// NetBuilder: graph IR construction with deterministic weights and BN statistics (see
// graph_builder.h).
//
// Reproducibility notes: weights are float(q) * step with q an integer from the generator and step
// a power-of-two fraction of the bound (one rounding). Other floats are rounded once from double
// values computed with +, -, *, /, sqrt, floor, ldexp and the exp below, without FMA contraction.
#include "models/graph_builder.h"

#include <cmath>
#include <utility>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

namespace locus::models {

namespace {

constexpr float kTwoPow23 = 8388608.0f;
constexpr float kTwoPowMinus24 = 1.0f / 16777216.0f;
constexpr float kBnEpsilon = 1e-5f;

// exp(x) for x <= 0 with basic arithmetic only: x = n ln2 + r, |r| <= ln2 / 2, Taylor series of
// degree 12 for exp(r) (relative error < 1e-15), times 2^n.
double exp_nonpositive(double x) {
  if (x < -700.0) return 0.0;
  constexpr double kLn2 = 0.6931471805599453;
  const double n = std::floor(x / kLn2 + 0.5);
  const double r = x - n * kLn2;
  double p = 1.0;
  for (int k = 12; k >= 1; --k) p = 1.0 + p * r / double(k);
  return std::ldexp(p, int(n));
}

double normal_pdf(double z) { return 0.3989422804014327 * exp_nonpositive(-0.5 * z * z); }

// Standard normal CDF via erfc (Abramowitz & Stegun 7.1.26, absolute error < 1.5e-7).
double normal_cdf(double z) {
  const double x = std::fabs(z) / 1.4142135623730951;
  const double t = 1.0 / (1.0 + 0.3275911 * x);
  const double poly =
      t *
      (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const double erfc = poly * exp_nonpositive(-x * x);
  return z >= 0 ? 1.0 - 0.5 * erfc : 0.5 * erfc;
}

// Mean and variance of max(z, 0) for z ~ N(m, v).
void rectified_moments(double m, double v, double* mean, double* var) {
  if (!(v > 0.0)) {
    *mean = m > 0.0 ? m : 0.0;
    *var = 0.0;
    return;
  }
  const double s = std::sqrt(v);
  const double cdf = normal_cdf(m / s), pdf = normal_pdf(m / s);
  *mean = m * cdf + s * pdf;
  const double second = (m * m + v) * cdf + m * s * pdf;
  const double d = second - *mean * *mean;
  *var = d > 0.0 ? d : 0.0;
}

// a * b + c rounded once to float (a, b floats: the product is exact in double).
float mul_add(float a, float b, float c) {
  double product = double(a) * double(b);
  return float(product + double(c));
}

Activation like(const Activation& x, const std::string& name) {
  Activation y;
  y.name = name;
  y.channels = x.channels;
  return y;
}

// Statistics of Relu/Clip(0, 6) of x (the cap at 6 is rarely reached and ignored).
Activation rectified(const Activation& x, const std::string& name) {
  Activation y = like(x, name);
  y.mean.resize(x.mean.size());
  y.var.resize(x.var.size());
  for (size_t c = 0; c < x.mean.size(); ++c)
    rectified_moments(x.mean[c], x.var[c], &y.mean[c], &y.var[c]);
  y.pre_mean = x.mean;
  y.pre_var = x.var;
  return y;
}

}  // namespace

int32_t WeightRng::next_q() { return int32_t(gen_() >> 8) - (int32_t(1) << 23); }

float WeightRng::symmetric(float bound) {
  float step = bound / kTwoPow23;  // exact: division by a power of two
  return float(next_q()) * step;   // |q| <= 2^23 is exact in float; one rounding
}

float WeightRng::uniform(float lo, float hi) {
  float u = float(gen_() >> 8) * kTwoPowMinus24;  // exact, in [0, 1)
  return mul_add(u, hi - lo, lo);
}

NetBuilder::NetBuilder(Graph& g, uint32_t seed) : g_(g), rng_(seed) { g_.opset = 13; }

Node& NetBuilder::add_node(const std::string& op, const std::string& name,
                           std::vector<std::string> inputs, const std::string& output) {
  g_.nodes.push_back(Node{op, name, /*domain=*/"", std::move(inputs), {output}, {}});
  return g_.nodes.back();
}

std::string NetBuilder::add_constant(const std::string& name, Tensor t) {
  LOCUS_CHECK(!g_.constants.count(name), "model builder: constant '", name, "' defined twice");
  g_.constants.emplace(name, std::move(t));
  return name;
}

Activation NetBuilder::input(const std::string& name, int64_t batch, int64_t channels,
                             int64_t size) {
  g_.inputs.push_back(name);
  g_.values[name] = ValueInfo{DType::F32, {batch, channels, size, size}, true};
  Activation a;
  a.name = name;
  a.channels = channels;
  a.mean.assign(size_t(channels), 0.0);
  a.var.assign(size_t(channels), 1.0);
  return a;
}

Activation NetBuilder::conv(const Activation& x, const std::string& name, int64_t out_channels,
                            int64_t kernel, int64_t stride, int64_t group) {
  LOCUS_CHECK(group >= 1 && x.channels % group == 0 && out_channels % group == 0,
              "model builder: conv '", name, "' has group ", group, " not dividing its channels");
  const int64_t in_per_group = x.channels / group, out_per_group = out_channels / group;
  const int64_t taps = kernel * kernel;
  const float bound = float(std::sqrt(6.0 / double(in_per_group * taps)));  // He-uniform
  const float step = bound / kTwoPow23;
  const double step2 = double(step) * double(step);

  Tensor w(DType::F32, {out_channels, in_per_group, kernel, kernel});
  float* wp = w.data<float>();
  Activation y;
  y.name = name;
  y.channels = out_channels;
  y.mean.resize(size_t(out_channels));
  y.var.resize(size_t(out_channels));
  for (int64_t oc = 0; oc < out_channels; ++oc) {
    const int64_t first_in = (oc / out_per_group) * in_per_group;
    double mean = 0.0, var = 0.0;
    for (int64_t ic = 0; ic < in_per_group; ++ic) {
      int64_t sum_q = 0, sum_q2 = 0;  // exact
      for (int64_t k = 0; k < taps; ++k) {
        const int32_t q = rng_.next_q();
        sum_q += q;
        sum_q2 += int64_t(q) * q;
        *wp++ = float(q) * step;
      }
      const double mean_term = x.mean[size_t(first_in + ic)] * (double(step) * double(sum_q));
      const double var_term = x.var[size_t(first_in + ic)] * (step2 * double(sum_q2));
      mean += mean_term;
      var += var_term;
    }
    y.mean[size_t(oc)] = mean;
    y.var[size_t(oc)] = var;
  }
  const std::string wname = add_constant(name + ".weight", std::move(w));

  Node& n = add_node("Conv", name, {x.name, wname}, name);
  const int64_t pad = kernel / 2;
  n.attrs["kernel_shape"] = std::vector<int64_t>{kernel, kernel};
  n.attrs["strides"] = std::vector<int64_t>{stride, stride};
  n.attrs["pads"] = std::vector<int64_t>{pad, pad, pad, pad};
  n.attrs["dilations"] = std::vector<int64_t>{1, 1};
  n.attrs["group"] = group;
  return y;
}

Activation NetBuilder::batch_norm(const Activation& x, const std::string& name, float gamma_lo,
                                  float gamma_hi) {
  const int64_t c = x.channels;
  const size_t count = static_cast<size_t>(c);
  std::vector<float> scale(count), bias(count), mean(count), var(count);
  Activation y = like(x, name);
  y.mean.resize(count);
  y.var.resize(count);
  for (size_t i = 0; i < count; ++i) {
    // Running statistics: the estimate, perturbed (mean by up to 5% of a standard deviation).
    const float sd = float(std::sqrt(x.var[i]));
    mean[i] = mul_add(rng_.symmetric(0.05f), sd, float(x.mean[i]));
    var[i] = float(x.var[i] * double(rng_.uniform(0.95f, 1.05f)));
    scale[i] = rng_.uniform(gamma_lo, gamma_hi);
    bias[i] = rng_.symmetric(0.1f);
    // y = scale (x - mean) / sqrt(var + eps) + bias
    const double denom2 = double(var[i]) + double(kBnEpsilon);
    const double gain = double(scale[i]) / std::sqrt(denom2);
    y.mean[i] = gain * (x.mean[i] - double(mean[i])) + double(bias[i]);
    y.var[i] = gain * gain * x.var[i];
  }
  const std::string s = add_constant(name + ".weight", Tensor::from_f32({c}, scale));
  const std::string b = add_constant(name + ".bias", Tensor::from_f32({c}, bias));
  const std::string m = add_constant(name + ".running_mean", Tensor::from_f32({c}, mean));
  const std::string v = add_constant(name + ".running_var", Tensor::from_f32({c}, var));
  Node& n = add_node("BatchNormalization", name, {x.name, s, b, m, v}, name);
  n.attrs["epsilon"] = kBnEpsilon;
  return y;
}

Activation NetBuilder::relu(const Activation& x, const std::string& name) {
  add_node("Relu", name, {x.name}, name);
  return rectified(x, name);
}

Activation NetBuilder::clip6(const Activation& x, const std::string& name) {
  if (!g_.constants.count("relu6.min")) {
    add_constant("relu6.min", Tensor::scalar_f32(0.0f));
    add_constant("relu6.max", Tensor::scalar_f32(6.0f));
  }
  add_node("Clip", name, {x.name, "relu6.min", "relu6.max"}, name);
  return rectified(x, name);
}

Activation NetBuilder::add(const Activation& a, const Activation& b, const std::string& name) {
  LOCUS_CHECK(a.channels == b.channels, "model builder: add '", name, "' of ", a.channels, " and ",
              b.channels, " channels");
  add_node("Add", name, {a.name, b.name}, name);
  Activation y = like(a, name);
  for (size_t c = 0; c < a.mean.size(); ++c) {
    y.mean.push_back(a.mean[c] + b.mean[c]);
    y.var.push_back(a.var[c] + b.var[c]);  // the two operands taken as uncorrelated
  }
  return y;
}

Activation NetBuilder::max_pool(const Activation& x, const std::string& name, int64_t kernel,
                                int64_t stride, int64_t pad) {
  Node& n = add_node("MaxPool", name, {x.name}, name);
  n.attrs["kernel_shape"] = std::vector<int64_t>{kernel, kernel};
  n.attrs["strides"] = std::vector<int64_t>{stride, stride};
  n.attrs["pads"] = std::vector<int64_t>{pad, pad, pad, pad};
  n.attrs["dilations"] = std::vector<int64_t>{1, 1};
  n.attrs["ceil_mode"] = int64_t(0);
  // The maximum of 9 independent N(m, v): mean m + 1.485 sd, variance 0.37 v (rough for other
  // window sizes and correlated neighbours). Max pooling commutes with a preceding Relu.
  const bool after_relu = !x.pre_mean.empty();
  Activation pooled = like(x, name);
  for (size_t c = 0; c < x.mean.size(); ++c) {
    const double m = after_relu ? x.pre_mean[c] : x.mean[c];
    const double v = after_relu ? x.pre_var[c] : x.var[c];
    pooled.mean.push_back(m + 1.485 * std::sqrt(v));
    pooled.var.push_back(0.37 * v);
  }
  if (!after_relu) return pooled;
  Activation y = rectified(pooled, name);
  y.pre_mean.clear();
  y.pre_var.clear();
  return y;
}

Activation NetBuilder::global_average_pool(const Activation& x, const std::string& name) {
  add_node("GlobalAveragePool", name, {x.name}, name);
  Activation y = like(x, name);
  y.mean = x.mean;
  y.var = x.var;  // overestimates: averaging reduces the variance by an unknown factor
  return y;
}

Activation NetBuilder::flatten(const Activation& x, const std::string& name) {
  Node& n = add_node("Flatten", name, {x.name}, name);
  n.attrs["axis"] = int64_t(1);
  Activation y = like(x, name);
  y.mean = x.mean;
  y.var = x.var;
  return y;
}

Activation NetBuilder::gemm(const Activation& x, const std::string& name, int64_t out_features,
                            const std::string& output) {
  const int64_t in = x.channels;
  const float bound = float(1.0 / std::sqrt(double(in)));
  Tensor w(DType::F32, {out_features, in});
  float* wp = w.data<float>();
  for (int64_t k = 0; k < out_features * in; ++k) wp[k] = rng_.symmetric(bound);
  Tensor b(DType::F32, {out_features});
  float* bp = b.data<float>();
  for (int64_t k = 0; k < out_features; ++k) bp[k] = rng_.symmetric(bound);
  const std::string wn = add_constant(name + ".weight", std::move(w));
  const std::string bn = add_constant(name + ".bias", std::move(b));
  Node& n = add_node("Gemm", name, {x.name, wn, bn}, output);
  n.attrs["alpha"] = 1.0f;
  n.attrs["beta"] = 1.0f;
  n.attrs["transA"] = int64_t(0);
  n.attrs["transB"] = int64_t(1);
  Activation y;
  y.name = output;
  y.channels = out_features;
  return y;
}

void NetBuilder::finish(const std::vector<std::string>& outputs) {
  g_.outputs = outputs;
  g_.topo_sort();
}

}  // namespace locus::models
