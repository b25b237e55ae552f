#pragma once
// reduce_window_max and reduce_window_sum: lax's windowed reductions over
// every axis of the operand (pooling is a window of 1 on the batch and
// channel axes).
//
// Parameters, one entry per operand axis (padding as flattened lo/hi pairs
// [lo0, hi0, lo1, hi1, ...], all >= 0): window_dimensions, window_strides,
// padding, window_dilation. Padding cells hold the monoid's identity: -inf
// (the lowest value for integers) for max, 0 for sum. Output size per axis:
// floor((in + lo + hi - ((window - 1) * dilation + 1)) / stride) + 1.
//
// Differentiation (rules above the primitive structs): sum is linear and its
// transpose is a pad + reduce_window_sum; max routes each window's tangent
// to the window's first maximum with two primitives of its own, as XLA and
// JAX do: select_and_gather_add (the JVP: each window's tangent at its
// maximum) and select_and_scatter_add (the VJP: each window's cotangent
// added at its maximum), each the other's transpose.
//
// Kernels walk each window through per-axis tables of its taps
// (WindowGeometry), computed once per call: no division per element, and
// a window wholly inside the operand is a list of fixed offsets. Max pools
// over the last two axes without padding or dilation, the layers' case,
// have row kernels of their own (PlanePool) that the compiler vectorises.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/threads.hpp"
#include "eqx/prim/layout.hpp"
#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx::detail {

/// The parameters of a reduce_window primitive, fully resolved.
struct WindowDims {
  Ints window, strides, padding, dilation;
  static WindowDims from(const Params& p) {
    return {p.get<Ints>("window_dimensions"), p.get<Ints>("window_strides"), p.get<Ints>("padding"),
            p.get<Ints>("window_dilation")};
  }
};

/// Checks the lengths and values of window_dimensions, window_strides and
/// window_dilation (everything that padding strings are resolved from).
inline void window_check_params(std::string_view op, const AbstractArray& x, const Ints& window, const Ints& strides,
                                const Ints& dilation) {
  const std::string pre = "eqx::" + std::string(op) + ": operand " + x.str() + ": ";
  const std::size_t r = x.shape.size();
  auto check = [&](const char* what, const Ints& v, std::int64_t min) {
    if (v.size() != r)
      throw ValueError(pre + what + " " + ints_str(v) + " has " + std::to_string(v.size()) +
                       " entries but the operand has rank " + std::to_string(r) + "; give one entry per axis");
    for (auto s : v)
      if (s < min)
        throw ValueError(pre + what + " " + ints_str(v) + " must be >= " + std::to_string(min) + " on every axis");
  };
  check("window_dimensions", window, 1);
  check("window_strides", strides, 1);
  check("window_dilation", dilation, 1);
}

/// Output shape of a reduce_window over all axes, after every check.
inline Shape window_output_shape(std::string_view op, const AbstractArray& x, const WindowDims& d) {
  window_check_params(op, x, d.window, d.strides, d.dilation);
  const std::string pre = "eqx::" + std::string(op) + ": operand " + x.str() + ": ";
  const std::size_t r = x.shape.size();
  if (d.padding.size() != 2 * r)
    throw ValueError(pre + "padding " + ints_str(d.padding) + " must hold " + std::to_string(r) +
                     " (lo, hi) pairs, one per axis, flattened to " + std::to_string(2 * r) + " entries");
  for (auto v : d.padding)
    if (v < 0)
      throw ValueError(pre + "padding " + ints_str(d.padding) +
                       " has a negative entry; windowed reductions only pad (>= 0), crop with eqx::slice first");
  Shape out;
  for (std::size_t i = 0; i < r; ++i) {
    const std::int64_t padded = x.shape[i] + d.padding[2 * i] + d.padding[2 * i + 1];
    const std::int64_t w = (d.window[i] - 1) * d.dilation[i] + 1;
    if (padded < w)
      throw ShapeError(pre + "axis " + std::to_string(i) + " has size " + std::to_string(x.shape[i]) + " (" +
                       std::to_string(padded) + " with padding) but the window spans " + std::to_string(w) +
                       (d.dilation[i] != 1 ? " (after dilation)" : "") +
                       ", so the output would be empty; use a smaller window or add padding");
    out.push_back((padded - w) / d.strides[i] + 1);
  }
  return out;
}

