// filter_pure_callback: host code on concrete Arrays eagerly, jitted and
// vmapped (one call per example, or one vectorized call); removed with its
// unused result, never folded; results checked against the declared types;
// exceptions propagate; not differentiable.

#include <catch2/catch.hpp>

#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace transform_callback_test {

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;

namespace {

/// A host-only computation: running sums, with the number of calls counted.
struct CumSum {
  int* calls;
  std::vector<eqx::Shape>* seen = nullptr;
  Array operator()(const Array& x) const {
    ++*calls;
    if (seen) seen->push_back(x.shape());
    std::vector<float> v = x.to_vector<float>();
    const std::int64_t row = x.shape().back();
    for (std::size_t i = 0; i < v.size(); ++i)
      if (i % static_cast<std::size_t>(row) != 0) v[i] += v[i - 1];
    return eqx::array(v, x.shape());
  }
};

}  // namespace

TEST_CASE("filter_pure_callback: eager and jitted calls, pytrees in and out", "[callback]") {
  int calls = 0;
  auto cumsum = [&](const Array& x) {
    return eqx::filter_pure_callback(CumSum{&calls}, eqx::shape_dtype_struct(x.shape(), x.dtype()), x);
  };
  check(cumsum(eqx::array({1.0f, 2.0f, 3.0f})), {3}, std::vector<float>{1, 3, 6});
  CHECK(calls == 1);

  auto jitted = eqx::filter_jit([&](const Array& x) { return cumsum(x * 2.0f) + 1.0f; });
  check(jitted(eqx::array({1.0f, 2.0f, 3.0f})), {3}, std::vector<float>{3, 7, 13});
  check(jitted(eqx::array({0.0f, 1.0f, 0.0f})), {3}, std::vector<float>{1, 3, 3});
  CHECK(calls == 3);  // once per run, none while compiling
  CHECK(eqx::to_string(jitted.plan(eqx::zeros({3})).graph()).find("pure_callback") != std::string::npos);

  // Pytrees in and out, with a static result leaf the callback must match.
  auto stats = [](const std::pair<Array, Array>& xy, int scale) {
    const std::vector<float> x = xy.first.to_vector<float>(), y = xy.second.to_vector<float>();
    const float dot = std::inner_product(x.begin(), x.end(), y.begin(), 0.0f);
    return std::pair{eqx::array(dot * static_cast<float>(scale)), std::string("dot")};
  };
  const auto like = std::pair{eqx::shape_dtype_struct({}, eqx::float32), std::string("dot")};
  auto f = eqx::filter_jit([&](const Array& x, const Array& y) {
    return eqx::filter_pure_callback(stats, like, std::pair{x, y + 1.0f}, 3).first;
  });
  check(f(eqx::array({1.0f, 2.0f}), eqx::array({3.0f, -1.0f})), {}, std::vector<float>{3 * (4 + 0)});
}

TEST_CASE("filter_pure_callback: removed when its result is unused, never constant-folded", "[callback]") {
  int calls = 0;
  auto cumsum = CumSum{&calls};
  auto both = eqx::filter_jit([&](const Array& x) {
    Array used = eqx::filter_pure_callback(cumsum, eqx::shape_dtype_struct({3}, eqx::float32), x);
    Array unused = eqx::filter_pure_callback(cumsum, eqx::shape_dtype_struct({3}, eqx::float32), x * 3.0f);
    (void)unused;
    return used;
  });
  check(both(eqx::array({1.0f, 1.0f, 1.0f})), {3}, std::vector<float>{1, 2, 3});
  CHECK(calls == 1);  // the unused call was dead code

  // On a constant input the callback still runs at every call, not when compiling.
  const Array c = eqx::array({2.0f, 2.0f, 2.0f});
  calls = 0;
  auto constant = eqx::filter_jit([&](const Array& x) {
    return x + eqx::filter_pure_callback(cumsum, eqx::shape_dtype_struct({3}, eqx::float32), c);
  });
  constant.plan(eqx::zeros({3}));
  CHECK(calls == 0);
  check(constant(eqx::zeros({3})), {3}, std::vector<float>{2, 4, 6});
  check(constant(eqx::ones({3})), {3}, std::vector<float>{3, 5, 7});
  CHECK(calls == 2);
}

