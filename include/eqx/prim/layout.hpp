#pragma once
// Layout primitives: reshape, transpose, broadcast_in_dim, slice, pad,
// concatenate, rev, iota. They move or create elements without arithmetic.
//
// Parameters are fully resolved (no -1 sizes, no negative axes): the public
// functions in ops/ normalise user input and report errors in user terms; the
// shape rules here still check everything, since graphs can be built by hand.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "eqx/prim/broadcast.hpp"
#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx::detail {

using Ints = std::vector<std::int64_t>;

/// "(1, 2)", "(1,)": an axis list as the graph printer shows it.
template <class Range>
std::string ints_str(const Range& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

/// True if `perm` is 0, 1, ..., n-1 (a permutation or axis map that moves nothing).
template <class Range>
bool is_identity_permutation(const Range& perm) {
  for (std::size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<std::int64_t>(i)) return false;
  return true;
}

/// The permutation that undoes `perm`: result[perm[i]] = i.
inline Ints inverse_permutation(const Ints& perm) {
  Ints inverse(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) inverse[static_cast<std::size_t>(perm[i])] = static_cast<std::int64_t>(i);
  return inverse;
}

inline void require_rank(std::string_view op, const char* what, const Ints& v, std::size_t rank) {
  if (v.size() != rank)
    throw ValueError("eqx::" + std::string(op) + ": " + what + " " + ints_str(v) + " has " + std::to_string(v.size()) +
                     " entries but the operand has rank " + std::to_string(rank) + "; give one entry per axis");
}

/// reshape[new_sizes]: same elements, new row-major shape.
struct ReshapePrim final : Primitive {
  std::string_view name() const override { return "reshape"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    Ints sizes = p.get<Ints>("new_sizes");
    sizes.insert(sizes.begin(), batch_size(x, d));
    return batch_leading(*this, o, x, d, Params(p).set("new_sizes", std::move(sizes)));
  }
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array>, std::span<const Array> t,
                         std::span<const Array> y, const Params&) const override {
    return {o.reshape(t[0], y[0].shape())};
  }
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array>,
                         std::span<const Array> ct, const Params&) const override {
    return {o.reshape(ct[0], x[0].shape())};
  }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const Ints& sizes = p.get<Ints>("new_sizes");
    Shape s(sizes.begin(), sizes.end());
    if (s.numel() != in[0].shape.numel() || std::any_of(sizes.begin(), sizes.end(), [](auto d) { return d < 0; }))
      throw ShapeError("eqx::reshape: cannot reshape " + in[0].str() + " (" + std::to_string(in[0].shape.numel()) +
                       " elements) into shape " + s.str() + " (" + std::to_string(s.numel()) +
                       " elements); the number of elements must stay the same");
    return {{s, in[0].dtype}};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override;
};
#if EQX_KERNELS_HERE(LAYOUT)
EQX_KERNEL_INLINE void ReshapePrim::kernel(std::span<const View> in, std::span<const View> out, const Params&) const {
  copy_bytes(out[0].data, in[0].data, in[0].bytes());
}
#endif

/// transpose[permutation]: out axis i is operand axis permutation[i].
struct TransposePrim final : Primitive {
  std::string_view name() const override { return "transpose"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    Ints perm = shift_axes(p.get<Ints>("permutation"));
    perm.insert(perm.begin(), 0);
    return batch_leading(*this, o, x, d, Params(p).set("permutation", std::move(perm)));
  }
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array>, std::span<const Array> t,
                         std::span<const Array>, const Params& p) const override {
    return {o.transpose(t[0], p.get<Ints>("permutation"))};
  }
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array>, std::span<const Array>,
                         std::span<const Array> ct, const Params& p) const override {
    return {o.transpose(ct[0], inverse_permutation(p.get<Ints>("permutation")))};
  }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const Ints& perm = p.get<Ints>("permutation");
    const std::size_t r = in[0].shape.size();
    require_rank("transpose", "permutation", perm, r);
    std::vector<bool> seen(r, false);
    Shape s;
    for (auto a : perm) {
      if (a < 0 || a >= static_cast<std::int64_t>(r) || seen[a])
        throw ValueError("eqx::transpose: " + ints_str(perm) + " is not a permutation of the axes 0.." +
                         std::to_string(static_cast<std::int64_t>(r) - 1) + " of " + in[0].str());
      seen[a] = true;
      s.push_back(in[0].shape[a]);
    }
    return {{s, in[0].dtype}};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
};
#if EQX_KERNELS_HERE(LAYOUT)
EQX_KERNEL_INLINE void TransposePrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  const Ints& perm = p.get<Ints>("permutation");
  Shape src = contiguous_strides(*in[0].shape), st;
  for (auto a : perm) st.push_back(src[a]);
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    strided_copy(in[0].as<const T>(), *out[0].shape, st, out[0].as<T>());
  });
}
#endif