/// Where each window of a reduce_window lies in the operand, per axis and
/// per output index: the range of taps inside the operand (padding taps are
/// skipped) and the operand offset of the first of them. Computed once per
/// kernel call, so walking a window costs table lookups, not divisions.
struct WindowGeometry {
  std::size_t rank = 0;
  std::int64_t window_size = 1;          // taps in a full window
  Ints tap_step;                         // operand distance between taps, per axis
  std::vector<Ints> first, stop, offset;  // per axis, per output index: taps [first, stop); offset of tap `first`
  std::vector<std::vector<char>> full;   // per axis, per output index: every tap inside the operand
  Ints full_taps;                        // operand offsets of a full window's taps, relative to its first

  WindowGeometry(const Shape& xs, const Shape& os, const WindowDims& d) : rank(xs.size()) {
    const Shape st = contiguous_strides(xs);
    tap_step.resize(rank);
    first.resize(rank), stop.resize(rank), offset.resize(rank), full.resize(rank);
    for (std::size_t i = 0; i < rank; ++i) {
      const std::int64_t dil = d.dilation[i], w = d.window[i];
      window_size *= w;
      tap_step[i] = dil * st[i];
      for (std::int64_t o = 0; o < os[i]; ++o) {
        // Tap k reads operand index start + k * dil, which must lie in [0, size).
        const std::int64_t start = o * d.strides[i] - d.padding[2 * i];
        const std::int64_t lo = start >= 0 ? 0 : (-start + dil - 1) / dil;
        const std::int64_t hi = xs[i] - 1 - start < 0 ? 0 : std::min(w, (xs[i] - 1 - start) / dil + 1);
        first[i].push_back(lo);
        stop[i].push_back(std::max(lo, hi));
        offset[i].push_back((start + lo * dil) * st[i]);
        full[i].push_back(lo == 0 && hi == w);
      }
    }
    Ints k(rank, 0);  // a full window's taps in window order (row-major over the taps)
    for (std::int64_t t = 0; t < window_size; ++t) {
      std::int64_t rel = 0;
      for (std::size_t i = 0; i < rank; ++i) rel += k[i] * tap_step[i];
      full_taps.push_back(rel);
      for (std::size_t i = rank; i-- > 0;) {
        if (++k[i] < d.window[i]) break;
        k[i] = 0;
      }
    }
  }
};

/// Calls visit(out_flat, base, taps, n) for the output elements [begin,
/// end) in order: base + taps[0..n) are the operand offsets of the window's
/// elements in window order, without the taps that fall in the padding
/// (n = 0 for a window wholly in the padding). The walk goes row by row
/// along the last axis, so the other axes' tables are read once per row.
template <class Visit>
void for_each_window(const WindowGeometry& g, const Shape& os, std::int64_t begin, std::int64_t end, Visit&& visit) {
  const std::size_t r = g.rank;
  if (r == 0) {  // a scalar: its one window is itself
    const std::int64_t zero = 0;
    for (std::int64_t flat = begin; flat < end; ++flat) visit(flat, std::int64_t{0}, &zero, std::int64_t{1});
    return;
  }
  Ints oidx(r, 0), k(r, 0);
  std::int64_t rem = begin;
  for (std::size_t i = r; i-- > 0;) {
    oidx[i] = rem % os[i];
    rem /= os[i];
  }
  const std::size_t last = r - 1;
  const std::int64_t* first_l = g.first[last].data();
  const std::int64_t* stop_l = g.stop[last].data();
  const std::int64_t* offset_l = g.offset[last].data();
  const char* full_l = g.full[last].data();
  std::vector<std::int64_t> taps(static_cast<std::size_t>(g.window_size));
  std::int64_t flat = begin;
  while (flat < end) {
    // One row: the other axes' part of every window in it.
    bool row_full = true, row_empty = false;
    std::int64_t row_base = 0;
    for (std::size_t i = 0; i < last; ++i) {
      row_full = row_full && g.full[i][oidx[i]];
      row_empty = row_empty || g.first[i][oidx[i]] == g.stop[i][oidx[i]];
      row_base += g.offset[i][oidx[i]];
    }
    const std::int64_t row_end = std::min(end, flat + (os[last] - oidx[last]));
    for (std::int64_t j = oidx[last]; flat < row_end; ++flat, ++j) {
      const std::int64_t base = row_base + offset_l[j];
      if (row_full && full_l[j]) {
        visit(flat, base, g.full_taps.data(), g.window_size);
      } else if (row_empty || first_l[j] == stop_l[j]) {
        visit(flat, base, taps.data(), std::int64_t{0});
      } else {  // a border window: list the taps inside the operand
        oidx[last] = j;
        for (std::size_t i = 0; i < r; ++i) k[i] = g.first[i][oidx[i]];
        std::int64_t n = 0;
        for (std::int64_t at = 0;;) {
          taps[n++] = at;
          std::size_t i = r;
          for (; i-- > 0;) {
            at += g.tap_step[i];
            if (++k[i] < g.stop[i][oidx[i]]) break;
            at -= (g.stop[i][oidx[i]] - g.first[i][oidx[i]]) * g.tap_step[i];
            k[i] = g.first[i][oidx[i]];
          }
          if (i == static_cast<std::size_t>(-1)) break;
        }
        visit(flat, base, taps.data(), n);
      }
    }
    // Next row.
    oidx[last] = 0;
    for (std::size_t i = last; i-- > 0;) {
      if (++oidx[i] < os[i]) break;
      oidx[i] = 0;
    }
  }
}

