// eqx::optim's wrappers and combinators (optim/wrappers.hpp): masked,
// multi_transform, set_to_zero, zero_nans, apply_every, MultiSteps and
// inject_hyperparams. Trajectories are compared with the torch references
// of tests/optim/fixtures_optim.py (each leaf of the two-leaf problem is
// optimised independently there, so a leaf routed to one optimiser must
// follow that optimiser's row for it), or with the same optimiser run on
// the averaged gradients.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
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
namespace optim_optim_combine_test {

using eqx::Array;
namespace optim = eqx::optim;
using eqx_test::message_of;

namespace {

using namespace optim_test;

Params scaled(const Params& g, double c) { return {g.w * c, g.b * c}; }


double max_diff(const Params& a, const Params& b) {
  double worst = 0;
  for (auto [x, y] : {std::pair{a.w, b.w}, std::pair{a.b, b.b}}) {
    auto u = values(x), v = values(y);
    for (std::size_t i = 0; i < u.size(); ++i) worst = std::max(worst, std::abs(u[i] - v[i]));
  }
  return worst;
}

/// Runs `opt` for 8 steps; w must follow fixture `w_case`, b fixture
/// `b_case` (or stay at its initial value when b_case is empty).
template <class Opt>
void check_leaves(const Opt& opt, const std::string& w_case, const std::string& b_case, double tol = 1e-6) {
  INFO("w as " << w_case << ", b as " << (b_case.empty() ? "frozen" : b_case));
  const Array wt = fixture(w_case + "_w");
  const Array bt = b_case.empty() ? Array{} : fixture(b_case + "_b");
  const auto steps = static_cast<std::size_t>(wt.shape()[0]);
  REQUIRE(steps >= 5);
  Params p = initial_params();
  auto state = opt.init(p);
  double worst = 0;
  for (std::size_t s = 0; s < steps; ++s) {
    auto [updates, next] = opt.update(grad_of(p), state, p);
    state = next;
    p = eqx::apply_updates(p, updates);
    worst = std::max(worst, row_error(p.w, wt, s));
    if (b_case.empty()) CHECK(values(p.b) == values(initial_params().b));
    else worst = std::max(worst, row_error(p.b, bt, s));
  }
  INFO("largest error " << worst);
  CHECK(worst <= tol);
}

bool is_w(const eqx::TreePath& path, const Array&) { return path.str() == ".w"; }

}  // namespace

// --- masked, multi_transform, set_to_zero, zero_nans ------------------------------------

TEST_CASE("optim: masked momentum on w only: w follows torch's SGD-momentum, b plain SGD", "[optim][combine]") {
  // chain(masked(trace(0.9), w), scale(-0.1)): b's gradient skips the momentum.
  auto opt = optim::chain(optim::masked(optim::trace(0.9), is_w), optim::scale(-0.1));
  check_leaves(opt, "sgd_momentum", "sgd");
  // The inner state keeps nothing for the masked-out leaf, as Optax's MaskedNode.
  auto state = opt.init(initial_params());
  CHECK(std::get<0>(state).inner_state.trace.w.has_value());
  CHECK_FALSE(std::get<0>(state).inner_state.trace.b.has_value());
  // The same with a mask tree (Optax's mask pytree).
  Params mask{eqx::array(true), eqx::array(false)};
  check_leaves(optim::chain(optim::masked(optim::trace(0.9), optim::tree_mask(mask)), optim::scale(-0.1)),
               "sgd_momentum", "sgd");
  // A masked whole optimiser: Adam on w, b's gradient passed through unchanged.
  auto adam_w = optim::masked(optim::adam(0.1, {.b1 = 0.8, .b2 = 0.95}), is_w);
  Params p = initial_params();
  auto [u, s] = adam_w.update(grad_of(p), adam_w.init(p), p);
  CHECK(values(u.b) == values(grad_of(p).b));
  CHECK(values(u.w)[0] == Approx(-0.1).epsilon(1e-6));  // first Adam step: -lr * g / (|g| + eps)
}

TEST_CASE("optim: multi_transform: Adam on w, SGD-momentum on b, each matching torch", "[optim][combine]") {
  auto opt = optim::multi_transform(std::tuple{optim::labelled("adam", optim::adam(0.1, {.b1 = 0.8, .b2 = 0.95})),
                                               optim::labelled("sgd", optim::sgd(0.1, {.momentum = 0.9}))},
                                    [](const eqx::TreePath& path, const Array&) {
                                      return path.str() == ".w" ? "adam" : "sgd";
                                    });
  check_leaves(opt, "adam", "sgd_momentum");
  auto state = opt.init(initial_params());
  const auto& [adam_state, sgd_state] = state.inner_states;
  CHECK(std::get<0>(adam_state.inner_state).mu.w.has_value());
  CHECK_FALSE(std::get<0>(adam_state.inner_state).mu.b.has_value());
  CHECK_FALSE(std::get<0>(sgd_state.inner_state).trace.w.has_value());
  CHECK(std::get<0>(sgd_state.inner_state).trace.b.has_value());
}

TEST_CASE("optim: multi_transform with set_to_zero freezes a labelled part", "[optim][combine]") {
  // Labels by shape: matrices frozen, vectors trained with SGD.
  auto opt = optim::multi_transform(
      std::tuple{optim::labelled("train", optim::sgd(0.1)), optim::labelled("frozen", optim::set_to_zero())},
      [](const Array& p) { return p.ndim() >= 2 ? "frozen" : "train"; });
  check_leaves(opt, "sgd", "");
  // The frozen part's update is exactly zero (not -0.0 * g), and in the leaf's dtype.
  Params p = initial_params();
  auto [u, s] = opt.update(grad_of(p), opt.init(p), p);
  CHECK(values(u.b) == std::vector<double>{0, 0, 0, 0});
  CHECK(u.b.dtype() == eqx::float64);
  // Inside a jitted value_and_grad step.
  auto step = eqx::filter_jit([opt](const Params& p, const decltype(opt.init(p))& s) {
    auto grads = eqx::filter_grad([](const Params& q) {
      Params g = grad_of(q);
      return eqx::sum(g.w * g.w) + eqx::sum(g.b * g.b);
    })(p);
    auto [u, next] = opt.update(grads, s, p);
    return std::pair{eqx::apply_updates(p, u), next};
  });
  auto [p1, s1] = step(p, opt.init(p));
  CHECK(values(p1.b) == values(p.b));
  CHECK(values(p1.w) != values(p.w));
}

TEST_CASE("optim: set_to_zero and zero_nans", "[optim][combine]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Params g{eqx::array({1.0, nan, -2.0}), eqx::array(std::vector<double>{3, 4, 5, 6}, {2, 2})};
  auto z = optim::set_to_zero();
  auto [u0, s0] = z.update(g, z.init(g));
  CHECK(values(u0.w) == std::vector<double>{0, 0, 0});
  auto zn = optim::zero_nans();
  auto state = zn.init(g);
  CHECK(state.found_nan.w.dtype() == eqx::bool_);
  CHECK_FALSE(state.found_nan.w.item<bool>());
  auto [u1, s1] = zn.update(g, state);
  CHECK(values(u1.w) == std::vector<double>{1.0, 0.0, -2.0});
  CHECK(values(u1.b) == values(g.b));
  CHECK(s1.found_nan.w.item<bool>());
  CHECK_FALSE(s1.found_nan.b.item<bool>());
  // Before Adam, a NaN gradient no longer poisons the moments.
  auto opt = optim::chain(optim::zero_nans(), optim::adam(0.1));
  auto [u2, s2] = opt.update(g, opt.init(g), g);
  for (double v : values(std::get<0>(std::get<1>(s2)).nu.w)) CHECK(std::isfinite(v));
  // A chain inside a chain keeps its own tuple state, even alone (no CTAD unwrapping).
  using Inner = decltype(optim::adam(0.1).init(g));
  static_assert(std::is_same_v<decltype(optim::chain(optim::adam(0.1)).init(g)), std::tuple<Inner>>);
  static_assert(std::is_same_v<decltype(s2), std::tuple<optim::ZeroNansState<Params>, Inner>>);
}

TEST_CASE("optim: multi_transform and masked misuse", "[optim][combine][errors]") {
  auto opt = optim::multi_transform(std::tuple{optim::labelled("adam", optim::adam(0.1))},
                                    [](const eqx::TreePath& path, const Array&) { return path.str().substr(1); });
  CHECK(message_of<eqx::ValueError>([&] { opt.init(initial_params()); }) ==
        "eqx::optim::multi_transform: the leaf at .w has label \"w\", which has no transformation (the labels given "
        "are: adam); give a transformation for every label param_labels returns");
  CHECK(message_of<eqx::ValueError>([] {
          optim::multi_transform(
              std::tuple{optim::labelled("a", optim::sgd(0.1)), optim::labelled("a", optim::set_to_zero())},
              [](const Array&) { return "a"; });
        }) == "eqx::optim::multi_transform: the label \"a\" is given twice; give each label one transformation");
  // An update for a leaf the masked inner state holds nothing for names the path.
  auto m = optim::masked(optim::adam(0.1), is_w);
  auto state = m.init(initial_params());
  auto all = optim::adam(0.1);
  using S = decltype(state);
  S wrong = state;
  std::get<0>(wrong.inner_state).mu.w = Array{};
  CHECK(message_of<eqx::TreeStructureError>([&] { m.update(grad_of(initial_params()), wrong); }) ==
        "eqx::optim::scale_by_adam: at .w the update is f64[3] but the optimiser state has None (the state was "
        "initialised from params with None or a non-float leaf there); initialise the optimiser with params that "
        "have this leaf");
  (void)all;
}

// --- gradient accumulation --------------------------------------------------------------

TEST_CASE("optim: MultiSteps(adam, 3) on micro-gradients averaging g follows torch's Adam on g", "[optim][combine]") {
  // Micro-batch gradients 0.5 g, g, 1.5 g at fixed params average to g, so
  // every third step must land on torch's Adam trajectory, and the steps in
  // between must leave the params unchanged.
  const Array wt = fixture("adam_w"), bt = fixture("adam_b");
  auto opt = optim::multi_steps(optim::adam(0.1, {.b1 = 0.8, .b2 = 0.95}), 3);
  Params p = initial_params();
  auto state = opt.init(p);
  double worst = 0;
  for (std::size_t window = 0; window < 8; ++window) {
    for (int micro = 0; micro < 3; ++micro) {
      const Params before = p;
      auto [u, next] = opt.update(scaled(grad_of(p), 0.5 + 0.5 * micro), state, p);
      state = next;
      p = eqx::apply_updates(p, u);
      if (micro < 2) {
        CHECK(values(p.w) == values(before.w));
        CHECK(values(u.b) == std::vector<double>{0, 0, 0, 0});
        CHECK_FALSE(opt.has_updated(state).item<bool>());
      } else {
        CHECK(opt.has_updated(state).item<bool>());
      }
    }
    worst = std::max({worst, row_error(p.w, wt, window), row_error(p.b, bt, window)});
  }
  INFO("largest error " << worst);
  CHECK(worst <= 1e-6);
  CHECK(state.gradient_step.item<std::int32_t>() == 8);
  CHECK(state.mini_step.item<std::int32_t>() == 0);
  CHECK(std::get<0>(state.inner_opt_state).count.item<std::int32_t>() == 8);
  CHECK(values(state.acc_grads.w) == std::vector<double>{0, 0, 0});
}

TEST_CASE("optim: MultiSteps equals the optimiser on averaged (or summed) varying gradients", "[optim][combine]") {
  // Micro-gradients that differ in direction and size; the reference
  // averages (or sums) them itself. SGD-momentum, not Adam: Adam's step is
  // nearly invariant to the gradient's scale, so mean and sum would agree.
  auto inner = optim::chain(optim::add_decayed_weights(0.1), optim::sgd(0.05, {.momentum = 0.9}));
  auto micro_grad = [](const Params& p, int i) {
    Params g = grad_of(p);
    const Array dw = eqx::array(std::vector<double>{0.3, -0.2 * i, 0.1 * i * i}, {3});
    const Array db = eqx::array(std::vector<double>{-0.5 * i, 0.25, 0.0, 0.1 * i}, {2, 2});
    return Params{g.w + dw, g.b * (1.0 + 0.2 * i) + db};
  };
  for (bool mean : {true, false}) {
    INFO("use_grad_mean " << mean);
    auto opt = optim::multi_steps(inner, 4, {.use_grad_mean = mean});
    Params p = initial_params(), q = p;
    auto s = opt.init(p);
    auto t = inner.init(q);
    for (int window = 0; window < 6; ++window) {
      Params total{eqx::zeros({3}, eqx::float64), eqx::zeros({2, 2}, eqx::float64)};
      for (int i = 0; i < 4; ++i) {
        auto [u, next] = opt.update(micro_grad(p, i), s, p);
        s = next;
        p = eqx::apply_updates(p, u);
        Params g = micro_grad(q, i);
        total = {total.w + g.w, total.b + g.b};
      }
      auto [u, next] = inner.update(mean ? scaled(total, 0.25) : total, t, q);
      t = next;
      q = eqx::apply_updates(q, u);
      INFO("window " << window);
      CHECK(max_diff(p, q) <= 1e-12);
    }
  }
}

TEST_CASE("optim: MultiSteps with a schedule of k: 2 mini-steps for the first 2 updates, then 3", "[optim][combine]") {
  auto inner = optim::sgd(0.1, {.momentum = 0.9});
  auto opt = optim::multi_steps(inner, [](const Array& step) { return eqx::where(step < 2, 2, 3); });
  Params p = initial_params(), q = p;
  auto s = opt.init(p);
  auto t = inner.init(q);
  const std::vector<int> windows{2, 2, 3, 3, 3};
  for (std::size_t w = 0; w < windows.size(); ++w) {
    const int k = windows[w];
    Params total{eqx::zeros({3}, eqx::float64), eqx::zeros({2, 2}, eqx::float64)};
    for (int i = 0; i < k; ++i) {
      const Params g = scaled(grad_of(p), 1.0 + 0.5 * i);
      auto [u, next] = opt.update(g, s, p);
      s = next;
      p = eqx::apply_updates(p, u);
      const Params h = scaled(grad_of(q), 1.0 + 0.5 * i);
      total = {total.w + h.w, total.b + h.b};
      CHECK(opt.has_updated(s).item<bool>() == (i == k - 1));
    }
    auto [u, next] = inner.update(scaled(total, 1.0 / k), t, q);
    t = next;
    q = eqx::apply_updates(q, u);
    INFO("window " << w << " of " << k << " mini-steps");
    CHECK(max_diff(p, q) <= 1e-12);
  }
  CHECK(s.gradient_step.item<std::int32_t>() == 5);
  auto bad = optim::multi_steps(inner, [](const Array&) { return eqx::array(2.0); });
  CHECK(message_of<eqx::DTypeError>([&] { bad.update(grad_of(p), bad.init(p), p); }) ==
        "eqx::optim::MultiSteps: every_k_schedule returned f64[]; it must return an integer scalar (the number of "
        "mini-steps)");
}

TEST_CASE("optim: apply_every(3) emits the sum of 3 updates every third step (Optax's formula)", "[optim][combine]") {
  // Micro-gradients 0.2 g, 0.3 g, 0.5 g sum to g: chained with sgd(0.1),
  // every third step follows torch's SGD and the others do not move.
  const Array wt = fixture("sgd_w"), bt = fixture("sgd_b");
  auto opt = optim::chain(optim::apply_every(3), optim::sgd(0.1));
  Params p = initial_params();
  auto state = opt.init(p);
  const double parts[] = {0.2, 0.3, 0.5};
  double worst = 0;
  for (std::size_t window = 0; window < 8; ++window) {
    for (int micro = 0; micro < 3; ++micro) {
      auto [u, next] = opt.update(scaled(grad_of(p), parts[micro]), state, p);
      state = next;
      if (micro < 2) CHECK(values(u.w) == std::vector<double>{0, 0, 0});
      p = eqx::apply_updates(p, u);
      CHECK(std::get<0>(state).count.item<std::int32_t>() == (micro + 1) % 3);
    }
    worst = std::max({worst, row_error(p.w, wt, window), row_error(p.b, bt, window)});
  }
  INFO("largest error " << worst);
  CHECK(worst <= 1e-6);
  CHECK(message_of<eqx::ValueError>([] { optim::apply_every(0); }) ==
        "eqx::optim::apply_every: k is 0; it must be a positive int32");
  CHECK(message_of<eqx::ValueError>([] { optim::multi_steps(optim::sgd(0.1), -2); }) ==
        "eqx::optim::MultiSteps: every_k_schedule is -2; it must be a positive int32");
}

// --- inject_hyperparams ------------------------------------------------------------------

TEST_CASE("optim: inject_hyperparams: a jitted step follows torch, the learning rate changes without retracing",
          "[optim][combine][jit]") {
  auto opt = optim::inject_hyperparams(
      [](const optim::Hyperparams& h) { return optim::adam(h["learning_rate"], {.b1 = 0.8, .b2 = 0.95}); },
      {{"learning_rate", 0.1}});
  using State = decltype(opt.init(std::declval<Params>()));
  auto step = eqx::filter_jit(eqx::debug::assert_max_traces(
      [opt](const Params& p, const State& s) {
        auto [u, next] = opt.update(grad_of(p), s, p);
        return std::pair{eqx::apply_updates(p, u), next};
      },
      1, "inject_step"));

  // A constant 0.1: torch's Adam trajectory.
  const Array wt = fixture("adam_w"), bt = fixture("adam_b");
  Params p = initial_params();
  State s = opt.init(p);
  CHECK(s.hyperparams.at("learning_rate").dtype() == eqx::float64);  // the params' dtype
  CHECK(s.hyperparams.at("learning_rate").item<double>() == 0.1);
  double worst = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    std::tie(p, s) = step(p, s);
    worst = std::max({worst, row_error(p.w, wt, i), row_error(p.b, bt, i)});
  }
  CHECK(worst <= 1e-6);
  CHECK(s.count.item<std::int32_t>() == 8);

