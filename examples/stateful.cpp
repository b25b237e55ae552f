// Stateful layers: BatchNorm and SpectralNorm in one model, trained and then
// evaluated in inference mode (Equinox's docs/examples/stateful.ipynb).
//
// Some layers are called "stateful": besides their input they take a State
// (BatchNorm's running statistics, SpectralNorm's power-iteration vectors)
// and return an updated one. Nothing about this is special: the state is
// threaded in and out of every call, exactly like `x`. The model struct
// holds no mutable data, only StateIndexes (keys into the State), so it
// stays a plain pytree that filter_jit, filter_grad and filter_vmap handle
// like any other.
//
// What this example walks through, as the notebook does:
//   1. a model mixing stateful and plain layers, whose call threads `state`;
//   2. eqx::nn::make_with_state, which builds the model and splits off its
//      initial State;
//   3. a loss batched with filter_vmap: the data is mapped (in_axes 0), the
//      state is shared (eqx::none) and comes back unbatched (out_axes none);
//      the axis name "batch" is the one the BatchNorms average over;
//   4. filter_value_and_grad(..., has_aux) returning the new state as aux,
//      and an Optax optimiser (optim::adam) whose state is made from the
//      model's parameters only: the layers' State is not optimised, it is
//      threaded through the step beside the optimiser state. Gradient,
//      update and apply_updates are one filter_jit'd step;
//   5. inference: eqx::nn::inference_mode flips every `inference` flag, so
//      BatchNorm uses its running statistics and SpectralNorm freezes (u, v);
//      eqx::Partial binds the model and its state into one callable.
//
// Checks (non-zero exit if one fails): the training loss drops at least 50x;
// the first BatchNorm's running mean is the data's mean (its input is the
// same full batch at every step); inference leaves the state unchanged; and
// the test loss in inference mode (on new inputs) is at least 20x below the
// untrained model's training loss.

#include <cmath>
#include <cstdio>
#include <optional>
#include <tuple>
#include <utility>

#include <fmt/core.h>
#include <eqx/eqx.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
using eqx::Array;

// This model is a mish-mash of stateful and non-stateful layers for
// demonstration purposes, as in the notebook; it isn't doing anything clever.
struct Model {
  nn::BatchNorm norm1;
  nn::SpectralNorm<nn::Linear> spectral_linear;
  nn::BatchNorm norm2;
  nn::Linear linear1;
  nn::Linear linear2;

  static Model init(const eqx::random::Key& key) {
    auto keys = eqx::random::split_keys(key, 4);
    return {nn::BatchNorm::init(3, "batch"),
            nn::SpectralNorm<nn::Linear>::init(nn::Linear::init(3, 32, keys[0]), "weight", keys[1]),
            nn::BatchNorm::init(32, "batch"), nn::Linear::init(32, 32, keys[2]), nn::Linear::init(32, 3, keys[3])};
  }

  // One example x [3] -> [3], and the new state. Each stateful layer gets
  // the newest state and hands back its successor.
  std::pair<Array, nn::State> operator()(Array x, nn::State state) const {
    std::tie(x, state) = norm1(x, state);
    std::tie(x, state) = spectral_linear(x, state);
    x = nn::relu(x);
    std::tie(x, state) = norm2(x, state);
    x = nn::relu(linear1(x));
    return {linear2(x), state};
  }
};

// The data is batched, the state is not (just as the parameters are not):
// in_axes (0, none), out_axes (0, none). "batch" matches the axis_name the
// BatchNorms were built with: it tells them which vmapped axis to compute
// their statistics over.
std::pair<Array, nn::State> compute_loss(const Model& model, const nn::State& state, const Array& xs, const Array& ys) {
  auto batch_model = eqx::filter_vmap(model, eqx::in_axes(0, eqx::none), eqx::out_axes(0, eqx::none), std::nullopt,
                                      "batch");
  auto [pred_ys, new_state] = batch_model(xs, state);
  return {eqx::mean(eqx::square(pred_ys - ys)), new_state};
}

constexpr double learning_rate = 3e-3;
const auto optimiser = optim::adam(learning_rate);

// One full-batch Adam step, compiled once. has_aux: compute_loss returns
// (loss, state); the gradient is taken of the loss only, with respect to
// the model (the first argument), and the state comes back as aux. Two
// states go in and come out: the layers' (nn::State) and Adam's.
auto make_step = eqx::filter_jit([](const Model& model, const nn::State& state, const auto& opt_state, const Array& xs,
                                    const Array& ys) {
  auto [loss_and_state, grads] = eqx::filter_value_and_grad(compute_loss, eqx::has_aux)(model, state, xs, ys);
  auto [loss, new_state] = loss_and_state;
  auto [updates, new_opt_state] = optimiser.update(grads, opt_state, eqx::filter(model, eqx::is_inexact_array));
  return std::tuple{eqx::apply_updates(model, updates), new_state, new_opt_state, loss};
});

// Inference: no state update is wanted, so the returned state is dropped.
// As in the notebook, the inference model and its state are bound into one
// callable with eqx::Partial, a pytree: filter_jit traces their Arrays and
// filter_vmap shares them across the batch. A Partial binds the leading
// arguments, so `predict` takes the state before x. (filter_vmap still
// names the axis, but BatchNorm in inference mode never averages over it.)
Array predict(const Model& model, const nn::State& state, const Array& x) { return model(x, state).first; }

