#pragma once
// Pooling layers (Equinox's eqx.nn.MaxPool1d/2d/3d, AvgPool1d/2d/3d and
// AdaptiveAvgPool1d/2d/3d, AdaptiveMaxPool1d/2d/3d) on ONE example
// x [C, *spatial]; batch with eqx::filter_vmap.
//
// MaxPool and AvgPool slide a window of `kernel_size` with `stride` over the
// spatial axes (eqx::reduce_window): the max, with padding cells -inf, or the
// sum divided by prod(kernel_size), padding cells counted as zeros (as
// Equinox, and torch's count_include_pad=True). Padding is per side and may
// be as large as the kernel. `use_ceil` keeps the last partial window: as
// Equinox, it adds `stride` more padding on the right of every dimension the
// windows do not tile exactly (AvgPool still divides by prod(kernel_size)).
//
// The adaptive pools reduce each spatial axis of size n to `target` bins,
// Equinox's split: the first n % target bins hold n / target + 1 cells, the
// rest n / target (torch's adaptive bins are different unless target divides n).
//
//   auto pool = eqx::nn::MaxPool2d::init(2, {.stride = 2});
//   eqx::Array y = pool(x);                               // f32[8,32,32] -> f32[8,16,16]
//   eqx::Array z = eqx::nn::AdaptiveAvgPool2d::init(1)(x); // f32[8,32,32] -> f32[8,1,1]
//
// Fields follow Equinox's order. Equinox's Pool has a dynamic `init` (the
// reduction's start: -inf for MaxPool, the int 0 for AvgPool, written by
// tree_serialise_leaves as <f8 and <i8) and a dynamic `operation` (a
// function, never written); here `init` is called `init_value` (a C++
// struct cannot have both a field and the static function `init` of that
// name) and the operation is the layer's type. Adaptive pools keep only
// their static `target_shape`. So the serialised records are Equinox's.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "eqx/core/array.hpp"
#include "eqx/nn/common.hpp"
#include "eqx/nn/conv.hpp"
#include "eqx/ops/conv.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/indexing.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/tree/node.hpp"

