#pragma once
// eqx::optim's protocol: Optax's GradientTransformation as a C++ value type.
//
// A gradient transformation is a small value (its hyperparameters) with two
// member templates, for any pytree type P of parameters:
//
//   auto state = tx.init(params);                          // State<P>
//   auto [updates, new_state] = tx.update(grads, state, params);
//
// `params` may be left out for transformations that do not read it (a
// transformation that needs it, such as add_decayed_weights, fails to
// compile without it). States are reflectable aggregates whose fields carry
// Optax's names (`count`, `mu`, `nu`, `trace`, ...) or tuples of them (chain),
// so they jit, serialise with eqx::tree_serialise_leaves and print. A step
// count is an int32 scalar Array, so a jitted step never retraces.
//
// Leaves: only floating-point Array leaves are optimised. A None (empty) or
// non-float leaf of `params` gets None in the state; a None update stays
// None and leaves its state untouched (a frozen part). A non-float update
// leaf, or an update where the state has None, throws an eqx::Error naming
// the leaf's path. Scalars (learning rates, betas, bias corrections) are
// computed in each leaf's dtype, so float64 parameters get float64
// arithmetic throughout.
//
// Learning rates are a ScalarOrSchedule: a number, or a Schedule (a callable
// from the int32 count Array to a float Array), called with the count before
// it is incremented, so the first update uses schedule(0), as in Optax.

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>
#include <memory>

#include "eqx/core/array.hpp"
#include "eqx/core/dtype.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/operand.hpp"
#include "eqx/tree/path.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx::optim {

/// The state of a transformation that keeps none (optax.EmptyState).
struct EmptyState {};

/// Stands for "no params passed" in update(updates, state).
struct NoParams {};

/// A function of the int32 step count (a scalar Array) giving a float Array:
/// a learning-rate or weight-decay schedule (optax.Schedule). Built from any
/// callable `Array(const Array& count)`; the built-in schedules also compute
/// directly in a requested dtype, so float64 parameters get float64 values.
/// Usage: `eqx::optim::Schedule s = [](const eqx::Array& c) { return 0.1f / (1.0f + eqx::astype(c, eqx::float32)); };`
class Schedule {
 public:
  Schedule() = default;
  /// A callable taking the count and the dtype to compute in.
  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, Schedule> && std::is_invocable_r_v<Array, F&, const Array&, DType>)
  Schedule(F f) : fn_(std::move(f)) {}  // NOLINT: implicit by design
  /// A callable taking the count; its result is converted to the dtype asked for.
  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, Schedule> && !std::is_invocable_v<F&, const Array&, DType> &&
             std::is_invocable_r_v<Array, F&, const Array&>)
  Schedule(F f)  // NOLINT: implicit by design
      : fn_([f = std::move(f)](const Array& count, DType dtype) mutable { return astype(f(count), dtype); }) {}

  /// The value at `count` as a float32 Array. Usage: `schedule(eqx::array(10))`
  Array operator()(const Array& count) const { return (*this)(count, float32); }
  /// The value at `count` in `dtype`.
  Array operator()(const Array& count, DType dtype) const {
    if (!fn_) throw ValueError("eqx::optim::Schedule: called an empty schedule");
    return fn_(count, dtype);
  }
  explicit operator bool() const { return static_cast<bool>(fn_); }

 private:
  std::function<Array(const Array&, DType)> fn_;
};

/// A number or a Schedule (optax.ScalarOrSchedule): every learning rate.
/// Usage: `eqx::optim::sgd(0.1)`, `eqx::optim::sgd(eqx::optim::linear_schedule(0.1, 0.0, 100))`
class ScalarOrSchedule {
 public:
  template <Scalar S>
  ScalarOrSchedule(S v) : value_(static_cast<double>(v)) {}  // NOLINT: implicit by design
  ScalarOrSchedule(Schedule s) : value_(std::move(s)) {}     // NOLINT
  template <class F>
    requires(!Scalar<std::decay_t<F>> && !std::is_same_v<std::decay_t<F>, Schedule> &&
             std::is_constructible_v<Schedule, F>)
  ScalarOrSchedule(F f) : value_(Schedule(std::move(f))) {}  // NOLINT

