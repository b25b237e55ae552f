// EXPECT: T must have operator== (or be an empty, stateless type)
#include <eqx/ops/creation.hpp>
#include <eqx/tree.hpp>

#include <functional>

struct Model {
  eqx::Array weight;
  eqx::Static<std::function<eqx::Array(const eqx::Array&)>> activation;  // not comparable: every value would match
};

int main() { return static_cast<int>(eqx::tree_leaves(Model{eqx::ones({2}), {}}).size()); }
