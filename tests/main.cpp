// The eqx_tests runner: Catch2's session (catch_runner.cpp).
#include "catch_runner.hpp"

int main(int argc, char** argv) { return eqx_test::run_catch_session(argc, argv); }
