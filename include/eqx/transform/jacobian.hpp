#pragma once
// filter_jacfwd, filter_jacrev, filter_hessian: Jacobians of an Array-valued
// function with respect to the floating Array leaves of its first argument.
//
// jacrev runs one backward pass per output element (over one forward tape);
// jacfwd runs one forward-mode pass per input element. Both build their
// basis vectors as constants, so they suit the small Jacobians these helpers
// are for; under filter_jit the repeated primal computations of jacfwd are
// merged by CSE.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/ad/autodiff.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/transform/grad.hpp"
#include "eqx/transform/trace_call.hpp"

namespace eqx {

namespace detail {

/// The one-hot vector e_k of `n` elements, reshaped to `shape`.
inline Array basis_vector(const Shape& shape, DType dtype, std::int64_t k) {
  std::vector<double> v(static_cast<std::size_t>(shape.numel()), 0.0);
  v[static_cast<std::size_t>(k)] = 1.0;
  return astype(array(v, shape), dtype);
}

/// out.shape + leaf.shape from rows stacked along axis 0 (`rows_first`) or
/// the last axis; zeros of `dtype` when there are no rows (an empty array).
inline Array jacobian_leaf(std::vector<Array> parts, const Shape& lead, const Shape& trail, bool rows_first, DType dtype) {
  Shape shape = lead;
  for (auto d : trail) shape.push_back(d);
  if (parts.empty()) return zeros(shape, dtype);
  return reshape(stack(parts, rows_first ? 0 : -1), shape);
}

inline void require_array_output(const Array& y, const char* fn) {
  if (!y.has_value() || !is_floating(y.dtype()))
    throw ValueError("eqx::" + std::string(fn) + ": the function must return a floating Array, got " +
                     (y.has_value() ? AbstractArray{y.shape(), y.dtype()}.str() : std::string("None")) +
                     "; convert with eqx::astype");
}

}  // namespace detail

/// The Jacobian of f (returning one Array y) with respect to the first
/// argument, by reverse mode: a tree of the first argument's type whose
/// floating leaves x have shape y.shape + x.shape (other leaves None).
/// Usage: `eqx::Array J = eqx::filter_jacrev(f)(x);  // [m, n] for f: R^n -> R^m`
template <class F>
auto filter_jacrev(F f) {
  return [f = std::move(f)]<class First, class... Rest>(const First& first, const Rest&... rest) {
    auto traced = detail::trace_call<F, First, Rest...>(f, first, rest...);
    static_assert(std::is_same_v<decltype(traced.output), Array>, "eqx::filter_jacrev: f must return an eqx::Array");
    detail::require_array_output(traced.output, "filter_jacrev");
    std::pair<std::size_t, std::size_t> range{0, 0};
    std::vector<Array> leaves = detail::call_leaves(&range, f, first, rest...);
    detail::LeafMask differentiate(leaves.size(), range.first, range.second);
    VjpTape tape(std::make_shared<const Graph>(std::move(traced.graph)), leaves, differentiate.span());
    const Array& y = tape.outputs[0];
    std::vector<std::vector<Array>> rows(range.second - range.first);
    for (std::int64_t k = 0; k < y.size(); ++k) {
      std::vector<Array> ct{detail::basis_vector(y.shape(), y.dtype(), k)};
      std::vector<Array> in_ct = vjp_backward(tape, ct);
      for (std::size_t i = range.first; i < range.second; ++i)
        if (is_floating(leaves[i].dtype()))
          rows[i - range.first].push_back(in_ct[i].has_value() ? in_ct[i] : zeros_like(leaves[i]));
    }
    std::vector<Array> jac;
    for (std::size_t i = range.first; i < range.second; ++i)
      jac.push_back(is_floating(leaves[i].dtype())
                        ? detail::jacobian_leaf(std::move(rows[i - range.first]), y.shape(), leaves[i].shape(), true,
                                                leaves[i].dtype())
                        : Array{});
    return detail::fill_grads(first, jac);
  };
}

/// The Jacobian of f (returning one Array y) with respect to the first
/// argument, by forward mode; same result as filter_jacrev.
/// Usage: `eqx::Array J = eqx::filter_jacfwd(f)(x);`
template <class F>
auto filter_jacfwd(F f) {
  return [f = std::move(f)]<class First, class... Rest>(const First& first, const Rest&... rest) {
    auto traced = detail::trace_call<F, First, Rest...>(f, first, rest...);
    static_assert(std::is_same_v<decltype(traced.output), Array>, "eqx::filter_jacfwd: f must return an eqx::Array");
    std::pair<std::size_t, std::size_t> range{0, 0};
    std::vector<Array> leaves = detail::call_leaves(&range, f, first, rest...);
    detail::require_array_output(traced.output, "filter_jacfwd");
    const Shape out_shape = traced.output.shape();
    std::vector<Array> jac;
    for (std::size_t i = range.first; i < range.second; ++i) {
      const Array& x = leaves[i];
      if (!is_floating(x.dtype())) {  // no Jacobian: None in the result
        jac.emplace_back();
        continue;
      }
      std::vector<Array> columns;
      for (std::int64_t j = 0; j < x.size(); ++j) {
        std::vector<Array> tangents(leaves.size());
        tangents[i] = detail::basis_vector(x.shape(), x.dtype(), j);
        Array t = jvp_graph(traced.graph, leaves, tangents).second[0];
        columns.push_back(t.has_value() ? t : zeros(out_shape, traced.output.dtype()));
      }
      jac.push_back(detail::jacobian_leaf(std::move(columns), out_shape, x.shape(), false, traced.output.dtype()));
    }
    return detail::fill_grads(first, jac);
  };
}

/// The Hessian of a scalar function of one Array: jacfwd(jacrev(f)), of
/// shape x.shape + x.shape. Usage: `eqx::Array H = eqx::filter_hessian(f)(x);`
template <class F>
auto filter_hessian(F f) {
  return [jac = filter_jacfwd(filter_jacrev(std::move(f)))]<class X, class... Rest>(const X& x, const Rest&... rest) {
    static_assert(std::is_same_v<X, Array>,
                  "eqx::filter_hessian: differentiates with respect to one eqx::Array (the first argument); for a "
                  "pytree, use filter_jvp of filter_grad (Hessian-vector products)");
    return jac(x, rest...);
  };
}

}  // namespace eqx
