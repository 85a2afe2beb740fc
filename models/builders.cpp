// MobileNetV2 (width 1.0) and ResNet-50 (v1.5) as graph IR, following torchvision's module
// structure; node names are torchvision's module paths ("features.3.conv.1.0",
// "layer2.0.downsample.0").
#include "models/builders.h"

#include <array>
#include <string>

#include "models/graph_builder.h"

namespace locus::models {

namespace {

void check_options(const BuildOptions& o) {
  LOCUS_CHECK(o.batch >= 1 && o.batch <= 4096, "model builder: batch ", o.batch,
              " is outside [1, 4096]");
  LOCUS_CHECK(o.resolution >= 1 && o.resolution <= 4096, "model builder: resolution ", o.resolution,
              " is outside [1, 4096]");
  LOCUS_CHECK(o.num_classes >= 1 && o.num_classes <= 100000, "model builder: num_classes ",
              o.num_classes, " is outside [1, 100000]");
}

std::string path(const std::string& prefix, int64_t index) {
  return prefix + "." + std::to_string(index);
}

// torchvision Conv2dNormActivation with ReLU6: <prefix>.0 conv, <prefix>.1 BN, <prefix>.2 Clip.
Activation conv_bn_relu6(NetBuilder& b, const Activation& x, const std::string& prefix,
                         int64_t out_channels, int64_t kernel, int64_t stride, int64_t group = 1) {
  Activation y = b.conv(x, path(prefix, 0), out_channels, kernel, stride, group);
  y = b.batch_norm(y, path(prefix, 1));
  return b.clip6(y, path(prefix, 2));
}

// torchvision InvertedResidual: [expand 1x1 ->] depthwise 3x3 -> project 1x1 + BN [-> + x].
Activation inverted_residual(NetBuilder& b, const Activation& x, const std::string& prefix,
                             int64_t out_channels, int64_t stride, int64_t expand_ratio) {
  const std::string conv = prefix + ".conv";
  const int64_t hidden = x.channels * expand_ratio;
  Activation h = x;
  int64_t layer = 0;
  if (expand_ratio != 1) h = conv_bn_relu6(b, h, path(conv, layer++), hidden, 1, 1);
  h = conv_bn_relu6(b, h, path(conv, layer++), hidden, 3, stride, hidden);
  h = b.conv(h, path(conv, layer++), out_channels, 1, 1);
  h = b.batch_norm(h, path(conv, layer++));
  if (stride == 1 && x.channels == out_channels) h = b.add(x, h, prefix + ".add");
  return h;
}

// torchvision Bottleneck (v1.5: stride on the 3x3 conv). The block's last BN gets a smaller scale
// so that the residual stream grows slowly over the 16 blocks.
Activation bottleneck(NetBuilder& b, const Activation& x, const std::string& prefix, int64_t width,
                      int64_t stride, bool downsample) {
  const int64_t out_channels = width * 4;
  Activation h = b.conv(x, prefix + ".conv1", width, 1, 1);
  h = b.batch_norm(h, prefix + ".bn1");
  h = b.relu(h, prefix + ".relu");
  h = b.conv(h, prefix + ".conv2", width, 3, stride);
  h = b.batch_norm(h, prefix + ".bn2");
  h = b.relu(h, prefix + ".relu_1");
  h = b.conv(h, prefix + ".conv3", out_channels, 1, 1);
  h = b.batch_norm(h, prefix + ".bn3", 0.3f, 0.6f);
  Activation identity = x;
  if (downsample) {
    identity = b.conv(x, prefix + ".downsample.0", out_channels, 1, stride);
    identity = b.batch_norm(identity, prefix + ".downsample.1");
  }
  h = b.add(h, identity, prefix + ".add");
  return b.relu(h, prefix + ".relu_2");
}

// The frame both networks share: the graph named `name` with its "input", the feature extractor
// `features` (Activation(NetBuilder&, Activation)), then global average pool, flatten and the
// fully-connected classifier `head` writing "output".
template <class Features>
Graph build_classifier(const BuildOptions& o, const char* name, const char* head, Features features) {
  check_options(o);
  Graph g;
  g.name = name;
  NetBuilder b(g, o.seed);
  Activation x = features(b, b.input("input", o.batch, 3, o.resolution));
  x = b.global_average_pool(x, "avgpool");
  x = b.flatten(x, "flatten");
  b.gemm(x, head, o.num_classes, "output");
  b.finish({"output"});
  return g;
}

}  // namespace

Graph build_mobilenet_v2(const BuildOptions& o) {
  return build_classifier(o, "mobilenet_v2", "classifier.1", [](NetBuilder& b, Activation x) {
    x = conv_bn_relu6(b, x, "features.0", 32, 3, 2);

    struct Stage {
      int64_t expand, channels, repeats, stride;
    };
    constexpr std::array<Stage, 7> stages{{{1, 16, 1, 1},
                                           {6, 24, 2, 2},
                                           {6, 32, 3, 2},
                                           {6, 64, 4, 2},
                                           {6, 96, 3, 1},
                                           {6, 160, 3, 2},
                                           {6, 320, 1, 1}}};
    int64_t index = 1;
    for (const Stage& s : stages)
      for (int64_t r = 0; r < s.repeats; ++r, ++index)
        x = inverted_residual(b, x, path("features", index), s.channels, r == 0 ? s.stride : 1,
                              s.expand);
    return conv_bn_relu6(b, x, path("features", index), 1280, 1, 1);  // features.18
  });
}

Graph build_resnet50(const BuildOptions& o) {
  return build_classifier(o, "resnet50", "fc", [](NetBuilder& b, Activation x) {
    x = b.conv(x, "conv1", 64, 7, 2);
    x = b.batch_norm(x, "bn1");
    x = b.relu(x, "relu");
    x = b.max_pool(x, "maxpool", 3, 2, 1);

    constexpr std::array<int64_t, 4> blocks{3, 4, 6, 3};
    constexpr std::array<int64_t, 4> widths{64, 128, 256, 512};
    for (size_t stage = 0; stage < blocks.size(); ++stage) {
      const std::string layer = "layer" + std::to_string(stage + 1);
      for (int64_t k = 0; k < blocks[stage]; ++k) {
        const int64_t stride = (k == 0 && stage > 0) ? 2 : 1;
        x = bottleneck(b, x, path(layer, k), widths[stage], stride, k == 0);
      }
    }
    return x;
  });
}

}  // namespace locus::models
