#pragma once
// The two traversals every tree function is built from:
//
//   visit_tree(visitor, path, tree, others...)    read-only, in leaf order
//   rebuild_tree(builder, path, tree, others...)  a new tree of the same type
//
// Both walk one tree, or several of the same type in lockstep (tree_map,
// combine, TreeDef equality), checking that their structures agree: vector
// sizes, optional presence and map keys. Leaf order is depth-first: struct
// fields in declaration order, containers in index order, maps in key order.
//
// Most visitors and builders look only at Array leaves (collect them, replace
// them, check their dtypes) and leave static leaves alone. Walking a tree
// with one of those goes through one adapter type that calls it through a
// function pointer (LeafVisitorRef, LeafBuilderRef<N>): a model type then
// costs the compiler one walk for all of them instead of one per visitor
// type (with the code around them, a quarter of the compiled code of the
// README's example).

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include <boost/pfr/core.hpp>

#include "eqx/core/config.hpp"
#include "eqx/core/error.hpp"
#include "eqx/tree/node.hpp"
#include "eqx/tree/path.hpp"

namespace eqx {

/// Two trees that should have the same structure do not.
class TreeStructureError : public ValueError {
 public:
  using ValueError::ValueError;
};

namespace detail {

/// Calls f(std::integral_constant<std::size_t, I>{}) for I in [0, N) while it
/// returns true. (Index packs go through here so that expanding a pack of
/// trees inside the body does not also expand the indices.)
template <std::size_t N, class F>
bool all_indices(F&& f) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return (f(std::integral_constant<std::size_t, I>{}) && ...);
  }(std::make_index_sequence<N>{});
}

/// Brace-initialises a T from f(integral_constant<I>) for I in [0, N), in order.
template <class T, std::size_t N, class F>
T build_from_indices(F&& f) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return T{f(std::integral_constant<std::size_t, I>{})...};
  }(std::make_index_sequence<N>{});
}

/// Field names of a custom node, if its tree_traits gives them.
template <class T>
concept named_custom_node = requires { tree_traits<T>::names; };

/// The children of a custom node as values: flatten may return references
/// (`std::tie`), which unflatten receives as the values they refer to.
template <class Tuple>
struct decayed_tuple;
template <class... X>
struct decayed_tuple<std::tuple<X...>> {
  using type = std::tuple<std::remove_cvref_t<X>...>;
};
template <class T>
using custom_children_t = typename decayed_tuple<decltype(tree_traits<T>::flatten(std::declval<const T&>()))>::type;

template <class T, std::size_t I>
void push_custom_entry(TreePath& path) {
  if constexpr (named_custom_node<T>) path.push_field(tree_traits<T>::names[I]);
  else path.push_index(static_cast<std::int64_t>(I));
}

/// Visitors may observe container sizes and map keys (hashing does).
template <class V>
void note_size(V& v, std::size_t n) {
  if constexpr (requires { v.size(n); }) v.size(n);
}
template <class V>
void note_key(V& v, const std::string& k) {
  if constexpr (requires { v.key(k); }) v.key(k);
}

/// "lists of different lengths (n vs m)", m the first of `others` that is not n.
EQX_KERNEL_INLINE std::string lengths_differ(std::size_t n, std::initializer_list<std::size_t> others);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE std::string lengths_differ(std::size_t n, std::initializer_list<std::size_t> others) {
  std::size_t other = n;
  for (std::size_t m : others)
    if (other == n) other = m;
  return "lists of different lengths (" + std::to_string(n) + " vs " + std::to_string(other) + ")";
}
#endif

template <class V>
bool report_mismatch(V& v, const TreePath& path, const std::string& what) {
  return v.mismatch(path, what);
}

/// Read-only lockstep traversal. The visitor provides:
///   bool array(const TreePath&, const Array&...)
///   template <class X> bool static_leaf(const TreePath&, const X&...)   (Static<T> fields too)
///   bool mismatch(const TreePath&, const std::string& what)   (return false to stop, or throw)
/// and, optionally, for a single tree, `bool node(const TreePath&, const X&)`
/// for the node types X it accepts, called before X's children.
/// Every call returns false to stop the walk early.
/// A visitor with `using array_leaves_only = void;` is walked through
/// LeafVisitorRef (one walk per tree type for all such visitors).
template <class V, class T, class... Rest>
bool visit_tree(V& v, TreePath& path, const T& node, const Rest&... rest);

