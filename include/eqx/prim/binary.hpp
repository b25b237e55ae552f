#pragma once
// Binary elementwise primitives with numpy broadcasting: add, sub, mul, div,
// pow, max, min, and, or, xor, and the comparisons eq, ne, lt, le, gt, ge.
//
// Both operands must have the same dtype (the public operators promote them
// first, so kernels stay one loop per dtype); shapes broadcast as in numpy.

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include <Eigen/Core>

#include "eqx/core/threads.hpp"
#include "eqx/prim/broadcast.hpp"
#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/prim/unary.hpp"

// Kernels are defined here unless the kernels are compiled once into the
// eqx::kernels library (EQX_COMPILED_KERNELS; see eqx/core/config.hpp).
#if !defined(EQX_COMPILED_KERNELS) || defined(EQX_KERNELS_BINARY)
#define EQX_BINARY_KERNELS 1
#else
#define EQX_BINARY_KERNELS 0
#endif
// The class template instances: explicitly instantiated (vtable, rules,
// kernels) in eqx::kernels, and only declared in code that links it.
#if defined(EQX_KERNELS_BINARY)
#define EQX_BINARY_INSTANTIATION template
#elif defined(EQX_COMPILED_KERNELS)
#define EQX_BINARY_INSTANTIATION extern template
#endif

