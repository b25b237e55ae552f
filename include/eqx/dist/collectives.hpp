#pragma once
// Collectives over pytrees across the ranks of an MPI job: the all-reduce
// of gradients that data-parallel training needs, the broadcast that starts
// every rank from the same parameters, and allgather for metrics.
//
// One MPI message per leaf would make a model's hundreds of small leaves
// cost hundreds of latencies. tree_allreduce packs the leaves of each dtype,
// in leaf order, into buckets of up to `bucket_bytes` (25 MB by default, as
// PyTorch's DistributedDataParallel does), one contiguous buffer and one
// MPI_Allreduce per bucket; a leaf as large as a bucket goes alone, straight
// from its own buffer. Before any data moves, the ranks compare the trees'
// structure (paths, shapes and dtypes), so a mismatch is an error on every
// rank, naming the leaf, instead of a hang or a silently wrong sum.

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/dtype.hpp"
#include "eqx/core/format.hpp"
#include "eqx/core/error.hpp"
#include "eqx/dist/session.hpp"
#include "eqx/tree/flatten.hpp"

namespace eqx::dist {

/// How tree_allreduce combines the ranks' values.
enum class Reduce { sum, mean, max };

/// Options of tree_allreduce and tree_broadcast.
struct CollectiveOptions {
  /// Largest bucket, in bytes: leaves are packed into buffers of up to this
  /// size, one MPI call each.
  std::size_t bucket_bytes = std::size_t{25} << 20;
};

/// What this process's collectives moved since the last reset: for
/// measuring communication (bytes are this rank's payload, per call).
struct CommStats {
  std::size_t calls = 0;     // MPI reductions / broadcasts of data
  std::size_t bytes = 0;     // payload bytes of those calls
  double seconds = 0;        // wall time inside them (including waiting for other ranks)
};

/// This process's running totals. Usage: `eqx::dist::comm_stats() = {}; ...; auto s = eqx::dist::comm_stats();`
inline CommStats& comm_stats() {
  static CommStats stats;
  return stats;
}

namespace detail {

inline MPI_Datatype mpi_type(DType d) {
  switch (d) {
    case DType::float32: return MPI_FLOAT;
    case DType::float64: return MPI_DOUBLE;
    case DType::int32: return MPI_INT32_T;
    case DType::uint32: return MPI_UINT32_T;
    case DType::bool_: return MPI_C_BOOL;
  }
  return MPI_DATATYPE_NULL;
}

/// One line per leaf: "path dtype[shape]", the structure every rank must share.
inline std::string signature(const std::vector<std::pair<TreePath, Array>>& leaves) {
  std::string s;
  for (const auto& [path, a] : leaves) s += path.display() + " " + type_string(a) + "\n";
  return s;
}

inline std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] == '\n') {
      lines.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return lines;
}

/// Throws the same ShapeError on every rank if the ranks' trees differ in
/// structure, naming the first leaf that differs from rank 0's. Costs one
/// 16-byte all-reduce when they agree.
inline void check_same_structure(const std::vector<std::pair<TreePath, Array>>& leaves, const char* fn) {
  const std::string sig = signature(leaves);
  // Top bit clear and low bit set: neither word is ever kFailureMarker.
  const std::uint64_t h = (std::hash<std::string>{}(sig) & (kFailureMarker >> 1)) | 1;
  const std::uint64_t mine[2] = {h, ~h};
  std::uint64_t agreed[2] = {0, 0};
  allreduce_max2(mine, agreed);
  if (agreed[0] == kFailureMarker) {
    // Another rank failed (eqx::dist::run) and offers its message.
    std::string message;
    for (const std::string& m : allgather_strings(""))
      if (!m.empty()) message += (message.empty() ? "" : "; ") + m;
    throw PeerFailure(message);
  }
  // The maxima of h and ~h are this rank's own on every rank only if all
  // hashes are equal (then h is both the maximum and the minimum), so every
  // rank reaches the same conclusion.
  if (agreed[0] == h && agreed[1] == ~h) return;
  std::vector<std::string> sigs = allgather_strings(sig);
  const std::vector<std::string> root = split_lines(sigs[0]);
  for (std::size_t r = 1; r < sigs.size(); ++r) {
    const std::vector<std::string> other = split_lines(sigs[r]);
    for (std::size_t i = 0; i < std::max(root.size(), other.size()); ++i) {
      const std::string a = i < root.size() ? root[i] : "(no leaf)";
      const std::string b = i < other.size() ? other[i] : "(no leaf)";
      if (a == b) continue;
      throw ShapeError(std::string("eqx::dist::") + fn + ": the ranks' trees differ at leaf " +
                       std::to_string(i) + ": rank 0 has " + a + " but rank " + std::to_string(r) + " has " + b +
                       "; every rank must pass a tree of the same structure, shapes and dtypes (the same model, "
                       "and batches of the same size)");
    }
  }
}

