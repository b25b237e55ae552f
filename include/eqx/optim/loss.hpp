#pragma once
// Optax's losses: elementwise over the leading (batch) axes, one value per
// example, as Optax returns them (reduce with eqx::mean yourself).
//
//   Array loss = eqx::mean(eqx::optim::softmax_cross_entropy_with_integer_labels(logits, labels));
//
// Written with log-sum-exp and log-sigmoid (eqx::nn), so extreme logits
// (+-1e4) give finite values and gradients. Formulas are Optax's
// (optax/losses/_classification.py, _regression.py).

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "eqx/core/array.hpp"
#include "eqx/core/config.hpp"
#include "eqx/core/error.hpp"
#include "eqx/nn/activations.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/indexing.hpp"
#include "eqx/ops/reductions.hpp"

namespace eqx::optim {

namespace detail {

const Array& require_float(const Array& x, std::string_view fn, std::string_view what);

}  // namespace detail

/// -sum(labels * log_softmax(logits)) over the class axis (the last by
/// default): one value per example (optax.softmax_cross_entropy). `labels`
/// are probabilities (one-hot or smoothed) of logits' shape.
/// Usage: `eqx::optim::softmax_cross_entropy(logits, eqx::one_hot(y, 10))`
Array softmax_cross_entropy(const Array& logits, const Array& labels, std::int64_t axis = -1);

/// logsumexp(logits) - logits[label] over the last axis: the cross entropy
/// with integer class labels of logits' leading shape
/// (optax.softmax_cross_entropy_with_integer_labels).
/// Usage: `eqx::optim::softmax_cross_entropy_with_integer_labels(logits, labels)`  // [B, C], [B] -> [B]
Array softmax_cross_entropy_with_integer_labels(const Array& logits, const Array& labels);

/// -labels * log(sigmoid(logits)) - (1 - labels) * log(1 - sigmoid(logits)),
/// elementwise, with log_sigmoid for stability (optax.sigmoid_binary_cross_entropy).
/// Usage: `eqx::optim::sigmoid_binary_cross_entropy(logits, targets)`
Array sigmoid_binary_cross_entropy(const Array& logits, const Array& labels);

/// (predictions - targets)^2 elementwise; targets default to zero (optax.squared_error).
/// Usage: `eqx::mean(eqx::optim::squared_error(pred, y))`
Array squared_error(const Array& predictions, const std::optional<Array>& targets = std::nullopt);

/// 0.5 * squared_error (optax.l2_loss). Usage: `eqx::optim::l2_loss(pred, y)`
Array l2_loss(const Array& predictions, const std::optional<Array>& targets = std::nullopt);

/// 0.5 e^2 where |e| <= delta, 0.5 delta^2 + delta (|e| - delta) beyond,
/// e = predictions - targets (optax.huber_loss).
/// Usage: `eqx::optim::huber_loss(pred, y, 1.0)`
Array huber_loss(const Array& predictions, const std::optional<Array>& targets = std::nullopt,
                 double delta = 1.0);


/// log(cosh(e)) with e = predictions - targets, computed as
/// |e| + log1p(exp(-2|e|)) - log 2 so large errors do not overflow
/// (optax.log_cosh). Usage: `eqx::optim::log_cosh(pred, y)`
Array log_cosh(const Array& predictions, const std::optional<Array>& targets = std::nullopt);

/// The cosine of the angle between predictions and targets along `axis`,
/// each normalised by sqrt(max(squared norm, epsilon)) (optax.cosine_similarity).
/// Usage: `eqx::optim::cosine_similarity(a, b)`  // [B, D], [B, D] -> [B]
Array cosine_similarity(const Array& predictions, const Array& targets, double epsilon = 0.0,
                        std::int64_t axis = -1);

/// 1 - cosine_similarity (optax.cosine_distance). Usage: `eqx::optim::cosine_distance(a, b)`
Array cosine_distance(const Array& predictions, const Array& targets, double epsilon = 0.0,
                      std::int64_t axis = -1);

/// max(0, 1 - outputs * targets), elementwise, targets in {-1, 1}
/// (optax.hinge_loss). Usage: `eqx::optim::hinge_loss(scores, signs)`
Array hinge_loss(const Array& predictor_outputs, const Array& targets);

/// sum(targets * (log(targets) - log_predictions)) along `axis`, with
/// 0 log 0 = 0 (optax.kl_divergence; predictions as log-probabilities).
/// Usage: `eqx::optim::kl_divergence(eqx::nn::log_softmax(logits), probs)`
Array kl_divergence(const Array& log_predictions, const Array& targets, std::int64_t axis = -1);

/// (1 - alpha) * labels + alpha / num_categories, the categories along the
/// last axis (optax.smooth_labels). Usage: `eqx::optim::smooth_labels(eqx::one_hot(y, 10, eqx::float32), 0.1)`
Array smooth_labels(const Array& labels, double alpha);

/// softmax_cross_entropy + epsilon * sum(labels * (1 - softmax(logits)))
/// over the class axis (optax.poly_loss_cross_entropy, PolyLoss' Poly-1).
/// Usage: `eqx::optim::poly_loss_cross_entropy(logits, eqx::one_hot(y, 10), 2.0)`
Array poly_loss_cross_entropy(const Array& logits, const Array& labels, double epsilon = 2.0,
                              std::int64_t axis = -1);

}  // namespace eqx::optim

