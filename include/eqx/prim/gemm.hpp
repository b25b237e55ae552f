#pragma once
// GEMM backend: every matrix product of dot_general and conv runs here, on
// Eigen's own kernel or on OpenBLAS, whichever is faster on this machine for
// that shape.
//
// Why measure: which one wins depends on the CPU, not on the build. On a
// Zen 4 machine OpenBLAS's kernels reached 95 GFLOP/s on one core and
// Eigen's AVX-512 GEMM 72; on a Zen 5 machine, where OpenBLAS 0.3.21 runs
// its Haswell kernels, Eigen reached 173 and OpenBLAS 116. Small and thin
// products differ again (call overhead, threading). So the first product of
// each shape (rows, columns, depth, transposes, dtype, threads) times both
// backends on the real operands, a few runs each, and keeps the faster one
// for the rest of the process; later products of that shape pay one hash
// lookup. The output of that first call comes from the chosen backend, so a
// shape's results do not depend on whether it was the first call.
//
// EQX_GEMM=eigen|blas|auto (read once) overrides the choice; without
// OpenBLAS linked (EQX_HAVE_OPENBLAS) every product runs on Eigen.
//
//   eqx::detail::gemm<float>({a, lda, false, b, ldb, true, c, ldc, m, n, k}, /*parallel=*/true);

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <type_traits>

#include <Eigen/Core>

#include "eqx/core/config.hpp"
#include "eqx/core/error.hpp"
#include "eqx/core/threads.hpp"
#include "eqx/prim/gemm_policy.hpp"

#if defined(EQX_HAVE_OPENBLAS)
extern "C" {
void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc);
void cblas_dgemm(int order, int trans_a, int trans_b, int m, int n, int k, double alpha, const double* a, int lda,
                 const double* b, int ldb, double beta, double* c, int ldc);
void cblas_sgemv(int order, int trans, int m, int n, float alpha, const float* a, int lda, const float* x, int incx,
                 float beta, float* y, int incy);
void cblas_dgemv(int order, int trans, int m, int n, double alpha, const double* a, int lda, const double* x,
                 int incx, double beta, double* y, int incy);
}
#endif

