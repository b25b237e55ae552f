#pragma once
// eqx::random: JAX-compatible counter-based random numbers (threefry2x32).
//
// A key is a plain uint32 Array of shape [2] (`eqx::random::Key` is an alias
// of eqx::Array). Random functions are pure: the same key always gives the
// same values, and new independent keys come from `split` or `fold_in`:
//
//   auto key = eqx::random::key(0);
//   auto keys = eqx::random::split_keys(key, 2);   // {k1, k2}
//   eqx::Array w = eqx::random::normal(keys[0], {3, 4});
//
// Bit-for-bit compatibility: keys, split, fold_in, bits and the samplers
// follow JAX's *original* (non-partitionable, `jax_threefry_partitionable=
// False`) threefry implementation in jax/_src/prng.py and jax/_src/random.py,
// so a seed gives the same keys, bits, uniform, randint and bernoulli values
// as JAX, and normal/truncated_normal values equal to JAX's up to the last-ulp
// differences of log1p/erf between libm and XLA. (JAX >= 0.5 defaults to the
// partitionable variant, which gives different bits; set
// jax.config.update("jax_threefry_partitionable", False) to compare.)
//
// Everything is computed by primitives (threefry2x32, shifts, bitcast,
// erf_inv, sort_key_val, ...), never on the host, so these functions trace
// into graphs like any other op. The Random123 block function itself is
// available as eqx::random::threefry2x32 for known-answer tests.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/config.hpp"
#include "eqx/core/dtype.hpp"
#include "eqx/core/error.hpp"
#include "eqx/core/shape.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/indexing.hpp"
#include "eqx/ops/operand.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/prim/layout.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/prim/random_bits.hpp"

