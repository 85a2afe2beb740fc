#!/usr/bin/env python3
"""Rewrites a QOperator-form quantized ONNX model into the QDQ form that today's quantization tools
write, with the same quantization parameters, so that both forms can be run and compared.

    scripts/make-qdq-model.py IN_MODEL_DIR OUT_MODEL_DIR

IN_MODEL_DIR is a folder in the ONNX test layout holding one .onnx file (e.g.
../shared/models/mobilenetv2-12-int8); OUT_MODEL_DIR gets <name>-qdq.onnx and a copy of the
test_data_set_* folders, so `locus check OUT_MODEL_DIR` runs it against the same reference outputs.

Each quantized operator becomes DequantizeLinear on its quantized inputs -> the float operator ->
QuantizeLinear with the operator's output scale and zero point:
  QLinearConv(x, xs, xz, w, ws, wz, ys, yz, b)  -> DQ(x), DQ(w, axis 0), DQ(b, scale xs*ws, axis 0)
                                                   -> Conv -> Q(ys, yz)
  QLinearMatMul(a, as, az, b, bs, bz, ys, yz)   -> DQ(a), DQ(b) -> MatMul -> Q(ys, yz)
  com.microsoft QLinearAdd(a, as, az, b, bs, bz, cs, cz) -> DQ(a), DQ(b) -> Add -> Q(cs, cz)
  com.microsoft QLinearGlobalAveragePool(x, xs, xz, ys, yz) -> DQ(x) -> GlobalAveragePool -> Q(ys, yz)
Other nodes (QuantizeLinear, DequantizeLinear, and the shape ops on quantized tensors) are kept.
The bias scale xs*ws is computed in float32, as ONNX Runtime's quantizer writes it. The rewrite is
exact: a runtime that recognises the DQ -> op -> Q groups runs the same integer arithmetic.
"""
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, version_converter

MS = "com.microsoft"


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    src, dst = argv[1], argv[2]
    models = [f for f in sorted(os.listdir(src)) if f.endswith(".onnx")] if os.path.isdir(src) else []
    if len(models) != 1:
        print(f"make-qdq-model: '{src}' must be a folder holding exactly one .onnx file", file=sys.stderr)
        return 1
    m = onnx.load(os.path.join(src, models[0]))
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    new_inits = []
    nodes = []
    count = {}

    def dq(name, scale, zero_point, axis=None, tag=""):
        out = f"{name}_dq{tag}"
        attrs = {} if axis is None else {"axis": axis}
        inputs = [name, scale] + ([zero_point] if zero_point else [])
        nodes.append(helper.make_node("DequantizeLinear", inputs, [out], name=out, **attrs))
        return out

    def q(value, scale, zero_point, out):
        nodes.append(helper.make_node("QuantizeLinear", [value, scale, zero_point], [out], name=out + "_q"))

    def per_channel(scale_name):
        t = inits.get(scale_name)
        return t is not None and len(t.dims) == 1 and t.dims[0] > 1

    for n in g.node:
        key = (n.domain, n.op_type)
        count[key] = count.get(key, 0) + 1
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if key == ("", "QLinearConv"):
            x, xs, xz, w, ws, wz, ys, yz = n.input[:8]
            b = n.input[8] if len(n.input) > 8 and n.input[8] else None
            axis = 0 if per_channel(ws) else None
            inputs = [dq(x, xs, xz, tag=f"_{n.name}"), dq(w, ws, wz, axis)]
            if b:
                xs_v = numpy_helper.to_array(inits[xs]).astype(np.float32)
                ws_v = numpy_helper.to_array(inits[ws]).astype(np.float32)
                bs_name = f"{b}_scale"
                bs = (xs_v * ws_v).astype(np.float32).reshape(ws_v.shape)
                new_inits.append(numpy_helper.from_array(bs, bs_name))
                inputs.append(dq(b, bs_name, None, 0 if bs.ndim == 1 and bs.size > 1 else None))
            y = f"{n.output[0]}_float"
            nodes.append(helper.make_node("Conv", inputs, [y], name=n.name + "_conv", **attrs))
            q(y, ys, yz, n.output[0])
        elif key == ("", "QLinearMatMul"):
            a, as_, az, b, bs, bz, ys, yz = n.input
            axis = 1 if per_channel(bs) else None  # B is [K, N]: per-column scales
            y = f"{n.output[0]}_float"
            nodes.append(helper.make_node("MatMul", [dq(a, as_, az, tag=f"_{n.name}"), dq(b, bs, bz, axis)], [y],
                                          name=n.name + "_matmul"))
            q(y, ys, yz, n.output[0])
        elif key == (MS, "QLinearAdd"):
            a, as_, az, b, bs, bz, cs, cz = n.input
            y = f"{n.output[0]}_float"
            nodes.append(helper.make_node("Add", [dq(a, as_, az, tag=f"_{n.name}_a"),
                                                  dq(b, bs, bz, tag=f"_{n.name}_b")], [y], name=n.name + "_add"))
            q(y, cs, cz, n.output[0])
        elif key == (MS, "QLinearGlobalAveragePool"):
            if attrs.get("channels_last", 0) != 0:
                print(f"make-qdq-model: node '{n.name}': channels_last=1 is not supported", file=sys.stderr)
                return 1
            x, xs, xz, ys, yz = n.input
            y = f"{n.output[0]}_float"
            nodes.append(helper.make_node("GlobalAveragePool", [dq(x, xs, xz, tag=f"_{n.name}")], [y],
                                          name=n.name + "_gap"))
            q(y, ys, yz, n.output[0])
        elif n.domain not in ("", "ai.onnx"):
            print(f"make-qdq-model: node '{n.name}': {n.domain}.{n.op_type} has no QDQ rewrite", file=sys.stderr)
            return 1
        else:
            nodes.append(n)

    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_inits)
    # Per-axis DequantizeLinear needs opset 13: drop the contrib domains (no node uses them now),
    # then let ONNX's version converter move the rest (e.g. Unsqueeze's axes become an input).
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    del m.opset_import[:]
    m.opset_import.extend([helper.make_opsetid("", opset)])
    if opset < 13:
        m = version_converter.convert_version(m, 13)
    onnx.checker.check_model(m, full_check=True)

    os.makedirs(dst, exist_ok=True)
    name = os.path.splitext(models[0])[0] + "-qdq.onnx"
    onnx.save(m, os.path.join(dst, name))
    for d in sorted(os.listdir(src)):
        if d.startswith("test_data_set_") and os.path.isdir(os.path.join(src, d)):
            shutil.copytree(os.path.join(src, d), os.path.join(dst, d), dirs_exist_ok=True)
    rewritten = ", ".join(f"{op} x{c}" for (dom, op), c in sorted(count.items())
                          if op.startswith("QLinear"))
    print(f"make-qdq-model: wrote {os.path.join(dst, name)} ({rewritten} rewritten, {len(nodes)} nodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
