#pragma once
// filter_custom_jvp and filter_custom_vjp: functions whose derivatives are
// written by hand (jax.custom_jvp / jax.custom_vjp on pytrees, with
// Equinox's conventions). For numerically stable functions, gradient
// clipping, straight-through estimators.
//
// A call is one equation holding the function's traced graph and the traced
// graphs of its rules. Evaluated, eagerly or compiled, it is the function
// (compiled code inlines the body). Differentiated, the rules replace the
// body's own derivative:
// - custom_jvp_call: forward mode evaluates the JVP rule on the primals and
//   tangents. Reverse mode transposes the rule in its tangents, which it
//   must be linear in (as in JAX).
// - custom_vjp_call: reverse mode evaluates the forward rule in the forward
//   pass (the tape keeps its residuals) and the backward rule in the
//   backward pass. Forward mode is an error, as in JAX.
// Rule graphs are evaluated in the caller's context, so they can be jitted,
// batched (vmap batches the body and every rule graph) and differentiated
// again.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ad/autodiff.hpp"
#include "eqx/ad/batching.hpp"
#include "eqx/ir/eval.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/transform/grad.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/flatten.hpp"

namespace eqx {

namespace detail {

/// custom_jvp_call[jaxpr, jvp_jaxpr]: the graph `jaxpr`, differentiated by
/// `jvp_jaxpr` (primals, then the tangents of the float primals -> outputs,
/// then the tangents of the float outputs).
struct CustomJvpPrim final : Primitive {
  std::string_view name() const override { return "custom_jvp_call"; }
  static const Graph& body(const Params& p) { return *p.get<GraphRef>("jaxpr"); }
  static const Graph& rule(const Params& p) { return *p.get<GraphRef>("jvp_jaxpr"); }
  const Graph* inlined_body(const Params& p) const override { return &body(p); }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override;
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
  std::vector<Array> jvp(const RuleOps& ops, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& ops, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;
  Batched batch(const RuleOps& ops, std::span<const Array> x, BatchDims d, const Params& p) const override;
};

/// custom_vjp_call[jaxpr, fwd_jaxpr, bwd_jaxpr, num_vjp_leaves]: the graph
/// `jaxpr`, differentiated by `fwd_jaxpr` (inputs -> outputs, then
/// residuals) and `bwd_jaxpr` (residuals, cotangents of the float outputs,
/// inputs -> cotangents of the float inputs among the first
/// `num_vjp_leaves`, the leaves of the function's first argument).
struct CustomVjpPrim final : Primitive {
  std::string_view name() const override { return "custom_vjp_call"; }
  static const Graph& body(const Params& p) { return *p.get<GraphRef>("jaxpr"); }
  static const Graph& fwd(const Params& p) { return *p.get<GraphRef>("fwd_jaxpr"); }
  static const Graph& bwd(const Params& p) { return *p.get<GraphRef>("bwd_jaxpr"); }
  const Graph* inlined_body(const Params& p) const override { return &body(p); }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override;
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
  std::vector<Array> jvp(const RuleOps& ops, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& ops, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;
  bool split_vjp() const override { return true; }
  ForwardWithResiduals vjp_fwd(const RuleOps& ops, std::span<const Array> x, const Params& p) const override;
  std::vector<Array> vjp_bwd(const RuleOps& ops, std::span<const Array> x, std::span<const Array> saved,
                             std::span<const Array> ct, const Params& p) const override;
  Batched batch(const RuleOps& ops, std::span<const Array> x, BatchDims d, const Params& p) const override;
};

}  // namespace detail

namespace prim {
inline const detail::CustomJvpPrim custom_jvp_call;
inline const detail::CustomVjpPrim custom_vjp_call;
}  // namespace prim

namespace detail {

/// The body's output types, after checking the operand count.
inline std::vector<AbstractArray> call_output_types(const Graph& body, std::size_t operands, const char* fn) {
  if (operands != body.inputs.size())
    throw ValueError(std::string("eqx::") + fn + ": the body takes " + std::to_string(body.inputs.size()) +
                     " inputs, got " + std::to_string(operands));
  return body.output_types();
}

/// Throws if tracing `g` captured a value of an enclosing trace (a closure
/// over an Array the outer transformation is tracing): a rule graph's
/// inputs must be explicit, or its derivative would miss them.
inline void require_no_captured_tracers(const Graph& g, const char* fn, const char* which) {
  for (const Array& c : g.consts)
    if (c.is_abstract())
      throw ValueError(std::string("eqx::") + fn + ": the " + which + " closes over an Array that an enclosing "
                       "transformation is tracing (" + AbstractArray{c.shape(), c.dtype()}.str() +
                       "); pass it as an argument of the function instead of capturing it");
}

/// Replaces each floating Array leaf with a new input of the active trace,
/// and every other leaf's Array with None: the tangents (or cotangents) a
/// rule receives.
struct TangentInputBuilder {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  TraceScope& scope;
  Array array(const TreePath&, const Array& a) {
    if (!a.has_value() || !is_floating(a.dtype())) return Array{};
    return scope.input(AbstractArray{a.shape(), a.dtype()});
  }
};

/// Leaves of `given` aligned with the Array leaves of `like` (a None leaf
/// stays None), after checking shapes and dtypes; for a rule's outputs.
template <class T>
std::vector<Array> aligned_leaves(const T& like, const T& given, const char* fn, const char* what, const char* of,
                                  TreePath path = {}) {
  std::vector<Array> out;
  TangentCollector collect{&out, fn, what, of};
  visit_tree(collect, path, like, given);
  return out;
}

/// The float entries of `values` (aligned with `like`), with None made zero.
inline std::vector<Array> float_values(const std::vector<Array>& like, std::vector<Array> values) {
  std::vector<Array> out;
  for (std::size_t i = 0; i < like.size(); ++i)
    if (is_floating(like[i].dtype())) out.push_back(rule_ops().instantiate(values[i], like[i].shape(), like[i].dtype()));
  return out;
}

/// f as a plain function of its arguments: the custom-rule wrappers treat
/// the function itself as static (its Arrays are constants, not inputs).
template <class F>
class StaticCall {
 public:
  explicit StaticCall(const F& f) : f_(&f) {}
  template <class... Args>
  auto operator()(const Args&... args) const {
    return std::invoke(*f_, args...);
  }

