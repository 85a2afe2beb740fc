// CP (CANDECOMP/PARAFAC) fitting of small dense tensors by alternating least squares, with Eigen.
// Used by the cp-decompose pass (graph/passes/cp_decompose.h) on convolution kernels, as the 3-way
// tensor (Cout, Cin, Kh*Kw) or the 4-way tensor (Cout, Cin, Kh, Kw); the code itself is N-way (N >= 2).
//
// Model: X[i_0, ..., i_{N-1}] ~= sum_r A_0[i_0, r] * A_1[i_1, r] * ... * A_{N-1}[i_{N-1}, r].
//
// cp_als (docs/decomposition.md, "Method as implemented"):
//   - initialisation: A_n = the leading R left singular vectors of the mode-n unfolding X_(n)
//     (eigenvectors of X_(n) X_(n)^T, largest eigenvalue first, sign fixed so that the entry of largest
//     magnitude is positive); when R > I_n the remaining R - I_n columns are pseudo-random (std::mt19937
//     with a fixed seed, integer-to-double mapping), normalised. A_0 needs no initial value (it is
//     solved first).
//   - one sweep updates A_0, ..., A_{N-1} in turn: A_n = MTTKRP_n * G_n^-1, where
//     MTTKRP_n = X_(n) (Khatri-Rao product of the other factors) and G_n = Hadamard product of the
//     other factors' Gram matrices A_m^T A_m (R x R); no ridge term. G_n is factorised by LDLT, or by a
//     complete orthogonal decomposition (minimum-norm least squares) when LDLT fails or a pivot is not
//     clearly positive (singular or nearly singular G_n).
//   - normalisation: after each update the column norms of A_n are moved into a weight vector lambda
//     (columns of norm zero stay zero); at the end lambda is folded into A_0.
//   - stopping: after each sweep the relative error is evaluated from Gram identities,
//     ||X - Xhat||^2 = ||X||^2 - 2 <X, Xhat> + ||Xhat||^2 (cheap; accurate to ~1e-8 relative); the
//     fit stops when it changes by less than `tolerance` from the previous sweep, or after
//     `max_iterations` sweeps. The reported error is then computed exactly from the reconstruction.
//   - one sweep computes X_(0)^T A_0 once (after A_0's update): the MTTKRP of every mode n > 0 starts
//     from it (a GEMM of numel x R multiply-adds; with the mode-0 MTTKRP, two per sweep).
//   - deterministic: no randomness other than the fixed-seed padding; the same input gives the same
//     factors, bit for bit, whatever the number of threads.
//
// Threads (CpAlsOptions::threads, 0: OpenMP's default, i.e. OMP_NUM_THREADS or the cores): the large
//   products (the MTTKRPs, X_(0)^T A_0, the Gram matrices, the unfoldings' Gram matrices of the
//   initialisation, the reconstruction) and the right-hand sides of the normal equations are split
//   into fixed blocks of 64 result columns, one block per OpenMP task; the per-column contractions of
//   the MTTKRP run one column per task. A block's arithmetic depends only on the sizes, so any thread
//   count gives bit-identical results. Eigen's own multi-threading is off (EIGEN_DONT_PARALLELIZE,
//   defined below for every user of this header).
//
// Warm start (cp_als_warm, used by the cp-decompose pass's error=E rank search): ALS at rank R starting
//   from a fit of rank R0 < R of the same tensor: modes n >= 1 start from its factors (R0 columns)
//   and R - R0 new columns, the leading left singular vectors of the residual's mode-n unfolding
//   X_(n) - Xhat_(n) (padded as above when R - R0 > I_n); A_0 is solved first as in the cold start.
//
// "Full rank" (cp_full_rank): the smallest rank at which an exact CP form exists by construction,
//   min over n of prod_{m != n} I_m. The construction (cp_exact) leaves out the largest mode n*: each
//   component r is one multi-index j of the other modes (row-major order), the factor of mode m != n*
//   is the selection A_m[i, r] = (i == j_m), and A_{n*}[:, r] is the fibre X[j with i_{n*} free]. For a
//   3-way kernel (Cout, Cin, K) with Cout >= Cin, K this is R = Cin*K: V selects the input channel, S
//   the window position and U holds W. The CP rank of a tensor can be lower; this is only the rank
//   at which exactness is guaranteed without fitting.
#pragma once

// Before Eigen: this code parallelises itself (see above); Eigen's own threading would make the
// results depend on the thread count.
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Dense>
#include <cstdint>
#include <vector>

namespace locus::decompose {

// A dense row-major tensor of doubles (the last dimension varies fastest).
struct DenseTensor {
  std::vector<int64_t> dims;
  std::vector<double> data;

  int64_t numel() const;
  double norm() const;  // Frobenius norm
};

struct CpAlsOptions {
  int max_iterations = 200;  // sweep cap (>= 1)
  double tolerance = 1e-6;   // stop when the relative error changes by less than this between sweeps
  int threads = 0;           // OpenMP threads (0: omp_get_max_threads()); results do not depend on it
};

struct CpFit {
  int64_t rank = 0;
  // factors[n] is dims[n] x rank; the weights lambda are folded into factors[0] (cp_als) or the data
  // lives in the factor of the left-out mode (cp_exact). The product reconstructs the tensor.
  std::vector<Eigen::MatrixXd> factors;
  double rel_error = 0;  // ||X - Xhat||_F / ||X||_F from the reconstruction (0 when X = 0)
  int iterations = 0;    // ALS sweeps (0 for cp_exact)
  bool exact = false;    // built by cp_exact
  // Relative error after each sweep, as the stopping test saw it (Gram-identity estimate).
  std::vector<double> error_history;
};

// min over n of prod_{m != n} dims[m] (see above).
int64_t cp_full_rank(const std::vector<int64_t>& dims);

// The exact construction at rank cp_full_rank(x.dims).
CpFit cp_exact(const DenseTensor& x);

// ALS at the given rank (>= 1; may exceed the full rank, nothing is capped here).
CpFit cp_als(const DenseTensor& x, int64_t rank, const CpAlsOptions& o = {});

// ALS at `rank` warm-started from `from`, a cp_als fit of the same tensor at a lower rank (see above).
// When `from` cannot seed it (exact, not a lower rank, or factors of other shapes) this is cp_als.
CpFit cp_als_warm(const DenseTensor& x, int64_t rank, const CpFit& from, const CpAlsOptions& o = {});

// cp_exact when rank >= cp_full_rank(x.dims), else cp_als.
CpFit cp_fit(const DenseTensor& x, int64_t rank, const CpAlsOptions& o = {});
// cp_exact when rank >= cp_full_rank(x.dims), else cp_als_warm from `from`.
CpFit cp_fit_warm(const DenseTensor& x, int64_t rank, const CpFit& from, const CpAlsOptions& o = {});

// The tensor the factors describe (dims[n] = factors[n].rows()).
DenseTensor cp_reconstruct(const std::vector<Eigen::MatrixXd>& factors);

// ||x - reconstruct(factors)||_F / ||x||_F; when x = 0, the absolute error ||reconstruct(factors)||_F.
double cp_relative_error(const DenseTensor& x, const std::vector<Eigen::MatrixXd>& factors);

}  // namespace locus::decompose
