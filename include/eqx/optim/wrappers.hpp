#pragma once
// Optax's wrappers and combinators: transformations that route, gate or
// reparametrise other transformations.
//
//   // Adam on the encoder, the head frozen (the frozen-layer pattern):
//   auto opt = eqx::optim::multi_transform(
//       std::tuple{eqx::optim::labelled("train", eqx::optim::adam(1e-3)),
//                  eqx::optim::labelled("frozen", eqx::optim::set_to_zero())},
//       [](const eqx::TreePath& path, const eqx::Array&) {
//         return path.str().starts_with(".head") ? "frozen" : "train";
//       });
//   // Gradient accumulation over 4 micro-batches:
//   auto acc = eqx::optim::multi_steps(eqx::optim::adamw(3e-4), 4);
//   // A learning rate held in the state, changeable between jitted steps:
//   auto inj = eqx::optim::inject_hyperparams(
//       [](const eqx::optim::Hyperparams& h) { return eqx::optim::adam(h["learning_rate"]); },
//       {{"learning_rate", 1e-3}});
//
// masked, multi_transform, set_to_zero, zero_nans, apply_every,
// MultiSteps and inject_hyperparams follow Optax's semantics
// (optax/transforms/_masking.py, _combining.py, _constraining.py,
// _accumulation.py, optax/_src/transform.py, optax/schedules/_inject.py);
// their states carry Optax's field names. Where Optax replaces a
// masked-out leaf by a MaskedNode, eqx uses None, which every
// transformation passes through with its state untouched.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/optim/base.hpp"
#include "eqx/tree/map.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx::optim {

// --- set_to_zero, zero_nans --------------------------------------------------------

/// Replaces every update by zeros of its shape and dtype (optax.set_to_zero):
/// with masked or multi_transform, the frozen part of a model.
struct SetToZero {
  template <class P>
  EmptyState init(const P&) const {
    return {};
  }
  template <class P, class Q = NoParams>
  std::pair<P, EmptyState> update(const P& updates, const EmptyState& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    auto [u] = detail::map_leaves<1>(
        "eqx::optim::set_to_zero",
        [](const TreePath&, const Array& g) { return std::array{zeros(g.shape(), g.dtype())}; }, updates);
    return {u, state};
  }
};
/// Usage: `eqx::optim::masked(eqx::optim::set_to_zero(), frozen_mask)`
inline SetToZero set_to_zero() { return {}; }

/// zero_nans' state (optax.ZeroNansState): a bool scalar per float leaf,
/// true when the last update had a NaN there; None elsewhere.
template <class P>
struct ZeroNansState {
  P found_nan;
};

namespace detail {

/// A false bool scalar at every float leaf, None elsewhere.
struct FalseFlags {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  Array array(const TreePath&, const Array& a) {
    if (!a.has_value() || !is_floating(a.dtype())) return Array{};
    return full(Shape{}, false, bool_);
  }
};

/// any(isnan(u)) where the update has a value; the old flag elsewhere.
struct NanFlags {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  Array array(const TreePath&, const Array& u, const Array& old) {
    if (!u.has_value()) return old;
    return any(isnan(u));
  }
};

}  // namespace detail

