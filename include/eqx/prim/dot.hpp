#pragma once
// dot_general: batched tensor contraction (lax.dot_general), the one
// primitive behind matmul, dot, einsum-like products and dense layers.
//
// Output axes: batch axes, then lhs free axes, then rhs free axes. The kernel
// lays each operand out as a row-major [batch, rows, cols] matrix stack
// (transposing only when no matrix view exists) and runs one GEMM per batch
// entry on Eigen or BLAS, whichever is faster for the shape (prim/gemm.hpp).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "eqx/core/threads.hpp"
#include "eqx/prim/layout.hpp"
#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/gemm_policy.hpp"
#include "eqx/prim/primitive.hpp"
#if EQX_KERNELS_HERE(DOT)
#include "eqx/prim/gemm.hpp"  // the products themselves (and Eigen), only where this kernel is compiled
#endif

namespace eqx::detail {

/// Axis lists held inline (a Shape is a small vector): the kernel runs in
/// compiled plans, which must not allocate.
using AxisList = Shape;

struct DotDims {
  AxisList lhs_contract, rhs_contract, lhs_batch, rhs_batch;
  static DotDims from(const Params& p) {
    auto axes = [&](ParamName name) {
      const Ints& v = p.get<Ints>(name);
      return AxisList(v.begin(), v.end());
    };
    return {axes("lhs_contracting_dimensions"), axes("rhs_contracting_dimensions"), axes("lhs_batch_dimensions"),
            axes("rhs_batch_dimensions")};
  }
  /// The dot_general parameters these axes describe (what `from` reads).
  Params params() const {
    auto ints = [](const AxisList& a) { return Ints(a.begin(), a.end()); };
    return Params{}
        .set("lhs_contracting_dimensions", ints(lhs_contract))
        .set("rhs_contracting_dimensions", ints(rhs_contract))
        .set("lhs_batch_dimensions", ints(lhs_batch))
        .set("rhs_batch_dimensions", ints(rhs_batch));
  }
};

/// Axes of a rank-r operand that are neither batch nor contracted, in order.
inline AxisList free_axes(std::size_t rank, const AxisList& batch, const AxisList& contract) {
  AxisList out;
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(rank); ++i)
    if (std::find(batch.begin(), batch.end(), i) == batch.end() &&
        std::find(contract.begin(), contract.end(), i) == contract.end())
      out.push_back(i);
  return out;
}

/// One operand as a stack of row-major matrices, possibly transposed.
template <class T>
struct MatrixStack {
  const T* data;
  std::int64_t rows, cols;  // of the stored matrices
  bool transposed;          // the operand is the transpose of the stored matrices
  std::vector<T> scratch;
};

/// Lays out `x` as [batch, free, contract] (want_free_first) or
/// [batch, contract, free]; reuses x's buffer when either order is already
/// contiguous, flagging the transposition for the GEMM instead of copying.
template <class T>
void as_matrix_stack(const View& x, const AxisList& batch, const AxisList& free, const AxisList& contract, bool want_free_first,
                     MatrixStack<T>& m) {
  const Shape& s = *x.shape;
  std::int64_t nf = 1, nc = 1;
  for (auto a : free) nf *= s[a];
  for (auto a : contract) nc *= s[a];
  AxisList bfc = batch, bcf = batch;
  for (auto a : free) bfc.push_back(a);
  for (auto a : contract) bfc.push_back(a);
  for (auto a : contract) bcf.push_back(a);
  for (auto a : free) bcf.push_back(a);
  if (is_identity_permutation(bfc) || is_identity_permutation(bcf)) {
    bool stored_free_first = is_identity_permutation(bfc);
    m.data = x.as<const T>();
    m.rows = stored_free_first ? nf : nc;
    m.cols = stored_free_first ? nc : nf;
    m.transposed = stored_free_first != want_free_first;
    return;
  }
  const AxisList& order = want_free_first ? bfc : bcf;
  Shape src = contiguous_strides(s), st, shape;
  for (auto a : order) {
    st.push_back(src[a]);
    shape.push_back(s[a]);
  }
  m.scratch.resize(static_cast<std::size_t>(s.numel()));
  strided_copy(x.as<const T>(), shape, st, m.scratch.data());
  m.data = m.scratch.data();
  m.rows = want_free_first ? nf : nc;
  m.cols = want_free_first ? nc : nf;
  m.transposed = false;
}