/// max: NaN wins, padding is -inf (or the lowest integer).
struct WindowMax {
  static constexpr std::string_view name = "reduce_window_max";
  static constexpr bool accepts(DType t) { return t != DType::bool_; }
  static constexpr std::string_view dtypes = "float32, float64, int32 or uint32";
  template <class T>
  static T identity() {
    if constexpr (std::is_floating_point_v<T>) return -std::numeric_limits<T>::infinity();
    else return std::numeric_limits<T>::lowest();
  }
  /// The max of x[taps[0..n)], n > 0; a NaN wins (the first one). The
  /// dependency chain is short: `v > m ? v : m` is one max instruction, and
  /// NaNs are tracked apart from it.
  template <class T>
  static T fold(const T* x, const std::int64_t* taps, std::int64_t n) {
    if constexpr (std::is_floating_point_v<T>) {
      T m = x[taps[0]];
      bool nan = std::isnan(m);
      for (std::int64_t t = 1; t < n; ++t) {
        const T v = x[taps[t]];
        m = v > m ? v : m;
        nan |= std::isnan(v);
      }
      if (nan)
        for (std::int64_t t = 0; t < n; ++t)
          if (std::isnan(x[taps[t]])) return x[taps[t]];
      return m;
    } else {
      T m = x[taps[0]];
      for (std::int64_t t = 1; t < n; ++t) m = x[taps[t]] > m ? x[taps[t]] : m;
      return m;
    }
  }
};

/// sum: padding is 0.
struct WindowSum {
  static constexpr std::string_view name = "reduce_window_sum";
  static constexpr bool accepts(DType t) { return is_floating(t) || t == DType::int32; }
  static constexpr std::string_view dtypes = "float32, float64 or int32";
  template <class T>
  static T identity() {
    return T(0);
  }
  template <class T>
  static T combine(T acc, T v) {
    return acc + v;
  }
};

/// Throws unless the monoid supports x's dtype.
template <class Monoid>
void window_check_dtype(std::string_view op, const AbstractArray& x) {
  if (!Monoid::accepts(x.dtype))
    throw DTypeError("eqx::" + std::string(op) + ": operand " + x.str() + " has dtype " +
                     std::string(dtype_name(x.dtype)) + " but this reduction supports " + std::string(Monoid::dtypes) +
                     "; convert with eqx::astype");
}

// --- differentiation rules ---------------------------------------------------

inline Params window_params(Ints window, Ints strides, Ints padding, Ints dilation) {
  return Params{}
      .set("window_dimensions", std::move(window))
      .set("window_strides", std::move(strides))
      .set("padding", std::move(padding))
      .set("window_dilation", std::move(dilation));
}

