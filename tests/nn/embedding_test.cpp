// eqx::nn::Embedding and eqx::nn::Shared.
//
// Embedding: lookups and the weight gradient (a scatter of the cotangent
// rows, accumulating on repeated indices) against torch.nn.Embedding
// (tests/nn/fixtures_norm.py; its weight [num, size] is Equinox's layout),
// Equinox's N(0, 1) initialisation, printing, serialisation and misuse.
// Shared: Equinox's tied embedding/readout example, with the tied weight's
// gradient (the sum of both uses) checked against a hand computation.

#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>
#include <eqx/nn/embedding.hpp>
#include <eqx/nn/linear.hpp>
#include <eqx/nn/shared.hpp>

#include "check.hpp"
#include "nn/fixtures.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace nn_embedding_test {

namespace nn = eqx::nn;
using eqx_test::check_close;
using eqx_test::fixture;
using eqx_test::message_of;

namespace {

/// Gradient of sum(vmap(embedding)(indices) * ct) with respect to the embedding.
nn::Embedding embedding_grad(const nn::Embedding& e, const eqx::Array& indices, const eqx::Array& ct) {
  auto loss = [](const nn::Embedding& e, const eqx::Array& idx, const eqx::Array& ct) {
    return eqx::sum(eqx::filter_vmap(e)(idx) * ct);
  };
  return eqx::filter_grad(loss)(e, indices, ct);
}

using Pair = std::pair<nn::Embedding, nn::Linear>;
using TiedPair = nn::Shared<Pair>;

/// Equinox's nn.Shared example: a language model whose readout Linear uses
/// the embedding table as its weight.
struct LanguageModel {
  TiedPair shared;

  /// tokens i32[T] -> logits [T, vocabulary]
  eqx::Array operator()(const eqx::Array& tokens) const {
    auto [embedding, linear] = shared();
    eqx::Array values = eqx::filter_vmap(embedding)(tokens);
    return eqx::filter_vmap(linear)(values);
  }
};

LanguageModel make_model(std::int64_t vocab, std::int64_t size, eqx::DType dtype) {
  auto keys = eqx::random::split_keys(eqx::random::key(4), 2);
  nn::Embedding embedding = nn::Embedding::init(vocab, size, keys[0], {.dtype = dtype});
  nn::Linear linear = nn::Linear::init(size, vocab, keys[1], {.dtype = dtype});
  return {TiedPair::init(
      Pair{embedding, linear}, [](Pair& p) -> eqx::Array& { return p.second.weight; },
      [](const Pair& p) { return p.first.weight; })};
}

}  // namespace

TEST_CASE("nn::Embedding matches torch.nn.Embedding: lookups and the weight gradient", "[nn]") {
  for (eqx::DType d : {eqx::float64, eqx::float32}) {
    const double rtol = d == eqx::float64 ? 1e-10 : 1e-5;
    nn::Embedding e = nn::Embedding::from_weight(eqx::astype(fixture("embedding", "weight"), d));
    CHECK(*e.num_embeddings == 6);
    CHECK(*e.embedding_size == 4);
    eqx::Array idx = fixture("embedding", "indices"), ct = eqx::astype(fixture("embedding", "ct"), d);
    REQUIRE(idx.dtype() == eqx::int32);
    eqx::Array ys = eqx::filter_vmap(e)(idx);
    CHECK(ys.dtype() == d);
    check_close(ys, fixture("embedding", "y"), rtol, "y");
    // Index 1 appears twice: its row of the gradient is the sum of both cotangent rows.
    check_close(embedding_grad(e, idx, ct).weight, fixture("embedding", "grad_weight"), rtol, "grad_weight");
  }
  // One index: the row, and a gradient that is the cotangent in that row only.
  nn::Embedding e = nn::Embedding::from_weight(eqx::reshape(eqx::arange(0.0, 12.0, 1.0, eqx::float64), {4, 3}));
  eqx_test::check(e(eqx::array(2)), {3}, std::vector<double>{6, 7, 8});
  eqx_test::check(e(eqx::array(-1)), {3}, std::vector<double>{9, 10, 11});  // negative: from the end
  eqx_test::check(e(eqx::array(1u)), {3}, std::vector<double>{3, 4, 5});
  auto row2_loss = [](const nn::Embedding& e) { return eqx::sum(e(eqx::array(2)) * eqx::array({1.0, -2.0, 3.0})); };
  auto g = eqx::filter_grad(row2_loss)(e);
  eqx_test::check(g.weight, {4, 3}, std::vector<double>{0, 0, 0, 0, 0, 0, 1, -2, 3, 0, 0, 0});
}