  // Halving the rate after 4 steps equals a piecewise-constant schedule, still one trace.
  auto reference = optim::adam(optim::piecewise_constant_schedule(0.1, {{4, 0.5}}), {.b1 = 0.8, .b2 = 0.95});
  Params q = initial_params();
  auto t = reference.init(q);
  p = q;
  s = opt.init(p);
  for (int i = 0; i < 8; ++i) {
    if (i == 4) optim::set_hyperparam(s, "learning_rate", 0.05);
    std::tie(p, s) = step(p, s);
    auto [u, next] = reference.update(grad_of(q), t, q);
    t = next;
    q = eqx::apply_updates(q, u);
    INFO("step " << i);
    CHECK(max_diff(p, q) <= 1e-12);
  }
  CHECK(eqx::debug::get_num_traces(step) == 1);
  CHECK(message_of<eqx::ValueError>([&] { optim::set_hyperparam(s, "lr", 0.1); }) ==
        "eqx::optim::set_hyperparam: the state has no hyperparameter \"lr\" (it has: learning_rate)");
}

TEST_CASE("optim: inject_hyperparams with weight decay, a schedule, float32, serialisation", "[optim][combine]") {
  // adamw with both rates injected follows torch's AdamW.
  auto make = [](const optim::Hyperparams& h) {
    return optim::adamw(h["learning_rate"], {.weight_decay = h["weight_decay"]});
  };
  check_leaves(optim::inject_hyperparams(make, {{"learning_rate", 0.1}, {"weight_decay", 0.05}}), "adamw", "adamw");

  // A scheduled hyperparameter is evaluated at the count before each update and stored.
  auto sched = optim::inject_hyperparams(make, {{"learning_rate", optim::linear_schedule(0.1, 0.0, 4)},
                                                {"weight_decay", 0.0}});
  Params p = initial_params();
  auto s = sched.init(p);
  CHECK(s.hyperparams.at("learning_rate").item<double>() == 0.1);
  const std::vector<double> want{0.1, 0.075, 0.05, 0.025, 0.0};
  for (int i = 0; i < 5; ++i) {
    auto [u, next] = sched.update(grad_of(p), s, p);
    s = next;
    CHECK(s.hyperparams.at("learning_rate").item<double>() == Approx(want[i]).margin(1e-15));
  }
  const optim::Hyperparams h(s.hyperparams);
  CHECK(h.array("learning_rate").item<double>() == Approx(0.0).margin(1e-15));
  CHECK(message_of<eqx::ValueError>([&] { h.array("beta"); }) ==
        "eqx::optim::inject_hyperparams: the factory asked for the hyperparameter \"beta\", which was not given "
        "(given: learning_rate, weight_decay)");
  // float32 params keep float32 hyperparameters.
  Params f{eqx::array({1.f, 2.f, 3.f}), eqx::ones({2, 2})};
  auto s32 = sched.init(f);
  CHECK(s32.hyperparams.at("weight_decay").dtype() == eqx::float32);

  // The state (a map of Arrays and the inner tuple) round-trips bit-exactly.
  std::stringstream file;
  eqx::tree_serialise_leaves(file, s);
  const std::string bytes = file.str();
  auto loaded = eqx::tree_deserialise_leaves(file, sched.init(initial_params()));
  std::stringstream again;
  eqx::tree_serialise_leaves(again, loaded);
  CHECK(again.str() == bytes);
  CHECK(loaded.count.item<std::int32_t>() == 5);

  auto bad = optim::inject_hyperparams([](const optim::Hyperparams& h) { return optim::sgd(h["lr"]); },
                                       {{"learning_rate", 0.1}});
  CHECK(message_of<eqx::ValueError>([&] { bad.init(initial_params()); }) ==
        "eqx::optim::inject_hyperparams: the factory asked for the hyperparameter \"lr\", which was not given "
        "(given: learning_rate)");
}

