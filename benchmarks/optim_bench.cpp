// W2's training step (shared/WORKLOADS.md: MLP 784-512-512-10, ReLU, batch
// 128, float32, mean softmax cross-entropy with integer labels) with AdamW,
// jitted, two ways in one run (issue 14's fused-step bar: within 1.05x):
//
//   BM_W2adamw_Hand   value_and_grad, then the AdamW update written by hand
//                     with eqx::tree_map (mu, nu, count in a struct passed in
//                     and out; Optax's bias corrections with t = count + 1;
//                     weight decay added before scaling by -lr, as optax.adamw's
//                     chain scale_by_adam -> add_decayed_weights ->
//                     scale_by_learning_rate), then p + u
//   BM_W2adamw_Optim  value_and_grad, eqx::optim::adamw(1e-3).update (state
//                     from eqx::filter(model, eqx::is_inexact_array)),
//                     eqx::apply_updates
//   BM_UpdateMemcpy   for reference: memcpy of the bytes the update must move
//                     (p, g, m, v read; p, m, v written: 7 x 4 bytes x params),
//                     as 3.5 x 4 x params bytes copied (read + written)
//   BM_AdamUpdateOnly the jitted Adam update alone (opt.update + apply_updates
//                     on fixed gradients), with vs_memcpy: its time over the
//                     memcpy row's (registered before it)
//
// Each step uses batch s % 8 of a pool made before timing; the model and
// state it returns feed the next step; the loss is not read back. The
// argument is the thread count (eqx::set_num_threads); run with
// OPENBLAS_NUM_THREADS=1. Counters: us_per_step (wall), arena_MB and instrs
// of the step's Plan, and on the optim row vs_handwritten: its time over the
// median of the hand-written row's repetitions with the same thread count in
// the same run (the hand-written row is registered first). The memcpy row
// gives GB/s and us_floor (the update's bytes at that bandwidth).
// OPTIM_BENCH_PRINT_PLAN=1 prints both steps' optimised graphs.
// Before anything is timed, 20 steps of both from the same weights on the
// same batches must give the same losses and parameters (1e-5 relative), or
// the binary aborts.
//
//   g++ -DEQX_COMPILED_KERNELS -DEQX_HAVE_OPENBLAS -Iinclude -isystem /usr/include/eigen3 -O3 \
//     -DNDEBUG -std=c++20 benchmarks/optim_bench.cpp <libeqx_kernels.a> -lbenchmark -lbenchmark_main -lfmt \
//     -lopenblas -lpthread -o optim_bench
//   OPENBLAS_NUM_THREADS=1 ./optim_bench --benchmark_repetitions=5

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/optim.hpp>
#include <fmt/core.h>

