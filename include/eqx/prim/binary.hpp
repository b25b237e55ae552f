#pragma once
// Binary elementwise primitives with numpy broadcasting: add, sub, mul, div,
// pow, max, min, and, or, xor, the comparisons eq, ne, lt, le, gt, ge, and
// the integer operations behind eqx::random: shift_left,
// shift_right_logical, rem.
//
// Each is a small Op struct (name, accepted dtypes, value on one element and
// partial derivatives) plugged into BinaryPrim, which holds the shape rule,
// the kernel and the JVP/VJP they share. Adding one: write its struct below
// and add it to EQX_BINARY_PRIMITIVES at the end of this file.
//
// Both operands must have the same dtype (the public operators promote them
// first, so kernels stay one loop per dtype); shapes broadcast as in numpy.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "eqx/core/threads.hpp"
#include "eqx/prim/broadcast.hpp"
#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/prim/unary.hpp"

namespace eqx::detail {

/// The error of a binary primitive given operands of two dtypes.
[[noreturn]] inline void throw_unequal_dtypes(std::string_view op, DType a, DType b) {
  throw DTypeError("eqx::" + std::string(op) + ": operands have dtypes " + std::string(dtype_name(a)) + " and " +
                   std::string(dtype_name(b)) +
                   "; the primitive needs equal dtypes (eqx's operators promote for you; convert with eqx::astype)");
}

/// Shape rule and kernel shared by all binary elementwise primitives.
template <class Op>
struct BinaryPrim final : Primitive {
  std::string_view name() const override { return Op::name; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_elementwise(*this, o, x, d, p);
  }
  bool elementwise() const override { return true; }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    return {*output_type(in, p)};
  }
  std::optional<AbstractArray> output_type(std::span<const AbstractArray> in, const Params&) const override {
    if (in[0].dtype != in[1].dtype) throw_unequal_dtypes(Op::name, in[0].dtype, in[1].dtype);
    require_dtype<Op>(in[0].dtype);
    return AbstractArray{broadcast_shapes(in[0].shape, in[1].shape, Op::name), Op::kCompare ? DType::bool_ : in[0].dtype};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override;
  TileKernel tile_kernel(std::span<const AbstractArray> in, const Params&) const override;

  // Each input's partial derivative (broadcast like the op), then chain rule.
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params&) const override {
    if (!is_floating(y[0].dtype())) return {Array{}};
    Array out;
    for (std::size_t i = 0; i < 2; ++i)
      if (t[i].has_value()) out = o.add(out, o.mul(t[i], Op::partial(o, x[0], x[1], y[0], i)));
    return {out.has_value() ? o.broadcast_to(out, y[0].shape()) : out};
  }
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params&) const override {
    if (!ct[0].has_value() || !is_floating(y[0].dtype())) return {Array{}, Array{}};
    std::vector<Array> out(2);
    for (std::size_t i = 0; i < 2; ++i)
      out[i] = o.unbroadcast(o.mul(ct[0], Op::partial(o, x[0], x[1], y[0], i)), x[i].shape());
    return out;
  }

 private:
  template <class T>
  using Out = std::conditional_t<Op::kCompare, bool, T>;

  // Every kernel of the op is one of these three loops: o[i] = op(a[i],
  // b[i]) for i < n, where an operand that does not move is one value
  // broadcast over the tile and kept in a register (x + 1; Adam's b1 in a
  // fused tile, which then streams one array instead of two). They are the
  // fused regions' tile kernels as they are, and the eager kernel calls
  // them too (run_binary): three loops per dtype, and the loops over
  // threads and broadcast segments compiled once for all ops and dtypes,
  // as this family is the most expensive to compile.
  template <class T, bool kLhsMoves, bool kRhsMoves>
  EQX_NOINLINE static void tile(const void* const* in, void* out, std::int64_t n) {
    static_assert(kLhsMoves || kRhsMoves, "two single values are one call with n = 1");
    // __restrict: the output is a buffer of its own or exactly an operand's
    // (a donated buffer), never a partial overlap; o[i] depends only on
    // a[i] and b[i], so the blocks below stay right when o == a.
    const T* __restrict a = static_cast<const T*>(in[0]);
    const T* __restrict b = static_cast<const T*>(in[1]);
    Out<T>* __restrict o = static_cast<Out<T>*>(out);
    const T a0 = kLhsMoves ? T{} : *a, b0 = kRhsMoves ? T{} : *b;  // an operand that does not move: one value
    auto at = [&](std::int64_t i) { return Op::apply(kLhsMoves ? a[i] : a0, kRhsMoves ? b[i] : b0); };
    // Blocks of one cache line of T with a constant trip count, which
    // compilers vectorise at -O2 too (an n-long loop waits for -O3).
    constexpr std::int64_t kBlock = 64 / sizeof(T);
    std::int64_t i = 0;
    for (; i + kBlock <= n; i += kBlock)
      for (std::int64_t j = i; j < i + kBlock; ++j) o[j] = at(j);
    for (; i < n; ++i) o[i] = at(i);
  }
};

