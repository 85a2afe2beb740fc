// Tests of the in-code MobileNetV2 and ResNet-50 builders: structure (node counts, attributes,
// names, shapes of the weights, inferred shapes), parameter counts against torchvision's published
// totals, determinism of the pseudo-random weights, and bounded activations (reference kernels).
#include "models/builders.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>

#include "graph/ir.h"
#include "graph/ops.h"
#include "graph/eval/eval_ops.h"
#include "tests/test_support.h"

namespace locus {
namespace {

std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> counts;
  for (const Node& n : g.nodes) counts[n.op]++;
  return counts;
}

// Trainable parameters as torchvision counts them: conv weights (and biases), BN weight and bias
// (not the running statistics), fc weight and bias.
int64_t parameter_count(const Graph& g) {
  int64_t total = 0;
  auto add = [&](const std::string& v) {
    if (const Tensor* t = g.constant(v)) total += t->numel();
  };
  for (const Node& n : g.nodes) {
    if (n.op == "Conv" || n.op == "Gemm") {
      for (size_t k = 1; k < n.inputs.size(); ++k) add(n.inputs[k]);
    } else if (n.op == "BatchNormalization") {
      add(n.inputs[1]);
      add(n.inputs[2]);
    }
  }
  return total;
}

const Node& node(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return n;
  throw Error("no node '" + name + "'");
}

Shape weight_shape(const Graph& g, const std::string& node_name) {
  return g.constant(node(g, node_name).inputs[1])->shape;
}

// The graph's structure (nodes, attributes, interface, constant names and shapes) as text.
std::string structure(const Graph& g) {
  std::string s = g.name + "|" + std::to_string(g.opset) + "\n";
  for (const Node& n : g.nodes) {
    s += n.op + " " + n.name + " (";
    for (const auto& i : n.inputs) s += i + ",";
    s += ") -> (";
    for (const auto& o : n.outputs) s += o + ",";
    s += ")";
    for (const auto& [key, value] : n.attrs) {
      s += " " + key + "=";
      std::visit(
          [&](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, int64_t>)
              s += std::to_string(v);
            else if constexpr (std::is_same_v<V, float>)
              s.append(reinterpret_cast<const char*>(&v), 4);
            else if constexpr (std::is_same_v<V, std::vector<int64_t>>)
              for (int64_t x : v) s += std::to_string(x) + ",";
            else
              s += "?";
          },
          value);
    }
    s += "\n";
  }
  for (const auto& [name, t] : g.constants) {
    s += name + " " + shape_str(t.shape) + " " + dtype_name(t.dtype) + "\n";
  }
  for (const auto& i : g.inputs) s += "in " + i + " " + shape_str(g.values.at(i).shape) + "\n";
  for (const auto& o : g.outputs) s += "out " + o + "\n";
  return s;
}

// Structure and every constant byte equal.
bool identical(const Graph& a, const Graph& b) {
  if (structure(a) != structure(b) || a.constants.size() != b.constants.size()) return false;
  for (const auto& [name, t] : a.constants)
    if (t.bytes != b.constants.at(name).bytes) return false;
  return true;
}

// FNV-1a over the constants' names and bytes: a fingerprint of the generated weights.
uint64_t weights_fingerprint(const Graph& g) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  for (const auto& [name, t] : g.constants) {
    mix(name.data(), name.size());
    mix(t.bytes.data(), t.bytes.size());
  }
  return h;
}

