// Tracing, graph printing, eval_graph, the passes (each shown on a printed
// graph) and Plan buffer assignment.

#include <catch2/catch.hpp>

#include <string>
#include <tuple>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/ir/eval.hpp>
#include <eqx/ir/optimize.hpp>
#include <eqx/ir/plan.hpp>
#include <eqx/ir/print.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace ir_ir_test {

using eqx::Array;
using eqx::Graph;
using eqx_test::check;
using eqx_test::message_of;

namespace {

Array f32(std::vector<float> v, eqx::Shape s) { return eqx::array(v, s); }

template <class F, class... Args>
Graph graph_of(F f, const Args&... args) {
  return eqx::filter_make_jaxpr(f)(args...).graph;
}

}  // namespace

// ------------------------------------------------------------------ tracing

TEST_CASE("make_jaxpr prints a matmul plus a literal as a jaxpr", "[ir][trace]") {
  auto f = [](const Array& a, const Array& b) { return eqx::matmul(a, b) + 1.0f; };
  auto j = eqx::filter_make_jaxpr(f)(eqx::ones({3, 2}), eqx::ones({2}));
  CHECK(fmt::format("{}", j) ==
        "{ lambda ; a:f32[3,2] b:f32[2]. let\n"
        "    c:f32[3] = dot_general[lhs_contracting_dimensions=(1,) rhs_contracting_dimensions=(0,) "
        "lhs_batch_dimensions=() rhs_batch_dimensions=()] a b\n"
        "    d:f32[3] = add c 1.0:f32[]\n"
        "  in (d) }");
  REQUIRE(j.out_types().size() == 1);
  CHECK(j.out_types()[0].str() == "f32[3]");
  CHECK(j.in_types()[1].str() == "f32[2]");
  CHECK(j.out_struct.is_abstract());
  CHECK(j.out_struct.shape() == eqx::Shape{3});
  // Shape-only, not a tracer left over from the ended trace.
  CHECK(message_of<eqx::ConcretizationError>([&] { (void)j.out_struct.item<float>(); })
            .find("on a shape-only Array f32[3] (from eqx::filter_eval_shape, eqx::filter_make_jaxpr or "
                  "eqx::shape_dtype_struct)") != std::string::npos);
  CHECK_FALSE(j.out_static.has_value());
}

TEST_CASE("closed-over Arrays become constants, one per buffer and one per literal value", "[ir][trace]") {
  const Array w = f32({1, 2, 3}, {3});
  auto f = [&](const Array& x) { return (x * w + w) * 2.0f + 2.0f; };
  CHECK(eqx::to_string(graph_of(f, eqx::zeros({3}))) ==
        "{ lambda a:f32[3] ; b:f32[3]. let\n"
        "    c:f32[3] = mul b a\n"
        "    d:f32[3] = add c a\n"
        "    e:f32[3] = mul d 2.0:f32[]\n"
        "    f:f32[3] = add e 2.0:f32[]\n"
        "  in (f) }");
}

TEST_CASE("a function with no equations returns its input or a constant", "[ir][trace]") {
  CHECK(eqx::to_string(graph_of([](const Array& x) { return x; }, eqx::zeros({2}))) ==
        "{ lambda ; a:f32[2]. let\n  in (a) }");
  const Array c = eqx::ones({2}, eqx::int32);
  auto g = graph_of([&](const Array&) { return std::tuple{c, 7}; }, eqx::zeros({2}));
  CHECK(eqx::to_string(g) == "{ lambda a:i32[2] ; b:f32[2]. let\n  in (a) }");
}

TEST_CASE("static outputs and output structure come from the trace", "[ir][trace]") {
  auto f = [](const Array& x, int n) { return std::tuple{x * 2.0f, n + 1, Array{}, eqx::sum(x)}; };
  auto j = eqx::filter_make_jaxpr(f)(eqx::zeros({4, 2}), 41);
  CHECK(std::get<1>(j.out_static) == 42);
  CHECK_FALSE(std::get<0>(j.out_static).has_value());
  CHECK(std::get<0>(j.out_struct).shape() == eqx::Shape{4, 2});
  CHECK(std::get<3>(j.out_struct).shape() == eqx::Shape{});
  CHECK_FALSE(std::get<2>(j.out_struct).has_value());
  CHECK(j.out_types().size() == 2);
}

