// EXPECT: this type is not a pytree: it is not an aggregate
#include <eqx/ops/creation.hpp>
#include <eqx/tree.hpp>

class Hidden {
 public:
  explicit Hidden(eqx::Array w) : weight_(std::move(w)) {}

 private:
  eqx::Array weight_;
};

int main() { return static_cast<int>(eqx::tree_leaves(Hidden(eqx::ones({2}))).size()); }
