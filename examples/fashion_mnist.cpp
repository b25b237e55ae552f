// The demo: Equinox's MNIST CNN (docs/examples/mnist.ipynb), trained on
// Fashion-MNIST with eqx::nn, eqx::optim and one filter_jit training step.
//
// What it shows, in the order the notebook does:
//   1. the model is a plain struct whose `layers` hold Equinox's ten layers:
//      Conv2d(1, 3, 4) -> MaxPool2d(2, stride 1) -> relu -> ravel ->
//      Linear(1728, 512) -> sigmoid -> Linear(512, 64) -> relu ->
//      Linear(64, 10) -> log_softmax. It is written for ONE image; the loss
//      batches it with filter_vmap, as jax.vmap(model) does;
//   2. the optimiser (optim::adamw(3e-4), Optax's) is initialised on the
//      model's arrays only (eqx::filter(model, eqx::is_array));
//   3. one training step = filter_value_and_grad + opt.update +
//      apply_updates, compiled once by filter_jit into a single plan;
//   4. a jitted evaluation over the test set after each epoch, and a
//      per-class accuracy table at the end;
//   5. the model saved as Equinox's serialisation example saves it (a JSON
//      line of hyperparameters, then the leaves), loaded back into a
//      skeleton built from that line, and checked to predict identically;
//   6. the loss and accuracy curves as CSV, drawn to a PNG by gnuplot.
//
// Data: Debian's dataset-fashion-mnist (scripts/install-deps installs it),
// read by eqx::data (gzip IDX files). Pixels are scaled to [-1, 1], as the
// notebook's Normalize((0.5,), (0.5,)) does.
//
// Run: scripts/demo [--epochs N] [--batch-size B] [--threads T] [--out DIR]
//      [--seed S]; --train-size/--test-size take a slice of the data (the
// ctest run uses a small one), --min-accuracy makes the exit code check
// the final test accuracy. --help lists them all.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <eqx/data.hpp>
#include <eqx/eqx.hpp>
#include <eqx/io.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
namespace fs = std::filesystem;
using eqx::Array;
using Clock = std::chrono::steady_clock;

// -------------------------------------------------------------- 1. the model

/// The sizes that define the CNN: what the saved file's JSON line records.
struct Hyperparameters {
  int image_size = 28, conv_channels = 3, kernel_size = 4, hidden1 = 512, hidden2 = 64, classes = 10;
};

/// Equinox's layer list as an nn::Sequential: layers and plain functions.
auto make_layers(const Hyperparameters& hp, const eqx::random::Key& key) {
  auto k = eqx::random::split_keys(key, 4);
  const int pooled = hp.image_size - hp.kernel_size;  // conv: 28 - 4 + 1 = 25; max pool 2, stride 1: 24
  const int flat = hp.conv_channels * pooled * pooled;  // 3 * 24 * 24 = 1728
  return nn::sequential(nn::Conv2d::init(1, hp.conv_channels, hp.kernel_size, k[0]),
                        nn::MaxPool2d::init(2, {.stride = 1}),
                        nn::Lambda{nn::Activation(nn::relu)},
                        nn::Lambda{nn::Activation(eqx::ravel)},
                        nn::Linear::init(flat, hp.hidden1, k[1]),
                        nn::Lambda{nn::Activation(nn::sigmoid)},
                        nn::Linear::init(hp.hidden1, hp.hidden2, k[2]),
                        nn::Lambda{nn::Activation(nn::relu)},
                        nn::Linear::init(hp.hidden2, hp.classes, k[3]),
                        nn::Lambda{nn::Activation(nn::log_softmax)});
}

struct CNN {
  decltype(make_layers({}, eqx::random::key(0))) layers;

  static CNN init(const Hyperparameters& hp, const eqx::random::Key& key) { return {make_layers(hp, key)}; }

  /// One image [1, 28, 28] -> log-probabilities of the 10 classes.
  Array operator()(const Array& x) const { return layers(x); }
};

/// Minus the mean log-probability of the true labels (the notebook's cross_entropy).
Array loss(const CNN& model, const Array& x, const Array& y) {
  const Array log_probs = eqx::filter_vmap(model)(x);  // [batch, 10]
  return -eqx::mean(eqx::sum(log_probs * eqx::one_hot(y, 10), 1));
}

// -------------------------------------------------------------- saving as Equinox's serialisation example

nlohmann::json to_json(const Hyperparameters& hp) {
  return {{"image_size", hp.image_size}, {"conv_channels", hp.conv_channels}, {"kernel_size", hp.kernel_size},
          {"hidden1", hp.hidden1},       {"hidden2", hp.hidden2},             {"classes", hp.classes}};
}

