#pragma once
// Operand: an Array or a weakly typed C++ scalar, and the promotion of
// several operands to one dtype (README.md, "Dtypes").

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/config.hpp"
#include "eqx/core/dtype.hpp"
#include "eqx/prim/convert.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx {

/// C++ arithmetic types usable as weakly typed scalars next to Arrays.
template <class S>
concept Scalar = std::is_arithmetic_v<S>;

/// `x` converted to `dtype` (x itself when it already has that dtype).
/// Usage: `eqx::astype(labels, eqx::float32)`
inline Array astype(const Array& x, DType dtype) {
  if (x.has_value() && x.dtype() == dtype) return x;
  return bind1(prim::convert, {x}, Params{}.set("new_dtype", dtype));
}

namespace detail {
/// A weakly typed scalar (`fvalue` when `kind` is floating, else `ivalue`)
/// as a rank-0 Array of `dtype`. Eager code such as `x * 0.99f + 0.1f` makes
/// one per operation, so the last few are kept per thread and handed out
/// again: Arrays are immutable, and reusing one saves allocating its buffer
/// and handle, about 20 ns of an eager op's 150 on 16 floats.
EQX_KERNEL_INLINE Array weak_scalar(DType dtype, ScalarKind kind, double fvalue, std::int64_t ivalue);
}  // namespace detail

/// An argument of the elementwise functions: an Array, or a C++ number that
/// takes the dtype of the Arrays beside it (weakly typed, as in JAX).
/// Usage: `eqx::add(x, 1)` passes x and 1 as Operands.
class Operand {
 public:
  Operand(const Array& a) : array_(a) {}  // NOLINT: implicit by design
  template <Scalar S>
  Operand(S s) : kind_(scalar_kind<S>()), weak_(true) {  // NOLINT: implicit by design
    if constexpr (std::is_floating_point_v<S>) fvalue_ = static_cast<double>(s);
    else ivalue_ = static_cast<std::int64_t>(s);
  }

  bool weak() const { return weak_; }
  ScalarKind kind() const { return kind_; }
  const Array& array() const { return array_; }

  /// This operand as an Array of `dtype`.
  Array as(DType dtype) const {
    return weak_ ? detail::weak_scalar(dtype, kind_, fvalue_, ivalue_) : astype(array_, dtype);
  }

 private:
  Array array_;
  ScalarKind kind_ = ScalarKind::floating;
  bool weak_ = false;
  double fvalue_ = 0;
  std::int64_t ivalue_ = 0;
};

namespace detail {

using Operand = eqx::Operand;

/// The dtype operands combine to: promotion over the Arrays, then each weak
/// scalar may lift it (int Array with 0.5 -> float32); scalars alone give
/// bool, int32 or float32.
inline DType result_dtype(std::initializer_list<const Operand*> ops, std::string_view op) {
  bool any_array = false;
  DType t = DType::bool_;
  for (const Operand* o : ops)
    if (!o->weak()) {
      if (!o->array().has_value())
        throw ValueError("eqx::" + std::string(op) +
                         ": got an empty Array (None); a filtered-out leaf cannot be used in an operation");
      t = any_array ? promote_types(t, o->array().dtype()) : o->array().dtype();
      any_array = true;
    }
  if (!any_array) {
    ScalarKind k = ScalarKind::boolean;
    for (const Operand* o : ops) k = std::max(k, o->kind());
    return k == ScalarKind::boolean ? DType::bool_ : (k == ScalarKind::integer ? DType::int32 : DType::float32);
  }
  for (const Operand* o : ops)
    if (o->weak()) t = result_type_with_scalar(t, o->kind());
  return t;
}

/// Floating dtype for ops that need one: float dtypes stay, others -> float32.
inline DType inexact(DType d) { return is_floating(d) ? d : DType::float32; }

inline std::string axis_error(std::string_view op, std::int64_t axis, std::size_t rank) {
  return "eqx::" + std::string(op) + ": axis " + std::to_string(axis) + " is out of range for an array of rank " +
         std::to_string(rank) + " (valid: -" + std::to_string(rank) + " to " +
         std::to_string(static_cast<std::int64_t>(rank) - 1) + ")";
}

/// numpy axis normalisation: negative axes count from the end.
inline std::int64_t normalize_axis(std::int64_t axis, std::size_t rank, std::string_view op) {
  auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= r) throw IndexError(axis_error(op, axis, rank));
  return axis < 0 ? axis + r : axis;
}

inline const Array& require_value(const Array& x, std::string_view op) {
  if (!x.has_value())
    throw ValueError("eqx::" + std::string(op) + ": got an empty Array (None); a filtered-out leaf cannot be used here");
  return x;
}

}  // namespace detail

#if EQX_KERNELS_HERE(OPS)
EQX_KERNEL_INLINE Array detail::weak_scalar(DType dtype, ScalarKind kind, double fvalue, std::int64_t ivalue) {
  struct Recent {
    DType dtype;
    ScalarKind kind;
    std::uint64_t bits;  // of fvalue or ivalue: -0.0 and 0.0 stay apart
    Array value;
  };
  thread_local std::array<Recent, 8> recent{};
  thread_local std::size_t next = 0;
  std::uint64_t bits = static_cast<std::uint64_t>(ivalue);
  if (kind == ScalarKind::floating) std::memcpy(&bits, &fvalue, sizeof bits);
  // eqx::filter_jit donates only buffers no other handle shares, so one kept
  // here stays valid.
  for (const Recent& r : recent)
    if (r.value.has_value() && r.dtype == dtype && r.kind == kind && r.bits == bits) return r.value;
  Array value = visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    return eqx::array(kind == ScalarKind::floating ? convert_value<T>(fvalue) : convert_value<T>(ivalue));
  });
  recent[next] = {dtype, kind, bits, value};
  next = (next + 1) % recent.size();
  return value;
}
#endif  // EQX_KERNELS_HERE(OPS)
}  // namespace eqx