/// broadcast_in_dim[shape, broadcast_dimensions]: operand axis i becomes
/// output axis broadcast_dimensions[i] (equal size or 1); other axes repeat.
struct BroadcastInDimPrim final : Primitive {
  std::string_view name() const override { return "broadcast_in_dim"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    Ints shape = p.get<Ints>("shape"), dims = shift_axes(p.get<Ints>("broadcast_dimensions"));
    shape.insert(shape.begin(), batch_size(x, d));
    dims.insert(dims.begin(), 0);
    return batch_leading(*this, o, x, d, Params(p).set("shape", std::move(shape)).set("broadcast_dimensions", std::move(dims)));
  }
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array>, std::span<const Array> t,
                         std::span<const Array>, const Params& p) const override {
    return {o.linear(*this, t[0], p)};
  }
  // Sum over the axes the broadcast created or expanded, back to x's shape.
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array>,
                         std::span<const Array> ct, const Params& p) const override {
    if (!ct[0].has_value()) return {Array{}};
    const Ints& dims = p.get<Ints>("broadcast_dimensions");
    Ints axes;
    for (std::size_t k = 0; k < ct[0].ndim(); ++k) {
      auto it = std::find(dims.begin(), dims.end(), static_cast<std::int64_t>(k));
      if (it == dims.end() || x[0].shape()[static_cast<std::size_t>(it - dims.begin())] != ct[0].shape()[k])
        axes.push_back(static_cast<std::int64_t>(k));
    }
    return {o.reshape(o.reduce_sum(ct[0], axes), x[0].shape())};
  }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const Ints& shape = p.get<Ints>("shape");
    const Ints& dims = p.get<Ints>("broadcast_dimensions");
    require_rank("broadcast_in_dim", "broadcast_dimensions", dims, in[0].shape.size());
    for (std::size_t i = 0; i < dims.size(); ++i) {
      bool ok = dims[i] >= 0 && dims[i] < static_cast<std::int64_t>(shape.size()) && (i == 0 || dims[i] > dims[i - 1]);
      if (ok) ok = in[0].shape[i] == 1 || in[0].shape[i] == shape[dims[i]];
      if (!ok)
        throw ShapeError("eqx::broadcast_to: cannot broadcast " + in[0].str() + " to shape " +
                         Shape(shape.begin(), shape.end()).str() + " (operand axis " + std::to_string(i) +
                         " must map to an output axis of equal size or have size 1)");
    }
    return {{Shape(shape.begin(), shape.end()), in[0].dtype}};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
};
#if EQX_KERNELS_HERE(LAYOUT)
EQX_KERNEL_INLINE void BroadcastInDimPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  const Ints& dims = p.get<Ints>("broadcast_dimensions");
  Shape src = contiguous_strides(*in[0].shape), st = Shape::filled(out[0].shape->size(), 0);
  for (std::size_t i = 0; i < dims.size(); ++i)
    if ((*in[0].shape)[i] != 1) st[dims[i]] = src[i];
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    strided_copy(in[0].as<const T>(), *out[0].shape, st, out[0].as<T>());
  });
}
#endif