 private:
  const F* f_;
};

/// The graph of `rule(primals, tangents)`: inputs are the primal leaves,
/// then the tangents of the float leaves; outputs the rule's primal output
/// leaves, then the tangents of the float output leaves (None made zero).
template <class R, class Rule, class... Args>
GraphRef trace_jvp_rule(const Rule& rule, const R& out_like, const Args&... args) {
  TraceScope scope;
  TraceInputBuilder primal_builder{scope};
  std::tuple<Args...> primals = trace_arguments(primal_builder, args...);
  TangentInputBuilder tangent_builder{scope};
  std::tuple<Args...> tangents = trace_arguments(tangent_builder, args...);
  using Result = std::remove_cvref_t<std::invoke_result_t<const Rule&, const std::tuple<Args...>&,
                                                          const std::tuple<Args...>&>>;
  static_assert(std::is_convertible_v<std::tuple_element_t<0, Result>, R> &&
                    std::is_convertible_v<std::tuple_element_t<1, Result>, R>,
                "eqx::filter_custom_jvp: the JVP rule must return {output, output tangent}, a std::pair of the "
                "function's result type");
  Result result = std::invoke(rule, std::as_const(primals), std::as_const(tangents));
  const R out = std::get<0>(result);
  const R tangent = std::get<1>(result);
  std::vector<Array> like = tree_leaves(out_like);
  std::vector<Array> outs =
      aligned_leaves(out_like, out, "filter_custom_jvp", "JVP rule's primal output", "function output");
  for (std::size_t i = 0; i < outs.size(); ++i)
    if (!outs[i].has_value())
      throw ValueError("eqx::filter_custom_jvp: the JVP rule's primal output has None where the function returns " +
                       AbstractArray{like[i].shape(), like[i].dtype()}.str() +
                       "; return the function's output as the first element");
  std::vector<Array> touts = float_values(
      like, aligned_leaves(out_like, tangent, "filter_custom_jvp", "JVP rule's output tangent", "output"));
  outs.insert(outs.end(), touts.begin(), touts.end());
  return std::make_shared<const Graph>(scope.finish(outs));
}

/// Marks "the rule is not defined yet" in the wrappers' types.
struct NoRule {};

template <class T>
inline constexpr bool always_false = false;

/// f with a JVP rule (filter_custom_jvp(f).def_jvp(rule)).
template <class F, class Rule>
class CustomJvp {
 public:
  CustomJvp(F f, Rule rule) : f_(std::move(f)), rule_(std::move(rule)) {}

