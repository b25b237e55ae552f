#pragma once
// Forward and reverse mode as graph evaluations with each primitive's rules.
//
// jvp: evaluate the graph on primals and tangents together, equation by
// equation: outputs by binding the primitive, tangents by its JVP rule.
// vjp: evaluate the graph forward, keeping every value (a tape), then walk
// its equations backwards, accumulating cotangents with each primitive's VJP
// rule. Both bind in the caller's context, so they can be traced (jit, and
// differentiated again). An empty Array is a symbolic zero throughout.

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ad/rule_ops.hpp"
#include "eqx/ir/graph.hpp"

namespace eqx {

/// Outputs and output tangents of `graph` at `primals` with `tangents`.
std::pair<std::vector<Array>, std::vector<Array>> jvp_graph(const Graph& g, std::span<const Array> primals,
                                                                 std::span<const Array> tangents);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE std::pair<std::vector<Array>, std::vector<Array>> jvp_graph(const Graph& g, std::span<const Array> primals,
                                                                 std::span<const Array> tangents) {
  const RuleOps& ops = detail::rule_ops();
  std::vector<Array> val(g.types.size()), tan(g.types.size());
  for (std::size_t i = 0; i < g.inputs.size(); ++i) {
    val[g.inputs[i]] = primals[i];
    tan[g.inputs[i]] = tangents[i];
  }
  for (std::size_t i = 0; i < g.constvars.size(); ++i) val[g.constvars[i]] = g.consts[i];
  std::vector<Array> in, tin;
  for (const Equation& eq : g.equations) {
    in.clear();
    tin.clear();
    for (Var v : eq.inputs) {
      in.push_back(val[v]);
      tin.push_back(tan[v]);
    }
    std::vector<Array> out = eqx::bind(*eq.prim, in, eq.params);
    // Integer and bool results have no tangent (argmax, comparisons, random
    // bits): no rule is needed for them.
    bool any = false, float_out = false;
    for (const Array& t : tin) any = any || t.has_value();
    for (const Array& o : out) float_out = float_out || is_floating(o.dtype());
    any = any && float_out;
    std::vector<Array> tout = any ? eq.prim->jvp(ops, in, tin, out, eq.params) : std::vector<Array>(out.size());
    for (std::size_t k = 0; k < out.size(); ++k) {
      val[eq.outputs[k]] = std::move(out[k]);
      tan[eq.outputs[k]] = std::move(tout[k]);
    }
  }
  std::vector<Array> outs, touts;
  for (Var v : g.outputs) {
    outs.push_back(val[v]);
    touts.push_back(tan[v]);
  }
  return {outs, touts};
}
#endif

/// The forward half of reverse mode: every value of a graph at some
/// primals, kept for the backward pass, and which values depend on a
/// differentiated input (only those equations are transposed).
/// Usage: `auto tape = eqx::vjp_forward(g, xs); auto in_ct = eqx::vjp_backward(tape, out_ct);`
struct VjpTape {
  std::shared_ptr<const Graph> graph;
  std::vector<Array> values;   // by Var
  std::vector<bool> active;    // by Var
  std::vector<Array> outputs;  // the graph's outputs
  std::vector<std::vector<Array>> saved;  // by equation: residuals of split-VJP primitives (Primitive::vjp_fwd)
  std::vector<char> split;                // by equation: whether vjp_fwd ran

