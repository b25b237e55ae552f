// Equinox's MNIST CNN (docs/examples/mnist.ipynb) written with eqx::nn, and
// the same network written with raw ops, each as one jitted training step:
// batch 64 of [1, 28, 28] images, mean cross-entropy of log_softmax outputs,
// SGD p -= 0.01 * g. The layers cost nothing over raw ops when the step is
// compiled: vmap of the per-example layers and the batched raw ops trace to
// the same kernels. The bar: the eqx::nn step within 1.05x of raw.
//
//   BM_CnnStep_Raw   a struct of Arrays; conv / max_pool / matmul on the batch
//   BM_CnnStep_Nn    nn::Sequential of Conv2d, MaxPool2d, Linear, ... per
//                    example, batched with filter_vmap
//
// Both start from the same weights and see the same batches; before timing,
// 5 steps of each must give the same losses (1e-5 relative) or the binary
// aborts. The argument is the thread count. Counter vs_raw: the nn row's time
// over the median of the raw row's in the same run (raw is registered first).
//
//   build/default/benchmarks/cnn_bench --benchmark_repetitions=3

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>
#include <fmt/core.h>

namespace {

namespace nn = eqx::nn;
using eqx::Array;

constexpr int kBatch = 64, kPool = 4;
constexpr float kLr = 0.01f;

// -------------------------------------------------------------- the model, with eqx::nn (Equinox's 10 lines)

auto make_cnn(const eqx::random::Key& key) {
  auto k = eqx::random::split_keys(key, 4);
  return nn::sequential(nn::Conv2d::init(1, 3, 4, k[0]), nn::MaxPool2d::init(2, {.stride = 1}),
                        nn::Lambda{nn::Activation(nn::relu)}, nn::Lambda{nn::Activation(eqx::ravel)},
                        nn::Linear::init(1728, 512, k[1]), nn::Lambda{nn::Activation(nn::sigmoid)},
                        nn::Linear::init(512, 64, k[2]), nn::Lambda{nn::Activation(nn::relu)},
                        nn::Linear::init(64, 10, k[3]), nn::Lambda{nn::Activation(nn::log_softmax)});
}
using Cnn = decltype(make_cnn(eqx::random::key(0)));

/// Equinox's loss: minus the mean log-probability of the labels.
template <class Model>
Array cross_entropy(const Model& model, const Array& x, const Array& one_hot) {
  return -eqx::mean(eqx::sum(eqx::filter_vmap(model)(x) * one_hot, 1));
}

// -------------------------------------------------------------- the same network with raw ops

struct RawCnn {
  Array conv_w, conv_b, w1, b1, w2, b2, w3, b3;  // conv [3,1,4,4], [3,1,1]; Linear weights [out, in]

