#pragma once
// nn::Embedding (Equinox's eqx.nn.Embedding): a lookup table of
// `num_embeddings` vectors of `embedding_size` entries, the rows of `weight`.
//
// Calling it with one scalar integer index returns that row, `weight[i]`
// (eqx::take along axis 0), so its gradient with respect to the weight is
// the cotangent scattered into row i and zero elsewhere. Negative indices
// count from the end, as in numpy; an index outside [-num, num) throws
// eqx::IndexError from eqx::take (JAX would clamp it silently; eqx never
// reads out of bounds). The weight starts N(0, 1), drawn with `key` exactly
// as jax.random.normal(key, (num, size)).
//
//   auto embed = eqx::nn::Embedding::init(1000, 64, key);
//   eqx::Array v = embed(eqx::array(17));                 // i32[] -> f32[64]
//   eqx::Array vs = eqx::filter_vmap(embed)(tokens);      // i32[T] -> f32[T, 64]

#include <cstdint>
#include <string>
#include <utility>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/nn/common.hpp"
#include "eqx/ops/indexing.hpp"
#include "eqx/random.hpp"
#include "eqx/tree/node.hpp"

namespace eqx::nn {

/// Embedding's keyword arguments.
struct EmbeddingOptions {
  DType dtype = float32;
};

/// A table of embedding vectors indexed by an integer (eqx.nn.Embedding).
struct Embedding {
  Static<std::int64_t> num_embeddings;
  Static<std::int64_t> embedding_size;
  Array weight;  ///< [num_embeddings, embedding_size]

  using Options = EmbeddingOptions;

  /// A table of `num_embeddings` vectors of `embedding_size`, drawn N(0, 1).
  /// Usage: `auto embed = eqx::nn::Embedding::init(1000, 64, key);`
  static Embedding init(std::int64_t num_embeddings, std::int64_t embedding_size, const random::Key& key,
                        Options opts = {}) {
    detail::check_param_dtype(opts.dtype, "Embedding");
    if (num_embeddings < 0 || embedding_size < 0)
      throw ValueError("eqx::nn::Embedding: expected num_embeddings and embedding_size >= 0 but got " +
                       std::to_string(num_embeddings) + " and " + std::to_string(embedding_size));
    return {{num_embeddings}, {embedding_size}, random::normal(key, {num_embeddings, embedding_size}, opts.dtype)};
  }

  /// A table holding the given 2-D `weight` [num_embeddings, embedding_size]
  /// (Equinox's `Embedding(weight=...)`).
  /// Usage: `auto embed = eqx::nn::Embedding::from_weight(pretrained);`
  static Embedding from_weight(Array weight) {
    if (!weight.has_value()) throw ValueError("eqx::nn::Embedding: the weight is an empty Array (None)");
    if (weight.ndim() != 2)
      throw ShapeError("eqx::nn::Embedding: expected a weight of rank 2 [num_embeddings, embedding_size] but got " +
                       weight.shape().str());
    const std::int64_t num = weight.shape()[0], size = weight.shape()[1];
    return {{num}, {size}, std::move(weight)};
  }

  /// The row for one scalar integer index: [embedding_size].
  /// Usage: `embed(eqx::array(3))`; batch with `eqx::filter_vmap(embed)(indices)`
  Array operator()(const Array& index) const {
    if (!index.has_value()) throw ValueError("eqx::nn::Embedding: the index is an empty Array (None)");
    if (!is_integer(index.dtype()))
      throw DTypeError("eqx::nn::Embedding: expected an integer index (int32 or uint32) but got " +
                       std::string(dtype_name(index.dtype())) + "; convert it with eqx::astype(i, eqx::int32)");
    if (index.ndim() != 0)
      throw ShapeError("eqx::nn::Embedding: expected a scalar index (shape []) but got " + index.shape().str() +
                       "; call it on one index and batch with eqx::filter_vmap(embedding)(indices)");
    return take(weight, index, 0);
  }
};

}  // namespace eqx::nn
