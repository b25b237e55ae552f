// eqx::nn::MLP against PyTorch (tests/nn/fixtures_mlp.py: a torch.nn.Sequential
// of torch.nn.Linear layers and activation modules; MLP.layers[i] holds the
// i-th torch Linear's weight [out, in] and bias [out] one to one), and
// nn::Sequential, nn::Lambda and nn::Dropout (statistics, keys, state
// threading, printing, serialisation and misuse).

#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>
#include <eqx/nn/activations.hpp>
#include <eqx/nn/dropout.hpp>
#include <eqx/nn/mlp.hpp>
#include <eqx/nn/norm.hpp>
#include <eqx/nn/sequential.hpp>

#include "check.hpp"
#include "nn/fixtures.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace nn_mlp_test {

namespace nn = eqx::nn;
using eqx_test::check_close;
using eqx_test::fixture;
using eqx_test::message_of;

namespace {

struct MlpCase {
  const char* name;
  std::int64_t in, out, width, depth;
  nn::Activation activation, final_activation;
  bool use_bias, use_final_bias;
};

/// The cases of fixtures_mlp.py, with the torch modules they mirror.
std::vector<MlpCase> mlp_cases() {
  return {
      {"mlp", 3, 2, 5, 2, nn::relu, nn::identity, true, true},            // ReLU, Identity
      {"mlp_depth0", 4, 3, 7, 0, nn::relu, nn::sigmoid, true, true},      // one Linear, Sigmoid
      {"mlp_gelu", 3, 4, 6, 1, nn::gelu, nn::identity, false, true},      // GELU(approximate="tanh")
      {"mlp_custom", 2, 3, 4, 3, [](const eqx::Array& x) { return x * eqx::tanh(x); },  // x * tanh(x)
       nn::log_sigmoid, true, false},                                                      // LogSigmoid
  };
}

/// An MLP built by MLP::init, its parameters replaced by the fixture's.
nn::MLP mlp_from(const MlpCase& c, eqx::DType dtype) {
  nn::MLP mlp = nn::MLP::init(c.in, c.out, c.width, c.depth, eqx::random::key(0),
                              {.activation = c.activation,
                               .final_activation = c.final_activation,
                               .use_bias = c.use_bias,
                               .use_final_bias = c.use_final_bias,
                               .dtype = dtype});
  for (std::size_t i = 0; i < mlp.layers.size(); ++i) {
    nn::Linear& l = mlp.layers[i];
    const eqx::Array w = eqx::astype(fixture(c.name, "weight" + std::to_string(i)), dtype);
    REQUIRE(l.weight.shape() == w.shape());
    l.weight = w;
    if (l.bias.has_value()) l.bias = eqx::astype(fixture(c.name, "bias" + std::to_string(i)), dtype);
  }
  return mlp;
}

/// y = x + state, new state = state + 1: a stand-in for a stateful layer.
struct AddState {
  std::pair<eqx::Array, eqx::Array> operator()(const eqx::Array& x, const eqx::Array& state) const {
    return {x + state, state + 1};
  }
};

/// A stateful layer that also takes a key: adds a uniform draw, counts calls.
struct NoisyCounter {
  std::pair<eqx::Array, int> operator()(const eqx::Array& x, int calls, const eqx::random::Key& key) const {
    return {x + eqx::random::uniform(key, x.shape(), x.dtype()), calls + 1};
  }
};

eqx::Array relu_fn(const eqx::Array& x) { return nn::relu(x); }

}  // namespace

// ---------------------------------------------------------------- MLP