TEST_CASE("an abstract Array prints its type and refuses to give values", "[ir][trace]") {
  std::string printed;
  auto f = [&](const Array& x) {
    printed = fmt::format("{}", x);
    CHECK(x.is_abstract());
    auto where_hint = [](const std::string& m) { return m.find("eqx::where") != std::string::npos; };
    CHECK(where_hint(message_of<eqx::ConcretizationError>([&] { (void)x.item<float>(); })));
    CHECK(where_hint(message_of<eqx::ConcretizationError>([&] { (void)x.to_vector<float>(); })));
    CHECK(where_hint(message_of<eqx::ConcretizationError>([&] { (void)x.data<float>(); })));
    std::string m = message_of<eqx::ConcretizationError>([&] {
      if (eqx::sum(x) > 0.0f) return;
    });
    CHECK(m.find("converting to bool on an abstract (traced) Array bool[]") != std::string::npos);
    CHECK(m.find("eqx::cond") != std::string::npos);
    CHECK(m.find("eqx::error_if") != std::string::npos);
    return x;
  };
  graph_of(f, eqx::zeros({3}));
  CHECK(printed == "Traced<f32[3]>");
}

TEST_CASE("a concrete one-element Array converts to bool; a larger one does not", "[ir][trace]") {
  CHECK(static_cast<bool>(eqx::array(2.0f) > 1.0f));
  CHECK_FALSE(static_cast<bool>(eqx::array(0.0f) > 1.0f));
  CHECK(message_of<eqx::ValueError>([] { (void)static_cast<bool>(eqx::ones({2})); }) ==
        "eqx: the truth value of an Array with shape [2] is ambiguous; reduce it first with eqx::any or eqx::all");
}

TEST_CASE("a tracer used after its trace ends is a leaked tracer", "[ir][trace]") {
  Array leaked;
  graph_of([&](const Array& x) { return leaked = x * 2.0f; }, eqx::zeros({2}));
  std::string m = message_of<eqx::TraceError>([&] { (void)(leaked + 1.0f); });
  CHECK(m.rfind("eqx::add: input 0 is an abstract Array from a trace that has already finished (a leaked tracer)", 0) == 0);
  CHECK(m.find("return it as an output instead") != std::string::npos);
  // ... also inside a later, unrelated trace.
  m = message_of<eqx::TraceError>([&] { graph_of([&](const Array& y) { return y + leaked; }, eqx::zeros({2})); });
  CHECK(m.find("leaked tracer") != std::string::npos);
}

TEST_CASE("values of an enclosing trace are captured, and eval_graph re-binds into it", "[ir][trace]") {
  Graph inner_graph;
  const Array example = eqx::zeros({2});  // made outside: inside the trace, zeros() would be an equation
  auto outer = [&](const Array& x) {
    // The inner function closes over the outer tracer x.
    inner_graph = graph_of([&](const Array& y) { return y * x; }, example);
    std::vector<Array> in{x + 1.0f};
    return eqx::eval_graph(inner_graph, in)[0];
  };
  Graph g = graph_of(outer, eqx::zeros({2}));
  CHECK(eqx::to_string(inner_graph) ==
        "{ lambda a:f32[2] ; b:f32[2]. let\n"
        "    c:f32[2] = mul b a\n"
        "  in (c) }");
  REQUIRE(inner_graph.consts.size() == 1);
  CHECK(inner_graph.consts[0].is_abstract());  // captured, not concrete
  CHECK(eqx::to_string(g) ==
        "{ lambda ; a:f32[2]. let\n"
        "    b:f32[2] = add a 1.0:f32[]\n"
        "    c:f32[2] = mul b a\n"
        "  in (c) }");
  // A graph with captured values cannot be compiled on its own.
  CHECK(message_of<eqx::TraceError>([&] { eqx::Plan p(inner_graph); }).find("captures a value of an enclosing trace") !=
        std::string::npos);
}

