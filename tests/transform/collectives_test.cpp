// Collectives over a named vmap axis (psum, pmean, pmax, all_gather,
// axis_index), filter_vmap's axis_name and out_axes(...) per element, and
// their derivatives: grad(vmap(f)) and vmap(grad(f)) agree as in JAX.

#include <catch2/catch.hpp>

#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>

#include "ad/check_grads.hpp"
#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace transform_collectives_test {

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;

namespace {

/// filter_vmap over axis 0 with the axis named "b".
template <class F>
auto vmap_b(F f) {
  return eqx::filter_vmap(std::move(f), 0, 0, std::nullopt, "b");
}

const Array xs = eqx::array(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2});  // 3 examples of [2]

}  // namespace

TEST_CASE("collectives: values over a named vmap axis", "[vmap][collectives]") {
  check(vmap_b([](const Array& x) { return eqx::psum(x, "b"); })(xs), {3, 2}, std::vector<float>{9, 12, 9, 12, 9, 12});
  check(vmap_b([](const Array& x) { return x - eqx::pmean(x, "b"); })(xs), {3, 2},
        std::vector<float>{-2, -2, 0, 0, 2, 2});
  check(vmap_b([](const Array& x) { return eqx::pmax(-x, "b"); })(xs), {3, 2}, std::vector<float>{-1, -2, -1, -2, -1, -2});
  check(vmap_b([](const Array& x) { return eqx::all_gather(x, "b"); })(xs), {3, 3, 2},
        std::vector<float>{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6});
  check(vmap_b([](const Array&) { return eqx::axis_index("b"); })(xs), {3},
        std::vector<std::int32_t>{0, 1, 2});
  // A shared (unmapped) value: psum is n times it, the others keep it.
  auto shared = eqx::filter_vmap([](const Array& x, const Array& s) { return x + eqx::psum(s, "b") + eqx::pmean(s, "b"); },
                                 eqx::in_axes(0, eqx::none), 0, std::nullopt, "b");
  check(shared(xs, eqx::array({1.f, 10.f})), {3, 2}, std::vector<float>{5, 42, 7, 44, 9, 46});
  // out_axes none: the reduced value once, not per example.
  check(eqx::filter_vmap([](const Array& x) { return eqx::psum(x, "b"); }, 0, eqx::none, std::nullopt, "b")(xs), {2},
        std::vector<float>{9, 12});
}

TEST_CASE("collectives: out_axes(...) per element of a pair, as Equinox's stateful example", "[vmap][collectives]") {
  auto f = [](const Array& x, const Array& running) {
    Array mu = eqx::pmean(x, "b");
    return std::pair{x - mu, 0.5f * running + 0.5f * mu};
  };
  auto [ys, running] = eqx::filter_vmap(f, eqx::in_axes(0, eqx::none), eqx::out_axes(0, eqx::none), std::nullopt, "b")(
      xs, eqx::zeros({2}));
  check(ys, {3, 2}, std::vector<float>{-2, -2, 0, 0, 2, 2});
  check(running, {2}, std::vector<float>{1.5f, 2});
  CHECK(message_of<eqx::ValueError>([&] {
          eqx::filter_vmap(f, eqx::in_axes(0, eqx::none), eqx::out_axes(0, eqx::none, 0), std::nullopt, "b")(
              xs, eqx::zeros({2}));
        }) == "eqx::filter_vmap: out_axes gives 3 specs but the function returns 2 elements; give eqx::out_axes(...) "
              "one spec per element of the returned tuple or pair");
  CHECK(message_of<eqx::ValueError>([&] {
          eqx::filter_vmap(f, eqx::in_axes(0, 0), eqx::out_axes(0, eqx::none), std::nullopt, "b")(xs, eqx::zeros({3, 2}));
        }) == "eqx::filter_vmap: out_axes is eqx::none for the output at [1] but it differs between examples; map it (an "
              "out_axes index) or compute it outside the vmapped function");
  CHECK(message_of<eqx::ValueError>([&] {
          eqx::filter_vmap([](const Array& x) { return x; }, 0, eqx::out_axes(0))(xs);
        }) == "eqx::filter_vmap: eqx::out_axes(...) gives one spec per element of a tuple or pair result, but the "
              "function returns a single value; pass one spec (an int or eqx::none) instead");
}

