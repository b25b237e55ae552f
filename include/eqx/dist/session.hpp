#pragma once
// The MPI job a data-parallel program runs in: one process per rank, started
// by `mpirun -np N program`. eqx::dist::Session initialises MPI for its
// lifetime; eqx::dist::run also turns an exception on one rank into the end
// of the whole job, since the other ranks would otherwise wait forever in
// their next collective:
// - the failing rank prints its message and offers it to the others in the
//   first step of every eqx collective (the structure check's all-reduce,
//   with a marker no real tree hashes to);
// - ranks waiting in an eqx collective receive it, throw
//   eqx::dist::PeerFailure, and print it too;
// - after a short grace period for that, every rank calls MPI_Abort. A rank
//   that never reaches an eqx collective is stopped by the abort alone.
// Needs MPI: link eqx::mpi (CMake) or build with mpicxx.

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <exception>
#include <vector>
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

/// Waits for a non-blocking MPI request; with a deadline (seconds >= 0),
/// gives up after it and returns false.
inline bool wait_for(MPI_Request& request, double seconds = -1) {
  if (seconds < 0) {
    check_mpi(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait");
    return true;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int done = 0;
  while (!done) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (!done && std::chrono::steady_clock::now() > deadline) return false;
  }
  return true;
}

/// The first step of every eqx collective: an all-reduce (max) of two
/// words, non-blocking so that a failing rank's announcement (which must
/// not wait forever) matches it.
inline constexpr std::uint64_t kFailureMarker = ~std::uint64_t{0};
inline bool allreduce_max2(const std::uint64_t (&in)[2], std::uint64_t (&out)[2], double seconds = -1) {
  MPI_Request request;
  check_mpi(MPI_Iallreduce(in, out, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD, &request), "MPI_Iallreduce");
  return wait_for(request, seconds);
}

/// Every rank's string (collective).
inline std::vector<std::string> allgather_strings(const std::string& mine) {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<std::size_t>(n)), offsets(static_cast<std::size_t>(n));
  check_mpi(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
  int total = 0;
  for (int r = 0; r < n; ++r) {
    offsets[static_cast<std::size_t>(r)] = total;
    total += lens[static_cast<std::size_t>(r)];
  }
  std::string all(static_cast<std::size_t>(total), '\0');
  check_mpi(MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR,
                           MPI_COMM_WORLD),
            "MPI_Allgatherv");
  std::vector<std::string> out;
  for (int r = 0; r < n; ++r)
    out.push_back(all.substr(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                             static_cast<std::size_t>(lens[static_cast<std::size_t>(r)])));
  return out;
}

/// Prints `line` to stderr at once (ranks' output is interleaved by mpirun).
inline void print_line(const std::string& line) {
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
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

/// Thrown on the ranks waiting in an eqx collective when another rank
/// failed (inside eqx::dist::run); its message is the failed rank's.
class PeerFailure : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

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

namespace detail {
/// How long a failing rank waits for the others to hear of it, and how long
/// every rank then waits for all to have printed, before MPI_Abort.
inline constexpr double kAnnounceSeconds = 30, kGraceSeconds = 5;

/// Gives every rank up to kGraceSeconds to reach this point (to have
/// printed its line), then ends the job.
[[noreturn]] inline void end_job() {
  MPI_Request barrier;
  if (MPI_Ibarrier(MPI_COMM_WORLD, &barrier) == MPI_SUCCESS) wait_for(barrier, kGraceSeconds);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();  // not reached: MPI_Abort ends the process
}

/// A rank that heard of another's failure: prints it, ends the job.
[[noreturn]] inline void abort_job(const std::string& line) {
  print_line(line);
  end_job();
}

/// A failing rank: offers its message to the ranks waiting in an eqx
/// collective (see the file comment), then ends the job.
[[noreturn]] inline void fail_job(const std::string& line) {
  print_line(line);
  const std::uint64_t marker[2] = {kFailureMarker, kFailureMarker};
  std::uint64_t agreed[2];
  if (allreduce_max2(marker, agreed, kAnnounceSeconds)) allgather_strings(line);
  end_job();
}
}  // namespace detail

/// Runs `fn()` inside a Session and returns its exit code (0 if it returns
/// void). If fn throws on a rank, the whole job ends (MPI_Abort, so mpirun
/// exits non-zero) instead of leaving the other ranks waiting: the failing
/// rank prints "eqx::dist: rank R of N stopped: <message>", and the ranks
/// that were waiting in an eqx collective print "eqx::dist: rank Q of N
/// stopping: <that line>" before the job ends.
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
  } catch (const PeerFailure& e) {
    detail::abort_job("eqx::dist: rank " + std::to_string(rank()) + " of " + std::to_string(size()) +
                      " stopping: " + e.what());
  } catch (const std::exception& e) {
    detail::fail_job("eqx::dist: rank " + std::to_string(rank()) + " of " + std::to_string(size()) +
                     " stopped: " + e.what());
  }
}

}  // namespace eqx::dist