TEST_CASE("eval_graph runs a graph eagerly and checks its inputs", "[ir][trace]") {
  auto f = [](const Array& a, const Array& b) { return eqx::exp(a) * b - 1.0f; };
  const Array a = f32({0, 1, 2}, {3}), b = f32({1, 2, 3}, {3});
  Graph g = graph_of(f, a, b);
  std::vector<Array> in{a, b};
  check(eqx::eval_graph(g, in)[0], {3}, f(a, b).to_vector<float>());
  std::vector<Array> bad{a, eqx::ones({4})};
  CHECK(message_of<eqx::ShapeError>([&] { eqx::eval_graph(g, bad); }) ==
        "eqx::eval_graph: input 1 should be f32[3], got f32[4]");
  std::vector<Array> one{a};
  CHECK(message_of<eqx::ValueError>([&] { eqx::eval_graph(g, one); }) ==
        "eqx::eval_graph: the graph has 2 inputs but 1 Arrays were given");
}

TEST_CASE("TraceScope records what is bound while it lives, and rejects empty Arrays", "[ir][trace]") {
  eqx::TraceScope scope;
  Array x = scope.input({eqx::Shape{2}, eqx::float32});
  CHECK(message_of<eqx::ValueError>([&] { eqx::bind1(eqx::prim::add, {x, Array{}}); }) ==
        "eqx::add: input 1 is an empty Array (None); a filtered-out leaf cannot be used in an operation");
  Array y = eqx::exp(x);
  CHECK(message_of<eqx::ValueError>([&] { scope.finish({y, Array{}}); }) ==
        "eqx: output 1 of the traced function is an empty Array (None)");
}

TEST_CASE("TraceScope::finish gives the graph and ends the trace", "[ir][trace]") {
  Graph g;
  {
    eqx::TraceScope scope;
    Array x = scope.input({eqx::Shape{2}, eqx::float32});
    g = scope.finish({eqx::exp(x)});
    check(eqx::exp(eqx::zeros({2})), {2}, std::vector<float>{1, 1});  // eager again
  }
  CHECK(eqx::to_string(g) == "{ lambda ; a:f32[2]. let\n    b:f32[2] = exp a\n  in (b) }");
}

// ------------------------------------------------------------------- passes

TEST_CASE("dce removes unused equations and constants", "[ir][passes]") {
  const Array w = eqx::ones({3});
  auto f = [&](const Array& x) {
    Array unused = eqx::exp(x) + w;
    (void)unused;
    return x * 3.0f;
  };
  Graph g = graph_of(f, eqx::zeros({3}));
  CHECK(eqx::to_string(g) ==
        "{ lambda a:f32[3] ; b:f32[3]. let\n"
        "    c:f32[3] = exp b\n"
        "    d:f32[3] = add c a\n"
        "    e:f32[3] = mul b 3.0:f32[]\n"
        "  in (e) }");
  CHECK(eqx::to_string(eqx::dce(g)) ==
        "{ lambda ; a:f32[3]. let\n"
        "    b:f32[3] = mul a 3.0:f32[]\n"
        "  in (b) }");
}

TEST_CASE("cse merges equal equations, including chains of them", "[ir][passes]") {
  auto f = [](const Array& x) {
    Array a = eqx::sum(eqx::exp(x), 0);  // sequenced: operand order in `a + b * c` is unspecified in C++
    Array b = eqx::sum(eqx::exp(x), 0);
    Array c = eqx::sum(eqx::exp(x), 1);
    return a + b * c;
  };
  Graph g = eqx::dce(eqx::cse(graph_of(f, eqx::zeros({2, 2}))));
  CHECK(eqx::to_string(g) ==
        "{ lambda ; a:f32[2,2]. let\n"
        "    b:f32[2,2] = exp a\n"
        "    c:f32[2] = reduce_sum[axes=(0,)] b\n"
        "    d:f32[2] = reduce_sum[axes=(1,)] b\n"
        "    e:f32[2] = mul c d\n"
        "    f:f32[2] = add c e\n"
        "  in (f) }");
}