  bool is_schedule() const { return std::holds_alternative<Schedule>(value_); }
  /// The number (meaningful when !is_schedule()).
  double value() const { return is_schedule() ? 0.0 : std::get<double>(value_); }
  /// The value at `count` as a scalar Array of `dtype`.
  Array at(const Array& count, DType dtype) const {
    if (is_schedule()) return std::get<Schedule>(value_)(count, dtype);
    return full(Shape{}, std::get<double>(value_), dtype);
  }

 private:
  std::variant<double, Schedule> value_;
};

/// A per-leaf predicate choosing the leaves a transformation applies to
/// (Optax's mask): `bool(const Array&)` or `bool(const TreePath&, const Array&)`,
/// called with each params leaf. An empty Mask selects every leaf. Build one
/// from a mask tree with optim::tree_mask.
/// Usage: `eqx::optim::adamw(1e-3, {.mask = [](const eqx::Array& p) { return p.ndim() >= 2; }})`
class Mask {
 public:
  Mask() = default;
  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, Mask> && std::is_invocable_r_v<bool, F&, const TreePath&, const Array&>)
  Mask(F f) : fn_(std::move(f)) {}  // NOLINT: implicit by design
  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, Mask> && !std::is_invocable_v<F&, const TreePath&, const Array&> &&
             std::is_invocable_r_v<bool, F&, const Array&>)
  Mask(F f) : fn_([f = std::move(f)](const TreePath&, const Array& a) mutable { return f(a); }) {}  // NOLINT

  /// Whether the leaf at `path` is selected.
  bool operator()(const TreePath& path, const Array& leaf) const { return !fn_ || fn_(path, leaf); }
  explicit operator bool() const { return static_cast<bool>(fn_); }

 private:
  std::function<bool(const TreePath&, const Array&)> fn_;
};

namespace detail {

/// Collects the paths whose mask leaf is a true bool scalar.
struct MaskCollector : eqx::detail::ArrayLeafVisitor {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  std::vector<std::string>* selected;
  bool array(const TreePath& path, const Array& a) {
    if (!a.has_value()) return true;
    if (a.dtype() != bool_ || a.ndim() != 0)
      throw DTypeError("eqx::optim::tree_mask: the mask leaf at " + path.display() + " is " +
                       AbstractArray{a.shape(), a.dtype()}.str() +
                       "; a mask tree has a bool scalar (eqx::array(true) / eqx::array(false)) or None at each leaf");
    if (a.is_abstract())
      throw ConcretizationError("eqx::optim::tree_mask: the mask leaf at " + path.display() +
                                " is a traced value; build the mask outside the jitted function");
    if (a.item<bool>()) selected->push_back(path.str());
    return true;
  }
};

}  // namespace detail

/// A Mask from a mask tree (Optax's mask pytree): a tree of the params'
/// type with a bool scalar Array at each leaf (true = apply), None = false.
/// Usage: `auto m = eqx::optim::tree_mask(eqx::tree_map([](const eqx::Array& p) { return eqx::array(p.ndim() > 1); }, params));`
template <class T>
Mask tree_mask(const T& mask_tree) {
  auto selected = std::make_shared<std::vector<std::string>>();
  detail::MaskCollector c{{}, selected.get()};
  TreePath path;
  eqx::detail::visit_tree(c, path, mask_tree);
  return Mask([selected](const TreePath& p, const Array&) {
    const std::string s = p.str();
    for (const std::string& x : *selected)
      if (x == s) return true;
    return false;
  });
}

/// Does nothing (optax.identity): updates pass through, the state is empty.
/// Usage: `auto tx = eqx::optim::chain(eqx::optim::identity(), eqx::optim::sgd(0.1));`
struct Identity {
  template <class P>
  EmptyState init(const P&) const {
    return {};
  }
  template <class P, class Q = NoParams>
  std::pair<P, EmptyState> update(const P& updates, const EmptyState& state, const Q& = {}) const {
    return {updates, state};
  }
};
inline Identity identity() { return {}; }

