// All of eqx in four parts: the walkthrough of Equinox's "All of Equinox"
// page (docs/all-of-equinox.md) and its tricks page (docs/tricks.md), in C++.
//
// Equinox has two ideas, and eqx keeps both:
//   - a model is a pytree: a plain struct whose fields (Arrays, sub-layers,
//     lists of layers, plain values) are found by reflection;
//   - transformations are filtered: filter_jit traces the Array leaves and
//     keys its cache on everything else; filter_grad differentiates the
//     floating-point Array leaves of its first argument and gives None
//     (an empty Array) everywhere else.
// Everything below follows from those two.
//
//   1. A layer is a pytree: print an nn::Linear, list its leaves with their
//      paths and shapes, split it into leaves + treedef and rebuild it.
//   2. Filtering: a model whose Conv1d block holds static fields (a kernel
//      size and an activation choice, eqx::Static) beside learnable layers,
//      with an nn::MLP head and nn::Dropout. A jitted forward pass retraces
//      when a static field changes, not when an Array does; filter_grad puts
//      gradients on exactly the Array leaves.
//   3. Tree manipulation: partition / combine, freezing a submodule with a
//      filter spec, tree_at's immutable updates (model surgery), and a
//      BatchNorm model whose State is carried through a batched, jitted
//      training step.
//   4. A full training run: a residual MLP regressing a noisy sine wave,
//      Adam with a warmup-cosine learning rate schedule, shuffled
//      mini-batches, jitted train_step / evaluate, serialisation round trip,
//      and the jaxpr of the training step.
//
// Checks (non-zero exit if one fails): part 1 rebuilds the Linear exactly;
// part 2's gradients sit on exactly the model's Array leaves and the forward
// pass traced once per static configuration; part 3's frozen block and the
// original model are unchanged and BatchNorm's running statistics moved;
// part 4's validation loss drops at least 10x, the train step traced once,
// and the reloaded weights are bit-identical.
//
// Run: build/default/examples/tutorial [--epochs N]   (default 40 epochs)

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numbers>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <eqx/eqx.hpp>
#include <eqx/io.hpp>
#include <eqx/optim.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
using eqx::Array;
using eqx::random::Key;

int failures = 0;
void require(bool ok, const char* what) {
  fmt::print("{} {}\n", ok ? "  ok  " : "  FAIL", what);
  if (!ok) ++failures;
}

float norm(const Array& x) { return std::sqrt(eqx::sum(eqx::square(x)).item<float>()); }

// -------- 1. A layer is a pytree. -------------------------------------
void part1(const Key& key) {
  fmt::print("\n== 1. A layer is a pytree ==\n");
  const nn::Linear linear = nn::Linear::init(3, 2, key);
  // Printing abbreviates Arrays to dtype[shape], as Equinox does; static
  // fields (Equinox's field(static=True)) print as their values.
  fmt::print("{}\n", linear);
  fmt::print("with small Arrays spelt out:\n{}\n", eqx::tree_pformat(linear, {.short_arrays = 6}));

  // The leaves are the Arrays, in field order, each with its path.
  for (const auto& [path, leaf] : eqx::tree_leaves_with_path(linear))
    fmt::print("  leaf {:<8} {}\n", path.str(), eqx::type_string(leaf));

  // Flatten = leaves + structure. The treedef holds everything that is not a
  // leaf; unflatten puts any leaves of the same shapes back in. Doubling
  // both leaves doubles the output, since y = W x + b.
  auto [leaves, treedef] = eqx::tree_flatten(linear);
  fmt::print("treedef: {}\n", treedef);
  std::vector<Array> doubled_leaves;
  for (const Array& leaf : leaves) doubled_leaves.push_back(leaf * 2.0f);
  const nn::Linear doubled = treedef.unflatten(doubled_leaves);
  const Array x = eqx::array({1.0f, -2.0f, 0.5f});
  fmt::print("linear(x) = {}\ndoubled(x) = {}\n", linear(x), doubled(x));
  require(eqx::tree_equal(treedef.unflatten(leaves), linear), "unflatten(flatten(linear)) is the same Linear");
  require(norm(doubled(x) - 2.0f * linear(x)) < 1e-6f, "the rebuilt Linear with doubled leaves doubles the output");
}

// -------- 2. Filtering: static fields, filter_jit and filter_grad. ----