/// slice[start_indices, limit_indices, strides]: elements start, start+stride,
/// ... below limit on every axis (all non-negative, strides >= 1).
struct SlicePrim final : Primitive {
  std::string_view name() const override { return "slice"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    Ints start = p.get<Ints>("start_indices"), limit = p.get<Ints>("limit_indices"), step = p.get<Ints>("strides");
    start.insert(start.begin(), 0);
    limit.insert(limit.begin(), batch_size(x, d));
    step.insert(step.begin(), 1);
    return batch_leading(*this, o, x, d,
                         Params(p).set("start_indices", std::move(start)).set("limit_indices", std::move(limit)).set("strides", std::move(step)));
  }
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const Ints &start = p.get<Ints>("start_indices"), &limit = p.get<Ints>("limit_indices"),
               &step = p.get<Ints>("strides");
    const std::size_t r = in[0].shape.size();
    require_rank("slice", "start_indices", start, r);
    require_rank("slice", "limit_indices", limit, r);
    require_rank("slice", "strides", step, r);
    Shape s;
    for (std::size_t i = 0; i < r; ++i) {
      if (start[i] < 0 || limit[i] < start[i] || limit[i] > in[0].shape[i] || step[i] < 1)
        throw IndexError("eqx::slice: axis " + std::to_string(i) + " of " + in[0].str() + ": start " +
                         std::to_string(start[i]) + ", limit " + std::to_string(limit[i]) + ", step " +
                         std::to_string(step[i]) + " is not a valid slice (need 0 <= start <= limit <= " +
                         std::to_string(in[0].shape[i]) + " and step >= 1)");
      s.push_back((limit[i] - start[i] + step[i] - 1) / step[i]);
    }
    return {{s, in[0].dtype}};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
};
#if EQX_KERNELS_HERE(LAYOUT)
EQX_KERNEL_INLINE void SlicePrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  const Ints &start = p.get<Ints>("start_indices"), &step = p.get<Ints>("strides");
  Shape src = contiguous_strides(*in[0].shape), st;
  std::int64_t base = 0;
  for (std::size_t i = 0; i < src.size(); ++i) {
    base += start[i] * src[i];
    st.push_back(src[i] * step[i]);
  }
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if (out[0].numel() > 0) strided_copy(in[0].as<const T>() + base, *out[0].shape, st, out[0].as<T>());
  });
}
#endif

/// rev[dimensions]: reverses the order of elements along those axes.
struct RevPrim final : Primitive {
  std::string_view name() const override { return "rev"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_leading(*this, o, x, d, Params(p).set("dimensions", shift_axes(p.get<Ints>("dimensions"))));
  }
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const Ints& dims = p.get<Ints>("dimensions");
    std::vector<bool> seen(in[0].shape.size(), false);
    for (auto d : dims) {
      if (d < 0 || d >= static_cast<std::int64_t>(in[0].shape.size()))
        throw IndexError("eqx::flip: axis " + std::to_string(d) + " is out of range for " + in[0].str());
      // A repeated axis would be reversed twice (a silent no-op); numpy rejects it.
      if (seen[d]) throw ValueError("eqx::flip: dimensions " + ints_str(dims) + " repeat an axis of " + in[0].str());
      seen[d] = true;
    }
    return {in[0]};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
};
#if EQX_KERNELS_HERE(LAYOUT)
EQX_KERNEL_INLINE void RevPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  const Shape& shape = *in[0].shape;
  Shape st = contiguous_strides(shape);
  std::int64_t base = 0;
  for (auto d : p.get<Ints>("dimensions")) {
    base += (shape[d] - 1) * st[d];
    st[d] = -st[d];
  }
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if (out[0].numel() > 0) strided_copy(in[0].as<const T>() + base, shape, st, out[0].as<T>());
  });
}
#endif

