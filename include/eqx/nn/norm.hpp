#pragma once
// Normalisation layers (Equinox's equinox/nn/_normalisation.py and
// _weight_norm.py): nn::LayerNorm, nn::GroupNorm, nn::RMSNorm and the
// wrapper nn::WeightNorm<Layer>.
//
// The three normalisations act on ONE example and compute in at least
// float32 (result_type(x.dtype, float32)), casting the result back to x's
// dtype, as Equinox does:
//
//   LayerNorm   (x - mean(x)) * rsqrt(var(x) + eps) * weight + bias      (all axes)
//   GroupNorm   the same per group of channels, weight/bias per channel  (x: [C, ...])
//   RMSNorm     x * rsqrt(mean(x^2) + eps) * weight + bias
//
// The variance is the biased one, mean((x - mean(x))^2), clamped at 0
// (jnp.var then jnp.maximum(0, .)). Each also has the `(x, state)` overload
// returning {y, state} unchanged, so it can stand where a BatchNorm stands.
//
// WeightNorm reparameterises one weight of a layer as g * v / ||v||, the
// norm taken over every axis except `axis` (Salimans & Kingma 2016):
//
//   auto norm = eqx::nn::LayerNorm::init(64);                 // x: f32[64] -> f32[64]
//   auto wn = eqx::nn::weight_norm(eqx::nn::Linear::init(3, 2, key));
//   eqx::Array y = wn(x);                                     // the Linear with weight g * v / ||v||

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/core/shape.hpp"
#include "eqx/nn/common.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/tree/at.hpp"
#include "eqx/tree/flatten.hpp"
#include "eqx/tree/map.hpp"
#include "eqx/tree/node.hpp"

namespace eqx::nn {

namespace detail {

/// The dtype Equinox normalises in: result_type(x.dtype, float32).
inline DType norm_compute_dtype(DType x) { return promote_types(x, float32); }

/// Biased variance over `axes` with kept dims, as jnp.var: mean((x - mean x)^2).
inline Array norm_variance(const Array& x, const Axes& axes) {
  const Array centred = x - mean(x, axes, true);
  return mean(centred * centred, axes, true);
}

/// (x - mean) / sqrt(var + eps) over `axes`, the variance clamped at 0.
inline Array norm_standardise(const Array& x, const Axes& axes, double eps) {
  const Array var = maximum(norm_variance(x, axes), 0.0);
  return (x - mean(x, axes, true)) * rsqrt(var + eps);
}

/// Throws unless x has exactly the layer's shape; a batch of such examples
/// (extra leading axes) gets the filter_vmap hint.
inline void check_norm_input(std::string_view layer, const Array& x, const Shape& want) {
  if (!x.has_value()) throw ValueError("eqx::nn::" + std::string(layer) + ": the input is an empty Array (None)");
  if (x.shape() == want) return;
  std::string msg = "eqx::nn::" + std::string(layer) + ": expected the input to have the layer's shape " + want.str() +
                    " but got " + x.shape().str();
  if (x.ndim() > want.size() && Shape(x.shape().end() - want.size(), x.shape().end()) == want)
    msg += "; the layer normalises one example: batch the leading axes with eqx::filter_vmap(layer)(xs)";
  throw ShapeError(msg);
}

/// A weight or bias Array of `shape` filled with `value`, or empty when off.
inline Array norm_affine_param(bool on, const Shape& shape, double value, DType dtype) {
  return on ? full(shape, value, dtype) : Array{};
}

}  // namespace detail

// --- LayerNorm -----------------------------------------------------------

/// LayerNorm's keyword arguments.
struct LayerNormOptions {
  double eps = 1e-5;
  bool use_weight = true;
  bool use_bias = true;
  DType dtype = float32;
};

/// Normalises the whole example to mean 0 and variance 1, then applies an
/// elementwise affine map (eqx.nn.LayerNorm).
struct LayerNorm {
  Static<Shape> shape;
  Static<double> eps;
  Static<bool> use_weight;
  Static<bool> use_bias;
  Array weight;  ///< ones(shape); empty when use_weight is false
  Array bias;    ///< zeros(shape); empty when use_bias is false

  using Options = LayerNormOptions;

  /// A LayerNorm for inputs of exactly `shape` (one int or braces).
  /// Usage: `auto ln = eqx::nn::LayerNorm::init({3, 4}, {.eps = 1e-6});`
  static LayerNorm init(Shape shape, Options opts = {}) {
    eqx::nn::detail::check_param_dtype(opts.dtype, "LayerNorm");
    return {{shape}, {opts.eps}, {opts.use_weight}, {opts.use_bias},
            detail::norm_affine_param(opts.use_weight, shape, 1, opts.dtype),
            detail::norm_affine_param(opts.use_bias, shape, 0, opts.dtype)};
  }
  /// Usage: `auto ln = eqx::nn::LayerNorm::init(64);`
  static LayerNorm init(std::int64_t size, Options opts = {}) { return init(Shape{size}, opts); }