TEST_CASE("nn::Embedding: Equinox's N(0, 1) initialisation, printing, leaf order, jit", "[nn]") {
  const eqx::random::Key key = eqx::random::key(11);
  nn::Embedding e = nn::Embedding::init(200, 100, key);
  CHECK(e.weight.shape() == eqx::Shape{200, 100});
  CHECK(e.weight.dtype() == eqx::float32);
  // Equinox draws jax.random.normal(key, (num, size)) with the key itself.
  CHECK(eqx::tree_equal(e.weight, eqx::random::normal(key, {200, 100})));
  std::vector<float> v = e.weight.to_vector<float>();
  double mean = 0, sq = 0, m4 = 0;
  for (float f : v) mean += f, sq += double(f) * f;
  mean /= v.size();
  const double var = sq / v.size() - mean * mean;
  for (float f : v) m4 += std::pow(f - mean, 4);
  m4 /= v.size();
  const double n = v.size();
  CHECK(std::abs(mean) < 5 / std::sqrt(n));               // standard error 1/sqrt(n)
  CHECK(std::abs(var - 1) < 5 * std::sqrt(2 / n));        // standard error sqrt(2/n)
  CHECK(std::abs(m4 - 3) < 5 * std::sqrt(96 / n));        // kurtosis 3 (normal, not uniform's 1.8)
  CHECK(nn::Embedding::init(3, 2, key, {.dtype = eqx::float64}).weight.dtype() == eqx::float64);
  CHECK(nn::Embedding::init(0, 2, key).weight.shape() == eqx::Shape{0, 2});

  nn::Embedding small = nn::Embedding::init(5, 3, key);
  CHECK(fmt::format("{}", small) == "Embedding(num_embeddings=5, embedding_size=3, weight=f32[5,3])");
  std::stringstream file;
  eqx::tree_serialise_leaves(file, small);
  std::stringstream copy(file.str());
  CHECK(eqx::tree_equal(eqx::read_npy(copy), small.weight));
  CHECK(copy.peek() == std::char_traits<char>::eof());
  CHECK(eqx::tree_equal(eqx::tree_deserialise_leaves(file, nn::Embedding::init(5, 3, eqx::random::key(0))), small));

  auto jitted = eqx::filter_jit([](const nn::Embedding& e, const eqx::Array& idx) { return eqx::filter_vmap(e)(idx); });
  eqx::Array idx = eqx::array({4, 0, 4});
  eqx::Array want = eqx::stack({small(eqx::array(4)), small(eqx::array(0)), small(eqx::array(4))});
  check_close(jitted(small, idx), want, 0, "jit(vmap)");
}

TEST_CASE("nn::Embedding misuse: batches, float and out-of-range indices, bad weights", "[nn]") {
  nn::Embedding e = nn::Embedding::init(5, 3, eqx::random::key(0));
  CHECK(message_of<eqx::ShapeError>([&] { e(eqx::array({1, 2})); }) ==
        "eqx::nn::Embedding: expected a scalar index (shape []) but got [2]; call it on one index and batch with "
        "eqx::filter_vmap(embedding)(indices)");
  CHECK(message_of<eqx::DTypeError>([&] { e(eqx::array(1.f)); }) ==
        "eqx::nn::Embedding: expected an integer index (int32 or uint32) but got float32; convert it with "
        "eqx::astype(i, eqx::int32)");
  // eqx::take checks every index (JAX would clamp): nothing is read out of bounds.
  CHECK(message_of<eqx::IndexError>([&] { e(eqx::array(5)); }) ==
        "eqx::take: index 5 is out of bounds for axis 0 with size 5");
  CHECK(message_of<eqx::IndexError>([&] { e(eqx::array(-6)); }) ==
        "eqx::take: index -6 is out of bounds for axis 0 with size 5");
  CHECK(message_of<eqx::IndexError>([&] { eqx::filter_vmap(e)(eqx::array({0, 7})); }) ==
        "eqx::take: index 7 is out of bounds for axis 0 with size 5");
  auto jitted = eqx::filter_jit([](const nn::Embedding& e, const eqx::Array& i) { return e(i); });
  CHECK(message_of<eqx::IndexError>([&] { jitted(e, eqx::array(9)); }) ==
        "eqx::take: index 9 is out of bounds for axis 0 with size 5");
  CHECK(message_of<eqx::ShapeError>([&] { nn::Embedding::from_weight(eqx::zeros({6})); }) ==
        "eqx::nn::Embedding: expected a weight of rank 2 [num_embeddings, embedding_size] but got [6]");
  CHECK(message_of<eqx::ValueError>([&] { nn::Embedding::init(-1, 3, eqx::random::key(0)); }) ==
        "eqx::nn::Embedding: expected num_embeddings and embedding_size >= 0 but got -1 and 3");
}