/// pad[low, high, interior](operand, padding_value): lax.pad. Adds `low`
/// and `high` elements at each end (negative values crop) and `interior`
/// elements between neighbours, all equal to the scalar padding_value.
struct PadPrim final : Primitive {
  std::string_view name() const override { return "pad"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    const Params shifted = with_leading_entry(p, {"low", "high", "interior"}, 0);
    if (d[1] == not_mapped) return {{eqx::bind1(*this, {o.batch_first(x[0], d[0], batch_size(x, d)), x[1]}, shifted)}, {0}};
    // A batched padding value: pad with zeros, then select each example's
    // value where a padded mask of ones is false (as JAX does).
    const std::int64_t n = batch_size(x, d);
    Array padded = eqx::bind1(*this, {o.batch_first(x[0], d[0], n), o.scalar(0, x[0].dtype())}, shifted);
    Shape inner = x[0].shape();
    if (d[0] != not_mapped) inner.erase(static_cast<std::size_t>(d[0]));
    Array mask = eqx::bind1(*this, {o.broadcast_to(o.scalar(1, DType::bool_), inner), o.scalar(0, DType::bool_)}, p);
    Shape value_shape = Shape::filled(padded.ndim(), 1);
    value_shape[0] = n;
    Array value = o.reshape(o.batch_first(x[1], d[1], n), value_shape);
    return {{o.select(mask, padded, o.broadcast_to(value, padded.shape()))}, {0}};
  }
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const Ints &lo = p.get<Ints>("low"), &hi = p.get<Ints>("high"), &interior = p.get<Ints>("interior");
    const std::size_t r = in[0].shape.size();
    require_rank("pad", "low", lo, r);
    require_rank("pad", "high", hi, r);
    require_rank("pad", "interior", interior, r);
    if (!in[1].shape.empty() || in[1].dtype != in[0].dtype)
      throw ValueError("eqx::pad: the padding value must be a scalar of the operand's dtype " +
                       std::string(dtype_name(in[0].dtype)) + ", got " + in[1].str());
    Shape s;
    for (std::size_t i = 0; i < r; ++i) {
      std::int64_t d = in[0].shape[i];
      if (interior[i] < 0) throw ValueError("eqx::pad: interior padding must be >= 0, got " + ints_str(interior));
      std::int64_t size = lo[i] + hi[i] + d + (d > 0 ? (d - 1) * interior[i] : 0);
      if (size < 0)
        throw ShapeError("eqx::pad: padding " + ints_str(lo) + "/" + ints_str(hi) + " crops axis " + std::to_string(i) +
                         " of " + in[0].str() + " below size 0");
      s.push_back(size);
    }
    return {{s, in[0].dtype}};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
};
#if EQX_KERNELS_HERE(LAYOUT)
EQX_KERNEL_INLINE void PadPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  const Ints &lo = p.get<Ints>("low"), &interior = p.get<Ints>("interior");
  const Shape &ishape = *in[0].shape, &oshape = *out[0].shape;
  const Shape ost = contiguous_strides(oshape);
  const std::size_t r = ishape.size();
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* a = in[0].as<const T>();
    T* o = out[0].as<T>();
    std::fill(o, o + out[0].numel(), *in[1].as<const T>());
    const std::int64_t n = in[0].numel();
    // Edge padding only (the VJP of slice, the common case): whole rows are copied.
    bool edges_only = r > 0 && n > 0;
    for (std::size_t i = 0; i < r && edges_only; ++i) edges_only = interior[i] == 0 && lo[i] >= 0 && oshape[i] >= lo[i] + ishape[i];
    if (edges_only) {
      const std::int64_t row = ishape[r - 1];
      Shape idx = Shape::filled(r, 0);
      for (std::int64_t k = 0; k < n; k += row) {
        std::int64_t dst = lo[r - 1];
        for (std::size_t i = 0; i + 1 < r; ++i) dst += (lo[i] + idx[i]) * ost[i];
        std::copy(a + k, a + k + row, o + dst);
        for (std::size_t i = r - 1; i-- > 0;) {
          if (++idx[i] < ishape[i]) break;
          idx[i] = 0;
        }
      }
      return;
    }
    Shape idx = Shape::filled(r, 0);
    for (std::int64_t k = 0; k < n; ++k) {
      std::int64_t dst = 0;
      bool inside = true;
      for (std::size_t i = 0; i < r && inside; ++i) {
        std::int64_t pos = lo[i] + idx[i] * (interior[i] + 1);
        inside = pos >= 0 && pos < oshape[i];
        dst += pos * ost[i];
      }
      if (inside) o[dst] = a[k];
      for (std::size_t i = r; i-- > 0;) {
        if (++idx[i] < ishape[i]) break;
        idx[i] = 0;
      }
    }
  });
}
#endif

