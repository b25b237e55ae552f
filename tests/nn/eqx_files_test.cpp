// Equinox-layout .eqx files, written leaf by leaf by NumPy
// (tests/nn/fixtures_eqx_files.py, in Equinox's exact leaf order), loaded
// into eqx::nn models built with the same hyperparameters.
//
// For each file: tree_deserialise_leaves consumes the whole file, the
// loaded model reproduces the outputs the script computed from the layer
// formulas, and tree_serialise_leaves writes back exactly the file's bytes
// (so a model saved by eqx loads in Equinox, record for record). The CNN is
// stateful: as Equinox, the model and its State are two files, and the model
// must come from make_with_state (whose StateIndexes write nothing).

#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>

#include "check.hpp"
#include "nn/fixtures.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace nn_eqx_files_test {

namespace nn = eqx::nn;
using eqx::Array;
using eqx_test::check_close;
using eqx_test::f32;
using eqx_test::fixture;

namespace {

const std::string c = "eqx_files";

/// The bytes of tests/nn/fixtures/eqx_files/<name>.
std::string file_bytes(const std::string& name) {
  const std::string path = std::string(EQX_TEST_SOURCE_DIR) + "/nn/fixtures/" + c + "/" + name;
  std::ifstream f(path, std::ios::binary);
  if (!f) FAIL("missing " << path << " (regenerate with /usr/bin/python3 tests/nn/fixtures_eqx_files.py)");
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

/// Loads `bytes` into a tree like `like`, requiring the whole file to be consumed.
template <class T>
T load_all(const std::string& bytes, const T& like) {
  std::stringstream in(bytes);
  T loaded = eqx::tree_deserialise_leaves(in, like);
  CHECK(in.peek() == std::char_traits<char>::eof());
  return loaded;
}

/// What eqx writes for `tree`.
template <class T>
std::string saved(const T& tree) {
  std::stringstream out;
  eqx::tree_serialise_leaves(out, tree);
  return out.str();
}

/// Equinox's CNN in the script: Conv2d(1, 2, 3) -> BatchNorm(2, "batch") -> MaxPool2d(2) -> Linear(18, 3).
struct Cnn {
  nn::Conv2d conv;
  nn::BatchNorm norm;
  nn::MaxPool2d pool;
  nn::Linear linear;

  static Cnn init(const eqx::random::Key& key) {
    auto keys = eqx::random::split_keys(key, 2);
    return {nn::Conv2d::init(1, 2, 3, keys[0]), nn::BatchNorm::init(2, "batch"), nn::MaxPool2d::init(2),
            nn::Linear::init(18, 3, keys[1])};
  }
  /// One example [1, 6, 6] -> [3].
  std::pair<Array, nn::State> operator()(const Array& x, nn::State state) const {
    Array h = conv(x);
    std::tie(h, state) = norm(h, state);
    return {linear(eqx::reshape(pool(h), {18})), state};
  }
};

}  // namespace

TEST_CASE("eqx files: Equinox's MLP(4, 3, width 5, depth 2) loads, runs and writes the same bytes", "[nn][io]") {
  const std::string bytes = file_bytes("mlp.eqx");
  // Different random parameters: only the structure of `like` matters.
  const nn::MLP mlp = load_all(bytes, nn::MLP::init(4, 3, 5, 2, eqx::random::key(0)));
  check_close(eqx::filter_vmap(mlp)(f32(fixture(c, "mlp_x"))), fixture(c, "mlp_y"), 1e-5, "MLP outputs");
  CHECK(saved(mlp) == bytes);
}

TEST_CASE("eqx files: a CNN with BatchNorm, its model and State files, in inference mode", "[nn][io][state]") {
  const std::string model_bytes = file_bytes("cnn.eqx"), state_bytes = file_bytes("cnn_state.eqx");
  auto [like, like_state] = nn::make_with_state(Cnn::init)(eqx::random::key(1));
  const Cnn model = load_all(model_bytes, like);
  const nn::State state = load_all(state_bytes, like_state);
  // The dynamic Python scalars of the file: BatchNorm.inference (|b1) and MaxPool2d's init (<f8 -inf).
  CHECK_FALSE(model.norm.inference);
  CHECK(model.pool.init_value == -std::numeric_limits<double>::infinity());
  CHECK_FALSE(state.get(*model.norm.ema_first_time_index).item<bool>());
  auto [running_mean, running_var] = state.get(*model.norm.ema_state_index);
  check_close(running_mean, fixture(c, "cnn_running_mean"), 0, "running mean");
  check_close(running_var, fixture(c, "cnn_running_var"), 0, "running var");

  // Inference mode: BatchNorm normalises by the saved running statistics.
  auto call = [](const Cnn& m, const Array& x, const nn::State& s) { return m(x, s); };
  auto [ys, state_after] = eqx::filter_vmap(call, eqx::in_axes(eqx::none, 0, eqx::none), eqx::out_axes(0, eqx::none),
                                            std::nullopt, "batch")(nn::inference_mode(model), f32(fixture(c, "cnn_x")),
                                                                    state);
  check_close(ys, fixture(c, "cnn_y"), 1e-5, "CNN outputs");
  CHECK(saved(model) == model_bytes);
  CHECK(saved(state_after) == state_bytes);  // inference leaves the state as loaded

  // A model built without make_with_state still holds its StateIndexes'
  // initial values, which Equinox would write too: not the layout of a
  // (model, state) pair, so loading the model file into it fails, naming
  // the leaf. (The first init, bool[], happens to match the file's
  // norm.inference record; the running mean f32[2] meets MaxPool's <f8 init.)
  const std::string wrong = eqx_test::message_of<eqx::IOError>([&] { load_all(model_bytes, Cnn::init(eqx::random::key(1))); });
  INFO(wrong);
  CHECK(wrong.starts_with("eqx::tree_deserialise_leaves: at "));
  CHECK(wrong.find(" .norm.ema_state_index.init[0] expected f32[2], the file has <f8 shape ()") != std::string::npos);
}

TEST_CASE("eqx files: Equinox's MultiheadAttention with Dropout's p (<f8) and inference (|b1)", "[nn][io]") {
  const std::string bytes = file_bytes("mha.eqx");
  const nn::MultiheadAttention like = nn::MultiheadAttention::init(
      2, 4, eqx::random::key(2), {.use_query_bias = true, .use_output_bias = true});  // p 0, training: read from the file
  const nn::MultiheadAttention mha = load_all(bytes, like);
  CHECK(mha.dropout.p == 0.1);
  CHECK(mha.dropout.inference);
  CHECK_FALSE(mha.key_proj.bias.has_value());
  const Array kv = f32(fixture(c, "mha_kv"));
  // In inference mode the dropout is off, so no key is needed.
  check_close(mha(f32(fixture(c, "mha_query")), kv, kv), fixture(c, "mha_y"), 1e-5, "attention outputs");
  CHECK(saved(mha) == bytes);
}

}  // namespace nn_eqx_files_test
