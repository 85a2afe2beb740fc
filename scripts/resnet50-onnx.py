#!/usr/bin/python3
# Writes a ResNet-50 (torchvision v1.5 layout, symbolic batch N, 224x224, BatchNorm folded into the convs as
# an exporter with constant folding leaves it) with random weights as ONNX, for timing other
# runtimes (ONNX Runtime) on the architecture of locus's builtin:resnet50. Weights do not matter for
# timing; they are He-scaled normals so no activation overflows or goes denormal.
# usage: scripts/resnet50-onnx.py OUT.onnx
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(1)
nodes, inits = [], []
count = [0]


def name(p):
    count[0] += 1
    return f"{p}_{count[0]}"


def conv(x, cin, cout, k, s, relu=True, residual=None):
    w = name("w")
    b = name("b")
    inits.append(numpy_helper.from_array((rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32), w))
    inits.append(numpy_helper.from_array((rng.standard_normal(cout) * 0.01).astype(np.float32), b))
    y = name("conv")
    nodes.append(helper.make_node("Conv", [x, w, b], [y], kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4))
    if residual is not None:
        a = name("add")
        nodes.append(helper.make_node("Add", [y, residual], [a]))
        y = a
    if relu:
        r = name("relu")
        nodes.append(helper.make_node("Relu", [y], [r]))
        y = r
    return y


x = conv("input", 3, 64, 7, 2)
p = name("pool")
nodes.append(helper.make_node("MaxPool", [x], [p], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
x, cin = p, 64
for stage, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
    for k in range(blocks):
        s = 2 if (k == 0 and stage > 0) else 1
        identity = conv(x, cin, width * 4, 1, s, relu=False) if k == 0 else x
        h = conv(x, cin, width, 1, 1)
        h = conv(h, width, width, 3, s)
        x = conv(h, width, width * 4, 1, 1, relu=True, residual=identity)
        cin = width * 4
g = name("gap")
nodes.append(helper.make_node("GlobalAveragePool", [x], [g]))
f = name("flat")
nodes.append(helper.make_node("Flatten", [g], [f], axis=1))
inits.append(numpy_helper.from_array((rng.standard_normal((1000, 2048)) * 0.02).astype(np.float32), "fc_w"))
inits.append(numpy_helper.from_array(np.zeros(1000, np.float32), "fc_b"))
nodes.append(helper.make_node("Gemm", [f, "fc_w", "fc_b"], ["output"], transB=1))
graph = helper.make_graph(nodes, "resnet50", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1000])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
