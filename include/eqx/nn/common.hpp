#pragma once
// What every eqx::nn layer shares: size arguments, Equinox's default
// initialisation, and the input checks whose messages name the layer.
//
// Layers are written against eqx's public API only, exactly as a user's own
// layer would be; this header holds the few pieces more than one layer needs.
//
// The layer convention (one rule for all of eqx::nn):
//   - a layer is a plain aggregate whose public fields are named and ordered
//     as Equinox's; Array fields are parameters (leaves); a field Equinox
//     marks static is an eqx::Static<T> (part of the jit key, never written
//     to a file), and a plain Python scalar Equinox keeps dynamic (Dropout's
//     `p` and `inference`) is a plain double/bool (a static leaf that
//     tree_serialise_leaves writes, as Equinox does);
//   - it is built by `Layer::init(positional args..., key, {options})`: the
//     key only for layers that draw random parameters, and the options as a
//     nested `Options` aggregate for Equinox's keyword arguments (written
//     with designated initialisers; `.dtype` is the last member);
//   - it acts on ONE example (`Linear` maps [in] -> [out]); batch with
//     eqx::filter_vmap;
//   - a field Equinox sets to None (a bias with use_bias = false) is an
//     empty Array.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/core/shape.hpp"
#include "eqx/random.hpp"

namespace eqx::nn {

/// A size given as one int for every spatial dimension, or one per
/// dimension in braces: `3` or `{3, 5}` (kernel sizes, strides, dilations).
/// Usage: `nn::Conv2d::init(1, 8, 3, key, {.stride = {2, 1}})`
class Sizes {
 public:
  Sizes(std::int64_t n) : values_{n}, broadcast_(true) {}  // NOLINT: an int is the common case
  Sizes(int n) : Sizes(static_cast<std::int64_t>(n)) {}     // NOLINT
  Sizes(std::initializer_list<std::int64_t> v) : values_(v) {}
  Sizes(std::vector<std::int64_t> v) : values_(std::move(v)) {}  // NOLINT

  /// One value per dimension: the int repeated, or the list, which must
  /// have `dims` entries. `layer` and `what` name the argument in the error.
  std::vector<std::int64_t> expand(std::size_t dims, std::string_view layer, std::string_view what) const {
    if (broadcast_) return std::vector<std::int64_t>(dims, values_[0]);
    if (values_.size() != dims)
      throw ValueError("eqx::nn::" + std::string(layer) + ": " + std::string(what) + " has " +
                       std::to_string(values_.size()) + " entries but the layer has " + std::to_string(dims) +
                       " spatial dimensions; give one int, or one per dimension");
    return values_;
  }

 private:
  std::vector<std::int64_t> values_;
  bool broadcast_ = false;
};

namespace detail {

/// Equinox's default initialisation: uniform in [-lim, lim).
inline Array default_init(const random::Key& key, const Shape& shape, DType dtype, double lim) {
  return random::uniform(key, shape, dtype, -lim, lim);
}

/// Throws unless `dtype` is float32 or float64 (a layer's parameter dtype).
inline void check_param_dtype(DType dtype, std::string_view layer) {
  if (dtype != float32 && dtype != float64)
    throw DTypeError("eqx::nn::" + std::string(layer) + ": dtype " + std::string(dtype_name(dtype)) +
                     " is not a floating dtype; parameters are float32 (the default) or float64");
}

/// The fix for a wrong rank that is one more than expected: the caller
/// passed a batch.
inline std::string batch_hint(std::size_t got_rank, std::size_t want_rank) {
  if (got_rank == want_rank + 1)
    return "; layers act on one example: call it on one example and batch with eqx::filter_vmap(layer)(xs)";
  return "";
}

/// Throws unless x has exactly `want` as its shape.
inline void check_shape(std::string_view layer, const Array& x, const Shape& want, std::string_view what = "input") {
  if (!x.has_value())
    throw ValueError("eqx::nn::" + std::string(layer) + ": the " + std::string(what) + " is an empty Array (None)");
  if (x.shape() != want)
    throw ShapeError("eqx::nn::" + std::string(layer) + ": expected the " + std::string(what) + " to have shape " +
                     want.str() + " but got " + x.shape().str() + batch_hint(x.ndim(), want.size()));
}

/// Throws unless x has rank `rank`; `layout` describes the expected axes,
/// e.g. "[C_in, H, W]".
inline void check_rank(std::string_view layer, const Array& x, std::size_t rank, std::string_view layout,
                       std::string_view what = "input") {
  if (!x.has_value())
    throw ValueError("eqx::nn::" + std::string(layer) + ": the " + std::string(what) + " is an empty Array (None)");
  if (x.ndim() != rank)
    throw ShapeError("eqx::nn::" + std::string(layer) + ": expected the " + std::string(what) + " to have rank " +
                     std::to_string(rank) + " " + std::string(layout) + " but got shape " + x.shape().str() +
                     batch_hint(x.ndim(), rank));
}

/// Throws unless axis `axis` of x has size `want`.
inline void check_dim(std::string_view layer, const Array& x, std::size_t axis, std::int64_t want,
                      std::string_view axis_name, std::string_view what = "input") {
  if (x.shape()[axis] != want)
    throw ShapeError("eqx::nn::" + std::string(layer) + ": expected the " + std::string(what) + " to have " +
                     std::to_string(want) + " " + std::string(axis_name) + " (axis " + std::to_string(axis) +
                     ") but got shape " + x.shape().str());
}

}  // namespace detail
}  // namespace eqx::nn
