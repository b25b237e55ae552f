// The eager interpreter's paths (eqx/prim/primitive.hpp): a primitive's
// output_type, where it gives one (elementwise ops, select, convert, the
// reductions), agrees with its shape_rule; bind1 of a
// primitive with several outputs gives the first, and of one with none says
// so, eagerly and under a trace; Arrays whose handles come from the
// per-thread cache of small blocks stay correct when another thread frees them.

#include <catch2/catch.hpp>
#include <eqx/eqx.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "pool_scope.hpp"
#include "primitive_rows.hpp"

namespace prim_primitive_test {

using eqx::AbstractArray;

/// The shapes to probe an op of `arity` operands with: equal, broadcasting,
/// a scalar, and two that do not broadcast.
std::vector<std::vector<eqx::Shape>> probe_shapes(std::size_t arity) {
  using eqx::Shape;
  if (arity == 1) return {{Shape{2, 3}}, {Shape{}}, {Shape{0, 4}}};
  return {{Shape{2, 3}, Shape{2, 3}}, {Shape{2, 3}, Shape{3}}, {Shape{}, Shape{4}}, {Shape{2}, Shape{3}}};
}

TEST_CASE("output_type of an elementwise primitive is shape_rule's one result", "[prim][eager]") {
  // The eager fast path (bind1) asks output_type, traces ask shape_rule:
  // every unary and binary primitive must give both the same answer, for
  // every dtype (those it rejects too, with the same message).
  std::vector<std::pair<std::string, std::size_t>> arity;
  for (const auto& row : eqx_test::unary_ops()) arity.emplace_back(row.name, 1);
  for (const auto& row : eqx_test::binary_ops()) arity.emplace_back(row.name, 2);
  std::size_t checked = 0;
  for (const eqx::Primitive* p : eqx::detail::registered_primitives())
    for (const auto& [name, n] : arity) {
      if (p->name() != name) continue;
      ++checked;
      for (const auto& shapes : probe_shapes(n))
        for (eqx::DType dt : eqx_test::kAll) {
          std::vector<AbstractArray> in;
          for (const eqx::Shape& s : shapes) in.push_back({s, dt});
          if (n == 2 && dt == eqx::float64) in[1].dtype = eqx::float32;  // mismatched dtypes are rejected
          INFO(name << " on " << in[0].str() << (n == 2 ? ", " + in[1].str() : std::string()));
          std::string type_error, rule_error;
          std::optional<AbstractArray> type;
          std::vector<AbstractArray> rule;
          try {
            type = p->output_type(in, eqx::Params{});
            REQUIRE(type.has_value());
          } catch (const eqx::Error& e) {
            type_error = e.what();
          }
          try {
            rule = p->shape_rule(in, eqx::Params{});
          } catch (const eqx::Error& e) {
            rule_error = e.what();
          }
          CHECK(type_error == rule_error);
          if (type) {
            REQUIRE(rule.size() == 1);
            CHECK(rule[0] == *type);
          }
        }
    }
  CHECK(checked == arity.size());  // each row's primitive is registered under its name
}

TEST_CASE("output_type of select, convert and the reductions is shape_rule's one result", "[prim][eager]") {
  // Each case: a primitive, its operand types and params, and the type it
  // gives or the start of its error; output_type and shape_rule must agree.
  using eqx::Params;
  using eqx::Shape;
  using Ints = std::vector<std::int64_t>;
  struct Case {
    const eqx::Primitive* prim;
    std::vector<AbstractArray> in;
    Params params;
    std::optional<AbstractArray> type;
    std::string error;
  };
  const AbstractArray f32_23{Shape{2, 3}, eqx::float32}, b_23{Shape{2, 3}, eqx::bool_};
  const std::vector<Case> cases = {
      {&eqx::prim::reduce_sum, {f32_23}, Params{}.set("axes", Ints{1}), AbstractArray{Shape{2}, eqx::float32}, ""},
      {&eqx::prim::reduce_max, {f32_23}, Params{}.set("axes", Ints{0, 1}), AbstractArray{Shape{}, eqx::float32}, ""},
      {&eqx::prim::reduce_sum, {f32_23}, Params{}.set("axes", Ints{2}), std::nullopt,
       "eqx::reduce_sum: axes (2,) are not distinct axes of f32[2,3]"},
      {&eqx::prim::reduce_max, {{Shape{0, 3}, eqx::float32}}, Params{}.set("axes", Ints{0}), std::nullopt,
       "eqx::max: cannot reduce over axis 0"},
      {&eqx::prim::reduce_and, {f32_23}, Params{}.set("axes", Ints{0}), std::nullopt, "eqx::reduce_and: got dtype"},
      {&eqx::prim::argmax, {f32_23}, Params{}.set("axis", std::int64_t{1}).set("index_dtype", eqx::int32),
       AbstractArray{Shape{2}, eqx::int32}, ""},
      {&eqx::prim::argmin, {f32_23}, Params{}.set("axis", std::int64_t{0}).set("index_dtype", eqx::float32), std::nullopt,
       "eqx::argmin: index_dtype is float32; indices are int32 or uint32"},
      {&eqx::prim::convert, {f32_23}, Params{}.set("new_dtype", eqx::uint32), AbstractArray{Shape{2, 3}, eqx::uint32},
       ""},
      {&eqx::prim::select, {b_23, {Shape{3}, eqx::float64}, {Shape{}, eqx::float64}}, Params{},
       AbstractArray{Shape{2, 3}, eqx::float64}, ""},
      {&eqx::prim::select, {f32_23, f32_23, f32_23}, Params{}, std::nullopt, "eqx::where: the condition has dtype"},
      {&eqx::prim::select, {b_23, f32_23, {Shape{2, 3}, eqx::int32}}, Params{}, std::nullopt,
       "eqx::select: branches have dtypes"},
      {&eqx::prim::select, {b_23, {Shape{4}, eqx::float32}, f32_23}, Params{}, std::nullopt,
       "eqx::where: shapes [2,3] and [4] cannot be broadcast"},
  };
  for (const Case& c : cases) {
    INFO(c.prim->name() << " on " << c.in[0].str());
    std::string type_error, rule_error;
    std::optional<AbstractArray> type;
    std::vector<AbstractArray> rule;
    try {
      type = c.prim->output_type(c.in, c.params);
    } catch (const eqx::Error& e) {
      type_error = e.what();
    }
    try {
      rule = c.prim->shape_rule(c.in, c.params);
    } catch (const eqx::Error& e) {
      rule_error = e.what();
    }
    CHECK(type_error == rule_error);
    if (c.type) {
      REQUIRE(type.has_value());
      CHECK(*type == *c.type);
      REQUIRE(rule.size() == 1);
      CHECK(rule[0] == *c.type);
    } else {
      CHECK_THAT(type_error, Catch::Matchers::StartsWith(c.error));
    }
  }
}

TEST_CASE("bind1 of a primitive with two outputs gives the first, eagerly", "[prim][eager]") {
  const eqx::Array keys = eqx::array({3, 1, 2});
  const eqx::Array values = eqx::array({30.f, 10.f, 20.f});
  const eqx::Params params = eqx::Params{}.set("dimension", std::int64_t{0});
  const eqx::Array first = eqx::bind1(eqx::prim::sort_key_val, {keys, values}, params);
  const std::vector<eqx::Array> both = eqx::bind(eqx::prim::sort_key_val, std::vector<eqx::Array>{keys, values}, params);
  REQUIRE(both.size() == 2);
  CHECK(first.to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 2, 3});
  CHECK(both[0].to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 2, 3});
  CHECK(both[1].to_vector<float>() == std::vector<float>{10, 20, 30});
}

