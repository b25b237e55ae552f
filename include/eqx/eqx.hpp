#pragma once
// eqx: Equinox-style models in C++. The umbrella header.
// Usage: `#include <eqx/eqx.hpp>`

#include "eqx/core/array.hpp"
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
#include "eqx/random.hpp"
#include "eqx/transform/grad.hpp"
#include "eqx/transform/jit.hpp"
#include "eqx/transform/make_jaxpr.hpp"
#include "eqx/debug.hpp"
#include "eqx/tree.hpp"
