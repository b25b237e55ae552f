// filter_jit in five steps: trace, inspect, reuse, retrace, and what cannot
// be traced. Run: build/default/examples/jit_tutorial
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

  // 2. What the function traces to, before any optimisation.
  fmt::print("traced:\n{}\n\n", eqx::filter_make_jaxpr(model)(x));

  // 3. Jit it. The first call traces and compiles; the add and the relu of
  //    each hidden layer become one fused, tiled loop.
  auto forward = eqx::filter_jit(eqx::debug::assert_max_traces(
      [](const nn::MLP& m, const eqx::Array& x) { return m(x); }, 2, "forward"));
  fmt::print("jit:   {}\neager: {}\n", forward(model, x), model(x));
  fmt::print("compiled:\n{}\n", forward.plan(model, x).graph());
  fmt::print("arena: {} bytes for {} intermediates\n\n", forward.plan(model, x).memory_stats().arena_bytes,
             forward.plan(model, x).memory_stats().num_intermediates);

  // 4. New values with the same shapes reuse the plan; a new static value
  //    (the activation relu -> tanh, swapped in with tree_at) is a new key
  //    and traces again.
  forward(model, eqx::zeros({4}));
  const nn::MLP tanh_model =
      eqx::tree_at([](nn::MLP& m) -> auto& { return m.activation; }, model, nn::Activation(eqx::tanh));
  forward(tanh_model, x);
  fmt::print("traces so far: {}\n", eqx::debug::get_num_traces(forward));
  try {
    forward(tanh_model, eqx::ones({4}, eqx::float64));  // a third trace: assert_max_traces says what changed
  } catch (const eqx::TraceError& e) {
    fmt::print("TraceError: {}\n\n", e.what());
  }

  // 5. Inside a trace an Array has no value: a C++ `if` on it cannot work.
  auto bad = eqx::filter_jit([](const eqx::Array& x) { return eqx::sum(x) > 0.0f ? x : -x; });
  try {
    bad(x);
  } catch (const eqx::ConcretizationError& e) {
    fmt::print("ConcretizationError: {}\n", e.what());
  }
  auto good = eqx::filter_jit([](const eqx::Array& x) { return eqx::where(eqx::sum(x) > 0.0f, x, -x); });
  fmt::print("with eqx::where: {}\n", good(x));
}
