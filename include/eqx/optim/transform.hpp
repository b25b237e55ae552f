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
#include <array>
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
#include "eqx/core/config.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/optim/base.hpp"
#include "eqx/random.hpp"
#include "eqx/tree/map.hpp"
#include "eqx/tree/walk.hpp"

// Adam's fused leaf kernel (detail::adam_leaf) is defined at the end, in
// family OPTIM: with eqx::kernels it is compiled once, in the library, and
// a program's files neither compile it nor parse elementwise_kernel's Eigen
// packet code (see eqx/core/config.hpp).

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

namespace detail {

/// Adam's update and new moments {u, mu, nu} of one float leaf, as one
/// AdamLeaf kernel. Not a template, so the kernel's tracing and rules are
/// compiled once (in eqx::kernels when linked), not in every file that
/// includes the optimisers.
std::array<Array, 3> adam_leaf(const Array& g, const Array& m, const Array& v, const Array& inv_bc1,
                               const Array& inv_bc2, const AdamOptions& o);

}  // namespace detail

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
    detail::PerDType inv_bc1([&](DType d) { return 1.0 / bc1.get(d); });
    detail::PerDType inv_bc2([&](DType d) { return 1.0 / bc2.get(d); });
    bc1.prime(updates);  // before the leaves: keeps each leaf's update one fused region when jitted
    bc2.prime(updates);
    if (o.nesterov) {
      bc1_next.prime(updates);
    } else {  // the kernel's operands (nesterov keeps the op-by-op formula)
      inv_bc1.prime(updates);
      inv_bc2.prime(updates);
    }
    auto [u, mu, nu] = detail::map_leaves<3>(
        "eqx::optim::scale_by_adam",
        [&](const TreePath&, const Array& g, const Array& m, const Array& v) {
          const DType d = g.dtype();
          if (!o.nesterov && (d == float32 || d == float64) && m.dtype() == d && v.dtype() == d &&
              m.shape() == g.shape() && v.shape() == g.shape()) {
            return detail::adam_leaf(g, m, v, inv_bc1.get(d), inv_bc2.get(d), o);
          }
          Array mu = (1 - o.b1) * g + o.b1 * m;
          Array nu = (1 - o.b2) * square(g) + o.b2 * v;
          Array mu_hat = o.nesterov ? o.b1 * (mu / bc1_next.get(d)) + (1 - o.b1) * (g / bc1.get(d)) : mu / bc1.get(d);
          Array nu_hat = nu / bc2.get(d);
          // nu_hat >= +0, so adding an eps_root of 0 changes no bit: skip
          // the pass (one of the update's ~15 per element).
          if (o.eps_root != 0) nu_hat = nu_hat + o.eps_root;
          return std::array{mu_hat / (sqrt(nu_hat) + o.eps), mu, nu};
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
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
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

}  // namespace eqx::optim

#if EQX_KERNELS_HERE(OPTIM)
#include "eqx/transform/elementwise_kernel.hpp"

namespace eqx::optim::detail {

/// One leaf of Adam as one kernel: both moments and the update in
/// registers. Optax's formulas, except that the bias corrections multiply
/// by their reciprocals (computed once per step) instead of dividing each
/// element: within an ulp of Optax, and one division per element, not three.
/// Its tile kernel is compiled in eqx::kernels when that is linked, so it
/// runs with the kernels' ISA whatever the program's flags.
struct AdamLeaf {
  static constexpr std::size_t operands = 11, arrays = 5;
  auto operator()(auto g, auto m, auto v, auto inv_bc1, auto inv_bc2, auto b1, auto one_minus_b1, auto b2,
                  auto one_minus_b2, auto eps, auto eps_root) const {
    auto mu = one_minus_b1 * g + b1 * m;
    auto nu = one_minus_b2 * (g * g) + b2 * v;
    return std::tuple{(mu * inv_bc1) / (sqrt(nu * inv_bc2 + eps_root) + eps), mu, nu};
  }
  static MultiTileKernel compiled_tile(DType dtype) {
    return dtype == float64 ? &eqx::detail::lanes_tile<AdamLeaf, operands, arrays, double>
                            : &eqx::detail::lanes_tile<AdamLeaf, operands, arrays, float>;
  }
};

EQX_KERNEL_INLINE std::array<Array, 3> adam_leaf(const Array& g, const Array& m, const Array& v,
                                                 const Array& inv_bc1, const Array& inv_bc2, const AdamOptions& o) {
  static const auto kernel = eqx::elementwise_kernel(AdamLeaf{});
  auto [u, mu, nu] = kernel(g, m, v, inv_bc1, inv_bc2, o.b1, 1 - o.b1, o.b2, 1 - o.b2, o.eps, o.eps_root);
  return {u, mu, nu};
}

}  // namespace eqx::optim::detail
#endif