template <class V, class T, class... Rest>
bool visit_node(V& v, TreePath& path, const T& node, const Rest&... rest) {
  require_pytree_node<T>();
  constexpr NodeKind kind = node_kind_v<T>;
  if constexpr (sizeof...(Rest) == 0 && requires { v.node(path, node); }) {
    if (!v.node(path, node)) return false;  // a visitor's hook for this node type, before its children
  }
  if constexpr (kind == NodeKind::array) {
    return v.array(path, node, rest...);
  } else if constexpr (kind == NodeKind::static_field || kind == NodeKind::static_leaf) {
    return v.static_leaf(path, node, rest...);
  } else if constexpr (kind == NodeKind::custom) {
    auto children = tree_traits<T>::flatten(node);
    auto others = std::make_tuple(tree_traits<T>::flatten(rest)...);
    return all_indices<std::tuple_size_v<decltype(children)>>([&](auto ic) {
      constexpr std::size_t I = decltype(ic)::value;
      push_custom_entry<T, I>(path);
      bool r = std::apply([&](const auto&... o) { return visit_tree(v, path, std::get<I>(children), std::get<I>(o)...); },
                          others);
      path.pop();
      return r;
    });
  } else if constexpr (kind == NodeKind::vector) {
    note_size(v, node.size());
    if (((rest.size() != node.size()) || ...))
      return report_mismatch(v, path, lengths_differ(node.size(), {rest.size()...}));
    for (std::size_t i = 0; i < node.size(); ++i) {
      path.push_index(static_cast<std::int64_t>(i));
      bool ok = visit_tree(v, path, node[i], rest[i]...);
      path.pop();
      if (!ok) return false;
    }
    return true;
  } else if constexpr (kind == NodeKind::std_array) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      path.push_index(static_cast<std::int64_t>(i));
      bool ok = visit_tree(v, path, node[i], rest[i]...);
      path.pop();
      if (!ok) return false;
    }
    return true;
  } else if constexpr (kind == NodeKind::tuple) {
    return all_indices<std::tuple_size_v<T>>([&](auto ic) {
      constexpr std::size_t I = decltype(ic)::value;
      path.push_index(static_cast<std::int64_t>(I));
      bool r = visit_tree(v, path, std::get<I>(node), std::get<I>(rest)...);
      path.pop();
      return r;
    });
  } else if constexpr (kind == NodeKind::optional) {
    note_size(v, node.has_value() ? 1 : 0);
    if (((rest.has_value() != node.has_value()) || ...))
      return report_mismatch(v, path, "an empty optional where the other tree has a value");
    return !node.has_value() || visit_tree(v, path, *node, *rest...);
  } else if constexpr (kind == NodeKind::string_map) {
    note_size(v, node.size());
    bool same_keys = ((rest.size() == node.size()) && ...);
    auto its = std::make_tuple(rest.begin()...);
    for (auto it = node.begin(); same_keys && it != node.end(); ++it) {
      bool ok = std::apply([&](auto&... o) { return ((o->first == it->first) && ...); }, its);
      if (!ok) {
        same_keys = false;
        break;
      }
      note_key(v, it->first);
      path.push_key(it->first);
      bool r = std::apply([&](auto&... o) { return visit_tree(v, path, it->second, o->second...); }, its);
      path.pop();
      if (!r) return false;
      std::apply([](auto&... o) { (++o, ...); }, its);
    }
    if (!same_keys) return report_mismatch(v, path, "maps with different keys");
    return true;
  } else {  // aggregate
    return all_indices<field_count<T>>([&](auto ic) {
      constexpr std::size_t I = decltype(ic)::value;
      path.push_field(field_name<T, I>);
      bool r = visit_tree(v, path, boost::pfr::get<I>(node), boost::pfr::get<I>(rest)...);
      path.pop();
      return r;
    });
  }
}

/// Base of visitors that walk one tree and look only at its Array leaves:
/// static leaves are skipped, and a single tree never mismatches. (Those
/// that also say `using array_leaves_only = void;` are walked through
/// LeafVisitorRef.)
struct ArrayLeafVisitor {
  template <class X>
  bool static_leaf(const TreePath&, const X&) {
    return true;
  }
  bool mismatch(const TreePath&, const std::string&) { return true; }
};

[[noreturn]] EQX_KERNEL_INLINE void throw_mismatch(const TreePath& path, const std::string& what);
#if EQX_KERNELS_HERE(GRAPH)
[[noreturn]] EQX_KERNEL_INLINE void throw_mismatch(const TreePath& path, const std::string& what) {
  throw TreeStructureError("eqx: trees have different structure at " + path.display() + ": " + what +
                           "; the trees must have the same structure (same list lengths, optionals and map keys)");
}
#endif

