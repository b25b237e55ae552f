#pragma once
// convert: change an Array's dtype (eqx::astype).
//
// float -> integer conversion truncates toward zero and saturates at the
// integer range, with NaN -> 0 (C++ leaves out-of-range casts undefined;
// eqx never runs undefined behaviour on user data). Anything -> bool is
// `x != 0`.

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/broadcast.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx::detail {

struct ConvertPrim final : Primitive {
  std::string_view name() const override { return "convert"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_elementwise(*this, o, x, d, p);
  }
  bool elementwise() const override { return true; }

  std::optional<AbstractArray> output_type(std::span<const AbstractArray> in, const Params& p) const override {
    return AbstractArray{in[0].shape, p.get<DType>("new_dtype")};
  }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    return {*output_type(in, p)};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override;
  TileKernel tile_kernel(std::span<const AbstractArray> in, const Params& p) const override;

  // Only float-to-float conversions carry derivatives.
  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params&) const override {
    if (!is_floating(x[0].dtype()) || !is_floating(y[0].dtype())) return {Array{}};
    return {o.convert(t[0], y[0].dtype())};
  }
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params&) const override {
    if (!is_floating(x[0].dtype()) || !is_floating(y[0].dtype())) return {Array{}};
    return {o.convert(ct[0], x[0].dtype())};
  }
};

/// How the convert kernels read elements of type T: bool as its byte, tested
/// against 0. Same values, but the compiler vectorises the loop, which it
/// does not for loads of bool (e.g. the float masks of a ReLU's gradient).
template <class T>
using ConvertSource = std::conditional_t<std::is_same_v<T, bool>, std::uint8_t, T>;
static_assert(sizeof(bool) == 1, "eqx stores bool elements as one byte");

template <class From, class To>
void convert_tile(const void* const* in, void* out, std::int64_t n) {
  const auto* a = static_cast<const ConvertSource<From>*>(in[0]);
  To* o = static_cast<To*>(out);
  for (std::int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<From, bool>) o[i] = a[i] != 0 ? To(1) : To(0);  // convert_value's bool -> To
    else o[i] = convert_value<To>(a[i]);
  }
}
#if EQX_KERNELS_HERE(CONVERT)
/// The tile converting `from` to `to`: what a fused region runs, and the
/// eager kernel over threads' chunks (one loop per dtype pair, not two).
inline TileKernel convert_tile_for(DType from, DType to) {
  return visit_dtype(from, [&](auto from_tag) {
    return visit_dtype(to, [](auto to_tag) -> TileKernel { return &convert_tile<decltype(from_tag), decltype(to_tag)>; });
  });
}

EQX_KERNEL_INLINE TileKernel ConvertPrim::tile_kernel(std::span<const AbstractArray> in, const Params& p) const {
  return convert_tile_for(in[0].dtype, p.get<DType>("new_dtype"));
}
EQX_KERNEL_INLINE void ConvertPrim::kernel(std::span<const View> in, std::span<const View> out, const Params&) const {
  run_unary(in[0], out[0], convert_tile_for(in[0].dtype, out[0].dtype), 1);
}
#endif

}  // namespace eqx::detail

namespace eqx::prim {
inline const detail::ConvertPrim convert;
}  // namespace eqx::prim
