#pragma once
// The elementwise primitives' one table, and pieces the rule tables share.
// Each elementwise primitive is one row of unary_ops() or binary_ops(): its
// function, dtypes and operand range, and where its derivatives are checked.
// The autodiff table (ad/autodiff_test.cpp), the jit table
// (transform/jit_primitives_test.cpp) and the vmap table
// (transform/vmap_primitives_test.cpp) all build their elementwise rows from
// it, so a new elementwise primitive is one row here. Also: deterministic
// operands, awkward edge values, dtype lists, and an exact comparison of two
// results.

#include <catch2/catch.hpp>
#include <eqx/eqx.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <array>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace eqx_test {

using Arrays = std::vector<eqx::Array>;
using I32s = std::vector<std::int32_t>;
using U32s = std::vector<std::uint32_t>;

inline std::string dt_name(eqx::DType d) { return std::string(eqx::short_name(d)); }

/// Deterministic pseudo-random values in [lo, hi] (integers truncated, bool: > 0).
inline eqx::Array rnd(eqx::DType dt, const eqx::Shape& s, unsigned seed, double lo = NAN, double hi = NAN) {
  using eqx::bool_, eqx::int32, eqx::uint32;
  if (std::isnan(lo)) {
    lo = dt == uint32 ? 0 : (dt == int32 ? -50 : (dt == bool_ ? -1 : -3));
    hi = dt == uint32 ? 100 : (dt == int32 ? 50 : (dt == bool_ ? 1 : 3));
  }
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  for (double& x : v) x = u(gen);
  if (dt != bool_) return eqx::astype(eqx::array(v, s), dt);  // float64 -> dtype: truncates toward zero
  std::vector<bool> b(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) b[i] = v[i] > 0;
  return eqx::array(b, s);
}

/// 16 awkward values of dtype, shape [4, 4]: NaN, infinities, -0.0, extremes, shift amounts.
inline eqx::Array edge(eqx::DType dt) {
  using eqx::bool_, eqx::int32, eqx::uint32;
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  if (dt == int32)
    return eqx::array(I32s{-2147483647, 2147483647, -1, 0, 1, 7, -7, 100, -100, 31, 32, 33, 65536, -65536, 3, 2},
                      {4, 4});
  if (dt == uint32)
    return eqx::array(U32s{0, 1, 2, 3, 7, 31, 32, 33, 100, 65536, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu, 0xFFFFFFFEu,
                           12345, 5}, {4, 4});
  if (dt == bool_)
    return eqx::array(std::vector<bool>{true, false, false, true, true, true, false, false, true, false, true, false,
                                        false, false, true, true}, {4, 4});
  return eqx::astype(eqx::array(std::vector<double>{nan, inf, -inf, -0.0, 0.0, 1e-30, -1, 1, 0.5, -0.5, 2.5, -7.25,
                                                    100, -100, 0.999, -0.999}, {4, 4}), dt);
}

/// Same dtype, shape and values (NaN matches NaN; -0.0 != 0.0; floats within
/// tol relative if tol > 0: relative to each wanted value, or with
/// `relative_to_max` to the largest finite magnitude wanted). `got_name` and
/// `want_name` label the values in the message.
inline void require_equal(const eqx::Array& got, const eqx::Array& want, double tol, const std::string& what,
                          const char* got_name, const char* want_name, bool relative_to_max = false) {
  INFO(what);
  REQUIRE(got.has_value());
  REQUIRE(eqx::dtype_name(got.dtype()) == eqx::dtype_name(want.dtype()));
  REQUIRE(got.shape().str() == want.shape().str());
  eqx::visit_dtype(want.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto g = got.template to_vector<T>(), w = want.template to_vector<T>();
    double largest = 0;
    if constexpr (std::is_floating_point_v<T>)
      for (T v : w)
        if (std::isfinite(v)) largest = std::max(largest, static_cast<double>(std::abs(v)));
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      bool ok = g[i] == w[i];
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(g[i]) || std::isnan(w[i])) ok = std::isnan(g[i]) && std::isnan(w[i]);
        else ok = (ok && std::signbit(g[i]) == std::signbit(w[i])) ||
                  (tol > 0 && std::abs(g[i] - w[i]) <= tol * (relative_to_max ? largest : std::abs(w[i])));
      }
      if (!ok && bad++ == 0) first = i;
    }
    INFO(bad << " of " << g.size() << " differ; first at flat index " << first << ": " << got_name << " "
              << (bad ? +g[first] : T{}) << ", " << want_name << " " << (bad ? +w[first] : T{}));
    CHECK(bad == 0);
  });
}

