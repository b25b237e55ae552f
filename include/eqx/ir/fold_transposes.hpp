#pragma once
// Transpose folding (as XLA's pass of that name): a GEMM reads either
// operand transposed for free, so a transpose next to a dot_general is
// folded into the dot's axis numbers instead of being copied:
//   dot_general(transpose(x, p), y)  -> dot_general(x, y), axes mapped by p
//   transpose(dot_general(a, b))     -> dot_general(b, a), when the
//       permutation only swaps the two operands' free axes and nothing else
//       reads the dot
// `x @ w.T` (every Linear layer) needs no copy of w, and the weight
// cotangent of `x @ w.T`, (ctᵀ x) transposed, becomes one GEMM. Inside a
// scan body this removes per-step copies of loop-invariant weights.
// The GEMM reads the same values in another order, so results may differ
// in the last bit from the unfolded graph (as from any other GEMM kernel).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/prim/dot.hpp"
#include "eqx/prim/layout.hpp"

namespace eqx {

namespace detail {

/// Folds `transpose(x, perm)`, a dot operand whose contracting and batch
/// axes are `contract`/`batch`, into those axes, if the operand's free axes
/// keep their order in x (the dot's output order depends on it).
inline bool fold_operand_transpose(const Ints& perm, AxisList& contract, AxisList& batch) {
  Ints free_in_x;
  for (auto a : free_axes(perm.size(), batch, contract)) free_in_x.push_back(perm[static_cast<std::size_t>(a)]);
  if (!std::is_sorted(free_in_x.begin(), free_in_x.end())) return false;
  for (auto& a : contract) a = perm[static_cast<std::size_t>(a)];
  for (auto& a : batch) a = perm[static_cast<std::size_t>(a)];
  return true;
}

/// True if `perm` takes a dot output [batch (nb), lhs free (nl), rhs free
/// (nr)] to [batch, rhs free, lhs free]: the output of the swapped dot.
inline bool swaps_free_axes(const Ints& perm, std::size_t nb, std::size_t nl, std::size_t nr) {
  if (perm.size() != nb + nl + nr) return false;
  Ints want;
  for (std::size_t i = 0; i < nb; ++i) want.push_back(static_cast<std::int64_t>(i));
  for (std::size_t i = 0; i < nr; ++i) want.push_back(static_cast<std::int64_t>(nb + nl + i));
  for (std::size_t i = 0; i < nl; ++i) want.push_back(static_cast<std::int64_t>(nb + i));
  return perm == want;
}

}  // namespace detail

/// The graph with transposes folded into the dot_generals next to them (see
/// the file comment). Transposes left unused are removed by dce.
/// Usage: `g = eqx::dce(eqx::fold_transposes(std::move(g)));`
Graph fold_transposes(Graph g);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Graph fold_transposes(Graph g) {
  using detail::DotDims;
  using detail::Ints;
  const detail::VarSources sources(g);
  std::vector<int> uses(g.types.size(), 0);
  for (const Equation& eq : g.equations)
    for (Var v : eq.inputs) ++uses[v];
  for (Var v : g.outputs) ++uses[v];
  auto producer_of = [&](Var v, const Primitive& p) -> const Equation* {
    const std::int32_t e = sources.producer[v];
    if (e < 0 || g.equations[static_cast<std::size_t>(e)].prim != &p) return nullptr;
    return &g.equations[static_cast<std::size_t>(e)];
  };

  for (Equation& eq : g.equations) {
    if (eq.prim == &prim::dot_general) {
      DotDims axes = DotDims::from(eq.params);
      bool changed = false;
      for (std::size_t k = 0; k < 2; ++k) {
        const Equation* t = producer_of(eq.inputs[k], prim::transpose);
        if (!t) continue;
        detail::AxisList& contract = k == 0 ? axes.lhs_contract : axes.rhs_contract;
        detail::AxisList& batch = k == 0 ? axes.lhs_batch : axes.rhs_batch;
        if (detail::fold_operand_transpose(t->params.get<Ints>("permutation"), contract, batch)) {
          eq.inputs[k] = t->inputs[0];
          changed = true;
        }
      }
      if (changed) eq.params = axes.params();
    } else if (eq.prim == &prim::transpose) {
      const Equation* dot = producer_of(eq.inputs[0], prim::dot_general);
      if (!dot || uses[eq.inputs[0]] != 1) continue;
      const DotDims axes = DotDims::from(dot->params);
      const std::size_t lhs_rank = g.types[dot->inputs[0]].shape.size(), rhs_rank = g.types[dot->inputs[1]].shape.size();
      const std::size_t nb = axes.lhs_batch.size();
      if (!detail::swaps_free_axes(eq.params.get<Ints>("permutation"), nb, lhs_rank - nb - axes.lhs_contract.size(),
                                   rhs_rank - nb - axes.rhs_contract.size()))
        continue;
      const Var out = eq.outputs[0];
      eq = Equation{&prim::dot_general, {dot->inputs[1], dot->inputs[0]}, {out},
                    DotDims{axes.rhs_contract, axes.lhs_contract, axes.rhs_batch, axes.lhs_batch}.params()};
    }
  }
  return g;
}
#endif

}  // namespace eqx
