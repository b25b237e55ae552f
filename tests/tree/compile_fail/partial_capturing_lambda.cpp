// EXPECT: eqx::Partial: the function must be a pytree
#include <eqx/ops/creation.hpp>
#include <eqx/tree.hpp>

// A capturing lambda hides its captures from the tree (and cannot be compared
// as a static leaf): bind them as arguments instead.
int main() {
  const eqx::Array w = eqx::ones({2});
  eqx::Partial p([w](const eqx::Array& x) { return w * x; });
  return static_cast<int>(p(eqx::ones({2})).size());
}
