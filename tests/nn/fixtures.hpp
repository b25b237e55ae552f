#pragma once
// Reference data for the eqx::nn tests: float64 inputs, parameters, outputs
// and gradients computed independently (PyTorch or NumPy, by the generator
// scripts tests/nn/fixtures_*.py, run by hand) and committed as .npy files
// under tests/nn/fixtures/<case>/, read here with eqx's own loader.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>

namespace eqx_test {

/// tests/nn/fixtures/<test_case>/<name>.npy as an Array (float64 as written).
inline eqx::Array fixture(std::string_view test_case, std::string_view name) {
  const std::string path =
      std::string(EQX_TEST_SOURCE_DIR) + "/nn/fixtures/" + std::string(test_case) + "/" + std::string(name) + ".npy";
  std::ifstream f(path, std::ios::binary);
  if (!f) FAIL("missing fixture " << path << " (regenerate with /usr/bin/python3 tests/nn/fixtures_*.py)");
  return eqx::read_npy(f);
}

/// Requires `got` to have `want`'s shape and values within `rtol` relative
/// to the largest |want| (so near-zero entries of a large result are not
/// held to a relative bound they cannot meet). Compared in float64.
inline void check_close(const eqx::Array& got, const eqx::Array& want, double rtol, std::string_view what = "") {
  INFO("checking " << what);
  REQUIRE(got.has_value());
  REQUIRE(got.shape().str() == want.shape().str());
  std::vector<double> g = eqx::astype(got, eqx::float64).to_vector<double>();
  std::vector<double> w = eqx::astype(want, eqx::float64).to_vector<double>();
  double scale = 0;
  for (double v : w) scale = std::max(scale, std::abs(v));
  scale = std::max(scale, 1e-300);
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double err = std::abs(g[i] - w[i]) / scale;
    if (!(err <= worst)) worst = err, at = i;  // NaN counts as worst
  }
  INFO("largest error " << worst << " (relative to max |want| = " << scale << ") at flat index " << at
                        << ": got " << (g.empty() ? 0.0 : g[at]) << ", want " << (w.empty() ? 0.0 : w[at]));
  CHECK(worst <= rtol);
}

/// `x` cast to float32 (for running a float64 reference through a float32 layer).
inline eqx::Array f32(const eqx::Array& x) { return eqx::astype(x, eqx::float32); }

}  // namespace eqx_test
