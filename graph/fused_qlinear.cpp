// The stages of a fused int8 inverted-residual node as QLinearConv / QLinearAdd nodes (graph/fused_qlinear.h).
#include "graph/fused_qlinear.h"

#include "graph/error.h"

namespace locus::fused_qlinear {

size_t stage_base(const std::string& stage) {
  if (stage == "expand") return kExpand;
  if (stage == "dw") return kDw;
  LOCUS_CHECK(stage == "project", "fused int8 block: unknown stage '", stage, "'");
  return kProject;
}

Node stage_node(const Node& f, const std::string& stage, const std::string& x, const std::string& y, const Shape& w,
                int64_t group) {
  const size_t base = stage_base(stage);
  Node c;
  c.op = "QLinearConv";
  c.name = f.name + "/" + stage;
  c.inputs.push_back(x);
  for (size_t k = 0; k < kStageInputs; ++k) c.inputs.push_back(f.input(base + k));
  while (c.inputs.size() > 8 && c.inputs.back().empty()) c.inputs.pop_back();  // B is optional
  c.outputs = {y};
  const bool dw = stage == "dw", ex = stage == "expand";
  c.attrs["strides"] = dw ? f.ints("dw_strides", {1, 1}) : ex ? f.ints("expand_strides", {1, 1}) : std::vector<int64_t>{1, 1};
  c.attrs["pads"] = dw   ? f.ints("dw_pads", {0, 0, 0, 0})
                    : ex ? f.ints("expand_pads", {0, 0, 0, 0})
                         : std::vector<int64_t>{0, 0, 0, 0};
  c.attrs["dilations"] = std::vector<int64_t>{1, 1};
  c.attrs["group"] = dw ? group : int64_t(1);
  if (w.size() == 4) c.attrs["kernel_shape"] = std::vector<int64_t>{w[2], w[3]};
  return c;
}

bool expand_is_conv(const Node& f, const Shape& w) {
  return (w.size() == 4 && (w[2] != 1 || w[3] != 1)) || f.ints("expand_strides", {1, 1}) != std::vector<int64_t>{1, 1} ||
         f.ints("expand_pads", {0, 0, 0, 0}) != std::vector<int64_t>{0, 0, 0, 0};
}

Node add_node(const Node& f, const std::string& x, const std::string& p, const std::string& y) {
  const bool x_first = f.i("residual_x_first", 0) == 1;
  Node a;
  a.op = "QLinearAdd";
  a.domain = "com.microsoft";
  a.name = f.name + "/residual";
  a.inputs = {x_first ? x : p, f.input(kAdd), f.input(kAdd + 1), x_first ? p : x, f.input(kAdd + 2),
              f.input(kAdd + 3), f.input(kAdd + 4), f.input(kAdd + 5)};
  while (a.inputs.size() > 7 && a.inputs.back().empty()) a.inputs.pop_back();  // C_zero_point is optional
  a.outputs = {y};
  return a;
}

}  // namespace locus::fused_qlinear