/// concatenate[dimension]: joins operands of equal dtype along one axis.
struct ConcatenatePrim final : Primitive {
  std::string_view name() const override { return "concatenate"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_leading(*this, o, x, d, Params(p).set("dimension", p.get<std::int64_t>("dimension") + 1));
  }
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const auto axis = static_cast<std::size_t>(p.get<std::int64_t>("dimension"));
    if (in.empty()) throw ValueError("eqx::concatenate: needs at least one array");
    Shape s = in[0].shape;
    if (axis >= s.size())
      throw IndexError("eqx::concatenate: axis " + std::to_string(axis) + " is out of range for " + in[0].str());
    for (std::size_t k = 1; k < in.size(); ++k) {
      bool ok = in[k].shape.size() == s.size() && in[k].dtype == in[0].dtype;
      for (std::size_t i = 0; ok && i < s.size(); ++i) ok = i == axis || in[k].shape[i] == s[i];
      if (!ok)
        throw ShapeError("eqx::concatenate: array " + std::to_string(k) + " is " + in[k].str() + " but array 0 is " +
                         in[0].str() + "; all must have the same dtype and rank, and equal sizes except on axis " +
                         std::to_string(axis));
      s[axis] += in[k].shape[axis];
    }
    return {{s, in[0].dtype}};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
};
#if EQX_KERNELS_HERE(LAYOUT)
EQX_KERNEL_INLINE void ConcatenatePrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  const auto axis = static_cast<std::size_t>(p.get<std::int64_t>("dimension"));
  const Shape& oshape = *out[0].shape;
  std::int64_t outer = 1;
  for (std::size_t i = 0; i < axis; ++i) outer *= oshape[i];
  const std::size_t isz = itemsize(out[0].dtype);
  const std::int64_t out_row = oshape.numel() / std::max<std::int64_t>(outer, 1);
  auto* o = static_cast<std::byte*>(out[0].data);
  std::int64_t col = 0;
  for (const View& v : in) {
    const std::int64_t row = outer ? v.numel() / outer : 0;
    const auto* a = static_cast<const std::byte*>(v.data);
    for (std::int64_t r = 0; r < outer && row > 0; ++r)
      std::memcpy(o + (r * out_row + col) * isz, a + r * row * isz, static_cast<std::size_t>(row) * isz);
    col += row;
  }
}
#endif

/// iota[dtype, shape, dimension]: out[i...] = i[dimension].
struct IotaPrim final : Primitive {
  std::string_view name() const override { return "iota"; }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray>, const Params& p) const override {
    const Ints& shape = p.get<Ints>("shape");
    auto dim = p.get<std::int64_t>("dimension");
    DType dt = p.get<DType>("dtype");
    if (dim < 0 || dim >= static_cast<std::int64_t>(shape.size()))
      throw IndexError("eqx::iota: dimension " + std::to_string(dim) + " is out of range for shape " + ints_str(shape));
    if (dt == DType::bool_) throw DTypeError("eqx::iota: dtype bool cannot count; use int32, uint32 or a float");
    return {{Shape(shape.begin(), shape.end()), dt}};
  }
  void kernel(std::span<const View>, std::span<const View> out, const Params& p) const override;
};
#if EQX_KERNELS_HERE(LAYOUT)
EQX_KERNEL_INLINE void IotaPrim::kernel(std::span<const View>, std::span<const View> out, const Params& p) const {
  const Shape& s = *out[0].shape;
  auto dim = static_cast<std::size_t>(p.get<std::int64_t>("dimension"));
  std::int64_t inner = 1;
  for (std::size_t i = dim + 1; i < s.size(); ++i) inner *= s[i];
  const std::int64_t len = s[dim];
  visit_dtype(out[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    T* o = out[0].as<T>();
    for (std::int64_t k = 0, n = out[0].numel(); k < n; ++k) o[k] = static_cast<T>((k / inner) % len);
  });
}
#endif

}  // namespace eqx::detail

namespace eqx::prim {
inline const detail::ReshapePrim reshape;
inline const detail::TransposePrim transpose;
inline const detail::BroadcastInDimPrim broadcast_in_dim;
inline const detail::SlicePrim slice;
inline const detail::RevPrim rev;
inline const detail::PadPrim pad;
inline const detail::ConcatenatePrim concatenate;
inline const detail::IotaPrim iota;
}  // namespace eqx::prim

// --- differentiation rules (after the primitives they bind) -----------------------------

#if EQX_KERNELS_HERE(LAYOUT)
namespace eqx::detail {

EQX_KERNEL_INLINE std::vector<Array> SlicePrim::jvp(const RuleOps& o, std::span<const Array>, std::span<const Array> t,
                                                    std::span<const Array>, const Params& p) const {
  return {o.linear(*this, t[0], p)};
}
// The cotangent goes back where the slice read: zeros padded around it, with
// stride - 1 zeros between neighbours.
EQX_KERNEL_INLINE std::vector<Array> SlicePrim::vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array>,
                                                    std::span<const Array> ct, const Params& p) const {
  if (!ct[0].has_value()) return {Array{}};
  const Ints &start = p.get<Ints>("start_indices"), &step = p.get<Ints>("strides");
  const Shape& in = x[0].shape();
  if (ct[0].size() == 0) return {o.zeros_like(x[0])};
  Ints lo(start), hi(in.size()), interior(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    interior[i] = step[i] - 1;
    hi[i] = in[i] - (start[i] + (ct[0].shape()[i] - 1) * step[i] + 1);
  }
  return {bind1(prim::pad, {ct[0], o.scalar(0, ct[0].dtype())},
                Params{}.set("low", lo).set("high", hi).set("interior", interior))};
}

