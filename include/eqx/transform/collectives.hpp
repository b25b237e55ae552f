#pragma once
// Collectives over a named vmap axis: eqx::psum, pmean, pmax, all_gather
// and axis_index (JAX's lax.psum, ... with vmap's axis_name).
//
// Inside `filter_vmap(f, in_axes, out_axes, std::nullopt, "batch")`, f sees
// one example; `eqx::pmean(x, "batch")` is the mean of x over all examples
// of that vmap, the same value for each. This is how Equinox's BatchNorm
// computes batch statistics. A collective is a primitive whose per-example
// shape rule is the identity (all_gather adds the axis in front); its
// batching rule does the work: over the axis being batched it reduces the
// batch axis away (the result is no longer per example), over another name
// it stays an equation for the enclosing vmap of that name. Outside a vmap
// of that name it is an error at once.
//
//   auto normalise = [](const eqx::Array& x) { return x - eqx::pmean(x, "batch"); };
//   eqx::Array centred = eqx::filter_vmap(normalise, 0, 0, std::nullopt, "batch")(xs);
//
// Derivatives are those of the batched meaning: psum and pmean are linear
// and self-adjoint over the axis (the cotangent is summed/averaged), pmax
// passes the tangent of the maximum (split among ties), and all_gather's
// transpose gives each example the summed cotangent of its own row.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eqx/ad/named_axes.hpp"
#include "eqx/core/config.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx {

namespace detail {

enum class CollectiveKind { sum, mean, max, all_gather, axis_index };

/// One primitive per collective: psum, pmean, pmax, all_gather (param
/// axis_name; all_gather also axis_size) and axis_index (no inputs).
struct CollectivePrim final : Primitive {
  CollectiveKind kind;
  explicit CollectivePrim(CollectiveKind k) : kind(k) {}

  std::string_view name() const override {
    switch (kind) {
      case CollectiveKind::sum: return "psum";
      case CollectiveKind::mean: return "pmean";
      case CollectiveKind::max: return "pmax";
      case CollectiveKind::all_gather: return "all_gather";
      case CollectiveKind::axis_index: return "axis_index";
    }
    return "collective";
  }
  static const std::string& axis_name(const Params& p) { return p.get<std::string>("axis_name"); }
  static bool over_batching_axis(const Params& p) {
    return batching_axis() != nullptr && batching_axis()->name == axis_name(p);
  }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    if (kind == CollectiveKind::axis_index) return {{Shape{}, DType::int32}};
    if (kind == CollectiveKind::all_gather) {
      Shape s = in[0].shape;
      s.insert(0, p.get<std::int64_t>("axis_size"));
      return {{std::move(s), in[0].dtype}};
    }
    return {in[0]};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;

  std::vector<Array> jvp(const RuleOps& ops, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> out, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& ops, std::span<const Array> x, std::span<const Array> out,
                         std::span<const Array> ct, const Params& p) const override;
  Batched batch(const RuleOps& ops, std::span<const Array> x, BatchDims d, const Params& p) const override;
  bool batch_unmapped(const Params& p) const override { return over_batching_axis(p); }
};

}  // namespace detail

namespace prim {
inline const detail::CollectivePrim psum{detail::CollectiveKind::sum};
inline const detail::CollectivePrim pmean{detail::CollectiveKind::mean};
inline const detail::CollectivePrim pmax{detail::CollectiveKind::max};
inline const detail::CollectivePrim all_gather{detail::CollectiveKind::all_gather};
inline const detail::CollectivePrim axis_index{detail::CollectiveKind::axis_index};
}  // namespace prim

namespace detail {

/// The traced vmap axis called `name`, or an error naming `op` and the fix.
inline const NamedAxis& require_axis(std::string_view op, std::string_view name) {
  if (const NamedAxis* axis = find_traced_axis(name)) return *axis;
  throw ValueError("eqx::" + std::string(op) + ": no filter_vmap with axis_name \"" + std::string(name) +
                   "\" is running; call it inside eqx::filter_vmap(f, in_axes, out_axes, std::nullopt, \"" +
                   std::string(name) + "\")");
}

inline Array bind_collective(const CollectivePrim& p, std::string_view op, const Array& x, std::string_view name) {
  const NamedAxis& axis = require_axis(op, name);
  if (!x.has_value()) throw ValueError("eqx::" + std::string(op) + ": the input is an empty Array (None)");
  Params params = Params{}.set("axis_name", std::string(name));
  if (&p == &prim::all_gather) params.set("axis_size", axis.size);
  return bind1(p, {x}, params);
}

}  // namespace detail

/// The sum of x over every example of the vmap named `axis_name` (the same
/// for each example). Usage: `eqx::Array total = eqx::psum(x, "batch");`
inline Array psum(const Array& x, std::string_view axis_name) {
  return detail::bind_collective(prim::psum, "psum", x, axis_name);
}

/// The mean of x over every example of the vmap named `axis_name`; x must
/// be floating. Usage: `eqx::Array mu = eqx::pmean(x, "batch");`
inline Array pmean(const Array& x, std::string_view axis_name) {
  if (x.has_value() && !is_floating(x.dtype()))
    throw DTypeError("eqx::pmean: the input must be float32 or float64, got " + std::string(dtype_name(x.dtype())) +
                     "; convert it first (eqx::astype) or use eqx::psum");
  return detail::bind_collective(prim::pmean, "pmean", x, axis_name);
}

