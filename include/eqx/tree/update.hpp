#pragma once
// apply_updates: add an update tree (gradients scaled by an optimiser) to a
// model, skipping the leaves that have no update, as eqx.apply_updates.

#include <string>

#include "eqx/core/array.hpp"
#include "eqx/core/config.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

namespace detail {

struct UpdateAdder {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  Array array(const TreePath& path, const Array& p, const Array& u);
};

#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Array UpdateAdder::array(const TreePath& path, const Array& p, const Array& u) {
  if (!u.has_value()) return p;
  if (!p.has_value())
    throw TreeStructureError("eqx::apply_updates: at " + path.display() +
                             " the update is an Array but the model leaf is None; updates must have None (or an "
                             "Array) where the model has an Array, and None where it has None");
  if (u.shape() != p.shape() || u.dtype() != p.dtype())
    throw ShapeError("eqx::apply_updates: at " + path.display() + " the update is " +
                     AbstractArray{u.shape(), u.dtype()}.str() + " but the model leaf is " +
                     AbstractArray{p.shape(), p.dtype()}.str() +
                     "; an update must have its leaf's shape and dtype (it would otherwise broadcast or promote)");
  return add(p, u);
}
#endif  // EQX_KERNELS_HERE(GRAPH)

}  // namespace detail

/// model + updates at every leaf where the update is an Array; leaves whose
/// update is None (integer leaves, frozen parts) and static leaves are kept
/// from `model`. Usage: `model = eqx::apply_updates(model, eqx::tree_map([&](auto g) { return -lr * g; }, grads));`
template <class T>
T apply_updates(const T& model, const T& updates) {
  detail::UpdateAdder adder;
  TreePath path;
  return detail::rebuild_tree(adder, path, model, updates);
}

}  // namespace eqx
