#pragma once
// The primitives differentiation rules are written with (eqx::RuleOps).

#include "eqx/prim/binary.hpp"
#include "eqx/prim/convert.hpp"
#include "eqx/prim/dot.hpp"
#include "eqx/prim/layout.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/prim/reduce.hpp"
#include "eqx/prim/select.hpp"
#include "eqx/prim/unary.hpp"

namespace eqx::detail {

inline const RuleOps& rule_ops() {
  static const RuleOps ops{.add_p = &prim::add,
                           .sub_p = &prim::sub,
                           .mul_p = &prim::mul,
                           .div_p = &prim::div,
                           .neg_p = &prim::neg,
                           .select_p = &prim::select,
                           .convert_p = &prim::convert,
                           .broadcast_p = &prim::broadcast_in_dim,
                           .reshape_p = &prim::reshape,
                           .reduce_sum_p = &prim::reduce_sum,
                           .reduce_prod_p = &prim::reduce_prod,
                           .transpose_p = &prim::transpose,
                           .dot_general_p = &prim::dot_general,
                           .eq_p = &prim::eq,
                           .ne_p = &prim::ne,
                           .gt_p = &prim::gt,
                           .exp_p = &prim::exp,
                           .log_p = &prim::log,
                           .sin_p = &prim::sin,
                           .cos_p = &prim::cos,
                           .sqrt_p = &prim::sqrt,
                           .pow_p = &prim::pow,
                           .sign_p = &prim::sign,
                           .tanh_p = &prim::tanh,
                           .logistic_p = &prim::logistic};
  return ops;
}

}  // namespace eqx::detail
