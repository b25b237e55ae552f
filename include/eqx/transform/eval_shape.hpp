#pragma once
// filter_eval_shape: what a function returns, shapes and dtypes only, with
// no kernel run and no Array allocated (jax.eval_shape / eqx.filter_eval_shape).
//
// The call is traced (every operation runs only its shape rule) and the
// trace is thrown away. The result has the function's own return type:
// its Array leaves are shape-only Arrays (eqx::shape_dtype_struct: a shape
// and a dtype, no data, nothing allocated), its other leaves are what the
// function returned. Arguments may themselves be shape-only Arrays. The
// typical use is a "skeleton" of a model, to load its weights into:
//
//   auto like = eqx::filter_eval_shape([](const eqx::Array& k) { return eqx::nn::MLP::init(2, 3, 64, 2, k); }, key);
//   auto model = eqx::tree_deserialise_leaves("mlp.eqx", like);

#include <string>
#include <type_traits>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

namespace detail {

/// Replaces every Array leaf by a shape-only Array of its type.
struct ShapeOnlyBuilder {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  Array array(const TreePath&, const Array& a) {
    return a.has_value() ? ArrayAccess::shape_only(a.shape(), a.dtype()) : Array{};
  }
};

/// `tree` with every Array leaf shape-only (filter_eval_shape's result,
/// filter_make_jaxpr's out_struct).
template <class T>
T shape_only_tree(const T& tree) {
  ShapeOnlyBuilder builder;
  TreePath path = TreePath::untracked();
  return rebuild_tree(builder, path, tree);
}

}  // namespace detail

/// `f(args...)` with shapes and dtypes only: the same type f returns, each
/// Array leaf shape-only (eqx::shape_dtype_struct), every other leaf as f
/// returned it. Nothing runs and nothing is allocated. Array arguments, and
/// Arrays f closes over, may be concrete or shape-only; other arguments are
/// passed as they are. If f needs a value (`item()`, `if (x > 0)`), this
/// throws eqx::ConcretizationError.
/// Usage: `auto out = eqx::filter_eval_shape(f, eqx::shape_dtype_struct({8, 3}, eqx::float32)); out.shape()`
template <class F, class... Args>
auto filter_eval_shape(const F& f, const Args&... args) {
  using R = detail::call_result_t<F, Args...>;
  R out = [&] {
    try {
      return detail::trace_call<F, Args...>(f, args...).output;
    } catch (const ConcretizationError& e) {
      throw ConcretizationError(std::string("eqx::filter_eval_shape: the function needs a value, and shape "
                                            "evaluation computes none: ") +
                                e.what());
    }
  }();
  return detail::shape_only_tree(out);
}

}  // namespace eqx