/// A visitor or builder that touches only Array leaves says so with
///   using array_leaves_only = void;
/// and is then walked through LeafVisitorRef / LeafBuilderRef. Such a visitor
/// derives from ArrayLeafVisitor and adds no static_leaf, node, size or key;
/// such a builder has no static_leaf or node: the erased walk calls only
/// `array` (checks below catch the hooks a probe type can see).
template <class V>
concept array_leaf_visitor = requires { typename V::array_leaves_only; };
template <class B>
concept array_leaf_builder = requires { typename B::array_leaves_only; };

/// A static-leaf type no visitor or builder names, to ask whether one has a
/// static_leaf or node of its own.
struct ErasureProbe {
  bool operator==(const ErasureProbe&) const = default;
};

/// What an array_leaf_visitor must not have: a static_leaf other than
/// ArrayLeafVisitor's (read off the type of &V::static_leaf<ErasureProbe>),
/// or size/key notes.
template <class V>
inline constexpr bool erasable_visitor =
    std::derived_from<V, ArrayLeafVisitor> &&
    requires {
      {
        &V::template static_leaf<ErasureProbe>
      } -> std::same_as<bool (ArrayLeafVisitor::*)(const TreePath&, const ErasureProbe&)>;
    } && !requires(V& v, std::size_t n) { v.size(n); } && !requires(V& v, const std::string& k) { v.key(k); };

template <class B>
inline constexpr bool erasable_builder =
    !requires(B& b, TreePath& path, const ErasureProbe& x) { b.static_leaf(path, x); } &&
    !requires(B& b, TreePath& path, const ErasureProbe& x) { b.node(path, x); };

/// Every array_leaf_visitor, seen through a function pointer: the one visitor
/// type the typed walk is instantiated with for all of them.
struct LeafVisitorRef : ArrayLeafVisitor {
  void* self;
  bool (*call)(void* self, const TreePath& path, const Array& leaf);
  bool array(const TreePath& path, const Array& leaf) { return call(self, path, leaf); }
};

template <class V>
bool call_leaf_visitor(void* self, const TreePath& path, const Array& leaf) {
  return static_cast<V*>(self)->array(path, leaf);
}

template <class V, class T, class... Rest>
bool visit_tree(V& v, TreePath& path, const T& node, const Rest&... rest) {
  if constexpr (sizeof...(Rest) == 0 && array_leaf_visitor<std::remove_const_t<V>>) {
    static_assert(erasable_visitor<std::remove_const_t<V>> && !requires { v.node(path, node); },
                  "eqx: a visitor with array_leaves_only derives from ArrayLeafVisitor and has no static_leaf, node, "
                  "size or key of its own (the walk through LeafVisitorRef would not call them)");
    LeafVisitorRef ref{{}, const_cast<void*>(static_cast<const void*>(&v)), &call_leaf_visitor<V>};
    return visit_node(ref, path, node);
  } else {
    return visit_node(v, path, node, rest...);
  }
}

/// Every array_leaf_builder of N trees in lockstep, seen through a function
/// pointer: the one builder type the typed walk is instantiated with for all
/// of them. It has no static_leaf, so static leaves come from the first tree.
template <std::size_t N>
struct LeafBuilderRef {
  void* self;
  Array (*call)(void* self, const TreePath& path, const Array* const* leaves);
  template <class... Leaves>
  Array array(const TreePath& path, const Leaves&... leaves) {
    const Array* ptrs[] = {&leaves...};
    return call(self, path, ptrs);
  }
};

template <class B, std::size_t N>
Array call_leaf_builder(void* self, const TreePath& path, const Array* const* leaves) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return static_cast<B*>(self)->array(path, *leaves[I]...);
  }(std::make_index_sequence<N>{});
}

/// Builds a new tree of type T by walking `node` and `rest` in lockstep.
/// The builder provides:
///   Array array(const TreePath&, const Array&...)
///   template <class X> X static_leaf(const TreePath&, const X&...)   (Static<T> fields too;
///       without it, static leaves are copied from `node`)
/// and, optionally, for a single tree, `X node(const TreePath&, X rebuilt)`
/// for the node types X it accepts, called on each such node after its
/// children were rebuilt (so it may replace the node).
/// Structure mismatches throw TreeStructureError naming the path.
template <class B, class T, class... Rest>
T rebuild_tree(B& b, TreePath& path, const T& node, const Rest&... rest) {
  if constexpr (array_leaf_builder<std::remove_const_t<B>> && (std::is_same_v<T, Rest> && ...)) {
    static_assert(erasable_builder<std::remove_const_t<B>> && !requires { b.node(path, node); },
                  "eqx: a builder with array_leaves_only has no static_leaf or node of its own (the walk through "
                  "LeafBuilderRef would not call them)");
    constexpr std::size_t n = 1 + sizeof...(Rest);
    LeafBuilderRef<n> ref{const_cast<void*>(static_cast<const void*>(&b)), &call_leaf_builder<B, n>};
    return rebuild_node(ref, path, node, rest...);
  } else if constexpr (sizeof...(Rest) == 0 && requires { b.node(path, node); }) {
    return b.node(path, rebuild_node(b, path, node));
  } else {
    return rebuild_node(b, path, node, rest...);
  }
}

