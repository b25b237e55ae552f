#pragma once
// Orderings and running sums along an axis: sort, argsort (numpy/jnp names
// and defaults) and cumsum, composed from existing primitives, so grad, vmap
// and jit apply with no rules of their own.
//
// sort and argsort map each element to unsigned integer keys whose order is
// the element order and sort with the sort_key_val primitive (a stable sort
// of int32/uint32 keys that carries a second array along):
//   - float32: the IEEE bits, with negatives' bits inverted and positives'
//     sign bit set (the usual "total order" trick), one key;
//   - float64: the same on its two 32-bit words, sorted by the low word and
//     then (stably) by the high word, which orders by the 64-bit key;
//   - int32, uint32 directly; bool as uint32.
// So, as in JAX: NaN sorts last, -0.0 before +0.0, and equal elements keep
// their order (argsort is stable). The keys carry no gradient; sort carries
// x itself along, so its gradient is the permutation applied backwards.
//
// cumsum is a reduce_window sum whose window covers the whole axis, padded
// with n-1 zeros in front: element i sums x[0..i]. It costs O(n^2) adds per
// row (fine for the short axes of layers), and its gradient is the window
// sum's rule (a reversed cumulative sum of the cotangent).
//
//   eqx::Array s = eqx::sort(x);            // along the last axis
//   eqx::Array order = eqx::argsort(x, 0);  // int32 indices
//   eqx::Array c = eqx::cumsum(x, -1);

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/config.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ops/conv.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/indexing.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/prim/random_bits.hpp"
#include "eqx/transform/stop_gradient.hpp"

namespace eqx {

namespace detail {

/// Unsigned keys of IEEE bits: order-preserving as unsigned integers.
/// `sign_word` holds the sign bit; every word of a negative number is
/// inverted, and a non-negative number gets the sign bit set.
inline Array float_key_word(const Array& word, const Array& negative, bool is_sign_word) {
  return where(negative, ~word, is_sign_word ? (word | eqx::array(0x80000000u)) : word);
}

/// Sort keys of x, least significant first (one for 32-bit dtypes, the low
/// and high words for float64); they do not depend on x for differentiation.
std::vector<Array> sort_keys(const Array& x);

/// `values` permuted along `dim` as a stable sort of `keys` (least
/// significant first) orders them.
Array sort_along(std::vector<Array> keys, Array values, std::int64_t dim);

/// x flattened when `axis` is nullopt, with the axis to work along.
std::pair<Array, std::int64_t> along(const Array& x, std::optional<std::int64_t> axis, std::string_view op);

}  // namespace detail

/// x sorted ascending along `axis` (the last by default; std::nullopt sorts
/// the flattened array), as jnp.sort: NaN last, -0.0 before +0.0.
/// Differentiable in x (the gradient follows each element to its place).
/// Usage: `eqx::sort(x)`, `eqx::sort(x, 0)`, `eqx::sort(x, std::nullopt)`
Array sort(const Array& x, std::optional<std::int64_t> axis = -1);

/// The int32 indices that sort x along `axis` (the last by default;
/// std::nullopt: of the flattened array), stable: equal elements keep their
/// order (jnp.argsort's default). Usage: `eqx::argsort(scores)`, `eqx::argsort(x, 0)`
Array argsort(const Array& x, std::optional<std::int64_t> axis = -1);

/// Running sum along `axis` (std::nullopt, the default as in numpy: of the
/// flattened array): out[i] = x[0] + ... + x[i]. bool counts in int32;
/// float32, float64 and int32 keep their dtype (uint32 is not supported:
/// cast it first). Usage: `eqx::cumsum(x, 0)`, `eqx::cumsum(mask)`
Array cumsum(const Array& x, std::optional<std::int64_t> axis = std::nullopt);

}  // namespace eqx

#if EQX_KERNELS_HERE(OPS)
namespace eqx {
namespace detail {
EQX_KERNEL_INLINE std::vector<Array> sort_keys(const Array& x) {
  Array v = stop_gradient(x);
  switch (v.dtype()) {
    case DType::bool_: return {astype(v, uint32)};
    case DType::int32:
    case DType::uint32: return {v};
    case DType::float32:
    case DType::float64: break;
  }
  v = where(isnan(v), std::numeric_limits<double>::quiet_NaN(), v);  // one NaN, with the sign bit clear
  Array bits = bind1(prim::bitcast_convert_type, {v}, Params{}.set("new_dtype", DType::uint32));
  if (v.dtype() == float32) return {float_key_word(bits, bits >= 0x80000000u, true)};
  // float64: bits is [..., 2] with the low word first (little-endian).
  const auto last = static_cast<std::int64_t>(bits.ndim()) - 1;
  Array lo = reshape(slice(bits, last, 0, 1), v.shape()), hi = reshape(slice(bits, last, 1, 2), v.shape());
  Array negative = hi >= 0x80000000u;
  return {float_key_word(lo, negative, false), float_key_word(hi, negative, true)};
}

EQX_KERNEL_INLINE Array sort_along(std::vector<Array> keys, Array values, std::int64_t dim) {
  const Params p = Params{}.set("dimension", dim);
  for (std::size_t k = 0; k < keys.size(); ++k) {
    values = eqx::bind(prim::sort_key_val, std::vector<Array>{keys[k], values}, p)[1];
    for (std::size_t j = k + 1; j < keys.size(); ++j)
      keys[j] = eqx::bind(prim::sort_key_val, std::vector<Array>{keys[k], keys[j]}, p)[1];
  }
  return values;
}

EQX_KERNEL_INLINE std::pair<Array, std::int64_t> along(const Array& x, std::optional<std::int64_t> axis, std::string_view op) {
  require_value(x, op);
  if (!axis) return {ravel(x), 0};
  return {x, normalize_axis(*axis, x.ndim(), op)};
}
}  // namespace detail

EQX_KERNEL_INLINE Array sort(const Array& x, std::optional<std::int64_t> axis) {
  auto [v, dim] = detail::along(x, axis, "sort");
  return detail::sort_along(detail::sort_keys(v), v, dim);
}

EQX_KERNEL_INLINE Array argsort(const Array& x, std::optional<std::int64_t> axis) {
  auto [v, dim] = detail::along(x, axis, "argsort");
  return detail::sort_along(detail::sort_keys(v), detail::iota(int32, v.shape(), dim), dim);
}

EQX_KERNEL_INLINE Array cumsum(const Array& x, std::optional<std::int64_t> axis) {
  auto [v, dim] = detail::along(x, axis, "cumsum");
  if (v.dtype() == bool_) v = astype(v, int32);
  if (v.dtype() == uint32)
    throw DTypeError("eqx::cumsum: expected a float32, float64, int32 or bool input but got uint32; cast it with "
                     "eqx::astype(x, eqx::int32) first");
  const std::size_t rank = v.ndim(), d = static_cast<std::size_t>(dim);
  const std::int64_t n = v.shape()[d];
  if (n == 0) return v;
  std::vector<std::int64_t> window(rank, 1);
  std::vector<Padding::Pair> pads(rank, {0, 0});
  window[d] = n;
  pads[d] = {n - 1, 0};
  return reduce_window(v, "sum", std::move(window), {}, Padding(std::move(pads)));
}
}  // namespace eqx
#endif  // EQX_KERNELS_HERE(OPS)
