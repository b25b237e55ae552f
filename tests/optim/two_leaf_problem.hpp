#pragma once
// The optimiser tests' shared problem (tests/optim/fixtures_optim*.py): a
// two-leaf float64 pytree, the gradient of a quadratic, and the reference
// trajectories the generators wrote as .npy files.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>

namespace optim_test {

using eqx::Array;

/// The two-leaf problem of fixtures_optim.py.
struct Params {
  Array w;  // [3]
  Array b;  // [2, 2]
};

inline Params initial_params() {
  return {eqx::array(std::vector<double>{1.0, -2.0, 0.5}, {3}),
          eqx::array(std::vector<double>{0.3, -0.7, 1.5, -0.1}, {2, 2})};
}

/// g = coef * (p - target): the gradient of 0.5 * sum(coef * (p - target)^2).
inline Params grad_of(const Params& p) {
  const Array cw = eqx::array(std::vector<double>{1.0, 2.0, 3.0}, {3});
  const Array tw = eqx::array(std::vector<double>{0.5, 0.5, 0.5}, {3});
  const Array cb = eqx::array(std::vector<double>{0.5, 1.5, 2.5, 1.0}, {2, 2});
  const Array tb = eqx::array(std::vector<double>{-1.0, 1.0, 0.0, 2.0}, {2, 2});
  return {cw * (p.w - tw), cb * (p.b - tb)};
}

/// tests/optim/fixtures/<name>.npy.
inline Array fixture(const std::string& name) {
  const std::string path = std::string(EQX_TEST_SOURCE_DIR) + "/optim/fixtures/" + name + ".npy";
  std::ifstream f(path, std::ios::binary);
  if (!f) FAIL("missing fixture " << path << " (regenerate with /usr/bin/python3 tests/optim/fixtures_optim.py)");
  return eqx::read_npy(f);
}

/// Largest |got - want| over the values of `got` against row `step` of `traj`.
inline double row_error(const Array& got, const Array& traj, std::size_t step) {
  std::vector<double> g = got.to_vector<double>();
  std::vector<double> t = traj.to_vector<double>();
  double worst = 0;
  for (std::size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - t[step * g.size() + i]));
  return worst;
}

inline std::vector<double> values(const Array& a) { return eqx::astype(a, eqx::float64).to_vector<double>(); }

}  // namespace optim_test