/// One binary op's tile loops for one dtype, for run_binary.
struct BinaryTiles {
  TileKernel both_move, lhs_moves, rhs_moves;
  std::size_t in_size, out_size;  // bytes per element
  std::int64_t cost;              // per element, for parallel_for
};

/// A binary op's eager kernel, given its tiles: the operands broadcast into
/// `out` in segments, each one tile call. Usage: `run_binary(in, out[0], tiles);`
EQX_KERNEL_INLINE void run_binary(std::span<const View> in, const View& out, const BinaryTiles& tiles);

#if EQX_KERNELS_HERE(BINARY)
template <class Op>
TileKernel BinaryPrim<Op>::tile_kernel(std::span<const AbstractArray> in, const Params&) const {
  const bool lhs_scalar = in[0].shape.size() == 0 && in[1].shape.size() != 0;
  const bool rhs_scalar = in[1].shape.size() == 0 && in[0].shape.size() != 0;
  return visit_dtype(in[0].dtype, [&](auto tag) -> TileKernel {
    using T = decltype(tag);
    if constexpr (Op::template supports<T>) {
      if (lhs_scalar) return &tile<T, false, true>;
      if (rhs_scalar) return &tile<T, true, false>;
      return &tile<T, true, true>;
    } else {
      return nullptr;
    }
  });
}

template <class Op>
void BinaryPrim<Op>::kernel(std::span<const View> in, std::span<const View> out, const Params&) const {
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (Op::template supports<T>)
      run_binary(in, out[0], {&tile<T, true, true>, &tile<T, true, false>, &tile<T, false, true>, sizeof(T),
                              sizeof(Out<T>), Op::cost});
  });
}

EQX_KERNEL_INLINE void run_binary(std::span<const View> in, const View& out, const BinaryTiles& tiles) {
  const char* a = static_cast<const char*>(in[0].data);
  const char* b = static_cast<const char*>(in[1].data);
  char* o = static_cast<char*>(out.data);
  const std::size_t in_size = tiles.in_size, out_size = tiles.out_size;
  // Where neither operand moves, n is 1: an output axis longer than 1
  // comes from an operand that moves along it.
  auto apply = [&](const char* x, bool x_moves, const char* y, bool y_moves, char* to, std::int64_t n) {
    const void* operands[2] = {x, y};
    if (x_moves && y_moves) tiles.both_move(operands, to, n);
    else if (x_moves) tiles.lhs_moves(operands, to, n);
    else tiles.rhs_moves(operands, to, n);
  };
  const std::int64_t n = out.numel();
  // No broadcast plan when each operand is the output's shape or one
  // value (x + y, x + 1).
  const bool a_full = *in[0].shape == *out.shape, b_full = *in[1].shape == *out.shape;
  if ((a_full || in[0].shape->size() == 0) && (b_full || in[1].shape->size() == 0)) {
    parallel_for(n, tiles.cost, [&](std::int64_t s, std::int64_t e) {
      apply(a_full ? a + s * in_size : a, a_full, b_full ? b + s * in_size : b, b_full, o + s * out_size, e - s);
    });
    return;
  }
  auto plan = plan_broadcast<2>(*out.shape, {in[0].shape, in[1].shape});
  const bool a_moves = plan.strides[0].back() != 0, b_moves = plan.strides[1].back() != 0;
  parallel_for(n, tiles.cost, [&](std::int64_t s, std::int64_t e) {
    for_each_segment(plan, s, e, [&](const std::array<std::int64_t, 2>& off, std::int64_t pos, std::int64_t len) {
      apply(a + off[0] * in_size, a_moves, b + off[1] * in_size, b_moves, o + pos * out_size, len);
    });
  });
}
#endif

template <class T>
inline constexpr bool is_numeric_v = !std::is_same_v<T, bool>;

// An op: its name, accepted dtypes (text and trait), whether it compares
// (bool result), its value on one element of each operand, `x` and `y` of
// type T, and partial derivative d op(a, b)/d(input i) written with the
// rule ops `o`, the inputs `a`, `b`, the output `y` and the constant maker
// `c`; an empty Array where it is zero (comparisons, logic).
#define EQX_BINARY_OP(Struct, op_name, accepts_, supports_, compare_, expr, partial_)                         \
  struct Struct {                                                                                            \
    static constexpr std::string_view name = op_name;                                                        \
    static constexpr const char* accepts = accepts_;                                                         \
    static constexpr bool kCompare = compare_;                                                               \
    static constexpr int cost = 1;                                                                           \
    template <class T> static constexpr bool supports = supports_;                                           \
    template <class T> static auto apply(T x, T y) { return expr; }                                          \
    static Array partial([[maybe_unused]] const RuleOps& o, [[maybe_unused]] const Array& a,                 \
                         [[maybe_unused]] const Array& b, [[maybe_unused]] const Array& y,                   \
                         [[maybe_unused]] std::size_t i) {                                                   \
      [[maybe_unused]] auto c = [&](double v) { return o.scalar(v, y.dtype()); };                            \
      return partial_;                                                                                       \
    }                                                                                                        \
  };