  /// The whole batch x [B, 1, 28, 28] -> log-probabilities [B, 10].
  Array operator()(const Array& x) const {
    Array h = eqx::conv(x, conv_w) + conv_b;                                     // [B, 3, 25, 25]
    h = nn::relu(eqx::max_pool(h, {2, 2}, {1, 1}));                 // [B, 3, 24, 24]
    h = eqx::reshape(h, {x.shape()[0], 1728});
    h = nn::sigmoid(eqx::matmul(h, eqx::transpose(w1)) + b1);
    h = nn::relu(eqx::matmul(h, eqx::transpose(w2)) + b2);
    return nn::log_softmax(eqx::matmul(h, eqx::transpose(w3)) + b3);
  }
};

Array raw_loss(const RawCnn& model, const Array& x, const Array& one_hot) {
  return -eqx::mean(eqx::sum(model(x) * one_hot, 1));
}

RawCnn raw_from(const Cnn& m) {
  const auto& conv = m.get<0>();
  const auto &l1 = m.get<4>(), &l2 = m.get<6>(), &l3 = m.get<8>();
  return {conv.weight, conv.bias, l1.weight, l1.bias, l2.weight, l2.bias, l3.weight, l3.bias};
}

/// One SGD step, generic in the model: value_and_grad, then p - lr * g.
template <class Model, class Loss>
auto make_step(Loss loss) {
  return eqx::filter_jit([loss](const Model& model, const Array& x, const Array& y) {
    auto [value, grads] = eqx::filter_value_and_grad(loss)(model, x, y);
    Model updated = eqx::tree_map([](const Array& p, const Array& g) { return p - kLr * g; }, model, grads);
    return std::pair{updated, value};
  });
}

struct Batches {
  std::vector<Array> x, y;
};
const Batches& batches() {
  static const Batches b = [] {
    Batches out;
    auto keys = eqx::random::split_keys(eqx::random::key(7), 2 * kPool);
    for (int i = 0; i < kPool; ++i) {
      out.x.push_back(eqx::random::uniform(keys[2 * i], {kBatch, 1, 28, 28}));
      out.y.push_back(eqx::one_hot(eqx::random::randint(keys[2 * i + 1], {kBatch}, 0, 10), 10));
    }
    return out;
  }();
  return b;
}

using RawStep = decltype(make_step<RawCnn>(raw_loss));
using NnStep = decltype(make_step<Cnn>(cross_entropy<Cnn>));

/// The two steps must compute the same thing: 5 steps from the same weights.
void check_agreement() {
  static bool done = false;
  if (done) return;
  done = true;
  Cnn nn_model = make_cnn(eqx::random::key(0));
  RawCnn raw_model = raw_from(nn_model);
  auto nn_step = make_step<Cnn>(cross_entropy<Cnn>);
  auto raw_step = make_step<RawCnn>(raw_loss);
  for (int s = 0; s < 5; ++s) {
    const auto& b = batches();
    Array a, r;
    std::tie(nn_model, a) = nn_step(nn_model, b.x[s % kPool], b.y[s % kPool]);
    std::tie(raw_model, r) = raw_step(raw_model, b.x[s % kPool], b.y[s % kPool]);
    const float la = a.item<float>(), lr = r.item<float>();
    if (std::abs(la - lr) > 1e-5f * std::abs(lr)) {
      std::fprintf(stderr, "cnn_bench: step %d: eqx::nn loss %.7g but raw ops %.7g\n", s, la, lr);
      std::abort();
    }
  }
  if (std::getenv("CNN_BENCH_PRINT_PLAN")) {
    fmt::print("{}\n", nn_step.plan(nn_model, batches().x[0], batches().y[0]).graph());
    fmt::print("{}\n", raw_step.plan(raw_model, batches().x[0], batches().y[0]).graph());
  }
}

std::map<int, std::vector<double>>& raw_times() {
  static std::map<int, std::vector<double>> t;
  return t;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void BM_CnnStep_Raw(benchmark::State& state) {
  eqx::set_num_threads(static_cast<int>(state.range(0)));
  check_agreement();
  RawCnn model = raw_from(make_cnn(eqx::random::key(0)));
  auto step = make_step<RawCnn>(raw_loss);
  const auto& b = batches();
  std::tie(model, std::ignore) = step(model, b.x[0], b.y[0]);  // compile before timing
  std::int64_t s = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    std::tie(model, std::ignore) = step(model, b.x[s % kPool], b.y[s % kPool]);
    ++s;
  }
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
                    static_cast<double>(std::max<std::int64_t>(s, 1));
  raw_times()[static_cast<int>(state.range(0))].push_back(us);
  state.counters["us_per_step"] = us;
}
BENCHMARK(BM_CnnStep_Raw)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_CnnStep_Nn(benchmark::State& state) {
  eqx::set_num_threads(static_cast<int>(state.range(0)));
  check_agreement();
  Cnn model = make_cnn(eqx::random::key(0));
  auto step = make_step<Cnn>(cross_entropy<Cnn>);
  const auto& b = batches();
  std::tie(model, std::ignore) = step(model, b.x[0], b.y[0]);
  std::int64_t s = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    std::tie(model, std::ignore) = step(model, b.x[s % kPool], b.y[s % kPool]);
    ++s;
  }
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
                    static_cast<double>(std::max<std::int64_t>(s, 1));
  state.counters["us_per_step"] = us;
  const double raw = median(raw_times()[static_cast<int>(state.range(0))]);
  if (raw > 0) state.counters["vs_raw"] = us / raw;
  state.counters["plan_instructions"] =
      static_cast<double>(step.plan(model, b.x[0], b.y[0]).memory_stats().num_instructions);
}
BENCHMARK(BM_CnnStep_Nn)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