/// Replaces NaNs in the updates by 0 and records, per leaf, whether there
/// were any (optax.zero_nans).
struct ZeroNans {
  template <class P>
  ZeroNansState<P> init(const P& params) const {
    detail::FalseFlags b;
    TreePath path;
    return {eqx::detail::rebuild_tree(b, path, params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ZeroNansState<P>> update(const P& updates, const ZeroNansState<P>& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    {
      detail::StructureCheck check{"eqx::optim::zero_nans"};
      TreePath path;
      eqx::detail::visit_tree(check, path, updates, state.found_nan);
    }
    auto [u] = detail::map_leaves<1>(
        "eqx::optim::zero_nans",
        [](const TreePath&, const Array& g) { return std::array{where(isnan(g), 0.0, g)}; }, updates);
    detail::NanFlags b;
    TreePath path;
    return {u, {eqx::detail::rebuild_tree(b, path, updates, state.found_nan)}};
  }
};
/// Usage: `eqx::optim::chain(eqx::optim::zero_nans(), eqx::optim::adam(1e-3))`
inline ZeroNans zero_nans() { return {}; }

// --- masked ----------------------------------------------------------------------

/// masked's state (optax.MaskedState): the inner state, initialised from
/// the params with the masked-out leaves None (so it keeps nothing there).
template <class S>
struct MaskedState {
  S inner_state;
};

namespace detail {

/// The leaves `mask` selects, None elsewhere (Optax's MaskedNode).
struct KeepSelected {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  const Mask& mask;
  Array array(const TreePath& path, const Array& a) {
    if (!a.has_value()) return a;
    return mask(path, a) ? a : Array{};
  }
};
template <class P>
P keep_selected(const P& tree, const Mask& mask) {
  KeepSelected b{mask};
  TreePath path;
  return eqx::detail::rebuild_tree(b, path, tree);
}

/// The inner transformation's update where `mask` selects the leaf, the
/// original update elsewhere.
struct MergeSelected {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  const Mask& mask;
  Array array(const TreePath& path, const Array& inner, const Array& original) {
    if (!original.has_value()) return original;
    return mask(path, original) ? inner : original;
  }
};

}  // namespace detail

/// Applies `inner` to the leaves `mask` selects and passes the others
/// through unchanged (optax.masked). The mask is called with each params
/// leaf in init and each update leaf in update, so it must select by path,
/// shape or dtype, never by value.
template <class T>
struct Masked {
  T inner;
  Mask mask;
  template <class P>
  auto init(const P& params) const {
    return MaskedState<decltype(inner.init(params))>{inner.init(detail::keep_selected(params, mask))};
  }
  template <class P, class S, class Q = NoParams>
  std::pair<P, MaskedState<S>> update(const P& updates, const MaskedState<S>& state, const Q& params = {}) const {
    detail::check_params_type<P, Q>();
    P masked_updates = detail::keep_selected(updates, mask);
    auto [u, s] = [&] {
      if constexpr (std::is_same_v<Q, NoParams>) return inner.update(masked_updates, state.inner_state);
      else return inner.update(masked_updates, state.inner_state, detail::keep_selected(params, mask));
    }();
    detail::MergeSelected b{mask};
    TreePath path;
    return {eqx::detail::rebuild_tree(b, path, u, updates), {std::move(s)}};
  }
};
/// Usage: `eqx::optim::masked(eqx::optim::add_decayed_weights(1e-4), [](const eqx::Array& p) { return p.ndim() > 1; })`
template <class T>
Masked<std::decay_t<T>> masked(T&& inner, Mask mask) {
  return {std::forward<T>(inner), std::move(mask)};
}

// --- multi_transform ---------------------------------------------------------------

/// A transformation with the label of the leaves it applies to, for multi_transform.
template <class T>
struct Labelled {
  std::string label;
  T transform;
};
/// Usage: `eqx::optim::labelled("frozen", eqx::optim::set_to_zero())`
template <class T>
Labelled<std::decay_t<T>> labelled(std::string label, T&& transform) {
  return {std::move(label), std::forward<T>(transform)};
}

/// The label of each params leaf (Optax's param_labels as a function):
/// `std::string(const TreePath&, const Array&)` or `std::string(const Array&)`.
/// Usage: `eqx::optim::Labels l = [](const eqx::Array& p) { return p.ndim() > 1 ? "adam" : "sgd"; };`
class Labels {
 public:
  Labels() = default;
  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, Labels> &&
             std::is_convertible_v<std::invoke_result_t<F&, const TreePath&, const Array&>, std::string>)
  Labels(F f)  // NOLINT: implicit by design
      : fn_([f = std::move(f)](const TreePath& p, const Array& a) mutable { return std::string(f(p, a)); }) {}
  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, Labels> && !std::is_invocable_v<F&, const TreePath&, const Array&> &&
             std::is_convertible_v<std::invoke_result_t<F&, const Array&>, std::string>)
  Labels(F f)  // NOLINT: implicit by design
      : fn_([f = std::move(f)](const TreePath&, const Array& a) mutable { return std::string(f(a)); }) {}

  /// The label of the leaf at `path`. Usage: `labels(eqx::TreePath{}, leaf)`
  std::string operator()(const TreePath& path, const Array& leaf) const {
    if (!fn_) throw ValueError("eqx::optim::multi_transform: no param_labels function was given");
    return fn_(path, leaf);
  }

 private:
  std::function<std::string(const TreePath&, const Array&)> fn_;
};

/// multi_transform's state (optax.MultiTransformState): one MaskedState per
/// labelled transformation, in the order they were given.
template <class... S>
struct MultiTransformState {
  std::tuple<S...> inner_states;
};

namespace detail {

/// Throws unless every float leaf has a label with a transformation.
struct LabelCheck : eqx::detail::ArrayLeafVisitor {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  const Labels& labels;
  const std::set<std::string>& known;
  bool array(const TreePath& path, const Array& a) {
    if (!a.has_value() || !is_floating(a.dtype())) return true;
    const std::string l = labels(path, a);
    if (!known.contains(l)) {
      std::string names;
      for (const std::string& k : known) names += (names.empty() ? "" : ", ") + k;
      throw ValueError("eqx::optim::multi_transform: the leaf at " + path.display() + " has label \"" + l +
                       "\", which has no transformation (the labels given are: " + names +
                       "); give a transformation for every label param_labels returns");
    }
    return true;
  }
};

}  // namespace detail

/// A different transformation for each labelled part of the params
/// (optax.multi_transform / optax.partition): each transformation is
/// masked to the leaves whose label is its own. param_labels is asked for
/// the float leaves only (None and non-float leaves pass through
/// untouched), and every label it gives must have a transformation.
template <class... Ts>
struct MultiTransform {
  std::tuple<Labelled<Ts>...> transforms;
  Labels param_labels;

