#pragma once
// nn::MultiheadAttention (eqx.nn.MultiheadAttention) and
// nn::RotaryPositionalEmbedding (eqx.nn.RotaryPositionalEmbedding).
//
// Multi-head attention on one example (a query sequence attending to a
// key/value sequence). Four Linears project the inputs; their outputs are
// cut into `num_heads` blocks of channels, the heads:
//
//   Q = query @ Wq^T [+ bq]   -> [q_seq, heads, qk_size]
//   K = key   @ Wk^T [+ bk]   -> [kv_seq, heads, qk_size]
//   V = value @ Wv^T [+ bv]   -> [kv_seq, heads, vo_size]
//   A_h = softmax(Q_h K_h^T / sqrt(qk_size))            (masked logits -> lowest float)
//   out = concat_h(A_h V_h) @ Wo^T [+ bo]                -> [q_seq, output_size]
//
// The heads are a batch axis of two batched products (dot_general), so a
// jitted call is a handful of GEMMs, not a loop over heads. Sizes, defaults
// (no biases; qk/vo size = query_size / num_heads), the mask convention
// (true = attend) and the dropout on the attention weights (one key per
// head, split from the call's key) are Equinox's, and so are the fields and
// their order, so an Equinox .eqx file of the layer loads unchanged.
//
//   auto mha = eqx::nn::MultiheadAttention::init(4, 64, key);
//   eqx::Array y = mha(x, x, x);                       // self-attention, x: f32[seq, 64]
//   eqx::Array z = mha(q, kv, kv, causal_mask);        // mask: bool[q_seq, kv_seq]
//   eqx::Array ys = eqx::filter_vmap(mha)(xs, xs, xs); // a batch of sequences
//
// Rotary positional embeddings rotate channel pairs of each position by
// position-dependent angles; apply them to the query and key heads through
// the call's `process_heads` hook:
//
//   auto rope = eqx::nn::RotaryPositionalEmbedding::init(16);   // 16 = qk_size
//   auto on_heads = eqx::filter_vmap(rope, 1, 1);                // over the heads axis
//   eqx::Array y = mha(x, x, x, {}, {}, {.process_heads = [&](const eqx::Array& q, const eqx::Array& k,
//                                                             const eqx::Array& v) {
//     return std::tuple{on_heads(q), on_heads(k), v};
//   }});

#include <cmath>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/nn/activations.hpp"
#include "eqx/nn/common.hpp"
#include "eqx/nn/dropout.hpp"
#include "eqx/nn/linear.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/indexing.hpp"
#include "eqx/ops/linalg.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/random.hpp"
#include "eqx/transform/vmap.hpp"
#include "eqx/tree/node.hpp"

