#pragma once
// filter_make_jaxpr: the graph a function traces to, for reading and tests.

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "eqx/ir/print.hpp"
#include "eqx/transform/eval_shape.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/flatten.hpp"

namespace eqx {

/// The traced graph of one call, with what it returns.
template <class R>
struct Jaxpr {
  /// Inputs are the Array leaves of the arguments, in leaf order.
  Graph graph;
  /// The output with every Array leaf shape-only (eqx::shape_dtype_struct):
  /// its shape() and dtype() work, it has no values (Equinox's
  /// ShapeDtypeStruct pytree).
  R out_struct;
  /// The output with every Array leaf empty (None): the static outputs.
  R out_static;

  std::vector<AbstractArray> in_types() const { return graph.input_types(); }
  std::vector<AbstractArray> out_types() const { return graph.output_types(); }
  std::string str() const { return to_string(graph); }
};

/// A callable that traces f on its arguments and returns the Jaxpr.
/// Usage: `fmt::print("{}\n", eqx::filter_make_jaxpr(f)(x, y));`
template <class F>
auto filter_make_jaxpr(F f) {
  return [f = std::move(f)](const auto&... args) {
    auto traced = detail::trace_call<F, std::decay_t<decltype(args)>...>(f, args...);
    using R = decltype(traced.output);
    R out_static = TreeDef<R>(traced.output).skeleton();
    // Shape-only leaves, not the trace's tracers: those would keep the
    // ended trace alive and answer a value request with a TraceError.
    return Jaxpr<R>{std::move(traced.graph), detail::shape_only_tree(traced.output), std::move(out_static)};
  };
}

}  // namespace eqx

template <class R>
struct fmt::formatter<eqx::Jaxpr<R>> : fmt::formatter<std::string_view> {
  auto format(const eqx::Jaxpr<R>& j, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(j.str(), ctx);
  }
};
