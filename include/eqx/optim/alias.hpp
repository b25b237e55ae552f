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

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include "eqx/core/config.hpp"
#include "eqx/optim/adaptive.hpp"
#include "eqx/optim/base.hpp"
#include "eqx/optim/blockwise.hpp"
#include "eqx/optim/transform.hpp"
#include "eqx/optim/wrappers.hpp"

namespace eqx::optim {

/// sgd's keyword arguments (optax.sgd): no momentum unless given.
struct SgdOptions {
  std::optional<double> momentum{};
  bool nesterov = false;
};

/// Stochastic gradient descent, with optional (Nesterov) momentum
/// (optax.sgd): chain(trace(momentum, nesterov), scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::sgd(0.1, {.momentum = 0.9, .nesterov = true});`
Chain<Trace, ScaleByLearningRate> sgd(ScalarOrSchedule learning_rate, SgdOptions opts = {});

/// Adam (optax.adam): chain(scale_by_adam, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::adam(1e-3, {.b2 = 0.99});`
Chain<ScaleByAdam, ScaleByLearningRate> adam(ScalarOrSchedule learning_rate, AdamOptions opts = {});

/// NAdam (optax.nadam): adam with nesterov = true.
/// Usage: `auto opt = eqx::optim::nadam(1e-3);`
Chain<ScaleByAdam, ScaleByLearningRate> nadam(ScalarOrSchedule learning_rate, AdamOptions opts = {});

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
Chain<ScaleByAdam, AddDecayedWeights, ScaleByLearningRate> adamw(ScalarOrSchedule learning_rate,
                                                                 AdamWOptions opts = {});

/// NAdamW (optax.nadamw): adamw with nesterov = true.
/// Usage: `auto opt = eqx::optim::nadamw(1e-3);`
Chain<ScaleByAdam, AddDecayedWeights, ScaleByLearningRate> nadamw(ScalarOrSchedule learning_rate,
                                                                  AdamWOptions opts = {});

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
Chain<ScaleByRms, ScaleByLearningRate, Trace> rmsprop(ScalarOrSchedule learning_rate, RmspropOptions opts = {});

/// Adagrad (optax.adagrad): chain(scale_by_rss, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::adagrad(0.1);`
Chain<ScaleByRss, ScaleByLearningRate> adagrad(ScalarOrSchedule learning_rate, AdagradOptions opts = {});

/// Adamax (optax.adamax): chain(scale_by_adamax, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::adamax(2e-3);`
Chain<ScaleByAdamax, ScaleByLearningRate> adamax(ScalarOrSchedule learning_rate, AdamaxOptions opts = {});

/// RAdam (optax.radam): chain(scale_by_radam, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::radam(1e-3);`
Chain<ScaleByRadam, ScaleByLearningRate> radam(ScalarOrSchedule learning_rate, RadamOptions opts = {});

/// lion's keyword arguments (optax.lion).
struct LionOptions {
  double b1 = 0.9;
  double b2 = 0.99;
  ScalarOrSchedule weight_decay = 1e-3;
  Mask mask{};
};

/// Lion (optax.lion): chain(scale_by_lion, add_decayed_weights, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::lion(1e-4, {.weight_decay = 1e-2});`
Chain<ScaleByLion, AddDecayedWeights, ScaleByLearningRate> lion(ScalarOrSchedule learning_rate,
                                                                LionOptions opts = {});

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
Chain<ScaleByBelief, AddDecayedWeights, ScaleByLearningRate> adabelief(ScalarOrSchedule learning_rate,
                                                                       AdabeliefOptions opts = {});


/// AMSGrad (optax.amsgrad): chain(scale_by_amsgrad, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::amsgrad(1e-3);`
Chain<ScaleByAmsgrad, ScaleByLearningRate> amsgrad(ScalarOrSchedule learning_rate, AmsgradOptions opts = {});

/// adadelta's keyword arguments (optax.adadelta).
struct AdadeltaOptions {
  double rho = 0.9;
  double eps = 1e-6;
  ScalarOrSchedule weight_decay = 0.0;
  Mask weight_decay_mask{};
};

/// AdaDelta (optax.adadelta): chain(add_decayed_weights, scale_by_adadelta,
/// scale_by_learning_rate); the decay is added to the gradient first, as
/// torch.optim.Adadelta's weight_decay.
/// Usage: `auto opt = eqx::optim::adadelta(1.0, {.rho = 0.95});`
Chain<AddDecayedWeights, ScaleByAdadelta, ScaleByLearningRate> adadelta(ScalarOrSchedule learning_rate,
                                                                       AdadeltaOptions opts = {});

/// yogi's keyword arguments (optax.yogi).
struct YogiOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-3;
};

