// filter_custom_jvp and filter_custom_vjp: a numerically stable log1pexp
// (custom JVP), gradient clipping and a straight-through estimator (custom
// VJP), each against its written-out derivative; under jit, vmap, scan and
// higher-order AD; and the error paths.

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>

#include "ad/check_grads.hpp"
#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace transform_custom_rules_test {

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;

namespace {

// log(1 + e^x), written naively: its derivative e^x / (1 + e^x) is inf/inf
// = NaN at x = 100 in float32. The rule gives the stable form
// t * (1 - 1 / (1 + e^x)) (the JAX custom_jvp documentation's example).
const auto log1pexp = eqx::filter_custom_jvp([](const Array& x) { return eqx::log(1.0 + eqx::exp(x)); })
                          .def_jvp([](const std::tuple<Array>& primals, const std::tuple<Array>& tangents) {
                            const auto& [x] = primals;
                            const auto& [t] = tangents;
                            Array y = eqx::log(1.0 + eqx::exp(x));
                            return std::pair{y, t * (1.0 - 1.0 / (1.0 + eqx::exp(x)))};
                          });

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// The identity, with its cotangent clipped to [lo, hi]; lo and hi are
// arguments after the first, so they get no cotangent.
const auto clip_gradient =
    eqx::filter_custom_vjp([](const Array& x, const Array&, const Array&) { return x; })
        .def_fwd([](const Array& x, const Array&, const Array&) { return std::pair{x, std::tuple<>{}}; })
        .def_bwd([](std::tuple<>, const Array& g, const Array&, const Array& lo, const Array& hi) {
          return eqx::clip(g, lo, hi);
        });

// sign(x) forward, the identity's gradient backward.
const auto straight_through_sign =
    eqx::filter_custom_vjp([](const Array& x) { return eqx::sign(x); })
        .def_fwd([](const Array& x) { return std::pair{eqx::sign(x), std::tuple<>{}}; })
        .def_bwd([](std::tuple<>, const Array& g, const Array&) { return g; });

// e^x whose backward rule reuses the forward output as its residual.
const auto exp_saving_output = eqx::filter_custom_vjp([](const Array& x) { return eqx::exp(x); })
                                   .def_fwd([](const Array& x) {
                                     Array y = eqx::exp(x);
                                     return std::pair{y, y};
                                   })
                                   .def_bwd([](const Array& y, const Array& g, const Array&) { return g * y; });

// w * x with only w (the first argument) differentiated by the rule.
const auto scale_by = eqx::filter_custom_vjp([](const Array& w, const Array& x) { return w * x; })
                          .def_fwd([](const Array& w, const Array& x) { return std::pair{w * x, x}; })
                          .def_bwd([](const Array& x, const Array& g, const Array&, const Array&) { return g * x; });

}  // namespace

TEST_CASE("filter_custom_jvp: log1pexp's gradient is the stable sigmoid where autodiff gives NaN", "[ad][custom]") {
  Array x = eqx::array<float>({0.0f, 1.0f, -2.0f, 100.0f});
  auto loss = [](const Array& v) { return eqx::sum(log1pexp(v)); };
  Array g = eqx::filter_grad(loss)(x);
  check<float>(g, {4}, {0.5f, float(sigmoid(1)), float(sigmoid(-2)), 1.0f});
  // Without the rule, reverse mode through the naive formula is NaN at 100.
  Array naive = eqx::filter_grad([](const Array& v) { return eqx::sum(eqx::log(1.0 + eqx::exp(v))); })(x);
  CHECK(std::isnan(naive.to_vector<float>()[3]));
  // Forward mode uses the rule directly.
  auto [y, ty] = eqx::filter_jvp(log1pexp, std::tuple{x}, std::tuple{eqx::ones({4})});
  check<float>(ty, {4}, {0.5f, float(sigmoid(1)), float(sigmoid(-2)), 1.0f});
  check<float>(y, {4}, {float(std::log(2.0)), float(std::log1p(std::exp(1.0))), float(std::log1p(std::exp(-2.0))),
                        INFINITY});
  // The same under jit, and with the call inside the jitted function.
  check<float>(eqx::filter_jit(eqx::filter_grad(loss))(x), {4}, g.to_vector<float>());
  check<float>(eqx::filter_jit(log1pexp)(x), {4}, y.to_vector<float>());
}