namespace eqx::nn {

namespace detail {

/// A Linear applied to every row of x [seq, in]: x @ W^T + b, one GEMM.
inline Array project_rows(const Linear& proj, const Array& x) {
  Array y = dot_general(x, proj.weight, {{1}, {1}});
  return proj.bias.has_value() ? y + proj.bias : y;
}

/// The lowest finite value of a floating dtype (jnp.finfo(dtype).min).
inline double lowest_finite(DType dtype) {
  return dtype == float64 ? std::numeric_limits<double>::lowest()
                          : static_cast<double>(std::numeric_limits<float>::lowest());
}

inline std::string shape_list(const Shape& a, const Shape& b) { return a.str() + " or " + b.str(); }

}  // namespace detail

/// MultiheadAttention's keyword arguments (Equinox's defaults): the key,
/// value and output sizes default to query_size, the per-head qk and vo
/// sizes to query_size / num_heads.
struct MultiheadAttentionOptions {
  std::optional<std::int64_t> key_size = std::nullopt;
  std::optional<std::int64_t> value_size = std::nullopt;
  std::optional<std::int64_t> output_size = std::nullopt;
  std::optional<std::int64_t> qk_size = std::nullopt;
  std::optional<std::int64_t> vo_size = std::nullopt;
  bool use_query_bias = false;
  bool use_key_bias = false;
  bool use_value_bias = false;
  bool use_output_bias = false;
  double dropout_p = 0.0;
  bool inference = false;
  DType dtype = float32;
};

/// The `process_heads` hook: (query heads [q_seq, heads, qk], key heads
/// [kv_seq, heads, qk], value heads [kv_seq, heads, vo]) -> the same three,
/// with the same shapes (e.g. rotary embeddings on query and key).
using ProcessHeads = std::function<std::tuple<Array, Array, Array>(const Array&, const Array&, const Array&)>;

/// MultiheadAttention's per-call keyword arguments.
struct MultiheadAttentionCallOptions {
  std::optional<bool> inference = std::nullopt;  ///< overrides the dropout's `inference` for this call
  ProcessHeads process_heads = nullptr;          ///< applied to the projected heads, if set
};

/// Multi-head scaled dot-product attention (eqx.nn.MultiheadAttention).
struct MultiheadAttention {
  Linear query_proj;   ///< query_size -> num_heads * qk_size
  Linear key_proj;     ///< key_size -> num_heads * qk_size
  Linear value_proj;   ///< value_size -> num_heads * vo_size
  Linear output_proj;  ///< num_heads * vo_size -> output_size
  Dropout dropout;     ///< on the attention weights
  Static<std::int64_t> num_heads;
  Static<std::int64_t> query_size;
  Static<std::int64_t> key_size;
  Static<std::int64_t> value_size;
  Static<std::int64_t> output_size;
  Static<std::int64_t> qk_size;
  Static<std::int64_t> vo_size;
  Static<bool> use_query_bias;
  Static<bool> use_key_bias;
  Static<bool> use_value_bias;
  Static<bool> use_output_bias;

  using Options = MultiheadAttentionOptions;
  using CallOptions = MultiheadAttentionCallOptions;

  /// Attention with `num_heads` heads over queries of `query_size`
  /// channels; the four projections are Linears with Equinox's default
  /// init, from four keys split from `key`.
  /// Usage: `auto mha = eqx::nn::MultiheadAttention::init(4, 64, key, {.output_size = 32, .dropout_p = 0.1});`
  static MultiheadAttention init(std::int64_t num_heads, std::int64_t query_size, const random::Key& key,
                                 Options opts = {}) {
    nn::detail::check_param_dtype(opts.dtype, "MultiheadAttention");
    if (num_heads < 1 || query_size < 1)
      throw ValueError("eqx::nn::MultiheadAttention: expected num_heads >= 1 and query_size >= 1 but got " +
                       std::to_string(num_heads) + " and " + std::to_string(query_size) + "; give positive sizes");
    const std::int64_t ks = opts.key_size.value_or(query_size), vs = opts.value_size.value_or(query_size);
    const std::int64_t os = opts.output_size.value_or(query_size);
    const std::int64_t qk = opts.qk_size.value_or(query_size / num_heads);
    const std::int64_t vo = opts.vo_size.value_or(query_size / num_heads);
    auto keys = random::split_keys(key, 4);
    return MultiheadAttention{
        Linear::init(query_size, num_heads * qk, keys[0], {.use_bias = opts.use_query_bias, .dtype = opts.dtype}),
        Linear::init(ks, num_heads * qk, keys[1], {.use_bias = opts.use_key_bias, .dtype = opts.dtype}),
        Linear::init(vs, num_heads * vo, keys[2], {.use_bias = opts.use_value_bias, .dtype = opts.dtype}),
        Linear::init(num_heads * vo, os, keys[3], {.use_bias = opts.use_output_bias, .dtype = opts.dtype}),
        Dropout::init(opts.dropout_p, {.inference = opts.inference}),
        {num_heads}, {query_size}, {ks}, {vs}, {os}, {qk}, {vo},
        {opts.use_query_bias}, {opts.use_key_bias}, {opts.use_value_bias}, {opts.use_output_bias}};
  }

