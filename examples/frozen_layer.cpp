// Freezing parameters: train only the last layer of an MLP (Equinox's
// docs/examples/frozen_layer.ipynb).
//
// The Equinox way needs nothing but pytree tools:
//   1. a model: an nn::MLP 1 -> 8 -> 1;
//   2. a `filter_spec`: a tree of the model's structure with `false` at
//      every leaf (tree_map), then `true` at the last layer's weight and bias
//      (tree_at). A leaf of the spec is a bool scalar Array;
//   3. a step that splits the model with eqx::partition into `diff_model`
//      (the last layer's Arrays, None elsewhere) and `static_model` (the
//      rest), differentiates the loss with respect to diff_model only, and
//      puts the model back together with eqx::combine inside the loss. The
//      gradient is None outside the last layer, so optim::sgd's update is
//      None there and apply_updates leaves those leaves alone.
//
// (examples/optim_frozen_layer.cpp freezes a part the Optax way instead:
// optim::multi_transform with set_to_zero for the frozen labels. Here the
// frozen part never gets a gradient at all.)
//
// The settings are the notebook's, and eqx::random reproduces JAX's keys:
// the printed initial parameters are the notebook's, and the trained last
// layer agrees with its printout to about three digits.
//
// The filter_spec is closed over by the jitted step, as the notebook's is a
// global: it is concrete when partition reads it.
//
// Run: build/<dir>/examples/frozen_layer
//
// Checks (non-zero exit if one fails): every leaf outside the last layer is
// bit-for-bit unchanged after training, the last layer's weight and bias
// changed, and the loss dropped at least 20x.

#include <cstdint>
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>

#include <fmt/core.h>
#include <eqx/eqx.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
using eqx::Array;

// Toy data: y = 5x - 2.
std::pair<Array, Array> get_data(int dataset_size, const eqx::random::Key& key) {
  const Array x = eqx::random::normal(key, {dataset_size, 1});
  return {x, 5.0f * x - 2.0f};
}

/// Toy dataloader: a new permutation every epoch, cut into full batches.
class Dataloader {
 public:
  Dataloader(Array xs, Array ys, int batch_size, eqx::random::Key key)
      : xs_(std::move(xs)), ys_(std::move(ys)), batch_size_(batch_size), key_(std::move(key)) {}

  std::pair<Array, Array> next() {
    if (!perm_.has_value() || start_ + batch_size_ > xs_.shape()[0]) {
      auto keys = eqx::random::split_keys(key_, 2);
      key_ = keys[0];
      perm_ = eqx::random::permutation(keys[1], xs_.shape()[0]);
      start_ = 0;
    }
    const Array batch = eqx::slice(perm_, 0, start_, start_ + batch_size_);
    start_ += batch_size_;
    return {eqx::take(xs_, batch, 0), eqx::take(ys_, batch, 0)};
  }

 private:
  Array xs_, ys_;
  std::int64_t batch_size_;
  eqx::random::Key key_;
  Array perm_;
  std::int64_t start_ = 0;
};

/// The loss of the recombined model: only diff_model is differentiated.
Array loss(const nn::MLP& diff_model, const nn::MLP& static_model, const Array& x, const Array& y) {
  const nn::MLP model = eqx::combine(diff_model, static_model);
  const Array pred_y = eqx::filter_vmap(model)(x);
  return eqx::mean(eqx::square(y - pred_y));
}

int main() {
  const int dataset_size = 10000, batch_size = 256, steps = 1000, width_size = 8, depth = 1;
  const double learning_rate = 3e-3;
  auto keys = eqx::random::split_keys(eqx::random::key(5678), 3);
  const auto [xs, ys] = get_data(dataset_size, keys[0]);
  Dataloader data_iter(xs, ys, batch_size, keys[1]);

  // Step 1: the model.
  nn::MLP model = nn::MLP::init(1, 1, width_size, depth, keys[2]);

  // Step 2: the filter_spec, false everywhere but the last layer.
  nn::MLP filter_spec = eqx::tree_map([](const Array&) { return eqx::array(false); }, model);
  filter_spec = eqx::tree_at([](nn::MLP& tree) { return std::tie(tree.layers.back().weight, tree.layers.back().bias); },
                             filter_spec, std::tuple{eqx::array(true), eqx::array(true)});

  // Step 3: the step. Gradients of diff_model only; sgd needs no params.
  const auto optimiser = optim::sgd(learning_rate);
  auto make_step = eqx::filter_jit(
      [filter_spec, optimiser](const nn::MLP& model, const Array& x, const Array& y, const auto& opt_state) {
        auto [diff_model, static_model] = eqx::partition(model, filter_spec);
        auto [value, grads] = eqx::filter_value_and_grad(loss)(diff_model, static_model, x, y);
        auto [updates, new_opt_state] = optimiser.update(grads, opt_state);
        return std::tuple{eqx::apply_updates(model, updates), new_opt_state, value};
      });

  // Train in exactly the usual way, keeping the original model to compare.
  const nn::MLP original_model = model;
  auto opt_state = optimiser.init(model);
  auto full_data_loss = [&](const nn::MLP& m) {
    return eqx::mean(eqx::square(ys - eqx::filter_vmap(m)(xs))).item<float>();
  };
  const float initial_loss = full_data_loss(model);
  fmt::print("full-data loss at initialisation: {:.5f}\n", initial_loss);
  for (int step = 0; step < steps; ++step) {
    auto [x, y] = data_iter.next();
    Array value;
    std::tie(model, opt_state, value) = make_step(model, x, y, opt_state);
    if (step % 200 == 0 || step == steps - 1) fmt::print("step {:4d}  batch loss {:.5f}\n", step, value.item<float>());
  }
  const float final_loss = full_data_loss(model);
  fmt::print("full-data loss after training: {:.5f} ({:.1f}x lower)\n\n", final_loss, initial_loss / final_loss);

  fmt::print("Parameters of first layer at initialisation:\n{}\n{}\n", original_model.layers[0].weight,
             original_model.layers[0].bias);
  fmt::print("Parameters of first layer at end of training:\n{}\n{}\n\n", model.layers[0].weight, model.layers[0].bias);
  fmt::print("Parameters of last layer at initialisation:\n{}\n{}\n", original_model.layers.back().weight,
             original_model.layers.back().bias);
  fmt::print("Parameters of last layer at end of training:\n{}\n{}\n\n", model.layers.back().weight,
             model.layers.back().bias);

  // The same partition splits the models before and after training: the
  // frozen halves must be identical, the trained halves must differ.
  const auto [trained_before, frozen_before] = eqx::partition(original_model, filter_spec);
  const auto [trained_after, frozen_after] = eqx::partition(model, filter_spec);
  bool ok = true;
  auto check = [&](bool cond, const std::string& what) {
    fmt::print("{} {}\n", cond ? "ok  " : "FAIL", what);
    ok = ok && cond;
  };
  check(eqx::tree_equal(frozen_before, frozen_after), "every leaf outside the last layer is bit-for-bit unchanged");
  check(!eqx::tree_equal(original_model.layers.back().weight, model.layers.back().weight) &&
            !eqx::tree_equal(original_model.layers.back().bias, model.layers.back().bias),
        "the last layer's weight and bias were trained");
  check(final_loss * 20 <= initial_loss, "the loss dropped at least 20x");
  return ok ? 0 : 1;
}
