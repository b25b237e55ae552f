#pragma once
// The Catch2 session of a test runner, compiled once in catch_runner.cpp
// (with Catch2's implementation) for both runners: eqx_tests (main.cpp) and
// the MPI runner eqx_dist_tests (dist/main.cpp).

namespace eqx_test {

/// Runs every selected test case, as Catch2's own main does; returns the
/// number of failed cases (capped at 255). Usage: `return run_catch_session(argc, argv);`
int run_catch_session(int argc, char** argv);

}  // namespace eqx_test