namespace {

constexpr int kBatch = 128, kIn = 784, kHidden = 512, kClasses = 10, kPool = 8;
constexpr double kLr = 1e-3, kB1 = 0.9, kB2 = 0.999, kEps = 1e-8, kWd = 1e-4;  // optax.adamw(1e-3) defaults

// ------------------------------------------------------------------- data

/// Host copies of the batches and of the initial weights, shared by both implementations.
struct HostData {
  std::vector<std::vector<float>> x;            // kPool x [kBatch, kIn], row-major
  std::vector<std::vector<std::int32_t>> labels;  // kPool x [kBatch]
  std::vector<std::vector<float>> weights;      // w1 [784,512], b1, w2 [512,512], b2, w3 [512,10], b3
};

const HostData& host_data() {
  static const HostData d = [] {
    HostData h;
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    std::vector<float> teacher(static_cast<std::size_t>(kIn) * kClasses);  // T ~ N(0,1), [784, 10]
    for (float& t : teacher) t = normal(rng);
    for (int p = 0; p < kPool; ++p) {
      std::vector<float> x(static_cast<std::size_t>(kBatch) * kIn);
      for (float& v : x) v = unit(rng);
      std::vector<std::int32_t> labels(kBatch);
      for (int i = 0; i < kBatch; ++i) {  // label = argmax_k ((x - 0.5) @ T)[k]
        double best = -1e300;
        for (int k = 0; k < kClasses; ++k) {
          double s = 0;
          for (int j = 0; j < kIn; ++j) s += (x[i * kIn + j] - 0.5) * teacher[j * kClasses + k];
          if (s > best) best = s, labels[i] = k;
        }
      }
      h.x.push_back(std::move(x));
      h.labels.push_back(std::move(labels));
    }
    const int sizes[] = {kIn, kHidden, kHidden, kClasses};
    for (int l = 0; l < 3; ++l) {  // PyTorch's Linear init: U(-1/sqrt(in), 1/sqrt(in))
      const float bound = 1.0f / std::sqrt(static_cast<float>(sizes[l]));
      std::uniform_real_distribution<float> init(-bound, bound);
      std::vector<float> w(static_cast<std::size_t>(sizes[l]) * sizes[l + 1]), b(static_cast<std::size_t>(sizes[l + 1]));
      for (float& v : w) v = init(rng);
      for (float& v : b) v = init(rng);
      h.weights.push_back(std::move(w));
      h.weights.push_back(std::move(b));
    }
    return h;
  }();
  return d;
}

// ------------------------------------------------------------------- eqx

using eqx::Array;

struct Linear {
  Array weight;  // [in, out]
  Array bias;    // [out]
  Array operator()(const Array& x) const { return eqx::matmul(x, weight) + bias; }
};

struct Mlp {
  Linear l1, l2, l3;
  Array operator()(const Array& x) const {
    Array h = eqx::maximum(l1(x), 0.0f);
    h = eqx::maximum(l2(h), 0.0f);
    return l3(h);
  }
};

Mlp initial_mlp() {
  const auto& w = host_data().weights;
  const std::int64_t sizes[] = {kIn, kHidden, kHidden, kClasses};
  Linear l[3];
  for (int i = 0; i < 3; ++i)
    l[i] = {eqx::array(w[2 * i], {sizes[i], sizes[i + 1]}), eqx::array(w[2 * i + 1], {sizes[i + 1]})};
  return {l[0], l[1], l[2]};
}

struct EqxBatches {
  std::vector<Array> x, labels;
};
const EqxBatches& eqx_batches() {
  static const EqxBatches b = [] {
    EqxBatches e;
    for (int p = 0; p < kPool; ++p) {
      e.x.push_back(eqx::array(host_data().x[p], {kBatch, kIn}));
      e.labels.push_back(eqx::array(host_data().labels[p], {kBatch}));
    }
    return e;
  }();
  return b;
}

/// Mean softmax cross-entropy with integer labels (Optax's loss).
Array loss_fn(const Mlp& model, const Array& x, const Array& labels) {
  return eqx::mean(eqx::optim::softmax_cross_entropy_with_integer_labels(model(x), labels));
}

// ------------------------------------------------------------------- eqx::optim

eqx::optim::Chain<eqx::optim::ScaleByAdam, eqx::optim::AddDecayedWeights, eqx::optim::ScaleByLearningRate> optimizer() {
  return eqx::optim::adamw(kLr);  // b1 0.9, b2 0.999, eps 1e-8, weight_decay 1e-4
}
using OptState = decltype(optimizer().init(std::declval<Mlp>()));

OptState optim_init() { return optimizer().init(eqx::filter(initial_mlp(), eqx::is_inexact_array)); }

std::tuple<Mlp, OptState, Array> optim_step(const Mlp& model, const OptState& state, const Array& x,
                                            const Array& labels) {
  auto [loss, grads] = eqx::filter_value_and_grad(loss_fn)(model, x, labels);
  auto [updates, next] = optimizer().update(grads, state, model);
  return {eqx::apply_updates(model, updates), next, loss};
}

// ------------------------------------------------------------------- by hand

struct AdamState {
  Array count;  // int32 scalar
  Mlp mu, nu;
};

AdamState hand_init() {
  Mlp m = initial_mlp();
  Mlp z = eqx::tree_map([](const Array& p) { return eqx::zeros_like(p); }, m);
  return {eqx::zeros(eqx::Shape{}, eqx::int32), z, z};
}

std::tuple<Mlp, AdamState, Array> hand_step(const Mlp& model, const AdamState& s, const Array& x,
                                            const Array& labels) {
  auto [loss, g] = eqx::filter_value_and_grad(loss_fn)(model, x, labels);
  Array count = s.count + 1;
  Array t = eqx::astype(count, eqx::float32);
  Array bc1 = 1.0 - eqx::pow(kB1, t), bc2 = 1.0 - eqx::pow(kB2, t);
  Mlp mu = eqx::tree_map([](const Array& gi, const Array& m) { return (1 - kB1) * gi + kB1 * m; }, g, s.mu);
  Mlp nu = eqx::tree_map([](const Array& gi, const Array& v) { return (1 - kB2) * eqx::square(gi) + kB2 * v; }, g,
                         s.nu);
  Mlp next = eqx::tree_map(
      [&](const Array& p, const Array& m, const Array& v) {
        Array u = (m / bc1) / (eqx::sqrt(v / bc2) + kEps) + kWd * p;
        return p + u * -kLr;
      },
      model, mu, nu);
  return {next, {count, mu, nu}, loss};
}

// ------------------------------------------------------------------- guard

/// max |a - b| / max |b| over each leaf's elements, the worst leaf.
double tree_rel_diff(const Mlp& a, const Mlp& b) {
  auto la = eqx::tree_leaves(a), lb = eqx::tree_leaves(b);
  double worst = 0;
  for (std::size_t i = 0; i < la.size(); ++i) {
    auto va = la[i].to_vector<float>(), vb = lb[i].to_vector<float>();
    double d = 0, m = 0;
    for (std::size_t j = 0; j < va.size(); ++j) {
      d = std::max(d, static_cast<double>(std::abs(va[j] - vb[j])));
      m = std::max(m, static_cast<double>(std::abs(vb[j])));
    }
    worst = std::max(worst, d / m);
  }
  return worst;
}

/// 20 jitted steps of both from the same weights on the same batches; aborts
/// unless the losses and the parameters agree to 1e-5 relative.
void check_same_computation() {
  static const bool done = [] {
    constexpr int kSteps = 20;
    auto jo = eqx::filter_jit(optim_step);
    auto jh = eqx::filter_jit(hand_step);
    Mlp mo = initial_mlp(), mh = initial_mlp();
    OptState so = optim_init();
    AdamState sh = hand_init();
    const EqxBatches& b = eqx_batches();
    double worst_loss = 0;
    for (int s = 0; s < kSteps; ++s) {
      const int p = s % kPool;
      auto [no, nso, lo] = jo(mo, so, b.x[p], b.labels[p]);
      auto [nh, nsh, lh] = jh(mh, sh, b.x[p], b.labels[p]);
      mo = no, so = nso, mh = nh, sh = nsh;
      const float fo = lo.item<float>(), fh = lh.item<float>();
      const double err = std::abs(fo - fh) / std::abs(fh);
      worst_loss = std::max(worst_loss, err);
      if (!(err <= 1e-5)) {
        std::fprintf(stderr, "optim_bench: step %d losses differ: optim %.8g, hand-written %.8g (rel %.2g > 1e-5)\n", s,
                     fo, fh, err);
        std::abort();
      }
    }
    const double dp = tree_rel_diff(mo, mh);
    const double dm = tree_rel_diff(std::get<0>(so).mu, sh.mu), dv = tree_rel_diff(std::get<0>(so).nu, sh.nu);
    if (!(dp <= 1e-5 && dm <= 1e-5 && dv <= 1e-5)) {
      std::fprintf(stderr, "optim_bench: after %d steps params/mu/nu differ: rel %.2g / %.2g / %.2g (> 1e-5)\n", kSteps,
                   dp, dm, dv);
      std::abort();
    }
    std::fprintf(stderr,
                 "optim_bench: %d steps, optim and hand-written agree (losses max rel %.2g; params %.2g, mu %.2g, "
                 "nu %.2g)\n",
                 kSteps, worst_loss, dp, dm, dv);
    return true;
  }();
  (void)done;
}

// ------------------------------------------------------------------- timing

/// The hand-written row's {iterations, µs per step} in this run, by thread count.
std::map<int, std::vector<std::pair<std::int64_t, double>>>& hand_us() {
  static std::map<int, std::vector<std::pair<std::int64_t, double>>> m;
  return m;
}

/// Runs the timed loop; returns µs per step.
template <class Step>
double timed_steps(benchmark::State& state, Step&& step) {
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t s = 0;
  for (auto _ : state) step(static_cast<int>(s++ % kPool));
  const std::chrono::duration<double, std::micro> dt = std::chrono::steady_clock::now() - t0;
  const double us = dt.count() / static_cast<double>(std::max<std::int64_t>(s, 1));
  state.counters["us_per_step"] = us;
  return us;
}

/// `vs_handwritten`: this run's time over the median of the hand-written runs (same threads).
void report_ratio(benchmark::State& state, double us) {
  auto it = hand_us().find(static_cast<int>(state.range(0)));
  if (it == hand_us().end()) return;
  // The probe runs that sized the iteration count ran at most 1/1.4 of it.
  std::int64_t most = 0;
  for (const auto& run : it->second) most = std::max(most, run.first);
  std::vector<double> t;
  for (auto [iters, u] : it->second)
    if (iters * 4 >= most * 3) t.push_back(u);
  std::sort(t.begin(), t.end());
  const std::size_t n = t.size();
  const double median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
  state.counters["vs_handwritten"] = us / median;
}

void plan_counters(benchmark::State& state, const eqx::Plan& plan, const char* name) {
  state.counters["arena_MB"] = static_cast<double>(plan.memory_stats().arena_bytes) / 1e6;
  state.counters["instrs"] = static_cast<double>(plan.memory_stats().num_instructions);
  if (std::getenv("OPTIM_BENCH_PRINT_PLAN")) {
    static std::map<std::string, bool> printed;
    if (!printed[name]) fmt::print(stderr, "{}:\n{}\n", name, plan.graph());
    printed[name] = true;
  }
}

void BM_W2adamw_Hand(benchmark::State& state) {
  check_same_computation();
  eqx::set_num_threads(static_cast<int>(state.range(0)));
  auto step = eqx::filter_jit(hand_step);
  const EqxBatches& b = eqx_batches();
  Mlp model = initial_mlp();
  AdamState st = hand_init();
  for (int s = 0; s < 20; ++s) std::tie(model, st, std::ignore) = step(model, st, b.x[s % kPool], b.labels[s % kPool]);
  const double us = timed_steps(state, [&](int p) {
    auto [next, ns, loss] = step(model, st, b.x[p], b.labels[p]);
    model = std::move(next);
    st = std::move(ns);
    benchmark::DoNotOptimize(loss);
  });
  hand_us()[static_cast<int>(state.range(0))].emplace_back(state.iterations(), us);
  plan_counters(state, step.plan(model, st, b.x[0], b.labels[0]), "hand-written");
}
BENCHMARK(BM_W2adamw_Hand)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

void BM_W2adamw_Optim(benchmark::State& state) {
  check_same_computation();
  eqx::set_num_threads(static_cast<int>(state.range(0)));
  auto step = eqx::filter_jit(optim_step);
  const EqxBatches& b = eqx_batches();
  Mlp model = initial_mlp();
  OptState st = optim_init();
  for (int s = 0; s < 20; ++s) std::tie(model, st, std::ignore) = step(model, st, b.x[s % kPool], b.labels[s % kPool]);
  const double us = timed_steps(state, [&](int p) {
    auto [next, ns, loss] = step(model, st, b.x[p], b.labels[p]);
    model = std::move(next);
    st = std::move(ns);
    benchmark::DoNotOptimize(loss);
  });
  report_ratio(state, us);
  plan_counters(state, step.plan(model, st, b.x[0], b.labels[0]), "eqx::optim::adamw");
}
BENCHMARK(BM_W2adamw_Optim)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

/// The update alone (WORKLOADS.md's Adam: eqx::optim::adam, then
/// apply_updates) on W2's parameters with fixed gradients, jitted: what the
/// memcpy row below bounds. Counter vs_memcpy: its time over the memcpy's.
double& memcpy_us() {
  static double us = 0;
  return us;
}

void BM_AdamUpdateOnly(benchmark::State& state) {
  eqx::set_num_threads(static_cast<int>(state.range(0)));
  const auto opt = eqx::optim::adam(kLr);
  Mlp params = initial_mlp();
  const Mlp grads = eqx::tree_map([](const Array& p) { return eqx::sin(p) * 0.01f; }, params);
  auto st = opt.init(params);
  auto update = eqx::filter_jit([opt](const Mlp& p, const Mlp& g, const decltype(st)& s) {
    auto [u, next] = opt.update(g, s, p);
    return std::pair{eqx::apply_updates(p, u), next};
  });
  for (int i = 0; i < 5; ++i) std::tie(params, st) = update(params, grads, st);
  const double us = timed_steps(state, [&](int) { std::tie(params, st) = update(params, grads, st); });
  if (memcpy_us() > 0) state.counters["vs_memcpy"] = us / memcpy_us();
  plan_counters(state, update.plan(params, grads, st), "adam update");
}

/// Reference: the update's memory traffic (7 x 4 bytes x params) as one memcpy.
void BM_UpdateMemcpy(benchmark::State& state) {
  constexpr std::size_t kParams = std::size_t{kIn} * kHidden + kHidden + std::size_t{kHidden} * kHidden + kHidden +
                                  std::size_t{kHidden} * kClasses + kClasses;  // 669,706
  constexpr std::size_t kTraffic = 7 * 4 * kParams;                           // bytes read + written
  std::vector<char> src(kTraffic / 2, 1), dst(kTraffic / 2, 0);
  for (int i = 0; i < 5; ++i) std::memcpy(dst.data(), src.data(), src.size());
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t n = 0;
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size());
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
    ++n;
  }
  const std::chrono::duration<double, std::micro> dt = std::chrono::steady_clock::now() - t0;
  const double us = dt.count() / static_cast<double>(std::max<std::int64_t>(n, 1));
  state.counters["us_floor"] = us;
  memcpy_us() = us;
  state.counters["GB/s"] = static_cast<double>(kTraffic) / 1e3 / us;
  state.counters["MB_moved"] = static_cast<double>(kTraffic) / 1e6;
}
BENCHMARK(BM_UpdateMemcpy)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AdamUpdateOnly)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

}  // namespace