namespace eqx::nn {

/// MaxPool's and AvgPool's keyword arguments (Equinox's, in Equinox's order).
/// `padding` is an int, one int per dimension, or one (lo, hi) pair per
/// dimension, each at most the kernel size.
struct PoolOptions {
  Sizes stride = 1;
  Padding padding = 0;
  bool use_ceil = false;
};

namespace detail {

inline std::string pairs_str(const std::vector<Padding::Pair>& pairs) {
  return fmt::format("{}", Padding(pairs));
}

/// Equinox's rule: no side padded by more than the kernel.
inline void check_pool_padding(std::string_view layer, const std::vector<Padding::Pair>& pairs, const IntTuple& kernel,
                               bool with_ceil) {
  for (std::size_t i = 0; i < pairs.size(); ++i)
    if (std::max(pairs[i].first, pairs[i].second) > kernel[i])
      throw ValueError("eqx::nn::" + std::string(layer) + ": expected padding at most the kernel size on each side but got padding " +
                       pairs_str(pairs) + (with_ceil ? " (with use_ceil's extra stride on the right)" : "") +
                       " for kernel_size " + tuple_str(kernel) +
                       (with_ceil ? "; use less padding, or use_ceil = false" : "; use less padding"));
}

struct PoolParts {
  IntTuple kernel, stride;
  Padding padding;
};

inline PoolParts pool_parts(std::string_view layer, std::size_t dims, const Sizes& kernel_size, const PoolOptions& o) {
  if (o.padding.kind() != Padding::Kind::pairs)
    throw ValueError("eqx::nn::" + std::string(layer) + ": expected padding as ints or (lo, hi) pairs but got " +
                     fmt::format("{}", o.padding) + "; pooling layers take explicit padding, as Equinox's");
  PoolParts p{kernel_size.expand(dims, layer, "kernel_size"), o.stride.expand(dims, layer, "stride"),
              o.padding.resolve(dims, layer)};
  check_pool_padding(layer, p.padding.pairs(), p.kernel, false);
  return p;
}

template <class L, class Init>
L make_pool(Init init_value, std::size_t dims, const Sizes& kernel_size, const PoolOptions& o) {
  PoolParts p = pool_parts(L::layer_name, dims, kernel_size, o);
  return L{init_value, {static_cast<std::int64_t>(dims)}, {std::move(p.kernel)}, {std::move(p.stride)},
           {std::move(p.padding)}, {o.use_ceil}};
}

/// The window reduction ("max" or "sum") of a pool layer on one example.
template <class L>
Array pool_call(const L& l, const Array& x, std::string_view op) {
  const std::size_t n = l.kernel_size->size();
  check_rank(L::layer_name, x, n + 1, spatial_layout("C", static_cast<std::int64_t>(n)));
  std::vector<Padding::Pair> pads = l.padding->pairs();
  if (*l.use_ceil) {
    for (std::size_t i = 0; i < n; ++i) {
      auto& [lo, hi] = pads[i];
      if ((x.shape()[i + 1] + lo + hi - l.kernel_size->at(i)) % l.stride->at(i) != 0) hi += l.stride->at(i);
    }
    check_pool_padding(L::layer_name, pads, *l.kernel_size, true);
  }
  std::vector<std::int64_t> window{1}, strides{1};
  window.insert(window.end(), l.kernel_size->begin(), l.kernel_size->end());
  strides.insert(strides.end(), l.stride->begin(), l.stride->end());
  pads.insert(pads.begin(), Padding::Pair{0, 0});
  return reduce_window(x, op, window, strides, eqx::Padding(pads));
}

template <class L>
Array avg_pool_call(const L& l, const Array& x) {
  std::int64_t size = 1;
  for (auto k : *l.kernel_size) size *= k;
  return pool_call(l, x, "sum") / static_cast<double>(size);
}

template <class L>
L make_adaptive(std::size_t dims, const Sizes& target_shape) {
  IntTuple t = target_shape.expand(dims, L::layer_name, "target_shape");
  for (auto v : t)
    if (v < 1)
      throw ValueError("eqx::nn::" + std::string(L::layer_name) + ": expected target sizes >= 1 but got target_shape " +
                       tuple_str(t) + "; every output axis needs at least one bin");
  return L{{std::move(t)}};
}

/// Equinox's adaptive pooling: each spatial axis in turn is split into its
/// target bins (the first n % target one cell longer) and reduced.
template <class L>
Array adaptive_call(const L& l, const Array& x, bool is_max) {
  const std::size_t n = l.target_shape->size();
  check_rank(L::layer_name, x, n + 1, spatial_layout("C", static_cast<std::int64_t>(n)));
  for (std::size_t i = 0; i < n; ++i)
    if (x.shape()[i + 1] < l.target_shape->at(i))
      throw ShapeError("eqx::nn::" + std::string(L::layer_name) + ": expected every spatial size >= target_shape " +
                       tuple_str(*l.target_shape) + " but got input shape " + x.shape().str() +
                       "; pool to a smaller target, or pad the input");
  // Reduces axis a of `part` (whose size is bins * len) to `bins` cells.
  auto reduce_bins = [&](const Array& part, std::int64_t a, std::int64_t bins, std::int64_t len) {
    std::vector<std::int64_t> shape(part.shape().begin(), part.shape().end());
    shape[a] = len;
    shape.insert(shape.begin() + a, bins);
    const Array blocks = reshape(part, Shape(shape.begin(), shape.end()));
    return is_max ? max(blocks, a + 1) : mean(blocks, a + 1);
  };
  Array y = x;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t a = static_cast<std::int64_t>(i) + 1, size = y.shape()[a], t = l.target_shape->at(i);
    const std::int64_t q = size / t, r = size % t;
    if (r == 0) {
      y = reduce_bins(y, a, t, q);
    } else {
      const std::int64_t head = r * (q + 1);
      y = concatenate({reduce_bins(slice(y, a, 0, head), a, r, q + 1), reduce_bins(slice(y, a, head, size), a, t - r, q)},
                      a);
    }
  }
  return y;
}

}  // namespace detail

/// 1-d max pooling (eqx.nn.MaxPool1d), x [C, W].
struct MaxPool1d {
  double init_value;  ///< Equinox's `init`: -inf, the start of the max
  Static<std::int64_t> num_spatial_dims;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<bool> use_ceil;

  using Options = PoolOptions;
  static constexpr std::string_view layer_name = "MaxPool1d";

