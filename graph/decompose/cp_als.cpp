// CP fitting by alternating least squares; see cp_als.h for the algorithm and its threading.
#include "graph/decompose/cp_als.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "graph/error.h"

namespace locus::decompose {
namespace {

using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMat>;
using ConstColMap = Eigen::Map<const Mat>;

int thread_count(int threads) { return threads > 0 ? threads : std::max(1, omp_get_max_threads()); }

// Products are split into blocks of this many result columns, one block per OpenMP task. A block's
// arithmetic depends only on the operands' sizes and the block's position, never on the number of
// threads: the results are bit-identical for any thread count.
constexpr int64_t kColumnBlock = 64;

// Below this many multiply-adds a product runs on the calling thread (same arithmetic either way).
constexpr double kParallelWork = 1 << 20;

// dst = a * b, by blocks of kColumnBlock columns of b.
template <class A, class B>
void product_by_columns(const A& a, const B& b, Mat& dst, int threads) {
  const int64_t rows = a.rows(), cols = b.cols(), blocks = (cols + kColumnBlock - 1) / kColumnBlock;
  dst.resize(rows, cols);
  const bool par = threads > 1 && blocks > 1 && double(rows) * double(a.cols()) * double(cols) > kParallelWork;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (par)
  for (int64_t k = 0; k < blocks; ++k) {
    const int64_t c0 = k * kColumnBlock, w = std::min(kColumnBlock, cols - c0);
    dst.middleCols(c0, w).noalias() = a * b.middleCols(c0, w);
  }
}

int64_t product(const std::vector<int64_t>& d, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t m = begin; m < end; ++m) p *= d[m];
  return p;
}

void check_tensor(const DenseTensor& x) {
  LOCUS_CHECK(x.dims.size() >= 2, "CP decomposition needs a tensor of order >= 2, got order ", x.dims.size());
  for (int64_t d : x.dims) LOCUS_CHECK(d >= 1, "CP decomposition: tensor dimension ", d, " is not positive");
  LOCUS_CHECK(int64_t(x.data.size()) == x.numel(), "CP decomposition: tensor has ", x.data.size(),
              " values for ", x.numel(), " elements");
}

// Khatri-Rao (column-wise Kronecker) product of f[begin..end): row index is the row-major
// multi-index over those modes (the first one most significant). Ones(1, R) when the range is empty.
Mat khatri_rao(const std::vector<Mat>& f, size_t begin, size_t end, int64_t rank, int threads) {
  Mat cur = Mat::Ones(1, rank);
  for (size_t m = begin; m < end; ++m) {
    const Mat& a = f[m];
    Mat next(cur.rows() * a.rows(), rank);
    const bool par = threads > 1 && double(next.size()) > kParallelWork / 8;
#pragma omp parallel for num_threads(threads) if (par)
    for (int64_t r = 0; r < rank; ++r)
      for (int64_t p = 0; p < cur.rows(); ++p)
        next.col(r).segment(p * a.rows(), a.rows()) = cur(p, r) * a.col(r);
    cur.swap(next);
  }
  return cur;
}

// X_(0)^T A_0 ((numel / I_0) x R): column r is a row-major tensor over modes 1..N-1. The MTTKRP of
// every mode n > 0 starts from it, and it depends only on A_0, so one sweep computes it once.
Mat contract_mode0(const DenseTensor& x, const Mat& a0, int threads) {
  const int64_t i0 = x.dims[0], rest = x.numel() / i0;
  ConstRowMap xm(x.data.data(), i0, rest);
  Mat t;
  product_by_columns(xm.transpose(), a0, t, threads);
  return t;
}

// MTTKRP for mode n: X_(n) * (Khatri-Rao product of the other factors), I_n x R. Mode 0 is one GEMM;
// for n > 0 it starts from t = contract_mode0(x, f[0]) (the largest memory is (numel / I_0) x R), and
// each column r contracts the remaining modes with the rank-1 vectors of component r.
Mat mttkrp(const DenseTensor& x, const std::vector<Mat>& f, size_t n, int64_t rank, const Mat* t, int threads) {
  const size_t order = x.dims.size();
  const int64_t i0 = x.dims[0], rest = x.numel() / i0;
  Mat m;
  if (n == 0) {
    ConstRowMap xm(x.data.data(), i0, rest);
    product_by_columns(xm, khatri_rao(f, 1, order, rank, threads), m, threads);
    return m;
  }
  const int64_t left = product(x.dims, 1, n), in = x.dims[n], right = product(x.dims, n + 1, order);
  const Mat kl = khatri_rao(f, 1, n, rank, threads);          // left x R
  const Mat kr = khatri_rao(f, n + 1, order, rank, threads);  // right x R
  m.resize(in, rank);
  const bool par = threads > 1 && double(rest) * double(rank) > kParallelWork;
#pragma omp parallel num_threads(threads) if (par)
  {
    Vec u(left * in);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rank; ++r) {
      // element (j, l*in + i) of this map is t[(l*in + i)*right + j, r]
      u.noalias() = ConstColMap(t->col(r).data(), right, left * in).transpose() * kr.col(r);
      m.col(r).noalias() = ConstColMap(u.data(), in, left) * kl.col(r);
    }
  }
  return m;
}

