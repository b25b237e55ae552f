#pragma once
// Unary elementwise primitives: neg, exp, log, log1p, expm1, sqrt, rsqrt,
// abs, sign, sin, cos, tanh, logistic, erf, not, erf_inv.
//
// Each is a small Op struct (name, accepted dtypes, Eigen expression and
// derivative) plugged into UnaryPrim, which holds the shape rule, the
// kernel and the JVP/VJP they share. Adding one: write its struct below and
// add it to EQX_UNARY_PRIMITIVES at the end of this file.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "eqx/core/config.hpp"
#if EQX_KERNELS_HERE(UNARY)
// Eigen's packet math, only where these kernels are compiled: a program's
// file with compiled kernels does not parse <Eigen/Core> for them.
#include <Eigen/Core>

#include "eqx/prim/exact_sqrt.hpp"
#endif

#include "eqx/core/threads.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/broadcast.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx::detail {

template <class T>
inline constexpr bool is_float_v = std::is_floating_point_v<T>;
template <class T>
inline constexpr bool is_int_v = std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::uint32_t>;

/// Which dtypes an op accepts, as text for error messages.
inline constexpr const char* kFloating = "a floating dtype (float32, float64)";
inline constexpr const char* kNumeric = "a numeric dtype (float32, float64, int32, uint32)";
inline constexpr const char* kIntegral = "bool, int32 or uint32";
inline constexpr const char* kAny = "any dtype";

template <class Op>
bool op_accepts(DType d) {
  return visit_dtype(d, [](auto tag) { return Op::template supports<decltype(tag)>; });
}

/// The error of an op given a dtype it does not accept (one function for
/// every op: the message is built where it is thrown, not in each op's rule).
[[noreturn]] inline void throw_rejected_dtype(std::string_view op, DType d, const char* accepts) {
  throw DTypeError("eqx::" + std::string(op) + ": got dtype " + std::string(dtype_name(d)) + ", but " +
                   std::string(op) + " needs " + accepts + "; convert first with eqx::astype");
}

template <class Op>
void require_dtype(DType d) {
  if (!op_accepts<Op>(d)) throw_rejected_dtype(Op::name, d, Op::accepts);
}

/// Shape rule and kernel shared by all unary elementwise primitives.
template <class Op>
struct UnaryPrim final : Primitive {
  std::string_view name() const override { return Op::name; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_elementwise(*this, o, x, d, p);
  }
  bool elementwise() const override { return true; }
  bool derivative_is_zero() const override {
    if constexpr (requires { Op::zero_derivative; }) return Op::zero_derivative;
    else return false;
  }

  std::optional<AbstractArray> output_type(std::span<const AbstractArray> in, const Params&) const override {
    require_dtype<Op>(in[0].dtype);
    return in[0];
  }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    return {*output_type(in, p)};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override;
  TileKernel tile_kernel(std::span<const AbstractArray> in, const Params&) const override;

  // Elementwise: tangent and cotangent are both scaled by the derivative.
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params&) const override {
    if (!t[0].has_value() || !is_floating(y[0].dtype())) return {Array{}};
    return {o.mul(t[0], Op::derivative(o, x[0], y[0]))};
  }
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params&) const override {
    if (!ct[0].has_value() || !is_floating(y[0].dtype())) return {Array{}};
    return {o.mul(ct[0], Op::derivative(o, x[0], y[0]))};
  }
};

#if EQX_KERNELS_HERE(UNARY)
/// o[i] = op(a[i]) for i < n, one SIMD packet at a time, the last partial
/// packet too (through a padded copy). Eigen's own loop would compute a
/// misaligned head and the tail with the scalar function (std::exp, std::sin)
/// and the rest with the packet one (pexp, psin), which differ in the last
/// bit; so an element's result would depend on where it sits in the buffer,
/// and a fused tile, an eager call and a thread's chunk would disagree.
template <class Op, class T>
void unary_apply(const T* a, T* o, std::int64_t n) {
  constexpr int kPacket = std::max(1, int(Eigen::internal::packet_traits<T>::size));
  using Block = Eigen::Array<T, kPacket, 1>;
  using In = Eigen::Map<const Block, Eigen::Unaligned>;
  using Out = Eigen::Map<Block, Eigen::Unaligned>;
  std::int64_t i = 0;
  for (; i + kPacket <= n; i += kPacket) Out(o + i) = Op::eval(In(a + i));
  if (i < n) {
    Block x = Block::Constant(a[i]);
    std::copy(a + i, a + n, x.data());
    const Block y = Op::eval(x);
    std::copy(y.data(), y.data() + (n - i), o + i);
  }
}

