// eqx::nn::LayerNorm, GroupNorm, RMSNorm and WeightNorm: forward and
// gradients against independent references (tests/nn/fixtures_norm.py):
//   LayerNorm   torch.nn.LayerNorm / functional.layer_norm (weight, bias of the input's shape, as Equinox)
//   GroupNorm   torch.nn.GroupNorm on x[None] (weight, bias [C], as Equinox)
//   RMSNorm     the formula and its hand-derived gradients in NumPy
//   WeightNorm  torch.nn.utils.weight_norm(dim=0 / None) on torch.nn.Linear and Conv2d:
//               weight_v -> layer.weight (v), weight_g -> g (with Equinox's kept dims)
// plus Equinox's initialisation, printing, serialisation order, vmap/jit,
// the state pass-through and misuse messages.

#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <vector>
#include <type_traits>
#include <utility>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>
#include <eqx/nn/linear.hpp>
#include <eqx/nn/norm.hpp>

#include "check.hpp"
#include "nn/fixtures.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace nn_norm_test {

namespace nn = eqx::nn;
using eqx_test::check_close;
using eqx_test::fixture;
using eqx_test::message_of;

namespace {

/// {layer gradients, input gradient} of loss = sum(layer(x) * ct).
template <class Layer>
std::pair<Layer, eqx::Array> grads_of(const Layer& layer, const eqx::Array& x, const eqx::Array& ct) {
  auto loss = [](const std::pair<Layer, eqx::Array>& p, const eqx::Array& ct) {
    return eqx::sum(p.first(p.second) * ct);
  };
  return eqx::filter_grad(loss)(std::pair{layer, x}, ct);
}

/// Checks y and the gradients of a normalisation layer (whose weight/bias
/// were set from the fixture) against fixture case `c`.
template <class Layer>
void check_norm(std::string_view c, const Layer& layer, eqx::DType dtype, double rtol, bool has_weight, bool has_bias) {
  INFO("case " << c << " in " << eqx::dtype_name(dtype));
  eqx::Array x = eqx::astype(fixture(c, "x"), dtype), ct = eqx::astype(fixture(c, "ct"), dtype);
  eqx::Array y = layer(x);
  CHECK(y.dtype() == dtype);
  check_close(y, fixture(c, "y"), rtol, "y");
  auto [g, gx] = grads_of(layer, x, ct);
  check_close(gx, fixture(c, "grad_x"), rtol, "grad_x");
  if (has_weight) check_close(g.weight, fixture(c, "grad_weight"), rtol, "grad_weight");
  else CHECK_FALSE(g.weight.has_value());
  if (has_bias) check_close(g.bias, fixture(c, "grad_bias"), rtol, "grad_bias");
  else CHECK_FALSE(g.bias.has_value());
}

template <class Layer>
Layer with_params(Layer layer, std::string_view c, eqx::DType dtype) {
  if (layer.weight.has_value()) layer.weight = eqx::astype(fixture(c, "weight"), dtype);
  if (layer.bias.has_value()) layer.bias = eqx::astype(fixture(c, "bias"), dtype);
  return layer;
}

/// A minimal 2-D convolution layer (cross-correlation, VALID, bias per
/// channel) written on eqx::conv, to wrap in WeightNorm like torch's Conv2d.
struct TinyConv {
  eqx::Array weight;  ///< [C_out, C_in, kh, kw]
  eqx::Array bias;    ///< [C_out]
  eqx::Array operator()(const eqx::Array& x) const {
    eqx::Array y = eqx::squeeze(eqx::conv(eqx::expand_dims(x, 0), weight), {0});
    return y + eqx::reshape(bias, {bias.shape()[0], 1, 1});
  }
};

/// A layer whose weight field is not called `weight`.
struct Scaled {
  eqx::Array kernel;
  eqx::Array operator()(const eqx::Array& x) const { return eqx::matmul(kernel, x); }
};

std::vector<eqx::DType> both = {eqx::float64, eqx::float32};
double tol(eqx::DType d) { return d == eqx::float64 ? 1e-10 : 1e-5; }

}  // namespace

TEST_CASE("nn::LayerNorm matches torch.nn.LayerNorm: forward and gradients", "[nn]") {
  for (eqx::DType d : both) {
    check_norm("layernorm", with_params(nn::LayerNorm::init({3, 4}, {.dtype = d}), "layernorm", d), d, tol(d), true,
               true);
    check_norm("layernorm_noaffine", nn::LayerNorm::init(5, {.use_weight = false, .use_bias = false, .dtype = d}), d,
               tol(d), false, false);
    check_norm("layernorm_nobias",
               with_params(nn::LayerNorm::init(6, {.use_bias = false, .dtype = d}), "layernorm_nobias", d), d, tol(d),
               true, false);
  }
}