  /// Adds the JVP rule: `rule(primals, tangents) -> {output, output tangent}`.
  template <class R2>
  CustomJvp<F, std::decay_t<R2>> def_jvp(R2&& rule) const
    requires std::is_same_v<Rule, NoRule>
  {
    return {f_, std::forward<R2>(rule)};
  }

  template <class... Args>
  auto operator()(const Args&... args) const {
    if constexpr (std::is_same_v<Rule, NoRule>) {
      static_assert(always_false<F>,
                    "eqx::filter_custom_jvp: define the JVP rule before calling: filter_custom_jvp(f).def_jvp(rule)");
      return 0;
    } else {
      StaticCall<F> call(f_);
      auto traced = trace_call<StaticCall<F>, Args...>(call, args...);
      using R = decltype(traced.output);
      auto body = std::make_shared<const Graph>(std::move(traced.graph));
      require_no_captured_tracers(*body, "filter_custom_jvp", "function");
      GraphRef rule = trace_jvp_rule<R>(rule_, traced.output, args...);
      require_no_captured_tracers(*rule, "filter_custom_jvp", "JVP rule");
      std::vector<Array> outs = eqx::bind(prim::custom_jvp_call, call_leaves(nullptr, call, args...),
                                          Params{}.set("jaxpr", GraphRef(body)).set("jvp_jaxpr", std::move(rule)));
      return TreeDef<R>(traced.output).unflatten(outs);
    }
  }

 private:
  F f_;
  Rule rule_;
};

/// f with forward and backward rules (filter_custom_vjp(f).def_fwd(fwd).def_bwd(bwd)).
template <class F, class Fwd, class Bwd>
class CustomVjp {
 public:
  CustomVjp(F f, Fwd fwd, Bwd bwd) : f_(std::move(f)), fwd_(std::move(fwd)), bwd_(std::move(bwd)) {}

  /// Adds the forward rule: `fwd(vjp_arg, args...) -> {output, residuals}`.
  template <class G>
  CustomVjp<F, std::decay_t<G>, Bwd> def_fwd(G&& fwd) const
    requires std::is_same_v<Fwd, NoRule>
  {
    return {f_, std::forward<G>(fwd), bwd_};
  }
  /// Adds the backward rule: `bwd(residuals, output_cotangent, vjp_arg, args...) -> vjp_arg's cotangent`.
  template <class G>
  CustomVjp<F, Fwd, std::decay_t<G>> def_bwd(G&& bwd) const
    requires std::is_same_v<Bwd, NoRule>
  {
    return {f_, fwd_, std::forward<G>(bwd)};
  }

  template <class A, class... Rest>
  auto operator()(const A& vjp_arg, const Rest&... rest) const {
    if constexpr (std::is_same_v<Fwd, NoRule> || std::is_same_v<Bwd, NoRule>) {
      static_assert(always_false<F>,
                    "eqx::filter_custom_vjp: define both rules before calling: "
                    "filter_custom_vjp(f).def_fwd(fwd).def_bwd(bwd)");
      return 0;
    } else {
      StaticCall<F> call(f_);
      auto traced = trace_call<StaticCall<F>, A, Rest...>(call, vjp_arg, rest...);
      using R = decltype(traced.output);
      auto body = std::make_shared<const Graph>(std::move(traced.graph));
      require_no_captured_tracers(*body, "filter_custom_vjp", "function");
      auto [fwd, residuals] = trace_fwd<R>(traced.output, vjp_arg, rest...);
      GraphRef bwd = trace_bwd<R>(residuals, traced.output, vjp_arg, rest...);
      const auto vjp_leaves = static_cast<std::int64_t>(tree_leaves(vjp_arg).size());
      std::vector<Array> outs = eqx::bind(prim::custom_vjp_call, call_leaves(nullptr, call, vjp_arg, rest...),
                                          Params{}
                                              .set("jaxpr", GraphRef(body))
                                              .set("fwd_jaxpr", std::move(fwd))
                                              .set("bwd_jaxpr", std::move(bwd))
                                              .set("num_vjp_leaves", vjp_leaves));
      return TreeDef<R>(traced.output).unflatten(outs);
    }
  }