// reduce_window_sum is linear; its transpose (JAX's
// _reduce_window_sum_transpose_rule) spreads each output cotangent over its
// window: dilate the cotangent by the strides (interior padding stride - 1),
// pad it so every input cell sees each window that covers it, and sum
// windows of the same size and dilation with stride 1. Per axis, with
// w_dil = (window - 1) * dilation + 1:
//   lo' = w_dil - lo - 1,  hi' = in + w_dil - 1 - out_dil - lo'
// (negative values crop; they come from windows wholly in the padding). The
// window is not reversed because every tap has weight one.
inline Array window_sum_transpose(const RuleOps& o, const Primitive& sum, const Array& ct, const Shape& in,
                                  const WindowDims& d) {
  const std::size_t r = in.size();
  Ints lo(r), hi(r), interior(r);
  for (std::size_t i = 0; i < r; ++i) {
    const std::int64_t w_dil = (d.window[i] - 1) * d.dilation[i] + 1;
    const std::int64_t out_dil = (ct.shape()[i] - 1) * d.strides[i] + 1;
    lo[i] = w_dil - d.padding[2 * i] - 1;
    hi[i] = in[i] + w_dil - 1 - out_dil - lo[i];
    interior[i] = d.strides[i] - 1;
  }
  Array spread = bind1(prim::pad, {ct, o.scalar(0, ct.dtype())},
                       Params{}.set("low", std::move(lo)).set("high", std::move(hi)).set("interior", std::move(interior)));
  return bind1(sum, {spread}, window_params(d.window, Ints(r, 1), Ints(2 * r, 0), d.dilation));
}

// reduce_window_max routes each window's (co)tangent to ONE element: the
// first maximum in window order (row-major over the window's taps), as
// XLA's select_and_scatter / select_and_gather do for JAX; if the window
// holds a NaN the kernel returns it (the first NaN wins), so that NaN gets
// it. Taps in the padding are never chosen. Two primitives (below) do the
// routing, one pass over the windows each.

/// The tap of `taps` (offsets into x) reduce_window_max picks: the first
/// maximum, or the first NaN.
template <class T>
std::int64_t window_argmax(const T* x, const std::int64_t* taps, std::int64_t n) {
  // The maximum first (a short dependency chain), then its first position:
  // no branch per tap on which element is larger, which is unpredictable.
  const T m = WindowMax::fold(x, taps, n);
  std::int64_t first = n - 1;
  if (std::isnan(m))
    for (std::int64_t t = n - 1; t >= 0; --t) first = std::isnan(x[taps[t]]) ? t : first;
  else
    for (std::int64_t t = n - 1; t >= 0; --t) first = x[taps[t]] == m ? t : first;  // a select, not a branch
  return first;
}

/// Pooling over the last two axes without padding or dilation (what the
/// pooling layers do unless asked otherwise). Its kernels walk an output row
/// with the window's taps as an inner loop over fixed offsets, unrolled for
/// the common 2x2 and 3x3 windows, so the compiler vectorises across the
/// row; no per-window tap lists.
struct PlanePool {
  std::int64_t planes = 1, h = 0, w = 0, oh = 0, ow = 0, kh = 1, kw = 1, sh = 1, sw = 1;

  /// Sets `p` and returns true if the window has this layout.
  static bool match(const Shape& xs, const Shape& os, const WindowDims& d, PlanePool& p) {
    const std::size_t r = xs.size();
    if (r < 2) return false;
    for (std::size_t i = 0; i < r; ++i) {
      if (d.dilation[i] != 1 || d.padding[2 * i] != 0 || d.padding[2 * i + 1] != 0) return false;
      if (i + 2 < r && (d.window[i] != 1 || d.strides[i] != 1)) return false;
    }
    p = {};
    for (std::size_t i = 0; i + 2 < r; ++i) p.planes *= xs[i];
    p.h = xs[r - 2], p.w = xs[r - 1], p.oh = os[r - 2], p.ow = os[r - 1];
    p.kh = d.window[r - 2], p.kw = d.window[r - 1], p.sh = d.strides[r - 2], p.sw = d.strides[r - 1];
    return p.kh * p.kw <= (std::int64_t{1} << 24);  // tap numbers are exact in a float
  }