namespace eqx::detail {

// The GEMM code itself: Eigen's kernel is compiled for the ISA of the TU
// that instantiates it, so eqx::kernels' copy lives in a namespace of its
// own (core/config.hpp), apart from any copy a program compiles itself.
inline namespace EQX_KERNELS_ABI {

/// Rows [r0, r1) of an integer C: a plain loop, wrapping on overflow as
/// numpy does (computed unsigned). Integer products are rare in models and
/// Eigen's blocked GEMM for them was a fifth of this family's compile time.
template <class T>
void gemm_integer_rows(const GemmArgs<T>& g, std::int64_t r0, std::int64_t r1) {
  using U = std::make_unsigned_t<T>;
  for (std::int64_t r = r0; r < r1; ++r) {
    T* c = g.c + r * g.ldc;
    std::fill(c, c + g.n, T(0));
    for (std::int64_t p = 0; p < g.k; ++p) {
      const U a = static_cast<U>(g.trans_a ? g.a[p * g.lda + r] : g.a[r * g.lda + p]);
      for (std::int64_t j = 0; j < g.n; ++j) {
        const U b = static_cast<U>(g.trans_b ? g.b[j * g.ldb + p] : g.b[p * g.ldb + j]);
        c[j] = static_cast<T>(static_cast<U>(c[j]) + a * b);
      }
    }
  }
}

/// Rows [r0, r1) of C on Eigen's kernel (integers: gemm_integer_rows).
template <class T>
void gemm_eigen_rows(const GemmArgs<T>& g, std::int64_t r0, std::int64_t r1) {
  if constexpr (std::is_integral_v<T>) {
    gemm_integer_rows(g, r0, r1);
  } else {
    using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using Stride = Eigen::OuterStride<>;
    using CMap = Eigen::Map<const Mat, 0, Stride>;
    using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
    using RowVec = Eigen::Matrix<T, 1, Eigen::Dynamic>;
    const std::int64_t rows = r1 - r0;
    // A matrix-vector product (one column or one row of C, contiguous) on
    // vector maps: as a strided [rows, 1] matrix, C was zeroed one row at a
    // time before Eigen's GEMV ran (7% of W6's step, perf).
    if (g.n == 1 && g.ldc == 1 && (g.trans_b || g.ldb == 1)) {
      Eigen::Map<Vec> cv(g.c + r0, rows);
      const Eigen::Map<const Vec> bv(g.b, g.k);
      if (!g.trans_a) cv.noalias() = CMap(g.a + r0 * g.lda, rows, g.k, Stride(g.lda)) * bv;
      else cv.noalias() = CMap(g.a, g.k, g.m, Stride(g.lda)).middleCols(r0, rows).transpose() * bv;
      return;
    }
    if (g.m == 1 && (!g.trans_a || g.lda == 1)) {  // then r0 = 0, r1 = 1
      Eigen::Map<RowVec> cr(g.c, g.n);
      const Eigen::Map<const RowVec> ar(g.a, g.k);
      if (!g.trans_b) cr.noalias() = ar * CMap(g.b, g.k, g.n, Stride(g.ldb));
      else cr.noalias() = ar * CMap(g.b, g.n, g.k, Stride(g.ldb)).transpose();
      return;
    }
    Eigen::Map<Mat, 0, Stride> c(g.c + r0 * g.ldc, rows, g.n, Stride(g.ldc));
    if (!g.trans_a) {
      CMap a(g.a + r0 * g.lda, rows, g.k, Stride(g.lda));
      if (!g.trans_b) c.noalias() = a * CMap(g.b, g.k, g.n, Stride(g.ldb));
      else c.noalias() = a * CMap(g.b, g.n, g.k, Stride(g.ldb)).transpose();
    } else {
      // A is stored [k, m]: rows of op(A) are its columns.
      auto a = CMap(g.a, g.k, g.m, Stride(g.lda)).middleCols(r0, rows).transpose();
      if (!g.trans_b) c.noalias() = a * CMap(g.b, g.k, g.n, Stride(g.ldb));
      else c.noalias() = a * CMap(g.b, g.n, g.k, Stride(g.ldb)).transpose();
    }
  }
}

/// The whole product on Eigen's kernel; with `parallel`, blocks of at least
/// 16 rows of C go to the thread pool when the product is large enough.
template <class T>
void gemm_eigen(const GemmArgs<T>& g, bool parallel) {
  const std::int64_t blocks = parallel ? std::max<std::int64_t>(1, g.m / 16) : 1;
  const std::int64_t flops = g.m * g.n * g.k;
  parallel_for(blocks, flops / blocks / 8, [&](std::int64_t s, std::int64_t e) {
    gemm_eigen_rows(g, g.m * s / blocks, g.m * e / blocks);
  });
}

/// The whole product on BLAS (which threads large products itself). A
/// product with one row or one column of C is a matrix-vector product:
/// OpenBLAS 0.3.21's sgemm packs it like any GEMM, its sgemv does not.
template <class T>
void gemm_blas([[maybe_unused]] const GemmArgs<T>& g) {
#if defined(EQX_HAVE_OPENBLAS)
  constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
  const auto i = [](std::int64_t v) { return static_cast<int>(v); };
  auto gemv = [&](bool trans, std::int64_t rows, std::int64_t cols, const T* mat, std::int64_t ld, const T* x,
                  std::int64_t incx, T* y, std::int64_t incy) {
    // y is zeroed first: OpenBLAS 0.3.21 scales y by beta = 0 with a
    // multiply, which keeps a NaN left in a reused buffer.
    for (std::int64_t r = 0, len = trans ? cols : rows; r < len; ++r) y[r * incy] = T(0);
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemv(kRowMajor, trans ? kTrans : kNoTrans, i(rows), i(cols), 1.0f, mat, i(ld), x, i(incx), 0.0f, y, i(incy));
    else
      cblas_dgemv(kRowMajor, trans ? kTrans : kNoTrans, i(rows), i(cols), 1.0, mat, i(ld), x, i(incx), 0.0, y, i(incy));
  };
  if (g.n == 1) {  // C[:, 0] = op(A) op(B)[:, 0]; A is stored [m, k], or [k, m] when transposed
    gemv(g.trans_a, g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, g.a, g.lda, g.b, g.trans_b ? 1 : g.ldb, g.c, g.ldc);
    return;
  }
  if (g.m == 1) {  // C[0, :] = op(B)^T op(A)[0, :]; B is stored [k, n], or [n, k] when transposed
    gemv(!g.trans_b, g.trans_b ? g.n : g.k, g.trans_b ? g.k : g.n, g.b, g.ldb, g.a, g.trans_a ? g.lda : 1, g.c, 1);
    return;
  }
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(kRowMajor, g.trans_a ? kTrans : kNoTrans, g.trans_b ? kTrans : kNoTrans, i(g.m), i(g.n), i(g.k), 1.0f,
                g.a, i(g.lda), g.b, i(g.ldb), 0.0f, g.c, i(g.ldc));
  else if constexpr (std::is_same_v<T, double>)
    cblas_dgemm(kRowMajor, g.trans_a ? kTrans : kNoTrans, g.trans_b ? kTrans : kNoTrans, i(g.m), i(g.n), i(g.k), 1.0,
                g.a, i(g.lda), g.b, i(g.ldb), 0.0, g.c, i(g.ldc));
#endif
}

/// Times both backends on the real operands (the first run of each is a
/// warm-up; then the best of up to 20 alternating runs within ~2 ms each)
/// and returns the faster. Leaves C computed by the returned backend.
template <class T>
GemmDecision measure_gemm(const GemmArgs<T>& g, const GemmKey& key, bool parallel) {
  using Clock = std::chrono::steady_clock;
  auto time = [&](GemmBackend b) {
    const auto t0 = Clock::now();
    if (b == GemmBackend::blas) gemm_blas(g);
    else gemm_eigen(g, parallel);
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  double eigen = time(GemmBackend::eigen), blas = time(GemmBackend::blas);
  const double one = std::max(eigen, blas);
  const int runs = static_cast<int>(std::clamp(2e-3 / std::max(one, 1e-9), 2.0, 20.0));
  eigen = blas = 1e300;
  for (int r = 0; r < runs; ++r) {
    eigen = std::min(eigen, time(GemmBackend::eigen));
    blas = std::min(blas, time(GemmBackend::blas));
  }
  GemmDecision d{key, blas < eigen ? GemmBackend::blas : GemmBackend::eigen, eigen, blas};
  if (d.backend == GemmBackend::eigen) gemm_eigen(g, parallel);  // the last run above was BLAS's
  return d;
}

/// C = op(A) op(B) on the backend the policy picks for this shape. With
/// `parallel`, the product may use the thread pool (or BLAS's threads);
/// callers already inside a parallel_for pass false.
template <class T>
void gemm(const GemmArgs<T>& g, bool parallel) {
  if (g.m * g.n == 0) return;
  if (g.k == 0) {
    for (std::int64_t r = 0; r < g.m; ++r) std::fill(g.c + r * g.ldc, g.c + r * g.ldc + g.n, T(0));
    return;
  }
  constexpr bool kBlasType = std::is_same_v<T, float> || std::is_same_v<T, double>;
  if constexpr (kHaveBlas && kBlasType) {
    const GemmPolicy policy = gemm_policy_slot();
    // BLAS takes int sizes; anything larger stays on Eigen.
    const bool fits = std::max({g.m, g.n, g.k, g.lda, g.ldb, g.ldc}) < (std::int64_t{1} << 31);
    if (policy == GemmPolicy::blas && fits) return gemm_blas(g);
    if (policy == GemmPolicy::automatic && fits) {
      const GemmKey key{g.m, g.n, g.k,
                        static_cast<std::uint8_t>((g.trans_a ? 1 : 0) | (g.trans_b ? 2 : 0) |
                                                  (std::is_same_v<T, double> ? 4 : 0)),
                        parallel ? num_threads() : 1};
      auto& choices = GemmChoices::instance();
      GemmBackend backend;
      if (!choices.find(key, backend)) {
        choices.record(measure_gemm(g, key, parallel));
        return;
      }
      if (backend == GemmBackend::blas) return gemm_blas(g);
    }
  }
  gemm_eigen(g, parallel);
}

#if defined(EQX_COMPILED_KERNELS) && (EQX_KERNELS_DOT || EQX_KERNELS_CONV)
// Eigen's GEMM is the costliest template eqx compiles: the kernels compile
// it in family DOT only, and family CONV calls that copy. (A program's own
// direct call still instantiates its own copy, in its own ABI namespace.)
EQX_INSTANTIATION(DOT) void gemm<float>(const GemmArgs<float>&, bool);
EQX_INSTANTIATION(DOT) void gemm<double>(const GemmArgs<double>&, bool);
#endif

}  // inline namespace EQX_KERNELS_ABI
}  // namespace eqx::detail
