// EXPECT: no matching function for call to
// An optimiser's state is its own C++ type (Adam's holds count, mu and nu;
// SGD's a trace), so passing another optimiser's state to update() is
// rejected when it is compiled, not at run time.
#include <eqx/ops/creation.hpp>
#include <eqx/optim/alias.hpp>

int main() {
  eqx::Array params = eqx::ones({3});
  auto adam = eqx::optim::adam(1e-3);
  auto sgd_state = eqx::optim::sgd(0.1, {.momentum = 0.9}).init(params);
  auto result = adam.update(params, sgd_state, params);
  (void)result;
}