/// `leaves` (taken and returned without a copy), after checking none is traced.
inline std::vector<std::pair<TreePath, Array>> concrete_leaves(std::vector<std::pair<TreePath, Array>> leaves,
                                                               const char* fn) {
  for (const auto& [path, a] : leaves)
    if (a.is_abstract())
      throw TraceError(std::string("eqx::dist::") + fn + ": the leaf at " + path.display() +
                       " is being traced (inside filter_jit, filter_grad or filter_vmap); call it outside, on the "
                       "values the transformed function returns");
  return leaves;
}

/// Runs `call(send, recv, count, type)` per bucket of same-dtype leaves and
/// returns the results in leaf order. `in_place` leaves recv == send for
/// MPI_IN_PLACE-style calls (broadcast).
template <class Call>
std::vector<Array> bucketed(const std::vector<std::pair<TreePath, Array>>& leaves, std::size_t bucket_bytes,
                            const Call& call) {
  std::vector<Array> out(leaves.size());
  // Kept between calls (as DDP keeps its buckets): a fresh 25 MB buffer
  // every step would fault in its pages every step.
  thread_local std::vector<unsigned char> buffer;
  CommStats& stats = comm_stats();
  for (DType d : {DType::float32, DType::float64, DType::int32, DType::uint32, DType::bool_}) {
    const std::size_t item = itemsize(d);
    std::size_t i = 0;
    while (i < leaves.size()) {
      // The next bucket: leaves of dtype d from i on, up to bucket_bytes (at least one leaf).
      std::vector<std::size_t> members;
      std::size_t bytes = 0;
      for (; i < leaves.size(); ++i) {
        const Array& a = leaves[i].second;
        if (a.dtype() != d) continue;
        const std::size_t b = static_cast<std::size_t>(a.size()) * item;
        if (!members.empty() && bytes + b > bucket_bytes) break;
        members.push_back(i);
        bytes += b;
      }
      if (members.empty()) break;
      const auto start = std::chrono::steady_clock::now();
      const int count = static_cast<int>(bytes / item);
      if (members.size() == 1) {
        const Array& a = leaves[members[0]].second;
        Array r = eqx::detail::ArrayAccess::allocate(a.shape(), d);
        call(a.raw_data(), eqx::detail::ArrayAccess::mutable_data(r), count, d);
        out[members[0]] = std::move(r);
      } else {
        buffer.resize(bytes);
        std::size_t at = 0;
        for (std::size_t m : members) {
          const Array& a = leaves[m].second;
          const std::size_t b = static_cast<std::size_t>(a.size()) * item;
          if (b) std::memcpy(buffer.data() + at, a.raw_data(), b);
          at += b;
        }
        call(nullptr, buffer.data(), count, d);  // in place
        at = 0;
        for (std::size_t m : members) {
          const Array& a = leaves[m].second;
          const std::size_t b = static_cast<std::size_t>(a.size()) * item;
          Array r = eqx::detail::ArrayAccess::allocate(a.shape(), d);
          if (b) std::memcpy(eqx::detail::ArrayAccess::mutable_data(r), buffer.data() + at, b);
          at += b;
          out[m] = std::move(r);
        }
      }
      stats.calls += 1;
      stats.bytes += bytes;
      stats.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  return out;
}

}  // namespace detail

/// Every Array leaf combined across all ranks (sum, mean or max), the same
/// result on every rank; static leaves are kept. `mean` needs floating
/// leaves. Collective: every rank calls it with a tree of the same
/// structure, or every rank gets a ShapeError naming the first leaf that
/// differs. Averaging gradients for data-parallel training:
/// Usage: `grads = eqx::dist::tree_allreduce(grads, eqx::dist::Reduce::mean);`
template <class T>
T tree_allreduce(const T& tree, Reduce op = Reduce::sum, CollectiveOptions opts = {}) {
  detail::require_initialized("tree_allreduce");
  auto leaves = detail::concrete_leaves(tree_leaves_with_path(tree), "tree_allreduce");
  for (const auto& [path, a] : leaves) {
    if (op == Reduce::mean && !is_floating(a.dtype()))
      throw DTypeError("eqx::dist::tree_allreduce: Reduce::mean needs floating leaves, but " + path.display() +
                       " is " + type_string(a) +
                       "; reduce it with Reduce::sum, or convert it to float32 first");
  }
  detail::check_same_structure(leaves, "tree_allreduce");
  const int n = size();
  if (n == 1) return tree;  // every reduction of one rank's values is those values (Arrays are immutable)
  std::vector<Array> out = detail::bucketed(leaves, opts.bucket_bytes, [&](const void* send, void* recv, int count,
                                                                          DType d) {
    // Bools: any rank's true (logical or) for sum and max alike.
    MPI_Op mpi_op = d == DType::bool_ ? MPI_LOR : op == Reduce::max ? MPI_MAX : MPI_SUM;
    detail::check_mpi(MPI_Allreduce(send ? send : MPI_IN_PLACE, recv, count, detail::mpi_type(d), mpi_op,
                                    MPI_COMM_WORLD),
                      "MPI_Allreduce");
    if (op != Reduce::mean) return;
    if (d == DType::float32) {
      auto* p = static_cast<float*>(recv);
      const float scale = 1.0f / static_cast<float>(n);
      for (int k = 0; k < count; ++k) p[k] *= scale;
    } else {
      auto* p = static_cast<double*>(recv);
      const double scale = 1.0 / static_cast<double>(n);
      for (int k = 0; k < count; ++k) p[k] *= scale;
    }
  });
  return TreeDef<T>(tree).unflatten(out);
}

/// `tree` as rank `root` has it, on every rank (static leaves are each
/// rank's own). Collective, with the same structure check as
/// tree_allreduce. Starts every rank from the same initial parameters:
/// Usage: `model = eqx::dist::tree_broadcast(model, 0);`
template <class T>
T tree_broadcast(const T& tree, int root = 0, CollectiveOptions opts = {}) {
  detail::require_initialized("tree_broadcast");
  if (root < 0 || root >= size())
    throw ValueError("eqx::dist::tree_broadcast: root " + std::to_string(root) + " is not a rank of this job (0.." +
                     std::to_string(size() - 1) + ")");
  auto leaves = detail::concrete_leaves(tree_leaves_with_path(tree), "tree_broadcast");
  detail::check_same_structure(leaves, "tree_broadcast");
  std::vector<Array> out = detail::bucketed(leaves, opts.bucket_bytes, [&](const void* send, void* recv, int count,
                                                                          DType d) {
    // A single leaf is copied first: MPI_Bcast works in place on one buffer.
    if (send) std::memcpy(recv, send, static_cast<std::size_t>(count) * itemsize(d));
    detail::check_mpi(MPI_Bcast(recv, count, detail::mpi_type(d), root, MPI_COMM_WORLD), "MPI_Bcast");
  });
  return TreeDef<T>(tree).unflatten(out);
}

/// Every rank's `x`, stacked along a new leading axis of size size(): for
/// metrics (losses, accuracies) that each rank computed on its shard.
/// Usage: `eqx::Array losses = eqx::dist::allgather(loss);  // [size]`
inline Array allgather(const Array& x) {
  detail::require_initialized("allgather");
  auto leaves = detail::concrete_leaves({{TreePath{}, x}}, "allgather");
  detail::check_same_structure(leaves, "allgather");
  Shape shape = x.shape();
  shape.insert(0, size());
  Array out = eqx::detail::ArrayAccess::allocate(shape, x.dtype());
  const int count = static_cast<int>(x.size());
  detail::check_mpi(MPI_Allgather(x.raw_data(), count, detail::mpi_type(x.dtype()),
                                  eqx::detail::ArrayAccess::mutable_data(out), count, detail::mpi_type(x.dtype()),
                                  MPI_COMM_WORLD),
                    "MPI_Allgather");
  return out;
}

}  // namespace eqx::dist
