// Control flow as primitives holding a body: scan (values, reverse, errors,
// O(1) graphs, JVP/VJP against finite differences and an unrolled loop,
// vmap, jit), cond, while_loop, and the runtime checks error_if and
// branched_error_if with their EQX_ON_ERROR modes.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>

#include "ad/check_grads.hpp"
#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace transform_control_flow_test {

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;
using eqx_test::random_f64;
using eqx_test::seq;

namespace {

std::size_t count_equations(const eqx::Graph& g) { return g.equations.size(); }

/// A GRU cell (input size I, hidden size H), as in WORKLOADS' GRU benchmark.
struct Gru {
  Array w_ih, w_hh, b;  // [3H, I], [3H, H], [3H]
  Array operator()(const Array& h, const Array& x) const {
    const std::int64_t H = h.shape()[0];
    Array gi = eqx::matmul(w_ih, x) + b, gh = eqx::matmul(w_hh, h);
    auto part = [&](const Array& a, std::int64_t k) { return eqx::slice(a, 0, k * H, (k + 1) * H); };
    Array r = eqx::sigmoid(part(gi, 0) + part(gh, 0));
    Array z = eqx::sigmoid(part(gi, 1) + part(gh, 1));
    Array n = eqx::tanh(part(gi, 2) + r * part(gh, 2));
    return (1.0 - z) * n + z * h;
  }
};

Gru random_gru(std::uint32_t seed, std::int64_t in, std::int64_t hidden) {
  return {random_f64(seed, {3 * hidden, in}, -0.5, 0.5), random_f64(seed + 1, {3 * hidden, hidden}, -0.5, 0.5),
          random_f64(seed + 2, {3 * hidden}, -0.1, 0.1)};
}

}  // namespace

TEST_CASE("scan: cumulative sums forward and in reverse, pytree carry and ys", "[scan]") {
  const Array xs = eqx::array({1.0f, 2.0f, 3.0f, 4.0f, 5.0f});
  auto step = [](const Array& c, const Array& x) { return std::pair{c + x, c + x}; };
  auto [total, sums] = eqx::scan(step, eqx::array(0.0f), xs);
  check(total, {}, std::vector<float>{15});
  check(sums, {5}, std::vector<float>{1, 3, 6, 10, 15});
  auto [rtotal, rsums] = eqx::scan(step, eqx::array(0.0f), xs, std::nullopt, /*reverse=*/true);
  check(rtotal, {}, std::vector<float>{15});
  check(rsums, {5}, std::vector<float>{15, 14, 12, 9, 5});

  // Carry {count (int), running max}; ys {x * 2, count}.
  using Carry = std::tuple<Array, Array>;
  auto [c, ys] = eqx::scan(
      [](const Carry& c, const Array& x) {
        auto [count, best] = c;
        Array n = count + eqx::array(std::int32_t{1});
        return std::pair{Carry{n, eqx::maximum(best, x)}, std::tuple{x * 2.0f, n}};
      },
      Carry{eqx::array(std::int32_t{0}), eqx::array(-100.0f)}, eqx::array({3.0f, -1.0f, 7.0f, 2.0f}));
  check(std::get<0>(c), {}, std::vector<std::int32_t>{4});
  check(std::get<1>(c), {}, std::vector<float>{7});
  check(std::get<0>(ys), {4}, std::vector<float>{6, -2, 14, 4});
  check(std::get<1>(ys), {4}, std::vector<std::int32_t>{1, 2, 3, 4});

  // No xs: a length and an empty tuple; rows of a matrix as xs.
  auto [p, powers] = eqx::scan([](const Array& c, const std::tuple<>&) { return std::pair{c * 2.0f, c}; },
                               eqx::array(1.0f), std::tuple<>{}, 4);
  check(p, {}, std::vector<float>{16});
  check(powers, {4}, std::vector<float>{1, 2, 4, 8});
  auto [rows_sum, row_norms] = eqx::scan(
      [](const Array& c, const Array& row) { return std::pair{c + row, eqx::sum(row * row)}; },
      eqx::zeros({3}, eqx::float32), seq<float>({2, 3}));
  check(rows_sum, {3}, std::vector<float>{3, 5, 7});
  check(row_norms, {2}, std::vector<float>{5, 50});
}

