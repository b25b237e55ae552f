// eqx::nn::Linear and Identity: forward and gradients against PyTorch
// (tests/nn/fixtures_linear.py: torch.nn.Linear, whose weight [out, in] and
// bias [out] are Equinox's layout one to one), Equinox's initialisation,
// nn::scalar, printing, serialisation, and misuse.

#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>
#include <utility>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>

#include "check.hpp"
#include "nn/fixtures.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace nn_linear_test {

namespace nn = eqx::nn;
using eqx_test::check_close;
using eqx_test::fixture;

namespace {

/// The layer's gradients and the input's for loss = sum(layer(x) * ct).
std::pair<nn::Linear, eqx::Array> linear_grads(const nn::Linear& layer, const eqx::Array& x, const eqx::Array& ct) {
  auto loss = [](const std::pair<nn::Linear, eqx::Array>& p, const eqx::Array& ct) {
    return eqx::sum(p.first(p.second) * ct);
  };
  return eqx::filter_grad(loss)(std::pair{layer, x}, ct);
}

/// A Linear whose parameters come from a fixture case, in `dtype`.
nn::Linear linear_from(std::string_view c, bool use_bias, eqx::DType dtype) {
  eqx::Array w = eqx::astype(fixture(c, "weight"), dtype);
  nn::Linear layer = nn::Linear::init(w.shape()[1], w.shape()[0], eqx::random::key(0), {.use_bias = use_bias});
  layer.weight = w;
  if (use_bias) layer.bias = eqx::astype(fixture(c, "bias"), dtype);
  return layer;
}

void check_against_torch(std::string_view c, bool use_bias, eqx::DType dtype, double rtol) {
  nn::Linear layer = linear_from(c, use_bias, dtype);
  eqx::Array x = eqx::astype(fixture(c, "x"), dtype), ct = eqx::astype(fixture(c, "ct"), dtype);
  check_close(layer(x), fixture(c, "y"), rtol, "y");
  auto [g, gx] = linear_grads(layer, x, ct);
  check_close(gx, fixture(c, "grad_x"), rtol, "grad_x");
  check_close(g.weight, fixture(c, "grad_weight"), rtol, "grad_weight");
  if (use_bias) check_close(g.bias, fixture(c, "grad_bias"), rtol, "grad_bias");
  else CHECK_FALSE(g.bias.has_value());
}

}  // namespace

TEST_CASE("nn::Linear matches torch.nn.Linear: forward and gradients (float64 and float32)", "[nn]") {
  check_against_torch("linear", true, eqx::float64, 1e-10);
  check_against_torch("linear", true, eqx::float32, 1e-5);
  check_against_torch("linear_nobias", false, eqx::float64, 1e-10);
  check_against_torch("linear_nobias", false, eqx::float32, 1e-5);
}

TEST_CASE("nn::Linear: Equinox's initialisation U(-1/sqrt(in), 1/sqrt(in)) for weight and bias", "[nn]") {
  nn::Linear layer = nn::Linear::init(64, 256, eqx::random::key(3));
  CHECK(layer.weight.shape() == eqx::Shape{256, 64});
  CHECK(layer.bias.shape() == eqx::Shape{256});
  CHECK(layer.weight.dtype() == eqx::float32);
  const double lim = 1.0 / 8.0;
  for (const eqx::Array& p : {layer.weight, layer.bias}) {
    std::vector<float> v = p.to_vector<float>();
    double mean = 0, sq = 0, lo = 1, hi = -1;
    for (float f : v) mean += f, sq += double(f) * f, lo = std::min(lo, double(f)), hi = std::max(hi, double(f));
    mean /= v.size();
    const double var = sq / v.size() - mean * mean;
    CHECK(lo >= -lim);
    CHECK(hi < lim);
    CHECK(hi - lo > 1.9 * lim);  // the whole range is used
    // U(-a, a): mean 0, variance a^2/3; tolerances are ~5 standard errors.
    CHECK(std::abs(mean) < 5 * lim / std::sqrt(3.0 * v.size()));
    CHECK(var == Approx(lim * lim / 3).epsilon(5 * std::sqrt(0.8 / v.size())));
  }
  // Two different keys give different weights; the same key the same ones.
  CHECK(eqx::tree_equal(nn::Linear::init(4, 3, eqx::random::key(1)), nn::Linear::init(4, 3, eqx::random::key(1))));
  CHECK_FALSE(eqx::tree_equal(nn::Linear::init(4, 3, eqx::random::key(1)), nn::Linear::init(4, 3, eqx::random::key(2))));
  // in = 0: Equinox uses lim = 1.
  CHECK(nn::Linear::init(0, 5, eqx::random::key(0)).bias.shape() == eqx::Shape{5});
  nn::Linear d = nn::Linear::init(3, 2, eqx::random::key(0), {.use_bias = false, .dtype = eqx::float64});
  CHECK(d.weight.dtype() == eqx::float64);
  CHECK_FALSE(d.bias.has_value());
}

