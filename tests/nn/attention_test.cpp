// eqx::nn::MultiheadAttention and RotaryPositionalEmbedding.
//
// References (tests/nn/fixtures_attention.py, float64):
//  - torch.nn.MultiheadAttention(embed_dim = query_size, num_heads, kdim,
//    vdim, bias, batch_first=True), mapped to Equinox's Linears as
//    query/key/value_proj.weight = q/k/v_proj_weight (or the three row
//    blocks of the packed in_proj_weight), their biases = the three blocks
//    of in_proj_bias, output_proj = out_proj; torch's bool attn_mask is the
//    negated Equinox mask. Cases "mha_torch" (key/value sizes differ from
//    the query's, all biases, a [q, kv] mask) and "mha_torch_mask3" (packed
//    weights, no biases, a per-head [heads, q, kv] mask).
//  - Equinox's formula written out (torch tensors for autograd only) for
//    sizes torch cannot express: "mha_formula" (output 7, qk 2, vo 3, biases
//    on query and output only, one query of one head fully masked) and
//    "mha_rope" (RoPE on the query/key heads through process_heads).
//  - RoPE from Equinox's formula: "rope" (theta 10^4) and "rope_theta" (100).

#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>
#include <eqx/nn/attention.hpp>

#include "check.hpp"
#include "nn/fixtures.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace nn_attention_test {

namespace nn = eqx::nn;
using eqx_test::check_close;
using eqx_test::fixture;

namespace {

eqx::Array fx(std::string_view c, std::string_view name, eqx::DType dtype) { return eqx::astype(fixture(c, name), dtype); }

/// An MHA with the fixture's weights: `prefix` q/k/v/out, biases where `opts` asks.
nn::MultiheadAttention mha_from(std::string_view c, std::int64_t heads, std::int64_t query_size, nn::MultiheadAttention::Options opts) {
  auto mha = nn::MultiheadAttention::init(heads, query_size, eqx::random::key(0), opts);
  const eqx::DType t = opts.dtype;
  mha.query_proj.weight = fx(c, "q_weight", t);
  mha.key_proj.weight = fx(c, "k_weight", t);
  mha.value_proj.weight = fx(c, "v_weight", t);
  mha.output_proj.weight = fx(c, "out_weight", t);
  if (opts.use_query_bias) mha.query_proj.bias = fx(c, "q_bias", t);
  if (opts.use_key_bias) mha.key_proj.bias = fx(c, "k_bias", t);
  if (opts.use_value_bias) mha.value_proj.bias = fx(c, "v_bias", t);
  if (opts.use_output_bias) mha.output_proj.bias = fx(c, "out_bias", t);
  return mha;
}

void check_linear_grads(const nn::Linear& g, std::string_view c, std::string_view name, double rtol) {
  check_close(g.weight, fixture(c, "grad_" + std::string(name) + "_weight"), rtol, "grad_" + std::string(name) + "_weight");
  if (!g.bias.has_value()) return;
  eqx::Array want = fixture(c, "grad_" + std::string(name) + "_bias");
  if (eqx::max(eqx::abs(want)).item<double>() < 1e-12) {
    // The key bias adds q.b_k to every logit of a query's row, which softmax
    // ignores: its gradient is zero (torch gives ~1e-17), so check it absolutely.
    INFO("grad_" << name << "_bias is zero in exact arithmetic");
    CHECK(eqx::max(eqx::abs(eqx::astype(g.bias, eqx::float64))).item<double>() < (g.bias.dtype() == eqx::float64 ? 1e-12 : 1e-5));
  } else {
    check_close(g.bias, want, rtol, "grad_" + std::string(name) + "_bias");
  }
}

using Inputs = std::tuple<nn::MultiheadAttention, eqx::Array, eqx::Array, eqx::Array>;

/// sum(mha(q, k, v, mask) * ct), with an optional process_heads hook. (A
/// class, not an aggregate, so jit treats it as a plain function; one loss
/// type for every case keeps this test's compile small.)
class MhaLoss {
 public:
  explicit MhaLoss(nn::ProcessHeads heads = nullptr) : heads_(std::move(heads)) {}
  eqx::Array operator()(const Inputs& p, const eqx::Array& mask, const eqx::Array& ct) const {
    const auto& [m, q, k, v] = p;
    return eqx::sum(m(q, k, v, mask, {}, {.process_heads = heads_}) * ct);
  }

