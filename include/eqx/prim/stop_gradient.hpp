#pragma once
// stop_gradient: the identity whose derivative is zero (lax.stop_gradient).
// Its tangent and cotangent are symbolic zeros, so whatever feeds it costs
// nothing in the backward pass. `simplify` removes it from compiled graphs,
// which are only evaluated, never differentiated again.

#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx::detail {

struct StopGradientPrim final : Primitive {
  std::string_view name() const override { return "stop_gradient"; }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return batch_elementwise(*this, o, x, d, p);
  }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params&) const override {
    return {in[0]};
  }
  // A copy: cheap enough to define inline even with eqx::kernels.
  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override {
    copy_bytes(out[0].data, in[0].data, in[0].bytes());
  }
  std::vector<Array> jvp(const RuleOps&, std::span<const Array>, std::span<const Array>, std::span<const Array>,
                         const Params&) const override {
    return {Array{}};
  }
  std::vector<Array> vjp(const RuleOps&, std::span<const Array>, std::span<const Array>, std::span<const Array>,
                         const Params&) const override {
    return {Array{}};
  }
};

}  // namespace eqx::detail

namespace eqx::prim {
inline const detail::StopGradientPrim stop_gradient;
}  // namespace eqx::prim
