// A small helper for writing CNN architectures as graph IR (used by models/builders.cpp): adds
// Conv, BatchNormalization, Relu, Clip(0, 6), Add, pooling, Flatten and Gemm nodes with
// deterministic pseudo-random weights.
//
// Weights: std::mt19937 (whose output sequence the C++ standard fixes) mapped to floats with plain
// integer arithmetic and one multiplication, so a seed gives bit-identical constants with every
// compiler and standard library (std::uniform_real_distribution would not).
//
// Keeping activations O(1) through 50+ layers: each conv's weights are He-uniform, and the
// following BatchNormalization gets running statistics that approximately standardise its input.
// The builder propagates an estimate of every channel's mean and variance through the network
// (inputs N(0, 1); conv: mean_o = sum_c mu_c sum(w_oc), var_o = sum_c var_c sum(w_oc^2), as for
// independent elements; Relu/Clip: the moments of a rectified normal; Add: sums; MaxPool: the
// maximum of 9 normals), and each BN's running mean/var are that estimate, slightly perturbed,
// before its random scale and shift. This is a data-free version of calibrating BN statistics on
// random inputs.
//
// Reproducibility: the statistics use +, -, *, /, sqrt and an exp of our own (no libm function
// whose result may differ between libraries), and no expression can be fused into an FMA
// differently by different compilers (GCC does not contract in ISO C++ mode; graph_builder.cpp
// tells clang not to).
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

// A value of the network under construction with the builder's estimate of its channels'
// statistics.
struct Activation {
  std::string name;
  int64_t channels = 0;
  std::vector<double> mean, var;  // per channel, over inputs and positions
  // For Relu/Clip outputs: the statistics of their input (max pooling commutes with them).
  std::vector<double> pre_mean, pre_var;
};

class NetBuilder {
 public:
  NetBuilder(Graph& g, uint32_t seed);

  // Declares the graph input "name" as float32 [batch, channels, size, size] (assumed N(0, 1)).
  Activation input(const std::string& name, int64_t batch, int64_t channels, int64_t size);

  // Conv without bias, square kernel, pads kernel/2 on every side, dilation 1. He-uniform weights
  // (bound sqrt(6 / fan_in)). Node, output value and weight names derive from `name`.
  Activation conv(const Activation& x, const std::string& name, int64_t out_channels,
                  int64_t kernel, int64_t stride, int64_t group = 1);
  // BatchNormalization (epsilon 1e-5): running statistics from the estimate of x (perturbed by a
  // few percent), scale uniform in [gamma_lo, gamma_hi), bias uniform in [-0.1, 0.1).
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
