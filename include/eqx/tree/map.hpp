#pragma once
// tree_map: apply a function to corresponding Array leaves of trees that
// share one structure; every other leaf is kept from the first tree.

#include <string>
#include <type_traits>
#include <utility>

#include "eqx/core/array.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

namespace detail {

template <class F, bool kWithPath>
struct LeafMapper {
  F& f;
  template <class... Others>
  Array array(const TreePath& path, const Array& a, const Others&... others) {
    if (!a.has_value()) {
      if ((others.has_value() || ...))
        throw TreeStructureError("eqx::tree_map: at " + path.display() +
                                 " the first tree has an empty Array (None) but another tree has an Array; "
                                 "the trees must have leaves in the same places");
      return Array{};
    }
    if ((!others.has_value() || ...))
      throw TreeStructureError("eqx::tree_map: at " + path.display() +
                               " another tree has an empty Array (None) where the first tree has an Array");
    if constexpr (kWithPath) return f(path, a, others...);
    else return f(a, others...);
  }
  template <class X, class... Others>
  X static_leaf(const TreePath&, const X& x, const Others&...) {
    return x;
  }
};

}  // namespace detail

/// A new tree of T's type with `f(leaf, rest_leaves...)` at every Array
/// leaf. Empty (None) leaves of `tree` stay empty and f is not called there;
/// the other trees must then be empty at that leaf too. Structure
/// mismatches throw eqx::TreeStructureError naming the path.
/// Usage: `auto updated = eqx::tree_map([](auto p, auto g) { return p - 0.1f * g; }, model, grads);`
template <class F, class T, class... Rest>
T tree_map(F&& f, const T& tree, const Rest&... rest) {
  static_assert((std::is_same_v<T, Rest> && ...), "eqx::tree_map: all trees must have the same C++ type");
  detail::LeafMapper<std::remove_reference_t<F>, false> mapper{f};
  TreePath path;
  return detail::rebuild_tree(mapper, path, tree, rest...);
}

/// tree_map whose function also receives the leaf's path first.
/// Usage: `eqx::tree_map_with_path([](const eqx::TreePath& p, const eqx::Array& x) { ... }, model)`
template <class F, class T, class... Rest>
T tree_map_with_path(F&& f, const T& tree, const Rest&... rest) {
  static_assert((std::is_same_v<T, Rest> && ...), "eqx::tree_map_with_path: all trees must have the same C++ type");
  detail::LeafMapper<std::remove_reference_t<F>, true> mapper{f};
  TreePath path;
  return detail::rebuild_tree(mapper, path, tree, rest...);
}

}  // namespace eqx
