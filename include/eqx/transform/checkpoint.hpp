#pragma once
// filter_checkpoint: rematerialisation (jax.checkpoint / eqx.filter_checkpoint).
//
// A checkpointed call is one `checkpoint` equation holding the traced body.
// Reverse mode stores only its inputs; its VJP rule runs the body forward
// again and then backward, so the body's intermediates live only during its
// own backward pass. The recomputation reads its inputs through an
// `optimization_barrier`, so CSE cannot merge it with the forward pass and
// keep the intermediates alive after all (JAX's prevent_cse). Compiled code
// inlines the body (inline_calls); eagerly, the body is evaluated directly.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ad/autodiff.hpp"
#include "eqx/ad/batching.hpp"
#include "eqx/ir/eval.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/transform/grad.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/flatten.hpp"

namespace eqx {

namespace detail {

/// optimization_barrier: the identity on any number of operands, which
/// passes do not see through.
struct OptimizationBarrierPrim final : Primitive {
  std::string_view name() const override { return "optimization_barrier"; }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params&) const override {
    return {in.begin(), in.end()};
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override;
  std::vector<Array> jvp(const RuleOps&, std::span<const Array>, std::span<const Array> t, std::span<const Array>,
                         const Params&) const override {
    return {t.begin(), t.end()};
  }
  std::vector<Array> vjp(const RuleOps&, std::span<const Array>, std::span<const Array>, std::span<const Array> ct,
                         const Params&) const override {
    return {ct.begin(), ct.end()};
  }
  Batched batch(const RuleOps&, std::span<const Array> x, BatchDims d, const Params& p) const override {
    return {eqx::bind(*this, x, p), {d.begin(), d.end()}};
  }
};

/// checkpoint[jaxpr]: calls the graph `jaxpr` on the operands.
struct CheckpointPrim final : Primitive {
  std::string_view name() const override { return "checkpoint"; }
  static const Graph& body(const Params& p) { return *p.get<GraphRef>("jaxpr"); }
  const Graph* inlined_body(const Params& p) const override { return &body(p); }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const Graph& g = body(p);
    if (in.size() != g.inputs.size())
      throw ValueError("eqx::checkpoint: the body takes " + std::to_string(g.inputs.size()) + " inputs, got " +
                       std::to_string(in.size()));
    return g.output_types();
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override {
    eval_graph_on_views(body(p), in, out);
  }
  // Forward mode needs no residuals: the body's own JVP.
  std::vector<Array> jvp(const RuleOps&, std::span<const Array> x, std::span<const Array> t, std::span<const Array>,
                         const Params& p) const override {
    return jvp_graph(body(p), x, t).second;
  }
  // A checkpoint of the batched body.
  Batched batch(const RuleOps&, std::span<const Array> x, BatchDims d, const Params& p) const override {
    std::vector<std::int64_t> out_dims;
    GraphRef body_batched = batch_subgraph(body(p), d, batch_size(x, d), {}, out_dims);
    return {eqx::bind(*this, x, Params(p).set("jaxpr", std::move(body_batched))), std::move(out_dims)};
  }
  // Recompute the body from its (barriered) inputs, then transpose it.
  std::vector<Array> vjp(const RuleOps&, std::span<const Array> x, std::span<const Array>, std::span<const Array> ct,
                         const Params& p) const override;
};

}  // namespace detail

namespace prim {
inline const detail::OptimizationBarrierPrim optimization_barrier;
inline const detail::CheckpointPrim checkpoint;
}  // namespace prim

#if EQX_KERNELS_HERE(CONTROL_FLOW)
EQX_KERNEL_INLINE void detail::OptimizationBarrierPrim::kernel(std::span<const View> in, std::span<const View> out,
                                                               const Params&) const {
  for (std::size_t i = 0; i < in.size(); ++i) copy_bytes(out[i].data, in[i].data, in[i].bytes());
}

EQX_KERNEL_INLINE std::vector<Array> detail::CheckpointPrim::vjp(const RuleOps&, std::span<const Array> x, std::span<const Array>,
                                                                 std::span<const Array> ct, const Params& p) const {
  // The barrier only matters to compiled graphs (CSE); eagerly it would be a copy.
  if (interpreter_stack().empty()) return vjp_graph(body(p), x, ct).second;
  std::vector<Array> fresh = eqx::bind(prim::optimization_barrier, x);
  return vjp_graph(body(p), fresh, ct).second;
}
#endif

/// f, with its intermediates recomputed in the backward pass instead of
/// stored: reverse mode keeps only f's inputs (and outputs). Costs one more
/// forward pass of f; saves the memory of everything f computes inside.
/// Usage: `auto block = eqx::filter_checkpoint(layer); eqx::Array h = block(x);`
template <class F>
auto filter_checkpoint(F f) {
  return [f = std::move(f)]<class... Args>(const Args&... args) {
    auto traced = detail::trace_call<F, Args...>(f, args...);
    using R = decltype(traced.output);
    std::vector<Array> leaves = detail::call_leaves(nullptr, f, args...);
    auto body = std::make_shared<Graph>(std::move(traced.graph));
    detail::lift_captured_tracers(*body, leaves);  // a closed-over weight is an input, with a gradient
    std::vector<Array> outs = eqx::bind(prim::checkpoint, leaves, Params{}.set("jaxpr", GraphRef(std::move(body))));
    return TreeDef<R>(traced.output).unflatten(outs);
  };
}

}  // namespace eqx