namespace eqx::random {

/// A PRNG key: a uint32 Array of shape [2] (JAX's raw threefry2x32 key data).
using Key = Array;

namespace detail {

using eqx::detail::Ints;

inline std::string prefix(std::string_view fn) { return "eqx::random::" + std::string(fn) + ": "; }

inline std::string describe(const Array& a) {
  return a.has_value() ? std::string(short_name(a.dtype())) + a.shape().str() : std::string("an empty Array (None)");
}

/// Throws unless `key` is a u32[2] Array.
const Array& check_key(const Array& key, std::string_view fn, std::string_view what = "key");

void check_shape(const Shape& shape, std::string_view fn);

void check_float_dtype(DType dtype, std::string_view fn);

/// Elements [start, stop) of a rank-1 Array.
Array slice1(const Array& x, std::int64_t start, std::int64_t stop);

inline Array u32(std::uint32_t v) { return eqx::array(v); }
inline Array shr(const Array& x, std::uint32_t k) { return bind1(prim::shift_right_logical, {x, u32(k)}); }
inline Array shl(const Array& x, std::uint32_t k) { return bind1(prim::shift_left, {x, u32(k)}); }
inline Array bor(const Array& a, const Array& b) { return bind1(prim::or_, {a, b}); }
inline Array urem(const Array& a, const Array& b) { return bind1(prim::rem, {a, b}); }

/// Word i (0 or 1) of a u32[2] Array, as a scalar.
inline Array word(const Array& pair, std::int64_t i) { return eqx::reshape(slice1(pair, i, i + 1), Shape{}); }

inline Array iota_u32(std::int64_t n) { return eqx::detail::iota(uint32, Shape{n}, 0); }

/// JAX's prng.threefry_2x32(keypair, count): hashes a uint32 count array of
/// any shape. The flattened counts (padded with one 0 if odd) are cut in two
/// halves that form the (x0, x1) pairs; the two outputs are concatenated.
Array threefry_2x32(const Array& key, const Array& count);

/// Random 32-bit words needed for `count` outputs must fit one iota of uint32.
void check_count(std::int64_t words, const Shape& shape, std::string_view fn);

/// JAX's _threefry_random_bits_original with bit_width 32.
Array bits32(const Array& key, const Shape& shape, std::string_view fn);

/// JAX's _threefry_random_bits_original with bit_width 64, as its (high, low)
/// 32-bit halves: 2n words, the first n are the high halves.
std::pair<Array, Array> bits64(const Array& key, const Shape& shape, std::string_view fn);

/// JAX's _threefry_split_original: num keys from the counts 0..2*num-1.
inline Array split_impl(const Array& key, std::int64_t num) {
  return eqx::reshape(threefry_2x32(key, iota_u32(2 * num)), Shape{num, 2});
}

Array row(const Array& keys, std::int64_t i);

/// Floats uniform in [1, 2) from random mantissa bits, minus 1: [0, 1).
Array unit_floats(const Array& key, const Shape& shape, DType dtype, std::string_view fn);

/// JAX's _uniform with minval/maxval already Arrays of `dtype` (broadcastable).
Array uniform_impl(const Array& key, const Shape& shape, DType dtype, const Array& minval, const Array& maxval,
                   std::string_view fn);

inline Array scalar(double v, DType dtype) { return eqx::full(Shape{}, v, dtype); }

/// The float of `dtype` next to v towards `direction`, as a double.
double next_toward(double v, double direction, DType dtype);

/// JAX's _shuffle: rounds of stable sorts of x (along axis 0) by fresh random
/// 32-bit keys.
Array shuffle(Array key, Array x);

}  // namespace detail

/// A key from an integer seed: [seed >> 32, seed & 0xFFFFFFFF] (the 64-bit
/// seed bit-cast to two uint32 words, high word first), as JAX's
/// threefry_seed. For seeds in [0, 2^32) this is what JAX gives in its
/// default 32-bit mode; for negative or larger seeds it is what JAX gives
/// with jax_enable_x64 (default-mode JAX keeps only the low 32 bits).
/// Usage: `auto key = eqx::random::key(42);  // u32[2] {0, 42}`
template <std::integral T>
  requires(!std::is_same_v<T, bool>)
Key key(T seed) {
  std::uint64_t s;
  if constexpr (std::is_signed_v<T>) s = static_cast<std::uint64_t>(static_cast<std::int64_t>(seed));
  else s = static_cast<std::uint64_t>(seed);
  return eqx::array({static_cast<std::uint32_t>(s >> 32), static_cast<std::uint32_t>(s & 0xFFFFFFFFu)});
}
/// Seeds must be integers (as in JAX).
template <class T>
  requires std::floating_point<T> || std::is_same_v<T, bool>
Key key(T seed) = delete;

/// The Threefry-2x32 block function (20 rounds) on one counter pair:
/// (x0, x1) -> (y0, y1) under key (k0, k1). Matches Random123's
/// threefry2x32 and JAX's threefry_2x32(key, counter) on a 2-element counter.
/// Usage: `eqx::random::threefry2x32(eqx::array({0u, 0u}), eqx::array({0u, 0u}))`
Array threefry2x32(const Array& key_pair, const Array& counter_pair);

/// `num` new keys from `key`, as a u32[num, 2] Array (JAX's split with the
/// original threefry). Use split_keys for a std::vector of keys.
/// Usage: `eqx::Array keys = eqx::random::split(key, 3);`
Array split(const Key& key, std::int64_t num = 2);

/// split(key, num) as `num` separate keys.
/// Usage: `auto ks = eqx::random::split_keys(key, 2); auto w = normal(ks[0], {3});`
std::vector<Key> split_keys(const Key& key, std::int64_t num = 2);

/// A new key from `key` and a 32-bit integer (JAX's fold_in): the hash of
/// the counter pair (0, data).
/// Usage: `auto step_key = eqx::random::fold_in(key, step);`
Key fold_in(const Key& key, std::uint32_t data);

/// Uniform random uint32 words of `shape` (JAX's random.bits with uint32).
/// Usage: `eqx::random::bits(key, {4})`
Array bits(const Key& key, const Shape& shape);

/// Uniform floats in [minval, maxval) (JAX's random.uniform): random mantissa
/// bits give a float in [1, 2), minus 1, scaled, and clamped below by minval.
/// Usage: `eqx::random::uniform(key, {3, 4})`, `uniform(key, {8}, eqx::float64, -1, 1)`
Array uniform(const Key& key, const Shape& shape = {}, DType dtype = float32, double minval = 0.0,
              double maxval = 1.0);

/// Standard normal samples (JAX's random.normal): sqrt(2) * erf_inv(u) with
/// u uniform in (-1, 1).
/// Usage: `eqx::random::normal(key, {3, 4})`
Array normal(const Key& key, const Shape& shape = {}, DType dtype = float32);

/// Booleans that are true with probability p (JAX's random.bernoulli with a
/// float32 p): uniform(key, shape) < p.
/// Usage: `eqx::random::bernoulli(key, 0.9, {128})`
Array bernoulli(const Key& key, double p = 0.5, const Shape& shape = {});

/// bernoulli with an Array of probabilities (float32 or float64), broadcast
/// against `shape` (which must be the broadcast result).
/// Usage: `eqx::random::bernoulli(key, probs, {16, 4})`
Array bernoulli(const Key& key, const Array& p, const Shape& shape);
/// bernoulli with the shape of p.
Array bernoulli(const Key& key, const Array& p);

/// Uniform integers in [minval, maxval) (JAX's random.randint, including its
/// algorithm: two 32-bit draws from split keys combined modulo the span, and
/// its clipping of out-of-range bounds). maxval <= minval gives minval.
/// Usage: `eqx::random::randint(key, {10}, 0, 6)`
Array randint(const Key& key, const Shape& shape, std::int64_t minval, std::int64_t maxval,
              DType dtype = int32);

/// A random permutation of 0..n-1 as int32 (JAX's permutation: rounds of
/// stable sorts by random 32-bit keys, 1 round for n <= 1625; values match
/// JAX's original threefry).
/// Usage: `eqx::Array order = eqx::random::permutation(key, 10);`
Array permutation(const Key& key, std::int64_t n);

/// x with its rows (axis 0) randomly permuted; the same permutation as
/// permutation(key, x.shape()[0]).
/// Usage: `eqx::Array shuffled = eqx::random::permutation(key, data);`
Array permutation(const Key& key, const Array& x);

/// Standard normal samples truncated to (lower, upper) (JAX's
/// random.truncated_normal): u uniform between erf(lower/sqrt2) and
/// erf(upper/sqrt2), then sqrt2 * erf_inv(u), clamped into the open interval.
/// Usage: `eqx::random::truncated_normal(key, -2, 2, {256, 128})`
Array truncated_normal(const Key& key, double lower, double upper, const Shape& shape = {},
                       DType dtype = float32);

}  // namespace eqx::random

