#pragma once
// Sharding the data of a data-parallel job: every rank draws the same epoch
// order from the same key (no communication), cuts it into the same global
// batches, and takes its own contiguous slice of each. The union of the
// ranks' slices is exactly the batch a single process would use, so
// averaging the ranks' gradients gives the single-process gradient.

#include <cstdint>
#include <string>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/data/batches.hpp"
#include "eqx/ops/indexing.hpp"
#include "eqx/random.hpp"

namespace eqx::dist {

/// This rank's indices of each global batch of one epoch: the epoch's order
/// from `key` (as eqx::data::batch_indices draws it), cut into batches of
/// `global_batch` examples, of which rank `rank` of `ranks` takes the slice
/// [rank * global_batch / ranks, (rank + 1) * global_batch / ranks).
/// `global_batch` must be a multiple of `ranks`. No MPI call: every rank
/// computes its own part from the same key.
/// Usage: `for (const auto& idx : eqx::dist::shard_batch_indices(key, n, 64, eqx::dist::rank(), eqx::dist::size())) step(take(x, idx, 0));`
inline std::vector<Array> shard_batch_indices(const random::Key& key, std::int64_t n, std::int64_t global_batch,
                                              int rank, int ranks) {
  if (ranks <= 0 || rank < 0 || rank >= ranks)
    throw ValueError("eqx::dist::shard_batch_indices: rank " + std::to_string(rank) + " is not in 0.." +
                     std::to_string(ranks - 1));
  if (global_batch <= 0 || global_batch % ranks != 0)
    throw ValueError("eqx::dist::shard_batch_indices: the global batch (" + std::to_string(global_batch) +
                     ") must be a positive multiple of the number of ranks (" + std::to_string(ranks) +
                     "), so every rank gets a shard of the same size; choose a batch of " +
                     std::to_string((global_batch / ranks + 1) * ranks) + " or run on a divisor of it");
  const std::int64_t per_rank = global_batch / ranks;
  std::vector<Array> shards;
  for (const Array& batch : data::batch_indices(key, n, global_batch))
    shards.push_back(slice(batch, 0, rank * per_rank, (rank + 1) * per_rank));
  return shards;
}

}  // namespace eqx::dist
