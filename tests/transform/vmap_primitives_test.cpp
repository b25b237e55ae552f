// filter_vmap(f)(xs) == stack(f(example b) for every b) for every primitive
// of the foundation (prim/*.hpp): each batching rule checked against a loop.
//
// One table row per primitive and dtype (and per broadcasting pattern for
// the elementwise ops). A row gives each operand as a generator of example
// b's value. The driver runs the row under many in_axes patterns (see
// `patterns`): every operand mapped at axis 0, at axis 1, at the last axis
// (spelled -1 and as a positive index), each operand in turn unmapped
// (eqx::none: one value broadcast to every example) or the only one mapped,
// and nothing mapped (axis_size). The reference slices example b out of each
// mapped input (eqx::take at its axis), calls the row's function eagerly on
// it and stacks the results along the output axis.
//
// Results must match in shape, dtype and every value: bit-exact for integers
// and bools, exact for floats (NaN matches any NaN) except in rows with a
// Tol (see there): where the batched call runs a kernel whose floating-point
// evaluation legitimately differs from the per-example one.

#include <catch2/catch.hpp>
#include <eqx/eqx.hpp>

#include "check.hpp"
#include "primitive_names.hpp"
#include "primitive_rows.hpp"

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace transform_vmap_primitives_test {

namespace {

using eqx::Array;
using eqx_test::Arrays, eqx_test::I32s, eqx_test::U32s, eqx_test::dt_name, eqx_test::rnd, eqx_test::edge;
using eqx_test::kF, eqx_test::kNum, eqx_test::kInt, eqx_test::kBits, eqx_test::kAll;
using Fn = std::function<Arrays(const Arrays&)>;
using Un = std::function<Array(const Array&)>;
using Bin = std::function<Array(const Array&, const Array&)>;
using Ints = std::vector<std::int64_t>;
using eqx::bool_, eqx::float32, eqx::float64, eqx::int32, eqx::uint32, eqx::Params;

/// Example b's value of one operand.
using Gen = std::function<Array(std::int64_t b)>;
using Ops = std::vector<Gen>;

constexpr std::int64_t kBatch = 3;

// Float rows compare exactly except where the batched call runs a kernel
// whose floating-point evaluation legitimately differs from one example's:
//  - Tol::last_bits, relative to each value: the vectorised math functions
//    (exp, log, log1p, expm1, sqrt, rsqrt, sin, cos, tanh, logistic). Eigen
//    computes packets and a scalar tail differently in the last bit, and an
//    element in the tail of one example's array is inside a packet of the
//    batch (see jit_primitives_test);
//  - Tol::sum_order, relative to the largest magnitude of the output (the
//    error bound of a reordered sum, which a per-value bound is not where
//    terms cancel): float dot_general and conv, whose batched call is one
//    larger GEMM (more rows or columns) blocked and summed in another order,
//    and float reduce_sum / reduce_prod, whose packet accumulation depends on
//    where each reduced row starts in the buffer. Seen: reduce_prod f64 1 ulp;
//    conv f32 -0.757352 against -0.757354 (terms up to 9 cancelling).
enum class Tol { exact, last_bits, sum_order };
constexpr double kTolF32 = 1e-6, kTolF64 = 1e-12;

struct Row {
  std::string name;
  Fn fn;
  Ops operands;
  Tol tol = Tol::exact;
};

/// A row function from a lambda returning an Array or a std::vector<Array>.
template <class L>
Fn fn(L l) {
  return [l](const Arrays& x) -> Arrays {
    if constexpr (std::is_same_v<std::invoke_result_t<const L&, const Arrays&>, Array>) return {l(x)};
    else return l(x);
  };
}
// A row whose function is `expr` of the inputs `x`.
#define ROW(name, operands, ...) rows.push_back({name, fn([](const Arrays& x) { return __VA_ARGS__; }), operands})
#define SUM_ORDER_ROW(name, operands, ...) \
  rows.push_back({name, fn([](const Arrays& x) { return __VA_ARGS__; }), operands, Tol::sum_order})

unsigned fresh_seed() {
  static unsigned seed = 0;
  return 1000 * ++seed;  // examples add b: rows never share a seed
}

/// Random values (see eqx_test::rnd), different for every example.
Gen R(eqx::DType dt, eqx::Shape s, double lo = NAN, double hi = NAN) {
  const unsigned seed = fresh_seed();
  return [=](std::int64_t b) { return rnd(dt, s, seed + static_cast<unsigned>(b), lo, hi); };
}

/// The 16 edge values of dtype as [4, 4], rotated by 5 places per example.
Gen E(eqx::DType dt) {
  return [dt](std::int64_t b) {
    I32s order(16);
    for (std::int32_t i = 0; i < 16; ++i) order[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i + 5 * b) % 16);
    return eqx::reshape(eqx::take(edge(dt), eqx::array(order)), {4, 4});
  };
}

/// Valid indices into an axis of size n: [-n, n) for int32 (numpy's negative
/// indices), [0, n) for uint32.
Gen Idx(eqx::DType dt, eqx::Shape s, std::int64_t n) {
  const unsigned seed = fresh_seed();
  return [=](std::int64_t b) {
    std::mt19937 gen(seed + static_cast<unsigned>(b));
    std::uniform_int_distribution<std::int64_t> u(dt == int32 ? -n : 0, n - 1);
    std::vector<double> v(static_cast<std::size_t>(s.numel()));
    for (double& x : v) x = static_cast<double>(u(gen));
    return eqx::astype(eqx::array(v, s), dt);
  };
}

/// A random key per example.
Gen Key(std::uint32_t seed) {
  return [seed](std::int64_t b) { return eqx::random::key(seed + static_cast<std::uint32_t>(b)); };
}

/// A uint32 scalar per example (a Threefry key word).
Gen Word(std::uint32_t first) {
  return [first](std::int64_t b) { return eqx::array(first + 977u * static_cast<std::uint32_t>(b)); };
}

/// Unary elementwise rows: random values in the op's domain and edge values.
void unary_rows(std::vector<Row>& rows) {
  const std::vector<eqx_test::UnaryOp> ops = eqx_test::unary_ops();
  for (const eqx_test::UnaryOp& op : ops)
    for (eqx::DType dt : op.dts) {
      const std::string n = "unary/" + std::string(op.name) + "/" + dt_name(dt);
      Fn f = fn([g = op.f](const Arrays& x) { return g(x[0]); });
      const Tol tol = op.approx ? Tol::last_bits : Tol::exact;
      rows.push_back({n + "/edge", f, {E(dt)}, tol});
      rows.push_back({n + "/rnd", f, {eqx::is_floating(dt) ? R(dt, {3, 5, 7}, op.lo, op.hi) : R(dt, {3, 5, 7})}, tol});
    }
}

/// Binary elementwise rows: same shapes, scalar with matrix, a row against a
/// matrix, and [3, 1] against [1, 4] (each operand broadcasting).
void binary_rows(std::vector<Row>& rows) {
  const std::vector<eqx_test::BinaryOp> ops = eqx_test::binary_ops();
  for (const eqx_test::BinaryOp& op : ops)
    for (eqx::DType dt : op.dts) {
      const std::string n = "binary/" + std::string(op.name) + "/" + dt_name(dt);
      auto r = [&](const eqx::Shape& s) { return R(dt, s, op.lo, op.hi); };
      Fn f = fn([g = op.f](const Arrays& x) { return g(x[0], x[1]); });
      rows.push_back({n + "/same", f, {E(dt), r({4, 4})}});
      rows.push_back({n + "/scalar-matrix", f, {r({}), r({3, 4})}});
      rows.push_back({n + "/matrix-row", f, {r({3, 4}), r({4})}});
      rows.push_back({n + "/outer", f, {r({3, 1}), r({1, 4})}});
    }
}

/// select (same shapes and broadcasting) and convert between every pair of dtypes.
void select_convert_rows(std::vector<Row>& rows) {
  Fn where = fn([](const Arrays& x) { return eqx::where(x[0], x[1], x[2]); });
  for (eqx::DType dt : kAll) {
    const std::string n = "select/" + dt_name(dt);
    rows.push_back({n + "/same", where, {R(bool_, {4, 4}), E(dt), R(dt, {4, 4})}});
    rows.push_back({n + "/row-scalar", where, {R(bool_, {3, 4}), R(dt, {4}), R(dt, {})}});
    rows.push_back({n + "/outer", where, {R(bool_, {3, 1}), R(dt, {1, 4}), R(dt, {})}});
  }
  for (eqx::DType from : kAll)
    for (eqx::DType to : kAll) {
      if (from == to) continue;
      Fn f = fn([to](const Arrays& x) { return eqx::astype(x[0], to); });
      const std::string n = "convert/" + dt_name(from) + "->" + dt_name(to);
      rows.push_back({n + "/edge", f, {E(from)}});
      rows.push_back({n + "/rnd", f, {R(from, {2, 3, 5}, -1e3, 1e3)}});
    }
}

/// Layout primitives: reshape, transpose, broadcast_in_dim, slice, rev, pad, concatenate, iota.
void layout_rows(std::vector<Row>& rows) {
  ROW("reshape/i32", Ops{R(int32, {4, 6})}, eqx::reshape(x[0], {3, -1}));
  ROW("reshape/to-scalar", Ops{R(float32, {1, 1})}, eqx::reshape(x[0], {}));
  ROW("reshape/from-scalar-bool", Ops{R(bool_, {})}, eqx::reshape(x[0], {1, 1, 1}));
  ROW("transpose/f64-3d", Ops{R(float64, {2, 3, 4})}, eqx::transpose(x[0], {2, 0, 1}));
  ROW("transpose/u32-2d", Ops{R(uint32, {3, 5})}, eqx::transpose(x[0]));
  ROW("broadcast_in_dim/bool", Ops{R(bool_, {3, 1})}, eqx::broadcast_to(x[0], {2, 3, 4}));
  ROW("broadcast_in_dim/scalar", Ops{R(int32, {})}, eqx::broadcast_to(x[0], {2, 3}));
  ROW("broadcast_in_dim/middle-axis", Ops{R(float32, {2, 4})},
      eqx::bind1(eqx::prim::broadcast_in_dim, {x[0]},
                 Params{}.set("shape", Ints{2, 3, 4}).set("broadcast_dimensions", Ints{0, 2})));
  ROW("slice/f32-strided", Ops{R(float32, {5, 7})}, eqx::slice(x[0], {{1, -1}, {{}, {}, 2}}));
  ROW("slice/u32-negative-step", Ops{R(uint32, {3, 7})}, eqx::slice(x[0], {{}, {5, 0, -2}}));
  ROW("rev/i32", Ops{R(int32, {2, 3, 4})}, eqx::flip(x[0], {0, 2}));
  ROW("rev/bool-1d", Ops{R(bool_, {5})}, eqx::flip(x[0]));
  ROW("pad/i32-constant-value", Ops{R(int32, {3, 4})}, eqx::pad(x[0], {{1, 2}, {0, 3}}, 7));
  // The padding value is an operand: mapped (one value per example) or not.
  ROW("pad/f32-crop-interior-operand-value", (Ops{R(float32, {3, 4}), R(float32, {})}),
      eqx::bind1(eqx::prim::pad, {x[0], x[1]},
                 Params{}.set("low", Ints{-1, 2}).set("high", Ints{1, -1}).set("interior", Ints{1, 2})));
  ROW("pad/bool-operand-value", (Ops{R(bool_, {2, 3}), R(bool_, {})}),
      eqx::bind1(eqx::prim::pad, {x[0], x[1]},
                 Params{}.set("low", Ints{1, 0}).set("high", Ints{0, 2}).set("interior", Ints{0, 1})));
  ROW("concatenate/f32-axis1", (Ops{R(float32, {2, 3}), R(float32, {2, 5}), R(float32, {2, 1})}),
      eqx::concatenate({x[0], x[1], x[2]}, 1));
  ROW("concatenate/i32-axis0", (Ops{R(int32, {2, 3}), R(int32, {1, 3})}),
      eqx::concatenate({x[0], x[1]}, 0));
  ROW("concatenate/stack-bool", (Ops{R(bool_, {3, 2}), R(bool_, {3, 2})}), eqx::stack({x[0], x[1]}, 1));
  // iota has no inputs: inside a vmapped function it stays unmapped, and
  // is broadcast where it meets a mapped value or is an output.
  ROW("iota/plus-operand", Ops{R(float32, {3, 4})},
      x[0] + eqx::bind1(eqx::prim::iota, {},
                        Params{}.set("dtype", float32).set("shape", Ints{3, 4}).set("dimension", std::int64_t{1})));
  ROW("iota/arange-and-operand-outputs", Ops{R(int32, {5})}, (Arrays{eqx::arange(5), x[0] * eqx::arange(5)}));
  rows.push_back({"iota/arange-no-operands", fn([](const Arrays&) { return eqx::arange(12); }), {}});
}

/// Reductions and arg-extrema.
void reduce_rows(std::vector<Row>& rows) {
  SUM_ORDER_ROW("reduce_sum/f32-axis1", Ops{R(float32, {4, 6})}, eqx::sum(x[0], 1));
  ROW("reduce_sum/i32-all", Ops{R(int32, {7, 9})}, eqx::sum(x[0]));
  ROW("reduce_sum/bool-keepdims", Ops{R(bool_, {4, 6})}, eqx::sum(x[0], 1, true));
  SUM_ORDER_ROW("reduce_sum/mean-f64-axis0", Ops{R(float64, {5, 3})}, eqx::mean(x[0], 0));
  SUM_ORDER_ROW("reduce_prod/f64-keepdims", Ops{R(float64, {3, 5})}, eqx::prod(x[0], 1, true));
  ROW("reduce_prod/u32", Ops{R(uint32, {3, 5})}, eqx::prod(x[0], 0));
  ROW("reduce_max/f32-nan", Ops{E(float32)}, eqx::max(x[0], 0));
  ROW("reduce_max/bool", Ops{E(bool_)}, eqx::max(x[0], 1));
  ROW("reduce_min/u32-all", Ops{E(uint32)}, eqx::min(x[0]));
  ROW("reduce_min/f64", Ops{E(float64)}, eqx::min(x[0], 1));
  ROW("reduce_and/i32", Ops{E(int32)}, eqx::all(x[0], 1));
  ROW("reduce_or/bool", Ops{E(bool_)}, eqx::any(x[0], 0));
  ROW("argmax/f32-nan", Ops{E(float32)}, eqx::argmax(x[0], 1));
  ROW("argmax/bool-flat", Ops{E(bool_)}, eqx::argmax(x[0]));
  ROW("argmin/i32-ties", Ops{R(int32, {6, 5}, -3, 3)}, eqx::argmin(x[0], 0));
  ROW("argmin/f64-keepdims", Ops{R(float64, {4, 7})}, eqx::argmin(x[0], 1, true));
}

/// dot_general: lhs-only, rhs-only and both mapped come from the patterns;
/// the rows vary the dot's own batch and contracting axes.
void dot_rows(std::vector<Row>& rows) {
  SUM_ORDER_ROW("dot_general/matmul-f32", (Ops{R(float32, {4, 5}), R(float32, {5, 3})}),
             eqx::matmul(x[0], x[1]));
  SUM_ORDER_ROW("dot_general/batch-dims-f64", (Ops{R(float64, {2, 3, 4}), R(float64, {2, 4, 5})}),
             eqx::matmul(x[0], x[1]));
  ROW("dot_general/matvec-i32", (Ops{R(int32, {3, 4}), R(int32, {4})}), eqx::matmul(x[0], x[1]));
  ROW("dot_general/vecvec-u32", (Ops{R(uint32, {6}), R(uint32, {6})}), eqx::dot(x[0], x[1]));
  ROW("dot_general/u32-broadcast-stack", (Ops{R(uint32, {3, 4}), R(uint32, {2, 4, 5})}),
      eqx::matmul(x[0], x[1]));
  SUM_ORDER_ROW("dot_general/inner-batch-dims-f32", (Ops{R(float32, {3, 2, 4}), R(float32, {4, 2, 5})}),
             eqx::dot_general(x[0], x[1], {{2}, {0}}, {{1}, {1}}));
  SUM_ORDER_ROW("dot_general/contract-leading-axes-f64", (Ops{R(float64, {5, 4}), R(float64, {5, 3})}),
             eqx::dot_general(x[0], x[1], {{0}, {0}}, {{}, {}}));
  SUM_ORDER_ROW("dot_general/two-contracting-one-batch-f32",
             (Ops{R(float32, {2, 3, 4, 2}), R(float32, {4, 2, 3, 5})}),
             eqx::dot_general(x[0], x[1], {{1, 2}, {2, 0}}, {{3}, {1}}));
}

/// gather and scatter_add: operand-only, indices-only and both mapped come
/// from the patterns; int32 indices include negative ones.
void indexing_rows(std::vector<Row>& rows) {
  ROW("gather/take-axis1-negative-f32", (Ops{R(float32, {4, 5}), Idx(int32, {2, 3}, 5)}),
      eqx::take(x[0], x[1], 1));
  ROW("gather/take-axis0-u32-indices-bool", (Ops{R(bool_, {6, 2}), Idx(uint32, {4}, 6)}),
      eqx::take(x[0], x[1], 0));
  ROW("gather/take-last-axis-3d-i32", (Ops{R(int32, {2, 3, 4}), Idx(int32, {2}, 4)}),
      eqx::take(x[0], x[1], 2));
  ROW("gather/take-scalar-index-f64", (Ops{R(float64, {3, 4}), Idx(int32, {}, 4)}),
      eqx::take(x[0], x[1], 1));
  ROW("gather/take-flat-u32", (Ops{R(int32, {3, 4}), Idx(uint32, {4}, 12)}), eqx::take(x[0], x[1]));
  ROW("scatter_add/f32-axis0-repeated", (Ops{R(float32, {5, 3}), Idx(int32, {6}, 5), R(float32, {6, 3})}),
      eqx::bind1(eqx::prim::scatter_add, {x[0], x[1], x[2]}, Params{}.set("axis", std::int64_t{0})));
  ROW("scatter_add/i32-axis1-2d-indices",
      (Ops{R(int32, {2, 4}), Idx(uint32, {2, 3}, 4), R(int32, {2, 2, 3})}),
      eqx::bind1(eqx::prim::scatter_add, {x[0], x[1], x[2]}, Params{}.set("axis", std::int64_t{1})));
  ROW("scatter_add/f64-axis1-of-3d", (Ops{R(float64, {2, 3, 2}), Idx(int32, {4}, 3), R(float64, {2, 4, 2})}),
      eqx::bind1(eqx::prim::scatter_add, {x[0], x[1], x[2]}, Params{}.set("axis", std::int64_t{1})));
}

/// conv_general_dilated (lhs-only, rhs-only, both mapped from the patterns,
/// feature_group_count 1, 2 and depthwise) and the window reductions.
void conv_window_rows(std::vector<Row>& rows) {
  SUM_ORDER_ROW("conv/2d-groups1-f32", (Ops{R(float32, {2, 3, 5, 5}), R(float32, {4, 3, 3, 2})}),
             eqx::conv(x[0], x[1], {1, 1}, "VALID"));
  SUM_ORDER_ROW("conv/2d-strided-same-dilated-groups2-f32",
             (Ops{R(float32, {2, 4, 7, 6}), R(float32, {6, 2, 3, 3})}),
             eqx::conv(x[0], x[1], {2, 1}, "SAME", {}, {1, 2}, 2));
  SUM_ORDER_ROW("conv/1d-lhs-dilation-groups2-f64", (Ops{R(float64, {1, 4, 7}), R(float64, {4, 2, 3})}),
             eqx::conv(x[0], x[1], {1}, eqx::Padding{{1, 2}}, {2}, {}, 2));
  SUM_ORDER_ROW("conv/depthwise-valid-f32", (Ops{R(float32, {1, 3, 5, 5}), R(float32, {3, 1, 2, 2})}),
             eqx::conv(x[0], x[1], {}, "VALID", {}, {}, 3));
  ROW("reduce_window_max/f32-same", Ops{R(float32, {2, 3, 6, 5})},
      eqx::reduce_window(x[0], "max", {1, 1, 3, 2}, {1, 1, 2, 2}, "SAME"));
  ROW("reduce_window_max/u32-max_pool", Ops{R(uint32, {1, 2, 6, 6})}, eqx::max_pool(x[0], {2, 2}, {2, 2}));
  // reduce_window_max's JVP and VJP primitives, on a padded, overlapping, strided window ([2,5,6] -> [2,6,3]).
  ROW("select_and_gather_add/f32-padded-overlap", (Ops{R(float32, {2, 5, 6}), R(float32, {2, 5, 6})}),
      eqx::bind1(eqx::prim::select_and_gather_add, {x[0], x[1]}, eqx::detail::window_params({1, 2, 3}, {1, 1, 2}, {0, 0, 1, 1, 0, 1}, {1, 1, 1})));
  ROW("select_and_scatter_add/f64-padded-overlap", (Ops{R(float64, {2, 6, 3}), R(float64, {2, 5, 6})}),
      eqx::bind1(eqx::prim::select_and_scatter_add, {x[0], x[1]}, eqx::detail::window_params({1, 2, 3}, {1, 1, 2}, {0, 0, 1, 1, 0, 1}, {1, 1, 1})));
  ROW("reduce_window_sum/i32-dilated-padded", Ops{R(int32, {5, 7})},
      eqx::reduce_window(x[0], "sum", {2, 2}, {1, 2}, eqx::Padding{{1, 0}, {2, 1}}, {1, 2}));
  ROW("reduce_window_sum/avg_pool-f64", Ops{R(float64, {1, 2, 5, 5})}, eqx::avg_pool(x[0], {3, 3}, {1, 1}, "SAME"));
}

/// eqx::random (threefry2x32, shifts, rem, bitcast_convert_type, erf_inv,
/// sort_key_val) and the bitcasts and sorts on their own.
void random_rows(std::vector<Row>& rows) {
  ROW("threefry2x32/public", (Ops{Key(42), Key(1000)}), eqx::random::threefry2x32(x[0], x[1]));
  // Scalar key words (mapped or shared) spread over each example's counters.
  ROW("threefry2x32/scalar-keys", (Ops{Word(3), Word(9), R(uint32, {5}, 0, 4e9), R(uint32, {5}, 0, 4e9)}),
      eqx::bind(eqx::prim::threefry2x32, x));
  ROW("threefry2x32/scalar-counters", (Ops{Word(5), Word(6), Word(7), Word(8)}),
      eqx::bind(eqx::prim::threefry2x32, x));
  ROW("threefry2x32/full-keys-2d", (Ops{R(uint32, {2, 3}, 0, 4e9), R(uint32, {2, 3}, 0, 4e9),
                                                     R(uint32, {2, 3}, 0, 4e9), R(uint32, {2, 3}, 0, 4e9)}),
      eqx::bind(eqx::prim::threefry2x32, x));
  ROW("random/split", Ops{Key(1)}, eqx::random::split(x[0], 3));
  ROW("random/fold_in", Ops{Key(2)}, eqx::random::fold_in(x[0], 7));
  ROW("random/bits", Ops{Key(3)}, eqx::random::bits(x[0], {5, 2}));
  ROW("random/uniform-f64", Ops{Key(4)}, eqx::random::uniform(x[0], {4, 3}, float64, -2, 3));
  ROW("random/normal-f32", Ops{Key(5)}, eqx::random::normal(x[0], {7}));
  ROW("random/randint", Ops{Key(6)}, eqx::random::randint(x[0], {2, 5}, -7, 1000));
  ROW("random/bernoulli-array-p", (Ops{Key(7), R(float32, {6}, 0, 1)}),
      eqx::random::bernoulli(x[0], x[1], {4, 6}));
  ROW("random/permutation-n", Ops{Key(8)}, eqx::random::permutation(x[0], 10));
  ROW("random/permutation-rows", (Ops{Key(9), R(float32, {6, 3})}), eqx::random::permutation(x[0], x[1]));
  ROW("sort_key_val/ties-dim1", (Ops{R(int32, {4, 6}, -2, 2), R(float32, {4, 6})}),
      eqx::bind(eqx::prim::sort_key_val, x, Params{}.set("dimension", std::int64_t{1})));
  ROW("sort_key_val/u32-keys-dim0-f64-values", (Ops{R(uint32, {5, 2}, 0, 4), R(float64, {5, 2})}),
      eqx::bind(eqx::prim::sort_key_val, x, Params{}.set("dimension", std::int64_t{0})));
  auto bitcast = [](eqx::DType to) {
    return fn([to](const Arrays& x) {
      return eqx::bind1(eqx::prim::bitcast_convert_type, {x[0]}, Params{}.set("new_dtype", to));
    });
  };
  rows.push_back({"bitcast_convert_type/f32->u32", bitcast(uint32), {E(float32)}});
  rows.push_back({"bitcast_convert_type/i32->f32", bitcast(float32), {E(int32)}});
  rows.push_back({"bitcast_convert_type/f64->u32-adds-axis", bitcast(uint32), {E(float64)}});
  rows.push_back({"bitcast_convert_type/u32->f64-drops-axis", bitcast(float64), {R(uint32, {3, 2}, 0, 4e9)}});
}

/// The primitives beyond the foundation with batching rules: stop_gradient,
/// checkpoint (its body is batched) and optimization_barrier.
void transform_rows(std::vector<Row>& rows) {
  ROW("stop_gradient/f32", Ops{R(float32, {3, 4})}, eqx::stop_gradient(x[0]) * 2.0f);
  ROW("checkpoint/two-operands", (Ops{R(float32, {3, 4}), R(float32, {4})}), [&] {
    auto block = eqx::filter_checkpoint([](const Array& h, const Array& b) { return eqx::tanh(h) * 2.0f + b; });
    return block(x[0], x[1]);
  }());
  ROW("optimization_barrier/two-operands", (Ops{R(int32, {3, 4}), R(float64, {2})}),
      eqx::bind(eqx::prim::optimization_barrier, x));
}

const std::vector<Row>& all_rows() {
  static const std::vector<Row> rows = [] {
    std::vector<Row> r;
    for (auto add : {unary_rows, binary_rows, select_convert_rows, layout_rows, reduce_rows, dot_rows, indexing_rows,
                     conv_window_rows, random_rows, transform_rows})
      add(r);
    return r;
  }();
  return rows;
}

/// One in_axes assignment: an Axis per operand (`size` set when nothing is mapped).
struct Pattern {
  std::string name;
  std::vector<eqx::Axis> axes;
};

/// The in_axes patterns for operands of these per-example ranks.
std::vector<Pattern> patterns(const std::vector<std::int64_t>& ranks) {
  const std::size_t n = ranks.size();
  std::vector<Pattern> out;
  auto each = [&](std::string name, auto axis_of) {
    Pattern p{std::move(name), {}};
    for (std::size_t i = 0; i < n; ++i) p.axes.push_back(axis_of(i));
    out.push_back(std::move(p));
  };
  std::int64_t max_rank = 0;
  for (auto r : ranks) max_rank = std::max(max_rank, r);
  const auto axis1 = [&](std::size_t i) { return eqx::Axis(std::min<std::int64_t>(1, ranks[i])); };
  if (n > 0) {
    each("in_axes 0", [](std::size_t) { return eqx::Axis(0); });
    if (max_rank >= 1) each("in_axes 1 (0 for scalars)", axis1);
    each("in_axes -1", [](std::size_t) { return eqx::Axis(-1); });
    if (max_rank >= 1) each("in_axes last, as a positive index", [&](std::size_t i) { return eqx::Axis(ranks[i]); });
  }
  if (n >= 2)
    for (std::size_t k = 0; k < n; ++k) {
      each("operand " + std::to_string(k) + " unmapped, the others at 1",
           [&](std::size_t i) { return i == k ? eqx::Axis(eqx::none) : axis1(i); });
      each("only operand " + std::to_string(k) + " mapped, at -1",
           [&](std::size_t i) { return i == k ? eqx::Axis(-1) : eqx::Axis(eqx::none); });
    }
  each("nothing mapped (axis_size)", [](std::size_t) { return eqx::Axis(eqx::none); });
  return out;
}

template <std::size_t, class T>
using Repeat = T;

/// filter_vmap of f taking its operands as separate Array arguments, so
/// that each gets its own spec in eqx::in_axes(...).
template <std::size_t... I>
Arrays vmap_call(const Fn& f, const Arrays& in, const std::vector<eqx::Axis>& axes, eqx::AxisSpec out_axes,
                 std::optional<std::int64_t> size, std::index_sequence<I...>) {
  auto per_example = [&f](Repeat<I, const Array&>... xs) { return f(Arrays{xs...}); };
  return eqx::filter_vmap(per_example, eqx::in_axes(axes[I]...), std::move(out_axes), size)(in[I]...);
}

Arrays vmapped(const Fn& f, const Arrays& in, const std::vector<eqx::Axis>& axes, eqx::AxisSpec out_axes,
               std::optional<std::int64_t> size) {
  switch (in.size()) {
    case 0: return vmap_call(f, in, axes, std::move(out_axes), size, std::make_index_sequence<0>{});
    case 1: return vmap_call(f, in, axes, std::move(out_axes), size, std::make_index_sequence<1>{});
    case 2: return vmap_call(f, in, axes, std::move(out_axes), size, std::make_index_sequence<2>{});
    case 3: return vmap_call(f, in, axes, std::move(out_axes), size, std::make_index_sequence<3>{});
    case 4: return vmap_call(f, in, axes, std::move(out_axes), size, std::make_index_sequence<4>{});
    default: FAIL("rows have at most 4 operands"); return {};
  }
}

/// Runs one row under one in_axes pattern and compares with the loop over
/// examples; outputs get their batch axis at `out_axis`.
void check_pattern(const Row& row, const Pattern& p, std::int64_t out_axis = 0) {
  INFO("in_axes pattern: " << p.name << "; out_axes " << out_axis);
  // The batch: example b of a mapped operand at its axis; an unmapped one is example 0.
  Arrays batched;
  bool any_mapped = false;
  for (std::size_t i = 0; i < row.operands.size(); ++i) {
    if (!p.axes[i].mapped()) {
      batched.push_back(row.operands[i](0));
      continue;
    }
    any_mapped = true;
    Arrays examples;
    for (std::int64_t b = 0; b < kBatch; ++b) examples.push_back(row.operands[i](b));
    batched.push_back(eqx::stack(examples, p.axes[i].index()));
  }
  const Arrays got = vmapped(row.fn, batched, p.axes, out_axis,
                             any_mapped ? std::nullopt : std::optional<std::int64_t>(kBatch));

  std::vector<Arrays> per_output;  // [output][example]
  for (std::int64_t b = 0; b < kBatch; ++b) {
    Arrays example;
    for (std::size_t i = 0; i < batched.size(); ++i)
      example.push_back(p.axes[i].mapped() ? eqx::take(batched[i], eqx::array(static_cast<std::int32_t>(b)),
                                                       p.axes[i].index())
                                           : batched[i]);
    const Arrays y = row.fn(example);
    per_output.resize(y.size());
    for (std::size_t k = 0; k < y.size(); ++k) per_output[k].push_back(y[k]);
  }
  REQUIRE(got.size() == per_output.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    const Array want = eqx::stack(per_output[k], out_axis);
    const double tol = row.tol == Tol::exact ? 0 : (want.dtype() == float32 ? kTolF32 : kTolF64);
    eqx_test::require_equal(got[k], want, tol, "output " + std::to_string(k), "vmap", "loop",
                            row.tol == Tol::sum_order);
  }
}

std::vector<std::int64_t> example_ranks(const Row& row) {
  std::vector<std::int64_t> ranks;
  for (const Gen& g : row.operands) ranks.push_back(static_cast<std::int64_t>(g(0).ndim()));
  return ranks;
}

const Row& row_named(const std::string& name) {
  for (const Row& row : all_rows())
    if (row.name == name) return row;
  FAIL("no row named " << name);
  return all_rows().front();  // not reached: FAIL throws
}

/// Adds to `batched` the primitives of g's equations that have a mapped
/// input when the inputs flagged in `mapped` are: exactly the equations
/// batch_graph sends to their batching rule (every rule maps its outputs).
void collect_batched(const eqx::Graph& g, const std::vector<bool>& mapped, std::set<std::string>& batched) {
  std::vector<bool> var_mapped(g.types.size(), false);
  for (std::size_t i = 0; i < g.inputs.size(); ++i) var_mapped[g.inputs[i]] = mapped[i];
  for (const eqx::Equation& eq : g.equations) {
    bool any = false;
    for (eqx::Var v : eq.inputs) any = any || var_mapped[v];
    if (!any) continue;
    batched.insert(std::string(eq.prim->name()));
    for (eqx::Var v : eq.outputs) var_mapped[v] = true;
  }
}

/// A primitive with a kernel but no batching rule (the identity).
struct NoBatchRulePrim final : eqx::Primitive {
  std::string_view name() const override { return "test_no_batch_rule"; }
  std::vector<eqx::AbstractArray> shape_rule(std::span<const eqx::AbstractArray> in, const Params&) const override {
    return {in[0]};
  }
  void kernel(std::span<const eqx::detail::View> in, std::span<const eqx::detail::View> out,
              const Params&) const override {
    eqx::detail::copy_bytes(out[0].data, in[0].data, in[0].bytes());
  }
};
const NoBatchRulePrim no_batch_rule;

}  // namespace