TEST_CASE("optim: MultiSteps inside filter_jit traces once and matches the eager run", "[optim][combine][jit]") {
  auto opt = optim::multi_steps(optim::adam(0.1, {.b1 = 0.8, .b2 = 0.95}), 3);
  using State = decltype(opt.init(std::declval<Params>()));
  auto step = eqx::filter_jit(eqx::debug::assert_max_traces(
      [opt](const Params& p, const State& s, const Array& c) {
        auto [u, next] = opt.update(scaled(grad_of(p), 1.0), s, p);
        (void)c;
        return std::pair{eqx::apply_updates(p, u), next};
      },
      1, "multi_steps_step"));
  Params p = initial_params(), q = p;
  State s = opt.init(p), t = s;
  for (int i = 0; i < 9; ++i) {
    std::tie(p, s) = step(p, s, eqx::array(i));
    auto [u, next] = opt.update(grad_of(q), t, q);
    t = next;
    q = eqx::apply_updates(q, u);
  }
  CHECK(eqx::debug::get_num_traces(step) == 1);
  CHECK(max_diff(p, q) <= 1e-12);
  CHECK(s.gradient_step.item<std::int32_t>() == 3);
}

// --- more building blocks and optimisers ----------------------------------------------

TEST_CASE("optim: AdaDelta matches torch; AMSGrad, Yogi, NovoGrad match Optax's formulas (NumPy)", "[optim][alias]") {
  // torch.optim.Adadelta(lr=1, rho=0.9, eps=1e-6, weight_decay=0.1): its decay is added to the gradient, as Optax's.
  check_leaves(optim::adadelta(1.0, {.weight_decay = 0.1}), "adadelta", "adadelta");
  check_leaves(optim::amsgrad(0.1, {.b2 = 0.99}), "amsgrad", "amsgrad", 1e-12);
  check_leaves(optim::yogi(0.1), "yogi", "yogi", 1e-12);
  check_leaves(optim::novograd(0.1, {.weight_decay = 0.01}), "novograd", "novograd", 1e-12);
  auto nv = optim::novograd(0.1);
  auto ns = nv.init(initial_params());
  CHECK(std::get<0>(ns).nu.b.shape() == eqx::Shape{});  // one scalar per leaf
  CHECK(std::get<0>(ns).nu.b.dtype() == eqx::float64);
}

