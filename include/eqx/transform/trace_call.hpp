#pragma once
// Tracing one call of a function on pytree arguments: the shared first step
// of every filtered transformation. Array leaves of the arguments (and of the
// function itself, when it is a pytree such as a callable module) become
// graph inputs, in leaf order; every other leaf is passed through as is.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/ir/graph.hpp"
#include "eqx/ir/trace.hpp"
#include "eqx/tree/flatten.hpp"
#include "eqx/tree/pformat.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx::detail {

/// True if F is itself a pytree node with leaves (a callable module), so its
/// Array fields are inputs rather than baked-in constants.
template <class F>
inline constexpr bool tree_callable =
    node_kind_v<F> == NodeKind::aggregate || node_kind_v<F> == NodeKind::custom;

/// What f returns when called with const lvalues of Args.
template <class F, class... Args>
using call_result_t = std::remove_cvref_t<std::invoke_result_t<const F&, const Args&...>>;

/// Replaces every Array leaf with a new input of the active trace: of the
/// leaf's own type, or of the next of `types` when they are given (vmap
/// traces on per-example types).
struct TraceInputBuilder {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  TraceScope& scope;
  std::span<const AbstractArray> types = {};
  std::size_t next = 0;
  Array array(const TreePath&, const Array& a) {
    if (!a.has_value()) return Array{};
    return scope.input(types.empty() ? AbstractArray{a.shape(), a.dtype()} : types[next++]);
  }
};

/// One argument with its Array leaves replaced by trace inputs (made by
/// `builder`, a TraceInputBuilder or the like); leaf paths start with the
/// argument's position, `[i]`.
template <class Builder, class T>
T trace_argument(Builder& builder, TreePath& path, std::size_t i, const T& x) {
  path.push_index(static_cast<std::int64_t>(i));
  T traced = rebuild_tree(builder, path, x);
  path.pop();
  return traced;
}

/// Each argument with its Array leaves replaced by trace inputs (leaf paths
/// `[i]...`), in argument order.
template <class Builder, class... Args>
std::tuple<Args...> trace_arguments(Builder& builder, const Args&... args) {
  TreePath path;
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return std::tuple<Args...>{trace_argument(builder, path, I, args)...};  // braces: left to right
  }(std::index_sequence_for<Args...>{});
}

/// The Array leaves of f (when it is a pytree) and of each argument, in the
/// order trace_call makes them graph inputs; `first_arg` (if given) gets the
/// index range of the first argument's leaves.
template <class F, class... Args>
std::vector<Array> call_leaves(std::pair<std::size_t, std::size_t>* first_arg, const F& f, const Args&... args) {
  std::vector<Array> out;
  if constexpr (tree_callable<F>) out = tree_leaves(f);
  std::size_t index = 0;
  (
      [&] {
        auto l = tree_leaves(args);
        if (index++ == 0 && first_arg) *first_arg = {out.size(), out.size() + l.size()};
        out.insert(out.end(), l.begin(), l.end());
      }(),
      ...);
  return out;
}

/// A traced call: the graph, and the output with abstract Array leaves.
template <class R>
struct TracedCall {
  Graph graph;
  R output;
};

/// Traces `f(args...)`. Graph inputs are the Array leaves of f (when it is a
/// pytree) and then of each argument, depth-first; `leaf_types`, if not
/// empty, gives their types in that order instead of the leaves' own.
template <class F, class... Args>
TracedCall<call_result_t<F, Args...>> trace_call_with(TraceOptions options, std::span<const AbstractArray> leaf_types,
                                                      const F& f, const Args&... args) {
  using R = call_result_t<F, Args...>;
  static_assert(!std::is_void_v<R>, "eqx: a transformed function must return a value (an Array or a pytree)");
  require_pytree_node<R>();
  TraceScope scope(options);
  TraceInputBuilder builder{scope, leaf_types};
  TreePath path;
  auto call = [&](const auto& fn) {
    return std::apply([&](const auto&... a) -> R { return std::invoke(fn, a...); }, trace_arguments(builder, args...));
  };
  R out = [&] {
    if constexpr (tree_callable<F>) {
      path.push_field("self");
      F traced_f = rebuild_tree(builder, path, f);
      path.pop();
      return call(traced_f);
    } else {
      return call(f);
    }
  }();
  std::vector<Array> leaves = tree_leaves(out);
  Graph g = scope.finish(leaves);
  return {std::move(g), std::move(out)};
}