  /// Calls f(KH, KW, SW) as std::integral_constants: the window's size when
  /// it is 2x2 or 3x3 (else zeros: sizes at run time), and the column stride
  /// when it is 1 (else 0), so the common loops have fixed offsets.
  template <class F>
  void dispatch(F&& f) const {
    auto with_stride = [&](auto kh_, auto kw_) {
      if (sw == 1) return f(kh_, kw_, std::integral_constant<std::int64_t, 1>{});
      f(kh_, kw_, std::integral_constant<std::int64_t, 0>{});
    };
    using two = std::integral_constant<std::int64_t, 2>;
    using three = std::integral_constant<std::int64_t, 3>;
    using any = std::integral_constant<std::int64_t, 0>;
    if (kh == 2 && kw == 2) return with_stride(two{}, two{});
    if (kh == 3 && kw == 3) return with_stride(three{}, three{});
    with_stride(any{}, any{});
  }

  /// Lanes as wide as T, so OR-ing NaN flags vectorises with the loop over T.
  template <class T>
  using NanLane = std::conditional_t<sizeof(T) == 8, std::int64_t, std::int32_t>;

  /// One window's maximum by `v > m ? v : m` in window order; whether it saw
  /// a NaN is OR-ed into `nan` (integers have none).
  template <class T>
  static T window_max(const T* in, std::int64_t wh, std::int64_t ww, std::int64_t w, NanLane<T>& nan) {
    T m = in[0];
    for (std::int64_t di = 0; di < wh; ++di)
      for (std::int64_t dj = 0; dj < ww; ++dj) {
        const T v = in[di * w + dj];
        m = v > m ? v : m;
        if constexpr (std::is_floating_point_v<T>) nan |= static_cast<NanLane<T>>(v != v);
      }
    return m;
  }

  /// The window's first NaN tap in window order, or -1 (the rare path).
  template <class T>
  static std::int64_t first_nan_tap(const T* in, std::int64_t wh, std::int64_t ww, std::int64_t w) {
    for (std::int64_t t = 0; t < wh * ww; ++t)
      if (std::isnan(in[(t / ww) * w + t % ww])) return t;
    return -1;
  }

  /// Output rows [r0, r1) (plane-major) of the max pool, with
  /// WindowMax::fold's result: the first maximum in window order, or the
  /// first NaN.
  template <std::int64_t KH, std::int64_t KW, std::int64_t SW, class T>
  void max_rows(const T* x, T* o, std::int64_t r0, std::int64_t r1) const {
    const std::int64_t wh = KH ? KH : kh, ww = KW ? KW : kw, sw = SW ? SW : this->sw;
    for (std::int64_t row = r0; row < r1; ++row) {
      const T* top = x + ((row / oh) * h + (row % oh) * sh) * w;
      T* __restrict out = o + row * ow;
      NanLane<T> nan = 0;
      for (std::int64_t j = 0; j < ow; ++j) out[j] = window_max(top + j * sw, wh, ww, w, nan);
      if constexpr (std::is_floating_point_v<T>)
        if (nan != 0)  // each window with a NaN gets its first NaN, as the fold does
          for (std::int64_t j = 0; j < ow; ++j)
            if (const std::int64_t t = first_nan_tap(top + j * sw, wh, ww, w); t >= 0)
              out[j] = top[j * sw + (t / ww) * w + t % ww];
    }
  }

  /// For output rows [r0, r1): adds each window's cotangent `src` at the
  /// window's first maximum (first NaN) in `g`, the operand's cotangent.
  /// Each element receives its windows' additions in the window walk's
  /// order, so both paths give the same bits. `pick` is a scratch row.
  template <std::int64_t KH, std::int64_t KW, std::int64_t SW, class T>
  void scatter_rows(const T* x, const T* src, T* g, std::int64_t r0, std::int64_t r1, std::vector<T>& pick) const {
    const std::int64_t wh = KH ? KH : kh, ww = KW ? KW : kw, sw = SW ? SW : this->sw;
    pick.resize(static_cast<std::size_t>(ow));
    T* __restrict chosen = pick.data();  // each window's tap in window order, as a T so the loops stay T-wide
    for (std::int64_t row = r0; row < r1; ++row) {
      const std::int64_t top = ((row / oh) * h + (row % oh) * sh) * w;
      const T* __restrict s = src + row * ow;
      NanLane<T> any_nan = 0;
      for (std::int64_t j = 0; j < ow; ++j) {
        const T* in = x + top + j * sw;
        const T m = window_max(in, wh, ww, w, any_nan);
        T c = T(0);
        for (std::int64_t t = wh * ww - 1; t >= 0; --t) {  // backwards: the first match is written last
          const T v = in[(t / ww) * w + t % ww];
          c = v == m ? T(t) : c;
        }
        chosen[j] = c;
      }
      if (any_nan != 0)  // a NaN wins: its window's first NaN
        for (std::int64_t j = 0; j < ow; ++j)
          if (const std::int64_t t = first_nan_tap(x + top + j * sw, wh, ww, w); t >= 0) chosen[j] = T(t);
      // An element of operand row di hears from windows j = (c - dj) / sw
      // of this output row: later taps are earlier windows.
      for (std::int64_t di = 0; di < wh; ++di)
        for (std::int64_t dj = ww - 1; dj >= 0; --dj) {
          const T tap = T(di * ww + dj);
          T* __restrict out = g + top + di * w + dj;
          for (std::int64_t j = 0; j < ow; ++j) out[j * sw] += chosen[j] == tap ? s[j] : T(0);
        }
    }
  }
};