auto evaluate = eqx::filter_jit([](const auto& model, const Array& xs) {
  return eqx::filter_vmap(model, 0, 0, std::nullopt, "batch")(xs);
});

int main() {
  const int dataset_size = 256, steps = 300, test_dataset_size = 64;
  auto keys = eqx::random::split_keys(eqx::random::key(5678), 3);

  // make_with_state calls Model::init, then separates the model (the
  // parameters; each StateIndex's initial value deleted) from the State (the
  // initial values, keyed by each index's path, e.g. "Model.norm1.ema_state_index").
  auto [model, state] = nn::make_with_state(Model::init)(keys[0]);
  fmt::print("the State holds {} values:\n", state.size());
  for (const auto& entry : state.entries()) fmt::print("  {}\n", *entry.marker);

  // The target is sin(x) + 1, as in the notebook. The inputs are uniform in
  // [-2, 2] rather than normal, so that every test input lies inside the
  // range the model was trained on: a ReLU network extrapolates linearly
  // where sin does not, and one far-out normal sample would dominate the
  // test loss.
  const Array xs = eqx::random::uniform(keys[1], {dataset_size, 3}, eqx::float32, -2.0, 2.0);
  const Array ys = eqx::sin(xs) + 1.0f;
  const Array test_xs = eqx::random::uniform(keys[2], {test_dataset_size, 3}, eqx::float32, -2.0, 2.0);
  const Array test_ys = eqx::sin(test_xs) + 1.0f;

  // Adam's moments are made from the parameters, the model's Arrays: not
  // from the layers' State (make_with_state emptied every StateIndex).
  auto opt_state = optimiser.init(eqx::filter(model, eqx::is_inexact_array));

  float first_loss = 0, last_loss = 0;
  for (int step = 0; step < steps; ++step) {
    Array loss;
    std::tie(model, state, opt_state, loss) = make_step(model, state, opt_state, xs, ys);
    last_loss = loss.item<float>();
    if (step == 0) first_loss = last_loss;
    if (step % 50 == 0 || step == steps - 1) fmt::print("step {:3d}  train loss {:.5f}\n", step, last_loss);
  }
  fmt::print("train loss {:.5f} -> {:.5f} ({:.1f}x lower); make_step traced {} time(s)\n", first_loss, last_loss,
             first_loss / last_loss, eqx::debug::get_num_traces(make_step));

  // The state after training. norm1 sees the same full batch every step, so
  // its running statistics are that batch's (the ema of a constant).
  auto [running_mean, running_var] = state.get(*model.norm1.ema_state_index);
  const Array data_mean = eqx::mean(xs, eqx::Axes{0});
  const float mean_err = eqx::max(eqx::abs(running_mean - data_mean)).item<float>();
  const bool first_time = state.get(*model.norm1.ema_first_time_index).item<bool>();
  fmt::print("norm1 running mean {} (the data's: {}), first_time {}\n", running_mean, data_mean, first_time);
  auto [u, v] = state.get(model.spectral_linear.uv_index);
  const Array& w = model.spectral_linear.layer.weight;
  fmt::print("spectral_linear: sigma estimate u^T W v = {:.4f}\n", eqx::sum(u * eqx::matmul(w, v)).item<float>());

  // Remember to set the inference flag: BatchNorm then normalises with its
  // running statistics, SpectralNorm stops iterating. The state must come
  // back unchanged.
  const Model inference_model = nn::inference_mode(model);
  auto [leaves, def] = eqx::tree_flatten(state);  // a copy to compare with
  auto [one_y, state_after] = inference_model(eqx::take(test_xs, eqx::array(0), 0), state);
  const bool unchanged = eqx::tree_equal(state_after, def.unflatten(leaves));
  const Array pred_test_ys = evaluate(eqx::Partial(predict, inference_model, state_after), test_xs);
  const float test_loss = eqx::mean(eqx::square(pred_test_ys - test_ys)).item<float>();
  fmt::print("inference leaves the state unchanged: {}\n", unchanged);
  fmt::print("first test inputs  {}\n", eqx::slice(test_xs, 0, 0, 2));
  fmt::print("predictions        {}\n", eqx::slice(pred_test_ys, 0, 0, 2));
  fmt::print("targets sin(x) + 1 {}\n", eqx::slice(test_ys, 0, 0, 2));
  fmt::print("test loss (inference mode) {:.5f}: {:.1f}x below the untrained train loss\n", test_loss,
             first_loss / test_loss);

  int failures = 0;
  auto require = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "FAILED: %s\n", what);
      ++failures;
    }
  };
  require(last_loss * 50 <= first_loss, "the training loss dropped 50x");
  require(eqx::debug::get_num_traces(make_step) == 1, "make_step was traced once");
  require(mean_err < 1e-5f && !first_time, "norm1's running mean is the data's mean");
  require(unchanged, "inference leaves the state unchanged");
  require(test_loss * 20 <= first_loss, "the test loss in inference mode is 20x below the untrained loss");
  return failures == 0 ? 0 : 1;
}