namespace eqx::detail {

struct RemOp;  // eqx/prim/random_bits.hpp

/// d op(a, b) / d(input i), or empty where it is zero (comparisons, logic).
template <class Op>
Array binary_partial(const RuleOps& o, const Array& a, const Array& b, const Array& y, std::size_t i);

/// Shape rule and kernel shared by all binary elementwise primitives.
template <class Op>
struct BinaryPrim final : Primitive {
  std::string_view name() const override { return Op::name; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_elementwise(*this, o, x, d, p);
  }
  bool elementwise() const override { return true; }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params&) const override {
    if (in[0].dtype != in[1].dtype)
      throw DTypeError("eqx::" + std::string(Op::name) + ": operands have dtypes " + std::string(dtype_name(in[0].dtype)) +
                       " and " + std::string(dtype_name(in[1].dtype)) +
                       "; the primitive needs equal dtypes (eqx's operators promote for you; convert with eqx::astype)");
    require_dtype<Op>(in[0].dtype);
    return {{broadcast_shapes(in[0].shape, in[1].shape, Op::name), Op::kCompare ? DType::bool_ : in[0].dtype}};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override;
  TileKernel tile_kernel(std::span<const AbstractArray> in, const Params&) const override;

  // Each input's partial derivative (broadcast like the op), then chain rule.
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params&) const override {
    if (!is_floating(y[0].dtype())) return {Array{}};
    Array out;
    for (std::size_t i = 0; i < 2; ++i)
      if (t[i].has_value()) out = o.add(out, o.mul(t[i], binary_partial<Op>(o, x[0], x[1], y[0], i)));
    return {out.has_value() ? o.broadcast_to(out, y[0].shape()) : out};
  }
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params&) const override {
    if (!ct[0].has_value() || !is_floating(y[0].dtype())) return {Array{}, Array{}};
    std::vector<Array> out(2);
    for (std::size_t i = 0; i < 2; ++i)
      out[i] = o.unbroadcast(o.mul(ct[0], binary_partial<Op>(o, x[0], x[1], y[0], i)), x[i].shape());
    return out;
  }

 private:
  template <class T>
  static void tile(const void* const* in, void* out, std::int64_t n) {
    using O = std::conditional_t<Op::kCompare, bool, T>;
    EMap<O>(static_cast<O*>(out), n) =
        Op::eval(ECMap<T>(static_cast<const T*>(in[0]), n), ECMap<T>(static_cast<const T*>(in[1]), n));
  }
  // A rank-0 operand of a fused region (a hyperparameter such as Adam's b1)
  // is one value broadcast over the tile: read it once and keep it in a
  // register, so the op streams one tile instead of two (the Adam update:
  // 828 -> 658 us). On W5's 16-float tiles this is as fast as the plain
  // kernel now that tiles are 64-byte aligned (fuse.hpp).
  template <class T>
  static void tile_scalar_lhs(const void* const* in, void* out, std::int64_t n) {
    using O = std::conditional_t<Op::kCompare, bool, T>;
    EMap<O>(static_cast<O*>(out), n) =
        Op::eval(EArray<T>::Constant(n, *static_cast<const T*>(in[0])), ECMap<T>(static_cast<const T*>(in[1]), n));
  }
  template <class T>
  static void tile_scalar_rhs(const void* const* in, void* out, std::int64_t n) {
    using O = std::conditional_t<Op::kCompare, bool, T>;
    EMap<O>(static_cast<O*>(out), n) =
        Op::eval(ECMap<T>(static_cast<const T*>(in[0]), n), EArray<T>::Constant(n, *static_cast<const T*>(in[1])));
  }

  template <class T>
  static void run(std::span<const View> in, const View& out) {
    using O = std::conditional_t<Op::kCompare, bool, T>;
    const T* a = in[0].as<const T>();
    const T* b = in[1].as<const T>();
    O* o = out.as<O>();
    const std::int64_t n = out.numel();
    if (*in[0].shape == *in[1].shape) {  // fast path: no broadcasting
      parallel_for(n, Op::cost, [&](std::int64_t s, std::int64_t e) {
        EMap<O>(o + s, e - s) = Op::eval(ECMap<T>(a + s, e - s), ECMap<T>(b + s, e - s));
      });
      return;
    }
    // An array and a rank-0 operand (x + 1): no broadcast plan to build.
    if (in[1].shape->size() == 0 && *in[0].shape == *out.shape) {
      parallel_for(n, Op::cost, [&](std::int64_t s, std::int64_t e) {
        EMap<O>(o + s, e - s) = Op::eval(ECMap<T>(a + s, e - s), EArray<T>::Constant(e - s, *b));
      });
      return;
    }
    if (in[0].shape->size() == 0 && *in[1].shape == *out.shape) {
      parallel_for(n, Op::cost, [&](std::int64_t s, std::int64_t e) {
        EMap<O>(o + s, e - s) = Op::eval(EArray<T>::Constant(e - s, *a), ECMap<T>(b + s, e - s));
      });
      return;
    }
    auto plan = plan_broadcast<2>(*out.shape, {in[0].shape, in[1].shape});
    const bool a_moves = plan.strides[0].back() != 0, b_moves = plan.strides[1].back() != 0;
    parallel_for(n, Op::cost, [&](std::int64_t s, std::int64_t e) {
      for_each_segment(plan, s, e, [&](const std::array<std::int64_t, 2>& off, std::int64_t pos, std::int64_t len) {
        EMap<O> dst(o + pos, len);
        if (a_moves && b_moves) dst = Op::eval(ECMap<T>(a + off[0], len), ECMap<T>(b + off[1], len));
        else if (a_moves) dst = Op::eval(ECMap<T>(a + off[0], len), EArray<T>::Constant(len, b[off[1]]));
        else if (b_moves) dst = Op::eval(EArray<T>::Constant(len, a[off[0]]), ECMap<T>(b + off[1], len));
        else dst = Op::eval(EArray<T>::Constant(len, a[off[0]]), EArray<T>::Constant(len, b[off[1]]));
      });
    });
  }
};
#if EQX_BINARY_KERNELS
template <class Op>
TileKernel BinaryPrim<Op>::tile_kernel(std::span<const AbstractArray> in, const Params&) const {
  const bool lhs_scalar = in[0].shape.size() == 0 && in[1].shape.size() != 0;
  const bool rhs_scalar = in[1].shape.size() == 0 && in[0].shape.size() != 0;
  return visit_dtype(in[0].dtype, [&](auto tag) -> TileKernel {
    using T = decltype(tag);
    if constexpr (Op::template supports<T>) {
      if (lhs_scalar) return &tile_scalar_lhs<T>;
      if (rhs_scalar) return &tile_scalar_rhs<T>;
      return &tile<T>;
    } else {
      return nullptr;
    }
  });
}

template <class Op>
void BinaryPrim<Op>::kernel(std::span<const View> in, std::span<const View> out, const Params&) const {
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (Op::template supports<T>) run<T>(in, out[0]);
  });
}
#endif


template <class T>
inline constexpr bool is_numeric_v = !std::is_same_v<T, bool>;

