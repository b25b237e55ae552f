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
// Differentiation (rules above the primitive struct): sum is linear and its
// transpose is a pad + reduce_window_sum; max routes each window's tangent
// to the first maximum, composed from slice/compare/select/pad.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
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

// Kernels are defined here unless the kernels are compiled once into the
// eqx::kernels library (EQX_COMPILED_KERNELS; see eqx/core/config.hpp).
#if !defined(EQX_COMPILED_KERNELS) || defined(EQX_KERNELS_WINDOW)
#define EQX_WINDOW_KERNELS 1
#else
#define EQX_WINDOW_KERNELS 0
#endif
// The class template instances: explicitly instantiated (vtable, rules,
// kernels) in eqx::kernels, and only declared in code that links it.
#if defined(EQX_KERNELS_WINDOW)
#define EQX_WINDOW_INSTANTIATION template
#elif defined(EQX_COMPILED_KERNELS)
#define EQX_WINDOW_INSTANTIATION extern template
#endif

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
  template <class T>
  static T combine(T acc, T v) {
    if constexpr (std::is_floating_point_v<T>) return (v > acc || std::isnan(v)) && !std::isnan(acc) ? v : acc;
    else return v > acc ? v : acc;
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
// first maximum in window order (row-major over the window offsets), as
// XLA's select_and_scatter / select_and_gather do for JAX; if the window
// holds a NaN the kernel returns it (the first NaN wins), so that NaN gets
// it. Without a select_and_scatter primitive this is composed per window
// tap k (an offset in the window): the strided slice of the padded operand
// at offset k is tap k of every window at once; it is chosen where it equals
// the output (or is NaN) and no earlier tap was chosen (a running mask).
//
// Cost, for T = prod(window_dimensions) taps and an output of size n_out:
// JVP ~8 T elementwise ops on n_out elements (slices of the operand and the
// tangent, compare, three selects); VJP ~7 T ops on n_out elements plus T
// pads and T adds on the operand's size (each tap's cotangent is put back
// with one pad: low = k * dilation - lo, interior = stride - 1). Under jit
// the elementwise chains fuse. 2x2 pooling is 4 taps, 3x3 is 9.

/// A pad of x by the window's padding with `value` (x itself if none).
inline Array window_pad_operand(const RuleOps& o, const Array& x, double value, const WindowDims& d) {
  if (std::all_of(d.padding.begin(), d.padding.end(), [](std::int64_t v) { return v == 0; })) return x;
  const std::size_t r = x.ndim();
  Ints lo(r), hi(r);
  for (std::size_t i = 0; i < r; ++i) {
    lo[i] = d.padding[2 * i];
    hi[i] = d.padding[2 * i + 1];
  }
  return bind1(prim::pad, {x, o.scalar(value, x.dtype())},
               Params{}.set("low", std::move(lo)).set("high", std::move(hi)).set("interior", Ints(r, 0)));
}

/// Window offsets in window order: row-major over window_dimensions.
inline std::vector<Ints> window_taps(const Ints& window) {
  std::vector<Ints> taps;
  Ints k(window.size(), 0);
  for (;;) {
    taps.push_back(k);
    std::size_t i = window.size();
    for (; i-- > 0;) {
      if (++k[i] < window[i]) break;
      k[i] = 0;
    }
    if (i == static_cast<std::size_t>(-1)) return taps;
  }
}

/// Tap k of every window: a strided slice of the padded operand, output-shaped.
inline Array window_tap(const Array& padded, const Shape& out, const Ints& k, const WindowDims& d) {
  const std::size_t r = out.size();
  Ints start(r), limit(r);
  for (std::size_t i = 0; i < r; ++i) {
    start[i] = k[i] * d.dilation[i];
    limit[i] = start[i] + (out[i] - 1) * d.strides[i] + 1;
  }
  return bind1(prim::slice, {padded},
               Params{}.set("start_indices", std::move(start)).set("limit_indices", std::move(limit)).set("strides", d.strides));
}

/// For every tap (in window_taps order), a bool mask over the output: true
/// where that tap is the element reduce_window_max picked.
inline std::vector<Array> window_max_choices(const RuleOps& o, const Array& x, const Array& y, const WindowDims& d) {
  const Array padded = window_pad_operand(o, x, -std::numeric_limits<double>::infinity(), d);
  const Array yes = o.scalar(1, DType::bool_), no = o.scalar(0, DType::bool_);
  const std::vector<Ints> taps = window_taps(d.window);
  std::vector<Array> chosen;
  chosen.reserve(taps.size());
  Array free;  // windows with no tap chosen yet; empty means all
  for (std::size_t t = 0; t < taps.size(); ++t) {
    const Array xk = window_tap(padded, y.shape(), taps[t], d);
    // x == max, or x is NaN (then the max is NaN too: NaN wins in the kernel).
    const Array match = o.select(o.bin(o.ne_p, xk, xk), yes, o.bin(o.eq_p, xk, y));
    chosen.push_back(free.has_value() ? o.select(free, match, no) : match);
    if (t + 1 < taps.size()) free = free.has_value() ? o.select(match, no, free) : o.select(match, no, yes);
  }
  return chosen;
}

inline Array window_max_jvp(const RuleOps& o, const Array& x, const Array& tx, const Array& y, const WindowDims& d) {
  if (!tx.has_value()) return Array{};
  const std::vector<Array> chosen = window_max_choices(o, x, y, d);
  const Array padded = window_pad_operand(o, tx, 0, d);
  const std::vector<Ints> taps = window_taps(d.window);
  Array ty = o.scalar(0, y.dtype());
  for (std::size_t t = 0; t < taps.size(); ++t) ty = o.select(chosen[t], window_tap(padded, y.shape(), taps[t], d), ty);
  return o.broadcast_to(ty, y.shape());
}

inline Array window_max_vjp(const RuleOps& o, const Array& x, const Array& y, const Array& ct, const WindowDims& d) {
  if (!ct.has_value()) return Array{};
  const std::vector<Array> chosen = window_max_choices(o, x, y, d);
  const std::vector<Ints> taps = window_taps(d.window);
  const Shape& in = x.shape();
  const std::size_t r = in.size();
  const Array zero = o.scalar(0, ct.dtype());
  Array ct_x;
  for (std::size_t t = 0; t < taps.size(); ++t) {
    // Output o of tap k read input cell k * dilation - lo + o * stride.
    Ints lo(r), hi(r), interior(r);
    for (std::size_t i = 0; i < r; ++i) {
      lo[i] = taps[t][i] * d.dilation[i] - d.padding[2 * i];
      hi[i] = in[i] - lo[i] - ((y.shape()[i] - 1) * d.strides[i] + 1);
      interior[i] = d.strides[i] - 1;
    }
    ct_x = o.add(ct_x, bind1(prim::pad, {o.select(chosen[t], ct, zero), zero},
                             Params{}.set("low", std::move(lo)).set("high", std::move(hi)).set("interior", std::move(interior))));
  }
  return ct_x;
}

/// reduce_window_<monoid>[window_dimensions, window_strides, padding,
/// window_dilation]: one output element per window position.
template <class Monoid>
struct ReduceWindowPrim final : Primitive {
  std::string_view name() const override { return Monoid::name; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    // Each example is its own window row: a window of 1 along the batch axis.
    Params q = with_leading_entry(p, {"window_dimensions", "window_strides", "window_dilation"}, 1);
    Ints padding = p.get<Ints>("padding");
    padding.insert(padding.begin(), {0, 0});
    return batch_leading(*this, o, x, d, q.set("padding", std::move(padding)));
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
    else return {window_max_jvp(o, x[0], t[0], y[0], WindowDims::from(p))};
  }
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override {
    // Integer operands have no gradient; an empty operand has nothing to route.
    if (!ct[0].has_value() || !is_floating(x[0].dtype())) return {Array{}};
    if (x[0].size() == 0) return {o.zeros_like(x[0])};
    if constexpr (std::is_same_v<Monoid, WindowSum>)
      return {window_sum_transpose(o, *this, ct[0], x[0].shape(), WindowDims::from(p))};
    else return {window_max_vjp(o, x[0], y[0], ct[0], WindowDims::from(p))};
  }

 private:
  template <class T>
  static void run(const View& xv, const View& ov, const WindowDims& d) {
    const Shape &xs = *xv.shape, &os = *ov.shape;
    const std::size_t r = xs.size();
    const Shape st = contiguous_strides(xs);
    const T* x = xv.as<const T>();
    T* o = ov.as<T>();
    std::int64_t wsize = 1;
    for (auto w : d.window) wsize *= w;
    parallel_for(ov.numel(), wsize, [&](std::int64_t s, std::int64_t e) {
      Shape oidx = Shape::filled(r, 0), k = Shape::filled(r, 0), klo = k, khi = k, step = k;
      std::int64_t rem = s;
      for (std::size_t i = r; i-- > 0;) {
        oidx[i] = rem % os[i];
        rem /= os[i];
      }
      for (std::int64_t flat = s; flat < e; ++flat) {
        // Window taps on axis i: input index q = o*stride - lo + k*dil must be
        // in [0, in), which holds for a contiguous range k in [klo, khi).
        T acc = Monoid::template identity<T>();
        bool empty = false;
        std::int64_t offset = 0;
        for (std::size_t i = 0; i < r; ++i) {
          const std::int64_t start = oidx[i] * d.strides[i] - d.padding[2 * i], dil = d.dilation[i];
          const std::int64_t lo = start >= 0 ? 0 : (-start + dil - 1) / dil;
          const std::int64_t hi = xs[i] - 1 - start < 0 ? 0 : std::min(d.window[i], (xs[i] - 1 - start) / dil + 1);
          klo[i] = k[i] = lo;
          khi[i] = hi;
          if (lo >= hi) empty = true;
          step[i] = dil * st[i];
          offset += (start + lo * dil) * st[i];
        }
        if (!empty) {
          for (;;) {
            acc = Monoid::combine(acc, x[offset]);
            std::size_t i = r;
            for (; i-- > 0;) {
              offset += step[i];
              if (++k[i] < khi[i]) break;
              offset -= (khi[i] - klo[i]) * step[i];
              k[i] = klo[i];
            }
            if (i == static_cast<std::size_t>(-1)) break;
          }
        }
        o[flat] = acc;
        for (std::size_t i = r; i-- > 0;) {
          if (++oidx[i] < os[i]) break;
          oidx[i] = 0;
        }
      }
    });
  }
};
#if EQX_WINDOW_KERNELS
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

#ifdef EQX_WINDOW_INSTANTIATION
EQX_WINDOW_INSTANTIATION struct eqx::detail::ReduceWindowPrim<eqx::detail::WindowMax>;
EQX_WINDOW_INSTANTIATION struct eqx::detail::ReduceWindowPrim<eqx::detail::WindowSum>;
#endif

namespace eqx::prim {
inline const detail::ReduceWindowPrim<detail::WindowMax> reduce_window_max;
inline const detail::ReduceWindowPrim<detail::WindowSum> reduce_window_sum;
}  // namespace eqx::prim
