// eqx::optim against independent references: parameter trajectories from
// torch.optim (for the optimisers PyTorch shares, with the hyperparameter
// mapping noted per case) or Optax's formulas written out in NumPy
// (tests/optim/fixtures_optim.py, run by hand), schedules and losses against
// formulas written out here, state serialisation, a jitted training step,
// and the messages of misuse.

#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>
#include <eqx/optim.hpp>

#include "check.hpp"
#include "optim/two_leaf_problem.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace optim_optim_test {

using eqx::Array;
namespace optim = eqx::optim;
using eqx_test::message_of;

namespace {

using namespace optim_test;

/// Runs `opt` for every step of the fixture and compares the parameters.
template <class Opt>
void check_trajectory(const std::string& name, const Opt& opt, double tol = 1e-6) {
  INFO("case " << name);
  const Array wt = fixture(name + "_w"), bt = fixture(name + "_b");
  const auto steps = static_cast<std::size_t>(wt.shape()[0]);
  REQUIRE(steps >= 5);
  Params p = initial_params();
  auto state = opt.init(p);
  double worst = 0;
  for (std::size_t s = 0; s < steps; ++s) {
    auto [updates, next] = opt.update(grad_of(p), state, p);
    state = next;
    p = eqx::apply_updates(p, updates);
    REQUIRE(p.w.dtype() == eqx::float64);
    worst = std::max({worst, row_error(p.w, wt, s), row_error(p.b, bt, s)});
  }
  INFO("largest error " << worst);
  CHECK(worst <= tol);
}


double at(const optim::Schedule& s, int step) { return s(eqx::array(step), eqx::float64).item<double>(); }

}  // namespace

// --- optimisers against torch.optim / NumPy ----------------------------------------

TEST_CASE("optim: SGD, momentum and Nesterov trajectories match torch.optim.SGD", "[optim]") {
  check_trajectory("sgd", optim::sgd(0.1));
  check_trajectory("sgd_momentum", optim::sgd(0.1, {.momentum = 0.9}));
  check_trajectory("sgd_nesterov", optim::sgd(0.1, {.momentum = 0.9, .nesterov = true}));
}

TEST_CASE("optim: Adam and AdamW match torch (AdamW's lr * wd decay is Optax's)", "[optim]") {
  check_trajectory("adam", optim::adam(0.1, {.b1 = 0.8, .b2 = 0.95}));
  check_trajectory("adamw", optim::adamw(0.1, {.weight_decay = 0.05}));
}

TEST_CASE("optim: RMSprop: Optax's eps inside the sqrt (NumPy), torch's placement centered with momentum", "[optim]") {
  check_trajectory("rmsprop", optim::rmsprop(0.01), 1e-12);
  // torch.optim.RMSprop(alpha=0.9, centered, momentum=0.9) is Optax's eps_in_sqrt = false.
  check_trajectory("rmsprop_torch",
                   optim::rmsprop(0.01, {.eps_in_sqrt = false, .centered = true, .momentum = 0.9}));
}

TEST_CASE("optim: Adagrad, Adamax and RAdam match torch", "[optim]") {
  // torch adds eps outside the sqrt and Optax inside: compared with eps = 0 in both.
  check_trajectory("adagrad", optim::adagrad(0.1, {.initial_accumulator_value = 0.1, .eps = 0.0}));
  check_trajectory("adamax", optim::adamax(0.1));
  // b2 = 0.9 so that steps 6-8 take the rectified branch (rho_t >= 5) and steps 1-5 the plain momentum.
  check_trajectory("radam", optim::radam(0.1, {.b2 = 0.9}));
}

TEST_CASE("optim: NAdam, Lion and AdaBelief match Optax's formulas in float64 (NumPy)", "[optim]") {
  // 1e-12: bias corrections computed in float32 would be off by ~1e-8.
  check_trajectory("nadam", optim::nadam(0.1), 1e-12);
  check_trajectory("lion", optim::lion(0.05, {.weight_decay = 0.01}), 1e-12);
  check_trajectory("adabelief", optim::adabelief(0.1), 1e-12);
}