#define EQX_BINARY_OP(Struct, op_name, accepts_, supports_, compare_, expr)  \
  struct Struct {                                                            \
    static constexpr std::string_view name = op_name;                        \
    static constexpr const char* accepts = accepts_;                         \
    static constexpr bool kCompare = compare_;                               \
    static constexpr int cost = 1;                                           \
    template <class T> static constexpr bool supports = supports_;           \
    template <class A, class B> static auto eval(const A& a, const B& b) {   \
      using T = typename A::Scalar;                                          \
      (void)sizeof(T);                                                       \
      return expr;                                                           \
    }                                                                        \
  };

// int32 arithmetic wraps around on overflow, as numpy's and JAX's does
// (computed in uint32: signed overflow is undefined behaviour in C++).
#define EQX_WRAPPING(op)                                                                                    \
  [&] {                                                                                                     \
    if constexpr (std::is_same_v<T, std::int32_t>)                                                          \
      return (a.template cast<std::uint32_t>() op b.template cast<std::uint32_t>()).template cast<std::int32_t>(); \
    else return a op b;                                                                                     \
  }()
EQX_BINARY_OP(AddOp, "add", kNumeric, is_numeric_v<T>, false, EQX_WRAPPING(+))
EQX_BINARY_OP(SubOp, "sub", kNumeric, is_numeric_v<T>, false, EQX_WRAPPING(-))
EQX_BINARY_OP(MulOp, "mul", kNumeric, is_numeric_v<T>, false, EQX_WRAPPING(*))
#undef EQX_WRAPPING
EQX_BINARY_OP(DivOp, "div", kFloating, is_float_v<T>, false, a / b)
EQX_BINARY_OP(EqOp, "eq", kAny, true, true, a == b)
EQX_BINARY_OP(NeOp, "ne", kAny, true, true, a != b)
EQX_BINARY_OP(LtOp, "lt", kAny, true, true, a < b)
EQX_BINARY_OP(LeOp, "le", kAny, true, true, a <= b)
EQX_BINARY_OP(GtOp, "gt", kAny, true, true, a > b)
EQX_BINARY_OP(GeOp, "ge", kAny, true, true, a >= b)
EQX_BINARY_OP(AndOp, "and", kIntegral, !is_float_v<T>, false,
              a.binaryExpr(b, [](T x, T y) { return static_cast<T>(x & y); }))
EQX_BINARY_OP(OrOp, "or", kIntegral, !is_float_v<T>, false,
              a.binaryExpr(b, [](T x, T y) { return static_cast<T>(x | y); }))
EQX_BINARY_OP(XorOp, "xor", kIntegral, !is_float_v<T>, false,
              a.binaryExpr(b, [](T x, T y) { return static_cast<T>(x ^ y); }))
#undef EQX_BINARY_OP

/// x ** y. Integer powers are exact (by squaring); a negative integer
/// exponent gives 0 unless the base is 1 or -1 (no exception mid-kernel).
template <class T>
T integer_pow(T base, T exp) {
  if constexpr (std::is_signed_v<T>) {
    if (exp < 0) return base == 1 ? T(1) : (base == -1 ? ((exp & 1) ? T(-1) : T(1)) : T(0));
  }
  using U = std::make_unsigned_t<T>;
  U result = 1, b = static_cast<U>(base);
  for (U e = static_cast<U>(exp); e; e >>= 1) {
    if (e & 1) result *= b;
    b *= b;
  }
  return static_cast<T>(result);
}

struct PowOp {
  static constexpr std::string_view name = "pow";
  static constexpr const char* accepts = kNumeric;
  static constexpr bool kCompare = false;
  static constexpr int cost = 16;
  template <class T> static constexpr bool supports = is_numeric_v<T>;
  template <class A, class B> static auto eval(const A& a, const B& b) {
    using T = typename A::Scalar;
    if constexpr (is_float_v<T>) return a.binaryExpr(b, [](T x, T y) { return std::pow(x, y); });
    else return a.binaryExpr(b, [](T x, T y) { return integer_pow(x, y); });
  }
};

/// Elementwise max/min; a NaN in either operand gives NaN (as numpy.maximum).
template <bool kIsMax>
struct ExtremumOp {
  static constexpr std::string_view name = kIsMax ? "max" : "min";
  static constexpr const char* accepts = kAny;
  static constexpr bool kCompare = false;
  static constexpr int cost = 1;
  template <class T> static constexpr bool supports = true;
  template <class A, class B> static auto eval(const A& a, const B& b) {
    using T = typename A::Scalar;
    if constexpr (is_float_v<T>) {
      if constexpr (kIsMax) return a.binaryExpr(b, Eigen::internal::scalar_max_op<T, T, Eigen::PropagateNaN>());
      else return a.binaryExpr(b, Eigen::internal::scalar_min_op<T, T, Eigen::PropagateNaN>());
    } else {
      return a.binaryExpr(b, [](T x, T y) { return kIsMax ? (x > y ? x : y) : (x < y ? x : y); });
    }
  }
};

}  // namespace eqx::detail

