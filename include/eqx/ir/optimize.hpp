#pragma once
// The pass pipeline filter_jit runs before compiling a Plan.

#include <utility>

#include "eqx/core/config.hpp"
#include "eqx/ir/cse.hpp"
#include "eqx/ir/dce.hpp"
#include "eqx/ir/fold.hpp"
#include "eqx/ir/fold_transposes.hpp"
#include "eqx/ir/fuse.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/ir/inline.hpp"
#include "eqx/ir/simplify.hpp"

namespace eqx {

/// Inline calls, simplify, fold constants, merge common subexpressions, fold
/// transposes into GEMMs, drop dead code, then fuse elementwise chains.
/// Usage: `eqx::Plan plan(eqx::optimize(graph));`
Graph optimize(Graph g);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Graph optimize(Graph g) {
  g = inline_calls(std::move(g));
  g = simplify(std::move(g));
  g = fold_constants(std::move(g));
  g = cse(std::move(g));
  g = simplify(std::move(g));  // CSE and folding expose more (reshape of a folded reshape, ...)
  g = fold_transposes(std::move(g));
  g = dce(std::move(g));
  return fuse_elementwise(std::move(g));
}
#endif

}  // namespace eqx