EQX_KERNEL_INLINE std::vector<Array> RevPrim::jvp(const RuleOps& o, std::span<const Array>, std::span<const Array> t,
                                                  std::span<const Array>, const Params& p) const {
  return {o.linear(*this, t[0], p)};
}
EQX_KERNEL_INLINE std::vector<Array> RevPrim::vjp(const RuleOps& o, std::span<const Array>, std::span<const Array>,
                                                  std::span<const Array> ct, const Params& p) const {
  return {o.linear(*this, ct[0], p)};
}

// pad is linear in (operand, padding value) jointly.
EQX_KERNEL_INLINE std::vector<Array> PadPrim::jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                                                  std::span<const Array>, const Params& p) const {
  return {bind1(*this, {o.instantiate(t[0], x[0].shape(), x[0].dtype()), o.instantiate(t[1], {}, x[1].dtype())}, p)};
}
// The operand's cotangent is what pad copied it to: undo low/high (a pad by
// their negatives crops), then take every (interior + 1)-th element. The
// padding value was copied everywhere else: it gets the rest of the sum.
EQX_KERNEL_INLINE std::vector<Array> PadPrim::vjp(const RuleOps& o, std::span<const Array>, std::span<const Array>,
                                                  std::span<const Array> ct, const Params& p) const {
  if (!ct[0].has_value()) return {Array{}, Array{}};
  const Ints &lo = p.get<Ints>("low"), &hi = p.get<Ints>("high"), &interior = p.get<Ints>("interior");
  const std::size_t r = lo.size();
  Ints neg_lo(r), neg_hi(r), step(r);
  for (std::size_t i = 0; i < r; ++i) {
    neg_lo[i] = -lo[i];
    neg_hi[i] = -hi[i];
    step[i] = interior[i] + 1;
  }
  Array unpadded = bind1(*this, {ct[0], o.scalar(0, ct[0].dtype())},
                         Params{}.set("low", neg_lo).set("high", neg_hi).set("interior", Ints(r, 0)));
  Array operand_ct = bind1(prim::slice, {unpadded},
                           Params{}
                               .set("start_indices", Ints(r, 0))
                               .set("limit_indices", Ints(unpadded.shape().begin(), unpadded.shape().end()))
                               .set("strides", step));
  Ints all(r);
  for (std::size_t i = 0; i < r; ++i) all[i] = static_cast<std::int64_t>(i);
  Array value_ct = o.sub(o.reduce_sum(ct[0], all), o.reduce_sum(operand_ct, all));
  return {operand_ct, o.reshape(value_ct, {})};
}

// Linear: the tangents concatenated (symbolic zeros made concrete, unless
// every tangent is zero); the cotangent sliced back into the operands' parts.
EQX_KERNEL_INLINE std::vector<Array> ConcatenatePrim::jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                                                          std::span<const Array>, const Params& p) const {
  if (std::none_of(t.begin(), t.end(), [](const Array& a) { return a.has_value(); })) return {Array{}};
  std::vector<Array> parts;
  for (std::size_t k = 0; k < x.size(); ++k) parts.push_back(o.instantiate(t[k], x[k].shape(), x[k].dtype()));
  return eqx::bind(*this, parts, p);
}
EQX_KERNEL_INLINE std::vector<Array> ConcatenatePrim::vjp(const RuleOps&, std::span<const Array> x, std::span<const Array>,
                                                          std::span<const Array> ct, const Params& p) const {
  std::vector<Array> out(x.size());
  if (!ct[0].has_value()) return out;
  const auto axis = static_cast<std::size_t>(p.get<std::int64_t>("dimension"));
  const Shape& whole = ct[0].shape();
  Ints start(whole.size(), 0), limit(whole.begin(), whole.end());
  std::int64_t offset = 0;
  for (std::size_t k = 0; k < x.size(); ++k) {
    start[axis] = offset;
    limit[axis] = offset += x[k].shape()[axis];
    out[k] = bind1(prim::slice, {ct[0]},
                   Params{}.set("start_indices", start).set("limit_indices", limit).set("strides", Ints(whole.size(), 1)));
  }
  return out;
}
}  // namespace eqx::detail
#endif
