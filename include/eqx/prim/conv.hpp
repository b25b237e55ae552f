#pragma once
// conv_general_dilated: lax's general convolution, with JAX's default
// dimension numbers: lhs [N, C_in, spatial...], rhs [C_out, C_in / G,
// kernel spatial...], out [N, C_out, out spatial...] for any number of
// spatial axes. G is feature_group_count (G == C_in: depthwise).
//
// Parameters (one entry per spatial axis; padding holds lo/hi pairs
// flattened as [lo0, hi0, lo1, hi1, ...] and may be negative, as in lax):
//   window_strides, padding, lhs_dilation (holes between input elements, as
//   in a transposed convolution), rhs_dilation (atrous kernel),
//   feature_group_count.
//
// The kernel is GEMM-shaped: for each batch element and group it gathers the
// input patches into a row-major [C_in/G * prod(kernel), prod(out spatial)]
// column matrix (im2col) and multiplies it by the [C_out/G, C_in/G *
// prod(kernel)] weight view in one GEMM (on Eigen or BLAS, whichever is
// faster for the shape: prim/gemm.hpp). Very large column matrices are built and multiplied
// in blocks of output columns so scratch memory stays bounded.
//
// Its JVP and VJP rules (below the kernel) are convolutions again, as in JAX.

#include <algorithm>
#include <cstddef>
#include <cstdint>
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
#include "eqx/prim/gemm_policy.hpp"
#include "eqx/prim/primitive.hpp"
#if EQX_KERNELS_HERE(CONV)
#include "eqx/prim/gemm.hpp"  // the products themselves (and Eigen), only where this kernel is compiled
#endif

