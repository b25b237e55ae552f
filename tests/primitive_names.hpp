#pragma once
// The names of the foundation's primitives (include/eqx/prim/*.hpp): the
// tables that must cover every primitive (jit, autodiff) check against this.

#include <array>

namespace eqx_test {

inline constexpr std::array kFoundationPrimitives = {
    "neg", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "abs", "sign", "sin", "cos", "tanh", "logistic", "erf",
    "not", "add", "sub", "mul", "div", "pow", "max", "min", "and", "or", "xor", "eq", "ne", "lt", "le", "gt", "ge",
    "select", "convert", "reshape", "transpose", "broadcast_in_dim", "slice", "rev", "pad", "concatenate", "iota",
    "reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "reduce_and", "reduce_or", "argmax", "argmin",
    "dot_general", "gather", "scatter_add", "conv_general_dilated", "reduce_window_max", "reduce_window_sum", "select_and_gather_add",
    "select_and_scatter_add",
    "threefry2x32", "shift_left", "shift_right_logical", "rem", "bitcast_convert_type", "erf_inv", "sort_key_val"};

}  // namespace eqx_test
