#pragma once
// Indexing: slice (start/stop/step per axis, Python rules), take (integer
// indices along an axis), one_hot.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/prim/indexing.hpp"
#include "eqx/prim/layout.hpp"

namespace eqx {

/// One axis of a slice, with Python's rules: missing start/stop mean "from
/// the beginning"/"to the end" (reversed for a negative step), negatives
/// count from the end, out-of-range values clamp.
/// Usage: `eqx::Slice{1, -1}`, `eqx::Slice{{}, {}, 2}`, `eqx::Slice{{}, {}, -1}`
struct Slice {
  std::optional<std::int64_t> start, stop;
  std::int64_t step = 1;
};

namespace detail {
/// Python's slice.indices(n): the concrete (start, stop) for `s` on length n.
std::pair<std::int64_t, std::int64_t> slice_bounds(const Slice& s, std::int64_t n);
}  // namespace detail

/// Slices every axis (missing trailing axes are taken whole).
/// Usage: `eqx::slice(x, {{0, 2}, {{}, {}, 2}})` is numpy's `x[0:2, ::2]`.
Array slice(const Array& x, const std::vector<Slice>& per_axis);

/// Slices one axis. Usage: `eqx::slice(x, 1, 0, 3)` is numpy's `x[:, 0:3]`.
Array slice(const Array& x, std::int64_t axis, std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
            std::int64_t step = 1);

/// Elements at integer `indices` along `axis` (numpy.take); the result has
/// shape x.shape[:axis] + indices.shape + x.shape[axis+1:]. Negative indices
/// count from the end; out-of-range ones throw eqx::IndexError.
/// Usage: `eqx::take(embeddings, token_ids, 0)`
Array take(const Array& x, const Array& indices, std::int64_t axis);
/// numpy.take without an axis: indexes the flattened array.
inline Array take(const Array& x, const Array& indices) { return take(ravel(x), indices, 0); }

/// One-hot encoding: out[..., k] = (x[...] == k), in `dtype`. Indices outside
/// [0, num_classes) give all zeros, as in JAX.
/// Usage: `eqx::one_hot(labels, 10)`
Array one_hot(const Array& x, std::int64_t num_classes, DType dtype = float32);

}  // namespace eqx

#if EQX_KERNELS_HERE(OPS)
namespace eqx {
namespace detail {
EQX_KERNEL_INLINE std::pair<std::int64_t, std::int64_t> slice_bounds(const Slice& s, std::int64_t n) {
  auto clamp_index = [&](std::int64_t v, std::int64_t lo, std::int64_t hi) {
    if (v < 0) v += n;
    return std::clamp(v, lo, hi);
  };
  if (s.step > 0) return {s.start ? clamp_index(*s.start, 0, n) : 0, s.stop ? clamp_index(*s.stop, 0, n) : n};
  return {s.start ? clamp_index(*s.start, -1, n - 1) : n - 1, s.stop ? clamp_index(*s.stop, -1, n - 1) : -1};
}
}  // namespace detail

EQX_KERNEL_INLINE Array slice(const Array& x, const std::vector<Slice>& per_axis) {
  const Shape& s = detail::require_value(x, "slice").shape();
  if (per_axis.size() > s.size())
    throw IndexError("eqx::slice: " + std::to_string(per_axis.size()) + " slices for an array of rank " +
                     std::to_string(s.size()));
  detail::Ints start, limit, step, reversed;
  for (std::size_t i = 0; i < s.size(); ++i) {
    Slice sl = i < per_axis.size() ? per_axis[i] : Slice{};
    if (sl.step == 0) throw ValueError("eqx::slice: slice step cannot be zero (axis " + std::to_string(i) + ")");
    auto [b, e] = detail::slice_bounds(sl, s[i]);
    if (sl.step < 0) {  // read the reversed axis forwards: position j holds element n-1-j
      reversed.push_back(static_cast<std::int64_t>(i));
      b = s[i] - 1 - b;
      e = s[i] - 1 - e;
    }
    std::int64_t st = sl.step < 0 ? -sl.step : sl.step;
    start.push_back(b);
    limit.push_back(std::max(b, e));
    step.push_back(st);
  }
  Array src = reversed.empty() ? x : bind1(prim::rev, {x}, Params{}.set("dimensions", reversed));
  return bind1(prim::slice, {src},
               Params{}.set("start_indices", std::move(start)).set("limit_indices", std::move(limit)).set("strides", std::move(step)));
}

EQX_KERNEL_INLINE Array slice(const Array& x, std::int64_t axis, std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                              std::int64_t step) {
  std::vector<Slice> per_axis(static_cast<std::size_t>(detail::normalize_axis(axis, detail::require_value(x, "slice").ndim(), "slice")) + 1);
  per_axis.back() = Slice{start, stop, step};
  return slice(x, per_axis);
}

EQX_KERNEL_INLINE Array take(const Array& x, const Array& indices, std::int64_t axis) {
  auto a = detail::normalize_axis(axis, detail::require_value(x, "take").ndim(), "take");
  return bind1(prim::gather, {x, indices}, Params{}.set("axis", a));
}

EQX_KERNEL_INLINE Array one_hot(const Array& x, std::int64_t num_classes, DType dtype) {
  if (!is_integer(detail::require_value(x, "one_hot").dtype()))
    throw DTypeError("eqx::one_hot: indices have dtype " + std::string(dtype_name(x.dtype())) +
                     "; they must be int32 or uint32");
  if (num_classes < 0) throw ValueError("eqx::one_hot: num_classes must be >= 0, got " + std::to_string(num_classes));
  Array classes = detail::iota(x.dtype(), {num_classes}, 0);
  return astype(expand_dims(x, -1) == classes, dtype);
}
}  // namespace eqx
#endif  // EQX_KERNELS_HERE(OPS)