TEST_CASE("nn::MLP matches torch Linear/activation stacks: forward and gradients of every layer", "[nn]") {
  for (const MlpCase& c : mlp_cases()) {
    for (auto [dtype, rtol] : {std::pair{eqx::float64, 1e-10}, std::pair{eqx::float32, 1e-5}}) {
      INFO("case " << c.name << ", " << eqx::dtype_name(dtype));
      const nn::MLP mlp = mlp_from(c, dtype);
      const eqx::Array x = eqx::astype(fixture(c.name, "x"), dtype), ct = eqx::astype(fixture(c.name, "ct"), dtype);
      check_close(mlp(x), fixture(c.name, "y"), rtol, "y");
      auto loss = [](const std::pair<nn::MLP, eqx::Array>& p, const eqx::Array& ct) {
        return eqx::sum(p.first(p.second) * ct);
      };
      auto [g, gx] = eqx::filter_grad(loss)(std::pair{mlp, x}, ct);
      check_close(gx, fixture(c.name, "grad_x"), rtol, "grad_x");
      REQUIRE(g.layers.size() == static_cast<std::size_t>(c.depth + 1));
      for (std::size_t i = 0; i < g.layers.size(); ++i) {
        const std::string n = std::to_string(i);
        check_close(g.layers[i].weight, fixture(c.name, "grad_weight" + n), rtol, "grad_weight" + n);
        const bool has_bias = i + 1 == g.layers.size() ? c.use_final_bias : c.use_bias;
        CHECK(g.layers[i].bias.has_value() == has_bias);
        if (has_bias) check_close(g.layers[i].bias, fixture(c.name, "grad_bias" + n), rtol, "grad_bias" + n);
      }
    }
  }
}

TEST_CASE("nn::MLP::init: Equinox's layer sizes, biases and keys split(key, depth + 1)", "[nn]") {
  const eqx::random::Key key = eqx::random::key(5);
  const nn::MLP mlp = nn::MLP::init(3, 2, 8, 3, key, {.use_bias = false});
  REQUIRE(mlp.layers.size() == 4);
  const std::vector<eqx::random::Key> keys = eqx::random::split_keys(key, 4);
  CHECK(eqx::tree_equal(mlp.layers[0], nn::Linear::init(3, 8, keys[0], {.use_bias = false})));
  CHECK(eqx::tree_equal(mlp.layers[1], nn::Linear::init(8, 8, keys[1], {.use_bias = false})));
  CHECK(eqx::tree_equal(mlp.layers[2], nn::Linear::init(8, 8, keys[2], {.use_bias = false})));
  CHECK(eqx::tree_equal(mlp.layers[3], nn::Linear::init(8, 2, keys[3])));  // use_final_bias defaults to true
  CHECK(mlp.activation == nn::relu);
  CHECK(mlp.final_activation == nn::identity);
  CHECK(*mlp.depth == 3);
  CHECK(*mlp.width_size == 8);
  // Depth 0: one Linear(in, out) from keys[0] of split(key, 1), with use_final_bias.
  const nn::MLP one = nn::MLP::init(4, 3, 16, 0, key, {.use_bias = true, .use_final_bias = false, .dtype = eqx::float64});
  REQUIRE(one.layers.size() == 1);
  CHECK(eqx::tree_equal(one.layers[0], nn::Linear::init(4, 3, eqx::random::split_keys(key, 1)[0],
                                                        {.use_bias = false, .dtype = eqx::float64})));
  // Equinox's default initialisation is Linear's: every weight inside +-1/sqrt(fan_in).
  const nn::MLP wide = nn::MLP::init(16, 4, 64, 1, eqx::random::key(2));
  for (float w : wide.layers[0].weight.to_vector<float>()) CHECK(std::abs(w) < 0.25f);
  for (float w : wide.layers[1].weight.to_vector<float>()) CHECK(std::abs(w) < 0.125f);
}

TEST_CASE("nn::MLP with nn::scalar sizes; the final activation runs at every depth", "[nn]") {
  const nn::MLP mlp = nn::MLP::init(nn::scalar, nn::scalar, 4, 1, eqx::random::key(1), {.final_activation = nn::sigmoid});
  const eqx::Array y = mlp(eqx::array(0.5f));
  CHECK(y.shape() == eqx::Shape{});
  const nn::Linear& a = mlp.layers[0];
  const nn::Linear& b = mlp.layers[1];
  CHECK(a.weight.shape() == eqx::Shape{4, 1});
  CHECK(b.weight.shape() == eqx::Shape{1, 4});
  // By hand: sigmoid(b.w @ relu(a.w * 0.5 + a.b) + b.b).
  std::vector<float> aw = a.weight.to_vector<float>(), ab = a.bias.to_vector<float>(), bw = b.weight.to_vector<float>();
  double s = b.bias.to_vector<float>()[0];
  for (int i = 0; i < 4; ++i) s += bw[i] * std::max(0.0, 0.5 * aw[i] + ab[i]);
  CHECK(y.item<float>() == Approx(1 / (1 + std::exp(-s))).epsilon(1e-6));
  // depth 0 applies final_activation too (Equinox >= 0.13.5 skips it there; see mlp.hpp).
  const nn::MLP zero = nn::MLP::init(2, 1, 0, 0, eqx::random::key(3), {.final_activation = nn::sigmoid});
  const eqx::Array x = eqx::array({0.3f, -0.7f});
  check_close(zero(x), nn::sigmoid(zero.layers[0](x)), 1e-7, "depth 0");
}

