// Square SGEMM C = A * B at n = 512 and 1024 (WORKLOADS.md "gemm_peak"):
// eqx::matmul against OpenBLAS's cblas_sgemm and Eigen's own GEMM in the same
// run, reported as GFLOP/s (2 n^3 per product).
//
// CMake builds this file twice: `matmul_bench` with the eqx target's flags
// (EIGEN_USE_BLAS when OpenBLAS was found, so eqx::matmul runs on BLAS) and
// `matmul_bench_eigen` without them (eqx::matmul on Eigen's own kernels).
// Threads: the first argument; use 1 and 2 (OPENBLAS_NUM_THREADS is set to
// the same by eqx::set_num_threads).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include <Eigen/Core>
#include <eqx/eqx.hpp>

extern "C" void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);
extern "C" void openblas_set_num_threads(int);

namespace {

eqx::Array square_matrix(std::int64_t n, float scale) {
  return eqx::reshape(eqx::sin(eqx::arange(static_cast<int>(n * n)) * scale), {n, n});
}

void set_flops(benchmark::State& state, std::int64_t n) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n * static_cast<double>(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}

void BM_EqxMatmul(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  eqx::set_num_threads(static_cast<int>(state.range(1)));
  eqx::Array a = square_matrix(n, 0.01f), b = square_matrix(n, 0.02f);
  for (auto _ : state) benchmark::DoNotOptimize(eqx::matmul(a, b));
  set_flops(state, n);
}

void BM_CblasSgemm(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  openblas_set_num_threads(static_cast<int>(state.range(1)));
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  for (auto _ : state) {
    cblas_sgemm(101 /*RowMajor*/, 111 /*NoTrans*/, 111, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, n);
}

#if !defined(EIGEN_USE_BLAS)
// Eigen's own GEMM (only meaningful where Eigen does not forward to BLAS).
void BM_EigenGemm(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Mat a = Mat::Constant(n, n, 0.5f), b = Mat::Constant(n, n, 0.25f), c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, n);
}
BENCHMARK(BM_EigenGemm)->ArgsProduct({{512, 1024}, {1}})->Unit(benchmark::kMillisecond);
#endif

BENCHMARK(BM_EqxMatmul)->ArgsProduct({{512, 1024}, {1, 2}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CblasSgemm)->ArgsProduct({{512, 1024}, {1, 2}})->Unit(benchmark::kMillisecond);

}  // namespace
