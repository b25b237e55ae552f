// A deep convolutional GAN on Fashion-MNIST (Equinox's
// docs/examples/deep_convolutional_gan.ipynb, after Radford et al.,
// arXiv:1511.06434), small enough to train on a CPU in seconds.
//
// The lesson: two stateful models trained against each other, each with its
// own optimiser, and BatchNorm state threaded through every call:
//   1. data: Fashion-MNIST through <eqx/data.hpp>, pixels scaled to [-1, 1]
//      (the notebook's Normalize((0.5,), (0.5,))), which is the range of the
//      generator's tanh;
//   2. Generator: a latent vector [latent, 1, 1] -> ConvTranspose2d (1x1 ->
//      7x7) -> BatchNorm -> relu -> ConvTranspose2d (14x14) -> BatchNorm ->
//      relu -> ConvTranspose2d (28x28) -> tanh. Discriminator: Conv2d
//      (14x14) -> PReLU(0.2) -> Conv2d (7x7) -> BatchNorm -> PReLU(0.2) ->
//      Conv2d (1x1): one logit. Both are nn::Sequential, which threads the
//      State through the BatchNorms exactly as the notebook's loop over
//      `layers` does. The notebook's networks make 64x64 images with five
//      layers of 512 down to 64 channels; these make 28x28 with three, of at
//      most 64 channels;
//   3. nn::make_with_state builds each network and its State;
//   4. the losses: both networks run under filter_vmap with in_axes (0, none),
//      out_axes (0, none) and the axis name "batch" their BatchNorms average
//      over; optim::sigmoid_binary_cross_entropy, fakes labelled 0 and reals
//      1 for the discriminator, fakes labelled 1 for the generator;
//   5. TWO optimisers (optim::adam with the notebook's betas, b1 = 0.5) and TWO
//      filter_jit steps, as the notebook: step_discriminator differentiates
//      the discriminator's loss with respect to the discriminator only, and
//      step_generator the generator's with respect to the generator only;
//      each returns both States, since both networks ran;
//   6. sampling: nn::inference_mode switches the BatchNorms to their running
//      statistics; the inference discriminator scores the samples, and the
//      best-scored ones are drawn in ASCII (the notebook's top_k plot).
//
// Run: dcgan [--steps N] [--train-size N] [--threads N]
// The default (300 steps of batch 16 from the first 8192 training images)
// takes about 13 s here: the samples go from noise to bright clothing-like
// silhouettes on a dark background, with the data's pixel mean and std.
// `--steps 3000 --train-size 60000` (about 2 minutes) brings the average
// sample closer still to the average image (RMS 0.125 against 0.165), but a
// GAN this small and this briefly trained stays rough: even the notebook's
// samples after 100,000 steps are "still a bit fuzzy".
//
// Checks (non-zero exit if one fails): both losses stay finite at every
// step; the discriminator's loss fell below its first value at some step;
// the generated pixels' mean and std moved toward the data's (their total
// distance at least halved); the average generated image moved toward the
// average real image (RMS distance at least halved); each step traced once.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <eqx/data.hpp>
#include <eqx/eqx.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
using eqx::Array;

// ---------------------------------------------------------------- hyperparameters

// The notebook's betas. Its learning rate is 2e-4 for 100,000 steps; a
// few hundred steps need a larger one.
constexpr double learning_rate = 5e-4, beta1 = 0.5, beta2 = 0.999;
constexpr std::int64_t batch_size = 16;   // the notebook's: 32
constexpr std::int64_t latent_size = 32;  // the notebook's: 100
constexpr std::int64_t width = 16;        // the notebook's: 64 (its layers have 8, 4, 2, 1 times that)

// ---------------------------------------------------------------- 2. the two networks

using Activation = nn::Lambda<nn::Activation>;

/// A latent vector [latent_size, 1, 1] -> an image [1, 28, 28] in [-1, 1].
struct Generator {
  nn::Sequential<nn::ConvTranspose2d, nn::BatchNorm, Activation, nn::ConvTranspose2d, nn::BatchNorm, Activation,
                 nn::ConvTranspose2d, Activation>
      layers;

