// filter_jit(f)(x) == f(x) for every primitive of the foundation (prim/*.hpp).
//
// One table row per primitive and dtype (and per broadcasting pattern for the
// elementwise ones). Each row runs eagerly, then through filter_jit twice
// (trace + cache hit); results must match in shape, dtype and every value:
// bit-exact for integers and bools, exact for floats (NaN matches any NaN),
// since the jitted plan runs the same kernels (the one exception, last-bit
// differences of vectorised math functions, is explained in unary_rows).
// Rows marked `fused` use 5005+
// element operands and must compile to a `fused` equation that runs several
// tiles, so the tiled path (tile buffers, scalar / row / general broadcast
// reads, converts between dtypes) is what gets compared.

#include <catch2/catch.hpp>
#include <eqx/eqx.hpp>

#include "primitive_names.hpp"
#include "primitive_rows.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace transform_jit_primitives_test {

namespace {

using eqx::Array;
using eqx_test::Arrays, eqx_test::I32s, eqx_test::U32s, eqx_test::dt_name, eqx_test::rnd, eqx_test::edge;
using eqx_test::kF, eqx_test::kNum, eqx_test::kInt, eqx_test::kBits, eqx_test::kAll;
using Fn = std::function<Arrays(const Arrays&)>;
using Un = std::function<Array(const Array&)>;
using Bin = std::function<Array(const Array&, const Array&)>;
using Ints = std::vector<std::int64_t>;
using eqx::bool_, eqx::float32, eqx::float64, eqx::int32, eqx::uint32, eqx::Params;

struct Row {
  std::string name;
  Fn fn;
  Arrays inputs;
  bool fused = false;  // expects a fused equation running >= 2 tiles
  double tol = 0;      // 0: exact; else relative tolerance for floats (see unary_rows)
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
#define ROW(name, inputs, ...) rows.push_back({name, fn([](const Arrays& x) { return __VA_ARGS__; }), inputs})
#define FUSED_ROW(name, inputs, ...) \
  rows.push_back({name, fn([](const Arrays& x) -> Arrays { return __VA_ARGS__; }), inputs, true})

Array same(const Array& x) { return eqx::maximum(x, x); }  // the identity, as an op fusion can join

/// Same dtype, shape and values (primitive_rows.hpp), labelled jit / eager.
void require_equal(const Array& got, const Array& want, double tol, const std::string& what) {
  eqx_test::require_equal(got, want, tol, what, "jit", "eager");
}

/// Unary elementwise rows: the bare op on edge values, and op(same(x)) fused on 5005 values.
void unary_rows(std::vector<Row>& rows) {
  // `approx`: ops whose Eigen kernel has a vectorised (packet) path that
  // differs from its scalar path in the last bits (exp, log, log1p, expm1,
  // sin, cos, tanh, logistic, and sqrt/rsqrt, which EIGEN_FAST_MATH computes
  // from _mm_rsqrt_ps). Which elements take the scalar path depends on where
  // a kernel call's range starts and ends and on its alignment: the eager
  // call splits the array into per-thread chunks, a fused region into tiles.
  // So fused rows of these ops compare to 1e-6 relative (differences seen:
  // 1 ulp for log1p and expm1, f32, at eager's thread-chunk boundary).
  const std::vector<eqx_test::UnaryOp> ops = eqx_test::unary_ops();
  unsigned seed = 100;
  for (const eqx_test::UnaryOp& op : ops)
    for (eqx::DType dt : op.dts) {
      const std::string n = "unary/" + std::string(op.name) + "/" + dt_name(dt);
      Un f = op.f;
      rows.push_back({n + "/edge", fn([f](const Arrays& x) { return f(x[0]); }), {edge(dt)}});
      Array big = eqx::is_floating(dt) ? rnd(dt, {5, 1001}, ++seed, op.lo, op.hi) : rnd(dt, {5, 1001}, ++seed);
      Fn fused = fn([f](const Arrays& x) { return f(same(x[0])); });
      rows.push_back({n + "/fused", fused, {big}, true, op.approx ? 1e-6 : 0});
    }
  // exp whose results underflow, on 12010 elements so that the eager call
  // splits into thread chunks at unaligned offsets. Compared exactly, and
  // failing with 2+ threads: Eigen 3.4's packet exp clamps its argument to
  // [-88.723, 88.723] (f32; f64: [-709.784, 709.784]), so vectorised elements
  // give exp(-100.f) = 2.94e-39 where the scalar path (std::exp) gives
  // 3.78e-44. Which elements take which path differs between eager chunks and
  // fused tiles. A kernel issue (ExpOp in prim/unary.hpp), not a jit one.
  for (eqx::DType dt : kF)
    rows.push_back({"unary/exp/" + dt_name(dt) + "/fused-underflow",
                    fn([](const Arrays& x) { return eqx::exp(same(x[0])); }),
                    {dt == float32 ? rnd(dt, {2, 6005}, 150, -110, -80) : rnd(dt, {2, 6005}, 151, -760, -700)}, true});
}

/// Binary elementwise rows: same shapes (bare), fused same(op(a, b)) with a
/// scalar, a row [N] against [M, N], and [M, 1] against [1, N], and the
/// last pattern unfused (the kernel's own broadcasting).
void binary_rows(std::vector<Row>& rows) {
  const std::vector<eqx_test::BinaryOp> ops = eqx_test::binary_ops();
  unsigned seed = 1000;
  for (const eqx_test::BinaryOp& op : ops)
    for (eqx::DType dt : op.dts) {
      const std::string n = "binary/" + std::string(op.name) + "/" + dt_name(dt);
      auto r = [&](const eqx::Shape& s) { return rnd(dt, s, ++seed, op.lo, op.hi); };
      Bin f = op.f;
      Fn bare = fn([f](const Arrays& x) { return f(x[0], x[1]); });
      Fn fused = fn([f](const Arrays& x) { return same(f(x[0], x[1])); });
      rows.push_back({n + "/same", bare, {edge(dt), r({4, 4})}});
      rows.push_back({n + "/scalar", fused, {r({}), r({5, 1001})}, true});
      rows.push_back({n + "/row", fused, {r({1001}), r({5, 1001})}, true});
      rows.push_back({n + "/outer", fused, {r({70, 1}), r({1, 75})}, true});
      rows.push_back({n + "/outer-bare", bare, {r({1, 75}), r({70, 1})}});
    }
}

/// select and convert.
void select_convert_rows(std::vector<Row>& rows) {
  unsigned seed = 5000;
  Fn where = fn([](const Arrays& x) { return eqx::where(x[0], x[1], x[2]); });
  for (eqx::DType dt : kAll) {
    const std::string n = "select/" + dt_name(dt);
    rows.push_back({n + "/same", where, {rnd(bool_, {4, 4}, ++seed), edge(dt), rnd(dt, {4, 4}, ++seed)}});
    rows.push_back(
        {n + "/row-bare", where, {rnd(bool_, {5, 1001}, ++seed), rnd(dt, {1001}, ++seed), rnd(dt, {}, ++seed)}});
    rows.push_back({n + "/bcast-fused", fn([](const Arrays& x) { return same(eqx::where(x[0], x[1], x[2])); }),
                    {rnd(bool_, {70, 1}, ++seed), rnd(dt, {1, 75}, ++seed), rnd(dt, {}, ++seed)}, true});
  }
  for (eqx::DType from : kAll)
    for (eqx::DType to : kAll) {
      if (from == to) continue;
      const std::string n = "convert/" + dt_name(from) + "->" + dt_name(to);
      rows.push_back({n + "/edge", fn([to](const Arrays& x) { return eqx::astype(x[0], to); }), {edge(from)}});
      rows.push_back({n + "/fused", fn([to](const Arrays& x) { return same(eqx::astype(same(x[0]), to)); }),
                      {rnd(from, {5, 1001}, ++seed, -1e3, 1e3)}, true});
    }
}

/// Layout primitives: reshape, transpose, broadcast_in_dim, slice, rev, pad, concatenate, iota.
void layout_rows(std::vector<Row>& rows) {
  ROW("reshape/i32", Arrays{rnd(int32, {4, 6}, 1)}, eqx::reshape(x[0], {3, -1}));
  ROW("reshape/of-reshape", Arrays{rnd(float32, {4, 6}, 2)}, eqx::reshape(eqx::reshape(x[0], {24}), {2, 12}));
  ROW("transpose/f64-3d", Arrays{rnd(float64, {2, 3, 4}, 3)}, eqx::transpose(x[0], {2, 0, 1}));
  ROW("transpose/composed", Arrays{rnd(uint32, {2, 3, 4}, 4)},
      eqx::transpose(eqx::transpose(x[0], {1, 2, 0}), {1, 2, 0}));
  ROW("transpose/inverse-pair", Arrays{rnd(bool_, {3, 5}, 5)}, eqx::transpose(eqx::transpose(x[0])));
  ROW("broadcast_in_dim/bool", Arrays{rnd(bool_, {3, 1}, 6)}, eqx::broadcast_to(x[0], {2, 3, 4}));
  ROW("broadcast_in_dim/middle-axis", Arrays{rnd(float32, {2, 4}, 7)},
      eqx::bind1(eqx::prim::broadcast_in_dim, {x[0]},
                 Params{}.set("shape", Ints{2, 3, 4}).set("broadcast_dimensions", Ints{0, 2})));
  ROW("broadcast_in_dim/identity", Arrays{rnd(int32, {2, 4}, 8)},
      eqx::bind1(eqx::prim::broadcast_in_dim, {x[0]},
                 Params{}.set("shape", Ints{2, 4}).set("broadcast_dimensions", Ints{0, 1})));
  ROW("slice/f32-strided", Arrays{rnd(float32, {5, 7}, 9)}, eqx::slice(x[0], {{1, -1}, {{}, {}, 2}}));
  ROW("slice/u32-negative-step", Arrays{rnd(uint32, {3, 7}, 10)}, eqx::slice(x[0], {{}, {5, 0, -2}}));
  ROW("rev/i32", Arrays{rnd(int32, {2, 3, 4}, 11)}, eqx::flip(x[0], {0, 2}));
  ROW("pad/i32", Arrays{rnd(int32, {3, 4}, 12)}, eqx::pad(x[0], {{1, 2}, {0, 3}}, 7));
  ROW("pad/f32-crop-interior-traced-value", (Arrays{rnd(float32, {3, 4}, 13), rnd(float32, {}, 14)}),
      eqx::bind1(eqx::prim::pad, {x[0], x[1]},
                 Params{}.set("low", Ints{-1, 2}).set("high", Ints{1, -1}).set("interior", Ints{1, 2})));
  ROW("concatenate/f32", (Arrays{rnd(float32, {2, 3}, 15), rnd(float32, {2, 5}, 16), rnd(float32, {2, 1}, 17)}),
      eqx::concatenate({x[0], x[1], x[2]}, 1));
  ROW("concatenate/mixed-dtypes", (Arrays{rnd(int32, {2, 3}, 18), rnd(float64, {1, 3}, 19)}),
      eqx::concatenate({x[0], x[1]}, 0));
  ROW("concatenate/stack-bool", (Arrays{rnd(bool_, {3, 2}, 20), rnd(bool_, {3, 2}, 21)}), eqx::stack({x[0], x[1]}, 1));
  ROW("iota/arange-no-inputs", Arrays{}, ((void)x, eqx::arange(12)));
  ROW("iota/f32-dim1", Arrays{rnd(float32, {3, 4}, 22)},
      x[0] + eqx::bind1(eqx::prim::iota, {},
                        Params{}.set("dtype", float32).set("shape", Ints{3, 4}).set("dimension", std::int64_t{1})));
  ROW("iota/u32-unfolded-70000", Arrays{}, ((void)x, eqx::arange(0, 70000, 1, uint32)));
  ROW("iota/eye", Arrays{}, ((void)x, eqx::eye(4, 5, 1)));
}

/// Reductions, arg-extrema, dot_general, gather, scatter_add, conv, reduce_window.
void compute_rows(std::vector<Row>& rows) {
  ROW("reduce_sum/f32-axes02", Arrays{rnd(float32, {4, 5, 6}, 30)}, eqx::sum(x[0], {0, 2}));
  ROW("reduce_sum/i32-all", Arrays{rnd(int32, {7, 9}, 31)}, eqx::sum(x[0]));
  ROW("reduce_sum/bool-keepdims", Arrays{rnd(bool_, {4, 6}, 32)}, eqx::sum(x[0], 1, true));
  ROW("reduce_sum/mean-f32-big", Arrays{rnd(float32, {5, 1001}, 33)}, eqx::mean(x[0], 1));
  ROW("reduce_prod/f64-keepdims", Arrays{rnd(float64, {3, 5}, 34)}, eqx::prod(x[0], 1, true));
  ROW("reduce_prod/u32", Arrays{rnd(uint32, {3, 5}, 35)}, eqx::prod(x[0], 0));
  ROW("reduce_max/f32-nan", Arrays{edge(float32)}, eqx::max(x[0], 0));
  ROW("reduce_max/bool", Arrays{edge(bool_)}, eqx::max(x[0], 1));
  ROW("reduce_min/u32", Arrays{edge(uint32)}, eqx::min(x[0]));
  ROW("reduce_min/f64", Arrays{edge(float64)}, eqx::min(x[0], 1));
  ROW("reduce_and/i32", Arrays{edge(int32)}, eqx::all(x[0], 1));
  ROW("reduce_or/bool", Arrays{edge(bool_)}, eqx::any(x[0], 0));
  ROW("argmax/f32-nan", Arrays{edge(float32)}, eqx::argmax(x[0], 1));
  ROW("argmax/bool-flat", Arrays{edge(bool_)}, eqx::argmax(x[0]));
  ROW("argmin/i32-ties", Arrays{rnd(int32, {6, 5}, 36, -3, 3)}, eqx::argmin(x[0], 0));
  ROW("argmin/f64-keepdims", Arrays{rnd(float64, {4, 7}, 37)}, eqx::argmin(x[0], 1, true));
  ROW("dot_general/matmul-f32", (Arrays{rnd(float32, {4, 5}, 38), rnd(float32, {5, 3}, 39)}), eqx::matmul(x[0], x[1]));
  ROW("dot_general/batch-f64", (Arrays{rnd(float64, {2, 3, 4}, 40), rnd(float64, {2, 4, 5}, 41)}),
      eqx::matmul(x[0], x[1]));
  ROW("dot_general/matvec-i32", (Arrays{rnd(int32, {3, 4}, 42), rnd(int32, {4}, 43)}), eqx::matmul(x[0], x[1]));
  ROW("dot_general/u32-broadcast-stack", (Arrays{rnd(uint32, {3, 4}, 44), rnd(uint32, {2, 4, 5}, 45)}),
      eqx::matmul(x[0], x[1]));
  ROW("dot_general/inner-batch-dims", (Arrays{rnd(float32, {3, 2, 4}, 46), rnd(float32, {4, 2, 5}, 47)}),
      eqx::dot_general(x[0], x[1], {{2}, {0}}, {{1}, {1}}));
  ROW("gather/take-axis1-negative", (Arrays{rnd(float32, {4, 5}, 48), eqx::array(I32s{0, -1, 3, -5, 2, 2}, {2, 3})}),
      eqx::take(x[0], x[1], 1));
  ROW("gather/take-flat-u32", (Arrays{rnd(int32, {3, 4}, 49), eqx::array(U32s{11, 0, 5, 5})}), eqx::take(x[0], x[1]));
  ROW("gather/one_hot", Arrays{eqx::array(I32s{0, 4, 2, 7, -1, 3})}, eqx::one_hot(x[0], 5));
  ROW("scatter_add/f32-repeated",
      (Arrays{rnd(float32, {5, 3}, 50), eqx::array(I32s{1, 3, 1, -1}), rnd(float32, {4, 3}, 51)}),
      eqx::bind1(eqx::prim::scatter_add, {x[0], x[1], x[2]}, Params{}.set("axis", std::int64_t{0})));
  ROW("scatter_add/i32-axis1", (Arrays{rnd(int32, {2, 4}, 52), eqx::array(U32s{3, 3, 0}), rnd(int32, {2, 3}, 53)}),
      eqx::bind1(eqx::prim::scatter_add, {x[0], x[1], x[2]}, Params{}.set("axis", std::int64_t{1})));
  ROW("conv/2d-strided-same-dilated-groups", (Arrays{rnd(float32, {2, 4, 9, 8}, 54), rnd(float32, {6, 2, 3, 3}, 55)}),
      eqx::conv(x[0], x[1], {2, 1}, "SAME", {}, {1, 2}, 2));
  ROW("conv/1d-f64-lhs-dilation", (Arrays{rnd(float64, {1, 3, 7}, 56), rnd(float64, {2, 3, 3}, 57)}),
      eqx::conv(x[0], x[1], {1}, eqx::Padding{{1, 2}}, {2}));
  ROW("conv/depthwise-valid", (Arrays{rnd(float32, {1, 3, 6, 6}, 58), rnd(float32, {3, 1, 2, 2}, 59)}),
      eqx::conv(x[0], x[1], {}, "VALID", {}, {}, 3));
  ROW("reduce_window_max/f32-same", Arrays{rnd(float32, {2, 3, 8, 9}, 60)},
      eqx::reduce_window(x[0], "max", {1, 1, 3, 2}, {1, 1, 2, 2}, "SAME"));
  ROW("reduce_window_max/u32-max_pool", Arrays{rnd(uint32, {1, 2, 6, 6}, 61)}, eqx::max_pool(x[0], {2, 2}, {2, 2}));
  // reduce_window_max's JVP and VJP primitives, on a padded, overlapping, strided window ([2,5,6] -> [2,6,3]).
  ROW("select_and_gather_add/f32-padded-overlap", (Arrays{rnd(float32, {2, 5, 6}, 64), rnd(float32, {2, 5, 6}, 65)}),
      eqx::bind1(eqx::prim::select_and_gather_add, {x[0], x[1]}, eqx::detail::window_params({1, 2, 3}, {1, 1, 2}, {0, 0, 1, 1, 0, 1}, {1, 1, 1})));
  ROW("select_and_scatter_add/f64-padded-overlap", (Arrays{rnd(float64, {2, 6, 3}, 66), rnd(float64, {2, 5, 6}, 67)}),
      eqx::bind1(eqx::prim::select_and_scatter_add, {x[0], x[1]}, eqx::detail::window_params({1, 2, 3}, {1, 1, 2}, {0, 0, 1, 1, 0, 1}, {1, 1, 1})));
  ROW("reduce_window_sum/i32-dilated-padded", Arrays{rnd(int32, {5, 7}, 62)},
      eqx::reduce_window(x[0], "sum", {2, 2}, {1, 2}, eqx::Padding{{1, 0}, {2, 1}}, {1, 2}));
  ROW("reduce_window_sum/avg_pool-f64", Arrays{rnd(float64, {1, 2, 5, 5}, 63)},
      eqx::avg_pool(x[0], {3, 3}, {1, 1}, "SAME"));
}

/// eqx::random (threefry2x32, shifts, rem, bitcast_convert_type, erf_inv, sort_key_val) and bitcasts.
void random_rows(std::vector<Row>& rows) {
  const Arrays key{eqx::random::key(42)};
  ROW("threefry2x32/public", (Arrays{key[0], eqx::array({0u, 7u})}), eqx::random::threefry2x32(x[0], x[1]));
  ROW("threefry2x32/bind-two-outputs",
      (Arrays{eqx::array(3u), eqx::array(9u), rnd(uint32, {100}, 70, 0, 4e9), rnd(uint32, {100}, 71, 0, 4e9)}),
      eqx::bind(eqx::prim::threefry2x32, x));
  ROW("random/split", key, eqx::random::split(x[0], 3));
  ROW("random/fold_in", key, eqx::random::fold_in(x[0], 7));
  ROW("random/bits", key, eqx::random::bits(x[0], {5005}));
  FUSED_ROW("random/uniform-f32", key, {eqx::random::uniform(x[0], {5, 1001})});
  FUSED_ROW("random/uniform-f64", key, {eqx::random::uniform(x[0], {5, 1001}, float64, -2, 3)});
  FUSED_ROW("random/normal-f32", key, {eqx::random::normal(x[0], {5, 1001})});
  FUSED_ROW("random/truncated_normal-f64", key, {eqx::random::truncated_normal(x[0], -1.5, 2.0, {5, 1001}, float64)});
  FUSED_ROW("random/randint", key, {eqx::random::randint(x[0], {5, 1001}, -7, 1000)});
  ROW("random/bernoulli", (Arrays{key[0], rnd(float32, {6}, 72, 0, 1)}), eqx::random::bernoulli(x[0], x[1], {4, 6}));
  ROW("random/permutation-n", key, eqx::random::permutation(x[0], 100));
  ROW("random/permutation-rows", (Arrays{key[0], rnd(float32, {6, 3}, 73)}), eqx::random::permutation(x[0], x[1]));
  ROW("sort_key_val/ties-dim1", (Arrays{rnd(int32, {4, 6}, 74, -2, 2), rnd(float32, {4, 6}, 75)}),
      eqx::bind(eqx::prim::sort_key_val, x, Params{}.set("dimension", std::int64_t{1})));
  auto bitcast = [](eqx::DType to) {
    return fn([to](const Arrays& x) {
      return eqx::bind1(eqx::prim::bitcast_convert_type, {x[0]}, Params{}.set("new_dtype", to));
    });
  };
  rows.push_back({"bitcast_convert_type/f32->u32", bitcast(uint32), {edge(float32)}});
  rows.push_back({"bitcast_convert_type/u32->f32", bitcast(float32), {rnd(uint32, {4, 4}, 76, 0, 4e9)}});
  rows.push_back({"bitcast_convert_type/i32->f32", bitcast(float32), {edge(int32)}});
  rows.push_back({"bitcast_convert_type/f64->u32", bitcast(uint32), {edge(float64)}});
  rows.push_back({"bitcast_convert_type/u32->f64", bitcast(float64), {rnd(uint32, {3, 2}, 77, 0, 4e9)}});
}

/// Multi-op chains of exactly rounded ops: mixed dtypes through convert,
/// intermediates as outputs, fused results feeding reductions and dot,
/// folded / simplified / CSE'd parts.
void chain_rows(std::vector<Row>& rows) {
  const Arrays mixed{rnd(float32, {5, 1001}, 80), rnd(int32, {5, 1001}, 81), rnd(float64, {}, 82),
                     rnd(uint32, {1001}, 83)};
  const Arrays dense{rnd(float32, {64, 80}, 84), rnd(float32, {80, 40}, 85), rnd(float32, {80}, 86)};
  const Arrays outer{rnd(float64, {70, 1}, 87), rnd(float64, {1, 75}, 88), rnd(float64, {75}, 89)};
  FUSED_ROW("chain/mixed-dtypes-intermediate-outputs", mixed, [&] {
    Array a = eqx::astype(x[1], float32) * x[0] + 1.5;      // i32 -> f32
    Array b = eqx::where(a > 0, a / (a + 1.0f), a * a);
    Array c = eqx::astype(b, float64) * x[2];               // f32 -> f64, scalar input
    Array d = eqx::astype(c * 1e3, int32);                  // saturating f64 -> i32
    Array e = eqx::astype((d & 0xFF) == 3, uint32) + x[3];  // bool -> u32, row input
    return Arrays{b, d, eqx::sum(b), eqx::astype(c, float32), e};
  }());
  FUSED_ROW("chain/into-dot-and-sum", dense, [&] {
    Array h = eqx::maximum(x[0] * 0.5f + x[2], 0.0f);  // [64, 80], bias row [80]
    Array y = eqx::matmul(h, x[1]);
    return Arrays{h, eqx::sum(h, 1), eqx::minimum(y, 1.0f) - eqx::max(y)};
  }());
  FUSED_ROW("chain/general-broadcast-f64", outer, [&] {
    Array z = (x[0] * x[1] + x[2]) / (eqx::abs(x[0]) + 1.0);  // [70,1] * [1,75] + [75]
    return Arrays{z, eqx::argmax(z, 1), eqx::transpose(z * 2.0)};
  }());
  FUSED_ROW("chain/u32-bit-ops", Arrays{rnd(uint32, {5, 1001}, 90, 0, 4e9)}, [&] {
    Array s = eqx::bind1(eqx::prim::shift_left, {x[0], eqx::array(3u)});
    Array t = eqx::bind1(eqx::prim::shift_right_logical, {x[0], eqx::array(5u)});
    Array u = eqx::bind1(eqx::prim::rem, {(s ^ t) | eqx::array(1u), eqx::array(7u)});
    return Arrays{u, eqx::astype(u, float32) / 7.0f, eqx::max(u)};
  }());
  FUSED_ROW("chain/passthrough-repeated-outputs", (Arrays{rnd(float32, {5, 1001}, 91), rnd(int32, {3}, 92)}), [&] {
    Array y = x[0] * 2.0f - 1.0f;
    return Arrays{x[0], y, x[0], y, x[1]};
  }());
  // stop_gradient is removed from compiled graphs; checkpoint and its
  // optimization_barrier are inlined / copied.
  FUSED_ROW("chain/stop-gradient-and-checkpoint", Arrays{rnd(float32, {5, 1001}, 94)}, [&] {
    auto block = eqx::filter_checkpoint([](const Array& h) { return eqx::tanh(h) * 2.0f + h; });
    Array kept = eqx::bind(eqx::prim::optimization_barrier, Arrays{x[0]})[0];
    return Arrays{block(eqx::stop_gradient(x[0]) * 0.5f), kept};
  }());
  FUSED_ROW("chain/folded-simplified-cse", Arrays{rnd(float32, {5, 1001}, 93)}, [&] {
    Array k = eqx::astype(eqx::arange(1001) + 1, float32);  // constant-folded
    Array y = (x[0] * 1.0f + -0.0f) / 1.0f;                 // simplified to x
    return Arrays{eqx::abs(y) * k + eqx::abs(y), eqx::reshape(eqx::reshape(y, {-1}), {1001, 5})};
  }());
}

const std::vector<Row>& all_rows() {
  static const std::vector<Row> rows = [] {
    std::vector<Row> r;
    for (auto add : {unary_rows, binary_rows, select_convert_rows, layout_rows, compute_rows, random_rows, chain_rows})
      add(r);
    return r;
  }();
  return rows;
}

/// Checks the optimised plan holds a fused equation that runs >= 2 tiles.
void require_multi_tile_fusion(const eqx::Plan& plan) {
  std::int64_t most_tiles = 0;
  for (const eqx::Equation& eq : plan.graph().equations)
    if (eq.prim == &eqx::prim::fused) {
      const eqx::Graph& body = *eq.params.get<eqx::GraphRef>("graph");
      const std::int64_t n = body.types[body.outputs.at(0)].shape.numel(),
                         tile = eqx::detail::FusedProgram(body).tile_size();
      most_tiles = std::max(most_tiles, (n + tile - 1) / tile);
    }
  INFO("optimised graph:\n" << eqx::to_string(plan.graph()));
  CHECK(most_tiles >= 2);
}

}  // namespace

TEST_CASE("filter_jit matches eager execution for every primitive", "[jit][jit_prims]") {
  for (const Row& row : all_rows()) {
    DYNAMIC_SECTION(row.name) {
      const Arrays want = row.fn(row.inputs);
      auto jitted = eqx::filter_jit(row.fn);
      const Arrays first = jitted(row.inputs);
      const Arrays second = jitted(row.inputs);  // cache hit
      REQUIRE(first.size() == want.size());
      REQUIRE(second.size() == want.size());
      for (std::size_t k = 0; k < want.size(); ++k) {
        require_equal(first[k], want[k], row.tol, "first call, output " + std::to_string(k));
        require_equal(second[k], want[k], row.tol, "second call, output " + std::to_string(k));
      }
      CHECK(jitted.num_traces() == 1);
      if (row.fused) require_multi_tile_fusion(jitted.plan(row.inputs));
    }
  }
}

TEST_CASE("the jit primitive table binds every registered primitive", "[jit][jit_prims]") {
  std::set<std::string> bound;  // primitive names in the traced (unoptimised) graphs of all rows
  for (const Row& row : all_rows())
    for (const eqx::Equation& eq : eqx::filter_make_jaxpr(row.fn)(row.inputs).graph.equations)
      bound.insert(std::string(eq.prim->name()));
  const auto prims = eqx_test::primitives_to_cover();
  CHECK(prims.size() > 60);
  for (const std::string& p : prims) {
    INFO("no row binds primitive " << p);
    CHECK(bound.count(p) == 1);
  }
}

}  // namespace transform_jit_primitives_test

// Unity batches: this file's macros end with it.
#undef ROW
#undef FUSED_ROW