void save(const fs::path& file, const Hyperparameters& hp, const CNN& model) {
  std::ofstream out(file, std::ios::binary);
  out << to_json(hp).dump() << '\n';
  eqx::tree_serialise_leaves(out, model);
  if (!out) throw eqx::IOError("writing " + file.string() + " failed");
}

/// Reads the JSON line, builds a skeleton with those sizes, fills in its leaves.
CNN load(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string line;
  if (!std::getline(in, line)) throw eqx::IOError(file.string() + ": no hyperparameter line");
  const auto j = nlohmann::json::parse(line);
  Hyperparameters hp{j.at("image_size"), j.at("conv_channels"), j.at("kernel_size"),
                     j.at("hidden1"),    j.at("hidden2"),       j.at("classes")};
  const CNN skeleton = CNN::init(hp, eqx::random::key(0));  // its values are overwritten
  return eqx::tree_deserialise_leaves(in, skeleton);
}

// -------------------------------------------------------------- progress output

/// A one-line progress bar redrawn in place on a terminal; on a pipe or file,
/// plain lines at every quarter of the epoch.
class Progress {
 public:
  Progress(int epoch, int epochs, int steps) : epoch_(epoch), epochs_(epochs), steps_(steps) {}

  void update(int step, double loss) {
    const double elapsed = seconds_since(start_);
    const double rate = step / std::max(elapsed, 1e-9);
    const bool quarter = step * 4 / steps_ != (step - 1) * 4 / steps_;
    if (kTerminal ? (step == steps_ || seconds_since(last_draw_) > 0.1) : quarter) {
      const int filled = 30 * step / steps_;
      fmt::print("{}epoch {}/{} [{}{}] {:>5}/{}  {:6.1f} steps/s  loss {:.4f}  ETA {:4.1f} s{}", kTerminal ? "\r" : "",
                 epoch_, epochs_, std::string(filled, '#'), std::string(30 - filled, '.'), step, steps_, rate, loss,
                 (steps_ - step) / std::max(rate, 1e-9), kTerminal ? "" : "\n");
      std::fflush(stdout);
      last_draw_ = Clock::now();
    }
    if (kTerminal && step == steps_) fmt::print("\n");
  }
  double seconds() const { return seconds_since(start_); }

  static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

 private:
  static inline const bool kTerminal = isatty(STDOUT_FILENO) != 0;
  int epoch_, epochs_, steps_;
  Clock::time_point start_ = Clock::now(), last_draw_ = Clock::time_point{};
};

/// Draws loss.csv and accuracy.csv into one PNG with gnuplot; false if gnuplot is missing.
bool plot(const fs::path& dir, const fs::path& png, int epochs) {
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) return false;
  const fs::path script = dir / "curves.gp";
  std::ofstream(script) << fmt::format(
      "set terminal png size 1100,420 font ',10'\n"
      "set output '{0}'\n"
      "set datafile separator ','\n"
      "set multiplot layout 1,2 title 'eqx: Equinox MNIST CNN on Fashion-MNIST'\n"
      "set xlabel 'training step'; set ylabel 'loss'; set grid\n"
      "plot '{1}' using 1:2 skip 1 with lines lw 2 title 'train loss (mean over 50 steps)', \\\n"
      "     '{2}' using 2:3 skip 1 with linespoints lw 2 pt 7 title 'test loss'\n"
      "set xlabel 'epoch'; set ylabel 'test accuracy (%)'; set xtics 1; set xrange [0.5:{3}.5]\n"
      "plot '{2}' using 1:($4*100) skip 1 with linespoints lw 2 pt 7 title 'test accuracy'\n"
      "unset multiplot\n",
      png.string(), (dir / "loss.csv").string(), (dir / "accuracy.csv").string(), epochs);
  // gnuplot's warnings (a one-point curve has an "empty range") go to a log beside the script.
  return std::system(("gnuplot '" + script.string() + "' 2> '" + (dir / "curves.log").string() + "'").c_str()) == 0;
}

// -------------------------------------------------------------- main

