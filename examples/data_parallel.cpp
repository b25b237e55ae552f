// Data-parallel training over MPI: the demo's Fashion-MNIST CNN
// (examples/fashion_mnist.cpp) trained by N processes at once.
//
//   mpirun -np 2 build/default/examples/data_parallel [--epochs 1] [--global-batch 64]
//
// What it shows:
//   1. eqx::dist::run starts MPI and turns an error on any rank into the
//      end of the whole job (no rank left waiting);
//   2. every rank builds the model from the same key, and tree_broadcast
//      makes sure they start from rank 0's parameters;
//   3. each step, every rank takes its shard of the same global batch
//      (shard_batch_indices: one epoch order from one key, no messages),
//      computes the gradient with the jitted filter_value_and_grad, and
//      tree_allreduce averages the gradients (one bucketed MPI_Allreduce);
//   4. every rank applies the same adamw update, so the models stay
//      bit-identical, which the example checks at the end;
//   5. rank 0 saves the model (eqx::dist::save_checkpoint), and the step
//      time and communication per step are printed.
// With one rank it is ordinary single-process training on the same batches.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <eqx/data.hpp>
#include <eqx/dist.hpp>
#include <eqx/eqx.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
namespace dist = eqx::dist;
using eqx::Array;

// -------------------------------------------------------------- the demo's model

auto make_layers(const eqx::random::Key& key) {
  auto k = eqx::random::split_keys(key, 4);
  return nn::sequential(nn::Conv2d::init(1, 3, 4, k[0]), nn::MaxPool2d::init(2, {.stride = 1}),
                        nn::Lambda{nn::Activation(nn::relu)}, nn::Lambda{nn::Activation(eqx::ravel)},
                        nn::Linear::init(1728, 512, k[1]), nn::Lambda{nn::Activation(nn::sigmoid)},
                        nn::Linear::init(512, 64, k[2]), nn::Lambda{nn::Activation(nn::relu)},
                        nn::Linear::init(64, 10, k[3]), nn::Lambda{nn::Activation(nn::log_softmax)});
}

struct CNN {
  decltype(make_layers(eqx::random::key(0))) layers;
  Array operator()(const Array& x) const { return layers(x); }
};

Array loss(const CNN& model, const Array& x, const Array& y) {
  return -eqx::mean(eqx::sum(eqx::filter_vmap(model)(x) * eqx::one_hot(y, 10), 1));
}

// -------------------------------------------------------------- training