  static Generator init(const eqx::random::Key& key) {
    auto keys = eqx::random::split_keys(key, 3);
    return {nn::sequential(
        // [latent, 1, 1] -> [4 * width, 7, 7]: a 7x7 kernel on a 1x1 input is
        // a learned projection of the latent vector onto a 7x7 grid.
        nn::ConvTranspose2d::init(latent_size, width * 4, 7, keys[0], {.stride = 1, .padding = 0, .use_bias = false}),
        nn::BatchNorm::init(width * 4, "batch"), Activation{nn::relu},
        // -> [width, 14, 14]: stride 2 doubles the size ((7 - 1) * 2 - 2 * 1 + 4 = 14)
        nn::ConvTranspose2d::init(width * 4, width, 4, keys[1], {.stride = 2, .padding = 1, .use_bias = false}),
        nn::BatchNorm::init(width, "batch"), Activation{nn::relu},
        // -> [1, 28, 28] in [-1, 1]
        nn::ConvTranspose2d::init(width, 1, 4, keys[2], {.stride = 2, .padding = 1, .use_bias = false}),
        Activation{eqx::tanh})};
  }

  std::pair<Array, nn::State> operator()(const Array& x, const nn::State& state) const { return layers(x, state); }
};

/// An image [1, 28, 28] -> one logit [1, 1, 1]: "real" when positive.
struct Discriminator {
  nn::Sequential<nn::Conv2d, nn::PReLU, nn::Conv2d, nn::BatchNorm, nn::PReLU, nn::Conv2d> layers;

  static Discriminator init(const eqx::random::Key& key) {
    auto keys = eqx::random::split_keys(key, 3);
    return {nn::sequential(
        nn::Conv2d::init(1, width, 4, keys[0], {.stride = 2, .padding = 1, .use_bias = false}),  // 14x14
        nn::PReLU::init({.init_alpha = 0.2}),
        nn::Conv2d::init(width, width * 2, 4, keys[1], {.stride = 2, .padding = 1, .use_bias = false}),  // 7x7
        nn::BatchNorm::init(width * 2, "batch"), nn::PReLU::init({.init_alpha = 0.2}),
        nn::Conv2d::init(width * 2, 1, 7, keys[2], {.stride = 1, .padding = 0, .use_bias = false}))};  // 1x1
  }

  std::pair<Array, nn::State> operator()(const Array& x, const nn::State& state) const { return layers(x, state); }
};

// ---------------------------------------------------------------- 4. the losses

/// A network run on a batch: the data mapped, the State shared and returned
/// once; "batch" is the axis the BatchNorms average over.
template <class Model>
std::pair<Array, nn::State> run_batch(const Model& model, const Array& xs, const nn::State& state) {
  return eqx::filter_vmap(model, eqx::in_axes(0, eqx::none), eqx::out_axes(0, eqx::none), std::nullopt, "batch")(
      xs, state);
}

using Loss = std::pair<Array, std::pair<nn::State, nn::State>>;  // loss, (discriminator state, generator state)

/// The discriminator's loss: fakes should score 0, reals 1.
Loss discriminator_loss(const Discriminator& discriminator, const Generator& generator, const Array& real_batch,
                        const nn::State& discriminator_state, const nn::State& generator_state,
                        const eqx::random::Key& key) {
  const Array noise = eqx::random::normal(key, {batch_size, latent_size, 1, 1});
  auto [fake_batch, new_generator_state] = run_batch(generator, noise, generator_state);
  auto [fake_logits, state1] = run_batch(discriminator, fake_batch, discriminator_state);
  auto [real_logits, state2] = run_batch(discriminator, real_batch, state1);
  const Array fake_loss = eqx::mean(optim::sigmoid_binary_cross_entropy(eqx::ravel(fake_logits), eqx::zeros({batch_size})));
  const Array real_loss = eqx::mean(optim::sigmoid_binary_cross_entropy(eqx::ravel(real_logits), eqx::ones({batch_size})));
  return {(fake_loss + real_loss) / 2, {state2, new_generator_state}};
}

