#pragma once
// DType: the element type of an Array, its names, sizes and promotion rules.
//
// Promotion follows JAX with 64-bit integers disabled (the lattice
// bool < {u32, i32} < f32 < f64, with u32 v i32 = i32). C++ scalars mixed
// with Arrays are "weakly typed": they adopt the Array's dtype where it can
// hold them (see `result_type_with_scalar`), so `x * 2.0` keeps a float32 x
// float32. No implicit float64 upcast of a float32 Array ever happens.

#include <cstddef>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

#include "eqx/core/error.hpp"

namespace eqx {

/// Element type of an Array. Compare with `eqx::float32` etc.
/// Usage: `if (x.dtype() == eqx::float32) ...`
enum class DType : std::uint8_t { float32, float64, int32, uint32, bool_ };

inline constexpr DType float32 = DType::float32;
inline constexpr DType float64 = DType::float64;
inline constexpr DType int32 = DType::int32;
inline constexpr DType uint32 = DType::uint32;
inline constexpr DType bool_ = DType::bool_;

/// Short name as JAX prints it in shapes: "f32", "f64", "i32", "u32", "bool".
constexpr std::string_view short_name(DType d) {
  switch (d) {
    case DType::float32: return "f32";
    case DType::float64: return "f64";
    case DType::int32: return "i32";
    case DType::uint32: return "u32";
    case DType::bool_: return "bool";
  }
  return "?";
}

/// Full numpy name: "float32", "float64", "int32", "uint32", "bool".
constexpr std::string_view dtype_name(DType d) {
  switch (d) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::int32: return "int32";
    case DType::uint32: return "uint32";
    case DType::bool_: return "bool";
  }
  return "?";
}

/// Bytes per element.
constexpr std::size_t itemsize(DType d) {
  switch (d) {
    case DType::float32: return 4;
    case DType::float64: return 8;
    case DType::int32: return 4;
    case DType::uint32: return 4;
    case DType::bool_: return 1;
  }
  return 0;
}

constexpr bool is_floating(DType d) { return d == DType::float32 || d == DType::float64; }
constexpr bool is_integer(DType d) { return d == DType::int32 || d == DType::uint32; }

/// The DType that stores C++ type T (float, double, int32_t, uint32_t, bool).
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::float32;
  else if constexpr (std::is_same_v<T, double>) return DType::float64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return DType::int32;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return DType::uint32;
  else if constexpr (std::is_same_v<T, bool>) return DType::bool_;
  else static_assert(!sizeof(T), "eqx: no DType stores this C++ type; use float, double, int32_t, uint32_t or bool");
}

/// C++ types that are an Array element type.
template <class T>
concept Element = std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, std::int32_t> ||
                  std::is_same_v<T, std::uint32_t> || std::is_same_v<T, bool>;

namespace detail {
/// `v` as a To, without undefined behaviour: float -> integer truncates
/// toward zero and saturates at the integer range, NaN -> 0; anything ->
/// bool is `v != 0`.
template <class To, class From>
To convert_value(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    if (std::isnan(v)) return To(0);
    constexpr auto lo = static_cast<From>(std::numeric_limits<To>::min());
    constexpr auto hi = static_cast<From>(std::numeric_limits<To>::max());
    if (v <= lo) return std::numeric_limits<To>::min();
    if (v >= hi) return std::numeric_limits<To>::max();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}
}  // namespace detail

/// Calls `f(T{})` with the C++ type of `d`. Runtime dispatch keeps kernels
/// instantiated once per dtype instead of once per call site.
template <class F>
decltype(auto) visit_dtype(DType d, F&& f) {
  switch (d) {
    case DType::float32: return f(float{});
    case DType::float64: return f(double{});
    case DType::int32: return f(std::int32_t{});
    case DType::uint32: return f(std::uint32_t{});
    case DType::bool_: return f(bool{});
  }
  throw DTypeError("eqx: corrupt DType value");
}

/// Type promotion of two Array dtypes (table in README.md, "Dtypes").
/// Usage: `promote_types(eqx::int32, eqx::float32) == eqx::float32`
constexpr DType promote_types(DType a, DType b) {
  if (a == b) return a;
  if (a == DType::float64 || b == DType::float64) return DType::float64;
  if (a == DType::float32 || b == DType::float32) return DType::float32;
  if (a == DType::int32 || b == DType::int32) return DType::int32;  // i32 v u32, i32 v bool
  return DType::uint32;                                              // u32 v bool
}

/// What a C++ scalar mixed into an operation looks like to promotion.
enum class ScalarKind : std::uint8_t { boolean, integer, floating };

template <class S>
constexpr ScalarKind scalar_kind() {
  if constexpr (std::is_same_v<S, bool>) return ScalarKind::boolean;
  else if constexpr (std::is_integral_v<S>) return ScalarKind::integer;
  else return ScalarKind::floating;
}

/// Dtype of `array op scalar`: the Array's dtype unless it cannot represent
/// the scalar's kind (int Array * 2.5 -> float32; bool Array + 1 -> int32).
constexpr DType result_type_with_scalar(DType array, ScalarKind s) {
  switch (s) {
    case ScalarKind::boolean: return array;
    case ScalarKind::integer: return array == DType::bool_ ? DType::int32 : array;
    case ScalarKind::floating: return is_floating(array) ? array : DType::float32;
  }
  return array;
}

}  // namespace eqx
