#pragma once
// Forward and reverse mode as graph evaluations with each primitive's rules.
//
// jvp: evaluate the graph on primals and tangents together, equation by
// equation: outputs by binding the primitive, tangents by its JVP rule.
// vjp: evaluate the graph forward, then walk its equations backwards,
// accumulating cotangents with each primitive's VJP rule. Both bind in the
// caller's context, so they can be traced (jit, and differentiated again).
// An empty Array is a symbolic zero throughout.

#include <span>
#include <vector>

#include "eqx/ad/rule_ops.hpp"
#include "eqx/ir/graph.hpp"

namespace eqx {

/// Outputs and output tangents of `graph` at `primals` with `tangents`.
inline std::pair<std::vector<Array>, std::vector<Array>> jvp_graph(const Graph& g, std::span<const Array> primals,
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

/// Outputs of `graph` at `primals`, and the cotangents of its inputs for
/// the output cotangents `cotangents` (empty: zero).
inline std::pair<std::vector<Array>, std::vector<Array>> vjp_graph(const Graph& g, std::span<const Array> primals,
                                                                 std::span<const Array> cotangents) {
  const RuleOps& ops = detail::rule_ops();
  std::vector<Array> val(g.types.size()), ct(g.types.size());
  for (std::size_t i = 0; i < g.inputs.size(); ++i) val[g.inputs[i]] = primals[i];
  for (std::size_t i = 0; i < g.constvars.size(); ++i) val[g.constvars[i]] = g.consts[i];
  std::vector<std::vector<Array>> ins(g.equations.size());
  for (std::size_t e = 0; e < g.equations.size(); ++e) {
    const Equation& eq = g.equations[e];
    for (Var v : eq.inputs) ins[e].push_back(val[v]);
    std::vector<Array> out = eqx::bind(*eq.prim, ins[e], eq.params);
    for (std::size_t k = 0; k < out.size(); ++k) val[eq.outputs[k]] = std::move(out[k]);
  }
  for (std::size_t i = 0; i < g.outputs.size(); ++i) ct[g.outputs[i]] = ops.add(ct[g.outputs[i]], cotangents[i]);
  std::vector<Array> outs_ct, outs;
  for (std::size_t e = g.equations.size(); e-- > 0;) {
    const Equation& eq = g.equations[e];
    outs_ct.clear();
    outs.clear();
    bool any = false;
    for (Var v : eq.outputs) {
      outs_ct.push_back(ct[v]);
      outs.push_back(val[v]);
      any = any || ct[v].has_value();
    }
    if (!any) continue;
    std::vector<Array> in_ct = eq.prim->vjp(ops, ins[e], outs, outs_ct, eq.params);
    for (std::size_t k = 0; k < eq.inputs.size(); ++k) ct[eq.inputs[k]] = ops.add(ct[eq.inputs[k]], in_ct[k]);
  }
  std::vector<Array> result_out, result_ct;
  for (Var v : g.outputs) result_out.push_back(val[v]);
  for (Var v : g.inputs) result_ct.push_back(ct[v]);
  return {result_out, result_ct};
}

}  // namespace eqx
