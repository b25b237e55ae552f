#pragma once
// Creating Arrays: zeros, ones, full, arange, linspace, eye and the *_like
// forms. (eqx::array, which copies C++ values, is in core/array.hpp.)

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

#include "eqx/core/config.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/operand.hpp"
#include "eqx/prim/layout.hpp"

namespace eqx {

namespace detail {
inline Ints to_ints(const Shape& s) { return Ints(s.begin(), s.end()); }

void require_non_negative(const Shape& shape, std::string_view op);

inline Array iota(DType dtype, const Shape& shape, std::int64_t dimension) {
  return bind1(prim::iota, {}, Params{}.set("dtype", dtype).set("shape", to_ints(shape)).set("dimension", dimension));
}
}  // namespace detail

/// An Array of `shape` with every element `value` (converted to `dtype`).
/// Usage: `eqx::full({2, 3}, 0.5f)`
template <Scalar S>
Array full(const Shape& shape, S value, DType dtype) {
  detail::require_non_negative(shape, "full");
  Array scalar = Operand(value).as(dtype);
  return bind1(prim::broadcast_in_dim, {scalar},
               Params{}.set("shape", detail::to_ints(shape)).set("broadcast_dimensions", detail::Ints{}));
}
/// full with the dtype of the C++ value (float -> float32, int -> int32, ...).
template <Scalar S>
Array full(const Shape& shape, S value) {
  Operand op(value);
  return full(shape, value, detail::result_dtype({&op}, "full"));
}

/// Zeros. Usage: `eqx::zeros({3, 4})`, `eqx::zeros({3}, eqx::int32)`
inline Array zeros(const Shape& shape, DType dtype = float32) { return full(shape, 0, dtype); }
/// Ones. Usage: `eqx::ones({3, 4})`
inline Array ones(const Shape& shape, DType dtype = float32) { return full(shape, 1, dtype); }
// (require_value is a statement of its own: argument evaluation order is unspecified.)
Array zeros_like(const Array& x);
Array ones_like(const Array& x);
template <Scalar S>
Array full_like(const Array& x, S value) {
  detail::require_value(x, "full_like");
  return full(x.shape(), value, x.dtype());
}

/// Evenly spaced values in [start, stop) with `step`, as numpy.arange.
/// Usage: `eqx::arange(0.0, 1.0, 0.25, eqx::float32)`
Array arange(double start, double stop, double step, DType dtype);
/// arange with numpy's dtype: int32 if all arguments are integers, else float32.
/// Usage: `eqx::arange(5)` is i32[5] {0,1,2,3,4}; `eqx::arange(0, 1, 0.5)` is f32[2].
template <Scalar A, Scalar B = A, Scalar C = int>
Array arange(A start, B stop, C step = 1) {
  constexpr bool ints = std::is_integral_v<A> && std::is_integral_v<B> && std::is_integral_v<C>;
  return arange(static_cast<double>(start), static_cast<double>(stop), static_cast<double>(step), ints ? int32 : float32);
}
template <Scalar A>
Array arange(A stop) {
  return arange(A(0), stop, 1);
}

/// `num` evenly spaced values from start to stop (included if `endpoint`).
/// Usage: `eqx::linspace(0.0, 1.0, 5)` is {0, .25, .5, .75, 1}.
Array linspace(double start, double stop, std::int64_t num, bool endpoint = true, DType dtype = float32);

/// n x m matrix (m defaults to n) with ones on diagonal k (0: main, >0: above).
/// Usage: `eqx::eye(3)`, `eqx::eye(3, 4, 1)`, `eqx::eye(3, std::nullopt, -1)`
Array eye(std::int64_t n, std::optional<std::int64_t> cols = std::nullopt, std::int64_t k = 0,
          DType dtype = float32);

}  // namespace eqx

#if EQX_KERNELS_HERE(OPS)
namespace eqx {
namespace detail {
EQX_KERNEL_INLINE void require_non_negative(const Shape& shape, std::string_view op) {
  for (auto d : shape)
    if (d < 0) throw ShapeError("eqx::" + std::string(op) + ": negative dimension in shape " + shape.str());
}
}  // namespace detail

EQX_KERNEL_INLINE Array zeros_like(const Array& x) {
  detail::require_value(x, "zeros_like");
  return zeros(x.shape(), x.dtype());
}

EQX_KERNEL_INLINE Array ones_like(const Array& x) {
  detail::require_value(x, "ones_like");
  return ones(x.shape(), x.dtype());
}

EQX_KERNEL_INLINE Array arange(double start, double stop, double step, DType dtype) {
  if (step == 0 || !std::isfinite(step)) throw ValueError("eqx::arange: step must be finite and non-zero");
  auto n = static_cast<std::int64_t>(std::ceil((stop - start) / step));
  n = std::max<std::int64_t>(n, 0);
  if (dtype == bool_) throw DTypeError("eqx::arange: dtype bool cannot count; use int32, uint32 or a float");
  if (is_integer(dtype) && start == 0 && step == 1) return detail::iota(dtype, {n}, 0);
  Array i = detail::iota(float64, {n}, 0);
  return astype(i * step + start, dtype);
}

EQX_KERNEL_INLINE Array linspace(double start, double stop, std::int64_t num, bool endpoint, DType dtype) {
  if (num < 0) throw ValueError("eqx::linspace: num must be >= 0, got " + std::to_string(num));
  std::int64_t div = endpoint ? num - 1 : num;
  double step = div > 0 ? (stop - start) / static_cast<double>(div) : 0.0;
  Array i = detail::iota(float64, {num}, 0);
  Array y = i * step + start;
  if (endpoint && num > 1) y = where(i == static_cast<double>(num - 1), stop, y);  // exact endpoint, as numpy
  return astype(y, dtype);
}

EQX_KERNEL_INLINE Array eye(std::int64_t n, std::optional<std::int64_t> cols, std::int64_t k,
                            DType dtype) {
  const std::int64_t m = cols.value_or(n);
  if (n < 0 || m < 0)
    throw ShapeError("eqx::eye: negative size " + std::to_string(n < 0 ? n : m) + "; sizes must be >= 0");
  Array row = detail::iota(int32, {n, m}, 0), col = detail::iota(int32, {n, m}, 1);
  return astype(row + static_cast<std::int32_t>(k) == col, dtype);
}
}  // namespace eqx
#endif  // EQX_KERNELS_HERE(OPS)
