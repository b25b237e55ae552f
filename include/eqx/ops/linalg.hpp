#pragma once
// Products: matmul (numpy's @, with vector and batched forms), dot,
// and dot_general (lax's general contraction).

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ops/operand.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/prim/dot.hpp"

namespace eqx {

/// lax.dot_general: contract `contracting` axes pairs, with `batch` axes
/// pairs shared; output axes are batch, lhs free, rhs free.
/// Usage: `eqx::dot_general(a, b, {{1}, {0}}, {{}, {}})` is a matrix product.
Array dot_general(const Array& lhs, const Array& rhs,
                  const std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>>& contracting,
                  const std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>>& batch = {});

/// Matrix product with numpy semantics: 1-D operands are vectors (a
/// dimension is added, then removed), operands of rank > 2 are stacks of
/// matrices whose leading axes broadcast. Lands on one GEMM whenever the
/// right operand is a matrix. Usage: `eqx::matmul(x, w)`
Array matmul(const Array& a, const Array& b);

/// numpy.dot: scalars multiply; otherwise contract the last axis of a with
/// the second-to-last of b (the only axis of a vector b).
Array dot(const Array& a, const Array& b);

}  // namespace eqx

#if EQX_KERNELS_HERE(OPS)
namespace eqx {
EQX_KERNEL_INLINE Array dot_general(const Array& lhs, const Array& rhs,
                                    const std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>>& contracting,
                                    const std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>>& batch) {
  DType t = promote_types(detail::require_value(lhs, "dot_general").dtype(),
                          detail::require_value(rhs, "dot_general").dtype());
  return bind1(prim::dot_general, {astype(lhs, t), astype(rhs, t)},
               Params{}
                   .set("lhs_contracting_dimensions", contracting.first)
                   .set("rhs_contracting_dimensions", contracting.second)
                   .set("lhs_batch_dimensions", batch.first)
                   .set("rhs_batch_dimensions", batch.second));
}

EQX_KERNEL_INLINE Array matmul(const Array& a, const Array& b) {
  const Shape &sa = detail::require_value(a, "matmul").shape(), &sb = detail::require_value(b, "matmul").shape();
  if (sa.empty() || sb.empty())
    throw ShapeError("eqx::matmul: operands must have rank >= 1, got " + sa.str() + " and " + sb.str() +
                     "; use * to scale by a scalar");
  const std::size_t ra = sa.size(), rb = sb.size();
  std::int64_t ka = sa[ra - 1], kb = rb == 1 ? sb[0] : sb[rb - 2];
  if (ka != kb)
    throw ShapeError("eqx::matmul: contracted dimensions differ: " + sa.str() + " @ " + sb.str() + " (" +
                     std::to_string(ka) + " vs " + std::to_string(kb) + "); the last axis of the left operand must match " +
                     (rb == 1 ? std::string("the length of the right vector")
                              : std::string("the second-to-last axis of the right operand")));
  auto ca = static_cast<std::int64_t>(ra - 1);
  if (rb <= 2)  // vector or matrix on the right: lhs leading axes fold into GEMM rows
    return dot_general(a, b, {{ca}, {rb == 1 ? 0 : static_cast<std::int64_t>(rb - 2)}});
  if (ra == 1) {  // vector @ stack: [K] x [..., K, N] -> [..., N]
    Array r = matmul(reshape(a, {1, ka}), b);
    return squeeze(r, {-2});
  }
  // stack @ stack: broadcast the leading axes, then batch them.
  Shape lead_a(sa.begin(), sa.end() - 2), lead_b(sb.begin(), sb.end() - 2);
  Shape lead = detail::broadcast_shapes(lead_a, lead_b, "matmul");
  Shape fa = lead, fb = lead;
  fa.push_back(sa[ra - 2]);
  fa.push_back(ka);
  fb.push_back(kb);
  fb.push_back(sb[rb - 1]);
  Array A = ra == 2 ? a : broadcast_to(a, fa), B = broadcast_to(b, fb);
  std::vector<std::int64_t> bdims;
  for (std::size_t i = 0; i < lead.size(); ++i) bdims.push_back(static_cast<std::int64_t>(i));
  auto nl = static_cast<std::int64_t>(lead.size());
  if (ra == 2) {  // [M, K] x [..., K, N]: contract, then move M after the batch axes
    Array r = dot_general(a, B, {{1}, {nl}});  // [M, ..., N]
    std::vector<std::int64_t> perm;
    for (std::int64_t i = 1; i <= nl; ++i) perm.push_back(i);
    perm.push_back(0);
    perm.push_back(nl + 1);
    return transpose(r, perm);
  }
  return dot_general(A, B, {{nl + 1}, {nl}}, {bdims, bdims});
}

EQX_KERNEL_INLINE Array dot(const Array& a, const Array& b) {
  const Shape &sa = detail::require_value(a, "dot").shape(), &sb = detail::require_value(b, "dot").shape();
  if (sa.empty() || sb.empty()) return a * b;
  std::int64_t cb = sb.size() == 1 ? 0 : static_cast<std::int64_t>(sb.size()) - 2;
  if (sa.back() != sb[cb])
    throw ShapeError("eqx::dot: shapes " + sa.str() + " and " + sb.str() + " are not aligned: " +
                     std::to_string(sa.back()) + " (last axis of a) != " + std::to_string(sb[cb]) +
                     (sb.size() == 1 ? " (length of b)" : " (second-to-last axis of b)"));
  return dot_general(a, b, {{static_cast<std::int64_t>(sa.size()) - 1}, {cb}});
}
}  // namespace eqx
#endif  // EQX_KERNELS_HERE(OPS)
