// eqx::nn::State, StateIndex, make_with_state, delete_init_state,
// inference_mode; BatchNorm in both modes against Equinox's formulas
// written out in NumPy and against torch.nn.BatchNorm1d (training outputs
// and gradients), SpectralNorm against torch, and Equinox's stateful
// example pattern (vmap with axis_name, grad with has_aux, jit, and the
// inference model bound with its State in an eqx::Partial).

#include <catch2/catch.hpp>

#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>

#include "check.hpp"
#include "nn/fixtures.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace nn_stateful_test {

namespace nn = eqx::nn;
using eqx::Array;
using eqx_test::check_close;
using eqx_test::fixture;
using eqx_test::message_of;

namespace {

/// A minimal stateful layer: adds a counter to x and increments it.
struct Counter {
  nn::StateIndex<Array> index;
  std::pair<Array, nn::State> operator()(const Array& x, const nn::State& state) const {
    Array c = state.get(index);
    return {x + c, state.set(index, c + 1)};
  }
};

struct Net {
  nn::Linear linear;
  Counter counter;
  static Net init(const eqx::random::Key& key) { return {nn::Linear::init(2, 2, key), {nn::state_index(eqx::array(0.f))}}; }
  std::pair<Array, nn::State> operator()(const Array& x, const nn::State& state) const { return counter(linear(x), state); }
};

/// The whole batch through a BatchNorm: vmap over axis "batch" with the state shared.
std::pair<Array, nn::State> run_batch(const nn::BatchNorm& bn, const Array& xs, const nn::State& state,
                                      std::optional<bool> inference = std::nullopt) {
  auto call = [inference](const nn::BatchNorm& layer, const Array& x, const nn::State& s) {
    return inference ? layer(x, s, *inference) : layer(x, s);
  };
  return eqx::filter_vmap(call, eqx::in_axes(eqx::none, 0, eqx::none), eqx::out_axes(0, eqx::none), std::nullopt,
                          "batch")(bn, xs, state);
}

std::pair<nn::BatchNorm, nn::State> make_bn(std::string_view c, const std::string& mode, eqx::DType dtype) {
  auto [bn, state] = nn::make_with_state([&] {
    return nn::BatchNorm::init(3, "batch", {.momentum = 0.9, .dtype = dtype, .mode = mode});
  })();
  bn.weight = eqx::astype(fixture(c, "weight"), dtype);
  bn.bias = eqx::astype(fixture(c, "bias"), dtype);
  return {bn, state};
}

void check_batch_norm(std::string_view c, const std::string& mode, eqx::DType dtype, double rtol) {
  auto [bn, state] = make_bn(c, mode, dtype);
  for (int i = 0; i < 3; ++i) {
    Array y;
    std::tie(y, state) = run_batch(bn, eqx::astype(fixture(c, "x" + std::to_string(i)), dtype), state);
    check_close(y, fixture(c, "y" + std::to_string(i)), rtol, "training call " + std::to_string(i));
  }
  if (mode == "ema") {
    auto [mean, var] = state.get(*bn.ema_state_index);
    check_close(mean, fixture(c, "running_mean"), rtol, "running mean");
    check_close(var, fixture(c, "running_var"), rtol, "running var");
    CHECK_FALSE(state.get(*bn.ema_first_time_index).item<bool>());
  } else {
    auto [mean, var] = state.get(*bn.batch_state_index);
    check_close(mean, fixture(c, "hidden_mean"), rtol, "hidden mean");
    check_close(var, fixture(c, "hidden_var"), rtol, "hidden var");
    CHECK(state.get(*bn.batch_counter).item<std::int32_t>() == 3);
  }
  // Inference: by the field (inference_mode) and by the per-call override; the state is unchanged.
  Array x_inf = eqx::astype(fixture(c, "x_inference"), dtype);
  auto [y_inf, state_after] = run_batch(nn::inference_mode(bn), x_inf, state);
  check_close(y_inf, fixture(c, "y_inference"), rtol, "inference");
  CHECK(eqx::tree_equal(state_after, state));
  check_close(run_batch(bn, x_inf, state, true).first, fixture(c, "y_inference"), rtol, "inference override");
}


/// Normalise (BatchNorm over the "batch" axis), then scale per channel.
struct Normalised {
  nn::BatchNorm norm;
  Array scale;
  static Normalised init() { return {nn::BatchNorm::init(2, "batch"), eqx::array({2.f, 3.f})}; }
  std::pair<Array, nn::State> operator()(const Array& x, const nn::State& state) const {
    auto [y, new_state] = norm(x, state);
    return {y * scale, new_state};
  }
};

/// The state is the last parameter of a stateful call; a Partial binds the
/// leading ones, so this puts the bound model and state in place.
Array predict(const Normalised& model, const nn::State& state, const Array& x) {
  return model(x, state).first;
}
}  // namespace