  template <class P>
  auto init(const P& params) const {
    check_labels(params);
    return std::apply(
        [&](const auto&... t) {
          return MultiTransformState<decltype(masked_for(t).init(params))...>{{masked_for(t).init(params)...}};
        },
        transforms);
  }
  template <class P, class... S, class Q = NoParams>
  std::pair<P, MultiTransformState<S...>> update(const P& updates, const MultiTransformState<S...>& state,
                                                 const Q& params = {}) const {
    static_assert(sizeof...(S) == sizeof...(Ts), "eqx::optim::multi_transform: the state is not this optimiser's");
    detail::check_params_type<P, Q>();
    check_labels(updates);
    P u = updates;
    std::tuple<S...> out;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (([&] {
         auto [ui, si] = masked_for(std::get<I>(transforms)).update(u, std::get<I>(state.inner_states), params);
         u = std::move(ui);
         std::get<I>(out) = std::move(si);
       }()),
       ...);
    }(std::index_sequence_for<Ts...>{});
    return {u, {std::move(out)}};
  }

 private:
  template <class T>
  Masked<T> masked_for(const Labelled<T>& t) const {
    return {t.transform, Mask([labels = param_labels, label = t.label](const TreePath& p, const Array& a) {
              return labels(p, a) == label;
            })};
  }
  template <class P>
  void check_labels(const P& tree) const {
    std::set<std::string> known;
    std::apply([&](const auto&... t) { (known.insert(t.label), ...); }, transforms);
    detail::LabelCheck c{{}, param_labels, known};
    TreePath path;
    eqx::detail::visit_tree(c, path, tree);
  }
};

/// Usage: `eqx::optim::multi_transform(std::tuple{eqx::optim::labelled("adam", eqx::optim::adam(1e-3)), eqx::optim::labelled("frozen", eqx::optim::set_to_zero())}, labels)`
template <class... Ts>
MultiTransform<Ts...> multi_transform(std::tuple<Labelled<Ts>...> transforms, Labels param_labels) {
  std::set<std::string> seen;
  std::apply(
      [&](const auto&... t) {
        (([&] {
           if (!seen.insert(t.label).second)
             throw ValueError("eqx::optim::multi_transform: the label \"" + t.label +
                              "\" is given twice; give each label one transformation");
         }()),
         ...);
      },
      transforms);
  return {std::move(transforms), std::move(param_labels)};
}

// --- gradient accumulation -----------------------------------------------------------