TEST_CASE("optim: LAMB, LARS, Fromage and signSGD match Optax's formulas (NumPy)", "[optim][alias]") {
  check_leaves(optim::lamb(0.1, {.weight_decay = 0.01}), "lamb", "lamb", 1e-12);
  check_leaves(optim::lars(0.1, {.weight_decay = 0.01}), "lars", "lars", 1e-12);
  check_leaves(optim::fromage(0.1), "fromage", "fromage", 1e-12);
  // A scheduled rate (constant 0.1 as a schedule) takes the schedule branch of fromage.
  check_leaves(optim::fromage(optim::constant_schedule(0.1)), "fromage", "fromage", 1e-12);
  check_leaves(optim::sign_sgd(0.05), "sign_sgd", "sign_sgd", 1e-12);
}

TEST_CASE("optim: ema, centralize and clip_by_block_rms chained with SGD match Optax's formulas (NumPy)",
          "[optim][transform]") {
  check_leaves(optim::chain(optim::ema(0.9), optim::scale(-0.1)), "ema", "ema", 1e-12);
  check_leaves(optim::chain(optim::centralize(), optim::sgd(0.1)), "centralize", "centralize", 1e-12);
  check_leaves(optim::chain(optim::clip_by_block_rms(0.5), optim::sgd(0.1)), "clip_by_block_rms",
               "clip_by_block_rms", 1e-12);
  // Unit cases: centralize's row means, the trust ratio's zero-norm guard, ema without debiasing.
  Params g{eqx::array({1.0, 2.0, 3.0}), eqx::array(std::vector<double>{1, 3, 10, 20}, {2, 2})};
  auto [c, cs] = optim::centralize().update(g, optim::EmptyState{});
  CHECK(values(c.w) == values(g.w));
  CHECK(values(c.b) == std::vector<double>{-1, 1, -5, 5});
  Params zero_p{eqx::zeros({3}, eqx::float64), eqx::array(std::vector<double>{3, 0, 0, 4}, {2, 2})};
  auto tr = optim::scale_by_trust_ratio();
  auto [t, ts] = tr.update(g, tr.init(g), zero_p);
  CHECK(values(t.w) == values(g.w));  // ||p|| = 0: ratio 1
  const double gb = std::sqrt(1 + 9 + 100 + 400.0);
  CHECK(values(t.b)[3] == Approx(20 * 5 / gb).epsilon(1e-14));
  auto e = optim::ema(0.5, false);
  auto [eu, es] = e.update(g, e.init(g));
  CHECK(values(eu.w) == std::vector<double>{0.5, 1.0, 1.5});
  CHECK(es.count.item<std::int32_t>() == 1);
}

