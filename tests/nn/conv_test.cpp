// eqx::nn::Conv / Conv1d/2d/3d and ConvTranspose / ConvTranspose1d/2d/3d:
// forward and gradients (input, weight, bias) against float64 references
// from tests/nn/fixtures_conv.py, Equinox's initialisation and key split,
// vmap / jit, printing, serialisation and misuse.
//
// References (see the script): Conv cases with symmetric int padding are
// torch.nn.Conv1d/2d/3d itself (weight [C_out, C_in/groups, *k] one to one,
// bias [C_out] reshaped to [C_out, 1, ...], padding_mode 'zeros'/'reflect'/
// 'replicate'/'circular'); asymmetric pairs and SAME/SAME_LOWER are
// torch.nn.functional.pad then a VALID torch conv; pads wider than the input
// index with numpy.pad(arange(n), mode). ConvTranspose cases with symmetric
// int padding are torch.nn.functional.conv_transpose1d/2d/3d (the op of
// torch.nn.ConvTranspose*d) with the weight flipped spatially and its channel
// axes swapped per group; the others (asymmetric pairs, SAME/SAME_LOWER,
// output_padding with SAME, CIRCULAR) are torch.autograd.grad of the forward
// conv w.r.t. its input (the definition of the transposed convolution).

#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>
#include <utility>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>
#include <eqx/nn/conv.hpp>

#include "check.hpp"
#include "nn/fixtures.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace nn_conv_test {

namespace nn = eqx::nn;
using eqx_test::check_close;
using eqx_test::fixture;

namespace {

/// Sets the layer's parameters from fixture case `c` and checks y and the
/// gradients of sum(y * ct) w.r.t. x, weight and bias.
template <class L>
void check_case(std::string_view c, L layer, eqx::DType dtype, double rtol) {
  INFO("case " << c << " in " << eqx::dtype_name(dtype));
  layer.weight = eqx::astype(fixture(c, "weight"), dtype);
  if (*layer.use_bias) layer.bias = eqx::astype(fixture(c, "bias"), dtype);
  const eqx::Array x = eqx::astype(fixture(c, "x"), dtype), ct = eqx::astype(fixture(c, "ct"), dtype);
  const eqx::Array y = layer(x);
  CHECK(y.dtype() == dtype);
  check_close(y, fixture(c, "y"), rtol, "y");
  auto loss = [](const std::pair<L, eqx::Array>& p, const eqx::Array& ct) { return eqx::sum(p.first(p.second) * ct); };
  auto [g, gx] = eqx::filter_grad(loss)(std::pair{layer, x}, ct);
  check_close(gx, fixture(c, "grad_x"), rtol, "grad_x");
  check_close(g.weight, fixture(c, "grad_weight"), rtol, "grad_weight");
  if (*layer.use_bias) check_close(g.bias, fixture(c, "grad_bias"), rtol, "grad_bias");
  else CHECK_FALSE(g.bias.has_value());
}

/// Runs a case in float64 (1e-10) and float32 (1e-5); make(dtype) builds the layer.
template <class Make>
void check_both(std::string_view c, Make make) {
  check_case(c, make(eqx::float64), eqx::float64, 1e-10);
  check_case(c, make(eqx::float32), eqx::float32, 1e-5);
}

const eqx::random::Key key = eqx::random::key(0);

/// Requires U(-lim, lim): bounds, mean and variance within ~5 standard errors.
void check_uniform(const eqx::Array& p, double lim) {
  std::vector<double> v = eqx::astype(p, eqx::float64).to_vector<double>();
  double mean = 0, sq = 0, lo = 1, hi = -1;
  for (double f : v) mean += f, sq += f * f, lo = std::min(lo, f), hi = std::max(hi, f);
  mean /= v.size();
  const double var = sq / v.size() - mean * mean;
  CHECK(lo >= -lim);
  CHECK(hi < lim);
  CHECK(std::abs(mean) < 5 * lim / std::sqrt(3.0 * v.size()));
  CHECK(var == Approx(lim * lim / 3).epsilon(5 * std::sqrt(0.8 / v.size())));
}

}  // namespace