TEST_CASE("constant folding evaluates constant subexpressions once", "[ir][passes]") {
  const Array w = f32({1, 2, 3}, {3});
  auto f = [&](const Array& x) { return x + eqx::exp(w * 0.0f) * 5.0f; };
  Graph g = eqx::dce(eqx::fold_constants(graph_of(f, eqx::zeros({3}))));
  CHECK(eqx::to_string(g) ==
        "{ lambda a:f32[3] ; b:f32[3]. let\n"
        "    c:f32[3] = add b a\n"
        "  in (c) }");
  REQUIRE(g.consts.size() == 1);
  check(g.consts[0], {3}, std::vector<float>{5, 5, 5});
}

TEST_CASE("constant folding leaves large broadcasts to run time", "[ir][passes]") {
  auto f = [](const Array& x) { return x + eqx::full({1000, 1000}, 2.0f); };
  Graph g = eqx::dce(eqx::fold_constants(graph_of(f, eqx::zeros({1000, 1000}))));
  CHECK(eqx::to_string(g) ==
        "{ lambda ; a:f32[1000,1000]. let\n"
        "    b:f32[1000,1000] = broadcast_in_dim[shape=(1000, 1000) broadcast_dimensions=()] 2.0:f32[]\n"
        "    c:f32[1000,1000] = add a b\n"
        "  in (c) }");
}

TEST_CASE("simplify removes exact identities only", "[ir][passes]") {
  SECTION("x*1, 1*x, x/1, x + -0.0, x - 0.0 go; x + 0.0 stays (it turns -0.0 into +0.0)") {
    auto f = [](const Array& x) { return ((((x * 1.0f) / 1.0f + -0.0f) - 0.0f) * 1.0f) + 0.0f; };
    auto g = [](const Array& x) { return 1.0f * x; };
    CHECK(eqx::to_string(eqx::dce(eqx::simplify(graph_of(f, eqx::zeros({3}))))) ==
          "{ lambda ; a:f32[3]. let\n"
          "    b:f32[3] = add a 0.0:f32[]\n"
          "  in (b) }");
    CHECK(eqx::to_string(eqx::dce(eqx::simplify(graph_of(g, eqx::zeros({3}))))) ==
          "{ lambda ; a:f32[3]. let\n  in (a) }");
  }
  SECTION("integer x + 0 and x - 0 go") {
    auto f = [](const Array& x) { return (x + 0) - 0; };
    CHECK(eqx::to_string(eqx::dce(eqx::simplify(graph_of(f, eqx::zeros({3}, eqx::int32))))) ==
          "{ lambda ; a:i32[3]. let\n  in (a) }");
  }
  SECTION("x * ones stays when the ones broadcast x to a larger shape") {
    auto f = [](const Array& x) { return x * eqx::ones({2, 3}); };
    Graph g = eqx::dce(eqx::simplify(eqx::fold_constants(graph_of(f, eqx::zeros({3})))));
    CHECK(eqx::to_string(g) ==
          "{ lambda a:f32[2,3] ; b:f32[3]. let\n"
          "    c:f32[2,3] = mul b a\n"
          "  in (c) }");
  }
  SECTION("reshape of reshape is one reshape; back to the same shape is none") {
    auto f = [](const Array& x) { return std::tuple{eqx::reshape(eqx::reshape(x, {6}), {3, 2}), eqx::reshape(eqx::reshape(x, {6}), {2, 3})}; };
    CHECK(eqx::to_string(eqx::dce(eqx::simplify(graph_of(f, eqx::zeros({2, 3}))))) ==
          "{ lambda ; a:f32[2,3]. let\n"
          "    b:f32[3,2] = reshape[new_sizes=(3, 2)] a\n"
          "  in (b, a) }");
  }
  SECTION("transposes compose; the identity permutation goes") {
    auto f = [](const Array& x) {
      Array t = eqx::transpose(x, {1, 2, 0});
      return std::tuple{eqx::transpose(t, {2, 0, 1}), eqx::transpose(t, {1, 0, 2})};
    };
    CHECK(eqx::to_string(eqx::dce(eqx::simplify(graph_of(f, eqx::zeros({2, 3, 4}))))) ==
          "{ lambda ; a:f32[2,3,4]. let\n"
          "    b:f32[4,3,2] = transpose[permutation=(2, 1, 0)] a\n"
          "  in (a, b) }");
  }
  SECTION("convert to the same dtype goes") {
    auto f = [](const Array& x) {
      return eqx::bind1(eqx::prim::convert, {x}, eqx::Params{}.set("new_dtype", eqx::float32)) * 2.0f;
    };
    CHECK(eqx::to_string(eqx::dce(eqx::simplify(graph_of(f, eqx::zeros({3}))))) ==
          "{ lambda ; a:f32[3]. let\n"
          "    b:f32[3] = mul a 2.0:f32[]\n"
          "  in (b) }");
  }
}

