// copy_strided_f32: strided copy for layout changes (NCHW <-> NHWC), Flatten/Reshape and Concat.
// After collapsing dimensions: contiguous rows become memcpy; a 2-D transpose (one dimension
// contiguous in the source, another in the destination) is copied in cache-sized tiles; anything
// else falls back to an element loop. Three planes into dense triples (an RGB image from NCHW to NHWC,
// every vision model's input) take an SSE2 interleave instead of 32 x 3 tiles.
#include <emmintrin.h>

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

// dst[3 * i + j] = src[i + j * ssj] for i in [0, n), j < 3: four pixels per step, their 12 values
// rearranged with unpacks and shuffles (pure moves: the bytes are the same as the scalar loop's).
void interleave3(int64_t n, const float* __restrict src, int64_t ssj, float* __restrict dst) {
  const float* r = src;
  const float* g = src + ssj;
  const float* b = src + 2 * ssj;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m128 a = _mm_loadu_ps(r + i), c1 = _mm_loadu_ps(g + i), c = _mm_loadu_ps(b + i);
    const __m128 t0 = _mm_unpacklo_ps(a, c1);                                    // r0 g0 r1 g1
    const __m128 t1 = _mm_unpackhi_ps(a, c1);                                    // r2 g2 r3 g3
    const __m128 u = _mm_shuffle_ps(c, t0, _MM_SHUFFLE(2, 2, 0, 0));             // b0 b0 r1 r1
    const __m128 v = _mm_shuffle_ps(t0, c, _MM_SHUFFLE(1, 1, 3, 3));             // g1 g1 b1 b1
    const __m128 x = _mm_shuffle_ps(c, t1, _MM_SHUFFLE(3, 2, 3, 2));             // b2 b3 r3 g3
    _mm_storeu_ps(dst + 3 * i, _mm_shuffle_ps(t0, u, _MM_SHUFFLE(2, 0, 1, 0)));      // r0 g0 b0 r1
    _mm_storeu_ps(dst + 3 * i + 4, _mm_shuffle_ps(v, t1, _MM_SHUFFLE(1, 0, 2, 0)));  // g1 b1 r2 g2
    _mm_storeu_ps(dst + 3 * i + 8, _mm_shuffle_ps(x, x, _MM_SHUFFLE(1, 3, 2, 0)));   // b2 r3 g3 b3
  }
  for (; i < n; ++i) {
    dst[3 * i] = r[i];
    dst[3 * i + 1] = g[i];
    dst[3 * i + 2] = b[i];
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
    if (nj == 3 && dsi == 3) {  // three planes into dense triples: runs of 4096 pixels
      constexpr int64_t kRun = 4096;
      const int64_t runs = (ni + kRun - 1) / kRun;
      detail::parallel_ranges(outer * runs, outer * ni * nj, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t o = t / runs, i0 = t % runs * kRun;
          detail::for_each_outer(d, n_outer, o, o + 1, [&](const int64_t* off) {
            interleave3(std::min(kRun, ni - i0), src + off[0] + i0, ssj, dst + off[1] + i0 * 3);
          });
        }
      });
      return;
    }
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
