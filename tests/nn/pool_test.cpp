// eqx::nn pooling layers: MaxPool1d/2d/3d and AvgPool1d/2d/3d against torch
// (tests/nn/fixtures_conv.py: torch.nn.MaxPool*d / AvgPool*d with
// count_include_pad=True and ceil_mode where they are Equinox's pools;
// asymmetric padding and AvgPool's use_ceil, where Equinox still divides by
// prod(kernel), pad with torch.nn.functional.pad (-inf / 0) and pool with no
// padding), the adaptive pools against NumPy loops over Equinox's bins
// (checked against torch.nn.AdaptiveAvgPool/AdaptiveMaxPool where the bins
// agree), the max-pool gradient on ties (hand-derived), vmap / jit,
// printing, serialisation (Equinox's `init` record) and misuse.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>
#include <eqx/nn/pool.hpp>

#include "check.hpp"
#include "nn/fixtures.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace nn_pool_test {

namespace nn = eqx::nn;
using eqx_test::check_close;
using eqx_test::fixture;

namespace {

/// The pool's output and the gradient of sum(pool(x) * ct) w.r.t. x, checked
/// against fixture case `c` in float64 (1e-10) and float32 (1e-5).
template <class P>
void check_pool(std::string_view c, const P& pool) {
  for (auto [dtype, rtol] : {std::pair{eqx::float64, 1e-10}, std::pair{eqx::float32, 1e-5}}) {
    INFO("case " << c << " in " << eqx::dtype_name(dtype));
    const eqx::Array x = eqx::astype(fixture(c, "x"), dtype), ct = eqx::astype(fixture(c, "ct"), dtype);
    const eqx::Array y = pool(x);
    CHECK(y.dtype() == dtype);
    check_close(y, fixture(c, "y"), rtol, "y");
    auto loss = [pool](const eqx::Array& x, const eqx::Array& ct) { return eqx::sum(pool(x) * ct); };
    check_close(eqx::filter_grad(loss)(x, ct), fixture(c, "grad_x"), rtol, "grad_x");
  }
}

/// The header of the next .npy record and its 8 data bytes.
std::pair<std::string, std::int64_t> next_scalar_record(std::istream& in) {
  const auto h = eqx::detail::read_npy_header(in);
  std::int64_t raw = 0;
  in.read(reinterpret_cast<char*>(&raw), 8);
  return {std::string(1, h.byte_order) + h.kind + std::to_string(h.item_size) + (h.shape.empty() ? "()" : "(..)"), raw};
}

}  // namespace

TEST_CASE("nn::MaxPool1d/2d/3d match torch.nn.MaxPool: padding, stride, use_ceil (float64, float32)", "[nn]") {
  check_pool("maxpool2d", nn::MaxPool2d::init(3, {.stride = 2, .padding = 1}));
  check_pool("maxpool2d_ceil", nn::MaxPool2d::init({3, 2}, {.stride = 2, .padding = {1, 0}, .use_ceil = true}));
  check_pool("maxpool1d_pairs", nn::MaxPool1d::init(3, {.stride = 2, .padding = {{3, 1}}}));
  check_pool("maxpool3d", nn::MaxPool3d::init(2, {.stride = {2, 1, 1}, .padding = {1, 0, 1}}));
  CHECK(nn::MaxPool2d::init({3, 2}, {.stride = 2, .padding = {1, 0}, .use_ceil = true})(eqx::zeros({2, 8, 7})).shape() ==
        eqx::Shape{2, 5, 4});
  CHECK(nn::MaxPool2d::init({3, 2}, {.stride = 2, .padding = {1, 0}})(eqx::zeros({2, 8, 7})).shape() == eqx::Shape{2, 4, 3});
}

TEST_CASE("nn::AvgPool1d/2d/3d match torch.nn.AvgPool (count_include_pad) and Equinox's use_ceil", "[nn]") {
  check_pool("avgpool2d", nn::AvgPool2d::init(3, {.stride = 2, .padding = 1}));
  check_pool("avgpool2d_ceil", nn::AvgPool2d::init({3, 2}, {.stride = 2, .padding = {1, 0}, .use_ceil = true}));
  check_pool("avgpool1d", nn::AvgPool1d::init(4, {.stride = 3}));
  check_pool("avgpool3d_pairs", nn::AvgPool3d::init(2, {.padding = {{2, 0}, {0, 1}, {1, 1}}}));
  // Hand-derived: use_ceil's extra window is [3, 4, 5, pad] / 4.
  const eqx::Array x = eqx::array(std::vector<float>{1, 2, 3, 4, 5}, {1, 5});
  eqx_test::check<float>(nn::AvgPool1d::init(4, {.stride = 2, .use_ceil = true})(x), {1, 2}, {2.5f, 3.f});
  eqx_test::check<float>(nn::AvgPool1d::init(4, {.stride = 2})(x), {1, 1}, {2.5f});
}

