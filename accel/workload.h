// The accelerator model's view of an optimised graph: one Layer per node that moves data, with the
// shapes the mapper and the replay (accel/mapper.h, accel/replay.h) need. Extracted once from a Graph (after the
// passes, so BatchNorm is folded, activations fused and, when the pass ran, inverted-residual chains
// are FusedInvertedResidual nodes).
//
// Kinds:
//   Pointwise  1x1 Conv, group 1, no pads (any stride): the GEMM C[M x N] = A[M x K] . B[K x N],
//              M = N.OH.OW pixels, K = C, N = OC (a strided one reads every SH-th row / SW-th pixel)
//   Depthwise  Conv with group = C = OC (one filter per channel)
//   Conv       any other Conv (standard KxK, padded 1x1, grouped): an implicit-im2col GEMM with
//              M = N.OH.OW, K = (C/G).KH.KW in (c, kh, kw) order, N = OC
//   Gemm       Gemm / MatMul with a constant B: M rows, K, N
//   Pool       MaxPool / AveragePool / LpPool (a window per channel, no weights)
//   Reduce     GlobalAveragePool / GlobalMaxPool / ReduceMean / ReduceMax: every input entry read once
//   Eltwise    everything else that computes (Add, Mul, Relu, Clip, Concat, Softmax, ...): streamed
//   View       Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout: no data moves; the output
//              aliases the input's DRAM region
//   Fused      FusedInvertedResidual: `block` is the shape plan_fused_block plans; `stages` is the same
//              work layer by layer (Pointwise expand, Depthwise, [Depthwise dw2], Pointwise project,
//              Eltwise Add of the residual), with intermediate tensors named "<node>/expanded",
//              "<node>/dw", "<node>/dw2", "<node>/projected"
//
// Each kind comes from one op family of the registry in workload.cpp (one entry per family: the
// test that takes a node, the builder of its layer); adding an op family is one entry there.
//
// Biases are not counted anywhere (they are a few hundred entries per layer, under 0.1% of the
// traffic, and the tiling planners leave them out too).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "schedule/fused_block_planner.h"
#include "schedule/fused_chain_planner.h"

namespace locus::accel {

enum class LayerKind { Pointwise, Depthwise, Conv, Gemm, Pool, Reduce, Eltwise, View, Fused };
const char* layer_kind_name(LayerKind k);  // "pointwise", "depthwise", "conv", ...

// Geometry of a 2-D window op (input N x C x H x W, output N x OC x OH x OW; pads top/left/bottom/
// right; KH/KW are the dilated extents, kh/kw the taps).
struct ConvGeom {
  int64_t N = 1, C = 0, H = 1, W = 1, OC = 0, OH = 1, OW = 1;
  int64_t KH = 1, KW = 1, SH = 1, SW = 1, PT = 0, PL = 0, PB = 0, PR = 0, G = 1;
  int64_t taps = 1;  // weights per (output channel, input channel of its group): kh . kw
};

struct Layer {
  std::string name;  // node name
  std::string op;    // ONNX op ("FusedInvertedResidual" for fused groups)
  LayerKind kind = LayerKind::Eltwise;
  std::vector<std::string> inputs;   // activation tensors read (not constants), in input order
  std::vector<std::string> weights;  // constant tensors read (biases and shape operands excluded)
  std::vector<std::string> outputs;
  ConvGeom geom;                     // Pointwise, Depthwise, Conv, Pool
  int64_t M = 0, K = 0, N = 0;       // GEMM view: Pointwise, Conv, Gemm
  bool b_kn = false;                 // Gemm: B stored K x N row-major (else N x K, as Conv weights)
  // Fused
  schedule::FusedBlockShape block;     // with a second depthwise stage, the window of both combined
  int64_t dw_taps = 0;               // depthwise weights per channel (both stages)
  bool residual = false;
  // FusedSEBlock (a Fused layer with the squeeze-excite between dw and project): weights expand,
  // dw, project, then squeeze and excite; stages ... dw, Reduce "<node>/pooled", Pointwise
  // "<node>/squeezed" and "<node>/gate", Eltwise Mul "<node>/scaled", project ...
  bool se = false;
  int64_t se_squeeze = 0;            // squeeze channels
  std::vector<Layer> stages;         // the same group layer by layer
  // A FusedChain (also kind Fused): the chain the planner plans (schedule/fused_chain_planner.h);
  // `block` is unused, `stages` are its 1x1 / depthwise stages [, Add of the residual] [, Relu].
  std::optional<schedule::FusedChainShape> chain;
  int64_t macs = 0;                  // multiply-accumulates (Conv, Gemm, Fused); 0 otherwise
  int64_t ops = 0;                   // operations that occupy the MAC array (macs, or window/element ops)
};

struct Workload {
  std::vector<Layer> layers;                   // graph order
  std::map<std::string, int64_t> entries;      // every tensor a layer reads or writes, in entries
  std::map<std::string, std::string> alias;    // View output -> the tensor whose region it shares
  int64_t batch = 1;
  // The tensor whose region `name` occupies (follows View aliases).
  std::string storage(const std::string& name) const;
};

// Throws Unsupported naming the node for what the model cannot describe (non-4-D convolutions).
Workload extract_workload(const Graph& g);

}  // namespace locus::accel