namespace eqx::detail {

/// The parameters of conv_general_dilated, fully resolved.
struct ConvDims {
  Ints strides, padding, lhs_dilation, rhs_dilation;
  std::int64_t feature_group_count = 1;
  static ConvDims from(const Params& p) {
    return {p.get<Ints>("window_strides"), p.get<Ints>("padding"), p.get<Ints>("lhs_dilation"),
            p.get<Ints>("rhs_dilation"), p.get<std::int64_t>("feature_group_count")};
  }
};

/// Size of a dimension of `n` elements with `d - 1` holes between neighbours.
inline std::int64_t dilate_dim(std::int64_t n, std::int64_t d) { return n == 0 ? 0 : (n - 1) * d + 1; }

inline std::string conv_prefix(std::string_view op, const AbstractArray& l, const AbstractArray& r) {
  return "eqx::" + std::string(op) + ": lhs " + l.str() + ", rhs " + r.str() + ": ";
}

/// Checks dtypes, ranks and the per-axis parameters that do not depend on
/// padding (so padding strings can be resolved after it). `op` names the
/// public function in messages.
inline void conv_check_params(std::string_view op, const AbstractArray& l, const AbstractArray& r, const Ints& strides,
                              const Ints& lhs_dilation, const Ints& rhs_dilation, std::int64_t groups) {
  const std::string pre = conv_prefix(op, l, r);
  if (l.dtype != r.dtype)
    throw DTypeError(pre + "operands have dtypes " + std::string(dtype_name(l.dtype)) + " and " +
                     std::string(dtype_name(r.dtype)) + "; convert one with eqx::astype so both match");
  if (!is_floating(l.dtype))
    throw DTypeError(pre + "convolution needs float32 or float64 operands, got " + std::string(dtype_name(l.dtype)) +
                     "; convert with eqx::astype(x, eqx::float32)");
  if (l.shape.size() != r.shape.size() || l.shape.size() < 3)
    throw ShapeError(pre + "lhs must be [N, C_in, spatial...] and rhs [C_out, C_in / feature_group_count, " +
                     "kernel spatial...] with the same rank >= 3 (one or more spatial axes); got ranks " +
                     std::to_string(l.shape.size()) + " and " + std::to_string(r.shape.size()));
  const std::size_t nsp = l.shape.size() - 2;
  auto check = [&](const char* what, const Ints& v) {
    if (v.size() != nsp)
      throw ValueError(pre + what + " " + ints_str(v) + " has " + std::to_string(v.size()) + " entries but there are " +
                       std::to_string(nsp) + " spatial axes; give one entry per spatial axis (or none for all ones)");
    for (auto s : v)
      if (s < 1) throw ValueError(pre + what + " " + ints_str(v) + " must be >= 1 on every axis");
  };
  check("window_strides", strides);
  check("lhs_dilation", lhs_dilation);
  check("rhs_dilation", rhs_dilation);
  if (groups < 1)
    throw ValueError(pre + "feature_group_count must be >= 1, got " + std::to_string(groups));
  if (l.shape[1] != r.shape[1] * groups)
    throw ShapeError(pre + "lhs has " + std::to_string(l.shape[1]) + " input channels (axis 1) but rhs expects " +
                     std::to_string(r.shape[1]) + " * feature_group_count " + std::to_string(groups) + " = " +
                     std::to_string(r.shape[1] * groups) +
                     "; rhs must be [C_out, C_in / feature_group_count, kernel spatial...]");
  if (r.shape[0] % groups != 0)
    throw ShapeError(pre + "rhs has " + std::to_string(r.shape[0]) + " output channels (axis 0), which is not a " +
                     "multiple of feature_group_count " + std::to_string(groups) +
                     "; each group needs the same number of output channels");
}

/// Output shape of conv_general_dilated, after every check. `op` names the
/// public function in messages.
inline Shape conv_output_shape(std::string_view op, const AbstractArray& l, const AbstractArray& r, const ConvDims& d) {
  conv_check_params(op, l, r, d.strides, d.lhs_dilation, d.rhs_dilation, d.feature_group_count);
  const std::string pre = conv_prefix(op, l, r);
  const std::size_t nsp = l.shape.size() - 2;
  if (d.padding.size() != 2 * nsp)
    throw ValueError(pre + "padding " + ints_str(d.padding) + " must hold " + std::to_string(nsp) +
                     " (lo, hi) pairs, one per spatial axis, flattened to " + std::to_string(2 * nsp) + " entries");
  Shape out{l.shape[0], r.shape[0]};
  for (std::size_t i = 0; i < nsp; ++i) {
    const std::int64_t in = l.shape[i + 2], k = r.shape[i + 2];
    const std::int64_t lo = d.padding[2 * i], hi = d.padding[2 * i + 1];
    const std::int64_t in_dil = dilate_dim(in, d.lhs_dilation[i]), k_dil = dilate_dim(k, d.rhs_dilation[i]);
    const std::int64_t padded = in_dil + lo + hi;
    if (padded < k_dil || padded <= 0)
      throw ShapeError(pre + "spatial axis " + std::to_string(i) + ": the input of size " + std::to_string(in) +
                       (d.lhs_dilation[i] != 1 ? " (" + std::to_string(in_dil) + " after lhs_dilation)" : "") +
                       " padded by (" + std::to_string(lo) + ", " + std::to_string(hi) + ") has size " +
                       std::to_string(padded) + ", smaller than the kernel window of size " + std::to_string(k_dil) +
                       (d.rhs_dilation[i] != 1 ? " (" + std::to_string(k) + " after rhs_dilation)" : "") +
                       ", so the output would be empty; use a smaller kernel or dilation, more padding, or "
                       "padding \"SAME\"");
    out.push_back((padded - k_dil) / d.strides[i] + 1);
  }
  return out;
}

struct ConvGeneralDilatedPrim final : Primitive {
  std::string_view name() const override { return "conv_general_dilated"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override;

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    return {{conv_output_shape(name(), in[0], in[1], ConvDims::from(p)), in[0].dtype}};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;

  // Differentiation rules, defined below the struct.
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;

 private:
  /// Scratch elements of one column block (16 MiB of float32).
  static constexpr std::int64_t kMaxColumnElements = std::int64_t{1} << 22;

  template <class T>
  static void run(const View& lv, const View& rv, const View& ov, const ConvDims& d) {
    const Shape &ls = *lv.shape, &rs = *rv.shape, &os = *ov.shape;
    const std::size_t nsp = ls.size() - 2;
    const std::int64_t N = ls[0], C_in = ls[1], C_out = rs[0], G = d.feature_group_count;
    const std::int64_t Cg_in = C_in / G, Cg_out = C_out / G;
    std::int64_t in_sp = 1, ksz = 1, P = 1;
    for (std::size_t i = 0; i < nsp; ++i) {
      in_sp *= ls[i + 2];
      ksz *= rs[i + 2];
      P *= os[i + 2];
    }
    const std::int64_t K = Cg_in * ksz;  // contraction length
    const T* x = lv.as<const T>();
    const T* w = rv.as<const T>();
    T* o = ov.as<T>();
    if (N * C_out * P == 0) return;
    if (K == 0) {
      std::fill(o, o + N * C_out * P, T(0));
      return;
    }

    // tab[i][k * out_i + o] = input index read by kernel tap k at output o on
    // spatial axis i, or -1 where the tap lands on padding or a dilation hole.
    std::vector<std::vector<std::int64_t>> tab(nsp);
    bool identity = true;  // 1x1 kernel, unit strides, no padding or dilation
    for (std::size_t i = 0; i < nsp; ++i) {
      const std::int64_t in = ls[i + 2], k = rs[i + 2], on = os[i + 2];
      const std::int64_t s = d.strides[i], lo = d.padding[2 * i], ld = d.lhs_dilation[i], rd = d.rhs_dilation[i];
      identity = identity && k == 1 && s == 1 && lo == 0 && d.padding[2 * i + 1] == 0 && ld == 1;
      tab[i].resize(static_cast<std::size_t>(k * on));
      for (std::int64_t kk = 0; kk < k; ++kk)
        for (std::int64_t oo = 0; oo < on; ++oo) {
          const std::int64_t q = oo * s - lo + kk * rd;  // position in the dilated input
          tab[i][kk * on + oo] = (q >= 0 && q % ld == 0 && q / ld < in) ? q / ld : -1;
        }
    }
    const Shape in_strides = contiguous_strides(Shape(ls.begin() + 2, ls.end()));
    const std::int64_t out_last = os[ls.size() - 1];
    // contiguous[k]: kernel tap k of the last axis reads consecutive input
    // cells across the whole output row (stride 1, no padding or dilation
    // hole on the way), so a run of it is one copy.
    std::vector<char> contiguous(nsp == 0 ? 0 : static_cast<std::size_t>(rs[ls.size() - 1]), 1);
    for (std::int64_t kk = 0; kk < static_cast<std::int64_t>(contiguous.size()); ++kk)
      for (std::int64_t oo = 0; oo < out_last; ++oo) {
        const std::int64_t t = tab[nsp - 1][kk * out_last + oo];
        if (t < 0 || t != tab[nsp - 1][kk * out_last] + oo) contiguous[kk] = 0;
      }

    // Split output columns into blocks: to bound scratch, and so that a few
    // large images still occupy every thread.
    const std::int64_t units = N * G;
    std::int64_t blocks = identity ? 1 : (K * P + kMaxColumnElements - 1) / kMaxColumnElements;
    const std::int64_t flops_per_unit = Cg_out * K * P;
    const std::int64_t threads = ThreadPool::instance().num_threads();
    if (units < threads && flops_per_unit * units / 8 >= kParallelGrain * 2)
      blocks = std::max(blocks, (threads + units - 1) / units);
    blocks = std::clamp<std::int64_t>(blocks, 1, P);
    const std::int64_t tasks = units * blocks;

    // Fills col[K, p1 - p0] with the patches of batch element n, group g.
    auto im2col = [&](const T* xg, std::int64_t p0, std::int64_t p1, T* col) {
      const std::int64_t width = p1 - p0;
      Shape kidx = Shape::filled(nsp, 0);
      for (std::int64_t row = 0; row < K; ++row) {
        // row = (c, k_0, ..., k_{nsp-1}) in row-major order
        std::int64_t rem = row % ksz;
        const std::int64_t c = row / ksz;
        for (std::size_t i = nsp; i-- > 0;) {
          kidx[i] = rem % rs[i + 2];
          rem /= rs[i + 2];
        }
        const T* src = xg + c * in_sp;
        T* dst = col + row * width;
        const std::int64_t* last = tab[nsp - 1].data() + kidx[nsp - 1] * out_last;
        std::int64_t p = p0;
        while (p < p1) {
          // One run along the last output axis: outer axes are fixed.
          const std::int64_t o_last = p % out_last;
          const std::int64_t end = std::min(p1, p - o_last + out_last);
          std::int64_t outer = p / out_last, base = 0;
          bool valid = true;
          for (std::size_t i = nsp - 1; i-- > 0;) {
            const std::int64_t on = os[i + 2];
            const std::int64_t t = tab[i][kidx[i] * on + outer % on];
            outer /= on;
            if (t < 0) valid = false;
            base += t * in_strides[i];
          }
          T* dp = dst + (p - p0);
          if (!valid) {
            std::fill(dp, dp + (end - p), T(0));
          } else if (contiguous[kidx[nsp - 1]]) {
            const T* sp = src + base + last[o_last];
            std::copy(sp, sp + (end - p), dp);
          } else {
            const T* sp = src + base;
            for (std::int64_t oo = o_last, e = o_last + (end - p); oo < e; ++oo) {
              const std::int64_t t = last[oo];
              *dp++ = t >= 0 ? sp[t] : T(0);
            }
          }
          p = end;
        }
      }
    };

    // The transposed column matrix colT[p1 - p0, K], one row per output
    // position, for convolutions whose kernel is wider than their output
    // (the weight gradient of a small convolution: a 25x25 "kernel" of
    // output cotangents over a 4x4 output). im2col's runs along the output's
    // last axis would be a few elements long; here each run is a row of the
    // kernel's last axis, one copy where the taps read consecutive cells.
    const std::int64_t k_last = nsp == 0 ? 1 : rs[ls.size() - 1];
    const bool transposed = !identity && nsp > 0 && k_last > out_last;
    // kernel_contiguous[o]: at output position o of the last axis, the
    // kernel's taps read consecutive input cells (no padding or hole).
    std::vector<char> kernel_contiguous(transposed ? static_cast<std::size_t>(out_last) : 0, 1);
    for (std::int64_t oo = 0; oo < static_cast<std::int64_t>(kernel_contiguous.size()); ++oo)
      for (std::int64_t kk = 0; kk < k_last; ++kk) {
        const std::int64_t t = tab[nsp - 1][kk * out_last + oo];
        if (t < 0 || t != tab[nsp - 1][oo] + kk) kernel_contiguous[oo] = 0;
      }
    auto im2col_transposed = [&](const T* xg, std::int64_t p0, std::int64_t p1, T* colT) {
      const std::int64_t outer_taps = ksz / k_last;
      Shape oidx = Shape::filled(nsp, 0), kidx = Shape::filled(nsp, 0);
      for (std::int64_t p = p0; p < p1; ++p) {
        std::int64_t rem = p;
        for (std::size_t i = nsp; i-- > 0;) {
          oidx[i] = rem % os[i + 2];
          rem /= os[i + 2];
        }
        const std::int64_t o_last = oidx[nsp - 1];
        const std::int64_t* last = tab[nsp - 1].data() + o_last;  // tap kk reads last[kk * out_last]
        T* row = colT + (p - p0) * K;
        for (std::int64_t c = 0; c < Cg_in; ++c) {
          const T* src = xg + c * in_sp;
          for (std::int64_t ko = 0; ko < outer_taps; ++ko, row += k_last) {
            std::int64_t r = ko, base = 0;
            bool valid = true;
            for (std::size_t i = nsp - 1; i-- > 0;) {
              kidx[i] = r % rs[i + 2];
              r /= rs[i + 2];
              const std::int64_t t = tab[i][kidx[i] * os[i + 2] + oidx[i]];
              if (t < 0) valid = false;
              base += t * in_strides[i];
            }
            if (!valid) {
              std::fill(row, row + k_last, T(0));
            } else if (kernel_contiguous[o_last]) {
              const T* sp = src + base + last[0];
              std::copy(sp, sp + k_last, row);
            } else {
              for (std::int64_t kk = 0; kk < k_last; ++kk) {
                const std::int64_t t = last[kk * out_last];
                row[kk] = t >= 0 ? src[base + t] : T(0);
              }
            }
          }
        }
      }
    };

    parallel_for(tasks, std::max<std::int64_t>(flops_per_unit / blocks / 8, 1), [&](std::int64_t s, std::int64_t e) {
      // Scratch kept by each thread across calls: a jitted step convolves
      // the same shapes every call, and a fresh multi-megabyte buffer would
      // be an mmap, page faults and an munmap each time.
      thread_local std::vector<T> col;
      for (std::int64_t t = s; t < e; ++t) {
        const std::int64_t unit = t / blocks, b = t % blocks;
        const std::int64_t n = unit / G, g = unit % G;
        const std::int64_t p0 = P * b / blocks, p1 = P * (b + 1) / blocks;
        const T* xg = x + (n * C_in + g * Cg_in) * in_sp;
        const T* colp;
        std::int64_t ld;
        if (identity) {  // the input itself is the [K, P] column matrix
          colp = xg + p0;
          ld = P;
        } else if (transposed) {
          col.resize(static_cast<std::size_t>(K * (p1 - p0)));
          im2col_transposed(xg, p0, p1, col.data());
          gemm(GemmArgs<T>{w + g * Cg_out * K, K, false, col.data(), K, true, o + (n * C_out + g * Cg_out) * P + p0,
                           P, Cg_out, p1 - p0, K},
               /*parallel=*/false);
          continue;
        } else {
          col.resize(static_cast<std::size_t>(K * (p1 - p0)));
          im2col(xg, p0, p1, col.data());
          colp = col.data();
          ld = p1 - p0;
        }
        gemm(GemmArgs<T>{w + g * Cg_out * K, K, false, colp, ld, false, o + (n * C_out + g * Cg_out) * P + p0, P,
                         Cg_out, p1 - p0, K},
             /*parallel=*/false);
      }
    });
  }
};
#if EQX_KERNELS_HERE(CONV)
EQX_KERNEL_INLINE void ConvGeneralDilatedPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  const ConvDims d = ConvDims::from(p);
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) run<T>(in[0], in[1], out[0], d);
  });
}
#endif