/// The batching rule of the window primitives: each example is its own
/// window row, a window of 1 along a batch axis put first.
inline Batched window_batch(const Primitive& prim, const RuleOps& o, std::span<const Array> x, BatchDims d,
                            const Params& p) {
  Params q = with_leading_entry(p, {"window_dimensions", "window_strides", "window_dilation"}, 1);
  Ints padding = p.get<Ints>("padding");
  padding.insert(padding.begin(), {0, 0});
  return batch_leading(prim, o, x, d, q.set("padding", std::move(padding)));
}

/// Checks the (values, operand) pair of select_and_gather_add and
/// select_and_scatter_add: floating point, of one dtype.
inline void window_select_check(std::string_view op, const AbstractArray& values, const AbstractArray& operand) {
  if (!is_floating(operand.dtype) || values.dtype != operand.dtype)
    throw DTypeError("eqx::" + std::string(op) + ": values " + values.str() + " and operand " + operand.str() +
                     " must have one floating-point dtype; it routes gradients of reduce_window_max");
}

/// select_and_gather_add(t, x)[window params]: for each window of x, the
/// element of t (shaped as x) at the window's first maximum (0 for a window
/// wholly in the padding). reduce_window_max's JVP; linear in t.
struct SelectAndGatherAddPrim final : Primitive {
  std::string_view name() const override { return "select_and_gather_add"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override;
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override;
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;
};

/// select_and_scatter_add(s, x)[window params]: zeros shaped as x, with
/// each window's s (one value per window) added at its first maximum in x.
/// reduce_window_max's VJP; linear in s; the transpose of
/// select_and_gather_add.
struct SelectAndScatterAddPrim final : Primitive {
  std::string_view name() const override { return "select_and_scatter_add"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override;
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override;
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;
};

}  // namespace eqx::detail

namespace eqx::prim {
inline const detail::SelectAndGatherAddPrim select_and_gather_add;
inline const detail::SelectAndScatterAddPrim select_and_scatter_add;
}  // namespace eqx::prim

namespace eqx::detail {

/// reduce_window_<monoid>[window_dimensions, window_strides, padding,
/// window_dilation]: one output element per window position.
template <class Monoid>
struct ReduceWindowPrim final : Primitive {
  std::string_view name() const override { return Monoid::name; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return window_batch(*this, o, x, d, p);
  }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    window_check_dtype<Monoid>(name(), in[0]);
    return {{window_output_shape(name(), in[0], WindowDims::from(p)), in[0].dtype}};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;

  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override {
    if (!t[0].has_value() || !is_floating(y[0].dtype())) return {Array{}};
    if constexpr (std::is_same_v<Monoid, WindowSum>) return {bind1(*this, {t[0]}, p)};  // linear
    else return {bind1(prim::select_and_gather_add, {t[0], x[0]}, p)};
  }
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override {
    // Integer operands have no gradient; an empty operand has nothing to route.
    if (!ct[0].has_value() || !is_floating(x[0].dtype())) return {Array{}};
    if (x[0].size() == 0) return {o.zeros_like(x[0])};
    if constexpr (std::is_same_v<Monoid, WindowSum>)
      return {window_sum_transpose(o, *this, ct[0], x[0].shape(), WindowDims::from(p))};
    else return {bind1(prim::select_and_scatter_add, {ct[0], x[0]}, p)};
  }