TEST_CASE("optim: states carry Optax's field names, an int32 count and the params' dtype", "[optim]") {
  auto opt = optim::adam(0.1);
  Params p = initial_params();
  auto state = opt.init(p);
  for (int i = 0; i < 3; ++i) {
    auto [u, s] = opt.update(grad_of(p), state, p);
    state = s;
    p = eqx::apply_updates(p, u);
  }
  const optim::ScaleByAdamState<Params>& adam = std::get<0>(state);
  CHECK(adam.count.dtype() == eqx::int32);
  CHECK(adam.count.item<std::int32_t>() == 3);
  CHECK(adam.mu.w.dtype() == eqx::float64);
  CHECK(adam.nu.b.shape() == eqx::Shape{2, 2});
  CHECK_FALSE(std::get<1>(state).count.has_value());  // constant learning rate: no count, as Optax's EmptyState
  std::vector<std::string> paths;
  for (const auto& [path, leaf] : eqx::tree_leaves_with_path(state)) paths.push_back(path.str());
  CHECK(paths == std::vector<std::string>{"[0].count", "[0].mu.w", "[0].mu.b", "[0].nu.w", "[0].nu.b"});
  const std::string printed = fmt::format("{}", adam);
  INFO(printed);
  CHECK(printed.find("count=") != std::string::npos);
  CHECK(printed.find("mu=Params(") != std::string::npos);
}

TEST_CASE("optim: a float32 model stays float32", "[optim]") {
  Params p{eqx::array({1.f, 2.f, 3.f}), eqx::ones({2, 2})};
  auto opt = optim::adamw(0.1);
  auto state = opt.init(p);
  auto [u, s] = opt.update(p, state, p);
  CHECK(u.w.dtype() == eqx::float32);
  CHECK(std::get<0>(s).nu.b.dtype() == eqx::float32);
  // First Adam step: mu_hat / sqrt(nu_hat) = sign(g); plus weight decay 1e-4 * p; times -lr.
  eqx_test::check<float>(u.w, {3}, {-0.1f * (1 + 1e-4f), -0.1f * (1 + 2e-4f), -0.1f * (1 + 3e-4f)});
}

// --- building blocks ----------------------------------------------------------------

TEST_CASE("optim: identity, scale, clip, clip_by_global_norm, global_norm, chain", "[optim]") {
  Params g{eqx::array({3.0, -4.0, 0.5}), eqx::array(std::vector<double>{0, 12, 0, 0}, {2, 2})};
  auto [u0, s0] = optim::identity().update(g, optim::identity().init(g));
  CHECK(values(u0.w) == values(g.w));
  auto [u1, s1] = optim::scale(-2.0).update(g, optim::scale(-2.0).init(g));
  CHECK(values(u1.w) == std::vector<double>{-6.0, 8.0, -1.0});
  auto [u2, s2] = optim::clip(1.0).update(g, optim::clip(1.0).init(g));
  CHECK(values(u2.w) == std::vector<double>{1.0, -1.0, 0.5});
  CHECK(values(u2.b) == std::vector<double>{0, 1, 0, 0});

  const double norm = std::sqrt(9 + 16 + 0.25 + 144);
  CHECK(optim::global_norm(g).item<double>() == Approx(norm).epsilon(1e-14));
  auto clipper = optim::clip_by_global_norm(6.5);
  auto [u3, s3] = clipper.update(g, clipper.init(g));
  CHECK(values(u3.w)[0] == Approx(3.0 / norm * 6.5).epsilon(1e-14));
  CHECK(values(u3.b)[1] == Approx(12.0 / norm * 6.5).epsilon(1e-14));
  auto [u4, s4] = optim::clip_by_global_norm(100.0).update(g, optim::EmptyState{});
  CHECK(values(u4.b) == values(g.b));

  // chain(clip, scale): state is the tuple of states; order matters.
  auto tx = optim::chain(optim::clip(1.0), optim::scale(-0.5));
  auto [u5, s5] = tx.update(g, tx.init(g));
  CHECK(values(u5.w) == std::vector<double>{-0.5, 0.5, -0.25});
  static_assert(std::is_same_v<decltype(s5), std::tuple<optim::EmptyState, optim::EmptyState>>);
}

