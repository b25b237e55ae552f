// EXPECT: the function must be a lambda without captures
#include <eqx/ops/creation.hpp>
#include <eqx/transform/elementwise_kernel.hpp>

int main() {
  float scale = 2.0f;
  auto k = eqx::elementwise_kernel([scale](auto x) { return x * scale; });
  k(eqx::ones({2}));
}
