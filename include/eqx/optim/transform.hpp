#pragma once
// Optax's building blocks: gradient transformations that each do one thing
// (scale by Adam's moments, add weight decay, clip, accumulate momentum...),
// composed into optimisers with optim::chain.
//
//   auto tx = eqx::optim::chain(eqx::optim::clip_by_global_norm(1.0),
//                               eqx::optim::scale_by_adam(),
//                               eqx::optim::scale_by_learning_rate(1e-3));
//
// Each is a value type with `init(params)` and `update(updates, state
// [, params])` (optim/base.hpp). The formulas and defaults are Optax's
// (optax/_src/transform.py, optax/transforms/); where C++ needs one state
// type for what Optax decides at run time (a constant or scheduled rate, a
// centered RMS), the state has Optax's fields and the unused ones are None.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "eqx/core/array.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/optim/base.hpp"
#include "eqx/random.hpp"
#include "eqx/tree/map.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx::optim {

// --- chain ------------------------------------------------------------------------

/// Transformations applied one after another (optax.chain); the state is
/// the tuple of their states.
template <class... Ts>
struct Chain {
  std::tuple<Ts...> transforms;

  template <class P>
  auto init(const P& params) const {
    // Explicit element types: CTAD would unwrap a single nested chain's tuple state.
    return std::apply(
        [&](const auto&... t) { return std::tuple<decltype(t.init(params))...>{t.init(params)...}; }, transforms);
  }
  template <class P, class... S, class Q = NoParams>
  std::pair<P, std::tuple<S...>> update(const P& updates, const std::tuple<S...>& state, const Q& params = {}) const {
    static_assert(sizeof...(S) == sizeof...(Ts), "eqx::optim::chain: the state is not this chain's state");
    detail::check_params_type<P, Q>();
    return step<0>(updates, state, params);
  }

 private:
  template <std::size_t I, class P, class St, class Q>
  auto step(const P& updates, const St& state, const Q& params) const {
    if constexpr (I == sizeof...(Ts)) {
      return std::pair<P, std::tuple<>>{updates, {}};
    } else {
      auto [u, s] = std::get<I>(transforms).update(updates, std::get<I>(state), params);
      auto [u_rest, s_rest] = step<I + 1>(u, state, params);
      // An explicit element type: CTAD would unwrap a nested chain's tuple state.
      using S = std::decay_t<decltype(s)>;
      return std::pair{std::move(u_rest), std::tuple_cat(std::tuple<S>{std::move(s)}, std::move(s_rest))};
    }
  }
};

/// Applies `ts` in order (optax.chain). Usage: `auto tx = eqx::optim::chain(eqx::optim::clip(1.0), eqx::optim::sgd(0.1));`
template <class... Ts>
Chain<std::decay_t<Ts>...> chain(Ts&&... ts) {
  return {std::tuple<std::decay_t<Ts>...>(std::forward<Ts>(ts)...)};
}

// --- scaling ----------------------------------------------------------------------

/// Multiplies updates by a constant (optax.scale).
struct Scale {
  double step_size;
  template <class P>
  EmptyState init(const P&) const {
    return {};
  }
  template <class P, class Q = NoParams>
  std::pair<P, EmptyState> update(const P& updates, const EmptyState& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    auto [u] = detail::map_leaves<1>(
        "eqx::optim::scale", [&](const TreePath&, const Array& g) { return std::array{g * step_size}; }, updates);
    return {u, state};
  }
};
/// Usage: `eqx::optim::scale(-0.1)`
inline Scale scale(double step_size) { return {step_size}; }

/// The state of a transformation with a step count (optax.ScaleByScheduleState).
struct ScaleByScheduleState {
  Array count;  ///< int32 scalar; None when nothing is scheduled
};

