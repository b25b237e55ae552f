#pragma once
// The MPI job a data-parallel program runs in: one process per rank, started
// by `mpirun -np N program`. eqx::dist::Session initialises MPI for its
// lifetime; eqx::dist::run also turns an exception on one rank into the end
// of the whole job (MPI_Abort), since the other ranks would otherwise wait
// forever in their next collective.
// Needs MPI: link eqx::mpi (CMake) or build with mpicxx.

#include <mpi.h>

#include <cstdio>
#include <exception>
#include <type_traits>
#include <string>
#include <utility>

#include "eqx/core/error.hpp"

namespace eqx::dist {

namespace detail {
inline void check_mpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw RuntimeError(std::string("eqx::dist: ") + call + " failed: " + std::string(text, static_cast<std::size_t>(len)));
}

inline void require_initialized(const char* fn) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized)
    throw RuntimeError(std::string("eqx::dist::") + fn +
                       ": MPI is not running; create an eqx::dist::Session (or use eqx::dist::run) in main first");
}
}  // namespace detail

/// MPI for the lifetime of this object: MPI_Init_thread on construction
/// (unless MPI is already running, which it then leaves alone) and
/// MPI_Finalize on destruction. One per program, in main.
/// Usage: `int main(int argc, char** argv) { eqx::dist::Session mpi(argc, argv); ... }`
class Session {
 public:
  Session(int& argc, char**& argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    // Only the thread that made the Session calls MPI (eqx's own worker
    // threads never do).
    detail::check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owns_ = true;
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() {
    if (owns_) MPI_Finalize();
  }

 private:
  bool owns_ = false;
};

/// This process's rank in the job, 0..size()-1. Usage: `if (eqx::dist::rank() == 0) log(loss);`
inline int rank() {
  detail::require_initialized("rank");
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

/// The number of processes in the job. Usage: `int n = eqx::dist::size();`
inline int size() {
  detail::require_initialized("size");
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

/// Waits until every rank has called it. Usage: `eqx::dist::barrier();`
inline void barrier() {
  detail::require_initialized("barrier");
  detail::check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

/// Runs `fn()` inside a Session and returns its exit code (0 if it returns
/// void). If fn throws on any rank, that rank prints
/// "eqx::dist: rank R of N stopped: <message>" to stderr and aborts the
/// whole job (MPI_Abort), so no rank is left waiting in a collective;
/// mpirun then exits non-zero.
/// Usage: `int main(int argc, char** argv) { return eqx::dist::run(argc, argv, [&] { train(); }); }`
template <class F>
int run(int& argc, char**& argv, F&& fn) {
  Session session(argc, argv);
  try {
    if constexpr (std::is_void_v<decltype(std::forward<F>(fn)())>) {
      std::forward<F>(fn)();
      return 0;
    } else {
      return static_cast<int>(std::forward<F>(fn)());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqx::dist: rank %d of %d stopped: %s\n", rank(), size(), e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
}

}  // namespace eqx::dist