#if EQX_KERNELS_HERE(OPTIM)
namespace eqx::optim {
namespace detail {
EQX_KERNEL_INLINE const Array& require_float(const Array& x, std::string_view fn, std::string_view what) {
  if (!x.has_value())
    throw ValueError("eqx::optim::" + std::string(fn) + ": " + std::string(what) + " is an empty Array (None)");
  if (!is_floating(x.dtype()))
    throw DTypeError("eqx::optim::" + std::string(fn) + ": " + std::string(what) + " have dtype " +
                     std::string(dtype_name(x.dtype())) + "; they must be float32 or float64");
  return x;
}
}  // namespace detail

EQX_KERNEL_INLINE Array softmax_cross_entropy(const Array& logits, const Array& labels, std::int64_t axis) {
  detail::require_float(logits, "softmax_cross_entropy", "logits");
  return -sum(labels * nn::log_softmax(logits, axis), axis);
}

EQX_KERNEL_INLINE Array softmax_cross_entropy_with_integer_labels(const Array& logits, const Array& labels) {
  constexpr std::string_view fn = "softmax_cross_entropy_with_integer_labels";
  detail::require_float(logits, fn, "logits");
  if (!labels.has_value() || !is_integer(labels.dtype()))
    throw DTypeError("eqx::optim::" + std::string(fn) + ": labels have dtype " +
                     (labels.has_value() ? std::string(dtype_name(labels.dtype())) : std::string("None")) +
                     "; they must be integer class indices (int32)");
  if (logits.ndim() == 0 || labels.ndim() + 1 != logits.ndim())
    throw ShapeError("eqx::optim::" + std::string(fn) + ": logits are " +
                     AbstractArray{logits.shape(), logits.dtype()}.str() + " and labels " +
                     AbstractArray{labels.shape(), labels.dtype()}.str() +
                     "; labels have the logits' shape without the last (class) axis");
  const std::int64_t classes = logits.shape()[logits.ndim() - 1];
  Array label_logits = sum(where(one_hot(labels, classes, bool_), logits, 0.0), -1);
  return nn::logsumexp(logits, -1) - label_logits;
}

EQX_KERNEL_INLINE Array sigmoid_binary_cross_entropy(const Array& logits, const Array& labels) {
  detail::require_float(logits, "sigmoid_binary_cross_entropy", "logits");
  Array y = astype(labels, logits.dtype());
  return -y * nn::log_sigmoid(logits) - (1.0 - y) * nn::log_sigmoid(-logits);
}

EQX_KERNEL_INLINE Array squared_error(const Array& predictions, const std::optional<Array>& targets) {
  detail::require_float(predictions, "squared_error", "predictions");
  Array e = targets ? predictions - *targets : predictions;
  return square(e);
}

EQX_KERNEL_INLINE Array l2_loss(const Array& predictions, const std::optional<Array>& targets) {
  detail::require_float(predictions, "l2_loss", "predictions");
  return 0.5 * squared_error(predictions, targets);
}

EQX_KERNEL_INLINE Array huber_loss(const Array& predictions, const std::optional<Array>& targets,
                                   double delta) {
  detail::require_float(predictions, "huber_loss", "predictions");
  Array e = abs(targets ? predictions - *targets : predictions);
  Array quadratic = minimum(e, delta);
  return 0.5 * square(quadratic) + delta * (e - quadratic);
}

EQX_KERNEL_INLINE Array log_cosh(const Array& predictions, const std::optional<Array>& targets) {
  detail::require_float(predictions, "log_cosh", "predictions");
  Array e = abs(targets ? predictions - *targets : predictions);
  return e + log1p(exp(-2.0 * e)) - std::log(2.0);
}

EQX_KERNEL_INLINE Array cosine_similarity(const Array& predictions, const Array& targets, double epsilon,
                                          std::int64_t axis) {
  detail::require_float(predictions, "cosine_similarity", "predictions");
  detail::require_float(targets, "cosine_similarity", "targets");
  Array a_norm = sqrt(maximum(sum(square(predictions), axis, true), epsilon));
  Array b_norm = sqrt(maximum(sum(square(targets), axis, true), epsilon));
  return sum((predictions / a_norm) * (targets / b_norm), axis);
}

EQX_KERNEL_INLINE Array cosine_distance(const Array& predictions, const Array& targets, double epsilon,
                                        std::int64_t axis) {
  detail::require_float(predictions, "cosine_distance", "predictions");
  detail::require_float(targets, "cosine_distance", "targets");
  return 1.0 - cosine_similarity(predictions, targets, epsilon, axis);
}

EQX_KERNEL_INLINE Array hinge_loss(const Array& predictor_outputs, const Array& targets) {
  detail::require_float(predictor_outputs, "hinge_loss", "predictor outputs");
  return maximum(1.0 - predictor_outputs * targets, 0.0);
}

EQX_KERNEL_INLINE Array kl_divergence(const Array& log_predictions, const Array& targets, std::int64_t axis) {
  detail::require_float(log_predictions, "kl_divergence", "log predictions");
  detail::require_float(targets, "kl_divergence", "targets");
  Array safe = where(targets == 0.0, 1.0, targets);  // log(1) = 0 where the target is 0 (no NaN gradient)
  return sum(targets * (log(safe) - log_predictions), axis);
}

EQX_KERNEL_INLINE Array smooth_labels(const Array& labels, double alpha) {
  detail::require_float(labels, "smooth_labels", "labels");
  if (labels.ndim() == 0)
    throw ShapeError("eqx::optim::smooth_labels: labels are " + AbstractArray{labels.shape(), labels.dtype()}.str() +
                     "; they need a category axis (the last)");
  const auto n = static_cast<double>(labels.shape()[labels.ndim() - 1]);
  return (1.0 - alpha) * labels + alpha / n;
}

EQX_KERNEL_INLINE Array poly_loss_cross_entropy(const Array& logits, const Array& labels, double epsilon,
                                                std::int64_t axis) {
  detail::require_float(logits, "poly_loss_cross_entropy", "logits");
  detail::require_float(labels, "poly_loss_cross_entropy", "labels");
  Array one_minus_pt = sum(labels * (1.0 - nn::softmax(logits, axis)), axis);
  return softmax_cross_entropy(logits, labels, axis) + epsilon * one_minus_pt;
}
}  // namespace eqx::optim
#endif  // EQX_KERNELS_HERE(OPTIM)