/// Multiplies updates by schedule(count) (optax.scale_by_schedule).
struct ScaleBySchedule {
  Schedule step_size_fn;
  double multiplier = 1.0;
  template <class P>
  ScaleByScheduleState init(const P&) const {
    return {detail::zero_count()};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByScheduleState> update(const P& updates, const ScaleByScheduleState& state,
                                            const Q& = {}) const {
    detail::check_params_type<P, Q>();
    detail::PerDType s([&](DType d) { return step_size_fn(state.count, d) * multiplier; });
    auto [u] = detail::map_leaves<1>(
        "eqx::optim::scale_by_schedule",
        [&](const TreePath&, const Array& g) { return std::array{s.get(g.dtype()) * g}; }, updates);
    return {u, {detail::safe_increment(state.count)}};
  }
};
/// Usage: `eqx::optim::scale_by_schedule(eqx::optim::exponential_decay(1.0, 100, 0.5))`
inline ScaleBySchedule scale_by_schedule(Schedule step_size_fn) { return {std::move(step_size_fn)}; }

/// Multiplies updates by -learning_rate (or +learning_rate without
/// flip_sign); a scheduled rate keeps a step count, a constant one keeps
/// None there (optax.scale_by_learning_rate).
struct ScaleByLearningRate {
  ScalarOrSchedule learning_rate;
  bool flip_sign = true;
  template <class P>
  ScaleByScheduleState init(const P&) const {
    return {learning_rate.is_schedule() ? detail::zero_count() : Array{}};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByScheduleState> update(const P& updates, const ScaleByScheduleState& state,
                                            const Q& = {}) const {
    detail::check_params_type<P, Q>();
    const double m = flip_sign ? -1.0 : 1.0;
    if (learning_rate.is_schedule() && !state.count.has_value())
      throw ValueError("eqx::optim::scale_by_learning_rate: the learning rate is a schedule but the state has no "
                       "step count; the state comes from an optimiser with a constant learning rate");
    detail::PerDType lr([&](DType d) { return learning_rate.at(state.count, d) * m; });
    if (learning_rate.is_schedule()) lr.prime(updates);  // before the leaves, for fusion (see PerDType::prime)
    const double c = m * learning_rate.value();
    auto [u] = detail::map_leaves<1>(
        "eqx::optim::scale_by_learning_rate",
        [&](const TreePath&, const Array& g) {
          return std::array{learning_rate.is_schedule() ? lr.get(g.dtype()) * g : g * c};
        },
        updates);
    return {u, {state.count.has_value() ? detail::safe_increment(state.count) : Array{}}};
  }
};
/// Usage: `eqx::optim::scale_by_learning_rate(1e-3)`
inline ScaleByLearningRate scale_by_learning_rate(ScalarOrSchedule learning_rate, bool flip_sign = true) {
  return {std::move(learning_rate), flip_sign};
}

namespace detail {

/// 1 - decay^count in dtype d (the bias correction's denominator).
inline Array bias_denominator(double decay, const Array& count, DType d) {
  return 1.0 - pow(decay, astype(count, d));
}

}  // namespace detail

// --- Adam and friends ---------------------------------------------------------------

/// Adam's keyword arguments (optax.adam / optax.scale_by_adam).
struct AdamOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-8;
  double eps_root = 0.0;
  bool nesterov = false;
};

/// Adam's state (optax.ScaleByAdamState): also Adamax's and RAdam's.
template <class P>
struct ScaleByAdamState {
  Array count;  ///< int32 scalar
  P mu;         ///< first moment
  P nu;         ///< second moment (Adamax: infinity norm)
};

/// Rescales by Adam's bias-corrected moments: mu_hat / (sqrt(nu_hat +
/// eps_root) + eps); with nesterov, Dozat's NAdam (optax.scale_by_adam).
struct ScaleByAdam {
  AdamOptions o;
  template <class P>
  ScaleByAdamState<P> init(const P& params) const {
    return {detail::zero_count(), detail::zeros_like(params), detail::zeros_like(params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByAdamState<P>> update(const P& updates, const ScaleByAdamState<P>& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    const Array count = detail::safe_increment(state.count);
    detail::PerDType bc1([&](DType d) { return detail::bias_denominator(o.b1, count, d); });
    detail::PerDType bc1_next(
        [&](DType d) { return detail::bias_denominator(o.b1, detail::safe_increment(count), d); });
    detail::PerDType bc2([&](DType d) { return detail::bias_denominator(o.b2, count, d); });
    bc1.prime(updates);  // before the leaves: keeps each leaf's update one fused region when jitted
    bc2.prime(updates);
    if (o.nesterov) bc1_next.prime(updates);
    auto [u, mu, nu] = detail::map_leaves<3>(
        "eqx::optim::scale_by_adam",
        [&](const TreePath&, const Array& g, const Array& m, const Array& v) {
          const DType d = g.dtype();
          Array mu = (1 - o.b1) * g + o.b1 * m;
          Array nu = (1 - o.b2) * square(g) + o.b2 * v;
          Array mu_hat = o.nesterov ? o.b1 * (mu / bc1_next.get(d)) + (1 - o.b1) * (g / bc1.get(d)) : mu / bc1.get(d);
          Array nu_hat = nu / bc2.get(d);
          return std::array{mu_hat / (sqrt(nu_hat + o.eps_root) + o.eps), mu, nu};
        },
        updates, state.mu, state.nu);
    return {u, {count, mu, nu}};
  }
};
/// Usage: `eqx::optim::scale_by_adam({.b2 = 0.99})`
inline ScaleByAdam scale_by_adam(AdamOptions opts = {}) { return {opts}; }

/// Adamax's keyword arguments (optax.adamax).
struct AdamaxOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-8;
};

/// Rescales by the bias-corrected first moment over an exponentially
/// weighted infinity norm, nu = max(|g| + eps, b2 * nu) (optax.scale_by_adamax).
struct ScaleByAdamax {
  AdamaxOptions o;
  template <class P>
  ScaleByAdamState<P> init(const P& params) const {
    return {detail::zero_count(), detail::zeros_like(params), detail::zeros_like(params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByAdamState<P>> update(const P& updates, const ScaleByAdamState<P>& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    const Array count = detail::safe_increment(state.count);
    detail::PerDType bc1([&](DType d) { return detail::bias_denominator(o.b1, count, d); });
    auto [u, mu, nu] = detail::map_leaves<3>(
        "eqx::optim::scale_by_adamax",
        [&](const TreePath&, const Array& g, const Array& m, const Array& v) {
          Array mu = (1 - o.b1) * g + o.b1 * m;
          Array nu = maximum(abs(g) + o.eps, o.b2 * v);
          return std::array{(mu / bc1.get(g.dtype())) / nu, mu, nu};
        },
        updates, state.mu, state.nu);
    return {u, {count, mu, nu}};
  }
};
/// Usage: `eqx::optim::scale_by_adamax()`
inline ScaleByAdamax scale_by_adamax(AdamaxOptions opts = {}) { return {opts}; }

/// RAdam's keyword arguments (optax.radam).
struct RadamOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-8;
  double eps_root = 0.0;
  double threshold = 5.0;
  bool nesterov = false;
};

/// Rectified Adam: Adam's step scaled by the variance rectification r once
/// the SMA length rho reaches `threshold`, the bias-corrected momentum
/// before (optax.scale_by_radam).
struct ScaleByRadam {
  RadamOptions o;
  template <class P>
  ScaleByAdamState<P> init(const P& params) const {
    return {detail::zero_count(), detail::zeros_like(params), detail::zeros_like(params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByAdamState<P>> update(const P& updates, const ScaleByAdamState<P>& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    const Array count = detail::safe_increment(state.count);
    const double ro_inf = 2.0 / (1.0 - o.b2) - 1.0;
    detail::PerDType ro([&](DType d) {
      Array c = astype(count, d);
      Array b2t = pow(o.b2, c);
      return ro_inf - 2.0 * c * b2t / (1.0 - b2t);
    });
    detail::PerDType r([&](DType d) {
      const Array& rho = ro.get(d);
      return sqrt((rho - 4.0) * (rho - 2.0) * ro_inf / ((ro_inf - 4.0) * (ro_inf - 2.0) * rho));
    });
    detail::PerDType bc1([&](DType d) { return detail::bias_denominator(o.b1, count, d); });
    detail::PerDType bc1_next(
        [&](DType d) { return detail::bias_denominator(o.b1, detail::safe_increment(count), d); });
    detail::PerDType bc2([&](DType d) { return detail::bias_denominator(o.b2, count, d); });
    auto [u, mu, nu] = detail::map_leaves<3>(
        "eqx::optim::scale_by_radam",
        [&](const TreePath&, const Array& g, const Array& m, const Array& v) {
          const DType d = g.dtype();
          Array mu = (1 - o.b1) * g + o.b1 * m;
          Array nu = (1 - o.b2) * square(g) + o.b2 * v;
          Array mu_hat = o.nesterov ? o.b1 * (mu / bc1_next.get(d)) + (1 - o.b1) * (g / bc1.get(d)) : mu / bc1.get(d);
          Array nu_hat = nu / bc2.get(d);
          Array rect = r.get(d) * mu_hat / (sqrt(nu_hat + o.eps_root) + o.eps);
          return std::array{where(ro.get(d) >= o.threshold, rect, mu_hat), mu, nu};
        },
        updates, state.mu, state.nu);
    return {u, {count, mu, nu}};
  }
};
/// Usage: `eqx::optim::scale_by_radam()`
inline ScaleByRadam scale_by_radam(RadamOptions opts = {}) { return {opts}; }

/// AdaBelief's moment options (optax.scale_by_belief).
struct ScaleByBeliefOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-16;
  double eps_root = 1e-16;
  bool nesterov = false;
};

/// AdaBelief's state (optax.ScaleByBeliefState).
template <class P>
struct ScaleByBeliefState {
  Array count;  ///< int32 scalar
  P mu;         ///< first moment
  P nu;         ///< second moment of the prediction error g - mu
};

/// Adam with the second moment of the prediction error g - mu, plus
/// eps_root kept in the state (optax.scale_by_belief).
struct ScaleByBelief {
  ScaleByBeliefOptions o;
  template <class P>
  ScaleByBeliefState<P> init(const P& params) const {
    return {detail::zero_count(), detail::zeros_like(params), detail::zeros_like(params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByBeliefState<P>> update(const P& updates, const ScaleByBeliefState<P>& state,
                                             const Q& = {}) const {
    detail::check_params_type<P, Q>();
    const Array count = detail::safe_increment(state.count);
    detail::PerDType bc1([&](DType d) { return detail::bias_denominator(o.b1, count, d); });
    detail::PerDType bc1_next(
        [&](DType d) { return detail::bias_denominator(o.b1, detail::safe_increment(count), d); });
    detail::PerDType bc2([&](DType d) { return detail::bias_denominator(o.b2, count, d); });
    auto [u, mu, nu] = detail::map_leaves<3>(
        "eqx::optim::scale_by_belief",
        [&](const TreePath&, const Array& g, const Array& m, const Array& v) {
          const DType d = g.dtype();
          Array mu = (1 - o.b1) * g + o.b1 * m;
          Array nu = (1 - o.b2) * square(g - mu) + o.b2 * v + o.eps_root;
          Array mu_hat = o.nesterov ? o.b1 * (mu / bc1_next.get(d)) + (1 - o.b1) * (g / bc1.get(d)) : mu / bc1.get(d);
          return std::array{mu_hat / (sqrt(nu / bc2.get(d)) + o.eps), mu, nu};
        },
        updates, state.mu, state.nu);
    return {u, {count, mu, nu}};
  }
};
/// Usage: `eqx::optim::scale_by_belief()`
inline ScaleByBelief scale_by_belief(ScaleByBeliefOptions opts = {}) { return {opts}; }

/// Lion's moment options (optax.scale_by_lion).
struct ScaleByLionOptions {
  double b1 = 0.9;
  double b2 = 0.99;
};

/// Lion's state (optax.ScaleByLionState).
template <class P>
struct ScaleByLionState {
  Array count;  ///< int32 scalar
  P mu;         ///< momentum
};

/// sign((1 - b1) g + b1 mu), with mu an EMA of rate b2 (optax.scale_by_lion).
struct ScaleByLion {
  ScaleByLionOptions o;
  template <class P>
  ScaleByLionState<P> init(const P& params) const {
    return {detail::zero_count(), detail::zeros_like(params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByLionState<P>> update(const P& updates, const ScaleByLionState<P>& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    auto [u, mu] = detail::map_leaves<2>(
        "eqx::optim::scale_by_lion",
        [&](const TreePath&, const Array& g, const Array& m) {
          return std::array{sign((1 - o.b1) * g + o.b1 * m), (1 - o.b2) * g + o.b2 * m};
        },
        updates, state.mu);
    return {u, {detail::safe_increment(state.count), mu}};
  }
};
/// Usage: `eqx::optim::scale_by_lion()`
inline ScaleByLion scale_by_lion(ScaleByLionOptions opts = {}) { return {opts}; }

/// Options of scale_by_rms / scale_by_stddev (rmsprop's preconditioner).
struct ScaleByRmsOptions {
  double decay = 0.9;
  double eps = 1e-8;
  double initial_scale = 0.0;
  bool eps_in_sqrt = true;  ///< rsqrt(nu + eps) (Optax's default) or 1 / (sqrt(nu) + eps) (PyTorch's)
  bool bias_correction = false;
};

/// The state of scale_by_rms and scale_by_stddev (optax.ScaleByRmsState /
/// ScaleByRStdDevState): `count` is None without bias correction and `mu`
/// is None when not centered, so no memory is kept beyond Optax's.
template <class P>
struct ScaleByRmsState {
  Array count;  ///< int32 scalar, or None
  P mu;         ///< EMA of g (centered only)
  P nu;         ///< EMA of g^2
};

/// Divides by the root of an EMA of squared updates, centered (minus the
/// squared EMA of the updates) for scale_by_stddev.
struct ScaleByRms {
  ScaleByRmsOptions o;
  bool centered = false;
  template <class P>
  ScaleByRmsState<P> init(const P& params) const {
    return {o.bias_correction ? detail::zero_count() : Array{},
            centered ? detail::zeros_like(params) : detail::nones_like(params),
            detail::full_like(params, o.initial_scale)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByRmsState<P>> update(const P& updates, const ScaleByRmsState<P>& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    const std::string_view who = centered ? "eqx::optim::scale_by_stddev" : "eqx::optim::scale_by_rms";
    if (o.bias_correction && !state.count.has_value())
      throw ValueError(std::string(who) + ": bias_correction needs a step count but the state has none; the "
                                          "state comes from a transformation without bias correction");
    const Array count = o.bias_correction ? detail::safe_increment(state.count) : Array{};
    detail::PerDType bc([&](DType d) { return detail::bias_denominator(o.decay, count, d); });
    auto scaled = [&](const Array& g, const Array& mu, const Array& nu) {
      Array mu_hat = mu, nu_hat = nu;
      if (o.bias_correction) {
        nu_hat = nu / bc.get(g.dtype());
        if (centered) mu_hat = mu / bc.get(g.dtype());
      }
      Array n = centered ? nu_hat - square(mu_hat) : nu_hat;
      Array scaling = o.eps_in_sqrt ? rsqrt(n + o.eps) : 1.0 / (sqrt(n) + o.eps);
      return scaling * g;
    };
    P u = updates, mu = state.mu, nu = state.nu;
    if (centered) {
      auto r = detail::map_leaves<3>(
          who,
          [&](const TreePath&, const Array& g, const Array& m, const Array& v) {
            Array mu = (1 - o.decay) * g + o.decay * m;
            Array nu = (1 - o.decay) * square(g) + o.decay * v;
            return std::array{scaled(g, mu, nu), mu, nu};
          },
          updates, state.mu, state.nu);
      u = r[0], mu = r[1], nu = r[2];
    } else {
      auto r = detail::map_leaves<2>(
          who,
          [&](const TreePath&, const Array& g, const Array& v) {
            Array nu = (1 - o.decay) * square(g) + o.decay * v;
            return std::array{scaled(g, Array{}, nu), nu};
          },
          updates, state.nu);
      u = r[0], nu = r[1];
    }
    return {u, {count, mu, nu}};
  }
};
/// g / sqrt(EMA(g^2) + eps) (optax.scale_by_rms). Usage: `eqx::optim::scale_by_rms({.decay = 0.99})`
inline ScaleByRms scale_by_rms(ScaleByRmsOptions opts = {}) { return {opts, false}; }
/// g / sqrt(EMA(g^2) - EMA(g)^2 + eps) (optax.scale_by_stddev). Usage: `eqx::optim::scale_by_stddev()`
inline ScaleByRms scale_by_stddev(ScaleByRmsOptions opts = {}) { return {opts, true}; }

/// Adagrad's keyword arguments (optax.adagrad / optax.scale_by_rss).
struct AdagradOptions {
  double initial_accumulator_value = 0.1;
  double eps = 1e-7;
};

/// Adagrad's state (optax.ScaleByRssState).
template <class P>
struct ScaleByRssState {
  P sum_of_squares;
};

/// Divides by the root of the sum of all squared updates so far:
/// g * rsqrt(s + eps) where s > 0, else 0 (optax.scale_by_rss).
struct ScaleByRss {
  AdagradOptions o;
  template <class P>
  ScaleByRssState<P> init(const P& params) const {
    return {detail::full_like(params, o.initial_accumulator_value)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByRssState<P>> update(const P& updates, const ScaleByRssState<P>& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    auto [u, s] = detail::map_leaves<2>(
        "eqx::optim::scale_by_rss",
        [&](const TreePath&, const Array& g, const Array& t) {
          Array s = square(g) + t;
          return std::array{where(s > 0, rsqrt(s + o.eps), 0.0) * g, s};
        },
        updates, state.sum_of_squares);
    return {u, {s}};
  }
};
/// Usage: `eqx::optim::scale_by_rss()`
inline ScaleByRss scale_by_rss(AdagradOptions opts = {}) { return {opts}; }

// --- momentum and weight decay --------------------------------------------------------

/// Momentum's state (optax.TraceState); None where momentum is off.
template <class P>
struct TraceState {
  P trace;
};

/// Momentum (optax.trace): t = g + decay * t, the update t (or g + decay *
/// t with nesterov). Without a decay (sgd without momentum) it passes
/// updates through and keeps None.
struct Trace {
  std::optional<double> decay;
  bool nesterov = false;
  template <class P>
  TraceState<P> init(const P& params) const {
    return {decay ? detail::zeros_like(params) : detail::nones_like(params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, TraceState<P>> update(const P& updates, const TraceState<P>& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    if (!decay) return {updates, state};
    const double b = *decay;
    auto [u, t] = detail::map_leaves<2>(
        "eqx::optim::trace",
        [&](const TreePath&, const Array& g, const Array& t) {
          Array t_new = g + b * t;
          return std::array{nesterov ? g + b * t_new : t_new, t_new};
        },
        updates, state.trace);
    return {u, {t}};
  }
};
/// Usage: `eqx::optim::trace(0.9, true)`
inline Trace trace(double decay, bool nesterov = false) { return {decay, nesterov}; }

/// Adds weight_decay * params to the updates at the leaves `mask` selects
/// (optax.add_decayed_weights with a mask: masked-out leaves pass through).
/// A scheduled decay keeps a step count; a constant one keeps None.
struct AddDecayedWeights {
  ScalarOrSchedule weight_decay;
  Mask mask;
  template <class P>
  ScaleByScheduleState init(const P&) const {
    return {weight_decay.is_schedule() ? detail::zero_count() : Array{}};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByScheduleState> update(const P& updates, const ScaleByScheduleState& state,
                                            const Q& params = {}) const {
    detail::check_params_type<P, Q>();
    ScaleByScheduleState next{state.count.has_value() ? detail::safe_increment(state.count) : Array{}};
    if (!weight_decay.is_schedule() && weight_decay.value() == 0.0) return {updates, next};
    if constexpr (std::is_same_v<Q, NoParams>) {
      throw ValueError("eqx::optim::add_decayed_weights: weight decay needs the params; call "
                       "update(updates, state, params)");
    } else {
    if (weight_decay.is_schedule() && !state.count.has_value())
      throw ValueError("eqx::optim::add_decayed_weights: the weight decay is a schedule but the state has no step "
                       "count; the state comes from an optimiser with a constant weight decay");
    detail::PerDType wd([&](DType d) { return weight_decay.at(state.count, d); });
    wd.prime(updates);  // before the leaves, for fusion (see PerDType::prime)
    auto [u] = detail::map_leaves<1>(
        "eqx::optim::add_decayed_weights",
        [&](const TreePath& path, const Array& g, const Array& p) {
          return std::array{mask(path, p) ? g + wd.get(g.dtype()) * p : g};
        },
        updates, params);
    return {u, next};
    }
  }
};
/// Usage: `eqx::optim::add_decayed_weights(1e-4)`, `add_decayed_weights(1e-4, [](const eqx::Array& p) { return p.ndim() > 1; })`
inline AddDecayedWeights add_decayed_weights(ScalarOrSchedule weight_decay = 0.0, Mask mask = {}) {
  return {std::move(weight_decay), std::move(mask)};
}

// --- clipping ---------------------------------------------------------------------

namespace detail {
struct SquaredNorms : eqx::detail::ArrayLeafVisitor {
  std::vector<Array> parts;
  bool array(const TreePath&, const Array& a) {
    if (a.has_value() && is_floating(a.dtype())) parts.push_back(a);
    return true;
  }
};
}  // namespace detail

/// sqrt of the sum of squares of every float leaf (optax.global_norm), in
/// the widest float dtype among them (float32 for a tree without any).
/// Usage: `eqx::Array n = eqx::optim::global_norm(grads);`
template <class T>
Array global_norm(const T& tree) {
  detail::SquaredNorms v;
  TreePath path;
  eqx::detail::visit_tree(v, path, tree);
  DType d = float32;
  for (const Array& a : v.parts)
    if (a.dtype() == float64) d = float64;
  Array total = zeros(Shape{}, d);
  for (const Array& a : v.parts) total = total + sum(square(astype(a, d)));
  return sqrt(total);
}

/// Clips every update element to [-max_delta, max_delta] (optax.clip).
struct Clip {
  double max_delta;
  template <class P>
  EmptyState init(const P&) const {
    return {};
  }
  template <class P, class Q = NoParams>
  std::pair<P, EmptyState> update(const P& updates, const EmptyState& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    auto [u] = detail::map_leaves<1>(
        "eqx::optim::clip",
        [&](const TreePath&, const Array& g) { return std::array{eqx::clip(g, -max_delta, max_delta)}; }, updates);
    return {u, state};
  }
};
/// Usage: `eqx::optim::clip(1.0)`
inline Clip clip(double max_delta) { return {max_delta}; }

/// Rescales the updates to global norm max_norm when their global norm is
/// larger (optax.clip_by_global_norm).
struct ClipByGlobalNorm {
  double max_norm;
  template <class P>
  EmptyState init(const P&) const {
    return {};
  }
  template <class P, class Q = NoParams>
  std::pair<P, EmptyState> update(const P& updates, const EmptyState& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    const Array norm = global_norm(updates);
    const Array keep = norm < max_norm;
    auto [u] = detail::map_leaves<1>(
        "eqx::optim::clip_by_global_norm",
        [&](const TreePath&, const Array& g) {
          return std::array{where(keep, g, (g / astype(norm, g.dtype())) * max_norm)};
        },
        updates);
    return {u, state};
  }
};
/// Usage: `eqx::optim::chain(eqx::optim::clip_by_global_norm(1.0), eqx::optim::adam(1e-3))`
inline ClipByGlobalNorm clip_by_global_norm(double max_norm) { return {max_norm}; }


// --- ema, centralize, block clipping, trust ratio, sign ----------------------------------

/// ema's state (optax.EmaState).
template <class P>
struct EmaState {
  Array count;  ///< int32 scalar
  P ema;
};

/// An exponential moving average of the updates, ema = (1 - decay) g +
/// decay ema, divided by 1 - decay^count when debiased (optax.ema).
/// Without a decay (adafactor without momentum) it passes updates through
/// and keeps None.
struct Ema {
  std::optional<double> decay;
  bool debias = true;
  template <class P>
  EmaState<P> init(const P& params) const {
    return {detail::zero_count(), decay ? detail::zeros_like(params) : detail::nones_like(params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, EmaState<P>> update(const P& updates, const EmaState<P>& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    const Array count = detail::safe_increment(state.count);
    if (!decay) return {updates, {count, state.ema}};
    const double b = *decay;
    detail::PerDType bc([&](DType d) { return detail::bias_denominator(b, count, d); });
    auto [u, e] = detail::map_leaves<2>(
        "eqx::optim::ema",
        [&](const TreePath&, const Array& g, const Array& t) {
          Array e = (1 - b) * g + b * t;
          return std::array{debias ? e / bc.get(g.dtype()) : e, e};
        },
        updates, state.ema);
    return {u, {count, e}};
  }
};
/// Usage: `eqx::optim::chain(eqx::optim::ema(0.9), eqx::optim::scale(-0.1))`
inline Ema ema(double decay, bool debias = true) { return {decay, debias}; }

/// Subtracts from each update of rank > 1 its mean over all axes but the
/// first (gradient centralisation, optax.centralize); vectors pass through.
struct Centralize {
  template <class P>
  EmptyState init(const P&) const {
    return {};
  }
  template <class P, class Q = NoParams>
  std::pair<P, EmptyState> update(const P& updates, const EmptyState& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    auto [u] = detail::map_leaves<1>(
        "eqx::optim::centralize",
        [](const TreePath&, const Array& g) {
          if (g.ndim() <= 1) return std::array{g};
          std::vector<std::int64_t> axes;
          for (std::size_t i = 1; i < g.ndim(); ++i) axes.push_back(static_cast<std::int64_t>(i));
          return std::array{g - mean(g, axes, true)};
        },
        updates);
    return {u, state};
  }
};
/// Usage: `eqx::optim::chain(eqx::optim::centralize(), eqx::optim::sgd(0.1))`
inline Centralize centralize() { return {}; }

/// Scales each leaf's update down so that its root mean square is at most
/// `threshold`: u / max(1, rms(u) / threshold) (optax.clip_by_block_rms).
struct ClipByBlockRms {
  double threshold;
  template <class P>
  EmptyState init(const P&) const {
    return {};
  }
  template <class P, class Q = NoParams>
  std::pair<P, EmptyState> update(const P& updates, const EmptyState& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    auto [u] = detail::map_leaves<1>(
        "eqx::optim::clip_by_block_rms",
        [&](const TreePath&, const Array& g) {
          return std::array{g / maximum(sqrt(mean(square(g))) / threshold, 1.0)};
        },
        updates);
    return {u, state};
  }
};
/// Usage: `eqx::optim::clip_by_block_rms(1.0)`
inline ClipByBlockRms clip_by_block_rms(double threshold) { return {threshold}; }

/// scale_by_trust_ratio's keyword arguments.
struct TrustRatioOptions {
  double min_norm = 0.0;           ///< lower bound of both norms
  double trust_coefficient = 1.0;  ///< multiplies the ratio
  double eps = 0.0;                ///< added to the update norm
};

namespace detail {
/// max(||x||_2 over all elements, min_norm) (optax's safe_norm, forward value).
inline Array safe_norm(const Array& x, double min_norm) {
  Array n = sqrt(sum(square(x)));
  return where(n <= min_norm, min_norm, n);
}
}  // namespace detail

/// Scales each leaf's update by trust_coefficient * ||param|| / (||update||
/// + eps), or by 1 where either norm is zero (optax.scale_by_trust_ratio,
/// as in LARS, LAMB and Fromage). Needs the params.
struct ScaleByTrustRatio {
  TrustRatioOptions o;
  template <class P>
  EmptyState init(const P&) const {
    return {};
  }
  template <class P, class Q = NoParams>
  std::pair<P, EmptyState> update(const P& updates, const EmptyState& state, const Q& params = {}) const {
    detail::check_params_type<P, Q>();
    if constexpr (std::is_same_v<Q, NoParams>) {
      throw ValueError("eqx::optim::scale_by_trust_ratio: the trust ratio needs the params; call "
                       "update(updates, state, params)");
    } else {
      auto [u] = detail::map_leaves<1>(
          "eqx::optim::scale_by_trust_ratio",
          [&](const TreePath&, const Array& g, const Array& p) {
            Array pn = detail::safe_norm(p, o.min_norm);
            Array un = detail::safe_norm(g, o.min_norm);
            Array ratio = o.trust_coefficient * pn / (un + o.eps);
            return std::array{g * where(logical_or(pn == 0.0, un == 0.0), 1.0, ratio)};
          },
          updates, params);
      return {u, state};
    }
  }
};
/// Usage: `eqx::optim::scale_by_trust_ratio({.trust_coefficient = 0.001})`
inline ScaleByTrustRatio scale_by_trust_ratio(TrustRatioOptions opts = {}) { return {opts}; }

/// Replaces each update by its sign (optax.scale_by_sign).
struct ScaleBySign {
  template <class P>
  EmptyState init(const P&) const {
    return {};
  }
  template <class P, class Q = NoParams>
  std::pair<P, EmptyState> update(const P& updates, const EmptyState& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    auto [u] = detail::map_leaves<1>(
        "eqx::optim::scale_by_sign", [](const TreePath&, const Array& g) { return std::array{sign(g)}; }, updates);
    return {u, state};
  }
};
/// Usage: `eqx::optim::scale_by_sign()`
inline ScaleBySign scale_by_sign() { return {}; }

// --- AMSGrad, AdaDelta, Yogi, NovoGrad, gradient noise -------------------------------------

/// AMSGrad's keyword arguments (optax.amsgrad / optax.scale_by_amsgrad).
struct AmsgradOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-8;
  double eps_root = 0.0;
  bool bias_correction_mu = true;
  bool bias_correction_nu = true;
};

/// AMSGrad's state (optax.ScaleByAmsgradState).
template <class P>
struct ScaleByAmsgradState {
  Array count;  ///< int32 scalar
  P mu;         ///< first moment
  P nu;         ///< second moment
  P nu_max;     ///< running maximum of the (bias-corrected) second moment
};

/// Adam dividing by the running maximum of the bias-corrected second
/// moment, nu_max = max(nu_max, nu_hat) (optax.scale_by_amsgrad).
struct ScaleByAmsgrad {
  AmsgradOptions o;
  template <class P>
  ScaleByAmsgradState<P> init(const P& params) const {
    return {detail::zero_count(), detail::zeros_like(params), detail::zeros_like(params), detail::zeros_like(params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByAmsgradState<P>> update(const P& updates, const ScaleByAmsgradState<P>& state,
                                              const Q& = {}) const {
    detail::check_params_type<P, Q>();
    const Array count = detail::safe_increment(state.count);
    detail::PerDType bc1([&](DType d) { return detail::bias_denominator(o.b1, count, d); });
    detail::PerDType bc2([&](DType d) { return detail::bias_denominator(o.b2, count, d); });
    auto [u, mu, nu, nu_max] = detail::map_leaves<4>(
        "eqx::optim::scale_by_amsgrad",
        [&](const TreePath&, const Array& g, const Array& m, const Array& v, const Array& vmax) {
          const DType d = g.dtype();
          Array mu = (1 - o.b1) * g + o.b1 * m;
          Array nu = (1 - o.b2) * square(g) + o.b2 * v;
          Array mu_hat = o.bias_correction_mu ? mu / bc1.get(d) : mu;
          Array nu_eff = o.bias_correction_nu ? nu / bc2.get(d) : nu;
          Array nu_max = maximum(vmax, nu_eff);
          return std::array{mu_hat / (sqrt(nu_max + o.eps_root) + o.eps), mu, nu, nu_max};
        },
        updates, state.mu, state.nu, state.nu_max);
    return {u, {count, mu, nu, nu_max}};
  }
};
/// Usage: `eqx::optim::scale_by_amsgrad()`
inline ScaleByAmsgrad scale_by_amsgrad(AmsgradOptions opts = {}) { return {opts}; }

/// scale_by_adadelta's keyword arguments.
struct ScaleByAdadeltaOptions {
  double rho = 0.9;
  double eps = 1e-6;
};

/// AdaDelta's state (optax.ScaleByAdaDeltaState).
template <class P>
struct ScaleByAdaDeltaState {
  P e_g;  ///< EMA of squared gradients
  P e_x;  ///< EMA of squared updates
};

/// AdaDelta: u = sqrt(e_x + eps) / sqrt(e_g + eps) * g with e_g updated
/// first and e_x after, both EMAs of rate rho (optax.scale_by_adadelta).
struct ScaleByAdadelta {
  ScaleByAdadeltaOptions o;
  template <class P>
  ScaleByAdaDeltaState<P> init(const P& params) const {
    return {detail::zeros_like(params), detail::zeros_like(params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByAdaDeltaState<P>> update(const P& updates, const ScaleByAdaDeltaState<P>& state,
                                               const Q& = {}) const {
    detail::check_params_type<P, Q>();
    auto [u, e_g, e_x] = detail::map_leaves<3>(
        "eqx::optim::scale_by_adadelta",
        [&](const TreePath&, const Array& g, const Array& eg, const Array& ex) {
          Array e_g = (1 - o.rho) * square(g) + o.rho * eg;
          Array u = sqrt(ex + o.eps) / sqrt(e_g + o.eps) * g;
          return std::array{u, e_g, (1 - o.rho) * square(u) + o.rho * ex};
        },
        updates, state.e_g, state.e_x);
    return {u, {e_g, e_x}};
  }
};
/// Usage: `eqx::optim::scale_by_adadelta({.rho = 0.95})`
inline ScaleByAdadelta scale_by_adadelta(ScaleByAdadeltaOptions opts = {}) { return {opts}; }

/// scale_by_yogi's keyword arguments.
struct ScaleByYogiOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-3;
  double eps_root = 0.0;
  double initial_accumulator_value = 1e-6;
};

/// Yogi: Adam whose second moment moves additively, nu -= (1 - b2)
/// sign(nu - g^2) g^2, both moments starting at initial_accumulator_value
/// (optax.scale_by_yogi; the state is Adam's).
struct ScaleByYogi {
  ScaleByYogiOptions o;
  template <class P>
  ScaleByAdamState<P> init(const P& params) const {
    return {detail::zero_count(), detail::full_like(params, o.initial_accumulator_value),
            detail::full_like(params, o.initial_accumulator_value)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByAdamState<P>> update(const P& updates, const ScaleByAdamState<P>& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    const Array count = detail::safe_increment(state.count);
    detail::PerDType bc1([&](DType d) { return detail::bias_denominator(o.b1, count, d); });
    detail::PerDType bc2([&](DType d) { return detail::bias_denominator(o.b2, count, d); });
    auto [u, mu, nu] = detail::map_leaves<3>(
        "eqx::optim::scale_by_yogi",
        [&](const TreePath&, const Array& g, const Array& m, const Array& v) {
          const DType d = g.dtype();
          Array g2 = square(g);
          Array mu = (1 - o.b1) * g + o.b1 * m;
          Array nu = v - (1 - o.b2) * sign(v - g2) * g2;
          return std::array{(mu / bc1.get(d)) / (sqrt(nu / bc2.get(d) + o.eps_root) + o.eps), mu, nu};
        },
        updates, state.mu, state.nu);
    return {u, {count, mu, nu}};
  }
};
/// Usage: `eqx::optim::scale_by_yogi()`
inline ScaleByYogi scale_by_yogi(ScaleByYogiOptions opts = {}) { return {opts}; }

/// scale_by_novograd's keyword arguments.
struct ScaleByNovogradOptions {
  double b1 = 0.9;
  double b2 = 0.25;
  double eps = 1e-8;
  double eps_root = 0.0;
  double weight_decay = 0.0;
};

/// NovoGrad's state (optax.ScaleByNovogradState): `nu` is one scalar per
/// leaf (of the leaf's dtype), the EMA of the squared norm of its gradient.
template <class P>
struct ScaleByNovogradState {
  Array count;  ///< int32 scalar
  P mu;
  P nu;
};

namespace detail {
/// A scalar zero of each float leaf's dtype, None elsewhere.
struct ScalarZeros {
  Array array(const TreePath&, const Array& a) {
    if (!a.has_value() || !is_floating(a.dtype())) return Array{};
    return zeros(Shape{}, a.dtype());
  }
  template <class X>
  X static_leaf(const TreePath&, const X& x) {
    return x;
  }
};
/// Replays per-path values computed in map_leaves, keeping the old leaf elsewhere.
struct PathReplay {
  const std::map<std::string, Array>& computed;
  Array array(const TreePath& path, const Array& old) {
    auto it = computed.find(path.str());
    return it == computed.end() ? old : it->second;
  }
  template <class X>
  X static_leaf(const TreePath&, const X& x) {
    return x;
  }
};
}  // namespace detail

/// NovoGrad: per-leaf second moment of the gradient's squared norm, nu =
/// ||g||^2 at the first step then (1 - b2) ||g||^2 + b2 nu; momentum mu =
/// g / (sqrt(nu + eps_root) + eps) + weight_decay * p at the first step,
/// then b1 mu + that (optax.scale_by_novograd). Needs the params.
struct ScaleByNovograd {
  ScaleByNovogradOptions o;
  template <class P>
  ScaleByNovogradState<P> init(const P& params) const {
    detail::ScalarZeros b;
    TreePath path;
    return {detail::zero_count(), detail::zeros_like(params), eqx::detail::rebuild_tree(b, path, params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleByNovogradState<P>> update(const P& updates, const ScaleByNovogradState<P>& state,
                                               const Q& params = {}) const {
    detail::check_params_type<P, Q>();
    if constexpr (std::is_same_v<Q, NoParams>) {
      throw ValueError("eqx::optim::scale_by_novograd: NovoGrad needs the params; call update(updates, state, params)");
    } else {
      {
        detail::StructureCheck check{"eqx::optim::scale_by_novograd"};
        TreePath path;
        eqx::detail::visit_tree(check, path, updates, state.nu);
      }
      std::map<std::string, Array> old_nu;
      {
        auto collect = [&](const TreePath& path, const Array& a) {
          if (a.has_value()) old_nu[path.str()] = a;
          return a;
        };
        (void)tree_map_with_path(collect, state.nu);
      }
      const Array count = detail::safe_increment(state.count);
      const Array first = count == 1;
      std::map<std::string, Array> new_nu;
      auto [u, mu] = detail::map_leaves<2>(
          "eqx::optim::scale_by_novograd",
          [&](const TreePath& path, const Array& g, const Array& m, const Array& p) {
            auto it = old_nu.find(path.str());
            if (it == old_nu.end())
              throw TreeStructureError("eqx::optim::scale_by_novograd: at " + path.display() + " the update is " +
                                       detail::type_str(g) + " but the optimiser state has None; initialise the "
                                       "optimiser with params that have this leaf");
            Array norm2 = sum(square(g));
            Array nu = where(first, norm2, (1 - o.b2) * norm2 + o.b2 * it->second);
            new_nu[path.str()] = nu;
            Array add = g / (sqrt(nu + o.eps_root) + o.eps) + o.weight_decay * p;
            Array mu = where(first, add, o.b1 * m + add);
            return std::array{mu, mu};
          },
          updates, state.mu, params);
      detail::PathReplay b{new_nu};
      TreePath path;
      return {u, {count, mu, eqx::detail::rebuild_tree(b, path, state.nu)}};
    }
  }
};
/// Usage: `eqx::optim::scale_by_novograd()`
inline ScaleByNovograd scale_by_novograd(ScaleByNovogradOptions opts = {}) { return {opts}; }

/// add_noise's state (optax.AddNoiseState).
struct AddNoiseState {
  Array count;    ///< int32 scalar
  Array rng_key;  ///< eqx::random key, split at each update
};

/// Adds Gaussian noise of variance eta / count^gamma (count from 1) to
/// each update, one key per leaf split from the state's key
/// (optax.add_noise).
struct AddNoise {
  double eta;
  double gamma;
  Array key;
  template <class P>
  AddNoiseState init(const P&) const {
    return {detail::zero_count(), key.has_value() ? key : random::key(0)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, AddNoiseState> update(const P& updates, const AddNoiseState& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    const Array count = detail::safe_increment(state.count);
    std::vector<random::Key> ks = random::split_keys(state.rng_key, 2);
    std::size_t leaves = 0;
    {
      auto counter = [&](const Array& a) {
        if (is_floating(a.dtype())) ++leaves;
        return a;
      };
      (void)tree_map(counter, updates);
    }
    std::vector<random::Key> leaf_keys =
        leaves == 0 ? std::vector<random::Key>{} : random::split_keys(ks[1], static_cast<std::int64_t>(leaves));
    std::size_t next = 0;
    detail::PerDType stddev([&](DType d) { return sqrt(eta / pow(astype(count, d), gamma)); });
    auto [u] = detail::map_leaves<1>(
        "eqx::optim::add_noise",
        [&](const TreePath&, const Array& g) {
          return std::array{g + stddev.get(g.dtype()) * random::normal(leaf_keys.at(next++), g.shape(), g.dtype())};
        },
        updates);
    return {u, {count, ks[0]}};
  }
};
/// Usage: `eqx::optim::add_noise(0.01, 0.55, eqx::random::key(0))`
inline AddNoise add_noise(double eta, double gamma, Array key = {}) { return {eta, gamma, std::move(key)}; }


// --- Adafactor's parts -------------------------------------------------------------------

/// Multiplies each leaf's update by max(rms(param), min_scale)
/// (optax.scale_by_param_block_rms); without min_scale it passes updates
/// through. Needs the params.
struct ScaleByParamBlockRms {
  std::optional<double> min_scale = 1e-3;
  template <class P>
  EmptyState init(const P&) const {
    return {};
  }
  template <class P, class Q = NoParams>
  std::pair<P, EmptyState> update(const P& updates, const EmptyState& state, const Q& params = {}) const {
    detail::check_params_type<P, Q>();
    if (!min_scale) return {updates, state};
    if constexpr (std::is_same_v<Q, NoParams>) {
      throw ValueError("eqx::optim::scale_by_param_block_rms: the scale needs the params; call "
                       "update(updates, state, params)");
    } else {
      const double m = *min_scale;
      auto [u] = detail::map_leaves<1>(
          "eqx::optim::scale_by_param_block_rms",
          [&](const TreePath&, const Array& g, const Array& p) {
            return std::array{g * maximum(sqrt(mean(square(p))), m)};
          },
          updates, params);
      return {u, state};
    }
  }
};
/// Usage: `eqx::optim::scale_by_param_block_rms(1e-3)`
inline ScaleByParamBlockRms scale_by_param_block_rms(double min_scale = 1e-3) { return {min_scale}; }

/// scale_by_factored_rms' keyword arguments.
struct FactoredRmsOptions {
  bool factored = true;
  double decay_rate = 0.8;                  ///< the decay at step t is 1 - (t + 1 - step_offset)^-decay_rate
  std::int64_t step_offset = 0;
  std::int64_t min_dim_size_to_factor = 128;
  double epsilon = 1e-30;
};

/// Adafactor's state (optax.FactoredState): per leaf, either the row and
/// column statistics (v_row, v_col; v a [1] placeholder) or, for leaves not
/// factored, the full second moment v (v_row, v_col [1] placeholders).
template <class P>
struct FactoredState {
  Array count;  ///< int32 scalar
  P v_row;
  P v_col;
  P v;
};

namespace detail {

/// The two axes Adafactor factors over (second largest, largest; ties by
/// position), or none (optax's _factored_dims).
inline std::optional<std::pair<std::size_t, std::size_t>> factored_dims(const Shape& shape, bool factored,
                                                                       std::int64_t min_dim) {
  if (!factored || shape.size() < 2) return std::nullopt;
  std::vector<std::size_t> order(shape.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return shape[a] < shape[b]; });
  const std::size_t d1 = order[order.size() - 2], d0 = order.back();
  if (shape[d1] < min_dim) return std::nullopt;
  return std::pair{d1, d0};
}

inline Shape drop_axis(const Shape& s, std::size_t axis) {
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (i != axis) out.push_back(s[i]);
  return Shape(out.begin(), out.end());
}

/// Adafactor's initial statistics for each float leaf: which = 0 (v_row), 1 (v_col), 2 (v).
struct FactoredInit {
  const FactoredRmsOptions& o;
  int which;
  Array array(const TreePath&, const Array& p) {
    if (!p.has_value() || !is_floating(p.dtype())) return Array{};
    auto dims = factored_dims(p.shape(), o.factored, o.min_dim_size_to_factor);
    const Shape one{1};
    if (dims) {
      if (which == 0) return zeros(drop_axis(p.shape(), dims->second), p.dtype());
      if (which == 1) return zeros(drop_axis(p.shape(), dims->first), p.dtype());
      return zeros(one, p.dtype());
    }
    return which == 2 ? zeros(p.shape(), p.dtype()) : zeros(one, p.dtype());
  }
  template <class X>
  X static_leaf(const TreePath&, const X& x) {
    return x;
  }
};

inline std::map<std::string, Array> leaves_by_path(const auto& tree) {
  std::map<std::string, Array> out;
  (void)tree_map_with_path(
      [&](const TreePath& path, const Array& a) {
        out[path.str()] = a;
        return a;
      },
      tree);
  return out;
}

}  // namespace detail

/// Adafactor's preconditioner (optax.scale_by_factored_rms): for a leaf
/// whose two largest dimensions are at least min_dim_size_to_factor, EMAs
/// of the row and column means of g^2 + epsilon, the update g scaled by
/// (v_row / mean(v_row))^-1/2 along rows and v_col^-1/2 along columns; for
/// other leaves, g * v^-1/2 with v the EMA of g^2 + epsilon. The decay at
/// step t (from 0) is 1 - (t - step_offset + 1)^-decay_rate, computed in
/// the leaf's dtype. Needs the params.
struct ScaleByFactoredRms {
  FactoredRmsOptions o;
  template <class P>
  FactoredState<P> init(const P& params) const {
    auto build = [&](int which) {
      detail::FactoredInit b{o, which};
      TreePath path;
      return eqx::detail::rebuild_tree(b, path, params);
    };
    return {detail::zero_count(), build(0), build(1), build(2)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, FactoredState<P>> update(const P& updates, const FactoredState<P>& state, const Q& params = {}) const {
    detail::check_params_type<P, Q>();
    if constexpr (std::is_same_v<Q, NoParams>) {
      throw ValueError("eqx::optim::scale_by_factored_rms: Adafactor needs the params; call "
                       "update(updates, state, params)");
    } else {
      for (const P* t : {&state.v_row, &state.v_col, &state.v}) {
        detail::StructureCheck check{"eqx::optim::scale_by_factored_rms"};
        TreePath path;
        eqx::detail::visit_tree(check, path, updates, *t);
      }
      const auto old_row = detail::leaves_by_path(state.v_row), old_col = detail::leaves_by_path(state.v_col),
                 old_v = detail::leaves_by_path(state.v);
      std::map<std::string, Array> new_row, new_col, new_v;
      const Array step = state.count - static_cast<std::int32_t>(o.step_offset);
      detail::PerDType decay([&](DType d) { return 1.0 - pow(astype(step + 1, d), -o.decay_rate); });
      auto [u] = detail::map_leaves<1>(
          "eqx::optim::scale_by_factored_rms",
          [&](const TreePath& path, const Array& g, const Array& p) {
            const std::string key = path.str();
            auto old = [&](const std::map<std::string, Array>& m) -> const Array& {
              auto it = m.find(key);
              if (it == m.end() || !it->second.has_value())
                throw TreeStructureError("eqx::optim::scale_by_factored_rms: at " + path.display() +
                                         " the update is " + detail::type_str(g) +
                                         " but the optimiser state has None; initialise the optimiser with params "
                                         "that have this leaf");
              return it->second;
            };
            const Array& beta = decay.get(g.dtype());
            Array g2 = square(g) + o.epsilon;
            auto dims = detail::factored_dims(p.shape(), o.factored, o.min_dim_size_to_factor);
            if (dims) {
              const auto [d1, d0] = *dims;
              Array row = beta * old(old_row) + (1.0 - beta) * mean(g2, static_cast<std::int64_t>(d0));
              Array col = beta * old(old_col) + (1.0 - beta) * mean(g2, static_cast<std::int64_t>(d1));
              const auto reduced_d1 = static_cast<std::int64_t>(d1 > d0 ? d1 - 1 : d1);
              Array row_factor = rsqrt(row / mean(row, reduced_d1, true));
              Array col_factor = rsqrt(col);
              new_row[key] = row;
              new_col[key] = col;
              return std::array{g * expand_dims(row_factor, static_cast<std::int64_t>(d0)) *
                                expand_dims(col_factor, static_cast<std::int64_t>(d1))};
            }
            Array v = beta * old(old_v) + (1.0 - beta) * g2;
            new_v[key] = v;
            return std::array{g * rsqrt(v)};
          },
          updates, params);
      auto replay = [](const std::map<std::string, Array>& m, const P& old) {
        detail::PathReplay b{m};
        TreePath path;
        return eqx::detail::rebuild_tree(b, path, old);
      };
      return {u,
              {detail::safe_increment(state.count), replay(new_row, state.v_row), replay(new_col, state.v_col),
               replay(new_v, state.v)}};
    }
  }
};
/// Usage: `eqx::optim::scale_by_factored_rms({.min_dim_size_to_factor = 32})`
inline ScaleByFactoredRms scale_by_factored_rms(FactoredRmsOptions opts = {}) { return {opts}; }

// --- SM3 ----------------------------------------------------------------------------------

/// scale_by_sm3's keyword arguments.
struct ScaleBySm3Options {
  double b1 = 0.9;  ///< momentum of the output
  double b2 = 1.0;  ///< decay of the accumulators (1: a plain sum, as Adagrad)
  double eps = 1e-8;
};

/// SM3's state (optax.ScaleBySM3State). Optax keeps, per leaf, a list of
/// one accumulator per axis; here mu[i] is a tree holding, at each leaf of
/// rank > i, the accumulator of axis i (shape [shape[i]]), None elsewhere,
/// so one tree per axis up to the largest rank.
template <class P>
struct ScaleBySm3State {
  std::vector<P> mu;
  P nu;
};

namespace detail {
struct AxisAccumulator {
  std::size_t axis;
  Array array(const TreePath&, const Array& p) {
    if (!p.has_value() || !is_floating(p.dtype()) || p.ndim() <= axis) return Array{};
    return zeros(Shape{p.shape()[axis]}, p.dtype());
  }
  template <class X>
  X static_leaf(const TreePath&, const X& x) {
    return x;
  }
};
struct MaxRank : eqx::detail::ArrayLeafVisitor {
  std::size_t rank = 0;
  bool array(const TreePath&, const Array& a) {
    if (a.has_value() && is_floating(a.dtype())) rank = std::max(rank, a.ndim());
    return true;
  }
};
}  // namespace detail

/// SM3 (optax.scale_by_sm3): memory-efficient Adagrad keeping one
/// accumulator per axis of each leaf. accum = c g^2 + b2 min_i(mu_i
/// broadcast along axis i) (c = 1 - b2, or 1 when b2 = 1; a vector uses its
/// own accumulator), u = g rsqrt(accum + eps) where accum > 0, nu = (1 - b1)
/// u + b1 nu is the update, and mu_i = the max of accum over the other axes.
/// Leaves must have rank >= 1.
struct ScaleBySm3 {
  ScaleBySm3Options o;
  template <class P>
  ScaleBySm3State<P> init(const P& params) const {
    detail::MaxRank r;
    TreePath path;
    eqx::detail::visit_tree(r, path, params);
    std::vector<P> mu;
    for (std::size_t i = 0; i < r.rank; ++i) {
      detail::AxisAccumulator b{i};
      TreePath p;
      mu.push_back(eqx::detail::rebuild_tree(b, p, params));
    }
    return {std::move(mu), detail::zeros_like(params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ScaleBySm3State<P>> update(const P& updates, const ScaleBySm3State<P>& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    std::vector<std::map<std::string, Array>> old_mu, new_mu(state.mu.size());
    for (const P& m : state.mu) {
      detail::StructureCheck check{"eqx::optim::scale_by_sm3"};
      TreePath path;
      eqx::detail::visit_tree(check, path, updates, m);
      old_mu.push_back(detail::leaves_by_path(m));
    }
    const double c = o.b2 != 1.0 ? 1.0 - o.b2 : 1.0;
    auto [u, nu] = detail::map_leaves<2>(
        "eqx::optim::scale_by_sm3",
        [&](const TreePath& path, const Array& g, const Array& n) {
          const std::string key = path.str();
          const std::size_t rank = g.ndim();
          if (rank == 0)
            throw ShapeError("eqx::optim::scale_by_sm3: the update at " + path.display() + " is " +
                             detail::type_str(g) +
                             "; SM3 keeps one accumulator per axis and needs leaves of rank >= 1");
          std::vector<Array> v;
          for (std::size_t i = 0; i < rank; ++i) {
            const Array* acc = nullptr;
            if (i < old_mu.size()) {
              auto it = old_mu[i].find(key);
              if (it != old_mu[i].end() && it->second.has_value()) acc = &it->second;
            }
            if (acc == nullptr || acc->shape() != Shape{g.shape()[i]})
              throw TreeStructureError("eqx::optim::scale_by_sm3: at " + path.display() + " the update is " +
                                       detail::type_str(g) + " but the optimiser state has no accumulator of size " +
                                       std::to_string(g.shape()[i]) + " for axis " + std::to_string(i) +
                                       "; initialise the optimiser with params of these shapes");
            std::vector<std::int64_t> expanded(rank, 1);
            expanded[i] = g.shape()[i];
            v.push_back(reshape(*acc, Shape(expanded.begin(), expanded.end())));
          }
          Array prior = v[0];
          for (std::size_t i = 1; i < rank; ++i) prior = minimum(prior, v[i]);
          Array accum = c * square(g) + o.b2 * prior;
          Array up = g * where(accum > 0, rsqrt(accum + o.eps), 0.0);
          Array nu = (1 - o.b1) * up + o.b1 * n;
          for (std::size_t i = 0; i < rank; ++i) {
            if (rank < 2) {
              new_mu[i][key] = accum;
              continue;
            }
            std::vector<std::int64_t> others;
            for (std::size_t j = 0; j < rank; ++j)
              if (j != i) others.push_back(static_cast<std::int64_t>(j));
            new_mu[i][key] = max(accum, others);
          }
          return std::array{nu, nu};
        },
        updates, state.nu);
    std::vector<P> mu;
    for (std::size_t i = 0; i < state.mu.size(); ++i) {
      detail::PathReplay b{new_mu[i]};
      TreePath path;
      mu.push_back(eqx::detail::rebuild_tree(b, path, state.mu[i]));
    }
    return {u, {std::move(mu), nu}};
  }
};
/// Usage: `eqx::optim::scale_by_sm3()`
inline ScaleBySm3 scale_by_sm3(ScaleBySm3Options opts = {}) { return {opts}; }

}  // namespace eqx::optim
