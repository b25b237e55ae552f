#pragma once
// Indexing along one axis: gather (numpy's take) and its transpose
// scatter_add (the cotangent of take; also `x.at[idx].add(u)`).
//
// out = gather[axis](x, idx) has shape x.shape[:axis] + idx.shape +
// x.shape[axis+1:]. Negative indices count from the end, as in numpy; an
// index outside [-n, n) throws eqx::IndexError instead of reading memory it
// does not own.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "eqx/prim/binary.hpp"
#include "eqx/prim/layout.hpp"
#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx::detail {

inline void require_index_dtype(std::string_view op, const AbstractArray& idx) {
  if (!is_integer(idx.dtype))
    throw DTypeError("eqx::" + std::string(op) + ": indices have dtype " + std::string(dtype_name(idx.dtype)) +
                     "; they must be int32 or uint32 (convert with eqx::astype(i, eqx::int32))");
}

/// Shape of gather[axis](x, idx).
inline Shape gathered_shape(const Shape& x, const Shape& idx, std::int64_t axis) {
  Shape s;
  for (std::int64_t i = 0; i < axis; ++i) s.push_back(x[i]);
  for (auto d : idx) s.push_back(d);
  for (std::size_t i = static_cast<std::size_t>(axis) + 1; i < x.size(); ++i) s.push_back(x[i]);
  return s;
}

/// Reads every index, wraps negatives and checks bounds.
template <class I>
std::int64_t checked_index(I raw, std::int64_t n, std::string_view op, std::int64_t axis) {
  auto i = static_cast<std::int64_t>(raw);
  if (i < 0) i += n;
  if (i < 0 || i >= n)
    throw IndexError("eqx::" + std::string(op) + ": index " + std::to_string(static_cast<std::int64_t>(raw)) +
                     " is out of bounds for axis " + std::to_string(axis) + " with size " + std::to_string(n));
  return i;
}

template <class F>
void visit_indices(const View& idx, std::int64_t n, std::string_view op, std::int64_t axis, F&& f) {
  visit_dtype(idx.dtype, [&](auto tag) {
    using I = decltype(tag);
    if constexpr (std::is_same_v<I, std::int32_t> || std::is_same_v<I, std::uint32_t>) {
      const I* p = idx.as<const I>();
      for (std::int64_t j = 0, m = idx.numel(); j < m; ++j) f(j, checked_index(p[j], n, op, axis));
    }
  });
}

inline void require_axis(std::string_view op, std::int64_t axis, const AbstractArray& x) {
  if (axis < 0 || axis >= static_cast<std::int64_t>(x.shape.size()))
    throw IndexError("eqx::" + std::string(op) + ": axis " + std::to_string(axis) + " is out of range for " + x.str());
}

/// Splits shape around `axis`: elements before it (outer) and after it (inner).
inline void outer_inner(const Shape& s, std::int64_t axis, std::int64_t& outer, std::int64_t& inner) {
  outer = inner = 1;
  for (std::int64_t i = 0; i < axis; ++i) outer *= s[i];
  for (std::size_t i = static_cast<std::size_t>(axis) + 1; i < s.size(); ++i) inner *= s[i];
}

struct GatherPrim final : Primitive {
  std::string_view name() const override { return "gather"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override;
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    auto axis = p.get<std::int64_t>("axis");
    require_axis("take", axis, in[0]);
    require_index_dtype("take", in[1]);
    return {{gathered_shape(in[0].shape, in[1].shape, axis), in[0].dtype}};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
};
#if EQX_KERNELS_HERE(INDEXING)
EQX_KERNEL_INLINE void GatherPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  auto axis = p.get<std::int64_t>("axis");
  std::int64_t outer, inner;
  outer_inner(*in[0].shape, axis, outer, inner);
  const std::int64_t n = (*in[0].shape)[axis], m = in[1].numel();
  const std::size_t row = static_cast<std::size_t>(inner) * itemsize(in[0].dtype);
  const auto* x = static_cast<const std::byte*>(in[0].data);
  auto* o = static_cast<std::byte*>(out[0].data);
  // Indices are checked even when rows are empty: numpy rejects them too.
  visit_indices(in[1], n, "take", axis, [&](std::int64_t j, std::int64_t i) {
    for (std::int64_t b = 0; b < outer && row > 0; ++b) std::memcpy(o + (b * m + j) * row, x + (b * n + i) * row, row);
  });
}
#endif