 private:
  template <class T>
  static void run(const View& xv, const View& ov, const WindowDims& d) {
    const T* x = xv.as<const T>();
    T* o = ov.as<T>();
    if constexpr (std::is_same_v<Monoid, WindowMax>) {
      PlanePool pool;
      if (PlanePool::match(*xv.shape, *ov.shape, d, pool)) {
        pool.dispatch([&](auto kh, auto kw, auto sw) {
          parallel_for(pool.planes * pool.oh, pool.ow * pool.kh * pool.kw, [&](std::int64_t s, std::int64_t e) {
            pool.max_rows<decltype(kh)::value, decltype(kw)::value, decltype(sw)::value>(x, o, s, e);
          });
        });
        return;
      }
    }
    const WindowGeometry g(*xv.shape, *ov.shape, d);
    parallel_for(ov.numel(), g.window_size, [&](std::int64_t s, std::int64_t e) {
      for_each_window(g, *ov.shape, s, e,
                      [&](std::int64_t flat, std::int64_t base, const std::int64_t* taps, std::int64_t n) {
                        if (n == 0) {
                          o[flat] = Monoid::template identity<T>();
                        } else if constexpr (std::is_same_v<Monoid, WindowMax>) {
                          o[flat] = WindowMax::fold(x + base, taps, n);
                        } else {
                          const T* w = x + base;
                          T acc = w[taps[0]];
                          for (std::int64_t t = 1; t < n; ++t) acc = Monoid::combine(acc, w[taps[t]]);
                          o[flat] = acc;
                        }
                      });
    });
  }
};
#if EQX_KERNELS_HERE(WINDOW)
EQX_KERNEL_INLINE Batched SelectAndGatherAddPrim::batch(const RuleOps& o, std::span<const Array> x, BatchDims d,
                                                        const Params& p) const {
  return window_batch(*this, o, x, d, p);
}
EQX_KERNEL_INLINE std::vector<AbstractArray> SelectAndGatherAddPrim::shape_rule(std::span<const AbstractArray> in,
                                                                                 const Params& p) const {
  window_select_check(name(), in[0], in[1]);
  if (in[0].shape != in[1].shape)
    throw ShapeError("eqx::select_and_gather_add: tangents " + in[0].str() + " must have the operand's shape " +
                     in[1].str());
  return {{window_output_shape(name(), in[1], WindowDims::from(p)), in[0].dtype}};
}
EQX_KERNEL_INLINE void SelectAndGatherAddPrim::kernel(std::span<const View> in, std::span<const View> out,
                                                      const Params& p) const {
  const WindowGeometry g(*in[1].shape, *out[0].shape, WindowDims::from(p));
  visit_dtype(in[1].dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T *t = in[0].as<const T>(), *x = in[1].as<const T>();
      T* o = out[0].as<T>();
      parallel_for(out[0].numel(), g.window_size, [&](std::int64_t s, std::int64_t e) {
        for_each_window(g, *out[0].shape, s, e,
                        [&](std::int64_t flat, std::int64_t base, const std::int64_t* taps, std::int64_t n) {
                          o[flat] = n == 0 ? T(0) : t[base + taps[window_argmax(x + base, taps, n)]];
                        });
      });
    }
  });
}
EQX_KERNEL_INLINE std::vector<Array> SelectAndGatherAddPrim::jvp(const RuleOps&, std::span<const Array> x,
                                                                 std::span<const Array> t, std::span<const Array>,
                                                                 const Params& p) const {
  // Linear in the tangents; the choice of elements is locally constant in the operand.
  if (!t[0].has_value()) return {Array{}};
  return {bind1(*this, {t[0], x[1]}, p)};
}
EQX_KERNEL_INLINE std::vector<Array> SelectAndGatherAddPrim::vjp(const RuleOps&, std::span<const Array> x,
                                                                 std::span<const Array>, std::span<const Array> ct,
                                                                 const Params& p) const {
  if (!ct[0].has_value()) return {Array{}, Array{}};
  return {bind1(prim::select_and_scatter_add, {ct[0], x[1]}, p), Array{}};
}

