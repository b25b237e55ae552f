#pragma once
// nn::SpectralNorm (eqx.nn.SpectralNorm): run a layer with one of its
// weights divided by (an estimate of) its largest singular value.
//
// sigma(W) = u^T W v, where u and v come from power iterations on W
// reshaped to [out, -1]. They are state: started from normal samples and 15
// iterations at init, advanced `num_power_iterations` steps on every
// training call (on stop_gradient(W), so no gradient flows through them),
// and fixed in inference mode. The weight is found by its field name, as
// Equinox's getattr, through reflection.
//
//   auto [model, state] = eqx::nn::make_with_state([](auto key) {
//     auto keys = eqx::random::split_keys(key, 2);
//     return eqx::nn::SpectralNorm<eqx::nn::Linear>::init(eqx::nn::Linear::init(4, 3, keys[0]), "weight", keys[1]);
//   })(key);
//   auto [y, state2] = model(x, state);

#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include <boost/pfr/core.hpp>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/nn/stateful.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/linalg.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/random.hpp"
#include "eqx/transform/stop_gradient.hpp"
#include "eqx/tree/node.hpp"
#include "eqx/tree/reflect.hpp"

namespace eqx::nn {

namespace detail {

/// The Array field of `layer` called `name` (Equinox's getattr), or an
/// error naming the layer's Array fields. `Owner` names the caller.
template <class Layer>
Array& field_named(Layer& layer, const std::string& name, std::string_view owner) {
  Array* found = nullptr;
  std::string fields;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          if constexpr (std::is_same_v<std::remove_cvref_t<decltype(boost::pfr::get<I>(layer))>, Array>) {
            constexpr std::string_view field = eqx::detail::field_name<Layer, I>;
            fields += (fields.empty() ? "" : ", ") + std::string(field);
            if (field == name) found = &boost::pfr::get<I>(layer);
          }
        }(),
        ...);
  }(std::make_index_sequence<eqx::detail::field_count<Layer>>{});
  if (!found)
    throw ValueError("eqx::nn::" + std::string(owner) + ": " + std::string(eqx::detail::type_name<Layer>()) +
                     " has no Array field named '" + name + "'; its Array fields are: " + fields);
  return *found;
}

/// One power iteration (Equinox's _power_iteration): u <- W v / |W v|,
/// v <- W^T u / |W^T u|. (The previous u is not needed: the new one comes from v.)
inline std::pair<Array, Array> power_iteration(const Array& w, const Array& v, double eps) {
  Array u2 = matmul(w, v);
  u2 = u2 / maximum(sqrt(sum(u2 * u2)), eps);
  Array v2 = matmul(transpose(w), u2);
  v2 = v2 / maximum(sqrt(sum(v2 * v2)), eps);
  return {u2, v2};
}

/// W as the matrix [out, -1] that sigma is computed for.
inline Array as_matrix(const Array& w) { return reshape(w, {w.shape()[0], -1}); }

}  // namespace detail

/// SpectralNorm's keyword arguments.
struct SpectralNormOptions {
  std::int64_t num_power_iterations = 1;
  double eps = 1e-12;
  bool inference = false;
};

/// A layer whose weight `weight_name` is divided by its spectral norm (eqx.nn.SpectralNorm).
template <class Layer>
struct SpectralNorm {
  Layer layer;
  Static<std::string> weight_name;
  StateIndex<std::pair<Array, Array>> uv_index;  ///< (u [out], v [prod of the other axes])
  Static<std::int64_t> num_power_iterations;
  Static<double> eps;
  bool inference;

  using Options = SpectralNormOptions;

  /// Wraps `layer`, normalising its Array field `weight_name` (at least
  /// 2-D); u and v start normal (from `key`) after 15 power iterations.
  /// Usage: `eqx::nn::SpectralNorm<eqx::nn::Linear>::init(linear, "weight", key)`
  static SpectralNorm init(Layer layer, std::string weight_name, const random::Key& key, Options opts = {}) {
    Array w = detail::field_named(layer, weight_name, "SpectralNorm");
    if (!w.has_value() || w.ndim() < 2)
      throw ShapeError("eqx::nn::SpectralNorm: the weight '" + weight_name + "' must have at least 2 axes, got " +
                       (w.has_value() ? w.shape().str() : std::string("None")));
    w = detail::as_matrix(w);
    auto keys = random::split_keys(key, 2);
    Array u = random::normal(keys[0], {w.shape()[0]}, w.dtype());
    Array v = random::normal(keys[1], {w.shape()[1]}, w.dtype());
    for (int i = 0; i < 15; ++i) std::tie(u, v) = detail::power_iteration(w, v, opts.eps);
    return {std::move(layer), {std::move(weight_name)}, state_index(std::pair{u, v}), {opts.num_power_iterations},
            {opts.eps}, opts.inference};
  }

  /// Runs the layer on x with the normalised weight; returns its output
  /// and the new state (u, v advanced unless in inference mode).
  /// Usage: `auto [y, state2] = sn(x, state);`
  std::pair<Array, State> operator()(const Array& x, const State& state) const { return apply(x, state, inference); }
  std::pair<Array, State> operator()(const Array& x, const State& state, bool inference_now) const {
    return apply(x, state, inference_now);
  }

 private:
  std::pair<Array, State> apply(const Array& x, State state, bool infer) const {
    auto [u, v] = state.get(uv_index);
    Layer normalised = layer;
    Array& w = detail::field_named(normalised, *weight_name, "SpectralNorm");
    const Array matrix = detail::as_matrix(w);
    if (!infer) {
      const Array fixed = stop_gradient(matrix);
      for (std::int64_t i = 0; i < *num_power_iterations; ++i) std::tie(u, v) = detail::power_iteration(fixed, v, *eps);
      state = state.set(uv_index, std::pair{u, v});
    }
    const Array sigma = sum(u * matmul(matrix, v));
    w = reshape(matrix / sigma, w.shape());
    return {normalised(x), state};
  }
};

}  // namespace eqx::nn
