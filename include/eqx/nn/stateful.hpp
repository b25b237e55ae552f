#pragma once
// State for stateful layers (Equinox's eqx.nn.State, StateIndex,
// make_with_state, delete_init_state, inference_mode).
//
// A stateful layer (BatchNorm's running statistics, SpectralNorm's power
// iteration vectors) holds no mutable data. It holds a StateIndex: a key
// into a separate State value, plus the initial value. The model and its
// State travel side by side through jit, grad and vmap; a layer call takes
// the state and returns the new one:
//
//   auto [model, state] = eqx::nn::make_with_state(make_model)(key);
//   auto [y, state2] = model(x, state);              // state2 replaces state
//   model = eqx::nn::inference_mode(model);          // every `inference` field true
//
// make_with_state names every StateIndex by the model's class name and the
// index's path in the model ("Model.norm.ema_state_index"), so two builds of
// the same model give compatible states, moves the initial values into the
// State and deletes them from the model (a deleted init writes nothing to a
// file, as in Equinox). A State is a pytree: its entries, in the order the
// model's StateIndexes were met, each with its value's Array leaves, so it
// jits, serialises (Equinox's record order) and prints. State::set returns
// a new State and marks the old one as superseded: using it afterwards is
// an error, as in Equinox (a copy of a State is the same State; a State
// rebuilt from its leaves, as jit does, is a new one).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/tree/flatten.hpp"
#include "eqx/tree/map.hpp"
#include "eqx/tree/node.hpp"
#include "eqx/tree/path.hpp"
#include "eqx/tree/pformat.hpp"
#include "eqx/tree/reflect.hpp"

namespace eqx::nn {

/// Where a stateful layer's value of type T (any pytree of Arrays) lives in
/// a State: a `marker` naming it, and its initial value (empty once
/// make_with_state has moved it into the State).
template <class T>
struct StateIndex {
  Static<std::string> marker;
  std::optional<T> init;
};

namespace detail {

/// A marker unique within the process, until make_with_state names the index by its path.
inline std::string fresh_marker() {
  static std::atomic<std::uint64_t> counter{0};
  return "<unnamed state " + std::to_string(counter.fetch_add(1) + 1) + ">";
}

template <class X>
struct is_state_index : std::false_type {};
template <class T>
struct is_state_index<StateIndex<T>> : std::true_type {};

/// The structure of a state value of some type T (a TreeDef<T>, type
/// erased), so a State can rebuild its values, and compare them.
class ValueDef {
 public:
  ValueDef() = default;  // default-constructible, as every field type (see nn::Features)
  template <class T>
  static ValueDef of(const T& value) {
    return ValueDef(std::make_shared<const Impl<T>>(TreeDef<T>(value)));
  }
  template <class T>
  const TreeDef<T>* as() const {
    const auto* impl = impl_ ? dynamic_cast<const Impl<T>*>(impl_.get()) : nullptr;
    return impl ? &impl->def : nullptr;
  }
  std::string type_name() const { return impl_ ? impl_->type_name() : std::string("None"); }
  friend bool operator==(const ValueDef& a, const ValueDef& b) {
    return a.impl_ && b.impl_ ? a.impl_->equals(*b.impl_) : a.impl_ == b.impl_;
  }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual bool equals(const Base& other) const = 0;
    virtual std::string type_name() const = 0;
  };
  template <class T>
  struct Impl final : Base {
    TreeDef<T> def;
    explicit Impl(TreeDef<T> d) : def(std::move(d)) {}
    bool equals(const Base& other) const override {
      const auto* o = dynamic_cast<const Impl*>(&other);
      return o != nullptr && o->def == def;
    }
    std::string type_name() const override { return std::string(eqx::detail::type_name<T>()); }
  };
  explicit ValueDef(std::shared_ptr<const Base> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Base> impl_;
};

/// "f32[3]" for each leaf of a value, for messages.
inline std::string describe_leaves(std::span<const Array> leaves) {
  std::string s = "(";
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    if (i) s += ", ";
    s += leaves[i].has_value() ? std::string(short_name(leaves[i].dtype())) + leaves[i].shape().str() : "None";
  }
  return s + ")";
}

}  // namespace detail

