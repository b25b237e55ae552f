#pragma once
// Constant folding: an equation whose inputs are all concrete constants is
// computed once, now, and its outputs become constants. Results much larger
// than their inputs (a broadcast of a scalar to a big array) are left to run
// at call time, so folding never multiplies a plan's memory. Primitives that
// are not foldable (effects, host callbacks) always run at call time.

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/ir/substitution.hpp"

namespace eqx {

/// The graph with constant subexpressions evaluated. Outputs larger than
/// `max_elements` and than their inputs together are not folded.
/// Usage: `g = eqx::fold_constants(std::move(g));`
Graph fold_constants(Graph g, std::int64_t max_elements = std::int64_t{1} << 16);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Graph fold_constants(Graph g, std::int64_t max_elements) {
  std::vector<Array> value(g.types.size());
  for (std::size_t i = 0; i < g.constvars.size(); ++i)
    if (!g.consts[i].is_abstract()) value[g.constvars[i]] = g.consts[i];
  detail::Substitution subst(g);
  std::vector<Equation> kept;
  std::vector<Array> args;
  for (Equation& eq : g.equations) {
    subst.apply(eq.inputs);
    args.clear();
    std::int64_t in_elements = 0;
    for (Var v : eq.inputs) {
      if (!value[v].has_value()) break;
      args.push_back(value[v]);
      in_elements += value[v].size();
    }
    bool all_const = args.size() == eq.inputs.size();
    std::int64_t out_elements = 0;
    for (Var v : eq.outputs) out_elements += g.types[v].shape.numel();
    if (!all_const || !eq.prim->foldable() || (out_elements > max_elements && out_elements > in_elements)) {
      kept.push_back(std::move(eq));
      continue;
    }
    std::vector<Array> outs = detail::eval_eager(*eq.prim, args, eq.params);
    for (std::size_t i = 0; i < outs.size(); ++i) {
      Var c = g.add_const(outs[i]);
      value.push_back(outs[i]);
      subst.add(c);
      subst.replace(eq.outputs[i], c);
    }
  }
  g.equations = std::move(kept);
  subst.apply(g.outputs);
  return g;
}
#endif

}  // namespace eqx
