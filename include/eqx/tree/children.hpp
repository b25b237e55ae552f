#pragma once
// One level of a pytree: the immediate children of a node (Equinox's
// tree_flatten_one_level), where the other tree functions go down to the
// Array leaves.
//
// In Python every child is an object; in C++ the children of one node have
// different types (a struct's fields), so there are two forms:
//   tree_for_each_child(tree, f)   f(path, child) on each child, whatever its type
//   tree_flatten_one_level(tree)   the children as a value: a std::tuple when the
//                                  node's type fixes them, a std::vector<X> for a
//                                  container of X
// A leaf (an Array, a Static<T> field or another static leaf) is its own
// only child, as Equinox returns `[leaf]`. An optional holds its value at
// its own path (the walks never add a path entry for it), so its child has
// the empty path, and an empty optional has none.

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/pfr/core.hpp>

#include "eqx/tree/node.hpp"
#include "eqx/tree/path.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

/// Calls `f(path, child)` on each immediate child of `tree`, in leaf order.
/// `path` is the child's one step from `tree` (".weight", "[0]", "['key']"),
/// empty for an optional's value and for a leaf, which is its own only
/// child. `f` must accept every child type (a generic lambda).
/// Usage: `eqx::tree_for_each_child(model, [](const eqx::TreePath& p, const auto& child) { fmt::print("{}\n", p.str()); });`
template <class T, class F>
void tree_for_each_child(const T& tree, F&& f) {
  detail::require_pytree_node<T>();
  constexpr detail::NodeKind kind = detail::node_kind_v<T>;
  using detail::NodeKind;
  TreePath path;
  if constexpr (kind == NodeKind::array || kind == NodeKind::static_field || kind == NodeKind::static_leaf) {
    f(path, tree);
  } else if constexpr (kind == NodeKind::custom) {
    auto children = tree_traits<T>::flatten(tree);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((detail::push_custom_entry<T, I>(path), f(std::as_const(path), std::get<I>(children)), path.pop()), ...);
    }(std::make_index_sequence<std::tuple_size_v<decltype(children)>>{});
  } else if constexpr (kind == NodeKind::vector || kind == NodeKind::std_array) {
    for (std::size_t i = 0; i < tree.size(); ++i) {
      path.push_index(static_cast<std::int64_t>(i));
      f(std::as_const(path), tree[i]);
      path.pop();
    }
  } else if constexpr (kind == NodeKind::tuple) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((path.push_index(static_cast<std::int64_t>(I)), f(std::as_const(path), std::get<I>(tree)), path.pop()), ...);
    }(std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (kind == NodeKind::optional) {
    if (tree.has_value()) f(std::as_const(path), *tree);
  } else if constexpr (kind == NodeKind::string_map) {
    for (const auto& [key, value] : tree) {
      path.push_key(key);
      f(std::as_const(path), value);
      path.pop();
    }
  } else {  // aggregate
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((path.push_field(detail::field_name<T, I>), f(std::as_const(path), boost::pfr::get<I>(tree)), path.pop()), ...);
    }(std::make_index_sequence<detail::field_count<T>>{});
  }
}

/// The immediate children of `tree` (copies; Arrays share their storage):
/// a std::tuple when the type fixes them (a struct's fields, a custom
/// node's children, a tuple's or pair's elements, a leaf itself), a
/// std::vector<X> for a container of X (std::vector, std::array, a map's
/// values in key order, an optional's zero or one value). Paths and map
/// keys: tree_for_each_child.
/// Usage: `auto [layers, activation, width] = eqx::tree_flatten_one_level(mlp);`
template <class T>
auto tree_flatten_one_level(const T& tree) {
  detail::require_pytree_node<T>();
  constexpr detail::NodeKind kind = detail::node_kind_v<T>;
  using detail::NodeKind;
  if constexpr (kind == NodeKind::array || kind == NodeKind::static_field || kind == NodeKind::static_leaf) {
    return std::tuple<T>{tree};
  } else if constexpr (kind == NodeKind::custom) {
    return detail::custom_children_t<T>{tree_traits<T>::flatten(tree)};
  } else if constexpr (kind == NodeKind::vector || kind == NodeKind::std_array) {
    return std::vector<typename T::value_type>(tree.begin(), tree.end());
  } else if constexpr (kind == NodeKind::tuple) {
    return std::apply([](const auto&... x) { return std::tuple<std::remove_cvref_t<decltype(x)>...>{x...}; }, tree);
  } else if constexpr (kind == NodeKind::optional) {
    return tree.has_value() ? std::vector<typename T::value_type>{*tree} : std::vector<typename T::value_type>{};
  } else if constexpr (kind == NodeKind::string_map) {
    std::vector<typename T::mapped_type> values;
    values.reserve(tree.size());
    for (const auto& entry : tree) values.push_back(entry.second);
    return values;
  } else {  // aggregate
    return boost::pfr::structure_to_tuple(tree);
  }
}

}  // namespace eqx
