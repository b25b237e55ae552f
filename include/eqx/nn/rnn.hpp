#pragma once
// nn::GRUCell and nn::LSTMCell (Equinox's eqx.nn.GRUCell / eqx.nn.LSTMCell):
// ONE step of a recurrent network, mapping (input x_t, state) to the next
// state. Run a sequence by threading the state through eqx::scan.
//
// The weights stack the gates in blocks, as in Equinox and PyTorch:
// GRU rows [r; z; n] (reset, update, new), LSTM rows [i; f; g; o]. Equinox
// keeps one bias on the input side of every gate, plus, for the GRU, the
// bias `bias_n` of the hidden side of the new gate, which the reset gate
// scales:
//
//   r = σ(W_ir x + b_r + W_hr h)       n = tanh(W_in x + b_n + r ⊙ (W_hn h + bias_n))
//   z = σ(W_iz x + b_z + W_hz h)       h' = n + z ⊙ (h - n)
//
// Every parameter starts uniform in [-1/sqrt(hidden), 1/sqrt(hidden)).
//
//   auto cell = eqx::nn::GRUCell::init(16, 32, key);
//   auto [h, hs] = eqx::scan([&](const eqx::Array& h, const eqx::Array& x) {
//     eqx::Array next = cell(x, h);
//     return std::pair{next, next};
//   }, eqx::zeros({32}), xs);                          // xs: f32[T, 16]

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "eqx/core/array.hpp"
#include "eqx/nn/activations.hpp"
#include "eqx/nn/common.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/indexing.hpp"
#include "eqx/ops/linalg.hpp"
#include "eqx/random.hpp"
#include "eqx/tree/node.hpp"

namespace eqx::nn {

namespace detail {

/// Gate block `i` (rows [i*h, (i+1)*h)) of a stacked gate vector.
inline Array gate(const Array& stacked, std::int64_t i, std::int64_t h) { return slice(stacked, 0, i * h, (i + 1) * h); }

/// Equinox's recurrent-cell init limit, sqrt(1 / hidden_size).
inline double rnn_limit(std::int64_t hidden_size) { return std::sqrt(1.0 / static_cast<double>(hidden_size)); }

inline void check_rnn_sizes(std::string_view layer, std::int64_t input_size, std::int64_t hidden_size) {
  if (input_size < 0 || hidden_size <= 0)
    throw ValueError("eqx::nn::" + std::string(layer) + ": expected input_size >= 0 and hidden_size > 0 but got " +
                     std::to_string(input_size) + " and " + std::to_string(hidden_size) + "; give positive sizes");
}

}  // namespace detail

/// GRUCell's keyword arguments.
struct GRUCellOptions {
  bool use_bias = true;
  DType dtype = float32;
};

/// One step of a gated recurrent unit (eqx.nn.GRUCell): (x, h) -> h'.
struct GRUCell {
  Array weight_ih;  ///< [3*hidden, input]: the r, z, n blocks applied to x
  Array weight_hh;  ///< [3*hidden, hidden]: the r, z, n blocks applied to h
  Array bias;       ///< [3*hidden], added on the input side; empty when use_bias is false
  Array bias_n;     ///< [hidden], added to W_hn h inside r ⊙ (...); empty when use_bias is false
  Static<std::int64_t> input_size;
  Static<std::int64_t> hidden_size;
  Static<bool> use_bias;

  using Options = GRUCellOptions;

  /// A GRU cell with every parameter uniform in [-sqrt(1/hidden),
  /// sqrt(1/hidden)), from four keys split from `key` as Equinox does.
  /// Usage: `auto cell = eqx::nn::GRUCell::init(16, 32, key);`
  static GRUCell init(std::int64_t input_size, std::int64_t hidden_size, const random::Key& key, Options opts = {}) {
    nn::detail::check_param_dtype(opts.dtype, "GRUCell");
    detail::check_rnn_sizes("GRUCell", input_size, hidden_size);
    const double lim = detail::rnn_limit(hidden_size);
    auto keys = random::split_keys(key, 4);
    GRUCell cell{detail::default_init(keys[0], {3 * hidden_size, input_size}, opts.dtype, lim),
                 detail::default_init(keys[1], {3 * hidden_size, hidden_size}, opts.dtype, lim),
                 Array{}, Array{}, {input_size}, {hidden_size}, {opts.use_bias}};
    if (opts.use_bias) {
      cell.bias = detail::default_init(keys[2], {3 * hidden_size}, opts.dtype, lim);
      cell.bias_n = detail::default_init(keys[3], {hidden_size}, opts.dtype, lim);
    }
    return cell;
  }