TEST_CASE("scan: errors name the leaf and the fix", "[scan]") {
  auto id = [](const Array& c, const Array& x) { return std::pair{c, x}; };
  CHECK(message_of<eqx::ShapeError>([&] { eqx::scan(id, eqx::array(0.0f), eqx::array(1.0f)); }) ==
        "eqx::scan: xs is a scalar f32[]; scan slices the leading axis of every xs Array, so each needs at least one "
        "axis");
  CHECK(message_of<eqx::ShapeError>([&] {
          eqx::scan([](const Array& c, const std::pair<Array, Array>& x) { return std::pair{c, x.first + x.second}; },
                    eqx::array(0.0f), std::pair{eqx::zeros({3}, eqx::float32), eqx::zeros({4}, eqx::float32)});
        }) == "eqx::scan: xs[0] has 3 steps but xs[1] f32[4] has 4 along its leading axis; they must agree");
  CHECK(message_of<eqx::ShapeError>([&] { eqx::scan(id, eqx::array(0.0f), eqx::zeros({3}, eqx::float32), 5); }) ==
        "eqx::scan: length is 5 but xs f32[3] has 3 along its leading axis; they must agree");
  CHECK(message_of<eqx::ValueError>([&] {
          eqx::scan([](const Array& c, const std::tuple<>&) { return std::pair{c, c}; }, eqx::array(0.0f), std::tuple<>{});
        }) ==
        "eqx::scan: xs has no Array to scan over, so the number of steps is unknown; pass length");
  CHECK(message_of<eqx::ShapeError>([&] {
          eqx::scan([](const Array& c, const Array& x) { return std::pair{eqx::stack({c, c}), x}; }, eqx::array(0.0f),
                    eqx::zeros({3}, eqx::float32));
        }) == "eqx::scan: the carry at (root) goes into the body as f32[] but comes out as f32[2]; the body must "
              "return a carry of the type it takes");
}

TEST_CASE("scan: a 100-step GRU is O(1) equations, with the gradients of the unrolled loop", "[scan][ad]") {
  const Gru gru = random_gru(7, 2, 8);
  auto run_scan = [](const Gru& g, const Array& h0, const Array& xs) {
    auto [h, hs] = eqx::scan([&](const Array& h, const Array& x) { return std::pair{g(h, x), h}; }, h0, xs);
    return eqx::sum(h * h) + 0.1 * eqx::sum(hs);
  };
  auto run_unrolled = [](const Gru& g, const Array& h0, const Array& xs) {
    Array h = h0, hs_sum = eqx::array(0.0);
    for (std::int64_t t = 0; t < xs.shape()[0]; ++t) {
      hs_sum = hs_sum + eqx::sum(h);
      h = g(h, eqx::reshape(eqx::slice(xs, 0, t, t + 1), {2}));
    }
    return eqx::sum(h * h) + 0.1 * hs_sum;
  };
  const Array h0 = random_f64(1, {8}), xs = random_f64(2, {100, 2});
  auto jaxpr10 = eqx::filter_make_jaxpr(run_scan)(gru, h0, eqx::slice(xs, 0, 0, 10));
  auto jaxpr100 = eqx::filter_make_jaxpr(run_scan)(gru, h0, xs);
  CHECK(count_equations(jaxpr10.graph) == count_equations(jaxpr100.graph));
  CHECK(count_equations(jaxpr100.graph) < 10);
  CHECK(eqx::to_string(jaxpr100.graph).find("scan[") != std::string::npos);

  auto [v_scan, g_scan] = eqx::filter_value_and_grad(run_scan)(gru, h0, xs);
  auto [v_loop, g_loop] = eqx::filter_value_and_grad(run_unrolled)(gru, h0, xs);
  CHECK(v_scan.item<double>() == Approx(v_loop.item<double>()).epsilon(1e-12));
  for (auto [a, b] : {std::pair{g_scan.w_ih, g_loop.w_ih}, {g_scan.w_hh, g_loop.w_hh}, {g_scan.b, g_loop.b}}) {
    std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
    REQUIRE(x.size() == y.size());
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(x[i] == Approx(y[i]).epsilon(1e-10).margin(1e-12));
  }
  // Gradient w.r.t. the initial carry and the xs too (filter_grad of the first argument only, so move them there).
  auto by_inputs = [&](const std::pair<Array, Array>& hx, const Gru& g) { return run_scan(g, hx.first, hx.second); };
  auto by_inputs_loop = [&](const std::pair<Array, Array>& hx, const Gru& g) { return run_unrolled(g, hx.first, hx.second); };
  auto gi = eqx::filter_grad(by_inputs)(std::pair{h0, xs}, gru);
  auto gl = eqx::filter_grad(by_inputs_loop)(std::pair{h0, xs}, gru);
  for (auto [a, b] : {std::pair{gi.first, gl.first}, {gi.second, gl.second}}) {
    std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(x[i] == Approx(y[i]).epsilon(1e-10).margin(1e-12));
  }
}

