#pragma once
// Shuffled mini-batches, as a NumPy or PyTorch data loader gives them: each
// epoch a fresh random order of the examples, cut into batches of indices
// that eqx::take turns into the batch itself.
//
// Batches all have the same size by default (the last, partial one is
// dropped), so a filter_jit'd training step sees one shape and compiles once.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ops/indexing.hpp"
#include "eqx/random.hpp"

namespace eqx::data {

/// Options for batch_indices.
struct BatchOptions {
  /// Keep the last batch when `batch_size` does not divide `n` (it is smaller).
  bool keep_partial = false;
};

/// The indices 0..n-1 in a random order drawn from `key`, cut into int32
/// batches of `batch_size`.
/// Usage: `for (const auto& idx : eqx::data::batch_indices(key, n, 64)) step(take(x, idx, 0), take(y, idx, 0));`
inline std::vector<Array> batch_indices(const random::Key& key, std::int64_t n, std::int64_t batch_size,
                                        BatchOptions opts = {}) {
  if (batch_size <= 0)
    throw ValueError("eqx::data::batch_indices: batch_size must be positive, got " + std::to_string(batch_size));
  if (n < 0) throw ValueError("eqx::data::batch_indices: n must be >= 0, got " + std::to_string(n));
  const Array order = random::permutation(key, n);
  std::vector<Array> batches;
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const std::int64_t stop = std::min(n, start + batch_size);
    if (stop - start < batch_size && !opts.keep_partial) break;
    batches.push_back(slice(order, 0, start, stop));
  }
  return batches;
}

}  // namespace eqx::data
