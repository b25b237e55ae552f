#pragma once
// nn::Dropout (eqx.nn.Dropout): zero each element with probability p while
// training and scale the survivors by 1/(1-p); the identity in inference.
//
// As in Equinox, `p` and `inference` are plain (dynamic) scalars, so they
// are written by tree_serialise_leaves (as <f8 and |b1 records), and
// nn::inference_mode (nn/stateful.hpp) flips every `inference` field.
//
//   auto drop = eqx::nn::Dropout::init(0.1);
//   eqx::Array y = drop(x, key);                     // training: needs a key
//   eqx::Array z = eqx::nn::Dropout::init(0.1, {.inference = true})(x);

#include <optional>
#include <string>

#include <fmt/format.h>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/random.hpp"

namespace eqx::nn {

/// Dropout's keyword arguments.
struct DropoutOptions {
  bool inference = false;
};

/// Randomly zeroes elements while training (eqx.nn.Dropout).
struct Dropout {
  double p;        ///< the probability of zeroing an element
  bool inference;  ///< true: the identity

  using Options = DropoutOptions;

  /// A Dropout layer dropping with probability p (Equinox's default 0.5).
  /// Usage: `auto drop = eqx::nn::Dropout::init(0.1);`
  static Dropout init(double p = 0.5, Options opts = {}) {
    if (!(p >= 0 && p <= 1))
      throw ValueError(fmt::format("eqx::nn::Dropout: p must be in [0, 1] but got {}; give a probability", p));
    return {p, opts.inference};
  }

  /// Applies dropout with `key` (the identity when in inference mode or
  /// when p is 0). `inference` overrides the field for this call. p = 1
  /// gives zeros with a zero gradient (not the NaN of 0 * (1 / 0)).
  /// Usage: `drop(x, key)`, `drop(x, key, /*inference=*/true)`
  Array operator()(const Array& x, const random::Key& key, std::optional<bool> inference = std::nullopt) const {
    if (inference.value_or(this->inference) || p == 0) return x;
    if (!key.has_value())
      throw ValueError("eqx::nn::Dropout: training mode (inference = false, p > 0) needs a key but got none; call "
                       "dropout(x, key), or switch dropout off with eqx::nn::inference_mode(model), "
                       "Dropout::init(p, {.inference = true}) or dropout(x, key, /*inference=*/true)");
    const double q = 1 - p;
    if (q == 0) return zeros_like(x);
    return where(random::bernoulli(key, q, x.shape()), x / q, 0);
  }

  /// Without a key: only valid in inference mode (or with p = 0).
  /// Usage: `eqx::nn::Dropout::init(0.5, {.inference = true})(x)`
  Array operator()(const Array& x) const { return (*this)(x, Array{}); }
};

}  // namespace eqx::nn