TEST_CASE("scan: JVP and VJP pass the finite-difference checker", "[scan][ad]") {
  // Consts (w), a float carry, an int carry, float xs, and ys of both kinds.
  eqx_test::check_grads(
      [](const std::vector<Array>& in) {
        const Array& w = in[0];
        using Carry = std::pair<Array, Array>;
        auto [c, ys] = eqx::scan(
            [&](const Carry& c, const Array& x) {
              Array h = eqx::tanh(w * c.first + x);
              return std::pair{Carry{h, c.second + eqx::array(std::int32_t{1})}, std::pair{h * x, c.second}};
            },
            Carry{in[1], eqx::array(std::int32_t{0})}, in[2]);
        return eqx::sum(c.first) + eqx::sum(ys.first * ys.first);
      },
      {random_f64(3, {4}), random_f64(4, {4}), random_f64(5, {6, 4})});
  // In reverse, with the carry unused by the output except at the end.
  eqx_test::check_grads(
      [](const std::vector<Array>& in) {
        auto [c, ys] = eqx::scan([](const Array& c, const Array& x) { return std::pair{eqx::sin(c) * x, c * c}; }, in[0],
                                 in[1], std::nullopt, true);
        return eqx::sum(ys) + eqx::sum(c);
      },
      {random_f64(6, {3}), random_f64(7, {5, 3})});
}

TEST_CASE("scan: jit runs it in a plan, with one trace; vmap batches it", "[scan][vmap]") {
  const Gru gru = random_gru(11, 2, 4);
  auto rnn = [](const Gru& g, const Array& h0, const Array& xs) {
    return eqx::scan([&](const Array& h, const Array& x) { return std::pair{g(h, x), eqx::sum(h)}; }, h0, xs);
  };
  const Array h0 = random_f64(12, {4}), xs = random_f64(13, {20, 2});
  auto [h_eager, s_eager] = rnn(gru, h0, xs);
  auto jitted = eqx::filter_jit(rnn);
  for (int call = 0; call < 2; ++call) {
    auto [h, s] = jitted(gru, h0, xs);
    CHECK(eqx::tree_equal(h, h_eager));
    CHECK(eqx::tree_equal(s, s_eager));
  }
  CHECK(eqx::debug::get_num_traces(jitted) == 1);

  // A batch of 3 sequences (batch axis 1 of xs), shared weights and initial state.
  const Array xb = random_f64(14, {20, 3, 2});
  auto [hb, sb] = eqx::filter_vmap(rnn, eqx::in_axes(eqx::none, eqx::none, 1))(gru, h0, xb);
  REQUIRE(hb.shape() == eqx::Shape{3, 4});
  REQUIRE(sb.shape() == eqx::Shape{3, 20});
  for (std::int64_t b = 0; b < 3; ++b) {
    auto [h, s] = rnn(gru, h0, eqx::reshape(eqx::slice(xb, 1, b, b + 1), {20, 2}));
    std::vector<double> got = eqx::reshape(eqx::slice(hb, 0, b, b + 1), {4}).to_vector<double>(),
                        want = h.to_vector<double>();
    for (std::size_t i = 0; i < 4; ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12));
    std::vector<double> gs = eqx::reshape(eqx::slice(sb, 0, b, b + 1), {20}).to_vector<double>(),
                        ws = s.to_vector<double>();
    for (std::size_t i = 0; i < 20; ++i) CHECK(gs[i] == Approx(ws[i]).epsilon(1e-12));
  }
}