// A convolution with the two kinds of non-Array field. eqx::Static<T> is
// Equinox's field(static=True): part of the structure (and of filter_jit's
// cache key), never a leaf. The activation is chosen by a C++ `if` on a
// static value, which is fine under jit: it is decided at trace time.
struct ConvBlock {
  nn::Conv1d conv;
  eqx::Static<std::int64_t> kernel_size;
  eqx::Static<std::string> activation;  // "relu" or "tanh"

  static ConvBlock init(std::int64_t in, std::int64_t out, std::int64_t kernel_size, std::string activation,
                        const Key& key) {
    return {nn::Conv1d::init(in, out, kernel_size, key, {.padding = nn::same}), {kernel_size}, {std::move(activation)}};
  }
  // x [C_in, L] -> [C_out, L]
  Array operator()(const Array& x) const {
    const Array h = conv(x);
    return *activation == "tanh" ? eqx::tanh(h) : nn::relu(h);
  }
};

constexpr std::int64_t channels = 2, signal_length = 16, conv_channels = 4;

// One signal [channels, length] -> a prediction [1]. Dropout needs a key
// while training; its p and inference flag are plain leaves (not Arrays).
struct SignalModel {
  ConvBlock block;
  nn::Dropout dropout;
  nn::MLP head;

  static SignalModel init(const Key& key) {
    auto keys = eqx::random::split_keys(key, 2);
    return {ConvBlock::init(channels, conv_channels, 3, "relu", keys[0]), nn::Dropout::init(0.1),
            nn::MLP::init(conv_channels * signal_length, 1, 16, 1, keys[1], {.activation = eqx::tanh})};
  }
  Array operator()(const Array& x, const Key& key) const { return head(dropout(eqx::ravel(block(x)), key)); }
};

// The model acts on one example; filter_vmap maps it over the batch, with
// one dropout key per example (the model's Arrays are shared).
Array signal_loss(const SignalModel& model, const Array& xs, const Array& ys, const Key& key) {
  const Array keys = eqx::random::split(key, xs.shape()[0]);
  return eqx::mean(eqx::square(eqx::filter_vmap(model)(xs, keys) - ys));
}

// Calls f(path, description) for every leaf of a tree, Array or not: the
// whole of what filter_jit and filter_grad sort into "traced" and "static".
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

template <class X>
concept plain_leaf = std::is_arithmetic_v<X> || std::is_pointer_v<X> || std::is_enum_v<X>;

template <class T, class F>
void for_each_leaf(const T& tree, F&& f) {
  eqx::tree_for_each_node(
      Overloaded{[&](const eqx::TreePath& p, const Array& a) { f(p.str(), eqx::type_string(a), true); },
                 [&]<class X>(const eqx::TreePath& p, const eqx::Static<X>&) { f(p.str(), "static", false); },
                 [&]<class X>(const eqx::TreePath& p, const X&)
                   requires plain_leaf<X>
                 { f(p.str(), std::is_pointer_v<X> ? "function" : "plain value", false); }},
      tree);
}

