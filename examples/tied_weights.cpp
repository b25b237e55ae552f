// Weight tying with eqx::nn::Shared: a language model whose readout layer
// uses the embedding table as its weight (Equinox's eqx.nn.Shared example).
//
// A model is a tree, and a tree holds no aliases: putting one Array in two
// fields gives two copies that train apart. eqx::nn::Shared stores the
// (embedding, readout) pair with the readout's weight replaced by an empty
// placeholder, and `shared()` rebuilds the pair with the embedding's weight
// put back in that place (via eqx::tree_at). So:
//   - the weight is one leaf: stored once, written to a file once, and
//     given one set of optimiser moments (the state is built from the
//     model's tree, where the tied copy is an empty placeholder);
//   - it is used twice (to look tokens up, and to score the next token), and
//     its gradient is the sum of the gradients of both uses, because
//     `shared()` is ordinary traced code: autodiff sees one Array read twice.
//
// The toy task is a bigram language model: in the "text", token t is
// always followed by (5 t + 3) mod 16. The model embeds a token, mixes it
// with a Linear, and scores every vocabulary entry by a dot product with
// its (tied) embedding vector.
//
// Checks (non-zero exit if one fails): the tied gradient is non-zero through
// both uses and equals their sum; Adam keeps moments for the table and
// None for the placeholder; training for 100 Adam steps drops the loss at
// least 100x and leaves the weights tied; the file holds exactly one
// [16, 32] record (one fewer than the untied model's file) and loads back
// into a fresh model.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <eqx/eqx.hpp>
#include <eqx/io.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
using eqx::Array;

constexpr std::int64_t vocab = 16, embed_size = 32;

/// Logits [T, vocab] for tokens i32[T]: embed, mix, score against the readout weight.
Array logits_of(const nn::Embedding& embedding, const nn::Linear& mixer, const nn::Linear& readout,
                const Array& tokens) {
  const Array h = eqx::filter_vmap(mixer)(eqx::filter_vmap(embedding)(tokens));
  return eqx::filter_vmap(readout)(h);
}

using Pair = std::pair<nn::Embedding, nn::Linear>;

struct LanguageModel {
  nn::Shared<Pair> shared;  // the embedding and the readout, one weight between them
  nn::Linear mixer;         // embed_size -> embed_size

  static LanguageModel init(const eqx::random::Key& key) {
    auto keys = eqx::random::split_keys(key, 3);
    // The readout maps embed_size -> vocab, so its weight is [vocab, embed_size]: the table's shape.
    Pair pair{nn::Embedding::init(vocab, embed_size, keys[0]), nn::Linear::init(embed_size, vocab, keys[1])};
    return {nn::Shared<Pair>::init(
                pair,
                [](Pair& p) -> Array& { return p.second.weight; },  // where: the tied copy (the readout's)
                [](const Pair& p) { return p.first.weight; }),        // get: what fills it (the table)
            nn::Linear::init(embed_size, embed_size, keys[2])};
  }

  Array operator()(const Array& tokens) const {
    auto [embedding, readout] = shared();
    return logits_of(embedding, mixer, readout, tokens);
  }
};

/// Mean cross-entropy of the next-token predictions.
Array loss(const LanguageModel& model, const Array& tokens, const Array& next) {
  return -eqx::mean(eqx::sum(nn::log_softmax(model(tokens), -1) * eqx::one_hot(next, vocab), eqx::Axes{1}));
}

/// The rule of the toy text: t is followed by (5 t + 3) mod 16 (a permutation
/// of the vocabulary), looked up in a table of the 16 successors.
Array next_tokens(const Array& tokens) {
  std::vector<std::int32_t> successor(vocab);
  for (std::int32_t t = 0; t < vocab; ++t) successor[t] = (5 * t + 3) % vocab;
  return eqx::take(eqx::array(successor), tokens, 0);
}

/// "f32[16,32], f32[32,32], ..." for the records of a .eqx stream; counts the [vocab, embed_size] ones.
std::string describe_records(const std::string& bytes, int& tables) {
  std::stringstream in(bytes);
  std::string s;
  tables = 0;
  while (in.peek() != std::char_traits<char>::eof()) {
    const Array a = eqx::read_npy(in);
    s += (s.empty() ? "" : ", ") + std::string(eqx::short_name(a.dtype())) + a.shape().str();
    if (a.shape() == eqx::Shape{vocab, embed_size}) ++tables;
  }
  return s;
}

float norm(const Array& x) { return std::sqrt(eqx::sum(x * x).item<float>()); }