/// The generator's loss: its fakes should score 1 ("real") with the discriminator.
Loss generator_loss(const Generator& generator, const Discriminator& discriminator,
                    const nn::State& discriminator_state, const nn::State& generator_state,
                    const eqx::random::Key& key) {
  const Array noise = eqx::random::normal(key, {batch_size, latent_size, 1, 1});
  auto [fake_batch, new_generator_state] = run_batch(generator, noise, generator_state);
  auto [fake_logits, new_discriminator_state] = run_batch(discriminator, fake_batch, discriminator_state);
  const Array loss = eqx::mean(optim::sigmoid_binary_cross_entropy(eqx::ravel(fake_logits), eqx::ones({batch_size})));
  return {loss, {new_discriminator_state, new_generator_state}};
}

// ---------------------------------------------------------------- ASCII art

/// Images [n, 1, 28, 28] in [-1, 1] side by side, 2x2-averaged to 14x14, one character per cell.
void draw(const Array& images) {
  constexpr std::string_view ramp = " .:-=+*#%@";
  const std::int64_t n = images.shape()[0];
  const Array small = eqx::mean(eqx::reshape(images, {n, 14, 2, 14, 2}), eqx::Axes{2, 4});  // [n, 14, 14]
  const std::vector<float> px = small.to_vector<float>();
  for (int row = 0; row < 14; ++row) {
    std::string line;
    for (std::int64_t i = 0; i < n; ++i) {
      line += "  |";
      for (int col = 0; col < 14; ++col) {
        const float v = (px[(i * 14 + row) * 14 + col] + 1) / 2;  // [0, 1]
        line += ramp[std::clamp(static_cast<int>(v * ramp.size()), 0, static_cast<int>(ramp.size()) - 1)];
      }
      line += "|";
    }
    fmt::print("{}\n", line);
  }
}

/// Mean and std of all pixels, and the average image.
struct PixelStats {
  float mean, std;
  Array mean_image;
};
PixelStats pixel_stats(const Array& images) {
  const Array m = eqx::mean(images);
  return {m.item<float>(), eqx::sqrt(eqx::mean(eqx::square(images - m))).item<float>(), eqx::mean(images, eqx::Axes{0})};
}

