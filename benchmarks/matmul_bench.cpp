// Square SGEMM C = A * B at n = 512 and 1024 (WORKLOADS.md "gemm_peak") and
// the W2 MLP's own GEMM shapes: eqx::matmul on each GEMM policy (auto, which
// times both backends per shape and keeps the faster; Eigen's kernel as
// compiled into eqx::kernels; OpenBLAS) against OpenBLAS's cblas_sgemm
// called directly, in one run, as GFLOP/s (2 m n k per product).
//
// Arguments: m, n, k, threads (eqx::set_num_threads, which also sets
// OpenBLAS's pool). The auto rows should match the faster of the other two;
// `eqx::build_info()` is printed first so the ISA of the run is on record.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include <eqx/eqx.hpp>

extern "C" void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);
extern "C" void openblas_set_num_threads(int);

namespace {

eqx::Array matrix(std::int64_t rows, std::int64_t cols, float scale) {
  return eqx::reshape(eqx::sin(eqx::arange(static_cast<int>(rows * cols)) * scale), {rows, cols});
}

void set_flops(benchmark::State& state) {
  const double flops = 2.0 * state.range(0) * state.range(1) * state.range(2);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

template <eqx::detail::GemmPolicy Policy>
void BM_EqxMatmul(benchmark::State& state) {
  eqx::set_num_threads(static_cast<int>(state.range(3)));
  const auto saved = eqx::detail::gemm_policy_slot();
  eqx::detail::gemm_policy_slot() = Policy;
  eqx::Array a = matrix(state.range(0), state.range(2), 0.01f), b = matrix(state.range(2), state.range(1), 0.02f);
  for (auto _ : state) benchmark::DoNotOptimize(eqx::matmul(a, b));
  eqx::detail::gemm_policy_slot() = saved;
  set_flops(state);
}

void BM_CblasSgemm(benchmark::State& state) {
  const auto m = static_cast<int>(state.range(0)), n = static_cast<int>(state.range(1)),
             k = static_cast<int>(state.range(2));
  openblas_set_num_threads(static_cast<int>(state.range(3)));
  std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
  for (auto _ : state) {
    cblas_sgemm(101 /*RowMajor*/, 111 /*NoTrans*/, 111, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state);
}

// (m, n, k, threads): the two square sizes, then W2's forward GEMMs at batch 128.
void shapes(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) {
    for (std::int64_t s : {512, 1024}) b->Args({s, s, s, threads});
    b->Args({128, 512, 784, threads});
    b->Args({128, 512, 512, threads});
    b->Args({128, 10, 512, threads});
  }
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK_TEMPLATE(BM_EqxMatmul, eqx::detail::GemmPolicy::automatic)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_EqxMatmul, eqx::detail::GemmPolicy::eigen)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_EqxMatmul, eqx::detail::GemmPolicy::blas)->Apply(shapes);
BENCHMARK(BM_CblasSgemm)->Apply(shapes);

}  // namespace

int main(int argc, char** argv) {
  std::printf("%s\n", eqx::build_info().summary().c_str());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