// int32 arithmetic wraps around on overflow, as numpy's and JAX's does
// (computed in uint32: signed overflow is undefined behaviour in C++).
#define EQX_WRAPPING(op)                                                                                    \
  [&] {                                                                                                     \
    if constexpr (std::is_same_v<T, std::int32_t>)                                                          \
      return static_cast<T>(static_cast<std::uint32_t>(x) op static_cast<std::uint32_t>(y));               \
    else return static_cast<T>(x op y);                                                                     \
  }()
EQX_BINARY_OP(AddOp, "add", kNumeric, is_numeric_v<T>, false, EQX_WRAPPING(+), c(1))
EQX_BINARY_OP(SubOp, "sub", kNumeric, is_numeric_v<T>, false, EQX_WRAPPING(-), c(i == 0 ? 1 : -1))
EQX_BINARY_OP(MulOp, "mul", kNumeric, is_numeric_v<T>, false, EQX_WRAPPING(*), i == 0 ? b : a)
#undef EQX_WRAPPING
EQX_BINARY_OP(DivOp, "div", kFloating, is_float_v<T>, false, x / y, i == 0 ? o.div(c(1), b) : o.neg(o.div(y, b)))
EQX_BINARY_OP(EqOp, "eq", kAny, true, true, x == y, Array{})
EQX_BINARY_OP(NeOp, "ne", kAny, true, true, x != y, Array{})
EQX_BINARY_OP(LtOp, "lt", kAny, true, true, x < y, Array{})
EQX_BINARY_OP(LeOp, "le", kAny, true, true, x <= y, Array{})
EQX_BINARY_OP(GtOp, "gt", kAny, true, true, x > y, Array{})
EQX_BINARY_OP(GeOp, "ge", kAny, true, true, x >= y, Array{})
EQX_BINARY_OP(AndOp, "and", kIntegral, !is_float_v<T>, false, static_cast<T>(x & y), Array{})
EQX_BINARY_OP(OrOp, "or", kIntegral, !is_float_v<T>, false, static_cast<T>(x | y), Array{})
EQX_BINARY_OP(XorOp, "xor", kIntegral, !is_float_v<T>, false, static_cast<T>(x ^ y), Array{})

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
  template <class T> static T apply(T x, T y) {
    if constexpr (is_float_v<T>) return std::pow(x, y);
    else return integer_pow(x, y);
  }
  static Array partial(const RuleOps& o, const Array& a, const Array& b, const Array& y, std::size_t i) {
    const DType d = y.dtype();
    auto c = [&](double v) { return o.scalar(v, d); };
    if (i == 0) return o.mul(b, o.bin(o.pow_p, a, o.sub(b, c(1))));
    // d/db a^b = a^b log a, taken as 0 where a == 0 (as JAX).
    Array a_zero = o.bin(o.eq_p, a, c(0));
    Array safe_a = o.select(a_zero, o.instantiate(c(1), a.shape(), d), a);
    return o.select(o.broadcast_to(a_zero, y.shape()), o.instantiate(c(0), y.shape(), d),
                    o.broadcast_to(o.mul(y, o.un(o.log_p, safe_a)), y.shape()));
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
  template <class T> static T apply(T x, T y) {
    if constexpr (is_float_v<T>) {
      if (x != x) return x;  // a NaN operand is the result, as it is
      if (y != y) return y;
    }
    // Ties (0 and -0) give the second operand, as numpy's maximum and
    // minimum do (and x86's maxps/minps, which these compile to).
    if constexpr (kIsMax) return x > y ? x : y;
    else return x < y ? x : y;
  }
  // 1 where this operand is the result, 0.5 each on ties (as JAX).
  static Array partial(const RuleOps& o, const Array& a, const Array& b, const Array& y, std::size_t i) {
    const DType d = y.dtype();
    const Array& self = i == 0 ? a : b;
    const Array& other = i == 0 ? b : a;
    Array wins = kIsMax ? o.bin(o.gt_p, self, other) : o.bin(o.gt_p, other, self);
    Array tie = o.bin(o.eq_p, self, other);
    return o.add(o.convert(wins, d), o.mul(o.scalar(0.5, d), o.convert(tie, d)));
  }
};