TEST_CASE("nn::MLP under filter_vmap and filter_jit, printing and Equinox's leaf order", "[nn]") {
  const nn::MLP mlp = nn::MLP::init(3, 2, 4, 2, eqx::random::key(7), {.activation = nn::gelu});
  const eqx::Array xs = eqx_test::seq<float>({5, 3}) * 0.1f;
  std::vector<eqx::Array> rows;
  for (int i = 0; i < 5; ++i) rows.push_back(mlp(eqx::take(xs, eqx::array(i), 0)));
  const eqx::Array looped = eqx::stack(rows);
  check_close(eqx::filter_vmap(mlp)(xs), looped, 1e-6, "vmap");
  auto jitted = eqx::filter_jit([](const nn::MLP& m, const eqx::Array& xs) { return eqx::filter_vmap(m)(xs); });
  check_close(jitted(mlp, xs), looped, 1e-6, "jit(vmap)");
  // A different activation is a different static leaf: a new trace, a different result.
  nn::MLP relu_mlp = mlp;
  relu_mlp.activation = nn::relu;
  check_close(jitted(relu_mlp, xs), eqx::filter_vmap(relu_mlp)(xs), 1e-6, "jit, relu");

  CHECK(fmt::format("{}", nn::MLP::init(2, nn::scalar, 3, 1, eqx::random::key(0))) ==
        "MLP(\n""  layers=[\n""    Linear(\n""      weight=f32[3,2],\n""      bias=f32[3],\n"
        "      in_features=2,\n""      out_features=3,\n""      use_bias=True\n""    ),\n""    Linear(\n"
        "      weight=f32[1,3],\n""      bias=f32[1],\n""      in_features=3,\n"
        "      out_features='scalar',\n""      use_bias=True\n""    )\n""  ],\n""  activation=<function>,\n"
        "  final_activation=<function>,\n""  use_bias=True,\n""  use_final_bias=True,\n""  in_size=2,\n"
        "  out_size='scalar',\n""  width_size=3,\n""  depth=1\n"")");

  // Leaves: weight0, bias0, weight1, bias1, weight2 (no final bias); activations are not written.
  const nn::MLP nb = nn::MLP::init(3, 2, 4, 2, eqx::random::key(1), {.use_final_bias = false});
  std::stringstream file;
  eqx::tree_serialise_leaves(file, nb);
  std::stringstream copy(file.str());
  for (eqx::Shape s : {eqx::Shape{4, 3}, eqx::Shape{4}, eqx::Shape{4, 4}, eqx::Shape{4}, eqx::Shape{2, 4}})
    CHECK(eqx::read_npy(copy).shape() == s);
  CHECK(copy.peek() == std::char_traits<char>::eof());
  const nn::MLP loaded = eqx::tree_deserialise_leaves(file, nn::MLP::init(3, 2, 4, 2, eqx::random::key(9), {.use_final_bias = false}));
  CHECK(eqx::tree_equal(loaded, nb));
}

