// A W2-shaped training step (shared/WORKLOADS.md) with plain SGD: MLP
// 784-512-512-10 (ReLU), batch 128, float32, mean softmax cross-entropy with
// integer labels, p -= 0.01 * g. Jitted eqx vs the same step written by hand
// in Eigen (the bar: within 1.25x), and eqx eagerly for reference, in one run.
//
//   BM_W2sgd_Eigen     forward + backward + SGD by hand: row-major Eigen
//                      matrices, preallocated buffers, Eigen's GEMM compiled
//                      with this file's flags (so SSE2 unless EQX_NATIVE=ON;
//                      eqx's kernels are compiled for the machine's ISA, so
//                      the fair floor is the peers' P4, benchmarks/compare),
//                      fused bias+ReLU, the SGD update folded into the
//                      weight-gradient GEMM (C -= lr * A^T B)
//   BM_W2sgd_EqxJit    eqx::filter_jit of value_and_grad + apply_updates
//   BM_W2sgd_EqxEager  the same step function without jit
//
// Each step uses batch s % 8 of a pool made before timing, and the model it
// returns feeds the next step; the loss is not read back. The argument is
// the thread count (eqx::set_num_threads, which also sets OpenBLAS's pool);
// WORKLOADS.md's rules also set OPENBLAS_NUM_THREADS and OMP_NUM_THREADS, so
// run the /1 rows with those = 1 (the check below runs at the default count).
// Counters: us_per_step (wall), GFLOP/s (W2's count), and on the eqx rows
// vs_eigen: their time over the median of the Eigen row's repetitions with
// the same thread count in the same run (Eigen is registered first); the
// jitted row also gives the plan's arena size and instruction count.
// TRAIN_BENCH_PRINT_PLAN=1 prints the jitted step's optimised graph.
// Before anything is timed, 20 steps of eqx (jit and eager) and of Eigen
// from the same weights on the same batches must give the same losses
// (1e-4 relative), or the binary aborts: the rows compare one computation.
//
//   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 build/bench/benchmarks/train_bench \
//     --benchmark_filter='/1$' --benchmark_repetitions=3 --benchmark_min_time=1

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <eqx/eqx.hpp>
#include <fmt/core.h>

namespace {

constexpr int kBatch = 128, kIn = 784, kHidden = 512, kClasses = 10, kPool = 8;
constexpr float kLr = 0.01f;

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

/// Mean softmax cross-entropy with integer labels.
Array loss_fn(const Mlp& model, const Array& x, const Array& labels) {
  Array logits = model(x);                                             // [B, 10]
  Array m = eqx::stop_gradient(eqx::max(logits, {1}, true));           // [B, 1]
  Array lse = eqx::log(eqx::sum(eqx::exp(logits - m), {1}, true)) + m;  // [B, 1]
  Array picked = eqx::sum(eqx::one_hot(labels, kClasses) * logits, {1}, true);
  return eqx::mean(lse - picked);
}

/// One SGD step: {updated model, loss}.
std::pair<Mlp, Array> sgd_step(const Mlp& model, const Array& x, const Array& labels) {
  auto [loss, grads] = eqx::filter_value_and_grad(loss_fn)(model, x, labels);
  Mlp updated = eqx::apply_updates(model, eqx::tree_map([](const Array& g) { return g * -kLr; }, grads));
  return {updated, loss};
}

// ------------------------------------------------------------------- Eigen

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::RowVectorXf;

/// The same step by hand. Weights are [in, out] like the eqx model; every
/// buffer is allocated once, here.
struct EigenMlp {
  RowMatrix w1{kIn, kHidden}, w2{kHidden, kHidden}, w3{kHidden, kClasses};
  RowVector b1{kHidden}, b2{kHidden}, b3{kClasses};
  // activations, and the hidden layers' gradients (logits' buffer is reused for dL/dlogits)
  RowMatrix h1{kBatch, kHidden}, h2{kBatch, kHidden}, logits{kBatch, kClasses};
  RowMatrix d2{kBatch, kHidden}, d1{kBatch, kHidden};
  float loss = 0;