  /// One example of exactly the layer's shape; returns the same shape and dtype.
  Array operator()(const Array& x) const {
    detail::check_norm_input("LayerNorm", x, *shape);
    const DType t = detail::norm_compute_dtype(x.dtype());
    Array out = detail::norm_standardise(astype(x, t), {}, *eps);
    if (*use_weight) out = astype(weight, t) * out;
    if (*use_bias) out = out + astype(bias, t);
    return astype(out, x.dtype());
  }

  /// The BatchNorm-compatible form: returns {y, state}, state unchanged.
  /// Usage: `auto [y, state2] = ln(x, state);`
  template <class State>
    requires(!std::same_as<State, Array>)  // an Array second argument is a key (nn::Sequential passes one)
  std::pair<Array, State> operator()(const Array& x, State state) const {
    return {(*this)(x), std::move(state)};
  }
};

// --- GroupNorm -----------------------------------------------------------

/// GroupNorm's keyword arguments.
struct GroupNormOptions {
  double eps = 1e-5;
  bool channelwise_affine = true;
  DType dtype = float32;
};

/// Splits the channels (axis 0) into groups, normalises each group, then
/// applies a per-channel affine map (eqx.nn.GroupNorm).
struct GroupNorm {
  Static<std::int64_t> groups;
  Static<std::int64_t> channels;
  Static<double> eps;
  Static<bool> channelwise_affine;
  Array weight;  ///< ones[C]; empty when channelwise_affine is false
  Array bias;    ///< zeros[C]; empty when channelwise_affine is false

  using Options = GroupNormOptions;

  /// A GroupNorm of `channels` channels in `groups` groups (groups must
  /// divide channels). Unlike Equinox, `channels` is always given.
  /// Usage: `auto gn = eqx::nn::GroupNorm::init(2, 8);   // x: f32[8, H, W]`
  static GroupNorm init(std::int64_t groups, std::int64_t channels, Options opts = {}) {
    eqx::nn::detail::check_param_dtype(opts.dtype, "GroupNorm");
    if (groups <= 0 || channels < 0 || channels % groups != 0)
      throw ValueError("eqx::nn::GroupNorm: expected a positive number of groups dividing the number of channels but "
                       "got groups=" + std::to_string(groups) + ", channels=" + std::to_string(channels) +
                       "; choose groups that divide channels");
    const bool affine = opts.channelwise_affine;
    return {{groups}, {channels}, {opts.eps}, {affine}, detail::norm_affine_param(affine, {channels}, 1, opts.dtype),
            detail::norm_affine_param(affine, {channels}, 0, opts.dtype)};
  }

  /// One example x [C, ...]; returns the same shape and dtype.
  Array operator()(const Array& x) const {
    if (!x.has_value()) throw ValueError("eqx::nn::GroupNorm: the input is an empty Array (None)");
    if (x.ndim() == 0)
      throw ShapeError("eqx::nn::GroupNorm: expected the input to have shape [C, ...] with C = " +
                       std::to_string(*channels) + " but got a scalar []");
    eqx::nn::detail::check_dim("GroupNorm", x, 0, *channels, "channels");
    const DType t = detail::norm_compute_dtype(x.dtype());
    // [C, rest...] -> [G, C/G, rest...]: each group's statistics over its axes 1..n.
    Shape grouped{*groups, *channels / *groups};
    std::vector<std::int64_t> axes;
    for (std::size_t i = 1; i < x.ndim(); ++i) grouped.push_back(x.shape()[i]);
    for (std::size_t i = 1; i < grouped.size(); ++i) axes.push_back(static_cast<std::int64_t>(i));
    Array out = reshape(detail::norm_standardise(reshape(astype(x, t), grouped), axes, *eps), x.shape());
    if (*channelwise_affine) {
      Shape per_channel = Shape::filled(x.ndim(), 1);
      per_channel[0] = *channels;  // [C, 1, ..., 1]: broadcast over the spatial axes
      out = astype(reshape(weight, per_channel), t) * out + astype(reshape(bias, per_channel), t);
    }
    return astype(out, x.dtype());
  }

