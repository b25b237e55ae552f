#pragma once
// Compile-time reflection of aggregates: field count, field references and
// field names, built on Boost.PFR.
//
// Boost 1.81's PFR has no field names, so they are read at compile time from
// the compiler's pretty-printed name of a template instantiated on a pointer
// to the field of an (never defined) object of the type, the technique later
// PFR versions use. Tested on GCC 12 and Clang 14.

#include <array>
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>

#include <boost/pfr/core.hpp>

namespace eqx::detail {

/// Converts to any base class of T, never to a member type: T{any_base<T>{}}
/// compiles only if T's first aggregate element is a base class.
template <class T>
struct any_base {
  template <class B>
    requires(std::is_base_of_v<B, T> && !std::is_same_v<B, T>)
  operator B() const;  // NOLINT: declaration only, used in unevaluated context
};

template <class T>
concept has_aggregate_base = requires { T{any_base<T>{}}; };

/// A struct eqx can reflect: a class aggregate without bases, unions or
/// virtual functions (the aggregates Boost.PFR supports).
template <class T>
concept reflectable_aggregate = std::is_class_v<T> && std::is_aggregate_v<T> && !std::is_union_v<T> &&
                                !std::is_polymorphic_v<T> && !has_aggregate_base<T>;

template <class T>
inline constexpr std::size_t field_count = boost::pfr::tuple_size_v<T>;

// --- names ---------------------------------------------------------------

template <class T>
struct fake_object_wrapper {
  const T value;
};

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wundefined-var-template"
#pragma clang diagnostic ignored "-Wundefined-internal"
#endif
/// Never defined: only the addresses of its fields are used, at compile time.
template <class T>
extern const fake_object_wrapper<T> fake_object;

template <class P>
struct pointer_holder {
  P pointer;
};
template <class P>
pointer_holder(P) -> pointer_holder<P>;

template <class T, std::size_t I>
consteval auto field_pointer() {
  return pointer_holder{
      &boost::pfr::detail::sequence_tuple::get<I>(boost::pfr::detail::tie_as_tuple(fake_object<T>.value))};
}
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

constexpr bool is_identifier_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/// The identifier right before the closing brace of the pointer holder in
/// the pretty function name: GCC prints "...value.Linear::weight)}; ...]",
/// Clang "...value.weight}]". (Searched from the end: type names such as
/// "{anonymous}::Linear" contain braces too.)
template <auto Holder>
consteval std::string_view pointer_name() {
  std::string_view s = __PRETTY_FUNCTION__;
  std::size_t end = s.size();
  while (end > 0 && !(s[end - 1] == '}' && end < s.size() && (s[end] == ';' || s[end] == ']'))) --end;
  if (end > 0) --end;  // at the closing brace
  while (end > 0 && !is_identifier_char(s[end - 1])) --end;
  std::size_t begin = end;
  while (begin > 0 && is_identifier_char(s[begin - 1])) --begin;
  return s.substr(begin, end - begin);
}

/// Name of field I of aggregate T, e.g. "weight".
template <class T, std::size_t I>
inline constexpr std::string_view field_name = pointer_name<field_pointer<T, I>()>();

template <class T, std::size_t... I>
constexpr std::array<std::string_view, sizeof...(I)> field_names_impl(std::index_sequence<I...>) {
  return {field_name<T, I>...};
}

/// Names of all fields of aggregate T, in declaration order.
template <class T>
inline constexpr auto field_names = field_names_impl<T>(std::make_index_sequence<field_count<T>>{});

// --- type names ----------------------------------------------------------

template <class T>
consteval std::string_view raw_type_name() {
  std::string_view s = __PRETTY_FUNCTION__;
  std::size_t begin = s.find("T = ") + 4;
  std::size_t end = s.find_first_of(";]", begin);
  return s.substr(begin, end - begin);
}

/// Unqualified name of T as Equinox prints classes: "Linear" for
/// `nn::Linear`, "Model<float>" for `ns::Model<float>`.
template <class T>
consteval std::string_view type_name() {
  std::string_view s = raw_type_name<T>();
  // Drop namespace and class qualifiers that are outside template brackets.
  std::size_t start = 0;
  int depth = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') ++depth;
    else if (s[i] == '>') --depth;
    else if (depth == 0 && s[i] == ':' && i + 1 < s.size() && s[i + 1] == ':') start = i + 2;
  }
  return s.substr(start);
}

/// T's name without its template arguments, as Equinox prints a class
/// (`type(x).__name__`): "Sequential" for `nn::Sequential<nn::Linear, ...>`.
template <class T>
consteval std::string_view class_name() {
  std::string_view s = type_name<T>();
  return s.substr(0, s.find('<'));
}

}  // namespace eqx::detail