/// Yogi (optax.yogi): chain(scale_by_yogi, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::yogi(1e-2);`
Chain<ScaleByYogi, ScaleByLearningRate> yogi(ScalarOrSchedule learning_rate, YogiOptions opts = {});

/// signSGD (optax.sign_sgd): chain(scale_by_sign, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::sign_sgd(1e-3);`
Chain<ScaleBySign, ScaleByLearningRate> sign_sgd(ScalarOrSchedule learning_rate);

/// noisy_sgd's keyword arguments (optax.noisy_sgd).
struct NoisySgdOptions {
  double eta = 0.01;   ///< base variance of the noise
  double gamma = 0.55; ///< decay exponent of the variance
  Array key{};         ///< eqx::random key (eqx::random::key(0) when None)
};

/// SGD with annealed Gaussian gradient noise (optax.noisy_sgd):
/// chain(add_noise(eta, gamma, key), scale_by_learning_rate); the key is in the state.
/// Usage: `auto opt = eqx::optim::noisy_sgd(1e-2, {.key = eqx::random::key(1)});`
Chain<AddNoise, ScaleByLearningRate> noisy_sgd(ScalarOrSchedule learning_rate, NoisySgdOptions opts = {});

/// novograd's keyword arguments (optax.novograd).
struct NovogradOptions {
  double b1 = 0.9;
  double b2 = 0.25;
  double eps = 1e-6;
  double eps_root = 0.0;
  double weight_decay = 0.0;
};

/// NovoGrad (optax.novograd): chain(scale_by_novograd, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::novograd(1e-2, {.weight_decay = 1e-3});`
Chain<ScaleByNovograd, ScaleByLearningRate> novograd(ScalarOrSchedule learning_rate, NovogradOptions opts = {});

/// lamb's keyword arguments (optax.lamb).
struct LambOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-6;
  double eps_root = 0.0;
  ScalarOrSchedule weight_decay = 0.0;
  Mask mask{};
};

/// LAMB (optax.lamb): chain(scale_by_adam, add_decayed_weights,
/// scale_by_trust_ratio, scale_by_learning_rate).
/// Usage: `auto opt = eqx::optim::lamb(1e-3, {.weight_decay = 1e-2});`
Chain<ScaleByAdam, AddDecayedWeights, ScaleByTrustRatio, ScaleByLearningRate> lamb(
ScalarOrSchedule learning_rate, LambOptions opts = {});

/// lars' keyword arguments (optax.lars).
struct LarsOptions {
  ScalarOrSchedule weight_decay = 0.0;
  Mask weight_decay_mask{};  ///< leaves to decay (all when empty)
  double trust_coefficient = 0.001;
  double eps = 0.0;
  Mask trust_ratio_mask{};  ///< leaves to scale by the trust ratio (all when empty)
  double momentum = 0.9;
  bool nesterov = false;
};

/// LARS (optax.lars): chain(add_decayed_weights, masked(scale_by_trust_ratio),
/// scale_by_learning_rate, trace(momentum, nesterov)).
/// Usage: `auto opt = eqx::optim::lars(0.1, {.weight_decay = 1e-4});`
Chain<AddDecayedWeights, Masked<ScaleByTrustRatio>, ScaleByLearningRate, Trace> lars(
ScalarOrSchedule learning_rate, LarsOptions opts = {});

/// fromage's keyword arguments (optax.fromage).
struct FromageOptions {
  double min_norm = 1e-6;
};

/// Fromage (optax.fromage): chain(scale_by_trust_ratio(min_norm),
/// scale_by_learning_rate(lr * m), add_decayed_weights(m - 1)) with
/// m = 1 / sqrt(1 + lr^2), so p <- m (p - lr ||p|| / ||g|| g).
/// Usage: `auto opt = eqx::optim::fromage(1e-2);`
Chain<ScaleByTrustRatio, ScaleByLearningRate, AddDecayedWeights> fromage(ScalarOrSchedule learning_rate,
                                                                         FromageOptions opts = {});


/// adafactor's keyword arguments (optax.adafactor).
struct AdafactorOptions {
  std::int64_t min_dim_size_to_factor = 128;
  double decay_rate = 0.8;
  std::int64_t decay_offset = 0;
  bool multiply_by_parameter_scale = true;
  std::optional<double> clipping_threshold = 1.0;
  std::optional<double> momentum{};
  ScalarOrSchedule weight_decay_rate = 0.0;
  double eps = 1e-30;
  bool factored = true;
  Mask weight_decay_mask{};
};