TEST_CASE("optim: noisy_sgd adds normal noise of variance eta / t^gamma from the key in the state", "[optim][alias]") {
  // Optax's add_noise: split the state key into (next key, sample key), one
  // key per leaf from the sample key, noise = sqrt(eta / t^gamma) * normal.
  auto opt = optim::noisy_sgd(0.1, {.eta = 0.3, .gamma = 0.55, .key = eqx::random::key(7)});
  Params p = initial_params();
  auto state = opt.init(p);
  eqx::random::Key key = eqx::random::key(7);
  for (int t = 1; t <= 5; ++t) {
    const Params g = grad_of(p);
    auto [u, next] = opt.update(g, state, p);
    auto ks = eqx::random::split_keys(key, 2);
    auto leaf_keys = eqx::random::split_keys(ks[1], 2);
    const double sd = std::sqrt(0.3 / std::pow(t, 0.55));
    Array want_w = -0.1 * (g.w + sd * eqx::random::normal(leaf_keys[0], {3}, eqx::float64));
    Array want_b = -0.1 * (g.b + sd * eqx::random::normal(leaf_keys[1], {2, 2}, eqx::float64));
    INFO("step " << t);
    CHECK(max_diff(u, Params{want_w, want_b}) <= 1e-12);
    CHECK(values(std::get<0>(next).rng_key) == values(ks[0]));
    key = ks[0];
    state = next;
    p = eqx::apply_updates(p, u);
  }
  CHECK(std::get<0>(state).count.item<std::int32_t>() == 5);
  // The same key gives the same run; eta = 0 is plain SGD.
  check_leaves(optim::noisy_sgd(0.1, {.eta = 0.0}), "sgd", "sgd", 1e-12);
}

TEST_CASE("optim: building blocks that need the params say so", "[optim][errors]") {
  Params g = grad_of(initial_params());
  CHECK(message_of<eqx::ValueError>([&] { optim::scale_by_trust_ratio().update(g, optim::EmptyState{}); }) ==
        "eqx::optim::scale_by_trust_ratio: the trust ratio needs the params; call update(updates, state, params)");
  auto nv = optim::scale_by_novograd();
  CHECK(message_of<eqx::ValueError>([&] { nv.update(g, nv.init(g)); }) ==
        "eqx::optim::scale_by_novograd: NovoGrad needs the params; call update(updates, state, params)");
}

// --- schedules ----------------------------------------------------------------------

namespace {
double at(const optim::Schedule& s, int step) { return s(eqx::array(step), eqx::float64).item<double>(); }
}  // namespace