TEST_CASE("nn::make_with_state: markers from the class name and path, State get/set/superseded", "[nn][state]") {
  auto [model, state] = nn::make_with_state(Net::init)(eqx::random::key(0));
  CHECK(*model.counter.index.marker == "Net.counter.index");
  CHECK_FALSE(model.counter.index.init.has_value());
  REQUIRE(state.size() == 1);
  CHECK(*state.entries()[0].marker == "Net.counter.index");
  // Two builds give compatible states.
  auto [model2, state2] = nn::make_with_state(Net::init)(eqx::random::key(1));
  CHECK(eqx::TreeDef<nn::State>(state) == eqx::TreeDef<nn::State>(state2));

  const Array x = eqx::array({1.f, -1.f});
  auto [y1, s1] = model(x, state);
  eqx_test::check(y1, {2}, model.linear(x).to_vector<float>());
  auto [leaves, def] = eqx::tree_flatten(s1);  // a clone, before s1 is superseded
  auto [y2, s2] = model(x, s1);
  CHECK(s2.get(model.counter.index).item<float>() == 2.f);
  eqx_test::check(y2 - y1, {2}, std::vector<float>{1, 1});

  const std::string superseded = message_of<eqx::ValueError>([&] { model(x, s1); });
  CHECK(superseded ==
        "eqx::nn::State: cannot get a State that was superseded by State::set (a layer returned a new state, and this "
        "old one was used again, e.g. `auto [y, s2] = layer(x, s1); auto [z, s3] = layer(y, s1);`); use the newest "
        "state, or clone an old one with eqx::tree_flatten / unflatten if you mean it");
  CHECK(message_of<eqx::ValueError>([&] { eqx::tree_flatten(s1); }).starts_with("eqx::nn::State: cannot read a State"));
  // A clone through the tree functions is a new, usable State (as in Equinox).
  CHECK(def.unflatten(leaves).get(model.counter.index).item<float>() == 1.f);

  CHECK(message_of<eqx::ValueError>([&] { s2.set(model.counter.index, eqx::zeros({3})); }) ==
        "eqx::nn::State::set: the new value for 'Net.counter.index' is (f32[3]) but the old one is (f32[]); a state "
        "keeps its structure, shapes and dtypes (convert with eqx::astype, reshape or broadcast the new value)");
  CHECK(message_of<eqx::ValueError>([&] { nn::State again(model); }) ==
        "eqx::nn::State: the StateIndex at .counter.index has no initial value (it was deleted by make_with_state or "
        "delete_init_state); build the model and its state together with eqx::nn::make_with_state(make_model)(args...)");
  nn::StateIndex<Array> stranger = nn::state_index(eqx::array(0.f));
  CHECK(message_of<eqx::ValueError>([&] { s2.get(stranger); }).find(
            "no state for the StateIndex '<unnamed state ") != std::string::npos);
}

