#pragma once
// Checkpoints of a data-parallel job: the ranks hold identical models, so
// rank 0 alone writes the file (atomically, through eqx's
// tree_serialise_leaves) and, on resume, rank 0 alone reads it and
// broadcasts it. Nothing in the file depends on the number of ranks, so a
// job can resume on a different number of processes. A failure on rank 0
// (a full disk, a missing file) is raised on every rank.

#include <cstddef>
#include <exception>
#include <filesystem>
#include <string>
#include <utility>

#include "eqx/core/error.hpp"
#include "eqx/dist/collectives.hpp"
#include "eqx/dist/session.hpp"
#include "eqx/io/serialise.hpp"

namespace eqx::dist {

namespace detail {
/// Rank 0's error message (empty: success), on every rank; collective.
inline std::string broadcast_message(std::string message) {
  int len = static_cast<int>(message.size());
  check_mpi(MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
  message.resize(static_cast<std::size_t>(len));
  if (len > 0) check_mpi(MPI_Bcast(message.data(), len, MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast");
  return message;
}
}  // namespace detail

/// Rank 0 writes `tree` to `file` (replaced atomically); every rank returns
/// once it is written, or throws eqx::IOError if rank 0 could not write it.
/// Collective. Usage: `eqx::dist::save_checkpoint("ckpt.eqx", std::tuple{model, opt_state});`
template <class T>
void save_checkpoint(const std::filesystem::path& file, const T& tree) {
  std::string error;
  if (rank() == 0) {
    try {
      tree_serialise_leaves(file, tree);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  error = detail::broadcast_message(std::move(error));
  if (!error.empty()) throw IOError("eqx::dist::save_checkpoint: rank 0 could not write the checkpoint: " + error);
}

/// Rank 0 reads `file` into a tree shaped like `like` and every rank gets
/// it (broadcast), so only rank 0 needs the file. Throws eqx::IOError on
/// every rank if rank 0 could not read it. Collective.
/// Usage: `auto [model, opt_state] = eqx::dist::load_checkpoint("ckpt.eqx", std::tuple{model, opt_state});`
template <class T>
T load_checkpoint(const std::filesystem::path& file, const T& like) {
  T loaded = like;
  std::string error;
  if (rank() == 0) {
    try {
      loaded = tree_deserialise_leaves(file, like);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  error = detail::broadcast_message(std::move(error));
  if (!error.empty()) throw IOError("eqx::dist::load_checkpoint: rank 0 could not read the checkpoint: " + error);
  return tree_broadcast(loaded, 0);
}

}  // namespace eqx::dist