 private:
  // The forward rule's graph (inputs -> outputs, then residual leaves) and
  // its residuals' structure (abstract leaves).
  template <class R, class A, class... Rest>
  auto trace_fwd(const R& out_like, const A& vjp_arg, const Rest&... rest) const {
    TraceScope scope;
    TraceInputBuilder builder{scope};
    std::tuple<A, Rest...> args = trace_arguments(builder, vjp_arg, rest...);
    using Result = std::remove_cvref_t<std::invoke_result_t<const Fwd&, const A&, const Rest&...>>;
    static_assert(std::is_convertible_v<std::tuple_element_t<0, Result>, R>,
                  "eqx::filter_custom_vjp: the forward rule must return {output, residuals}, with the function's "
                  "result type first");
    Result result = std::apply([&](const auto&... a) { return std::invoke(fwd_, a...); }, args);
    const R out = std::get<0>(result);
    std::vector<Array> outs =
        aligned_leaves(out_like, out, "filter_custom_vjp", "forward rule's output", "function output");
    std::vector<Array> like = tree_leaves(out_like);
    for (std::size_t i = 0; i < outs.size(); ++i)
      if (!outs[i].has_value())
        throw ValueError("eqx::filter_custom_vjp: the forward rule's output has None where the function returns " +
                         AbstractArray{like[i].shape(), like[i].dtype()}.str() +
                         "; return the function's output as the first element");
    auto residuals = std::get<1>(result);
    std::vector<Array> res = tree_leaves(residuals);
    outs.insert(outs.end(), res.begin(), res.end());
    auto graph = std::make_shared<const Graph>(scope.finish(outs));
    require_no_captured_tracers(*graph, "filter_custom_vjp", "forward rule");
    return std::pair{GraphRef(std::move(graph)), std::move(residuals)};
  }

  // The backward rule's graph: residual leaves, cotangents of the float
  // outputs, then the inputs -> cotangents of vjp_arg's float leaves.
  template <class R, class Res, class A, class... Rest>
  GraphRef trace_bwd(const Res& residuals, const R& out_like, const A& vjp_arg, const Rest&... rest) const {
    TraceScope scope;
    TraceInputBuilder builder{scope};
    TreePath path;
    path.push_field("residuals");
    Res res = rebuild_tree(builder, path, residuals);
    TangentInputBuilder ct_builder{scope};
    R ct = rebuild_tree(ct_builder, path, out_like);
    std::tuple<A, Rest...> args = trace_arguments(builder, vjp_arg, rest...);
    static_assert(std::is_convertible_v<std::invoke_result_t<const Bwd&, const Res&, const R&, const A&, const Rest&...>, A>,
                  "eqx::filter_custom_vjp: the backward rule must return the cotangent of the first argument, of "
                  "its type (None where there is none)");
    const A& a = std::get<0>(args);
    const A grads = std::apply([&](const auto&... x) -> A { return std::invoke(bwd_, res, std::as_const(ct), x...); }, args);
    TreePath grad_path;
    grad_path.push_index(0);
    std::vector<Array> g = float_values(
        tree_leaves(a), aligned_leaves(a, grads, "filter_custom_vjp", "backward rule's cotangent",
                                       "argument leaf", std::move(grad_path)));
    auto graph = std::make_shared<const Graph>(scope.finish(g));
    require_no_captured_tracers(*graph, "filter_custom_vjp", "backward rule");
    return graph;
  }