/// apply_every's state (optax.ApplyEvery): the mini-step counter modulo k
/// and the sum of the updates since the last emission.
template <class P>
struct ApplyEveryState {
  Array count;  ///< int32 scalar in [0, k)
  P grad_acc;
};

/// Sums the updates and emits the sum every k-th step, zeros in between
/// (optax.apply_every). Other transformations of a chain still update
/// their states every step; for a true larger batch use MultiSteps.
struct ApplyEvery {
  std::int32_t k = 1;
  template <class P>
  ApplyEveryState<P> init(const P& params) const {
    return {detail::zero_count(), detail::zeros_like(params)};
  }
  template <class P, class Q = NoParams>
  std::pair<P, ApplyEveryState<P>> update(const P& updates, const ApplyEveryState<P>& state, const Q& = {}) const {
    detail::check_params_type<P, Q>();
    const Array accumulate = state.count != 0;
    const Array emit = state.count == k - 1;
    auto [u, acc] = detail::map_leaves<2>(
        "eqx::optim::apply_every",
        [&](const TreePath&, const Array& g, const Array& a) {
          Array acc = where(accumulate, a + g, g);
          return std::array{where(emit, acc, 0.0), acc};
        },
        updates, state.grad_acc);
    return {u, {where(emit, 0, state.count + 1), acc}};
  }
};
/// Usage: `eqx::optim::chain(eqx::optim::apply_every(4), eqx::optim::sgd(0.1))`
inline ApplyEvery apply_every(std::int64_t k = 1) {
  if (k < 1 || k > std::numeric_limits<std::int32_t>::max())
    throw ValueError("eqx::optim::apply_every: k is " + std::to_string(k) + "; it must be a positive int32");
  return {static_cast<std::int32_t>(k)};
}

/// How many mini-steps MultiSteps accumulates: a number, or a function of
/// the gradient step count (an int32 scalar Array) giving an int32 scalar,
/// so the effective batch size can grow during training (Optax's
/// every_k_schedule).
/// Usage: `eqx::optim::EveryK k = [](const eqx::Array& step) { return eqx::where(step < 100, 1, 4); };`
class EveryK {
 public:
  EveryK(std::int64_t k) {  // NOLINT: implicit by design
    if (k < 1 || k > std::numeric_limits<std::int32_t>::max())
      throw ValueError("eqx::optim::MultiSteps: every_k_schedule is " + std::to_string(k) +
                       "; it must be a positive int32");
    fn_ = [k32 = static_cast<std::int32_t>(k)](const Array&) { return full(Shape{}, k32, int32); };
  }
  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, EveryK> && !std::is_integral_v<std::decay_t<F>> &&
             std::is_invocable_r_v<Array, F&, const Array&>)
  EveryK(F f) : fn_(std::move(f)) {}  // NOLINT: implicit by design

  /// The number of mini-steps for gradient step `gradient_step`, as an int32 scalar.
  /// Usage: `k(state.gradient_step)`
  Array operator()(const Array& gradient_step) const {
    Array k = fn_(gradient_step);
    if (!k.has_value() || k.ndim() != 0 || !is_integer(k.dtype()))
      throw DTypeError("eqx::optim::MultiSteps: every_k_schedule returned " +
                       (k.has_value() ? detail::type_str(k) : std::string("None")) +
                       "; it must return an integer scalar (the number of mini-steps)");
    return astype(k, int32);
  }

 private:
  std::function<Array(const Array&)> fn_;
};

/// MultiSteps' keyword arguments.
struct MultiStepsOptions {
  bool use_grad_mean = true;  ///< average the k gradients (else sum them)
};

/// MultiSteps' state (optax.MultiStepsState, without skip_state: no
/// should_skip_update_fn). The accumulator has the params' dtype.
template <class P, class S>
struct MultiStepsState {
  Array mini_step;      ///< int32 scalar in [0, k)
  Array gradient_step;  ///< int32 scalar: inner updates applied so far
  S inner_opt_state;
  P acc_grads;
};

