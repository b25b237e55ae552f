// Max pooling, forward and gradient, against a hand-written loop: the 2x2,
// stride-1 pool of Equinox's MNIST CNN on a batch of 64 ([64, 3, 25, 25] ->
// [64, 3, 24, 24]), one thread.
//
//   BM_MaxPool_Loop / BM_MaxPoolGrad_Loop   plain C++ loops: the max of each
//       window; and forward + routing each window's cotangent to its first
//       maximum (what a hand-written training step does)
//   BM_MaxPool_Eqx  / BM_MaxPoolGrad_Eqx    filter_jit(max_pool), and
//       filter_jit(grad of sum(max_pool(x) * ct)): reduce_window_max, then
//       select_and_scatter_add
//
// Counters: ns_per_output (time over the 110,592 output elements), and on
// the eqx rows vs_loop, their time over the median of the loop row of the
// same run (the loops are registered first). Both gradients are checked to
// agree before timing.
//
//   build/default/benchmarks/pool_bench --benchmark_repetitions=3

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <eqx/eqx.hpp>

namespace {

using eqx::Array;
constexpr std::int64_t kN = 64 * 3, kH = 25, kW = 25, kOutH = kH - 1, kOutW = kW - 1, kOutputs = kN * kOutH * kOutW;

const Array& images() {
  static const Array x = eqx::random::normal(eqx::random::key(1), {64, 3, kH, kW});
  return x;
}
const Array& cotangent() {
  static const Array ct = eqx::random::normal(eqx::random::key(2), {64, 3, kOutH, kOutW});
  return ct;
}

Array pool(const Array& x) { return eqx::max_pool(x, {2, 2}, {1, 1}); }
Array pooled_dot(const Array& x, const Array& ct) { return eqx::sum(pool(x) * ct); }

/// The window maxima of x into out.
void loop_forward(const float* x, float* out) {
  for (std::int64_t p = 0; p < kN; ++p)
    for (std::int64_t i = 0; i < kOutH; ++i)
      for (std::int64_t j = 0; j < kOutW; ++j) {
        const float* w = x + (p * kH + i) * kW + j;
        out[(p * kOutH + i) * kOutW + j] = std::max(std::max(w[0], w[1]), std::max(w[kW], w[kW + 1]));
      }
}

/// d sum(pool(x) * ct) / dx: each window's ct added at its first maximum.
void loop_gradient(const float* x, const float* ct, float* grad) {
  std::fill(grad, grad + kN * kH * kW, 0.0f);
  for (std::int64_t p = 0; p < kN; ++p)
    for (std::int64_t i = 0; i < kOutH; ++i)
      for (std::int64_t j = 0; j < kOutW; ++j) {
        const std::int64_t at = (p * kH + i) * kW + j;
        const std::int64_t taps[4] = {at, at + 1, at + kW, at + kW + 1};
        std::int64_t best = taps[0];
        for (std::int64_t t : taps) best = x[t] > x[best] ? t : best;
        grad[best] += ct[(p * kOutH + i) * kOutW + j];
      }
}

std::map<std::string, std::vector<double>>& loop_times() {
  static std::map<std::string, std::vector<double>> t;
  return t;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void report(benchmark::State& state, double seconds_per_iteration, const std::string& loop_row) {
  state.counters["ns_per_output"] = seconds_per_iteration * 1e9 / kOutputs;
  if (!loop_row.empty() && !loop_times()[loop_row].empty())
    state.counters["vs_loop"] = seconds_per_iteration / median(loop_times()[loop_row]);
}

template <class F>
double time_it(benchmark::State& state, F&& f) {
  double total = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return total / static_cast<double>(state.iterations());
}

void BM_MaxPool_Loop(benchmark::State& state) {
  const std::vector<float> x = images().to_vector<float>();
  std::vector<float> out(kOutputs);
  const double s = time_it(state, [&] {
    loop_forward(x.data(), out.data());
    benchmark::DoNotOptimize(out.data());
  });
  loop_times()["forward"].push_back(s);
  report(state, s, "");
}

void BM_MaxPoolGrad_Loop(benchmark::State& state) {
  const std::vector<float> x = images().to_vector<float>(), ct = cotangent().to_vector<float>();
  std::vector<float> out(kOutputs), grad(x.size());
  const double s = time_it(state, [&] {
    loop_forward(x.data(), out.data());  // a training step computes the forward pass too
    loop_gradient(x.data(), ct.data(), grad.data());
    benchmark::DoNotOptimize(grad.data());
  });
  loop_times()["gradient"].push_back(s);
  report(state, s, "");
}

void BM_MaxPool_Eqx(benchmark::State& state) {
  eqx::set_num_threads(1);
  auto f = eqx::filter_jit(pool);
  Array y = f(images());
  const double s = time_it(state, [&] {
    y = f(images());
    benchmark::DoNotOptimize(y);
  });
  report(state, s, "forward");
}

void BM_MaxPoolGrad_Eqx(benchmark::State& state) {
  eqx::set_num_threads(1);
  auto g = eqx::filter_jit(eqx::filter_grad(pooled_dot));
  Array grad = g(images(), cotangent());
  // The two gradients agree exactly (the same window, the same order of sums).
  std::vector<float> want(static_cast<std::size_t>(images().size()));
  loop_gradient(images().to_vector<float>().data(), cotangent().to_vector<float>().data(), want.data());
  if (grad.to_vector<float>() != want) {
    std::fprintf(stderr, "pool_bench: eqx's max-pool gradient differs from the loop's\n");
    std::abort();
  }
  const double s = time_it(state, [&] {
    grad = g(images(), cotangent());
    benchmark::DoNotOptimize(grad);
  });
  report(state, s, "gradient");
}

}  // namespace

BENCHMARK(BM_MaxPool_Loop)->UseRealTime();
BENCHMARK(BM_MaxPoolGrad_Loop)->UseRealTime();
BENCHMARK(BM_MaxPool_Eqx)->UseRealTime();
BENCHMARK(BM_MaxPoolGrad_Eqx)->UseRealTime();
