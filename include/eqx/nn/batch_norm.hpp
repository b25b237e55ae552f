#pragma once
// nn::BatchNorm (eqx.nn.BatchNorm): normalise each channel by statistics
// over the batch, with running statistics kept in a State.
//
// Like every layer it sees one example [C, ...]; the batch statistics come
// from eqx::pmean over the vmap axis named `axis_name`, so it must run
// inside `filter_vmap(..., axis_name)`, exactly as Equinox's must run
// inside `jax.vmap(..., axis_name=...)`:
//
//   auto [bn, state] = eqx::nn::make_with_state(make_bn)();   // make_bn: BatchNorm::init(3, "batch")
//   auto [ys, state2] = eqx::filter_vmap(bn, eqx::in_axes(0, eqx::none), eqx::out_axes(0, eqx::none),
//                                        std::nullopt, "batch")(xs, state);
//
// Two modes, as Equinox's: "ema" (Equinox's default, "legacy"): training
// normalises by (1 - m) * batch + m * running statistics (the batch's alone
// on the first call) and stores them; inference uses the stored ones.
// "batch": training normalises by the batch statistics and keeps a
// zero-initialised exponential moving average with a step counter;
// inference uses the average debiased by 1 - m^counter. The variance is
// the biased one over the batch and the spatial axes.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/nn/common.hpp"
#include "eqx/nn/stateful.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/transform/collectives.hpp"
#include "eqx/tree/node.hpp"

namespace eqx::nn {

/// BatchNorm's keyword arguments (`.mode` after `.dtype`).
struct BatchNormOptions {
  double eps = 1e-5;
  bool channelwise_affine = true;
  double momentum = 0.99;
  bool inference = false;
  DType dtype = float32;
  std::string mode = "ema";
};

/// Batch normalisation over the named vmap axis (eqx.nn.BatchNorm).
struct BatchNorm {
  Array weight;  ///< [C], ones; empty without channelwise_affine
  Array bias;    ///< [C], zeros; empty without channelwise_affine
  std::optional<StateIndex<Array>> ema_first_time_index;                    ///< "ema": bool[]
  std::optional<StateIndex<std::pair<Array, Array>>> ema_state_index;       ///< "ema": running (mean, var)
  std::optional<StateIndex<Array>> batch_counter;                           ///< "batch": int32[]
  std::optional<StateIndex<std::pair<Array, Array>>> batch_state_index;     ///< "batch": averaged (mean, var)
  std::string axis_name;
  bool inference;
  Static<std::int64_t> input_size;
  Static<double> eps;
  Static<bool> channelwise_affine;
  Static<double> momentum;
  Static<std::string> mode;

  using Options = BatchNormOptions;

  /// A BatchNorm over `input_size` channels, averaging over the vmap axis
  /// `axis_name`. Build it with make_with_state, which returns its State.
  /// Usage: `auto [bn, state] = eqx::nn::make_with_state([] { return eqx::nn::BatchNorm::init(3, "batch"); })();`
  static BatchNorm init(std::int64_t input_size, std::string axis_name, Options opts = {}) {
    detail::check_param_dtype(opts.dtype, "BatchNorm");
    if (opts.mode == "legacy") opts.mode = "ema";
    if (opts.mode != "ema" && opts.mode != "batch")
      throw ValueError("eqx::nn::BatchNorm: mode must be \"ema\" or \"batch\", got \"" + opts.mode + "\"");
    if (input_size <= 0)
      throw ValueError("eqx::nn::BatchNorm: input_size must be positive, got " + std::to_string(input_size));
    BatchNorm bn{{}, {}, {}, {}, {}, {}, std::move(axis_name), opts.inference, {input_size}, {opts.eps},
                 {opts.channelwise_affine}, {opts.momentum}, {opts.mode}};
    const Shape c{input_size};
    if (opts.channelwise_affine) {
      bn.weight = ones(c, opts.dtype);
      bn.bias = zeros(c, opts.dtype);
    }
    if (opts.mode == "ema") {
      bn.ema_first_time_index = state_index(array(true));
      bn.ema_state_index = state_index(std::pair{zeros(c, opts.dtype), zeros(c, opts.dtype)});
    } else {
      bn.batch_counter = state_index(array(std::int32_t{0}));
      bn.batch_state_index = state_index(std::pair{zeros(c, opts.dtype), ones(c, opts.dtype)});
    }
    return bn;
  }