// X_(n) X_(n)^T (I_n x I_n) for the initialisation: the unfolding is copied out (I_n x numel / I_n)
// and multiplied by its transpose.
Mat unfolding_gram(const DenseTensor& x, size_t n, int threads) {
  const int64_t left = product(x.dims, 0, n), in = x.dims[n], right = product(x.dims, n + 1, x.dims.size());
  Mat u(in, left * right);
  for (int64_t l = 0; l < left; ++l)
    u.middleCols(l * right, right) = ConstRowMap(x.data.data() + l * in * right, in, right);
  Mat g;
  product_by_columns(u, u.transpose(), g, threads);
  return g;
}

// Leading `rank` left singular vectors of X_(n), padded with fixed-seed pseudo-random unit columns.
Mat svd_init(const DenseTensor& x, size_t n, int64_t rank, int threads) {
  const int64_t in = x.dims[n];
  Eigen::SelfAdjointEigenSolver<Mat> es(unfolding_gram(x, n, threads));
  LOCUS_CHECK(es.info() == Eigen::Success, "CP decomposition: eigendecomposition of mode ", n, " failed");
  Mat a(in, rank);
  const int64_t k = std::min(in, rank);
  for (int64_t c = 0; c < k; ++c) {
    Vec v = es.eigenvectors().col(in - 1 - c);  // eigenvalues ascend: take from the end
    Eigen::Index big = 0;
    v.cwiseAbs().maxCoeff(&big);
    if (v(big) < 0) v = -v;
    a.col(c) = v;
  }
  std::mt19937 gen(uint32_t(20240607u + n));
  for (int64_t c = k; c < rank; ++c) {
    for (int64_t i = 0; i < in; ++i) a(i, c) = (double(gen()) - 2147483648.0) / 2147483648.0;
    double nrm = a.col(c).norm();
    if (nrm > 0) a.col(c) /= nrm;
  }
  return a;
}

// Solves A G = M for A (G symmetric positive semi-definite, R x R).
Mat solve_normal_equations(const Mat& g, const Mat& m, int threads) {
  Eigen::LDLT<Mat> ldlt(g);
  if (ldlt.info() == Eigen::Success) {
    const Vec d = ldlt.vectorD();
    const double dmax = d.cwiseAbs().maxCoeff();
    if (dmax > 0 && d.minCoeff() > 1e-12 * dmax) {
      // the right-hand sides (rows of M) in blocks of kColumnBlock, one block per task
      const Mat mt = m.transpose();
      const int64_t cols = mt.cols(), blocks = (cols + kColumnBlock - 1) / kColumnBlock;
      Mat z(mt.rows(), cols);
      const bool par = threads > 1 && blocks > 1 && double(g.rows()) * double(g.rows()) * double(cols) > kParallelWork;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (par)
      for (int64_t k = 0; k < blocks; ++k) {
        const int64_t c0 = k * kColumnBlock, w = std::min(kColumnBlock, cols - c0);
        z.middleCols(c0, w) = ldlt.solve(mt.middleCols(c0, w));
      }
      if (z.allFinite()) return z.transpose();
    }
  }
  Eigen::CompleteOrthogonalDecomposition<Mat> cod(g);
  return cod.solve(m.transpose()).transpose();
}

}  // namespace

int64_t DenseTensor::numel() const { return product(dims, 0, dims.size()); }

double DenseTensor::norm() const {
  double s = 0;
  for (double v : data) s += v * v;
  return std::sqrt(s);
}

int64_t cp_full_rank(const std::vector<int64_t>& dims) {
  LOCUS_CHECK(dims.size() >= 2, "CP decomposition needs a tensor of order >= 2, got order ", dims.size());
  int64_t best = -1;
  for (size_t n = 0; n < dims.size(); ++n) {
    int64_t p = product(dims, 0, n) * product(dims, n + 1, dims.size());
    if (best < 0 || p < best) best = p;
  }
  return best;
}

