#pragma once
// Convolution and pooling: conv (lax.conv_general_dilated with JAX's default
// [N, C, spatial...] layout), reduce_window, max_pool and avg_pool.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/operand.hpp"
#include "eqx/prim/conv.hpp"
#include "eqx/prim/window.hpp"

namespace eqx {

/// Padding of a convolution or windowed reduction: "VALID" (none), "SAME"
/// (output size ceil(in / stride), the extra cell on the high side, as lax
/// computes it), "SAME_LOWER" (extra cell on the low side), or explicit
/// (lo, hi) pairs, one per axis the window moves over (negative values crop,
/// for conv only). Strings are case-insensitive.
/// Usage: `eqx::conv(x, w, {1, 1}, "SAME")`, `eqx::conv(x, w, {}, {{1, 1}, {2, 0}})`
class Padding {
 public:
  using Pair = std::pair<std::int64_t, std::int64_t>;

  /// "VALID".
  Padding() = default;
  Padding(const char* mode) : mode_(mode) {}                      // NOLINT: implicit by design
  Padding(std::string mode) : mode_(std::move(mode)) {}           // NOLINT: implicit by design
  Padding(std::vector<Pair> pads) : pairs_(std::move(pads)), explicit_(true) {}  // NOLINT: implicit by design
  Padding(std::initializer_list<Pair> pads) : pairs_(pads), explicit_(true) {}   // NOLINT: implicit by design

  /// True for (lo, hi) pairs, false for a padding string.
  bool is_explicit() const { return explicit_; }
  /// The padding string upper-cased ("VALID", "SAME", ...); empty for pairs.
  std::string mode() const {
    if (explicit_) return {};
    std::string m = mode_;
    for (char& c : m)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return m;
  }
  const std::vector<Pair>& pairs() const { return pairs_; }

  /// Flattened [lo0, hi0, lo1, hi1, ...] for an input of sizes `in` and a
  /// window of (dilated) sizes `window` moved with `strides` (all >= 1).
  /// `op` names the function in errors; `spatial` says the axes are the
  /// spatial axes (conv) rather than all axes (reduce_window).
  std::vector<std::int64_t> resolve(std::string_view op, const std::vector<std::int64_t>& in,
                                    const std::vector<std::int64_t>& window, const std::vector<std::int64_t>& strides,
                                    bool spatial = false) const {
    const std::string axes = spatial ? "spatial axes" : "axes", axis = spatial ? "spatial axis" : "axis";
    std::vector<std::int64_t> out;
    out.reserve(2 * in.size());
    if (explicit_) {
      if (pairs_.size() != in.size())
        throw ValueError("eqx::" + std::string(op) + ": padding has " + std::to_string(pairs_.size()) +
                         " (lo, hi) pairs but there are " + std::to_string(in.size()) + " " + axes + "; give one pair per " + axis +
                         " or a padding string (\"VALID\", \"SAME\")");
      for (const auto& [lo, hi] : pairs_) {
        out.push_back(lo);
        out.push_back(hi);
      }
      return out;
    }
    const std::string m = mode();
    if (m == "VALID") {
      out.assign(2 * in.size(), 0);
      return out;
    }
    if (m != "SAME" && m != "SAME_LOWER")
      throw ValueError("eqx::" + std::string(op) + ": unknown padding \"" + mode_ +
                       "\"; use \"VALID\", \"SAME\", \"SAME_LOWER\" or explicit (lo, hi) pairs");
    for (std::size_t i = 0; i < in.size(); ++i) {
      const std::int64_t o = (in[i] + strides[i] - 1) / strides[i];
      const std::int64_t total = std::max<std::int64_t>((o - 1) * strides[i] + window[i] - in[i], 0);
      const std::int64_t small = total / 2;
      out.push_back(m == "SAME" ? small : total - small);
      out.push_back(m == "SAME" ? total - small : small);
    }
    return out;
  }