int run(int argc, char** argv) {
  CLI::App app{"Train Equinox's MNIST CNN on Fashion-MNIST with eqx"};
  int epochs = 3, batch_size = 64, threads = 0, train_size = 60000, test_size = 10000;
  unsigned seed = 5678;  // the notebook's SEED
  double learning_rate = 3e-4, min_accuracy = 0;
  std::string out_dir = "eqx_demo_output", data_dir = eqx::data::fashion_mnist_dir.string();
  app.add_option("--epochs", epochs, "passes over the training set")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch_size, "examples per step")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "threads for the kernels (0: all cores)")->capture_default_str();
  app.add_option("--out", out_dir, "folder for the model, CSVs and PNG")->capture_default_str();
  app.add_option("--seed", seed, "seed of the model's initialisation and the batch order")->capture_default_str();
  app.add_option("--learning-rate", learning_rate, "adamw's learning rate")->capture_default_str();
  app.add_option("--train-size", train_size, "train on the first N training images")->capture_default_str()
      ->check(CLI::Range(1, 60000));
  app.add_option("--test-size", test_size, "evaluate on the first N test images")->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app.add_option("--data", data_dir, "folder of the four Fashion-MNIST IDX files")->capture_default_str();
  app.add_option("--min-accuracy", min_accuracy, "exit with 1 if the final test accuracy is lower");
  CLI11_PARSE(app, argc, argv);

  if (threads > 0) eqx::set_num_threads(threads);
  const fs::path out = fs::absolute(out_dir);
  fs::create_directories(out);
  const auto t0 = Clock::now();

  // Data: pixels to [-1, 1]; the first train_size / test_size examples.
  auto take_first = [](const eqx::data::LabelledImages& d, int n) {
    return eqx::data::LabelledImages{eqx::slice(d.images, 0, 0, n) * 2.0f - 1.0f, eqx::slice(d.labels, 0, 0, n)};
  };
  const auto train = take_first(eqx::data::load_fashion_mnist("train", data_dir), train_size);
  const auto test = take_first(eqx::data::load_fashion_mnist("test", data_dir), test_size);
  fmt::print("Fashion-MNIST from {}: {} training and {} test images of 28x28 ({:.1f} s to load)\n", data_dir,
             train_size, test_size, Progress::seconds_since(t0));

  const Hyperparameters hp;
  const auto keys = eqx::random::split_keys(eqx::random::key(seed), 2);  // model, batch order
  CNN model = CNN::init(hp, keys[0]);
  fmt::print("\nThe model (fmt::print(\"{{}}\", model), Equinox's layout):\n{}\n", model);

  auto opt = optim::adamw(learning_rate);
  auto opt_state = opt.init(eqx::filter(model, eqx::is_array));
  using OptState = decltype(opt_state);

  // One training step, compiled once: forward, backward, adamw, update.
  auto make_step = eqx::filter_jit([opt](const CNN& model, const OptState& state, const Array& x, const Array& y) {
    auto [loss_value, grads] = eqx::filter_value_and_grad(loss)(model, x, y);
    auto [updates, next_state] = opt.update(grads, state, eqx::filter(model, eqx::is_array));
    return std::tuple{eqx::apply_updates(model, updates), next_state, loss_value};
  });
  // Evaluation: the predicted class and the summed loss of a chunk of images.
  auto evaluate_chunk = eqx::filter_jit([](const CNN& model, const Array& x, const Array& y) {
    const Array log_probs = eqx::filter_vmap(model)(x);
    return std::pair{eqx::argmax(log_probs, 1), -eqx::sum(log_probs * eqx::one_hot(y, 10))};
  });
  auto evaluate = [&](const CNN& m) {  // -> {predictions, mean loss}
    constexpr int kChunk = 2000;
    std::vector<std::int32_t> predictions;
    double loss_sum = 0;
    for (int start = 0; start < test_size; start += kChunk) {
      const int stop = std::min(test_size, start + kChunk);
      auto [pred, l] = evaluate_chunk(m, eqx::slice(test.images, 0, start, stop), eqx::slice(test.labels, 0, start, stop));
      for (std::int32_t p : pred.to_vector<std::int32_t>()) predictions.push_back(p);
      loss_sum += l.item<float>();
    }
    return std::pair{predictions, loss_sum / test_size};
  };
  const std::vector<std::int32_t> labels = test.labels.to_vector<std::int32_t>();
  auto accuracy_of = [&](const std::vector<std::int32_t>& predictions) {
    std::size_t correct = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) correct += predictions[i] == labels[i];
    return static_cast<double>(correct) / static_cast<double>(labels.size());
  };

  std::ofstream loss_csv(out / "loss.csv"), accuracy_csv(out / "accuracy.csv");
  loss_csv << "step,train_loss\n";
  accuracy_csv << "epoch,step,test_loss,test_accuracy\n";
  const int steps_per_epoch = train_size / batch_size;
  if (steps_per_epoch == 0) {
    fmt::print(stderr, "--train-size {} is smaller than one batch of {}\n", train_size, batch_size);
    return 2;
  }
  fmt::print("\nTraining: adamw({}), batch {}, {} steps per epoch, {} thread(s)\n", learning_rate, batch_size,
             steps_per_epoch, eqx::num_threads());
  std::vector<std::int32_t> predictions;
  double accuracy = 0, train_seconds = 0;
  int step = 0;
  auto epoch_keys = eqx::random::split_keys(keys[1], epochs);
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    Progress progress(epoch, epochs, steps_per_epoch);
    double window_sum = 0, running = 0;
    int window = 0, in_epoch = 0;
    for (const Array& idx : eqx::data::batch_indices(epoch_keys[epoch - 1], train_size, batch_size)) {
      Array loss_value;
      std::tie(model, opt_state, loss_value) =
          make_step(model, opt_state, eqx::take(train.images, idx, 0), eqx::take(train.labels, idx, 0));
      const double l = loss_value.item<float>();
      running = in_epoch == 0 ? l : 0.98 * running + 0.02 * l;
      window_sum += l;
      ++step, ++window, ++in_epoch;
      if (window == 50) {
        loss_csv << fmt::format("{},{:.6f}\n", step, window_sum / window);
        window_sum = 0, window = 0;
      }
      progress.update(in_epoch, running);
    }
    train_seconds += progress.seconds();
    double test_loss;
    std::tie(predictions, test_loss) = evaluate(model);
    accuracy = accuracy_of(predictions);
    accuracy_csv << fmt::format("{},{},{:.6f},{:.6f}\n", epoch, step, test_loss, accuracy);
    fmt::print("epoch {}/{}: {:.1f} s ({:.0f} steps/s), test loss {:.4f}, test accuracy {:.2f}%\n", epoch, epochs,
               progress.seconds(), steps_per_epoch / progress.seconds(), test_loss, 100 * accuracy);
  }
  loss_csv.close();
  accuracy_csv.close();

  // Per-class accuracy on the test set.
  fmt::print("\n{:<12} {:>10} {:>9}\n", "class", "correct", "accuracy");
  for (int c = 0; c < 10; ++c) {
    int total = 0, correct = 0;
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == c) ++total, correct += predictions[i] == c;
    fmt::print("{:<12} {:>10} {:>8.1f}%\n", eqx::data::fashion_mnist_classes[c], fmt::format("{}/{}", correct, total),
               total ? 100.0 * correct / total : 0.0);
  }
  fmt::print("{:<12} {:>10} {:>8.2f}%\n", "all", fmt::format("{}/{}", static_cast<int>(accuracy * test_size + 0.5),
                                                             test_size), 100 * accuracy);

  // Save, reload into a skeleton, and check the reloaded model predicts the same.
  const fs::path model_file = out / "fashion_mnist_cnn.eqx";
  save(model_file, hp, model);
  const CNN reloaded = load(model_file);
  const auto [reloaded_predictions, reloaded_loss] = evaluate(reloaded);
  const bool same = reloaded_predictions == predictions && eqx::tree_equal(reloaded, model);
  fmt::print("\nsaved the model to {} ({} bytes: a JSON line of hyperparameters, then the leaves)\n",
             model_file.string(), fs::file_size(model_file));
  fmt::print("reloaded it: test accuracy {:.2f}%, {}\n", 100 * accuracy_of(reloaded_predictions),
             same ? "identical weights and predictions" : "DIFFERENT from the trained model");

  const fs::path png = out / "curves.png";
  fmt::print("wrote the curves to {} and {}\n", (out / "loss.csv").string(), (out / "accuracy.csv").string());
  if (plot(out, png, epochs))
    fmt::print("drew them to {}\n", png.string());
  else
    fmt::print("gnuplot was not found, so no PNG (apt-get install gnuplot-nox); the CSV files have the curves\n");
  fmt::print("\ntraining took {:.1f} s, {:.1f} s in all; final test accuracy {:.2f}%\n", train_seconds,
             Progress::seconds_since(t0), 100 * accuracy);

  if (!same) return 1;
  if (accuracy < min_accuracy) {
    fmt::print("test accuracy {:.2f}% is below --min-accuracy {:.2f}%\n", 100 * accuracy, 100 * min_accuracy);
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const eqx::Error& e) {  // a missing dataset, an unwritable --out, ...: say what, not a core dump
    fmt::print(stderr, "fashion_mnist: {}\n", e.what());
  } catch (const std::exception& e) {
    fmt::print(stderr, "fashion_mnist: {}\n", e.what());
  }
  return 1;
}