  /// One step: x [input_size] and h [hidden_size] give the next h [hidden_size].
  /// Usage: `eqx::Array h1 = cell(x, h0);`
  Array operator()(const Array& x, const Array& h) const {
    detail::check_shape("GRUCell", x, {*input_size}, "input");
    detail::check_shape("GRUCell", h, {*hidden_size}, "hidden state");
    const std::int64_t n = *hidden_size;
    Array input_side = matmul(weight_ih, x), hidden_side = matmul(weight_hh, h);
    if (*use_bias) input_side = input_side + bias;
    using detail::gate;
    Array reset = nn::sigmoid(gate(input_side, 0, n) + gate(hidden_side, 0, n));
    Array update = nn::sigmoid(gate(input_side, 1, n) + gate(hidden_side, 1, n));
    Array hidden_new = *use_bias ? gate(hidden_side, 2, n) + bias_n : gate(hidden_side, 2, n);
    Array candidate = tanh(gate(input_side, 2, n) + reset * hidden_new);
    return candidate + update * (h - candidate);
  }
};

/// LSTMCell's keyword arguments.
struct LSTMCellOptions {
  bool use_bias = true;
  DType dtype = float32;
};

/// One step of a long short-term memory unit (eqx.nn.LSTMCell):
/// (x, {h, c}) -> {h', c'} with c' = f ⊙ c + i ⊙ g and h' = o ⊙ tanh(c').
struct LSTMCell {
  Array weight_ih;  ///< [4*hidden, input]: the i, f, g, o blocks applied to x
  Array weight_hh;  ///< [4*hidden, hidden]: the i, f, g, o blocks applied to h
  Array bias;       ///< [4*hidden]; empty when use_bias is false
  Static<std::int64_t> input_size;
  Static<std::int64_t> hidden_size;
  Static<bool> use_bias;

  using Options = LSTMCellOptions;

  /// An LSTM cell with every parameter uniform in [-sqrt(1/hidden),
  /// sqrt(1/hidden)), from three keys split from `key` as Equinox does.
  /// Usage: `auto cell = eqx::nn::LSTMCell::init(16, 32, key);`
  static LSTMCell init(std::int64_t input_size, std::int64_t hidden_size, const random::Key& key, Options opts = {}) {
    nn::detail::check_param_dtype(opts.dtype, "LSTMCell");
    detail::check_rnn_sizes("LSTMCell", input_size, hidden_size);
    const double lim = detail::rnn_limit(hidden_size);
    auto keys = random::split_keys(key, 3);
    LSTMCell cell{detail::default_init(keys[0], {4 * hidden_size, input_size}, opts.dtype, lim),
                  detail::default_init(keys[1], {4 * hidden_size, hidden_size}, opts.dtype, lim),
                  Array{}, {input_size}, {hidden_size}, {opts.use_bias}};
    if (opts.use_bias) cell.bias = detail::default_init(keys[2], {4 * hidden_size}, opts.dtype, lim);
    return cell;
  }

  /// One step: x [input_size] and the state {h, c} (each [hidden_size])
  /// give the next state {h, c}.
  /// Usage: `auto [h1, c1] = cell(x, std::pair{h0, c0});`
  std::pair<Array, Array> operator()(const Array& x, const std::pair<Array, Array>& state) const {
    const auto& [h, c] = state;
    detail::check_shape("LSTMCell", x, {*input_size}, "input");
    detail::check_shape("LSTMCell", h, {*hidden_size}, "hidden state h");
    detail::check_shape("LSTMCell", c, {*hidden_size}, "cell state c");
    const std::int64_t n = *hidden_size;
    Array pre = matmul(weight_ih, x) + matmul(weight_hh, h);
    if (*use_bias) pre = pre + bias;
    using detail::gate;
    Array input_gate = nn::sigmoid(gate(pre, 0, n));
    Array forget_gate = nn::sigmoid(gate(pre, 1, n));
    Array candidate = tanh(gate(pre, 2, n));
    Array output_gate = nn::sigmoid(gate(pre, 3, n));
    Array c_next = forget_gate * c + input_gate * candidate;
    return {output_gate * tanh(c_next), c_next};
  }
};

}  // namespace eqx::nn
