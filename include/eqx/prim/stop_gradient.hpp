#pragma once
// stop_gradient: the identity whose derivative is zero (lax.stop_gradient).
// Its tangent and cotangent are symbolic zeros, so whatever feeds it costs
// nothing in the backward pass. `simplify` removes it from compiled graphs,
// which are only evaluated, never differentiated again.

#include <span>
#include <string_view>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx::detail {

struct StopGradientPrim final : Primitive {
  std::string_view name() const override { return "stop_gradient"; }
  // The key function: out of line, so with compiled kernels the vtable and
  // the batching code it reaches are compiled once (family LAYOUT).
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override;
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params&) const override {
    return {in[0]};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override {
    copy_bytes(out[0].data, in[0].data, in[0].bytes());
  }
  bool derivative_is_zero() const override { return true; }
  std::vector<Array> jvp(const RuleOps&, std::span<const Array>, std::span<const Array>, std::span<const Array>,
                         const Params&) const override {
    return {Array{}};
  }
  std::vector<Array> vjp(const RuleOps&, std::span<const Array>, std::span<const Array>, std::span<const Array>,
                         const Params&) const override {
    return {Array{}};
  }
};
#if EQX_KERNELS_HERE(LAYOUT)
EQX_KERNEL_INLINE Batched StopGradientPrim::batch(const RuleOps& o, std::span<const Array> x, BatchDims d,
                                                  const Params& p) const {
  return batch_elementwise(*this, o, x, d, p);
}
#endif

}  // namespace eqx::detail

namespace eqx::prim {
inline const detail::StopGradientPrim stop_gradient;
}  // namespace eqx::prim
