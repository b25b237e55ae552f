#pragma once
// stop_gradient: the identity with a zero derivative, on Arrays and pytrees.

#include "eqx/core/array.hpp"
#include "eqx/prim/stop_gradient.hpp"
#include "eqx/tree/map.hpp"

namespace eqx {

/// x unchanged, but differentiation treats it as a constant (JAX's
/// lax.stop_gradient): no gradient flows through it. On a pytree, applies to
/// every floating Array leaf. Usage: `eqx::Array target = eqx::stop_gradient(model(x));`
template <class T>
T stop_gradient(const T& tree) {
  return tree_map(
      [](const Array& x) { return is_floating(x.dtype()) ? bind1(prim::stop_gradient, {x}) : x; }, tree);
}

}  // namespace eqx
