#pragma once
// Optax's schedules: functions of the step count (an int32 scalar Array)
// giving a learning rate, usable wherever a learning rate is taken.
//
//   auto lr = eqx::optim::warmup_cosine_decay_schedule(0.0, 1e-3, 100, 1000, 1e-5);
//   auto opt = eqx::optim::adamw(lr);
//   eqx::Array v = lr(eqx::array(50));   // float32 scalar
//
// Every schedule is written with Array ops on the count (where, clip, pow,
// cos), never by branching on its value in C++, so it traces into the
// jitted step and a step count that changes never retraces. Checks on the
// hyperparameters themselves (plain numbers) happen when the schedule is
// built. Formulas and defaults are Optax's (optax/schedules/).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <numbers>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/config.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/optim/base.hpp"

namespace eqx::optim {

/// The same value at every step (optax.constant_schedule).
/// Usage: `auto lr = eqx::optim::constant_schedule(1e-3);`
inline Schedule constant_schedule(double value) {
  return Schedule([value](const Array&, DType d) { return full(Shape{}, value, d); });
}

/// init_value until transition_begin, then (init - end) * (1 - t / T)^power
/// + end with t = count - transition_begin clipped to [0, T], end_value
/// after (optax.polynomial_schedule). T <= 0 gives the constant init_value;
/// a negative transition_begin counts as 0.
/// Usage: `auto lr = eqx::optim::polynomial_schedule(1.0, 0.0, 2.0, 100);`
Schedule polynomial_schedule(double init_value, double end_value, double power, std::int64_t transition_steps,
                             std::int64_t transition_begin = 0);

/// Linear interpolation from init_value to end_value over transition_steps
/// starting at transition_begin (optax.linear_schedule).
/// Usage: `auto warmup = eqx::optim::linear_schedule(0.0, 1e-3, 100);`
Schedule linear_schedule(double init_value, double end_value, std::int64_t transition_steps,
                         std::int64_t transition_begin = 0);

/// init_value multiplied by scale for every boundary the count has reached
/// (count >= boundary) (optax.piecewise_constant_schedule). Scales must be
/// non-negative. Usage: `eqx::optim::piecewise_constant_schedule(0.1, {{100, 0.1}, {200, 0.1}})`
Schedule piecewise_constant_schedule(double init_value,
                                     std::map<std::int64_t, double> boundaries_and_scales = {});

/// exponential_decay's keyword arguments.
struct ExponentialDecayOptions {
  std::int64_t transition_begin = 0;
  bool staircase = false;                ///< decay in whole multiples of transition_steps
  std::optional<double> end_value{};     ///< lower bound (upper bound when decay_rate > 1)
};

/// init_value * decay_rate^((count - transition_begin) / transition_steps)
/// after transition_begin, init_value before (optax.exponential_decay);
/// transition_steps <= 0 or decay_rate == 0 give the constant init_value.
/// Usage: `auto lr = eqx::optim::exponential_decay(0.1, 1000, 0.5, {.staircase = true, .end_value = 1e-4});`
Schedule exponential_decay(double init_value, std::int64_t transition_steps, double decay_rate,
                           ExponentialDecayOptions opts = {});

/// init_value * ((1 - alpha) * (0.5 * (1 + cos(pi * t / decay_steps)))^exponent
/// + alpha) with t = min(count, decay_steps) (optax.cosine_decay_schedule).
/// Usage: `auto lr = eqx::optim::cosine_decay_schedule(1e-3, 1000, 0.1);`
Schedule cosine_decay_schedule(double init_value, std::int64_t decay_steps, double alpha = 0.0,
                               double exponent = 1.0);

/// Schedules taking over one after another: schedules[i + 1] from
/// boundaries[i] on, called with count - boundaries[i] (optax.join_schedules).
/// Usage: `eqx::optim::join_schedules({warmup, decay}, {100})`
Schedule join_schedules(std::vector<Schedule> schedules, std::vector<std::int64_t> boundaries);

/// Linear warmup from init_value to peak_value over warmup_steps, then
/// cosine decay to end_value at decay_steps (counted from step 0), end_value
/// after (optax.warmup_cosine_decay_schedule).
/// Usage: `auto lr = eqx::optim::warmup_cosine_decay_schedule(0.0, 1e-3, 100, 1000, 1e-5);`
Schedule warmup_cosine_decay_schedule(double init_value, double peak_value, std::int64_t warmup_steps,
                                      std::int64_t decay_steps, double end_value = 0.0,
                                      double exponent = 1.0);


/// Linear warmup from init_value to peak_value over warmup_steps, then
/// exponential_decay from peak_value (its count starting at warmup_steps)
/// (optax.warmup_exponential_decay_schedule).
/// Usage: `auto lr = eqx::optim::warmup_exponential_decay_schedule(0.0, 1e-3, 100, 1000, 0.5);`
Schedule warmup_exponential_decay_schedule(double init_value, double peak_value, std::int64_t warmup_steps,
                                           std::int64_t transition_steps, double decay_rate,
                                           ExponentialDecayOptions opts = {});

/// How piecewise_interpolate_schedule moves between its boundary values.
enum class Interpolation { linear, cosine };

/// Starts at init_value; each boundary's scale multiplies the value reached
/// there, and between boundaries the value moves from one to the next
/// linearly or along a half cosine (optax.piecewise_interpolate_schedule).
/// Scales must be non-negative.
/// Usage: `eqx::optim::piecewise_interpolate_schedule(eqx::optim::Interpolation::cosine, 1.0, {{100, 0.1}})`
Schedule piecewise_interpolate_schedule(Interpolation interpolation, double init_value,
                                        std::map<std::int64_t, double> boundaries_and_scales = {});

/// onecycle schedules' keyword arguments.
struct OnecycleOptions {
  double pct_start = 0.3;            ///< fraction of the steps spent rising to peak_value
  double pct_final = 0.85;           ///< linear_onecycle: where the fall back to the start value ends
  double div_factor = 25.0;          ///< the start value is peak_value / div_factor
  double final_div_factor = 1e4;     ///< the last value is the start value / final_div_factor
};

/// One cycle with linear pieces: peak/div -> peak at pct_start, back to
/// peak/div at pct_final, down to peak/(div * final_div) at transition_steps
/// (optax.linear_onecycle_schedule).
/// Usage: `auto lr = eqx::optim::linear_onecycle_schedule(1000, 0.1);`
Schedule linear_onecycle_schedule(std::int64_t transition_steps, double peak_value, OnecycleOptions opts = {});

/// One cycle with half-cosine pieces: peak/div -> peak at pct_start, then
/// down to peak/(div * final_div) at transition_steps (optax.cosine_onecycle_schedule;
/// pct_final is not used).
/// Usage: `auto lr = eqx::optim::cosine_onecycle_schedule(1000, 0.1);`
Schedule cosine_onecycle_schedule(std::int64_t transition_steps, double peak_value, OnecycleOptions opts = {});

/// One cycle of sgdr_schedule: warmup_cosine_decay_schedule's arguments.
struct WarmupCosineDecayArgs {
  double init_value = 0.0;
  double peak_value = 0.0;
  std::int64_t warmup_steps = 0;
  std::int64_t decay_steps = 0;
  double end_value = 0.0;
  double exponent = 1.0;
};

/// Warm restarts (optax.sgdr_schedule): warmup_cosine_decay cycles one after
/// another, each restarting its count where the previous one's decay_steps end.
/// Usage: `eqx::optim::sgdr_schedule({{.peak_value = 0.1, .warmup_steps = 10, .decay_steps = 100}, {.peak_value = 0.05, .warmup_steps = 10, .decay_steps = 200}})`
Schedule sgdr_schedule(const std::vector<WarmupCosineDecayArgs>& cycles);

}  // namespace eqx::optim

