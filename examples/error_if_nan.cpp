// Catching a NaN at run time with eqx::error_if, inside compiled code.
//
// A C++ `if` cannot look at a traced value (filter_jit would throw a
// ConcretizationError). eqx::error_if puts the check into the computation
// instead: it returns its input unchanged and throws eqx::RuntimeError when
// the predicate is true while the compiled plan runs. Use the returned
// value, so the check stays in the graph.
//
// Run: build/<dir>/examples/error_if_nan

#include <cstdio>

#include <fmt/core.h>
#include <eqx/eqx.hpp>

/// Poisson log-likelihood (up to a constant) of positive rates; a negative rate gives NaN.
eqx::Array log_likelihood(const eqx::Array& rates, const eqx::Array& counts) {
  eqx::Array ll = eqx::sum(counts * eqx::log(rates) - rates);
  return eqx::error_if(ll, eqx::isnan(ll),
                       "log_likelihood: NaN; every rate must be positive");
}

int main() {
  auto ll = eqx::filter_jit(log_likelihood);
  const eqx::Array counts = eqx::array({1.0f, 3.0f, 2.0f});
  fmt::print("{}\n", eqx::to_string(eqx::filter_make_jaxpr(log_likelihood)(eqx::array({1.0f, 2.0f, 3.0f}), counts).graph));
  fmt::print("good rates: log-likelihood {:.4f}\n", ll(eqx::array({1.0f, 2.0f, 3.0f}), counts).item<float>());
  try {
    ll(eqx::array({1.0f, -2.0f, 3.0f}), counts);
    std::fprintf(stderr, "expected an eqx::RuntimeError\n");
    return 1;
  } catch (const eqx::RuntimeError& e) {
    fmt::print("caught eqx::RuntimeError: {}\n", e.what());
  }
  return 0;
}
