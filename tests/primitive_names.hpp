#pragma once
// The primitives a rule table (autodiff, jit, vmap) must cover: every
// primitive the program has registered (eqx::detail::registered_primitives,
// so a new one is found with no list to update), minus those left to a test
// of their own, each named here with that test. A table's coverage case
// fails for any other primitive that none of its rows binds.

#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "eqx/prim/primitive.hpp"

namespace eqx_test {

/// A primitive a table does not cover, and the test that checks its rules.
struct CoveredElsewhere {
  const char* primitive;
  const char* test;
};

/// Control flow, collectives, fused regions, a program's own kernels and the
/// debugging primitives: each has rules of its own kind (a body graph, a
/// named axis, a kernel written once), checked in its own tests. Then the
/// primitives that are not eqx's.
inline const std::vector<CoveredElsewhere> kOwnTests = {
    {"cond", "tests/transform/control_flow_test.cpp"},
    {"scan", "tests/transform/control_flow_test.cpp"},
    {"while", "tests/transform/control_flow_test.cpp"},
    {"debug_print", "tests/transform/control_flow_test.cpp"},
    {"error_if", "tests/transform/control_flow_test.cpp, tests/ir/ir_test.cpp"},
    {"custom_jvp_call", "tests/transform/custom_rules_test.cpp"},
    {"custom_vjp_call", "tests/transform/custom_rules_test.cpp"},
    {"pure_callback", "tests/transform/callback_test.cpp (a host function: no derivative; its own batching)"},
    {"psum", "tests/transform/collectives_test.cpp"},
    {"pmean", "tests/transform/collectives_test.cpp"},
    {"pmax", "tests/transform/collectives_test.cpp"},
    {"all_gather", "tests/transform/collectives_test.cpp"},
    {"axis_index", "tests/transform/collectives_test.cpp"},
    {"fused", "tests/ir/ir_test.cpp (made by the fusion pass after tracing; never differentiated or batched)"},
    {"elementwise_kernel", "tests/transform/elementwise_kernel_test.cpp"},
    // Not eqx's primitives: TraceScope::finish's marker for output values
    // (never in a graph), and the ones tests define as a program would.
    {"output", "include/eqx/ir/trace.hpp (a marker, not a primitive of graphs)"},
    {"twice", "tests/ad/autodiff_test.cpp (a program's own primitive and its rules)"},
    {"test_no_batch_rule", "tests/transform/vmap_primitives_test.cpp (a primitive without a batching rule)"},
};

/// The names of the registered primitives a table must cover: all, minus
/// kOwnTests and `also_elsewhere`. Each name left out must be registered, so
/// a renamed primitive cannot hide behind a stale entry.
inline std::set<std::string> primitives_to_cover(const std::vector<CoveredElsewhere>& also_elsewhere = {}) {
  std::set<std::string> names;
  for (const eqx::Primitive* p : eqx::detail::registered_primitives()) names.insert(std::string(p->name()));
  std::vector<CoveredElsewhere> left_out = kOwnTests;
  left_out.insert(left_out.end(), also_elsewhere.begin(), also_elsewhere.end());
  for (const CoveredElsewhere& e : left_out) {
    INFO("primitive " << e.primitive << " (covered by " << e.test << ") is not registered");
    CHECK(names.erase(e.primitive) == 1);
  }
  return names;
}

}  // namespace eqx_test
