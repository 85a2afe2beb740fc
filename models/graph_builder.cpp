// NetBuilder: graph IR construction with deterministic weights (see graph_builder.h).
//
// Reproducibility notes: every float below is produced either by one correctly rounded operation or
// as float(double(a) * double(b) + double(c)) with a, b floats (the product of two floats is exact in
// double, so a fused multiply-add gives the same result as separate ones). Channel statistics use
// products, quotients, sums and sqrt only.
#include "models/graph_builder.h"

#include <cmath>
#include <utility>

namespace locus::models {

namespace {

constexpr float kTwoPow23 = 8388608.0f;
constexpr float kTwoPowMinus24 = 1.0f / 16777216.0f;
constexpr float kBnEpsilon = 1e-5f;
// For z ~ N(0, v): E[max(z, 0)] = sqrt(v / (2 pi)), Var[max(z, 0)] = v (1/2 - 1/(2 pi)).
constexpr double kReluMeanPerStd = 0.3989422804014327;
constexpr double kReluVarFactor = 0.3408450569081046;

// a * b + c rounded once to float; identical with or without FMA contraction.
float mul_add(float a, float b, float c) {
  double product = double(a) * double(b);  // exact
  return float(product + double(c));
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
  Node n;
  n.op = op;
  n.name = name;
  n.inputs = std::move(inputs);
  n.outputs = {output};
  g_.nodes.push_back(std::move(n));
  return g_.nodes.back();
}

std::string NetBuilder::add_constant(const std::string& name, Tensor t) {
  LOCUS_CHECK(!g_.constants.count(name), "model builder: constant '", name, "' defined twice");
  g_.constants.emplace(name, std::move(t));
  return name;
}

Activation NetBuilder::input(const std::string& name, int64_t batch, int64_t channels, int64_t size) {
  g_.inputs.push_back(name);
  g_.values[name] = ValueInfo{DType::F32, {batch, channels, size, size}, true};
  Activation a;
  a.name = name;
  a.channels = channels;
  a.mean = 0.0;
  a.var = 1.0;
  return a;
}

Activation NetBuilder::conv(const Activation& x, const std::string& name, int64_t out_channels,
                            int64_t kernel, int64_t stride, int64_t group) {
  LOCUS_CHECK(group >= 1 && x.channels % group == 0 && out_channels % group == 0,
              "model builder: conv '", name, "' has group ", group, " not dividing its channels");
  const int64_t in_per_group = x.channels / group;
  const int64_t per_filter = in_per_group * kernel * kernel;  // fan_in
  const float bound = float(std::sqrt(6.0 / double(per_filter)));
  const float step = bound / kTwoPow23;

  Tensor w(DType::F32, {out_channels, in_per_group, kernel, kernel});
  float* wp = w.data<float>();
  Activation y;
  y.name = name;
  y.channels = out_channels;
  y.channel_mean.resize(size_t(out_channels));
  y.channel_var.resize(size_t(out_channels));
  for (int64_t oc = 0; oc < out_channels; ++oc) {
    int64_t sum_q = 0, sum_q2 = 0;  // exact
    for (int64_t k = 0; k < per_filter; ++k) {
      int32_t q = rng_.next_q();
      sum_q += q;
      sum_q2 += int64_t(q) * q;
      wp[oc * per_filter + k] = float(q) * step;
    }
    const double sum_w = double(step) * double(sum_q);
    const double sum_w2 = double(step) * double(step) * double(sum_q2);
    y.channel_mean[size_t(oc)] = x.mean * sum_w;
    y.channel_var[size_t(oc)] = x.var * sum_w2;
  }
  const std::string wname = add_constant(name + ".weight", std::move(w));

  Node& n = add_node("Conv", name, {x.name, wname}, name);
  const int64_t pad = kernel / 2;
  n.attrs["kernel_shape"] = std::vector<int64_t>{kernel, kernel};
  n.attrs["strides"] = std::vector<int64_t>{stride, stride};
  n.attrs["pads"] = std::vector<int64_t>{pad, pad, pad, pad};
  n.attrs["dilations"] = std::vector<int64_t>{1, 1};
  n.attrs["group"] = group;

  // Scalar summary (only used if no BN follows, which the builders never do).
  double mean_sum = 0, var_sum = 0;
  for (int64_t oc = 0; oc < out_channels; ++oc) {
    mean_sum += y.channel_mean[size_t(oc)];
    var_sum += y.channel_var[size_t(oc)];
  }
  y.mean = mean_sum / double(out_channels);
  y.var = var_sum / double(out_channels);
  return y;
}

Activation NetBuilder::batch_norm(const Activation& x, const std::string& name, float gamma_lo,
                                  float gamma_hi) {
  const int64_t c = x.channels;
  LOCUS_CHECK(x.channel_mean.size() == size_t(c), "model builder: batch_norm '", name,
              "' must follow a conv");
  const size_t count = static_cast<size_t>(c);
  std::vector<float> scale(count), bias(count), mean(count), var(count);
  double bias_sum = 0, var_sum = 0;
  for (int64_t k = 0; k < c; ++k) {
    const size_t i = size_t(k);
    const float expected_sd = float(std::sqrt(x.channel_var[i]));
    // The running statistics: the conv's expected channel statistics, slightly perturbed.
    mean[i] = mul_add(rng_.symmetric(0.1f), expected_sd, float(x.channel_mean[i]));
    var[i] = float(x.channel_var[i] * double(rng_.uniform(0.9f, 1.1f)));
    scale[i] = rng_.uniform(gamma_lo, gamma_hi);
    bias[i] = rng_.symmetric(0.1f);
    // Output channel variance: scale^2 * var_c / (running_var + eps).
    const double scale2 = double(scale[i]) * double(scale[i]);
    const double out_var = (scale2 * x.channel_var[i]) / (double(var[i]) + double(kBnEpsilon));
    bias_sum += double(bias[i]);
    var_sum += out_var;
  }
  const std::string s = add_constant(name + ".weight", Tensor::from_f32({c}, scale));
  const std::string b = add_constant(name + ".bias", Tensor::from_f32({c}, bias));
  const std::string m = add_constant(name + ".running_mean", Tensor::from_f32({c}, mean));
  const std::string v = add_constant(name + ".running_var", Tensor::from_f32({c}, var));
  Node& n = add_node("BatchNormalization", name, {x.name, s, b, m, v}, name);
  n.attrs["epsilon"] = kBnEpsilon;

  Activation y;
  y.name = name;
  y.channels = c;
  y.mean = bias_sum / double(c);
  y.var = var_sum / double(c);
  return y;
}

Activation NetBuilder::relu(const Activation& x, const std::string& name) {
  add_node("Relu", name, {x.name}, name);
  Activation y;
  y.name = name;
  y.channels = x.channels;
  y.mean = kReluMeanPerStd * std::sqrt(x.var);
  y.var = kReluVarFactor * x.var;
  return y;
}

Activation NetBuilder::clip6(const Activation& x, const std::string& name) {
  if (!g_.constants.count("relu6.min")) {
    add_constant("relu6.min", Tensor::scalar_f32(0.0f));
    add_constant("relu6.max", Tensor::scalar_f32(6.0f));
  }
  add_node("Clip", name, {x.name, "relu6.min", "relu6.max"}, name);
  Activation y;  // the cap at 6 is rarely reached: statistics as for Relu
  y.name = name;
  y.channels = x.channels;
  y.mean = kReluMeanPerStd * std::sqrt(x.var);
  y.var = kReluVarFactor * x.var;
  return y;
}

Activation NetBuilder::add(const Activation& a, const Activation& b, const std::string& name) {
  LOCUS_CHECK(a.channels == b.channels, "model builder: add '", name, "' of ", a.channels, " and ",
              b.channels, " channels");
  add_node("Add", name, {a.name, b.name}, name);
  Activation y;
  y.name = name;
  y.channels = a.channels;
  y.mean = a.mean + b.mean;
  y.var = a.var + b.var;
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
  Activation y;  // a maximum of a window: larger mean, smaller spread (rough)
  y.name = name;
  y.channels = x.channels;
  y.mean = x.mean + std::sqrt(x.var);
  y.var = 0.5 * x.var;
  return y;
}

Activation NetBuilder::global_average_pool(const Activation& x, const std::string& name) {
  add_node("GlobalAveragePool", name, {x.name}, name);
  Activation y = x;
  y.name = name;
  y.channel_mean.clear();
  y.channel_var.clear();
  return y;
}

Activation NetBuilder::flatten(const Activation& x, const std::string& name) {
  Node& n = add_node("Flatten", name, {x.name}, name);
  n.attrs["axis"] = int64_t(1);
  Activation y = x;
  y.name = name;
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