// --- differentiation rules ---------------------------------------------------
//
// As JAX's (jax/_src/lax/convolution.py): both cotangents are again
// convolutions, so the rules trace, jit and differentiate like any other op.

inline Params conv_params(Ints strides, Ints padding, Ints lhs_dilation, Ints rhs_dilation, std::int64_t groups) {
  return Params{}
      .set("window_strides", std::move(strides))
      .set("padding", std::move(padding))
      .set("lhs_dilation", std::move(lhs_dilation))
      .set("rhs_dilation", std::move(rhs_dilation))
      .set("feature_group_count", groups);
}

/// 0, 1, ..., n-1 with the first two entries swapped (n >= 2).
inline Ints swap_first_two_axes(std::size_t n) {
  Ints perm(n);
  for (std::size_t i = 0; i < n; ++i) perm[i] = static_cast<std::int64_t>(i);
  std::swap(perm[0], perm[1]);
  return perm;
}

/// `a` = [d0, d1, spatial...] viewed as [split..., spatial...] (three
/// leading axes), those three permuted by `perm`, then merged to
/// [merged..., spatial...] (two leading axes): moves feature groups between axes.
inline Array regroup_leading_axes(const RuleOps& o, const Array& a, Shape split, Ints perm, Shape merged) {
  for (std::size_t i = 2; i < a.ndim(); ++i) {
    split.push_back(a.shape()[i]);
    merged.push_back(a.shape()[i]);
    perm.push_back(static_cast<std::int64_t>(i + 1));
  }
  return o.reshape(o.transpose(o.reshape(a, split), perm), merged);
}