TEST_CASE("nn::MLP misuse: wrong input shape, a batch, negative depth, null activation, integer dtype", "[nn]") {
  const nn::MLP mlp = nn::MLP::init(3, 2, 4, 1, eqx::random::key(0));
  CHECK(message_of<eqx::ShapeError>([&] { mlp(eqx::zeros({4})); }) ==
        "eqx::nn::MLP: expected the input to have shape [3] but got [4]");
  CHECK(message_of<eqx::ShapeError>([&] { mlp(eqx::zeros({8, 3})); }) ==
        "eqx::nn::MLP: expected the input to have shape [3] but got [8,3]; layers act on one example: call it on one "
        "example and batch with eqx::filter_vmap(layer)(xs)");
  CHECK(message_of<eqx::ValueError>([] { nn::MLP::init(3, 2, 4, -1, eqx::random::key(0)); }) ==
        "eqx::nn::MLP: expected depth >= 0 (the number of hidden layers) but got -1; depth 0 is a single Linear layer");
  CHECK(message_of<eqx::ValueError>([] { nn::MLP::init(3, 2, -4, 1, eqx::random::key(0)); }) ==
        "eqx::nn::MLP: expected width_size >= 0 but got -4; give the number of neurons of each hidden layer");
  CHECK(message_of<eqx::ValueError>([] { nn::MLP::init(3, 2, 4, 1, eqx::random::key(0), {.activation = nullptr}); }) ==
        "eqx::nn::MLP: expected an activation function but got a null pointer; use eqx::nn::identity for none");
  CHECK(message_of<eqx::DTypeError>([] { nn::MLP::init(3, 2, 4, 1, eqx::random::key(0), {.dtype = eqx::int32}); }) ==
        "eqx::nn::MLP: dtype int32 is not a floating dtype; parameters are float32 (the default) or float64");
}

// ---------------------------------------------------------------- Dropout

TEST_CASE("nn::Dropout: keep rate 1 - p, survivors scaled by 1/(1-p), mean of dropout(ones) ~ 1", "[nn]") {
  const std::int64_t n = 200000;
  for (double p : {0.1, 0.5, 0.8}) {
    INFO("p = " << p);
    const double q = 1 - p;
    const std::vector<float> y = nn::Dropout::init(p)(eqx::ones({n}), eqx::random::key(42)).to_vector<float>();
    double kept = 0, sum = 0, misscaled = 0;
    for (float v : y) {
      if (v != 0) {
        kept += 1;
        misscaled += v != 1.0f / static_cast<float>(q);  // x / q in float32
      }
      sum += v;
    }
    CHECK(misscaled == 0);
    // 5 standard errors: keep rate sqrt(q p / n); mean of the scaled mask sqrt(p / (q n)).
    CHECK(std::abs(kept / n - q) < 5 * std::sqrt(q * p / n));
    CHECK(std::abs(sum / n - 1) < 5 * std::sqrt(p / (q * n)));
  }
  // Different keys drop different elements; the same key the same ones.
  const nn::Dropout drop = nn::Dropout::init(0.5);
  const eqx::Array x = eqx::ones({64});
  CHECK(eqx::tree_equal(drop(x, eqx::random::key(1)), drop(x, eqx::random::key(1))));
  CHECK_FALSE(eqx::tree_equal(drop(x, eqx::random::key(1)), drop(x, eqx::random::key(2))));
}

