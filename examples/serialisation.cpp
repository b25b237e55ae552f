// Serialisation with hyperparameters: one file holding a model's
// hyperparameters and its weights (Equinox's docs/examples/serialisation.ipynb).
//
// eqx::tree_serialise_leaves writes a tree's leaves, and only its leaves:
// one .npy record per Array (Equinox's byte format), no names, no types, no
// structure. Reading them back needs a "skeleton", a model of the right
// structure whose values are replaced by the file's:
// `model = eqx::tree_deserialise_leaves(stream, skeleton)`.
//
// A model is weights plus hyperparameters (its sizes, its activation), so
// a file should hold both. The notebook's recipe, transcribed:
//   1. `make(key, hyperparameters)` builds the model (an nn::MLP); the
//      hyperparameters are kept;
//   2. save: the hyperparameters as ONE line of JSON (written by hand with
//      fmt here: a flat object of ints and bools needs no JSON library),
//      then the leaves, into the same stream;
//   3. load: read the first line, parse it, build a skeleton with `make`,
//      and deserialise the rest of the stream into it.
//
// Why not "save the object", as pickle does? The file holds numbers only;
// the structure comes from code you trust (`make`). So the format cannot
// drift with a library's internals, a function pointer (the activation)
// needs no encoding, and loading a file from a stranger runs no code of
// theirs: it is read as arrays of numbers and checked, record by record,
// against the skeleton. The price: the skeleton must match, and when it
// does not, loading fails with a message naming the first leaf that
// differs (section 4 shows it).
//
// Run: build/<dir>/examples/serialisation
//
// Checks (non-zero exit if one fails): the loaded model equals the saved
// one (eqx::tree_equal: structure, static fields and every bit) although
// the skeleton's values differed; it gives bit-identical outputs; a
// skeleton of the wrong sizes is rejected with an eqx::Error. The file is
// written into a fresh folder under the system's temp directory, removed
// at the end.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>

#include <fmt/core.h>
#include <eqx/eqx.hpp>
#include <eqx/io.hpp>

namespace nn = eqx::nn;
using eqx::Array;

// ---------------------------------------------------------------- 1. the model and its hyperparameters

struct Hyperparameters {
  int size = 0;
  int width = 0;
  int depth = 0;
  bool use_tanh = false;
  friend bool operator==(const Hyperparameters&, const Hyperparameters&) = default;
};

/// The model the hyperparameters describe. (This is not meant to be a
/// realistically useful model.)
nn::MLP make(const eqx::random::Key& key, const Hyperparameters& h) {
  const nn::Activation activation = h.use_tanh ? nn::Activation(eqx::tanh) : nn::Activation(nn::relu);
  return nn::MLP::init(h.size, 1, h.width, h.depth, key, {.activation = activation});
}

/// The hyperparameters as one line of JSON, e.g. {"size": 5, "width": 10, "depth": 3, "use_tanh": true}.
std::string to_json(const Hyperparameters& h) {
  return fmt::format(R"({{"size": {}, "width": {}, "depth": {}, "use_tanh": {}}})", h.size, h.width, h.depth,
                     h.use_tanh);
}

/// The value of `"name": value` in a flat JSON object of numbers and bools.
std::string json_value(const std::string& json, const std::string& name) {
  const std::size_t at = json.find('"' + name + '"');
  const std::size_t colon = at == std::string::npos ? at : json.find(':', at);
  if (colon == std::string::npos) throw std::runtime_error("hyperparameters: no \"" + name + "\" in " + json);
  const std::size_t begin = json.find_first_not_of(' ', colon + 1);
  const std::size_t end = json.find_first_of(",} ", begin);
  return json.substr(begin, end - begin);
}

Hyperparameters from_json(const std::string& json) {
  return {std::stoi(json_value(json, "size")), std::stoi(json_value(json, "width")),
          std::stoi(json_value(json, "depth")), json_value(json, "use_tanh") == "true"};
}

// ---------------------------------------------------------------- 2. save