TEST_CASE("nn::AdaptiveAvgPool / AdaptiveMaxPool use Equinox's bins (NumPy reference)", "[nn]") {
  check_pool("adaptive_avg2d", nn::AdaptiveAvgPool2d::init({3, 2}));
  check_pool("adaptive_max2d", nn::AdaptiveMaxPool2d::init({3, 2}));
  check_pool("adaptive_avg1d_even", nn::AdaptiveAvgPool1d::init(3));
  check_pool("adaptive_max3d", nn::AdaptiveMaxPool3d::init({2, 3, 1}));
  check_pool("adaptive_avg3d", nn::AdaptiveAvgPool3d::init(2));
  // Hand-derived: 5 cells into 3 bins are [0, 1] [2, 3] [4] (torch: [0, 1] [1, 2, 3] [3, 4]).
  const eqx::Array x = eqx::array(std::vector<float>{1, 2, 4, 8, 16}, {1, 5});
  eqx_test::check<float>(nn::AdaptiveAvgPool1d::init(3)(x), {1, 3}, {1.5f, 6.f, 16.f});
  eqx_test::check<float>(nn::AdaptiveMaxPool1d::init(3)(x), {1, 3}, {2.f, 8.f, 16.f});
  eqx_test::check<float>(nn::AdaptiveMaxPool2d::init(1)(eqx::reshape(x, {1, 1, 5})), {1, 1, 1}, {16.f});
}

TEST_CASE("nn::MaxPool's gradient goes to the first maximum of a window on ties (as JAX)", "[nn]") {
  // Windows of 2 at stride 1 over [1, 3, 3, 2]: maxima at 1, {1, 2} (tie: the first, 1), 2.
  nn::MaxPool1d pool = nn::MaxPool1d::init(2);
  const eqx::Array x = eqx::array(std::vector<double>{1, 3, 3, 2}, {1, 4});
  const eqx::Array ct = eqx::array(std::vector<double>{1, 10, 100}, {1, 3});
  eqx_test::check<double>(pool(x), {1, 3}, {3, 3, 3});
  auto loss = [pool](const eqx::Array& x, const eqx::Array& ct) { return eqx::sum(pool(x) * ct); };
  eqx_test::check<double>(eqx::filter_grad(loss)(x, ct), {1, 4}, {0, 11, 100, 0});
  // A constant 2x2 window: everything to its first (top-left) cell.
  nn::MaxPool2d pool2 = nn::MaxPool2d::init(2, {.stride = 2});
  auto loss2 = [pool2](const eqx::Array& x) { return eqx::sum(pool2(x) * eqx::array(std::vector<float>{5, 7}, {2, 1, 1})); };
  eqx_test::check<float>(eqx::filter_grad(loss2)(eqx::ones({2, 2, 2})), {2, 2, 2}, {5, 0, 0, 0, 7, 0, 0, 0});
}

TEST_CASE("nn pools under filter_vmap and filter_jit", "[nn]") {
  const eqx::Array xs = eqx::sin(eqx_test::seq<float>({3, 2, 7, 6}));
  nn::MaxPool2d mp = nn::MaxPool2d::init(3, {.stride = 2, .padding = 1, .use_ceil = true});
  nn::AvgPool2d ap = nn::AvgPool2d::init(2, {.padding = {{1, 0}, {0, 2}}});
  nn::AdaptiveMaxPool2d amp = nn::AdaptiveMaxPool2d::init({3, 4});
  auto loop = [&](auto f) {
    std::vector<eqx::Array> ys;
    for (int i = 0; i < 3; ++i) ys.push_back(f(eqx::take(xs, eqx::array(i), 0)));
    return eqx::stack(ys);
  };
  check_close(eqx::filter_vmap(mp)(xs), loop(mp), 1e-6, "vmap MaxPool2d");
  check_close(eqx::filter_vmap(ap)(xs), loop(ap), 1e-6, "vmap AvgPool2d");
  check_close(eqx::filter_vmap(amp)(xs), loop(amp), 1e-6, "vmap AdaptiveMaxPool2d");
  auto jitted = eqx::filter_jit([](const nn::MaxPool2d& p, const nn::AdaptiveMaxPool2d& a, const eqx::Array& xs) {
    return eqx::filter_vmap(a)(eqx::filter_vmap(p)(xs));
  });
  check_close(jitted(mp, amp, xs), eqx::filter_vmap(amp)(loop(mp)), 1e-6, "jit(vmap) MaxPool2d then adaptive");
}

