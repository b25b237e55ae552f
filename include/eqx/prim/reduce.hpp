#pragma once
// Reductions over a set of axes: reduce_sum, reduce_prod, reduce_max,
// reduce_min, reduce_and, reduce_or; and argmax/argmin over one axis.
//
// The kernel views the operand as [outer, reduced, inner] when the reduced
// axes are adjacent (the common case: one axis, a prefix or a suffix) and
// transposes them together first otherwise, so every reduction is a
// vectorised Eigen reduction or row accumulation.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "eqx/core/config.hpp"
#if EQX_KERNELS_HERE(REDUCE)
// Eigen's reductions, only where these kernels are compiled (as in
// prim/unary.hpp).
#include <Eigen/Core>
#endif

#include "eqx/core/threads.hpp"
#include "eqx/prim/layout.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/prim/unary.hpp"

namespace eqx::detail {

/// Sorted, unique, in-range axes or an error naming `op`.
inline void check_axes(std::string_view op, const Ints& axes, const AbstractArray& x) {
  for (std::size_t i = 0; i < axes.size(); ++i)
    if (axes[i] < 0 || axes[i] >= static_cast<std::int64_t>(x.shape.size()) || (i && axes[i] <= axes[i - 1]))
      throw IndexError("eqx::" + std::string(op) + ": axes " + ints_str(axes) + " are not distinct axes of " + x.str());
}

inline Shape reduced_shape(const Shape& s, const Ints& axes) {
  Shape out;
  for (std::size_t i = 0, k = 0; i < s.size(); ++i) {
    if (k < axes.size() && axes[k] == static_cast<std::int64_t>(i)) ++k;
    else out.push_back(s[i]);
  }
  return out;
}

/// The operand as [outer, reduced, inner], transposing the reduced axes to
/// the end first when they are not adjacent (the copy lives in `scratch`).
template <class T>
const T* as_three_axes(const View& x, const Ints& axes, std::unique_ptr<T[]>& scratch, std::int64_t dims[3]) {
  const Shape& s = *x.shape;
  bool adjacent = axes.empty() || axes.back() - axes.front() + 1 == static_cast<std::int64_t>(axes.size());
  if (adjacent) {
    dims[0] = dims[1] = dims[2] = 1;
    for (std::size_t i = 0; i < s.size(); ++i) {
      auto ii = static_cast<std::int64_t>(i);
      dims[axes.empty() || ii < axes.front() ? 0 : (ii <= axes.back() ? 1 : 2)] *= s[i];
    }
    return x.as<const T>();
  }
  Shape st_src = contiguous_strides(s), st, perm_shape;
  dims[0] = dims[1] = 1;
  dims[2] = 1;
  for (std::size_t i = 0, k = 0; i < s.size(); ++i) {
    if (k < axes.size() && axes[k] == static_cast<std::int64_t>(i)) { ++k; continue; }
    st.push_back(st_src[i]);
    perm_shape.push_back(s[i]);
    dims[0] *= s[i];
  }
  for (auto a : axes) {
    st.push_back(st_src[a]);
    perm_shape.push_back(s[a]);
    dims[1] *= s[a];
  }
  scratch = std::make_unique_for_overwrite<T[]>(static_cast<std::size_t>(s.numel()));
  strided_copy(x.as<const T>(), perm_shape, st, scratch.get());
  return scratch.get();
}

struct SumOp;
struct ProdOp;

/// x's shape with 1 on the reduced axes: where a reduced value broadcasts back.
inline Shape kept_shape(Shape s, const Ints& axes) {
  for (auto a : axes) s[static_cast<std::size_t>(a)] = 1;
  return s;
}

/// d y / d x for y = reduce(x) over `axes`, elementwise at x's shape.
/// prod: the product of the other elements, without dividing by a zero.
/// With z zeros in a group and `rest` the product of its non-zero elements:
///   z == 0: rest / x;
///   z == 1: rest at the zero, zval * rest / x elsewhere (zval: the zero
///           element's value, 0 but carrying its derivative);
///   z == 2: (the other zero's value) * rest at the zeros, 0 elsewhere;
///   z >= 3: 0.
/// So values are exact, and so are second derivatives (Hessians) at zeros.
/// max/min: 1 / (number of extreme elements) at each extreme element, so
/// ties share the gradient equally (as JAX's reduce_max rule does).
template <class Op>
Array reduction_weights(const RuleOps& o, const Array& x, const Array& y, const Ints& axes) {
  const DType d = x.dtype();
  const Shape kept = kept_shape(x.shape(), axes);
  auto spread = [&](const Array& r) { return o.broadcast_to(o.reshape(r, kept), x.shape()); };
  if constexpr (std::is_same_v<Op, ProdOp>) {
    auto full = [&](double v) { return o.broadcast_to(o.scalar(v, d), x.shape()); };
    Array is_zero = o.bin(o.eq_p, x, o.scalar(0, d));
    Array safe_x = o.select(is_zero, full(1), x);
    Array rest = spread(o.reduce_prod(safe_x, axes));
    Array zeros = spread(o.reduce_sum(o.convert(is_zero, d), axes));
    Array zero_sum = spread(o.reduce_sum(o.select(is_zero, x, full(0)), axes));  // sum of the zero elements
    auto count_is = [&](double n) { return o.bin(o.eq_p, zeros, full(n)); };
    Array at_zero = o.select(count_is(1), rest, o.select(count_is(2), o.mul(o.sub(zero_sum, x), rest), full(0)));
    Array elsewhere = o.select(count_is(0), o.div(rest, safe_x),
                               o.select(count_is(1), o.div(o.mul(zero_sum, rest), safe_x), full(0)));
    return o.select(is_zero, at_zero, elsewhere);
  } else {
    Array at_extreme = o.convert(o.bin(o.eq_p, x, spread(y)), d);
    return o.div(at_extreme, spread(o.reduce_sum(at_extreme, axes)));
  }
}

/// Shape rule and kernel shared by the axis reductions.
template <class Op>
struct ReducePrim final : Primitive {
  std::string_view name() const override { return Op::name; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_leading(*this, o, x, d, Params(p).set("axes", shift_axes(p.get<Ints>("axes"))));
  }

