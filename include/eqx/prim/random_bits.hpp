#pragma once
// Primitives behind eqx::random: threefry2x32 (the counter-based hash every
// key and random bit comes from), bitcast_convert_type (to turn mantissa
// bits into floats) and sort_key_val (for permutations, as JAX shuffles by
// sorting on random keys). The samplers' elementwise operations live with
// their families: shift_left, shift_right_logical and rem in binary.hpp,
// erf_inv in unary.hpp.
//
// As in JAX, these are ordinary primitives on uint32 Arrays: a key is just a
// u32[2] Array, so every random function can later be traced into a graph.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/threads.hpp"
#include "eqx/prim/binary.hpp"
#include "eqx/prim/broadcast.hpp"
#include "eqx/prim/layout.hpp"
#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/prim/unary.hpp"

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
#if EQX_KERNELS_HERE(RANDOM_BITS)
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
#if EQX_KERNELS_HERE(RANDOM_BITS)
EQX_KERNEL_INLINE void BitcastConvertPrim::kernel(std::span<const View> in, std::span<const View> out, const Params&) const {
  static_assert(std::endian::native == std::endian::little, "eqx: bitcast_convert_type assumes a little-endian host");
  copy_bytes(out[0].data, in[0].data, in[0].bytes());
}
#endif

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
#if EQX_KERNELS_HERE(RANDOM_BITS)
EQX_KERNEL_INLINE void SortKeyValPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  const Shape& s = *in[0].shape;
  const auto dim = static_cast<std::size_t>(p.get<std::int64_t>("dimension"));
  std::int64_t inner = 1;
  for (std::size_t i = dim + 1; i < s.size(); ++i) inner *= s[i];
  const std::int64_t len = s[dim], total = in[0].numel();
  if (total == 0) return;
  const std::int64_t outer = total / (len * inner);
  // The order depends on the keys' type only; the values are moved as
  // bytes, so the sort is compiled once per key type, not per value type.
  const char* vals = static_cast<const char*>(in[1].data);
  char* ovals = static_cast<char*>(out[1].data);
  // Moves elements of N bytes (a constant, so each copy is one load and
  // one store): ovals[to] = vals[from].
  auto move_values = [&]<std::size_t N>(std::int64_t to, std::int64_t from) {
    std::memcpy(ovals + to * N, vals + from * N, N);
  };
  const std::size_t vsize = itemsize(in[1].dtype);
  visit_dtype(in[0].dtype, [&](auto ktag) {
    using K = decltype(ktag);
    if constexpr (is_int32_or_uint32_v<K>) {
      const K* keys = in[0].as<const K>();
      K* okeys = out[0].as<K>();
      std::vector<std::int64_t> order(static_cast<std::size_t>(len));
      for (std::int64_t o = 0; o < outer; ++o)
        for (std::int64_t i = 0; i < inner; ++i) {
          const std::int64_t base = o * len * inner + i;
          std::iota(order.begin(), order.end(), std::int64_t{0});
          std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
            return keys[base + a * inner] < keys[base + b * inner];
          });
          for (std::int64_t j = 0; j < len; ++j) {
            const std::int64_t to = base + j * inner, from = base + order[j] * inner;
            okeys[to] = keys[from];
            if (vsize == 4) move_values.template operator()<4>(to, from);
            else if (vsize == 8) move_values.template operator()<8>(to, from);
            else move_values.template operator()<1>(to, from);
          }
        }
    }
  });
}
#endif

}  // namespace eqx::detail


namespace eqx::prim {
inline const detail::Threefry2x32Prim threefry2x32;
inline const detail::BitcastConvertPrim bitcast_convert_type;
inline const detail::SortKeyValPrim sort_key_val;
}  // namespace eqx::prim

namespace eqx::detail {

#if EQX_KERNELS_HERE(RANDOM_BITS)
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