int main(int argc, char** argv) {
  int steps = 300, train_size = 8192, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--steps") steps = std::atoi(argv[i + 1]);
    else if (flag == "--train-size") train_size = std::atoi(argv[i + 1]);
    else if (flag == "--threads") threads = std::atoi(argv[i + 1]);
  }
  // These convolutions are small (16 images, at most 64 channels): on the
  // busy 2-core machine this example was measured on, 2 threads made a step
  // twice as slow as 1 (each image's small GEMM starts OpenBLAS's threads
  // inside eqx's parallel convolution). --threads 0 keeps eqx's default
  // (every core).
  if (threads > 0) eqx::set_num_threads(threads);

  // ---------------------------------------------------------------- 1. data
  auto [images, labels] = eqx::data::load_fashion_mnist("train");
  images = eqx::slice(images, 0, 0, train_size) * 2.0f - 1.0f;  // [0, 1] -> [-1, 1]
  const PixelStats data = pixel_stats(images);
  fmt::print("Fashion-MNIST: {} training images {} in [-1, 1]; pixel mean {:.3f}, std {:.3f}\n", train_size,
             images.shape(), data.mean, data.std);

  // ---------------------------------------------------------------- 3. models and their States
  auto keys = eqx::random::split_keys(eqx::random::key(2003), 5);  // generator, discriminator, training, samples, order
  auto [generator, generator_state] = nn::make_with_state(Generator::init)(keys[0]);
  auto [discriminator, discriminator_state] = nn::make_with_state(Discriminator::init)(keys[1]);
  fmt::print("generator State: {} values; discriminator State: {} values\n", generator_state.size(),
             discriminator_state.size());

  // ---------------------------------------------------------------- 5. two optimisers, two steps
  auto generator_optimizer = optim::adam(learning_rate, {.b1 = beta1, .b2 = beta2});
  auto discriminator_optimizer = optim::adam(learning_rate, {.b1 = beta1, .b2 = beta2});
  auto generator_opt_state = generator_optimizer.init(eqx::filter(generator, eqx::is_array));
  auto discriminator_opt_state = discriminator_optimizer.init(eqx::filter(discriminator, eqx::is_array));
  using GeneratorOptState = decltype(generator_opt_state);
  using DiscriminatorOptState = decltype(discriminator_opt_state);

  auto step_discriminator = eqx::filter_jit(
      [discriminator_optimizer](const Discriminator& discriminator, const Generator& generator, const Array& real_batch,
                                const DiscriminatorOptState& opt_state, const nn::State& generator_state,
                                const nn::State& discriminator_state, const eqx::random::Key& key) {
        auto [loss_and_states, grads] = eqx::filter_value_and_grad(discriminator_loss, eqx::has_aux)(
            discriminator, generator, real_batch, discriminator_state, generator_state, key);
        auto [loss, states] = loss_and_states;
        auto [updates, new_opt_state] = discriminator_optimizer.update(grads, opt_state);
        return std::tuple{loss, eqx::apply_updates(discriminator, updates), new_opt_state, states.second, states.first};
      });
  auto step_generator = eqx::filter_jit(
      [generator_optimizer](const Generator& generator, const Discriminator& discriminator,
                            const GeneratorOptState& opt_state, const nn::State& discriminator_state,
                            const nn::State& generator_state, const eqx::random::Key& key) {
        auto [loss_and_states, grads] = eqx::filter_value_and_grad(generator_loss, eqx::has_aux)(
            generator, discriminator, discriminator_state, generator_state, key);
        auto [loss, states] = loss_and_states;
        auto [updates, new_opt_state] = generator_optimizer.update(grads, opt_state);
        return std::tuple{loss, eqx::apply_updates(generator, updates), new_opt_state, states.first, states.second};
      });

  // ---------------------------------------------------------------- 6. sampling in inference mode
  // The notebook binds the State with eqx.Partial (eqx::Partial, as
  // examples/stateful.cpp does); inside this jitted function a capturing
  // lambda does the same. In inference mode BatchNorm uses its running statistics
  // and leaves the State unchanged, so the returned State is dropped.
  auto evaluate = eqx::filter_jit([](const auto& inference_model, const nn::State& state, const Array& xs) {
    auto call = [&state](const auto& model, const Array& x) { return model(x, state).first; };
    return eqx::filter_vmap(call, eqx::in_axes(eqx::none, 0), 0, std::nullopt, "batch")(inference_model, xs);
  });
  const Array sample_noise = eqx::random::normal(keys[3], {256, latent_size, 1, 1});
  auto sample = [&] { return evaluate(nn::inference_mode(generator), generator_state, sample_noise); };

  const Array before = sample();
  const PixelStats initial = pixel_stats(before);
  fmt::print("\nreal images:\n");
  draw(eqx::slice(images, 0, 0, 4));
  fmt::print("\nsamples before training (pixel mean {:.3f}, std {:.3f}):\n", initial.mean, initial.std);
  draw(eqx::slice(before, 0, 0, 4));

  // ---------------------------------------------------------------- training
  fmt::print("\n");
  eqx::random::Key key = keys[2], order_key = keys[4];
  std::vector<Array> batches;
  std::size_t next_batch = 0;
  bool all_finite = true;
  float first_discriminator_loss = 0, lowest_discriminator_loss = 0;
  const int print_every = std::max(50, steps / 10);
  for (int step = 0; step < steps; ++step) {
    if (next_batch == batches.size()) {  // a new epoch: a fresh order
      auto split = eqx::random::split_keys(order_key, 2);
      order_key = split[0];
      batches = eqx::data::batch_indices(split[1], train_size, batch_size);
      next_batch = 0;
    }
    const Array real_batch = eqx::take(images, batches[next_batch++], 0);
    auto step_keys = eqx::random::split_keys(key, 3);
    key = step_keys[0];
    Array d_loss, g_loss;
    std::tie(d_loss, discriminator, discriminator_opt_state, generator_state, discriminator_state) =
        step_discriminator(discriminator, generator, real_batch, discriminator_opt_state, generator_state,
                           discriminator_state, step_keys[1]);
    std::tie(g_loss, generator, generator_opt_state, discriminator_state, generator_state) =
        step_generator(generator, discriminator, generator_opt_state, discriminator_state, generator_state,
                       step_keys[2]);
    const float d = d_loss.item<float>(), g = g_loss.item<float>();
    all_finite = all_finite && std::isfinite(d) && std::isfinite(g);
    if (step == 0) first_discriminator_loss = lowest_discriminator_loss = d;
    lowest_discriminator_loss = std::min(lowest_discriminator_loss, d);
    if (step % print_every == 0 || step == steps - 1)
      fmt::print("step {:4d}/{}  generator loss {:.4f}  discriminator loss {:.4f}\n", step, steps, g, d);
  }

  // Samples from the trained generator, scored by the trained discriminator
  // (both in inference mode); the best-scored four are drawn.
  const Array after = sample();
  const PixelStats trained = pixel_stats(after);
  const Array scores = eqx::ravel(evaluate(nn::inference_mode(discriminator), discriminator_state, after));
  const Array best = eqx::slice(eqx::argsort(-scores, 0), 0, 0, 4);
  fmt::print("\nsamples after training, the four the discriminator rates most real (pixel mean {:.3f}, std {:.3f}):\n",
             trained.mean, trained.std);
  draw(eqx::take(after, best, 0));
  const Array real_scores = eqx::ravel(evaluate(nn::inference_mode(discriminator), discriminator_state,
                                                eqx::slice(images, 0, 0, 256)));
  fmt::print("discriminator: mean P(real) {:.3f} on real images, {:.3f} on samples\n",
             eqx::mean(eqx::sigmoid(real_scores)).item<float>(), eqx::mean(eqx::sigmoid(scores)).item<float>());

  auto stats_distance = [&](const PixelStats& s) { return std::abs(s.mean - data.mean) + std::abs(s.std - data.std); };
  auto image_distance = [&](const PixelStats& s) {
    return std::sqrt(eqx::mean(eqx::square(s.mean_image - data.mean_image)).item<float>());
  };
  fmt::print("|mean - data mean| + |std - data std|: {:.3f} before, {:.3f} after\n", stats_distance(initial),
             stats_distance(trained));
  fmt::print("RMS distance of the average sample to the average real image: {:.3f} before, {:.3f} after\n",
             image_distance(initial), image_distance(trained));
  fmt::print("discriminator loss {:.4f} at the first step, lowest {:.4f}; steps traced {} and {} time(s)\n",
             first_discriminator_loss, lowest_discriminator_loss, eqx::debug::get_num_traces(step_discriminator),
             eqx::debug::get_num_traces(step_generator));

  int failures = 0;
  auto require = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "FAILED: %s\n", what);
      ++failures;
    }
  };
  require(all_finite, "both losses stayed finite");
  require(lowest_discriminator_loss < first_discriminator_loss, "the discriminator's loss fell below its first value");
  require(stats_distance(trained) * 2 <= stats_distance(initial), "the samples' mean and std moved toward the data's");
  require(image_distance(trained) * 2 <= image_distance(initial), "the average sample moved toward the average image");
  require(eqx::debug::get_num_traces(step_discriminator) == 1 && eqx::debug::get_num_traces(step_generator) == 1,
          "each step was traced once");
  return failures == 0 ? 0 : 1;
}
