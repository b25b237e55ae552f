// An RNN trained with eqx::scan: a GRU learns to predict the next value of
// sine waves of random frequency and phase.
//
// The recurrence is one `scan` equation however long the sequence (the
// Equinox FAQ's "my model is slow to compile" is about unrolled loops);
// backpropagation through time is scan's VJP: a forward scan that stores
// what the backward pass needs per step, and a reverse scan. The model is
// written for one sequence (an nn::GRUCell stepped by scan, an nn::Linear
// readout to a scalar per step) and batched with filter_vmap; the whole
// training step (gradient, optim::sgd's update, apply_updates) is compiled
// once with filter_jit. Checks (non-zero exit if one fails): the loss
// drops at least 10x, and the model traces to as many equations on 500
// steps as on 20.
//
// Run: build/<dir>/examples/rnn_scan

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <tuple>
#include <utility>

#include <fmt/core.h>
#include <eqx/eqx.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
using eqx::Array;

/// A GRU over a sequence [T, 1], then a linear readout of every step's
/// hidden state: [T] predictions of the next value.
struct Rnn {
  nn::GRUCell cell;
  nn::Linear readout;  // hidden -> nn::scalar: one number per step

  static Rnn init(int hidden_size, const eqx::random::Key& key) {
    auto keys = eqx::random::split_keys(key, 2);
    return {nn::GRUCell::init(1, hidden_size, keys[0]), nn::Linear::init(hidden_size, nn::scalar, keys[1])};
  }

  Array operator()(const Array& xs) const {
    const Array h0 = eqx::zeros({*cell.hidden_size});
    auto step = [&](const Array& h, const Array& x) {
      Array h_next = cell(x, h);  // Equinox's order: input, then state
      return std::pair{h_next, readout(h_next)};
    };
    return eqx::scan(step, h0, xs).second;
  }
};

/// Mean squared error of next-value predictions on a batch of sequences [B, T + 1].
Array loss(const Rnn& model, const Array& waves) {
  const std::int64_t T = waves.shape()[1] - 1;
  const Array inputs = eqx::reshape(eqx::slice(waves, 1, 0, T), {waves.shape()[0], T, 1});
  const Array targets = eqx::slice(waves, 1, 1, T + 1);
  const Array preds = eqx::filter_vmap(model)(inputs);  // [B, T]
  return eqx::mean((preds - targets) * (preds - targets));
}

/// Sine waves sin(w t + phase), w in [0.2, 0.6], sampled at t = 0..T.
Array sine_batch(const eqx::random::Key& key, int batch, int T) {
  auto keys = eqx::random::split_keys(key, 2);
  const Array w = eqx::random::uniform(keys[0], {batch, 1}, eqx::float32, 0.2, 0.6);
  const Array phase = eqx::random::uniform(keys[1], {batch, 1}, eqx::float32, 0.0, 6.2831853);
  const Array t = eqx::astype(eqx::arange(T + 1), eqx::float32);
  return eqx::sin(w * t + phase);
}

int main() {
  auto keys = eqx::random::split_keys(eqx::random::key(42), 2);
  Rnn model = Rnn::init(16, keys[0]);
  const auto optimiser = optim::sgd(0.5);
  auto opt_state = optimiser.init(model);
  auto train_step = eqx::filter_jit([optimiser](const Rnn& m, const auto& state, const Array& waves) {
    auto [value, grads] = eqx::filter_value_and_grad(loss)(m, waves);
    auto [updates, new_state] = optimiser.update(grads, state);
    return std::tuple{eqx::apply_updates(m, updates), new_state, value};
  });

  // The recurrence traces to one scan equation, whatever the length.
  const std::size_t eqns_20 = eqx::filter_make_jaxpr(model)(eqx::zeros({20, 1})).graph.equations.size();
  const std::size_t eqns_500 = eqx::filter_make_jaxpr(model)(eqx::zeros({500, 1})).graph.equations.size();
  fmt::print("the model traces to {} equations on 20 steps, {} on 500\n", eqns_20, eqns_500);

  const Array eval_waves = sine_batch(eqx::random::key(7), 64, 20);
  const float first = loss(model, eval_waves).item<float>();
  fmt::print("step    0  eval loss {:.5f}\n", first);
  eqx::random::Key data_key = keys[1];
  for (int step = 1; step <= 400; ++step) {
    auto split = eqx::random::split_keys(data_key, 2);
    data_key = split[0];
    Array value;
    std::tie(model, opt_state, value) = train_step(model, opt_state, sine_batch(split[1], 32, 20));
    if (step % 100 == 0) fmt::print("step {:4d}  train loss {:.5f}\n", step, value.item<float>());
  }
  const float last = loss(model, eval_waves).item<float>();
  fmt::print("final eval loss {:.5f} ({:.1f}x lower); traced {} time(s)\n", last, first / last,
             eqx::debug::get_num_traces(train_step));
  int failures = 0;
  auto require = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "FAILED: %s\n", what);
      ++failures;
    }
  };
  require(last * 10.0f <= first, "the eval loss dropped at least 10x");
  require(eqns_20 == eqns_500, "the traced graph does not grow with the sequence length");
  return failures == 0 ? 0 : 1;
}