TEST_CASE("optim: warmup_exponential_decay, onecycle and sgdr schedules against their formulas", "[optim][schedule]") {
  auto wed = optim::warmup_exponential_decay_schedule(0.0, 1.0, 4, 2, 0.5, {.end_value = 0.1});
  auto want_wed = [](int t) { return t < 4 ? t / 4.0 : std::max(std::pow(0.5, (t - 4) / 2.0), 0.1); };
  for (int t : {0, 2, 3, 4, 5, 6, 8, 10, 11, 12, 100}) {
    INFO("warmup_exponential_decay step " << t);
    CHECK(at(wed, t) == Approx(want_wed(t)).epsilon(1e-14).margin(1e-300));
  }

  // linear_onecycle(100, 1): 0.04 -> 1 at 30 -> 0.04 at 85 -> 4e-6 at 100.
  auto lin = optim::linear_onecycle_schedule(100, 1.0);
  auto want_lin = [](int t) {
    if (t < 30) return 0.04 + (1.0 - 0.04) * t / 30.0;
    if (t < 85) return 1.0 + (0.04 - 1.0) * (t - 30) / 55.0;
    if (t < 100) return 0.04 + (4e-6 - 0.04) * (t - 85) / 15.0;
    return 4e-6;
  };
  for (int t : {0, 15, 29, 30, 50, 84, 85, 92, 99, 100, 1000}) {
    INFO("linear_onecycle step " << t);
    CHECK(at(lin, t) == Approx(want_lin(t)).epsilon(1e-12));
  }

  // cosine_onecycle(100, 1): half-cosine 0.04 -> 1 at 30, then to 0.04 / 1e4 at 100.
  auto cosine = optim::cosine_onecycle_schedule(100, 1.0);
  auto half_cos = [](double a, double b, double pct) { return b + (a - b) / 2 * (std::cos(M_PI * pct) + 1); };
  auto want_cos = [&](int t) {
    if (t < 30) return half_cos(0.04, 1.0, t / 30.0);
    if (t < 100) return half_cos(1.0, 4e-6, (t - 30) / 70.0);
    return 4e-6;
  };
  for (int t : {0, 15, 30, 65, 99, 100, 500}) {
    INFO("cosine_onecycle step " << t);
    CHECK(at(cosine, t) == Approx(want_cos(t)).epsilon(1e-12));
  }
  CHECK(at(cosine, 15) == Approx(0.52).epsilon(1e-12));

  // sgdr: a warmup-cosine cycle of 10 steps, then one of 5 without warmup.
  auto sgdr = optim::sgdr_schedule({{.init_value = 0.0, .peak_value = 1.0, .warmup_steps = 2, .decay_steps = 10,
                                     .end_value = 0.1},
                                    {.peak_value = 0.5, .decay_steps = 5}});
  auto want_sgdr = [](int t) {
    if (t < 2) return t / 2.0;
    if (t < 10) return 0.9 * 0.5 * (1 + std::cos(M_PI * (t - 2) / 8.0)) + 0.1;
    const int k = std::min(t - 10, 5);
    return 0.5 * 0.5 * (1 + std::cos(M_PI * k / 5.0));
  };
  for (int t : {0, 1, 2, 6, 9, 10, 12, 15, 100}) {
    INFO("sgdr step " << t);
    CHECK(at(sgdr, t) == Approx(want_sgdr(t)).epsilon(1e-12).margin(1e-15));
  }

  CHECK(message_of<eqx::ValueError>([] { optim::linear_onecycle_schedule(0, 1.0); }) ==
        "eqx::optim::linear_onecycle_schedule: transition_steps is 0; it must be positive");
  CHECK(message_of<eqx::ValueError>([] { optim::sgdr_schedule({}); }) ==
        "eqx::optim::sgdr_schedule: no cycles were given");
  CHECK(message_of<eqx::ValueError>([] {
          optim::piecewise_interpolate_schedule(optim::Interpolation::linear, 1.0, {{5, -1.0}});
        }) == "eqx::optim::piecewise_interpolate_schedule: the scale at boundary 5 is -1.000000; scales must be "
              "non-negative");
}

// --- losses ---------------------------------------------------------------------------

TEST_CASE("optim: log_cosh, cosine similarity/distance, hinge, KL divergence, smooth_labels", "[optim][loss]") {
  const Array x = eqx::array({-2.0, 0.0, 3.0});
  const Array y = eqx::array({0.0, 1.0, 0.25});
  eqx_test::check<double>(optim::log_cosh(x, y), {3},
                          {std::log(std::cosh(-2.0)), std::log(std::cosh(-1.0)), std::log(std::cosh(2.75))});
  // Large errors: log(cosh(e)) = |e| - log 2 without overflow, gradient tanh(e) = +-1.
  auto [v, gr] = eqx::filter_value_and_grad([](const Array& e) { return eqx::sum(optim::log_cosh(e)); })(
      eqx::array({1e4f, -1e4f, 0.f}));
  CHECK(v.item<float>() == Approx(2e4f - 2 * std::log(2.f)));
  eqx_test::check<float>(gr, {3}, {1.f, -1.f, 0.f});

  const Array a = eqx::array(std::vector<double>{1, 2, 2, 3, 0, 4}, {2, 3});
  const Array b = eqx::array(std::vector<double>{2, 0, 1, 0, 5, 0}, {2, 3});
  eqx_test::check<double>(optim::cosine_similarity(a, b), {2}, {4.0 / (3 * std::sqrt(5.0)), 0.0});
  eqx_test::check<double>(optim::cosine_distance(a, b), {2}, {1 - 4.0 / (3 * std::sqrt(5.0)), 1.0});
  // epsilon bounds the squared norms from below: a zero vector gives 0, not NaN.
  eqx_test::check<double>(optim::cosine_similarity(eqx::zeros({1, 3}, eqx::float64),
                                                   eqx::array(std::vector<double>{1, 0, 0}, {1, 3}), 1e-12),
                          {1}, {0.0});

  eqx_test::check<double>(optim::hinge_loss(eqx::array({2.0, 0.5, -1.0}), eqx::array({1.0, 1.0, 1.0})), {3},
                          {0.0, 0.5, 2.0});

  const Array logp = eqx::log(eqx::array(std::vector<double>{0.5, 0.25, 0.25, 0.1, 0.2, 0.7}, {2, 3}));
  const Array t = eqx::array(std::vector<double>{1.0, 0.0, 0.0, 0.2, 0.3, 0.5}, {2, 3});
  eqx_test::check<double>(optim::kl_divergence(logp, t), {2},
                          {std::log(1 / 0.5),
                           0.2 * std::log(0.2 / 0.1) + 0.3 * std::log(0.3 / 0.2) + 0.5 * std::log(0.5 / 0.7)});
  auto gk = eqx::filter_grad([&](const Array& tt) { return eqx::sum(optim::kl_divergence(logp, tt)); })(t);
  for (double gi : values(gk)) CHECK(std::isfinite(gi));

  eqx_test::check<double>(optim::smooth_labels(eqx::array(std::vector<double>{0, 1, 0, 0}, {1, 4}), 0.2), {1, 4},
                          {0.05, 0.85, 0.05, 0.05});
  // poly_loss_cross_entropy = CE + epsilon * (1 - p_label) for one-hot labels.
  const Array logits = eqx::array(std::vector<double>{1.0, 2.0, 0.5, -1.0, 0.0, 3.0}, {2, 3});
  const Array onehot = eqx::array(std::vector<double>{0, 1, 0, 0, 0, 1}, {2, 3});
  const double z0 = std::exp(1.0) + std::exp(2.0) + std::exp(0.5), z1 = std::exp(-1.0) + 1 + std::exp(3.0);
  eqx_test::check<double>(optim::poly_loss_cross_entropy(logits, onehot, 2.0), {2},
                          {std::log(z0) - 2.0 + 2.0 * (1 - std::exp(2.0) / z0),
                           std::log(z1) - 3.0 + 2.0 * (1 - std::exp(3.0) / z1)});
  CHECK(message_of<eqx::ShapeError>([] { optim::smooth_labels(eqx::array(1.0), 0.1); }) ==
        "eqx::optim::smooth_labels: labels are f64[]; they need a category axis (the last)");
  CHECK(message_of<eqx::DTypeError>([] { optim::hinge_loss(eqx::array({1, -1}), eqx::array({1, 1})); }) ==
        "eqx::optim::hinge_loss: predictor outputs have dtype int32; they must be float32 or float64");
}

