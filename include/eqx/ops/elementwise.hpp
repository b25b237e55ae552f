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

inline Array apply_binary(const Primitive& p, const Operand& a, const Operand& b, DType t) {
  return bind1(p, {a.as(t), b.as(t)});
}
inline Array apply_binary(const Primitive& p, const Operand& a, const Operand& b) {
  return apply_binary(p, a, b, result_dtype({&a, &b}, p.name()));
}

}  // namespace detail

// --- binary arithmetic ------------------------------------------------------

/// a + b, broadcasting; logical or on two bools (as numpy and jnp).
/// Usage: `eqx::add(x, 1)` or `x + 1`.
inline Array add(const Operand& a, const Operand& b) {
  const DType t = detail::result_dtype({&a, &b}, "add");
  return t == bool_ ? detail::apply_binary(prim::or_, a, b, t) : detail::apply_binary(prim::add, a, b, t);
}
/// a - b, broadcasting.
inline Array subtract(const Operand& a, const Operand& b) { return detail::apply_binary(prim::sub, a, b); }
/// a * b, broadcasting; logical and on two bools (as numpy and jnp).
inline Array multiply(const Operand& a, const Operand& b) {
  const DType t = detail::result_dtype({&a, &b}, "mul");
  return t == bool_ ? detail::apply_binary(prim::and_, a, b, t) : detail::apply_binary(prim::mul, a, b, t);
}
/// True division: integer and bool operands give float32, as in numpy/JAX.
inline Array divide(const Operand& a, const Operand& b) {
  DType t = detail::inexact(detail::result_dtype({&a, &b}, "div"));
  return bind1(prim::div, {a.as(t), b.as(t)});
}
/// a ** b. Integer powers are exact; a negative integer exponent gives 0
/// unless the base is +-1.
inline Array pow(const Operand& a, const Operand& b) { return detail::apply_binary(prim::pow, a, b); }
/// The angle of (x, y) in (-pi, pi], elementwise, as jnp.arctan2 (y first;
/// integer and bool operands give float32). Usage: `eqx::arctan2(y, x)`
inline Array arctan2(const Operand& y, const Operand& x) {
  DType t = detail::inexact(detail::result_dtype({&y, &x}, "atan2"));
  return bind1(prim::atan2, {y.as(t), x.as(t)});
}
/// Elementwise maximum; NaN if either is NaN.
inline Array maximum(const Operand& a, const Operand& b) { return detail::apply_binary(prim::max, a, b); }
/// Elementwise minimum; NaN if either is NaN.
inline Array minimum(const Operand& a, const Operand& b) { return detail::apply_binary(prim::min, a, b); }

// --- comparisons (bool results) ----------------------------------------------

inline Array equal(const Operand& a, const Operand& b) { return detail::apply_binary(prim::eq, a, b); }
inline Array not_equal(const Operand& a, const Operand& b) { return detail::apply_binary(prim::ne, a, b); }
inline Array less(const Operand& a, const Operand& b) { return detail::apply_binary(prim::lt, a, b); }
inline Array less_equal(const Operand& a, const Operand& b) { return detail::apply_binary(prim::le, a, b); }
inline Array greater(const Operand& a, const Operand& b) { return detail::apply_binary(prim::gt, a, b); }
inline Array greater_equal(const Operand& a, const Operand& b) {
  return detail::apply_binary(prim::ge, a, b);
}

// --- logic: logical on bool, bitwise on integers -------------------------------

inline Array logical_and(const Operand& a, const Operand& b) {
  return detail::apply_binary(prim::and_, a, b);
}
inline Array logical_or(const Operand& a, const Operand& b) { return detail::apply_binary(prim::or_, a, b); }
inline Array logical_xor(const Operand& a, const Operand& b) {
  return detail::apply_binary(prim::xor_, a, b);
}
inline Array logical_not(const Array& x) { return bind1(prim::not_, {x}); }

/// Elements of on_true where cond is true, else of on_false; all broadcast.
/// Usage: `eqx::where(x > 0, x, 0.0f)`
inline Array where(const Array& cond, const Operand& on_true, const Operand& on_false) {
  DType t = detail::result_dtype({&on_true, &on_false}, "where");
  return bind1(prim::select, {cond, on_true.as(t), on_false.as(t)});
}

/// x limited to [lo, hi]: maximum(x, lo), then minimum(., hi), as jnp.clip
/// (either bound may be std::nullopt; scalars take x's dtype). At a bound
/// the gradient is 0.5, maximum's and minimum's tie rule, as JAX.
/// Usage: `eqx::clip(x, 0.0, 1.0)`, `eqx::clip(x, std::nullopt, 6)`
inline Array clip(const Array& x, const std::optional<Operand>& lo, const std::optional<Operand>& hi) {
  Array y = x;
  if (lo) y = maximum(y, *lo);
  if (hi) y = minimum(y, *hi);
  return y;
}