template <class Op, class T>
void unary_tile(const void* const* in, void* out, std::int64_t n) {
  unary_apply<Op, T>(static_cast<const T*>(in[0]), static_cast<T*>(out), n);
}
template <class Op>
TileKernel UnaryPrim<Op>::tile_kernel(std::span<const AbstractArray> in, const Params&) const {
  return visit_dtype(in[0].dtype, [](auto tag) -> TileKernel {
    using T = decltype(tag);
    if constexpr (Op::template supports<T>) return &unary_tile<Op, T>;
    else return nullptr;
  });
}
template <class Op>
void UnaryPrim<Op>::kernel(std::span<const View> in, std::span<const View> out, const Params&) const {
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (Op::template supports<T>) run_unary(in[0], out[0], &unary_tile<Op, T>, Op::cost);
  });
}

#endif

// --- the ops -----------------------------------------------------------------

struct NegOp {
  static constexpr std::string_view name = "neg";
  static constexpr const char* accepts = kNumeric;
  static constexpr int cost = 1;
  template <class T> static constexpr bool supports = !std::is_same_v<T, bool>;
  template <class A> static auto eval(const A& a) {
    // int32 negation wraps (-INT_MIN == INT_MIN), as in numpy: computed in uint32.
    if constexpr (std::is_same_v<typename A::Scalar, std::int32_t>)
      return (-a.template cast<std::uint32_t>()).template cast<std::int32_t>();
    else return -a;
  }
  static Array derivative(const RuleOps& o, const Array& x, const Array&) { return o.scalar(-1, x.dtype()); }
};

#if EQX_KERNELS_HERE(UNARY)
/// exp that is right below the normal range too. Eigen 3.4's vectorised exp
/// clamps its argument at the smallest normal result (exp(-100.f) gives
/// 2.9e-39, not 3.8e-44), while its scalar path is std::exp; so which elements
/// a kernel call happens to vectorise changed the result. Lanes below the
/// clamp are recomputed with std::exp (they are rare: results under 1e-38).
/// The packet exp is Eigen's generic one (within 1 ulp), not the AVX-512
/// specialisation Eigen 3.4 picks for 16 floats, which is 4 ulp off.
template <class T>
struct ExpFunctor {
  T operator()(const T& x) const { return std::exp(x); }
  template <class Packet>
  Packet packetOp(const Packet& x) const {
    namespace ei = Eigen::internal;
    constexpr T kLowest = std::is_same_v<T, float> ? T(-87.33654) : T(-708.3964185322641);  // log(smallest normal)
    Packet r;
    if constexpr (std::is_same_v<T, float>) r = ei::pexp_float(x);
    else r = ei::pexp_double(x);
    if (ei::predux_any(ei::pcmp_lt(x, ei::pset1<Packet>(kLowest)))) {
      constexpr int n = ei::unpacket_traits<Packet>::size;
      alignas(64) T xs[n], rs[n];
      ei::pstoreu(xs, x);
      ei::pstoreu(rs, r);
      for (int i = 0; i < n; ++i)
        if (xs[i] < kLowest) rs[i] = std::exp(xs[i]);
      r = ei::ploadu<Packet>(rs);
    }
    return r;
  }
};

template <class T>
struct SqrtFunctor {
  T operator()(const T& x) const { return std::sqrt(x); }
  template <class Packet>
  Packet packetOp(const Packet& x) const {
    return exact_psqrt(x);
  }
};

}  // namespace eqx::detail