TEST_CASE("nn::State: a pytree that jits, serialises (Equinox's order) and prints", "[nn][state]") {
  auto [model, state] = nn::make_with_state(Net::init)(eqx::random::key(0));
  // The model writes nothing for its deleted initial state: just weight and bias.
  std::stringstream model_file;
  eqx::tree_serialise_leaves(model_file, model);
  std::stringstream copy(model_file.str());
  CHECK(eqx::read_npy(copy).shape() == eqx::Shape{2, 2});
  CHECK(eqx::read_npy(copy).shape() == eqx::Shape{2});
  CHECK(copy.peek() == std::char_traits<char>::eof());

  auto step = eqx::filter_jit(eqx::debug::assert_max_traces(
      [](const Net& m, const Array& x, const nn::State& s) { return m(x, s); }, 1, "step"));
  const Array x = eqx::array({0.5f, 2.f});
  nn::State s = state;
  for (int i = 0; i < 3; ++i) std::tie(std::ignore, s) = step(model, x, s);
  CHECK(s.get(model.counter.index).item<float>() == 3.f);

  std::stringstream file;
  eqx::tree_serialise_leaves(file, s);
  nn::State loaded = eqx::tree_deserialise_leaves(file, state);
  CHECK(loaded.get(model.counter.index).item<float>() == 3.f);
  CHECK(fmt::format("{}", state) == "State(\n  entries=[Entry(marker='Net.counter.index', def=Array, value=[f32[]])]\n)");
}

TEST_CASE("nn::inference_mode sets every `inference` field, nested", "[nn][state]") {
  struct Block {
    nn::Dropout drop;
    std::vector<nn::Dropout> more;
    nn::BatchNorm bn;
  };
  Block b{nn::Dropout::init(0.5), {nn::Dropout::init(0.1), nn::Dropout::init(0.2)}, nn::BatchNorm::init(2, "batch")};
  Block inf = nn::inference_mode(b);
  CHECK(inf.drop.inference);
  CHECK(inf.more[0].inference);
  CHECK(inf.more[1].inference);
  CHECK(inf.bn.inference);
  CHECK(inf.more[1].p == 0.2);
  Block back = nn::inference_mode(inf, false);
  CHECK_FALSE(back.drop.inference);
  CHECK_FALSE(back.bn.inference);
}

TEST_CASE("nn::BatchNorm \"ema\" mode: three training calls then inference, against Equinox's formulas", "[nn][state]") {
  check_batch_norm("batch_norm_ema", "ema", eqx::float64, 1e-10);
  check_batch_norm("batch_norm_ema", "ema", eqx::float32, 1e-5);
}

TEST_CASE("nn::BatchNorm \"batch\" mode: training, debiased inference, gradients against torch", "[nn][state]") {
  check_batch_norm("batch_norm_batch", "batch", eqx::float64, 1e-10);
  check_batch_norm("batch_norm_batch", "batch", eqx::float32, 1e-5);
  // Gradients of sum(y * ct) w.r.t. the batch, weight and bias: torch.nn.BatchNorm1d(3) in training mode
  // (weight, bias [C]; the same biased batch statistics), through pmean's rules.
  const std::string c = "batch_norm_batch";
  for (auto [dtype, rtol] : {std::pair{eqx::float64, 1e-10}, std::pair{eqx::float32, 1e-5}}) {
    auto [bn, state] = make_bn(c, "batch", dtype);
    auto loss = [](const std::pair<nn::BatchNorm, Array>& p, const nn::State& s, const Array& ct) {
      auto [y, s2] = run_batch(p.first, p.second, s);
      return std::pair{eqx::sum(y * ct), s2};
    };
    auto [value_and_state, grads] = eqx::filter_value_and_grad(loss, eqx::has_aux)(
        std::pair{bn, eqx::astype(fixture(c, "x0"), dtype)}, state, eqx::astype(fixture(c, "ct"), dtype));
    check_close(grads.second, fixture(c, "grad_x"), rtol, "grad_x");
    check_close(grads.first.weight, fixture(c, "grad_weight"), rtol, "grad_weight");
    check_close(grads.first.bias, fixture(c, "grad_bias"), rtol, "grad_bias");
    CHECK(value_and_state.second.get(*bn.batch_counter).item<std::int32_t>() == 1);
  }
}