TEST_CASE("nn::Linear with nn::scalar input and output sizes", "[nn]") {
  nn::Linear in_scalar = nn::Linear::init(nn::scalar, 3, eqx::random::key(0));
  CHECK(in_scalar.weight.shape() == eqx::Shape{3, 1});
  std::vector<float> w = in_scalar.weight.to_vector<float>(), b = in_scalar.bias.to_vector<float>();
  eqx_test::check(in_scalar(eqx::array(2.0f)), {3}, std::vector<float>{2 * w[0] + b[0], 2 * w[1] + b[1], 2 * w[2] + b[2]});

  nn::Linear out_scalar = nn::Linear::init(2, nn::scalar, eqx::random::key(1));
  CHECK(out_scalar.weight.shape() == eqx::Shape{1, 2});
  CHECK(out_scalar.bias.shape() == eqx::Shape{1});
  std::vector<float> v = out_scalar.weight.to_vector<float>();
  eqx_test::check(out_scalar(eqx::array({1.f, -1.f})), {}, std::vector<float>{v[0] - v[1] + out_scalar.bias.item<float>()});
  CHECK(fmt::format("{}", out_scalar) ==
        "Linear(\n  weight=f32[1,2],\n  bias=f32[1],\n  in_features=2,\n  out_features='scalar',\n  use_bias=True\n)");
}

TEST_CASE("nn::Linear under filter_vmap and filter_jit, printing and Equinox's leaf order", "[nn]") {
  nn::Linear layer = nn::Linear::init(3, 2, eqx::random::key(7));
  eqx::Array xs = eqx_test::seq<float>({4, 3});
  eqx::Array batched = eqx::filter_vmap(layer)(xs);
  auto jitted = eqx::filter_jit([](const nn::Linear& l, const eqx::Array& xs) { return eqx::filter_vmap(l)(xs); });
  eqx::Array looped = eqx::stack({layer(eqx::take(xs, eqx::array(0), 0)), layer(eqx::take(xs, eqx::array(1), 0)),
                                  layer(eqx::take(xs, eqx::array(2), 0)), layer(eqx::take(xs, eqx::array(3), 0))});
  check_close(batched, looped, 1e-6, "vmap");
  check_close(jitted(layer, xs), looped, 1e-6, "jit(vmap)");

  CHECK(fmt::format("{}", layer) ==
        "Linear(\n  weight=f32[2,3],\n  bias=f32[2],\n  in_features=3,\n  out_features=2,\n  use_bias=True\n)");

  // Equinox's leaf order: weight, then bias (a bias-free layer writes one record).
  std::stringstream file;
  eqx::tree_serialise_leaves(file, layer);
  std::stringstream copy(file.str());
  CHECK(eqx::read_npy(copy).shape() == eqx::Shape{2, 3});
  CHECK(eqx::read_npy(copy).shape() == eqx::Shape{2});
  nn::Linear loaded = eqx::tree_deserialise_leaves(file, nn::Linear::init(3, 2, eqx::random::key(0)));
  CHECK(eqx::tree_equal(loaded, layer));
}

TEST_CASE("nn::Linear misuse: a batch, a wrong size, a non-float dtype", "[nn]") {
  nn::Linear layer = nn::Linear::init(3, 2, eqx::random::key(0));
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { layer(eqx::zeros({8, 3})); }) ==
        "eqx::nn::Linear: expected the input to have shape [3] but got [8,3]; layers act on one example: call it on "
        "one example and batch with eqx::filter_vmap(layer)(xs)");
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { layer(eqx::zeros({4})); }) ==
        "eqx::nn::Linear: expected the input to have shape [3] but got [4]");
  CHECK(eqx_test::message_of<eqx::DTypeError>([&] { nn::Linear::init(3, 2, eqx::random::key(0), {.dtype = eqx::int32}); }) ==
        "eqx::nn::Linear: dtype int32 is not a floating dtype; parameters are float32 (the default) or float64");
  CHECK(nn::Identity{}(eqx::ones({2})).shape() == eqx::Shape{2});
}

}  // namespace nn_linear_test
