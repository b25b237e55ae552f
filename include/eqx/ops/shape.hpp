#pragma once
// Shape manipulation: reshape, ravel, transpose, broadcast_to, expand_dims,
// squeeze, concatenate, stack, flip, pad.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/operand.hpp"
#include "eqx/prim/layout.hpp"

namespace eqx {

/// The same elements in a new shape; one dimension may be -1 (inferred).
/// Usage: `eqx::reshape(x, {2, -1})`
Array reshape(const Array& x, const Shape& shape);

/// Flattens to rank 1.
inline Array ravel(const Array& x) { return reshape(x, {-1}); }

/// Permutes axes; with no `axes`, reverses them (numpy).
/// Usage: `eqx::transpose(x)`, `eqx::transpose(x, {0, 2, 1})`
Array transpose(const Array& x, std::vector<std::int64_t> axes = {});

/// Broadcasts to `shape` by numpy rules (right-aligned; size-1 axes repeat).
/// Usage: `eqx::broadcast_to(bias, {32, 64})`
Array broadcast_to(const Array& x, const Shape& shape);

/// Inserts a size-1 axis at `axis` (negative counts from the end of the result).
/// Usage: `eqx::expand_dims(x, 0)`
Array expand_dims(const Array& x, std::int64_t axis);

/// Removes the given size-1 axes, or all size-1 axes if none are given.
/// Usage: `eqx::squeeze(x)`, `eqx::squeeze(x, {0})`
Array squeeze(const Array& x, std::vector<std::int64_t> axes = {});

/// Joins arrays along an existing axis, promoting dtypes.
/// Usage: `eqx::concatenate({a, b}, 0)`
Array concatenate(const std::vector<Array>& xs, std::int64_t axis = 0);

/// Joins arrays of equal shape along a new axis.
/// Usage: `eqx::stack({a, b}, 0)`
Array stack(const std::vector<Array>& xs, std::int64_t axis = 0);

/// Reverses the order of elements along `axes` (all axes if empty).
/// Usage: `eqx::flip(x, {0})`
Array flip(const Array& x, std::vector<std::int64_t> axes = {});

/// Constant padding: `widths[i] = {before, after}` for each axis.
/// Usage: `eqx::pad(x, {{1, 1}, {2, 0}})`
Array pad(const Array& x, const std::vector<std::pair<std::int64_t, std::int64_t>>& widths,
          const Operand& value = 0);

}  // namespace eqx

#if EQX_KERNELS_HERE(OPS)
namespace eqx {
EQX_KERNEL_INLINE Array reshape(const Array& x, const Shape& shape) {
  const Shape& in = detail::require_value(x, "reshape").shape();
  Shape s = shape;
  std::int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1 && infer < 0) infer = static_cast<std::int64_t>(i);
    else if (s[i] < 0)
      throw ShapeError("eqx::reshape: invalid shape " + shape.str() + "; only one dimension may be -1, others >= 0");
    else known *= s[i];
  }
  if (infer >= 0) {
    if (known == 0 || in.numel() % known != 0)
      throw ShapeError("eqx::reshape: cannot reshape " + in.str() + " (" + std::to_string(in.numel()) +
                       " elements) into " + shape.str() + "; the -1 dimension cannot be inferred");
    s[infer] = in.numel() / known;
  }
  if (s == in) return x;
  return bind1(prim::reshape, {x}, Params{}.set("new_sizes", detail::to_ints(s)));
}

EQX_KERNEL_INLINE Array transpose(const Array& x, std::vector<std::int64_t> axes) {
  const std::size_t r = detail::require_value(x, "transpose").ndim();
  if (axes.empty()) {
    for (std::size_t i = r; i-- > 0;) axes.push_back(static_cast<std::int64_t>(i));
  } else {
    if (axes.size() != r)
      throw ValueError("eqx::transpose: axes " + detail::ints_str(axes) + " do not match an array of rank " +
                       std::to_string(r) + "; give a permutation of all axes");
    for (auto& a : axes) a = detail::normalize_axis(a, r, "transpose");
  }
  return bind1(prim::transpose, {x}, Params{}.set("permutation", std::move(axes)));
}

EQX_KERNEL_INLINE Array broadcast_to(const Array& x, const Shape& shape) {
  const Shape& in = detail::require_value(x, "broadcast_to").shape();
  if (in == shape) return x;
  auto fail = [&] {
    throw ShapeError("eqx::broadcast_to: cannot broadcast " + in.str() + " to " + shape.str() +
                     "; dimensions must be equal or 1, aligned from the right, and the target rank at least " +
                     std::to_string(in.size()));
  };
  if (in.size() > shape.size()) fail();
  detail::Ints dims;
  const std::size_t off = shape.size() - in.size();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != 1 && in[i] != shape[off + i]) fail();
    dims.push_back(static_cast<std::int64_t>(off + i));
  }
  return bind1(prim::broadcast_in_dim, {x},
               Params{}.set("shape", detail::to_ints(shape)).set("broadcast_dimensions", std::move(dims)));
}