TEST_CASE("filter_custom_jvp: float64 derivatives against finite differences, first and second order", "[ad][custom]") {
  Array x = eqx::array<double>({0.0, 1.0, -2.0, 0.5});
  eqx_test::check_grads([](const std::vector<Array>& v) { return log1pexp(v[0]) * v[0]; }, {x});
  // The gradient (the rule transposed) differentiated again: sigmoid'(x) = s(1 - s).
  auto grad = eqx::filter_grad([](const Array& v) { return eqx::sum(log1pexp(v)); });
  eqx_test::check_grads([&](const std::vector<Array>& v) { return grad(v[0]); }, {x});
  Array second = eqx::filter_jvp(grad, std::tuple{x}, std::tuple{eqx::ones({4}, eqx::float64)}).second;
  std::vector<double> want;
  for (double v : {0.0, 1.0, -2.0, 0.5}) want.push_back(sigmoid(v) * (1 - sigmoid(v)));
  check<double>(second, {4}, want);
  // Reverse over reverse.
  Array second_rev = eqx::filter_grad([&](const Array& v) { return eqx::sum(grad(v)); })(x);
  check<double>(second_rev, {4}, want);
}

TEST_CASE("filter_custom_jvp: pytree arguments, non-float leaves get None tangents, under vmap and scan",
          "[ad][custom]") {
  struct Affine {
    Array scale;
    Array count;  // int32: no tangent
  };
  // f(a, x) = scale * x * count; the rule states the derivative by hand and
  // records whether the count's tangent was None.
  static bool count_tangent_was_none = false;
  auto f = eqx::filter_custom_jvp([](const Affine& a, const Array& x) {
             return a.scale * x * eqx::astype(a.count, eqx::float32);
           }).def_jvp([](const std::tuple<Affine, Array>& p, const std::tuple<Affine, Array>& t) {
    const auto& [a, x] = p;
    const auto& [ta, tx] = t;
    count_tangent_was_none = !ta.count.has_value();
    Array c = eqx::astype(a.count, eqx::float32);
    return std::pair{a.scale * x * c, (ta.scale * x + a.scale * tx) * c};
  });
  Affine a{eqx::array<float>({2.0f}), eqx::array<std::int32_t>({3})};
  Array x = eqx::array<float>({1.0f, -1.0f, 0.5f});
  auto loss = [&](const Affine& m, const Array& v) { return eqx::sum(f(m, v)); };
  Affine g = eqx::filter_grad(loss)(a, x);
  check<float>(g.scale, {1}, {3.0f * 0.5f});  // sum(x) * count
  CHECK_FALSE(g.count.has_value());
  CHECK(count_tangent_was_none);
  // vmap over x: the rule graph is batched with the body.
  auto per_example = eqx::filter_vmap([&](const Array& v) { return f(a, v); });
  Array xs = eqx::array<float>({1.0f, 2.0f, 3.0f, -1.0f, 0.0f, 4.0f}, {2, 3});
  check<float>(per_example(xs), {2, 3}, {6, 12, 18, -6, 0, 24});
  // grad of the batched call: the JVP rule of the batched equation, transposed.
  Affine gb = eqx::filter_grad([&](const Affine& m) {
    return eqx::sum(eqx::filter_vmap([&](const Array& v) { return f(m, v); })(xs));
  })(a);
  check<float>(gb.scale, {1}, {3.0f * 9.0f});
  // Forward mode through the batched call (jvp of vmap).
  Array tv = eqx::filter_jvp(per_example, std::tuple{xs}, std::tuple{eqx::ones({2, 3})}).second;
  check<float>(tv, {2, 3}, {6, 6, 6, 6, 6, 6});
  // Inside a scan body, differentiated through the loop: d/dh of h -> log1pexp(h), three times.
  auto chain = [](const Array& h0) {
    auto [h, hs] = eqx::scan([](const Array& h, const Array&) { return std::pair{log1pexp(h), h}; }, h0,
                             eqx::zeros({3}));
    return h;
  };
  Array h0 = eqx::array<float>(0.25f);
  Array dh = eqx::filter_grad(chain)(h0);
  double h = 0.25, d = 1;
  for (int i = 0; i < 3; ++i) {
    d *= sigmoid(h);
    h = std::log1p(std::exp(h));
  }
  check<float>(dh, {}, {float(d)});
  check<float>(eqx::filter_jit(eqx::filter_grad(chain))(h0), {}, {float(d)});
}