// --- unary math ----------------------------------------------------------------

/// -x (int32 wraps, as numpy). Usage: `eqx::negative(x)` or `-x`.
inline Array negative(const Array& x) { return bind1(prim::neg, {x}); }
/// |x|. Usage: `eqx::abs(x)`
inline Array abs(const Array& x) { return bind1(prim::abs, {x}); }
/// -1, 0 or 1 by the sign of x; NaN stays NaN, -0.0 stays -0.0 (as jnp.sign). Usage: `eqx::sign(x)`
inline Array sign(const Array& x) { return bind1(prim::sign, {x}); }

// Integer and bool inputs are converted to float32 first, as jnp does.
#define EQX_FLOAT_FUNCTION(fn)                                      \
  inline Array fn(const Array& x) {                                 \
    const Array& v = detail::require_value(x, #fn);                 \
    return bind1(prim::fn, {astype(v, detail::inexact(v.dtype()))}); \
  }
/// e^x. Usage: `eqx::exp(x)`
EQX_FLOAT_FUNCTION(exp)
/// Natural logarithm. Usage: `eqx::log(x)`
EQX_FLOAT_FUNCTION(log)
/// log(1 + x), exact for small x. Usage: `eqx::log1p(x)`
EQX_FLOAT_FUNCTION(log1p)
/// e^x - 1, exact for small x. Usage: `eqx::expm1(x)`
EQX_FLOAT_FUNCTION(expm1)
/// Square root, correctly rounded. Usage: `eqx::sqrt(x)`
EQX_FLOAT_FUNCTION(sqrt)
/// 1 / sqrt(x). Usage: `eqx::rsqrt(x)`
EQX_FLOAT_FUNCTION(rsqrt)
/// Sine (radians). Usage: `eqx::sin(x)`
EQX_FLOAT_FUNCTION(sin)
/// Cosine (radians). Usage: `eqx::cos(x)`
EQX_FLOAT_FUNCTION(cos)
/// Hyperbolic tangent. Usage: `eqx::tanh(x)`
EQX_FLOAT_FUNCTION(tanh)
/// 1 / (1 + e^-x) (also eqx::sigmoid). Usage: `eqx::logistic(x)`
EQX_FLOAT_FUNCTION(logistic)
/// The error function. Usage: `eqx::erf(x)`
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
/// a + b, eqx::add: `x + 1`
EQX_BINARY_OPERATOR(+, add)
/// a - b, eqx::subtract: `x - y`
EQX_BINARY_OPERATOR(-, subtract)
/// a * b, eqx::multiply: `2.0f * x`
EQX_BINARY_OPERATOR(*, multiply)
/// a / b, eqx::divide (true division): `x / 2`
EQX_BINARY_OPERATOR(/, divide)
/// a == b elementwise (bool), eqx::equal: `x == 0`
EQX_BINARY_OPERATOR(==, equal)
/// a != b elementwise (bool), eqx::not_equal: `x != y`
EQX_BINARY_OPERATOR(!=, not_equal)
/// a < b elementwise (bool), eqx::less: `x < 0`
EQX_BINARY_OPERATOR(<, less)
/// a <= b elementwise (bool), eqx::less_equal: `x <= 1`
EQX_BINARY_OPERATOR(<=, less_equal)
/// a > b elementwise (bool), eqx::greater: `x > 0`
EQX_BINARY_OPERATOR(>, greater)
/// a >= b elementwise (bool), eqx::greater_equal: `x >= y`
EQX_BINARY_OPERATOR(>=, greater_equal)
/// Logical and on bools (bitwise on integers), eqx::logical_and: `(x > 0) & (x < 1)`
EQX_BINARY_OPERATOR(&, logical_and)
/// Logical or on bools (bitwise on integers), eqx::logical_or: `m1 | m2`
EQX_BINARY_OPERATOR(|, logical_or)
/// Logical xor on bools (bitwise on integers), eqx::logical_xor: `m1 ^ m2`
EQX_BINARY_OPERATOR(^, logical_xor)
#undef EQX_BINARY_OPERATOR

/// -x, eqx::negative.
inline Array operator-(const Array& x) { return negative(x); }
/// Logical not on bools, bitwise not on integers (eqx::logical_not): `~mask`
inline Array operator~(const Array& x) { return logical_not(x); }
/// Logical not on bools, bitwise not on integers (eqx::logical_not): `!mask`
inline Array operator!(const Array& x) { return logical_not(x); }

}  // namespace eqx