struct DotGeneralPrim final : Primitive {
  std::string_view name() const override { return "dot_general"; }
  // Both operands batched: a new leading batch axis of the dot. One
  // batched: its batch axis stays where it is and becomes one more free
  // axis, so a batch of matrix-vector products is one matrix product.
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    const ParamName names[4] = {"lhs_contracting_dimensions", "rhs_contracting_dimensions", "lhs_batch_dimensions",
                                "rhs_batch_dimensions"};
    Ints axes[4] = {p.get<Ints>(names[0]), p.get<Ints>(names[1]), p.get<Ints>(names[2]), p.get<Ints>(names[3])};
    auto make_params = [&] {
      Params q = p;
      for (int i = 0; i < 4; ++i) q.set(names[i], axes[i]);
      return q;
    };
    if (d[0] != not_mapped && d[1] != not_mapped) {
      for (auto& a : axes) a = shift_axes(a);
      axes[2].insert(axes[2].begin(), 0);
      axes[3].insert(axes[3].begin(), 0);
      return {{eqx::bind1(*this, {o.moveaxis(x[0], d[0], 0), o.moveaxis(x[1], d[1], 0)}, make_params())}, {0}};
    }
    const std::size_t side = d[0] != not_mapped ? 0 : 1;
    const std::int64_t b = d[side];
    if (side == 1 && axes[2].empty() && x[1].ndim() == axes[1].size() + 1) {
      // A batch of matrix-vector products W v: computed as V W^T, so the
      // batch axis comes out first (no transpose of the result).
      for (auto& a : axes[1]) a += a >= b ? 1 : 0;
      std::swap(axes[0], axes[1]);
      return {{eqx::bind1(*this, {x[1], x[0]}, make_params())}, {0}};
    }
    for (std::size_t i : {side, side + 2})  // this operand's contracting and batch axes, past its batch axis
      for (auto& a : axes[i]) a += a >= b ? 1 : 0;
    // Output axes: dot batch axes, lhs free axes, rhs free axes (each in order).
    std::int64_t out_dim = static_cast<std::int64_t>(axes[2].size());
    if (side == 1)
      out_dim += static_cast<std::int64_t>(
          free_axes(x[0].ndim(), AxisList(axes[2].begin(), axes[2].end()), AxisList(axes[0].begin(), axes[0].end())).size());
    AxisList free = free_axes(x[side].ndim(), AxisList(axes[side + 2].begin(), axes[side + 2].end()),
                              AxisList(axes[side].begin(), axes[side].end()));
    out_dim += std::find(free.begin(), free.end(), b) - free.begin();
    return {{eqx::bind1(*this, {x[0], x[1]}, make_params())}, {out_dim}};
  }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const AbstractArray &l = in[0], &r = in[1];
    DotDims d = DotDims::from(p);
    auto fail = [&](const std::string& why) {
      throw ShapeError("eqx::dot_general: " + l.str() + " and " + r.str() + " with contracting " +
                       ints_str(d.lhs_contract) + "/" + ints_str(d.rhs_contract) + ", batch " + ints_str(d.lhs_batch) +
                       "/" + ints_str(d.rhs_batch) + ": " + why);
    };
    if (l.dtype != r.dtype)
      throw DTypeError("eqx::dot_general: operands have dtypes " + std::string(dtype_name(l.dtype)) + " and " +
                       std::string(dtype_name(r.dtype)) + "; convert one with eqx::astype");
    if (l.dtype == DType::bool_)
      throw DTypeError("eqx::dot_general: bool operands are not supported; convert with eqx::astype(x, eqx::int32)");
    if (d.lhs_contract.size() != d.rhs_contract.size() || d.lhs_batch.size() != d.rhs_batch.size())
      fail("lhs and rhs need the same number of contracting and of batch axes");
    auto check_axes_of = [&](const AbstractArray& x, const AxisList& batch, const AxisList& contract) {
      std::vector<bool> used(x.shape.size(), false);
      for (const AxisList* v : {&batch, &contract})
        for (auto a : *v) {
          if (a < 0 || a >= static_cast<std::int64_t>(x.shape.size()) || used[a]) fail("axes out of range or repeated");
          used[a] = true;
        }
    };
    check_axes_of(l, d.lhs_batch, d.lhs_contract);
    check_axes_of(r, d.rhs_batch, d.rhs_contract);
    Shape out;
    for (std::size_t i = 0; i < d.lhs_batch.size(); ++i) {
      if (l.shape[d.lhs_batch[i]] != r.shape[d.rhs_batch[i]]) fail("batch axis sizes differ");
      out.push_back(l.shape[d.lhs_batch[i]]);
    }
    for (std::size_t i = 0; i < d.lhs_contract.size(); ++i)
      if (l.shape[d.lhs_contract[i]] != r.shape[d.rhs_contract[i]])
        fail("contracted sizes differ (" + std::to_string(l.shape[d.lhs_contract[i]]) + " vs " +
             std::to_string(r.shape[d.rhs_contract[i]]) + ")");
    for (auto a : free_axes(l.shape.size(), d.lhs_batch, d.lhs_contract)) out.push_back(l.shape[a]);
    for (auto a : free_axes(r.shape.size(), d.rhs_batch, d.rhs_contract)) out.push_back(r.shape[a]);
    return {{out, l.dtype}};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;

  // Bilinear: d(l.r) = dl.r + l.dr.
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array>, const Params& p) const override {
    return {o.add(t[0].has_value() ? bind1(*this, {t[0], x[1]}, p) : Array{},
                  t[1].has_value() ? bind1(*this, {x[0], t[1]}, p) : Array{})};
  }
  // The cotangent of each operand is a dot_general of the output cotangent
  // with the other operand over the other operand's free axes, then a
  // transpose back to the operand's axis order (as JAX's transpose rule).
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array>,
                         std::span<const Array> ct, const Params& p) const override {
    if (!ct[0].has_value()) return {Array{}, Array{}};
    const DotDims d = DotDims::from(p);
    return {operand_cotangent(o, ct[0], x[1], x[0].ndim(), d.lhs_batch, d.lhs_contract, d.rhs_batch,
                              d.rhs_contract, /*lhs=*/true),
            operand_cotangent(o, ct[0], x[0], x[1].ndim(), d.rhs_batch, d.rhs_contract, d.lhs_batch,
                              d.lhs_contract, /*lhs=*/false)};
  }

 private:
  static Array operand_cotangent(const RuleOps& o, const Array& ct, const Array& other, std::size_t rank,
                                 const AxisList& batch, const AxisList& contract, const AxisList& other_batch,
                                 const AxisList& other_contract, bool lhs) {
    const std::size_t nb = batch.size();
    const AxisList free = free_axes(rank, batch, contract);
    const AxisList other_free = free_axes(other.ndim(), other_batch, other_contract);
    // Output axes: [batch, lhs free, rhs free]; this operand's free axes sit
    // first (lhs) or second (rhs) among the free ones.
    const std::size_t lhs_free = lhs ? free.size() : other_free.size();
    Ints ct_contract, ct_batch, o_contract, o_batch;
    for (std::size_t i = 0; i < other_free.size(); ++i) {
      ct_contract.push_back(static_cast<std::int64_t>(nb + (lhs ? lhs_free : 0) + i));
      o_contract.push_back(other_free[i]);
    }
    for (std::size_t i = 0; i < nb; ++i) {
      ct_batch.push_back(static_cast<std::int64_t>(i));
      o_batch.push_back(other_batch[i]);
    }
    // The operand's contract axes, in the order of the other operand's
    // remaining axes (its contract axes, ascending).
    Ints remaining(other_contract.begin(), other_contract.end());
    std::sort(remaining.begin(), remaining.end());
    Ints mapped;
    for (auto r : remaining) {
      auto it = std::find(other_contract.begin(), other_contract.end(), r);
      mapped.push_back(contract[static_cast<std::size_t>(it - other_contract.begin())]);
    }
    // dot(ct, other) has axes [batch, free, mapped]; dot(other, ct) has
    // [batch, mapped, free]. Take the one already in the operand's axis
    // order when there is one (the weight of x @ w: x^T ct, not (ct^T x)^T),
    // so no transpose is materialised; else transpose dot(ct, other) back.
    Ints order(batch.begin(), batch.end()), swapped(batch.begin(), batch.end());
    order.insert(order.end(), free.begin(), free.end());
    order.insert(order.end(), mapped.begin(), mapped.end());
    swapped.insert(swapped.end(), mapped.begin(), mapped.end());
    swapped.insert(swapped.end(), free.begin(), free.end());
    if (!is_identity_permutation(order) && is_identity_permutation(swapped))
      return o.dot(other, ct, o_contract, ct_contract, o_batch, ct_batch);
    Array raw = o.dot(ct, other, ct_contract, o_contract, ct_batch, o_batch);
    // raw axis k is the operand's axis order[k]; transpose it back.
    return is_identity_permutation(order) ? raw : o.transpose(raw, inverse_permutation(order));
  }

  template <class T>
  static void run(const View& lv, const View& rv, const View& ov, const DotDims& d) {
    AxisList lfree = free_axes(lv.shape->size(), d.lhs_batch, d.lhs_contract);
    AxisList rfree = free_axes(rv.shape->size(), d.rhs_batch, d.rhs_contract);
    MatrixStack<T> L, R;
    as_matrix_stack(lv, d.lhs_batch, lfree, d.lhs_contract, /*want_free_first=*/true, L);
    as_matrix_stack(rv, d.rhs_batch, rfree, d.rhs_contract, /*want_free_first=*/false, R);
    std::int64_t batch = 1;
    for (auto a : d.lhs_batch) batch *= (*lv.shape)[a];
    const std::int64_t M = L.transposed ? L.cols : L.rows, K = L.transposed ? L.rows : L.cols;
    const std::int64_t N = R.transposed ? R.rows : R.cols;
    T* o = ov.as<T>();
    // The GEMM of batch entry b.
    auto args = [&](std::int64_t b) {
      return GemmArgs<T>{L.data + b * L.rows * L.cols, L.cols, L.transposed, R.data + b * R.rows * R.cols, R.cols,
                         R.transposed, o + b * M * N, N, M, N, K};
    };
    if (batch == 1) return gemm(args(0), /*parallel=*/true);
    parallel_for(batch, M * N * K / 8, [&](std::int64_t s, std::int64_t e) {
      for (std::int64_t b = s; b < e; ++b) gemm(args(b), /*parallel=*/false);
    });
  }
};
#if EQX_KERNELS_HERE(DOT)
EQX_KERNEL_INLINE void DotGeneralPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  visit_dtype(in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool>) run<T>(in[0], in[1], out[0], DotDims::from(p));
  });
}
#endif

}  // namespace eqx::detail

namespace eqx::prim {
inline const detail::DotGeneralPrim dot_general;
}  // namespace eqx::prim