#if EQX_KERNELS_HERE(OPTIM)
namespace eqx::optim {
EQX_KERNEL_INLINE Schedule polynomial_schedule(double init_value, double end_value, double power, std::int64_t transition_steps,
                                               std::int64_t transition_begin) {
  if (transition_steps <= 0) return constant_schedule(init_value);
  if (transition_begin < 0) transition_begin = 0;
  return Schedule([=](const Array& count, DType d) {
    Array t = astype(clip(count - static_cast<std::int32_t>(transition_begin), 0, static_cast<std::int32_t>(transition_steps)), d);
    Array frac = 1.0 - t / static_cast<double>(transition_steps);
    return (init_value - end_value) * pow(frac, power) + end_value;
  });
}

EQX_KERNEL_INLINE Schedule linear_schedule(double init_value, double end_value, std::int64_t transition_steps,
                                           std::int64_t transition_begin) {
  return polynomial_schedule(init_value, end_value, 1.0, transition_steps, transition_begin);
}

EQX_KERNEL_INLINE Schedule piecewise_constant_schedule(double init_value,
                                                       std::map<std::int64_t, double> boundaries_and_scales) {
  for (const auto& [b, s] : boundaries_and_scales)
    if (s < 0)
      throw ValueError("eqx::optim::piecewise_constant_schedule: the scale at boundary " + std::to_string(b) + " is " +
                       std::to_string(s) + "; scales must be non-negative");
  return Schedule([=](const Array& count, DType d) {
    Array v = full(Shape{}, init_value, d);
    for (const auto& [b, s] : boundaries_and_scales) v = where(count < static_cast<std::int32_t>(b), v, v * s);
    return v;
  });
}

EQX_KERNEL_INLINE Schedule exponential_decay(double init_value, std::int64_t transition_steps, double decay_rate,
                                             ExponentialDecayOptions opts) {
  if (transition_steps <= 0 || decay_rate == 0) return constant_schedule(init_value);
  if (opts.transition_begin < 0) opts.transition_begin = 0;
  return Schedule([=](const Array& count, DType d) {
    Array dc = count - static_cast<std::int32_t>(opts.transition_begin);
    Array p = astype(dc, d) / static_cast<double>(transition_steps);
    if (opts.staircase) p = astype(astype(maximum(p, 0.0), int32), d);  // floor for p >= 0; p < 0 is masked below
    Array v = where(dc <= 0, full(Shape{}, init_value, d), init_value * pow(decay_rate, p));
    if (opts.end_value) v = decay_rate < 1.0 ? maximum(v, *opts.end_value) : minimum(v, *opts.end_value);
    return v;
  });
}

EQX_KERNEL_INLINE Schedule cosine_decay_schedule(double init_value, std::int64_t decay_steps, double alpha,
                                                 double exponent) {
  if (decay_steps <= 0)
    throw ValueError("eqx::optim::cosine_decay_schedule: decay_steps is " + std::to_string(decay_steps) +
                     "; it must be positive");
  return Schedule([=](const Array& count, DType d) {
    Array t = astype(minimum(count, static_cast<std::int32_t>(decay_steps)), d);
    Array cosine = 0.5 * (1.0 + cos(std::numbers::pi * t / static_cast<double>(decay_steps)));
    return init_value * ((1.0 - alpha) * pow(cosine, exponent) + alpha);
  });
}

EQX_KERNEL_INLINE Schedule join_schedules(std::vector<Schedule> schedules, std::vector<std::int64_t> boundaries) {
  if (schedules.empty() || boundaries.size() + 1 != schedules.size())
    throw ValueError("eqx::optim::join_schedules: got " + std::to_string(schedules.size()) + " schedules and " +
                     std::to_string(boundaries.size()) + " boundaries; give one boundary fewer than schedules");
  return Schedule([schedules = std::move(schedules), boundaries = std::move(boundaries)](const Array& count, DType d) {
    Array out = schedules[0](count, d);
    for (std::size_t i = 0; i < boundaries.size(); ++i) {
      const auto b = static_cast<std::int32_t>(boundaries[i]);
      out = where(count < b, out, schedules[i + 1](count - b, d));
    }
    return out;
  });
}

EQX_KERNEL_INLINE Schedule warmup_cosine_decay_schedule(double init_value, double peak_value, std::int64_t warmup_steps,
                                                        std::int64_t decay_steps, double end_value,
                                                        double exponent) {
  const double alpha = peak_value == 0.0 ? 0.0 : end_value / peak_value;
  return join_schedules({linear_schedule(init_value, peak_value, warmup_steps),
                         cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)},
                        {warmup_steps});
}