TEST_CASE("nn::BatchNorm: Equinox's fields and state layout, serialisation round trip, misuse", "[nn][state]") {
  auto [bn, state] = nn::make_with_state([] { return nn::BatchNorm::init(3, "batch"); })();
  CHECK(*bn.ema_state_index->marker == "BatchNorm.ema_state_index");
  CHECK_FALSE(bn.batch_counter.has_value());
  CHECK(fmt::format("{}", bn) ==
        "BatchNorm(\n  weight=f32[3],\n  bias=f32[3],\n  ema_first_time_index=StateIndex(\n"
        "    marker='BatchNorm.ema_first_time_index',\n    init=None\n  ),\n"
        "  ema_state_index=StateIndex(marker='BatchNorm.ema_state_index', init=None),\n  batch_counter=None,\n"
        "  batch_state_index=None,\n  axis_name='batch',\n  inference=False,\n  input_size=3,\n  eps=1e-05,\n"
        "  channelwise_affine=True,\n  momentum=0.99,\n  mode='ema'\n)");
  // Equinox's records: the model writes weight, bias, inference (|b1); its state writes bool[], f32[3], f32[3].
  std::stringstream model_file, state_file;
  eqx::tree_serialise_leaves(model_file, bn);
  eqx::tree_serialise_leaves(state_file, state);
  std::vector<std::string> records;
  for (std::stringstream* f : {&model_file, &state_file}) {
    std::stringstream in(f->str());
    while (in.peek() != std::char_traits<char>::eof()) {
      Array a = eqx::read_npy(in);
      records.push_back(std::string(eqx::short_name(a.dtype())) + a.shape().str());
    }
  }
  CHECK(records == std::vector<std::string>{"f32[3]", "f32[3]", "bool[]", "bool[]", "f32[3]", "f32[3]"});

  // After training the state round-trips bit-exactly and loads into a fresh build.
  Array xs = eqx::random::normal(eqx::random::key(4), {5, 3, 2});
  nn::State trained = state;
  for (int i = 0; i < 2; ++i) std::tie(std::ignore, trained) = run_batch(bn, xs * float(i + 1), trained);
  std::stringstream file;
  eqx::tree_serialise_leaves(file, trained);
  auto [fresh_bn, fresh_state] = nn::make_with_state([] { return nn::BatchNorm::init(3, "batch"); })();
  nn::State loaded = eqx::tree_deserialise_leaves(file, fresh_state);
  CHECK(eqx::tree_equal(loaded, trained));
  check_close(run_batch(fresh_bn, xs, loaded, true).first, run_batch(bn, xs, trained, true).first, 0, "same outputs");

  CHECK(message_of<eqx::ShapeError>([&] { run_batch(bn, eqx::zeros({5, 4, 2}), state); }) ==
        "eqx::nn::BatchNorm: expected the input to have 3 channels (axis 0) but got shape [4,2]");
  CHECK(message_of<eqx::ValueError>([&] {
          auto one = eqx::take(xs, eqx::array(0), 0);
          bn(one, state);
        }) == "eqx::pmean: no filter_vmap with axis_name \"batch\" is running; call it inside eqx::filter_vmap(f, "
              "in_axes, out_axes, std::nullopt, \"batch\")");
  CHECK(message_of<eqx::ValueError>([] { nn::BatchNorm::init(3, "batch", {.mode = "running"}); }) ==
        "eqx::nn::BatchNorm: mode must be \"ema\" or \"batch\", got \"running\"");
}