#if EQX_KERNELS_HERE(OPS)
namespace eqx::random {
namespace detail {
EQX_KERNEL_INLINE const Array& check_key(const Array& key, std::string_view fn, std::string_view what) {
  if (key.has_value() && key.dtype() == uint32 && key.shape() == Shape{2}) return key;
  std::string msg = prefix(fn) + std::string(what) + " must be a uint32 Array of shape [2] (u32[2]), got " + describe(key);
  if (key.has_value() && key.dtype() == uint32 && key.ndim() == 2 && key.shape()[1] == 2)
    msg += " (a batch of keys, as returned by eqx::random::split; take one with eqx::random::split_keys(key, n)[i])";
  msg += "; create keys with eqx::random::key(seed) and derive new ones with eqx::random::split or eqx::random::fold_in";
  throw ValueError(msg);
}

EQX_KERNEL_INLINE void check_shape(const Shape& shape, std::string_view fn) {
  for (auto d : shape)
    if (d < 0)
      throw ShapeError(prefix(fn) + "shape " + shape.str() + " has a negative dimension; sizes must be >= 0");
}

EQX_KERNEL_INLINE void check_float_dtype(DType dtype, std::string_view fn) {
  if (!is_floating(dtype))
    throw DTypeError(prefix(fn) + "dtype must be float32 or float64, got " + std::string(dtype_name(dtype)));
}

EQX_KERNEL_INLINE Array slice1(const Array& x, std::int64_t start, std::int64_t stop) {
  return bind1(prim::slice, {x},
               Params{}.set("start_indices", Ints{start}).set("limit_indices", Ints{stop}).set("strides", Ints{1}));
}

EQX_KERNEL_INLINE Array threefry_2x32(const Array& key, const Array& count) {
  const Shape& shape = count.shape();
  const std::int64_t n = shape.numel();
  Array flat = eqx::reshape(count, Shape{n});
  const bool odd = n % 2 != 0;
  if (odd) flat = eqx::concatenate({flat, eqx::zeros(Shape{1}, uint32)});
  const std::int64_t half = (n + (odd ? 1 : 0)) / 2;
  std::vector<Array> in = {word(key, 0), word(key, 1), slice1(flat, 0, half), slice1(flat, half, 2 * half)};
  std::vector<Array> y = eqx::bind(prim::threefry2x32, in);
  Array out = eqx::concatenate({y[0], y[1]});
  if (odd) out = slice1(out, 0, n);
  return eqx::reshape(out, shape);
}

EQX_KERNEL_INLINE void check_count(std::int64_t words, const Shape& shape, std::string_view fn) {
  if (words >= static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max()))
    throw ValueError(prefix(fn) + "shape " + shape.str() + " needs " + std::to_string(words) +
                     " random 32-bit words; at most 4294967294 per call are supported; draw in pieces with split keys");
}

EQX_KERNEL_INLINE Array bits32(const Array& key, const Shape& shape, std::string_view fn) {
  check_count(shape.numel(), shape, fn);
  return eqx::reshape(threefry_2x32(key, iota_u32(shape.numel())), shape);
}

EQX_KERNEL_INLINE std::pair<Array, Array> bits64(const Array& key, const Shape& shape, std::string_view fn) {
  const std::int64_t n = shape.numel();
  check_count(2 * n, shape, fn);
  Array b = threefry_2x32(key, iota_u32(2 * n));
  return {eqx::reshape(slice1(b, 0, n), shape), eqx::reshape(slice1(b, n, 2 * n), shape)};
}

EQX_KERNEL_INLINE Array row(const Array& keys, std::int64_t i) {
  return eqx::reshape(bind1(prim::slice, {keys},
                            Params{}
                                .set("start_indices", Ints{i, 0})
                                .set("limit_indices", Ints{i + 1, 2})
                                .set("strides", Ints{1, 1})),
                      Shape{2});
}

EQX_KERNEL_INLINE Array unit_floats(const Array& key, const Shape& shape, DType dtype, std::string_view fn) {
  if (dtype == float32) {
    Array bits = bits32(key, shape, fn);
    Array one_bits = bor(shr(bits, 32 - 23), u32(0x3F800000u));  // exponent of 1.0f, 23 random mantissa bits
    return bind1(prim::bitcast_convert_type, {one_bits}, Params{}.set("new_dtype", float32)) - 1.0;
  }
  // float64: the 64-bit word (hi << 32 | lo) >> 12 | bits(1.0), built in 32-bit halves.
  auto [hi, lo] = bits64(key, shape, fn);
  Array new_hi = bor(shr(hi, 12), u32(0x3FF00000u));
  Array new_lo = bor(shr(lo, 12), shl(hi, 20));
  Array words = eqx::stack({new_lo, new_hi}, -1);  // little-endian: low word first
  return bind1(prim::bitcast_convert_type, {words}, Params{}.set("new_dtype", float64)) - 1.0;
}

EQX_KERNEL_INLINE Array uniform_impl(const Array& key, const Shape& shape, DType dtype, const Array& minval, const Array& maxval,
                                     std::string_view fn) {
  Array floats = unit_floats(key, shape, dtype, fn);
  return eqx::maximum(minval, floats * (maxval - minval) + minval);
}

EQX_KERNEL_INLINE double next_toward(double v, double direction, DType dtype) {
  if (dtype == float32) return static_cast<double>(std::nextafter(static_cast<float>(v), static_cast<float>(direction)));
  return std::nextafter(v, direction);
}

EQX_KERNEL_INLINE Array shuffle(Array key, Array x) {
  const auto rounds = static_cast<int>(
      std::ceil(3.0 * std::log(static_cast<double>(std::max<std::int64_t>(1, x.size()))) / std::log(4294967295.0)));
  for (int r = 0; r < rounds; ++r) {
    Array keys = split_impl(key, 2);
    key = row(keys, 0);
    Array sort_keys = bits32(row(keys, 1), x.shape(), "permutation");
    x = eqx::bind(prim::sort_key_val, std::vector<Array>{sort_keys, x}, Params{}.set("dimension", std::int64_t{0}))[1];
  }
  return x;
}
}  // namespace detail

