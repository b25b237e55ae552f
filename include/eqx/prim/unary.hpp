#pragma once
// Unary elementwise primitives: neg, exp, log, log1p, expm1, sqrt, rsqrt,
// abs, sign, sin, cos, tanh, logistic, erf, not.
//
// Each is a small Op struct (name, accepted dtypes, Eigen expression) plugged
// into UnaryPrim, which holds the shape rule and the kernel they share.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include <Eigen/Core>

#include "eqx/core/threads.hpp"
#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"

// Kernels are defined here unless the kernels are compiled once into the
// eqx::kernels library (EQX_COMPILED_KERNELS; see eqx/core/config.hpp).
#if !defined(EQX_COMPILED_KERNELS) || defined(EQX_KERNELS_UNARY)
#define EQX_UNARY_KERNELS 1
#else
#define EQX_UNARY_KERNELS 0
#endif
// The class template instances: explicitly instantiated (vtable, rules,
// kernels) in eqx::kernels, and only declared in code that links it.
#if defined(EQX_KERNELS_UNARY)
#define EQX_UNARY_INSTANTIATION template
#elif defined(EQX_COMPILED_KERNELS)
#define EQX_UNARY_INSTANTIATION extern template
#endif

namespace eqx::detail {

template <class T>
inline constexpr bool is_float_v = std::is_floating_point_v<T>;
template <class T>
inline constexpr bool is_int_v = std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::uint32_t>;

template <class T>
using EArray = Eigen::Array<T, Eigen::Dynamic, 1>;
template <class T>
using EMap = Eigen::Map<EArray<T>>;
template <class T>
using ECMap = Eigen::Map<const EArray<T>>;

/// Which dtypes an op accepts, as text for error messages.
inline constexpr const char* kFloating = "a floating dtype (float32, float64)";
inline constexpr const char* kNumeric = "a numeric dtype (float32, float64, int32, uint32)";
inline constexpr const char* kIntegral = "bool, int32 or uint32";
inline constexpr const char* kAny = "any dtype";

template <class Op>
bool op_accepts(DType d) {
  return visit_dtype(d, [](auto tag) { return Op::template supports<decltype(tag)>; });
}

template <class Op>
void require_dtype(DType d) {
  if (!op_accepts<Op>(d))
    throw DTypeError("eqx::" + std::string(Op::name) + ": got dtype " + std::string(dtype_name(d)) + ", but " +
                     std::string(Op::name) + " needs " + Op::accepts + "; convert first with eqx::astype");
}

struct ErfInvOp;  // eqx/prim/random_bits.hpp

/// d op(x) / dx as an Array (written with `o`), or an empty Array when the
/// derivative is zero everywhere (sign, not). Defined after the ops below.
template <class Op>
Array unary_derivative(const RuleOps& o, const Array& x, const Array& y);

/// Shape rule and kernel shared by all unary elementwise primitives.
template <class Op>
struct UnaryPrim final : Primitive {
  std::string_view name() const override { return Op::name; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_elementwise(*this, o, x, d, p);
  }
  bool elementwise() const override { return true; }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params&) const override {
    require_dtype<Op>(in[0].dtype);
    return {in[0]};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override;
  TileKernel tile_kernel(std::span<const AbstractArray> in, const Params&) const override;

  // Elementwise: tangent and cotangent are both scaled by the derivative.
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params&) const override {
    if (!t[0].has_value() || !is_floating(y[0].dtype())) return {Array{}};
    return {o.mul(t[0], unary_derivative<Op>(o, x[0], y[0]))};
  }
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params&) const override {
    if (!ct[0].has_value() || !is_floating(y[0].dtype())) return {Array{}};
    return {o.mul(ct[0], unary_derivative<Op>(o, x[0], y[0]))};
  }
};

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
#if EQX_UNARY_KERNELS
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
    if constexpr (Op::template supports<T>) {
      const T* a = in[0].as<const T>();
      T* o = out[0].as<T>();
      parallel_for(in[0].numel(), Op::cost,
                   [&](std::int64_t b, std::int64_t e) { unary_apply<Op, T>(a + b, o + b, e - b); });
    }
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
};

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

/// Correctly rounded sqrt on every packet width. Eigen 3.4's float packet
/// sqrt (SSE, AVX and AVX-512, under its default EIGEN_FAST_MATH) is a
/// reciprocal-sqrt estimate with one Newton step, off in the last bits and
/// zero for subnormal inputs; its double ones are the sqrt instruction.
/// In the ISA's namespace: the same overload compiled for another ISA is
/// another function (core/config.hpp).
inline namespace EQX_KERNELS_ABI {
template <class Packet>
Packet exact_psqrt(const Packet& x) {
  return Eigen::internal::psqrt(x);
}
#if defined(EIGEN_VECTORIZE_SSE2)
inline Eigen::internal::Packet4f exact_psqrt(const Eigen::internal::Packet4f& x) { return _mm_sqrt_ps(x); }
#endif
#if defined(EIGEN_VECTORIZE_AVX)
inline Eigen::internal::Packet8f exact_psqrt(const Eigen::internal::Packet8f& x) { return _mm256_sqrt_ps(x); }
#endif
#if defined(EIGEN_VECTORIZE_AVX512)
inline Eigen::internal::Packet16f exact_psqrt(const Eigen::internal::Packet16f& x) { return _mm512_sqrt_ps(x); }
inline Eigen::internal::Packet8d exact_psqrt(const Eigen::internal::Packet8d& x) { return _mm512_sqrt_pd(x); }
#endif
}  // inline namespace EQX_KERNELS_ABI

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