namespace Eigen::internal {
template <class T>
struct functor_traits<eqx::detail::ExpFunctor<T>> {
  enum { Cost = functor_traits<scalar_exp_op<T>>::Cost, PacketAccess = packet_traits<T>::HasExp };
};
template <class T>
struct functor_traits<eqx::detail::SqrtFunctor<T>> {
  enum { Cost = functor_traits<scalar_sqrt_op<T>>::Cost, PacketAccess = packet_traits<T>::HasSqrt };
};
}  // namespace Eigen::internal
#else
// Named by the ops' Eigen expressions below, which are instantiated only
// where the kernels are compiled.
template <class T>
struct ExpFunctor;
template <class T>
struct SqrtFunctor;

}  // namespace eqx::detail
#endif

namespace eqx::detail {

// A float op: its name, cost (relative to an add, for thread chunking),
// Eigen expression of `a`, and derivative d op(x)/dx written with the rule
// ops `o`, the input `x`, the output `y` and the constant maker `c`.
#define EQX_FLOAT_UNARY_OP(Struct, op_name, cost_, expr, derivative_)                         \
  struct Struct {                                                                              \
    static constexpr std::string_view name = op_name;                                          \
    static constexpr const char* accepts = kFloating;                                          \
    static constexpr int cost = cost_;                                                         \
    template <class T> static constexpr bool supports = is_float_v<T>;                         \
    template <class A> static auto eval(const A& a) { return expr; }                           \
    static Array derivative([[maybe_unused]] const RuleOps& o, [[maybe_unused]] const Array& x, \
                            [[maybe_unused]] const Array& y) {                                 \
      [[maybe_unused]] auto c = [&](double v) { return o.scalar(v, x.dtype()); };              \
      return derivative_;                                                                      \
    }                                                                                          \
  };
EQX_FLOAT_UNARY_OP(ExpOp, "exp", 8, a.unaryExpr(ExpFunctor<typename A::Scalar>{}), y)
EQX_FLOAT_UNARY_OP(LogOp, "log", 8, a.log(), o.div(c(1), x))
EQX_FLOAT_UNARY_OP(Log1pOp, "log1p", 16, a.log1p(), o.div(c(1), o.add(x, c(1))))
EQX_FLOAT_UNARY_OP(Expm1Op, "expm1", 16, a.expm1(), o.add(y, c(1)))
EQX_FLOAT_UNARY_OP(SqrtOp, "sqrt", 4, a.unaryExpr(SqrtFunctor<typename A::Scalar>{}), o.div(c(0.5), y))
EQX_FLOAT_UNARY_OP(RsqrtOp, "rsqrt", 4, a.rsqrt(), o.mul(c(-0.5), o.div(y, x)))
EQX_FLOAT_UNARY_OP(SinOp, "sin", 8, a.sin(), o.un(o.cos_p, x))
EQX_FLOAT_UNARY_OP(CosOp, "cos", 8, a.cos(), o.neg(o.un(o.sin_p, x)))
EQX_FLOAT_UNARY_OP(TanhOp, "tanh", 8, a.tanh(), o.sub(c(1), o.mul(y, y)))
EQX_FLOAT_UNARY_OP(LogisticOp, "logistic", 8, a.logistic(), o.mul(y, o.sub(c(1), y)))
// d erf(x)/dx = 2/sqrt(pi) exp(-x^2)
EQX_FLOAT_UNARY_OP(ErfOp, "erf", 16, a.unaryExpr([](typename A::Scalar v) { return std::erf(v); }),
                   o.mul(c(1.1283791670955126), o.un(o.exp_p, o.neg(o.mul(x, x)))))
#undef EQX_FLOAT_UNARY_OP

struct AbsOp {
  static constexpr std::string_view name = "abs";
  static constexpr const char* accepts = kNumeric;
  static constexpr int cost = 1;
  template <class T> static constexpr bool supports = !std::is_same_v<T, bool>;
  template <class A> static auto eval(const A& a) {
    if constexpr (std::is_unsigned_v<typename A::Scalar>) return a.unaryExpr([](auto v) { return v; });
    else return a.abs();
  }
  static Array derivative(const RuleOps& o, const Array& x, const Array&) { return o.un(o.sign_p, x); }
};

/// sign(x): -1, 0 or 1; NaN stays NaN and -0.0 stays -0.0 (as jnp.sign; numpy gives 0.0).
struct SignOp {
  static constexpr std::string_view name = "sign";
  static constexpr const char* accepts = kNumeric;
  static constexpr int cost = 1;
  template <class T> static constexpr bool supports = !std::is_same_v<T, bool>;
  template <class A> static auto eval(const A& a) {
    using T = typename A::Scalar;
    return a.unaryExpr([](T v) { return v > T(0) ? T(1) : (v < T(0) ? static_cast<T>(-1) : v); });
  }
  /// Zero almost everywhere: no tangent (an empty Array), and reverse mode
  /// treats sign(x) as a constant (Primitive::derivative_is_zero).
  static constexpr bool zero_derivative = true;
  static Array derivative(const RuleOps&, const Array&, const Array&) { return Array{}; }
};

/// Logical not on bool, bitwise not on integers.
struct NotOp {
  static constexpr std::string_view name = "not";
  static constexpr const char* accepts = kIntegral;
  static constexpr int cost = 1;
  template <class T> static constexpr bool supports = !is_float_v<T>;
  template <class A> static auto eval(const A& a) {
    using T = typename A::Scalar;
    if constexpr (std::is_same_v<T, bool>) return a.unaryExpr([](bool v) { return !v; });
    else return a.unaryExpr([](T v) { return static_cast<T>(~v); });
  }
  /// No float input, so never differentiated.
  static Array derivative(const RuleOps&, const Array&, const Array&) { return Array{}; }
};

// --- erf_inv ------------------------------------------------------------------------------

/// Inverse error function on (-1, 1); erf_inv(+-1) = +-inf, NaN outside.
/// float32 uses Giles' single-precision polynomial and float64 his
/// double-precision one, with the coefficients and evaluation order of XLA's
/// ErfInv32/ErfInv64 (which JAX's lax.erf_inv lowers to), so samples agree
/// with JAX to within the last-ulp differences of log1p/sqrt.
template <class T>
T erf_inv_value(T x) {
  if (std::isnan(x)) return x;
  const T ax = std::abs(x);
  if (ax > T(1)) return std::numeric_limits<T>::quiet_NaN();
  if (ax == T(1)) return x * std::numeric_limits<T>::infinity();
  T w = -std::log1p(-x * x);
  T p;
  if constexpr (std::is_same_v<T, float>) {
    static constexpr float kLt5[9] = {2.81022636e-08f,  3.43273939e-07f, -3.5233877e-06f,
                                      -4.39150654e-06f, 0.00021858087f,  -0.00125372503f,
                                      -0.00417768164f,  0.246640727f,    1.50140941f};
    static constexpr float kGe5[9] = {-0.000200214257f, 0.000100950558f, 0.00134934322f,
                                      -0.00367342844f,  0.00573950773f,  -0.0076224613f,
                                      0.00943887047f,   1.00167406f,     2.83297682f};
    const bool lt = w < 5.0f;
    const float* c = lt ? kLt5 : kGe5;
    w = lt ? w - 2.5f : std::sqrt(w) - 3.0f;
    p = c[0];
    for (int i = 1; i < 9; ++i) p = c[i] + p * w;
  } else {
    static constexpr double kLt625[23] = {
        -3.6444120640178196996e-21, -1.685059138182016589e-19, 1.2858480715256400167e-18,
        1.115787767802518096e-17,   -1.333171662854620906e-16, 2.0972767875968561637e-17,
        6.6376381343583238325e-15,  -4.0545662729752068639e-14, -8.1519341976054721522e-14,
        2.6335093153082322977e-12,  -1.2975133253453532498e-11, -5.4154120542946279317e-11,
        1.051212273321532285e-09,   -4.1126339803469836976e-09, -2.9070369957882005086e-08,
        4.2347877827932403518e-07,  -1.3654692000834678645e-06, -1.3882523362786468719e-05,
        0.0001867342080340571352,   -0.00074070253416626697512, -0.0060336708714301490533,
        0.24015818242558961693,     1.6536545626831027356};
    static constexpr double kLt16[19] = {
        2.2137376921775787049e-09,  9.0756561938885390979e-08, -2.7517406297064545428e-07,
        1.8239629214389227755e-08,  1.5027403968909827627e-06, -4.013867526981545969e-06,
        2.9234449089955446044e-06,  1.2475304481671778723e-05, -4.7318229009055733981e-05,
        6.8284851459573175448e-05,  2.4031110387097893999e-05, -0.0003550375203628474796,
        0.00095328937973738049703,  -0.0016882755560235047313, 0.0024914420961078508066,
        -0.0037512085075692412107,  0.005370914553590063617,   1.0052589676941592334,
        3.0838856104922207635};
    static constexpr double kGe16[17] = {
        -2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09,
        -3.7894654401267369937e-09, 7.6157012080783393804e-09,  -1.4960026627149240478e-08,
        2.9147953450901080826e-08,  -6.7711997758452339498e-08, 2.2900482228026654717e-07,
        -9.9298272942317002539e-07, 4.5260625972231537039e-06,  -1.9681778105531670567e-05,
        7.5995277030017761139e-05,  -0.00021503011930044477347, -0.00013871931833623122026,
        1.0103004648645343977,      4.8499064014085844221};
    const double* c;
    int degree;
    if (w < 6.25) {
      c = kLt625, degree = 23, w -= 3.125;
    } else if (w < 16.0) {
      c = kLt16, degree = 19, w = std::sqrt(w) - 3.25;
    } else {
      c = kGe16, degree = 17, w = std::sqrt(w) - 5.0;
    }
    p = c[0];
    for (int i = 1; i < degree; ++i) p = c[i] + p * w;
  }
  return p * x;
}

struct ErfInvOp {
  static constexpr std::string_view name = "erf_inv";
  static constexpr const char* accepts = kFloating;
  static constexpr int cost = 32;
  template <class T> static constexpr bool supports = is_float_v<T>;
  template <class A> static auto eval(const A& a) {
    return a.unaryExpr([](typename A::Scalar v) { return erf_inv_value(v); });
  }
  // sqrt(pi)/2 exp(erf_inv(x)^2)
  static Array derivative(const RuleOps& o, const Array& x, const Array& y) {
    return o.mul(o.scalar(0.88622692545275801, x.dtype()), o.un(o.exp_p, o.mul(y, y)));
  }
};


}  // namespace eqx::detail