/// A primitive with no outputs (a program's own side effect, say).
struct NoOutputsPrim final : eqx::Primitive {
  std::string_view name() const override { return "test_no_outputs"; }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray>, const eqx::Params&) const override {
    return {};
  }
  void kernel(std::span<const eqx::detail::View>, std::span<const eqx::detail::View>,
              const eqx::Params&) const override {}
};

TEST_CASE("bind1 of a primitive with no outputs throws, naming it, eagerly and under a trace", "[prim][eager][error]") {
  const NoOutputsPrim no_outputs;
  const char* const message =
      "eqx::test_no_outputs: bind1 of a primitive with no outputs; call eqx::bind, which returns its (empty) outputs";
  CHECK(eqx::bind(no_outputs, std::vector<eqx::Array>{eqx::array(1.f)}).empty());
  CHECK_THROWS_MATCHES(eqx::bind1(no_outputs, {eqx::array(1.f)}), eqx::ValueError, Catch::Matchers::Message(message));
  auto traced = eqx::filter_make_jaxpr([&](const eqx::Array& x) { return eqx::bind1(no_outputs, {x}); });
  CHECK_THROWS_MATCHES(traced(eqx::array(1.f)), eqx::ValueError, Catch::Matchers::Message(message));
}

TEST_CASE("eager results made on one thread and freed on another keep their values", "[prim][eager]") {
  // Each result's handle and small buffer come from the making thread's
  // cache of small blocks and go back to the freeing thread's (or to the
  // allocator once that cache is full): both must stay usable. The pool is
  // switched on, so this runs under AddressSanitizer too.
  eqx_test::PoolScope scope(std::size_t{64} << 20);
  std::vector<eqx::Array> made;
  std::thread maker([&] {
    eqx::Array x = eqx::arange(16) / 16.0f;
    for (int i = 0; i < 64; ++i) made.push_back(x = x * 2.0f - 1.0f);
  });
  maker.join();
  float want = 15.0f / 16.0f;
  for (int i = 0; i < 64; ++i) want = want * 2.0f - 1.0f;
  CHECK(made.back().to_vector<float>()[15] == Approx(want));
  std::thread freer([&] { made.clear(); });
  freer.join();
  eqx::Array y = eqx::array(2.5f);
  for (int i = 0; i < 100; ++i) y = y + 1.0f;  // this thread's cache, after the other threads
  CHECK(y.item<float>() == 102.5f);
}

}  // namespace prim_primitive_test