// Checks shared by both architectures: interface, sortedness, unique names, canonical conv form,
// finite weights, positive BN variances.
void check_common(const Graph& g, const models::BuildOptions& o) {
  EXPECT_EQ(g.opset, 13);
  ASSERT_EQ(g.inputs, std::vector<std::string>{"input"});
  ASSERT_EQ(g.outputs, std::vector<std::string>{"output"});
  const ValueInfo& in = g.values.at("input");
  EXPECT_TRUE(in.known);
  EXPECT_EQ(in.dtype, DType::F32);
  EXPECT_EQ(in.shape, (Shape{o.batch, 3, o.resolution, o.resolution}));

  std::set<std::string> available{"input"}, names;
  for (const Node& n : g.nodes) {
    EXPECT_TRUE(names.insert(n.name).second) << "duplicate node name " << n.name;
    for (const auto& i : n.inputs)
      EXPECT_TRUE(available.count(i) || g.is_constant(i))
          << n.name << " reads " << i << " too early";
    for (const auto& out : n.outputs) available.insert(out);
    if (n.op == "Conv") {
      EXPECT_EQ(n.inputs.size(), 2u) << n.name << ": conv without bias";
      const Shape& w = g.constant(n.inputs[1])->shape;
      ASSERT_EQ(w.size(), 4u);
      EXPECT_EQ(n.ints("kernel_shape"), (std::vector<int64_t>{w[2], w[3]}));
      EXPECT_EQ(n.ints("pads"), (std::vector<int64_t>(4, w[2] / 2)));
      EXPECT_EQ(n.ints("dilations"), (std::vector<int64_t>{1, 1}));
      EXPECT_EQ(n.ints("strides").size(), 2u);
      EXPECT_TRUE(n.has("group"));
    }
    if (n.op == "BatchNormalization") {
      EXPECT_EQ(n.inputs.size(), 5u);
      EXPECT_FLOAT_EQ(n.f("epsilon", 0), 1e-5f);
      const Tensor* var = g.constant(n.inputs[4]);
      for (int64_t k = 0; k < var->numel(); ++k) EXPECT_GT(var->data<float>()[k], 0.f) << n.name;
    }
    if (n.op == "Gemm") {
      EXPECT_EQ(n.i("transB", 0), 1);
      EXPECT_EQ(n.outputs, std::vector<std::string>{"output"});
      EXPECT_EQ(g.constant(n.inputs[1])->shape[0], o.num_classes);
    }
  }
  EXPECT_TRUE(available.count("output"));
  for (const auto& [name, t] : g.constants) {
    ASSERT_EQ(t.dtype, DType::F32) << name;
    int64_t non_finite = 0;
    for (int64_t k = 0; k < t.numel(); ++k) non_finite += !std::isfinite(t.data<float>()[k]);
    EXPECT_EQ(non_finite, 0) << name;
  }
}

