#include <eqx/eqx.hpp>
#include <fmt/core.h>

#include <tuple>

namespace nn = eqx::nn;
namespace optim = eqx::optim;

// A model acts on one example; filter_vmap maps it over the batch.
eqx::Array loss_fn(const nn::MLP& model, const eqx::Array& x, const eqx::Array& y) {
  return eqx::mean(eqx::square(eqx::filter_vmap(model)(x) - y));
}

int main() {
  auto keys = eqx::random::split_keys(eqx::random::key(0), 2);
  eqx::Array x = eqx::random::uniform(keys[0], {256, 2}, eqx::float32, -1, 1);
  eqx::Array x0 = eqx::slice(x, 1, 0, 1), x1 = eqx::slice(x, 1, 1, 2);
  eqx::Array y = x0 * x1 + 0.5f * x0 - 0.25f * x1;  // a synthetic regression target, [256, 1]

  auto model = nn::MLP::init(2, 1, /*width=*/32, /*depth=*/1, keys[1], {.activation = eqx::tanh});
  auto optimiser = optim::adam(1e-2);
  auto opt_state = optimiser.init(eqx::filter(model, eqx::is_inexact_array));

  // One training step: forward, backward and the Adam update, compiled into one plan.
  auto step = eqx::filter_jit([&](const nn::MLP& model, const auto& state, const eqx::Array& x, const eqx::Array& y) {
    auto [loss, grads] = eqx::filter_value_and_grad(loss_fn)(model, x, y);
    auto [updates, new_state] = optimiser.update(grads, state, model);
    return std::tuple{eqx::apply_updates(model, updates), new_state, loss};
  });

  float first = 0, last = 0;
  for (int i = 0; i <= 1000; ++i) {
    eqx::Array loss;
    std::tie(model, opt_state, loss) = step(model, opt_state, x, y);
    if (i == 0) first = loss.item<float>();
    if (i % 200 == 0) fmt::print("step {:4}  loss {:.6f}\n", i, last = loss.item<float>());
  }
  fmt::print("loss dropped {:.0f}x\n", first / last);
  return first / last >= 100 ? 0 : 1;
}
