// The eqx_tests runner: Catch2's own (its implementation is compiled once,
// in catch_runner.cpp, for this runner and the MPI one).
#include <catch2/catch.hpp>

int main(int argc, char** argv) { return Catch::Session().run(argc, argv); }
