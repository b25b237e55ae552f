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
  static const RuleOps ops{&prim::add, &prim::sub, &prim::mul, &prim::div, &prim::neg, &prim::select,
                           &prim::convert, &prim::broadcast_in_dim, &prim::reshape, &prim::reduce_sum,
                           &prim::transpose, &prim::dot_general, &prim::eq, &prim::exp, &prim::log, &prim::sin,
                           &prim::cos, &prim::sqrt, &prim::pow, &prim::sign, &prim::tanh, &prim::logistic,
                           &prim::gt};
  return ops;
}

}  // namespace eqx::detail