/// The unary primitives, as (instance in eqx::prim, op struct): the one
/// list their instances and explicit instantiations are made from, and
/// eqx::detail::registered_primitives() finds them for the coverage tests.
#define EQX_UNARY_PRIMITIVES(X)                                                                                  \
  X(neg, NegOp) X(exp, ExpOp) X(log, LogOp) X(log1p, Log1pOp) X(expm1, Expm1Op) X(sqrt, SqrtOp) X(rsqrt, RsqrtOp) \
  X(abs, AbsOp) X(sign, SignOp) X(sin, SinOp) X(cos, CosOp) X(tanh, TanhOp) X(logistic, LogisticOp) X(erf, ErfOp)  \
  X(not_, NotOp) X(erf_inv, ErfInvOp)

#if defined(EQX_COMPILED_KERNELS)
#define EQX_UNARY_INSTANTIATE(instance, Op) EQX_INSTANTIATION(UNARY) struct eqx::detail::UnaryPrim<eqx::detail::Op>;
EQX_UNARY_PRIMITIVES(EQX_UNARY_INSTANTIATE)
#undef EQX_UNARY_INSTANTIATE
#endif

namespace eqx::prim {
#define EQX_UNARY_INSTANCE(instance, Op) inline const detail::UnaryPrim<detail::Op> instance;
EQX_UNARY_PRIMITIVES(EQX_UNARY_INSTANCE)
#undef EQX_UNARY_INSTANCE
}  // namespace eqx::prim
