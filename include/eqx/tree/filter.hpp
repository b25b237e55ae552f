#pragma once
// filter / partition / combine, as equinox.filter, equinox.partition and
// equinox.combine: split a model into the Arrays a transformation should see
// and the rest, then put them back together.
//
// A predicate is called on each non-empty Array leaf, as `pred(leaf)` or
// `pred(path, leaf)`. Or, as Equinox's filter_spec, a tree of the model's
// own type holds a bool scalar Array at each leaf (true: select), made with
// tree_map and tree_at; a None leaf in it selects nothing. Only Array leaves can be filtered out (they become
// empty, "None"); static leaves (ints, strings, functions) stay in both
// halves because a C++ int cannot be None, and they are part of the
// structure anyway.

#include <string>
#include <type_traits>
#include <utility>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

/// True for every (non-empty) Array leaf. Usage: `eqx::partition(model, eqx::is_array)`
inline bool is_array(const Array& x) { return x.has_value(); }
/// True for floating-point Array leaves: the ones gradients flow to.
inline bool is_inexact_array(const Array& x) { return x.has_value() && is_floating(x.dtype()); }

namespace detail {

template <class Pred>
bool call_predicate(Pred& pred, const TreePath& path, const Array& leaf) {
  if constexpr (std::is_invocable_r_v<bool, Pred&, const TreePath&, const Array&>) return pred(path, leaf);
  else {
    static_assert(std::is_invocable_r_v<bool, Pred&, const Array&>,
                  "eqx: a filter predicate takes (const eqx::Array&) or (const eqx::TreePath&, const eqx::Array&) "
                  "and returns bool");
    return pred(leaf);
  }
}

template <class Pred>
struct FilterBuilder {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  Pred& pred;
  bool keep_selected;
  Array array(const TreePath& path, const Array& a) {
    if (!a.has_value()) return Array{};
    return call_predicate(pred, path, a) == keep_selected ? a : Array{};
  }
};

/// Keeps the Arrays whose filter_spec leaf is true (or, with keep_selected =
/// false, false or None).
struct SpecFilterBuilder {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  bool keep_selected;
  Array array(const TreePath& path, const Array& a, const Array& spec) {
    bool selected = false;
    if (spec.has_value()) {
      if (spec.dtype() != bool_ || spec.ndim() != 0)
        throw DTypeError("eqx::filter: the filter_spec leaf at " + path.display() + " is " + std::string(short_name(spec.dtype())) + spec.shape().str() +
                         "; a filter_spec holds eqx::array(true) or eqx::array(false) (or None) at each leaf");
      if (spec.is_abstract())
        throw ConcretizationError("eqx::filter: the filter_spec leaf at " + path.display() +
                                  " is traced; build the filter_spec outside the jitted function, or close over it");
      selected = spec.item<bool>();
    }
    return a.has_value() && selected == keep_selected ? a : Array{};
  }
};

/// Picks the first non-empty Array among corresponding leaves.
struct Combiner {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  template <class... Others>
  Array array(const TreePath&, const Array& a, const Others&... others) {
    if (a.has_value()) return a;
    Array out;
    ((out = out.has_value() || !others.has_value() ? out : others), ...);
    return out;
  }
};

}  // namespace detail

/// `tree` with the Array leaves for which `pred` is false made empty (None);
/// with `inverse`, those for which it is true.
/// Usage: `auto params = eqx::filter(model, eqx::is_inexact_array);`
template <class T, class Pred>
  requires(!std::is_same_v<std::remove_cvref_t<Pred>, T>)
T filter(const T& tree, Pred&& pred, bool inverse = false) {
  detail::FilterBuilder<std::remove_reference_t<Pred>> b{pred, !inverse};
  TreePath path;
  return detail::rebuild_tree(b, path, tree);
}

/// {filter(tree, pred), filter(tree, pred, inverse=true)}: the selected
/// Arrays and the rest, two trees of T's type.
/// Usage: `auto [params, rest] = eqx::partition(model, eqx::is_inexact_array);`
template <class T, class Pred>
  requires(!std::is_same_v<std::remove_cvref_t<Pred>, T>)
std::pair<T, T> partition(const T& tree, Pred&& pred) {
  return {filter(tree, pred), filter(tree, pred, true)};
}

/// `tree` keeping the Arrays whose leaf in `filter_spec` (a tree of T's type
/// with eqx::array(true) / eqx::array(false) or None at each leaf) is true;
/// with `inverse`, the others. Equinox's filter(tree, filter_spec).
/// Usage: `auto trainable = eqx::filter(model, filter_spec);`
template <class T>
T filter(const T& tree, const T& filter_spec, bool inverse = false) {
  detail::SpecFilterBuilder b{!inverse};
  TreePath path;
  return detail::rebuild_tree(b, path, tree, filter_spec);
}

/// {filter(tree, filter_spec), filter(tree, filter_spec, inverse=true)}.
/// Usage: `auto [diff_model, static_model] = eqx::partition(model, filter_spec);`
template <class T>
std::pair<T, T> partition(const T& tree, const T& filter_spec) {
  return {filter(tree, filter_spec), filter(tree, filter_spec, true)};
}

/// Merges trees of one structure: each Array leaf is the first non-empty one
/// among the trees (static leaves come from the first). Inverse of partition.
/// Usage: `Model model = eqx::combine(params, rest);`
template <class T, class... Rest>
T combine(const T& first, const Rest&... rest) {
  static_assert((std::is_same_v<T, Rest> && ...), "eqx::combine: all trees must have the same C++ type");
  detail::Combiner c;
  TreePath path;
  return detail::rebuild_tree(c, path, first, rest...);
}

}  // namespace eqx