TEST_CASE("filter_custom_vjp: gradient clipping and a straight-through estimator, as written out", "[ad][custom]") {
  Array x = eqx::array<float>({1.0f, -2.0f, 3.0f});
  Array w = eqx::array<float>({0.5f, -3.0f, 2.0f});
  Array lo = eqx::array<float>(-1.0f), hi = eqx::array<float>(1.0f);
  // d/dx sum(clip_gradient(x) * w) = clip(w, -1, 1).
  auto clipped_loss = [&](const Array& v) { return eqx::sum(clip_gradient(v, lo, hi) * w); };
  check<float>(eqx::filter_grad(clipped_loss)(x), {3}, {0.5f, -1.0f, 1.0f});
  check<float>(eqx::filter_jit(eqx::filter_grad(clipped_loss))(x), {3}, {0.5f, -1.0f, 1.0f});
  check<float>(eqx::filter_grad(eqx::filter_jit(clipped_loss))(x), {3}, {0.5f, -1.0f, 1.0f});
  // The forward value is the function's: sum(x * w) = 0.5 + 6 + 6.
  check<float>(eqx::filter_value_and_grad(clipped_loss)(x).first, {}, {12.5f});
  // Straight-through: value sum(sign(x) * w) = 0.5 + 3 + 2, gradient w (sign's own is 0).
  auto ste_loss = [&](const Array& v) { return eqx::sum(straight_through_sign(v) * w); };
  auto [value, grad] = eqx::filter_value_and_grad(ste_loss)(x);
  check<float>(value, {}, {5.5f});
  check<float>(grad, {3}, {0.5f, -3.0f, 2.0f});
  check<float>(eqx::filter_grad([&](const Array& v) { return eqx::sum(eqx::sign(v) * w); })(x), {3}, {0, 0, 0});
  // filter_vjp with a cotangent of our choosing.
  auto [y, vjp_fn] = eqx::filter_vjp([&](const Array& v) { return clip_gradient(v, lo, hi); }, x);
  check<float>(y, {3}, {1.0f, -2.0f, 3.0f});
  check<float>(std::get<0>(vjp_fn(eqx::array<float>({4.0f, 0.25f, -7.0f}))), {3}, {1.0f, 0.25f, -1.0f});
}

TEST_CASE("filter_custom_vjp: residuals, float64 finite differences, reverse over reverse", "[ad][custom]") {
  Array x = eqx::array<double>({0.0, 0.5, -1.5});
  auto loss = [](const Array& v) { return eqx::sum(exp_saving_output(v) * v); };
  Array g = eqx::filter_grad(loss)(x);
  // d/dx e^x x = e^x (1 + x), and central differences agree.
  std::vector<double> want, fd;
  for (double v : {0.0, 0.5, -1.5}) want.push_back(std::exp(v) * (1 + v));
  check<double>(g, {3}, want);
  const double eps = 1e-6;
  for (std::size_t i = 0; i < 3; ++i) {
    std::vector<double> up = x.to_vector<double>(), down = up;
    up[i] += eps;
    down[i] -= eps;
    fd.push_back((loss(eqx::array<double>(up)).item<double>() - loss(eqx::array<double>(down)).item<double>()) /
                 (2 * eps));
  }
  for (std::size_t i = 0; i < 3; ++i) CHECK(g.to_vector<double>()[i] == Approx(fd[i]).epsilon(1e-8));
  // The backward rule is differentiable: d2/dx2 sum(e^x) = e^x.
  Array second =
      eqx::filter_grad([](const Array& v) { return eqx::sum(eqx::filter_grad([](const Array& u) {
                                                   return eqx::sum(exp_saving_output(u));
                                                 })(v)); })(x);
  std::vector<double> e;
  for (double v : {0.0, 0.5, -1.5}) e.push_back(std::exp(v));
  check<double>(second, {3}, e);
}