TEST_CASE("cond and switch_: the branch chosen at run time, eagerly and jitted", "[cond]") {
  auto pos = [](const Array& x, const Array& s) { return x * s; };
  auto neg = [](const Array& x, const Array&) { return -x; };
  auto f = [&](const Array& p, const Array& x, const Array& s) { return eqx::cond(p, pos, neg, x, s); };
  const Array x = eqx::array({1.0f, -2.0f}), s = eqx::array(3.0f);
  check(f(eqx::array(true), x, s), {2}, std::vector<float>{3, -6});
  check(f(eqx::array(false), x, s), {2}, std::vector<float>{-1, 2});
  auto jf = eqx::filter_jit(f);
  check(jf(eqx::array(true), x, s), {2}, std::vector<float>{3, -6});
  check(jf(eqx::array(false), x, s), {2}, std::vector<float>{-1, 2});
  CHECK(eqx::debug::get_num_traces(jf) == 1);
  const std::string text = eqx::to_string(eqx::filter_make_jaxpr(f)(eqx::array(true), x, s).graph);
  INFO(text);
  CHECK(text.find("cond[branches=(") != std::string::npos);

  // switch_ with three branches, an index out of range clamped, a captured value.
  const Array w = eqx::array(10.0f);
  auto g = [&](const Array& k, const Array& x) {
    return eqx::switch_(k,
                        std::tuple{[](const Array& v) { return v + 1.0f; }, [&](const Array& v) { return v * w; },
                                   [](const Array& v) { return v * v; }},
                        x);
  };
  check(g(eqx::array(std::int32_t{0}), x), {2}, std::vector<float>{2, -1});
  check(g(eqx::array(std::int32_t{1}), x), {2}, std::vector<float>{10, -20});
  check(g(eqx::array(std::int32_t{2}), x), {2}, std::vector<float>{1, 4});
  check(g(eqx::array(std::int32_t{7}), x), {2}, std::vector<float>{1, 4});
  check(g(eqx::array(std::int32_t{-3}), x), {2}, std::vector<float>{2, -1});

  CHECK(message_of<eqx::ShapeError>([&] {
          eqx::cond(eqx::array(true), [](const Array& v) { return v; }, [](const Array& v) { return eqx::sum(v); }, x);
        }) == "eqx::cond: true_fn returns f32[2] at (root) but false_fn returns f32[]; every branch must return the "
              "same shapes and dtypes");
  CHECK(message_of<eqx::ShapeError>([&] {
          eqx::switch_(eqx::array(std::int32_t{0}),
                       std::tuple{[](const Array& v) { return v; }, [](const Array& v) { return eqx::stack({v, v}); }}, x);
        }) == "eqx::switch_: branch 1 returns f32[2,2] at (root) but branch 0 returns f32[2]; every branch must return "
              "the same shapes and dtypes");
  CHECK(message_of<eqx::ShapeError>([&] { eqx::cond(eqx::array({true, false}), pos, neg, x, s); }) ==
        "eqx::cond: the predicate must be a scalar Array, got bool[2]; reduce it first (eqx::any, eqx::all)");
}

TEST_CASE("cond: gradients through the taken branch, and vmap selects per example", "[cond][ad][vmap]") {
  auto f = [](const Array& x) {
    return eqx::cond(eqx::sum(x) > 0.0, [](const Array& v) { return eqx::sum(eqx::sin(v) * v); },
                     [](const Array& v) { return eqx::sum(v * v * v); }, x);
  };
  // d/dx sum(sin(x) x) = cos(x) x + sin(x); d/dx sum(x^3) = 3x^2.
  const Array xp = eqx::array({0.5, 1.0}), xn = eqx::array({-0.5, -1.0});
  check(eqx::filter_grad(f)(xp), {2},
        std::vector<double>{std::cos(0.5) * 0.5 + std::sin(0.5), std::cos(1.0) + std::sin(1.0)});
  check(eqx::filter_grad(f)(xn), {2}, std::vector<double>{0.75, 3.0});
  eqx_test::check_grads([&](const std::vector<Array>& in) { return f(in[0]); }, {random_f64(21, {3}, 0.1, 1.0)});
  eqx_test::check_grads([&](const std::vector<Array>& in) { return f(in[0]); }, {random_f64(22, {3}, -1.0, -0.1)});

  // A batched predicate: both branches run, each example takes its own.
  const Array xs = eqx::array(std::vector<double>{0.5, 1.0, -0.5, -1.0}, {2, 2});
  check(eqx::filter_vmap(f)(xs), {2},
        std::vector<double>{std::sin(0.5) * 0.5 + std::sin(1.0), -0.125 - 1.0});
  const std::string text = eqx::to_string(eqx::filter_make_jaxpr([&](const Array& x) { return eqx::filter_vmap(f)(x); })(xs).graph);
  INFO(text);
  CHECK(text.find("cond") == std::string::npos);
  CHECK(text.find("select") != std::string::npos);
  // Per-example gradients through it.
  Array g = eqx::filter_vmap(eqx::filter_grad(f))(xs);
  check(g, {2, 2},
        std::vector<double>{std::cos(0.5) * 0.5 + std::sin(0.5), std::cos(1.0) + std::sin(1.0), 0.75, 3.0});
}