  /// Attends from query [q_seq, query_size] over key_ [kv_seq, key_size]
  /// and value [kv_seq, value_size]; returns [q_seq, output_size].
  /// `mask` (optional) is bool [q_seq, kv_seq] or, per head, [num_heads,
  /// q_seq, kv_seq]; false hides a key from a query. `key` drives dropout
  /// on the attention weights (needed only when dropout is active).
  /// Usage: `mha(q, k, v)`, `mha(q, k, v, mask)`, `mha(q, k, v, eqx::Array{}, dropout_key)`,
  ///        `mha(q, k, v, mask, dropout_key, {.inference = true})`
  Array operator()(const Array& query, const Array& key_, const Array& value, const Array& mask = {},
                   const random::Key& key = {}, const CallOptions& opts = {}) const {
    constexpr std::string_view L = "MultiheadAttention";
    detail::check_rank(L, query, 2, "[q_seq, query_size]", "query");
    detail::check_rank(L, key_, 2, "[kv_seq, key_size]", "key");
    detail::check_rank(L, value, 2, "[kv_seq, value_size]", "value");
    detail::check_dim(L, query, 1, *query_size, "channels (query_size)", "query");
    detail::check_dim(L, key_, 1, *key_size, "channels (key_size)", "key");
    detail::check_dim(L, value, 1, *value_size, "channels (value_size)", "value");
    const std::int64_t q_seq = query.shape()[0], kv_seq = key_.shape()[0], heads = *num_heads;
    if (value.shape()[0] != kv_seq)
      throw ShapeError("eqx::nn::MultiheadAttention: expected the key and value to have the same sequence length but "
                       "got key " + key_.shape().str() + " and value " + value.shape().str() +
                       "; pass one value per key");
    if (mask.has_value()) check_mask(mask, q_seq, kv_seq);
    const bool drop = !opts.inference.value_or(dropout.inference) && dropout.p > 0;
    if (drop && !key.has_value())
      throw ValueError("eqx::nn::MultiheadAttention: dropout (dropout_p = " + fmt::format("{}", dropout.p) +
                       ", inference = false) needs a key but got none; call mha(q, k, v, mask, key), or pass "
                       "{.inference = true} in the call options");

    Array q_heads = reshape(detail::project_rows(query_proj, query), {q_seq, heads, *qk_size});
    Array k_heads = reshape(detail::project_rows(key_proj, key_), {kv_seq, heads, *qk_size});
    Array v_heads = reshape(detail::project_rows(value_proj, value), {kv_seq, heads, *vo_size});
    if (opts.process_heads) {
      const Shape qs = q_heads.shape(), ks = k_heads.shape(), vs = v_heads.shape();
      std::tie(q_heads, k_heads, v_heads) = opts.process_heads(q_heads, k_heads, v_heads);
      if (q_heads.shape() != qs || k_heads.shape() != ks || v_heads.shape() != vs)
        throw ShapeError("eqx::nn::MultiheadAttention: expected process_heads to keep the head shapes " + qs.str() +
                         ", " + ks.str() + ", " + vs.str() + " but got " + q_heads.shape().str() + ", " +
                         k_heads.shape().str() + ", " + v_heads.shape().str() + "; return heads of the same shapes");
    }

    // logits[h, s, S] = <Q[s, h] / sqrt(qk), K[S, h]>: heads are a batch axis.
    Array logits = dot_general(q_heads / std::sqrt(static_cast<double>(*qk_size)), k_heads, {{2}, {2}}, {{1}, {1}});
    if (mask.has_value()) logits = where(mask, logits, detail::lowest_finite(logits.dtype()));
    const DType logit_dtype = logits.dtype();
    Array weights = astype(softmax(astype(logits, promote_types(logit_dtype, float32)), -1), logit_dtype);
    if (drop) {
      auto per_head = [d = dropout](const Array& w, const random::Key& k) { return d(w, k, false); };
      weights = filter_vmap(per_head)(weights, random::split(key, heads));
    }
    // attn[h, s, d] = sum_S weights[h, s, S] V[S, h, d], then heads side by side.
    Array attn = dot_general(weights, v_heads, {{2}, {0}}, {{0}, {1}});
    attn = reshape(transpose(attn, {1, 0, 2}), {q_seq, heads * *vo_size});
    return detail::project_rows(output_proj, attn);
  }