  F f_;
  Fwd fwd_;
  Bwd bwd_;
};

}  // namespace detail

/// f with a hand-written JVP rule, which forward mode uses instead of
/// differentiating f, and reverse mode transposes. Add the rule with
/// `.def_jvp(rule)`: `rule(primals, tangents) -> std::pair{output, output_tangent}`,
/// where primals and tangents are std::tuples of f's arguments. Tangent
/// leaves are None (an empty Array) for non-float leaves; the tangents of
/// float leaves are always Arrays (zeros if they do not vary). An output
/// tangent may be None (zero). The rule must be linear in the tangents.
/// Usage: `auto softplus = eqx::filter_custom_jvp(f).def_jvp(f_jvp); eqx::Array y = softplus(x);`
template <class F>
auto filter_custom_jvp(F f) {
  return detail::CustomJvp<F, detail::NoRule>(std::move(f), {});
}

/// f with a hand-written reverse-mode rule. Only f's first argument gets
/// cotangents (its float Array leaves); other arguments' Arrays get none.
/// Add the rules with `.def_fwd(fwd).def_bwd(bwd)`:
/// - `fwd(vjp_arg, args...) -> std::pair{output, residuals}` (residuals: any pytree),
/// - `bwd(residuals, output_cotangent, vjp_arg, args...) -> cotangent`, a
///   tree of vjp_arg's type (None leaves are zero). The output cotangent has
///   None at non-float output leaves.
/// Forward mode (filter_jvp, filter_jacfwd) cannot differentiate it.
/// Usage: `auto clipped = eqx::filter_custom_vjp(f).def_fwd(fwd).def_bwd(bwd); eqx::Array y = clipped(x);`
template <class F>
auto filter_custom_vjp(F f) {
  return detail::CustomVjp<F, detail::NoRule, detail::NoRule>(std::move(f), {}, {});
}

// ---------------------------------------------------------------- the primitives' rules
#if EQX_KERNELS_HERE(CONTROL_FLOW)
namespace detail {

EQX_KERNEL_INLINE std::vector<AbstractArray> CustomJvpPrim::shape_rule(std::span<const AbstractArray> in,
                                                                       const Params& p) const {
  return call_output_types(body(p), in.size(), "filter_custom_jvp");
}

EQX_KERNEL_INLINE void CustomJvpPrim::kernel(std::span<const View> in, std::span<const View> out,
                                             const Params& p) const {
  eval_graph_on_views(body(p), in, out);
}

// The rule on the primals and the (instantiated) tangents of the float ones.
EQX_KERNEL_INLINE std::vector<Array> CustomJvpPrim::jvp(const RuleOps& ops, std::span<const Array> x,
                                                        std::span<const Array> t, std::span<const Array> y,
                                                        const Params& p) const {
  std::vector<Array> args(x.begin(), x.end());
  for (std::size_t i = 0; i < x.size(); ++i)
    if (is_floating(x[i].dtype())) args.push_back(ops.instantiate(t[i], x[i].shape(), x[i].dtype()));
  std::vector<Array> r = eval_graph(rule(p), args);
  std::vector<Array> tangents(y.size());
  std::size_t next = y.size();
  for (std::size_t i = 0; i < y.size(); ++i)
    if (is_floating(y[i].dtype())) tangents[i] = std::move(r[next++]);
  return tangents;
}

// The rule transposed in its tangents: its VJP with respect to the tangent
// inputs (at zero tangents), for cotangents on its tangent outputs only.
EQX_KERNEL_INLINE std::vector<Array> CustomJvpPrim::vjp(const RuleOps& ops, std::span<const Array> x,
                                                        std::span<const Array> y, std::span<const Array> ct,
                                                        const Params& p) const {
  std::vector<Array> args(x.begin(), x.end());
  std::vector<std::size_t> float_inputs;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (is_floating(x[i].dtype())) {
      args.push_back(ops.zeros_like(x[i]));
      float_inputs.push_back(i);
    }
  std::vector<Array> out_ct(y.size());
  for (std::size_t i = 0; i < y.size(); ++i)
    if (is_floating(y[i].dtype())) out_ct.push_back(ct[i]);
  LeafMask tangent_inputs(args.size(), x.size(), args.size());
  std::vector<Array> in_ct = vjp_graph(rule(p), args, out_ct, tangent_inputs.span()).second;
  std::vector<Array> result(x.size());
  for (std::size_t j = 0; j < float_inputs.size(); ++j) result[float_inputs[j]] = std::move(in_ct[x.size() + j]);
  return result;
}

EQX_KERNEL_INLINE Batched CustomJvpPrim::batch(const RuleOps& ops, std::span<const Array> x, BatchDims d,
                                               const Params& p) const {
  const std::int64_t n = batch_size(x, d);
  auto [moved, dims] = batch_axes_first(ops, x, d);
  std::vector<std::int64_t> rule_dims = dims;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (is_floating(x[i].dtype())) rule_dims.push_back(dims[i]);  // a tangent is batched as its primal
  std::vector<std::int64_t> out_dims, rule_out_dims;
  GraphRef body_b = batch_subgraph(body(p), dims, n, std::vector<bool>(body(p).outputs.size(), true), out_dims);
  GraphRef rule_b =
      batch_subgraph(rule(p), rule_dims, n, std::vector<bool>(rule(p).outputs.size(), true), rule_out_dims);
  return {eqx::bind(*this, moved, Params(p).set("jaxpr", std::move(body_b)).set("jvp_jaxpr", std::move(rule_b))),
          std::move(out_dims)};
}

EQX_KERNEL_INLINE std::vector<AbstractArray> CustomVjpPrim::shape_rule(std::span<const AbstractArray> in,
                                                                       const Params& p) const {
  return call_output_types(body(p), in.size(), "filter_custom_vjp");
}

EQX_KERNEL_INLINE void CustomVjpPrim::kernel(std::span<const View> in, std::span<const View> out,
                                             const Params& p) const {
  eval_graph_on_views(body(p), in, out);
}

EQX_KERNEL_INLINE std::vector<Array> CustomVjpPrim::jvp(const RuleOps&, std::span<const Array>,
                                                        std::span<const Array>, std::span<const Array>,
                                                        const Params&) const {
  throw ValueError(
      "eqx::filter_custom_vjp: a function with a custom VJP cannot be differentiated in forward mode "
      "(filter_jvp, filter_jacfwd, filter_hessian's outer pass); use reverse mode (filter_grad, filter_vjp, "
      "filter_jacrev), or give it a JVP rule with eqx::filter_custom_jvp");
}

EQX_KERNEL_INLINE Primitive::ForwardWithResiduals CustomVjpPrim::vjp_fwd(const RuleOps&, std::span<const Array> x,
                                                                         const Params& p) const {
  std::vector<Array> r = eval_graph(fwd(p), x);
  const auto n = static_cast<std::ptrdiff_t>(body(p).outputs.size());
  return {std::vector<Array>(r.begin(), r.begin() + n), std::vector<Array>(r.begin() + n, r.end())};
}

EQX_KERNEL_INLINE std::vector<Array> CustomVjpPrim::vjp_bwd(const RuleOps& ops, std::span<const Array> x,
                                                            std::span<const Array> saved,
                                                            std::span<const Array> ct, const Params& p) const {
  std::vector<Array> args(saved.begin(), saved.end());
  const std::vector<AbstractArray> out_types = body(p).output_types();
  for (std::size_t i = 0; i < out_types.size(); ++i)
    if (is_floating(out_types[i].dtype)) args.push_back(ops.instantiate(ct[i], out_types[i].shape, out_types[i].dtype));
  args.insert(args.end(), x.begin(), x.end());
  std::vector<Array> g = eval_graph(bwd(p), args);
  std::vector<Array> result(x.size());
  const auto vjp_leaves = static_cast<std::size_t>(p.get<std::int64_t>("num_vjp_leaves"));
  std::size_t next = 0;
  for (std::size_t i = 0; i < vjp_leaves; ++i)
    if (is_floating(x[i].dtype())) result[i] = std::move(g[next++]);
  return result;
}

EQX_KERNEL_INLINE std::vector<Array> CustomVjpPrim::vjp(const RuleOps& ops, std::span<const Array> x,
                                                        std::span<const Array>, std::span<const Array> ct,
                                                        const Params& p) const {
  ForwardWithResiduals r = vjp_fwd(ops, x, p);
  return vjp_bwd(ops, x, r.saved, ct, p);
}

EQX_KERNEL_INLINE Batched CustomVjpPrim::batch(const RuleOps& ops, std::span<const Array> x, BatchDims d,
                                               const Params& p) const {
  const std::int64_t n = batch_size(x, d);
  auto [moved, dims] = batch_axes_first(ops, x, d);
  const Graph& f = fwd(p);
  std::vector<std::int64_t> out_dims, fwd_dims;
  GraphRef body_b = batch_subgraph(body(p), dims, n, std::vector<bool>(body(p).outputs.size(), true), out_dims);
  // Every output and residual batched first, so the backward rule's
  // residual and cotangent inputs are too.
  GraphRef fwd_b = batch_subgraph(f, dims, n, std::vector<bool>(f.outputs.size(), true), fwd_dims);
  std::vector<std::int64_t> bwd_dims(bwd(p).inputs.size() - x.size(), 0);
  bwd_dims.insert(bwd_dims.end(), dims.begin(), dims.end());
  // A cotangent is batched as its input: summed over the batch for an
  // input shared by every example.
  std::vector<std::int64_t> ct_dims;
  const auto vjp_leaves = static_cast<std::size_t>(p.get<std::int64_t>("num_vjp_leaves"));
  for (std::size_t i = 0; i < vjp_leaves; ++i)
    if (is_floating(x[i].dtype())) ct_dims.push_back(dims[i]);
  GraphRef bwd_b = batch_cotangent_graph(bwd(p), bwd_dims, n, ct_dims);
  return {eqx::bind(*this, moved,
                    Params(p)
                        .set("jaxpr", std::move(body_b))
                        .set("fwd_jaxpr", std::move(fwd_b))
                        .set("bwd_jaxpr", std::move(bwd_b))),
          std::move(out_dims)};
}

}  // namespace detail
#endif

}  // namespace eqx
