// copy_strided_f32: strided copy for layout changes (NCHW <-> NHWC), Flatten/Reshape and Concat.
// After collapsing dimensions: contiguous rows become memcpy; a 2-D transpose (one dimension
// contiguous in the source, another in the destination) is copied in cache-sized tiles; anything
// else falls back to an element loop.
#include "kernels/native/elementwise.h"
#include "kernels/native/strided_loop.h"

namespace locus::kernels {
namespace {

constexpr int64_t kTile = 32;

// dst[i * dsi + j] = src[i + j * ssj] for a ni x nj block (src contiguous in i, dst in j).
void transpose_tile(int64_t ni, int64_t nj, const float* __restrict src, int64_t ssj,
                    float* __restrict dst, int64_t dsi) {
  for (int64_t i = 0; i < ni; ++i) {
    float* d = dst + i * dsi;
    const float* s = src + i;
    for (int64_t j = 0; j < nj; ++j) d[j] = s[j * ssj];
  }
}

}  // namespace

void copy_strided_f32(const std::vector<int64_t>& shape, const float* src,
                      const std::vector<int64_t>& src_strides, float* dst,
                      const std::vector<int64_t>& dst_strides) {
  detail::StridedDims<2> d;
  if (!detail::collapse_copy(shape, src, src_strides, dst, dst_strides, d)) return;
  const int last = d.rank - 1;

  // Contiguous innermost rows on both sides: a memcpy each.
  if (d.stride[0][last] == 1 && d.stride[1][last] == 1) return detail::copy_rows(d, src, dst);

  // Transpose: dimension si is contiguous in src, dj in dst. Move them to the end (dj, si).
  int si = -1, dj = -1;
  for (int k = 0; k < d.rank; ++k) {
    if (d.stride[0][k] == 1 && si < 0) si = k;
    if (d.stride[1][k] == 1 && dj < 0) dj = k;
  }
  if (si >= 0 && dj >= 0 && si != dj) {
    d.move_dim(si, last);
    if (dj > si) --dj;
    d.move_dim(dj, last - 1);
    const int n_outer = d.rank - 2;
    const int64_t nj = d.size[last - 1], ni = d.size[last];
    const int64_t ssj = d.stride[0][last - 1], dsi = d.stride[1][last];
    const int64_t tj = (nj + kTile - 1) / kTile, ti = (ni + kTile - 1) / kTile;
    const int64_t outer = d.outer_count(n_outer);
    // One task per (outer index, j tile, i tile).
    detail::parallel_ranges(outer * tj * ti, outer * ni * nj, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t o = t / (tj * ti), j0 = (t / ti % tj) * kTile, i0 = (t % ti) * kTile;
        detail::for_each_outer(d, n_outer, o, o + 1, [&](const int64_t* off) {
          transpose_tile(std::min(kTile, ni - i0), std::min(kTile, nj - j0),
                         src + off[0] + i0 + j0 * ssj, ssj, dst + off[1] + i0 * dsi + j0, dsi);
        });
      }
    });
    return;
  }

  // General element loop over the innermost dimension.
  detail::copy_rows(d, src, dst);
}

}  // namespace locus::kernels
