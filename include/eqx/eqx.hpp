#pragma once
// eqx: Equinox-style models in C++. The umbrella header.
// Usage: `#include <eqx/eqx.hpp>`
//
// Included in layer order, each layer using only the ones above it: core
// (Array, dtypes, errors, threads), the array operations (ops, random),
// pytrees, the transformations (jit, grad, vmap, control flow), runtime
// checks and debugging, then the layers and optimisers written on them.
// Besides the optional parts (<eqx/data.hpp>, <eqx/dist.hpp>), two headers
// are included on their own, for what they bring that a program that only
// builds and trains models does not need: <eqx/io.hpp> (reading and writing
// files) brings <fstream> and <filesystem>, and
// <eqx/transform/elementwise_kernel.hpp> (fused kernels written as one
// lambda, as Pallas is imported apart from JAX) brings Eigen's SIMD packet
// code, 0.6-0.8 s of compile time in every file. (Header-only, the
// optimisers include it for Adam's kernel; include it yourself anyway, or
// the file stops compiling when it links eqx::kernels.)

#include "eqx/core/array.hpp"
#include "eqx/core/build_info.hpp"
#include "eqx/core/dtype.hpp"
#include "eqx/core/error.hpp"
#include "eqx/core/format.hpp"
#include "eqx/core/shape.hpp"
#include "eqx/core/threads.hpp"

#include "eqx/ops/conv.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/indexing.hpp"
#include "eqx/ops/linalg.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/ops/sort.hpp"
#include "eqx/random.hpp"

#include "eqx/tree.hpp"

#include "eqx/transform/callback.hpp"
#include "eqx/transform/checkpoint.hpp"
#include "eqx/transform/closure_convert.hpp"
#include "eqx/transform/collectives.hpp"
#include "eqx/transform/cond.hpp"
#include "eqx/transform/custom_rules.hpp"
#include "eqx/transform/eval_shape.hpp"
#include "eqx/transform/grad.hpp"
#include "eqx/transform/jacobian.hpp"
#include "eqx/transform/jit.hpp"
#include "eqx/transform/make_jaxpr.hpp"
#include "eqx/transform/scan.hpp"
#include "eqx/transform/stop_gradient.hpp"
#include "eqx/transform/vjp.hpp"
#include "eqx/transform/vmap.hpp"
#include "eqx/transform/while_loop.hpp"

#include "eqx/errors.hpp"
#include "eqx/debug.hpp"
#include "eqx/debug/backward_nan.hpp"

#include "eqx/nn.hpp"
#include "eqx/optim.hpp"