inline const std::vector<eqx::DType> kF{eqx::float32, eqx::float64},
    kNum{eqx::float32, eqx::float64, eqx::int32, eqx::uint32}, kInt{eqx::int32, eqx::uint32},
    kBits{eqx::bool_, eqx::int32, eqx::uint32}, kAll{eqx::float32, eqx::float64, eqx::int32, eqx::uint32, eqx::bool_};


/// The float64 range the autodiff table draws an operand from, to compare
/// an op's derivatives with finite differences: ground where the op is
/// smooth. An op without one (logic, comparisons, integer-only ops, sign)
/// has no derivative to check; autodiff_test.cpp's no-tangent rows check
/// that gradients pass around it.
struct GradDomain {
  double lo, hi;
};
inline constexpr GradDomain kUnit{-1, 1}, kPositive{0.5, 2};

/// One unary primitive of the tables: its name, the op, the dtypes it takes,
/// the operand range, `approx`: whether its Eigen kernel has a vectorised
/// path that differs from the scalar one in the last bits, and the range
/// its derivative is checked on.
struct UnaryOp {
  const char* name;
  std::function<eqx::Array(const eqx::Array&)> f;
  std::vector<eqx::DType> dts;
  double lo, hi;
  bool approx;
  std::optional<GradDomain> grad;
};

/// Every unary elementwise primitive of the foundation.
inline std::vector<UnaryOp> unary_ops() {
  using eqx::Array;
  auto op = [](auto f) { return std::function<Array(const Array&)>(f); };
  return {{"neg", op([](const Array& x) { return -x; }), kNum, -3, 3, false, kUnit},
          {"exp", op([](const Array& x) { return eqx::exp(x); }), kF, -5, 5, true, kUnit},
          {"log", op([](const Array& x) { return eqx::log(x); }), kF, 0.01, 10, true, kPositive},
          {"log1p", op([](const Array& x) { return eqx::log1p(x); }), kF, -0.9, 5, true, kPositive},
          {"expm1", op([](const Array& x) { return eqx::expm1(x); }), kF, -3, 3, true, kUnit},
          {"sqrt", op([](const Array& x) { return eqx::sqrt(x); }), kF, 0, 10, true, kPositive},
          {"rsqrt", op([](const Array& x) { return eqx::rsqrt(x); }), kF, 0.01, 10, true, kPositive},
          {"abs", op([](const Array& x) { return eqx::abs(x); }), kNum, -3, 3, false, kUnit},
          {"sign", op([](const Array& x) { return eqx::sign(x); }), kNum, -3, 3, false, std::nullopt},
          {"sin", op([](const Array& x) { return eqx::sin(x); }), kF, -10, 10, true, kUnit},
          {"cos", op([](const Array& x) { return eqx::cos(x); }), kF, -10, 10, true, kUnit},
          {"tanh", op([](const Array& x) { return eqx::tanh(x); }), kF, -5, 5, true, kUnit},
          {"logistic", op([](const Array& x) { return eqx::logistic(x); }), kF, -8, 8, true, kUnit},
          {"erf", op([](const Array& x) { return eqx::erf(x); }), kF, -3, 3, false, kUnit},
          {"not", op([](const Array& x) { return eqx::logical_not(x); }), kBits, 0, 0, false, std::nullopt},
          {"erf_inv", op([](const Array& x) { return eqx::bind1(eqx::prim::erf_inv, {x}); }), kF, -0.999, 0.999, false, GradDomain{-0.9, 0.9}}};
}

