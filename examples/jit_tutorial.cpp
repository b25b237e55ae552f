// filter_jit in five steps: trace, inspect, reuse, retrace, and what cannot
// be traced. Run: build/default/examples/jit_tutorial
//
// Checks (non-zero exit if one fails): jit and eager agree, the cached call
// does not retrace, the new static value does, and both errors are thrown.
#include <cstdio>

#include <eqx/eqx.hpp>
#include <fmt/core.h>

namespace nn = eqx::nn;

// 1. A model is a plain struct: here an nn::MLP 4 -> 8 -> 2. Its Array
//    fields (the Linear layers' weights and biases) are the leaves that
//    filter_jit traces; its `activation` (a function pointer) and its sizes
//    are static leaves, part of the cache key.

int main() {
  const nn::MLP model = nn::MLP::init(4, 2, /*width=*/8, /*depth=*/1, eqx::random::key(42));  // relu by default
  eqx::Array x = eqx::ones({4});
  int failures = 0;
  auto require = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "FAILED: %s\n", what);
      ++failures;
    }
  };

  // 2. What the function traces to, before any optimisation.
  fmt::print("traced:\n{}\n\n", eqx::filter_make_jaxpr(model)(x));

  // 3. Jit it. The first call traces and compiles; the add and the relu of
  //    each hidden layer become one fused, tiled loop.
  auto forward = eqx::filter_jit(eqx::debug::assert_max_traces(
      [](const nn::MLP& m, const eqx::Array& x) { return m(x); }, 2, "forward"));
  fmt::print("jit:   {}\neager: {}\n", forward(model, x), model(x));
  require(eqx::max(eqx::abs(forward(model, x) - model(x))).item<float>() <= 1e-6f, "jit and eager agree");
  fmt::print("compiled:\n{}\n", forward.plan(model, x).graph());
  fmt::print("arena: {} bytes for {} intermediates\n\n", forward.plan(model, x).memory_stats().arena_bytes,
             forward.plan(model, x).memory_stats().num_intermediates);

  // 4. New values with the same shapes reuse the plan; a new static value
  //    (the activation relu -> tanh, swapped in with tree_at) is a new key
  //    and traces again.
  forward(model, eqx::zeros({4}));
  require(eqx::debug::get_num_traces(forward) == 1, "new values with the same shapes did not trace again");
  const nn::MLP tanh_model =
      eqx::tree_at([](nn::MLP& m) -> auto& { return m.activation; }, model, nn::Activation(eqx::tanh));
  forward(tanh_model, x);
  fmt::print("traces so far: {}\n", eqx::debug::get_num_traces(forward));
  require(eqx::debug::get_num_traces(forward) == 2, "the new activation traced once more");
  bool refused = false;
  try {
    forward(tanh_model, eqx::ones({4}, eqx::float64));  // a third trace: assert_max_traces says what changed
  } catch (const eqx::TraceError& e) {
    refused = true;
    fmt::print("TraceError: {}\n\n", e.what());
  }
  require(refused, "a third trace threw eqx::TraceError");

  // 5. Inside a trace an Array has no value: a C++ `if` on it cannot work.
  auto bad = eqx::filter_jit([](const eqx::Array& x) { return eqx::sum(x) > 0.0f ? x : -x; });
  bool concretized = false;
  try {
    bad(x);
  } catch (const eqx::ConcretizationError& e) {
    concretized = true;
    fmt::print("ConcretizationError: {}\n", e.what());
  }
  require(concretized, "the if on a traced Array threw eqx::ConcretizationError");
  auto good = eqx::filter_jit([](const eqx::Array& x) { return eqx::where(eqx::sum(x) > 0.0f, x, -x); });
  fmt::print("with eqx::where: {}\n", good(x));
  require(eqx::tree_equal(good(x), x), "eqx::where picked x (its sum is positive)");
  return failures == 0 ? 0 : 1;
}