TEST_CASE("while_loop and fori_loop: values, forward mode, the reverse-mode error, vmap", "[while]") {
  auto doubling = [](const Array& x0) {
    return eqx::while_loop([](const Array& x) { return x < 100.0; }, [](const Array& x) { return x * 2.0; }, x0);
  };
  check(doubling(eqx::array(3.0)), {}, std::vector<double>{192});
  check(eqx::filter_jit(doubling)(eqx::array(7.0)), {}, std::vector<double>{112});
  // Forward mode: x0 * 2^k with k fixed near x0 = 3 (k = 6).
  auto [y, ty] = eqx::filter_jvp(doubling, std::tuple{eqx::array(3.0)}, std::tuple{eqx::array(1.0)});
  check(ty, {}, std::vector<double>{64});
  CHECK(message_of<eqx::ValueError>([&] { eqx::filter_grad(doubling)(eqx::array(3.0)); })
            .starts_with("eqx::while_loop: reverse-mode differentiation (filter_grad, filter_vjp) of a while loop is "
                         "not supported"));
  // Batched condition: each example stops on its own.
  check(eqx::filter_vmap(doubling)(eqx::array({3.0, 50.0, 200.0})), {3}, std::vector<double>{192, 100, 200});

  // fori_loop: sum of i * x for i in [2, 5), static bounds (reverse-differentiable) and Array bounds.
  auto sum_ix = [](const Array& x) {
    return eqx::fori_loop(2, 5, [&](const Array& i, const Array& acc) { return acc + eqx::astype(i, eqx::float64) * x; },
                          eqx::zeros_like(x));
  };
  check(sum_ix(eqx::array({1.0, 2.0})), {2}, std::vector<double>{9, 18});
  check(eqx::filter_grad([&](const Array& x) { return eqx::sum(sum_ix(x)); })(eqx::array({1.0, 2.0})), {2},
        std::vector<double>{9, 9});
  Array dyn = eqx::fori_loop(eqx::array(std::int32_t{2}), eqx::array(std::int32_t{5}),
                             [](const Array& i, const Array& acc) { return acc + i; }, eqx::array(std::int32_t{0}));
  check(dyn, {}, std::vector<std::int32_t>{9});
}