/// A new StateIndex with initial value `init` (any pytree of Arrays).
/// Usage: `eqx::nn::StateIndex<eqx::Array> counter = eqx::nn::state_index(eqx::array(0));`
template <class T>
StateIndex<T> state_index(T init) {
  return {{detail::fresh_marker()}, std::move(init)};
}

/// The state of a model: for every StateIndex, its current value.
class State {
 public:
  /// One state value: its marker and structure (static), and its Array leaves.
  struct Entry {
    Static<std::string> marker;
    Static<detail::ValueDef> def;
    std::vector<Array> value;
  };

  State() = default;

  /// The initial state of every StateIndex in `model`, in leaf order.
  /// Prefer make_with_state, which also names the indices by their paths.
  /// Usage: `eqx::nn::State state(model);`
  template <class M>
  explicit State(const M& model) {
    tree_for_each_node(
        [&]<class T>(const TreePath& path, const StateIndex<T>& index) {
          if (!index.init)
            throw ValueError("eqx::nn::State: the StateIndex at " + path.display() +
                             " has no initial value (it was deleted by make_with_state or delete_init_state); build the "
                             "model and its state together with eqx::nn::make_with_state(make_model)(args...)");
          for (const Entry& e : entries_)
            if (*e.marker == *index.marker)
              throw ValueError("eqx::nn::State: two StateIndexes have the marker '" + *index.marker +
                               "'; each stateful layer needs its own StateIndex");
          entries_.push_back({{*index.marker}, {detail::ValueDef::of(*index.init)}, tree_leaves(*index.init)});
        },
        model);
  }

  /// The current value at `index`. Usage: `auto [mean, var] = state.get(bn.ema_state_index.value());`
  template <class T>
  T get(const StateIndex<T>& index) const {
    const Entry& e = entry(index.marker.value, "get");
    const TreeDef<T>* def = e.def->as<T>();
    if (def == nullptr)
      throw ValueError("eqx::nn::State::get: the state '" + *e.marker + "' holds a " + e.def->type_name() +
                       ", not a " + std::string(eqx::detail::type_name<T>()));
    return def->unflatten(e.value);
  }

  /// A new State with `value` at `index`; the value must have the old one's
  /// structure, shapes and dtypes. This State is superseded by the result.
  /// Usage: `state = state.set(index, new_value);`
  template <class T>
  State set(const StateIndex<T>& index, const T& value) const {
    const Entry& old = entry(index.marker.value, "set");
    std::vector<Array> leaves = tree_leaves(value);
    const TreeDef<T>* def = old.def->as<T>();
    bool same = def != nullptr && *def == TreeDef<T>(value) && leaves.size() == old.value.size();
    for (std::size_t i = 0; same && i < leaves.size(); ++i)
      same = leaves[i].has_value() == old.value[i].has_value() &&
             (!leaves[i].has_value() ||
              (leaves[i].shape() == old.value[i].shape() && leaves[i].dtype() == old.value[i].dtype()));
    if (!same)
      throw ValueError("eqx::nn::State::set: the new value for '" + *old.marker + "' is " +
                       detail::describe_leaves(leaves) + " but the old one is " + detail::describe_leaves(old.value) +
                       "; a state keeps its structure, shapes and dtypes (convert with eqx::astype, reshape or "
                       "broadcast the new value)");
    State next;
    next.entries_ = entries_;
    for (Entry& e : next.entries_)
      if (*e.marker == *old.marker) e.value = std::move(leaves);
    *superseded_ = true;
    return next;
  }

  /// The number of state values. Usage: `state.size()`
  std::size_t size() const { return entries_.size(); }
  /// The entries in order (markers, structures and leaves). Usage: `for (auto& e : state.entries()) ...`
  const std::vector<Entry>& entries() const {
    check_current("read");
    return entries_;
  }
  /// Rebuilds a State from its entries (what unflattening a State does).
  static State from_entries(std::vector<Entry> entries) {
    State s;
    s.entries_ = std::move(entries);
    return s;
  }