TEST_CASE("filter_pure_callback: filter_vmap calls it per example, or once vectorized", "[callback]") {
  const Array xs = eqx::array(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}, {4, 2});
  const std::vector<float> want{1, 3, 3, 7, 5, 11, 7, 15};
  int calls = 0;
  std::vector<eqx::Shape> seen;
  auto per_example = [&](const Array& x) {
    return eqx::filter_pure_callback(CumSum{&calls, &seen}, eqx::shape_dtype_struct({2}, eqx::float32), x);
  };
  check(eqx::filter_vmap(per_example)(xs), {4, 2}, want);
  CHECK(calls == 4);
  REQUIRE(seen.size() == 4);
  CHECK(seen[3] == eqx::Shape{2});

  calls = 0;
  seen.clear();
  auto vectorized = [&](const Array& x) {
    return eqx::filter_pure_callback(eqx::CallbackVmap::vectorized, CumSum{&calls, &seen},
                                     eqx::shape_dtype_struct({2}, eqx::float32), x);
  };
  check(eqx::filter_jit(eqx::filter_vmap(vectorized))(xs), {4, 2}, want);
  CHECK(calls == 1);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == eqx::Shape{4, 2});

  // An unbatched argument: passed as it is per example, broadcast when vectorized.
  std::vector<eqx::Shape> offsets_seen;
  auto shift = [&](const Array& x, const Array& offset) {
    offsets_seen.push_back(offset.shape());
    return eqx::array(eqx::add(x, offset).to_vector<float>(), x.shape());
  };
  const Array offset = eqx::array({10.0f, 20.0f});
  auto seq = [&](const Array& x) { return eqx::filter_pure_callback(shift, eqx::shape_dtype_struct({2}, eqx::float32), x, offset); };
  auto vec = [&](const Array& x) {
    return eqx::filter_pure_callback(eqx::CallbackVmap::vectorized, shift, eqx::shape_dtype_struct({2}, eqx::float32), x,
                                     offset);
  };
  const std::vector<float> shifted{11, 22, 13, 24, 15, 26, 17, 28};
  check(eqx::filter_vmap(seq)(xs), {4, 2}, shifted);
  check(eqx::filter_vmap(vec)(xs), {4, 2}, shifted);
  REQUIRE(offsets_seen.size() == 5);
  CHECK(offsets_seen[0] == eqx::Shape{2});
  CHECK(offsets_seen[4] == eqx::Shape{4, 2});
}