namespace detail {

inline std::string type_str(const Array& a) { return AbstractArray{a.shape(), a.dtype()}.str(); }

/// count + 1, staying at the largest int32 instead of overflowing (optax.safe_increment).
inline Array safe_increment(const Array& count) {
  constexpr std::int32_t top = std::numeric_limits<std::int32_t>::max();
  return where(count < top, count + 1, count);
}

/// The initial step count: int32 zero.
inline Array zero_count() { return zeros(Shape{}, int32); }

/// Records the float dtypes of a tree's Array leaves (for PerDType::prime).
struct FloatDTypes : eqx::detail::ArrayLeafVisitor {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  std::optional<DType> narrow;  // the first float leaf's dtype other than float64
  bool f64 = false;
  bool array(const TreePath&, const Array& a) {
    if (a.has_value() && a.dtype() == float64) f64 = true;
    else if (a.has_value() && is_floating(a.dtype()) && !narrow) narrow = a.dtype();
    return true;
  }
};

/// A scalar of each float dtype, made at most once per update.
class PerDType {
 public:
  explicit PerDType(std::function<Array(DType)> make) : make_(std::move(make)) {}
  const Array& get(DType d) {
    Array& slot = d == float64 ? f64_ : f32_;
    if (!slot.has_value()) slot = make_(d);
    return slot;
  }
  /// Makes the scalar now for each float dtype among `tree`'s leaves. Call it
  /// before map_leaves when every leaf uses the scalar: made lazily, inside
  /// the first leaf's function, the scalar's equations land between that
  /// leaf's elementwise equations in a traced graph and split its fused
  /// region in two (the first leaf's update was then three kernels).
  template <class P>
  PerDType& prime(const P& tree) {
    FloatDTypes seen;
    TreePath path;
    eqx::detail::visit_tree(seen, path, tree);
    if (seen.narrow) get(*seen.narrow);
    if (seen.f64) get(float64);
    return *this;
  }