void save(const std::filesystem::path& filename, const Hyperparameters& hyperparams, const nn::MLP& model) {
  std::ofstream f(filename, std::ios::binary);
  f << to_json(hyperparams) << '\n';
  eqx::tree_serialise_leaves(f, model);
}

// ---------------------------------------------------------------- 3. load

nn::MLP load(const std::filesystem::path& filename) {
  std::ifstream f(filename, std::ios::binary);
  std::string first_line;
  std::getline(f, first_line);
  const Hyperparameters hyperparams = from_json(first_line);
  // The skeleton's values are overwritten, so any key will do.
  const nn::MLP skeleton = make(eqx::random::key(1), hyperparams);
  return eqx::tree_deserialise_leaves(f, skeleton);
}

/// A fresh folder under the system's temp directory, removed on scope exit.
struct TempDir {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("eqx_serialisation_example_" + std::to_string(std::random_device{}()));
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

int main() {
  const Hyperparameters hyperparameters{.size = 5, .width = 10, .depth = 3, .use_tanh = true};
  const nn::MLP model = make(eqx::random::key(0), hyperparameters);
  // ... train the model as usual; then:

  TempDir dir;
  const std::filesystem::path filename = dir.path / "model.eqx";
  save(filename, hyperparameters, model);
  std::ifstream peek(filename, std::ios::binary);
  std::string first_line;
  std::getline(peek, first_line);
  fmt::print("{} ({} bytes): the line\n  {}\nthen {} .npy records, one per Array leaf\n\n",
             filename.filename().string(), std::filesystem::file_size(filename), first_line,
             eqx::tree_leaves(model).size());

  const nn::MLP newmodel = load(filename);
  const bool skeleton_differed = !eqx::tree_equal(make(eqx::random::key(1), hyperparameters), model);
  const bool equal = eqx::tree_equal(newmodel, model);
  auto element = [](const Array& w, std::int64_t i, std::int64_t j) {
    return eqx::slice(w, {{i, i + 1}, {j, j + 1}}).item<float>();
  };
  fmt::print("layers[1].weight[2, 2]: saved {}, loaded {}\n", element(model.layers[1].weight, 2, 2),
             element(newmodel.layers[1].weight, 2, 2));
  const Array xs = eqx::random::normal(eqx::random::key(2), {4, hyperparameters.size});
  const Array ys = eqx::filter_vmap(model)(xs), new_ys = eqx::filter_vmap(newmodel)(xs);
  fmt::print("outputs on 4 inputs: saved {}\n                     loaded {}\n\n", eqx::ravel(ys), eqx::ravel(new_ys));

  // ---------------------------------------------------------------- 4. a skeleton that does not match
  // A skeleton of other sizes (a hand-edited first line, or a skeleton built
  // from the wrong hyperparameters) is caught at the first leaf that differs.
  int rejected = 0;
  for (const Hyperparameters& wrong : {Hyperparameters{5, 12, 3, true}, Hyperparameters{5, 10, 4, true}}) {
    std::ifstream f(filename, std::ios::binary);
    std::string line;
    std::getline(f, line);
    try {
      eqx::tree_deserialise_leaves(f, make(eqx::random::key(0), wrong));
    } catch (const eqx::Error& e) {
      fmt::print("skeleton {} ->\n  eqx::Error: {}\n", to_json(wrong), e.what());
      ++rejected;
    }
  }
  fmt::print("\n");

  int failures = 0;
  auto require = [&](bool ok, const char* what) {
    fmt::print("{} {}\n", ok ? "ok  " : "FAIL", what);
    failures += ok ? 0 : 1;
  };
  require(skeleton_differed && equal, "the loaded model equals the saved one (its values came from the file)");
  require(eqx::tree_equal(ys, new_ys), "the loaded model gives bit-identical outputs");
  require(from_json(first_line) == hyperparameters, "the hyperparameters were read back from the first line");
  require(rejected == 2, "skeletons of the wrong sizes are rejected with an eqx::Error");
  return failures == 0 ? 0 : 1;
}
