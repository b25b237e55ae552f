#include <eqx/eqx.hpp>
#include <fmt/core.h>

struct Layer {  // a model is a plain struct; its Arrays are found by reflection
  eqx::Array weight, bias;
  eqx::Array operator()(const eqx::Array& x) const { return eqx::tanh(eqx::matmul(x, weight) + bias); }
};

int main() {
  auto keys = eqx::random::split_keys(eqx::random::key(0), 2);
  eqx::Array x = eqx::random::normal(keys[0], {4, 3});  // a batch of 4 inputs
  Layer layer{eqx::random::uniform(keys[1], {3, 2}, eqx::float32, -0.5, 0.5), eqx::array({0.1f, -0.1f})};
  auto forward = eqx::filter_jit(layer);  // traced once per input shape, then a compiled plan
  eqx::Array h = forward(x);
  fmt::print("{}\n{}\n", h, eqx::argmax(h, 1));
  fmt::print("{}\n", eqx::filter_make_jaxpr(layer)(x));  // the traced graph, as a jaxpr
}