/// The elementwise maximum of x over every example of the vmap named
/// `axis_name`. Usage: `eqx::Array m = eqx::pmax(x, "batch");`
inline Array pmax(const Array& x, std::string_view axis_name) {
  return detail::bind_collective(prim::pmax, "pmax", x, axis_name);
}

/// Every example's x stacked along a new first axis: [n, *x.shape] for a
/// vmap of n examples named `axis_name`. Usage: `eqx::Array all = eqx::all_gather(x, "batch");`
inline Array all_gather(const Array& x, std::string_view axis_name) {
  return detail::bind_collective(prim::all_gather, "all_gather", x, axis_name);
}

/// This example's index (int32 scalar) along the vmap named `axis_name`.
/// Usage: `eqx::Array i = eqx::axis_index("batch");`
inline Array axis_index(std::string_view axis_name) {
  detail::require_axis("axis_index", axis_name);
  return bind1(prim::axis_index, {}, Params{}.set("axis_name", std::string(axis_name)));
}

#if EQX_KERNELS_HERE(CONTROL_FLOW)
namespace detail {

EQX_KERNEL_INLINE void CollectivePrim::kernel(std::span<const View>, std::span<const View>, const Params& p) const {
  throw ValueError("eqx::" + std::string(name()) + ": internal error: a collective over \"" + axis_name(p) +
                   "\" reached a kernel; collectives only run inside the eqx::filter_vmap of that name");
}

EQX_KERNEL_INLINE std::vector<Array> CollectivePrim::jvp(const RuleOps& ops, std::span<const Array> x,
                                                         std::span<const Array> t, std::span<const Array> out,
                                                         const Params& p) const {
  if (kind == CollectiveKind::axis_index || !t[0].has_value()) return {Array{}};
  if (kind != CollectiveKind::max) return {bind1(*this, {t[0]}, p)};
  // pmax: the tangent of the examples holding the maximum, averaged over ties.
  Params sum_params = Params{}.set("axis_name", axis_name(p));
  Array at_max = ops.convert(bind1(*ops.eq_p, {x[0], out[0]}), x[0].dtype());
  return {ops.div(bind1(prim::psum, {ops.mul(at_max, t[0])}, sum_params), bind1(prim::psum, {at_max}, sum_params))};
}

EQX_KERNEL_INLINE std::vector<Array> CollectivePrim::vjp(const RuleOps& ops, std::span<const Array> x,
                                                         std::span<const Array> out, std::span<const Array> ct,
                                                         const Params& p) const {
  if (kind == CollectiveKind::axis_index) return {};
  if (!ct[0].has_value()) return {Array{}};
  Params sum_params = Params{}.set("axis_name", axis_name(p));
  switch (kind) {
    case CollectiveKind::sum:
    case CollectiveKind::mean: return {bind1(*this, {ct[0]}, p)};
    case CollectiveKind::max: {
      Array at_max = ops.convert(bind1(*ops.eq_p, {x[0], out[0]}), x[0].dtype());
      return {ops.div(ops.mul(at_max, bind1(prim::psum, {ct[0]}, sum_params)), bind1(prim::psum, {at_max}, sum_params))};
    }
    default: {  // all_gather: example i gets row i of the cotangents summed over the axis
      const Array total = bind1(prim::psum, {ct[0]}, sum_params);
      const std::int64_t n = total.shape()[0];
      Array me = bind1(prim::axis_index, {}, sum_params);
      Shape row_shape = Shape::filled(total.ndim(), 1);
      row_shape[0] = n;
      Array mine = ops.convert(bind1(*ops.eq_p, {ops.reshape(iota(DType::int32, Shape{n}, 0), row_shape), me}),
                               total.dtype());
      return {ops.reduce_sum(ops.mul(total, mine), {0})};
    }
  }
}

EQX_KERNEL_INLINE Batched CollectivePrim::batch(const RuleOps& ops, std::span<const Array> x, BatchDims d,
                                               const Params& p) const {
  if (!over_batching_axis(p)) {  // another vmap's axis: stays an equation, per example of this one
    if (kind == CollectiveKind::axis_index) return {{bind1(*this, {}, p)}, {not_mapped}};
    const std::int64_t out_dim = d[0] == not_mapped ? not_mapped : d[0] + (kind == CollectiveKind::all_gather);
    return {{bind1(*this, {x[0]}, p)}, {out_dim}};
  }
  const std::int64_t n = batching_axis()->size;
  if (kind == CollectiveKind::axis_index) return {{iota(DType::int32, Shape{n}, 0)}, {0}};
  const Array& v = x[0];
  if (d[0] == not_mapped) {  // the same value in every example
    switch (kind) {
      case CollectiveKind::sum: return {{ops.mul(v, ops.scalar(static_cast<double>(n), v.dtype()))}, {not_mapped}};
      case CollectiveKind::all_gather: return {{ops.batch_first(v, not_mapped, n)}, {not_mapped}};
      default: return {{v}, {not_mapped}};
    }
  }
  switch (kind) {
    case CollectiveKind::sum: return {{ops.reduce_sum(v, {d[0]})}, {not_mapped}};
    case CollectiveKind::mean:
      return {{ops.div(ops.reduce_sum(v, {d[0]}), ops.scalar(static_cast<double>(n), v.dtype()))}, {not_mapped}};
    case CollectiveKind::max: return {{eqx::max(v, d[0])}, {not_mapped}};
    default: return {{ops.moveaxis(v, d[0], 0)}, {not_mapped}};  // all_gather
  }
}

}  // namespace detail
#endif

}  // namespace eqx
