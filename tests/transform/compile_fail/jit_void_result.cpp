// EXPECT: a transformed function must return a value (an Array or a pytree)
#include <eqx/ops/creation.hpp>
#include <eqx/transform/jit.hpp>

int main() {
  auto f = eqx::filter_jit([](const eqx::Array& x) { (void)x; });
  f(eqx::ones({2}));
}