TEST_CASE("optim: add_decayed_weights with a mask function or a mask tree", "[optim]") {
  Params p = initial_params();
  Params g{eqx::zeros({3}, eqx::float64), eqx::zeros({2, 2}, eqx::float64)};
  auto all = optim::add_decayed_weights(0.5);
  auto [u, s] = all.update(g, all.init(p), p);
  CHECK(values(u.w) == std::vector<double>{0.5, -1.0, 0.25});
  auto matrices = optim::add_decayed_weights(0.5, [](const Array& leaf) { return leaf.ndim() >= 2; });
  auto [u1, s1] = matrices.update(g, matrices.init(p), p);
  CHECK(values(u1.w) == std::vector<double>{0, 0, 0});
  CHECK(values(u1.b) == std::vector<double>{0.15, -0.35, 0.75, -0.05});
  Params mask{eqx::array(true), eqx::array(false)};
  auto by_tree = optim::add_decayed_weights(0.5, optim::tree_mask(mask));
  auto [u2, s2] = by_tree.update(g, by_tree.init(p), p);
  CHECK(values(u2.w) == std::vector<double>{0.5, -1.0, 0.25});
  CHECK(values(u2.b) == std::vector<double>{0, 0, 0, 0});
  // adamw's mask: with zero gradients, Adam's update is 0 and only the decay moves the params.
  auto opt = optim::adamw(1.0, {.weight_decay = 0.5, .mask = optim::tree_mask(mask)});
  auto [u3, s3] = opt.update(g, opt.init(p), p);
  CHECK(values(u3.w) == std::vector<double>{-0.5, 1.0, -0.25});
  CHECK(values(u3.b) == std::vector<double>{0, 0, 0, 0});
}

TEST_CASE("optim: scale_by_rms options: bias correction, initial scale, eps placement", "[optim]") {
  Params g{eqx::array({2.0, -1.0, 0.5}), eqx::ones({2, 2}, eqx::float64)};
  auto tx = optim::scale_by_rms({.decay = 0.5, .eps = 0.25, .initial_scale = 1.0});
  auto [u, s] = tx.update(g, tx.init(g));
  CHECK(values(u.w)[0] == Approx(2.0 / std::sqrt(0.5 * 1 + 0.5 * 4 + 0.25)).epsilon(1e-14));
  CHECK_FALSE(s.count.has_value());
  CHECK_FALSE(s.mu.w.has_value());
  auto bc = optim::scale_by_rms({.decay = 0.5, .eps = 0.25, .eps_in_sqrt = false, .bias_correction = true});
  auto [u1, s1] = bc.update(g, bc.init(g));
  CHECK(values(u1.w)[0] == Approx(2.0 / (std::sqrt(0.5 * 4 / 0.5) + 0.25)).epsilon(1e-14));
  CHECK(s1.count.item<std::int32_t>() == 1);
}

// --- schedules ------------------------------------------------------------------------