 private:
  nn::ProcessHeads heads_;
};

/// Forward and gradients (through filter_jit(filter_grad)) of sum(mha(q, k,
/// v, mask) * ct) w.r.t. q, k, v and every projection. For self-attention
/// (`self`), q = k = v = the fixture's "q" and its gradient is the sum.
void check_mha(std::string_view c, std::int64_t heads, std::int64_t query_size, nn::MultiheadAttention::Options opts,
               double rtol, nn::ProcessHeads process_heads = nullptr, bool self = false) {
  INFO(c << " in " << eqx::dtype_name(opts.dtype));
  const eqx::DType t = opts.dtype;
  auto mha = mha_from(c, heads, query_size, opts);
  eqx::Array q = fx(c, "q", t);
  eqx::Array k = self ? q : fx(c, "k", t), v = self ? q : fx(c, "v", t);
  eqx::Array mask = self ? eqx::ones({q.shape()[0], q.shape()[0]}, eqx::bool_) : fixture(c, "mask");
  REQUIRE(mask.dtype() == eqx::bool_);
  eqx::Array y = mha(q, k, v, mask, {}, {.process_heads = process_heads});
  CHECK(y.dtype() == t);
  check_close(y, fixture(c, "y"), rtol, "y");
  auto [g, gq, gk, gv] = eqx::filter_jit(eqx::filter_grad(MhaLoss(process_heads)))(Inputs{mha, q, k, v}, mask, fx(c, "ct", t));
  if (self) {
    check_close(gq + gk + gv, fixture(c, "grad_q"), rtol, "grad_x");
  } else {
    check_close(gq, fixture(c, "grad_q"), rtol, "grad_q");
    check_close(gk, fixture(c, "grad_k"), rtol, "grad_k");
    check_close(gv, fixture(c, "grad_v"), rtol, "grad_v");
  }
  check_linear_grads(g.query_proj, c, "q", rtol);
  check_linear_grads(g.key_proj, c, "k", rtol);
  check_linear_grads(g.value_proj, c, "v", rtol);
  check_linear_grads(g.output_proj, c, "out", rtol);
}

/// filter_jit(filter_vmap(mha)) over a batch of (q, k, v, dropout key), one mask for all.
const auto batched_mha = eqx::filter_jit([](const nn::MultiheadAttention& m, const eqx::Array& qs, const eqx::Array& ks,
                                            const eqx::Array& vs, const eqx::Array& mask, const eqx::Array& keys) {
  auto one = [&](const eqx::Array& q, const eqx::Array& k, const eqx::Array& v, const eqx::Array& mask,
                 const eqx::Array& key) { return m(q, k, v, mask, key); };
  return eqx::filter_vmap(one, eqx::in_axes(0, 0, 0, eqx::none, 0))(qs, ks, vs, mask, keys);
});

eqx::Array row(const eqx::Array& a, int i) { return eqx::take(a, eqx::array(i), 0); }

/// An MHA whose output is its attention weights, heads side by side: every
/// head's values are the identity (kv_seq = vo_size = n), and the output
/// projection is the identity. Output [q_seq, heads * n].
nn::MultiheadAttention weights_revealing_mha(std::int64_t heads, std::int64_t n, double p) {
  auto mha = nn::MultiheadAttention::init(heads, 6, eqx::random::key(11),
                                          {.value_size = n, .output_size = heads * n, .vo_size = n, .dropout_p = p});
  std::vector<eqx::Array> blocks(static_cast<std::size_t>(heads), eqx::eye(n));
  mha.value_proj.weight = eqx::concatenate(blocks, 0);
  mha.output_proj.weight = eqx::eye(heads * n);
  return mha;
}

}  // namespace

TEST_CASE("nn::MultiheadAttention matches torch.nn.MultiheadAttention: forward and gradients", "[nn]") {
  for (auto [t, rtol] : {std::pair{eqx::float64, 1e-10}, std::pair{eqx::float32, 1e-5}}) {
    check_mha("mha_torch", 2, 6,
              {.key_size = 5, .value_size = 4, .use_query_bias = true, .use_key_bias = true, .use_value_bias = true,
               .use_output_bias = true, .dtype = t},
              rtol);
    check_mha("mha_torch_mask3", 4, 8, {.dtype = t}, rtol);
  }
}

