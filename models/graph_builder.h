// A small helper for writing CNN architectures as graph IR (used by models/builders.cpp): adds Conv,
// BatchNormalization, Relu, Clip(0, 6), Add, pooling, Flatten and Gemm nodes with deterministic
// pseudo-random weights.
//
// Weights: std::mt19937 (whose output sequence the C++ standard fixes) mapped to floats with plain
// integer arithmetic and one multiplication, so a seed gives bit-identical constants with every
// compiler and standard library (std::uniform_real_distribution would not).
//
// Keeping activations O(1) through 50+ layers: each conv's weights are He-uniform, and the following
// BatchNormalization gets running statistics computed from those weights and a rough running estimate
// of the conv input's element mean and variance (mean_c = mu_in * sum(w_c), var_c = var_in *
// sum(w_c^2), as for inputs with independent elements), so that every BN approximately standardises
// its channels before its random scale and shift. The statistics are computed in double with
// products and sums only (no libm call except the correctly rounded sqrt), hence also reproducible.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace locus::models {

// Deterministic uniform floats from a seed.
class WeightRng {
 public:
  explicit WeightRng(uint32_t seed) : gen_(seed) {}
  // A uniform integer in [-2^23, 2^23).
  int32_t next_q();
  // Uniform in [-bound, bound): next_q() * (bound / 2^23).
  float symmetric(float bound);
  // Uniform in [lo, hi).
  float uniform(float lo, float hi);

 private:
  std::mt19937 gen_;
};

// A value of the network under construction with the builder's estimate of its element statistics.
struct Activation {
  std::string name;
  int64_t channels = 0;
  double mean = 0.0;  // rough mean and variance of one element over inputs and positions
  double var = 1.0;
  // Set by conv(): the expected mean and variance of each output channel, for the following BN.
  std::vector<double> channel_mean, channel_var;
};

class NetBuilder {
 public:
  NetBuilder(Graph& g, uint32_t seed);

  // Declares the graph input "name" as float32 [batch, channels, size, size] with N(0, 1) elements.
  Activation input(const std::string& name, int64_t batch, int64_t channels, int64_t size);

  // Conv without bias, square kernel, pads kernel/2 on every side, dilation 1. He-uniform weights
  // (bound sqrt(6 / fan_in)). Node, output value and weight names derive from `name`.
  Activation conv(const Activation& x, const std::string& name, int64_t out_channels, int64_t kernel,
                  int64_t stride, int64_t group = 1);
  // BatchNormalization (epsilon 1e-5) after a conv: running statistics from the conv's estimate,
  // scale uniform in [gamma_lo, gamma_hi), bias uniform in [-0.1, 0.1).
  Activation batch_norm(const Activation& x, const std::string& name, float gamma_lo = 0.8f,
                        float gamma_hi = 1.2f);
  Activation relu(const Activation& x, const std::string& name);
  Activation clip6(const Activation& x, const std::string& name);  // Clip(x, 0, 6)
  Activation add(const Activation& a, const Activation& b, const std::string& name);
  Activation max_pool(const Activation& x, const std::string& name, int64_t kernel, int64_t stride,
                      int64_t pad);
  Activation global_average_pool(const Activation& x, const std::string& name);
  Activation flatten(const Activation& x, const std::string& name);  // axis 1
  // Gemm(x, W, b) with transB = 1, W [out, in] and b [out] uniform in +-1/sqrt(in) (as
  // torch.nn.Linear). `output` names the output value (e.g. the graph output).
  Activation gemm(const Activation& x, const std::string& name, int64_t out_features,
                  const std::string& output);

  // Declares the graph outputs and sorts the nodes.
  void finish(const std::vector<std::string>& outputs);

 private:
  Node& add_node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                 const std::string& output);
  std::string add_constant(const std::string& name, Tensor t);

  Graph& g_;
  WeightRng rng_;
};

}  // namespace locus::models