/// Adafactor (optax.adafactor): chain(scale_by_factored_rms,
/// clip_by_block_rms(clipping_threshold), scale_by_learning_rate (not
/// negated; none without a learning rate), scale_by_param_block_rms,
/// ema(momentum, no debiasing), add_decayed_weights(weight_decay_rate),
/// scale(-1)). The parts Optax leaves out when disabled are no-ops here
/// (an infinite clipping threshold, a rate of 1, no momentum keeps None).
/// Usage: `auto opt = eqx::optim::adafactor(1e-3);`, `eqx::optim::adafactor(std::nullopt, {.momentum = 0.9})`
Chain<ScaleByFactoredRms, ClipByBlockRms, ScaleByLearningRate, ScaleByParamBlockRms, Ema, AddDecayedWeights,
      Scale>
adafactor(std::optional<ScalarOrSchedule> learning_rate = std::nullopt, AdafactorOptions opts = {});

/// SM3 (optax.sm3): chain(scale_by_sm3(b1 = momentum), scale(-learning_rate));
/// the learning rate is a number, as Optax's.
/// Usage: `auto opt = eqx::optim::sm3(0.1, 0.9);`
Chain<ScaleBySm3, Scale> sm3(double learning_rate, double momentum = 0.9);

}  // namespace eqx::optim

