#pragma once
// Primitives behind eqx::random: threefry2x32 (the counter-based hash every
// key and random bit comes from), the integer bit operations the samplers
// need (shift_left, shift_right_logical, rem), bitcast_convert_type (to turn
// mantissa bits into floats), erf_inv (for normal samples) and sort_key_val
// (for permutations, as JAX shuffles by sorting on random keys).
//
// As in JAX, these are ordinary primitives on uint32 Arrays: a key is just a
// u32[2] Array, so every random function can later be traced into a graph.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "eqx/core/threads.hpp"
#include "eqx/prim/binary.hpp"
#include "eqx/prim/broadcast.hpp"
#include "eqx/prim/layout.hpp"
#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/prim/unary.hpp"

// Kernels are defined here unless the kernels are compiled once into the
// eqx::kernels library (EQX_COMPILED_KERNELS; see eqx/core/config.hpp).
#if !defined(EQX_COMPILED_KERNELS) || defined(EQX_KERNELS_RANDOM_BITS)
#define EQX_RANDOM_BITS_KERNELS 1
#else
#define EQX_RANDOM_BITS_KERNELS 0
#endif

namespace eqx::detail {

// --- threefry2x32 ----------------------------------------------------------------

/// The Threefry-2x32 block function with 20 rounds (Salmon et al., "Parallel
/// random numbers: as easy as 1, 2, 3", SC'11), exactly as Random123's
/// threefry2x32 and JAX's threefry2x32_p: key (k0, k1), counter (x0, x1).
inline void threefry2x32_block(std::uint32_t k0, std::uint32_t k1, std::uint32_t& x0, std::uint32_t& x1) {
  constexpr int kRot[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
  const std::uint32_t ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
  x0 += ks[0];
  x1 += ks[1];
  for (int i = 0; i < 5; ++i) {
    for (int r : kRot[i % 2]) {
      x0 += x1;
      x1 = std::rotl(x1, r);
      x1 ^= x0;
    }
    x0 += ks[(i + 1) % 3];
    x1 += ks[(i + 2) % 3] + static_cast<std::uint32_t>(i + 1);
  }
}

/// threefry2x32(k1, k2, x1, x2) -> (y1, y2): all uint32; x1 and x2 have equal
/// shapes, k1 and k2 are either scalars (one element) or of that shape too.
struct Threefry2x32Prim final : Primitive {
  std::string_view name() const override { return "threefry2x32"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    // Every input becomes [batch, counter shape...]: a key word that is one
    // scalar per example is spread over that example's counters.
    const std::int64_t n = batch_size(x, d);
    Shape example = x[2].shape();
    if (d[2] != not_mapped) example.erase(static_cast<std::size_t>(d[2]));
    Shape full = example;
    full.insert(0, n);
    std::vector<Array> in;
    for (std::size_t i = 0; i < 4; ++i) {
      Array v = o.batch_first(x[i], d[i], n);
      if (v.shape() != full) {
        Shape per_example_scalar = Shape::filled(full.size(), 1);
        per_example_scalar[0] = n;
        v = o.broadcast_to(o.reshape(v, per_example_scalar), full);
      }
      in.push_back(std::move(v));
    }
    std::vector<Array> out = eqx::bind(*this, in, p);
    return {std::move(out), {0, 0}};
  }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params&) const override {
    static constexpr const char* kNames[4] = {"k1", "k2", "x1", "x2"};
    if (in.size() != 4)
      throw ValueError("eqx::threefry2x32: takes 4 inputs (k1, k2, x1, x2), got " + std::to_string(in.size()));
    for (std::size_t i = 0; i < 4; ++i)
      if (in[i].dtype != DType::uint32)
        throw DTypeError("eqx::threefry2x32: input " + std::string(kNames[i]) + " has dtype " +
                         std::string(dtype_name(in[i].dtype)) + "; all four inputs must be uint32 (eqx::astype(x, eqx::uint32))");
    if (in[2].shape != in[3].shape)
      throw ShapeError("eqx::threefry2x32: counters x1 " + in[2].str() + " and x2 " + in[3].str() +
                       " must have the same shape");
    for (std::size_t i = 0; i < 2; ++i)
      if (!(in[i].shape.numel() == 1 && in[i].shape.size() <= in[2].shape.size()) && in[i].shape != in[2].shape)
        throw ShapeError("eqx::threefry2x32: key word " + std::string(kNames[i]) + " " + in[i].str() +
                         " must be a scalar or have the counters' shape " + in[2].shape.str());
    return {{in[2].shape, DType::uint32}, {in[2].shape, DType::uint32}};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override;
};
#if EQX_RANDOM_BITS_KERNELS
EQX_KERNEL_INLINE void Threefry2x32Prim::kernel(std::span<const View> in, std::span<const View> out, const Params&) const {
  const std::uint32_t* k1 = in[0].as<const std::uint32_t>();
  const std::uint32_t* k2 = in[1].as<const std::uint32_t>();
  const std::uint32_t* x1 = in[2].as<const std::uint32_t>();
  const std::uint32_t* x2 = in[3].as<const std::uint32_t>();
  std::uint32_t* y1 = out[0].as<std::uint32_t>();
  std::uint32_t* y2 = out[1].as<std::uint32_t>();
  const std::int64_t n = out[0].numel();
  const bool k1_scalar = in[0].numel() == 1 && n != 1, k2_scalar = in[1].numel() == 1 && n != 1;
  parallel_for(n, 64, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      std::uint32_t a = x1[i], c = x2[i];
      threefry2x32_block(k1_scalar ? k1[0] : k1[i], k2_scalar ? k2[0] : k2[i], a, c);
      y1[i] = a;
      y2[i] = c;
    }
  });
}
#endif