TEST_CASE("nn::Dropout: identity in inference or with p = 0, per-call override, p = 1, gradient", "[nn]") {
  const eqx::Array x = eqx_test::seq<float>({6}, 1.0f);
  eqx_test::check<float>(nn::Dropout::init(0.5, {.inference = true})(x), {6}, {1, 2, 3, 4, 5, 6});
  eqx_test::check<float>(nn::Dropout::init(0.0)(x), {6}, {1, 2, 3, 4, 5, 6});  // no key needed
  const nn::Dropout drop = nn::Dropout::init(0.5);
  eqx_test::check<float>(drop(x, eqx::Array{}, true), {6}, {1, 2, 3, 4, 5, 6});  // override: inference
  const nn::Dropout off = nn::Dropout::init(0.5, {.inference = true});
  CHECK(eqx::tree_equal(off(x, eqx::random::key(3), false), drop(x, eqx::random::key(3))));  // override: training
  // p = 1 drops everything, with a zero (not NaN) gradient.
  eqx_test::check<float>(nn::Dropout::init(1.0)(x, eqx::random::key(0)), {6}, {0, 0, 0, 0, 0, 0});
  auto loss = [](const eqx::Array& x, const nn::Dropout& d, const eqx::Array& key) { return eqx::sum(d(x, key) * x); };
  eqx_test::check<float>(eqx::filter_grad(loss)(x, nn::Dropout::init(1.0), eqx::random::key(0)), {6}, {0, 0, 0, 0, 0, 0});
  // Gradient of sum(dropout(x) * ct): ct / q where kept, 0 where dropped.
  const eqx::Array key = eqx::random::key(4), ct = eqx::array({1.f, -2.f, 3.f, -4.f, 5.f, -6.f});
  auto lin = [](const eqx::Array& x, const nn::Dropout& d, const eqx::Array& key, const eqx::Array& ct) {
    return eqx::sum(d(x, key) * ct);
  };
  const std::vector<float> g = eqx::filter_grad(lin)(x, nn::Dropout::init(0.25), key, ct).to_vector<float>();
  const std::vector<float> kept = nn::Dropout::init(0.25)(eqx::ones({6}), key).to_vector<float>();
  const std::vector<float> c = ct.to_vector<float>();
  for (int i = 0; i < 6; ++i) CHECK(g[i] == Approx(kept[i] * c[i]));
}

TEST_CASE("nn::Dropout under filter_jit with a key argument, printing, serialisation as Equinox, misuse", "[nn]") {
  const nn::Dropout drop = nn::Dropout::init(0.3);
  const eqx::Array x = eqx_test::seq<float>({16}, 1.0f);
  auto jitted = eqx::filter_jit([](const nn::Dropout& d, const eqx::Array& x, const eqx::Array& key) { return d(x, key); });
  CHECK(eqx::tree_equal(jitted(drop, x, eqx::random::key(8)), drop(x, eqx::random::key(8))));
  CHECK(eqx::tree_equal(jitted(drop, x, eqx::random::key(9)), drop(x, eqx::random::key(9))));  // the key is traced
  CHECK_FALSE(eqx::tree_equal(jitted(drop, x, eqx::random::key(8)), jitted(drop, x, eqx::random::key(9))));

  CHECK(fmt::format("{}", drop) == "Dropout(p=0.3, inference=False)");

  // Equinox writes the Python float p as <f8 and the bool inference as |b1, both 0-d.
  std::stringstream file;
  eqx::tree_serialise_leaves(file, nn::Dropout::init(0.25, {.inference = true}));
  const std::string bytes = file.str();
  const auto f8 = bytes.find("'descr': '<f8'"), b1 = bytes.find("'descr': '|b1'");
  REQUIRE(f8 != std::string::npos);
  REQUIRE(b1 != std::string::npos);
  CHECK(f8 < b1);
  CHECK(bytes.find("'shape': ()") != std::string::npos);
  const nn::Dropout loaded = eqx::tree_deserialise_leaves(file, nn::Dropout::init());
  CHECK(loaded.p == 0.25);
  CHECK(loaded.inference);

  CHECK(message_of<eqx::ValueError>([&] { drop(x); }) ==
        "eqx::nn::Dropout: training mode (inference = false, p > 0) needs a key but got none; call dropout(x, key), "
        "or switch dropout off with eqx::nn::inference_mode(model), Dropout::init(p, {.inference = true}) or "
        "dropout(x, key, /*inference=*/true)");
  CHECK(message_of<eqx::ValueError>([] { nn::Dropout::init(1.5); }) ==
        "eqx::nn::Dropout: p must be in [0, 1] but got 1.5; give a probability");
}

// ---------------------------------------------------------------- Sequential, Lambda