  /// Usage: `eqx::nn::MaxPool1d::init(3, {.stride = 2, .padding = 1})`
  static MaxPool1d init(Sizes kernel_size, Options opts = {}) {
    return detail::make_pool<MaxPool1d>(-std::numeric_limits<double>::infinity(), 1, kernel_size, opts);
  }
  /// x [C, W] -> [C, W_out]. Usage: `pool(x)`
  Array operator()(const Array& x) const { return detail::pool_call(*this, x, "max"); }
};

/// 2-d max pooling (eqx.nn.MaxPool2d), x [C, H, W].
struct MaxPool2d {
  double init_value;  ///< Equinox's `init`: -inf, the start of the max
  Static<std::int64_t> num_spatial_dims;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<bool> use_ceil;

  using Options = PoolOptions;
  static constexpr std::string_view layer_name = "MaxPool2d";

  /// Usage: `eqx::nn::MaxPool2d::init(2, {.stride = 2})`
  static MaxPool2d init(Sizes kernel_size, Options opts = {}) {
    return detail::make_pool<MaxPool2d>(-std::numeric_limits<double>::infinity(), 2, kernel_size, opts);
  }
  /// x [C, H, W] -> [C, H_out, W_out]. Usage: `pool(x)`
  Array operator()(const Array& x) const { return detail::pool_call(*this, x, "max"); }
};

/// 3-d max pooling (eqx.nn.MaxPool3d), x [C, D, H, W].
struct MaxPool3d {
  double init_value;  ///< Equinox's `init`: -inf, the start of the max
  Static<std::int64_t> num_spatial_dims;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<bool> use_ceil;

  using Options = PoolOptions;
  static constexpr std::string_view layer_name = "MaxPool3d";

  /// Usage: `eqx::nn::MaxPool3d::init({2, 2, 1}, {.stride = {2, 2, 1}})`
  static MaxPool3d init(Sizes kernel_size, Options opts = {}) {
    return detail::make_pool<MaxPool3d>(-std::numeric_limits<double>::infinity(), 3, kernel_size, opts);
  }
  /// x [C, D, H, W] -> [C, D_out, H_out, W_out]. Usage: `pool(x)`
  Array operator()(const Array& x) const { return detail::pool_call(*this, x, "max"); }
};

/// 1-d average pooling (eqx.nn.AvgPool1d), x [C, W]: window sums / kernel size.
struct AvgPool1d {
  std::int64_t init_value;  ///< Equinox's `init`: the int 0, the start of the sum
  Static<std::int64_t> num_spatial_dims;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<bool> use_ceil;

  using Options = PoolOptions;
  static constexpr std::string_view layer_name = "AvgPool1d";

  /// Usage: `eqx::nn::AvgPool1d::init(4, {.stride = 4})`
  static AvgPool1d init(Sizes kernel_size, Options opts = {}) {
    return detail::make_pool<AvgPool1d>(std::int64_t{0}, 1, kernel_size, opts);
  }
  /// x [C, W] -> [C, W_out]. Usage: `pool(x)`
  Array operator()(const Array& x) const { return detail::avg_pool_call(*this, x); }
};

/// 2-d average pooling (eqx.nn.AvgPool2d), x [C, H, W]: window sums / prod(kernel_size).
struct AvgPool2d {
  std::int64_t init_value;  ///< Equinox's `init`: the int 0, the start of the sum
  Static<std::int64_t> num_spatial_dims;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<bool> use_ceil;

  using Options = PoolOptions;
  static constexpr std::string_view layer_name = "AvgPool2d";

  /// Usage: `eqx::nn::AvgPool2d::init(3, {.stride = 2, .padding = 1})`
  static AvgPool2d init(Sizes kernel_size, Options opts = {}) {
    return detail::make_pool<AvgPool2d>(std::int64_t{0}, 2, kernel_size, opts);
  }
  /// x [C, H, W] -> [C, H_out, W_out]. Usage: `pool(x)`
  Array operator()(const Array& x) const { return detail::avg_pool_call(*this, x); }
};

/// 3-d average pooling (eqx.nn.AvgPool3d), x [C, D, H, W]: window sums / prod(kernel_size).
struct AvgPool3d {
  std::int64_t init_value;  ///< Equinox's `init`: the int 0, the start of the sum
  Static<std::int64_t> num_spatial_dims;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<bool> use_ceil;

  using Options = PoolOptions;
  static constexpr std::string_view layer_name = "AvgPool3d";

