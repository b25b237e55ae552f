// EXPECT: a transformed function must return a value (an Array or a pytree)
#include <eqx/eqx.hpp>

int main() {
  auto f = eqx::filter_jit([](const eqx::Array& x) { (void)x; });
  f(eqx::ones({2}));
}
