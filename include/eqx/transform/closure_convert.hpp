#pragma once
// filter_closure_convert: a function with the Arrays it closes over made
// explicit, as a pytree (jax.closure_convert / eqx.filter_closure_convert).
//
// f is traced once on example arguments. Every Array the trace captured (a
// weight f closes over, a module's fields when f is one, a scalar literal)
// becomes a leaf of the returned ClosureConverted, and the traced graph takes
// them as extra inputs. So a transformation given the converted function
// sees those Arrays: filter_grad differentiates them, filter_jit passes them
// as inputs instead of baking them in, tree_at can replace them. Calling it
// evaluates the graph on the arguments' Array leaves and the captured ones;
// the arguments must have the example's structure, static leaves, shapes
// and dtypes.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ir/eval.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/flatten.hpp"
#include "eqx/tree/node.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

namespace detail {

/// The static half of a converted function, shared by its copies: the
/// graph (inputs: the arguments' Array leaves, then the captured Arrays),
/// what the arguments looked like, and the output's structure.
template <class R, class... Args>
struct ConvertedBody {
  Graph graph;
  std::size_t num_arg_leaves = 0;
  std::tuple<Args...> arg_skeletons;  // static leaves, every Array empty
  std::vector<bool> present;          // which Array slots of the arguments held an Array
  TreeDef<R> out_def;
};

}  // namespace detail

/// A function converted by eqx::filter_closure_convert: a pytree whose
/// leaves are the Arrays the function closed over (`consts`), callable on
/// arguments like the example it was converted with.
template <class R, class... Args>
struct ClosureConverted {
  /// The captured Arrays, in the order the trace met them: the leaves.
  std::vector<Array> consts;
  /// The traced graph and the example's structure (static, shared by copies).
  Static<std::shared_ptr<const detail::ConvertedBody<R, Args...>>> body;

  /// Evaluates the converted function (eagerly, or into the enclosing
  /// trace). Throws eqx::ShapeError / DTypeError / ValueError naming the
  /// argument whose shape, dtype, static value or structure differs from the
  /// example's.
  R operator()(const Args&... args) const {
    const detail::ConvertedBody<R, Args...>& b = **body;
    std::vector<Array> inputs;
    inputs.reserve(b.graph.inputs.size());
    const std::vector<AbstractArray> types = b.graph.input_types();
    detail::ExampleChecker checker{"eqx::ClosureConverted: argument",
                                   "call it with arguments like the example it was converted with, or convert it again",
                                   b.present, std::span(types).first(b.num_arg_leaves), inputs};
    TreePath path;
    std::apply(
        [&](const auto&... skeletons) {
          std::int64_t i = 0;
          ((path.push_index(i++), detail::visit_tree(checker, path, args, skeletons), path.pop()), ...);
        },
        b.arg_skeletons);
    if (consts.size() != types.size() - b.num_arg_leaves)
      throw ValueError("eqx::ClosureConverted: it holds " + std::to_string(consts.size()) +
                       " captured Arrays, its graph takes " + std::to_string(types.size() - b.num_arg_leaves) +
                       "; replace leaves of a converted function (tree_at), do not add or remove them");
    inputs.insert(inputs.end(), consts.begin(), consts.end());
    return b.out_def.unflatten(eval_graph(b.graph, inputs));
  }
};

/// f, traced once on `args`, as a pytree whose leaves are the Arrays f
/// closes over (every captured constant; a callable module's fields too), so
/// that grad, jit and tree functions see them. Call it with arguments of the
/// example's structure, shapes, dtypes and static values.
/// Usage: `auto g = eqx::filter_closure_convert([&](const eqx::Array& x) { return w * x; }, x0);
///         auto dw = eqx::filter_grad([](const auto& g, const eqx::Array& x) { return eqx::sum(g(x)); })(g, x0);`
template <class F, class... Args>
ClosureConverted<detail::call_result_t<F, Args...>, Args...> filter_closure_convert(const F& f, const Args&... args) {
  using R = detail::call_result_t<F, Args...>;
  using Body = detail::ConvertedBody<R, Args...>;
  // A plain closure, so that a callable module's Arrays are captured too.
  auto call = [&f](const Args&... a) -> R { return std::invoke(f, a...); };
  auto traced = detail::trace_call_with<decltype(call), Args...>(TraceOptions{.merge_scalar_literals = false}, {},
                                                                call, args...);
  detail::SkeletonBuilder skel;
  TreePath path = TreePath::untracked();
  std::tuple<Args...> skeletons{detail::rebuild_tree(skel, path, args)...};  // braces: left to right
  Graph& g = traced.graph;
  const std::size_t num_arg_leaves = g.inputs.size();
  std::vector<Array> consts = std::move(g.consts);
  g.inputs.insert(g.inputs.end(), g.constvars.begin(), g.constvars.end());
  g.constvars.clear();
  g.consts.clear();
  auto body = std::make_shared<const Body>(
      Body{std::move(g), num_arg_leaves, std::move(skeletons), std::move(skel.present), TreeDef<R>(traced.output)});
  return ClosureConverted<R, Args...>{std::move(consts), {std::move(body)}};
}

}  // namespace eqx
