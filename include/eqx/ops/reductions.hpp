#pragma once
// Reductions: sum, mean, prod, max, min, any, all, var, std over all axes or
// a list of axes, with keepdims; argmax/argmin over one axis or the
// flattened array.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/prim/reduce.hpp"

namespace eqx {

/// Which axes to reduce: all (default), one, or a list; negatives count from the end.
/// Usage: `eqx::sum(x)`, `eqx::sum(x, 1)`, `eqx::sum(x, {0, 2}, true)`
class Axes {
 public:
  Axes() = default;
  Axes(int axis) : axes_(std::vector<std::int64_t>{axis}) {}  // NOLINT: implicit by design
  Axes(std::int64_t axis) : axes_(std::vector<std::int64_t>{axis}) {}  // NOLINT
  Axes(std::initializer_list<std::int64_t> axes) : axes_(std::vector<std::int64_t>(axes)) {}
  Axes(std::vector<std::int64_t> axes) : axes_(std::move(axes)) {}  // NOLINT

  /// Sorted, non-negative axes for an array of `rank`; throws on repeats.
  std::vector<std::int64_t> resolve(std::size_t rank, std::string_view op) const {
    std::vector<std::int64_t> out;
    if (!axes_) {
      for (std::size_t i = 0; i < rank; ++i) out.push_back(static_cast<std::int64_t>(i));
      return out;
    }
    for (auto a : *axes_) out.push_back(detail::normalize_axis(a, rank, op));
    std::sort(out.begin(), out.end());
    if (std::adjacent_find(out.begin(), out.end()) != out.end())
      throw ValueError("eqx::" + std::string(op) + ": repeated axis in " + detail::ints_str(*axes_));
    return out;
  }

 private:
  std::optional<std::vector<std::int64_t>> axes_;
};

namespace detail {

Array keep_dims(const Array& reduced, const Shape& in, const Ints& axes);

Array reduce(const Primitive& p, const Array& x, const Axes& axes, bool keepdims, std::string_view op);

/// Sums and products of bool count in int32, as numpy and JAX do.
inline Array sum_dtype(const Array& x, std::string_view op) {
  return require_value(x, op).dtype() == bool_ ? astype(x, int32) : x;
}

}  // namespace detail

/// Sum over `axes` (all by default). Usage: `eqx::sum(x, 0)`
inline Array sum(const Array& x, const Axes& axes = {}, bool keepdims = false) {
  return detail::reduce(prim::reduce_sum, detail::sum_dtype(x, "sum"), axes, keepdims, "sum");
}
/// Product over `axes`.
inline Array prod(const Array& x, const Axes& axes = {}, bool keepdims = false) {
  return detail::reduce(prim::reduce_prod, detail::sum_dtype(x, "prod"), axes, keepdims, "prod");
}
/// Maximum over `axes`; NaN if any element is NaN; throws on empty axes.
inline Array max(const Array& x, const Axes& axes = {}, bool keepdims = false) {
  return detail::reduce(prim::reduce_max, x, axes, keepdims, "max");
}
/// Minimum over `axes`.
inline Array min(const Array& x, const Axes& axes = {}, bool keepdims = false) {
  return detail::reduce(prim::reduce_min, x, axes, keepdims, "min");
}
/// True where any element along `axes` is non-zero.
inline Array any(const Array& x, const Axes& axes = {}, bool keepdims = false) {
  return detail::reduce(prim::reduce_or, astype(detail::require_value(x, "any"), bool_), axes, keepdims, "any");
}
/// True where all elements along `axes` are non-zero.
inline Array all(const Array& x, const Axes& axes = {}, bool keepdims = false) {
  return detail::reduce(prim::reduce_and, astype(detail::require_value(x, "all"), bool_), axes, keepdims, "all");
}
/// Arithmetic mean over `axes`; integer inputs give float32.
/// Usage: `eqx::mean(eqx::square(pred - y))`
Array mean(const Array& x, const Axes& axes = {}, bool keepdims = false);

/// Variance over `axes`: mean((x - mean(x))^2) with the divisor
/// count - ddof (numpy.var/jnp.var; ddof = 1 is the unbiased estimate). A
/// divisor <= 0 is taken as 0, as numpy, giving inf or NaN. Integer inputs
/// give float32. Usage: `eqx::var(x)`, `eqx::var(x, 0, 1)`, `eqx::var(x, {1, 2}, 0, true)`
Array var(const Array& x, const Axes& axes = {}, std::int64_t ddof = 0, bool keepdims = false);

/// Standard deviation over `axes`: sqrt(var(x, axes, ddof)) (numpy.std).
/// Its gradient is infinite where the variance is 0, as in JAX.
/// Usage: `eqx::std(x)`, `eqx::std(x, -1, 1, true)`
inline Array std(const Array& x, const Axes& axes = {}, std::int64_t ddof = 0, bool keepdims = false) {
  return sqrt(var(x, axes, ddof, keepdims));
}

namespace detail {
Array arg_extremum(const Primitive& p, const Array& x, std::optional<std::int64_t> axis, bool keepdims,
                   std::string_view op);
}  // namespace detail

/// Index (int32) of the first maximum along `axis`, or in the flattened
/// array when no axis is given. Usage: `eqx::argmax(logits, 1)`
inline Array argmax(const Array& x, std::optional<std::int64_t> axis = std::nullopt, bool keepdims = false) {
  return detail::arg_extremum(prim::argmax, x, axis, keepdims, "argmax");
}
/// Index (int32) of the first minimum along `axis` (flattened if none).
inline Array argmin(const Array& x, std::optional<std::int64_t> axis = std::nullopt, bool keepdims = false) {
  return detail::arg_extremum(prim::argmin, x, axis, keepdims, "argmin");
}

}  // namespace eqx

