#pragma once
// Optax's adaptive-rate scalers beyond Adam's family: AMSGrad, AdaDelta,
// Yogi, NovoGrad, gradient noise (noisy_sgd), Adafactor's factored second
// moments and parameter-scaled updates, and SM3's per-axis accumulators.
// The protocol is optim/base.hpp's; Adam's family is in optim/transform.hpp.
//
//   auto tx = eqx::optim::chain(eqx::optim::scale_by_yogi(), eqx::optim::scale_by_learning_rate(1e-3));

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
#include "eqx/optim/blockwise.hpp"
#include "eqx/optim/transform.hpp"
#include "eqx/random.hpp"
#include "eqx/tree/map.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx::optim {

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
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  Array array(const TreePath&, const Array& a) {
    if (!a.has_value() || !is_floating(a.dtype())) return Array{};
    return zeros(Shape{}, a.dtype());
  }
};
/// Replays per-path values computed in map_leaves, keeping the old leaf elsewhere.
struct PathReplay {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  const std::map<std::string, Array>& computed;
  Array array(const TreePath& path, const Array& old) {
    auto it = computed.find(path.str());
    return it == computed.end() ? old : it->second;
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
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
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
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  std::size_t axis;
  Array array(const TreePath&, const Array& p) {
    if (!p.has_value() || !is_floating(p.dtype()) || p.ndim() <= axis) return Array{};
    return zeros(Shape{p.shape()[axis]}, p.dtype());
  }
};
struct MaxRank : eqx::detail::ArrayLeafVisitor {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
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
