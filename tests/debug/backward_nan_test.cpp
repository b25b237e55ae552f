// debug::backward_nan: the identity forward; in the backward pass it prints
// primal and cotangent and stops on a NaN cotangent, eagerly and compiled.

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include <eqx/eqx.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace debug_backward_nan_test {

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;

namespace {

/// Captures debug::print's output for the scope's lifetime.
struct CapturePrints {
  std::string text;
  std::function<void(std::string_view)> saved = eqx::debug::print_sink();
  CapturePrints() {
    eqx::debug::print_sink() = [this](std::string_view s) { text += s; };
  }
  ~CapturePrints() { eqx::debug::print_sink() = saved; }
};

// The classic NaN gradient: where() selects 0 at x = 0, but sqrt's
// derivative there is inf, and 0 * inf = NaN flows back into x.
Array safe_looking_sqrt(const Array& x) { return eqx::where(x > 0.0, eqx::sqrt(x), 0.0); }

}  // namespace

TEST_CASE("debug::backward_nan: prints primal and cotangent, stops on a NaN cotangent", "[debug]") {
  Array x = eqx::array<float>({0.0f, 4.0f});
  auto loss = [](const Array& v) { return eqx::sum(safe_looking_sqrt(eqx::debug::backward_nan(v, "input"))); };
  {
    CapturePrints out;
    CHECK(message_of<eqx::RuntimeError>([&] { eqx::filter_grad(loss)(x); }) ==
          "eqx::debug::backward_nan: a NaN cotangent reached 'input' in the backward pass; the values printed just "
          "before are its primal and cotangent (the NaN came from the operations after it in the forward pass)");
    CHECK(out.text == "input: primal f32[2] [0., 4.] cotangent f32[2] [ nan, 0.25]\n");
  }
  {
    // Compiled: printed and checked each time the plan runs, not when traced.
    auto step = eqx::filter_jit(eqx::filter_grad(loss));
    CapturePrints out;
    CHECK_THROWS_AS(step(x), eqx::RuntimeError);
    CHECK_THROWS_AS(step(x), eqx::RuntimeError);
    CHECK(out.text ==
          "input: primal f32[2] [0., 4.] cotangent f32[2] [ nan, 0.25]\n"
          "input: primal f32[2] [0., 4.] cotangent f32[2] [ nan, 0.25]\n");
  }
  {
    // terminate = false: the gradient comes back, NaN included.
    CapturePrints out;
    Array g = eqx::filter_grad([](const Array& v) {
      return eqx::sum(safe_looking_sqrt(eqx::debug::backward_nan(v, "input", false)));
    })(x);
    check<float>(g, {2}, {NAN, 0.25f});
    CHECK(out.text == "input: primal f32[2] [0., 4.] cotangent f32[2] [ nan, 0.25]\n");
  }
}

TEST_CASE("debug::backward_nan: the identity on a pytree, gradients unchanged when finite", "[debug]") {
  struct Layer {
    Array weight;
    Array steps;  // int32: no cotangent, not printed
  };
  Layer m{eqx::array<float>({1.0f, -2.0f}), eqx::array<std::int32_t>({3})};
  auto loss = [](const Layer& l) {
    Layer h = eqx::debug::backward_nan(l, "model");
    return eqx::sum(h.weight * h.weight * eqx::astype(h.steps, eqx::float32));
  };
  CapturePrints out;
  auto [value, g] = eqx::filter_value_and_grad(loss)(m);
  check<float>(value, {}, {15.0f});
  check<float>(g.weight, {2}, {6.0f, -12.0f});
  CHECK_FALSE(g.steps.has_value());
  CHECK(out.text == "model.weight: primal f32[2] [ 1., -2.] cotangent f32[2] [  6., -12.]\n");
  // Forward only: nothing printed, the value is x itself.
  out.text.clear();
  Layer same = eqx::debug::backward_nan(m, "model");
  check<float>(same.weight, {2}, {1.0f, -2.0f});
  CHECK(out.text.empty());
}

}  // namespace debug_backward_nan_test