/// Gradient accumulation (optax.MultiSteps): the updates of k consecutive
/// calls are averaged (Welford's running mean) or summed; every k-th call
/// passes them to the inner optimiser and returns its update, the other
/// calls return zeros and leave the inner state as it was. So k
/// micro-batches give the inner optimiser's step on their mean gradient.
template <class T>
struct MultiSteps {
  T opt;
  EveryK every_k_schedule = 1;
  MultiStepsOptions o{};

  template <class P>
  auto init(const P& params) const {
    using S = decltype(opt.init(params));
    return MultiStepsState<P, S>{detail::zero_count(), detail::zero_count(), opt.init(params),
                                 detail::zeros_like(params)};
  }
  template <class P, class S, class Q = NoParams>
  std::pair<P, MultiStepsState<P, S>> update(const P& updates, const MultiStepsState<P, S>& state,
                                             const Q& params = {}) const {
    detail::check_params_type<P, Q>();
    const Array n = state.mini_step;
    // [0]: the accumulated gradient where the update has a value (None where
    // it is None, so the inner optimiser leaves that part alone); [1]: the
    // accumulator kept in the state.
    const auto acc_trees = detail::map_leaves<2>(
        "eqx::optim::MultiSteps",
        [&](const TreePath&, const Array& g, const Array& a) {
          Array next = o.use_grad_mean ? a + (g - a) / astype(n + 1, g.dtype()) : a + g;
          return std::array{next, next};
        },
        updates, state.acc_grads);
    const P& acc_updates = acc_trees[0];
    const P& acc = acc_trees[1];
    auto [inner_updates, inner_state] = [&] {
      if constexpr (std::is_same_v<Q, NoParams>) return opt.update(acc_updates, state.inner_opt_state);
      else return opt.update(acc_updates, state.inner_opt_state, params);
    }();
    const Array emit = n == every_k_schedule(state.gradient_step) - 1;
    S kept = tree_map([&](const Array& old, const Array& next) { return where(emit, next, old); },
                      state.inner_opt_state, inner_state);
    P out = tree_map([&](const Array& u) { return where(emit, u, 0.0); }, inner_updates);
    P acc_kept = tree_map([&](const Array& a) { return where(emit, 0.0, a); }, acc);
    return {out,
            {where(emit, 0, n + 1), where(emit, detail::safe_increment(state.gradient_step), state.gradient_step),
             std::move(kept), std::move(acc_kept)}};
  }

  /// True (a bool scalar) when the last update emitted the inner
  /// optimiser's step (optax.MultiSteps.has_updated).
  /// Usage: `if (acc.has_updated(state).item<bool>()) ...`
  template <class P, class S>
  Array has_updated(const MultiStepsState<P, S>& state) const {
    return logical_and(state.mini_step == 0, state.gradient_step > 0);
  }
};

/// Usage: `auto opt = eqx::optim::multi_steps(eqx::optim::adam(1e-3), 4);`
/// (every_k_schedule may also be a function of the gradient step: see EveryK)
template <class T>
MultiSteps<std::decay_t<T>> multi_steps(T&& opt, EveryK every_k_schedule, MultiStepsOptions opts = {}) {
  return {std::forward<T>(opt), std::move(every_k_schedule), opts};
}

// --- inject_hyperparams ----------------------------------------------------------------

/// The hyperparameters inject_hyperparams hands its factory: each one, by
/// name, as a ScalarOrSchedule that reads the value held in the state.
class Hyperparams {
 public:
  explicit Hyperparams(const std::map<std::string, Array>& values) : values_(&values) {}
  /// The hyperparameter `name`, usable as any learning rate or weight decay.
  /// Usage: `eqx::optim::adam(h["learning_rate"])`
  ScalarOrSchedule operator[](const std::string& name) const { return ScalarOrSchedule(Schedule(array_of(name))); }
  /// The hyperparameter `name` as the scalar Array held in the state.
  /// Usage: `eqx::Array lr = h.array("learning_rate");  // e.g. to log it inside the step`
  const Array& array(const std::string& name) const { return values_->at(find(name)); }