TEST_CASE("collectives: errors outside a vmap of that name", "[vmap][collectives]") {
  const std::string want =
      "eqx::pmean: no filter_vmap with axis_name \"batch\" is running; call it inside eqx::filter_vmap(f, in_axes, "
      "out_axes, std::nullopt, \"batch\")";
  CHECK(message_of<eqx::ValueError>([] { eqx::pmean(eqx::ones({2}), "batch"); }) == want);
  CHECK(message_of<eqx::ValueError>([] { vmap_b([](const Array& x) { return eqx::pmean(x, "batch"); })(xs); }) == want);
  CHECK(message_of<eqx::ValueError>([] {
          eqx::filter_jit([](const Array& x) { return eqx::pmean(x, "batch"); })(xs);
        }) == want);
  CHECK(message_of<eqx::ValueError>([] { eqx::axis_index("b"); }) ==
        "eqx::axis_index: no filter_vmap with axis_name \"b\" is running; call it inside eqx::filter_vmap(f, in_axes, "
        "out_axes, std::nullopt, \"b\")");
  CHECK(message_of<eqx::DTypeError>([] {
          vmap_b([](const Array& x) { return eqx::pmean(eqx::astype(x, eqx::int32), "b"); })(xs);
        }) == "eqx::pmean: the input must be float32 or float64, got int32; convert it first (eqx::astype) or use eqx::psum");
}

TEST_CASE("collectives: nested vmaps reduce over the named axis only", "[vmap][collectives]") {
  // xss[i][j]: outer axis "rows" (2), inner axis "cols" (3).
  const Array xss = eqx_test::seq<float>({2, 3});
  auto inner = [](const Array& x) { return eqx::psum(x, "rows") * 10 + eqx::psum(x, "cols"); };
  auto outer = [&](const Array& row) {
    return eqx::filter_vmap(inner, 0, 0, std::nullopt, "cols")(row);
  };
  // column sums: [3, 5, 7]; row sums: [3, 12].
  check(eqx::filter_vmap(outer, 0, 0, std::nullopt, "rows")(xss), {2, 3},
        std::vector<float>{33, 53, 73, 42, 62, 82});
  // all_gather over the outer axis from inside the inner vmap.
  auto gather_rows = [&](const Array& row) {
    return eqx::filter_vmap([](const Array& x) { return eqx::all_gather(x, "rows"); }, 0, 0, std::nullopt, "cols")(row);
  };
  check(eqx::filter_vmap(gather_rows, 0, 0, std::nullopt, "rows")(xss), {2, 3, 2},
        std::vector<float>{0, 3, 1, 4, 2, 5, 0, 3, 1, 4, 2, 5});
}

TEST_CASE("collectives: jit of vmap traces once and matches eager", "[vmap][collectives]") {
  auto centred = eqx::filter_jit([](const Array& xs) {
    return vmap_b([](const Array& x) { return (x - eqx::pmean(x, "b")) / eqx::pmax(eqx::abs(x), "b"); })(xs);
  });
  check(centred(xs), {3, 2}, std::vector<float>{-0.4f, -1.f / 3, 0, 0, 0.4f, 1.f / 3});
  check(centred(xs * 2.f), {3, 2}, std::vector<float>{-0.4f, -1.f / 3, 0, 0, 0.4f, 1.f / 3});
  // The collectives are gone from the compiled graph: they became reductions.
  const std::string graph = fmt::format("{}", centred.plan(xs).graph());
  CHECK(graph.find("pmean") == std::string::npos);
  CHECK(graph.find("reduce_sum") != std::string::npos);
}