EQX_KERNEL_INLINE Schedule warmup_exponential_decay_schedule(double init_value, double peak_value, std::int64_t warmup_steps,
                                                             std::int64_t transition_steps, double decay_rate,
                                                             ExponentialDecayOptions opts) {
  return join_schedules({linear_schedule(init_value, peak_value, warmup_steps),
                         exponential_decay(peak_value, transition_steps, decay_rate, opts)},
                        {warmup_steps});
}

EQX_KERNEL_INLINE Schedule piecewise_interpolate_schedule(Interpolation interpolation, double init_value,
                                                          std::map<std::int64_t, double> boundaries_and_scales) {
  std::vector<std::int64_t> bounds{0};
  std::vector<double> vals{init_value};
  for (const auto& [b, sc] : boundaries_and_scales) {
    if (sc < 0)
      throw ValueError("eqx::optim::piecewise_interpolate_schedule: the scale at boundary " + std::to_string(b) +
                       " is " + std::to_string(sc) + "; scales must be non-negative");
    bounds.push_back(b);
    vals.push_back(vals.back() * sc);
  }
  return Schedule([=](const Array& count, DType d) {
    Array out = full(Shape{}, 0.0, d);
    for (std::size_t i = 0; i + 1 < bounds.size(); ++i) {
      const auto lo = static_cast<std::int32_t>(bounds[i]), hi = static_cast<std::int32_t>(bounds[i + 1]);
      const double size = static_cast<double>(std::max<std::int64_t>(bounds[i + 1] - bounds[i], 1));
      Array pct = astype(count - lo, d) / size;
      Array v = interpolation == Interpolation::linear
                    ? (vals[i + 1] - vals[i]) * pct + vals[i]
                    : vals[i + 1] + (vals[i] - vals[i + 1]) / 2.0 * (cos(std::numbers::pi * pct) + 1.0);
      out = where(logical_and(count >= lo, count < hi), v, out);
    }
    return where(count >= static_cast<std::int32_t>(bounds.back()), full(Shape{}, vals.back(), d), out);
  });
}