TEST_CASE("optim: Adafactor matches Optax's formulas (NumPy), factored and not", "[optim][alias]") {
  // min_dim_size_to_factor = 2: b [2, 2] keeps row and column statistics, w [3] the full second moment.
  check_leaves(optim::adafactor(std::nullopt, {.min_dim_size_to_factor = 2}), "adafactor", "adafactor", 1e-12);
  check_leaves(optim::adafactor(0.1, {.min_dim_size_to_factor = 2, .momentum = 0.9, .weight_decay_rate = 0.01}),
               "adafactor_full", "adafactor_full", 1e-12);
  auto opt = optim::adafactor(std::nullopt, {.min_dim_size_to_factor = 2});
  auto state = std::get<0>(opt.init(initial_params()));
  CHECK(state.v_row.b.shape() == eqx::Shape{2});
  CHECK(state.v_col.b.shape() == eqx::Shape{2});
  CHECK(state.v.b.shape() == eqx::Shape{1});
  CHECK(state.v.w.shape() == eqx::Shape{3});
  CHECK(state.v_row.w.shape() == eqx::Shape{1});
  // Without momentum the EMA keeps nothing.
  CHECK_FALSE(std::get<4>(opt.init(initial_params())).ema.w.has_value());

  // A [3, 2] leaf factors over axis 1 (rows, the second largest) and axis 0 (columns, the largest):
  // at step 0 the decay is 0, so v_row = mean(g^2, axis 0), v_col = mean(g^2, axis 1).
  struct One {
    Array m;
  };
  const std::vector<double> gv{1, 2, 3, 4, 5, 6};
  One g{eqx::array(gv, {3, 2})};
  auto f = optim::scale_by_factored_rms({.min_dim_size_to_factor = 2});
  auto [u, s] = f.update(g, f.init(g), g);
  CHECK(s.v_row.m.shape() == eqx::Shape{2});
  CHECK(s.v_col.m.shape() == eqx::Shape{3});
  const double r0 = (1 + 9 + 25) / 3.0, r1 = (4 + 16 + 36) / 3.0;  // mean over axis 0
  const double c[3] = {(1 + 4) / 2.0, (9 + 16) / 2.0, (25 + 36) / 2.0};
  const double rmean = (r0 + r1) / 2;
  std::vector<double> want;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) want.push_back(gv[2 * i + j] / std::sqrt((j == 0 ? r0 : r1) / rmean) / std::sqrt(c[i]));
  eqx_test::check<double>(u.m, {3, 2}, want);
  CHECK(message_of<eqx::ValueError>([&] { f.update(g, f.init(g)); }) ==
        "eqx::optim::scale_by_factored_rms: Adafactor needs the params; call update(updates, state, params)");
}

TEST_CASE("optim: SM3 matches Optax's formula (NumPy): one accumulator per axis", "[optim][alias]") {
  check_leaves(optim::sm3(0.1), "sm3", "sm3", 1e-12);
  auto state = std::get<0>(optim::sm3(0.1).init(initial_params()));
  REQUIRE(state.mu.size() == 2);  // the largest rank
  CHECK(state.mu[0].w.shape() == eqx::Shape{3});
  CHECK(state.mu[0].b.shape() == eqx::Shape{2});
  CHECK_FALSE(state.mu[1].w.has_value());
  CHECK(state.mu[1].b.shape() == eqx::Shape{2});
  struct One {
    Array s;
  };
  One scalar{eqx::array(1.0)};
  auto tx = optim::scale_by_sm3();
  CHECK(message_of<eqx::ShapeError>([&] { tx.update(scalar, tx.init(scalar)); }) ==
        "eqx::optim::scale_by_sm3: the update at .s is f64[]; SM3 keeps one accumulator per axis and needs leaves "
        "of rank >= 1");
}

// --- the jitted step: one Plan, the update fused ------------------------------------

namespace {

struct SmallLinear {
  Array weight;  // [in, out]
  Array bias;    // [out]
};
/// 8-16-16-3 with ReLU (3 classes, so no bias shape equals the batch of 4).
struct SmallMlp {
  SmallLinear l1, l2, l3;
  Array operator()(const Array& x) const {
    Array h = eqx::maximum(eqx::matmul(x, l1.weight) + l1.bias, 0.0f);
    h = eqx::maximum(eqx::matmul(h, l2.weight) + l2.bias, 0.0f);
    return eqx::matmul(h, l3.weight) + l3.bias;
  }
};

Array small_loss(const SmallMlp& m, const Array& x, const Array& labels) {
  return eqx::mean(optim::softmax_cross_entropy_with_integer_labels(m(x), labels));
}

auto small_adamw() { return optim::adamw(1e-3); }
using SmallState = decltype(small_adamw().init(std::declval<SmallMlp>()));

std::tuple<SmallMlp, SmallState, Array> small_step(const SmallMlp& model, const SmallState& state, const Array& x,
                                                   const Array& labels) {
  auto [loss, grads] = eqx::filter_value_and_grad(small_loss)(model, x, labels);
  auto [updates, next] = small_adamw().update(grads, state, model);
  return {eqx::apply_updates(model, updates), next, loss};
}

/// The same step with AdamW written by hand with tree_map (Optax's formulas).
struct HandAdamState {
  Array count;
  SmallMlp mu, nu;
};
std::tuple<SmallMlp, HandAdamState, Array> small_hand_step(const SmallMlp& model, const HandAdamState& s,
                                                           const Array& x, const Array& labels) {
  auto [loss, g] = eqx::filter_value_and_grad(small_loss)(model, x, labels);
  Array count = s.count + 1;
  Array t = eqx::astype(count, eqx::float32);
  Array bc1 = 1.0 - eqx::pow(0.9, t), bc2 = 1.0 - eqx::pow(0.999, t);
  SmallMlp mu = eqx::tree_map([](const Array& gi, const Array& m) { return 0.1 * gi + 0.9 * m; }, g, s.mu);
  SmallMlp nu =
      eqx::tree_map([](const Array& gi, const Array& v) { return 0.001 * eqx::square(gi) + 0.999 * v; }, g, s.nu);
  SmallMlp next = eqx::tree_map(
      [&](const Array& p, const Array& m, const Array& v) {
        return p + ((m / bc1) / (eqx::sqrt(v / bc2) + 1e-8) + 1e-4 * p) * -1e-3;
      },
      model, mu, nu);
  return {next, {count, mu, nu}, loss};
}

double max_diff_f32(const Array& a, const Array& b) {
  auto u = a.to_vector<float>(), v = b.to_vector<float>();
  double worst = 0;
  for (std::size_t i = 0; i < u.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(u[i] - v[i])));
  return worst;
}