TEST_CASE("nn::Sequential applies its layers in order; get<I>, size(); nn::Lambda wraps functions", "[nn]") {
  const nn::Linear l1 = nn::Linear::init(3, 4, eqx::random::key(1)), l2 = nn::Linear::init(4, 2, eqx::random::key(2));
  const auto seq = nn::Sequential{std::tuple{l1, nn::Lambda{relu_fn}, l2}};
  static_assert(std::is_same_v<std::remove_const_t<decltype(seq)>,
                               nn::Sequential<nn::Linear, nn::Lambda<eqx::Array (*)(const eqx::Array&)>, nn::Linear>>);
  static_assert(seq.size() == 3);
  CHECK(eqx::tree_equal(seq.get<2>(), l2));
  const eqx::Array x = eqx::array({0.5f, -1.0f, 2.0f});
  check_close(seq(x), l2(nn::relu(l1(x))), 1e-7, "seq(x)");
  check_close(seq(x, eqx::random::key(0)), l2(nn::relu(l1(x))), 1e-7, "seq(x, key): keys are ignored by these layers");
  // The helper, a captureless lambda, and a nested Sequential.
  const auto twice = nn::Lambda{[](const eqx::Array& v) { return v * 2; }};
  const auto nested = nn::sequential(seq, twice, nn::sequential(twice));
  check_close(nested(x), l2(nn::relu(l1(x))) * 4, 1e-7, "nested");
  static_assert(nested.size() == 3);
  // An empty Sequential is the identity.
  check_close(nn::Sequential<>{}(x), x, 0, "empty");
}

TEST_CASE("nn::Sequential: the key is split into size() keys, layer i gets keys[i]", "[nn]") {
  const nn::Dropout d = nn::Dropout::init(0.5);
  const auto seq = nn::sequential(d, nn::Lambda{relu_fn}, d);
  const eqx::Array x = eqx::ones({256}), key = eqx::random::key(11);
  const std::vector<eqx::random::Key> keys = eqx::random::split_keys(key, 3);
  const eqx::Array manual = d(nn::relu(d(x, keys[0])), keys[2]);
  CHECK(eqx::tree_equal(seq(x, key), manual));
  // The two Dropout layers drew different masks: their keys differ.
  CHECK_FALSE(eqx::tree_equal(d(x, keys[0]), d(x, keys[2])));
  CHECK_FALSE(eqx::tree_equal(seq(x, key), d(d(x, key), key)));
  // Without a key, training-mode Dropout reports the missing key; in inference it is the identity.
  CHECK(message_of<eqx::ValueError>([&] { seq(x); }).rfind("eqx::nn::Dropout: training mode", 0) == 0);
  const nn::Dropout off = nn::Dropout::init(0.5, {.inference = true});
  check_close(nn::sequential(off, off)(x), x, 0, "inference");
  // Under filter_jit, with the key an argument.
  auto jitted = eqx::filter_jit([](const decltype(seq)& s, const eqx::Array& x, const eqx::Array& key) { return s(x, key); });
  CHECK(eqx::tree_equal(jitted(seq, x, key), manual));
  CHECK(eqx::tree_equal(jitted(seq, x, eqx::random::key(12)), seq(x, eqx::random::key(12))));
  // LayerNorm, GroupNorm and RMSNorm also take (x, state) and return {y, state}; a key (an Array) is not a state
  // for them, so a Sequential holding one still returns y when called with a key.
  const auto normed = nn::sequential(nn::LayerNorm::init(256), nn::RMSNorm::init(256), nn::GroupNorm::init(4, 256), d);
  static_assert(std::is_same_v<decltype(normed(x, key)), eqx::Array>);
  const std::vector<eqx::random::Key> keys4 = eqx::random::split_keys(key, 4);
  CHECK(eqx::tree_equal(normed(x, key), d(normed.get<2>()(normed.get<1>()(normed.get<0>()(x))), keys4[3])));
}