TEST_CASE("filter_vmap matches a loop over examples for every primitive", "[vmap][vmap_prims]") {
  for (const Row& row : all_rows()) {
    DYNAMIC_SECTION(row.name) {
      for (const Pattern& p : patterns(example_ranks(row))) check_pattern(row, p);
    }
  }
}

TEST_CASE("filter_vmap primitive rows with the batch axis of outputs at 1 and -1", "[vmap][vmap_prims]") {
  // Rows whose outputs all have rank >= 1 per example, so out_axes 1 exists.
  for (const char* name : {"binary/add/f32/outer", "dot_general/inner-batch-dims-f32", "gather/take-axis1-negative-f32",
                           "sort_key_val/ties-dim1", "conv/2d-strided-same-dilated-groups2-f32",
                           "iota/arange-and-operand-outputs", "iota/arange-no-operands"}) {
    DYNAMIC_SECTION(name) {
      const Row& row = row_named(name);
      for (const Pattern& p : patterns(example_ranks(row)))
        for (std::int64_t out_axis : {1, -1}) check_pattern(row, p, out_axis);
    }
  }
}

TEST_CASE("filter_vmap leaves iota unmapped and broadcasts it where it meets the batch", "[vmap][vmap_prims]") {
  auto f = [](const Array& x) { return Arrays{eqx::arange(5), x * eqx::arange(5)}; };
  const Array xs = eqx::astype(eqx_test::seq<float>({3, 5}), int32);
  const eqx::Graph g = eqx::filter_make_jaxpr([&](const Array& x) { return eqx::filter_vmap(f)(x); })(xs).graph;
  INFO(eqx::to_string(g));
  std::size_t iotas = 0;
  for (const eqx::Equation& eq : g.equations)
    if (eq.prim->name() == "iota") {
      ++iotas;
      CHECK(g.types[eq.outputs[0]].shape.str() == eqx::Shape{5}.str());  // one example's, not the batch's
    }
  CHECK(iotas >= 1);
  const Arrays ys = eqx::filter_vmap(f)(xs);
  eqx_test::check(ys[0], {3, 5}, std::vector<std::int32_t>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4});
  eqx_test::check(ys[1], {3, 5}, std::vector<std::int32_t>{0, 1, 4, 9, 16, 0, 6, 14, 24, 36, 0, 11, 24, 39, 56});
}