TEST_CASE("optim: schedules at step 0, at the boundaries and past the end", "[optim][schedule]") {
  auto c = optim::constant_schedule(0.25);
  CHECK(at(c, 0) == 0.25);
  CHECK(at(c, 1000) == 0.25);

  auto lin = optim::linear_schedule(1.0, 0.2, 8, 2);  // flat until 2, reaches 0.2 at 10
  CHECK(at(lin, 0) == 1.0);
  CHECK(at(lin, 2) == 1.0);
  CHECK(at(lin, 6) == Approx(1.0 + 0.5 * (0.2 - 1.0)).epsilon(1e-14));
  CHECK(at(lin, 10) == Approx(0.2).epsilon(1e-14));
  CHECK(at(lin, 50) == Approx(0.2).epsilon(1e-14));

  auto poly = optim::polynomial_schedule(1.0, 0.1, 2.0, 10);
  CHECK(at(poly, 0) == 1.0);
  CHECK(at(poly, 4) == Approx(0.9 * 0.6 * 0.6 + 0.1).epsilon(1e-14));
  CHECK(at(poly, 10) == Approx(0.1).epsilon(1e-14));
  CHECK(at(poly, 11) == Approx(0.1).epsilon(1e-14));

  auto exp_ = optim::exponential_decay(2.0, 10, 0.5, {.transition_begin = 5});
  CHECK(at(exp_, 0) == 2.0);
  CHECK(at(exp_, 5) == 2.0);
  CHECK(at(exp_, 10) == Approx(2.0 * std::pow(0.5, 0.5)).epsilon(1e-14));
  CHECK(at(exp_, 25) == Approx(0.5).epsilon(1e-14));
  auto stair = optim::exponential_decay(2.0, 10, 0.5, {.staircase = true, .end_value = 0.3});
  CHECK(at(stair, 9) == 2.0);
  CHECK(at(stair, 10) == 1.0);
  CHECK(at(stair, 29) == 0.5);
  CHECK(at(stair, 30) == 0.3);  // 0.25 clipped at end_value
  CHECK(at(stair, 1000) == 0.3);
  auto grow = optim::exponential_decay(1.0, 1, 2.0, {.end_value = 5.0});
  CHECK(at(grow, 2) == 4.0);
  CHECK(at(grow, 3) == 5.0);

  auto cosine = optim::cosine_decay_schedule(2.0, 10, 0.1);
  CHECK(at(cosine, 0) == Approx(2.0).epsilon(1e-14));
  CHECK(at(cosine, 5) == Approx(2.0 * (0.9 * 0.5 + 0.1)).epsilon(1e-14));
  CHECK(at(cosine, 10) == Approx(0.2).epsilon(1e-14));
  CHECK(at(cosine, 20) == Approx(0.2).epsilon(1e-14));

  auto pc = optim::piecewise_constant_schedule(1.0, {{3, 0.5}, {6, 0.1}});
  CHECK(at(pc, 2) == 1.0);
  CHECK(at(pc, 3) == 0.5);
  CHECK(at(pc, 5) == 0.5);
  CHECK(at(pc, 6) == Approx(0.05).epsilon(1e-14));
  CHECK(at(pc, 100) == Approx(0.05).epsilon(1e-14));

  auto joined = optim::join_schedules({optim::constant_schedule(1.0), optim::linear_schedule(2.0, 0.0, 4)}, {3});
  CHECK(at(joined, 2) == 1.0);
  CHECK(at(joined, 3) == 2.0);
  CHECK(at(joined, 5) == 1.0);
  CHECK(at(joined, 100) == 0.0);
}

TEST_CASE("optim: warmup_cosine_decay_schedule matches Optax's values", "[optim][schedule]") {
  // init 0, peak 1e-3 after 10 warmup steps, cosine to 1e-5 at step 110 (decay_steps counts from 0).
  auto s = optim::warmup_cosine_decay_schedule(0.0, 1e-3, 10, 110, 1e-5);
  auto want = [](int t) {
    if (t < 10) return 1e-3 * t / 10.0;
    const double alpha = 1e-5 / 1e-3;
    const double k = std::min(t - 10, 100);
    return 1e-3 * ((1 - alpha) * 0.5 * (1 + std::cos(M_PI * k / 100)) + alpha);
  };
  for (int t : {0, 1, 5, 9, 10, 11, 60, 109, 110, 111, 1000}) {
    INFO("step " << t);
    CHECK(at(s, t) == Approx(want(t)).epsilon(1e-12).margin(1e-18));
  }
  // float32 by default, as Optax's.
  Array v = s(eqx::array(5));
  CHECK(v.dtype() == eqx::float32);
  CHECK(v.item<float>() == Approx(5e-4f));
  CHECK(message_of<eqx::ValueError>([] { optim::warmup_cosine_decay_schedule(0.0, 1.0, 10, 10); }) ==
        "eqx::optim::cosine_decay_schedule: decay_steps is 0; it must be positive");
}