TEST_CASE("nn pools print as Equinox's and serialise Equinox's `init` records", "[nn]") {
  nn::MaxPool2d mp = nn::MaxPool2d::init(2, {.stride = 2});
  CHECK(fmt::format("{}", mp) ==
        "MaxPool2d(\n  init_value=-inf,\n  num_spatial_dims=2,\n  kernel_size=(2, 2),\n  stride=(2, 2),\n"
        "  padding=((0, 0), (0, 0)),\n  use_ceil=False\n)");
  CHECK(fmt::format("{}", nn::AvgPool1d::init(3, {.padding = {{1, 2}}, .use_ceil = true})) ==
        "AvgPool1d(\n  init_value=0,\n  num_spatial_dims=1,\n  kernel_size=(3,),\n  stride=(1,),\n  padding=((1, 2),),\n"
        "  use_ceil=True\n)");
  CHECK(fmt::format("{}", nn::AdaptiveAvgPool2d::init({3, 2})) == "AdaptiveAvgPool2d(target_shape=(3, 2))");

  // MaxPool's init is the float -inf (<f8), AvgPool's the int 0 (<i8); adaptive pools write nothing.
  std::stringstream file;
  eqx::tree_serialise_leaves(file, std::tuple{mp, nn::AvgPool3d::init(2), nn::AdaptiveMaxPool1d::init(2)});
  std::stringstream copy(file.str());
  auto [max_header, max_raw] = next_scalar_record(copy);
  double max_init;
  std::memcpy(&max_init, &max_raw, 8);
  CHECK(max_header == "<f8()");
  CHECK(max_init == -std::numeric_limits<double>::infinity());
  auto [avg_header, avg_raw] = next_scalar_record(copy);
  CHECK(avg_header == "<i8()");
  CHECK(avg_raw == 0);
  CHECK(copy.peek() == std::char_traits<char>::eof());
  nn::MaxPool2d other = mp;
  other.init_value = 0;
  auto loaded = eqx::tree_deserialise_leaves(file, std::tuple{other, nn::AvgPool3d::init(2), nn::AdaptiveMaxPool1d::init(2)});
  CHECK(std::get<0>(loaded).init_value == -std::numeric_limits<double>::infinity());
}

TEST_CASE("nn pools misuse messages", "[nn]") {
  CHECK(eqx_test::message_of<eqx::ShapeError>([] { nn::MaxPool2d::init(2)(eqx::zeros({4, 3, 8, 8})); }) ==
        "eqx::nn::MaxPool2d: expected the input to have rank 3 [C, H, W] but got shape [4,3,8,8]; layers act on one "
        "example: call it on one example and batch with eqx::filter_vmap(layer)(xs)");
  CHECK(eqx_test::message_of<eqx::ValueError>([] { nn::AvgPool2d::init(2, {.padding = {3, 0}}); }) ==
        "eqx::nn::AvgPool2d: expected padding at most the kernel size on each side but got padding ((3, 3), (0, 0)) "
        "for kernel_size (2, 2); use less padding");
  CHECK(eqx_test::message_of<eqx::ValueError>([] {
          nn::MaxPool1d::init(2, {.stride = 3, .padding = {{0, 1}}, .use_ceil = true})(eqx::zeros({1, 6}));
        }) == "eqx::nn::MaxPool1d: expected padding at most the kernel size on each side but got padding ((0, 4),) "
              "(with use_ceil's extra stride on the right) for kernel_size (2,); use less padding, or use_ceil = false");
  CHECK(eqx_test::message_of<eqx::ValueError>([] { nn::MaxPool2d::init(2, {.padding = nn::same}); }) ==
        "eqx::nn::MaxPool2d: expected padding as ints or (lo, hi) pairs but got 'SAME'; pooling layers take explicit "
        "padding, as Equinox's");
  CHECK(eqx_test::message_of<eqx::ValueError>([] { nn::MaxPool3d::init({2, 2}); }) ==
        "eqx::nn::MaxPool3d: kernel_size has 2 entries but the layer has 3 spatial dimensions; give one int, or one "
        "per dimension");
  CHECK(eqx_test::message_of<eqx::ShapeError>([] { nn::AdaptiveAvgPool2d::init(4)(eqx::zeros({2, 3, 8})); }) ==
        "eqx::nn::AdaptiveAvgPool2d: expected every spatial size >= target_shape (4, 4) but got input shape [2,3,8]; "
        "pool to a smaller target, or pad the input");
  CHECK(eqx_test::message_of<eqx::ValueError>([] { nn::AdaptiveMaxPool2d::init({0, 2}); }) ==
        "eqx::nn::AdaptiveMaxPool2d: expected target sizes >= 1 but got target_shape (0, 2); every output axis needs "
        "at least one bin");
  CHECK(eqx_test::message_of<eqx::ShapeError>([] { nn::AdaptiveMaxPool1d::init(2)(eqx::zeros({8})); }) ==
        "eqx::nn::AdaptiveMaxPool1d: expected the input to have rank 2 [C, W] but got shape [8]");
}

}  // namespace nn_pool_test
