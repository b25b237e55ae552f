// eqx::nn activations and nn::PReLU: values and gradients against float64
// references (tests/nn/fixtures_activations.py: torch.nn.functional with
// autograd where torch's definition is jax.nn's, NumPy's logaddexp for
// softplus, the formula of jax.nn.standardize; torch.nn.PReLU(1) for PReLU,
// whose weight [1] is the scalar negative_slope), JAX's derivatives at the
// kinks, -inf and extreme logits, and the function-pointer form an MLP stores.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>
#include <eqx/nn/activations.hpp>

#include "check.hpp"
#include "nn/fixtures.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace nn_activations_test {

namespace nn = eqx::nn;
using eqx_test::check_close;
using eqx_test::fixture;

namespace {

/// The form an MLP stores an activation in.
using Activation = eqx::Array (*)(const eqx::Array&);

struct Named {
  const char* name;
  Activation fn;
};

/// In the order of the stacked fixtures (TORCH in fixtures_activations.py, then softplus).
const std::vector<Named>& same_shape_functions() {
  static const std::vector<Named> fns{
      {"relu", nn::relu},
      {"relu6", nn::relu6},
      {"sigmoid", nn::sigmoid},
      {"gelu", nn::gelu},  // the tanh approximation, JAX's default
      {"gelu_exact", [](const eqx::Array& x) { return nn::gelu(x, false); }},
      {"silu", nn::silu},
      {"log_sigmoid", nn::log_sigmoid},
      {"leaky_relu", nn::leaky_relu},
      {"leaky_relu_02", [](const eqx::Array& x) { return nn::leaky_relu(x, 0.2); }},
      {"elu", nn::elu},
      {"elu_05", [](const eqx::Array& x) { return nn::elu(x, 0.5); }},
      {"celu", nn::celu},
      {"celu_2", [](const eqx::Array& x) { return nn::celu(x, 2.0); }},
      {"selu", nn::selu},
      {"hard_tanh", nn::hard_tanh},
      {"identity", nn::identity},
      {"softmax", nn::softmax},
      {"softmax_0", [](const eqx::Array& x) { return nn::softmax(x, 0); }},
      {"log_softmax", nn::log_softmax},
      {"standardize", nn::standardize},
      {"standardize_01", [](const eqx::Array& x) { return nn::standardize(x, {0, 1}, 1e-6); }},
      {"softplus", nn::softplus},
  };
  return fns;
}

/// d/dx sum(fn(x) * ct).
eqx::Array grad_of(Activation fn, const eqx::Array& x, const eqx::Array& ct) {
  auto loss = [](const eqx::Array& x, Activation fn, const eqx::Array& ct) { return eqx::sum(fn(x) * ct); };
  return eqx::filter_grad(loss)(x, fn, ct);
}

std::vector<double> values(const eqx::Array& a) { return eqx::astype(a, eqx::float64).to_vector<double>(); }

bool all_finite(const eqx::Array& a) {
  for (double v : values(a))
    if (!std::isfinite(v)) return false;
  return true;
}

const double inf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("nn activations match torch/NumPy float64 references: values and gradients (float64 and float32)", "[nn]") {
  const eqx::Array x = fixture("activations", "x"), ct = fixture("activations", "ct");
  const eqx::Array ys = fixture("activations", "y"), grads = fixture("activations", "grad");
  const auto& fns = same_shape_functions();
  REQUIRE(ys.shape()[0] == static_cast<std::int64_t>(fns.size()));
  for (std::size_t i = 0; i < fns.size(); ++i) {
    const auto [name, fn] = fns[i];
    INFO("function " << name);
    const eqx::Array idx = eqx::array(static_cast<std::int32_t>(i));
    const eqx::Array y = eqx::take(ys, idx, 0), g = eqx::take(grads, idx, 0);
    check_close(fn(x), y, 1e-10, "y f64");
    check_close(grad_of(fn, x, ct), g, 1e-10, "grad f64");
    const eqx::Array y32 = fn(eqx_test::f32(x));
    CHECK(y32.dtype() == eqx::float32);
    check_close(y32, y, 1e-5, "y f32");
    check_close(grad_of(fn, eqx_test::f32(x), eqx_test::f32(ct)), g, 1e-5, "grad f32");
  }
  // logsumexp over all axes, one axis, and one axis with keepdims.
  const std::vector<std::pair<const char*, Activation>> lse{
      {"logsumexp", nn::logsumexp},
      {"logsumexp_0", [](const eqx::Array& v) { return nn::logsumexp(v, 0); }},
      {"logsumexp_1_keep", [](const eqx::Array& v) { return nn::logsumexp(v, 1, true); }}};
  // (fixture_lib.save_case writes a rank-0 result as shape [1]: np.ascontiguousarray makes it 1-d.)
  auto want = [](const std::string& file, const eqx::Array& like) { return eqx::reshape(fixture("activations", file), like.shape()); };
  for (const auto& [name, fn] : lse) {
    INFO("function " << name);
    const eqx::Array y = fn(x), y_want = want(std::string("y_") + name, y);
    const eqx::Array c = want(std::string("ct_") + name, y), g_want = fixture("activations", std::string("grad_") + name);
    check_close(y, y_want, 1e-10, "y f64");
    check_close(grad_of(fn, x, c), g_want, 1e-10, "grad f64");
    check_close(fn(eqx_test::f32(x)), y_want, 1e-5, "y f32");
    check_close(grad_of(fn, eqx_test::f32(x), eqx_test::f32(c)), g_want, 1e-5, "grad f32");
  }
}

TEST_CASE("nn activations: JAX's derivatives at the kinks, NaN passes through relu", "[nn]") {
  auto d = [](Activation fn, std::vector<double> at) {
    return values(grad_of(fn, eqx::array(at), eqx::ones({static_cast<std::int64_t>(at.size())}, eqx::float64)));
  };
  CHECK(d(nn::relu, {0.0, -1.0, 2.0}) == std::vector<double>{0, 0, 1});
  CHECK(d(nn::relu6, {0.0, 6.0, 3.0, 7.0}) == std::vector<double>{0, 0, 1, 0});
  CHECK(d(nn::hard_tanh, {1.0, -1.0, 1.5}) == std::vector<double>{1, 1, 0});  // the x branch of jnp.where at +-1
  CHECK(d(nn::leaky_relu, {0.0, -1.0}) == std::vector<double>{1, 0.01});       // x >= 0 takes x
  CHECK(d(nn::elu, {0.0}) == std::vector<double>{1});                          // alpha * exp(0)
  CHECK(d(nn::celu, {0.0}) == std::vector<double>{1});                         // 0.5 + 0.5: max's and min's ties
  CHECK(d(nn::softplus, {0.0}) == std::vector<double>{0.5});                   // sigmoid(0)
  CHECK(d(nn::identity, {3.0}) == std::vector<double>{1});
  // NaN propagates (as max(x, 0)); values at the kinks.
  CHECK(std::isnan(values(nn::relu(eqx::array({std::nan("")})))[0]));
  CHECK(std::isnan(values(nn::relu6(eqx::array({std::nan("")})))[0]));
  eqx_test::check<double>(nn::relu6(eqx::array({-1.0, 0.0, 6.0, 9.0})), {4}, {0, 0, 6, 6});
  eqx_test::check<double>(nn::hard_tanh(eqx::array({-3.0, -1.0, 0.5, 1.0, 2.0})), {5}, {-1, -1, 0.5, 1, 1});
  // The exact and the approximate GELU differ (torch references above check each).
  const double exact = values(nn::gelu(eqx::array({1.0}), false))[0], approx = values(nn::gelu(eqx::array({1.0})))[0];
  CHECK(exact == Approx(0.8413447460685429).epsilon(1e-14));  // 1 * Phi(1)
  CHECK(approx == Approx(0.8411919906082768).epsilon(1e-14));
}

TEST_CASE("nn::logsumexp with -inf entries: value, zero gradient there; extreme logits give no NaN", "[nn]") {
  // logsumexp([-inf, 0, log 3]) = log 4; gradient softmax = [0, 1/4, 3/4].
  const eqx::Array x = eqx::array({-inf, 0.0, std::log(3.0)});
  eqx_test::check<double>(nn::logsumexp(x), {}, {std::log(4.0)});
  eqx_test::check<double>(eqx::filter_grad([](const eqx::Array& v) { return nn::logsumexp(v); })(x), {3}, {0, 0.25, 0.75});
  eqx_test::check<double>(eqx::filter_grad([](const eqx::Array& v) { return eqx::sum(nn::log_softmax(v) * eqx::array({0.0, 1.0, 0.0})); })(x),
                          {3}, {0, 0.75, -0.75});
  // A slice of only -inf gives -inf; +inf gives +inf.
  eqx_test::check<double>(nn::logsumexp(eqx::array(std::vector<double>{-inf, -inf, 1.0, 2.0}, {2, 2}), 1), {2}, {-inf, 2 + std::log1p(std::exp(-1.0))});
  eqx_test::check<double>(nn::logsumexp(eqx::array({inf, 0.0})), {}, {inf});

  for (eqx::DType dt : {eqx::float32, eqx::float64}) {
    INFO("dtype " << eqx::dtype_name(dt));
    const eqx::Array big = eqx::astype(eqx::array({1e4, -1e4, 0.0, 1e4 - 1}), dt);
    const eqx::Array w = eqx::astype(eqx::array({1.0, 2.0, 3.0, 4.0}), dt);
    for (Activation fn : {Activation(nn::softmax), Activation(nn::log_softmax), Activation(nn::logsumexp),
                          Activation(nn::softplus), Activation(nn::log_sigmoid), Activation(nn::sigmoid),
                          Activation(nn::silu), Activation(nn::gelu), Activation(nn::elu), Activation(nn::selu)}) {
      CHECK(all_finite(fn(big)));
      CHECK(all_finite(grad_of(fn, big, w)));
    }
    std::vector<double> p = values(nn::softmax(big));
    const double e = std::exp(-1.0);
    CHECK(p[0] == Approx(1 / (1 + e)).epsilon(1e-6));
    CHECK(p[1] == 0);
    CHECK(p[3] == Approx(e / (1 + e)).epsilon(1e-6));
    CHECK(values(nn::logsumexp(big))[0] == Approx(1e4 + std::log1p(e)).epsilon(1e-7));
    CHECK(values(nn::softplus(big))[0] == 1e4);
    CHECK(values(nn::log_sigmoid(big))[1] == -1e4);
  }
}

TEST_CASE("nn::PReLU matches torch.nn.PReLU(1): forward and gradients incl. negative_slope", "[nn]") {
  for (auto [dt, rtol] : {std::pair{eqx::float64, 1e-10}, std::pair{eqx::float32, 1e-5}}) {
    INFO("dtype " << eqx::dtype_name(dt));
    nn::PReLU act = nn::PReLU::init({.dtype = dt});
    CHECK(act.negative_slope.shape() == eqx::Shape{});
    CHECK(act.negative_slope.dtype() == dt);
    CHECK(values(act.negative_slope)[0] == 0.25);
    act.negative_slope = eqx::astype(eqx::reshape(fixture("prelu", "negative_slope"), eqx::Shape{}), dt);
    const eqx::Array x = eqx::astype(fixture("prelu", "x"), dt), ct = eqx::astype(fixture("prelu", "ct"), dt);
    check_close(act(x), fixture("prelu", "y"), rtol, "y");
    auto loss = [](const std::pair<nn::PReLU, eqx::Array>& p, const eqx::Array& ct) { return eqx::sum(p.first(p.second) * ct); };
    auto [g, gx] = eqx::filter_grad(loss)(std::pair{act, x}, ct);
    check_close(gx, fixture("prelu", "grad_x"), rtol, "grad_x");
    check_close(g.negative_slope, eqx::reshape(fixture("prelu", "grad_negative_slope"), eqx::Shape{}), rtol,
                "grad_negative_slope");
  }
  nn::PReLU act = nn::PReLU::init({.init_alpha = 0.1});
  CHECK(act.negative_slope.dtype() == eqx::float32);
  eqx_test::check<float>(act(eqx::array({-2.f, 0.f, 3.f})), {3}, {-0.2f, 0.f, 3.f});
  CHECK(fmt::format("{}", act) == "PReLU(negative_slope=f32[])");
  // vmap and jit: the slope is shared by every example.
  const eqx::Array xs = eqx::array(std::vector<float>{-1.f, 2.f, -3.f, 4.f}, {2, 2});
  eqx_test::check<float>(eqx::filter_vmap(act)(xs), {2, 2}, {-0.1f, 2.f, -0.3f, 4.f});
  auto jitted = eqx::filter_jit([](const nn::PReLU& a, const eqx::Array& x) { return a(x); });
  eqx_test::check<float>(jitted(act, xs), {2, 2}, {-0.1f, 2.f, -0.3f, 4.f});
  // Equinox's leaves: negative_slope, one f32[] record.
  std::stringstream file;
  eqx::tree_serialise_leaves(file, act);
  std::stringstream copy(file.str());
  const eqx::Array rec = eqx::read_npy(copy);
  CHECK(rec.shape() == eqx::Shape{});
  CHECK(rec.dtype() == eqx::float32);
  CHECK(copy.peek() == std::char_traits<char>::eof());
  CHECK(eqx_test::message_of<eqx::DTypeError>([] { nn::PReLU::init({.dtype = eqx::int32}); }) ==
        "eqx::nn::PReLU: dtype int32 is not a floating dtype; parameters are float32 (the default) or float64");
}

TEST_CASE("nn activations are usable as eqx::Array (*)(const eqx::Array&) and compose with vmap and jit", "[nn]") {
  // Overloaded functions resolve to their one-argument form.
  const std::vector<Activation> pointers{nn::relu,       nn::relu6,       nn::sigmoid,   nn::gelu,     nn::silu,
                                         nn::swish,      nn::softplus,    nn::log_sigmoid, nn::leaky_relu, nn::elu,
                                         nn::celu,       nn::selu,        nn::hard_tanh, nn::logsumexp, nn::softmax,
                                         nn::log_softmax, nn::standardize, nn::identity};
  CHECK(pointers.size() == 18);
  const eqx::Array xs = eqx::array(std::vector<double>{0.5, -1.5, 2.0, 3.0, -0.25, 1.0}, {2, 3});
  for (Activation fn : pointers) {
    eqx::Array batched = eqx::filter_vmap([](const eqx::Array& r, Activation f) { return f(r); }, eqx::in_axes(0, eqx::none))(xs, fn);
    eqx::Array looped = eqx::stack({fn(eqx::take(xs, eqx::array(0), 0)), fn(eqx::take(xs, eqx::array(1), 0))});
    check_close(batched, looped, 1e-14, "vmap");
    auto jitted = eqx::filter_jit([](const eqx::Array& x, Activation f) { return f(x); });
    check_close(jitted(xs, fn), fn(xs), 1e-14, "jit");
  }
  check_close(nn::swish(xs), nn::silu(xs), 0, "swish is silu");
}

}  // namespace nn_activations_test