/// scatter_add[axis](operand, indices, updates): operand plus every update
/// row added at its index (repeated indices accumulate).
struct ScatterAddPrim final : Primitive {
  std::string_view name() const override { return "scatter_add"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override;
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    auto axis = p.get<std::int64_t>("axis");
    require_axis("scatter_add", axis, in[0]);
    require_index_dtype("scatter_add", in[1]);
    Shape want = gathered_shape(in[0].shape, in[1].shape, axis);
    if (in[2].shape != want || in[2].dtype != in[0].dtype)
      throw ShapeError("eqx::scatter_add: updates are " + in[2].str() + " but operand " + in[0].str() + " and indices " +
                       in[1].str() + " need " + AbstractArray{want, in[0].dtype}.str());
    if (in[0].dtype == DType::bool_) throw DTypeError("eqx::scatter_add: bool operands cannot be added");
    return {in[0]};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
};
#if EQX_KERNELS_HERE(INDEXING)
EQX_KERNEL_INLINE void ScatterAddPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  auto axis = p.get<std::int64_t>("axis");
  std::int64_t outer, inner;
  outer_inner(*in[0].shape, axis, outer, inner);
  const std::int64_t n = (*in[0].shape)[axis], m = in[1].numel();
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool>) {
      const T* x = in[0].as<const T>();
      const T* u = in[2].as<const T>();
      T* o = out[0].as<T>();
      std::copy(x, x + in[0].numel(), o);
      visit_indices(in[1], n, "scatter_add", axis, [&](std::int64_t j, std::int64_t i) {
        for (std::int64_t b = 0; b < outer; ++b)
          for (std::int64_t k = 0; k < inner; ++k) o[(b * n + i) * inner + k] += u[(b * m + j) * inner + k];
      });
    }
  });
}
#endif

}  // namespace eqx::detail

namespace eqx::prim {
inline const detail::GatherPrim gather;
inline const detail::ScatterAddPrim scatter_add;
}  // namespace eqx::prim

// --- batching rules ----------------------------------------------------------------------
//
// With only the operand batched, the gather axis moves past the batch axis.
// With batched indices, example b's rows are those of a flattened operand
// [examples * n, ...] at b * n + index: one gather for the whole batch.

