// EXPECT: an aggregate with a base class cannot be reflected as a pytree
#include <eqx/ops/creation.hpp>
#include <eqx/tree.hpp>

struct Base {
  eqx::Array weight;
};
struct Derived : Base {
  eqx::Array bias;
};

int main() { return static_cast<int>(eqx::tree_leaves(Derived{{eqx::ones({2})}, eqx::ones({2})}).size()); }
