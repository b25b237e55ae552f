// The MPI test runner: every rank runs every test case in the same order
// (their collectives must match), and the job fails if any rank fails.
// Launched by ctest as `mpirun -np N eqx_dist_tests` (tests/CMakeLists.txt).

#include "catch_runner.hpp"

#include <mpi.h>

#include <eqx/dist/session.hpp>

int main(int argc, char** argv) {
  eqx::dist::Session mpi(argc, argv);
  const int failed = eqx_test::run_catch_session(argc, argv);
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any_failed;
}