int train(int argc, char** argv) {
  int epochs = 1, global_batch = 64, train_size = 60000, test_size = 10000;
  double min_accuracy = 0;
  std::string checkpoint = "data_parallel.eqx";
  CLI::App app("Data-parallel training of the Fashion-MNIST CNN over MPI (run with mpirun -np N)");
  app.add_option("--epochs", epochs)->capture_default_str();
  app.add_option("--global-batch", global_batch, "examples per step over all ranks")->capture_default_str();
  app.add_option("--train-size", train_size, "train on the first N training images")->capture_default_str();
  app.add_option("--test-size", test_size, "evaluate on the first N test images")->capture_default_str();
  app.add_option("--checkpoint", checkpoint, "where rank 0 saves the model")->capture_default_str();
  app.add_option("--min-accuracy", min_accuracy, "exit with 1 if the final test accuracy is lower");
  CLI11_PARSE(app, argc, argv);

  const int rank = dist::rank(), ranks = dist::size();
  auto say = [&](const std::string& text) {
    if (rank == 0) fmt::print("{}", text);
  };
  auto prepare = [](const eqx::data::LabelledImages& d, int n) {
    return eqx::data::LabelledImages{eqx::slice(d.images, 0, 0, n) * 2.0f - 1.0f, eqx::slice(d.labels, 0, 0, n)};
  };
  const auto train_set = prepare(eqx::data::load_fashion_mnist("train"), train_size);
  const auto test_set = prepare(eqx::data::load_fashion_mnist("test"), test_size);

  // 2. The same initial model everywhere.
  CNN model = dist::tree_broadcast(CNN{make_layers(eqx::random::key(0))}, 0);
  const auto opt = optim::adamw(3e-4);
  auto opt_state = opt.init(eqx::filter(model, eqx::is_array));

  auto gradient = eqx::filter_jit(eqx::filter_value_and_grad(loss));
  auto apply = eqx::filter_jit([opt](const CNN& m, const decltype(opt_state)& state, const CNN& grads) {
    auto [updates, next] = opt.update(grads, state, m);
    return std::pair{eqx::apply_updates(m, updates), next};
  });

  say(fmt::format("{} rank(s), global batch {} ({} per rank), {} training images\n", ranks, global_batch,
                  global_batch / ranks, train_size));
  dist::comm_stats() = {};
  int steps = 0;
  double compute_seconds = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < epochs; ++epoch) {
    // 3. This rank's shard of every global batch of the epoch.
    for (const Array& idx : dist::shard_batch_indices(eqx::random::key(1000 + std::uint32_t(epoch)), train_size,
                                                      global_batch, rank, ranks)) {
      const auto t0 = std::chrono::steady_clock::now();
      auto [l, grads] = gradient(model, eqx::take(train_set.images, idx, 0), eqx::take(train_set.labels, idx, 0));
      compute_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      grads = dist::tree_allreduce(grads, dist::Reduce::mean);  // the whole global batch's gradient
      const auto t1 = std::chrono::steady_clock::now();
      std::tie(model, opt_state) = apply(model, opt_state, grads);
      compute_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
      if (++steps % 100 == 0) {
        const float mean_loss = eqx::mean(dist::allgather(l)).item<float>();
        say(fmt::format("step {:5d}  loss {:.4f}\n", steps, mean_loss));
      }
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const dist::CommStats comm = dist::comm_stats();  // the training steps' collectives only

  // 4. The replicas never diverged: every rank's parameters are rank 0's, bit for bit.
  const CNN reference = dist::tree_broadcast(model, 0);
  int identical = eqx::tree_equal(model, reference) ? 1 : 0;
  identical = eqx::sum(dist::allgather(eqx::array(identical))).item<std::int32_t>() == ranks;

  // Test accuracy, each rank on its slice of the test set, counts summed.
  const int per_rank = test_size / ranks, first = rank * per_rank;
  auto predict = eqx::filter_jit(
      [](const CNN& m, const Array& x) { return eqx::argmax(eqx::filter_vmap(m)(x), 1); });
  const Array pred = predict(model, eqx::slice(test_set.images, 0, first, first + per_rank));
  const Array hits = eqx::sum(eqx::astype(eqx::equal(pred, eqx::slice(test_set.labels, 0, first, first + per_rank)),
                                          eqx::int32));
  const double accuracy = double(dist::tree_allreduce(hits).item<std::int32_t>()) / double(per_rank * ranks);

  // 5. Rank 0 saves; every rank waits until the file is complete.
  dist::save_checkpoint(checkpoint, model);
  say(fmt::format("{} steps in {:.2f} s: {:.2f} ms per step ({:.2f} ms compute, {:.2f} ms in collectives, "
                  "{:.2f} MB all-reduced per step)\n",
                  steps, seconds, 1e3 * seconds / steps, 1e3 * compute_seconds / steps, 1e3 * comm.seconds / steps,
                  double(comm.bytes) / steps / 1e6));
  say(fmt::format("test accuracy {:.2f}% on {} images; replicas bit-identical: {}; saved {}\n", 100 * accuracy,
                  per_rank * ranks, identical ? "yes" : "NO", checkpoint));
  if (!identical) std::fprintf(stderr, "FAILED: the ranks' models differ\n");
  if (accuracy < min_accuracy) std::fprintf(stderr, "FAILED: accuracy %.4f < %.4f\n", accuracy, min_accuracy);
  return identical && accuracy >= min_accuracy ? 0 : 1;
}

int main(int argc, char** argv) {
  return dist::run(argc, argv, [&] { return train(argc, argv); });
}
