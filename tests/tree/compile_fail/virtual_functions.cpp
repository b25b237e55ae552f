// EXPECT: a type with virtual functions cannot be reflected as a pytree
#include <eqx/ops/creation.hpp>
#include <eqx/tree.hpp>

struct Layer {
  virtual ~Layer() = default;
  eqx::Array weight;
};

int main() {
  Layer l;
  return static_cast<int>(eqx::tree_leaves(l).size());
}