TEST_CASE("optim: a schedule as learning rate: the first update uses schedule(0)", "[optim][schedule]") {
  auto lr = optim::linear_schedule(0.1, 0.0, 4);
  auto opt = optim::sgd(lr);
  Params p = initial_params();
  auto state = opt.init(p);
  const Params g = grad_of(p);
  std::vector<double> got;
  for (int i = 0; i < 5; ++i) {
    auto [u, s] = opt.update(g, state, p);
    state = s;
    got.push_back(values(u.w)[0] / -values(g.w)[0]);
  }
  const std::vector<double> want{0.1, 0.075, 0.05, 0.025, 0.0};
  for (int i = 0; i < 5; ++i) CHECK(got[i] == Approx(want[i]).margin(1e-15));
  CHECK(std::get<1>(state).count.item<std::int32_t>() == 5);
  // A plain lambda works too (converted to the leaf dtype).
  auto opt2 = optim::sgd([](const Array& count) { return 1.0f / (1.0f + eqx::astype(count, eqx::float32)); });
  auto st2 = opt2.init(p);
  auto [u1, st3] = opt2.update(g, st2, p);
  auto [u2, st4] = opt2.update(g, st3, p);
  CHECK(values(u2.w)[0] == Approx(-0.5 * values(g.w)[0]));
}

// --- leaves, errors ---------------------------------------------------------------------

namespace {
struct Mixed {
  Array weight;
  Array steps;   // int32: never optimised
  Array frozen;  // None
  int tag = 7;
};
struct Net {
  std::vector<Array> layers;
};
}  // namespace

TEST_CASE("optim: None and non-float leaves pass through untouched", "[optim]") {
  Mixed model{eqx::array({1.f, 2.f}), eqx::array({1, 2}), Array{}, 7};
  auto opt = optim::adam(0.1);
  auto state = opt.init(model);
  CHECK_FALSE(std::get<0>(state).mu.steps.has_value());
  CHECK_FALSE(std::get<0>(state).nu.frozen.has_value());
  Mixed grads = eqx::filter_grad([](const Mixed& m) { return eqx::sum(m.weight * m.weight); })(model);
  auto [updates, next] = opt.update(grads, state, model);
  CHECK_FALSE(updates.steps.has_value());
  Mixed after = eqx::apply_updates(model, updates);
  CHECK(after.steps.to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 2});
  CHECK(after.tag == 7);
  CHECK(after.weight.to_vector<float>()[0] == Approx(0.9f));
  // A None gradient where the state has moments (a frozen leaf) keeps the moments.
  Mixed no_grad = grads;
  no_grad.weight = Array{};
  auto [u2, n2] = opt.update(no_grad, next, model);
  CHECK_FALSE(u2.weight.has_value());
  CHECK(values(std::get<0>(n2).mu.weight) == values(std::get<0>(next).mu.weight));
}

