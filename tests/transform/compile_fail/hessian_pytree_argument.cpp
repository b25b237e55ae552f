// EXPECT: eqx::filter_hessian: differentiates with respect to one eqx::Array
#include <eqx/ops/creation.hpp>
#include <eqx/ops/reductions.hpp>
#include <eqx/transform/jacobian.hpp>

struct Params {
  eqx::Array w, b;
};

int main() {
  // The Hessian of a pytree argument would be a tree of trees, which has no C++ type.
  auto h = eqx::filter_hessian([](const Params& p) { return eqx::sum(p.w * p.b); });
  h(Params{eqx::ones({2}), eqx::ones({2})});
}
