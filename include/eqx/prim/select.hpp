#pragma once
// select: `where(pred, on_true, on_false)` with numpy broadcasting of all three.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/threads.hpp"
#include "eqx/prim/broadcast.hpp"
#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx::detail {

struct SelectPrim final : Primitive {
  std::string_view name() const override { return "select"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_elementwise(*this, o, x, d, p);
  }
  bool elementwise() const override { return true; }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    return {*output_type(in, p)};
  }
  std::optional<AbstractArray> output_type(std::span<const AbstractArray> in, const Params&) const override {
    if (in[0].dtype != DType::bool_)
      throw DTypeError("eqx::where: the condition has dtype " + std::string(dtype_name(in[0].dtype)) +
                       ", it must be bool; compare first (x > 0) or use eqx::astype(c, eqx::bool_)");
    if (in[1].dtype != in[2].dtype)
      throw DTypeError("eqx::select: branches have dtypes " + std::string(dtype_name(in[1].dtype)) + " and " +
                       std::string(dtype_name(in[2].dtype)) + "; the primitive needs equal dtypes");
    Shape s = broadcast_shapes(broadcast_shapes(in[0].shape, in[1].shape, "where"), in[2].shape, "where");
    return AbstractArray{std::move(s), in[1].dtype};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override;
  TileKernel tile_kernel(std::span<const AbstractArray> in, const Params&) const override;

  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params&) const override {
    if (!t[1].has_value() && !t[2].has_value()) return {Array{}};
    const Shape& s = y[0].shape();
    return {o.select(x[0], o.instantiate(t[1], s, y[0].dtype()), o.instantiate(t[2], s, y[0].dtype()))};
  }
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params&) const override {
    if (!ct[0].has_value()) return {Array{}, Array{}, Array{}};
    Array zero = o.scalar(0, y[0].dtype());  // broadcast by select: no full-size zeros constant
    return {Array{}, o.unbroadcast(o.select(x[0], ct[0], zero), x[1].shape()),
            o.unbroadcast(o.select(x[0], zero, ct[0]), x[2].shape())};
  }
};

/// c ? x : y for a condition byte. The condition is read as unsigned char:
/// GCC vectorises a select on bytes (a blend), but leaves one on `bool`
/// loads as a branch per element, mispredicted half the time on relu's signs.
template <class T>
inline T pick(unsigned char c, T x, T y) {
  return c != 0 ? x : y;
}

template <class T>
void select_tile(const void* const* in, void* out, std::int64_t n) {
  const unsigned char* __restrict c = static_cast<const unsigned char*>(in[0]);
  const T* __restrict a = static_cast<const T*>(in[1]);
  const T* __restrict b = static_cast<const T*>(in[2]);
  T* __restrict o = static_cast<T*>(out);
  for (std::int64_t i = 0; i < n; ++i) o[i] = pick(c[i], a[i], b[i]);
}
#if EQX_KERNELS_HERE(SELECT)
EQX_KERNEL_INLINE TileKernel SelectPrim::tile_kernel(std::span<const AbstractArray> in, const Params&) const {
  return visit_dtype(in[1].dtype, [](auto tag) -> TileKernel { return &select_tile<decltype(tag)>; });
}
EQX_KERNEL_INLINE void SelectPrim::kernel(std::span<const View> in, std::span<const View> out, const Params&) const {
  visit_dtype(out[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const bool* c = in[0].as<const bool>();
    const T* a = in[1].as<const T>();
    const T* b = in[2].as<const T>();
    T* o = out[0].as<T>();
    auto plan = plan_broadcast<3>(*out[0].shape, {in[0].shape, in[1].shape, in[2].shape});
    const std::int64_t sc = plan.strides[0].back(), sa = plan.strides[1].back(), sb = plan.strides[2].back();
    parallel_for(out[0].numel(), 1, [&](std::int64_t s, std::int64_t e) {
      for_each_segment(plan, s, e, [&](const std::array<std::int64_t, 3>& off, std::int64_t pos, std::int64_t len) {
        // The common segments (contiguous operands, or a broadcast scalar
        // such as relu's zero) get loops the compiler vectorises.
        const unsigned char* __restrict cp = reinterpret_cast<const unsigned char*>(c + off[0]);
        const T* __restrict ap = a + off[1];
        const T* __restrict bp = b + off[2];
        T* __restrict op = o + pos;
        if (sc == 1 && sa == 1 && sb == 1) {
          for (std::int64_t i = 0; i < len; ++i) op[i] = pick(cp[i], ap[i], bp[i]);
        } else if (sc == 1 && sa == 1 && sb == 0) {
          const T bv = *bp;
          for (std::int64_t i = 0; i < len; ++i) op[i] = pick(cp[i], ap[i], bv);
        } else if (sc == 1 && sa == 0 && sb == 1) {
          const T av = *ap;
          for (std::int64_t i = 0; i < len; ++i) op[i] = pick(cp[i], av, bp[i]);
        } else {
          for (std::int64_t i = 0; i < len; ++i) op[i] = pick(cp[i * sc], ap[i * sa], bp[i * sb]);
        }
      });
    });
  });
}
#endif

}  // namespace eqx::detail

namespace eqx::prim {
inline const detail::SelectPrim select;
}  // namespace eqx::prim