/// `x` with its axes from `first` on replaced by `sizes`, then the rest.
inline Array reshape_axes(const RuleOps& o, const Array& x, std::size_t first, std::size_t count, const Shape& sizes) {
  Shape s(x.shape().begin(), x.shape().begin() + first);
  for (auto v : sizes) s.push_back(v);
  for (std::size_t i = first + count; i < x.ndim(); ++i) s.push_back(x.shape()[i]);
  return o.reshape(x, s);
}

#if EQX_KERNELS_HERE(CONV)
// Batching, as JAX does: the batch folds into the lhs batch axis (only lhs
// batched), into the output features (only rhs batched: each example's
// kernels are more output channels, kept inside their feature group), or
// into feature groups (both batched: example b's channels are groups of
// their own).
EQX_KERNEL_INLINE Batched ConvGeneralDilatedPrim::batch(const RuleOps& o, std::span<const Array> x, BatchDims d,
                                                        const Params& p) const {
  const std::int64_t n = batch_size(x, d), groups = p.get<std::int64_t>("feature_group_count");
  if (d[1] == not_mapped) {
    Array lhs = o.moveaxis(x[0], d[0], 0);
    Array y = bind1(*this, {reshape_axes(o, lhs, 0, 2, {n * lhs.shape()[1]}), x[1]}, p);
    return {{reshape_axes(o, y, 0, 1, {n, y.shape()[0] / n})}, {0}};
  }
  Array rhs = o.moveaxis(x[1], d[1], 0);  // [n, O, I / G, kernel...]
  const std::int64_t out_features = rhs.shape()[1];
  if (d[0] != not_mapped) {
    Array lhs = o.moveaxis(x[0], d[0], 1);  // [N, n, I, spatial...]
    Array y = bind1(*this,
                    {reshape_axes(o, lhs, 1, 2, {n * lhs.shape()[2]}), reshape_axes(o, rhs, 0, 2, {n * out_features})},
                    Params(p).set("feature_group_count", n * groups));
    return {{reshape_axes(o, y, 1, 1, {n, out_features})}, {1}};
  }
  const std::int64_t per_group = out_features / groups;
  if (groups > 1) rhs = o.moveaxis(reshape_axes(o, rhs, 1, 1, {groups, per_group}), 1, 0);  // [G, n, O / G, ...]
  Array y = bind1(*this, {x[0], reshape_axes(o, rhs, 0, groups > 1 ? 3 : 2, {n * out_features})}, p);
  if (groups > 1) y = o.moveaxis(reshape_axes(o, y, 1, 1, {groups, n, per_group}), 2, 1);  // [N, n, G, O / G, ...]
  return {{reshape_axes(o, y, 1, groups > 1 ? 3 : 1, {n, out_features})}, {1}};
}

