// Catch2's implementation, compiled once for both test runners (it is most
// of a runner's compile time), and the session they run.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "catch_runner.hpp"

int eqx_test::run_catch_session(int argc, char** argv) { return Catch::Session().run(argc, argv); }