TEST_CASE("nn::GroupNorm matches torch.nn.GroupNorm: forward and gradients", "[nn]") {
  for (eqx::DType d : both) {
    check_norm("groupnorm", with_params(nn::GroupNorm::init(2, 4, {.dtype = d}), "groupnorm", d), d, tol(d), true,
               true);
    check_norm("groupnorm_noaffine", nn::GroupNorm::init(3, 3, {.channelwise_affine = false, .dtype = d}), d, tol(d),
               false, false);
  }
}

TEST_CASE("nn::RMSNorm matches its formula (NumPy, hand-derived gradients)", "[nn]") {
  for (eqx::DType d : both) {
    check_norm("rmsnorm", with_params(nn::RMSNorm::init({2, 3}, {.dtype = d}), "rmsnorm", d), d, tol(d), true, true);
    check_norm("rmsnorm_noaffine", nn::RMSNorm::init(4, {.use_weight = false, .use_bias = false, .dtype = d}), d,
               tol(d), false, false);
  }
  // By hand: x = [3, 4], mean(x^2) = 12.5, eps = 0.5 -> x / sqrt(13) .
  nn::RMSNorm r = nn::RMSNorm::init(2, {.eps = 0.5, .dtype = eqx::float64});
  eqx_test::check(r(eqx::array({3.0, 4.0})), {2}, std::vector<double>{3 / std::sqrt(13.0), 4 / std::sqrt(13.0)});
}

TEST_CASE("nn::LayerNorm/GroupNorm/RMSNorm: initialisation, dtypes, printing and leaf order", "[nn]") {
  nn::LayerNorm ln = nn::LayerNorm::init({2, 3});
  eqx_test::check(ln.weight, {2, 3}, std::vector<float>(6, 1.f));
  eqx_test::check(ln.bias, {2, 3}, std::vector<float>(6, 0.f));
  CHECK(fmt::format("{}", ln) ==
        "LayerNorm(\n  shape=[2,3],\n  eps=1e-05,\n  use_weight=True,\n  use_bias=True,\n  weight=f32[2,3],\n"
        "  bias=f32[2,3]\n)");
  CHECK(eqx::tree_pformat(nn::LayerNorm::init(4, {.use_weight = false, .use_bias = false}), {.width = 200}) ==
        "LayerNorm(shape=[4], eps=1e-05, use_weight=False, use_bias=False, weight=None, bias=None)");
  nn::GroupNorm gn = nn::GroupNorm::init(2, 6, {.eps = 1e-3, .dtype = eqx::float64});
  eqx_test::check(gn.weight, {6}, std::vector<double>(6, 1.0));
  eqx_test::check(gn.bias, {6}, std::vector<double>(6, 0.0));
  CHECK(fmt::format("{}", gn) ==
        "GroupNorm(\n  groups=2,\n  channels=6,\n  eps=0.001,\n  channelwise_affine=True,\n  weight=f64[6],\n"
        "  bias=f64[6]\n)");
  nn::RMSNorm rms = nn::RMSNorm::init(5, {.use_bias = false});
  CHECK(eqx::tree_pformat(rms, {.width = 200}) ==
        "RMSNorm(shape=[5], eps=1e-05, use_weight=True, use_bias=False, weight=f32[5], bias=None)");

  // Equinox's leaf order: weight, then bias; absent ones write nothing.
  std::stringstream file;
  eqx::tree_serialise_leaves(file, std::tuple{ln, rms});
  std::stringstream copy(file.str());
  eqx_test::check(eqx::read_npy(copy), {2, 3}, std::vector<float>(6, 1.f));
  eqx_test::check(eqx::read_npy(copy), {2, 3}, std::vector<float>(6, 0.f));
  eqx_test::check(eqx::read_npy(copy), {5}, std::vector<float>(5, 1.f));
  CHECK(copy.peek() == std::char_traits<char>::eof());
  nn::LayerNorm trained = ln;
  trained.bias = eqx::full({2, 3}, 0.5f);
  auto loaded = eqx::tree_deserialise_leaves(file, std::tuple{trained, rms});
  CHECK(eqx::tree_equal(std::get<0>(loaded), ln));

  // A float32 input through float64 parameters computes in float32 (result_type(x, f32)), as Equinox.
  nn::LayerNorm ln64 = nn::LayerNorm::init(3, {.dtype = eqx::float64});
  CHECK(ln64(eqx::array({1.f, 2.f, 3.f})).dtype() == eqx::float32);
  CHECK(ln64(eqx::array({1.0, 2.0, 3.0})).dtype() == eqx::float64);
  // Normalising a constant gives 0 (variance 0 stays >= 0, no NaN).
  eqx_test::check(nn::LayerNorm::init(3)(eqx::full({3}, 7.f)), {3}, std::vector<float>(3, 0.f));
}

