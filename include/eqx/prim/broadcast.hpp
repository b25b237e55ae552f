#pragma once
// Iteration over numpy-broadcast operands, shared by elementwise kernels.
//
// The output's index space is cut into contiguous segments along its last
// (collapsed) dimension; in each segment every input either advances with the
// output (stride 1) or repeats one element (stride 0). Kernels then run one
// vectorised loop per segment (a binary op's tile, for instance).

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "eqx/core/error.hpp"
#include "eqx/core/shape.hpp"
#include "eqx/core/threads.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx::detail {

/// numpy broadcasting of two shapes; throws naming `op` if they do not fit.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  std::size_t r = std::max(a.size(), b.size());
  Shape out = Shape::filled(r, 1);
  for (std::size_t i = 0; i < r; ++i) {
    std::int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    std::int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ShapeError("eqx::" + std::string(op) + ": shapes " + a.str() + " and " + b.str() +
                       " cannot be broadcast together (axis " + std::to_string(i) + " of the result: " +
                       std::to_string(da) + " vs " + std::to_string(db) +
                       "); dimensions must be equal or 1, aligned from the right");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

/// Strides of N inputs in the (collapsed) index space of the output.
template <std::size_t N>
struct BroadcastPlan {
  Shape dims;
  std::array<Shape, N> strides;
};

/// Collapses an output index space and per-input strides (in elements,
/// any sign; 0 repeats) into the fewest axes that iterate the same way.
template <std::size_t N>
BroadcastPlan<N> plan_strided(const Shape& out, const std::array<Shape, N>& full) {
  BroadcastPlan<N> p;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 1) continue;  // size-1 output axes move nothing
    bool merge = !p.dims.empty();
    for (std::size_t k = 0; k < N && merge; ++k) merge = p.strides[k].back() == full[k][i] * out[i];
    if (merge) {
      p.dims[p.dims.size() - 1] *= out[i];
      for (std::size_t k = 0; k < N; ++k) p.strides[k][p.strides[k].size() - 1] = full[k][i];
    } else {
      p.dims.push_back(out[i]);
      for (std::size_t k = 0; k < N; ++k) p.strides[k].push_back(full[k][i]);
    }
  }
  if (p.dims.empty()) {
    p.dims.push_back(1);
    for (auto& s : p.strides) s.push_back(0);
  }
  return p;
}

/// Strides of a contiguous input of shape `in`, right-aligned against `out`
/// as numpy broadcasting aligns them (0 where the input has size 1).
inline Shape broadcast_strides(const Shape& out, const Shape& in) {
  const std::size_t r = out.size(), off = r - in.size();
  Shape st = Shape::filled(r, 0);
  std::int64_t stride = 1;
  for (std::size_t i = r; i-- > off;) {
    std::int64_t d = in[i - off];
    st[i] = d == 1 ? 0 : stride;
    stride *= d;
  }
  return st;
}

template <std::size_t N>
BroadcastPlan<N> plan_broadcast(const Shape& out, const std::array<const Shape*, N>& ins) {
  std::array<Shape, N> full;
  for (std::size_t k = 0; k < N; ++k) full[k] = broadcast_strides(out, *ins[k]);
  return plan_strided<N>(out, full);
}

/// Calls seg(offsets, out_offset, len) for the output elements [begin, end),
/// in segments along the last collapsed axis; offsets[k] is input k's element
/// offset at the segment start, and input k's stride there is
/// `plan.strides[k].back()` (0 or 1 for broadcasting, anything for views).
template <std::size_t N, class Seg>
void for_each_segment(const BroadcastPlan<N>& p, std::int64_t begin, std::int64_t end, Seg&& seg) {
  const std::size_t r = p.dims.size();
  const std::int64_t inner = p.dims[r - 1];
  Shape idx = Shape::filled(r, 0);
  std::int64_t rem = begin;
  for (std::size_t i = r; i-- > 0;) {
    idx[i] = rem % p.dims[i];
    rem /= p.dims[i];
  }
  std::array<std::int64_t, N> off{};
  for (std::size_t k = 0; k < N; ++k)
    for (std::size_t i = 0; i < r; ++i) off[k] += idx[i] * p.strides[k][i];
  std::int64_t pos = begin;
  while (pos < end) {
    std::int64_t len = std::min(inner - idx[r - 1], end - pos);
    seg(off, pos, len);
    pos += len;
    for (std::size_t k = 0; k < N; ++k) off[k] += len * p.strides[k][r - 1];
    idx[r - 1] += len;
    // carry into outer axes
    for (std::size_t i = r - 1; i > 0 && idx[i] == p.dims[i]; --i) {
      for (std::size_t k = 0; k < N; ++k) off[k] += p.strides[k][i - 1] - p.dims[i] * p.strides[k][i];
      idx[i] = 0;
      ++idx[i - 1];
    }
  }
}

}  // namespace eqx::detail

namespace eqx::detail {

/// A one-operand elementwise kernel (a unary op, a dtype conversion), given
/// its tile for the operand's and output's dtypes: the tile over threads'
/// chunks, so the loop over threads is compiled once, not per op and dtype.
/// Usage: `run_unary(in[0], out[0], &unary_tile<Op, T>, Op::cost);`
inline void run_unary(const View& in, const View& out, TileKernel tile, std::int64_t cost) {
  const char* a = static_cast<const char*>(in.data);
  char* o = static_cast<char*>(out.data);
  const std::size_t in_size = itemsize(in.dtype), out_size = itemsize(out.dtype);
  parallel_for(in.numel(), cost, [&](std::int64_t b, std::int64_t e) {
    const void* operand = a + b * in_size;
    tile(&operand, o + b * out_size, e - b);
  });
}

/// out[i...] = base[sum_k i_k * strides[k]] for every index of `out_shape`:
/// the kernel of transpose, broadcast_in_dim, slice and rev.
template <class T>
void strided_copy(const T* base, const Shape& out_shape, const Shape& strides, T* out) {
  auto plan = plan_strided<1>(out_shape, {strides});
  const std::int64_t s = plan.strides[0].back();
  parallel_for(out_shape.numel(), 1, [&](std::int64_t b, std::int64_t e) {
    for_each_segment(plan, b, e, [&](const std::array<std::int64_t, 1>& off, std::int64_t pos, std::int64_t len) {
      const T* src = base + off[0];
      T* dst = out + pos;
      if (s == 1) std::copy(src, src + len, dst);
      else if (s == 0) std::fill(dst, dst + len, *src);
      else for (std::int64_t i = 0; i < len; ++i) dst[i] = src[i * s];
    });
  });
}

}  // namespace eqx::detail
