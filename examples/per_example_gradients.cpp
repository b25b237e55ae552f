// Per-example gradient norms with filter_vmap(filter_grad(...)).
//
// A model is written for one example. filter_grad differentiates the loss
// of one example; filter_vmap maps that over a batch, giving one gradient
// per example (the model is shared: in_axes eqx::none), as
// `jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))` does. filter_jit compiles
// the whole thing once. We print each example's gradient norm and check the
// mean of the per-example gradients equals the gradient of the mean loss.
//
// Run: build/<dir>/examples/per_example_gradients

#include <cmath>
#include <cstdio>
#include <vector>

#include <fmt/core.h>
#include <eqx/eqx.hpp>

struct Linear {
  eqx::Array weight, bias;  // [out, in], [out]
  static Linear init(int in, int out, const eqx::random::Key& key) {
    auto keys = eqx::random::split_keys(key, 2);
    const double bound = 1.0 / std::sqrt(in);
    return {eqx::random::uniform(keys[0], {out, in}, eqx::float32, -bound, bound),
            eqx::random::uniform(keys[1], {out}, eqx::float32, -bound, bound)};
  }
  eqx::Array operator()(const eqx::Array& x) const { return eqx::matmul(weight, x) + bias; }  // one example
};

struct Mlp {
  Linear hidden, out;
  eqx::Array operator()(const eqx::Array& x) const { return out(eqx::tanh(hidden(x))); }
};

/// Squared error of one example.
eqx::Array loss(const Mlp& model, const eqx::Array& x, const eqx::Array& y) {
  eqx::Array d = model(x) - y;
  return eqx::sum(d * d);
}

/// The L2 norm of every Array leaf of a batch of gradients, per example.
eqx::Array grad_norms(const Mlp& grads) {
  eqx::Array total;
  for (const eqx::Array& g : eqx::tree_leaves(grads)) {
    eqx::Array sq = eqx::sum(eqx::reshape(g * g, {g.shape()[0], -1}), {1});
    total = total.has_value() ? total + sq : sq;
  }
  return eqx::sqrt(total);
}

int main() {
  auto keys = eqx::random::split_keys(eqx::random::key(0), 4);
  const Mlp model{Linear::init(3, 16, keys[0]), Linear::init(16, 1, keys[1])};
  const int batch = 8;
  const eqx::Array xs = eqx::random::normal(keys[2], {batch, 3}, eqx::float32);
  const eqx::Array ys = eqx::sum(xs, {1}, /*keepdims=*/true);

  auto per_example = eqx::filter_jit([](const Mlp& m, const eqx::Array& xs, const eqx::Array& ys) {
    return eqx::filter_vmap(eqx::filter_grad(loss), eqx::in_axes(eqx::none, 0, 0))(m, xs, ys);
  });
  const Mlp grads = per_example(model, xs, ys);  // every leaf gets a leading batch axis
  fmt::print("hidden.weight gradients: {}\n", grads.hidden.weight.shape().str());
  std::vector<float> norms = grad_norms(grads).to_vector<float>();
  for (int b = 0; b < batch; ++b) fmt::print("example {}: |grad| = {:.4f}\n", b, norms[b]);

  // The mean of per-example gradients is the gradient of the mean loss.
  auto mean_loss = [](const Mlp& m, const eqx::Array& xs, const eqx::Array& ys) {
    return eqx::mean(eqx::filter_vmap(loss, eqx::in_axes(eqx::none, 0, 0))(m, xs, ys));
  };
  const Mlp batch_grad = eqx::filter_grad(mean_loss)(model, xs, ys);
  const float diff = eqx::max(eqx::abs(eqx::mean(grads.hidden.weight, {0}) - batch_grad.hidden.weight)).item<float>();
  fmt::print("max |mean of per-example grads - grad of mean loss| = {:.2e}\n", diff);
  if (!(diff < 1e-5f)) {
    std::fprintf(stderr, "per-example gradients disagree with the batch gradient\n");
    return 1;
  }
  return 0;
}
