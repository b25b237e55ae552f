#pragma once
// Optax's optimisers: each a chain of building blocks from
// optim/transform.hpp with Optax's defaults, taking the learning rate (a
// number or a schedule) and Optax's keyword arguments as an options
// aggregate:
//
//   auto opt = eqx::optim::adamw(3e-4, {.weight_decay = 1e-2});
//   auto opt_state = opt.init(eqx::filter(model, eqx::is_inexact_array));
//   auto [updates, new_state] = opt.update(grads, opt_state, model_params);
//   model = eqx::apply_updates(model, updates);
//
// The state is the tuple of the chained transformations' states, in order.

#include <optional>

#include "eqx/optim/base.hpp"
#include "eqx/optim/transform.hpp"

namespace eqx::optim {

/// sgd's keyword arguments (optax.sgd): no momentum unless given.
struct SgdOptions {
  std::optional<double> momentum{};
  bool nesterov = false;
};

/// Stochastic gradient descent, with optional (Nesterov) momentum
/// (optax.sgd): chain(trace(momentum, nesterov), scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::sgd(0.1, {.momentum = 0.9, .nesterov = true});`
inline Chain<Trace, ScaleByLearningRate> sgd(ScalarOrSchedule learning_rate, SgdOptions opts = {}) {
  return chain(Trace{opts.momentum, opts.nesterov}, scale_by_learning_rate(std::move(learning_rate)));
}

/// Adam (optax.adam): chain(scale_by_adam, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::adam(1e-3, {.b2 = 0.99});`
inline Chain<ScaleByAdam, ScaleByLearningRate> adam(ScalarOrSchedule learning_rate, AdamOptions opts = {}) {
  return chain(scale_by_adam(opts), scale_by_learning_rate(std::move(learning_rate)));
}

/// NAdam (optax.nadam): adam with nesterov = true.
/// Usage: `auto opt = eqx::optim::nadam(1e-3);`
inline Chain<ScaleByAdam, ScaleByLearningRate> nadam(ScalarOrSchedule learning_rate, AdamOptions opts = {}) {
  opts.nesterov = true;
  return adam(std::move(learning_rate), opts);
}

/// adamw's keyword arguments (optax.adamw).
struct AdamWOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-8;
  double eps_root = 0.0;
  ScalarOrSchedule weight_decay = 1e-4;
  Mask mask{};  ///< leaves to decay (all when empty)
  bool nesterov = false;
};

/// Adam with decoupled weight decay (optax.adamw): chain(scale_by_adam,
/// add_decayed_weights(weight_decay, mask), scale_by_learning_rate), so the
/// decay is scaled by the learning rate.
/// Usage: `auto opt = eqx::optim::adamw(3e-4, {.weight_decay = 1e-2});`
inline Chain<ScaleByAdam, AddDecayedWeights, ScaleByLearningRate> adamw(ScalarOrSchedule learning_rate,
                                                                        AdamWOptions opts = {}) {
  return chain(scale_by_adam({opts.b1, opts.b2, opts.eps, opts.eps_root, opts.nesterov}),
               add_decayed_weights(std::move(opts.weight_decay), std::move(opts.mask)),
               scale_by_learning_rate(std::move(learning_rate)));
}

/// NAdamW (optax.nadamw): adamw with nesterov = true.
/// Usage: `auto opt = eqx::optim::nadamw(1e-3);`
inline Chain<ScaleByAdam, AddDecayedWeights, ScaleByLearningRate> nadamw(ScalarOrSchedule learning_rate,
                                                                         AdamWOptions opts = {}) {
  opts.nesterov = true;
  return adamw(std::move(learning_rate), std::move(opts));
}

/// rmsprop's keyword arguments (optax.rmsprop): eps inside the square root
/// unless eps_in_sqrt is false (PyTorch's placement); no momentum unless given.
struct RmspropOptions {
  double decay = 0.9;
  double eps = 1e-8;
  double initial_scale = 0.0;
  bool eps_in_sqrt = true;
  bool centered = false;
  std::optional<double> momentum{};
  bool nesterov = false;
  bool bias_correction = false;
};

/// RMSProp (optax.rmsprop): chain(scale_by_rms or scale_by_stddev
/// (centered), scale_by_learning_rate, trace(momentum, nesterov)).
/// Usage: `auto opt = eqx::optim::rmsprop(1e-3, {.centered = true, .momentum = 0.9});`
inline Chain<ScaleByRms, ScaleByLearningRate, Trace> rmsprop(ScalarOrSchedule learning_rate, RmspropOptions opts = {}) {
  ScaleByRmsOptions r{opts.decay, opts.eps, opts.initial_scale, opts.eps_in_sqrt, opts.bias_correction};
  return chain(opts.centered ? scale_by_stddev(r) : scale_by_rms(r), scale_by_learning_rate(std::move(learning_rate)),
               Trace{opts.momentum, opts.nesterov});
}

/// Adagrad (optax.adagrad): chain(scale_by_rss, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::adagrad(0.1);`
inline Chain<ScaleByRss, ScaleByLearningRate> adagrad(ScalarOrSchedule learning_rate, AdagradOptions opts = {}) {
  return chain(scale_by_rss(opts), scale_by_learning_rate(std::move(learning_rate)));
}

/// Adamax (optax.adamax): chain(scale_by_adamax, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::adamax(2e-3);`
inline Chain<ScaleByAdamax, ScaleByLearningRate> adamax(ScalarOrSchedule learning_rate, AdamaxOptions opts = {}) {
  return chain(scale_by_adamax(opts), scale_by_learning_rate(std::move(learning_rate)));
}

/// RAdam (optax.radam): chain(scale_by_radam, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::radam(1e-3);`
inline Chain<ScaleByRadam, ScaleByLearningRate> radam(ScalarOrSchedule learning_rate, RadamOptions opts = {}) {
  return chain(scale_by_radam(opts), scale_by_learning_rate(std::move(learning_rate)));
}

/// lion's keyword arguments (optax.lion).
struct LionOptions {
  double b1 = 0.9;
  double b2 = 0.99;
  ScalarOrSchedule weight_decay = 1e-3;
  Mask mask{};
};

/// Lion (optax.lion): chain(scale_by_lion, add_decayed_weights, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::lion(1e-4, {.weight_decay = 1e-2});`
inline Chain<ScaleByLion, AddDecayedWeights, ScaleByLearningRate> lion(ScalarOrSchedule learning_rate,
                                                                       LionOptions opts = {}) {
  return chain(scale_by_lion({opts.b1, opts.b2}), add_decayed_weights(std::move(opts.weight_decay), std::move(opts.mask)),
               scale_by_learning_rate(std::move(learning_rate)));
}

/// adabelief's keyword arguments (optax.adabelief; no weight decay unless given).
struct AdabeliefOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-16;
  double eps_root = 1e-16;
  ScalarOrSchedule weight_decay = 0.0;
  Mask weight_decay_mask{};
  bool nesterov = false;
};

/// AdaBelief (optax.adabelief): chain(scale_by_belief, add_decayed_weights
/// (a no-op at the default 0), scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::adabelief(1e-3);`
inline Chain<ScaleByBelief, AddDecayedWeights, ScaleByLearningRate> adabelief(ScalarOrSchedule learning_rate,
                                                                              AdabeliefOptions opts = {}) {
  return chain(scale_by_belief({opts.b1, opts.b2, opts.eps, opts.eps_root, opts.nesterov}),
               add_decayed_weights(std::move(opts.weight_decay), std::move(opts.weight_decay_mask)),
               scale_by_learning_rate(std::move(learning_rate)));
}

}  // namespace eqx::optim
