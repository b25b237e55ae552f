// Products: matmul, dot, dot_general. Expected values are NumPy 1.24
// results stored as literals, or naive loops for the [threads] cases.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <source_location>
#include <string>
#include <vector>

#include <eqx/eqx.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace ops_linalg_test {

namespace {

using eqx::Array;
using eqx::Shape;
using Catch::Contains;
using Ints = std::vector<std::int64_t>;

using eqx_test::check;

/// numpy: (((arange(n) * 5 + start) % 7) - 3).reshape(shape), as T.
template <class T = float>
Array pat(const Shape& shape, std::int64_t start = 0) {
  std::vector<T> v(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<T>((static_cast<std::int64_t>(i) * 5 + start) % 7 - 3);
  return eqx::array(v, shape);
}

// Operands shared by the tests (values in comments are numpy's).
Array A() { return pat({2, 3}); }        // {-3, 2, 0, -2, 3, 1}
Array B() { return pat({3, 4}, 1); }     // {-2, 3, 1, -1, -3, 2, 0, -2, 3, 1, -1, -3}
Array v3() { return pat({3}, 2); }       // {-1, -3, 2}
Array v2() { return pat({2}, 3); }       // {0, -2}
Array Bt() { return pat({2, 2, 3}, 5); } // batch of [2, 3] matrices
Array Bk() { return pat({2, 3, 4}, 6); } // batch of [3, 4] matrices

}  // namespace

TEST_CASE("matmul of vectors and matrices", "[linalg]") {
  check<float>(eqx::matmul(v3(), v3()), {}, {14});
  check<float>(eqx::matmul(A(), v3()), {2}, {-3, -5});
  check<float>(eqx::matmul(v2(), A()), {3}, {4, -6, -2});
  check<float>(eqx::matmul(A(), B()), {2, 4}, {0, -5, -3, -1, -2, 1, -3, -7});
  check<float>(eqx::matmul(pat({1, 3}, 2), pat({3, 1}, 2)), {1, 1}, {14});
  check<float>(eqx::matmul(pat({3, 1}, 2), pat({1, 3}, 2)), {3, 3}, {1, 3, -2, 3, 9, -6, -2, -6, 4});
}

TEST_CASE("matmul of stacks: batched, broadcast and mixed ranks", "[linalg]") {
  // [B, M, K] @ [K, N]
  check<float>(eqx::matmul(Bt(), B()), {2, 2, 4}, {-10, 4, 4, 4, -12, 10, 4, -2, 0, -5, -3, -1, -2, 1, -3, -7});
  // [M, K] @ [B, K, N]
  check<float>(eqx::matmul(A(), Bk()), {2, 2, 4}, {-5, -3, -1, 15, 1, -3, -7, 17, -2, 0, -5, -3, -5, -2, 1, -3});
  // [B, M, K] @ [B, K, N]
  check<float>(eqx::matmul(Bt(), Bk()), {2, 2, 4}, {4, 4, 4, -10, 10, 4, -2, -8, -2, 0, -5, -3, -5, -2, 1, -3});
  // [K] @ [B, K, N] and [B, M, K] @ [K]
  check<float>(eqx::matmul(v3(), Bk()), {2, 4}, {-7, -3, 1, -2, -1, 17, -7, -3});
  check<float>(eqx::matmul(Bt(), v3()), {2, 2}, {-6, -8, -3, -5});
  // [2, 1, M, K] @ [3, K, N] -> [2, 3, M, N]
  check<float>(eqx::matmul(pat({2, 1, 2, 3}, 2), pat({3, 3, 2}, 4)), {2, 3, 2, 2},
               {8, -9, 6, -10, 4, 8, 8, 6, -7, 4, -11, 8, 4, 3, 2, 2, -2, 4, 2, 2, 6, -2, 2, 2});
  // [1, M, K] @ [B, K, N]: a size-1 batch broadcasts
  check<float>(eqx::matmul(eqx::reshape(A(), {1, 2, 3}), Bk()), {2, 2, 4},
               {-5, -3, -1, 15, 1, -3, -7, 17, -2, 0, -5, -3, -5, -2, 1, -3});
}

TEST_CASE("matmul dtypes: int32, float64 and promotion", "[linalg]") {
  check<std::int32_t>(eqx::matmul(pat<std::int32_t>({2, 3}), pat<std::int32_t>({3, 4}, 1)), {2, 4},
                      {0, -5, -3, -1, -2, 1, -3, -7});
  check<std::int32_t>(eqx::matmul(pat<std::int32_t>({2, 2, 3}, 5), pat<std::int32_t>({3, 4}, 1)), {2, 2, 4},
                      {-10, 4, 4, 4, -12, 10, 4, -2, 0, -5, -3, -1, -2, 1, -3, -7});
  check<std::uint32_t>(eqx::matmul(eqx::array(std::vector<std::uint32_t>{1, 2, 3, 4}, {2, 2}),
                                   eqx::array(std::vector<std::uint32_t>{5, 6, 7, 8}, {2, 2})),
                       {2, 2}, {19, 22, 43, 50});
  // float64 keeps double precision (numpy: A * 0.1 @ B / 3)
  Array ad = pat<double>({2, 3}) * 0.1, bd = pat<double>({3, 4}, 1) / 3.0;
  check<double>(eqx::matmul(ad, bd), {2, 4},
                {0.0, -0.1666666666666667, -0.1, -0.033333333333333326, -0.06666666666666671, 0.03333333333333334, -0.1,
                 -0.23333333333333336});
  // int32 @ float32 promotes to float32; float32 @ float64 to float64
  check<float>(eqx::matmul(pat<std::int32_t>({2, 3}), B()), {2, 4}, {0, -5, -3, -1, -2, 1, -3, -7});
  check<double>(eqx::matmul(A(), pat<double>({3, 4}, 1)), {2, 4}, {0, -5, -3, -1, -2, 1, -3, -7});
}

TEST_CASE("matmul with size-0 dimensions", "[linalg]") {
  check<float>(eqx::matmul(eqx::zeros({2, 0}), eqx::zeros({0, 3})), {2, 3}, {0, 0, 0, 0, 0, 0});
  check<float>(eqx::matmul(eqx::zeros({0, 3}), B()), {0, 4}, {});
  check<float>(eqx::matmul(A(), eqx::zeros({3, 0})), {2, 0}, {});
  check<float>(eqx::matmul(eqx::zeros({0}), eqx::zeros({0})), {}, {0});
  check<std::int32_t>(eqx::matmul(eqx::zeros({2, 2, 0}, eqx::int32), eqx::zeros({2, 0, 1}, eqx::int32)), {2, 2, 1},
                      {0, 0, 0, 0});
  check<float>(eqx::matmul(eqx::zeros({0, 2, 3}), B()), {0, 2, 4}, {});
}

TEST_CASE("matmul errors", "[linalg]") {
  REQUIRE_THROWS_AS(eqx::matmul(A(), pat({4, 5})), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::matmul(A(), pat({4, 5})),
                      Contains("eqx::matmul: contracted dimensions differ: [2,3] @ [4,5] (3 vs 4); the last axis of the "
                               "left operand must match the second-to-last axis of the right operand"));
  REQUIRE_THROWS_AS(eqx::matmul(A(), pat({4})), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::matmul(A(), pat({4})), Contains("[2,3] @ [4] (3 vs 4)"));
  REQUIRE_THROWS_WITH(eqx::matmul(A(), pat({4})), Contains("the length of the right vector"));
  REQUIRE_THROWS_AS(eqx::matmul(pat({4}), A()), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::matmul(pat({4}), A()), Contains("contracted dimensions differ: [4] @ [2,3] (4 vs 2)"));
  REQUIRE_THROWS_AS(eqx::matmul(Bt(), pat({2, 4, 4})), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::matmul(Bt(), pat({2, 4, 4})), Contains("[2,2,3] @ [2,4,4] (3 vs 4)"));
  REQUIRE_THROWS_AS(eqx::matmul(pat({2, 2, 3}), pat({3, 3, 4})), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::matmul(pat({2, 2, 3}), pat({3, 3, 4})),
                      Contains("eqx::matmul: shapes [2] and [3] cannot be broadcast together"));
  REQUIRE_THROWS_AS(eqx::matmul(eqx::array(2.f), v3()), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::matmul(eqx::array(2.f), v3()),
                      Contains("eqx::matmul: operands must have rank >= 1, got [] and [3]; use * to scale by a scalar"));
  REQUIRE_THROWS_AS(eqx::matmul(A(), eqx::array(2.f)), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::matmul(A(), eqx::array(2.f)), Contains("operands must have rank >= 1, got [2,3] and []"));
  REQUIRE_THROWS_AS(eqx::matmul(eqx::array({true}), eqx::array({true})), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::matmul(eqx::array({true}), eqx::array({true})),
                      Contains("eqx::dot_general: bool operands are not supported"));
  REQUIRE_THROWS_AS(eqx::matmul(Array{}, A()), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::matmul(Array{}, A()), Contains("eqx::matmul: got an empty Array (None)"));
}

TEST_CASE("dot has numpy.dot semantics", "[linalg]") {
  check<float>(eqx::dot(v3(), v3()), {}, {14});
  check<float>(eqx::dot(A(), B()), {2, 4}, {0, -5, -3, -1, -2, 1, -3, -7});
  check<float>(eqx::dot(v3(), B()), {4}, {17, -7, -3, 1});
  check<float>(eqx::dot(A(), v3()), {2}, {-3, -5});
  // N-D @ 1-D: contract the last axis
  check<float>(eqx::dot(Bt(), v3()), {2, 2}, {-6, -8, -3, -5});
  // N-D @ M-D: last axis of a with the second-to-last of b, all other axes kept
  check<float>(eqx::dot(Bt(), Bk()), {2, 2, 2, 4},
               {4, 4, 4, -10, 4, -10, 4, 4, 10, 4, -2, -8, 1, -12, 10, 4,
                -5, -3, -1, 15, -2, 0, -5, -3, 1, -3, -7, 17, -5, -2, 1, -3});
  // scalars multiply
  check<float>(eqx::dot(eqx::array(2.5f), A()), {2, 3}, {-7.5f, 5, 0, -5, 7.5f, 2.5f});
  check<float>(eqx::dot(v3(), eqx::array(2.f)), {3}, {-2, -6, 4});
  check<std::int32_t>(eqx::dot(pat<std::int32_t>({3}, 2), pat<std::int32_t>({3}, 2)), {}, {14});

  REQUIRE_THROWS_AS(eqx::dot(A(), pat({4})), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::dot(A(), pat({4})),
                      Contains("eqx::dot: shapes [2,3] and [4] are not aligned: 3 (last axis of a) != 4 (length of b)"));
  REQUIRE_THROWS_AS(eqx::dot(Bt(), pat({2, 4, 2})), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::dot(Bt(), pat({2, 4, 2})),
                      Contains("shapes [2,2,3] and [2,4,2] are not aligned: 3 (last axis of a) != 4 (second-to-last axis of b)"));
  REQUIRE_THROWS_AS(eqx::dot(Array{}, A()), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::dot(Array{}, A()), Contains("eqx::dot: got an empty Array (None)"));
}

TEST_CASE("dot_general with explicit contracting and batch dimensions", "[linalg]") {
  // plain matrix product
  check<float>(eqx::dot_general(A(), B(), {{1}, {0}}), {2, 4}, {0, -5, -3, -1, -2, 1, -3, -7});
  // contract axis 0 of lhs: C[k, m] B[k, n] -> [m, n]
  Array C = pat({3, 2}, 1);
  check<float>(eqx::dot_general(C, B(), {{0}, {0}}), {2, 4}, {-8, -7, 1, 9, 3, 9, 1, -7});
  check<std::int32_t>(eqx::dot_general(pat<std::int32_t>({3, 2}, 1), pat<std::int32_t>({3, 4}, 1), {{0}, {0}}), {2, 4},
                      {-8, -7, 1, 9, 3, 9, 1, -7});
  // contract lhs axis 0 with rhs axis 1: C[k, m] D[n, k] -> [m, n] (both operands transposed)
  Array D = pat({4, 3}, 2);
  check<float>(eqx::dot_general(C, D, {{0}, {1}}), {2, 4}, {-7, -11, 6, 2, 4, 8, -2, 2});
  // batch axes that are not leading: E[m, b, k] F[k, b, n] -> [b, m, n]
  check<float>(eqx::dot_general(pat({3, 2, 4}, 3), pat({4, 2, 5}, 1), {{2}, {0}}, {{1}, {1}}), {2, 3, 5},
               {3, -1, 2, 5, 1, 0, -16, 10, 1, -1, -10, 11, 11, -10, -10, -17, 1, 5, 2, -1, 4, -4, 2, -13, 7, 4, 5, -1, 7, -13});
  // two contracting axes, paired in a different order: G[a, j, k] H[k, n, j] -> [a, n]
  check<float>(eqx::dot_general(pat({2, 3, 4}, 4), pat({4, 5, 3}, 2), {{1, 2}, {2, 0}}), {2, 5},
               {-16, -17, 24, 23, 8, 11, 30, -14, -16, -18});
  // no contraction: outer product
  check<float>(eqx::dot_general(v2(), v3(), {{}, {}}), {2, 3}, {0, 0, 0, 2, 6, -4});
  // batch only: elementwise product per batch entry
  check<float>(eqx::dot_general(v3(), v3(), {{}, {}}, {{0}, {0}}), {3}, {1, 9, 4});
  // batch matmul spelled out: [B, M, K] x [B, K, N]
  check<float>(eqx::dot_general(Bt(), Bk(), {{2}, {1}}, {{0}, {0}}), {2, 2, 4},
               {4, 4, 4, -10, 10, 4, -2, -8, -2, 0, -5, -3, -5, -2, 1, -3});
  // mixed dtypes promote
  check<float>(eqx::dot_general(pat<std::int32_t>({2, 3}), B(), {{1}, {0}}), {2, 4}, {0, -5, -3, -1, -2, 1, -3, -7});
}

TEST_CASE("dot_general errors", "[linalg]") {
  REQUIRE_THROWS_AS(eqx::dot_general(A(), B(), {{1}, {1}}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::dot_general(A(), B(), {{1}, {1}}),
                      Contains("eqx::dot_general: f32[2,3] and f32[3,4] with contracting (1,)/(1,), batch ()/(): "
                               "contracted sizes differ (3 vs 4)"));
  REQUIRE_THROWS_AS(eqx::dot_general(A(), B(), {{1}, {}}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::dot_general(A(), B(), {{1}, {}}),
                      Contains("lhs and rhs need the same number of contracting and of batch axes"));
  REQUIRE_THROWS_AS(eqx::dot_general(A(), B(), {{2}, {0}}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::dot_general(A(), B(), {{2}, {0}}), Contains("axes out of range or repeated"));
  REQUIRE_THROWS_AS(eqx::dot_general(Bt(), Bk(), {{2}, {1}}, {{2}, {0}}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::dot_general(Bt(), Bk(), {{2}, {1}}, {{2}, {0}}), Contains("axes out of range or repeated"));
  REQUIRE_THROWS_AS(eqx::dot_general(Bt(), pat({3, 3, 4}), {{2}, {1}}, {{0}, {0}}), eqx::ShapeError);
  REQUIRE_THROWS_WITH(eqx::dot_general(Bt(), pat({3, 3, 4}), {{2}, {1}}, {{0}, {0}}), Contains("batch axis sizes differ"));
  REQUIRE_THROWS_AS(eqx::dot_general(eqx::array({true}), eqx::array({true}), {{0}, {0}}), eqx::DTypeError);
  REQUIRE_THROWS_WITH(eqx::dot_general(eqx::array({true}), eqx::array({true}), {{0}, {0}}),
                      Contains("eqx::dot_general: bool operands are not supported; convert with eqx::astype(x, eqx::int32)"));
  // The primitive itself refuses mixed dtypes (the public function promotes first).
  auto mixed = [] {
    return eqx::bind1(eqx::prim::dot_general, {A(), pat<double>({3, 4})},
                      eqx::Params{}
                          .set("lhs_contracting_dimensions", Ints{1})
                          .set("rhs_contracting_dimensions", Ints{0})
                          .set("lhs_batch_dimensions", Ints{})
                          .set("rhs_batch_dimensions", Ints{}));
  };
  REQUIRE_THROWS_AS(mixed(), eqx::DTypeError);
  REQUIRE_THROWS_WITH(mixed(), Contains("eqx::dot_general: operands have dtypes float32 and float64"));
  REQUIRE_THROWS_AS(eqx::dot_general(A(), Array{}, {{1}, {0}}), eqx::ValueError);
  REQUIRE_THROWS_WITH(eqx::dot_general(A(), Array{}, {{1}, {0}}), Contains("eqx::dot_general: got an empty Array (None)"));
}

TEST_CASE("products of non-contiguous inputs (transpose and slice results)", "[linalg]") {
  // B.T @ A.T == (A @ B).T
  check<float>(eqx::matmul(eqx::transpose(B()), eqx::transpose(A())), {4, 2}, {0, -2, -5, 1, -3, -3, -1, -7});
  // A[:, ::-1] @ B[::-1, 1:3]
  check<float>(eqx::matmul(eqx::slice(A(), 1, {}, {}, -1), eqx::slice(B(), {{{}, {}, -1}, {1, 3}})), {2, 2},
               {-5, -3, 1, -3});
  // A @ Bk[:, :, ::2]
  check<float>(eqx::matmul(A(), eqx::slice(Bk(), 2, {}, {}, 2)), {2, 2, 2}, {-5, -1, 1, -7, -2, -5, -5, 1});
  // Bt.transpose(1, 0, 2) @ Bk
  check<float>(eqx::matmul(eqx::transpose(Bt(), {1, 0, 2}), Bk()), {2, 2, 4},
               {4, 4, 4, -10, -5, -3, -1, 15, 1, -12, 10, 4, -5, -2, 1, -3});
  // np.dot(Bk.T, v2)
  check<float>(eqx::dot(eqx::transpose(Bk()), v2()), {4, 3}, {0, 2, 4, 4, 6, -6, -6, -4, -2, -2, 0, 2});
  // dot_general contracting a transposed operand's leading axis: A.T[k, m] B[k, n]
  check<float>(eqx::dot_general(eqx::transpose(A()), B(), {{0}, {0}}), {2, 4}, {0, -5, -3, -1, -2, 1, -3, -7});
  check<float>(eqx::dot_general(A(), eqx::transpose(B()), {{1}, {1}}), {2, 4}, {0, -5, -3, -1, -2, 1, -3, -7});
}

namespace {

template <class T>
std::vector<T> fill(std::int64_t n, std::int64_t mul, std::int64_t add) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<T>((i * mul + add) % 7 - 3);
  return v;
}

/// Naive C[m, n] = sum_k a(m, k) * b(k, n), in T.
template <class T, class FA, class FB>
std::vector<T> naive(std::int64_t M, std::int64_t K, std::int64_t N, FA a, FB b) {
  std::vector<T> c(static_cast<std::size_t>(M * N), T(0));
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t k = 0; k < K; ++k) {
      T x = a(m, k);
      for (std::int64_t n = 0; n < N; ++n) c[static_cast<std::size_t>(m * N + n)] += x * b(k, n);
    }
  return c;
}

}  // namespace

TEST_CASE("large GEMM 300x200 @ 200x250 matches a naive loop", "[linalg][threads]") {
  const std::int64_t M = 300, K = 200, N = 250;
  // Small integers: every partial sum is exact in float32, so any summation order agrees.
  auto a = fill<float>(M * K, 5, 1), b = fill<float>(K * N, 3, 2);
  Array x = eqx::array(a, {M, K}), y = eqx::array(b, {K, N});
  auto want = naive<float>(M, K, N, [&](auto m, auto k) { return a[m * K + k]; }, [&](auto k, auto n) { return b[k * N + n]; });
  check<float>(eqx::matmul(x, y), {M, N}, want);
  // Both operands stored transposed: lhs as [K, M], rhs as [N, K].
  check<float>(eqx::dot_general(eqx::transpose(x), eqx::transpose(y), {{0}, {1}}), {M, N}, want);

  // float64 with non-integer values.
  std::vector<double> ad(a.size()), bd(b.size());
  for (std::size_t i = 0; i < a.size(); ++i) ad[i] = a[i] * 0.37 + 0.01 * static_cast<double>(i % 11);
  for (std::size_t i = 0; i < b.size(); ++i) bd[i] = b[i] / 7.0 - 0.003 * static_cast<double>(i % 5);
  auto wantd = naive<double>(M, K, N, [&](auto m, auto k) { return ad[m * K + k]; }, [&](auto k, auto n) { return bd[k * N + n]; });
  Array r = eqx::matmul(eqx::array(ad, {M, K}), eqx::array(bd, {K, N}));
  REQUIRE(r.shape().str() == "[300,250]");
  auto got = r.to_vector<double>();
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) bad += !(got[i] == Approx(wantd[i]).epsilon(1e-10).margin(1e-10));
  CHECK(bad == 0);
}

TEST_CASE("large int32 and batched GEMMs match naive loops", "[linalg][threads]") {
  const std::int64_t M = 256, K = 256, N = 256;
  auto a = fill<std::int32_t>(M * K, 3, 0), b = fill<std::int32_t>(K * N, 5, 4);
  auto want = naive<std::int32_t>(M, K, N, [&](auto m, auto k) { return a[m * K + k]; },
                                  [&](auto k, auto n) { return b[k * N + n]; });
  check<std::int32_t>(eqx::matmul(eqx::array(a, {M, K}), eqx::array(b, {K, N})), {M, N}, want);

  // [4, 64, 128] @ [4, 128, 96]: one GEMM per batch entry, batches split across threads.
  const std::int64_t Bn = 4, m = 64, k = 128, n = 96;
  auto la = fill<float>(Bn * m * k, 2, 1), rb = fill<float>(Bn * k * n, 3, 5);
  std::vector<float> wantb;
  for (std::int64_t bi = 0; bi < Bn; ++bi) {
    auto part = naive<float>(m, k, n, [&](auto i, auto j) { return la[(bi * m + i) * k + j]; },
                             [&](auto i, auto j) { return rb[(bi * k + i) * n + j]; });
    wantb.insert(wantb.end(), part.begin(), part.end());
  }
  Array L = eqx::array(la, {Bn, m, k}), R = eqx::array(rb, {Bn, k, n});
  check<float>(eqx::matmul(L, R), {Bn, m, n}, wantb);
  // the same product with the batch axis of the rhs moved to the end (needs a copy)
  check<float>(eqx::dot_general(L, eqx::transpose(R, {1, 2, 0}), {{2}, {0}}, {{0}, {2}}), {Bn, m, n}, wantb);
}

}  // namespace ops_linalg_test
