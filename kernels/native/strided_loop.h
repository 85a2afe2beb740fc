// Internal helpers for the strided element-wise kernels: collapse a shape and its per-operand
// strides to the fewest dimensions (drop size-1 dimensions, merge dimensions that are contiguous
// for every operand), then walk the outer dimensions with an incremental index.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "graph/error.h"

namespace locus::kernels::detail {

inline constexpr int kMaxRank = 16;
inline constexpr int64_t kParallelElements = int64_t(1) << 16;

template <int NOPS>
struct StridedDims {
  int rank = 0;
  bool empty = false;  // some dimension is 0
  int64_t size[kMaxRank];
  int64_t stride[NOPS][kMaxRank];

  int64_t outer_count(int n_outer) const {
    int64_t c = 1;
    for (int d = 0; d < n_outer; ++d) c *= size[d];
    return c;
  }
  // Move dimension `from` to position `to` (shifting the ones between).
  void move_dim(int from, int to) {
    auto mv = [&](int64_t* a) {
      const int64_t v = a[from];
      if (from < to)
        std::copy(a + from + 1, a + to + 1, a + from);
      else
        std::copy_backward(a + to, a + from, a + from + 1);
      a[to] = v;
    };
    mv(size);
    for (int op = 0; op < NOPS; ++op) mv(stride[op]);
  }
};

template <int NOPS>
StridedDims<NOPS> collapse(const std::vector<int64_t>& shape,
                           const std::vector<int64_t>* const (&strides)[NOPS]) {
  StridedDims<NOPS> d;
  for (int op = 0; op < NOPS; ++op)
    LOCUS_CHECK(strides[op]->size() == shape.size(), "strided kernel: ", strides[op]->size(),
                " strides for a rank-", shape.size(), " shape");
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t n = shape[i];
    if (n == 0) d.empty = true;
    if (n <= 1) continue;
    bool merge = d.rank > 0;
    for (int op = 0; merge && op < NOPS; ++op)
      merge = d.stride[op][d.rank - 1] == (*strides[op])[i] * n;
    if (merge) {
      d.size[d.rank - 1] *= n;
      for (int op = 0; op < NOPS; ++op) d.stride[op][d.rank - 1] = (*strides[op])[i];
      continue;
    }
    LOCUS_CHECK(d.rank < kMaxRank, "strided kernel: rank above ", kMaxRank);
    d.size[d.rank] = n;
    for (int op = 0; op < NOPS; ++op) d.stride[op][d.rank] = (*strides[op])[i];
    ++d.rank;
  }
  return d;
}

// The dimensions of a copy from src to dst (operand 0 the source, 1 the destination), collapsed into
// d. False when nothing is left to do: a dimension is 0, or rank 0 (the one element is copied here).
template <class T>
bool collapse_copy(const std::vector<int64_t>& shape, const T* src, const std::vector<int64_t>& src_strides, T* dst,
                   const std::vector<int64_t>& dst_strides, StridedDims<2>& d) {
  const std::vector<int64_t>* st[2] = {&src_strides, &dst_strides};
  d = collapse<2>(shape, st);
  if (d.empty) return false;
  if (d.rank == 0) {
    dst[0] = src[0];
    return false;
  }
  return true;
}

// Calls f(off) for outer indices [o0, o1) over the first n_outer dimensions (row-major), where
// off[op] is the element offset of that outer index for operand op.
template <int NOPS, class F>
void for_each_outer(const StridedDims<NOPS>& d, int n_outer, int64_t o0, int64_t o1, F&& f) {
  if (o0 >= o1) return;
  int64_t idx[kMaxRank] = {};
  int64_t off[NOPS] = {};
  int64_t rem = o0;
  for (int k = n_outer - 1; k >= 0; --k) {
    idx[k] = rem % d.size[k];
    rem /= d.size[k];
    for (int op = 0; op < NOPS; ++op) off[op] += idx[k] * d.stride[op][k];
  }
  for (int64_t o = o0; o < o1; ++o) {
    f(static_cast<const int64_t*>(off));
    for (int k = n_outer - 1; k >= 0; --k) {
      for (int op = 0; op < NOPS; ++op) off[op] += d.stride[op][k];
      if (++idx[k] < d.size[k]) break;
      for (int op = 0; op < NOPS; ++op) off[op] -= d.size[k] * d.stride[op][k];
      idx[k] = 0;
    }
  }
}

// Runs body(o0, o1) over [0, count), split across OpenMP threads when the work is large enough.
template <class F>
void parallel_ranges(int64_t count, int64_t work, F&& body) {
  if (count > 1 && work >= kParallelElements && !omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel
    {
      const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
      body(count * t / nt, count * (t + 1) / nt);
    }
  } else {
    body(0, count);
  }
}

// The rows of a collapsed copy (collapse_copy): the innermost dimension of d, a memcpy where both
// sides are contiguous in it, else element by element; rows in parallel.
template <class T>
void copy_rows(const StridedDims<2>& d, const T* src, T* dst) {
  const int last = d.rank - 1;
  const int64_t inner = d.size[last], rows = d.outer_count(last);
  const int64_t ss = d.stride[0][last], ds = d.stride[1][last];
  parallel_ranges(rows, rows * inner, [&](int64_t r0, int64_t r1) {
    for_each_outer(d, last, r0, r1, [&](const int64_t* off) {
      const T* s = src + off[0];
      T* t = dst + off[1];
      if (ss == 1 && ds == 1) {
        std::memcpy(t, s, size_t(inner) * sizeof(T));
      } else {
        for (int64_t i = 0; i < inner; ++i) t[i * ds] = s[i * ss];
      }
    });
  });
}

}  // namespace locus::kernels::detail