namespace eqx::detail {

#define EQX_FLOAT_UNARY_OP(Struct, op_name, cost_, expr)                   \
  struct Struct {                                                          \
    static constexpr std::string_view name = op_name;                      \
    static constexpr const char* accepts = kFloating;                      \
    static constexpr int cost = cost_;                                     \
    template <class T> static constexpr bool supports = is_float_v<T>;     \
    template <class A> static auto eval(const A& a) { return expr; }       \
  };
EQX_FLOAT_UNARY_OP(ExpOp, "exp", 8, a.unaryExpr(ExpFunctor<typename A::Scalar>{}))
EQX_FLOAT_UNARY_OP(LogOp, "log", 8, a.log())
EQX_FLOAT_UNARY_OP(Log1pOp, "log1p", 16, a.log1p())
EQX_FLOAT_UNARY_OP(Expm1Op, "expm1", 16, a.expm1())
EQX_FLOAT_UNARY_OP(SqrtOp, "sqrt", 4, a.unaryExpr(SqrtFunctor<typename A::Scalar>{}))
EQX_FLOAT_UNARY_OP(RsqrtOp, "rsqrt", 4, a.rsqrt())
EQX_FLOAT_UNARY_OP(SinOp, "sin", 8, a.sin())
EQX_FLOAT_UNARY_OP(CosOp, "cos", 8, a.cos())
EQX_FLOAT_UNARY_OP(TanhOp, "tanh", 8, a.tanh())
EQX_FLOAT_UNARY_OP(LogisticOp, "logistic", 8, a.logistic())
EQX_FLOAT_UNARY_OP(ErfOp, "erf", 16, a.unaryExpr([](typename A::Scalar v) { return std::erf(v); }))
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
};

}  // namespace eqx::detail

namespace eqx::detail {

template <class Op>
Array unary_derivative(const RuleOps& o, const Array& x, const Array& y) {
  const DType d = x.dtype();
  auto c = [&](double v) { return o.scalar(v, d); };
  if constexpr (std::is_same_v<Op, NegOp>) return c(-1);
  else if constexpr (std::is_same_v<Op, ExpOp>) return y;
  else if constexpr (std::is_same_v<Op, LogOp>) return o.div(c(1), x);
  else if constexpr (std::is_same_v<Op, Log1pOp>) return o.div(c(1), o.add(x, c(1)));
  else if constexpr (std::is_same_v<Op, Expm1Op>) return o.add(y, c(1));
  else if constexpr (std::is_same_v<Op, SqrtOp>) return o.div(c(0.5), y);
  else if constexpr (std::is_same_v<Op, RsqrtOp>) return o.mul(c(-0.5), o.div(y, x));
  else if constexpr (std::is_same_v<Op, AbsOp>) return o.un(o.sign_p, x);
  else if constexpr (std::is_same_v<Op, SinOp>) return o.un(o.cos_p, x);
  else if constexpr (std::is_same_v<Op, CosOp>) return o.neg(o.un(o.sin_p, x));
  else if constexpr (std::is_same_v<Op, TanhOp>) return o.sub(c(1), o.mul(y, y));
  else if constexpr (std::is_same_v<Op, LogisticOp>) return o.mul(y, o.sub(c(1), y));
  else if constexpr (std::is_same_v<Op, ErfOp>)
    return o.mul(c(1.1283791670955126), o.un(o.exp_p, o.neg(o.mul(x, x))));  // 2/sqrt(pi) exp(-x^2)
  else if constexpr (std::is_same_v<Op, ErfInvOp>)
    return o.mul(c(0.88622692545275801), o.un(o.exp_p, o.mul(y, y)));  // sqrt(pi)/2 exp(erf_inv(x)^2)
  else {
    // sign is flat almost everywhere; not has no float input.
    static_assert(std::is_same_v<Op, SignOp> || !Op::template supports<float>, "a float unary op needs its derivative here");
    return Array{};
  }
}

}  // namespace eqx::detail

#ifdef EQX_UNARY_INSTANTIATION
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::NegOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::ExpOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::LogOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::Log1pOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::Expm1Op>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::SqrtOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::RsqrtOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::AbsOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::SignOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::SinOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::CosOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::TanhOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::LogisticOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::ErfOp>;
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::NotOp>;
#endif

namespace eqx::prim {
inline const detail::UnaryPrim<detail::NegOp> neg;
inline const detail::UnaryPrim<detail::ExpOp> exp;
inline const detail::UnaryPrim<detail::LogOp> log;
inline const detail::UnaryPrim<detail::Log1pOp> log1p;
inline const detail::UnaryPrim<detail::Expm1Op> expm1;
inline const detail::UnaryPrim<detail::SqrtOp> sqrt;
inline const detail::UnaryPrim<detail::RsqrtOp> rsqrt;
inline const detail::UnaryPrim<detail::AbsOp> abs;
inline const detail::UnaryPrim<detail::SignOp> sign;
inline const detail::UnaryPrim<detail::SinOp> sin;
inline const detail::UnaryPrim<detail::CosOp> cos;
inline const detail::UnaryPrim<detail::TanhOp> tanh;
inline const detail::UnaryPrim<detail::LogisticOp> logistic;
inline const detail::UnaryPrim<detail::ErfOp> erf;
inline const detail::UnaryPrim<detail::NotOp> not_;
}  // namespace eqx::prim
