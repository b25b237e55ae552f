// A second source file of a project that uses eqx (the first is the README's
// quick example): a dozen operations and one filter_jit. scripts/compile-cost
// measures what one more such file costs to compile, header-only and with
// eqx::kernels.

#include <eqx/eqx.hpp>

/// Standardises x per column, projects it with w and scores the result.
/// Usage: `eqx::Array s = standardised_score(x, w);`
eqx::Array standardised_score(const eqx::Array& x, const eqx::Array& w) {
  static auto score = eqx::filter_jit([](const eqx::Array& x, const eqx::Array& w) {
    eqx::Array centred = x - eqx::mean(x, {0}, true);
    eqx::Array scaled = centred / (eqx::sqrt(eqx::var(x, {0}, 0, true)) + 1e-5f);
    eqx::Array h = eqx::tanh(eqx::matmul(scaled, w));
    eqx::Array gate = eqx::logistic(h) * eqx::maximum(h, 0.0f);
    return eqx::sum(eqx::exp(-eqx::abs(h)) * gate - eqx::log1p(eqx::square(h)));
  });
  return score(x, w);
}