 private:
  std::string mode_ = "VALID";
  std::vector<Pair> pairs_;
  bool explicit_ = false;
};

/// N-dimensional convolution, lax.conv_general_dilated with JAX's default
/// dimension numbers: lhs [N, C_in, spatial...] (any number of spatial axes),
/// rhs [C_out, C_in / feature_group_count, kernel spatial...], result
/// [N, C_out, out spatial...]. `strides`, `lhs_dilation` (holes between input
/// elements: a transposed convolution) and `rhs_dilation` (atrous kernel)
/// have one entry per spatial axis; empty means all ones.
/// feature_group_count splits the channels into groups convolved separately
/// (== C_in: depthwise). Operands are promoted to one dtype, which must be
/// float32 or float64. Like lax, string padding cannot be combined with
/// lhs_dilation other than "VALID"; give explicit pairs instead.
/// Usage: `eqx::conv(x, w, {2, 2}, "SAME")` on x f32[8,3,32,32], w f32[16,3,3,3] gives f32[8,16,16,16].
Array conv(const Array& lhs, const Array& rhs, std::vector<std::int64_t> strides = {},
           Padding padding = "VALID", std::vector<std::int64_t> lhs_dilation = {},
           std::vector<std::int64_t> rhs_dilation = {}, std::int64_t feature_group_count = 1);

namespace detail {

/// reduce_window with full-rank parameters; `name` is the public function.
Array reduce_window_all_axes(std::string_view name, std::string_view op, const Array& x, Ints window,
                             Ints strides, const Padding& padding, Ints dilation);

/// Pools the trailing spatial axes of an [N, C, spatial...] input.
Array pool(std::string_view name, std::string_view op, const Array& x, const Ints& window, Ints strides,
           const Padding& padding);

}  // namespace detail

/// lax.reduce_window over every axis of x with op "max" or "sum": one result
/// per window position. `strides` and `window_dilation` default to all ones;
/// padding cells hold -inf for max (the lowest value for integers) and 0 for
/// sum. Dtypes: float32, float64, int32 (max also uint32).
/// Usage: `eqx::reduce_window(x, "max", {1, 1, 2, 2}, {1, 1, 2, 2})`
Array reduce_window(const Array& x, std::string_view op, std::vector<std::int64_t> window,
                    std::vector<std::int64_t> strides = {}, Padding padding = "VALID",
                    std::vector<std::int64_t> window_dilation = {});

/// Max pooling over the spatial axes of x [N, C, spatial...]: `window` and
/// `strides` (default all ones, as in flax) have one entry per spatial axis;
/// padding cells are -inf.
/// Usage: `eqx::max_pool(x, {2, 2}, {2, 2})` halves H and W of f32[N,C,H,W].
Array max_pool(const Array& x, std::vector<std::int64_t> window, std::vector<std::int64_t> strides = {},
               Padding padding = "VALID");

/// Average pooling over the spatial axes of x [N, C, spatial...]: window sum
/// divided by the window size, padded cells included (flax's default
/// count_include_pad=True). Integer inputs give float32.
/// Usage: `eqx::avg_pool(x, {3, 3}, {1, 1}, "SAME")`
Array avg_pool(const Array& x, std::vector<std::int64_t> window, std::vector<std::int64_t> strides = {},
               Padding padding = "VALID");

}  // namespace eqx

