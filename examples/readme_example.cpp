#include <eqx/eqx.hpp>
#include <fmt/core.h>

#include <cmath>
#include <tuple>

struct Linear {  // a model is a plain struct; its Arrays are found by reflection
  eqx::Array weight, bias;
  eqx::Array operator()(const eqx::Array& x) const { return eqx::matmul(x, weight) + bias; }
};

struct Mlp {
  Linear hidden, out;
  eqx::Array operator()(const eqx::Array& x) const { return out(eqx::tanh(hidden(x))); }
};

Linear make_linear(const eqx::random::Key& key, int in, int out) {
  double scale = 1.0 / std::sqrt(in);
  return {eqx::random::uniform(key, {in, out}, eqx::float32, -scale, scale), eqx::zeros({out})};
}

eqx::Array loss_fn(const Mlp& model, const eqx::Array& x, const eqx::Array& y) {
  return eqx::mean(eqx::square(model(x) - y));
}

int main() {
  auto keys = eqx::random::split_keys(eqx::random::key(0), 3);
  eqx::Array x = eqx::random::uniform(keys[0], {256, 2}, eqx::float32, -1, 1);
  eqx::Array x0 = eqx::slice(x, 1, 0, 1), x1 = eqx::slice(x, 1, 1, 2);
  eqx::Array y = x0 * x1 + 0.5f * x0 - 0.25f * x1;  // a synthetic regression target, [256, 1]
  Mlp model{make_linear(keys[1], 2, 32), make_linear(keys[2], 32, 1)};

  // One training step: forward, backward and the SGD update, compiled into one plan.
  auto step = eqx::filter_jit([](const Mlp& model, const eqx::Array& x, const eqx::Array& y) {
    auto [loss, grads] = eqx::filter_value_and_grad(loss_fn)(model, x, y);
    Mlp updated = eqx::tree_map([](const eqx::Array& p, const eqx::Array& g) { return p - 0.1f * g; }, model, grads);
    return std::pair{updated, loss};
  });

  float first = loss_fn(model, x, y).item<float>(), loss = first;
  fmt::print("step    0  loss {:.6f}\n", first);
  for (int i = 1; i <= 3000; ++i) {
    std::tie(model, std::ignore) = step(model, x, y);
    if (i % 500 == 0) fmt::print("step {:4}  loss {:.6f}\n", i, loss = loss_fn(model, x, y).item<float>());
  }
  fmt::print("loss dropped {:.0f}x\n", first / loss);
  return first / loss >= 100 ? 0 : 1;
}