SignalModel part2(const Key& key) {
  fmt::print("\n== 2. Filtering: static fields, filter_jit, filter_grad ==\n");
  auto keys = eqx::random::split_keys(key, 4);
  const SignalModel model = SignalModel::init(keys[0]);
  fmt::print("{}\n", eqx::tree_pformat(model, {.width = 110}));
  const Array xs = eqx::random::normal(keys[1], {8, channels, signal_length});
  const Array ys = eqx::mean(eqx::slice(xs, 1, 0, 1) * eqx::slice(xs, 1, 1, 2), eqx::Axes{2});  // [8, 1]

  // filter_jit: Arrays (the weights, xs, the key) are traced; everything else
  // (the Static fields, Dropout's p, the MLP's activation functions) is part
  // of the cache key. assert_max_traces(.., 2) throws on a third trace.
  auto forward = eqx::filter_jit(eqx::debug::assert_max_traces(
      [](const SignalModel& m, const Array& xs, const Key& key) {
        return eqx::filter_vmap(m)(xs, eqx::random::split(key, xs.shape()[0]));
      },
      2, "forward"));
  forward(model, xs, keys[2]);
  const std::size_t first = eqx::debug::get_num_traces(forward);
  // New Array values (a rescaled conv weight, new inputs): the same trace.
  const SignalModel rescaled = eqx::tree_at([](SignalModel& m) -> auto& { return m.block.conv.weight; }, model,
                                            model.block.conv.weight * 0.5f);
  forward(rescaled, xs * 2.0f, keys[3]);
  const std::size_t after_arrays = eqx::debug::get_num_traces(forward);
  // A new static value: a new cache key, so filter_jit traces again.
  const SignalModel with_tanh = eqx::tree_at([](SignalModel& m) -> auto& { return m.block.activation; }, model,
                                             eqx::Static<std::string>{"tanh"});
  forward(with_tanh, xs, keys[2]);
  const std::size_t after_static = eqx::debug::get_num_traces(forward);
  fmt::print("traces: first call {}, new Arrays {}, activation \"relu\" -> \"tanh\" {}\n", first, after_arrays,
             after_static);
  require(first == 1 && after_arrays == 1 && after_static == 2,
          "changing Arrays reuses the trace; changing a static field retraces");

  // filter_grad: the gradient is a SignalModel with an Array where the model
  // has a floating-point Array and None (empty) in every other Array slot.
  // Its non-Array fields are the model's own (they are its structure, where
  // Equinox would put None): nothing there is differentiated.
  const SignalModel grads = eqx::filter_grad(signal_loss)(model, xs, ys, keys[2]);
  std::map<std::string, Array> grad_at;  // path -> gradient, where there is one
  for (const auto& [path, g] : eqx::tree_leaves_with_path(grads)) grad_at[path.str()] = g;
  std::map<std::string, std::vector<std::string>> without;  // kind of leaf -> paths
  std::size_t array_leaves = 0, good_gradients = 0;
  for_each_leaf(model, [&](const std::string& path, const std::string& what, bool is_array) {
    if (!is_array) return without[what].push_back(path);
    const Array g = grad_at.contains(path) ? grad_at[path] : Array{};
    const float g_norm = g.has_value() ? norm(g) : 0.0f;
    fmt::print("  {:<26} {:<10} gradient {:<10} |g| = {:.4f}\n", path, what, eqx::type_string(g), g_norm);
    ++array_leaves;
    good_gradients += eqx::type_string(g) == what && g_norm > 0;
  });
  for (const auto& [what, paths] : without) {
    std::string line = fmt::format("  no gradient, {} ({}):", what, paths.size());
    for (const std::string& path : paths) {
      if (line.size() + path.size() > 110) fmt::print("{}\n", std::exchange(line, "   "));
      line += " " + path;
    }
    fmt::print("{}\n", line);
  }
  require(good_gradients == array_leaves && grad_at.size() == array_leaves,
          "filter_grad gives a non-zero gradient on every Array leaf and on nothing else");
  return model;
}

// -------- 3. Tree manipulation: partition, freezing, tree_at, State. --

// Linear -> BatchNorm -> relu -> Linear. BatchNorm keeps no mutable data:
// it holds StateIndexes, and a call takes the State and returns the new one.
struct NormedMLP {
  nn::Linear linear1;
  nn::BatchNorm norm;
  nn::Linear linear2;

  static NormedMLP init(const Key& key) {
    auto keys = eqx::random::split_keys(key, 2);
    return {nn::Linear::init(4, 8, keys[0]), nn::BatchNorm::init(8, "batch"), nn::Linear::init(8, 1, keys[1])};
  }
  std::pair<Array, nn::State> operator()(const Array& x, const nn::State& state) const {
    auto [h, new_state] = norm(linear1(x), state);
    return {linear2(nn::relu(h)), new_state};
  }
};

// The data is mapped, the state is shared and comes back unbatched; "batch"
// names the axis BatchNorm averages over.
std::pair<Array, nn::State> normed_loss(const NormedMLP& model, const nn::State& state, const Array& xs,
                                        const Array& ys) {
  auto batched = eqx::filter_vmap(model, eqx::in_axes(0, eqx::none), eqx::out_axes(0, eqx::none), std::nullopt,
                                  "batch");
  auto [pred, new_state] = batched(xs, state);
  return {eqx::mean(eqx::square(pred - ys)), new_state};
}