  /// The BatchNorm-compatible form: returns {y, state}, state unchanged.
  template <class State>
    requires(!std::same_as<State, Array>)  // an Array second argument is a key (nn::Sequential passes one)
  std::pair<Array, State> operator()(const Array& x, State state) const {
    return {(*this)(x), std::move(state)};
  }
};

// --- RMSNorm -------------------------------------------------------------

/// RMSNorm's keyword arguments.
struct RMSNormOptions {
  double eps = 1e-5;
  bool use_weight = true;
  bool use_bias = true;
  DType dtype = float32;
};

/// Rescales the example by its root mean square (no centring), then applies
/// an elementwise affine map (eqx.nn.RMSNorm).
struct RMSNorm {
  Static<Shape> shape;
  Static<double> eps;
  Static<bool> use_weight;
  Static<bool> use_bias;
  Array weight;  ///< ones(shape); empty when use_weight is false
  Array bias;    ///< zeros(shape); empty when use_bias is false

  using Options = RMSNormOptions;

  /// An RMSNorm for inputs of exactly `shape` (one int or braces).
  /// Usage: `auto rms = eqx::nn::RMSNorm::init(64, {.use_bias = false});`
  static RMSNorm init(Shape shape, Options opts = {}) {
    eqx::nn::detail::check_param_dtype(opts.dtype, "RMSNorm");
    return {{shape}, {opts.eps}, {opts.use_weight}, {opts.use_bias},
            detail::norm_affine_param(opts.use_weight, shape, 1, opts.dtype),
            detail::norm_affine_param(opts.use_bias, shape, 0, opts.dtype)};
  }
  /// Usage: `auto rms = eqx::nn::RMSNorm::init(64);`
  static RMSNorm init(std::int64_t size, Options opts = {}) { return init(Shape{size}, opts); }

  /// One example of exactly the layer's shape; returns the same shape and dtype.
  Array operator()(const Array& x) const {
    detail::check_norm_input("RMSNorm", x, *shape);
    const DType t = detail::norm_compute_dtype(x.dtype());
    const Array xf = astype(x, t);
    Array out = xf * rsqrt(mean(xf * xf) + *eps);
    if (*use_weight) out = astype(weight, t) * out;
    if (*use_bias) out = out + astype(bias, t);
    return astype(out, x.dtype());
  }

  /// The BatchNorm-compatible form: returns {y, state}, state unchanged.
  template <class State>
    requires(!std::same_as<State, Array>)  // an Array second argument is a key (nn::Sequential passes one)
  std::pair<Array, State> operator()(const Array& x, State state) const {
    return {(*this)(x), std::move(state)};
  }
};

// --- WeightNorm ----------------------------------------------------------

namespace detail {

/// The layer's Array field WeightNorm reparameterises: a pointer to member,
/// with the field's name (printed as Equinox prints `weight_name`).
template <class Layer>
struct WeightNormField {
  Array Layer::*member = nullptr;
  std::string name;
  friend bool operator==(const WeightNormField&, const WeightNormField&) = default;
};

/// WeightNorm's `axis`: the one axis the norm is not taken over, or none
/// (Equinox's None: the norm over every axis).
struct WeightNormAxis {
  std::optional<std::int64_t> value;
  friend bool operator==(const WeightNormAxis&, const WeightNormAxis&) = default;
};

template <class Layer>
concept has_weight_field = requires { requires std::is_same_v<decltype(Layer::weight), Array>; };

/// `&Layer::weight`, the default weight; a compile error naming the fix when
/// the layer has no Array field called `weight`.
template <class Layer>
constexpr Array Layer::*default_weight_field() {
  if constexpr (has_weight_field<Layer>) {
    return &Layer::weight;
  } else {
    static_assert(has_weight_field<Layer>,
                  "eqx::nn::WeightNorm: the layer has no Array field `weight`; name the field to normalise with "
                  "{.weight = &MyLayer::field}");
    return nullptr;
  }
}

/// The name of the field `member` points to, read from the leaf path of a
/// copy of `layer` whose only non-empty Array is that field.
template <class Layer>
std::string weight_field_name(const Layer& layer, Array Layer::*member) {
  Layer probe = tree_map([](const Array&) { return Array{}; }, layer);
  probe.*member = zeros({});
  auto leaves = tree_leaves_with_path(probe);
  std::string path = leaves.size() == 1 ? leaves[0].first.str() : std::string();
  return path.size() > 1 && path[0] == '.' ? path.substr(1) : path;
}

/// ||v|| over every axis except `axis` (every axis when none), dims kept.
inline Array weight_norm_of(const Array& v, const WeightNormAxis& axis) {
  if (!axis.value) return sqrt(sum(v * v, {}, true));
  const auto keep = *axis.value < 0 ? *axis.value + static_cast<std::int64_t>(v.ndim()) : *axis.value;
  std::vector<std::int64_t> axes;
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(v.ndim()); ++i)
    if (i != keep) axes.push_back(i);
  return sqrt(sum(v * v, axes, true));
}

}  // namespace detail

