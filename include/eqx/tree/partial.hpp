#pragma once
// eqx::Partial: partial application as a pytree (Equinox's eqx.Partial).
//
// `Partial(f, a, b)(x)` calls `f(a, b, x)`, as std::bind_front does, but the
// function and the bound arguments are children of the tree (`.func`,
// `.args[0]`, `.args[1]`). So a Partial passed to filter_jit, filter_grad or
// filter_vmap, as the function or as an argument, shows its Arrays to the
// transformation: traced as inputs (not baked in as constants), given
// gradients, shared by a batch. A capturing lambda hides what it captures;
// a Partial is how a model with bound state (a trained network and its
// BatchNorm State) is passed where a callable is expected.
//
// Equinox binds keyword arguments too; C++ has none, so bind the leading
// arguments and write a small function that puts them in place
// (examples/stateful.cpp binds a model and its State before x).

#include <array>
#include <concepts>
#include <functional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "eqx/tree/node.hpp"

namespace eqx {

/// `func` with the leading arguments `args` bound; a pytree whose children
/// are the function and the bound arguments. `func` must itself be a pytree:
/// a function pointer, a captureless lambda or a module (a struct with
/// operator()).
/// Usage: `auto evaluate = eqx::Partial(call, inference_model, state); eqx::Array ys = eqx::filter_vmap(evaluate)(xs);`
template <class F, class... Args>
class Partial {
  static_assert(detail::node_kind_v<F> != detail::NodeKind::invalid,
                "eqx::Partial: the function must be a pytree (a function pointer, a captureless lambda or a module "
                "struct with operator()); a capturing lambda is not one: bind what it captures as an argument");
  static_assert(((detail::node_kind_v<Args> != detail::NodeKind::invalid) && ...),
                "eqx::Partial: every bound argument must be a pytree (an Array, a module, a container of them, or "
                "a static value comparable with ==)");

 public:
  F func;
  std::tuple<Args...> args;

  explicit(sizeof...(Args) == 0) Partial(F f, Args... bound) : func(std::move(f)), args(std::move(bound)...) {}

  /// `func(args..., rest...)`, the bound arguments as const lvalues.
  template <class... Rest>
    requires std::invocable<const F&, const Args&..., Rest...>
  std::invoke_result_t<const F&, const Args&..., Rest...> operator()(Rest&&... rest) const {
    return std::apply(
        [&](const Args&... bound) -> decltype(auto) { return std::invoke(func, bound..., std::forward<Rest>(rest)...); },
        args);
  }
};

}  // namespace eqx

/// A Partial's children are its function and its bound arguments, by reference.
template <class F, class... Args>
struct eqx::tree_traits<eqx::Partial<F, Args...>> {
  static auto flatten(const eqx::Partial<F, Args...>& p) { return std::tie(p.func, p.args); }
  static eqx::Partial<F, Args...> unflatten(std::tuple<F, std::tuple<Args...>> children) {
    return std::apply(
        [&](Args&... bound) { return eqx::Partial<F, Args...>(std::move(std::get<0>(children)), std::move(bound)...); },
        std::get<1>(children));
  }
  static constexpr std::array<std::string_view, 2> names{"func", "args"};
};