TEST_CASE("filter_custom_vjp: under vmap the cotangent of a shared argument is summed over the batch",
          "[ad][custom]") {
  Array w = eqx::array<float>({2.0f, -1.0f});
  Array xs = eqx::array<float>({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}, {3, 2});
  auto batched = [&](const Array& weight) {
    return eqx::filter_vmap([](const Array& wt, const Array& v) { return scale_by(wt, v); },
                            eqx::in_axes(eqx::none, 0))(weight, xs);
  };
  check<float>(batched(w), {3, 2}, {2, -2, 6, -4, 10, -6});
  // d/dw sum_b w * x_b = sum_b x_b, through the batched backward rule.
  check<float>(eqx::filter_grad([&](const Array& wt) { return eqx::sum(batched(wt)); })(w), {2}, {9.0f, 12.0f});
  // Per-example gradients (vmap of grad): the rule runs inside the batch trace.
  Array per_example = eqx::filter_vmap(
      eqx::filter_grad([](const Array& wt, const Array& v) { return eqx::sum(scale_by(wt, v)); }),
      eqx::in_axes(eqx::none, 0))(w, xs);
  check<float>(per_example, {3, 2}, {1, 2, 3, 4, 5, 6});
  // Both batched: every example's own w.
  Array ws = eqx::array<float>({1.0f, 1.0f, 2.0f, 2.0f, 3.0f, 3.0f}, {3, 2});
  Array gw = eqx::filter_grad([&](const Array& wb) {
    return eqx::sum(eqx::filter_vmap([](const Array& a, const Array& b) { return scale_by(a, b); })(wb, xs));
  })(ws);
  check<float>(gw, {3, 2}, {1, 2, 3, 4, 5, 6});
  // The other argument gets no cotangent from the rule (only the first argument is differentiated).
  Array gx = eqx::filter_grad([&](const Array& v) { return eqx::sum(scale_by(w, v)); })(eqx::ones({2}));
  check<float>(gx, {2}, {0.0f, 0.0f});
}

TEST_CASE("custom rules: error messages", "[ad][custom]") {
  Array x = eqx::array<float>({1.0f, 2.0f});
  // Forward mode of a custom VJP.
  CHECK(message_of<eqx::ValueError>([&] {
          eqx::filter_jvp(straight_through_sign, std::tuple{x}, std::tuple{x});
        }) == "eqx::filter_custom_vjp: a function with a custom VJP cannot be differentiated in forward mode "
              "(filter_jvp, filter_jacfwd, filter_hessian's outer pass); use reverse mode (filter_grad, filter_vjp, "
              "filter_jacrev), or give it a JVP rule with eqx::filter_custom_jvp");
  // A JVP rule whose tangent has the wrong shape.
  auto bad_jvp = eqx::filter_custom_jvp([](const Array& v) { return v * 2.0; })
                     .def_jvp([](const std::tuple<Array>& p, const std::tuple<Array>&) {
                       return std::pair{std::get<0>(p) * 2.0, eqx::ones({3})};
                     });
  CHECK(message_of<eqx::ShapeError>([&] { bad_jvp(x); }) ==
        "eqx::filter_custom_jvp: the JVP rule's output tangent at (root) is f32[3] but its output is f32[2]; a JVP "
        "rule's output tangent must have its output's shape and dtype");
  // A backward rule returning a cotangent of the wrong shape, named by its path.
  struct Pair {
    Array a, b;
  };
  auto bad_bwd = eqx::filter_custom_vjp([](const Pair& p) { return p.a * p.b; })
                     .def_fwd([](const Pair& p) { return std::pair{p.a * p.b, std::tuple<>{}}; })
                     .def_bwd([](std::tuple<>, const Array& g, const Pair&) { return Pair{g, eqx::ones({5})}; });
  CHECK(message_of<eqx::ShapeError>([&] {
          eqx::filter_grad([&](const Pair& p) { return eqx::sum(bad_bwd(p)); })(Pair{x, x});
        }) == "eqx::filter_custom_vjp: the backward rule's cotangent at [0].b is f32[5] but its argument leaf is "
              "f32[2]; a backward rule's cotangent must have its argument leaf's shape and dtype");
  // A forward rule that returns the wrong output.
  auto bad_fwd = eqx::filter_custom_vjp([](const Array& v) { return v; })
                     .def_fwd([](const Array& v) { return std::pair{eqx::sum(v), std::tuple<>{}}; })
                     .def_bwd([](std::tuple<>, const Array& g, const Array&) { return g; });
  CHECK(message_of<eqx::ShapeError>([&] { bad_fwd(x); }) ==
        "eqx::filter_custom_vjp: the forward rule's output at (root) is f32[] but its function output is f32[2]; "
        "a forward rule's output must have its function output's shape and dtype");
  // A rule closing over a value the enclosing grad is tracing.
  CHECK(message_of<eqx::ValueError>([&] {
          eqx::filter_grad([&](const Array& w) {
            auto f = eqx::filter_custom_jvp([&](const Array& v) { return v * w; })
                         .def_jvp([&](const std::tuple<Array>& p, const std::tuple<Array>& t) {
                           return std::pair{std::get<0>(p) * w, std::get<0>(t) * w};
                         });
            return eqx::sum(f(x));
          })(x);
        }) == "eqx::filter_custom_jvp: the function closes over an Array that an enclosing transformation is tracing "
              "(f32[2]); pass it as an argument of the function instead of capturing it");
}

}  // namespace transform_custom_rules_test