/// One binary primitive of the tables: its name, the op, the dtypes it
/// takes, the operand range (NaN: the dtype's default), and the ranges of
/// its two operands where its derivatives are checked.
struct BinaryOp {
  const char* name;
  std::function<eqx::Array(const eqx::Array&, const eqx::Array&)> f;
  std::vector<eqx::DType> dts;
  double lo, hi;
  std::optional<std::array<GradDomain, 2>> grad;
};

/// Every binary elementwise primitive of the foundation.
inline std::vector<BinaryOp> binary_ops() {
  using eqx::Array;
  auto op = [](auto f) { return std::function<Array(const Array&, const Array&)>(f); };
  auto prim = [](const eqx::Primitive& p) {
    return std::function<Array(const Array&, const Array&)>(
        [&p](const Array& a, const Array& b) { return eqx::bind1(p, {a, b}); });
  };
  const double d = NAN;
  using Grads = std::array<GradDomain, 2>;
  constexpr Grads kBothUnit{kUnit, kUnit};
  return {{"add", op([](const Array& a, const Array& b) { return a + b; }), kNum, d, d, kBothUnit},
          {"sub", op([](const Array& a, const Array& b) { return a - b; }), kNum, d, d, kBothUnit},
          {"mul", op([](const Array& a, const Array& b) { return a * b; }), kNum, d, d, kBothUnit},
          {"div", op([](const Array& a, const Array& b) { return a / b; }), kF, d, d, Grads{kUnit, kPositive}},
          {"pow", op([](const Array& a, const Array& b) { return eqx::pow(a, b); }), {eqx::float32, eqx::float64, eqx::int32}, d, d, Grads{kPositive, kUnit}},
          {"max", op([](const Array& a, const Array& b) { return eqx::maximum(a, b); }), kAll, d, d, kBothUnit},
          {"min", op([](const Array& a, const Array& b) { return eqx::minimum(a, b); }), kAll, d, d, kBothUnit},
          {"and", op([](const Array& a, const Array& b) { return eqx::logical_and(a, b); }), kBits, d, d, std::nullopt},
          {"or", op([](const Array& a, const Array& b) { return eqx::logical_or(a, b); }), kBits, d, d, std::nullopt},
          {"xor", op([](const Array& a, const Array& b) { return eqx::logical_xor(a, b); }), kBits, d, d, std::nullopt},
          {"eq", op([](const Array& a, const Array& b) { return a == b; }), kAll, d, d, std::nullopt},
          {"ne", op([](const Array& a, const Array& b) { return a != b; }), kAll, d, d, std::nullopt},
          {"lt", op([](const Array& a, const Array& b) { return a < b; }), kAll, d, d, std::nullopt},
          {"le", op([](const Array& a, const Array& b) { return a <= b; }), kAll, d, d, std::nullopt},
          {"gt", op([](const Array& a, const Array& b) { return a > b; }), kAll, d, d, std::nullopt},
          {"ge", op([](const Array& a, const Array& b) { return a >= b; }), kAll, d, d, std::nullopt},
          {"shift_left", prim(eqx::prim::shift_left), kInt, 0, 40, std::nullopt},
          {"shift_right_logical", prim(eqx::prim::shift_right_logical), kInt, 0, 40, std::nullopt},
          // (a / b stays in (1, 2): rem's derivative jumps where it is an integer)
          {"rem", prim(eqx::prim::rem), kNum, d, d, Grads{GradDomain{1.3, 1.7}, GradDomain{1.0, 1.2}}},
          {"atan2", op([](const Array& y, const Array& x) { return eqx::arctan2(y, x); }), kF, d, d, kBothUnit}};
}

}  // namespace eqx_test