#if EQX_KERNELS_HERE(OPS)
namespace eqx {
EQX_KERNEL_INLINE Array conv(const Array& lhs, const Array& rhs, std::vector<std::int64_t> strides,
                             Padding padding, std::vector<std::int64_t> lhs_dilation,
                             std::vector<std::int64_t> rhs_dilation, std::int64_t feature_group_count) {
  const DType t = promote_types(detail::require_value(lhs, "conv").dtype(), detail::require_value(rhs, "conv").dtype());
  const AbstractArray l{lhs.shape(), t}, r{rhs.shape(), t};
  const std::size_t nsp = l.shape.size() >= 2 ? l.shape.size() - 2 : 0;
  for (auto* v : {&strides, &lhs_dilation, &rhs_dilation})
    if (v->empty()) v->assign(nsp, 1);
  detail::conv_check_params("conv", l, r, strides, lhs_dilation, rhs_dilation, feature_group_count);
  std::vector<std::int64_t> in, window;
  bool dilated = false;
  for (std::size_t i = 0; i < nsp; ++i) {
    in.push_back(l.shape[i + 2]);
    window.push_back(detail::dilate_dim(r.shape[i + 2], rhs_dilation[i]));
    dilated = dilated || lhs_dilation[i] != 1;
  }
  if (!padding.is_explicit() && padding.mode() != "VALID" && dilated)
    throw ValueError("eqx::conv: padding \"" + padding.mode() + "\" with lhs_dilation " +
                     detail::ints_str(lhs_dilation) +
                     " is ambiguous (as in lax); give explicit (lo, hi) pairs per spatial axis instead");
  detail::ConvDims d{strides, padding.resolve("conv", in, window, strides, true), lhs_dilation, rhs_dilation,
                     feature_group_count};
  detail::conv_output_shape("conv", l, r, d);  // report errors under the public name
  return bind1(prim::conv_general_dilated, {astype(lhs, t), astype(rhs, t)},
               Params{}
                   .set("window_strides", std::move(d.strides))
                   .set("padding", std::move(d.padding))
                   .set("lhs_dilation", std::move(d.lhs_dilation))
                   .set("rhs_dilation", std::move(d.rhs_dilation))
                   .set("feature_group_count", feature_group_count));
}
namespace detail {
EQX_KERNEL_INLINE Array reduce_window_all_axes(std::string_view name, std::string_view op, const Array& x, Ints window,
                                               Ints strides, const Padding& padding, Ints dilation) {
  const AbstractArray a{require_value(x, name).shape(), x.dtype()};
  const Primitive* p = nullptr;
  if (op == "max") {
    window_check_dtype<WindowMax>(name, a);
    p = &prim::reduce_window_max;
  } else if (op == "sum") {
    window_check_dtype<WindowSum>(name, a);
    p = &prim::reduce_window_sum;
  } else {
    throw ValueError("eqx::" + std::string(name) + ": unknown reduction \"" + std::string(op) +
                     "\"; use \"max\" or \"sum\"");
  }
  const std::size_t rank = a.shape.size();
  if (strides.empty()) strides.assign(rank, 1);
  if (dilation.empty()) dilation.assign(rank, 1);
  window_check_params(name, a, window, strides, dilation);
  Ints in(a.shape.begin(), a.shape.end()), span;
  for (std::size_t i = 0; i < rank; ++i) span.push_back(dilate_dim(window[i], dilation[i]));
  Ints pads = padding.resolve(name, in, span, strides);
  WindowDims d{std::move(window), std::move(strides), std::move(pads), std::move(dilation)};
  window_output_shape(name, a, d);  // report errors under the public name
  return bind1(*p, {x},
               Params{}
                   .set("window_dimensions", std::move(d.window))
                   .set("window_strides", std::move(d.strides))
                   .set("padding", std::move(d.padding))
                   .set("window_dilation", std::move(d.dilation)));
}

EQX_KERNEL_INLINE Array pool(std::string_view name, std::string_view op, const Array& x, const Ints& window, Ints strides,
                             const Padding& padding) {
  const Shape& s = require_value(x, name).shape();
  const std::size_t nsp = window.size();
  if (s.size() != nsp + 2)
    throw ShapeError("eqx::" + std::string(name) + ": input " + AbstractArray{s, x.dtype()}.str() +
                     " must be [N, C, spatial...] with " + std::to_string(nsp) + " spatial axes to match window " +
                     ints_str(window) + ", i.e. rank " + std::to_string(nsp + 2) +
                     "; reshape the input or give one window entry per spatial axis");
  if (strides.empty()) strides.assign(nsp, 1);
  if (strides.size() != nsp)
    throw ValueError("eqx::" + std::string(name) + ": strides " + ints_str(strides) + " has " +
                     std::to_string(strides.size()) + " entries but window " + ints_str(window) + " has " +
                     std::to_string(nsp) + "; give one stride per spatial axis (or none for all ones)");
  Ints w{1, 1}, st{1, 1};
  w.insert(w.end(), window.begin(), window.end());
  st.insert(st.end(), strides.begin(), strides.end());
  Padding full = padding;
  if (padding.is_explicit()) {
    if (padding.pairs().size() != nsp)
      throw ValueError("eqx::" + std::string(name) + ": padding has " + std::to_string(padding.pairs().size()) +
                       " (lo, hi) pairs but there are " + std::to_string(nsp) +
                       " spatial axes; give one pair per spatial axis or a padding string (\"VALID\", \"SAME\")");
    std::vector<Padding::Pair> pairs{{0, 0}, {0, 0}};
    pairs.insert(pairs.end(), padding.pairs().begin(), padding.pairs().end());
    full = Padding(std::move(pairs));
  }
  return reduce_window_all_axes(name, op, x, std::move(w), std::move(st), full, {});
}
}  // namespace detail

EQX_KERNEL_INLINE Array reduce_window(const Array& x, std::string_view op, std::vector<std::int64_t> window,
                                      std::vector<std::int64_t> strides, Padding padding,
                                      std::vector<std::int64_t> window_dilation) {
  return detail::reduce_window_all_axes("reduce_window", op, x, std::move(window), std::move(strides), padding,
                                        std::move(window_dilation));
}

EQX_KERNEL_INLINE Array max_pool(const Array& x, std::vector<std::int64_t> window, std::vector<std::int64_t> strides,
                                 Padding padding) {
  return detail::pool("max_pool", "max", x, window, std::move(strides), padding);
}

EQX_KERNEL_INLINE Array avg_pool(const Array& x, std::vector<std::int64_t> window, std::vector<std::int64_t> strides,
                                 Padding padding) {
  const Array xf = astype(detail::require_value(x, "avg_pool"), detail::inexact(x.dtype()));
  std::int64_t size = 1;
  for (auto w : window) size *= w;
  return divide(detail::pool("avg_pool", "sum", xf, window, std::move(strides), padding), static_cast<double>(size));
}
}  // namespace eqx
#endif  // EQX_KERNELS_HERE(OPS)
