// filter_jit's fixed cost and W6 (shared/WORKLOADS.md): an MLP forward
// 784-512-512-10 (ReLU) on one example, eager vs jitted vs the same forward
// written by hand in Eigen, so the ratios are measured in one run.
//
//   BM_JitIdentity    cached call of a jitted identity on one f32[4]: hash
//                     the key, find the plan, return the input (no kernel)
//   BM_JitAffine      cached call of x * 2 + 1 on f32[4]: one fused kernel
//                     and one output allocation
//   BM_W6_*           the MLP forward

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <Eigen/Core>
#include <eqx/eqx.hpp>

namespace {

/// Times cached calls of a jitted f on one f32[4] (traced before timing).
template <class F>
void time_cached_calls(benchmark::State& state, F f) {
  auto jitted = eqx::filter_jit(f);
  const eqx::Array x = eqx::ones({4});
  eqx::Array y = jitted(x);
  for (auto _ : state) {
    y = jitted(x);
    benchmark::DoNotOptimize(y);
  }
}

void BM_JitIdentity(benchmark::State& state) {
  time_cached_calls(state, [](const eqx::Array& x) { return x; });
}
BENCHMARK(BM_JitIdentity);

void BM_JitAffine(benchmark::State& state) {
  time_cached_calls(state, [](const eqx::Array& x) { return x * 2.0f + 1.0f; });
}
BENCHMARK(BM_JitAffine);

// ------------------------------------------------------------------- W6

struct Linear {
  eqx::Array weight;  // [out, in], as PyTorch's Linear
  eqx::Array bias;    // [out]
  eqx::Array operator()(const eqx::Array& x) const { return eqx::matmul(weight, x) + bias; }
};

struct Mlp {
  std::vector<Linear> layers;
  eqx::Array operator()(const eqx::Array& x) const {
    eqx::Array h = x;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      h = layers[i](h);
      if (i + 1 < layers.size()) h = eqx::maximum(h, 0.0f);
    }
    return h;
  }
};

Mlp make_mlp() {
  const std::vector<std::int64_t> sizes{784, 512, 512, 10};
  Mlp m;
  eqx::Array key = eqx::random::key(0);
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    auto k = eqx::random::split_keys(key, 3);
    key = k[0];
    float bound = 1.0f / std::sqrt(static_cast<float>(sizes[i]));
    m.layers.push_back({eqx::random::uniform(k[1], {sizes[i + 1], sizes[i]}, eqx::float32, -bound, bound),
                        eqx::random::uniform(k[2], {sizes[i + 1]}, eqx::float32, -bound, bound)});
  }
  return m;
}

const Mlp& model() {
  static const Mlp m = make_mlp();
  return m;
}
const eqx::Array& example() {
  static const eqx::Array x = eqx::random::uniform(eqx::random::key(1), {784});
  return x;
}

void BM_W6_EqxEager(benchmark::State& state) {
  eqx::Array y;
  for (auto _ : state) {
    y = model()(example());
    benchmark::DoNotOptimize(y);
  }
}
BENCHMARK(BM_W6_EqxEager);

void BM_W6_EqxJit(benchmark::State& state) {
  auto forward = eqx::filter_jit(model());
  eqx::Array y = forward(example());
  for (auto _ : state) {
    y = forward(example());
    benchmark::DoNotOptimize(y);
  }
  state.counters["arena_bytes"] = static_cast<double>(forward.plan(example()).memory_stats().arena_bytes);
}
BENCHMARK(BM_W6_EqxJit);

/// The same forward by hand: Eigen maps on the model's own buffers, one
/// preallocated buffer per layer output.
void BM_W6_Eigen(benchmark::State& state) {
  using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using MatMap = Eigen::Map<const RowMatrix>;
  using VecMap = Eigen::Map<const Eigen::VectorXf>;
  std::vector<MatMap> w;
  std::vector<VecMap> b;
  for (const Linear& l : model().layers) {
    auto wd = l.weight.data<float>();
    w.emplace_back(wd.data(), l.weight.shape()[0], l.weight.shape()[1]);
    b.emplace_back(l.bias.data<float>().data(), l.bias.shape()[0]);
  }
  auto xd = example().data<float>();
  VecMap x(xd.data(), 784);
  Eigen::VectorXf h1(512), h2(512), out(10);
  for (auto _ : state) {
    h1.noalias() = w[0] * x;
    h1 = (h1 + b[0]).cwiseMax(0.0f);
    h2.noalias() = w[1] * h1;
    h2 = (h2 + b[1]).cwiseMax(0.0f);
    out.noalias() = w[2] * h2;
    out += b[2];
    benchmark::DoNotOptimize(out.data());
  }
  // Same numbers as eqx (both run the same BLAS/Eigen GEMV up to rounding).
  std::vector<float> want = model()(example()).to_vector<float>();
  for (int i = 0; i < 10; ++i)
    if (std::abs(want[static_cast<std::size_t>(i)] - out[i]) > 1e-4f) state.SkipWithError("Eigen forward differs from eqx");
}
BENCHMARK(BM_W6_Eigen);

}  // namespace
