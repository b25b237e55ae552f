#pragma once
// nn::MLP (eqx.nn.MLP): a stack of Linear layers with an activation after
// every hidden layer and a final activation after the output layer.
//
// `depth` counts the hidden layers: depth 0 is one Linear(in, out); depth d
// is Linear(in, width), d - 1 times Linear(width, width), Linear(width, out).
// The parameters are those of the Linear layers, in `layers`, so an MLP's
// leaves are Equinox's in Equinox's order (the activations are functions,
// which are not written). The activations are plain function pointers,
// static leaves of the tree: any nn activation, or a captureless lambda.
//
//   auto mlp = eqx::nn::MLP::init(2, 1, 32, 2, key, {.activation = eqx::nn::gelu});
//   eqx::Array y = mlp(x);                          // x: f32[2] -> f32[1]
//   eqx::Array ys = eqx::filter_vmap(mlp)(xs);      // xs: f32[B, 2]
//
// Differences from Equinox: each activation is applied to the whole hidden
// vector (Equinox maps it over the neurons, so that a learnt activation such
// as PReLU can hold one parameter per neuron; for the elementwise functions
// here the result is the same). Equinox 0.13.5+ skips final_activation when
// depth is 0; here it is applied after the last Linear at every depth, as
// Equinox documents it (and did before). The `scan` option is not offered.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/nn/activations.hpp"
#include "eqx/nn/common.hpp"
#include "eqx/nn/linear.hpp"
#include "eqx/random.hpp"
#include "eqx/tree/node.hpp"

namespace eqx::nn {

/// An activation as an MLP stores it: any function of one Array. A
/// captureless lambda converts to it: `+[](const eqx::Array& x) { return x * x; }`.
using Activation = Array (*)(const Array&);

/// MLP's keyword arguments.
struct MLPOptions {
  Activation activation = relu;          ///< after every hidden layer
  Activation final_activation = identity;  ///< after the output layer
  bool use_bias = true;                  ///< biases of the hidden layers
  bool use_final_bias = true;            ///< bias of the output layer
  DType dtype = float32;
};

/// A multi-layer perceptron (eqx.nn.MLP).
struct MLP {
  std::vector<Linear> layers;  ///< depth + 1 Linear layers
  Activation activation;
  Activation final_activation;
  Static<bool> use_bias;
  Static<bool> use_final_bias;
  Static<Features> in_size;
  Static<Features> out_size;
  Static<std::int64_t> width_size;
  Static<std::int64_t> depth;

  using Options = MLPOptions;

  /// An MLP from `in` to `out` features with `depth` hidden layers of
  /// `width` neurons; the Linear layers are initialised as Linear::init
  /// from split(key, depth + 1), layer i from key i, as Equinox.
  /// Usage: `auto mlp = eqx::nn::MLP::init(4, 2, 64, 2, key, {.activation = eqx::nn::silu});`
  static MLP init(Features in, Features out, std::int64_t width, std::int64_t depth, const random::Key& key,
                  Options opts = {}) {
    if (depth < 0)
      throw ValueError("eqx::nn::MLP: expected depth >= 0 (the number of hidden layers) but got " +
                       std::to_string(depth) + "; depth 0 is a single Linear layer");
    if (width < 0)
      throw ValueError("eqx::nn::MLP: expected width_size >= 0 but got " + std::to_string(width) +
                       "; give the number of neurons of each hidden layer");
    if (opts.activation == nullptr || opts.final_activation == nullptr)
      throw ValueError("eqx::nn::MLP: expected an activation function but got a null pointer; use "
                       "eqx::nn::identity for none");
    detail::check_param_dtype(opts.dtype, "MLP");
    const std::vector<random::Key> keys = random::split_keys(key, depth + 1);
    std::vector<Linear> layers;
    if (depth == 0) {
      layers.push_back(Linear::init(in, out, keys[0], {.use_bias = opts.use_final_bias, .dtype = opts.dtype}));
    } else {
      const Linear::Options hidden{.use_bias = opts.use_bias, .dtype = opts.dtype};
      layers.push_back(Linear::init(in, width, keys[0], hidden));
      for (std::int64_t i = 1; i < depth; ++i) layers.push_back(Linear::init(width, width, keys[i], hidden));
      layers.push_back(Linear::init(width, out, keys[depth], {.use_bias = opts.use_final_bias, .dtype = opts.dtype}));
    }
    return MLP{std::move(layers), opts.activation, opts.final_activation, {opts.use_bias}, {opts.use_final_bias},
               {in},  {out},  {width}, {depth}};
  }

  /// One example: x has shape [in] (or [] for nn::scalar); returns [out].
  Array operator()(const Array& x) const {
    detail::check_shape("MLP", x, in_size->shape());
    Array h = x;
    for (std::size_t i = 0; i + 1 < layers.size(); ++i) h = activation(layers[i](h));
    return final_activation(layers.back()(h));
  }
  /// Equinox's call signature: the key is ignored.
  Array operator()(const Array& x, const random::Key& /*key*/) const { return (*this)(x); }
};

}  // namespace eqx::nn