 private:
  struct Reader {
    Array value;
    Array operator()(const Array&, DType d) const { return astype(value, d); }
  };
  Reader array_of(const std::string& name) const { return {values_->at(find(name))}; }
  std::string find(const std::string& name) const {
    if (values_->contains(name)) return name;
    std::string names;
    for (const auto& [k, v] : *values_) names += (names.empty() ? "" : ", ") + k;
    throw ValueError("eqx::optim::inject_hyperparams: the factory asked for the hyperparameter \"" + name +
                     "\", which was not given (given: " + names + ")");
  }
  const std::map<std::string, Array>* values_;
};

/// inject_hyperparams' state (optax.InjectHyperparamsState): the step
/// count, each hyperparameter as a scalar Array (the params' widest float
/// dtype), and the inner optimiser's state.
template <class S>
struct InjectHyperparamsState {
  Array count;  ///< int32 scalar
  std::map<std::string, Array> hyperparams;
  S inner_state;
};

namespace detail {
struct WidestFloat : eqx::detail::ArrayLeafVisitor {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  DType d = float32;
  bool array(const TreePath&, const Array& a) {
    if (a.has_value() && a.dtype() == float64) d = float64;
    return true;
  }
};
}  // namespace detail

/// Holds an optimiser's hyperparameters in its state (optax.inject_hyperparams):
/// `make(Hyperparams)` builds the optimiser from them at each update, so
/// changing `state.hyperparams` between steps (set_hyperparam) changes the
/// step without retracing a jitted step. A hyperparameter given as a
/// schedule is evaluated at the count before each update and stored.
template <class F>
struct InjectHyperparams {
  F make;
  std::map<std::string, ScalarOrSchedule> hyperparams;

  template <class P>
  auto init(const P& params) const {
    detail::WidestFloat w;
    TreePath path;
    eqx::detail::visit_tree(w, path, params);
    const Array count = detail::zero_count();
    std::map<std::string, Array> values;
    for (const auto& [k, v] : hyperparams) values[k] = v.at(count, w.d);
    auto inner = make(Hyperparams(values)).init(params);
    return InjectHyperparamsState<decltype(inner)>{count, std::move(values), std::move(inner)};
  }
  template <class P, class S, class Q = NoParams>
  std::pair<P, InjectHyperparamsState<S>> update(const P& updates, const InjectHyperparamsState<S>& state,
                                                 const Q& params = {}) const {
    detail::check_params_type<P, Q>();
    std::map<std::string, Array> values = state.hyperparams;
    for (const auto& [k, v] : hyperparams) {
      auto it = values.find(k);
      if (it == values.end())
        throw ValueError("eqx::optim::inject_hyperparams: the state has no hyperparameter \"" + k +
                         "\"; the state comes from another optimiser");
      if (v.is_schedule()) it->second = v.at(state.count, it->second.dtype());
    }
    auto [u, s] = make(Hyperparams(values)).update(updates, state.inner_state, params);
    return {u, {detail::safe_increment(state.count), std::move(values), std::move(s)}};
  }
};

/// Usage: `auto opt = eqx::optim::inject_hyperparams([](const eqx::optim::Hyperparams& h) { return eqx::optim::adamw(h["learning_rate"], {.weight_decay = h["weight_decay"]}); }, {{"learning_rate", 1e-3}, {"weight_decay", 1e-4}});`
template <class F>
InjectHyperparams<std::decay_t<F>> inject_hyperparams(F&& make, std::map<std::string, ScalarOrSchedule> hyperparams) {
  return {std::forward<F>(make), std::move(hyperparams)};
}

/// Sets hyperparameter `name` in an inject_hyperparams state to `value`,
/// keeping its dtype (so a jitted step is not retraced).
/// Usage: `eqx::optim::set_hyperparam(std::get<0>(state), "learning_rate", 1e-4);`
template <class S>
void set_hyperparam(InjectHyperparamsState<S>& state, const std::string& name, double value) {
  auto it = state.hyperparams.find(name);
  if (it == state.hyperparams.end()) {
    std::string names;
    for (const auto& [k, v] : state.hyperparams) names += (names.empty() ? "" : ", ") + k;
    throw ValueError("eqx::optim::set_hyperparam: the state has no hyperparameter \"" + name + "\" (it has: " +
                     names + ")");
  }
  it->second = full(Shape{}, value, it->second.dtype());
}

}  // namespace eqx::optim