TEST_CASE("collectives: gradients, grad(vmap) == vmap(grad) and finite differences", "[vmap][collectives][ad]") {
  const Array x64 = eqx::astype(xs, eqx::float64) * 0.3;
  // Sum over examples of |x_i - mean|^2: d/dx_i = 2 (x_i - mean) (the mean's term sums to zero).
  auto centred_sq = [](const Array& x) { return eqx::sum(eqx::square(x - eqx::pmean(x, "b"))); };
  Array g = eqx::filter_grad([&](const Array& x) { return eqx::sum(vmap_b(centred_sq)(x)); })(x64);
  check(g, {3, 2}, std::vector<double>{-1.2, -1.2, 0, 0, 1.2, 1.2});
  // vmap(grad): each example's gradient flows back through the collective to
  // every example, so it equals the gradient of the sum (JAX's semantics).
  check(vmap_b(eqx::filter_grad(centred_sq))(x64), {3, 2}, std::vector<double>{-1.2, -1.2, 0, 0, 1.2, 1.2});

  auto mixed = [](const Array& x) {
    Array gathered = eqx::all_gather(x, "b");  // [3, 2]
    return eqx::sum(x * eqx::psum(x * x, "b")) + eqx::sum(eqx::sin(gathered) * x) +
           eqx::sum(eqx::pmax(x * x, "b") * x) + eqx::sum(eqx::pmean(eqx::exp(x), "b"));
  };
  Array x = eqx::array(std::vector<double>{0.3, -0.7, 1.1, 0.4, -0.2, 0.9}, {3, 2});
  Array via_grad_of_vmap = eqx::filter_grad([&](const Array& v) { return eqx::sum(vmap_b(mixed)(v)); })(x);
  Array via_vmap_of_grad = vmap_b(eqx::filter_grad(mixed))(x);
  eqx_test::check(via_vmap_of_grad, {3, 2}, via_grad_of_vmap.to_vector<double>());
  // Forward mode through the per-example rules (vmap of jvp) equals the jvp of the batched function.
  Array dir = eqx_test::random_f64(3, {3, 2});
  auto [y1, t1] = eqx::filter_jvp([&](const Array& v) { return vmap_b(mixed)(v); }, std::tuple{x}, std::tuple{dir});
  auto per_example_jvp = [&](const Array& v, const Array& dv) {
    return eqx::filter_jvp(mixed, std::tuple{v}, std::tuple{dv}).second;
  };
  Array t2 = eqx::filter_vmap(per_example_jvp, 0, 0, std::nullopt, "b")(x, dir);
  eqx_test::check(t2, {3}, t1.to_vector<double>());
  // And against central differences (batched function).
  eqx_test::check_grads([&](const std::vector<Array>& a) { return vmap_b(mixed)(a[0]); }, {x});
}

TEST_CASE("collectives: inside a scan body under vmap", "[vmap][collectives]") {
  // Each step adds the batch mean of the carry: with carries 1,2,3 and means 2, 4, 8, ...
  auto run = [](const Array& h0) {
    auto [h, hs] = eqx::scan([](const Array& h, const Array&) { return std::pair{h + eqx::pmean(h, "b"), h}; }, h0,
                             eqx::zeros({3}));
    return h;
  };
  check(vmap_b(run)(eqx::array({1.f, 2.f, 3.f})), {3}, std::vector<float>{15, 16, 17});
  // A scan that does not see the example cannot reduce over it: a clear error.
  auto unbatched = [](const Array& x) {
    auto [h, hs] = eqx::scan([](const Array& h, const Array&) { return std::pair{eqx::pmean(h, "b"), h}; },
                             eqx::ones({2}), eqx::zeros({2}));
    return x + h;
  };
  CHECK(message_of<eqx::ValueError>([&] { vmap_b(unbatched)(xs); }) ==
        "eqx::filter_vmap: 'scan' uses a collective over the axis 'b' in its body, but none of its inputs depends on the "
        "example; pass a value that varies over 'b' into it (or call the collective outside it)");
}

}  // namespace transform_collectives_test