 private:
  void check_current(const char* what) const {
    if (*superseded_)
      throw ValueError(std::string("eqx::nn::State: cannot ") + what +
                       " a State that was superseded by State::set (a layer returned a new state, and this old one "
                       "was used again, e.g. `auto [y, s2] = layer(x, s1); auto [z, s3] = layer(y, s1);`); use the "
                       "newest state, or clone an old one with eqx::tree_flatten / unflatten if you mean it");
  }
  const Entry& entry(const std::string& marker, const char* what) const {
    check_current(what);
    for (const Entry& e : entries_)
      if (*e.marker == marker) return e;
    throw ValueError("eqx::nn::State::" + std::string(what) + ": no state for the StateIndex '" + marker +
                     "'; the State was not built from this model (build both with eqx::nn::make_with_state)");
  }

  std::vector<Entry> entries_;
  std::shared_ptr<bool> superseded_ = std::make_shared<bool>(false);
};

/// `model` with every StateIndex's initial value deleted (its State holds
/// it): saves memory, and a deleted init writes nothing to a file.
/// Usage: `model = eqx::nn::delete_init_state(model);`
template <class M>
M delete_init_state(const M& model) {
  return tree_map_nodes(
      []<class T>(const TreePath&, StateIndex<T> index) {
        index.init.reset();
        return index;
      },
      model);
}

namespace detail {

template <class F>
struct MakeWithState {
  F make_model;

  template <class... Args>
  auto operator()(Args&&... args) const {
    auto model = make_model(std::forward<Args>(args)...);
    using M = decltype(model);
    const std::string owner(eqx::detail::class_name<M>());
    model = tree_map_nodes(
        [&]<class T>(const TreePath& path, StateIndex<T> index) {
          index.marker.value = owner + path.str();
          return index;
        },
        model);
    State state(model);
    return std::pair<M, State>{delete_init_state(model), std::move(state)};
  }
};

}  // namespace detail

/// Wraps a function that builds a model: the wrapper returns the model
/// (initial states deleted) and its State, with every StateIndex named by
/// the model's class name and its path, so two builds are compatible.
/// Usage: `auto [model, state] = eqx::nn::make_with_state(Model::init)(key);`
template <class F>
auto make_with_state(F make_model) {
  return detail::MakeWithState<F>{std::move(make_model)};
}

/// `tree` with every field named `inference` (a bool, found by reflection
/// in any struct of the tree: Dropout, BatchNorm, MultiheadAttention, ...)
/// set to `value`. Usage: `auto eval_model = eqx::nn::inference_mode(model);`
template <class M>
M inference_mode(const M& tree, bool value = true) {
  return tree_map_nodes(
      [value]<class X>(const TreePath&, X node)
        requires std::is_aggregate_v<X> && requires { requires std::is_same_v<decltype(X::inference), bool>; }
      {
        node.inference = value;
        return node;
      },
      tree);
}

}  // namespace eqx::nn

/// A State is a pytree: its entries (markers and structures static, values' Arrays as leaves).
template <>
struct eqx::tree_traits<eqx::nn::State> {
  static std::tuple<std::vector<eqx::nn::State::Entry>> flatten(const eqx::nn::State& s) { return {s.entries()}; }
  static eqx::nn::State unflatten(std::tuple<std::vector<eqx::nn::State::Entry>> children) {
    return eqx::nn::State::from_entries(std::move(std::get<0>(children)));
  }
  static constexpr std::array<std::string_view, 1> names{"entries"};
};

/// A state's structure prints as the type of its value.
template <>
struct fmt::formatter<eqx::nn::detail::ValueDef> : fmt::formatter<std::string_view> {
  auto format(const eqx::nn::detail::ValueDef& d, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(d.type_name(), ctx);
  }
};

/// `fmt::format("{}", state)` prints the State as a pytree.
template <>
struct fmt::formatter<eqx::nn::State> : fmt::formatter<std::string_view> {
  auto format(const eqx::nn::State& s, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(eqx::tree_pformat(s), ctx);
  }
};