EQX_KERNEL_INLINE Array threefry2x32(const Array& key_pair, const Array& counter_pair) {
  detail::check_key(key_pair, "threefry2x32", "key_pair");
  detail::check_key(counter_pair, "threefry2x32", "counter_pair");
  return detail::threefry_2x32(key_pair, counter_pair);
}

EQX_KERNEL_INLINE Array split(const Key& key, std::int64_t num) {
  detail::check_key(key, "split");
  if (num < 0) throw ValueError(detail::prefix("split") + "num must be >= 0, got " + std::to_string(num));
  detail::check_count(2 * num, Shape{num, 2}, "split");
  return detail::split_impl(key, num);
}

EQX_KERNEL_INLINE std::vector<Key> split_keys(const Key& key, std::int64_t num) {
  Array keys = eqx::random::split(key, num);
  std::vector<Key> out;
  out.reserve(static_cast<std::size_t>(num));
  for (std::int64_t i = 0; i < num; ++i) out.push_back(detail::row(keys, i));
  return out;
}

EQX_KERNEL_INLINE Key fold_in(const Key& key, std::uint32_t data) {
  detail::check_key(key, "fold_in");
  return detail::threefry_2x32(key, eqx::array({0u, data}));
}

EQX_KERNEL_INLINE Array bits(const Key& key, const Shape& shape) {
  detail::check_key(key, "bits");
  detail::check_shape(shape, "bits");
  return detail::bits32(key, shape, "bits");
}

