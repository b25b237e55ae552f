// Gradient accumulation with eqx::optim::multi_steps (Optax's MultiSteps):
// training on 4 micro-batches of 16 examples gives the same parameters as
// training on the batch of 64 they make up.
//
// multi_steps(opt, k) averages the gradients of k consecutive calls
// (Welford's running mean, kept in the state in the params' dtype); every
// k-th call it hands the mean to the inner optimiser and returns that
// update, the other calls return zeros and leave the inner state alone.
// For a mean loss over equal-sized micro-batches, the mean of the
// micro-batch gradients is the full batch's gradient, so the run equals
// the full-batch run up to rounding, with a quarter of the activations
// alive at a time.
//
// Also shown: optim::apply_every(k), Optax's older variant, which sums the
// updates and emits them every k-th step but lets the rest of a chain update
// its state at every call.
//
// Checks (non-zero exit if one fails): after 25 full-batch steps and 100
// micro-batch calls the parameters agree to 1e-5, the inner step count is
// 25, the micro-batch step traced once, and the loss dropped.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <eqx/eqx.hpp>
#include <eqx/optim.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
using eqx::Array;

Array loss(const nn::MLP& model, const Array& xs, const Array& ys) {
  return eqx::mean(eqx::square(eqx::filter_vmap(model)(xs) - ys));
}

/// Largest |a - b| over all parameters of two models.
float max_difference(const nn::MLP& a, const nn::MLP& b) {
  float worst = 0;
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    const auto& [wa, ba] = std::pair{a.layers[i].weight, a.layers[i].bias};
    const auto& [wb, bb] = std::pair{b.layers[i].weight, b.layers[i].bias};
    worst = std::max({worst, eqx::max(eqx::abs(wa - wb)).item<float>(), eqx::max(eqx::abs(ba - bb)).item<float>()});
  }
  return worst;
}

int main() {
  auto keys = eqx::random::split_keys(eqx::random::key(1), 2);
  const nn::MLP init = nn::MLP::init(3, 1, 16, 1, keys[0], {.activation = eqx::tanh});
  const Array xs = eqx::random::normal(keys[1], {64, 3});
  const Array ys = eqx::sin(eqx::sum(xs, eqx::Axes{1}, true));
  constexpr int k = 4, micro = 16, steps = 25;

  // The full batch with AdamW.
  auto opt = optim::adamw(1e-2);
  auto full_step = eqx::filter_jit([opt](const nn::MLP& m, const decltype(opt.init(m))& s, const Array& x,
                                         const Array& y) {
    auto [value, grads] = eqx::filter_value_and_grad(loss)(m, x, y);
    auto [updates, next] = opt.update(grads, s, eqx::filter(m, eqx::is_inexact_array));
    return std::tuple{eqx::apply_updates(m, updates), next, value};
  });
  nn::MLP full = init;
  auto full_state = opt.init(eqx::filter(full, eqx::is_inexact_array));
  float first = 0, last = 0;
  for (int i = 0; i < steps; ++i) {
    Array value;
    std::tie(full, full_state, value) = full_step(full, full_state, xs, ys);
    if (i == 0) first = value.item<float>();
    last = value.item<float>();
  }
  fmt::print("full batch of 64, {} steps: loss {:.5f} -> {:.5f}\n", steps, first, last);

  // The same optimiser on 4 micro-batches of 16 per step.
  auto acc = optim::multi_steps(opt, k);
  using AccState = decltype(acc.init(eqx::filter(init, eqx::is_inexact_array)));
  auto micro_step = eqx::filter_jit(eqx::debug::assert_max_traces(
      [acc](const nn::MLP& m, const AccState& s, const Array& x, const Array& y) {
        auto grads = eqx::filter_grad(loss)(m, x, y);
        auto [updates, next] = acc.update(grads, s, eqx::filter(m, eqx::is_inexact_array));
        return std::pair{eqx::apply_updates(m, updates), next};
      },
      1, "micro_step"));
  nn::MLP accumulated = init;
  AccState acc_state = acc.init(eqx::filter(accumulated, eqx::is_inexact_array));
  for (int i = 0; i < steps * k; ++i) {
    const std::int64_t start = (i % k) * micro;
    const Array x = eqx::slice(xs, 0, start, start + micro);
    const Array y = eqx::slice(ys, 0, start, start + micro);
    std::tie(accumulated, acc_state) = micro_step(accumulated, acc_state, x, y);
  }
  const float diff = max_difference(full, accumulated);
  fmt::print("4 micro-batches of 16 per step, {} calls: largest parameter difference {:.2e}\n", steps * k, diff);

  // apply_every: the sum of k updates every k-th call (here before plain SGD, where it is exact too).
  auto every = optim::chain(optim::apply_every(k), optim::sgd(0.05 / k));
  auto plain = optim::sgd(0.05);
  nn::MLP e = init, p = init;
  auto es = every.init(eqx::filter(e, eqx::is_inexact_array));
  auto ps = plain.init(eqx::filter(p, eqx::is_inexact_array));
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < k; ++j) {
      const Array x = eqx::slice(xs, 0, j * micro, (j + 1) * micro);
      const Array y = eqx::slice(ys, 0, j * micro, (j + 1) * micro);
      auto [u, next] = every.update(eqx::filter_grad(loss)(e, x, y), es, eqx::filter(e, eqx::is_inexact_array));
      es = next;
      e = eqx::apply_updates(e, u);
    }
    auto [u, next] = plain.update(eqx::filter_grad(loss)(p, xs, ys), ps, eqx::filter(p, eqx::is_inexact_array));
    ps = next;
    p = eqx::apply_updates(p, u);
  }
  const float every_diff = max_difference(e, p);
  fmt::print("apply_every({}) + sgd vs full-batch sgd after 3 steps: largest difference {:.2e}\n", k, every_diff);

  bool ok = true;
  auto check = [&](bool cond, const std::string& what) {
    fmt::print("{} {}\n", cond ? "ok  " : "FAIL", what);
    ok = ok && cond;
  };
  check(diff < 1e-5f, "micro-batch accumulation equals the full batch (to 1e-5)");
  check(acc_state.gradient_step.item<std::int32_t>() == steps, "the inner optimiser stepped 25 times");
  check(eqx::debug::get_num_traces(micro_step) == 1, "the micro-batch step traced once");
  check(every_diff < 1e-5f, "apply_every + sgd equals full-batch sgd (to 1e-5)");
  check(last < first, "the loss dropped");
  return ok ? 0 : 1;
}
