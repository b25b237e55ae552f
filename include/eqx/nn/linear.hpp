#pragma once
// nn::Linear and nn::Identity (Equinox's eqx.nn.Linear / eqx.nn.Identity).
//
// Linear computes `weight @ x + bias` on one example, with `weight` stored
// [out, in] as in Equinox (and PyTorch), so a Linear's leaves are the same,
// in the same order, as Equinox's and its .eqx file loads unchanged. Both
// parameters start uniform in [-1/sqrt(in), 1/sqrt(in)), Equinox's default.
//
//   auto layer = eqx::nn::Linear::init(784, 128, key);
//   eqx::Array y = layer(x);                          // x: f32[784] -> f32[128]
//   eqx::Array ys = eqx::filter_vmap(layer)(xs);      // xs: f32[B, 784]

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "eqx/core/array.hpp"
#include "eqx/nn/common.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/linalg.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/random.hpp"
#include "eqx/tree/node.hpp"

namespace eqx::nn {

/// A Linear's input or output size: a number, or `nn::scalar` for a rank-0
/// Array (Equinox's "scalar"), which counts as size 1.
/// Usage: `nn::Linear::init(nn::scalar, 4, key)` maps f32[] -> f32[4]
class Features {
 public:
  struct ScalarTag {};
  /// Size 0. (Every type stored in a layer is default-constructible: Boost.PFR
  /// counts the fields of a struct holding a type that is not by a much
  /// slower search, which cost gigabytes of compiler memory per model type.)
  Features() = default;
  Features(std::int64_t n) : size_(n) {  // NOLINT: a size is written as a plain int
    if (n < 0) throw ValueError("eqx::nn::Linear: a feature size must be >= 0 (or nn::scalar), got " + std::to_string(n));
  }
  Features(int n) : Features(static_cast<std::int64_t>(n)) {}  // NOLINT
  Features(ScalarTag) : size_(1), scalar_(true) {}              // NOLINT
  /// The number of elements: 1 for nn::scalar.
  std::int64_t size() const { return size_; }
  bool is_scalar() const { return scalar_; }
  /// The per-example shape: [] for nn::scalar, [n] otherwise.
  Shape shape() const { return scalar_ ? Shape{} : Shape{size_}; }
  friend bool operator==(const Features&, const Features&) = default;

 private:
  std::int64_t size_ = 0;
  bool scalar_ = false;
};

/// The `in`/`out` size meaning a rank-0 Array (Equinox's "scalar").
inline constexpr Features::ScalarTag scalar{};

/// Linear's keyword arguments.
struct LinearOptions {
  bool use_bias = true;
  DType dtype = float32;
};

/// y = weight @ x + bias (eqx.nn.Linear).
struct Linear {
  Array weight;  ///< [out, in]
  Array bias;    ///< [out]; empty when use_bias is false
  Static<Features> in_features;
  Static<Features> out_features;
  Static<bool> use_bias;

  using Options = LinearOptions;

  /// A Linear from `in` to `out` features, weight and bias uniform in
  /// [-1/sqrt(in), 1/sqrt(in)) (1 when in is 0), drawn from two keys split
  /// from `key` as Equinox does.
  /// Usage: `auto layer = eqx::nn::Linear::init(3, 2, key, {.use_bias = false});`
  static Linear init(Features in, Features out, const random::Key& key, Options opts = {}) {
    detail::check_param_dtype(opts.dtype, "Linear");
    const double lim = in.size() == 0 ? 1.0 : 1.0 / std::sqrt(static_cast<double>(in.size()));
    auto keys = random::split_keys(key, 2);
    Linear layer{detail::default_init(keys[0], {out.size(), in.size()}, opts.dtype, lim), Array{}, {in}, {out},
                 {opts.use_bias}};
    if (opts.use_bias) layer.bias = detail::default_init(keys[1], {out.size()}, opts.dtype, lim);
    return layer;
  }

  /// One example: x has shape [in] (or [] for nn::scalar); returns [out].
  Array operator()(const Array& x) const {
    detail::check_shape("Linear", x, in_features->shape());
    Array y = matmul(weight, in_features->is_scalar() ? reshape(x, {1}) : x);
    if (bias.has_value()) y = y + bias;
    return out_features->is_scalar() ? reshape(y, Shape{}) : y;
  }
};

/// The identity layer (eqx.nn.Identity): returns its input.
/// Usage: `eqx::nn::Identity{}(x)`
struct Identity {
  Array operator()(const Array& x) const { return x; }
};

}  // namespace eqx::nn

/// Prints a size as Equinox does: `3`, or `'scalar'`.
template <>
struct fmt::formatter<eqx::nn::Features> : fmt::formatter<std::string_view> {
  auto format(const eqx::nn::Features& f, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(f.is_scalar() ? std::string("'scalar'") : std::to_string(f.size()), ctx);
  }
};