TEST_CASE("nn::MultiheadAttention: distinct output/qk/vo sizes, per-projection biases, a fully masked query", "[nn]") {
  for (auto [t, rtol] : {std::pair{eqx::float64, 1e-10}, std::pair{eqx::float32, 1e-5}})
    check_mha("mha_formula", 3, 5,
              {.key_size = 4, .value_size = 6, .output_size = 7, .qk_size = 2, .vo_size = 3, .use_query_bias = true,
               .use_output_bias = true, .dtype = t},
              rtol);

  // A query that sees no key attends uniformly (masked logits are the lowest
  // float, not -inf, as in Equinox): the weights-revealing layer shows 1/n.
  auto mha = weights_revealing_mha(1, 4, 0.0);
  eqx::Array mask = eqx::not_equal(eqx::reshape(eqx::array({0, 0, 0, 0, 1, 0, 1, 0}), {2, 4}), 0);
  std::vector<float> w = mha(eqx::ones({2, 6}), eqx::ones({4, 6}), eqx::eye(4), mask).to_vector<float>();
  CHECK(w == std::vector<float>{0.25f, 0.25f, 0.25f, 0.25f, 0.5f, 0.f, 0.5f, 0.f});
}

TEST_CASE("nn::MultiheadAttention defaults follow Equinox: sizes, no biases, Linear init", "[nn]") {
  auto mha = nn::MultiheadAttention::init(4, 12, eqx::random::key(1), {.key_size = 7});
  CHECK(*mha.key_size == 7);
  CHECK(*mha.value_size == 12);
  CHECK(*mha.output_size == 12);
  CHECK(*mha.qk_size == 3);
  CHECK(*mha.vo_size == 3);
  CHECK(mha.query_proj.weight.shape() == eqx::Shape{12, 12});
  CHECK(mha.key_proj.weight.shape() == eqx::Shape{12, 7});
  CHECK(mha.output_proj.weight.shape() == eqx::Shape{12, 12});
  CHECK_FALSE(mha.query_proj.bias.has_value());
  CHECK_FALSE(mha.output_proj.bias.has_value());
  CHECK(mha.dropout.p == 0.0);
  CHECK_FALSE(mha.dropout.inference);
  // The projections are Linears from the four keys Equinox splits off.
  auto keys = eqx::random::split_keys(eqx::random::key(1), 4);
  CHECK(eqx::tree_equal(mha.key_proj, nn::Linear::init(7, 12, keys[1], {.use_bias = false})));
  CHECK(eqx::tree_equal(mha.output_proj, nn::Linear::init(12, 12, keys[3], {.use_bias = false})));
  // Linear's U(-1/sqrt(in), 1/sqrt(in)): a large layer uses the whole range.
  auto big = nn::MultiheadAttention::init(2, 64, eqx::random::key(2));
  std::vector<float> v = big.query_proj.weight.to_vector<float>();
  double mean = 0, sq = 0, lo = 1, hi = -1;
  for (float f : v) mean += f, sq += double(f) * f, lo = std::min(lo, double(f)), hi = std::max(hi, double(f));
  mean /= v.size();
  CHECK(lo >= -0.125);
  CHECK(hi < 0.125);
  CHECK(std::abs(mean) < 5 * 0.125 / std::sqrt(3.0 * v.size()));
  CHECK(sq / v.size() - mean * mean == Approx(0.125 * 0.125 / 3).epsilon(5 * std::sqrt(0.8 / v.size())));
  auto f64 = nn::MultiheadAttention::init(2, 4, eqx::random::key(2), {.use_value_bias = true, .dtype = eqx::float64});
  CHECK(f64.value_proj.bias.dtype() == eqx::float64);
}