  // reduce_sum is linear; prod and max/min are linear in the tangent with a
  // weight per element (reduction_weights). and/or have bool outputs, so the
  // AD layer never asks them for a rule.
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override {
    const Ints& axes = p.get<Ints>("axes");
    if constexpr (std::is_same_v<Op, SumOp>) return {o.reduce_sum(t[0], axes)};
    else return {o.reduce_sum(o.mul(t[0], reduction_weights<Op>(o, x[0], y[0], axes)), axes)};
  }
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override {
    if (!ct[0].has_value()) return {Array{}};
    const Ints& axes = p.get<Ints>("axes");
    Array spread = o.broadcast_to(o.reshape(ct[0], kept_shape(x[0].shape(), axes)), x[0].shape());
    if constexpr (std::is_same_v<Op, SumOp>) return {spread};
    else return {o.mul(spread, reduction_weights<Op>(o, x[0], y[0], axes))};
  }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    return {*output_type(in, p)};
  }
  std::optional<AbstractArray> output_type(std::span<const AbstractArray> in, const Params& p) const override {
    const Ints& axes = p.get<Ints>("axes");
    check_axes(Op::name, axes, in[0]);
    require_dtype<Op>(in[0].dtype);
    if (!Op::kHasIdentity) {
      for (auto a : axes)
        if (in[0].shape[a] == 0)
          throw ValueError("eqx::" + std::string(Op::user_name) + ": cannot reduce over axis " + std::to_string(a) +
                           " of size 0 in " + in[0].str() + "; the operation has no identity");
    }
    return AbstractArray{reduced_shape(in[0].shape, axes), in[0].dtype};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;

 private:
  template <class T>
  static void run(const View& x, const View& out, const Ints& axes);
};
#if EQX_KERNELS_HERE(REDUCE)
template <class T>
using EArray = Eigen::Array<T, Eigen::Dynamic, 1>;
template <class T>
using EMap = Eigen::Map<EArray<T>>;
template <class T>
using ECMap = Eigen::Map<const EArray<T>>;

template <class Op>
template <class T>
void ReducePrim<Op>::run(const View& x, const View& out, const Ints& axes) {
  std::unique_ptr<T[]> scratch;
  std::int64_t d[3];
  const T* a = as_three_axes<T>(x, axes, scratch, d);
  const std::int64_t A = d[0], R = d[1], B = d[2];
  T* o = out.as<T>();
  if (B == 1) {
    parallel_for(A, R, [&](std::int64_t s, std::int64_t e) {
      for (std::int64_t i = s; i < e; ++i)
        o[i] = R ? Op::template reduce<T>(ECMap<T>(a + i * R, R)) : Op::template identity<T>();
    });
    return;
  }
  parallel_for(A, R * B, [&](std::int64_t s, std::int64_t e) {
    for (std::int64_t i = s; i < e; ++i) {
      EMap<T> acc(o + i * B, B);
      acc.setConstant(Op::template identity<T>());
      for (std::int64_t r = 0; r < R; ++r) acc = Op::combine(acc, ECMap<T>(a + (i * R + r) * B, B));
    }
  });
}
template <class Op>
void ReducePrim<Op>::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (Op::template supports<T>) run<T>(in[0], out[0], p.get<Ints>("axes"));
  });
}
#endif