TEST_CASE("error_if: a NaN caught eagerly, jitted, inside vmap, scan and cond", "[error_if]") {
  auto checked_log = [](const Array& x) {
    Array y = eqx::log(x);
    return eqx::error_if(y, eqx::any(eqx::isnan(y)), "log of a negative number");
  };
  check(checked_log(eqx::array({1.0f})), {1}, std::vector<float>{0});
  CHECK(message_of<eqx::RuntimeError>([&] { checked_log(eqx::array({1.0f, -1.0f})); }) == "log of a negative number");
  auto jitted = eqx::filter_jit(checked_log);
  check(jitted(eqx::array({1.0f, 1.0f})), {2}, std::vector<float>{0, 0});
  CHECK(message_of<eqx::RuntimeError>([&] { jitted(eqx::array({1.0f, -1.0f})); }) == "log of a negative number");
  CHECK(eqx::debug::get_num_traces(jitted) == 1);
  // Inside vmap only the failing example's predicate is true; the error still fires.
  CHECK(message_of<eqx::RuntimeError>([&] { eqx::filter_vmap(checked_log)(eqx::array({2.0f, -1.0f, 3.0f})); }) ==
        "log of a negative number");
  check(eqx::filter_vmap(checked_log)(eqx::array({1.0f, 1.0f})), {2}, std::vector<float>{0, 0});
  // In a scan step and a cond branch, jitted.
  auto in_scan = eqx::filter_jit([&](const Array& xs) {
    return eqx::scan([&](const Array& c, const Array& x) { return std::pair{c + checked_log(x), c}; }, eqx::array(0.0f), xs)
        .first;
  });
  CHECK(message_of<eqx::RuntimeError>([&] { in_scan(eqx::array({1.0f, 2.0f, -3.0f})); }) == "log of a negative number");
  auto in_cond = [&](const Array& p, const Array& x) {
    return eqx::cond(p, [&](const Array& v) { return checked_log(v); }, [](const Array& v) { return v; }, x);
  };
  check(in_cond(eqx::array(false), eqx::array({-1.0f})), {1}, std::vector<float>{-1});
  CHECK(message_of<eqx::RuntimeError>([&] { in_cond(eqx::array(true), eqx::array({-1.0f})); }) ==
        "log of a negative number");
  // Under vmap a batched predicate runs both branches for every example, as
  // JAX's select does: the check fires for example 1, which takes the other
  // branch, unless the predicate guards it.
  const Array preds = eqx::array({true, false}), xs = eqx::array({1.0f, -1.0f});
  CHECK(message_of<eqx::RuntimeError>([&] { eqx::filter_vmap(in_cond)(preds, xs); }) == "log of a negative number");
  auto guarded = [](const Array& p, const Array& x) {
    auto checked = [](const Array& v, const Array& taken) {
      Array y = eqx::log(v);
      return eqx::error_if(y, taken & eqx::any(eqx::isnan(y)), "log of a negative number");
    };
    return eqx::cond(p, checked, [](const Array& v, const Array&) { return v; }, x, p);
  };
  check(eqx::filter_vmap(guarded)(preds, xs), {2}, std::vector<float>{0, -1});
  // branched_error_if picks the message of the first failing element.
  auto branched = [](const Array& x) {
    return eqx::branched_error_if(x, x < 0.0f, eqx::astype(x < -10.0f, eqx::int32), {"negative", "very negative"});
  };
  CHECK(message_of<eqx::RuntimeError>([&] { branched(eqx::array({1.0f, -20.0f, -1.0f})); }) == "very negative");
  CHECK(message_of<eqx::RuntimeError>([&] { eqx::filter_jit(branched)(eqx::array({-1.0f, -20.0f})); }) == "negative");
  // Gradients pass through the check.
  check(eqx::filter_grad([&](const Array& x) { return eqx::sum(checked_log(x)); })(eqx::array({2.0f, 4.0f})), {2},
        std::vector<float>{0.5f, 0.25f});
  CHECK(message_of<eqx::DTypeError>([&] { eqx::error_if(eqx::array(1.0f), eqx::array(1.0f), "m"); }) ==
        "eqx::error_if: the predicate must be a bool Array, got f32[]; compare first (x > 0, eqx::isnan(x))");
}

TEST_CASE("EQX_ON_ERROR nan and off: a failed check fills its values or lets them pass, per dtype", "[error_if][on_error]") {
  eqx::OnErrorScope nan_mode(eqx::OnError::nan);
  // Equinox's _nan_like: NaN for floats, the largest value for integers, true for bools.
  const auto values = std::tuple{eqx::array({1.f, 2.f}), eqx::array({3.0}), eqx::array({-4, 5}),
                                 eqx::array(std::vector<std::uint32_t>{6}, {1}), eqx::array({false, true})};
  const auto fired = eqx::error_if(values, eqx::array({false, true}), "fired");
  check(std::get<0>(fired), {2}, std::vector<float>{NAN, NAN});
  check(std::get<1>(fired), {1}, std::vector<double>{NAN});
  check(std::get<2>(fired), {2}, std::vector<std::int32_t>{2147483647, 2147483647});
  check(std::get<3>(fired), {1}, std::vector<std::uint32_t>{4294967295u});
  check(std::get<4>(fired), {2}, std::vector<bool>{true, true});
  const auto passed = eqx::error_if(values, eqx::array({false, false}), "not fired");
  check(std::get<2>(passed), {2}, std::vector<std::int32_t>{-4, 5});
  check(std::get<4>(passed), {2}, std::vector<bool>{false, true});

  // Jitted, and inside scan.
  auto checked_log = [](const Array& x) {
    Array y = eqx::log(x);
    return eqx::error_if(y, eqx::any(eqx::isnan(y)), "log of a negative number");
  };
  check(eqx::filter_jit(checked_log)(eqx::array({1.0f, -1.0f})), {2}, std::vector<float>{NAN, NAN});
  check(eqx::filter_jit(checked_log)(eqx::array({1.0f, 1.0f})), {2}, std::vector<float>{0, 0});
  auto sums = eqx::scan([&](const Array& c, const Array& x) { return std::pair{c + checked_log(x), c}; },
                        eqx::array(0.0f), eqx::array({1.0f, -3.0f, 1.0f}));
  check(sums.second, {3}, std::vector<float>{0, 0, NAN});
  // Under vmap the check sees the whole batch, as Equinox's unvmap_any: one
  // failing example makes every example's output NaN.
  check(eqx::filter_vmap(checked_log)(eqx::array({2.0f, -1.0f, 3.0f})), {3}, std::vector<float>{NAN, NAN, NAN});
  check(eqx::filter_vmap(checked_log)(eqx::array({1.0f, 1.0f})), {2}, std::vector<float>{0, 0});
  // Tangents pass through the check unchanged (Equinox's custom JVP): d log(x) = 1 / x.
  check(eqx::filter_grad([&](const Array& x) { return eqx::sum(checked_log(x)); })(eqx::array({-1.0f, 2.0f})), {2},
        std::vector<float>{-1.0f, 0.5f});

  // off: the values as they are, even where the check fails.
  eqx::OnErrorScope off_mode(eqx::OnError::off);
  auto positive = [](const Array& x) { return eqx::error_if(x, x < 0.0f, "negative"); };
  check(positive(eqx::array({1.0f, -2.0f})), {2}, std::vector<float>{1, -2});
  check(eqx::filter_jit(positive)(eqx::array({1.0f, -2.0f})), {2}, std::vector<float>{1, -2});
}

