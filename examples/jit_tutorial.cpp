// filter_jit in five steps: trace, inspect, reuse, retrace, and what cannot
// be traced. Run: build/default/examples/jit_tutorial
#include <eqx/eqx.hpp>
#include <fmt/core.h>

// 1. A model is a plain struct. Its Array fields are the leaves that
//    filter_jit traces; `activation` is a static leaf, part of the cache key.
struct Mlp {
  std::vector<eqx::Array> weights;  // [out, in], as PyTorch's Linear
  std::vector<eqx::Array> biases;
  bool relu = true;

  eqx::Array operator()(eqx::Array h) const {
    for (std::size_t i = 0; i < weights.size(); ++i) {
      h = eqx::matmul(weights[i], h) + biases[i];
      if (i + 1 < weights.size()) h = relu ? eqx::maximum(h, 0.0f) : eqx::tanh(h);
    }
    return h;
  }
};

int main() {
  auto k = eqx::random::split_keys(eqx::random::key(42), 4);
  Mlp model{{eqx::random::normal(k[0], {8, 4}), eqx::random::normal(k[1], {2, 8})},
            {eqx::random::normal(k[2], {8}), eqx::random::normal(k[3], {2})}};
  eqx::Array x = eqx::ones({4});

  // 2. What the function traces to, before any optimisation.
  fmt::print("traced:\n{}\n\n", eqx::filter_make_jaxpr(model)(x));

  // 3. Jit it. The first call traces and compiles; the add and the relu of
  //    each hidden layer become one fused, tiled loop.
  auto forward = eqx::filter_jit(eqx::debug::assert_max_traces(
      [](const Mlp& m, const eqx::Array& x) { return m(x); }, 2, "forward"));
  fmt::print("jit:   {}\neager: {}\n", forward(model, x), model(x));
  fmt::print("compiled:\n{}\n", forward.plan(model, x).graph());
  fmt::print("arena: {} bytes for {} intermediates\n\n", forward.plan(model, x).memory_stats().arena_bytes,
             forward.plan(model, x).memory_stats().num_intermediates);

  // 4. New values with the same shapes reuse the plan; a new static value
  //    (relu -> tanh) is a new key and traces again.
  forward(model, eqx::zeros({4}));
  Mlp tanh_model = model;
  tanh_model.relu = false;
  forward(tanh_model, x);
  fmt::print("traces so far: {}\n", eqx::debug::get_num_traces(forward));
  try {
    forward(model, eqx::ones({4}, eqx::float64));  // a third trace: assert_max_traces says what changed
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
