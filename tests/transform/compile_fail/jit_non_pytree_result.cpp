// EXPECT: this type is not a pytree
#include <eqx/ops/creation.hpp>
#include <eqx/transform/jit.hpp>

class Opaque {  // private state, no operator==: neither a node nor a static leaf
 public:
  explicit Opaque(eqx::Array a) : a_(std::move(a)) {}

 private:
  eqx::Array a_;
};

int main() {
  auto f = eqx::filter_jit([](const eqx::Array& x) { return Opaque(x); });
  f(eqx::ones({2}));
}
