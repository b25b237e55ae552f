#pragma once
// Common-subexpression elimination: an equation that applies the same
// primitive with the same parameters to the same inputs as an earlier one is
// dropped, and its outputs are replaced by the earlier outputs.

#include <cstddef>
#include <map>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/ir/substitution.hpp"

namespace eqx {

/// The graph with repeated computations merged. Usage: `g = eqx::cse(std::move(g));`
Graph cse(Graph g);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Graph cse(Graph g) {
  detail::Substitution subst(g);
  std::map<std::pair<const Primitive*, std::vector<Var>>, std::vector<std::size_t>> seen;
  std::vector<Equation> kept;
  for (Equation& eq : g.equations) {
    subst.apply(eq.inputs);
    auto& candidates = seen[{eq.prim, eq.inputs}];
    const Equation* same = nullptr;
    for (std::size_t k : candidates)
      if (kept[k].params == eq.params && !eq.prim->effectful()) same = &kept[k];
    if (same) {
      for (std::size_t i = 0; i < eq.outputs.size(); ++i) subst.replace(eq.outputs[i], same->outputs[i]);
      continue;
    }
    candidates.push_back(kept.size());
    kept.push_back(std::move(eq));
  }
  g.equations = std::move(kept);
  subst.apply(g.outputs);
  return g;
}
#endif

}  // namespace eqx
