// An RNN trained with eqx::scan: a GRU learns to predict the next value of
// sine waves of random frequency and phase.
//
// The recurrence is one `scan` equation however long the sequence (the
// Equinox FAQ's "my model is slow to compile" is about unrolled loops);
// backpropagation through time is scan's VJP: a forward scan that stores
// what the backward pass needs per step, and a reverse scan. The model is
// written for one sequence and batched with filter_vmap; the whole training
// step is compiled once with filter_jit. The loss must drop at least 10x.
//
// Run: build/<dir>/examples/rnn_scan

#include <cmath>
#include <cstdio>
#include <utility>

#include <fmt/core.h>
#include <eqx/eqx.hpp>

using eqx::Array;

/// A GRU cell: h' = (1 - z) n + z h with reset r, update z and candidate n.
struct GruCell {
  Array w_ih, w_hh, bias;  // [3H, I], [3H, H], [3H]

  static GruCell init(int in, int hidden, const eqx::random::Key& key) {
    auto keys = eqx::random::split_keys(key, 3);
    const double bound = 1.0 / std::sqrt(hidden);
    return {eqx::random::uniform(keys[0], {3 * hidden, in}, eqx::float32, -bound, bound),
            eqx::random::uniform(keys[1], {3 * hidden, hidden}, eqx::float32, -bound, bound),
            eqx::random::uniform(keys[2], {3 * hidden}, eqx::float32, -bound, bound)};
  }
  Array operator()(const Array& h, const Array& x) const {
    const std::int64_t H = h.shape()[0];
    const Array gi = eqx::matmul(w_ih, x) + bias, gh = eqx::matmul(w_hh, h);
    auto gate = [&](const Array& a, std::int64_t k) { return eqx::slice(a, 0, k * H, (k + 1) * H); };
    const Array r = eqx::sigmoid(gate(gi, 0) + gate(gh, 0));
    const Array z = eqx::sigmoid(gate(gi, 1) + gate(gh, 1));
    const Array n = eqx::tanh(gate(gi, 2) + r * gate(gh, 2));
    return (1.0f - z) * n + z * h;
  }
};

/// GRU over a sequence [T, 1], then a linear readout at every step: [T].
struct Rnn {
  GruCell cell;
  Array readout_w, readout_b;  // [1, H], [1]

  Array operator()(const Array& xs) const {
    const Array h0 = eqx::zeros({cell.w_hh.shape()[1]}, eqx::float32);
    auto step = [&](const Array& h, const Array& x) {
      Array h_next = cell(h, x);
      return std::pair{h_next, eqx::sum(eqx::matmul(readout_w, h_next) + readout_b)};
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
  auto keys = eqx::random::split_keys(eqx::random::key(42), 3);
  Rnn model{GruCell::init(1, 16, keys[0]), eqx::random::uniform(keys[1], {1, 16}, eqx::float32, -0.25, 0.25),
            eqx::zeros({1}, eqx::float32)};
  const float learning_rate = 0.5f;
  auto train_step = eqx::filter_jit([learning_rate](const Rnn& m, const Array& waves) {
    auto [value, grads] = eqx::filter_value_and_grad(loss)(m, waves);
    Rnn updated = eqx::apply_updates(m, eqx::tree_map([&](const Array& g) { return g * -learning_rate; }, grads));
    return std::pair{updated, value};
  });

  const Array eval_waves = sine_batch(eqx::random::key(7), 64, 20);
  const float first = loss(model, eval_waves).item<float>();
  fmt::print("step    0  eval loss {:.5f}\n", first);
  eqx::random::Key data_key = keys[2];
  for (int step = 1; step <= 400; ++step) {
    auto split = eqx::random::split_keys(data_key, 2);
    data_key = split[0];
    auto [next, value] = train_step(model, sine_batch(split[1], 32, 20));
    model = std::move(next);
    if (step % 100 == 0) fmt::print("step {:4d}  train loss {:.5f}\n", step, value.item<float>());
  }
  const float last = loss(model, eval_waves).item<float>();
  fmt::print("final eval loss {:.5f} ({:.1f}x lower); traced {} time(s)\n", last, first / last,
             eqx::debug::get_num_traces(train_step));
  if (!(last * 10.0f <= first)) {
    std::fprintf(stderr, "the loss did not drop 10x\n");
    return 1;
  }
  return 0;
}