  /// Normalises one example x [C, ...] and returns it with the new state.
  /// `inference` overrides the field for this call.
  /// Usage: `auto [y, state2] = bn(x, state);` (inside filter_vmap with axis_name)
  std::pair<Array, State> operator()(const Array& x, const State& state) const { return apply(x, state, inference); }
  std::pair<Array, State> operator()(const Array& x, const State& state, bool inference_now) const {
    return apply(x, state, inference_now);
  }

 private:
  std::pair<Array, State> apply(const Array& x, State state, bool infer) const {
    if (!x.has_value() || x.ndim() < 1)
      throw ShapeError("eqx::nn::BatchNorm: expected one example [C, ...] with C = " + std::to_string(*input_size) +
                       " but got " + (x.has_value() ? x.shape().str() : std::string("None")));
    detail::check_dim("BatchNorm", x, 0, *input_size, "channels");
    Array mean, var;
    if (*mode == "ema") {
      if (infer) {
        std::tie(mean, var) = state.get(*ema_state_index);
      } else {
        Array first_time = state.get(*ema_first_time_index);
        state = state.set(*ema_first_time_index, array(false));
        auto [batch_mean, batch_var] = batch_stats(x);
        auto [running_mean, running_var] = state.get(*ema_state_index);
        const double m = *momentum;
        mean = where(first_time, batch_mean, (1 - m) * batch_mean + m * running_mean);
        var = where(first_time, batch_var, (1 - m) * batch_var + m * running_var);
        state = state.set(*ema_state_index, std::pair{mean, var});
      }
    } else {
      Array counter = state.get(*batch_counter);
      auto [hidden_mean, hidden_var] = state.get(*batch_state_index);
      if (infer) {
        Array scale = where(counter == 0, 1, 1 - pow(*momentum, astype(counter, hidden_mean.dtype())));
        mean = hidden_mean / scale;
        var = hidden_var / scale;
      } else {
        std::tie(mean, var) = batch_stats(x);
        state = state.set(*batch_counter, counter + 1);
        const double m = *momentum;
        state = state.set(*batch_state_index, std::pair{hidden_mean * m + mean * (1 - m), hidden_var * m + var * (1 - m)});
      }
    }
    const Shape per_channel = channel_shape(x);
    Array out = (x - reshape(mean, per_channel)) / sqrt(reshape(var, per_channel) + *eps);
    if (*channelwise_affine) out = out * reshape(weight, per_channel) + reshape(bias, per_channel);
    return {out, state};
  }

  /// [C, 1, ..., 1]: a per-channel value broadcast over x's other axes.
  static Shape channel_shape(const Array& x) {
    Shape s = Shape::filled(x.ndim(), 1);
    s[0] = x.shape()[0];
    return s;
  }

  /// Per channel: the mean over the batch and x's other axes, and the
  /// (biased) variance around it, both through pmean over axis_name.
  std::pair<Array, Array> batch_stats(const Array& x) const {
    std::vector<std::int64_t> spatial;
    for (std::size_t i = 1; i < x.ndim(); ++i) spatial.push_back(static_cast<std::int64_t>(i));
    const Axes axes(spatial);
    Array mean = pmean(spatial.empty() ? x : eqx::mean(x, axes), axis_name);
    Array centred = x - reshape(mean, channel_shape(x));
    Array sq = centred * centred;
    Array var = maximum(pmean(spatial.empty() ? sq : eqx::mean(sq, axes), axis_name), 0);
    return {mean, var};
  }
};

}  // namespace eqx::nn
