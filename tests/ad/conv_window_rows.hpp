#pragma once
// check_grads rows for conv_general_dilated, reduce_window_max and
// reduce_window_sum (being written).

#include <vector>

#include "ad/check_grads.hpp"

namespace eqx_test {

inline std::vector<Row> conv_window_rows() { return {}; }

}  // namespace eqx_test
