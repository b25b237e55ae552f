#pragma once
// Algebraic simplification, only where the result is bit-for-bit the same:
//   x * 1, 1 * x, x / 1          -> x
//   x + 0 (integers), x + -0.0   -> x     (x + 0.0 is NOT x for x = -0.0)
//   x - 0 (integers, or +0.0)    -> x
//   convert to x's own dtype     -> x
//   reshape to x's own shape     -> x;  reshape(reshape(x)) -> reshape(x)
//   transpose(transpose(x, p), q) -> transpose(x, p∘q), or x if that is the identity
//   broadcast_in_dim to x's own shape with dims 0..n-1 -> x
//   stop_gradient(x)             -> x     (compiled graphs are never differentiated)
// A rule applies only when the result has x's shape and dtype (x * 1 with a
// larger 1 broadcasts, and is kept).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/ir/substitution.hpp"
#include "eqx/prim/binary.hpp"
#include "eqx/prim/convert.hpp"
#include "eqx/prim/stop_gradient.hpp"
#include "eqx/prim/layout.hpp"

namespace eqx {

namespace detail {

enum class ConstKind { one, zero, neg_zero };

/// True if every element of the concrete constant `c` is of `kind`.
inline bool all_elements(const Array& c, ConstKind kind) {
  return visit_dtype(c.dtype(), [&](auto tag) {
    using T = decltype(tag);
    for (T x : c.data<T>()) {
      bool ok = false;
      if constexpr (std::is_floating_point_v<T>) {
        if (kind == ConstKind::one) ok = x == T(1);
        else if (kind == ConstKind::zero) ok = x == T(0) && !std::signbit(x);
        else ok = x == T(0) && std::signbit(x);
      } else {
        ok = kind == ConstKind::one ? x == T(1) : x == T(0);  // integers have one zero
      }
      if (!ok) return false;
    }
    return true;
  });
}

}  // namespace detail

/// The graph with exact algebraic identities applied (see the file comment).
/// Usage: `g = eqx::simplify(std::move(g));`
Graph simplify(Graph g);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Graph simplify(Graph g) {
  using detail::ConstKind;
  const detail::VarSources sources(g);
  detail::Substitution subst(g);
  std::vector<const Equation*> producer(g.types.size(), nullptr);
  std::vector<Equation> kept;
  kept.reserve(g.equations.size());

  auto is_const = [&](Var v, ConstKind k) {
    const Array* c = sources.concrete_const(g, v);
    if (!c) return false;
    if (!is_floating(c->dtype()) && k == ConstKind::neg_zero) k = ConstKind::zero;
    return detail::all_elements(*c, k);
  };
  // out is replaced by x when the types agree.
  auto forward = [&](const Equation& eq, Var x) {
    if (g.types[eq.outputs[0]] != g.types[x]) return false;
    subst.replace(eq.outputs[0], x);
    return true;
  };

  for (Equation& eq : g.equations) {
    subst.apply(eq.inputs);
    const Primitive* p = eq.prim;
    const auto& in = eq.inputs;
    bool removed = false;
    if (p == &prim::mul) {
      removed = (is_const(in[1], ConstKind::one) && forward(eq, in[0])) ||
                (is_const(in[0], ConstKind::one) && forward(eq, in[1]));
    } else if (p == &prim::div) {
      removed = is_const(in[1], ConstKind::one) && forward(eq, in[0]);
    } else if (p == &prim::add) {
      removed = (is_const(in[1], ConstKind::neg_zero) && forward(eq, in[0])) ||
                (is_const(in[0], ConstKind::neg_zero) && forward(eq, in[1]));
    } else if (p == &prim::sub) {
      removed = is_const(in[1], ConstKind::zero) && forward(eq, in[0]);
    } else if (p == &prim::convert || p == &prim::stop_gradient) {
      removed = forward(eq, in[0]);
    } else if (p == &prim::reshape) {
      const Equation* inner = producer[in[0]];
      if (inner && inner->prim == &prim::reshape) eq.inputs[0] = inner->inputs[0];
      removed = forward(eq, eq.inputs[0]);
    } else if (p == &prim::broadcast_in_dim) {
      removed = detail::is_identity_permutation(eq.params.get<detail::Ints>("broadcast_dimensions")) &&
                forward(eq, in[0]);
    } else if (p == &prim::transpose) {
      const Equation* inner = producer[in[0]];
      if (inner && inner->prim == &prim::transpose) {
        const auto& outer_perm = eq.params.get<detail::Ints>("permutation");
        const auto& inner_perm = inner->params.get<detail::Ints>("permutation");
        detail::Ints composed(outer_perm.size());
        for (std::size_t i = 0; i < composed.size(); ++i)
          composed[i] = inner_perm[static_cast<std::size_t>(outer_perm[i])];
        eq.inputs[0] = inner->inputs[0];
        eq.params = Params{}.set("permutation", composed);
      }
      removed = detail::is_identity_permutation(eq.params.get<detail::Ints>("permutation")) &&
                forward(eq, eq.inputs[0]);
    }
    if (removed) continue;
    kept.push_back(std::move(eq));
    for (Var v : kept.back().outputs) producer[v] = &kept.back();  // stable: kept was reserved
  }
  g.equations = std::move(kept);
  subst.apply(g.outputs);
  return g;
}
#endif

}  // namespace eqx