TEST_CASE("optim: misuse names the leaf path", "[optim][errors]") {
  Mixed model{eqx::array({1.f, 2.f}), eqx::array({1, 2}), Array{}, 7};
  auto opt = optim::adam(0.1);
  auto state = opt.init(model);
  Mixed int_grads{eqx::array({1.f, 1.f}), eqx::array({1, 1}), Array{}, 7};
  CHECK(message_of<eqx::DTypeError>([&] { opt.update(int_grads, state, model); }) ==
        "eqx::optim::scale_by_adam: the update at .steps is i32[2], not floating point; only float leaves can be "
        "optimised (filter the params and gradients with eqx::filter(tree, eqx::is_inexact_array), or leave None "
        "there)");
  Mixed none_grads{eqx::array({1.f, 1.f}), Array{}, eqx::array({1.f}), 7};
  CHECK(message_of<eqx::TreeStructureError>([&] { opt.update(none_grads, state, model); }) ==
        "eqx::optim::scale_by_adam: at .frozen the update is f32[1] but the optimiser state has None (the state "
        "was initialised from params with None or a non-float leaf there); initialise the optimiser with params that "
        "have this leaf");
  Mixed wrong_shape{eqx::array({1.f, 1.f, 1.f}), Array{}, Array{}, 7};
  CHECK(message_of<eqx::ShapeError>([&] { opt.update(wrong_shape, state, model); }) ==
        "eqx::optim::scale_by_adam: at .weight the update is f32[3] but the optimiser state leaf is f32[2]; "
        "gradients must have their parameter's shape and dtype");

  Net net{{eqx::ones({2}), eqx::ones({3})}};
  auto sgd = optim::sgd(0.1, {.momentum = 0.9});
  auto net_state = sgd.init(net);
  Net longer{{eqx::ones({2}), eqx::ones({3}), eqx::ones({1})}};
  CHECK(message_of<eqx::TreeStructureError>([&] { sgd.update(longer, net_state, longer); }) ==
        "eqx::optim::trace: the updates and the optimiser state or params differ at .layers: lists of different "
        "lengths (3 vs 2); pass gradients of the params the optimiser was initialised with, and the state it returned");
  auto wd = optim::add_decayed_weights(0.1);
  CHECK(message_of<eqx::ValueError>([&] { wd.update(net, wd.init(net)); }) ==
        "eqx::optim::add_decayed_weights: weight decay needs the params; call update(updates, state, params)");
  Params not_bool{eqx::array(1.f), eqx::array(true)};
  CHECK(message_of<eqx::DTypeError>([&] { optim::tree_mask(not_bool); }) ==
        "eqx::optim::tree_mask: the mask leaf at .w is f32[]; a mask tree has a bool scalar (eqx::array(true) / "
        "eqx::array(false)) or None at each leaf");
}

// --- serialisation and jit ------------------------------------------------------------

TEST_CASE("optim: state round-trips through tree_serialise_leaves and training resumes identically", "[optim]") {
  auto opt = optim::adamw(optim::exponential_decay(0.1, 3, 0.5), {.weight_decay = 0.01});
  Params p = initial_params();
  auto state = opt.init(p);
  auto run = [&](Params params, auto st, int steps) {
    for (int i = 0; i < steps; ++i) {
      auto [u, s] = opt.update(grad_of(params), st, params);
      st = s;
      params = eqx::apply_updates(params, u);
    }
    return std::pair{params, st};
  };
  std::tie(p, state) = run(p, state, 3);
  std::stringstream file;
  eqx::tree_serialise_leaves(file, state);
  const std::string bytes = file.str();
  auto loaded = eqx::tree_deserialise_leaves(file, opt.init(initial_params()));
  std::stringstream again;
  eqx::tree_serialise_leaves(again, loaded);
  CHECK(again.str() == bytes);
  CHECK(std::get<2>(loaded).count.item<std::int32_t>() == 3);

  auto [p1, s1] = run(p, state, 4);
  auto [p2, s2] = run(p, loaded, 4);
  CHECK(values(p1.w) == values(p2.w));
  CHECK(values(p1.b) == values(p2.b));
  CHECK(values(std::get<0>(s1).nu.b) == values(std::get<0>(s2).nu.b));
}