EQX_KERNEL_INLINE Array uniform(const Key& key, const Shape& shape, DType dtype, double minval,
                                double maxval) {
  detail::check_key(key, "uniform");
  detail::check_shape(shape, "uniform");
  detail::check_float_dtype(dtype, "uniform");
  if (!(minval <= maxval))
    throw ValueError(detail::prefix("uniform") + "minval (" + std::to_string(minval) + ") must be <= maxval (" +
                     std::to_string(maxval) + ")");
  return detail::uniform_impl(key, shape, dtype, detail::scalar(minval, dtype), detail::scalar(maxval, dtype),
                              "uniform");
}

EQX_KERNEL_INLINE Array normal(const Key& key, const Shape& shape, DType dtype) {
  detail::check_key(key, "normal");
  detail::check_shape(shape, "normal");
  detail::check_float_dtype(dtype, "normal");
  Array lo = detail::scalar(detail::next_toward(-1.0, 0.0, dtype), dtype);
  Array u = detail::uniform_impl(key, shape, dtype, lo, detail::scalar(1.0, dtype), "normal");
  return bind1(prim::erf_inv, {u}) * std::sqrt(2.0);
}

EQX_KERNEL_INLINE Array bernoulli(const Key& key, double p, const Shape& shape) {
  detail::check_key(key, "bernoulli");
  detail::check_shape(shape, "bernoulli");
  if (std::isnan(p)) throw ValueError(detail::prefix("bernoulli") + "p is NaN; it must be a probability in [0, 1]");
  Array u = detail::uniform_impl(key, shape, float32, detail::scalar(0.0, float32), detail::scalar(1.0, float32),
                                 "bernoulli");
  return u < detail::scalar(p, float32);
}

EQX_KERNEL_INLINE Array bernoulli(const Key& key, const Array& p, const Shape& shape) {
  detail::check_key(key, "bernoulli");
  detail::check_shape(shape, "bernoulli");
  if (!p.has_value()) throw ValueError(detail::prefix("bernoulli") + "p is an empty Array (None)");
  if (!is_floating(p.dtype()))
    throw DTypeError(detail::prefix("bernoulli") + "p has dtype " + std::string(dtype_name(p.dtype())) +
                     "; probabilities must be float32 or float64 (convert with eqx::astype)");
  if (eqx::detail::broadcast_shapes(shape, p.shape(), "random::bernoulli") != shape)
    throw ShapeError(detail::prefix("bernoulli") + "p of shape " + p.shape().str() +
                     " does not broadcast to the requested shape " + shape.str());
  Array u = detail::uniform_impl(key, shape, p.dtype(), detail::scalar(0.0, p.dtype()), detail::scalar(1.0, p.dtype()),
                                 "bernoulli");
  return u < p;
}

EQX_KERNEL_INLINE Array bernoulli(const Key& key, const Array& p) {
  if (!p.has_value()) throw ValueError(detail::prefix("bernoulli") + "p is an empty Array (None)");
  return eqx::random::bernoulli(key, p, p.shape());
}

