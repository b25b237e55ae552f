#pragma once
// inline_calls: replaces every equation of a call-like primitive (one with
// an `inlined_body`, such as filter_checkpoint's) by the equations of its
// body, so the rest of the pipeline sees one flat graph.

#include <algorithm>
#include <span>
#include <vector>

#include "eqx/ir/eval.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/ir/trace.hpp"

namespace eqx {

namespace detail {

/// eval_graph, with call-like equations evaluated through their bodies.
inline std::vector<Array> eval_inlined(const Graph& g, std::span<const Array> inputs) {
  std::vector<Array> env(g.types.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) env[g.inputs[i]] = inputs[i];
  for (std::size_t i = 0; i < g.constvars.size(); ++i) env[g.constvars[i]] = g.consts[i];
  std::vector<Array> args;
  for (const Equation& eq : g.equations) {
    args.clear();
    for (Var v : eq.inputs) args.push_back(env[v]);
    const Graph* body = eq.prim->inlined_body(eq.params);
    std::vector<Array> outs = body ? eval_inlined(*body, args) : eqx::bind(*eq.prim, args, eq.params);
    for (std::size_t i = 0; i < outs.size(); ++i) env[eq.outputs[i]] = std::move(outs[i]);
  }
  std::vector<Array> result;
  for (Var v : g.outputs) result.push_back(env[v]);
  return result;
}

}  // namespace detail

/// `g` with call-like equations replaced by their bodies (re-traced, so
/// variables are renumbered); `g` itself when it has none.
/// Usage: `eqx::Graph flat = eqx::inline_calls(std::move(g));`
inline Graph inline_calls(Graph g) {
  if (std::none_of(g.equations.begin(), g.equations.end(),
                   [](const Equation& eq) { return eq.prim->inlined_body(eq.params) != nullptr; }))
    return g;
  TraceScope scope;
  std::vector<Array> inputs;
  for (Var v : g.inputs) inputs.push_back(scope.input(g.types[v]));
  std::vector<Array> outputs = detail::eval_inlined(g, inputs);
  return scope.finish(outputs);
}

}  // namespace eqx