EQX_KERNEL_INLINE Batched SelectAndScatterAddPrim::batch(const RuleOps& o, std::span<const Array> x, BatchDims d,
                                                         const Params& p) const {
  return window_batch(*this, o, x, d, p);
}
EQX_KERNEL_INLINE std::vector<AbstractArray> SelectAndScatterAddPrim::shape_rule(std::span<const AbstractArray> in,
                                                                                  const Params& p) const {
  window_select_check(name(), in[0], in[1]);
  const Shape windows = window_output_shape(name(), in[1], WindowDims::from(p));
  if (in[0].shape != windows)
    throw ShapeError("eqx::select_and_scatter_add: source " + in[0].str() + " must have one value per window, shape " +
                     windows.str() + " for operand " + in[1].str());
  return {{in[1].shape, in[0].dtype}};
}
EQX_KERNEL_INLINE void SelectAndScatterAddPrim::kernel(std::span<const View> in, std::span<const View> out,
                                                       const Params& p) const {
  const WindowDims d = WindowDims::from(p);
  const Shape& os = *in[0].shape;
  visit_dtype(in[1].dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T *src = in[0].as<const T>(), *x = in[1].as<const T>();
      T* o = out[0].as<T>();
      std::fill(o, o + out[0].numel(), T(0));
      PlanePool pool;
      if (PlanePool::match(*in[1].shape, os, d, pool)) {  // planes are disjoint: split them across threads
        pool.dispatch([&](auto kh, auto kw, auto sw) {
          parallel_for(pool.planes, pool.oh * pool.ow * pool.kh * pool.kw * 2, [&](std::int64_t s, std::int64_t e) {
            std::vector<T> pick;
            pool.scatter_rows<decltype(kh)::value, decltype(kw)::value, decltype(sw)::value>(x, src, o, s * pool.oh,
                                                                                           e * pool.oh, pick);
          });
        });
        return;
      }
      // Windows overlap, so two threads may add into one element; but windows
      // of 1 along leading axes (batch, channels) touch disjoint slices, so
      // those axes are split across threads and the rest runs in order.
      std::int64_t independent = 1, per_slice = os.numel();
      for (std::size_t i = 0; i < os.size() && d.window[i] == 1 && d.strides[i] == 1 && d.padding[2 * i] == 0 &&
                              d.padding[2 * i + 1] == 0;
           ++i) {
        independent *= os[i];
        per_slice = os[i] == 0 ? 0 : per_slice / os[i];
      }
      const WindowGeometry g(*in[1].shape, os, d);
      parallel_for(independent, per_slice * g.window_size, [&](std::int64_t s, std::int64_t e) {
        for_each_window(g, os, s * per_slice, e * per_slice,
                        [&](std::int64_t flat, std::int64_t base, const std::int64_t* taps, std::int64_t n) {
                          if (n != 0) o[base + taps[window_argmax(x + base, taps, n)]] += src[flat];
                        });
      });
    }
  });
}
EQX_KERNEL_INLINE std::vector<Array> SelectAndScatterAddPrim::jvp(const RuleOps&, std::span<const Array> x,
                                                                  std::span<const Array> t, std::span<const Array>,
                                                                  const Params& p) const {
  if (!t[0].has_value()) return {Array{}};
  return {bind1(*this, {t[0], x[1]}, p)};
}
EQX_KERNEL_INLINE std::vector<Array> SelectAndScatterAddPrim::vjp(const RuleOps&, std::span<const Array> x,
                                                                  std::span<const Array>, std::span<const Array> ct,
                                                                  const Params& p) const {
  if (!ct[0].has_value()) return {Array{}, Array{}};
  return {bind1(prim::select_and_gather_add, {ct[0], x[1]}, p), Array{}};
}
#endif

#if EQX_KERNELS_HERE(WINDOW)
template <class Monoid>
void ReduceWindowPrim<Monoid>::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  const WindowDims d = WindowDims::from(p);
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool>) run<T>(in[0], out[0], d);
  });
}
#endif

}  // namespace eqx::detail

#if defined(EQX_COMPILED_KERNELS)
EQX_INSTANTIATION(WINDOW) struct eqx::detail::ReduceWindowPrim<eqx::detail::WindowMax>;
EQX_INSTANTIATION(WINDOW) struct eqx::detail::ReduceWindowPrim<eqx::detail::WindowSum>;
#endif

namespace eqx::prim {
inline const detail::ReduceWindowPrim<detail::WindowMax> reduce_window_max;
inline const detail::ReduceWindowPrim<detail::WindowSum> reduce_window_sum;
}  // namespace eqx::prim
