#pragma once
// check_grads rows for conv_general_dilated, reduce_window_sum and
// reduce_window_max: every padding / stride / dilation / group combination
// the transpose rules have a separate case for. Inputs are random float64,
// so reduce_window_max has no ties (its tie rule is tested on exact numbers
// in cnn_gradient_test.cpp).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ad/check_grads.hpp"

namespace eqx_test {

inline std::vector<Row> conv_window_rows() {
  using Ints = std::vector<std::int64_t>;
  std::vector<Row> t;
  std::uint32_t seed = 200;

  // conv(lhs, rhs) with both operands differentiated.
  auto conv = [&](std::string name, eqx::Shape lhs, eqx::Shape rhs, Ints strides, eqx::Padding padding,
                  Ints lhs_dilation = {}, Ints rhs_dilation = {}, std::int64_t groups = 1) {
    Fn f = [=](const std::vector<Array>& v) {
      return eqx::conv(v[0], v[1], strides, padding, lhs_dilation, rhs_dilation, groups);
    };
    t.push_back({"conv_general_dilated/" + name, f, {random_f64(seed, lhs), random_f64(seed + 1, rhs)}});
    seed += 2;
  };
  conv("valid", {1, 2, 5, 5}, {3, 2, 3, 3}, {}, "VALID");
  conv("same-padded-batch2", {2, 2, 6, 6}, {3, 2, 3, 3}, {}, "SAME");
  conv("strided", {1, 2, 7, 7}, {2, 2, 3, 3}, {2, 2}, "VALID");
  conv("strided-padded", {2, 1, 6, 5}, {2, 1, 3, 3}, {2, 2}, "SAME");
  // (8 - 3) / 2 is not whole: the last input row and column are never read.
  conv("stride-skips-tail", {1, 2, 8, 8}, {2, 2, 3, 3}, {2, 2}, "VALID");
  conv("negative-padding", {1, 2, 6, 7}, {2, 2, 2, 3}, {}, {{-1, 1}, {0, -2}});
  conv("asymmetric-padding", {1, 2, 5, 5}, {2, 2, 3, 3}, {}, {{2, 0}, {0, 1}});
  // Padding wider than the kernel: some outputs read padding only.
  conv("padding-beyond-kernel", {1, 1, 4, 4}, {2, 1, 2, 2}, {}, {{3, 2}, {2, 3}});
  conv("lhs-dilation", {1, 2, 4, 4}, {2, 2, 3, 3}, {}, {{1, 1}, {2, 0}}, {2, 2});
  conv("lhs-dilation-strided", {1, 2, 4, 5}, {2, 2, 2, 3}, {2, 1}, {{1, 2}, {0, 1}}, {2, 3});
  conv("rhs-dilation", {1, 2, 7, 7}, {2, 2, 3, 3}, {}, "VALID", {}, {2, 2});
  conv("rhs-dilation-strided-same", {2, 2, 7, 6}, {3, 2, 2, 3}, {2, 1}, "SAME", {}, {3, 2});
  conv("groups-2", {2, 4, 5, 5}, {6, 2, 3, 3}, {}, {{1, 1}, {1, 1}}, {}, {}, 2);
  conv("depthwise", {1, 3, 5, 5}, {6, 1, 3, 3}, {}, "SAME", {}, {}, 3);
  conv("1d", {2, 3, 9}, {4, 3, 3}, {2}, {{1, 2}}, {}, {2});
  conv("3d", {1, 2, 4, 5, 4}, {2, 2, 2, 3, 2}, {1, 2, 1}, {{1, 0}, {1, 1}, {0, 1}});
  conv("3d-groups-dilated", {2, 4, 3, 4, 3}, {4, 2, 2, 2, 2}, {1, 1, 2}, {{0, 1}, {-1, 1}, {1, 1}}, {1, 2, 1},
       {1, 1, 2}, 2);
  conv("everything", {2, 4, 6, 5}, {4, 2, 3, 2}, {2, 3}, {{2, -1}, {-1, 3}}, {2, 1}, {1, 2}, 2);
  // One operand differentiated, the other a constant the function closes over.
  {
    const Array w = random_f64(seed++, {3, 2, 3, 3}), x = random_f64(seed++, {2, 2, 5, 6});
    t.push_back({"conv_general_dilated/lhs-only",
                 [w](const std::vector<Array>& v) { return eqx::conv(v[0], w, {2, 1}, "SAME"); },
                 {random_f64(seed++, {2, 2, 5, 6})}});
    t.push_back({"conv_general_dilated/rhs-only",
                 [x](const std::vector<Array>& v) { return eqx::conv(x, v[0], {1, 2}, {{1, 0}, {0, 2}}); },
                 {random_f64(seed++, {3, 2, 3, 3})}});
    // Nonlinear in both: the rules' outputs are combined with other ops.
    t.push_back({"conv_general_dilated/squared",
                 [](const std::vector<Array>& v) {
                   Array y = eqx::conv(v[0], v[1], {}, "SAME");
                   return y * y;
                 },
                 {random_f64(seed++, {1, 2, 4, 4}), random_f64(seed++, {2, 2, 3, 3})}});
  }

  // reduce_window over all axes of x.
  auto window = [&](std::string op, std::string name, eqx::Shape shape, Ints dims, Ints strides,
                    eqx::Padding padding = "VALID", Ints dilation = {}) {
    Fn f = [=](const std::vector<Array>& v) { return eqx::reduce_window(v[0], op, dims, strides, padding, dilation); };
    t.push_back({"reduce_window_" + op + "/" + name, f, {random_f64(seed++, shape)}});
  };
  for (std::string op : {"sum", "max"}) {
    window(op, "overlap", {5, 6}, {2, 3}, {1, 2});
    window(op, "stride-equals-window", {6, 6}, {2, 2}, {2, 2});
    window(op, "stride-beyond-window", {7, 8}, {2, 2}, {3, 3});
    window(op, "padded", {5, 5}, {3, 3}, {2, 2}, {{1, 1}, {2, 0}});
    window(op, "same-padded", {5, 6}, {3, 2}, {1, 1}, "SAME");
    window(op, "dilated", {7, 6}, {2, 2}, {1, 1}, "VALID", {2, 3});
    window(op, "dilated-strided-padded", {8, 7}, {3, 2}, {2, 3}, {{1, 2}, {0, 2}}, {2, 2});
    window(op, "rank-1", {9}, {3}, {2}, {{1, 1}});
    window(op, "rank-3", {4, 5, 3}, {2, 3, 2}, {1, 2, 1}, {{0, 1}, {1, 1}, {1, 0}});
    // NCHW pooling: a window of 1 on the batch and channel axes.
    window(op, "nchw-pool-2x2", {2, 3, 6, 6}, {1, 1, 2, 2}, {1, 1, 2, 2});
    window(op, "nchw-pool-3x3-overlap", {2, 2, 7, 7}, {1, 1, 3, 3}, {1, 1, 2, 2}, "SAME");
  }
  // Padding wider than the window: edge windows hold only padding (sum only:
  // for max they are -inf, and finite differences of -inf are NaN).
  window("sum", "padding-beyond-window", {4, 5}, {2, 2}, {1, 2}, {{3, 2}, {2, 3}});
  t.push_back({"reduce_window_max/max_pool-then-square",
               [](const std::vector<Array>& v) {
                 Array y = eqx::max_pool(v[0], {2, 2}, {1, 1});
                 return y * y;
               },
               {random_f64(seed++, {2, 2, 5, 5})}});
  // reduce_window_max's JVP and VJP primitives themselves (linear in their first operand; the operand only
  // chooses, so its derivative is zero away from ties).
  t.push_back({"select_and_gather_add/padded-overlap",
               [](const std::vector<Array>& v) {
                 return eqx::bind1(eqx::prim::select_and_gather_add, {v[0], v[1]}, eqx::detail::window_params({1, 2, 3}, {1, 1, 2}, {0, 0, 1, 1, 0, 1}, {1, 1, 1}));
               },
               {random_f64(seed++, {2, 5, 6}), random_f64(seed++, {2, 5, 6})}});
  t.push_back({"select_and_scatter_add/padded-overlap",
               [](const std::vector<Array>& v) {
                 return eqx::bind1(eqx::prim::select_and_scatter_add, {v[0], v[1]}, eqx::detail::window_params({1, 2, 3}, {1, 1, 2}, {0, 0, 1, 1, 0, 1}, {1, 1, 1}));
               },
               {random_f64(seed++, {2, 6, 3}), random_f64(seed++, {2, 5, 6})}});
  t.push_back({"reduce_window_sum/avg_pool",
               [](const std::vector<Array>& v) { return eqx::avg_pool(v[0], {3, 3}, {2, 2}, "SAME"); },
               {random_f64(seed++, {2, 2, 6, 7})}});
  return t;
}

}  // namespace eqx_test
