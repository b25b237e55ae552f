#include <eqx/eqx.hpp>
#include <fmt/core.h>

int main() {
  auto keys = eqx::random::split_keys(eqx::random::key(0), 2);
  eqx::Array x = eqx::random::normal(keys[0], {4, 3});  // a batch of 4 inputs
  eqx::Array w = eqx::random::uniform(keys[1], {3, 2}, eqx::float32, -0.5, 0.5);
  eqx::Array b = eqx::array({0.1f, -0.1f});
  eqx::Array h = eqx::tanh(eqx::matmul(x, w) + b);  // b broadcasts, as in numpy
  eqx::Array label = eqx::argmax(h, 1);              // i32[4]
  fmt::print("{}\n{}\n", h, label);
  fmt::print("mean: {:.4f}\n", eqx::mean(h).item<float>());
}
