#pragma once
// Activation functions and friends (jax.nn), with JAX's names, defaults and
// numerics, written as compositions of eqx ops so that every transform
// (jit, grad, vmap) applies with no rule of their own.
//
// Each is a function of one Array, so it fits an MLP's activation (a static
// `eqx::Array (*)(const eqx::Array&)` field); those with parameters have an
// overload taking them (`nn::gelu(x, false)` is the exact GELU).
//
//   auto mlp = eqx::nn::MLP::init(2, 1, 32, 2, key, {.activation = eqx::nn::gelu});
//   eqx::Array p = eqx::nn::softmax(logits);             // over the last axis
//
// Derivatives follow JAX where it picks one at a kink: relu'(0) = 0 (not
// the 0.5 of `maximum`), relu6' is 0 at 0 and 6, hard_tanh' is 1 at +-1
// (the x branch of its `where`), celu'(0) = 1.
//
// nn::PReLU is the one layer here: a leaky ReLU whose slope is a parameter.

#include <cmath>
#include <cstdint>

#include "eqx/core/array.hpp"
#include "eqx/nn/common.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/transform/stop_gradient.hpp"

namespace eqx::nn {

/// The identity function, an MLP's default final activation (Equinox's
/// `_identity`). Usage: `eqx::nn::identity(x)`
inline Array identity(const Array& x) { return x; }

/// max(x, 0), with derivative 0 at 0 (jax.nn.relu); NaN stays NaN.
/// Usage: `eqx::nn::relu(x)`
inline Array relu(const Array& x) { return where(x <= 0, 0, x); }

/// min(max(x, 0), 6) (jax.nn.relu6), derivative 0 at 0 and 6. Usage: `eqx::nn::relu6(x)`
inline Array relu6(const Array& x) { return where(x >= 6, 6, relu(x)); }

/// Logistic sigmoid 1 / (1 + exp(-x)) (jax.nn.sigmoid). Usage: `eqx::nn::sigmoid(x)`
inline Array sigmoid(const Array& x) { return logistic(x); }

/// GELU (jax.nn.gelu): the tanh approximation by default (JAX's
/// `approximate=True`), the exact x * Phi(x) with `approximate = false`.
/// Usage: `eqx::nn::gelu(x)`, `eqx::nn::gelu(x, false)`
inline Array gelu(const Array& x, bool approximate) {
  if (approximate) {
    const double c = std::sqrt(2.0 / M_PI);
    return 0.5 * x * (1 + tanh(c * (x + 0.044715 * (x * x * x))));
  }
  return 0.5 * x * (1 + erf(x * (1.0 / std::sqrt(2.0))));
}
/// The tanh-approximated GELU, JAX's default. Usage: `eqx::nn::gelu(x)`
inline Array gelu(const Array& x) { return gelu(x, true); }

/// x * sigmoid(x) (jax.nn.silu). Usage: `eqx::nn::silu(x)`
inline Array silu(const Array& x) { return x * logistic(x); }
/// Another name of silu (jax.nn.swish). Usage: `eqx::nn::swish(x)`
inline Array swish(const Array& x) { return silu(x); }

/// log(1 + exp(x)) computed stably as max(x, 0) + log1p(exp(-|x|))
/// (jax.nn.softplus = logaddexp(x, 0)). Usage: `eqx::nn::softplus(x)`
inline Array softplus(const Array& x) { return maximum(x, 0) + log1p(exp(-abs(x))); }

/// log(sigmoid(x)) = -softplus(-x) (jax.nn.log_sigmoid). Usage: `eqx::nn::log_sigmoid(x)`
inline Array log_sigmoid(const Array& x) { return -softplus(-x); }

/// x where x >= 0, negative_slope * x elsewhere (jax.nn.leaky_relu; default
/// slope 0.01). Usage: `eqx::nn::leaky_relu(x)`, `leaky_relu(x, 0.2)`
inline Array leaky_relu(const Array& x, double negative_slope) { return where(x >= 0, x, negative_slope * x); }
inline Array leaky_relu(const Array& x) { return leaky_relu(x, 0.01); }

/// x where x > 0, alpha * (exp(x) - 1) elsewhere (jax.nn.elu; alpha 1).
/// The exp only sees non-positive values, so large x cannot overflow it.
/// Usage: `eqx::nn::elu(x)`, `elu(x, 0.5)`
inline Array elu(const Array& x, double alpha) {
  const Array positive = x > 0;
  return where(positive, x, alpha * expm1(where(positive, 0, x)));
}
inline Array elu(const Array& x) { return elu(x, 1.0); }

/// max(x, 0) + alpha * expm1(min(x, 0) / alpha) (jax.nn.celu; alpha 1).
/// At 0 the two halves of max's and min's tie derivatives add to 1.
/// Usage: `eqx::nn::celu(x)`, `celu(x, 2.0)`
inline Array celu(const Array& x, double alpha) { return maximum(x, 0) + alpha * expm1(minimum(x, 0) / alpha); }
inline Array celu(const Array& x) { return celu(x, 1.0); }

/// Scaled ELU with JAX's constants (jax.nn.selu). Usage: `eqx::nn::selu(x)`
inline Array selu(const Array& x) {
  constexpr double alpha = 1.6732632423543772848170429916717;
  constexpr double scale = 1.0507009873554804934193349852946;
  return scale * elu(x, alpha);
}

/// x clipped to [-1, 1] (jax.nn.hard_tanh). Usage: `eqx::nn::hard_tanh(x)`
inline Array hard_tanh(const Array& x) { return where(x > 1, 1, where(x < -1, -1, x)); }

/// log(sum(exp(x))) over `axes` (all by default), computed with the maximum
/// subtracted so large values do not overflow (jax.nn.logsumexp). Entries
/// of -inf contribute nothing and get a zero gradient; a slice of only -inf
/// gives -inf. Usage: `eqx::nn::logsumexp(x)`, `logsumexp(x, -1, true)`
inline Array logsumexp(const Array& x, const Axes& axes, bool keepdims = false) {
  Array m = stop_gradient(eqx::max(x, axes, true));
  m = where(abs(m) < INFINITY, m, 0);  // an all -inf slice: shift by 0, not by -inf
  Array out = log(sum(exp(x - m), axes, true)) + m;
  return keepdims ? out : sum(out, axes, false);  // dropping size-1 axes: a sum of one element
}
inline Array logsumexp(const Array& x) { return logsumexp(x, Axes{}); }

/// exp(x) / sum(exp(x)) along `axis` (default the last; jax.nn.softmax).
/// Usage: `eqx::nn::softmax(logits)`, `softmax(x, 0)`
inline Array softmax(const Array& x, std::int64_t axis) {
  Array unnormalized = exp(x - stop_gradient(eqx::max(x, axis, true)));
  return unnormalized / sum(unnormalized, axis, true);
}
inline Array softmax(const Array& x) { return softmax(x, -1); }

/// x - logsumexp(x) along `axis` (default the last; jax.nn.log_softmax).
/// Usage: `eqx::nn::log_softmax(logits)`
inline Array log_softmax(const Array& x, std::int64_t axis) {
  Array shifted = x - stop_gradient(eqx::max(x, axis, true));
  return shifted - log(sum(exp(shifted), axis, true));
}
inline Array log_softmax(const Array& x) { return log_softmax(x, -1); }

/// (x - mean) / sqrt(variance + epsilon) along `axes` (default the last;
/// jax.nn.standardize), with variance = mean(x^2) - mean(x)^2 as JAX.
/// Usage: `eqx::nn::standardize(x)`, `standardize(x, {0, 1}, 1e-6)`
inline Array standardize(const Array& x, const Axes& axes, double epsilon = 1e-5) {
  Array mu = mean(x, axes, true);
  Array var = mean(x * x, axes, true) - mu * mu;
  return (x - mu) * rsqrt(var + epsilon);
}
inline Array standardize(const Array& x) { return standardize(x, -1); }

/// PReLU's keyword arguments.
struct PReLUOptions {
  double init_alpha = 0.25;  ///< the initial negative slope
  DType dtype = float32;
};

/// A leaky ReLU with a learnt negative slope (eqx.nn.PReLU):
/// x where x >= 0, negative_slope * x elsewhere.
struct PReLU {
  Array negative_slope;  ///< a scalar (or any Array broadcastable against the input)

  using Options = PReLUOptions;

  /// A PReLU whose slope starts at `init_alpha` (a rank-0 Array of `dtype`).
  /// Usage: `auto act = eqx::nn::PReLU::init({.init_alpha = 0.1});`
  static PReLU init(Options opts = {}) {
    detail::check_param_dtype(opts.dtype, "PReLU");
    return {full(Shape{}, opts.init_alpha, opts.dtype)};
  }

  /// Usage: `eqx::Array y = prelu(x);`
  Array operator()(const Array& x) const { return where(x >= 0, x, negative_slope * x); }
};

}  // namespace eqx::nn