#if EQX_KERNELS_HERE(OPS)
namespace eqx {
namespace detail {
EQX_KERNEL_INLINE Array keep_dims(const Array& reduced, const Shape& in, const Ints& axes) {
  Shape s = in;
  for (auto a : axes) s[a] = 1;
  return reshape(reduced, s);
}

EQX_KERNEL_INLINE Array reduce(const Primitive& p, const Array& x, const Axes& axes, bool keepdims, std::string_view op) {
  const Shape& in = require_value(x, op).shape();
  Ints ax = axes.resolve(in.size(), op);
  Array r = bind1(p, {x}, Params{}.set("axes", ax));
  return keepdims ? keep_dims(r, in, ax) : r;
}
}  // namespace detail

EQX_KERNEL_INLINE Array mean(const Array& x, const Axes& axes, bool keepdims) {
  const Shape& in = detail::require_value(x, "mean").shape();
  std::int64_t count = 1;
  for (auto a : axes.resolve(in.size(), "mean")) count *= in[a];
  Array s = sum(astype(x, detail::inexact(x.dtype())), axes, keepdims);
  return s / static_cast<double>(count);
}

EQX_KERNEL_INLINE Array var(const Array& x, const Axes& axes, std::int64_t ddof, bool keepdims) {
  const Shape& in = detail::require_value(x, "var").shape();
  std::int64_t count = 1;
  for (auto a : axes.resolve(in.size(), "var")) count *= in[a];
  const Array xf = astype(x, detail::inexact(x.dtype()));
  const Array centered = xf - mean(xf, axes, true);
  return sum(centered * centered, axes, keepdims) / static_cast<double>(std::max<std::int64_t>(count - ddof, 0));
}
namespace detail {
EQX_KERNEL_INLINE Array arg_extremum(const Primitive& p, const Array& x, std::optional<std::int64_t> axis, bool keepdims,
                                     std::string_view op) {
  require_value(x, op);
  if (!axis) {
    Array r = bind1(p, {ravel(x)}, Params{}.set("axis", std::int64_t{0}).set("index_dtype", int32));
    return keepdims ? reshape(r, Shape::filled(x.ndim(), 1)) : r;
  }
  auto a = normalize_axis(*axis, x.ndim(), op);
  Array r = bind1(p, {x}, Params{}.set("axis", a).set("index_dtype", int32));
  return keepdims ? expand_dims(r, a) : r;
}
}  // namespace detail
}  // namespace eqx
#endif  // EQX_KERNELS_HERE(OPS)