// --- integer bit operations ----------------------------------------------------------

template <class T>
inline constexpr bool is_int32_or_uint32_v = std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::uint32_t>;
inline constexpr const char* kInt32Types = "int32 or uint32";

/// x << y on the 32-bit pattern; shifts of 32 or more (or negative) give 0, as in XLA.
struct ShiftLeftOp {
  static constexpr std::string_view name = "shift_left";
  static constexpr const char* accepts = kInt32Types;
  static constexpr bool kCompare = false;
  static constexpr int cost = 1;
  template <class T> static constexpr bool supports = is_int32_or_uint32_v<T>;
  template <class A, class B> static auto eval(const A& a, const B& b) {
    using T = typename A::Scalar;
    return a.binaryExpr(b, [](T x, T s) {
      auto u = static_cast<std::uint32_t>(x), k = static_cast<std::uint32_t>(s);
      return static_cast<T>(k >= 32 ? 0u : u << k);
    });
  }
};

/// x >> y filling with zeros (on the 32-bit pattern, also for int32); shifts
/// of 32 or more (or negative) give 0, as in XLA.
struct ShiftRightLogicalOp {
  static constexpr std::string_view name = "shift_right_logical";
  static constexpr const char* accepts = kInt32Types;
  static constexpr bool kCompare = false;
  static constexpr int cost = 1;
  template <class T> static constexpr bool supports = is_int32_or_uint32_v<T>;
  template <class A, class B> static auto eval(const A& a, const B& b) {
    using T = typename A::Scalar;
    return a.binaryExpr(b, [](T x, T s) {
      auto u = static_cast<std::uint32_t>(x), k = static_cast<std::uint32_t>(s);
      return static_cast<T>(k >= 32 ? 0u : u >> k);
    });
  }
};

/// Remainder with the sign of the dividend (C's % and fmod, XLA's rem).
/// Integer x rem 0 is x and INT_MIN rem -1 is 0 (defined, never a trap), which
/// JAX's randint relies on when its span wraps to 0.
struct RemOp {
  static constexpr std::string_view name = "rem";
  static constexpr const char* accepts = kNumeric;
  static constexpr bool kCompare = false;
  static constexpr int cost = 4;
  template <class T> static constexpr bool supports = is_numeric_v<T>;
  template <class A, class B> static auto eval(const A& a, const B& b) {
    using T = typename A::Scalar;
    return a.binaryExpr(b, [](T x, T y) -> T {
      if constexpr (is_float_v<T>) {
        return std::fmod(x, y);
      } else {
        if (y == 0) return x;
        if constexpr (std::is_signed_v<T>)
          if (y == -1) return 0;
        return static_cast<T>(x % y);
      }
    });
  }
};