TEST_CASE("nn::LayerNorm/GroupNorm/RMSNorm under filter_vmap and filter_jit; the state pass-through", "[nn]") {
  nn::LayerNorm ln = with_params(nn::LayerNorm::init({3, 4}), "layernorm", eqx::float32);
  eqx::Array xs = eqx::sin(eqx_test::seq<float>({5, 3, 4}));
  std::vector<eqx::Array> rows;
  for (int i = 0; i < 5; ++i) rows.push_back(ln(eqx::take(xs, eqx::array(i), 0)));
  check_close(eqx::filter_vmap(ln)(xs), eqx::stack(rows), 1e-6, "vmap LayerNorm");
  auto jitted = eqx::filter_jit([](const nn::LayerNorm& l, const eqx::Array& xs) { return eqx::filter_vmap(l)(xs); });
  check_close(jitted(ln, xs), eqx::stack(rows), 1e-6, "jit(vmap LayerNorm)");

  nn::GroupNorm gn = with_params(nn::GroupNorm::init(2, 4), "groupnorm", eqx::float32);
  eqx::Array gxs = eqx::cos(eqx_test::seq<float>({3, 4, 3, 2}));
  std::vector<eqx::Array> grows;
  for (int i = 0; i < 3; ++i) grows.push_back(gn(eqx::take(gxs, eqx::array(i), 0)));
  check_close(eqx::filter_vmap(gn)(gxs), eqx::stack(grows), 1e-6, "vmap GroupNorm");
  auto gjit = eqx::filter_jit([](const nn::GroupNorm& l, const eqx::Array& x) { return l(x); });
  check_close(gjit(gn, eqx::take(gxs, eqx::array(1), 0)), grows[1], 1e-6, "jit GroupNorm");

  nn::RMSNorm rms = with_params(nn::RMSNorm::init({2, 3}), "rmsnorm", eqx::float32);
  eqx::Array rxs = eqx_test::seq<float>({4, 2, 3}, -5.f);
  std::vector<eqx::Array> rrows;
  for (int i = 0; i < 4; ++i) rrows.push_back(rms(eqx::take(rxs, eqx::array(i), 0)));
  auto rjit = eqx::filter_jit([](const nn::RMSNorm& l, const eqx::Array& xs) { return eqx::filter_vmap(l)(xs); });
  check_close(rjit(rms, rxs), eqx::stack(rrows), 1e-6, "jit(vmap RMSNorm)");

  // (x, state) -> {y, state}: the state comes back unchanged (BatchNorm's API).
  eqx::Array x = eqx::take(xs, eqx::array(0), 0);
  auto [y, state] = ln(x, std::string("state"));
  CHECK(state == "state");
  check_close(y, rows[0], 0, "LayerNorm(x, state)");
  auto [gy, gstate] = gn(grows[0], 42);
  CHECK(gstate == 42);
  check_close(gy, gn(grows[0]), 0, "GroupNorm(x, state)");
  auto [ry, rstate] = rms(eqx::take(rxs, eqx::array(0), 0), std::vector<int>{1, 2});
  CHECK(rstate == std::vector<int>{1, 2});
  check_close(ry, rrows[0], 0, "RMSNorm(x, state)");
  // An Array second argument is a key (what nn::Sequential passes), never a state.
  static_assert(!std::is_invocable_v<const nn::LayerNorm&, const eqx::Array&, const eqx::Array&>);
  static_assert(!std::is_invocable_v<const nn::GroupNorm&, const eqx::Array&, const eqx::Array&>);
  static_assert(!std::is_invocable_v<const nn::RMSNorm&, const eqx::Array&, const eqx::Array&>);
}

