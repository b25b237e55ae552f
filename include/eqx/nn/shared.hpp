#pragma once
// nn::Shared (Equinox's eqx.nn.Shared): ties nodes of a pytree together,
// e.g. a language model's embedding table and its readout Linear's weight.
//
// A model is a tree, so the same weight held in two places is two copies
// that train apart. Shared stores the tree once with the tied node(s) at
// `where` replaced by empty Arrays (the placeholders, Equinox's SharedNode),
// and calling it puts `get(pytree)` back in their place with eqx::tree_at.
// The node is stored once, serialised once, and its gradient is the sum of
// the gradients of all its uses.
//
// `where` and `get` are captureless lambdas (converted to function
// pointers: static leaves, printed as <function>):
//
//   using Pair = std::pair<eqx::nn::Embedding, eqx::nn::Linear>;
//   auto shared = eqx::nn::Shared<Pair>::init(
//       Pair{embedding, readout},
//       [](Pair& p) -> eqx::Array& { return p.second.weight; },    // where: the tied copy
//       [](const Pair& p) { return p.first.weight; });             // get: what fills it
//   auto [embedding2, readout2] = shared();                         // both hold one weight
//
// `Node` is the type of what `where` picks: an Array (the default), a
// sub-module, or std::tuple<A, B, ...> when `where` returns std::tie(...)
// of several parts (and `get` a std::tuple of their values).

#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/tree/at.hpp"
#include "eqx/tree/flatten.hpp"
#include "eqx/tree/map.hpp"
#include "eqx/tree/node.hpp"
#include "eqx/tree/pformat.hpp"

namespace eqx::nn {

namespace detail {

/// What `where` returns for a Node: Node&, or std::tuple<Parts&...> for a
/// std::tuple<Parts...> of several parts.
template <class Node>
struct shared_where_result {
  using type = Node&;
};
template <class... Parts>
struct shared_where_result<std::tuple<Parts...>> {
  using type = std::tuple<Parts&...>;
};

/// `node` with every Array emptied: the placeholder left where a tied node was.
template <class Node>
Node shared_placeholder(const Node& node) {
  return tree_map([](const Array&) { return Array{}; }, node);
}

/// True if a and b have one tree structure and Arrays of equal shapes and dtypes.
template <class Node>
bool same_structure_and_shapes(const Node& a, const Node& b) {
  auto [la, da] = tree_flatten(a);
  auto [lb, db] = tree_flatten(b);
  if (!(da == db)) return false;
  for (std::size_t i = 0; i < la.size(); ++i)
    if (la[i].shape() != lb[i].shape() || la[i].dtype() != lb[i].dtype()) return false;
  return true;
}

}  // namespace detail

/// Ties the node(s) `where` picks in a pytree to `get(pytree)` (eqx.nn.Shared).
template <class T, class Node = Array>
struct Shared {
  /// Picks the tied node(s) in a tree: `[](T& t) -> eqx::Array& { return t.x; }`.
  using Where = typename detail::shared_where_result<Node>::type (*)(T&);
  /// Computes what fills them: `[](const T& t) { return t.y; }`.
  using Get = Node (*)(const T&);

  T pytree;   ///< the tree, with empty placeholders at `where`
  Where where;
  Get get;

  /// Ties `where(pytree)` to `get(pytree)`; they must have the same structure,
  /// shapes and dtypes. Usage: see the file comment.
  static Shared init(T pytree, Where where, Get get) {
    if (where == nullptr || get == nullptr)
      throw ValueError("eqx::nn::Shared: expected `where` and `get` functions but got nullptr");
    T probe = pytree;
    const Node picked = where(probe);
    const Node source = get(pytree);
    if (!detail::same_structure_and_shapes(picked, source))
      throw ValueError("eqx::nn::Shared: expected every tied node to have the same structure, shapes and dtypes, but "
                       "get(pytree) gives " + tree_pformat(source) + " and where(pytree) picks " +
                       tree_pformat(picked) + "; make `get` return a value like the node(s) `where` picks (e.g. "
                       "transpose the matrix in `get`)");
    T stored = tree_at(where, pytree, detail::shared_placeholder(picked));
    return {std::move(stored), where, get};
  }

  /// The tree with get(pytree) placed at where(pytree).
  /// Usage: `auto [embedding, readout] = shared();`
  T operator()() const { return tree_at(where, pytree, get(pytree)); }
};

}  // namespace eqx::nn