template <class F, class... Args>
TracedCall<call_result_t<F, Args...>> trace_call_as(std::span<const AbstractArray> leaf_types, const F& f,
                                                    const Args&... args) {
  return trace_call_with<F, Args...>({}, leaf_types, f, args...);
}

template <class F, class... Args>
TracedCall<call_result_t<F, Args...>> trace_call(const F& f, const Args&... args) {
  return trace_call_with<F, Args...>({}, {}, f, args...);
}

/// Checks a tree against the example a function was traced with, walking it
/// in lockstep with the example's skeleton (SkeletonBuilder: `present` says
/// which Array slots held an Array) and collecting its Array leaves: the
/// same structure, Arrays where the example had them, equal static leaves,
/// and, when `types` is given, each Array's dtype and shape. Errors name the
/// leaf as `who` + its path, and end with `fix`.
struct ExampleChecker {
  std::string who, fix;
  const std::vector<bool>& present;
  std::span<const AbstractArray> types;
  std::vector<Array>& leaves;
  std::size_t slot = 0;

  std::string where(const TreePath& path) const { return who + " " + path.display(); }
  bool array(const TreePath& path, const Array& live, const Array&) {
    const bool example_has = present[slot++];
    if (live.has_value() != example_has)
      throw ValueError(where(path) + " is " + (live.has_value() ? "an Array" : "None (an empty Array)") +
                       ", the example has " + (example_has ? "an Array" : "None") + " there; " + fix);
    if (!live.has_value()) return true;
    if (!types.empty()) {
      const AbstractArray& want = types[leaves.size()];
      const std::string got = AbstractArray{live.shape(), live.dtype()}.str();
      if (live.dtype() != want.dtype)
        throw DTypeError(where(path) + " is " + got + ", the example is " + want.str() + " (dtype " +
                         std::string(dtype_name(live.dtype())) + " instead of " + std::string(dtype_name(want.dtype)) +
                         "); cast it with eqx::astype, or " + fix);
      if (live.shape() != want.shape)
        throw ShapeError(where(path) + " is " + got + ", the example is " + want.str() + " (shape " +
                         live.shape().str() + " instead of " + want.shape.str() + "); " + fix);
    }
    leaves.push_back(live);
    return true;
  }
  template <class X>
  bool static_leaf(const TreePath& path, const X& live, const X& example) {
    if (StructureComparer{}.static_leaf(path, live, example)) return true;
    std::string got, want;
    tree_doc_static(live).render_flat(got);
    tree_doc_static(example).render_flat(want);
    throw ValueError(where(path) + " is the static value " + got + ", the example has " + want + "; " + fix);
  }
  bool mismatch(const TreePath& path, const std::string& what) {
    throw ValueError(where(path) + " is structured unlike the example (" + what + "); " + fix);
  }
};

/// Turns the values a traced body captured from enclosing traces (tracers
/// that became constants of `g`) into extra inputs, appended to `args`, so a
/// primitive holding `g` depends on them explicitly: they are then inputs
/// of its equation in the enclosing trace, and get cotangents.
inline void lift_captured_tracers(Graph& g, std::vector<Array>& args) {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < g.consts.size(); ++i) {
    if (g.consts[i].is_abstract()) {
      g.inputs.push_back(g.constvars[i]);
      args.push_back(std::move(g.consts[i]));
    } else {
      g.constvars[kept] = g.constvars[i];
      g.consts[kept++] = std::move(g.consts[i]);
    }
  }
  g.constvars.resize(kept);
  g.consts.resize(kept);
}

}  // namespace eqx::detail