std::size_t bytes_of(const eqx::AbstractArray& t) {
  return static_cast<std::size_t>(t.shape.numel()) * eqx::itemsize(t.dtype);
}

}  // namespace

TEST_CASE("optim: a jitted grad + adamw + apply_updates step is one Plan with the update fused", "[optim][jit]") {
  auto uniform = [](std::vector<std::int64_t> shape, unsigned seed) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(std::sin(0.37 * (i + 1) * seed)) * 0.3f;
    return eqx::array(v, eqx::Shape(shape.begin(), shape.end()));
  };
  SmallMlp model{{uniform({8, 16}, 1), uniform({16}, 2)},
                 {uniform({16, 16}, 3), uniform({16}, 4)},
                 {uniform({16, 3}, 5), uniform({3}, 6)}};
  const Array x = uniform({4, 8}, 7);
  const Array labels = eqx::array(std::vector<std::int32_t>{0, 2, 1, 2}, {4});
  SmallState state = small_adamw().init(eqx::filter(model, eqx::is_inexact_array));

  auto step = eqx::filter_jit(small_step);
  auto [m1, s1, l1] = step(model, state, x, labels);
  auto [m2, s2, l2] = small_step(model, state, x, labels);  // eager: the same numbers
  CHECK(l1.item<float>() == Approx(l2.item<float>()).epsilon(1e-6));
  CHECK(std::get<0>(s1).count.item<std::int32_t>() == 1);

  const eqx::Plan& plan = step.plan(m1, s1, x, labels);
  const eqx::Graph& g = plan.graph();
  INFO(fmt::format("{}", g));

  // The parameter shapes: an update equation is one whose output has one of them.
  const std::vector<eqx::Shape> param_shapes{{8, 16}, {16}, {16, 16}, {3}, {16, 3}};
  auto is_param_shape = [&](const eqx::Shape& s) {
    return std::find(param_shapes.begin(), param_shapes.end(), s) != param_shapes.end();
  };
  int fused = 0, update_regions = 0;
  std::vector<std::string> unfused;  // elementwise equations on a parameter shape outside fused regions
  for (const eqx::Equation& eq : g.equations) {
    const std::string name(eq.prim->name());
    if (name == "fused") {
      ++fused;
      if (is_param_shape(g.type(eq.outputs[0]).shape)) ++update_regions;
    } else if (eq.prim->elementwise() && is_param_shape(g.type(eq.outputs[0]).shape)) {
      unfused.push_back(name + " -> " + g.type(eq.outputs[0]).str());
    }
    // Nothing of the update runs as a separate top-level kernel.
    CHECK(name != "sqrt");
    CHECK(name != "div");
    CHECK(name != "pow");
  }
  std::string unfused_list;
  for (const std::string& u : unfused) unfused_list += (unfused_list.empty() ? "" : ", ") + u;
  INFO("elementwise equations on parameter shapes outside fused regions: " << unfused_list);
  CHECK(unfused.empty());
  // One region per parameter shape (b1 and b2, both [16], share one): each
  // leaf's mu, nu and new value come out of a single tiled loop.
  CHECK(update_regions == 5);
  // Those five, plus the forward's two bias + ReLU regions, four of the
  // loss (label select, max guard, exp, log / 1 / sum) and the scalar one
  // (the loss mean with count + 1 and both bias corrections).
  CHECK(fused == 12);
  for (const eqx::Equation& eq : g.equations)
    if (std::string_view(eq.prim->name()) == "fused" && is_param_shape(g.type(eq.outputs[0]).shape))
      CHECK((eq.outputs.size() == 3 || eq.outputs.size() == 6));  // new p, mu, nu per leaf

  // Memory: the outputs are the new params, mu, nu, the count and the loss,
  // nothing more; the arena holds no optimiser array beyond what the same
  // step written by hand with tree_map needs (the gradients and activations).
  std::size_t param_bytes = 0;
  for (const Array& p : eqx::tree_leaves(model)) param_bytes += static_cast<std::size_t>(p.size()) * 4;
  std::size_t out_bytes = 0;
  for (eqx::Var v : g.outputs) out_bytes += bytes_of(g.type(v));
  CHECK(g.outputs.size() == 6 * 3 + 2);
  CHECK(out_bytes == 3 * param_bytes + 4 + 4);
  const eqx::MemoryStats ms = plan.memory_stats();
  INFO("arena " << ms.arena_bytes << " B, intermediates " << ms.intermediate_bytes << " B in " << ms.num_intermediates
                << ", " << ms.num_instructions << " instructions, params " << param_bytes << " B");
  // The gradients (param_bytes) and at most four [4, 16] activations live
  // at once: 1868 + 884 B observed.
  CHECK(ms.arena_bytes <= param_bytes + 4 * 4 * 16 * 4);
  // The hand-written step: the same arena and instruction count, and the same numbers.
  SmallMlp zeros = eqx::tree_map([](const Array& p) { return eqx::zeros_like(p); }, model);
  HandAdamState hand_state{eqx::zeros(eqx::Shape{}, eqx::int32), zeros, zeros};
  auto hand = eqx::filter_jit(small_hand_step);
  auto [h1, hs1, hl1] = hand(model, hand_state, x, labels);
  CHECK(hl1.item<float>() == l1.item<float>());
  CHECK(max_diff_f32(h1.l1.weight, m1.l1.weight) <= 1e-7);
  CHECK(max_diff_f32(hs1.nu.l2.weight, std::get<0>(s1).nu.l2.weight) <= 1e-7);
  const eqx::MemoryStats hms = hand.plan(h1, hs1, x, labels).memory_stats();
  CHECK(ms.arena_bytes <= hms.arena_bytes);
  CHECK(ms.num_instructions <= hms.num_instructions);
}

}  // namespace optim_optim_combine_test
