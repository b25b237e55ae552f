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

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "eqx/core/threads.hpp"
#include "eqx/prim/layout.hpp"
#include "eqx/core/config.hpp"
#include "eqx/prim/primitive.hpp"

// Kernels are defined here unless the kernels are compiled once into the
// eqx::kernels library (EQX_COMPILED_KERNELS; see eqx/core/config.hpp).
#if !defined(EQX_COMPILED_KERNELS) || defined(EQX_KERNELS_WINDOW)
#define EQX_WINDOW_KERNELS 1
#else
#define EQX_WINDOW_KERNELS 0
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

/// reduce_window_<monoid>[window_dimensions, window_strides, padding,
/// window_dilation]: one output element per window position.
template <class Monoid>
struct ReduceWindowPrim final : Primitive {
  std::string_view name() const override { return Monoid::name; }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    window_check_dtype<Monoid>(name(), in[0]);
    return {{window_output_shape(name(), in[0], WindowDims::from(p)), in[0].dtype}};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;

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

namespace eqx::prim {
inline const detail::ReduceWindowPrim<detail::WindowMax> reduce_window_max;
inline const detail::ReduceWindowPrim<detail::WindowSum> reduce_window_sum;
}  // namespace eqx::prim

#if defined(EQX_KERNELS_WINDOW)  // the eqx::kernels library: compile each kernel once
template struct eqx::detail::ReduceWindowPrim<eqx::detail::WindowMax>;
template struct eqx::detail::ReduceWindowPrim<eqx::detail::WindowSum>;
#endif