void part3(const SignalModel& model, const Key& key) {
  fmt::print("\n== 3. Tree manipulation ==\n");
  auto keys = eqx::random::split_keys(key, 5);

  // partition: two SignalModels, one holding the Arrays, the other the rest
  // (None in every Array slot). combine merges them back. (Non-Array fields
  // are part of the structure here, so both halves carry them; Equinox puts
  // None in the Array half.)
  auto [arrays, rest] = eqx::partition(model, eqx::is_array);
  fmt::print("arrays.head.layers[1] = {}\nrest.head.layers[1]   = {}\n",
             eqx::tree_pformat(arrays.head.layers[1], {.width = 100}), eqx::tree_pformat(rest.head.layers[1]));
  require(eqx::tree_equal(eqx::combine(arrays, rest), model), "combine(partition(model)) == model");

  // Freezing with a filter spec: only the head is trainable. The gradient is
  // taken with respect to the first argument (the trainable part) only, and
  // the model is reassembled inside the loss, as in Equinox's frozen-layer
  // example. (optim::multi_transform does the same inside the optimiser:
  // examples/optim_frozen_layer.cpp.)
  auto trainable = [](const eqx::TreePath& path, const Array& leaf) {
    return eqx::is_inexact_array(leaf) && path.starts_with(".head");
  };
  auto [diff_model, frozen_model] = eqx::partition(model, trainable);
  fmt::print("trainable leaves {}, frozen leaves {}\n", eqx::tree_leaves(diff_model).size(),
             eqx::tree_leaves(frozen_model).size());
  auto frozen_loss = [](const SignalModel& diff, const SignalModel& frozen, const Array& xs, const Array& ys,
                        const Key& key) { return signal_loss(eqx::combine(diff, frozen), xs, ys, key); };
  const Array xs = eqx::random::normal(keys[0], {8, channels, signal_length});
  const Array ys = eqx::ones({8, 1});
  const SignalModel g = eqx::filter_grad(frozen_loss)(diff_model, frozen_model, xs, ys, keys[1]);
  const SignalModel stepped =
      eqx::combine(eqx::apply_updates(diff_model, eqx::tree_map([](const Array& d) { return d * -0.1f; }, g)),
                   frozen_model);
  require(eqx::tree_equal(stepped.block, model.block) && !eqx::tree_equal(stepped.head, model.head),
          "an SGD step on the trainable part moves the head and leaves the frozen block unchanged");

  // tree_at: a new model with one part replaced (here the head's last
  // weight, redrawn from a truncated normal: tricks.md's custom init). The
  // original is untouched: models are immutable values.
  const SignalModel before = model;
  auto last_weight = [](SignalModel& m) -> auto& { return m.head.layers.back().weight; };
  const SignalModel reinit = eqx::tree_at(last_weight, model, eqx::replace_fn([&](const Array& w) {
                                            const double stddev = 1.0 / std::sqrt(static_cast<double>(w.shape()[1]));
                                            return eqx::random::truncated_normal(keys[2], -2, 2, w.shape()) * stddev;
                                          }));
  auto first4 = [](const SignalModel& m) { return eqx::slice(m.head.layers.back().weight, 1, 0, 4); };
  fmt::print("head's last weight[:, :4], original: {}\n", first4(model));
  fmt::print("                   after tree_at: {}\n", first4(reinit));
  require(eqx::tree_equal(model, before) && !eqx::tree_equal(reinit, model),
          "tree_at returns a new model and leaves the original unchanged");

  // State beside the model: make_with_state builds it and splits off the
  // initial State (BatchNorm's running mean and variance, and a first-time
  // flag). The State goes in and out of the jitted step like the model.
  auto [bn_model, state] = nn::make_with_state(NormedMLP::init)(keys[3]);
  const auto stats_index = *bn_model.norm.ema_state_index;  // (running mean, running var)
  const Array mean_before = state.get(stats_index).first;
  fmt::print("running mean before: {}  (first_time {})\n", mean_before,
             state.get(*bn_model.norm.ema_first_time_index).item<bool>());
  const Array bn_xs = eqx::random::normal(keys[4], {64, 4}) * 2.0f + 1.0f;
  const Array bn_ys = eqx::sum(eqx::sin(bn_xs), eqx::Axes{1}, true);
  auto opt = optim::adam(1e-2);
  auto opt_state = opt.init(eqx::filter(bn_model, eqx::is_inexact_array));
  auto bn_step = eqx::filter_jit([opt](const NormedMLP& m, const nn::State& s, const auto& os, const Array& x,
                                       const Array& y) {
    auto [loss_and_state, grads] = eqx::filter_value_and_grad(normed_loss, eqx::has_aux)(m, s, x, y);
    auto [updates, next_os] = opt.update(grads, os, eqx::filter(m, eqx::is_inexact_array));
    return std::tuple{eqx::apply_updates(m, updates), loss_and_state.second, next_os, loss_and_state.first};
  });
  float first_loss = 0, loss = 0;
  for (int step = 0; step < 20; ++step) {
    Array l;
    std::tie(bn_model, state, opt_state, l) = bn_step(bn_model, state, opt_state, bn_xs, bn_ys);
    loss = l.item<float>();
    if (step == 0) first_loss = loss;
  }
  const Array mean_after = state.get(stats_index).first;
  fmt::print("running mean after 20 steps: {}  (first_time {}); loss {:.4f} -> {:.4f}\n", mean_after,
             state.get(*bn_model.norm.ema_first_time_index).item<bool>(), first_loss, loss);
  require(norm(mean_after - mean_before) > 0.1f && !state.get(*bn_model.norm.ema_first_time_index).item<bool>(),
          "BatchNorm's running statistics moved through the jitted step");
}