TEST_CASE("nn::Shared ties an embedding and its readout: one weight, gradients summed", "[nn]") {
  const std::int64_t vocab = 5, size = 3;
  LanguageModel model = make_model(vocab, size, eqx::float64);
  // Stored once: the readout's weight is an empty placeholder.
  CHECK_FALSE(model.shared.pytree.second.weight.has_value());
  auto [embedding, linear] = model.shared();
  CHECK(eqx::tree_equal(linear.weight, embedding.weight));
  CHECK(linear.weight.shape() == eqx::Shape{vocab, size});

  const std::vector<std::int32_t> tok = {2, 0, 2, 4};
  const std::int64_t T = 4;
  eqx::Array tokens = eqx::array(tok);
  eqx::Array ct = eqx::sin(eqx_test::seq<double>({T, vocab}, 1.0));
  const std::vector<double> W = embedding.weight.to_vector<double>(), b = linear.bias.to_vector<double>(),
                            C = ct.to_vector<double>();
  auto w = [&](std::int64_t i, std::int64_t j) { return W[i * size + j]; };

  // Forward by hand: logits[s, v] = sum_j W[v, j] W[tok_s, j] + b[v].
  std::vector<double> logits;
  for (std::int64_t s = 0; s < T; ++s)
    for (std::int64_t v = 0; v < vocab; ++v) {
      double acc = b[v];
      for (std::int64_t j = 0; j < size; ++j) acc += w(v, j) * w(tok[s], j);
      logits.push_back(acc);
    }
  check_close(model(tokens), eqx::array(logits, {T, vocab}), 1e-12, "logits");

  // Gradient by hand of L = sum(ct * logits), with respect to the one W:
  //   readout use:   dW[v, j] += sum_s ct[s, v] W[tok_s, j]
  //   embedding use: dW[tok_s, j] += sum_v ct[s, v] W[v, j]
  std::vector<double> dW(vocab * size, 0.0), db(vocab, 0.0);
  for (std::int64_t s = 0; s < T; ++s)
    for (std::int64_t v = 0; v < vocab; ++v) {
      db[v] += C[s * vocab + v];
      for (std::int64_t j = 0; j < size; ++j) {
        dW[v * size + j] += C[s * vocab + v] * w(tok[s], j);
        dW[tok[s] * size + j] += C[s * vocab + v] * w(v, j);
      }
    }
  auto loss = [](const LanguageModel& m, const eqx::Array& tokens, const eqx::Array& ct) {
    return eqx::sum(m(tokens) * ct);
  };
  LanguageModel g = eqx::filter_grad(loss)(model, tokens, ct);
  check_close(g.shared.pytree.first.weight, eqx::array(dW, {vocab, size}), 1e-12, "tied weight gradient");
  check_close(g.shared.pytree.second.bias, eqx::array(db, {vocab}), 1e-12, "bias gradient");
  CHECK_FALSE(g.shared.pytree.second.weight.has_value());  // the placeholder has no gradient

  // The same under filter_jit, and it is the sum of the untied layers' gradients.
  LanguageModel gj = eqx::filter_jit(eqx::filter_grad(loss))(model, tokens, ct);
  check_close(gj.shared.pytree.first.weight, eqx::array(dW, {vocab, size}), 1e-12, "jit(grad)");
  Pair untied{embedding, linear};
  auto untied_loss = [](const Pair& p, const eqx::Array& tokens, const eqx::Array& ct) {
    return eqx::sum(eqx::filter_vmap(p.second)(eqx::filter_vmap(p.first)(tokens)) * ct);
  };
  Pair gu = eqx::filter_grad(untied_loss)(untied, tokens, ct);
  check_close(g.shared.pytree.first.weight, gu.first.weight + gu.second.weight, 1e-12, "sum of both uses");
}

