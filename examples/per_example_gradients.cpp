// Per-example gradient norms with filter_vmap(filter_grad(...)).
//
// A model (here an nn::MLP 3 -> 16 -> 1) is written for one example. filter_grad differentiates the loss
// of one example; filter_vmap maps that over a batch, giving one gradient
// per example (the model is shared: in_axes eqx::none), as
// `jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))` does. filter_jit compiles
// the whole thing once. We print each example's gradient norm and check the
// mean of the per-example gradients equals the gradient of the mean loss.
//
// Run: build/<dir>/examples/per_example_gradients

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <fmt/core.h>
#include <eqx/eqx.hpp>

namespace nn = eqx::nn;

/// Squared error of one example (x [3], y [1]).
eqx::Array loss(const nn::MLP& model, const eqx::Array& x, const eqx::Array& y) {
  eqx::Array d = model(x) - y;
  return eqx::sum(d * d);
}

/// The L2 norm of every Array leaf of a batch of gradients, per example.
eqx::Array grad_norms(const nn::MLP& grads) {
  eqx::Array total;
  for (const eqx::Array& g : eqx::tree_leaves(grads)) {
    eqx::Array sq = eqx::sum(eqx::reshape(g * g, {g.shape()[0], -1}), {1});
    total = total.has_value() ? total + sq : sq;
  }
  return eqx::sqrt(total);
}

int main() {
  auto keys = eqx::random::split_keys(eqx::random::key(0), 2);
  const auto model = nn::MLP::init(3, 1, /*width=*/16, /*depth=*/1, keys[0], {.activation = eqx::tanh});
  const int batch = 8;
  const eqx::Array xs = eqx::random::normal(keys[1], {batch, 3}, eqx::float32);
  const eqx::Array ys = eqx::sum(xs, {1}, /*keepdims=*/true);

  auto per_example = eqx::filter_jit([](const nn::MLP& m, const eqx::Array& xs, const eqx::Array& ys) {
    return eqx::filter_vmap(eqx::filter_grad(loss), eqx::in_axes(eqx::none, 0, 0))(m, xs, ys);
  });
  const nn::MLP grads = per_example(model, xs, ys);  // every leaf gets a leading batch axis
  fmt::print("layers[0].weight gradients: {}\n", grads.layers[0].weight.shape().str());
  std::vector<float> norms = grad_norms(grads).to_vector<float>();
  for (int b = 0; b < batch; ++b) fmt::print("example {}: |grad| = {:.4f}\n", b, norms[b]);

  // The mean of per-example gradients is the gradient of the mean loss.
  auto mean_loss = [](const nn::MLP& m, const eqx::Array& xs, const eqx::Array& ys) {
    return eqx::mean(eqx::filter_vmap(loss, eqx::in_axes(eqx::none, 0, 0))(m, xs, ys));
  };
  const nn::MLP batch_grad = eqx::filter_grad(mean_loss)(model, xs, ys);
  // Leaf by leaf: the largest difference, over all four parameters.
  const nn::MLP diffs = eqx::tree_map(
      [](const eqx::Array& g, const eqx::Array& b) { return eqx::max(eqx::abs(eqx::mean(g, {0}) - b)); }, grads,
      batch_grad);
  float diff = 0;
  for (const eqx::Array& d : eqx::tree_leaves(diffs)) diff = std::max(diff, d.item<float>());
  fmt::print("max |mean of per-example grads - grad of mean loss| = {:.2e} (over every parameter)\n", diff);
  if (!(diff < 1e-5f)) {
    std::fprintf(stderr, "per-example gradients disagree with the batch gradient\n");
    return 1;
  }
  return 0;
}