CpFit cp_exact(const DenseTensor& x) {
  check_tensor(x);
  const size_t order = x.dims.size();
  // the mode left out: the largest (first one on ties)
  size_t keep = 0;
  for (size_t n = 1; n < order; ++n)
    if (x.dims[n] > x.dims[keep]) keep = n;
  const int64_t rank = x.numel() / x.dims[keep];
  std::vector<int64_t> stride(order, 1);
  for (size_t n = order - 1; n-- > 0;) stride[n] = stride[n + 1] * x.dims[n + 1];
  CpFit fit;
  fit.rank = rank;
  fit.exact = true;
  for (size_t n = 0; n < order; ++n) fit.factors.push_back(Mat::Zero(x.dims[n], rank));
  for (int64_t r = 0; r < rank; ++r) {
    // decode r as the row-major multi-index over the modes other than `keep`
    int64_t rem = r, base = 0;
    for (size_t n = order; n-- > 0;) {
      if (n == keep) continue;
      int64_t j = rem % x.dims[n];
      rem /= x.dims[n];
      fit.factors[n](j, r) = 1.0;
      base += j * stride[n];
    }
    for (int64_t i = 0; i < x.dims[keep]; ++i) fit.factors[keep](i, r) = x.data[size_t(base + i * stride[keep])];
  }
  fit.rel_error = cp_relative_error(x, fit.factors);
  return fit;
}

namespace {

void check_options(int64_t rank, const CpAlsOptions& o) {
  LOCUS_CHECK(rank >= 1, "CP decomposition: rank must be at least 1, got ", rank);
  LOCUS_CHECK(o.max_iterations >= 1, "CP decomposition: max_iterations must be at least 1, got ", o.max_iterations);
  LOCUS_CHECK(o.tolerance >= 0, "CP decomposition: tolerance must not be negative, got ", o.tolerance);
  LOCUS_CHECK(o.threads >= 0, "CP decomposition: threads must not be negative, got ", o.threads);
}

DenseTensor reconstruct(const std::vector<Mat>& factors, int threads) {
  LOCUS_CHECK(factors.size() >= 2, "CP reconstruction needs at least 2 factors, got ", factors.size());
  const int64_t rank = factors[0].cols();
  DenseTensor x;
  for (auto& a : factors) {
    LOCUS_CHECK(a.cols() == rank, "CP reconstruction: factors have different ranks");
    x.dims.push_back(a.rows());
  }
  // the column-major (rest x I_0) product KR A_0^T is the row-major (I_0 x rest) tensor
  Mat full;
  product_by_columns(khatri_rao(factors, 1, factors.size(), rank, threads), factors[0].transpose(), full, threads);
  x.data.assign(full.data(), full.data() + full.size());
  return x;
}

double relative_error(const DenseTensor& x, const std::vector<Mat>& factors, int threads) {
  DenseTensor y = reconstruct(factors, threads);
  LOCUS_CHECK(y.dims == x.dims, "CP relative error: factor shapes do not match the tensor");
  double d = 0;
  for (size_t i = 0; i < x.data.size(); ++i) d += (x.data[i] - y.data[i]) * (x.data[i] - y.data[i]);
  const double xn = x.norm();
  return xn > 0 ? std::sqrt(d) / xn : std::sqrt(d);
}

// The sweeps, from the initial factors f[1..N-1] (f[0] is solved first).
CpFit run_als(const DenseTensor& x, int64_t rank, std::vector<Mat> start, const CpAlsOptions& o, int threads) {
  const size_t order = x.dims.size();
  CpFit fit;
  fit.rank = rank;
  const double xnorm = x.norm();
  std::vector<Mat>& f = fit.factors;
  f = std::move(start);
  std::vector<Mat> gram(order);
  f[0] = Mat::Zero(x.dims[0], rank);
  gram[0] = Mat::Zero(rank, rank);
  for (size_t n = 1; n < order; ++n) product_by_columns(f[n].transpose(), f[n], gram[n], threads);
  Vec lambda = Vec::Ones(rank);
  double prev = -1;
  Mat t;  // contract_mode0 of this sweep's A_0
  for (int it = 0; it < o.max_iterations; ++it) {
    Mat m;
    for (size_t n = 0; n < order; ++n) {
      if (n == 1) t = contract_mode0(x, f[0], threads);
      m = mttkrp(x, f, n, rank, &t, threads);
      Mat g = Mat::Ones(rank, rank);
      for (size_t k = 0; k < order; ++k)
        if (k != n) g = g.cwiseProduct(gram[k]);
      f[n] = solve_normal_equations(g, m, threads);
      lambda = f[n].colwise().norm().transpose();
      for (int64_t r = 0; r < rank; ++r)
        if (lambda(r) > 0) f[n].col(r) /= lambda(r);
      product_by_columns(f[n].transpose(), f[n], gram[n], threads);
    }
    // m is the MTTKRP of the last mode, computed with the factors of this sweep
    double inner = 0;
    for (int64_t r = 0; r < rank; ++r) inner += lambda(r) * m.col(r).dot(f[order - 1].col(r));
    Mat g = Mat::Ones(rank, rank);
    for (size_t k = 0; k < order; ++k) g = g.cwiseProduct(gram[k]);
    const double model_sq = lambda.dot(g * lambda);
    const double err_sq = xnorm * xnorm - 2 * inner + model_sq;
    const double err = std::sqrt(std::max(0.0, err_sq)) / xnorm;
    fit.error_history.push_back(err);
    fit.iterations = it + 1;
    if (prev >= 0 && std::fabs(prev - err) < o.tolerance) break;
    prev = err;
  }
  for (int64_t r = 0; r < rank; ++r) f[0].col(r) *= lambda(r);
  fit.rel_error = relative_error(x, f, threads);
  return fit;
}

CpFit zero_fit(const DenseTensor& x, int64_t rank) {
  CpFit fit;
  fit.rank = rank;
  for (int64_t d : x.dims) fit.factors.push_back(Mat::Zero(d, rank));
  return fit;
}

}  // namespace

