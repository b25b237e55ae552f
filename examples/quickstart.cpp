// Quickstart: a small model built from eqx Arrays, as in Equinox.
//
// A model is a plain struct of Arrays (later issues make such structs
// pytrees that eqx can jit, differentiate and serialise). Here we build a
// 2-16-16-1 MLP with PyTorch's default initialisation from counter-based
// random keys, run it on a batch, and print its outputs and loss.
//
// Run: scripts/demo

#include <cmath>
#include <vector>

#include <fmt/core.h>
#include <eqx/eqx.hpp>

/// y = x W^T + b on a batch x of shape [batch, in].
struct Linear {
  eqx::Array weight;  // [out, in]
  eqx::Array bias;    // [out]

  static Linear init(int in, int out, const eqx::random::Key& key) {
    auto keys = eqx::random::split_keys(key, 2);
    double bound = 1.0 / std::sqrt(in);
    return {eqx::random::uniform(keys[0], {out, in}, eqx::float32, -bound, bound),
            eqx::random::uniform(keys[1], {out}, eqx::float32, -bound, bound)};
  }
  eqx::Array operator()(const eqx::Array& x) const { return eqx::matmul(x, eqx::transpose(weight)) + bias; }
};

/// Linear layers with tanh between them.
struct MLP {
  std::vector<Linear> layers;

  static MLP init(const std::vector<int>& sizes, const eqx::random::Key& key) {
    auto keys = eqx::random::split_keys(key, static_cast<int>(sizes.size()) - 1);
    MLP mlp;
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) mlp.layers.push_back(Linear::init(sizes[i], sizes[i + 1], keys[i]));
    return mlp;
  }
  eqx::Array operator()(eqx::Array x) const {
    for (std::size_t i = 0; i < layers.size(); ++i) {
      x = layers[i](x);
      if (i + 1 < layers.size()) x = eqx::tanh(x);
    }
    return x;
  }
};

int main() {
  auto [model_key, data_key] = [] {
    auto k = eqx::random::split_keys(eqx::random::key(0), 2);
    return std::pair{k[0], k[1]};
  }();
  MLP model = MLP::init({2, 16, 16, 1}, model_key);

  // A batch of 8 points in [-1, 1)^2 and the target y = x0 * x1.
  eqx::Array x = eqx::random::uniform(data_key, {8, 2}, eqx::float32, -1.0, 1.0);
  eqx::Array y = eqx::slice(x, 1, 0, 1) * eqx::slice(x, 1, 1, 2);

  eqx::Array pred = model(x);
  eqx::Array loss = eqx::mean(eqx::square(pred - y));

  fmt::print("first layer weight: {}\n\n", model.layers[0].weight);
  fmt::print("inputs x:\n{}\n\n", x);
  fmt::print("predictions:\n{}\n\n", pred);
  fmt::print("targets:\n{}\n\n", y);
  fmt::print("mean squared error: {:.6f}\n", loss.item<float>());
  fmt::print("parameters: {}\n", [&] {
    std::int64_t n = 0;
    for (const auto& l : model.layers) n += l.weight.size() + l.bias.size();
    return n;
  }());
}