namespace eqx::detail {

/// Indices [batch, ...] into the gather axis (length n) of each example,
/// as indices into that axis flattened over the batch (negative indices
/// wrapped; out-of-range ones all become batch * n, which the kernel rejects).
inline Array flat_batched_indices(const RuleOps& o, const Array& idx, std::int64_t dim, std::int64_t batch,
                                  std::int64_t n) {
  Array i = o.batch_first(idx, dim, batch);
  const DType t = i.dtype();
  i = o.select(o.bin(&prim::lt, i, o.scalar(0, t)), o.add(i, o.scalar(static_cast<double>(n), t)), i);
  Array valid = o.bin(&prim::and_, o.bin(&prim::ge, i, o.scalar(0, t)), o.bin(&prim::lt, i, o.scalar(static_cast<double>(n), t)));
  Shape offsets_shape = Shape::filled(i.ndim(), 1);
  offsets_shape[0] = batch;
  Array offsets = eqx::bind1(prim::iota, {},
                             Params{}
                                 .set("shape", Ints(offsets_shape.begin(), offsets_shape.end()))
                                 .set("dimension", std::int64_t{0})
                                 .set("dtype", t));
  Array flat = o.add(i, o.mul(offsets, o.scalar(static_cast<double>(n), t)));
  return o.select(valid, flat, o.broadcast_to(o.scalar(static_cast<double>(batch * n), t), flat.shape()));
}

/// x [batch, pre..., n, post...] (gather axis at 1 + axis) as [batch * n, pre..., post...].
inline Array flatten_gather_axis(const RuleOps& o, const Array& x, std::int64_t axis) {
  Array moved = o.moveaxis(x, axis + 1, 1);
  Shape s(moved.shape().begin() + 1, moved.shape().end());
  s[0] *= moved.shape()[0];
  return o.reshape(moved, s);
}

/// Axis order taking [batch, A (a axes), B (b axes), rest...] to [batch, B, A, rest...].
inline Ints swap_axis_groups(std::size_t a, std::size_t b, std::size_t rank) {
  Ints perm{0};
  for (std::size_t i = 0; i < b; ++i) perm.push_back(static_cast<std::int64_t>(1 + a + i));
  for (std::size_t i = 0; i < a; ++i) perm.push_back(static_cast<std::int64_t>(1 + i));
  for (std::size_t i = 1 + a + b; i < rank; ++i) perm.push_back(static_cast<std::int64_t>(i));
  return perm;
}

#if EQX_KERNELS_HERE(INDEXING)
EQX_KERNEL_INLINE Batched GatherPrim::batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const {
  const auto axis = p.get<std::int64_t>("axis");
  if (d[1] == not_mapped)
    return {{bind1(*this, {o.moveaxis(x[0], d[0], 0), x[1]}, Params(p).set("axis", axis + 1))}, {0}};
  if (d[0] == not_mapped) return {{bind1(*this, {x[0], o.moveaxis(x[1], d[1], 0)}, p)}, {axis}};
  const std::int64_t batch = batch_size(x, d);
  Array operand = o.moveaxis(x[0], d[0], 0);
  const std::int64_t n = operand.shape()[static_cast<std::size_t>(axis) + 1];
  Array idx = flat_batched_indices(o, x[1], d[1], batch, n);
  // [batch, idx..., pre..., post...] -> [batch, pre..., idx..., post...]
  Array out = bind1(*this, {flatten_gather_axis(o, operand, axis), idx}, Params(p).set("axis", std::int64_t{0}));
  return {{o.transpose(out, swap_axis_groups(idx.ndim() - 1, static_cast<std::size_t>(axis), out.ndim()))}, {0}};
}

EQX_KERNEL_INLINE Batched ScatterAddPrim::batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const {
  const auto axis = p.get<std::int64_t>("axis");
  const std::int64_t batch = batch_size(x, d);
  Array operand = o.batch_first(x[0], d[0], batch), updates = o.batch_first(x[2], d[2], batch);
  if (d[1] == not_mapped) return {{bind1(*this, {operand, x[1], updates}, Params(p).set("axis", axis + 1))}, {0}};
  const Shape shape = operand.shape();
  const std::int64_t n = shape[static_cast<std::size_t>(axis) + 1];
  Array idx = flat_batched_indices(o, x[1], d[1], batch, n);
  // updates [batch, pre..., idx..., post...] -> [batch, idx..., pre..., post...]
  updates = o.transpose(updates, swap_axis_groups(static_cast<std::size_t>(axis), idx.ndim() - 1, updates.ndim()));
  Array flat = bind1(*this, {flatten_gather_axis(o, operand, axis), idx, updates}, Params(p).set("axis", std::int64_t{0}));
  Shape unflat = flat.shape();
  unflat[0] = n;
  unflat.insert(0, batch);
  return {{o.moveaxis(o.reshape(flat, unflat), 1, axis + 1)}, {0}};
}

}  // namespace eqx::detail

// --- differentiation rules: gather and scatter_add are each other's transpose ------------

namespace eqx::detail {

EQX_KERNEL_INLINE std::vector<Array> GatherPrim::jvp(const RuleOps&, std::span<const Array> x, std::span<const Array> t,
                                                     std::span<const Array>, const Params& p) const {
  return {t[0].has_value() ? bind1(*this, {t[0], x[1]}, p) : Array{}};
}
// Each gathered row's cotangent is added back at its index (repeats accumulate).
EQX_KERNEL_INLINE std::vector<Array> GatherPrim::vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array>,
                                                     std::span<const Array> ct, const Params& p) const {
  if (!ct[0].has_value()) return {Array{}, Array{}};
  return {bind1(prim::scatter_add, {o.zeros_like(x[0]), x[1], ct[0]}, p), Array{}};
}

EQX_KERNEL_INLINE std::vector<Array> ScatterAddPrim::jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                                                         std::span<const Array>, const Params& p) const {
  if (!t[2].has_value()) return {t[0]};
  return {bind1(*this, {o.instantiate(t[0], x[0].shape(), x[0].dtype()), x[1], t[2]}, p)};
}
// The operand passes through; each update row reads the cotangent at its index.
EQX_KERNEL_INLINE std::vector<Array> ScatterAddPrim::vjp(const RuleOps&, std::span<const Array> x, std::span<const Array>,
                                                         std::span<const Array> ct, const Params& p) const {
  if (!ct[0].has_value()) return {Array{}, Array{}, Array{}};
  return {ct[0], Array{}, bind1(prim::gather, {ct[0], x[1]}, p)};
}
#endif
}  // namespace eqx::detail