 private:
  std::function<Array(DType)> make_;
  Array f32_, f64_;
};

/// `value` at every float leaf of `params`, None elsewhere (optax.tree.full_like).
struct FullLike {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  double value;
  Array array(const TreePath&, const Array& a) {
    if (!a.has_value() || !is_floating(a.dtype())) return Array{};
    return full(a.shape(), value, a.dtype());
  }
};
template <class P>
P full_like(const P& params, double value) {
  FullLike b{value};
  TreePath path;
  return eqx::detail::rebuild_tree(b, path, params);
}
/// Optimiser-state zeros: float leaves of `params` as zeros, None elsewhere.
template <class P>
P zeros_like(const P& params) {
  return detail::full_like(params, 0.0);  // qualified: eqx::full_like is found by ADL for an Array
}
/// None at every leaf (the state of a disabled part, such as sgd without momentum).
struct NonesBuilder {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  Array array(const TreePath&, const Array&) { return Array{}; }
};
template <class P>
P nones_like(const P& params) {
  NonesBuilder b;
  TreePath path;
  return eqx::detail::rebuild_tree(b, path, params);
}

/// Checks that the updates and the other trees have one structure, naming
/// the transformation and the path.
struct StructureCheck {
  std::string_view who;
  template <class... O>
  bool array(const TreePath&, const Array&, const O&...) {
    return true;
  }
  template <class X, class... O>
  bool static_leaf(const TreePath&, const X&, const O&...) {
    return true;
  }
  bool mismatch(const TreePath& path, const std::string& what) {
    throw TreeStructureError(std::string(who) + ": the updates and the optimiser state or params differ at " +
                             path.display() + ": " + what +
                             "; pass gradients of the params the optimiser was initialised with, and the state it "
                             "returned");
  }
};

/// The first pass of map_leaves: calls f where the update is a float Array,
/// records all N results, returns the new update.
template <std::size_t N, class F>
struct LeafDriver {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  std::string_view who;
  F& f;
  std::vector<std::array<Array, N>>& results;
  template <class... O>
  Array array(const TreePath& path, const Array& u, const O&... o) {
    std::array<Array, N> r;
    if (!u.has_value()) {
      const Array* in[] = {&o..., nullptr};
      for (std::size_t k = 1; k < N; ++k) r[k] = *in[k - 1];
    } else {
      if (!is_floating(u.dtype()))
        throw DTypeError(std::string(who) + ": the update at " + path.display() + " is " + type_str(u) +
                         ", not floating point; only float leaves can be optimised (filter the params and "
                         "gradients with eqx::filter(tree, eqx::is_inexact_array), or leave None there)");
      std::size_t k = 0;
      (check_other(path, u, o, k++), ...);
      r = f(path, u, o...);
    }
    results.push_back(r);
    return r[0];
  }
  void check_other(const TreePath& path, const Array& u, const Array& o, std::size_t k) {
    const bool is_state = k < N - 1;
    if (!o.has_value())
      throw TreeStructureError(
          std::string(who) + ": at " + path.display() + " the update is " + type_str(u) + " but the " +
          (is_state ? "optimiser state" : "params") + " has None" +
          (is_state ? " (the state was initialised from params with None or a non-float leaf there); initialise "
                      "the optimiser with params that have this leaf"
                    : "; pass the params whose gradients these are"));
    if (o.shape() != u.shape() || o.dtype() != u.dtype())
      throw ShapeError(std::string(who) + ": at " + path.display() + " the update is " + type_str(u) + " but the " +
                       (is_state ? "optimiser state" : "params") + " leaf is " + type_str(o) +
                       "; gradients must have their parameter's shape and dtype");
  }
};

/// The later passes of map_leaves: result k at each leaf, in order.
template <std::size_t N>
struct LeafReplay {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  std::vector<std::array<Array, N>>& results;
  std::size_t k, i = 0;
  Array array(const TreePath&, const Array&) { return results[i++][k]; }
};

/// The per-leaf driver of every transformation. `f(path, u, o...)` gives
/// N Arrays at each leaf whose update u is a float Array: the new update
/// and then the new values of the first N-1 trees in `others` (the
/// states); the remaining trees are read only (params). Where u is None the
/// update stays None and the states are kept. Returns N trees of P's type.
template <std::size_t N, class F, class P, class... Others>
std::array<P, N> map_leaves(std::string_view who, F&& f, const P& updates, const Others&... others) {
  static_assert((std::is_same_v<P, Others> && ...), "eqx::optim: updates, state and params trees must have one type");
  static_assert(N >= 1 && N - 1 <= sizeof...(Others));
  {
    StructureCheck check{who};
    TreePath path;
    eqx::detail::visit_tree(check, path, updates, others...);
  }
  std::vector<std::array<Array, N>> results;
  LeafDriver<N, std::remove_reference_t<F>> first{who, f, results};
  TreePath path;
  auto build = [&](std::size_t k) -> P {  // called in order: k = 0 fills `results`
    if (k == 0) return eqx::detail::rebuild_tree(first, path, updates, others...);
    LeafReplay<N> rest{results, k};
    return eqx::detail::rebuild_tree(rest, path, updates);
  };
  return [&]<std::size_t... K>(std::index_sequence<K...>) {
    return std::array<P, N>{build(K)...};  // braced lists evaluate left to right
  }(std::make_index_sequence<N>{});
}

/// Throws unless Q is P (params given) or NoParams.
template <class P, class Q>
constexpr void check_params_type() {
  static_assert(std::is_same_v<Q, NoParams> || std::is_same_v<Q, P>,
                "eqx::optim: params must have the same type as the updates (the tree the optimiser was initialised "
                "with)");
}

}  // namespace detail

}  // namespace eqx::optim