TEST_CASE("optim: a jitted value_and_grad + adamw + apply_updates step traces once over 10 steps", "[optim][jit]") {
  auto opt = optim::adamw(optim::warmup_cosine_decay_schedule(0.0, 0.1, 3, 10), {.weight_decay = 1e-3});
  using State = decltype(opt.init(std::declval<Params>()));
  auto loss_fn = [](const Params& p) {
    Params g = grad_of(p);  // loss with this gradient: 0.5 * sum(g * (p - target))
    return 0.5 * (eqx::sum(g.w * g.w) + eqx::sum(g.b * g.b));
  };
  auto step = eqx::filter_jit(eqx::debug::assert_max_traces(
      [opt, loss_fn](const Params& p, const State& s) {
        auto [loss, grads] = eqx::filter_value_and_grad(loss_fn)(p);
        auto [updates, next] = opt.update(grads, s, p);
        return std::tuple{eqx::apply_updates(p, updates), next, loss};
      },
      1, "train_step"));
  Params p = initial_params(), q = p;
  State s = opt.init(p), t = s;
  for (int i = 0; i < 10; ++i) {
    std::tie(p, s, std::ignore) = step(p, s);
    auto [loss, grads] = eqx::filter_value_and_grad(loss_fn)(q);
    auto [updates, next] = opt.update(grads, t, q);
    q = eqx::apply_updates(q, updates);
    t = next;
  }
  CHECK(eqx::debug::get_num_traces(step) == 1);
  CHECK(std::get<0>(s).count.item<std::int32_t>() == 10);
  const auto pw = values(p.w), qw = values(q.w);
  for (std::size_t i = 0; i < pw.size(); ++i) CHECK(pw[i] == Approx(qw[i]).epsilon(1e-12));
}

// --- losses ------------------------------------------------------------------------

TEST_CASE("optim: losses against their formulas, per example", "[optim][loss]") {
  const Array logits = eqx::array(std::vector<double>{1.0, 2.0, 0.5, -1.0, 0.0, 3.0}, {2, 3});
  const Array labels = eqx::array({1, 2});
  auto lse = [](double a, double b, double c) { return std::log(std::exp(a) + std::exp(b) + std::exp(c)); };
  const double l0 = lse(1, 2, 0.5) - 2.0, l1 = lse(-1, 0, 3) - 3.0;
  eqx_test::check<double>(optim::softmax_cross_entropy_with_integer_labels(logits, labels), {2}, {l0, l1});
  eqx_test::check<double>(optim::softmax_cross_entropy(logits, eqx::one_hot(labels, 3, eqx::float64)), {2}, {l0, l1});
  const Array soft = eqx::array(std::vector<double>{0.2, 0.8, 0.0, 0.5, 0.0, 0.5}, {2, 3});
  eqx_test::check<double>(optim::softmax_cross_entropy(logits, soft), {2},
                          {-(0.2 * (1 - lse(1, 2, 0.5)) + 0.8 * (2 - lse(1, 2, 0.5))),
                           -(0.5 * (-1 - lse(-1, 0, 3)) + 0.5 * (3 - lse(-1, 0, 3)))});

  const Array x = eqx::array({-2.0, 0.0, 3.0});
  const Array y = eqx::array({0.0, 1.0, 0.25});
  auto bce = [](double z, double t) {
    const double p = 1 / (1 + std::exp(-z));
    return -t * std::log(p) - (1 - t) * std::log(1 - p);
  };
  eqx_test::check<double>(optim::sigmoid_binary_cross_entropy(x, y), {3}, {bce(-2, 0), bce(0, 1), bce(3, 0.25)});
  eqx_test::check<double>(optim::squared_error(x, y), {3}, {4.0, 1.0, 2.75 * 2.75});
  eqx_test::check<double>(optim::squared_error(x), {3}, {4.0, 0.0, 9.0});
  eqx_test::check<double>(optim::l2_loss(x, y), {3}, {2.0, 0.5, 0.5 * 2.75 * 2.75});
  eqx_test::check<double>(optim::huber_loss(x, y), {3}, {0.5 + 1.0, 0.5, 0.5 + 1.75});
  eqx_test::check<double>(optim::huber_loss(x, y, 3.0), {3}, {2.0, 0.5, 0.5 * 2.75 * 2.75});
}