TEST_CASE("nn::MultiheadAttention dropout on the attention weights: identity, statistics, per-head keys", "[nn]") {
  eqx::Array q = eqx::random::normal(eqx::random::key(1), {32, 6}), k = eqx::random::normal(eqx::random::key(2), {8, 6});
  eqx::Array v = eqx::eye(8);
  auto plain = weights_revealing_mha(2, 8, 0.0);
  eqx::Array weights = plain(q, k, v);  // [32, 16]: the two heads' attention weights
  check_close(eqx::sum(weights, {1}), eqx::full({32}, 2.0f), 1e-6, "rows sum to one per head");
  // p = 0: the key changes nothing.
  CHECK(eqx::tree_equal(plain(q, k, v, eqx::Array{}, eqx::random::key(5)), weights));

  auto mha = weights_revealing_mha(2, 8, 0.3);
  const eqx::random::Key key = eqx::random::key(42);
  eqx::Array dropped = mha(q, k, v, eqx::Array{}, key);
  // Inference mode (field or call option) is deterministic and has no dropout.
  auto inf = mha;
  inf.dropout.inference = true;
  CHECK(eqx::tree_equal(inf(q, k, v, eqx::Array{}, key), weights));
  CHECK(eqx::tree_equal(inf(q, k, v), weights));
  CHECK(eqx::tree_equal(mha(q, k, v, eqx::Array{}, key, {.inference = true}), weights));
  CHECK(eqx::tree_equal(mha(q, k, v, eqx::Array{}, key), dropped));
  CHECK_FALSE(eqx::tree_equal(mha(q, k, v, eqx::Array{}, eqx::random::key(43)), dropped));

  // Survivors are scaled by 1/(1-p); about p of the weights are dropped.
  std::vector<float> d = dropped.to_vector<float>(), w = weights.to_vector<float>();
  std::size_t zeros = 0, bad = 0;
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (d[i] == 0) ++zeros;
    else if (std::abs(d[i] - w[i] / 0.7f) > 1e-6f * (1 + std::abs(d[i]))) ++bad;
  }
  CHECK(bad == 0);
  const double frac = double(zeros) / d.size(), sd = std::sqrt(0.3 * 0.7 / d.size());
  CHECK(std::abs(frac - 0.3) < 5 * sd);

  // Head h keeps exactly the entries where bernoulli(split(key, heads)[h], 1 - p) is true (Equinox's key split).
  auto keys = eqx::random::split_keys(key, 2);
  eqx::Array keep = eqx::concatenate({eqx::random::bernoulli(keys[0], 0.7, {32, 8}), eqx::random::bernoulli(keys[1], 0.7, {32, 8})}, 1);
  CHECK(eqx::tree_equal(eqx::not_equal(dropped, 0), keep));

  // Under filter_jit(filter_vmap) with a key per example: the same as a loop.
  eqx::Array qs = eqx::stack({q, -q}), ks = eqx::stack({k, k}), vs = eqx::stack({v, v});
  eqx::Array dkeys = eqx::random::split(eqx::random::key(7), 2);
  eqx::Array batched = batched_mha(mha, qs, ks, vs, eqx::ones({32, 8}, eqx::bool_), dkeys);
  check_close(row(batched, 1), mha(-q, k, v, eqx::Array{}, row(dkeys, 1)), 1e-6, "jit(vmap) dropout");
}

TEST_CASE("nn::MultiheadAttention under filter_vmap and filter_jit (a batch of sequences)", "[nn]") {
  auto mha = nn::MultiheadAttention::init(2, 4, eqx::random::key(3), {.key_size = 3, .use_key_bias = true});
  eqx::Array qs = eqx::random::normal(eqx::random::key(4), {3, 5, 4}), ks = eqx::random::normal(eqx::random::key(5), {3, 6, 3});
  eqx::Array vs = eqx::random::normal(eqx::random::key(6), {3, 6, 4});
  eqx::Array mask = eqx::random::bernoulli(eqx::random::key(7), 0.6, {5, 6});
  std::vector<eqx::Array> loop, loop_masked;
  for (int i = 0; i < 3; ++i) {
    loop.push_back(mha(row(qs, i), row(ks, i), row(vs, i)));
    loop_masked.push_back(mha(row(qs, i), row(ks, i), row(vs, i), mask));
  }
  eqx::Array keys = eqx::random::split(eqx::random::key(8), 3);
  check_close(batched_mha(mha, qs, ks, vs, mask, keys), eqx::stack(loop_masked), 1e-6, "jit(vmap) with a shared mask");
  check_close(batched_mha(mha, qs, ks, vs, eqx::ones({5, 6}, eqx::bool_), keys), eqx::stack(loop), 1e-6, "jit(vmap)");
  CHECK_FALSE(eqx::tree_equal(eqx::stack(loop), eqx::stack(loop_masked)));
}

