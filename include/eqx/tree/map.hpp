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
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
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

namespace detail {

template <class F>
struct NodeMapper {
  F& f;
  Array array(const TreePath&, const Array& a) { return a; }
  template <class X>
  X static_leaf(const TreePath&, const X& x) {
    return x;
  }
  template <class X>
    requires std::is_invocable_r_v<X, F&, const TreePath&, X>
  X node(const TreePath& path, X x) {
    return f(path, std::move(x));
  }
};

template <class F>
struct NodeVisitor : ArrayLeafVisitor {
  F& f;
  bool array(const TreePath&, const Array&) { return true; }
  template <class X>
    requires std::is_invocable_v<F&, const TreePath&, const X&>
  bool node(const TreePath& path, const X& x) {
    f(path, x);
    return true;
  }
};

}  // namespace detail

/// A new tree with `f(path, node)` in place of every node (struct,
/// container or leaf) whose type f accepts: Equinox's tree_map with an
/// is_leaf for one node type, applied bottom-up (f sees the node with its
/// children already mapped) and returning a node of the same type. Write f
/// for the node types it is meant for (a concrete type, or a constrained
/// template lambda).
/// Usage: `model = eqx::tree_map_nodes([](const eqx::TreePath&, nn::Dropout d) { d.p = 0; return d; }, model);`
template <class F, class T>
T tree_map_nodes(F&& f, const T& tree) {
  detail::NodeMapper<std::remove_reference_t<F>> mapper{f};
  TreePath path;
  return detail::rebuild_tree(mapper, path, tree);
}

/// Calls `f(path, node)` on every node of `tree` whose type f accepts, in
/// leaf order (a node before its children).
/// Usage: `eqx::tree_for_each_node([&](const eqx::TreePath& p, const nn::Linear&) { names.push_back(p.str()); }, model);`
template <class F, class T>
void tree_for_each_node(F&& f, const T& tree) {
  detail::NodeVisitor<std::remove_reference_t<F>> visitor{{}, f};
  TreePath path;
  detail::visit_tree(visitor, path, tree);
}

}  // namespace eqx