struct SumOp {
  static constexpr std::string_view name = "reduce_sum", user_name = "sum";
  static constexpr const char* accepts = kNumeric;
  static constexpr bool kHasIdentity = true;
  template <class T> static constexpr bool supports = !std::is_same_v<T, bool>;
  template <class T> static T identity() { return T(0); }
  template <class T, class A> static T reduce(const A& a) { return a.sum(); }
  template <class A, class B> static auto combine(const A& a, const B& b) { return a + b; }
};
struct ProdOp {
  static constexpr std::string_view name = "reduce_prod", user_name = "prod";
  static constexpr const char* accepts = kNumeric;
  static constexpr bool kHasIdentity = true;
  template <class T> static constexpr bool supports = !std::is_same_v<T, bool>;
  template <class T> static T identity() { return T(1); }
  template <class T, class A> static T reduce(const A& a) { return a.prod(); }
  template <class A, class B> static auto combine(const A& a, const B& b) { return a * b; }
};
/// Max/min propagate NaN, as numpy's max/min do.
template <bool kIsMax>
struct ExtremumReduceOp {
  static constexpr std::string_view name = kIsMax ? "reduce_max" : "reduce_min", user_name = kIsMax ? "max" : "min";
  static constexpr const char* accepts = kAny;
  static constexpr bool kHasIdentity = false;
  template <class T> static constexpr bool supports = true;
  template <class T> static T identity() {
    if constexpr (std::is_same_v<T, bool>) return !kIsMax;
    else if constexpr (std::is_floating_point_v<T>)
      return kIsMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
    else return kIsMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
  }
#if EQX_KERNELS_HERE(REDUCE)  // Eigen's NaN-propagating max/min
  template <class T, class A> static T reduce(const A& a) {
    if constexpr (std::is_same_v<T, bool>) return kIsMax ? a.any() : a.all();
    else if constexpr (std::is_floating_point_v<T>) {
      if constexpr (kIsMax) return a.template maxCoeff<Eigen::PropagateNaN>();
      else return a.template minCoeff<Eigen::PropagateNaN>();
    } else {
      return kIsMax ? a.maxCoeff() : a.minCoeff();
    }
  }
  template <class A, class B> static auto combine(const A& a, const B& b) {
    using T = typename A::Scalar;
    if constexpr (std::is_floating_point_v<T>) {
      if constexpr (kIsMax) return a.binaryExpr(b, Eigen::internal::scalar_max_op<T, T, Eigen::PropagateNaN>());
      else return a.binaryExpr(b, Eigen::internal::scalar_min_op<T, T, Eigen::PropagateNaN>());
    } else {
      return a.binaryExpr(b, [](T x, T y) { return kIsMax ? (x > y ? x : y) : (x < y ? x : y); });
    }
  }
#endif
};
template <bool kIsAnd>
struct LogicalReduceOp {
  static constexpr std::string_view name = kIsAnd ? "reduce_and" : "reduce_or", user_name = kIsAnd ? "all" : "any";
  static constexpr const char* accepts = "bool";
  static constexpr bool kHasIdentity = true;
  template <class T> static constexpr bool supports = std::is_same_v<T, bool>;
  template <class T> static T identity() { return kIsAnd; }
  template <class T, class A> static T reduce(const A& a) { return kIsAnd ? a.all() : a.any(); }
  template <class A, class B> static auto combine(const A& a, const B& b) {
    return a.binaryExpr(b, [](bool x, bool y) { return kIsAnd ? (x && y) : (x || y); });
  }
};