int main() {
  auto keys = eqx::random::split_keys(eqx::random::key(7), 2);
  LanguageModel model = LanguageModel::init(keys[0]);
  int failures = 0;
  auto require = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "FAILED: %s\n", what);
      ++failures;
    }
  };

  // 1. Stored once: the readout's weight in the tree is the empty placeholder.
  fmt::print("the model:\n{}\n\n", eqx::tree_pformat(model));

  // 2. The gradient reaches the one weight from both uses. Compare with the
  // untied model, where the same values sit in two separate leaves: the tied
  // gradient is the sum of the two untied ones.
  const Array tokens = eqx::random::randint(keys[1], {64}, 0, vocab);
  const Array next = next_tokens(tokens);
  const LanguageModel grads = eqx::filter_grad(loss)(model, tokens, next);
  auto [embedding, readout] = model.shared();
  using Untied = std::tuple<nn::Embedding, nn::Linear, nn::Linear>;
  auto untied_loss = [](const Untied& u, const Array& tokens, const Array& next) {
    const Array logits = logits_of(std::get<0>(u), std::get<1>(u), std::get<2>(u), tokens);
    return -eqx::mean(eqx::sum(nn::log_softmax(logits, -1) * eqx::one_hot(next, vocab), eqx::Axes{1}));
  };
  const Untied untied{embedding, model.mixer, readout};
  const Untied untied_grads = eqx::filter_grad(untied_loss)(untied, tokens, next);
  const Array& tied_g = grads.shared.pytree.first.weight;
  const Array& lookup_g = std::get<0>(untied_grads).weight;   // through the embedding lookup
  const Array& readout_g = std::get<2>(untied_grads).weight;  // through the readout
  const float mismatch = norm(tied_g - (lookup_g + readout_g)) / norm(tied_g);
  fmt::print("gradient of the loss w.r.t. the tied weight [{}, {}]:\n", vocab, embed_size);
  fmt::print("  through the embedding lookup |g| = {:.4f}\n", norm(lookup_g));
  fmt::print("  through the readout          |g| = {:.4f}\n", norm(readout_g));
  fmt::print("  tied (what training sees)    |g| = {:.4f}; |tied - (lookup + readout)| / |tied| = {:.1e}\n",
             norm(tied_g), mismatch);
  require(norm(lookup_g) > 0 && norm(readout_g) > 0, "the gradient is non-zero through both uses");
  require(mismatch < 1e-5f, "the tied gradient is the sum of both uses");
  require(!grads.shared.pytree.second.weight.has_value(), "the placeholder has no gradient of its own");

  // 3. Train with Adam, one compiled step. The optimiser state is built from
  // the model's tree, so it too holds the weight once: moments for the
  // table, None for the readout's placeholder (which never gets an update).
  const auto optimiser = optim::adam(3e-3);
  auto opt_state = optimiser.init(eqx::filter(model, eqx::is_inexact_array));
  const auto& [table_mu, placeholder_mu] = std::get<0>(opt_state).mu.shared.pytree;  // Adam's first moment
  fmt::print("Adam's first moment: table {}, readout's placeholder {}\n", table_mu.weight.shape().str(),
             placeholder_mu.weight.has_value() ? "an Array" : "None");
  require(table_mu.weight.has_value() && !placeholder_mu.weight.has_value(),
          "Adam keeps moments for the table and None for the placeholder");
  auto step = eqx::filter_jit([optimiser](const LanguageModel& m, const auto& opt_state, const Array& tokens,
                                          const Array& next) {
    auto [value, grads] = eqx::filter_value_and_grad(loss)(m, tokens, next);
    auto [updates, new_opt_state] = optimiser.update(grads, opt_state, eqx::filter(m, eqx::is_inexact_array));
    return std::tuple{eqx::apply_updates(m, updates), new_opt_state, value};
  });
  const Array all_tokens = eqx::arange(static_cast<std::int32_t>(vocab));  // the whole vocabulary, to evaluate
  const float first = loss(model, all_tokens, next_tokens(all_tokens)).item<float>();
  eqx::random::Key data_key = keys[1];
  for (int i = 1; i <= 100; ++i) {
    auto split = eqx::random::split_keys(data_key, 2);
    data_key = split[0];
    const Array batch = eqx::random::randint(split[1], {64}, 0, vocab);
    Array value;
    std::tie(model, opt_state, value) = step(model, opt_state, batch, next_tokens(batch));
    if (i % 20 == 0) fmt::print("step {:3d}  train loss {:.4f}\n", i, value.item<float>());
  }
  const float last = loss(model, all_tokens, next_tokens(all_tokens)).item<float>();
  fmt::print("loss over the vocabulary {:.4f} -> {:.4f} ({:.0f}x lower)\n", first, last, first / last);
  fmt::print("predicted next tokens {}\n", eqx::argmax(model(all_tokens), -1));
  fmt::print("the rule (5t + 3) % 16 {}\n", next_tokens(all_tokens));
  require(last * 100 <= first, "the loss dropped 100x");
  auto [trained_embedding, trained_readout] = model.shared();
  require(eqx::tree_equal(trained_embedding.weight, trained_readout.weight), "the weights are still tied");

  // 4. The file holds the weight once: compare with the untied model's file.
  std::stringstream file, untied_file;
  eqx::tree_serialise_leaves(file, model);
  eqx::tree_serialise_leaves(untied_file, Untied{trained_embedding, model.mixer, trained_readout});
  int tables = 0, untied_tables = 0;
  fmt::print("tied file:   {} bytes, records {}\n", file.str().size(), describe_records(file.str(), tables));
  fmt::print("untied file: {} bytes, records {}\n", untied_file.str().size(),
             describe_records(untied_file.str(), untied_tables));
  require(tables == 1 && untied_tables == 2, "the tied file holds the [16, 32] table once");
  const LanguageModel loaded = eqx::tree_deserialise_leaves(file, LanguageModel::init(eqx::random::key(99)));
  const bool same = eqx::tree_equal(loaded(all_tokens), model(all_tokens));
  fmt::print("loaded into a fresh model: same logits {}\n", same);
  require(same, "the file loads back into a fresh model");
  return failures == 0 ? 0 : 1;
}
