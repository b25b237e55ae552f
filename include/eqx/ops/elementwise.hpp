#pragma once
// Elementwise arithmetic, math functions, comparisons, logic and where,
// with numpy broadcasting and dtype promotion. C++ scalars are weakly typed:
// `x * 2.0 + 1` keeps a float32 x float32.

#include <optional>
#include <type_traits>

#include "eqx/ops/operand.hpp"
#include "eqx/prim/binary.hpp"
#include "eqx/prim/select.hpp"
#include "eqx/prim/unary.hpp"

namespace eqx {

namespace detail {

inline Array apply_binary(const Primitive& p, const Operand& a, const Operand& b) {
  DType t = result_dtype({&a, &b}, p.name());
  return bind1(p, {a.as(t), b.as(t)});
}

}  // namespace detail

// --- binary arithmetic ------------------------------------------------------

/// a + b, broadcasting; logical or on two bools (as numpy and jnp).
/// Usage: `eqx::add(x, 1)` or `x + 1`.
inline Array add(const detail::Operand& a, const detail::Operand& b) {
  if (detail::result_dtype({&a, &b}, "add") == bool_) return detail::apply_binary(prim::or_, a, b);
  return detail::apply_binary(prim::add, a, b);
}
/// a - b, broadcasting.
inline Array subtract(const detail::Operand& a, const detail::Operand& b) { return detail::apply_binary(prim::sub, a, b); }
/// a * b, broadcasting; logical and on two bools (as numpy and jnp).
inline Array multiply(const detail::Operand& a, const detail::Operand& b) {
  if (detail::result_dtype({&a, &b}, "mul") == bool_) return detail::apply_binary(prim::and_, a, b);
  return detail::apply_binary(prim::mul, a, b);
}
/// True division: integer and bool operands give float32, as in numpy/JAX.
inline Array divide(const detail::Operand& a, const detail::Operand& b) {
  DType t = detail::inexact(detail::result_dtype({&a, &b}, "div"));
  return bind1(prim::div, {a.as(t), b.as(t)});
}
/// a ** b. Integer powers are exact; a negative integer exponent gives 0
/// unless the base is +-1.
inline Array pow(const detail::Operand& a, const detail::Operand& b) { return detail::apply_binary(prim::pow, a, b); }
/// Elementwise maximum; NaN if either is NaN.
inline Array maximum(const detail::Operand& a, const detail::Operand& b) { return detail::apply_binary(prim::max, a, b); }
/// Elementwise minimum; NaN if either is NaN.
inline Array minimum(const detail::Operand& a, const detail::Operand& b) { return detail::apply_binary(prim::min, a, b); }

// --- comparisons (bool results) ----------------------------------------------

inline Array equal(const detail::Operand& a, const detail::Operand& b) { return detail::apply_binary(prim::eq, a, b); }
inline Array not_equal(const detail::Operand& a, const detail::Operand& b) { return detail::apply_binary(prim::ne, a, b); }
inline Array less(const detail::Operand& a, const detail::Operand& b) { return detail::apply_binary(prim::lt, a, b); }
inline Array less_equal(const detail::Operand& a, const detail::Operand& b) { return detail::apply_binary(prim::le, a, b); }
inline Array greater(const detail::Operand& a, const detail::Operand& b) { return detail::apply_binary(prim::gt, a, b); }
inline Array greater_equal(const detail::Operand& a, const detail::Operand& b) {
  return detail::apply_binary(prim::ge, a, b);
}

// --- logic: logical on bool, bitwise on integers -------------------------------

inline Array logical_and(const detail::Operand& a, const detail::Operand& b) {
  return detail::apply_binary(prim::and_, a, b);
}
inline Array logical_or(const detail::Operand& a, const detail::Operand& b) { return detail::apply_binary(prim::or_, a, b); }
inline Array logical_xor(const detail::Operand& a, const detail::Operand& b) {
  return detail::apply_binary(prim::xor_, a, b);
}
inline Array logical_not(const Array& x) { return bind1(prim::not_, {x}); }

/// Elements of on_true where cond is true, else of on_false; all broadcast.
/// Usage: `eqx::where(x > 0, x, 0.0f)`
inline Array where(const Array& cond, const detail::Operand& on_true, const detail::Operand& on_false) {
  DType t = detail::result_dtype({&on_true, &on_false}, "where");
  return bind1(prim::select, {cond, on_true.as(t), on_false.as(t)});
}

/// x limited to [lo, hi]: maximum(x, lo), then minimum(., hi), as jnp.clip
/// (either bound may be std::nullopt; scalars take x's dtype). At a bound
/// the gradient is 0.5, maximum's and minimum's tie rule, as JAX.
/// Usage: `eqx::clip(x, 0.0, 1.0)`, `eqx::clip(x, std::nullopt, 6)`
inline Array clip(const Array& x, const std::optional<detail::Operand>& lo, const std::optional<detail::Operand>& hi) {
  Array y = x;
  if (lo) y = maximum(y, *lo);
  if (hi) y = minimum(y, *hi);
  return y;
}

// --- unary math ----------------------------------------------------------------

inline Array negative(const Array& x) { return bind1(prim::neg, {x}); }
inline Array abs(const Array& x) { return bind1(prim::abs, {x}); }
inline Array sign(const Array& x) { return bind1(prim::sign, {x}); }

// Integer and bool inputs are converted to float32 first, as jnp does.
#define EQX_FLOAT_FUNCTION(fn)                                      \
  inline Array fn(const Array& x) {                                 \
    const Array& v = detail::require_value(x, #fn);                 \
    return bind1(prim::fn, {astype(v, detail::inexact(v.dtype()))}); \
  }
EQX_FLOAT_FUNCTION(exp)
EQX_FLOAT_FUNCTION(log)
EQX_FLOAT_FUNCTION(log1p)
EQX_FLOAT_FUNCTION(expm1)
EQX_FLOAT_FUNCTION(sqrt)
EQX_FLOAT_FUNCTION(rsqrt)
EQX_FLOAT_FUNCTION(sin)
EQX_FLOAT_FUNCTION(cos)
EQX_FLOAT_FUNCTION(tanh)
EQX_FLOAT_FUNCTION(logistic)
EQX_FLOAT_FUNCTION(erf)
#undef EQX_FLOAT_FUNCTION

/// True where x is NaN (x != x). Usage: `eqx::any(eqx::isnan(loss))`
inline Array isnan(const Array& x) { return not_equal(x, x); }

/// 1 / (1 + exp(-x)), the same primitive as eqx::logistic.
inline Array sigmoid(const Array& x) { return logistic(x); }
/// x * x.
inline Array square(const Array& x) { return multiply(x, x); }

// --- operators -------------------------------------------------------------------

#define EQX_BINARY_OPERATOR(op, fn)                                                   \
  inline Array operator op(const Array& a, const Array& b) { return fn(a, b); }       \
  template <Scalar S>                                                                 \
  Array operator op(const Array& a, S b) {                                            \
    return fn(a, b);                                                                  \
  }                                                                                   \
  template <Scalar S>                                                                 \
  Array operator op(S a, const Array& b) {                                            \
    return fn(a, b);                                                                  \
  }
EQX_BINARY_OPERATOR(+, add)
EQX_BINARY_OPERATOR(-, subtract)
EQX_BINARY_OPERATOR(*, multiply)
EQX_BINARY_OPERATOR(/, divide)
EQX_BINARY_OPERATOR(==, equal)
EQX_BINARY_OPERATOR(!=, not_equal)
EQX_BINARY_OPERATOR(<, less)
EQX_BINARY_OPERATOR(<=, less_equal)
EQX_BINARY_OPERATOR(>, greater)
EQX_BINARY_OPERATOR(>=, greater_equal)
EQX_BINARY_OPERATOR(&, logical_and)
EQX_BINARY_OPERATOR(|, logical_or)
EQX_BINARY_OPERATOR(^, logical_xor)
#undef EQX_BINARY_OPERATOR

inline Array operator-(const Array& x) { return negative(x); }
inline Array operator~(const Array& x) { return logical_not(x); }
inline Array operator!(const Array& x) { return logical_not(x); }

}  // namespace eqx