  /// Usage: `eqx::nn::AvgPool3d::init(2)`
  static AvgPool3d init(Sizes kernel_size, Options opts = {}) {
    return detail::make_pool<AvgPool3d>(std::int64_t{0}, 3, kernel_size, opts);
  }
  /// x [C, D, H, W] -> [C, D_out, H_out, W_out]. Usage: `pool(x)`
  Array operator()(const Array& x) const { return detail::avg_pool_call(*this, x); }
};

/// Mean over Equinox's adaptive bins, x [C, W] -> [C, target] (eqx.nn.AdaptiveAvgPool1d).
struct AdaptiveAvgPool1d {
  Static<IntTuple> target_shape;
  static constexpr std::string_view layer_name = "AdaptiveAvgPool1d";
  /// Usage: `eqx::nn::AdaptiveAvgPool1d::init(4)`
  static AdaptiveAvgPool1d init(Sizes target_shape) { return detail::make_adaptive<AdaptiveAvgPool1d>(1, target_shape); }
  /// Usage: `pool(x)`
  Array operator()(const Array& x) const { return detail::adaptive_call(*this, x, false); }
};

/// Mean over Equinox's adaptive bins, x [C, H, W] -> [C, *target] (eqx.nn.AdaptiveAvgPool2d).
struct AdaptiveAvgPool2d {
  Static<IntTuple> target_shape;
  static constexpr std::string_view layer_name = "AdaptiveAvgPool2d";
  /// Usage: `eqx::nn::AdaptiveAvgPool2d::init({7, 7})`
  static AdaptiveAvgPool2d init(Sizes target_shape) { return detail::make_adaptive<AdaptiveAvgPool2d>(2, target_shape); }
  /// Usage: `pool(x)`
  Array operator()(const Array& x) const { return detail::adaptive_call(*this, x, false); }
};

/// Mean over Equinox's adaptive bins, x [C, D, H, W] -> [C, *target] (eqx.nn.AdaptiveAvgPool3d).
struct AdaptiveAvgPool3d {
  Static<IntTuple> target_shape;
  static constexpr std::string_view layer_name = "AdaptiveAvgPool3d";
  /// Usage: `eqx::nn::AdaptiveAvgPool3d::init(1)`
  static AdaptiveAvgPool3d init(Sizes target_shape) { return detail::make_adaptive<AdaptiveAvgPool3d>(3, target_shape); }
  /// Usage: `pool(x)`
  Array operator()(const Array& x) const { return detail::adaptive_call(*this, x, false); }
};

/// Max over Equinox's adaptive bins, x [C, W] -> [C, target] (eqx.nn.AdaptiveMaxPool1d).
struct AdaptiveMaxPool1d {
  Static<IntTuple> target_shape;
  static constexpr std::string_view layer_name = "AdaptiveMaxPool1d";
  /// Usage: `eqx::nn::AdaptiveMaxPool1d::init(4)`
  static AdaptiveMaxPool1d init(Sizes target_shape) { return detail::make_adaptive<AdaptiveMaxPool1d>(1, target_shape); }
  /// Usage: `pool(x)`
  Array operator()(const Array& x) const { return detail::adaptive_call(*this, x, true); }
};

/// Max over Equinox's adaptive bins, x [C, H, W] -> [C, *target] (eqx.nn.AdaptiveMaxPool2d).
struct AdaptiveMaxPool2d {
  Static<IntTuple> target_shape;
  static constexpr std::string_view layer_name = "AdaptiveMaxPool2d";
  /// Usage: `eqx::nn::AdaptiveMaxPool2d::init({2, 2})`
  static AdaptiveMaxPool2d init(Sizes target_shape) { return detail::make_adaptive<AdaptiveMaxPool2d>(2, target_shape); }
  /// Usage: `pool(x)`
  Array operator()(const Array& x) const { return detail::adaptive_call(*this, x, true); }
};

/// Max over Equinox's adaptive bins, x [C, D, H, W] -> [C, *target] (eqx.nn.AdaptiveMaxPool3d).
struct AdaptiveMaxPool3d {
  Static<IntTuple> target_shape;
  static constexpr std::string_view layer_name = "AdaptiveMaxPool3d";
  /// Usage: `eqx::nn::AdaptiveMaxPool3d::init(1)`
  static AdaptiveMaxPool3d init(Sizes target_shape) { return detail::make_adaptive<AdaptiveMaxPool3d>(3, target_shape); }
  /// Usage: `pool(x)`
  Array operator()(const Array& x) const { return detail::adaptive_call(*this, x, true); }
};

}  // namespace eqx::nn
