#pragma once
// nn::Sequential and nn::Lambda (eqx.nn.Sequential / eqx.nn.Lambda): layers
// applied one after another, and any function wrapped as a layer.
//
// A Sequential holds its layers in a std::tuple (a pytree: its leaves are
// its layers' leaves, in order, as Equinox's tuple of layers). Each layer is
// called in the form it supports, found at compile time:
//   - layer(x, state, key) or layer(x, state) returning std::pair{y, new
//     state}: a stateful layer (Equinox's StatefulLayer); the state is
//     threaded from layer to layer. The state type is any type S.
//   - otherwise layer(x, key) if the layer takes a key, else layer(x).
// A key given to the Sequential is split into size() keys, layer i getting
// keys[i] (as Equinox's jr.split(key, len(layers))); without one, layers that
// take a key get an empty Array (Equinox's key=None).
//
//   auto net = eqx::nn::sequential(eqx::nn::Linear::init(4, 8, k1), eqx::nn::Lambda{eqx::nn::Activation(eqx::nn::relu)},
//                                  eqx::nn::Dropout::init(0.1), eqx::nn::Linear::init(8, 2, k2));
//   eqx::Array y = net(x, key);                       // training: the Dropout gets its own key
//   auto [y2, state2] = stateful_net(x, state, key);  // state threaded through stateful layers
//
// The second argument of seq(x, a) is a key when `a` is an Array and no
// layer takes an Array as its state; otherwise it is the state (and the
// call returns {y, state}). To pass both, use seq(x, state, key).

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/random.hpp"

namespace eqx::nn {

namespace detail {

/// A layer called as layer(x, state, key) -> std::pair{y, state}.
template <class L, class S>
concept stateful_with_key = requires(const L& layer, const Array& x, const S& state, const random::Key& key) {
  { layer(x, state, key) } -> std::convertible_to<std::pair<Array, S>>;
};

/// A layer called as layer(x, state) -> std::pair{y, state}.
template <class L, class S>
concept stateful_without_key = requires(const L& layer, const Array& x, const S& state) {
  { layer(x, state) } -> std::convertible_to<std::pair<Array, S>>;
};

template <class L, class S>
concept stateful_layer = stateful_with_key<L, S> || stateful_without_key<L, S>;

/// A stateless layer that takes a key: layer(x, key) -> Array.
template <class L>
concept takes_key = requires(const L& layer, const Array& x, const random::Key& key) {
  { layer(x, key) } -> std::convertible_to<Array>;
};

/// One stateless layer on x, with `key` if it takes one.
template <class L>
Array call_layer(const L& layer, const Array& x, const random::Key& key) {
  if constexpr (takes_key<L>) return layer(x, key);
  else return layer(x);
}

/// size() keys split from `key`, or size() empty Arrays when there is none.
inline std::vector<random::Key> layer_keys(const random::Key& key, std::size_t n) {
  if (!key.has_value()) return std::vector<random::Key>(n);
  return random::split_keys(key, static_cast<std::int64_t>(n));
}

}  // namespace detail

/// Layers applied in order (eqx.nn.Sequential).
/// Usage: `eqx::nn::Sequential{std::tuple{lin1, drop, lin2}}` or `eqx::nn::sequential(lin1, drop, lin2)`
template <class... Layers>
struct Sequential {
  std::tuple<Layers...> layers;

  /// The number of layers (Equinox's len). Usage: `seq.size()`
  static constexpr std::size_t size() { return sizeof...(Layers); }

  /// Layer I (Equinox's seq[I]). Usage: `seq.get<0>().weight`
  template <std::size_t I>
  const auto& get() const {
    return std::get<I>(layers);
  }
  template <std::size_t I>
  auto& get() {
    return std::get<I>(layers);
  }

  /// True when some layer takes a state of type S.
  template <class S>
  static constexpr bool is_stateful = (detail::stateful_layer<Layers, S> || ...);

  /// Without a key: each layer as layer(x) (layers taking a key get an empty one).
  /// Usage: `eqx::Array y = seq(x);`
  Array operator()(const Array& x) const { return run(x, random::Key{}); }

  /// seq(x, key) -> y; or seq(x, state) -> {y, state} (see the file comment).
  /// Usage: `seq(x, key)`, `auto [y, s] = seq(x, state);`
  template <class S>
  auto operator()(const Array& x, const S& key_or_state) const {
    if constexpr (std::is_same_v<S, Array> && !is_stateful<Array>) return run(x, key_or_state);
    else return run_with_state(x, key_or_state, random::Key{});
  }

  /// Threads `state` through the stateful layers, with per-layer keys.
  /// Usage: `auto [y, new_state] = seq(x, state, key);`
  template <class S>
  std::pair<Array, S> operator()(const Array& x, const S& state, const random::Key& key) const {
    return run_with_state(x, state, key);
  }

 private:
  Array run(const Array& x, const random::Key& key) const {
    const std::vector<random::Key> keys = detail::layer_keys(key, size());
    Array h = x;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((h = detail::call_layer(std::get<I>(layers), h, keys[I])), ...);
    }(std::index_sequence_for<Layers...>{});
    return h;
  }

  template <class S>
  std::pair<Array, S> run_with_state(const Array& x, const S& state, const random::Key& key) const {
    const std::vector<random::Key> keys = detail::layer_keys(key, size());
    std::pair<Array, S> hs{x, state};
    auto step = [&]<class L>(const L& layer, const random::Key& k) {
      if constexpr (detail::stateful_with_key<L, S>) hs = layer(hs.first, hs.second, k);
      else if constexpr (detail::stateful_without_key<L, S>) hs = layer(hs.first, hs.second);
      else hs.first = detail::call_layer(layer, hs.first, k);
    };
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (step(std::get<I>(layers), keys[I]), ...);
    }(std::index_sequence_for<Layers...>{});
    return hs;
  }
};

template <class... Layers>
Sequential(std::tuple<Layers...>) -> Sequential<Layers...>;

/// A Sequential of the given layers (copied).
/// Usage: `auto net = eqx::nn::sequential(lin1, eqx::nn::Lambda{eqx::nn::Activation(eqx::nn::relu)}, lin2);`
template <class... Layers>
Sequential<std::decay_t<Layers>...> sequential(Layers&&... layers) {
  return {std::tuple<std::decay_t<Layers>...>(std::forward<Layers>(layers)...)};
}

/// Any callable as a layer (eqx.nn.Lambda): fn(x); a key is ignored. `fn`
/// is part of the tree: a function pointer is a static leaf (a captureless
/// lambda is stored as one), a struct holding Arrays contributes its leaves.
/// Usage: `eqx::nn::Lambda{[](const eqx::Array& x) { return x * 2; }}`
template <class F>
struct Lambda {
  F fn;

  Array operator()(const Array& x) const { return fn(x); }
  Array operator()(const Array& x, const random::Key& /*key*/) const { return fn(x); }
};

template <class F>
Lambda(F) -> Lambda<F>;
/// A captureless lambda of one Array becomes a function pointer: it prints
/// as <function>, and two Lambdas of the same function compare equal.
template <class F>
  requires(std::is_class_v<F> && std::is_convertible_v<F, Array (*)(const Array&)>)
Lambda(F) -> Lambda<Array (*)(const Array&)>;

}  // namespace eqx::nn