// --- bitcast_convert_type ---------------------------------------------------------------

/// bitcast_convert_type[new_dtype]: reinterprets the bytes (XLA semantics).
/// Same width: same shape. Narrow -> wide (uint32 -> float64): the last axis
/// must have size 2 and is consumed (element [..., 0] is the low word on a
/// little-endian host). Wide -> narrow: a last axis of size 2 is added.
struct BitcastConvertPrim final : Primitive {
  std::string_view name() const override { return "bitcast_convert_type"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_leading(*this, o, x, d, p);  // the bitcast acts on the last axis
  }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const DType to = p.get<DType>("new_dtype");
    const std::size_t from_size = itemsize(in[0].dtype), to_size = itemsize(to);
    if (in[0].dtype == DType::bool_ || to == DType::bool_)
      throw DTypeError("eqx::bitcast_convert_type: cannot bitcast " + in[0].str() + " to " +
                       std::string(dtype_name(to)) + "; bool has no defined bit pattern here");
    Shape s = in[0].shape;
    if (to_size > from_size) {
      const auto ratio = static_cast<std::int64_t>(to_size / from_size);
      if (s.empty() || s[s.size() - 1] != ratio)
        throw ShapeError("eqx::bitcast_convert_type: bitcasting " + in[0].str() + " to " +
                         std::string(dtype_name(to)) + " needs a last axis of size " + std::to_string(ratio) +
                         " holding the narrow words of each wide element");
      s = Shape(s.begin(), s.end() - 1);
    } else if (to_size < from_size) {
      s.push_back(static_cast<std::int64_t>(from_size / to_size));
    }
    return {{s, to}};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override;
};
#if EQX_RANDOM_BITS_KERNELS
EQX_KERNEL_INLINE void BitcastConvertPrim::kernel(std::span<const View> in, std::span<const View> out, const Params&) const {
  static_assert(std::endian::native == std::endian::little, "eqx: bitcast_convert_type assumes a little-endian host");
  copy_bytes(out[0].data, in[0].data, in[0].bytes());
}
#endif


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
};

// --- sort_key_val ------------------------------------------------------------------------

/// sort_key_val[dimension](keys, values) -> (sorted keys, values in the same
/// order): a stable ascending sort of integer keys along `dimension`, as
/// lax.sort_key_val(is_stable=True). JAX's permutation is built on it.
struct SortKeyValPrim final : Primitive {
  std::string_view name() const override { return "sort_key_val"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_leading(*this, o, x, d, Params(p).set("dimension", p.get<std::int64_t>("dimension") + 1));
  }
  // The values are permuted, a linear map: tangents follow the same
  // permutation; cotangents go back through its inverse (below).
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    if (in.size() != 2)
      throw ValueError("eqx::sort_key_val: takes 2 inputs (keys, values), got " + std::to_string(in.size()));
    if (!is_integer(in[0].dtype))
      throw DTypeError("eqx::sort_key_val: keys have dtype " + std::string(dtype_name(in[0].dtype)) +
                       "; they must be int32 or uint32");
    if (in[0].shape != in[1].shape)
      throw ShapeError("eqx::sort_key_val: keys " + in[0].str() + " and values " + in[1].str() +
                       " must have the same shape");
    auto dim = p.get<std::int64_t>("dimension");
    if (dim < 0 || dim >= static_cast<std::int64_t>(in[0].shape.size()))
      throw IndexError("eqx::sort_key_val: dimension " + std::to_string(dim) + " is out of range for keys " +
                       in[0].str());
    return {in[0], in[1]};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
};
#if EQX_RANDOM_BITS_KERNELS
EQX_KERNEL_INLINE void SortKeyValPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  const Shape& s = *in[0].shape;
  const auto dim = static_cast<std::size_t>(p.get<std::int64_t>("dimension"));
  std::int64_t inner = 1;
  for (std::size_t i = dim + 1; i < s.size(); ++i) inner *= s[i];
  const std::int64_t len = s[dim], total = in[0].numel();
  if (total == 0) return;
  const std::int64_t outer = total / (len * inner);
  visit_dtype(in[0].dtype, [&](auto ktag) {
    using K = decltype(ktag);
    if constexpr (is_int32_or_uint32_v<K>) {
      visit_dtype(in[1].dtype, [&](auto vtag) {
        using V = decltype(vtag);
        const K* keys = in[0].as<const K>();
        const V* vals = in[1].as<const V>();
        K* okeys = out[0].as<K>();
        V* ovals = out[1].as<V>();
        std::vector<std::int64_t> order(static_cast<std::size_t>(len));
        for (std::int64_t o = 0; o < outer; ++o)
          for (std::int64_t i = 0; i < inner; ++i) {
            const std::int64_t base = o * len * inner + i;
            std::iota(order.begin(), order.end(), std::int64_t{0});
            std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
              return keys[base + a * inner] < keys[base + b * inner];
            });
            for (std::int64_t j = 0; j < len; ++j) {
              okeys[base + j * inner] = keys[base + order[j] * inner];
              ovals[base + j * inner] = vals[base + order[j] * inner];
            }
          }
      });
    }
  });
}
#endif


}  // namespace eqx::detail