// Bilinear: d conv(l, r) = conv(dl, r) + conv(l, dr).
EQX_KERNEL_INLINE std::vector<Array> ConvGeneralDilatedPrim::jvp(const RuleOps& o, std::span<const Array> x,
                                                                 std::span<const Array> t, std::span<const Array>,
                                                                 const Params& p) const {
  return {o.add(t[0].has_value() ? bind1(*this, {t[0], x[1]}, p) : Array{},
                t[1].has_value() ? bind1(*this, {x[0], t[1]}, p) : Array{})};
}

// lhs cotangent: the transposed convolution. The cotangent, dilated by the
// forward strides (lhs_dilation = window_strides), is convolved with the
// spatially reversed kernel whose in/out feature axes are swapped within
// each group; stepping by the forward lhs_dilation picks the input cells that
// exist. Padding (JAX's _conv_general_vjp_lhs_padding), per spatial axis:
//   lo' = k_dil - lo - 1,  hi' = in_dil + k_dil - 1 - out_dil - lo'
// with k_dil, in_dil, out_dil the kernel, input and output sizes after
// rhs_dilation, lhs_dilation and window_strides; the sum makes the result
// exactly the input's size, also when the strides skip trailing input cells.
//
// rhs cotangent: a convolution of the input (batch and feature axes swapped)
// with the cotangent as the kernel, contracting over the batch and output
// positions: window_strides = rhs_dilation, rhs_dilation = window_strides,
// lhs_dilation kept, padding lo' = lo, hi' = out_dil - in_dil + k_dil - lo - 1
// (JAX's _conv_general_vjp_rhs_padding). JAX expresses groups there with
// batch_group_count; here the groups go into the feature axis instead:
// input [N, G * Ig, sp] -> [Ig, G * N, sp] with feature_group_count G, so
// output channel block g only sees group g's input channels.
EQX_KERNEL_INLINE std::vector<Array> ConvGeneralDilatedPrim::vjp(const RuleOps& o, std::span<const Array> x,
                                                                 std::span<const Array>, std::span<const Array> ct,
                                                                 const Params& p) const {
  if (!ct[0].has_value()) return {Array{}, Array{}};
  const Array &lhs = x[0], &rhs = x[1], &g = ct[0];
  // Empty operands or outputs: nothing flows (and the transposed convolutions
  // below would have empty windows).
  if (lhs.size() == 0 || rhs.size() == 0 || g.size() == 0) return {o.zeros_like(lhs), o.zeros_like(rhs)};
  const ConvDims d = ConvDims::from(p);
  const Shape &ls = lhs.shape(), &rs = rhs.shape(), &gs = g.shape();
  const std::size_t nsp = ls.size() - 2, rank = ls.size();
  const std::int64_t G = d.feature_group_count, N = ls[0], C_in = ls[1], C_out = rs[0];
  const std::int64_t Ig = C_in / G, Og = C_out / G;

  Ints lhs_pad(2 * nsp), rhs_pad(2 * nsp), spatial;
  for (std::size_t i = 0; i < nsp; ++i) {
    const std::int64_t in_dil = dilate_dim(ls[i + 2], d.lhs_dilation[i]);
    const std::int64_t k_dil = dilate_dim(rs[i + 2], d.rhs_dilation[i]);
    const std::int64_t out_dil = dilate_dim(gs[i + 2], d.strides[i]);
    const std::int64_t lo = d.padding[2 * i];
    lhs_pad[2 * i] = k_dil - lo - 1;
    lhs_pad[2 * i + 1] = in_dil + k_dil - 1 - out_dil - lhs_pad[2 * i];
    rhs_pad[2 * i] = lo;
    rhs_pad[2 * i + 1] = out_dil - in_dil + k_dil - lo - 1;
    spatial.push_back(static_cast<std::int64_t>(i + 2));
  }

  // Kernel for the lhs cotangent: [C_out, Ig, k...] -> [G, Og, Ig, k...] ->
  // [G, Ig, Og, k...] -> [C_in, Og, k...], then reversed in space.
  Array w = G == 1 ? o.transpose(rhs, swap_first_two_axes(rank))
                   : regroup_leading_axes(o, rhs, {G, Og, Ig}, {0, 2, 1}, {C_in, Og});
  w = bind1(prim::rev, {w}, Params{}.set("dimensions", spatial));
  Array lhs_ct = bind1(*this, {g, w}, conv_params(d.lhs_dilation, lhs_pad, d.strides, d.rhs_dilation, G));

  // Input for the rhs cotangent: [N, C_in, sp] -> [Ig, G * N, sp].
  Array in = G == 1 ? o.transpose(lhs, swap_first_two_axes(rank))
                    : regroup_leading_axes(o, lhs, {N, G, Ig}, {2, 1, 0}, {Ig, G * N});
  Array g_kernel = o.transpose(g, swap_first_two_axes(rank));  // [C_out, N, out sp]
  Array rhs_ct = bind1(*this, {in, g_kernel}, conv_params(d.rhs_dilation, rhs_pad, d.lhs_dilation, d.strides, G));
  return {lhs_ct, o.transpose(rhs_ct, swap_first_two_axes(rank))};  // [Ig, C_out, k] -> [C_out, Ig, k]
}
#endif
}  // namespace eqx::detail

namespace eqx::prim {
inline const detail::ConvGeneralDilatedPrim conv_general_dilated;
}  // namespace eqx::prim