TEST(Builders, MobileNetV2Structure) {
  models::BuildOptions o;
  Graph g = models::build_mobilenet_v2(o);
  check_common(g, o);
  // torchvision's mobilenet_v2: 52 conv+BN pairs, ReLU6 as Clip(0, 6), 10 residual adds.
  EXPECT_EQ(op_counts(g), (std::map<std::string, int>{{"Add", 10},
                                                      {"BatchNormalization", 52},
                                                      {"Clip", 35},
                                                      {"Conv", 52},
                                                      {"Flatten", 1},
                                                      {"Gemm", 1},
                                                      {"GlobalAveragePool", 1}}));
  EXPECT_EQ(g.nodes.size(), 152u);

  int depthwise = 0, stride2 = 0;
  for (const Node& n : g.nodes) {
    if (n.op == "Clip") {
      ASSERT_EQ(n.inputs.size(), 3u);
      const Tensor* lo = g.constant(n.inputs[1]);
      const Tensor* hi = g.constant(n.inputs[2]);
      ASSERT_TRUE(lo && hi) << n.name;
      EXPECT_TRUE(lo->shape.empty() && hi->shape.empty());
      EXPECT_EQ(lo->get(0), 0.0);
      EXPECT_EQ(hi->get(0), 6.0);
    }
    if (n.op != "Conv") continue;
    if (n.ints("strides")[0] == 2) ++stride2;
    const Shape& w = g.constant(n.inputs[1])->shape;
    if (w[2] == 3 && n.name != "features.0.0") {
      ++depthwise;
      EXPECT_EQ(n.i("group", 1), w[0]) << n.name << ": depthwise group == channels";
      EXPECT_EQ(w[1], 1) << n.name;
    } else {
      EXPECT_EQ(n.i("group", 1), 1) << n.name;
    }
  }
  EXPECT_EQ(depthwise, 17);
  EXPECT_EQ(stride2, 5);  // stem and the depthwise convs of features.2, .4, .7, .14

  EXPECT_EQ(weight_shape(g, "features.0.0"), (Shape{32, 3, 3, 3}));
  EXPECT_EQ(weight_shape(g, "features.1.conv.0.0"), (Shape{32, 1, 3, 3}));  // no expansion
  EXPECT_EQ(weight_shape(g, "features.1.conv.1"), (Shape{16, 32, 1, 1}));
  EXPECT_EQ(weight_shape(g, "features.2.conv.0.0"), (Shape{96, 16, 1, 1}));
  EXPECT_EQ(node(g, "features.2.conv.1.0").ints("strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(weight_shape(g, "features.17.conv.2"), (Shape{320, 960, 1, 1}));
  EXPECT_EQ(weight_shape(g, "features.18.0"), (Shape{1280, 320, 1, 1}));
  EXPECT_EQ(weight_shape(g, "classifier.1"), (Shape{1000, 1280}));
  EXPECT_EQ(node(g, "features.3.add").inputs,
            (std::vector<std::string>{"features.2.conv.3", "features.3.conv.3"}));
  EXPECT_EQ(node(g, "features.0.2").op, "Clip");
}

TEST(Builders, ResNet50Structure) {
  models::BuildOptions o;
  Graph g = models::build_resnet50(o);
  check_common(g, o);
  EXPECT_EQ(op_counts(g), (std::map<std::string, int>{{"Add", 16},
                                                      {"BatchNormalization", 53},
                                                      {"Conv", 53},
                                                      {"Flatten", 1},
                                                      {"Gemm", 1},
                                                      {"GlobalAveragePool", 1},
                                                      {"MaxPool", 1},
                                                      {"Relu", 49}}));
  EXPECT_EQ(g.nodes.size(), 175u);

  int stride2 = 0;
  for (const Node& n : g.nodes)
    if (n.op == "Conv") {
      EXPECT_EQ(n.i("group", 1), 1) << n.name;
      if (n.ints("strides")[0] == 2) ++stride2;
    }
  EXPECT_EQ(stride2, 7);  // conv1, and conv2 + downsample.0 of layer2.0, layer3.0, layer4.0

  EXPECT_EQ(weight_shape(g, "conv1"), (Shape{64, 3, 7, 7}));
  EXPECT_EQ(node(g, "conv1").ints("pads"), (std::vector<int64_t>{3, 3, 3, 3}));
  const Node& pool = node(g, "maxpool");
  EXPECT_EQ(pool.ints("kernel_shape"), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(pool.ints("strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(pool.ints("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  // v1.5: the stride is on the 3x3 conv
  EXPECT_EQ(node(g, "layer2.0.conv1").ints("strides"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(node(g, "layer2.0.conv2").ints("strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(node(g, "layer2.0.downsample.0").ints("strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(node(g, "layer1.0.downsample.0").ints("strides"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(weight_shape(g, "layer1.0.downsample.0"), (Shape{256, 64, 1, 1}));
  EXPECT_EQ(weight_shape(g, "layer3.5.conv2"), (Shape{256, 256, 3, 3}));
  EXPECT_EQ(weight_shape(g, "layer4.2.conv3"), (Shape{2048, 512, 1, 1}));
  EXPECT_EQ(weight_shape(g, "fc"), (Shape{1000, 2048}));
  EXPECT_EQ(node(g, "layer1.1.add").inputs,
            (std::vector<std::string>{"layer1.1.bn3", "layer1.0.relu_2"}));
  EXPECT_EQ(node(g, "layer1.1.relu_2").inputs, std::vector<std::string>{"layer1.1.add"});
}

TEST(Builders, ShapesInferred) {
  models::BuildOptions o;
  Graph m = models::build_mobilenet_v2(o);
  infer_shapes(m);
  EXPECT_EQ(m.info("output").shape, (Shape{1, 1000}));
  EXPECT_EQ(m.info("features.0.2").shape, (Shape{1, 32, 112, 112}));
  EXPECT_EQ(m.info("features.1.conv.2").shape, (Shape{1, 16, 112, 112}));
  EXPECT_EQ(m.info("features.17.conv.3").shape, (Shape{1, 320, 7, 7}));
  EXPECT_EQ(m.info("features.18.2").shape, (Shape{1, 1280, 7, 7}));

  Graph r = models::build_resnet50(o);
  infer_shapes(r);
  EXPECT_EQ(r.info("output").shape, (Shape{1, 1000}));
  EXPECT_EQ(r.info("maxpool").shape, (Shape{1, 64, 56, 56}));
  EXPECT_EQ(r.info("layer1.2.relu_2").shape, (Shape{1, 256, 56, 56}));
  EXPECT_EQ(r.info("layer2.0.relu_2").shape, (Shape{1, 512, 28, 28}));
  EXPECT_EQ(r.info("layer4.2.relu_2").shape, (Shape{1, 2048, 7, 7}));

  o.batch = 3;
  o.resolution = 160;
  o.num_classes = 17;
  Graph m2 = models::build_mobilenet_v2(o);
  infer_shapes(m2);
  EXPECT_EQ(m2.info("output").shape, (Shape{3, 17}));
  EXPECT_EQ(m2.info("features.18.2").shape, (Shape{3, 1280, 5, 5}));
  Graph r2 = models::build_resnet50(o);
  infer_shapes(r2);
  EXPECT_EQ(r2.info("output").shape, (Shape{3, 17}));
}

// Runs the graph with the reference kernels on a uniform random input of unit variance. Returns the
// logits and records the standard deviation of every BatchNormalization output.
std::vector<float> run_reference(Graph g, std::vector<double>* bn_stddevs) {
  infer_shapes(g);
  const ValueInfo in = g.values.at("input");
  std::map<std::string, Tensor> values;
  values["input"] = Tensor::from_f32(
      in.shape,
      test::random_floats(size_t(checked_numel(in.shape, "input")), 5, -1.7320508f, 1.7320508f));
  for (const Node& n : g.nodes) {
    std::vector<const Tensor*> inputs;
    for (const auto& name : n.inputs)
      inputs.push_back(g.is_constant(name) ? g.constant(name) : &values.at(name));
    std::vector<Tensor> outs = eval::evaluate(n, inputs);
    if (n.op == "BatchNormalization") {
      const Tensor& t = outs[0];
      double sum = 0, sum2 = 0;
      for (int64_t k = 0; k < t.numel(); ++k) {
        sum += t.data<float>()[k];
        sum2 += double(t.data<float>()[k]) * t.data<float>()[k];
      }
      const double mean = sum / double(t.numel());
      bn_stddevs->push_back(std::sqrt(std::max(0.0, sum2 / double(t.numel()) - mean * mean)));
    }
    values[n.outputs[0]] = std::move(outs[0]);
  }
  const Tensor& out = values.at("output");
  return std::vector<float>(out.data<float>(), out.data<float>() + out.numel());
}

// The weights keep activations O(1) through the network (BN outputs near unit spread) and the
// logits finite with a sensible spread.
TEST(Builders, ActivationsStayBounded) {
  models::BuildOptions o;
  o.resolution = 96;
  for (bool resnet : {false, true}) {
    SCOPED_TRACE(resnet ? "resnet50" : "mobilenet_v2");
    std::vector<double> bn;
    const std::vector<float> logits =
        run_reference(resnet ? models::build_resnet50(o) : models::build_mobilenet_v2(o), &bn);
    ASSERT_EQ(logits.size(), 1000u);
    double sum = 0, sum2 = 0;
    for (float v : logits) {
      ASSERT_TRUE(std::isfinite(v));
      sum += v;
      sum2 += double(v) * v;
    }
    const double mean = sum / 1000.0, sd = std::sqrt(sum2 / 1000.0 - mean * mean);
    const auto [lo, hi] = std::minmax_element(bn.begin(), bn.end());
    std::printf("[ builders ] %s: logits mean %.4f std %.4f; BN output std %.3f..%.3f\n",
                resnet ? "resnet50" : "mobilenet_v2", mean, sd, *lo, *hi);
    EXPECT_GT(sd, 1e-2);
    EXPECT_LT(sd, 1e2);
    EXPECT_GT(*lo, 0.1);
    EXPECT_LT(*hi, 10.0);
  }
}

TEST(Builders, ParameterCountsMatchTorchvision) {
  // torchvision: sum(p.numel() for p in model.parameters())
  EXPECT_EQ(parameter_count(models::build_mobilenet_v2()), 3504872);
  EXPECT_EQ(parameter_count(models::build_resnet50()), 25557032);
}

TEST(Builders, Options) {
  models::BuildOptions o;
  o.batch = 4;
  o.resolution = 160;
  o.num_classes = 10;
  o.seed = 7;
  check_common(models::build_mobilenet_v2(o), o);
  check_common(models::build_resnet50(o), o);

  models::BuildOptions bad;
  bad.batch = 0;
  EXPECT_THROW(models::build_mobilenet_v2(bad), Error);
  bad = {};
  bad.resolution = -3;
  EXPECT_THROW(models::build_resnet50(bad), Error);
  bad = {};
  bad.num_classes = 0;
  EXPECT_THROW(models::build_resnet50(bad), Error);
}

TEST(Builders, DeterministicWeights) {
  models::BuildOptions a, b;
  a.seed = b.seed = 42;
  EXPECT_TRUE(identical(models::build_mobilenet_v2(a), models::build_mobilenet_v2(b)));
  EXPECT_TRUE(identical(models::build_resnet50(a), models::build_resnet50(b)));

  b.seed = 43;
  Graph ga = models::build_mobilenet_v2(a), gb = models::build_mobilenet_v2(b);
  EXPECT_EQ(structure(ga), structure(gb));  // same architecture, other weights
  EXPECT_FALSE(identical(ga, gb));
  for (const auto& [name, t] : ga.constants) {  // every weight tensor changes with the seed
    if (name.rfind("relu6.", 0) == 0) continue;
    EXPECT_NE(t.bytes, gb.constants.at(name).bytes) << name;
  }
  EXPECT_FALSE(identical(models::build_resnet50(a), models::build_resnet50(b)));
}

// The weights must be bit-identical on every machine. These fingerprints (seed 1) were recorded on
// x86-64 and agree between g++ 12 and clang, -O0 to -O3 -march=native, with and without
// -ffp-contract=fast; a mismatch elsewhere means the generator is not portable.
TEST(Builders, WeightsFingerprint) {
  EXPECT_EQ(weights_fingerprint(models::build_mobilenet_v2()), 0x8286a77cf802bb36ull);
  EXPECT_EQ(weights_fingerprint(models::build_resnet50()), 0x72ba56057c596428ull);
}

}  // namespace
}  // namespace locus