// These use the binary and unary templates: compiled with those families.
#ifdef EQX_BINARY_INSTANTIATION
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::ShiftLeftOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::ShiftRightLogicalOp>;
EQX_BINARY_INSTANTIATION struct eqx::detail::BinaryPrim<eqx::detail::RemOp>;
#endif
#ifdef EQX_UNARY_INSTANTIATION
EQX_UNARY_INSTANTIATION struct eqx::detail::UnaryPrim<eqx::detail::ErfInvOp>;
#endif

namespace eqx::prim {
inline const detail::Threefry2x32Prim threefry2x32;
inline const detail::BinaryPrim<detail::ShiftLeftOp> shift_left;
inline const detail::BinaryPrim<detail::ShiftRightLogicalOp> shift_right_logical;
inline const detail::BinaryPrim<detail::RemOp> rem;
inline const detail::BitcastConvertPrim bitcast_convert_type;
inline const detail::UnaryPrim<detail::ErfInvOp> erf_inv;
inline const detail::SortKeyValPrim sort_key_val;
}  // namespace eqx::prim

namespace eqx::detail {

#if EQX_RANDOM_BITS_KERNELS
EQX_KERNEL_INLINE std::vector<Array> SortKeyValPrim::jvp(const RuleOps&, std::span<const Array> x, std::span<const Array> t,
                                                         std::span<const Array>, const Params& p) const {
  if (!t[1].has_value()) return {Array{}, Array{}};
  return {Array{}, eqx::bind(*this, std::vector<Array>{x[0], t[1]}, p)[1]};
}
// Sorting iota by the keys gives the permutation (out[j] = values[perm[j]]);
// sorting the cotangent by perm puts ct[j] back at position perm[j].
EQX_KERNEL_INLINE std::vector<Array> SortKeyValPrim::vjp(const RuleOps&, std::span<const Array> x, std::span<const Array>,
                                                         std::span<const Array> ct, const Params& p) const {
  if (!ct[1].has_value()) return {Array{}, Array{}};
  const Shape& s = x[0].shape();
  Array positions = bind1(prim::iota, {},
                          Params{}
                              .set("dtype", DType::int32)
                              .set("shape", Ints(s.begin(), s.end()))
                              .set("dimension", p.get<std::int64_t>("dimension")));
  Array perm = eqx::bind(*this, std::vector<Array>{x[0], positions}, p)[1];
  return {Array{}, eqx::bind(*this, std::vector<Array>{perm, ct[1]}, p)[1]};
}
#endif
}  // namespace eqx::detail