TEST_CASE("nn::SpectralNorm against torch: one power iteration, W / sigma, gradients", "[nn][state]") {
  const std::string c = "spectral_norm";
  for (auto [dtype, rtol] : {std::pair{eqx::float64, 1e-10}, std::pair{eqx::float32, 1e-5}}) {
    nn::Linear lin = nn::Linear::init(4, 3, eqx::random::key(0), {.dtype = dtype});
    lin.weight = eqx::astype(fixture(c, "weight"), dtype);
    lin.bias = eqx::astype(fixture(c, "bias"), dtype);
    auto [sn, state] = nn::make_with_state([&](const eqx::random::Key& key) {
      return nn::SpectralNorm<nn::Linear>::init(lin, "weight", key);
    })(eqx::random::key(1));
    // 15 power iterations at init: sigma close to the top singular value (NumPy's SVD).
    auto [u_init, v_init] = state.get(sn.uv_index);
    const double sigma = eqx::astype(eqx::sum(u_init * eqx::matmul(lin.weight, v_init)), eqx::float64).item<double>();
    CHECK(sigma == Approx(fixture(c, "top_singular_value").to_vector<double>()[0]).epsilon(1e-3));
    // From torch's starting (u, v): the same output, gradients and new (u, v). Each call supersedes the
    // State it is given, so every use starts from a fresh clone (flatten / unflatten, as Equinox's docs say).
    auto [start_leaves, start_def] = eqx::tree_flatten(
        state.set(sn.uv_index, std::pair{eqx::astype(fixture(c, "u0"), dtype), eqx::astype(fixture(c, "v0"), dtype)}));
    Array x = eqx::astype(fixture(c, "x"), dtype), ct = eqx::astype(fixture(c, "ct"), dtype);
    auto [y, new_state] = sn(x, start_def.unflatten(start_leaves));
    check_close(y, fixture(c, "y"), rtol, "y");
    auto [u1, v1] = new_state.get(sn.uv_index);
    check_close(u1, fixture(c, "u1"), rtol, "u1");
    check_close(v1, fixture(c, "v1"), rtol, "v1");
    auto loss = [](const std::pair<nn::SpectralNorm<nn::Linear>, Array>& p, const nn::State& s, const Array& ct) {
      return eqx::sum(p.first(p.second, s).first * ct);
    };
    auto grads = eqx::filter_grad(loss)(std::pair{sn, x}, start_def.unflatten(start_leaves), ct);
    check_close(grads.second, fixture(c, "grad_x"), rtol, "grad_x");
    check_close(grads.first.layer.weight, fixture(c, "grad_weight"), rtol, "grad_weight");
    check_close(grads.first.layer.bias, fixture(c, "grad_bias"), rtol, "grad_bias");
    // Inference: (u, v) fixed, the state unchanged.
    auto [y_inf, same_state] = nn::inference_mode(sn)(x, new_state);
    CHECK(eqx::tree_equal(same_state, new_state));
  }
  nn::Linear lin = nn::Linear::init(4, 3, eqx::random::key(0));
  CHECK(message_of<eqx::ValueError>([&] { nn::SpectralNorm<nn::Linear>::init(lin, "kernel", eqx::random::key(1)); }) ==
        "eqx::nn::SpectralNorm: Linear has no Array field named 'kernel'; its Array fields are: weight, bias");
  CHECK(message_of<eqx::ShapeError>([&] { nn::SpectralNorm<nn::Linear>::init(lin, "bias", eqx::random::key(1)); }) ==
        "eqx::nn::SpectralNorm: the weight 'bias' must have at least 2 axes, got [3]");
}