TEST_CASE("nn::LayerNorm/GroupNorm/RMSNorm misuse messages", "[nn]") {
  nn::LayerNorm ln = nn::LayerNorm::init({3, 4});
  CHECK(message_of<eqx::ShapeError>([&] { ln(eqx::zeros({8, 3, 4})); }) ==
        "eqx::nn::LayerNorm: expected the input to have the layer's shape [3,4] but got [8,3,4]; the layer normalises "
        "one example: batch the leading axes with eqx::filter_vmap(layer)(xs)");
  CHECK(message_of<eqx::ShapeError>([&] { ln(eqx::zeros({4})); }) ==
        "eqx::nn::LayerNorm: expected the input to have the layer's shape [3,4] but got [4]");
  CHECK(message_of<eqx::ShapeError>([&] { nn::RMSNorm::init(4)(eqx::zeros({2, 5, 4})); }) ==
        "eqx::nn::RMSNorm: expected the input to have the layer's shape [4] but got [2,5,4]; the layer normalises "
        "one example: batch the leading axes with eqx::filter_vmap(layer)(xs)");
  CHECK(message_of<eqx::ValueError>([&] { nn::GroupNorm::init(4, 6); }) ==
        "eqx::nn::GroupNorm: expected a positive number of groups dividing the number of channels but got groups=4, "
        "channels=6; choose groups that divide channels");
  CHECK(message_of<eqx::ValueError>([&] { nn::GroupNorm::init(0, 6); }) ==
        "eqx::nn::GroupNorm: expected a positive number of groups dividing the number of channels but got groups=0, "
        "channels=6; choose groups that divide channels");
  nn::GroupNorm gn = nn::GroupNorm::init(2, 4);
  CHECK(message_of<eqx::ShapeError>([&] { gn(eqx::zeros({6, 3})); }) ==
        "eqx::nn::GroupNorm: expected the input to have 4 channels (axis 0) but got shape [6,3]");
  CHECK(message_of<eqx::ShapeError>([&] { gn(eqx::zeros({})); }) ==
        "eqx::nn::GroupNorm: expected the input to have shape [C, ...] with C = 4 but got a scalar []");
  CHECK(message_of<eqx::DTypeError>([&] { nn::LayerNorm::init(3, {.dtype = eqx::int32}); }) ==
        "eqx::nn::LayerNorm: dtype int32 is not a floating dtype; parameters are float32 (the default) or float64");
}

TEST_CASE("nn::WeightNorm matches torch.nn.utils.weight_norm on Linear and Conv2d", "[nn]") {
  struct Case {
    std::string name;
    std::optional<std::int64_t> axis;
  };
  for (eqx::DType d : both) {
    for (const Case& c : {Case{"weightnorm_linear", 0}, Case{"weightnorm_linear_all", std::nullopt}}) {
      INFO(c.name << " " << eqx::dtype_name(d));
      eqx::Array w = eqx::astype(fixture(c.name, "weight"), d);
      nn::Linear lin = nn::Linear::init(w.shape()[1], w.shape()[0], eqx::random::key(0), {.dtype = d});
      lin.weight = w;
      lin.bias = eqx::astype(fixture(c.name, "bias"), d);
      auto wn = nn::weight_norm(lin, {.axis = c.axis});
      check_close(wn.g, fixture(c.name, "g_init"), tol(d), "g = ||v|| at init");
      check_close(wn(eqx::astype(fixture(c.name, "x"), d)), lin(eqx::astype(fixture(c.name, "x"), d)), tol(d),
                  "unchanged at init");
      wn.g = eqx::astype(fixture(c.name, "g"), d);
      eqx::Array x = eqx::astype(fixture(c.name, "x"), d), ct = eqx::astype(fixture(c.name, "ct"), d);
      check_close(wn(x), fixture(c.name, "y"), tol(d), "y");
      auto [g, gx] = grads_of(wn, x, ct);
      check_close(gx, fixture(c.name, "grad_x"), tol(d), "grad_x");
      check_close(g.layer.weight, fixture(c.name, "grad_weight"), tol(d), "grad v");
      check_close(g.layer.bias, fixture(c.name, "grad_bias"), tol(d), "grad_bias");
      check_close(g.g, fixture(c.name, "grad_g"), tol(d), "grad_g");
    }
    INFO("weightnorm_conv " << eqx::dtype_name(d));
    const std::string c = "weightnorm_conv";
    auto wn = nn::WeightNorm<TinyConv>::init(
        TinyConv{eqx::astype(fixture(c, "weight"), d), eqx::astype(fixture(c, "bias"), d)});
    CHECK(wn.g.shape() == eqx::Shape{3, 1, 1, 1});
    check_close(wn.g, fixture(c, "g_init"), tol(d), "g = ||v|| at init");
    wn.g = eqx::astype(fixture(c, "g"), d);
    eqx::Array x = eqx::astype(fixture(c, "x"), d), ct = eqx::astype(fixture(c, "ct"), d);
    check_close(wn(x), fixture(c, "y"), tol(d), "y");
    auto [g, gx] = grads_of(wn, x, ct);
    check_close(gx, fixture(c, "grad_x"), tol(d), "grad_x");
    check_close(g.layer.weight, fixture(c, "grad_weight"), tol(d), "grad v");
    check_close(g.layer.bias, fixture(c, "grad_bias"), tol(d), "grad_bias");
    check_close(g.g, fixture(c, "grad_g"), tol(d), "grad_g");
  }
}