namespace eqx::detail {

template <class Op>
Array binary_partial(const RuleOps& o, const Array& a, const Array& b, const Array& y, std::size_t i) {
  const DType d = y.dtype();
  auto c = [&](double v) { return o.scalar(v, d); };
  if constexpr (std::is_same_v<Op, AddOp>) return c(1);
  else if constexpr (std::is_same_v<Op, SubOp>) return c(i == 0 ? 1 : -1);
  else if constexpr (std::is_same_v<Op, MulOp>) return i == 0 ? b : a;
  else if constexpr (std::is_same_v<Op, DivOp>) return i == 0 ? o.div(c(1), b) : o.neg(o.div(y, b));
  else if constexpr (std::is_same_v<Op, PowOp>) {
    if (i == 0) return o.mul(b, o.bin(o.pow_p, a, o.sub(b, c(1))));
    // d/db a^b = a^b log a, taken as 0 where a == 0 (as JAX).
    Array a_zero = o.bin(o.eq_p, a, c(0));
    Array safe_a = o.select(a_zero, o.instantiate(c(1), a.shape(), d), a);
    return o.select(o.broadcast_to(a_zero, y.shape()), o.instantiate(c(0), y.shape(), d),
                    o.broadcast_to(o.mul(y, o.un(o.log_p, safe_a)), y.shape()));
  } else if constexpr (std::is_same_v<Op, ExtremumOp<true>> || std::is_same_v<Op, ExtremumOp<false>>) {
    // 1 where this operand is the result, 0.5 each on ties (as JAX).
    const Array& self = i == 0 ? a : b;
    const Array& other = i == 0 ? b : a;
    Array wins = std::is_same_v<Op, ExtremumOp<true>> ? o.bin(o.gt_p, self, other) : o.bin(o.gt_p, other, self);
    Array tie = o.bin(o.eq_p, self, other);
    return o.add(o.convert(wins, d), o.mul(c(0.5), o.convert(tie, d)));
  } else if constexpr (std::is_same_v<Op, RemOp>) {
    // rem(a, b) = a - b * trunc(a / b): d/da = 1, d/db = -trunc(a / b) = (y - a) / b.
    return i == 0 ? c(1) : o.div(o.sub(y, a), b);
  } else {
    // Comparisons and integer-only ops have no float output, so no tangent.
    static_assert(Op::kCompare || !Op::template supports<float>, "a float binary op needs its partial derivatives here");
    return Array{};
  }
}

}  // namespace eqx::detail

#ifdef EQX_BINARY_INSTANTIATION
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::AddOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::SubOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::MulOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::DivOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::PowOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::ExtremumOp<true>>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::ExtremumOp<false>>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::AndOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::OrOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::XorOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::EqOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::NeOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::LtOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::LeOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::GtOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::GeOp>;
#endif

namespace eqx::prim {
inline const detail::BinaryPrim<detail::AddOp> add;
inline const detail::BinaryPrim<detail::SubOp> sub;
inline const detail::BinaryPrim<detail::MulOp> mul;
inline const detail::BinaryPrim<detail::DivOp> div;
inline const detail::BinaryPrim<detail::PowOp> pow;
inline const detail::BinaryPrim<detail::ExtremumOp<true>> max;
inline const detail::BinaryPrim<detail::ExtremumOp<false>> min;
inline const detail::BinaryPrim<detail::AndOp> and_;
inline const detail::BinaryPrim<detail::OrOp> or_;
inline const detail::BinaryPrim<detail::XorOp> xor_;
inline const detail::BinaryPrim<detail::EqOp> eq;
inline const detail::BinaryPrim<detail::NeOp> ne;
inline const detail::BinaryPrim<detail::LtOp> lt;
inline const detail::BinaryPrim<detail::LeOp> le;
inline const detail::BinaryPrim<detail::GtOp> gt;
inline const detail::BinaryPrim<detail::GeOp> ge;
}  // namespace eqx::prim