EQX_KERNEL_INLINE Schedule linear_onecycle_schedule(std::int64_t transition_steps, double peak_value, OnecycleOptions opts) {
  if (transition_steps <= 0)
    throw ValueError("eqx::optim::linear_onecycle_schedule: transition_steps is " + std::to_string(transition_steps) +
                     "; it must be positive");
  std::map<std::int64_t, double> b;
  b[static_cast<std::int64_t>(opts.pct_start * static_cast<double>(transition_steps))] = opts.div_factor;
  b[static_cast<std::int64_t>(opts.pct_final * static_cast<double>(transition_steps))] = 1.0 / opts.div_factor;
  b[transition_steps] = 1.0 / opts.final_div_factor;
  return piecewise_interpolate_schedule(Interpolation::linear, peak_value / opts.div_factor, b);
}

EQX_KERNEL_INLINE Schedule cosine_onecycle_schedule(std::int64_t transition_steps, double peak_value, OnecycleOptions opts) {
  if (transition_steps <= 0)
    throw ValueError("eqx::optim::cosine_onecycle_schedule: transition_steps is " + std::to_string(transition_steps) +
                     "; it must be positive");
  std::map<std::int64_t, double> b;
  b[static_cast<std::int64_t>(opts.pct_start * static_cast<double>(transition_steps))] = opts.div_factor;
  b[transition_steps] = 1.0 / (opts.div_factor * opts.final_div_factor);
  return piecewise_interpolate_schedule(Interpolation::cosine, peak_value / opts.div_factor, b);
}

EQX_KERNEL_INLINE Schedule sgdr_schedule(const std::vector<WarmupCosineDecayArgs>& cycles) {
  if (cycles.empty()) throw ValueError("eqx::optim::sgdr_schedule: no cycles were given");
  std::vector<Schedule> schedules;
  std::vector<std::int64_t> boundaries;
  std::int64_t step = 0;
  for (const WarmupCosineDecayArgs& c : cycles) {
    schedules.push_back(warmup_cosine_decay_schedule(c.init_value, c.peak_value, c.warmup_steps, c.decay_steps,
                                                     c.end_value, c.exponent));
    step += c.decay_steps;
    boundaries.push_back(step);
  }
  boundaries.pop_back();
  return join_schedules(std::move(schedules), std::move(boundaries));
}
}  // namespace eqx::optim
#endif  // EQX_KERNELS_HERE(OPTIM)
