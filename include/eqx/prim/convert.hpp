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
#include <type_traits>

#include "eqx/core/threads.hpp"
#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
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
void convert_loop(const ConvertSource<From>* a, To* o, std::int64_t begin, std::int64_t end) {
  for (std::int64_t i = begin; i < end; ++i) {
    if constexpr (std::is_same_v<From, bool>) o[i] = a[i] != 0 ? To(1) : To(0);  // convert_value's bool -> To
    else o[i] = convert_value<To>(a[i]);
  }
}

template <class From, class To>
void convert_tile(const void* const* in, void* out, std::int64_t n) {
  convert_loop<From, To>(static_cast<const ConvertSource<From>*>(in[0]), static_cast<To*>(out), 0, n);
}
#if EQX_KERNELS_HERE(CONVERT)
EQX_KERNEL_INLINE TileKernel ConvertPrim::tile_kernel(std::span<const AbstractArray> in, const Params& p) const {
  return visit_dtype(in[0].dtype, [&](auto from_tag) {
    return visit_dtype(p.get<DType>("new_dtype"), [](auto to_tag) -> TileKernel {
      return &convert_tile<decltype(from_tag), decltype(to_tag)>;
    });
  });
}
EQX_KERNEL_INLINE void ConvertPrim::kernel(std::span<const View> in, std::span<const View> out, const Params&) const {
  visit_dtype(in[0].dtype, [&](auto from_tag) {
    visit_dtype(out[0].dtype, [&](auto to_tag) {
      using From = decltype(from_tag);
      using To = decltype(to_tag);
      const auto* a = static_cast<const ConvertSource<From>*>(in[0].data);
      To* o = out[0].as<To>();
      parallel_for(in[0].numel(), 1, [&](std::int64_t b, std::int64_t e) { convert_loop<From, To>(a, o, b, e); });
    });
  });
}
#endif

}  // namespace eqx::detail

namespace eqx::prim {
inline const detail::ConvertPrim convert;
}  // namespace eqx::prim