TEST_CASE("transposes fold into the dot_generals next to them", "[ir][passes]") {
  const Array x = f32({1, 2, 3, 4, 5, 6}, {2, 3}), w = f32({1, -1, 2, 0.5f, 3, -2, 1, 1, 0, 4, -3, 2}, {4, 3});
  // Both forms of x @ w.T below fold to this one dot; its values by hand:
  // rows (1,2,3) and (4,5,6) dotted with w's rows.
  const std::string x_wT_graph =
      "{ lambda ; a:f32[2,3] b:f32[4,3]. let\n"
      "    c:f32[2,4] = dot_general[lhs_contracting_dimensions=(1,) rhs_contracting_dimensions=(1,) "
      "lhs_batch_dimensions=() rhs_batch_dimensions=()] a b\n"
      "  in (c) }";
  const std::vector<float> x_wT{5, 0.5f, 3, 4, 11, 5, 9, 13};
  SECTION("x @ w.T reads w transposed: no transpose is left") {
    auto f = [](const Array& x, const Array& w) { return eqx::matmul(x, eqx::transpose(w)); };
    const Graph g = eqx::dce(eqx::fold_transposes(graph_of(f, x, w)));
    CHECK(eqx::to_string(g) == x_wT_graph);
    check(eqx::eval_graph(g, std::vector<Array>{x, w})[0], {2, 4}, x_wT);
  }
  SECTION("(a @ b).T is b.T @ a.T: one dot with the operands swapped") {
    auto f = [](const Array& x, const Array& w) { return eqx::transpose(eqx::matmul(w, eqx::transpose(x))); };
    const Graph g = eqx::dce(eqx::fold_transposes(graph_of(f, x, w)));
    CHECK(eqx::to_string(g) == x_wT_graph);
    check(eqx::eval_graph(g, std::vector<Array>{x, w})[0], {2, 4}, x_wT);
  }
  SECTION("kept when folding would reorder the dot's free axes, or the dot has another reader") {
    auto reorders = [](const Array& t, const Array& w) { return eqx::matmul(eqx::transpose(t, {1, 0, 2}), w); };
    const Graph g = eqx::dce(eqx::fold_transposes(graph_of(reorders, eqx::zeros({2, 3, 4}), eqx::zeros({4, 5}))));
    CHECK(eqx::to_string(g).find("transpose[permutation=(1, 0, 2)]") != std::string::npos);
    auto shared = [](const Array& a, const Array& b) {
      const Array d = eqx::matmul(a, b);
      return std::tuple{eqx::transpose(d), d};
    };
    const Graph h = eqx::dce(eqx::fold_transposes(graph_of(shared, eqx::zeros({2, 3}), eqx::zeros({3, 4}))));
    CHECK(eqx::to_string(h).find("transpose[permutation=(1, 0)]") != std::string::npos);
  }
  SECTION("batched dots fold too, and jit gives the eager values") {
    auto f = [](const Array& a, const Array& b) {
      return eqx::transpose(eqx::matmul(eqx::transpose(a, {0, 2, 1}), b), {0, 2, 1});
    };
    const Array a = eqx::reshape(eqx::arange(24) * 0.25f, {2, 3, 4}), b = eqx::reshape(eqx::arange(30) * 0.5f - 3.f, {2, 3, 5});
    const Graph g = eqx::optimize(graph_of(f, a, b));
    CHECK(eqx::to_string(g).find("transpose") == std::string::npos);
    const Array eager = f(a, b), jitted = eqx::filter_jit(f)(a, b);
    REQUIRE(jitted.shape() == eqx::Shape{2, 5, 4});
    CHECK(jitted.to_vector<float>() == eager.to_vector<float>());
  }
}