// -------- 4. Training a residual MLP end to end. ----------------------

// x + fc2(gelu(fc1(x))): the block learns a correction to its input.
struct ResidualBlock {
  nn::Linear fc1, fc2;
  static ResidualBlock init(std::int64_t width, const Key& key) {
    auto keys = eqx::random::split_keys(key, 2);
    return {nn::Linear::init(width, width, keys[0]), nn::Linear::init(width, width, keys[1])};
  }
  Array operator()(const Array& x) const { return x + fc2(nn::gelu(fc1(x))); }
};

// A scalar x (f32[], Equinox's "scalar" size) -> a scalar prediction.
struct ResNetMLP {
  nn::Linear embed;
  std::vector<ResidualBlock> blocks;
  nn::Linear readout;

  static ResNetMLP init(std::int64_t width, std::int64_t depth, const Key& key) {
    auto keys = eqx::random::split_keys(key, depth + 2);
    ResNetMLP m{nn::Linear::init(nn::scalar, width, keys[0]), {}, nn::Linear::init(width, nn::scalar, keys[1])};
    for (std::int64_t i = 0; i < depth; ++i) m.blocks.push_back(ResidualBlock::init(width, keys[i + 2]));
    return m;
  }
  Array operator()(const Array& x) const {
    Array h = embed(x);
    for (const ResidualBlock& block : blocks) h = block(h);
    return readout(h);
  }
};

Array mse(const ResNetMLP& model, const Array& xs, const Array& ys) {
  return eqx::mean(eqx::square(eqx::filter_vmap(model)(xs) - ys));
}

