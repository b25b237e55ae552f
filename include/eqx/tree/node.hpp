#pragma once
// What a pytree is made of: how eqx classifies every C++ type it meets.
//
//   eqx::Array                         a leaf (dynamic: traced, differentiated, batched)
//   eqx::Static<T>                     not a leaf; its value is part of the tree structure
//   eqx::tree_traits<T> specialised    a custom node (JAX's register_pytree_node)
//   std::vector, std::array, std::tuple, std::pair, std::optional,
//   std::map<std::string, T>           containers, traversed
//   aggregates (plain structs)         nodes with named fields, found by reflection
//   anything else comparable with ==   a static leaf (int, double, std::string, enums,
//   or stateless (captureless lambdas)  function pointers, ...): part of the structure
//
// Limitation: a std::array *field* of a struct is not supported (Boost.PFR
// 1.81 counts its elements as separate fields through brace elision,
// boostorg/pfr#169); use std::vector or std::tuple there. A std::array
// that is itself the tree, or inside a container, works.

#include <array>
#include <concepts>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/tree/reflect.hpp"

namespace eqx {

/// A field that is not a pytree leaf (Equinox's `field(static=True)`): it is
/// never traced or differentiated, and it is compared by value as part of
/// the tree structure (a jit cache key). T must have operator== or be empty.
/// Give T a default constructor: Boost.PFR counts the fields of a struct
/// with a member that has none by a much slower search (a model holding a
/// few such fields cost gigabytes of compiler memory).
/// Usage: `struct Conv { eqx::Array weight; eqx::Static<std::vector<int>> stride; };`
template <class T>
struct Static {
  static_assert(std::equality_comparable<T> || std::is_empty_v<T>,
                "eqx::Static<T>: T must have operator== (or be an empty, stateless type): a Static field is "
                "part of the tree structure and of the jit cache key, compared by value");
  T value;

  const T& get() const { return value; }
  T& get() { return value; }
  const T& operator*() const { return value; }
  const T* operator->() const { return &value; }
  friend bool operator==(const Static& a, const Static& b) {
    if constexpr (std::equality_comparable<T>) return a.value == b.value;
    else return true;  // stateless: every value is the same
  }
};

/// Specialise to make a type a pytree node (JAX's register_pytree_node):
///
///   template <> struct eqx::tree_traits<MyType> {
///     static auto flatten(const MyType& x) { return std::tuple{x.a(), x.b()}; }
///     static MyType unflatten(std::tuple<eqx::Array, int> c) { return MyType(std::get<0>(c), std::get<1>(c)); }
///     static constexpr std::array<std::string_view, 2> names{"a", "b"};  // optional: path names
///   };
///
/// The children returned by flatten may be any pytrees. flatten may return
/// references to them (`return std::tie(x.a_, x.b_);`), which saves a copy
/// on every walk; unflatten then receives them as values.
template <class T>
struct tree_traits {};

namespace detail {

template <class T>
struct is_static_field : std::false_type {};
template <class T>
struct is_static_field<Static<T>> : std::true_type {};

template <class T>
struct is_std_vector : std::false_type {};
template <class T, class A>
struct is_std_vector<std::vector<T, A>> : std::true_type {};

template <class T>
struct is_std_array : std::false_type {};
template <class T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};

template <class T>
struct is_tuple_like : std::false_type {};
template <class... T>
struct is_tuple_like<std::tuple<T...>> : std::true_type {};
template <class A, class B>
struct is_tuple_like<std::pair<A, B>> : std::true_type {};

template <class T>
struct is_std_optional : std::false_type {};
template <class T>
struct is_std_optional<std::optional<T>> : std::true_type {};

template <class T>
struct is_string_map : std::false_type {};
template <class T, class C, class A>
struct is_string_map<std::map<std::string, T, C, A>> : std::true_type {};

template <class T>
concept custom_node = requires(const T& x) { tree_traits<T>::flatten(x); };

/// Types that can sit in a tree as static leaves.
template <class T>
concept static_leaf_type = std::equality_comparable<T> || std::is_empty_v<T>;

enum class NodeKind { array, static_field, custom, vector, std_array, tuple, optional, string_map, aggregate, static_leaf, invalid };

template <class T>
consteval NodeKind node_kind() {
  if constexpr (std::is_same_v<T, Array>) return NodeKind::array;
  else if constexpr (is_static_field<T>::value) return NodeKind::static_field;
  else if constexpr (custom_node<T>) return NodeKind::custom;
  else if constexpr (is_std_vector<T>::value) return NodeKind::vector;
  else if constexpr (is_std_array<T>::value) return NodeKind::std_array;
  else if constexpr (is_tuple_like<T>::value) return NodeKind::tuple;
  else if constexpr (is_std_optional<T>::value) return NodeKind::optional;
  else if constexpr (is_string_map<T>::value) return NodeKind::string_map;
  else if constexpr (reflectable_aggregate<T>) return NodeKind::aggregate;
  else if constexpr (static_leaf_type<T> && !std::is_class_v<T>) return NodeKind::static_leaf;
  else if constexpr (static_leaf_type<T> && !std::is_aggregate_v<T>) return NodeKind::static_leaf;
  else return NodeKind::invalid;
}

template <class T>
inline constexpr NodeKind node_kind_v = node_kind<std::remove_cvref_t<T>>();

/// Stops compilation with a message naming T and the reason it is not a pytree.
template <class T>
consteval void require_pytree_node() {
  if constexpr (node_kind_v<T> == NodeKind::invalid) {
    if constexpr (std::is_union_v<T>)
      static_assert(!sizeof(T), "eqx: a union cannot be a pytree node; use a struct or specialise eqx::tree_traits");
    else if constexpr (std::is_polymorphic_v<T>)
      static_assert(!sizeof(T),
                    "eqx: a type with virtual functions cannot be reflected as a pytree; make it a plain aggregate "
                    "or specialise eqx::tree_traits<T>");
    else if constexpr (std::is_aggregate_v<T> && has_aggregate_base<T>)
      static_assert(!sizeof(T),
                    "eqx: an aggregate with a base class cannot be reflected as a pytree; hold the base as a "
                    "field instead, or specialise eqx::tree_traits<T>");
    else
      static_assert(!sizeof(T),
                    "eqx: this type is not a pytree: it is not an aggregate (it has private members or a "
                    "user-declared constructor) and not comparable with == (so it cannot be a static leaf); "
                    "make it a plain struct, specialise eqx::tree_traits<T>, or give it operator==");
  }
}

}  // namespace detail
}  // namespace eqx