TEST_CASE("EQX_ON_ERROR: the mode is read when a check runs, so one jitted function follows set_on_error",
          "[error_if][on_error]") {
  eqx::OnErrorScope raise_mode(eqx::OnError::raise);
  auto positive = [](const Array& x) { return eqx::error_if(x, eqx::any(x < 0.0f), "negative input"); };
  auto jitted = eqx::filter_jit(positive);
  const Array bad = eqx::array({1.f, -2.f});
  CHECK(message_of<eqx::RuntimeError>([&] { jitted(bad); }) == "negative input");
  CHECK(eqx::set_on_error(eqx::OnError::nan) == eqx::OnError::raise);
  CHECK(eqx::on_error() == eqx::OnError::nan);
  check(jitted(bad), {2}, std::vector<float>{NAN, NAN});
  CHECK(eqx::set_on_error(eqx::OnError::off) == eqx::OnError::nan);
  check(jitted(bad), {2}, std::vector<float>{1, -2});
  CHECK(eqx::set_on_error(eqx::OnError::raise) == eqx::OnError::off);
  CHECK(message_of<eqx::RuntimeError>([&] { jitted(bad); }) == "negative input");
  CHECK(eqx::debug::get_num_traces(jitted) == 1);  // the mode is not part of the cache key

  // A check on constants of the function (closed over) is not folded when the
  // plan is compiled (here in nan mode), so it still follows the mode later.
  auto on_constant = eqx::filter_jit([&](const Array& scale) { return positive(bad) * scale; });
  {
    eqx::OnErrorScope nan_mode(eqx::OnError::nan);
    check(on_constant(eqx::array(2.0f)), {2}, std::vector<float>{NAN, NAN});
  }
  CHECK(message_of<eqx::RuntimeError>([&] { on_constant(eqx::array(2.0f)); }) == "negative input");
  CHECK(eqx::debug::get_num_traces(on_constant) == 1);
  CHECK(eqx::to_string(on_constant.plan(eqx::array(2.0f)).graph()).find("error_if") != std::string::npos);
}

TEST_CASE("EQX_ON_ERROR values: raise, nan and off; others refused, naming the variable and the choices",
          "[error_if][on_error]") {
  CHECK(eqx::detail::parse_on_error("raise") == eqx::OnError::raise);
  CHECK(eqx::detail::parse_on_error("nan") == eqx::OnError::nan);
  CHECK(eqx::detail::parse_on_error("off") == eqx::OnError::off);
  CHECK_THROWS_AS(eqx::detail::parse_on_error("NaN"), eqx::ValueError);
  CHECK(message_of<eqx::ValueError>([] { eqx::detail::parse_on_error("NaN"); }) ==
        "EQX_ON_ERROR must be 'raise', 'nan' or 'off', got 'NaN'; unset it to raise eqx::RuntimeError (the default)");
  CHECK(message_of<eqx::ValueError>([] { eqx::detail::parse_on_error("breakpoint"); }) ==
        "EQX_ON_ERROR=breakpoint: eqx has no debugger hook; use 'raise', 'nan' or 'off' (and a debugger's catch "
        "throw for eqx::RuntimeError)");
}