TEST_CASE("filter_pure_callback: wrong results, exceptions and differentiation", "[callback]") {
  auto returns = [](Array r) { return [r](const Array&) { return r; }; };
  const Array x = eqx::array({1.0f, 2.0f});
  const Array like = eqx::shape_dtype_struct({2}, eqx::float32);
  const std::string name = std::string(eqx::detail::type_name<decltype(returns(x))>());
  CHECK(message_of<eqx::ShapeError>([&] { eqx::filter_pure_callback(returns(eqx::zeros({3})), like, x); }) ==
        "eqx::filter_pure_callback: the callback " + name +
            " returned f32[3] at result (root), result_shape_dtypes declares f32[2]; return that shape or declare "
            "the one it returns");
  CHECK(message_of<eqx::DTypeError>([&] {
          eqx::filter_jit([&](const Array& v) {
            return eqx::filter_pure_callback(returns(eqx::zeros({2}, eqx::int32)), like, v);
          })(x);
        }) == "eqx::filter_pure_callback: the callback " + name +
                  " returned i32[2] at result (root), result_shape_dtypes declares f32[2]; return that dtype "
                  "(eqx::astype) or declare the one it returns");
  // Vectorized under vmap, it must return the whole batch.
  CHECK(message_of<eqx::ShapeError>([&] {
          eqx::filter_vmap([&](const Array& v) {
            return eqx::filter_pure_callback(eqx::CallbackVmap::vectorized, returns(eqx::zeros({2})), like, v);
          })(eqx::zeros({3, 2}));
        }) == "eqx::filter_pure_callback: the callback " + name +
                  " returned f32[2] at result (root), result_shape_dtypes declares f32[3,2] (under filter_vmap a "
                  "vectorized callback gets and returns the whole batch, batch axis first)");
  // The structure and static leaves of the result must be the declared ones.
  auto tagged = [](const Array& v) { return std::pair{v, std::string("other")}; };
  CHECK(message_of<eqx::ValueError>([&] {
          eqx::filter_pure_callback(tagged, std::pair{like, std::string("tag")}, x);
        }) == "eqx::filter_pure_callback: the callback's result [1] is the static value 'other', the example has "
              "'tag'; return exactly the structure and static values of result_shape_dtypes");

  // An exception thrown by the callback leaves the jitted call, which still works afterwards.
  auto failing = eqx::filter_jit([](const Array& v) {
    return eqx::filter_pure_callback(
        [](const Array& a) {
          if (a.to_vector<float>()[0] < 0) throw std::runtime_error("negative input");
          return a;
        },
        eqx::shape_dtype_struct({2}, eqx::float32), v);
  });
  CHECK(message_of<std::runtime_error>([&] { failing(eqx::array({-1.0f, 0.0f})); }) == "negative input");
  check(failing(x), {2}, std::vector<float>{1, 2});

  // Not differentiable, forward or reverse.
  auto loss = [&](const Array& v) { return eqx::sum(eqx::filter_pure_callback(returns(x), like, v * 2.0f)); };
  const std::string not_diff = "eqx::filter_pure_callback: the callback " + name +
                               " is not differentiable (eqx cannot see into host code); give it a derivative by "
                               "wrapping the call in eqx::filter_custom_vjp (or eqx::filter_custom_jvp)";
  CHECK(message_of<eqx::ValueError>([&] { eqx::filter_grad(loss)(x); }) == not_diff);
  CHECK(message_of<eqx::ValueError>([&] { eqx::filter_jvp(loss, std::tuple{x}, std::tuple{x}); }) == not_diff);
  // On inputs that do not depend on what is differentiated, it is fine.
  const Array c = eqx::array({3.0f, 4.0f});
  auto constant_input = [&](const Array& v) {
    return eqx::sum(eqx::filter_pure_callback(returns(c), like, x) * v);
  };
  check(eqx::filter_grad(constant_input)(x), {2}, std::vector<float>{3, 4});
  // Nor on stop_gradient's output, whose derivative is zero (JAX's symbolic
  // zero): reverse mode never reaches the callback's VJP, eagerly or jitted.
  auto stopped = [&](const Array& v) {
    return eqx::sum(eqx::filter_pure_callback(returns(c), like, eqx::stop_gradient(v)) * v);
  };
  check(eqx::filter_grad(stopped)(x), {2}, std::vector<float>{3, 4});
  check(eqx::filter_jit(eqx::filter_grad(stopped))(x), {2}, std::vector<float>{3, 4});
  auto [stopped_value, stopped_tangent] = eqx::filter_jvp(stopped, std::tuple{x}, std::tuple{eqx::ones({2})});
  CHECK(stopped_value.item<float>() == 11.0f);
  CHECK(stopped_tangent.item<float>() == 7.0f);
  // The same for sign, whose derivative is zero almost everywhere.
  auto signed_input = [&](const Array& v) {
    return eqx::sum(eqx::filter_pure_callback(returns(c), like, eqx::sign(v)) * v);
  };
  check(eqx::filter_grad(signed_input)(x), {2}, std::vector<float>{3, 4});

  // The fix the message names: a custom VJP around the call (here d/dx x^3 = 3x^2).
  auto host_cube = [](const Array& v) {
    std::vector<float> c = v.to_vector<float>();
    for (float& e : c) e = e * e * e;
    return eqx::array(c, v.shape());
  };
  auto cube = [=](const Array& v) { return eqx::filter_pure_callback(host_cube, like, v); };
  auto differentiable = eqx::filter_custom_vjp(cube)
                            .def_fwd([=](const Array& v) { return std::pair{cube(v), v}; })
                            .def_bwd([](const Array& v, const Array& g, const Array&) { return g * 3.0f * v * v; });
  auto cube_loss = [&](const Array& v) { return eqx::sum(differentiable(v)); };
  check(eqx::filter_grad(cube_loss)(x), {2}, std::vector<float>{3, 12});
  check(eqx::filter_jit(eqx::filter_grad(cube_loss))(x), {2}, std::vector<float>{3, 12});
}

}  // namespace transform_callback_test