TEST_CASE("fusion turns an elementwise chain into one fused equation", "[ir][passes][fusion]") {
  auto f = [](const Array& x) { return eqx::tanh(x * 0.5f + 1.0f) * 0.5f; };
  CHECK(eqx::to_string(eqx::optimize(graph_of(f, eqx::zeros({8})))) ==
        "{ lambda ; a:f32[8]. let\n"
        "    b:f32[8] = fused[graph={ lambda ; c:f32[8] d:f32[] e:f32[]. let\n"
        "        f:f32[8] = mul c d\n"
        "        g:f32[8] = add f e\n"
        "        h:f32[8] = tanh g\n"
        "        i:f32[8] = mul h d\n"
        "      in (i) }] a 0.5:f32[] 1.0:f32[]\n"
        "  in (b) }");
}

TEST_CASE("fusion keeps a value that is needed outside the region as a second output", "[ir][passes][fusion]") {
  auto f = [](const Array& x, const Array& b) {
    Array y = eqx::exp(x + b);  // b is a row: [4] broadcast over [3,4]
    return std::tuple{y * 2.0f, eqx::sum(y)};
  };
  CHECK(eqx::to_string(eqx::optimize(graph_of(f, eqx::zeros({3, 4}), eqx::zeros({4})))) ==
        "{ lambda ; a:f32[3,4] b:f32[4]. let\n"
        "    c:f32[3,4] d:f32[3,4] = fused[graph={ lambda ; e:f32[3,4] f:f32[4] g:f32[]. let\n"
        "        h:f32[3,4] = add e f\n"
        "        i:f32[3,4] = exp h\n"
        "        j:f32[3,4] = mul i g\n"
        "      in (i, j) }] a b 2.0:f32[]\n"
        "    k:f32[] = reduce_sum[axes=(0, 1)] c\n"
        "  in (d, k) }");
}

TEST_CASE("fusion does not merge across a value computed from the region", "[ir][passes][fusion]") {
  // z needs s, which needs y: z cannot join y's region (that would be a cycle).
  auto f = [](const Array& x) {
    Array y = eqx::exp(x);
    Array s = eqx::sum(y);
    return eqx::log(y * s);
  };
  CHECK(eqx::to_string(eqx::optimize(graph_of(f, eqx::zeros({5})))) ==
        "{ lambda ; a:f32[5]. let\n"
        "    b:f32[5] = exp a\n"
        "    c:f32[] = reduce_sum[axes=(0,)] b\n"
        "    d:f32[5] = fused[graph={ lambda ; e:f32[5] f:f32[]. let\n"
        "        g:f32[5] = mul e f\n"
        "        h:f32[5] = log g\n"
        "      in (h) }] b c\n"
        "  in (d) }");
}