  /// Evaluates `graph` at `primals`, differentiating the float inputs
  /// selected by `differentiate` (all float inputs when it is empty).
  VjpTape(std::shared_ptr<const Graph> g, std::span<const Array> primals, std::span<const bool> differentiate = {});
};

/// The cotangents of the tape's graph inputs (empty: zero, or not
/// differentiated) for the output cotangents `cotangents` (empty: zero).
std::vector<Array> vjp_backward(const VjpTape& tape, std::span<const Array> cotangents);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE std::vector<Array> vjp_backward(const VjpTape& tape, std::span<const Array> cotangents) {
  const Graph& g = *tape.graph;
  if (cotangents.size() != g.outputs.size())
    throw ValueError("eqx::vjp_backward: the graph has " + std::to_string(g.outputs.size()) + " outputs but " +
                     std::to_string(cotangents.size()) + " cotangents were given (an empty Array is a zero cotangent)");
  const RuleOps& ops = detail::rule_ops();
  std::vector<Array> ct(g.types.size());
  for (std::size_t i = 0; i < g.outputs.size(); ++i)
    if (tape.active[g.outputs[i]]) ct[g.outputs[i]] = ops.add(ct[g.outputs[i]], cotangents[i]);
  std::vector<Array> ins, outs, outs_ct;
  for (std::size_t e = g.equations.size(); e-- > 0;) {
    const Equation& eq = g.equations[e];
    bool any = false;
    for (Var v : eq.outputs) any = any || ct[v].has_value();
    if (!any) continue;
    ins.clear();
    outs.clear();
    outs_ct.clear();
    for (Var v : eq.inputs) ins.push_back(tape.values[v]);
    for (Var v : eq.outputs) {
      outs.push_back(tape.values[v]);
      outs_ct.push_back(std::move(ct[v]));  // each value's cotangent is complete once its producer is reached
    }
    std::vector<Array> in_ct = tape.split[e] ? eq.prim->vjp_bwd(ops, ins, tape.saved[e], outs_ct, eq.params)
                                             : eq.prim->vjp(ops, ins, outs, outs_ct, eq.params);
    for (std::size_t k = 0; k < eq.inputs.size(); ++k)
      if (tape.active[eq.inputs[k]]) ct[eq.inputs[k]] = ops.add(ct[eq.inputs[k]], in_ct[k]);
  }
  std::vector<Array> result;
  result.reserve(g.inputs.size());
  for (Var v : g.inputs) result.push_back(ct[v]);
  return result;
}
#endif

#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE VjpTape::VjpTape(std::shared_ptr<const Graph> g_, std::span<const Array> primals,
                        std::span<const bool> differentiate)
    : graph(std::move(g_)) {
  const Graph& g = *graph;
  if (primals.size() != g.inputs.size() || (!differentiate.empty() && differentiate.size() != g.inputs.size()))
    throw ValueError("eqx::VjpTape: the graph has " + std::to_string(g.inputs.size()) + " inputs but " +
                     std::to_string(primals.size()) + " primals and " + std::to_string(differentiate.size()) +
                     " differentiate flags were given");
  values.resize(g.types.size());
  active.assign(g.types.size(), false);
  for (std::size_t i = 0; i < g.inputs.size(); ++i) {
    values[g.inputs[i]] = primals[i];
    active[g.inputs[i]] = is_floating(g.types[g.inputs[i]].dtype) && (differentiate.empty() || differentiate[i]);
  }
  for (std::size_t i = 0; i < g.constvars.size(); ++i) values[g.constvars[i]] = g.consts[i];
  saved.resize(g.equations.size());
  split.assign(g.equations.size(), 0);
  const RuleOps& ops = detail::rule_ops();
  std::vector<Array> in;
  for (std::size_t e = 0; e < g.equations.size(); ++e) {
    const Equation& eq = g.equations[e];
    in.clear();
    bool depends = false;
    for (Var v : eq.inputs) {
      in.push_back(values[v]);
      depends = depends || active[v];
    }
    depends = depends && !eq.prim->derivative_is_zero();
    std::vector<Array> out;
    if (depends && eq.prim->split_vjp()) {
      Primitive::ForwardWithResiduals r = eq.prim->vjp_fwd(ops, in, eq.params);
      out = std::move(r.outputs);
      saved[e] = std::move(r.saved);
      split[e] = 1;
    } else {
      out = eqx::bind(*eq.prim, in, eq.params);
    }
    for (std::size_t k = 0; k < out.size(); ++k) {
      active[eq.outputs[k]] = depends && is_floating(out[k].dtype());
      values[eq.outputs[k]] = std::move(out[k]);
    }
  }
  for (Var v : g.outputs) outputs.push_back(values[v]);
}
#endif

/// Outputs of `graph` at `primals`, and the cotangents of its inputs for
/// the output cotangents `cotangents` (empty: zero).
inline std::pair<std::vector<Array>, std::vector<Array>> vjp_graph(const Graph& g, std::span<const Array> primals,
                                                                 std::span<const Array> cotangents,
                                                                 std::span<const bool> differentiate = {}) {
  // The tape only borrows g for the duration of this call.
  VjpTape tape(std::shared_ptr<const Graph>(std::shared_ptr<const Graph>{}, &g), primals, differentiate);
  std::vector<Array> in_ct = vjp_backward(tape, cotangents);
  return {std::move(tape.outputs), std::move(in_ct)};
}

}  // namespace eqx