/// rebuild_tree without the node hook at this node (its children get it).
template <class B, class T, class... Rest>
T rebuild_node(B& b, TreePath& path, const T& node, const Rest&... rest) {
  require_pytree_node<T>();
  constexpr NodeKind kind = node_kind_v<T>;
  if constexpr (kind == NodeKind::array) {
    return b.array(path, node, rest...);
  } else if constexpr (kind == NodeKind::static_field || kind == NodeKind::static_leaf) {
    if constexpr (requires { b.static_leaf(path, node, rest...); }) return b.static_leaf(path, node, rest...);
    else return node;
  } else if constexpr (kind == NodeKind::custom) {
    auto children = tree_traits<T>::flatten(node);
    auto others = std::make_tuple(tree_traits<T>::flatten(rest)...);
    using Children = custom_children_t<T>;
    auto rebuilt = build_from_indices<Children, std::tuple_size_v<Children>>([&](auto ic) {
      constexpr std::size_t I = decltype(ic)::value;
      push_custom_entry<T, I>(path);
      auto r = std::apply(
          [&](const auto&... o) { return rebuild_tree(b, path, std::get<I>(children), std::get<I>(o)...); }, others);
      path.pop();
      return r;
    });
    return tree_traits<T>::unflatten(std::move(rebuilt));
  } else if constexpr (kind == NodeKind::vector) {
    if (((rest.size() != node.size()) || ...)) throw_mismatch(path, lengths_differ(node.size(), {rest.size()...}));
    T out;
    out.reserve(node.size());
    for (std::size_t i = 0; i < node.size(); ++i) {
      path.push_index(static_cast<std::int64_t>(i));
      out.push_back(rebuild_tree(b, path, node[i], rest[i]...));
      path.pop();
    }
    return out;
  } else if constexpr (kind == NodeKind::std_array) {
    return build_from_indices<T, std::tuple_size_v<T>>([&](auto ic) {
      constexpr std::size_t I = decltype(ic)::value;
      path.push_index(static_cast<std::int64_t>(I));
      auto r = rebuild_tree(b, path, node[I], rest[I]...);
      path.pop();
      return r;
    });
  } else if constexpr (kind == NodeKind::tuple) {
    return build_from_indices<T, std::tuple_size_v<T>>([&](auto ic) {
      constexpr std::size_t I = decltype(ic)::value;
      path.push_index(static_cast<std::int64_t>(I));
      auto r = rebuild_tree(b, path, std::get<I>(node), std::get<I>(rest)...);
      path.pop();
      return r;
    });
  } else if constexpr (kind == NodeKind::optional) {
    if (((rest.has_value() != node.has_value()) || ...))
      throw_mismatch(path, "an empty optional where the other tree has a value");
    if (!node.has_value()) return T{};
    return T{rebuild_tree(b, path, *node, *rest...)};
  } else if constexpr (kind == NodeKind::string_map) {
    if (((rest.size() != node.size()) || ...)) throw_mismatch(path, "maps with different keys");
    T out;
    auto its = std::make_tuple(rest.begin()...);
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!std::apply([&](auto&... o) { return ((o->first == it->first) && ...); }, its))
        throw_mismatch(path, "maps with different keys");
      path.push_key(it->first);
      out.emplace_hint(out.end(), it->first,
                       std::apply([&](auto&... o) { return rebuild_tree(b, path, it->second, o->second...); }, its));
      path.pop();
      std::apply([](auto&... o) { (++o, ...); }, its);
    }
    return out;
  } else {  // aggregate: brace-initialise from the rebuilt fields, in order
    return build_from_indices<T, field_count<T>>([&](auto ic) {
      constexpr std::size_t I = decltype(ic)::value;
      path.push_field(field_name<T, I>);
      auto r = rebuild_tree(b, path, boost::pfr::get<I>(node), boost::pfr::get<I>(rest)...);
      path.pop();
      return r;
    });
  }
}

}  // namespace detail
}  // namespace eqx