TEST_CASE("fused regions compute what the eager ops compute, over many tiles", "[ir][passes][fusion][threads]") {
  // 3 x 50000 elements: many tiles, and enough work to run on several threads.
  const Array x = eqx::random::normal(eqx::random::key(1), {3, 50000});
  const Array row = eqx::random::uniform(eqx::random::key(2), {50000});
  const Array col = eqx::random::uniform(eqx::random::key(3), {3, 1});
  auto f = [](const Array& x, const Array& row, const Array& col) {
    Array a = eqx::maximum(x * row + col, 0.0f);        // rows, general broadcast, scalar
    Array b = eqx::where(a > 0.5f, a, eqx::sin(x));     // select, bool intermediate
    return std::tuple{eqx::astype(b, eqx::float64) * 2.0, a};  // convert to a wider dtype
  };
  auto [want_b, want_a] = f(x, row, col);
  Graph g = eqx::optimize(graph_of(f, x, row, col));
  REQUIRE(g.equations.size() == 1);
  CHECK(g.equations[0].prim == &eqx::prim::fused);
  std::vector<Array> in{x, row, col};
  std::vector<Array> got = eqx::Plan(g).run(std::span<const Array>(in));
  check(got[0], {3, 50000}, want_b.to_vector<double>());
  check(got[1], {3, 50000}, want_a.to_vector<float>());
}

TEST_CASE("a fused operation reading one value twice frees its tile buffer once", "[ir][passes][fusion]") {
  // square(a) is mul a a; if a's buffer were freed twice, exp(b) and sin(b)
  // would share one buffer and the sum would be wrong.
  auto f = [](const Array& x) {
    Array b = eqx::square(eqx::exp(x));
    Array e = eqx::exp(b);
    Array s = eqx::sin(b);
    return e + s;
  };
  const Array x = eqx::linspace(-1.0f, 0.5f, 9);
  std::vector<float> want;
  for (float v : x.to_vector<float>()) {
    float b = std::exp(v) * std::exp(v);
    want.push_back(std::exp(b) + std::sin(b));
  }
  check(eqx::filter_jit(f)(x), {9}, want);
}

// --------------------------------------------------------------------- plan

TEST_CASE("Plan assigns intermediates to one arena by liveness", "[ir][plan]") {
  // Four reversals of 1024 floats (4096 bytes each): three intermediates, but
  // the first and third are never alive together, so two buffers suffice.
  auto f = [](const Array& x) { return eqx::flip(eqx::flip(eqx::flip(eqx::flip(x)))); };
  const Array x = eqx::astype(eqx::arange(1024), eqx::float32);
  eqx::Plan plan(eqx::optimize(graph_of(f, x)));
  eqx::MemoryStats m = plan.memory_stats();
  CHECK(m.num_instructions == 4);
  CHECK(m.num_intermediates == 3);
  CHECK(m.intermediate_bytes == 3 * 4096);
  CHECK(m.arena_bytes == 2 * 4096);
  CHECK(m.constant_bytes == 0);
  std::vector<Array> in{x};
  check(plan.run(std::span<const Array>(in))[0], {1024}, x.to_vector<float>());
}

TEST_CASE("Plan outputs may repeat, and may be inputs or constants", "[ir][plan]") {
  const Array c = f32({7, 8}, {2});
  auto f = [&](const Array& x) {
    Array y = x * 2.0f;
    return std::tuple{y, x, c, y};
  };
  const Array x = f32({1, 2}, {2});
  eqx::Plan plan(eqx::optimize(graph_of(f, x)));
  std::vector<Array> in{x};
  auto out = plan.run(std::span<const Array>(in));
  REQUIRE(out.size() == 4);
  check(out[0], {2}, std::vector<float>{2, 4});
  CHECK(out[1].same_storage(x));
  CHECK(out[2].same_storage(c));
  CHECK(out[3].same_storage(out[0]));
  CHECK(plan.memory_stats().arena_bytes == 0);
}

}  // namespace ir_ir_test