TEST_CASE("optim: cross entropies are finite with finite gradients at logits of +-1e4", "[optim][loss]") {
  const Array logits = eqx::array(std::vector<float>{1e4f, -1e4f, 0.f, -1e4f, 1e4f, 1e4f}, {2, 3});
  const Array labels = eqx::array({1, 0});
  auto ce = [&](const Array& z) { return eqx::mean(optim::softmax_cross_entropy_with_integer_labels(z, labels)); };
  auto [v, g] = eqx::filter_value_and_grad(ce)(logits);
  CHECK(v.item<float>() == Approx(2e4f + std::log(2.f) / 2));
  for (float gi : g.to_vector<float>()) CHECK(std::isfinite(gi));
  eqx_test::check<float>(g, {2, 3}, {0.5f, -0.5f, 0.f, -0.5f, 0.25f, 0.25f});
  auto ce1 = [&](const Array& z) { return eqx::mean(optim::softmax_cross_entropy(z, eqx::one_hot(labels, 3))); };
  auto g1 = eqx::filter_grad(ce1)(logits);
  eqx_test::check<float>(g1, {2, 3}, {0.5f, -0.5f, 0.f, -0.5f, 0.25f, 0.25f});
  const Array z = eqx::array({1e4f, -1e4f, 1e4f, -1e4f});
  const Array t = eqx::array({0.f, 1.f, 1.f, 0.f});
  auto bce = [&](const Array& a) { return eqx::sum(optim::sigmoid_binary_cross_entropy(a, t)); };
  auto [bv, bg] = eqx::filter_value_and_grad(bce)(z);
  CHECK(bv.item<float>() == Approx(2e4f));
  eqx_test::check<float>(bg, {4}, {1.f, -1.f, 0.f, 0.f});
}

TEST_CASE("optim: loss misuse", "[optim][loss][errors]") {
  CHECK(message_of<eqx::DTypeError>([] {
          optim::softmax_cross_entropy_with_integer_labels(eqx::zeros({2, 3}), eqx::zeros({2}));
        }) ==
        "eqx::optim::softmax_cross_entropy_with_integer_labels: labels have dtype float32; they must be integer class "
        "indices (int32)");
  CHECK(message_of<eqx::ShapeError>([] {
          optim::softmax_cross_entropy_with_integer_labels(eqx::zeros({2, 3}), eqx::reshape(eqx::array({1, 2, 0}), {3, 1}));
        }) != "(no exception)");
  CHECK(message_of<eqx::DTypeError>([] { optim::l2_loss(eqx::array({1, 2})); }) ==
        "eqx::optim::l2_loss: predictions have dtype int32; they must be float32 or float64");
}

TEST_CASE("optim: a bare Array as the parameters (no struct around it)", "[optim]") {
  // Adam on f(p) = sum(p^2) / 2 (gradient p) from p = [1, -2]: after one step each element moves by -lr
  // (the first Adam step is lr * g / (|g| + eps) = lr * sign(g)).
  eqx::Array p = eqx::array({1.0, -2.0});
  auto opt = eqx::optim::adam(0.1);
  auto state = opt.init(p);
  auto [updates, next] = opt.update(p, state, p);
  eqx_test::check(eqx::apply_updates(p, updates), {2}, std::vector<double>{1.0 - 0.1 * (1 / (1 + 1e-8)), -2.0 + 0.1 * (2 / (2 + 1e-8))});
  CHECK(std::get<0>(next).count.item<std::int32_t>() == 1);
}

}  // namespace optim_optim_test