/// WeightNorm's keyword arguments: which Array field of the layer (default
/// `&Layer::weight`) and the axis kept out of the norm (std::nullopt: none).
template <class Layer>
struct WeightNormOptions {
  Array Layer::*weight = detail::default_weight_field<Layer>();
  std::optional<std::int64_t> axis = 0;
};

/// A layer whose weight is g * v / ||v|| (eqx.nn.WeightNorm): the layer's
/// own weight field holds the direction v, `g` the magnitude, initialised
/// to ||v|| so the wrapped layer starts out computing what it did.
template <class Layer>
struct WeightNorm {
  Layer layer;                                         ///< the wrapped layer; its weight field is v
  Array g;                                             ///< ||v|| over every axis but `axis`, dims kept
  Static<detail::WeightNormField<Layer>> weight_name;  ///< the reparameterised field
  Static<detail::WeightNormAxis> axis;                 ///< the axis kept out of the norm (or none)

  using Options = WeightNormOptions<Layer>;

  /// Wraps `layer`, normalising its `weight` field over every axis except 0.
  /// Usage: `auto wn = eqx::nn::WeightNorm<eqx::nn::Linear>::init(linear);`
  ///        `auto wn = eqx::nn::WeightNorm<MyConv>::init(conv, {.weight = &MyConv::kernel, .axis = std::nullopt});`
  static WeightNorm init(Layer layer, Options opts = {}) {
    if (opts.weight == nullptr)
      throw ValueError("eqx::nn::WeightNorm: expected a pointer to the layer's weight field but got nullptr; pass "
                       "{.weight = &Layer::field}");
    const Array& v = layer.*opts.weight;
    if (!v.has_value())
      throw ValueError("eqx::nn::WeightNorm: expected the weight field to hold an Array but it is empty (None)");
    if (!is_floating(v.dtype()))
      throw DTypeError("eqx::nn::WeightNorm: expected a float32 or float64 weight but got " +
                       std::string(dtype_name(v.dtype())));
    const auto rank = static_cast<std::int64_t>(v.ndim());
    if (opts.axis && (*opts.axis < -rank || *opts.axis >= rank))
      throw ValueError("eqx::nn::WeightNorm: expected an axis in [" + std::to_string(-rank) + ", " +
                       std::to_string(rank) + ") for the weight " + v.shape().str() + " but got " +
                       std::to_string(*opts.axis) + "; give an axis of the weight, or std::nullopt for the whole norm");
    detail::WeightNormAxis axis{opts.axis};
    Array g = detail::weight_norm_of(v, axis);
    std::string name = detail::weight_field_name(layer, opts.weight);
    return {std::move(layer), std::move(g), {{opts.weight, std::move(name)}}, {axis}};
  }

  /// Runs the layer with its weight replaced by g * v / ||v||; takes the
  /// layer's own arguments. Usage: `eqx::Array y = wn(x);`
  template <class... Args>
  decltype(auto) operator()(Args&&... args) const {
    Array Layer::*m = weight_name->member;
    const Array& v = layer.*m;
    const Array weight = v * g / detail::weight_norm_of(v, *axis);
    const Layer normalised = tree_at([m](Layer& l) -> Array& { return l.*m; }, layer, weight);
    return normalised(std::forward<Args>(args)...);
  }
};

/// WeightNorm<Layer>::init with the layer type deduced.
/// Usage: `auto wn = eqx::nn::weight_norm(eqx::nn::Linear::init(3, 2, key));`
template <class Layer>
WeightNorm<Layer> weight_norm(Layer layer, WeightNormOptions<Layer> opts = {}) {
  return WeightNorm<Layer>::init(std::move(layer), opts);
}

}  // namespace eqx::nn

/// Prints WeightNorm's weight field as Equinox prints `weight_name`: 'weight'.
template <class Layer>
struct fmt::formatter<eqx::nn::detail::WeightNormField<Layer>> : fmt::formatter<std::string_view> {
  auto format(const eqx::nn::detail::WeightNormField<Layer>& f, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format("'" + std::string(f.name) + "'", ctx);
  }
};

/// Prints WeightNorm's axis as Equinox does: `0`, or `None`.
template <>
struct fmt::formatter<eqx::nn::detail::WeightNormAxis> : fmt::formatter<std::string_view> {
  auto format(const eqx::nn::detail::WeightNormAxis& a, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(a.value ? std::to_string(*a.value) : std::string("None"), ctx);
  }
};
