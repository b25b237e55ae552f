#pragma once
// tree_at: a copy of a tree with some of its parts replaced, as
// equinox.tree_at does. `where` picks the parts by returning references into
// the tree it is given; the input tree is never modified.

#include <cstddef>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include <boost/pfr/core.hpp>

#include "eqx/core/error.hpp"
#include "eqx/tree/node.hpp"

namespace eqx {

/// Wraps a function for tree_at: the part is replaced by fn(part).
/// Usage: `eqx::tree_at(where, model, eqx::replace_fn([](eqx::Array w) { return w * 2; }))`
template <class F>
struct replace_fn {
  explicit replace_fn(F f) : fn(std::move(f)) {}
  F fn;
};
template <class F>
replace_fn(F) -> replace_fn<F>;

namespace detail {

template <class T>
struct is_replace_fn : std::false_type {};
template <class F>
struct is_replace_fn<replace_fn<F>> : std::true_type {};

template <class T>
struct is_tuple_of_refs : std::false_type {};
template <class... T>
struct is_tuple_of_refs<std::tuple<T&...>> : std::true_type {};

/// True if `p` points into `node` or into storage `node` owns (vector
/// elements, map values), at any depth.
template <class T>
bool contains_address(const T& node, const void* p) {
  const auto* begin = reinterpret_cast<const unsigned char*>(&node);
  const auto* q = static_cast<const unsigned char*>(p);
  if (q >= begin && q < begin + sizeof(T)) {
    return true;
  }
  constexpr NodeKind kind = node_kind_v<T>;
  if constexpr (kind == NodeKind::vector) {
    for (const auto& e : node)
      if (contains_address(e, p)) return true;
  } else if constexpr (kind == NodeKind::string_map) {
    for (const auto& [k, v] : node)
      if (contains_address(v, p)) return true;
  } else if constexpr (kind == NodeKind::std_array) {
    for (const auto& e : node)
      if (contains_address(e, p)) return true;
  } else if constexpr (kind == NodeKind::tuple) {
    return std::apply([&](const auto&... e) { return (contains_address(e, p) || ...); }, node);
  } else if constexpr (kind == NodeKind::optional) {
    return node.has_value() && contains_address(*node, p);
  } else if constexpr (kind == NodeKind::aggregate) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return (contains_address(boost::pfr::get<I>(node), p) || ...);
    }(std::make_index_sequence<field_count<T>>{});
  }
  return false;
}

template <class T, class Part>
void require_inside(const T& tree, const Part& part) {
  if (!contains_address(tree, &part))
    throw ValueError(
        "eqx::tree_at: `where` returned a reference to something outside the tree it was given; it must return "
        "parts of its argument, e.g. [](auto& m) -> auto& { return m.layers[0].weight; }");
}

template <class Part, class R>
void replace_part(Part& part, R&& replacement) {
  if constexpr (is_replace_fn<std::remove_cvref_t<R>>::value) part = replacement.fn(std::as_const(part));
  else part = std::forward<R>(replacement);
}

}  // namespace detail

/// A copy of `tree` in which the part(s) `where(copy)` refers to are replaced.
/// `where` takes the tree by reference and returns a reference to one part
/// (a whole sub-module, a list element, a static field, an Array) or
/// `std::tie(...)` of several; `replacement` is the new value (a tuple for
/// several), or `eqx::replace_fn(fn)` to transform each part.
/// Usage: `auto m2 = eqx::tree_at([](auto& m) -> auto& { return m.layers[1].bias; }, model, new_bias);`
template <class T, class Where, class R>
T tree_at(Where&& where, const T& tree, R&& replacement) {
  T out = tree;
  using Picked = decltype(where(out));
  if constexpr (detail::is_tuple_of_refs<std::remove_cvref_t<Picked>>::value) {
    auto parts = where(out);
    constexpr std::size_t n = std::tuple_size_v<std::remove_cvref_t<Picked>>;
    if constexpr (detail::is_replace_fn<std::remove_cvref_t<R>>::value) {
      std::apply([&](auto&... p) { (detail::require_inside(out, p), ...); }, parts);
      std::apply([&](auto&... p) { (detail::replace_part(p, replacement), ...); }, parts);
    } else {
      static_assert(std::tuple_size_v<std::remove_cvref_t<R>> == n,
                    "eqx::tree_at: `where` picked several parts; pass a tuple with one replacement for each");
      std::apply([&](auto&... p) { (detail::require_inside(out, p), ...); }, parts);
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        (detail::replace_part(std::get<I>(parts), std::get<I>(std::forward<R>(replacement))), ...);
      }(std::make_index_sequence<n>{});
    }
  } else {
    static_assert(std::is_lvalue_reference_v<Picked>,
                  "eqx::tree_at: `where` must return a reference into the tree it is given "
                  "(declare the lambda `-> auto&`), or std::tie(...) of several");
    auto& part = where(out);
    detail::require_inside(out, part);
    detail::replace_part(part, std::forward<R>(replacement));
  }
  return out;
}

}  // namespace eqx