TEST_CASE("nn::Conv1d/2d/3d match torch: stride, dilation, groups, padding kinds (float64, float32)", "[nn]") {
  check_both("conv1d_stride_pad",
             [](eqx::DType dt) { return nn::Conv1d::init(3, 4, 3, key, {.stride = 2, .padding = 1, .dtype = dt}); });
  check_both("conv2d_groups_pairs", [](eqx::DType dt) {
    return nn::Conv2d::init(4, 6, {3, 2}, key,
                            {.stride = {1, 2}, .padding = {{1, 2}, {0, 1}}, .dilation = {2, 1}, .groups = 2, .dtype = dt});
  });
  // The generic Conv with num_spatial_dims = 2 is the same layer.
  check_both("conv2d_groups_pairs", [](eqx::DType dt) {
    return nn::Conv::init(2, 4, 6, {3, 2}, key,
                          {.stride = {1, 2}, .padding = {{1, 2}, {0, 1}}, .dilation = {2, 1}, .groups = 2, .dtype = dt});
  });
  check_both("conv2d_same", [](eqx::DType dt) {
    return nn::Conv2d::init(2, 3, {4, 3}, key, {.stride = {2, 1}, .padding = nn::same, .dtype = dt});
  });
  check_both("conv2d_same_lower", [](eqx::DType dt) {
    return nn::Conv2d::init(2, 3, {4, 3}, key, {.stride = {2, 1}, .padding = nn::same_lower, .dtype = dt});
  });
  check_both("conv2d_valid_nobias", [](eqx::DType dt) {
    return nn::Conv2d::init(3, 2, 2, key, {.padding = nn::valid, .use_bias = false, .dtype = dt});
  });
  check_both("conv3d_perdim", [](eqx::DType dt) {
    return nn::Conv3d::init(2, 3, 2, key, {.padding = {1, 0, 1}, .dilation = {1, 2, 1}, .dtype = dt});
  });
}

TEST_CASE("nn::Conv padding modes reflect / replicate / circular match torch and numpy.pad", "[nn]") {
  check_both("conv2d_reflect", [](eqx::DType dt) {
    return nn::Conv2d::init(2, 3, 3, key, {.padding = 2, .padding_mode = nn::PaddingMode::reflect, .dtype = dt});
  });
  check_both("conv2d_replicate", [](eqx::DType dt) {
    return nn::Conv2d::init(2, 3, 3, key,
                            {.stride = 2, .padding = {1, 2}, .padding_mode = nn::PaddingMode::replicate, .dtype = dt});
  });
  check_both("conv1d_circular_same", [](eqx::DType dt) {
    return nn::Conv1d::init(2, 2, 4, key, {.padding = nn::same, .padding_mode = nn::PaddingMode::circular, .dtype = dt});
  });
  check_both("conv1d_replicate_lower", [](eqx::DType dt) {
    return nn::Conv1d::init(2, 2, 4, key,
                            {.padding = nn::same_lower, .padding_mode = nn::PaddingMode::replicate, .dtype = dt});
  });
  // Wider than the input (numpy.pad's definition; torch refuses these).
  check_both("conv2d_reflect_wide", [](eqx::DType dt) {
    return nn::Conv2d::init(1, 2, 2, key,
                            {.padding = {{4, 3}, {2, 5}}, .padding_mode = nn::PaddingMode::reflect, .dtype = dt});
  });
  check_both("conv1d_circular_wide", [](eqx::DType dt) {
    return nn::Conv1d::init(2, 1, 3, key, {.padding = {{7, 4}}, .padding_mode = nn::PaddingMode::circular, .dtype = dt});
  });
  // Hand-derived: a [1]-kernel of weight 1 shows the padded input itself.
  for (auto [mode, want] : {std::pair{nn::PaddingMode::reflect, std::vector<float>{3, 2, 1, 2, 3, 4, 3, 2}},
                            std::pair{nn::PaddingMode::replicate, std::vector<float>{1, 1, 1, 2, 3, 4, 4, 4}},
                            std::pair{nn::PaddingMode::circular, std::vector<float>{3, 4, 1, 2, 3, 4, 1, 2}},
                            std::pair{nn::PaddingMode::zeros, std::vector<float>{0, 0, 1, 2, 3, 4, 0, 0}}}) {
    nn::Conv1d id = nn::Conv1d::init(1, 1, 1, key, {.padding = 2, .use_bias = false, .padding_mode = mode});
    id.weight = eqx::ones({1, 1, 1});
    eqx_test::check<float>(id(eqx::array(std::vector<float>{1, 2, 3, 4}, {1, 4})), {1, 8}, want);
  }
}