 private:
  void check_mask(const Array& mask, std::int64_t q_seq, std::int64_t kv_seq) const {
    if (mask.dtype() != bool_)
      throw DTypeError("eqx::nn::MultiheadAttention: expected the mask to be bool but got " +
                       std::string(dtype_name(mask.dtype())) +
                       "; pass a bool mask (true = attend), or eqx::Array{} for none (a dropout key goes after it: "
                       "mha(q, k, v, eqx::Array{}, key))");
    const Shape two{q_seq, kv_seq}, three{*num_heads, q_seq, kv_seq};
    if (mask.shape() != two && mask.shape() != three)
      throw ShapeError("eqx::nn::MultiheadAttention: expected the mask to have shape " + detail::shape_list(two, three) +
                       " ([q_seq, kv_seq] or [num_heads, q_seq, kv_seq]) but got " + mask.shape().str() +
                       detail::batch_hint(mask.ndim(), 2));
  }
};

/// RotaryPositionalEmbedding's keyword arguments.
struct RotaryPositionalEmbeddingOptions {
  double theta = 10000.0;
  DType dtype = float32;
};

/// Rotary positional embedding (eqx.nn.RotaryPositionalEmbedding): position
/// t rotates channel pair (j, j + d/2) by the angle t * theta^(-2j/d):
/// y = x * cos + rotate_half(x) * sin, with rotate_half(x) = [-x2, x1] for
/// x = [x1, x2] (halves of the channels). No parameters.
struct RotaryPositionalEmbedding {
  Static<std::int64_t> embedding_size;
  Static<double> theta;
  Static<DType> dtype;  ///< the dtype of the cos/sin tables

  using Options = RotaryPositionalEmbeddingOptions;

  /// A rotary embedding for `embedding_size` (even) channels.
  /// Usage: `auto rope = eqx::nn::RotaryPositionalEmbedding::init(64, {.theta = 500000.0});`
  static RotaryPositionalEmbedding init(std::int64_t embedding_size, Options opts = {}) {
    nn::detail::check_param_dtype(opts.dtype, "RotaryPositionalEmbedding");
    if (embedding_size < 0 || embedding_size % 2 != 0)
      throw ValueError("eqx::nn::RotaryPositionalEmbedding: expected a non-negative even embedding_size but got " +
                       std::to_string(embedding_size) + "; rotary embeddings rotate pairs of channels");
    return {{embedding_size}, {opts.theta}, {opts.dtype}};
  }

  /// x [seq, embedding_size] -> the same shape and dtype, rotated by position.
  /// Usage: `eqx::Array y = rope(x);`
  Array operator()(const Array& x) const {
    detail::check_rank("RotaryPositionalEmbedding", x, 2, "[seq, embedding_size]");
    detail::check_dim("RotaryPositionalEmbedding", x, 1, *embedding_size, "channels (embedding_size)");
    const std::int64_t seq = x.shape()[0], d = *embedding_size, half = d / 2;
    auto [cos_table, sin_table] = tables(seq);
    Array rotated = concatenate({-slice(x, 1, half, d), slice(x, 1, 0, half)}, 1);
    return astype(x * cos_table + rotated * sin_table, x.dtype());
  }

 private:
  /// cos and sin of t * theta^(-2j/d) for t < seq and j < d/2, each tiled
  /// twice along the channels ([seq, d]); computed in double, stored in dtype.
  std::pair<Array, Array> tables(std::int64_t seq) const {
    const std::int64_t d = *embedding_size, half = d / 2;
    std::vector<double> c(static_cast<std::size_t>(seq * d)), s(c.size());
    for (std::int64_t t = 0; t < seq; ++t)
      for (std::int64_t j = 0; j < half; ++j) {
        const double angle = static_cast<double>(t) * std::pow(*theta, -static_cast<double>(2 * j) / static_cast<double>(d));
        for (std::int64_t copy : {j, j + half}) {
          c[static_cast<std::size_t>(t * d + copy)] = std::cos(angle);
          s[static_cast<std::size_t>(t * d + copy)] = std::sin(angle);
        }
      }
    return {astype(eqx::array(c, {seq, d}), *dtype), astype(eqx::array(s, {seq, d}), *dtype)};
  }
};

}  // namespace eqx::nn
