// An eqx model as an init/apply pair (Equinox's docs/examples/init_apply.ipynb).
//
// Some libraries (Stax, and code written for it) expect a network as two
// functions: `init(key) -> params`, whose result is all trainable arrays,
// and `apply(params, x)`. An eqx model fits that shape with two tree tools:
//   - eqx::partition(model, eqx::is_inexact_array) splits it into `params`
//     (the float Arrays; everything else None) and `static_part` (None where
//     params has an Array);
//   - eqx::combine(params, static_part) puts it back together, so apply
//     rebuilds the model and calls it.
// In C++ both halves keep the model's type (nn::MLP here). The static
// leaves (the activation function pointers, the sizes) stay in both, since
// an int cannot be None; they are structure, not data. What matters is that
// the Array leaves of `params` are exactly the parameters: everything a
// tracer, an optimiser or a gradient sees.
//
// The walk-through:
//   1. make_mlp returns the pair (init, apply) for an nn::MLP 2 -> 8 -> 1;
//   2. params and structure apart: the params' leaves with their paths and
//      shapes, and the static part (no Arrays at all);
//   3. the notebook's check: params are a plain tree, so any tree_map is an
//      update (p + 1 changes the output);
//   4. training through the params tree only: the loss is a function of
//      (params, static_part, x, y), filter_value_and_grad differentiates
//      params, optim::adam's state is made from params, and apply_updates
//      updates params; the model object is never rebuilt outside apply.
//
// Run: build/<dir>/examples/init_apply
//
// Checks (non-zero exit if one fails): the static part holds no Array, the
// "+1" update changes the output, and training the params alone lowers the
// regression loss at least 50x.

#include <cstdio>
#include <string>
#include <tuple>
#include <utility>

#include <fmt/core.h>
#include <eqx/eqx.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
using eqx::Array;

// ---------------------------------------------------------------- 1. init and apply

/// The init/apply pair of an MLP: init(key) -> {params, static_part};
/// apply(params, static_part, x) -> the MLP's output for one example x.
auto make_mlp(int in_size, int out_size, int width_size, int depth) {
  auto init = [=](const eqx::random::Key& key) {
    nn::MLP mlp = nn::MLP::init(in_size, out_size, width_size, depth, key);  // insert your model here
    return eqx::partition(mlp, eqx::is_inexact_array);
  };
  auto apply = [](const nn::MLP& params, const nn::MLP& static_part, const Array& x) {
    const nn::MLP model = eqx::combine(params, static_part);
    return model(x);
  };
  return std::pair{init, apply};
}

int main() {
  const auto [init, apply] = make_mlp(/*in_size=*/2, /*out_size=*/1, /*width_size=*/8, /*depth=*/1);
  auto keys = eqx::random::split_keys(eqx::random::key(5678), 2);
  auto [params, static_part] = init(keys[0]);

  // ---------------------------------------------------------------- 2. params and structure apart
  fmt::print("params (every leaf a trainable Array):\n");
  for (const auto& [path, leaf] : eqx::tree_leaves_with_path(params))
    fmt::print("  {:<18} {}\n", path.str(), eqx::AbstractArray{leaf.shape(), leaf.dtype()}.str());
  fmt::print("static part ({} Array leaves):\n{}\n\n", eqx::tree_leaves(static_part).size(), static_part);

  // ---------------------------------------------------------------- 3. the notebook's check
  const Array x = eqx::astype(eqx::arange(2), eqx::float32);  // sample data
  const Array y1 = apply(params, static_part, x);
  const auto bumped = eqx::tree_map([](const Array& p) { return p + 1.0f; }, params);  // "stochastic gradient descent"
  const Array y2 = apply(bumped, static_part, x);
  fmt::print("apply(params, x) = {}, after p + 1: {}\n\n", y1, y2);

  // ---------------------------------------------------------------- 4. training through params
  // A regression on [-1, 1]^2: y = x0 * x1 + 0.5 * x0.
  const Array xs = eqx::random::uniform(keys[1], {256, 2}, eqx::float32, -1.0, 1.0);
  const Array x0 = eqx::slice(xs, 1, 0, 1), x1 = eqx::slice(xs, 1, 1, 2);
  const Array ys = x0 * x1 + 0.5f * x0;  // [256, 1]

  auto loss = [apply](const nn::MLP& params, const nn::MLP& static_part, const Array& xs, const Array& ys) {
    auto batched_apply = eqx::filter_vmap(apply, eqx::in_axes(eqx::none, eqx::none, 0));
    return eqx::mean(eqx::square(batched_apply(params, static_part, xs) - ys));
  };
  const auto optimiser = optim::adam(1e-2);
  auto opt_state = optimiser.init(params);  // from the params tree: what init returned
  auto step = eqx::filter_jit([loss, optimiser](const nn::MLP& params, const nn::MLP& static_part,
                                                const auto& opt_state, const Array& xs, const Array& ys) {
    auto [value, grads] = eqx::filter_value_and_grad(loss)(params, static_part, xs, ys);
    auto [updates, new_opt_state] = optimiser.update(grads, opt_state, params);
    return std::tuple{eqx::apply_updates(params, updates), new_opt_state, value};
  });

  const float first = loss(params, static_part, xs, ys).item<float>();
  for (int i = 0; i < 500; ++i) {
    Array value;
    std::tie(params, opt_state, value) = step(params, static_part, opt_state, xs, ys);
    if (i % 100 == 0) fmt::print("step {:3d}  loss {:.6f}\n", i, value.item<float>());
  }
  const float last = loss(params, static_part, xs, ys).item<float>();
  fmt::print("loss {:.6f} -> {:.6f} ({:.1f}x lower), training only the params tree\n", first, last, first / last);

  bool ok = true;
  auto check = [&](bool cond, const std::string& what) {
    fmt::print("{} {}\n", cond ? "ok  " : "FAIL", what);
    ok = ok && cond;
  };
  check(eqx::tree_leaves(static_part).empty(), "the static part holds no Array");
  check(!eqx::tree_equal(y1, y2), "params are a plain tree: p + 1 changes the output");
  check(last * 50 <= first, "the loss dropped at least 50x");
  return ok ? 0 : 1;
}