CpFit cp_als(const DenseTensor& x, int64_t rank, const CpAlsOptions& o) {
  check_tensor(x);
  check_options(rank, o);
  if (x.norm() == 0) return zero_fit(x, rank);
  const int threads = thread_count(o.threads);
  std::vector<Mat> f(x.dims.size());
  for (size_t n = 1; n < x.dims.size(); ++n) f[n] = svd_init(x, n, rank, threads);
  return run_als(x, rank, std::move(f), o, threads);
}

static bool can_warm_start(const DenseTensor& x, int64_t rank, const CpFit& from) {
  if (from.exact || from.rank < 1 || from.rank >= rank || from.factors.size() != x.dims.size()) return false;
  for (size_t n = 0; n < x.dims.size(); ++n)
    if (from.factors[n].rows() != x.dims[n] || from.factors[n].cols() != from.rank) return false;
  return true;
}

CpFit cp_als_warm(const DenseTensor& x, int64_t rank, const CpFit& from, const CpAlsOptions& o) {
  check_tensor(x);
  check_options(rank, o);
  if (!can_warm_start(x, rank, from)) return cp_als(x, rank, o);
  if (x.norm() == 0) return zero_fit(x, rank);
  const int threads = thread_count(o.threads);
  // the new columns: the leading singular vectors of the residual's unfoldings
  DenseTensor residual = reconstruct(from.factors, threads);
  for (size_t i = 0; i < residual.data.size(); ++i) residual.data[i] = x.data[i] - residual.data[i];
  const int64_t add = rank - from.rank;
  std::vector<Mat> f(x.dims.size());
  for (size_t n = 1; n < x.dims.size(); ++n) {
    f[n].resize(x.dims[n], rank);
    f[n].leftCols(from.rank) = from.factors[n];
    f[n].rightCols(add) = svd_init(residual, n, add, threads);
  }
  return run_als(x, rank, std::move(f), o, threads);
}

CpFit cp_fit(const DenseTensor& x, int64_t rank, const CpAlsOptions& o) {
  if (rank >= cp_full_rank(x.dims)) return cp_exact(x);
  return cp_als(x, rank, o);
}

CpFit cp_fit_warm(const DenseTensor& x, int64_t rank, const CpFit& from, const CpAlsOptions& o) {
  if (rank >= cp_full_rank(x.dims)) return cp_exact(x);
  return cp_als_warm(x, rank, from, o);
}

DenseTensor cp_reconstruct(const std::vector<Mat>& factors) { return reconstruct(factors, thread_count(0)); }

double cp_relative_error(const DenseTensor& x, const std::vector<Mat>& factors) {
  return relative_error(x, factors, thread_count(0));
}

}  // namespace locus::decompose