TEST_CASE("nn::ConvTranspose1d/2d/3d match torch conv_transpose and the transpose of the forward conv", "[nn]") {
  check_both("convt1d_torch", [](eqx::DType dt) {
    return nn::ConvTranspose1d::init(4, 2, 3, key, {.stride = 2, .padding = 1, .output_padding = 1, .dtype = dt});
  });
  check_both("convt2d_groups_pairs", [](eqx::DType dt) {
    return nn::ConvTranspose2d::init(4, 6, {3, 2}, key,
                                     {.stride = {2, 3},
                                      .padding = {{2, 0}, {1, 1}},
                                      .output_padding = {1, 0},
                                      .dilation = {1, 2},
                                      .groups = 2,
                                      .dtype = dt});
  });
  check_both("convt2d_same", [](eqx::DType dt) {
    return nn::ConvTranspose2d::init(2, 3, 4, key, {.stride = 2, .padding = nn::same, .dtype = dt});
  });
  check_both("convt2d_same", [](eqx::DType dt) {  // the generic ConvTranspose
    return nn::ConvTranspose::init(2, 2, 3, 4, key, {.stride = 2, .padding = nn::same, .dtype = dt});
  });
  check_both("convt1d_same_lower_outpad", [](eqx::DType dt) {
    return nn::ConvTranspose1d::init(2, 2, 4, key,
                                     {.stride = 2, .padding = nn::same_lower, .output_padding = 1, .dtype = dt});
  });
  check_both("convt1d_same_wide_stride", [](eqx::DType dt) {
    return nn::ConvTranspose1d::init(2, 2, 2, key, {.stride = 3, .padding = nn::same, .dtype = dt});
  });
  check_both("convt3d_nobias", [](eqx::DType dt) {
    return nn::ConvTranspose3d::init(2, 2, 2, key,
                                     {.stride = {2, 1, 2}, .padding = nn::valid, .groups = 2, .use_bias = false, .dtype = dt});
  });
  check_both("convt2d_torch_dilated", [](eqx::DType dt) {
    return nn::ConvTranspose2d::init(3, 2, 3, key,
                                     {.stride = {1, 2}, .padding = {2, 1}, .output_padding = {0, 1}, .dilation = 2, .dtype = dt});
  });
  check_both("convt1d_circular", [](eqx::DType dt) {
    return nn::ConvTranspose1d::init(2, 3, 4, key,
                                     {.stride = 2, .padding = nn::same, .padding_mode = nn::PaddingMode::circular, .dtype = dt});
  });
  check_both("convt2d_circular_lower", [](eqx::DType dt) {
    return nn::ConvTranspose2d::init(
        2, 2, {4, 3}, key,
        {.stride = {3, 2}, .padding = nn::same_lower, .padding_mode = nn::PaddingMode::circular, .dtype = dt});
  });
}

TEST_CASE("nn::Conv and ConvTranspose: Equinox's initialisation and key split", "[nn]") {
  nn::Conv2d conv = nn::Conv2d::init(4, 64, 3, eqx::random::key(3), {.groups = 2});
  CHECK(conv.weight.shape() == eqx::Shape{64, 2, 3, 3});
  CHECK(conv.bias.shape() == eqx::Shape{64, 1, 1});
  CHECK(conv.weight.dtype() == eqx::float32);
  const double lim = 1 / std::sqrt(2.0 * 9);  // 1/sqrt((C_in/groups) * prod(kernel))
  check_uniform(conv.weight, lim);
  check_uniform(conv.bias, lim);
  // weight from the first key of split(key, 2), bias from the second, as Equinox.
  auto keys = eqx::random::split_keys(eqx::random::key(3), 2);
  CHECK(eqx::tree_equal(conv.weight, eqx::random::uniform(keys[0], {64, 2, 3, 3}, eqx::float32, -lim, lim)));
  CHECK(eqx::tree_equal(conv.bias, eqx::random::uniform(keys[1], {64, 1, 1}, eqx::float32, -lim, lim)));

  nn::ConvTranspose1d up = nn::ConvTranspose1d::init(6, 33, 4, eqx::random::key(4), {.groups = 3, .dtype = eqx::float64});
  CHECK(up.weight.shape() == eqx::Shape{33, 2, 4});
  CHECK(up.bias.shape() == eqx::Shape{33, 1});
  CHECK(up.weight.dtype() == eqx::float64);
  check_uniform(up.weight, 1 / std::sqrt(2.0 * 4));
  nn::Conv3d c3 = nn::Conv3d::init(1, 2, {1, 2, 3}, key, {.use_bias = false});
  CHECK(c3.weight.shape() == eqx::Shape{2, 1, 1, 2, 3});
  CHECK_FALSE(c3.bias.has_value());
  CHECK(conv(eqx::zeros({4, 5, 5})).shape() == eqx::Shape{64, 3, 3});
}