/// argmax/argmin[axis, index_dtype]: index of the first extreme element along
/// one axis; a NaN counts as the extreme (numpy's rule).
template <bool kIsMax>
struct ArgExtremumPrim final : Primitive {
  std::string_view name() const override { return kIsMax ? "argmax" : "argmin"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_leading(*this, o, x, d, Params(p).set("axis", p.get<std::int64_t>("axis") + 1));
  }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    return {*output_type(in, p)};
  }
  std::optional<AbstractArray> output_type(std::span<const AbstractArray> in, const Params& p) const override {
    auto axis = p.get<std::int64_t>("axis");
    check_axes(name(), {axis}, in[0]);
    if (in[0].shape[axis] == 0)
      throw ValueError("eqx::" + std::string(name()) + ": cannot take " + std::string(name()) + " over axis " +
                       std::to_string(axis) + " of size 0 in " + in[0].str());
    const DType index_dtype = p.get<DType>("index_dtype");
    if (index_dtype != DType::int32 && index_dtype != DType::uint32)
      throw DTypeError("eqx::" + std::string(name()) + ": index_dtype is " + std::string(dtype_name(index_dtype)) +
                       "; indices are int32 or uint32");
    return AbstractArray{reduced_shape(in[0].shape, {axis}), index_dtype};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
};
#if EQX_KERNELS_HERE(REDUCE)
template <bool kIsMax>
void ArgExtremumPrim<kIsMax>::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  auto axis = p.get<std::int64_t>("axis");
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    std::unique_ptr<T[]> scratch;
    std::int64_t d[3];
    const T* a = as_three_axes<T>(in[0], {axis}, scratch, d);
    const std::int64_t R = d[1], B = d[2];
    // An index (below 2^31) has the same bits as int32 and as uint32 (the
    // two index dtypes), so one loop per operand dtype stores both.
    auto* o = static_cast<std::uint32_t*>(out[0].data);
    parallel_for(d[0] * B, R, [&](std::int64_t s, std::int64_t e) {
      for (std::int64_t k = s; k < e; ++k) {
        const T* base = a + (k / B) * R * B + (k % B);
        std::int64_t best = 0;
        for (std::int64_t r = 1; r < R; ++r) {
          T v = base[r * B], bv = base[best * B];
          if constexpr (std::is_floating_point_v<T>) {
            if (std::isnan(bv)) break;
            if (std::isnan(v)) { best = r; break; }
          }
          if (kIsMax ? v > bv : v < bv) best = r;
        }
        o[k] = static_cast<std::uint32_t>(best);
      }
    });
  });
}
#endif

}  // namespace eqx::detail

#if defined(EQX_COMPILED_KERNELS)
EQX_INSTANTIATION(REDUCE) struct eqx::detail::ReducePrim<eqx::detail::SumOp>;
EQX_INSTANTIATION(REDUCE) struct eqx::detail::ReducePrim<eqx::detail::ProdOp>;
EQX_INSTANTIATION(REDUCE) struct eqx::detail::ReducePrim<eqx::detail::ExtremumReduceOp<true>>;
EQX_INSTANTIATION(REDUCE) struct eqx::detail::ReducePrim<eqx::detail::ExtremumReduceOp<false>>;
EQX_INSTANTIATION(REDUCE) struct eqx::detail::ReducePrim<eqx::detail::LogicalReduceOp<true>>;
EQX_INSTANTIATION(REDUCE) struct eqx::detail::ReducePrim<eqx::detail::LogicalReduceOp<false>>;
EQX_INSTANTIATION(REDUCE) struct eqx::detail::ArgExtremumPrim<true>;
EQX_INSTANTIATION(REDUCE) struct eqx::detail::ArgExtremumPrim<false>;
#endif

namespace eqx::prim {
inline const detail::ReducePrim<detail::SumOp> reduce_sum;
inline const detail::ReducePrim<detail::ProdOp> reduce_prod;
inline const detail::ReducePrim<detail::ExtremumReduceOp<true>> reduce_max;
inline const detail::ReducePrim<detail::ExtremumReduceOp<false>> reduce_min;
inline const detail::ReducePrim<detail::LogicalReduceOp<true>> reduce_and;
inline const detail::ReducePrim<detail::LogicalReduceOp<false>> reduce_or;
inline const detail::ArgExtremumPrim<true> argmax;
inline const detail::ArgExtremumPrim<false> argmin;
}  // namespace eqx::prim
