// Quickstart: a tour of eqx::nn and eqx::optim in one small program.
//
//   1. a model is a plain struct: nn::MLP::init builds Equinox's eqx.nn.MLP
//      (its fields, printed as Equinox prints them, are its pytree);
//   2. a layer acts on ONE example; eqx::filter_vmap batches it;
//   3. eqx::filter_value_and_grad gives the loss and a gradient of the
//      model's own type (one Array per parameter);
//   4. an Optax optimiser (optim::adam): its state is made from the
//      parameters, and one filter_jit'd step holds the gradient, the update
//      and apply_updates, compiled once;
//   5. train on y = x0 * x1 and look at what the model learned.
//
// Run: build/<dir>/examples/quickstart
//
// Checks (non-zero exit if one fails): the loss drops at least 50x, and the
// jitted step is traced once (the later calls reuse its plan).

#include <cstdio>
#include <tuple>

#include <fmt/core.h>
#include <eqx/eqx.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
using eqx::Array;

Array loss_fn(const nn::MLP& model, const Array& xs, const Array& ys) {
  return eqx::mean(eqx::square(eqx::filter_vmap(model)(xs) - ys));
}

int main() {
  auto keys = eqx::random::split_keys(eqx::random::key(0), 2);

  // 1. A 2 -> 16 -> 16 -> 1 MLP with tanh between its layers.
  nn::MLP model = nn::MLP::init(2, 1, /*width=*/16, /*depth=*/2, keys[0], {.activation = eqx::tanh});
  fmt::print("{}\n\n", model);

  // 2. One example, then a batch: 256 points in [-1, 1)^2, target x0 * x1.
  const Array xs = eqx::random::uniform(keys[1], {256, 2}, eqx::float32, -1.0, 1.0);
  const Array ys = eqx::slice(xs, 1, 0, 1) * eqx::slice(xs, 1, 1, 2);  // [256, 1]
  fmt::print("model(xs[0]) = {}\n", model(eqx::take(xs, eqx::array(0), 0)));
  fmt::print("filter_vmap(model)(xs) : {}\n\n", eqx::filter_vmap(model)(xs).shape().str());

  // 3. The loss and its gradient, a tree shaped like the model.
  auto [loss, grads] = eqx::filter_value_and_grad(loss_fn)(model, xs, ys);
  fmt::print("loss {:.5f}; gradient of the first layer's weight: {}\n\n", loss.item<float>(),
             grads.layers[0].weight.shape().str());

  // 4. Adam, and the whole training step compiled into one plan.
  const auto optimiser = optim::adam(1e-2);
  auto opt_state = optimiser.init(eqx::filter(model, eqx::is_inexact_array));
  auto step = eqx::filter_jit([optimiser](const nn::MLP& model, const auto& state, const Array& xs, const Array& ys) {
    auto [loss, grads] = eqx::filter_value_and_grad(loss_fn)(model, xs, ys);
    auto [updates, new_state] = optimiser.update(grads, state, model);
    return std::tuple{eqx::apply_updates(model, updates), new_state, loss};
  });

  // 5. Train, then compare a few predictions with their targets.
  const float first = loss.item<float>();
  float last = first;
  for (int i = 1; i <= 500; ++i) {
    std::tie(model, opt_state, loss) = step(model, opt_state, xs, ys);
    if (i % 100 == 0) fmt::print("step {:3d}  loss {:.6f}\n", i, last = loss.item<float>());
  }
  const Array few = eqx::slice(xs, 0, 0, 4);
  fmt::print("\ninputs      {}\npredictions {}\ntargets     {}\n", few, eqx::ravel(eqx::filter_vmap(model)(few)),
             eqx::ravel(eqx::slice(ys, 0, 0, 4)));
  fmt::print("loss {:.5f} -> {:.6f} ({:.0f}x lower); the step traced {} time(s)\n", first, last, first / last,
             eqx::debug::get_num_traces(step));
  int failures = 0;
  auto require = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "FAILED: %s\n", what);
      ++failures;
    }
  };
  require(last * 50 <= first, "the loss dropped at least 50x");
  require(eqx::debug::get_num_traces(step) == 1, "the 500 calls of the step traced it once");
  return failures == 0 ? 0 : 1;
}
