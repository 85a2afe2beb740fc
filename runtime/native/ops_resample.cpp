// The native backend's upsampling ops of mobile CNNs: Resize (nearest / bilinear along H and W of an
// NHWC value; resize_nhwc) and ConvTranspose (2-D; conv_transpose_nhwc).
#include <memory>

#include "graph/ops.h"
#include "kernels/native/resample_nhwc.h"
#include "runtime/native/op_registry.h"

namespace locus::native {
namespace {

using namespace kernels;

Step build_resize(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  if (x.shape.size() != 4)
    throw Unsupported(cat("native backend: Resize '", n.name, "' of a rank-", x.shape.size(),
                          " value (only [N,C,H,W] values are resized)"));
  const std::vector<float> scales = n.floats("locus.scales");
  auto p = std::make_shared<ResizePlan>();
  p->nearest = n.s("mode", "nearest") != "linear";
  // N and C keep their sizes; nearest may still pick other indices (e.g. tf_half_pixel_for_nearest
  // with ceil), linear must map each index to itself
  for (size_t d = 0; d < 2; ++d) {
    const ResizeTaps t = resize_taps(n, x.shape[d], y.shape[d], scales[d]);
    bool identity = true, same_size = x.shape[d] == y.shape[d];
    for (int64_t o = 0; same_size && o < y.shape[d]; ++o)
      identity &= t.i0[size_t(o)] == o && (t.w[size_t(o)] == 0.f || t.i1[size_t(o)] == o);
    if (!same_size || (!identity && !p->nearest))
      throw Unsupported(cat("native backend: Resize '", n.name, "' along axis ", d, " (only H and W are resized)"));
    if (!identity) (d == 0 ? p->n_src : p->c_src) = t.i0;
  }
  p->N = x.shape[0], p->C = x.shape[1], p->H = x.shape[2], p->W = x.shape[3];
  p->OH = y.shape[2], p->OW = y.shape[3];
  ResizeTaps th = resize_taps(n, p->H, p->OH, scales[2]), tw = resize_taps(n, p->W, p->OW, scales[3]);
  p->h0 = th.i0, p->h1 = th.i1, p->hw = th.w;
  p->w0 = tw.i0, p->w1 = tw.i1, p->ww = tw.w;
  c.set_implementation(p->nearest ? "resize_nhwc nearest" : "resize_nhwc bilinear");
  return [p, px = x.ptr, py = y.ptr] { resize_nhwc(*p, px, py); };
}

Step build_conv_transpose(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  const auto [w, b] = conv_constants(c, n, 1, 2);
  auto st = n.ints("strides", {1, 1}), pads = n.ints("pads", {0, 0, 0, 0}), dil = n.ints("dilations", {1, 1});
  ConvTransposeShape s;
  s.N = x.shape[0], s.C = x.shape[1], s.H = x.shape[2], s.W = x.shape[3];
  s.OC = y.shape[1], s.OH = y.shape[2], s.OW = y.shape[3];
  s.KH = w->shape[2], s.KW = w->shape[3];
  s.SH = st[0], s.SW = st[1], s.DH = dil[0], s.DW = dil[1], s.PT = pads[0], s.PL = pads[1];
  s.G = n.i("group", 1);
  auto packed = std::make_shared<PackedConvTranspose>(
      pack_conv_transpose(s, w->data<float>(), b ? b->data<float>() : nullptr, activation_of(n), c.threads()));
  c.need_workspace(conv_transpose_scratch_floats(*packed));
  return [ws = c.workspace(), packed, px = x.ptr, py = y.ptr] { conv_transpose_nhwc(*packed, px, py, ws->data()); };
}

}  // namespace

void register_resample_ops(NativeOpRegistry& r) {
  r.add({"Resize", "resize_nhwc", build_resize});
  r.add({"ConvTranspose", "conv_transpose_nhwc (gemm_f32 + gather)", build_conv_transpose});
}

}  // namespace locus::native
