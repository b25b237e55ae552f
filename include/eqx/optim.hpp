#pragma once
// eqx::optim: Optax's gradient transformations, optimisers, schedules and
// losses for eqx pytrees (see optim/base.hpp for the protocol).
//
//   auto opt = eqx::optim::adamw(3e-4);
//   auto opt_state = opt.init(eqx::filter(model, eqx::is_inexact_array));
//   auto [updates, new_state] = opt.update(grads, opt_state, model);
//   model = eqx::apply_updates(model, updates);

#include "eqx/optim/adaptive.hpp"
#include "eqx/optim/alias.hpp"
#include "eqx/optim/base.hpp"
#include "eqx/optim/blockwise.hpp"
#include "eqx/optim/loss.hpp"
#include "eqx/optim/schedule.hpp"
#include "eqx/optim/transform.hpp"
#include "eqx/optim/wrappers.hpp"