// Run by ctest in processes of their own (tests/CMakeLists.txt), since the
// variable is read once per process: on_error.env_nan and on_error.env_unknown.
TEST_CASE("EQX_ON_ERROR from the environment", "[.][on_error_env]") {
  const char* env = std::getenv("EQX_ON_ERROR");
  const std::string value = env != nullptr ? env : "(unset)";
  auto positive = [](const Array& x) { return eqx::error_if(x, x < 0.0f, "negative"); };
  if (value == "nan") {
    CHECK(eqx::on_error() == eqx::OnError::nan);
    check(positive(eqx::array({-1.0f})), {1}, std::vector<float>{NAN});
    check(eqx::filter_jit(positive)(eqx::array({-1.0f, 1.0f})), {2}, std::vector<float>{NAN, NAN});
  } else if (value == "sometimes") {
    const std::string refused =
        "EQX_ON_ERROR must be 'raise', 'nan' or 'off', got 'sometimes'; unset it to raise eqx::RuntimeError (the "
        "default)";
    // At the first check, even one that passes; and again at every use: never ignored.
    CHECK(message_of<eqx::ValueError>([&] { positive(eqx::array({1.0f})); }) == refused);
    CHECK(message_of<eqx::ValueError>([&] { eqx::filter_jit(positive)(eqx::array({1.0f})); }) == refused);
    CHECK(message_of<eqx::ValueError>([&] { eqx::set_on_error(eqx::OnError::nan); }) == refused);
    CHECK(message_of<eqx::ValueError>([&] { positive(eqx::array({1.0f})); }) == refused);
  } else {
    FAIL("ctest runs this with EQX_ON_ERROR=nan or EQX_ON_ERROR=sometimes; it is " + value);
  }
}

TEST_CASE("debug::print: values printed when compiled code runs, in loops, under vmap", "[debug_print]") {
  std::string out;
  auto saved = eqx::debug::print_sink();
  eqx::debug::print_sink() = [&](std::string_view s) { out += s; };
  auto f = [](const Array& x) {
    Array y = x * 2.0f;
    eqx::debug::print("y = {}", y);
    return y + 1.0f;
  };
  check(f(eqx::array({1.0f, 2.0f})), {2}, std::vector<float>{3, 5});
  CHECK(out == fmt::format("y = {}\n", eqx::array({2.0f, 4.0f})));
  out.clear();
  auto jf = eqx::filter_jit(f);
  jf(eqx::array({1.0f, 2.0f}));
  jf(eqx::array({3.0f, 4.0f}));
  CHECK(out == fmt::format("y = {}\ny = {}\n", eqx::array({2.0f, 4.0f}), eqx::array({6.0f, 8.0f})));
  // Nothing uses the print's result, yet the compiled plan keeps it.
  CHECK(eqx::to_string(jf.plan(eqx::array({1.0f, 2.0f})).graph()).find("debug_print") != std::string::npos);
  // Once per scan step, and the whole batch under vmap.
  out.clear();
  eqx::scan([](const Array& c, const Array& x) {
    eqx::debug::print("t {} c {}", x, c);
    return std::pair{c + x, c};
  }, eqx::array(0.0f), eqx::array({1.0f, 2.0f}));
  CHECK(out == fmt::format("t {} c {}\nt {} c {}\n", eqx::array(1.0f), eqx::array(0.0f), eqx::array(2.0f),
                           eqx::array(1.0f)));
  out.clear();
  eqx::filter_vmap(f)(eqx::array({1.0f, 2.0f}));
  CHECK(out == fmt::format("y = {}\n", eqx::array({2.0f, 4.0f})));
  out.clear();
  CHECK(message_of<eqx::ValueError>([] { eqx::debug::print("{} {}", eqx::array(1.0f)); })
            .starts_with("eqx::debug::print: the format string \"{} {}\" does not fit its 1 Arrays: "));
  eqx::debug::print_sink() = saved;
}

}  // namespace transform_control_flow_test
