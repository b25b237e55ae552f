#pragma once
// The autodiff checker (like jax.test_util.check_grads): a primitive's JVP
// against central finite differences in float64, and its VJP against its
// JVP (<vjp(u), v> == <u, jvp(v)>). Rows name a function of float64 Arrays
// and the point to check it at.

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/ad/autodiff.hpp>

namespace eqx_test {

using eqx::Array;

using Fn = std::function<Array(const std::vector<Array>&)>;

inline Array random_f64(std::uint32_t seed, const eqx::Shape& shape, double lo = -1.0, double hi = 1.0) {
  return eqx::random::uniform(eqx::random::key(seed), shape, eqx::float64, lo, hi);
}

inline double vdot(const Array& a, const Array& b) { return eqx::sum(a * b).item<double>(); }

/// Checks f's derivatives at xs: JVP along a random direction against
/// central differences, and VJP against JVP.
inline void check_grads(const Fn& f, const std::vector<Array>& xs, double tol = 1e-6) {
  std::vector<Array> dirs;
  for (std::size_t i = 0; i < xs.size(); ++i) dirs.push_back(random_f64(100 + static_cast<std::uint32_t>(i), xs[i].shape()));
  eqx::Graph g = eqx::filter_make_jaxpr(f)(xs).graph;
  auto [outs, touts] = eqx::jvp_graph(g, xs, dirs);
  REQUIRE(touts.size() == 1);
  const Array& y = outs[0];
  Array ty = touts[0].has_value() ? touts[0] : eqx::zeros(y.shape(), y.dtype());
  // Central differences along dirs.
  const double eps = 1e-6;
  std::vector<Array> plus, minus;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    plus.push_back(xs[i] + dirs[i] * eps);
    minus.push_back(xs[i] - dirs[i] * eps);
  }
  Array fd = (f(plus) - f(minus)) / (2 * eps);
  std::vector<double> got = ty.to_vector<double>(), want = fd.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    INFO("JVP element " << k);
    CHECK(got[k] == Approx(want[k]).epsilon(tol).margin(tol));
  }
  // VJP is the transpose of JVP.
  Array u = random_f64(7, y.shape());
  std::vector<Array> ct{u};
  auto [outs2, in_ct] = eqx::vjp_graph(g, xs, ct);
  double lhs = 0;
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (in_ct[i].has_value()) {
      REQUIRE(in_ct[i].shape() == xs[i].shape());
      lhs += vdot(in_ct[i], dirs[i]);
    }
  CHECK(lhs == Approx(vdot(u, ty)).epsilon(1e-9).margin(1e-12));
}

struct Row {
  std::string name;
  Fn f;
  std::vector<Array> xs;
};

}  // namespace eqx_test