TEST_CASE("filter_vmap of a primitive without a batching rule fails, naming it", "[vmap][vmap_prims]") {
  auto f = [](const Array& x) { return eqx::bind1(no_batch_rule, {x}); };
  const Array xs = eqx_test::seq<float>({3, 2});
  // Eagerly (and with nothing mapped) the primitive runs as it is.
  eqx_test::check(f(xs), {3, 2}, std::vector<float>{0, 1, 2, 3, 4, 5});
  eqx_test::check(eqx::filter_vmap(f, eqx::none, 0, 2)(xs), {2, 3, 2},
                  std::vector<float>{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5});
  const std::string want =
      "eqx: primitive 'test_no_batch_rule' has no batching rule, so it cannot be used inside eqx::filter_vmap; give "
      "it one by overriding Primitive::batch";
  CHECK(eqx_test::message_of<eqx::ValueError>([&] { eqx::filter_vmap(f)(xs); }) == want);
  CHECK(eqx_test::message_of<eqx::ValueError>([&] { eqx::filter_vmap(f, 1)(xs); }) == want);
}

TEST_CASE("the vmap primitive table batches every registered primitive", "[vmap][vmap_prims]") {
  std::set<std::string> traced;   // primitives in the per-example (unbatched) graphs of all rows
  std::set<std::string> batched;  // primitives that some row's pattern sends to their batching rule
  for (const Row& row : all_rows()) {
    Arrays example;
    for (const Gen& g : row.operands) example.push_back(g(0));
    const eqx::Graph g = eqx::filter_make_jaxpr(row.fn)(example).graph;
    REQUIRE(g.inputs.size() == row.operands.size());
    for (const eqx::Equation& eq : g.equations) traced.insert(std::string(eq.prim->name()));
    for (const Pattern& p : patterns(example_ranks(row))) {
      std::vector<bool> mapped;
      for (const eqx::Axis& a : p.axes) mapped.push_back(a.mapped());
      collect_batched(g, mapped, batched);
    }
  }
  const auto prims = eqx_test::primitives_to_cover();
  CHECK(prims.size() > 60);
  for (const std::string& p : prims) {
    INFO("primitive " << p);
    CHECK(traced.count(p) == 1);
    // iota has no inputs, so it is never mapped: its rows check that it is
    // broadcast to the batch instead.
    if (p != "iota") CHECK(batched.count(p) == 1);
  }
  CHECK(batched.count("iota") == 0);
}

}  // namespace transform_vmap_primitives_test

// Unity batches: this file's macros end with it.
#undef ROW
#undef SUM_ORDER_ROW