TEST_CASE("nn::Shared: serialised once, printing, several nodes, structure mismatch", "[nn]") {
  LanguageModel model = make_model(5, 3, eqx::float32);
  // Leaf order: the embedding weight, then the readout's bias; the tied weight is not written twice.
  std::stringstream file;
  eqx::tree_serialise_leaves(file, model);
  std::stringstream copy(file.str());
  CHECK(eqx::tree_equal(eqx::read_npy(copy), model.shared.pytree.first.weight));
  CHECK(eqx::tree_equal(eqx::read_npy(copy), model.shared.pytree.second.bias));
  CHECK(copy.peek() == std::char_traits<char>::eof());
  LanguageModel other = make_model(5, 3, eqx::float32);
  other.shared.pytree.first.weight = eqx::zeros({5, 3});
  CHECK(eqx::tree_equal(eqx::tree_deserialise_leaves(file, other), model));

  CHECK(eqx::tree_pformat(model, {.width = 1000}) ==
        "LanguageModel(shared=Shared(pytree=(Embedding(num_embeddings=5, embedding_size=3, weight=f32[5,3]), Linear("
        "weight=None, bias=f32[5], in_features=3, out_features=5, use_bias=True)), where=<function>, "
        "get=<function>))");

  // Several nodes at once: where returns std::tie(...), get a tuple.
  using Three = std::tuple<eqx::Array, eqx::Array, eqx::Array>;
  using Two = std::tuple<eqx::Array, eqx::Array>;
  auto s = nn::Shared<Three, Two>::init(
      Three{eqx::array({1.f, 2.f}), eqx::zeros({2}), eqx::zeros({2})},
      [](Three& t) { return std::tie(std::get<1>(t), std::get<2>(t)); },
      [](const Three& t) { return Two{std::get<0>(t), std::get<0>(t) * 2.f}; });
  CHECK_FALSE(std::get<1>(s.pytree).has_value());
  CHECK_FALSE(std::get<2>(s.pytree).has_value());
  auto g = eqx::filter_grad([](const nn::Shared<Three, Two>& s) {
    auto [a, b, c] = s();
    return eqx::sum(a + b * 3.f + c * 5.f);  // d/da = 1 + 3 + 2 * 5
  })(s);
  eqx_test::check(std::get<0>(g.pytree), {2}, std::vector<float>{14, 14});

  // Mismatched shapes: a readout Linear 5 -> 3 has weight [3, 5], not the table's [5, 3].
  nn::Embedding e = nn::Embedding::init(5, 3, eqx::random::key(0));
  nn::Linear wrong = nn::Linear::init(5, 3, eqx::random::key(1));
  CHECK(message_of<eqx::ValueError>([&] {
          TiedPair::init(
              Pair{e, wrong}, [](Pair& p) -> eqx::Array& { return p.second.weight; },
              [](const Pair& p) { return p.first.weight; });
        }) ==
        "eqx::nn::Shared: expected every tied node to have the same structure, shapes and dtypes, but get(pytree) "
        "gives f32[5,3] and where(pytree) picks f32[3,5]; make `get` return a value like the node(s) `where` picks "
        "(e.g. transpose the matrix in `get`)");
  // ... which `get` can fix by transposing.
  auto fixed = TiedPair::init(
      Pair{e, wrong}, [](Pair& p) -> eqx::Array& { return p.second.weight; },
      [](const Pair& p) { return eqx::transpose(p.first.weight); });
  CHECK(eqx::tree_equal(fixed().second.weight, eqx::transpose(e.weight)));
}

}  // namespace nn_embedding_test