TEST_CASE("nn layers inside eqx::scan: the same values and gradients as a loop", "[nn]") {
  // Per step: x [2, 8] -> Conv1d -> MaxPool1d -> ravel -> Linear -> RMSNorm -> PReLU -> GRUCell(., h).
  struct Step {
    nn::Conv1d conv;
    nn::MaxPool1d pool;
    nn::Linear lin;
    nn::RMSNorm norm;
    nn::PReLU act;
    nn::GRUCell cell;
    Array operator()(const Array& h, const Array& x) const {
      return cell(act(norm(lin(eqx::ravel(pool(conv(x)))))), h);
    }
  };
  auto k = eqx::random::split_keys(eqx::random::key(5), 4);
  const Step step{nn::Conv1d::init(2, 3, 3, k[0]), nn::MaxPool1d::init(2), nn::Linear::init(15, 4, k[1]),
                  nn::RMSNorm::init(4), nn::PReLU::init(), nn::GRUCell::init(4, 4, k[2])};
  const Array xs = eqx::random::normal(k[3], {6, 2, 8});
  const Array h0 = eqx::zeros({4});
  auto scanned = [&xs, &h0](const Step& s) {
    auto [h, hs] = eqx::scan([&s](const Array& h, const Array& x) { return std::pair{s(h, x), h}; }, h0, xs);
    return eqx::sum(h * h) + eqx::sum(hs);
  };
  auto looped = [&xs, &h0](const Step& s) {
    Array h = h0, total = eqx::zeros({});
    for (int t = 0; t < 6; ++t) {
      total = total + eqx::sum(h);
      h = s(h, eqx::take(xs, eqx::array(t), 0));
    }
    return eqx::sum(h * h) + total;
  };
  check_close(scanned(step), looped(step), 1e-6, "value");
  Step g_scan = eqx::filter_grad(scanned)(step), g_loop = eqx::filter_grad(looped)(step);
  check_close(g_scan.conv.weight, g_loop.conv.weight, 1e-5, "conv weight");
  check_close(g_scan.lin.weight, g_loop.lin.weight, 1e-5, "linear weight");
  check_close(g_scan.norm.weight, g_loop.norm.weight, 1e-5, "norm weight");
  check_close(g_scan.act.negative_slope, g_loop.act.negative_slope, 1e-5, "prelu slope");
  check_close(g_scan.cell.weight_hh, g_loop.cell.weight_hh, 1e-5, "gru weight_hh");
  // And jitted: one trace, same value.
  auto jitted = eqx::filter_jit(eqx::debug::assert_max_traces(scanned, 1, "scanned"));
  check_close(jitted(step), looped(step), 1e-6, "jit");
  check_close(jitted(step), looped(step), 1e-6, "jit again");
}

TEST_CASE("eqx::Partial binds a stateful model and its State for inference under vmap and jit", "[nn][state][partial]") {
  // Equinox's stateful example: train a step (the State gets the batch statistics),
  // then bind the inference model and its State and use the Partial as the model.
  auto [model, state] = nn::make_with_state(Normalised::init)();
  const Array xs = eqx::array(std::vector<float>{1, 2, 3, 6}, {2, 2});  // channel means [2, 4], variances [1, 4]
  auto train = eqx::filter_vmap(model, eqx::in_axes(0, eqx::none), eqx::out_axes(0, eqx::none), std::nullopt, "batch");
  state = train(xs, state).second;
  eqx::Partial evaluate(predict, nn::inference_mode(model), state);
  // (x - mean) / sqrt(var + 1e-5) * scale, per channel.
  const std::vector<float> want{-2 / std::sqrt(1.00001f), -3 * 2 / std::sqrt(4.00001f), 2 / std::sqrt(1.00001f),
                                3 * 2 / std::sqrt(4.00001f)};
  eqx_test::check(eqx::filter_vmap(evaluate)(xs), {2, 2}, want);
  auto jitted = eqx::filter_jit([](const auto& fn, const Array& batch) { return eqx::filter_vmap(fn)(batch); });
  eqx_test::check(jitted(evaluate, xs), {2, 2}, want);
  // A later State (statistics of another batch) through the same plan.
  const Array shifted = xs + 10.0f;
  nn::State later = train(shifted, state).second;
  const Array once_more = jitted(eqx::Partial(predict, nn::inference_mode(model), later), shifted);
  CHECK(eqx::debug::get_num_traces(jitted) == 1);
  for (std::int64_t i = 0; i < 2; ++i)
    eqx_test::check(eqx::take(once_more, eqx::array(static_cast<std::int32_t>(i)), 0), {2},
                    predict(nn::inference_mode(model), later, eqx::take(shifted, eqx::array(static_cast<std::int32_t>(i)), 0))
                        .to_vector<float>());
  // The bound State's Arrays are leaves of the Partial.
  CHECK(eqx::tree_leaves(evaluate).size() == eqx::tree_leaves(nn::inference_mode(model)).size() +
                                                 eqx::tree_leaves(state).size());
}

}  // namespace nn_stateful_test