TEST_CASE("nn::RotaryPositionalEmbedding matches Equinox's formula; with MultiheadAttention via process_heads", "[nn]") {
  for (auto [t, rtol] : {std::pair{eqx::float64, 1e-10}, std::pair{eqx::float32, 1e-5}}) {
    INFO(eqx::dtype_name(t));
    for (auto [c, theta] : {std::pair{"rope", 10000.0}, std::pair{"rope_theta", 100.0}}) {
      eqx::Array x = fx(c, "x", t);
      auto rope = nn::RotaryPositionalEmbedding::init(x.shape()[1], {.theta = theta, .dtype = t});
      eqx::Array y = rope(x);
      CHECK(y.dtype() == t);
      check_close(y, fixture(c, "y"), rtol, "rope y");
      auto loss = [&](const eqx::Array& x, const eqx::Array& ct) { return eqx::sum(rope(x) * ct); };
      check_close(eqx::filter_grad(loss)(x, fx(c, "ct", t)), fixture(c, "grad_x"), rtol, "rope grad_x");
    }

    // RoPE on the query and key heads (vmapped over the heads axis), self-attention.
    nn::ProcessHeads rotate = [on_heads = eqx::filter_vmap(nn::RotaryPositionalEmbedding::init(4, {.dtype = t}), 1, 1)](
                                  const eqx::Array& q, const eqx::Array& k, const eqx::Array& v) {
      return std::tuple{on_heads(q), on_heads(k), v};
    };
    check_mha("mha_rope", 2, 8, {.dtype = t}, rtol, rotate, /*self=*/true);
  }
  // Position 0 is not rotated; the rotation keeps each channel pair's norm.
  auto rope = nn::RotaryPositionalEmbedding::init(2);
  eqx::Array y = rope(eqx::ones({3, 2}));
  eqx_test::check(row(y, 0), {2}, std::vector<float>{1, 1});
  eqx_test::check(row(y, 2), {2}, std::vector<float>{float(std::cos(2.0) - std::sin(2.0)), float(std::cos(2.0) + std::sin(2.0))});
}

TEST_CASE("nn::MultiheadAttention / RotaryPositionalEmbedding: printing and Equinox's leaf order", "[nn]") {
  auto mha = nn::MultiheadAttention::init(2, 4, eqx::random::key(0), {.value_size = 3, .use_query_bias = true, .dropout_p = 0.1});
  // Equinox's layout: a nested module's fields indented by two.
  CHECK(fmt::format("{}", mha) ==
        "MultiheadAttention(\n""  query_proj=Linear(\n""    weight=f32[4,4],\n""    bias=f32[4],\n"
        "    in_features=4,\n""    out_features=4,\n""    use_bias=True\n""  ),\n""  key_proj=Linear(\n"
        "    weight=f32[4,4],\n""    bias=None,\n""    in_features=4,\n""    out_features=4,\n"
        "    use_bias=False\n""  ),\n""  value_proj=Linear(\n""    weight=f32[4,3],\n""    bias=None,\n"
        "    in_features=3,\n""    out_features=4,\n""    use_bias=False\n""  ),\n""  output_proj=Linear(\n"
        "    weight=f32[4,4],\n""    bias=None,\n""    in_features=4,\n""    out_features=4,\n"
        "    use_bias=False\n""  ),\n""  dropout=Dropout(p=0.1, inference=False),\n""  num_heads=2,\n"
        "  query_size=4,\n""  key_size=4,\n""  value_size=3,\n""  output_size=4,\n""  qk_size=2,\n"
        "  vo_size=2,\n""  use_query_bias=True,\n""  use_key_bias=False,\n""  use_value_bias=False,\n"
        "  use_output_bias=False\n"")");
  // (The dtype itself prints as "DType(0)" today: eqx's printer formats enums before fmt-formattable types.)
  CHECK(fmt::format("{}", nn::RotaryPositionalEmbedding::init(8)).starts_with(
      "RotaryPositionalEmbedding(embedding_size=8, theta=10000.0, dtype="));

  // Equinox writes the q, k, v, output projections (weight, then bias if
  // any), then the Dropout's p and inference.
  std::stringstream file;
  eqx::tree_serialise_leaves(file, mha);
  std::stringstream copy(file.str());
  for (eqx::Shape s : {eqx::Shape{4, 4}, eqx::Shape{4}, eqx::Shape{4, 4}, eqx::Shape{4, 3}, eqx::Shape{4, 4}})
    CHECK(eqx::read_npy(copy).shape() == s);
  eqx::Array p = eqx::read_npy(copy), inference = eqx::read_npy(copy);
  CHECK(p.dtype() == eqx::float64);
  CHECK(p.item<double>() == 0.1);
  CHECK(inference.dtype() == eqx::bool_);
  CHECK(copy.peek() == std::char_traits<char>::eof());
  auto loaded = eqx::tree_deserialise_leaves(
      file, nn::MultiheadAttention::init(2, 4, eqx::random::key(9), {.value_size = 3, .use_query_bias = true, .dropout_p = 0.5}));
  CHECK(eqx::tree_equal(loaded, mha));

  // RoPE has no leaves: nothing is written.
  std::stringstream none;
  eqx::tree_serialise_leaves(none, nn::RotaryPositionalEmbedding::init(4));
  CHECK(none.str().empty());
}