TEST_CASE("nn::WeightNorm: a named field, axes, vmap/jit, printing, leaf order and misuse", "[nn]") {
  // A field other than `weight`, normalised over axis 1 (by hand: columns of [[3, 1], [4, 0]] have norms 5, 1).
  auto wn = nn::WeightNorm<Scaled>::init(Scaled{eqx::array(std::vector<double>{3.0, 1.0, 4.0, 0.0}, {2, 2})},
                                         {.weight = &Scaled::kernel, .axis = 1});
  eqx_test::check(wn.g, {1, 2}, std::vector<double>{5, 1});
  wn.g = eqx::array(std::vector<double>{10.0, 2.0}, {1, 2});  // weight = [[6, 2], [8, 0]]
  eqx_test::check(wn(eqx::array({1.0, 1.0})), {2}, std::vector<double>{8, 8});
  CHECK(eqx::tree_pformat(wn, {.width = 200}) ==
        "WeightNorm(layer=Scaled(kernel=f64[2,2]), g=f64[1,2], weight_name='kernel', axis=1)");
  // A negative axis counts from the end: -2 is axis 0 (row norms sqrt(10), 4).
  eqx_test::check(nn::WeightNorm<Scaled>::init(wn.layer, {.weight = &Scaled::kernel, .axis = -2}).g, {2, 1},
                  std::vector<double>{std::sqrt(10.0), 4});

  nn::Linear lin = nn::Linear::init(3, 2, eqx::random::key(1));
  auto wl = nn::WeightNorm<nn::Linear>::init(lin);
  CHECK(fmt::format("{}", wl) ==
        "WeightNorm(\n  layer=Linear(\n    weight=f32[2,3],\n    bias=f32[2],\n    in_features=3,\n"
        "    out_features=2,\n    use_bias=True\n  ),\n  g=f32[2,1],\n  weight_name='weight',\n  axis=0\n)");
  CHECK(fmt::format("{}", nn::weight_norm(lin, {.axis = std::nullopt})).find("axis=None") != std::string::npos);

  eqx::Array xs = eqx::sin(eqx_test::seq<float>({4, 3}));
  std::vector<eqx::Array> rows;
  for (int i = 0; i < 4; ++i) rows.push_back(wl(eqx::take(xs, eqx::array(i), 0)));
  auto jitted = eqx::filter_jit([](const nn::WeightNorm<nn::Linear>& l, const eqx::Array& xs) {
    return eqx::filter_vmap(l)(xs);
  });
  check_close(eqx::filter_vmap(wl)(xs), eqx::stack(rows), 1e-6, "vmap");
  check_close(jitted(wl, xs), eqx::stack(rows), 1e-6, "jit(vmap)");

  // Equinox's leaf order: the layer's leaves (v, bias), then g.
  std::stringstream file;
  eqx::tree_serialise_leaves(file, wl);
  std::stringstream copy(file.str());
  CHECK(eqx::tree_equal(eqx::read_npy(copy), lin.weight));
  CHECK(eqx::tree_equal(eqx::read_npy(copy), lin.bias));
  CHECK(eqx::tree_equal(eqx::read_npy(copy), wl.g));
  CHECK(copy.peek() == std::char_traits<char>::eof());
  auto blank = nn::weight_norm(nn::Linear::init(3, 2, eqx::random::key(5)));
  CHECK(eqx::tree_equal(eqx::tree_deserialise_leaves(file, blank), wl));

  CHECK(message_of<eqx::ValueError>([&] { nn::weight_norm(lin, {.axis = 2}); }) ==
        "eqx::nn::WeightNorm: expected an axis in [-2, 2) for the weight [2,3] but got 2; give an axis of the weight, "
        "or std::nullopt for the whole norm");
  CHECK(message_of<eqx::ValueError>([&] { nn::weight_norm(Scaled{}, {.weight = &Scaled::kernel}); }) ==
        "eqx::nn::WeightNorm: expected the weight field to hold an Array but it is empty (None)");
}

}  // namespace nn_norm_test
