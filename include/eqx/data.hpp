#pragma once
// Loading data: IDX files (MNIST-style datasets) and shuffled mini-batches.
// Kept out of <eqx/eqx.hpp>: it needs zlib (link eqx::data, or -lz).

#include "eqx/data/batches.hpp"
#include "eqx/data/idx.hpp"
#include "eqx/data/mnist.hpp"
