// Freezing part of a model with eqx::optim::multi_transform (Optax's
// frozen-layer pattern): a pretrained encoder is kept fixed while a new
// head is trained with Adam, all in one jitted step.
//
// multi_transform gives each labelled part of the params its own
// optimiser. The labels come from a function of each leaf's path: leaves
// under `.encoder` get "frozen" (optim::set_to_zero: a zero update), the
// others "train" (optim::adam). The optimiser state holds Adam's moments
// for the head only: the frozen part's state is None, so freezing costs no
// memory. (optim::masked(optim::set_to_zero(), mask) inside a chain does
// the same with a mask.)
//
// The task: the encoder is an MLP with fixed random weights (a stand-in
// for a pretrained feature extractor); the head learns to regress
// y = sum(x) from the encoder's features.
//
// Checks (non-zero exit if one fails): every encoder weight is bit-for-bit
// unchanged after training, the head changed, the Adam state has moments
// for the head and None for the encoder, the step traced once, and the
// loss dropped at least 10x.

#include <cstddef>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/core.h>
#include <eqx/eqx.hpp>
#include <eqx/optim.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
using eqx::Array;

struct Model {
  nn::MLP encoder;  // pretrained: frozen
  nn::Linear head;  // new: trained

  Array operator()(const Array& x) const { return head(encoder(x)); }
};

Array loss(const Model& model, const Array& xs, const Array& ys) {
  const Array pred = eqx::filter_vmap([&](const Array& x) { return model(x); })(xs);
  return eqx::mean(eqx::square(pred - ys));
}

int main() {
  auto keys = eqx::random::split_keys(eqx::random::key(0), 3);
  Model model{nn::MLP::init(4, 16, 32, 1, keys[0], {.activation = eqx::tanh}), nn::Linear::init(16, 1, keys[1])};
  const Array xs = eqx::random::normal(keys[2], {64, 4});
  const Array ys = eqx::sum(xs, eqx::Axes{1}, true);  // [64, 1]

  auto opt = optim::multi_transform(
      std::tuple{optim::labelled("train", optim::adam(3e-2)), optim::labelled("frozen", optim::set_to_zero())},
      [](const eqx::TreePath& path, const Array&) {
        return path.str().starts_with(".encoder") ? "frozen" : "train";
      });
  auto params = eqx::filter(model, eqx::is_inexact_array);
  auto opt_state = opt.init(params);
  using State = decltype(opt_state);

  auto step = eqx::filter_jit(eqx::debug::assert_max_traces(
      [opt](const Model& m, const State& s, const Array& x, const Array& y) {
        auto [value, grads] = eqx::filter_value_and_grad(loss)(m, x, y);
        auto [updates, next] = opt.update(grads, s, eqx::filter(m, eqx::is_inexact_array));
        return std::tuple{eqx::apply_updates(m, updates), next, value};
      },
      1, "train_step"));

  const Model before = model;
  float first = 0, last = 0;
  for (int i = 0; i < 300; ++i) {
    Array value;
    std::tie(model, opt_state, value) = step(model, opt_state, xs, ys);
    if (i == 0) first = value.item<float>();
    last = value.item<float>();
    if (i % 50 == 0) fmt::print("step {:3d}  loss {:.5f}\n", i, last);
  }
  fmt::print("loss {:.5f} -> {:.5f} ({:.0f}x lower)\n", first, last, first / last);

  bool ok = true;
  auto check = [&](bool cond, const std::string& what) {
    fmt::print("{} {}\n", cond ? "ok  " : "FAIL", what);
    ok = ok && cond;
  };
  bool encoder_same = true;
  for (std::size_t i = 0; i < model.encoder.layers.size(); ++i) {
    encoder_same = encoder_same && model.encoder.layers[i].weight.to_vector<float>() ==
                                       before.encoder.layers[i].weight.to_vector<float>();
    encoder_same = encoder_same && model.encoder.layers[i].bias.to_vector<float>() ==
                                       before.encoder.layers[i].bias.to_vector<float>();
  }
  check(encoder_same, "the encoder's weights and biases are bit-for-bit unchanged");
  check(model.head.weight.to_vector<float>() != before.head.weight.to_vector<float>(), "the head was trained");
  const auto& adam_state = std::get<0>(std::get<0>(opt_state.inner_states).inner_state);
  check(adam_state.mu.head.weight.has_value() && !adam_state.mu.encoder.layers[0].weight.has_value(),
        "Adam keeps moments for the head only (None for the frozen encoder)");
  check(eqx::debug::get_num_traces(step) == 1, "the jitted step traced once");
  check(last * 10 < first, "the loss dropped at least 10x");
  return ok ? 0 : 1;
}
