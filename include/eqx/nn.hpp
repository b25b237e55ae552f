#pragma once
// eqx::nn: Equinox's layers (eqx.nn), written with eqx's public API only.
// Usage: `#include <eqx/nn.hpp>` (included by <eqx/eqx.hpp>)

#include "eqx/nn/activations.hpp"
#include "eqx/nn/attention.hpp"
#include "eqx/nn/batch_norm.hpp"
#include "eqx/nn/common.hpp"
#include "eqx/nn/conv.hpp"
#include "eqx/nn/dropout.hpp"
#include "eqx/nn/embedding.hpp"
#include "eqx/nn/linear.hpp"
#include "eqx/nn/mlp.hpp"
#include "eqx/nn/norm.hpp"
#include "eqx/nn/pool.hpp"
#include "eqx/nn/rnn.hpp"
#include "eqx/nn/sequential.hpp"
#include "eqx/nn/shared.hpp"
#include "eqx/nn/spectral_norm.hpp"
#include "eqx/nn/stateful.hpp"