TEST_CASE("nn::Sequential threads a state through stateful layers, in order, with their keys", "[nn]") {
  const auto doubling = nn::Lambda{[](const eqx::Array& v) { return v * 2; }};
  const auto seq = nn::sequential(AddState{}, doubling, AddState{});
  static_assert(decltype(seq)::is_stateful<eqx::Array>);
  const eqx::Array x = eqx::array({1.0, 2.0}), s0 = eqx::array(10.0);
  // (x + 10) * 2, then + 11; the state leaves as 12.
  auto [y, s] = seq(x, s0);
  eqx_test::check<double>(y, {2}, {33, 35});
  eqx_test::check<double>(s, {}, {12});
  // With a key as well (AddState takes none; a Dropout in between takes keys[1]).
  const nn::Dropout d = nn::Dropout::init(0.5);
  const auto with_drop = nn::sequential(AddState{}, d, AddState{});
  const eqx::Array key = eqx::random::key(3);
  auto [y2, s2] = with_drop(x, s0, key);
  check_close(y2, d(x + 10, eqx::random::split_keys(key, 3)[1]) + 11, 1e-12, "stateful + dropout");
  eqx_test::check<double>(s2, {}, {12});
  // A state of another type (an int), a stateful layer taking a key: layer i gets keys[i].
  const auto counted = nn::sequential(NoisyCounter{}, nn::Lambda{relu_fn}, NoisyCounter{});
  static_assert(!decltype(counted)::is_stateful<eqx::Array>);
  auto [y3, calls] = counted(x, 0, key);
  const std::vector<eqx::random::Key> keys = eqx::random::split_keys(key, 3);
  const eqx::Array want = nn::relu(x + eqx::random::uniform(keys[0], {2}, eqx::float64)) +
                          eqx::random::uniform(keys[2], {2}, eqx::float64);
  check_close(y3, want, 1e-12, "keyed stateful");
  CHECK(calls == 2);
  // seq(x, state) with an int state and no key: NoisyCounter gets an empty key, so only key-free layers here.
  auto [y4, s4] = nn::sequential(nn::Lambda{relu_fn})(x, 7);
  check_close(y4, x, 0, "state passed through");
  CHECK(s4 == 7);
  // Under filter_jit: the Array state is traced.
  auto jitted = eqx::filter_jit([](const decltype(seq)& q, const eqx::Array& x, const eqx::Array& s) { return q(x, s); });
  auto [yj, sj] = jitted(seq, x, eqx::array(1.0));
  eqx_test::check<double>(yj, {2}, {6, 8});
  eqx_test::check<double>(sj, {}, {3});
}

TEST_CASE("nn::Sequential and nn::Lambda: vmap, printing, serialisation in layer order", "[nn]") {
  const auto seq = nn::sequential(nn::Linear::init(2, 3, eqx::random::key(1)), nn::Lambda{relu_fn},
                                  nn::Dropout::init(0.2, {.inference = true}));
  const eqx::Array xs = eqx_test::seq<float>({4, 2}) * 0.25f - 0.5f;
  std::vector<eqx::Array> rows;
  for (int i = 0; i < 4; ++i) rows.push_back(seq(eqx::take(xs, eqx::array(i), 0)));
  check_close(eqx::filter_vmap(seq)(xs), eqx::stack(rows), 1e-7, "vmap");

  CHECK(fmt::format("{}", seq) ==
        "Sequential(\n""  layers=(\n""    Linear(\n""      weight=f32[3,2],\n""      bias=f32[3],\n"
        "      in_features=2,\n""      out_features=3,\n""      use_bias=True\n""    ),\n"
        "    Lambda(fn=<function>),\n""    Dropout(p=0.2, inference=True)\n""  )\n"")");
  // A captureless lambda is held as a function pointer: the same type, printed as <function>.
  const auto lam = nn::Lambda{[](const eqx::Array& v) { return v * 2; }};
  static_assert(std::is_same_v<std::remove_const_t<decltype(lam)>, nn::Lambda<eqx::Array (*)(const eqx::Array&)>>);
  CHECK(fmt::format("{}", lam) == "Lambda(fn=<function>)");

  // Leaves in layer order: weight, bias, then Dropout's p and inference; the function is not written.
  std::stringstream file;
  eqx::tree_serialise_leaves(file, seq);
  std::stringstream copy(file.str());
  CHECK(eqx::read_npy(copy).shape() == eqx::Shape{3, 2});
  CHECK(eqx::read_npy(copy).shape() == eqx::Shape{3});
  const eqx::Array p = eqx::read_npy(copy);
  CHECK(p.dtype() == eqx::float64);
  CHECK(p.item<double>() == 0.2);
  CHECK(eqx::read_npy(copy).dtype() == eqx::bool_);
  CHECK(copy.peek() == std::char_traits<char>::eof());
}

}  // namespace nn_mlp_test