EQX_KERNEL_INLINE Array expand_dims(const Array& x, std::int64_t axis) {
  Shape s = detail::require_value(x, "expand_dims").shape();
  s.insert(static_cast<std::size_t>(detail::normalize_axis(axis, s.size() + 1, "expand_dims")), 1);
  return reshape(x, s);
}

EQX_KERNEL_INLINE Array squeeze(const Array& x, std::vector<std::int64_t> axes) {
  const Shape& in = detail::require_value(x, "squeeze").shape();
  std::vector<bool> drop(in.size(), false);
  if (axes.empty()) {
    for (std::size_t i = 0; i < in.size(); ++i) drop[i] = in[i] == 1;
  } else {
    for (auto a : axes) {
      auto n = detail::normalize_axis(a, in.size(), "squeeze");
      if (in[n] != 1)
        throw ShapeError("eqx::squeeze: cannot squeeze axis " + std::to_string(a) + " of " + in.str() +
                         ": its size is " + std::to_string(in[n]) + ", not 1");
      drop[n] = true;
    }
  }
  Shape s;
  for (std::size_t i = 0; i < in.size(); ++i)
    if (!drop[i]) s.push_back(in[i]);
  return reshape(x, s);
}

EQX_KERNEL_INLINE Array concatenate(const std::vector<Array>& xs, std::int64_t axis) {
  if (xs.empty()) throw ValueError("eqx::concatenate: needs at least one array");
  DType t = detail::require_value(xs[0], "concatenate").dtype();
  for (const Array& x : xs) t = promote_types(t, detail::require_value(x, "concatenate").dtype());
  if (xs[0].ndim() == 0)
    throw ShapeError("eqx::concatenate: zero-dimensional arrays cannot be concatenated; use eqx::stack");
  auto a = detail::normalize_axis(axis, xs[0].ndim(), "concatenate");
  std::vector<Array> in;
  for (const Array& x : xs) in.push_back(astype(x, t));
  return eqx::bind(prim::concatenate, in, Params{}.set("dimension", a))[0];
}

EQX_KERNEL_INLINE Array stack(const std::vector<Array>& xs, std::int64_t axis) {
  if (xs.empty()) throw ValueError("eqx::stack: needs at least one array");
  const Shape& s0 = detail::require_value(xs[0], "stack").shape();
  const auto a = detail::normalize_axis(axis, s0.size() + 1, "stack");  // errors name stack, not expand_dims
  std::vector<Array> expanded;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    if (detail::require_value(xs[k], "stack").shape() != s0)
      throw ShapeError("eqx::stack: array " + std::to_string(k) + " has shape " + xs[k].shape().str() +
                       " but array 0 has " + s0.str() + "; all must have the same shape");
    expanded.push_back(expand_dims(xs[k], a));
  }
  return concatenate(expanded, a);
}

EQX_KERNEL_INLINE Array flip(const Array& x, std::vector<std::int64_t> axes) {
  const std::size_t r = detail::require_value(x, "flip").ndim();
  if (axes.empty())
    for (std::size_t i = 0; i < r; ++i) axes.push_back(static_cast<std::int64_t>(i));
  const std::vector<std::int64_t> given = axes;
  for (auto& a : axes) a = detail::normalize_axis(a, r, "flip");
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
    throw ValueError("eqx::flip: repeated axis in " + detail::ints_str(given));
  return bind1(prim::rev, {x}, Params{}.set("dimensions", std::move(axes)));
}

EQX_KERNEL_INLINE Array pad(const Array& x, const std::vector<std::pair<std::int64_t, std::int64_t>>& widths,
                            const Operand& value) {
  const std::size_t r = detail::require_value(x, "pad").ndim();
  if (widths.size() != r)
    throw ValueError("eqx::pad: got " + std::to_string(widths.size()) + " (before, after) pairs for an array of rank " +
                     std::to_string(r) + "; give one pair per axis");
  detail::Ints lo, hi, interior(r, 0);
  for (auto [b, a] : widths) {
    if (b < 0 || a < 0) throw ValueError("eqx::pad: pad widths must be >= 0");
    lo.push_back(b);
    hi.push_back(a);
  }
  return bind1(prim::pad, {x, value.as(x.dtype())},
               Params{}.set("low", std::move(lo)).set("high", std::move(hi)).set("interior", std::move(interior)));
}
}  // namespace eqx
#endif  // EQX_KERNELS_HERE(OPS)
