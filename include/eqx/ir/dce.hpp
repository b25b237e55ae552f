#pragma once
// Dead-code elimination: drop equations none of whose outputs reach the
// graph's outputs, and constants nothing uses. Primitives are pure, so an
// unused result can always be removed; effectful ones (debug::print) stay.

#include <cstddef>
#include <iterator>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ir/graph.hpp"

namespace eqx {

/// The graph without equations and constants that do not affect its outputs.
/// Usage: `g = eqx::dce(std::move(g));`
Graph dce(Graph g);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Graph dce(Graph g) {
  std::vector<char> live(g.types.size(), 0);
  for (Var v : g.outputs) live[v] = 1;
  std::vector<Equation> kept;
  for (auto it = g.equations.rbegin(); it != g.equations.rend(); ++it) {
    bool used = false;
    for (Var v : it->outputs) used = used || live[v];
    if (!used && !it->prim->effectful()) continue;
    for (Var v : it->inputs) live[v] = 1;
    kept.push_back(std::move(*it));
  }
  g.equations.assign(std::make_move_iterator(kept.rbegin()), std::make_move_iterator(kept.rend()));
  std::vector<Var> constvars;
  std::vector<Array> consts;
  for (std::size_t i = 0; i < g.constvars.size(); ++i)
    if (live[g.constvars[i]]) {
      constvars.push_back(g.constvars[i]);
      consts.push_back(std::move(g.consts[i]));
    }
  g.constvars = std::move(constvars);
  g.consts = std::move(consts);
  return g;
}
#endif

}  // namespace eqx