#if EQX_KERNELS_HERE(OPTIM)
namespace eqx::optim {
EQX_KERNEL_INLINE Chain<Trace, ScaleByLearningRate> sgd(ScalarOrSchedule learning_rate, SgdOptions opts) {
  return chain(Trace{opts.momentum, opts.nesterov}, scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<ScaleByAdam, ScaleByLearningRate> adam(ScalarOrSchedule learning_rate, AdamOptions opts) {
  return chain(scale_by_adam(opts), scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<ScaleByAdam, ScaleByLearningRate> nadam(ScalarOrSchedule learning_rate, AdamOptions opts) {
  opts.nesterov = true;
  return adam(std::move(learning_rate), opts);
}

EQX_KERNEL_INLINE Chain<ScaleByAdam, AddDecayedWeights, ScaleByLearningRate> adamw(ScalarOrSchedule learning_rate,
                                                                                   AdamWOptions opts) {
  return chain(scale_by_adam({opts.b1, opts.b2, opts.eps, opts.eps_root, opts.nesterov}),
               add_decayed_weights(std::move(opts.weight_decay), std::move(opts.mask)),
               scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<ScaleByAdam, AddDecayedWeights, ScaleByLearningRate> nadamw(ScalarOrSchedule learning_rate,
                                                                                    AdamWOptions opts) {
  opts.nesterov = true;
  return adamw(std::move(learning_rate), std::move(opts));
}

EQX_KERNEL_INLINE Chain<ScaleByRms, ScaleByLearningRate, Trace> rmsprop(ScalarOrSchedule learning_rate, RmspropOptions opts) {
  ScaleByRmsOptions r{opts.decay, opts.eps, opts.initial_scale, opts.eps_in_sqrt, opts.bias_correction};
  return chain(opts.centered ? scale_by_stddev(r) : scale_by_rms(r), scale_by_learning_rate(std::move(learning_rate)),
               Trace{opts.momentum, opts.nesterov});
}

EQX_KERNEL_INLINE Chain<ScaleByRss, ScaleByLearningRate> adagrad(ScalarOrSchedule learning_rate, AdagradOptions opts) {
  return chain(scale_by_rss(opts), scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<ScaleByAdamax, ScaleByLearningRate> adamax(ScalarOrSchedule learning_rate, AdamaxOptions opts) {
  return chain(scale_by_adamax(opts), scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<ScaleByRadam, ScaleByLearningRate> radam(ScalarOrSchedule learning_rate, RadamOptions opts) {
  return chain(scale_by_radam(opts), scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<ScaleByLion, AddDecayedWeights, ScaleByLearningRate> lion(ScalarOrSchedule learning_rate,
                                                                                  LionOptions opts) {
  return chain(scale_by_lion({opts.b1, opts.b2}), add_decayed_weights(std::move(opts.weight_decay), std::move(opts.mask)),
               scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<ScaleByBelief, AddDecayedWeights, ScaleByLearningRate> adabelief(ScalarOrSchedule learning_rate,
                                                                                         AdabeliefOptions opts) {
  return chain(scale_by_belief({opts.b1, opts.b2, opts.eps, opts.eps_root, opts.nesterov}),
               add_decayed_weights(std::move(opts.weight_decay), std::move(opts.weight_decay_mask)),
               scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<ScaleByAmsgrad, ScaleByLearningRate> amsgrad(ScalarOrSchedule learning_rate, AmsgradOptions opts) {
  return chain(scale_by_amsgrad(opts), scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<AddDecayedWeights, ScaleByAdadelta, ScaleByLearningRate> adadelta(ScalarOrSchedule learning_rate,
                                                                                         AdadeltaOptions opts) {
  return chain(add_decayed_weights(std::move(opts.weight_decay), std::move(opts.weight_decay_mask)),
               scale_by_adadelta({opts.rho, opts.eps}), scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<ScaleByYogi, ScaleByLearningRate> yogi(ScalarOrSchedule learning_rate, YogiOptions opts) {
  return chain(scale_by_yogi({.b1 = opts.b1, .b2 = opts.b2, .eps = opts.eps}),
               scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<ScaleBySign, ScaleByLearningRate> sign_sgd(ScalarOrSchedule learning_rate) {
  return chain(scale_by_sign(), scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<AddNoise, ScaleByLearningRate> noisy_sgd(ScalarOrSchedule learning_rate, NoisySgdOptions opts) {
  return chain(add_noise(opts.eta, opts.gamma, std::move(opts.key)), scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<ScaleByNovograd, ScaleByLearningRate> novograd(ScalarOrSchedule learning_rate, NovogradOptions opts) {
  return chain(scale_by_novograd({opts.b1, opts.b2, opts.eps, opts.eps_root, opts.weight_decay}),
               scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<ScaleByAdam, AddDecayedWeights, ScaleByTrustRatio, ScaleByLearningRate> lamb(
               ScalarOrSchedule learning_rate, LambOptions opts) {
  return chain(scale_by_adam({.b1 = opts.b1, .b2 = opts.b2, .eps = opts.eps, .eps_root = opts.eps_root}),
               add_decayed_weights(std::move(opts.weight_decay), std::move(opts.mask)), scale_by_trust_ratio(),
               scale_by_learning_rate(std::move(learning_rate)));
}

EQX_KERNEL_INLINE Chain<AddDecayedWeights, Masked<ScaleByTrustRatio>, ScaleByLearningRate, Trace> lars(
               ScalarOrSchedule learning_rate, LarsOptions opts) {
  return chain(add_decayed_weights(std::move(opts.weight_decay), std::move(opts.weight_decay_mask)),
               masked(scale_by_trust_ratio({.trust_coefficient = opts.trust_coefficient, .eps = opts.eps}),
                      std::move(opts.trust_ratio_mask)),
               scale_by_learning_rate(std::move(learning_rate)), Trace{opts.momentum, opts.nesterov});
}

EQX_KERNEL_INLINE Chain<ScaleByTrustRatio, ScaleByLearningRate, AddDecayedWeights> fromage(ScalarOrSchedule learning_rate,
                                                                                           FromageOptions opts) {
  auto trust = scale_by_trust_ratio({.min_norm = opts.min_norm});
  if (!learning_rate.is_schedule()) {
    const double lr = learning_rate.value();
    const double mult = 1.0 / std::sqrt(1.0 + lr * lr);
    return chain(trust, scale_by_learning_rate(lr * mult), add_decayed_weights(mult - 1.0));
  }
  auto mult = [learning_rate](const Array& count, DType d) {
    Array lr = learning_rate.at(count, d);
    return 1.0 / sqrt(1.0 + lr * lr);
  };
  return chain(trust,
               scale_by_learning_rate(Schedule([learning_rate, mult](const Array& count, DType d) {
                 return mult(count, d) * learning_rate.at(count, d);
               })),
               add_decayed_weights(Schedule([mult](const Array& count, DType d) { return mult(count, d) - 1.0; })));
}

EQX_KERNEL_INLINE Chain<ScaleByFactoredRms, ClipByBlockRms, ScaleByLearningRate, ScaleByParamBlockRms, Ema, AddDecayedWeights,
                        Scale>
           adafactor(std::optional<ScalarOrSchedule> learning_rate, AdafactorOptions opts) {
  return chain(scale_by_factored_rms({.factored = opts.factored,
                                      .decay_rate = opts.decay_rate,
                                      .step_offset = opts.decay_offset,
                                      .min_dim_size_to_factor = opts.min_dim_size_to_factor,
                                      .epsilon = opts.eps}),
               clip_by_block_rms(opts.clipping_threshold ? *opts.clipping_threshold
                                                         : std::numeric_limits<double>::infinity()),
               scale_by_learning_rate(learning_rate ? std::move(*learning_rate) : ScalarOrSchedule(1.0), false),
               ScaleByParamBlockRms{opts.multiply_by_parameter_scale ? std::optional<double>(1e-3) : std::nullopt},
               Ema{opts.momentum, false},
               add_decayed_weights(std::move(opts.weight_decay_rate), std::move(opts.weight_decay_mask)), scale(-1.0));
}

EQX_KERNEL_INLINE Chain<ScaleBySm3, Scale> sm3(double learning_rate, double momentum) {
  return chain(scale_by_sm3({.b1 = momentum}), scale(-learning_rate));
}
}  // namespace eqx::optim
#endif  // EQX_KERNELS_HERE(OPTIM)
