// EXPECT: eqx::filter_jacrev: f must return an eqx::Array
#include <eqx/ops/creation.hpp>
#include <eqx/transform/jacobian.hpp>

#include <utility>

int main() {
  // Jacobians are of one Array output; a pair of outputs has no single Jacobian shape.
  auto jac = eqx::filter_jacrev([](const eqx::Array& x) { return std::pair{x, x}; });
  jac(eqx::ones({2}));
}
