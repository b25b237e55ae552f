// Catch2's implementation, compiled once for both test runners: eqx_tests
// (tests/main.cpp) and the MPI runner eqx_dist_tests (tests/dist/main.cpp).
// It is most of a runner's compile time, so neither includes it itself.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