TEST_CASE("nn::MultiheadAttention / RotaryPositionalEmbedding misuse messages", "[nn]") {
  auto mha = nn::MultiheadAttention::init(2, 4, eqx::random::key(0), {.key_size = 3});
  eqx::Array q = eqx::zeros({5, 4}), k = eqx::zeros({6, 3}), v = eqx::zeros({6, 4});
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { mha(eqx::zeros({5, 3}), k, v); }) ==
        "eqx::nn::MultiheadAttention: expected the query to have 4 channels (query_size) (axis 1) but got shape [5,3]");
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { mha(eqx::zeros({2, 5, 4}), k, v); }) ==
        "eqx::nn::MultiheadAttention: expected the query to have rank 2 [q_seq, query_size] but got shape [2,5,4]; "
        "layers act on one example: call it on one example and batch with eqx::filter_vmap(layer)(xs)");
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { mha(q, k, eqx::zeros({7, 4})); }) ==
        "eqx::nn::MultiheadAttention: expected the key and value to have the same sequence length but got key [6,3] "
        "and value [7,4]; pass one value per key");
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { mha(q, k, v, eqx::ones({6, 5}, eqx::bool_)); }) ==
        "eqx::nn::MultiheadAttention: expected the mask to have shape [5,6] or [2,5,6] ([q_seq, kv_seq] or "
        "[num_heads, q_seq, kv_seq]) but got [6,5]");
  CHECK(eqx_test::message_of<eqx::DTypeError>([&] { mha(q, k, v, eqx::random::key(1)); }) ==
        "eqx::nn::MultiheadAttention: expected the mask to be bool but got uint32; pass a bool mask (true = attend), "
        "or eqx::Array{} for none (a dropout key goes after it: mha(q, k, v, eqx::Array{}, key))");
  auto dropping = nn::MultiheadAttention::init(2, 4, eqx::random::key(0), {.dropout_p = 0.25});
  CHECK(eqx_test::message_of<eqx::ValueError>([&] { dropping(q, q, q); }) ==
        "eqx::nn::MultiheadAttention: dropout (dropout_p = 0.25, inference = false) needs a key but got none; call "
        "mha(q, k, v, mask, key), or pass {.inference = true} in the call options");
  CHECK(dropping(q, q, q, {}, {}, {.inference = true}).shape() == eqx::Shape{5, 4});
  nn::ProcessHeads shrink = [](const eqx::Array& q, const eqx::Array& k, const eqx::Array& v) {
    return std::tuple{eqx::slice(q, 0, 0, 1), k, v};
  };
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { mha(q, k, v, {}, {}, {.process_heads = shrink}); }) ==
        "eqx::nn::MultiheadAttention: expected process_heads to keep the head shapes [5,2,2], [6,2,2], [6,2,2] but got "
        "[1,2,2], [6,2,2], [6,2,2]; return heads of the same shapes");
  CHECK(eqx_test::message_of<eqx::ValueError>([&] { nn::MultiheadAttention::init(0, 4, eqx::random::key(0)); }) ==
        "eqx::nn::MultiheadAttention: expected num_heads >= 1 and query_size >= 1 but got 0 and 4; give positive sizes");

  CHECK(eqx_test::message_of<eqx::ValueError>([&] { nn::RotaryPositionalEmbedding::init(5); }) ==
        "eqx::nn::RotaryPositionalEmbedding: expected a non-negative even embedding_size but got 5; rotary embeddings "
        "rotate pairs of channels");
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { nn::RotaryPositionalEmbedding::init(4)(eqx::zeros({3, 6})); }) ==
        "eqx::nn::RotaryPositionalEmbedding: expected the input to have 4 channels (embedding_size) (axis 1) but got "
        "shape [3,6]");
}

}  // namespace nn_attention_test