TEST_CASE("nn::Conv2d and ConvTranspose2d under filter_vmap and filter_jit", "[nn]") {
  nn::Conv2d conv = nn::Conv2d::init(2, 3, 3, eqx::random::key(1),
                                     {.stride = 2, .padding = nn::same, .padding_mode = nn::PaddingMode::circular});
  nn::ConvTranspose2d up = nn::ConvTranspose2d::init(3, 2, 3, eqx::random::key(2), {.stride = 2, .padding = 1, .output_padding = 1});
  const eqx::Array xs = eqx::sin(eqx_test::seq<float>({3, 2, 5, 6}));
  auto loop = [&](auto f, const eqx::Array& b) {
    std::vector<eqx::Array> ys;
    for (int i = 0; i < b.shape()[0]; ++i) ys.push_back(f(eqx::take(b, eqx::array(i), 0)));
    return eqx::stack(ys);
  };
  const eqx::Array looped = loop(conv, xs);
  CHECK(looped.shape() == eqx::Shape{3, 3, 3, 3});
  check_close(eqx::filter_vmap(conv)(xs), looped, 1e-6, "vmap conv");
  const eqx::Array up_looped = loop(up, looped);
  CHECK(up_looped.shape() == eqx::Shape{3, 2, 6, 6});
  auto jitted = eqx::filter_jit([](const nn::Conv2d& c, const nn::ConvTranspose2d& u, const eqx::Array& xs) {
    return eqx::filter_vmap(u)(eqx::filter_vmap(c)(xs));
  });
  check_close(jitted(conv, up, xs), up_looped, 1e-6, "jit(vmap) conv then conv transpose");
}

TEST_CASE("nn::Conv2d prints as Equinox's Conv2d and serialises weight then bias", "[nn]") {
  nn::Conv2d conv = nn::Conv2d::init(3, 8, 3, key, {.stride = 2, .padding = 1});
  CHECK(fmt::format("{}", conv) ==
        "Conv2d(\n  num_spatial_dims=2,\n  weight=f32[8,3,3,3],\n  bias=f32[8,1,1],\n  in_channels=3,\n  out_channels=8,\n"
        "  kernel_size=(3, 3),\n  stride=(2, 2),\n  padding=((1, 1), (1, 1)),\n  dilation=(1, 1),\n  groups=1,\n"
        "  use_bias=True,\n  padding_mode='ZEROS'\n)");
  CHECK(fmt::format("{}", nn::ConvTranspose1d::init(2, 2, 3, key, {.padding = nn::same_lower, .use_bias = false})) ==
        "ConvTranspose1d(\n  num_spatial_dims=1,\n  weight=f32[2,2,3],\n  bias=None,\n  in_channels=2,\n  out_channels=2,\n"
        "  kernel_size=(3,),\n  stride=(1,),\n  padding='SAME_LOWER',\n  output_padding=(0,),\n  dilation=(1,),\n"
        "  groups=1,\n  use_bias=False,\n  padding_mode='ZEROS'\n)");

  std::stringstream file;
  eqx::tree_serialise_leaves(file, conv);
  std::stringstream copy(file.str());
  CHECK(eqx::read_npy(copy).shape() == eqx::Shape{8, 3, 3, 3});
  CHECK(eqx::read_npy(copy).shape() == eqx::Shape{8, 1, 1});
  CHECK(copy.peek() == std::char_traits<char>::eof());
  nn::Conv2d loaded = eqx::tree_deserialise_leaves(file, nn::Conv2d::init(3, 8, 3, eqx::random::key(9), {.stride = 2, .padding = 1}));
  CHECK(eqx::tree_equal(loaded, conv));
  // No bias: one record.
  std::stringstream one;
  eqx::tree_serialise_leaves(one, nn::Conv1d::init(2, 4, 3, key, {.use_bias = false}));
  CHECK(eqx::read_npy(one).shape() == eqx::Shape{4, 2, 3});
  CHECK(one.peek() == std::char_traits<char>::eof());
}

