#pragma once
// inline_calls: replaces every equation of a call-like primitive (one with
// an `inlined_body`, such as filter_checkpoint's) by the equations of its
// body, so the rest of the pipeline sees one flat graph.

#include <algorithm>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ir/eval.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/ir/trace.hpp"

namespace eqx {

/// `g` with call-like equations replaced by their bodies (re-traced, so
/// variables are renumbered); `g` itself when it has none.
/// Usage: `eqx::Graph flat = eqx::inline_calls(std::move(g));`
Graph inline_calls(Graph g);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Graph inline_calls(Graph g) {
  if (std::none_of(g.equations.begin(), g.equations.end(),
                   [](const Equation& eq) { return eq.prim->inlined_body(eq.params) != nullptr; }))
    return g;
  TraceScope scope;
  std::vector<Array> inputs;
  for (Var v : g.inputs) inputs.push_back(scope.input(g.types[v]));
  std::vector<Array> outputs = detail::eval_equations(g, inputs, true);
  return scope.finish(outputs);
}
#endif

}  // namespace eqx
