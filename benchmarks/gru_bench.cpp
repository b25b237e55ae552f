// W4 gru-scan (shared/WORKLOADS.md): one jitted training step of a GRU
// (input 2, hidden 64, PyTorch's equations and init) over 100 steps, batch
// 32, then Linear(64 -> 1) on h_100, MSE loss, Adam (lr 1e-3), with full
// backpropagation through time.
//
//   BM_W4_Scan      the recurrence is eqx::scan: one equation, whose VJP is
//                   a forward scan storing per-step residuals and a reverse
//                   scan
//   BM_W4_Unrolled  the same step with the recurrence unrolled into 100
//                   copies of the cell (what a C++ for loop traces to); its
//                   plan is what scan is compared with
//
// Counters: us_per_step; on the scan row, vs_unrolled: its time over the
// median of the unrolled row's repetitions in the same run (registered
// first); equations: the number of equations of the traced step (O(1) in
// the sequence length for scan). Before timing, 5 steps of both from the
// same weights on the same batches must give the same losses (1e-4
// relative), or the binary aborts.
//
//   build/bench/benchmarks/gru_bench --benchmark_repetitions=3 --benchmark_min_time=1

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>
#include <fmt/core.h>

namespace {

constexpr int kIn = 2, kHidden = 64, kSteps = 100, kBatch = 32, kPool = 4;
constexpr float kLr = 1e-3f;

using eqx::Array;

struct Gru {
  Array w_ih, w_hh, b_ih, b_hh;  // [3H, I], [3H, H], [3H], [3H]; gates [r; z; n]
  Array head_w, head_b;          // Linear(64 -> 1): [1, H], [1]