  EigenMlp() {
    const auto& w = host_data().weights;
    w1 = Eigen::Map<const RowMatrix>(w[0].data(), kIn, kHidden);
    b1 = Eigen::Map<const RowVector>(w[1].data(), kHidden);
    w2 = Eigen::Map<const RowMatrix>(w[2].data(), kHidden, kHidden);
    b2 = Eigen::Map<const RowVector>(w[3].data(), kHidden);
    w3 = Eigen::Map<const RowMatrix>(w[4].data(), kHidden, kClasses);
    b3 = Eigen::Map<const RowVector>(w[5].data(), kClasses);
  }

  /// d = 0 where the ReLU output h is 0. A plain loop, which the compiler
  /// vectorises (Eigen 3.4's select is scalar and branches).
  static void relu_backward(RowMatrix& d, const RowMatrix& h) {
    float* __restrict dp = d.data();
    const float* __restrict hp = h.data();
    for (Eigen::Index i = 0; i < d.size(); ++i) dp[i] = hp[i] > 0.0f ? dp[i] : 0.0f;
  }

  void step(const Eigen::Map<const RowMatrix>& x, const std::int32_t* labels) {
    // forward: GEMM, then bias + ReLU in one pass
    h1.noalias() = x * w1;
    h1 = (h1.rowwise() + b1).cwiseMax(0.0f);
    h2.noalias() = h1 * w2;
    h2 = (h2.rowwise() + b2).cwiseMax(0.0f);
    logits.noalias() = h2 * w3;
    logits.rowwise() += b3;
    // loss and dL/dlogits = (softmax - onehot) / B, in place over the logits
    double total = 0;
    for (int i = 0; i < kBatch; ++i) {
      auto row = logits.row(i);
      const float m = row.maxCoeff();
      const float picked = row[labels[i]];
      row = (row.array() - m).exp();
      const float s = row.sum();
      total += std::log(s) + m - picked;
      row *= 1.0f / (s * kBatch);
      row[labels[i]] -= 1.0f / kBatch;
    }
    loss = static_cast<float>(total / kBatch);
    // layer 3: input gradient first (it needs the old w3), then the update
    d2.noalias() = logits * w3.transpose();
    relu_backward(d2, h2);
    w3.noalias() -= kLr * (h2.transpose() * logits);
    b3 -= kLr * logits.colwise().sum();
    // layer 2
    d1.noalias() = d2 * w2.transpose();
    relu_backward(d1, h1);
    w2.noalias() -= kLr * (h1.transpose() * d2);
    b2 -= kLr * d2.colwise().sum();
    // layer 1 (no input gradient)
    w1.noalias() -= kLr * (x.transpose() * d1);
    b1 -= kLr * d1.colwise().sum();
  }
};

std::vector<Eigen::Map<const RowMatrix>> eigen_batches() {
  std::vector<Eigen::Map<const RowMatrix>> out;
  for (int p = 0; p < kPool; ++p) out.emplace_back(host_data().x[p].data(), kBatch, kIn);
  return out;
}

// ------------------------------------------------------------------- guard

/// 20 steps of each implementation from the same weights on the same
/// batches; aborts unless the losses agree to 1e-4 relative.
void check_same_computation() {
  static const bool done = [] {
    constexpr int kSteps = 20;
    auto jitted = eqx::filter_jit(sgd_step);
    Mlp mj = initial_mlp(), me = initial_mlp();
    EigenMlp ref;
    auto xs = eigen_batches();
    const EqxBatches& b = eqx_batches();
    double worst = 0;
    for (int s = 0; s < kSteps; ++s) {
      const int p = s % kPool;
      auto [nj, lj] = jitted(mj, b.x[p], b.labels[p]);
      auto [ne, le] = sgd_step(me, b.x[p], b.labels[p]);
      ref.step(xs[p], host_data().labels[p].data());
      mj = nj;
      me = ne;
      const float fj = lj.item<float>(), fe = le.item<float>(), fr = ref.loss;
      const double err = std::max(std::abs(fj - fr), std::abs(fe - fr)) / std::abs(fr);
      worst = std::max(worst, err);
      if (!(err <= 1e-4)) {
        std::fprintf(stderr,
                     "train_bench: step %d losses differ: eqx jit %.7g, eqx eager %.7g, Eigen %.7g (rel %.2g > 1e-4); "
                     "the benchmarks would not compare the same computation\n",
                     s, fj, fe, fr, err);
        std::abort();
      }
    }
    std::fprintf(stderr, "train_bench: %d steps, eqx (jit, eager) and Eigen losses agree (max rel diff %.2g)\n",
                 kSteps, worst);
    return true;
  }();
  (void)done;
}

// ------------------------------------------------------------------- timing

/// Eigen's {iterations, µs per step} in this run, by thread count: one entry
/// per run of the benchmark function (Google Benchmark's probe runs, then
/// one per repetition), for the ratio.
std::map<int, std::vector<std::pair<std::int64_t, double>>>& eigen_us() {
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
  state.counters["GFLOP/s"] = 513540096.0 / 1e3 / us;  // WORKLOADS.md's W2 count, over wall time
  state.counters["us_per_step"] = us;
  return us;
}

/// `vs_eigen`: this run's time over the median of Eigen's runs (same threads).
void report_ratio(benchmark::State& state, double us) {
  auto it = eigen_us().find(static_cast<int>(state.range(0)));
  if (it == eigen_us().end()) return;
  // The probe runs that sized the iteration count ran at most 1/1.4 of it.
  std::int64_t most = 0;
  for (const auto& run : it->second) most = std::max(most, run.first);
  std::vector<double> t;
  for (auto [iters, us_eigen] : it->second)
    if (iters * 4 >= most * 3) t.push_back(us_eigen);
  std::sort(t.begin(), t.end());
  const std::size_t n = t.size();
  const double median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
  state.counters["vs_eigen"] = us / median;
}

void BM_W2sgd_Eigen(benchmark::State& state) {
  check_same_computation();
  eqx::set_num_threads(static_cast<int>(state.range(0)));
  EigenMlp m;
  auto xs = eigen_batches();
  const auto& labels = host_data().labels;
  for (int s = 0; s < 20; ++s) m.step(xs[s % kPool], labels[s % kPool].data());  // warm-up
  const double us = timed_steps(state, [&](int p) {
    m.step(xs[p], labels[p].data());
    benchmark::DoNotOptimize(m.w1.data());
  });
  eigen_us()[static_cast<int>(state.range(0))].emplace_back(state.iterations(), us);
}
BENCHMARK(BM_W2sgd_Eigen)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

void BM_W2sgd_EqxJit(benchmark::State& state) {
  check_same_computation();
  eqx::set_num_threads(static_cast<int>(state.range(0)));
  auto step = eqx::filter_jit(sgd_step);
  const EqxBatches& b = eqx_batches();
  Mlp model = initial_mlp();
  for (int s = 0; s < 20; ++s) model = step(model, b.x[s % kPool], b.labels[s % kPool]).first;  // compile + warm-up
  const double us = timed_steps(state, [&](int p) {
    auto [next, loss] = step(model, b.x[p], b.labels[p]);
    model = std::move(next);
    benchmark::DoNotOptimize(loss);
  });
  report_ratio(state, us);
  const eqx::Plan& plan = step.plan(model, b.x[0], b.labels[0]);
  state.counters["arena_MB"] = static_cast<double>(plan.memory_stats().arena_bytes) / 1e6;
  state.counters["instrs"] = static_cast<double>(plan.memory_stats().num_instructions);
  if (std::getenv("TRAIN_BENCH_PRINT_PLAN")) {  // the optimised graph, for profiling
    static bool printed = false;
    if (!printed) fmt::print(stderr, "{}\n", plan.graph());
    printed = true;
  }
}
BENCHMARK(BM_W2sgd_EqxJit)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

void BM_W2sgd_EqxEager(benchmark::State& state) {
  check_same_computation();
  eqx::set_num_threads(static_cast<int>(state.range(0)));
  const EqxBatches& b = eqx_batches();
  Mlp model = initial_mlp();
  for (int s = 0; s < 5; ++s) model = sgd_step(model, b.x[s % kPool], b.labels[s % kPool]).first;
  const double us = timed_steps(state, [&](int p) {
    auto [next, loss] = sgd_step(model, b.x[p], b.labels[p]);
    model = std::move(next);
    benchmark::DoNotOptimize(loss);
  });
  report_ratio(state, us);
}
BENCHMARK(BM_W2sgd_EqxEager)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

}  // namespace