// --- integer bit operations ----------------------------------------------------------

template <class T>
inline constexpr bool is_int32_or_uint32_v = std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::uint32_t>;
inline constexpr const char* kInt32Types = "int32 or uint32";

/// x << k, or x >> k filling with zeros, on the 32-bit pattern (also for
/// int32); shifts of 32 or more (or negative) give 0, as in XLA.
template <bool kLeft, class T>
T shift_bits(T x, T shift) {
  const auto u = static_cast<std::uint32_t>(x), k = static_cast<std::uint32_t>(shift);
  return static_cast<T>(k >= 32 ? 0u : (kLeft ? u << k : u >> k));
}
EQX_BINARY_OP(ShiftLeftOp, "shift_left", kInt32Types, is_int32_or_uint32_v<T>, false,
              shift_bits<true>(x, y), Array{})
EQX_BINARY_OP(ShiftRightLogicalOp, "shift_right_logical", kInt32Types, is_int32_or_uint32_v<T>, false,
              shift_bits<false>(x, y), Array{})
#undef EQX_BINARY_OP

/// Remainder with the sign of the dividend (C's % and fmod, XLA's rem).
/// Integer x rem 0 is x and INT_MIN rem -1 is 0 (defined, never a trap), which
/// JAX's randint relies on when its span wraps to 0.
struct RemOp {
  static constexpr std::string_view name = "rem";
  static constexpr const char* accepts = kNumeric;
  static constexpr bool kCompare = false;
  static constexpr int cost = 4;
  template <class T> static constexpr bool supports = is_numeric_v<T>;
  template <class T> static T apply(T x, T y) {
    if constexpr (is_float_v<T>) {
      return std::fmod(x, y);
    } else {
      if (y == 0) return x;
      if constexpr (std::is_signed_v<T>)
        if (y == -1) return 0;
      return static_cast<T>(x % y);
    }
  }
  // rem(a, b) = a - b * trunc(a / b): d/da = 1, d/db = -trunc(a / b) = (y - a) / b.
  static Array partial(const RuleOps& o, const Array& a, const Array& b, const Array& y, std::size_t i) {
    return i == 0 ? o.scalar(1, y.dtype()) : o.div(o.sub(y, a), b);
  }
};

/// The angle of the point (x=b, y=a) in (-pi, pi], as lax.atan2 (arguments
/// y first); atan2(+-0, x) keeps the sign of the zero, as C's atan2.
struct Atan2Op {
  static constexpr std::string_view name = "atan2";
  static constexpr const char* accepts = kFloating;
  static constexpr bool kCompare = false;
  static constexpr int cost = 16;
  template <class T> static constexpr bool supports = is_float_v<T>;
  template <class T> static T apply(T y, T x) { return std::atan2(y, x); }
  // d atan2(a, b)/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2).
  static Array partial(const RuleOps& o, const Array& a, const Array& b, const Array& /*y*/, std::size_t i) {
    const Array radius_squared = o.add(o.mul(a, a), o.mul(b, b));
    return i == 0 ? o.div(b, radius_squared) : o.neg(o.div(a, radius_squared));
  }
};

}  // namespace eqx::detail

/// The binary primitives, as (instance in eqx::prim, op struct): the one
/// list their instances and explicit instantiations are made from, and
/// eqx::detail::registered_primitives() finds them for the coverage tests.
#define EQX_BINARY_PRIMITIVES(X)                                                                                 \
  X(add, AddOp) X(sub, SubOp) X(mul, MulOp) X(div, DivOp) X(pow, PowOp) X(max, ExtremumOp<true>)                 \
  X(min, ExtremumOp<false>) X(and_, AndOp) X(or_, OrOp) X(xor_, XorOp) X(eq, EqOp) X(ne, NeOp) X(lt, LtOp)       \
  X(le, LeOp) X(gt, GtOp) X(ge, GeOp) X(shift_left, ShiftLeftOp) X(shift_right_logical, ShiftRightLogicalOp)     \
  X(rem, RemOp) X(atan2, Atan2Op)

#if defined(EQX_COMPILED_KERNELS)
#define EQX_BINARY_INSTANTIATE(instance, Op) EQX_INSTANTIATION(BINARY) struct eqx::detail::BinaryPrim<eqx::detail::Op>;
EQX_BINARY_PRIMITIVES(EQX_BINARY_INSTANTIATE)
#undef EQX_BINARY_INSTANTIATE
#endif

namespace eqx::prim {
#define EQX_BINARY_INSTANCE(instance, Op) inline const detail::BinaryPrim<detail::Op> instance;
EQX_BINARY_PRIMITIVES(EQX_BINARY_INSTANCE)
#undef EQX_BINARY_INSTANCE
}  // namespace eqx::prim