void part4(const Key& key, int epochs) {
  fmt::print("\n== 4. Training a residual MLP on a noisy sine ==\n");
  constexpr std::int64_t train_size = 512, val_size = 256, batch_size = 32, width = 32, depth = 2;
  auto keys = eqx::random::split_keys(key, 4);
  // y = sin(x) + noise of standard deviation 0.1: no model gets the
  // validation loss below the noise's variance, 0.01.
  auto make_data = [](const Key& k, std::int64_t n) {
    auto ks = eqx::random::split_keys(k, 2);
    const Array x = eqx::random::uniform(ks[0], {n}, eqx::float32, -std::numbers::pi, std::numbers::pi);
    return std::pair{x, eqx::sin(x) + 0.1f * eqx::random::normal(ks[1], {n})};
  };
  const auto [train_x, train_y] = make_data(keys[0], train_size);
  const auto [val_x, val_y] = make_data(keys[1], val_size);
  ResNetMLP model = ResNetMLP::init(width, depth, keys[2]);

  // Adam with a learning rate that warms up linearly over the first tenth
  // of training, then decays along a cosine. The optimiser state is built
  // from the floating-point Array leaves only, as in Equinox's examples.
  const std::int64_t steps_per_epoch = train_size / batch_size, total_steps = epochs * steps_per_epoch;
  const std::int64_t warmup_steps = std::max<std::int64_t>(1, total_steps / 10);
  const optim::Schedule schedule = optim::warmup_cosine_decay_schedule(0.0, 1e-2, warmup_steps, total_steps, 1e-4);
  auto opt = optim::adam(schedule);
  auto opt_state = opt.init(eqx::filter(model, eqx::is_inexact_array));
  using OptState = decltype(opt_state);

  // One training step: loss, gradient, Adam update, apply. Jitted once.
  auto train_step_fn = [opt](const ResNetMLP& m, const OptState& s, const Array& xs, const Array& ys) {
    auto [loss, grads] = eqx::filter_value_and_grad(mse)(m, xs, ys);
    auto [updates, next_state] = opt.update(grads, s, eqx::filter(m, eqx::is_inexact_array));
    return std::tuple{eqx::apply_updates(m, updates), next_state, loss};
  };
  auto train_step = eqx::filter_jit(eqx::debug::assert_max_traces(train_step_fn, 1, "train_step"));
  auto evaluate = eqx::filter_jit(mse);

  const float initial_val = evaluate(model, val_x, val_y).item<float>();
  fmt::print("epoch  0                      val {:.4f}\n", initial_val);
  Key data_key = keys[3];
  float val_loss = initial_val;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    // A new order of the training set every epoch, cut into mini-batches.
    auto ks = eqx::random::split_keys(data_key, 2);
    data_key = ks[0];
    const Array order = eqx::random::permutation(ks[1], train_size);
    float train_loss = 0;
    for (std::int64_t b = 0; b < steps_per_epoch; ++b) {
      const Array idx = eqx::slice(order, 0, b * batch_size, (b + 1) * batch_size);
      Array loss;
      std::tie(model, opt_state, loss) =
          train_step(model, opt_state, eqx::take(train_x, idx, 0), eqx::take(train_y, idx, 0));
      train_loss += loss.item<float>() / static_cast<float>(steps_per_epoch);
    }
    val_loss = evaluate(model, val_x, val_y).item<float>();
    if (epoch % 5 == 0 || epoch == epochs) {
      const float lr = schedule(eqx::array(static_cast<std::int32_t>(epoch * steps_per_epoch))).item<float>();
      fmt::print("epoch {:2d}  lr {:.1e}  train {:.4f}  val {:.4f}\n", epoch, lr, train_loss, val_loss);
    }
  }
  fmt::print("validation loss {:.4f} -> {:.4f} ({:.1f}x lower; the noise floor is 0.01)\n", initial_val, val_loss,
             initial_val / val_loss);
  require(val_loss * 10 <= initial_val, "the validation loss dropped at least 10x");
  require(eqx::debug::get_num_traces(train_step) == 1, "train_step traced once for the whole run");

  // Serialise, then load into a freshly built model of the same shape (the
  // "skeleton": its own random weights get overwritten).
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / fmt::format("eqx_tutorial_{}.eqx", std::random_device{}());
  eqx::tree_serialise_leaves(file, model);
  const ResNetMLP skeleton = ResNetMLP::init(width, depth, eqx::random::key(12345));
  const ResNetMLP loaded = eqx::tree_deserialise_leaves(file, skeleton);
  fmt::print("saved {} leaves ({} bytes) to a temporary file; skeleton equal before loading: {}, after: {}\n",
             eqx::tree_leaves(model).size(), std::filesystem::file_size(file),
             eqx::tree_equal(skeleton, model), eqx::tree_equal(loaded, model));
  std::filesystem::remove(file);
  require(eqx::tree_equal(loaded, model), "the reloaded weights are identical");

  // What one training step traces to: forward, backward and Adam as one
  // graph (before the compiler's simplification and fusion).
  const Array xb = eqx::slice(train_x, 0, 0, batch_size), yb = eqx::slice(train_y, 0, 0, batch_size);
  const auto jaxpr = eqx::filter_make_jaxpr(train_step_fn)(model, opt_state, xb, yb);
  std::istringstream text(jaxpr.str());
  std::string line;
  int lines = 0;
  fmt::print("jaxpr of train_step:\n");
  while (std::getline(text, line))  // the first 25 lines, each cut at 120 characters
    if (++lines <= 25) fmt::print("{}\n", line.size() > 120 ? line.substr(0, 116) + " ..." : line);
  if (lines > 25) fmt::print("  ... ({} more lines)\n", lines - 25);
  fmt::print("{} equations traced; {} in the compiled plan after simplification and fusion\n",
             jaxpr.graph.equations.size(), train_step.plan(model, opt_state, xb, yb).graph().equations.size());
}

int main(int argc, char** argv) {
  int epochs = 40;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--epochs" && i + 1 < argc) epochs = std::max(1, std::atoi(argv[++i]));
  auto keys = eqx::random::split_keys(eqx::random::key(2024), 4);
  part1(keys[0]);
  const SignalModel model = part2(keys[1]);
  part3(model, keys[2]);
  part4(keys[3], epochs);
  fmt::print("\n{}\n", failures == 0 ? "all checks passed" : fmt::format("{} check(s) FAILED", failures));
  return failures == 0 ? 0 : 1;
}
