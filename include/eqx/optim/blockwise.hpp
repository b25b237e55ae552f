#pragma once
// Optax's building blocks that look at each leaf as a whole: an exponential
// moving average of the updates (optax.ema), centralising (subtracting each
// leaf's mean over its non-leading axes), clipping each leaf to a block RMS,
// LAMB/LARS's trust ratio (|param| / |update| per leaf), and sign.
// The protocol is optim/base.hpp's; the basic blocks are in optim/transform.hpp.
//
//   auto lamb_like = eqx::optim::chain(eqx::optim::scale_by_adam(), eqx::optim::scale_by_trust_ratio(),
//                                      eqx::optim::scale_by_learning_rate(1e-3));

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/optim/base.hpp"
#include "eqx/optim/transform.hpp"
#include "eqx/random.hpp"
#include "eqx/tree/map.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx::optim {

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

}  // namespace eqx::optim