EQX_KERNEL_INLINE Array randint(const Key& key, const Shape& shape, std::int64_t minval, std::int64_t maxval,
                                DType dtype) {
  detail::check_key(key, "randint");
  detail::check_shape(shape, "randint");
  if (dtype != int32 && dtype != uint32)
    throw DTypeError(detail::prefix("randint") + "dtype must be int32 or uint32, got " + std::string(dtype_name(dtype)));
  // Clip the bounds into the dtype, as JAX's _convert_and_clip_integer.
  const std::int64_t lo_lim = dtype == int32 ? std::numeric_limits<std::int32_t>::min() : 0;
  const std::int64_t hi_lim =
      dtype == int32 ? std::numeric_limits<std::int32_t>::max() : std::numeric_limits<std::uint32_t>::max();
  const bool maxval_out_of_range = maxval > hi_lim;
  minval = std::clamp(minval, lo_lim, hi_lim);
  maxval = std::clamp(maxval, lo_lim, hi_lim);
  Array lo = detail::u32(static_cast<std::uint32_t>(minval));  // the dtype's bit pattern, as uint32
  Array hi = detail::u32(static_cast<std::uint32_t>(maxval));
  Array lo_t = eqx::full(Shape{}, minval, dtype), hi_t = eqx::full(Shape{}, maxval, dtype);

  std::vector<Key> ks = eqx::random::split_keys(key, 2);
  Array higher_bits = detail::bits32(ks[0], shape, "randint");
  Array lower_bits = detail::bits32(ks[1], shape, "randint");

  Array span = hi - lo;  // uint32, wraps as XLA's
  span = eqx::where(hi_t <= lo_t, detail::u32(1), span);
  if (maxval_out_of_range) span = eqx::where(hi_t > lo_t, span + detail::u32(1), span);

  // 2**32 % span from (2**16 % span)**2 % span; then a 64-bit value mod span.
  Array multiplier = detail::urem(detail::u32(1u << 16), span);
  multiplier = detail::urem(multiplier * multiplier, span);
  Array offset = detail::urem(higher_bits, span) * multiplier + detail::urem(lower_bits, span);
  offset = detail::urem(offset, span);
  return eqx::astype(lo + offset, dtype);  // minval + offset, wrapping in 32 bits
}

EQX_KERNEL_INLINE Array permutation(const Key& key, std::int64_t n) {
  detail::check_key(key, "permutation");
  if (n < 0) throw ValueError(detail::prefix("permutation") + "n must be >= 0, got " + std::to_string(n));
  if (n > std::numeric_limits<std::int32_t>::max())
    throw ValueError(detail::prefix("permutation") + "n = " + std::to_string(n) + " does not fit int32 indices");
  return detail::shuffle(key, eqx::detail::iota(int32, Shape{n}, 0));
}

EQX_KERNEL_INLINE Array permutation(const Key& key, const Array& x) {
  detail::check_key(key, "permutation");
  if (!x.has_value()) throw ValueError(detail::prefix("permutation") + "x is an empty Array (None)");
  if (x.ndim() == 0)
    throw ShapeError(detail::prefix("permutation") + "x has shape [] but needs at least one axis to shuffle; " +
                     "for a permutation of 0..n-1 call eqx::random::permutation(key, n)");
  if (x.ndim() == 1) return detail::shuffle(key, x);
  return eqx::take(x, eqx::random::permutation(key, x.shape()[0]), 0);
}

EQX_KERNEL_INLINE Array truncated_normal(const Key& key, double lower, double upper, const Shape& shape,
                                         DType dtype) {
  detail::check_key(key, "truncated_normal");
  detail::check_shape(shape, "truncated_normal");
  detail::check_float_dtype(dtype, "truncated_normal");
  if (!(lower < upper))
    throw ValueError(detail::prefix("truncated_normal") + "lower (" + std::to_string(lower) +
                     ") must be less than upper (" + std::to_string(upper) + ")");
  Array sqrt2 = detail::scalar(std::sqrt(2.0), dtype);
  Array a = eqx::erf(detail::scalar(lower, dtype) / sqrt2);
  Array b = eqx::erf(detail::scalar(upper, dtype) / sqrt2);
  Array u = detail::uniform_impl(key, shape, dtype, a, b, "truncated_normal");
  Array out = sqrt2 * bind1(prim::erf_inv, {u});
  const double inf = std::numeric_limits<double>::infinity();
  return eqx::minimum(eqx::maximum(out, detail::scalar(detail::next_toward(lower, inf, dtype), dtype)),
                      detail::scalar(detail::next_toward(upper, -inf, dtype), dtype));
}
}  // namespace eqx::random
#endif  // EQX_KERNELS_HERE(OPS)