TEST_CASE("nn::Conv and ConvTranspose misuse messages", "[nn]") {
  nn::Conv2d conv = nn::Conv2d::init(3, 4, 3, key);
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { conv(eqx::zeros({8, 3, 5, 5})); }) ==
        "eqx::nn::Conv2d: expected the input to have rank 3 [C_in, H, W] but got shape [8,3,5,5]; layers act on one "
        "example: call it on one example and batch with eqx::filter_vmap(layer)(xs)");
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { conv(eqx::zeros({4, 5, 5})); }) ==
        "eqx::nn::Conv2d: expected the input to have 3 channels (axis 0) but got shape [4,5,5]");
  CHECK(eqx_test::message_of<eqx::ShapeError>([] { nn::Conv3d::init(1, 1, 1, key)(eqx::zeros({1, 2})); }) ==
        "eqx::nn::Conv3d: expected the input to have rank 4 [C_in, D, H, W] but got shape [1,2]");
  CHECK(eqx_test::message_of<eqx::ValueError>([] { nn::Conv2d::init(6, 4, 3, key, {.groups = 4}); }) ==
        "eqx::nn::Conv2d: expected groups >= 1 dividing in_channels and out_channels but got groups 4 for "
        "in_channels 6 and out_channels 4; choose groups that divides both");
  CHECK(eqx_test::message_of<eqx::ValueError>([] { nn::Conv2d::init(3, 4, 3, key, {.padding = {1, 2, 3}}); }) ==
        "eqx::nn::Conv2d: expected padding for 2 spatial dimensions but got 3 entries; give one int, one int per "
        "dimension, or one (lo, hi) pair per dimension");
  CHECK(eqx_test::message_of<eqx::ValueError>([] { nn::Conv2d::init(3, 4, {3, 3, 3}, key); }) ==
        "eqx::nn::Conv2d: kernel_size has 3 entries but the layer has 2 spatial dimensions; give one int, or one per "
        "dimension");
  CHECK(eqx_test::message_of<eqx::DTypeError>([] { nn::Conv1d::init(3, 4, 3, key, {.dtype = eqx::int32}); }) ==
        "eqx::nn::Conv1d: dtype int32 is not a floating dtype; parameters are float32 (the default) or float64");
  CHECK(eqx_test::message_of<eqx::ValueError>(
            [] { nn::ConvTranspose2d::init(3, 4, 3, key, {.stride = {2, 2}, .output_padding = {1, 2}}); }) ==
        "eqx::nn::ConvTranspose2d: expected 0 <= output_padding < stride in every dimension but got output_padding "
        "(1, 2) and stride (2, 2); output_padding picks one of the stride input sizes a strided conv maps to one "
        "output size");
  CHECK(eqx_test::message_of<eqx::ValueError>([] {
          nn::ConvTranspose1d::init(3, 4, 3, key, {.padding = 1, .padding_mode = nn::PaddingMode::reflect});
        }) == "eqx::nn::ConvTranspose1d: expected padding_mode ZEROS or CIRCULAR but got REFLECT; Equinox's "
              "ConvTranspose does not implement REFLECT or REPLICATE");
  CHECK(eqx_test::message_of<eqx::ValueError>([] {
          nn::ConvTranspose1d::init(3, 4, 3, key, {.padding = 1, .padding_mode = nn::PaddingMode::circular});
        }) == "eqx::nn::ConvTranspose1d: expected padding nn::same or nn::same_lower and output_padding 0 with "
              "padding_mode CIRCULAR but got output_padding (0,) and another padding; Equinox implements CIRCULAR "
              "for those only");
  CHECK(eqx_test::message_of<eqx::ValueError>([] {
          nn::ConvTranspose1d::init(3, 4, 3, key,
                                    {.stride = 2, .padding = nn::same, .output_padding = 1, .padding_mode = nn::PaddingMode::circular});
        }) == "eqx::nn::ConvTranspose1d: expected padding nn::same or nn::same_lower and output_padding 0 with "
              "padding_mode CIRCULAR but got output_padding (1,); Equinox implements CIRCULAR for those only");
}

}  // namespace nn_conv_test