  /// One step on a batch: h [B, H], x [B, I].
  Array cell(const Array& h, const Array& x) const {
    const Array gi = eqx::matmul(x, eqx::transpose(w_ih)) + b_ih;
    const Array gh = eqx::matmul(h, eqx::transpose(w_hh)) + b_hh;
    auto gate = [](const Array& a, int k) { return eqx::slice(a, 1, k * kHidden, (k + 1) * kHidden); };
    const Array r = eqx::sigmoid(gate(gi, 0) + gate(gh, 0));
    const Array z = eqx::sigmoid(gate(gi, 1) + gate(gh, 1));
    const Array n = eqx::tanh(gate(gi, 2) + r * gate(gh, 2));
    return (1.0f - z) * n + z * h;
  }
  Array head(const Array& h) const { return eqx::matmul(h, eqx::transpose(head_w)) + head_b; }
};

Gru initial_gru() {
  auto keys = eqx::random::split_keys(eqx::random::key(4), 6);
  const double b = 1.0 / std::sqrt(kHidden);
  auto u = [&](int k, eqx::Shape s) { return eqx::random::uniform(keys[k], s, eqx::float32, -b, b); };
  return {u(0, {3 * kHidden, kIn}), u(1, {3 * kHidden, kHidden}), u(2, {3 * kHidden}), u(3, {3 * kHidden}),
          u(4, {1, kHidden}), u(5, {1})};
}

/// Sequences [T, B, I] and targets [B, 1]: the target is the mean of the first input feature.
std::vector<std::pair<Array, Array>> batches() {
  std::vector<std::pair<Array, Array>> out;
  for (int p = 0; p < kPool; ++p) {
    Array xs = eqx::random::normal(eqx::random::key(100 + p), {kSteps, kBatch, kIn}, eqx::float32);
    Array y = eqx::reshape(eqx::mean(eqx::slice(xs, 2, 0, 1), {0}), {kBatch, 1});
    out.emplace_back(std::move(xs), std::move(y));
  }
  return out;
}

template <bool kScan>
Array loss(const Gru& g, const Array& xs, const Array& y) {
  Array h = eqx::zeros({kBatch, kHidden}, eqx::float32);
  if constexpr (kScan) {
    h = eqx::scan([&](const Array& h, const Array& x) { return std::pair{g.cell(h, x), std::tuple<>{}}; }, h, xs).first;
  } else {
    for (int t = 0; t < kSteps; ++t) h = g.cell(h, eqx::reshape(eqx::slice(xs, 0, t, t + 1), {kBatch, kIn}));
  }
  const Array d = g.head(h) - y;
  return eqx::mean(d * d);
}

/// Adam (PyTorch 1.13 semantics); `t` is the step count as an f32 scalar, so no retrace.
struct Adam {
  Gru m, v;
  Array t;
};

Adam adam_init(const Gru& g) {
  auto zeros = [](const Array& a) { return eqx::zeros_like(a); };
  return {eqx::tree_map(zeros, g), eqx::tree_map(zeros, g), eqx::array(0.0f)};
}

template <bool kScan>
auto make_step() {
  return eqx::filter_jit([](const Gru& g, const Adam& s, const Array& xs, const Array& y) {
    auto [value, grads] = eqx::filter_value_and_grad(loss<kScan>)(g, xs, y);
    const Array t = s.t + 1.0f;
    const Array c1 = 1.0f - eqx::pow(eqx::array(0.9f), t), c2 = 1.0f - eqx::pow(eqx::array(0.999f), t);
    Gru m = eqx::tree_map([](const Array& m, const Array& g) { return 0.9f * m + 0.1f * g; }, s.m, grads);
    Gru v = eqx::tree_map([](const Array& v, const Array& g) { return 0.999f * v + 0.001f * g * g; }, s.v, grads);
    Gru next = eqx::tree_map(
        [&](const Array& p, const Array& m, const Array& v) { return p - (kLr / c1) * m / (eqx::sqrt(v) / eqx::sqrt(c2) + 1e-8f); },
        g, m, v);
    return std::tuple{next, Adam{m, v, t}, value};
  });
}

/// 5 steps of both variants must agree before anything is timed.
void check_agreement() {
  auto data = batches();
  auto scan_step = make_step<true>();
  auto loop_step = make_step<false>();
  Gru a = initial_gru(), b = a;
  Adam sa = adam_init(a), sb = sa;
  for (int s = 0; s < 5; ++s) {
    auto [na, nsa, la] = scan_step(a, sa, data[s % kPool].first, data[s % kPool].second);
    auto [nb, nsb, lb] = loop_step(b, sb, data[s % kPool].first, data[s % kPool].second);
    const float x = la.item<float>(), y = lb.item<float>();
    if (!(std::abs(x - y) <= 1e-4f * std::max(std::abs(x), std::abs(y)))) {
      std::fprintf(stderr, "gru_bench: step %d: scan loss %.8g but unrolled loss %.8g\n", s, x, y);
      std::abort();
    }
    a = na, sa = nsa, b = nb, sb = nsb;
  }
}

double& unrolled_median_us() {
  static double us = 0;
  return us;
}

template <bool kScan>
void run(benchmark::State& state) {
  static bool checked = (check_agreement(), true);
  (void)checked;
  auto data = batches();
  auto step = make_step<kScan>();
  Gru g = initial_gru();
  Adam s = adam_init(g);
  std::tie(g, s, std::ignore) = step(g, s, data[0].first, data[0].second);  // trace and compile
  int i = 0;
  double total_us = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto [ng, ns, value] = step(g, s, data[i % kPool].first, data[i % kPool].second);
    total_us += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    g = std::move(ng), s = std::move(ns), ++i;
  }
  const double us = total_us / std::max<double>(1, static_cast<double>(state.iterations()));
  state.counters["us_per_step"] = us;
  state.counters["equations"] = static_cast<double>(
      eqx::filter_make_jaxpr(loss<kScan>)(initial_gru(), data[0].first, data[0].second).graph.equations.size());
  if constexpr (!kScan) unrolled_median_us() = us;  // the last repetition's; close enough within one run
  else if (unrolled_median_us() > 0) state.counters["vs_unrolled"] = us / unrolled_median_us();
}

}  // namespace

BENCHMARK(run<false>)->Name("BM_W4_Unrolled")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(run<true>)->Name("BM_W4_Scan")->Unit(benchmark::kMillisecond)->UseRealTime();
