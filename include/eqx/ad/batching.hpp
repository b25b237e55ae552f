#pragma once
// Batching (vmap) as a graph evaluation with each primitive's batching rule.
//
// Every value carries a batch axis, or `not_mapped` when it is the same for
// every example. Equations whose inputs are all unmapped are bound as they
// are; the others go through Primitive::batch, which binds batched
// primitives in the caller's context: eagerly, or into an enclosing trace
// (jit of vmap, grad of vmap, vmap of vmap).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ad/named_axes.hpp"
#include "eqx/ad/rule_ops.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/ir/trace.hpp"

namespace eqx {

namespace detail {

/// True if `g`, or a graph one of its equations holds (a loop or branch
/// body), has a collective over the axis being batched.
inline bool uses_batching_axis(const Graph& g) {
  for (const Equation& eq : g.equations) {
    if (eq.prim->batch_unmapped(eq.params)) return true;
    for (const auto& [name, value] : eq.params.items()) {
      if (const auto* body = std::get_if<GraphRef>(&value); body && *body && uses_batching_axis(**body)) return true;
      if (const auto* bodies = std::get_if<std::vector<GraphRef>>(&value))
        for (const GraphRef& b : *bodies)
          if (b && uses_batching_axis(*b)) return true;
    }
  }
  return false;
}

/// A loop or branch none of whose inputs is batched runs once for the whole
/// batch, so a collective over the batch axis inside it has nothing to
/// reduce over: refuse it rather than compute it wrongly.
inline void check_unbatched_equation(const Equation& eq) {
  if (batching_axis() == nullptr || batching_axis()->name.empty()) return;
  for (const auto& [name, value] : eq.params.items()) {
    bool uses = false;
    if (const auto* body = std::get_if<GraphRef>(&value); body && *body) uses = uses_batching_axis(**body);
    if (const auto* bodies = std::get_if<std::vector<GraphRef>>(&value))
      for (const GraphRef& b : *bodies) uses = uses || (b && uses_batching_axis(*b));
    if (uses)
      throw ValueError("eqx::filter_vmap: '" + std::string(eq.prim->name()) + "' uses a collective over the axis '" +
                       batching_axis()->name + "' in its body, but none of its inputs depends on the example; pass a "
                       "value that varies over '" + batching_axis()->name + "' into it (or call the collective outside it)");
  }
}

}  // namespace detail

/// Outputs of `graph` for a batch of inputs: `args[i]` holds the examples
/// of input i along axis `dims[i]` (`not_mapped`: one value shared by every
/// example). Each output comes with its batch axis (`not_mapped` if it does
/// not depend on the example).
/// Usage: `eqx::Batched out = eqx::batch_graph(g, xs, dims);`
Batched batch_graph(const Graph& g, std::span<const Array> args, std::span<const std::int64_t> dims);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Batched batch_graph(const Graph& g, std::span<const Array> args, std::span<const std::int64_t> dims) {
  if (args.size() != g.inputs.size() || dims.size() != g.inputs.size())
    throw ValueError("eqx::batch_graph: the graph has " + std::to_string(g.inputs.size()) + " inputs but " +
                     std::to_string(args.size()) + " Arrays and " + std::to_string(dims.size()) +
                     " batch axes were given");
  const RuleOps& ops = detail::rule_ops();
  std::vector<Array> val(g.types.size());
  std::vector<std::int64_t> dim(g.types.size(), not_mapped);
  for (std::size_t i = 0; i < g.inputs.size(); ++i) {
    val[g.inputs[i]] = args[i];
    dim[g.inputs[i]] = dims[i];
  }
  for (std::size_t i = 0; i < g.constvars.size(); ++i) val[g.constvars[i]] = g.consts[i];
  std::vector<Array> in;
  std::vector<std::int64_t> in_dims;
  for (const Equation& eq : g.equations) {
    in.clear();
    in_dims.clear();
    bool mapped = false;
    for (Var v : eq.inputs) {
      in.push_back(val[v]);
      in_dims.push_back(dim[v]);
      mapped = mapped || dim[v] != not_mapped;
    }
    const bool run_rule = mapped || eq.prim->batch_unmapped(eq.params);
    if (!run_rule) detail::check_unbatched_equation(eq);
    Batched out = run_rule ? eq.prim->batch(ops, in, in_dims, eq.params)
                         : Batched{eqx::bind(*eq.prim, in, eq.params), std::vector<std::int64_t>(eq.outputs.size(), not_mapped)};
    if (out.values.size() != eq.outputs.size() || out.dims.size() != eq.outputs.size())
      throw ValueError("eqx: internal error: the batching rule of '" + std::string(eq.prim->name()) + "' returned " +
                       std::to_string(out.values.size()) + " values and " + std::to_string(out.dims.size()) +
                       " batch axes for " + std::to_string(eq.outputs.size()) + " outputs");
    for (std::size_t k = 0; k < eq.outputs.size(); ++k) {
      val[eq.outputs[k]] = std::move(out.values[k]);
      dim[eq.outputs[k]] = out.dims[k];
    }
  }
  Batched result;
  for (Var v : g.outputs) {
    result.values.push_back(val[v]);
    result.dims.push_back(dim[v]);
  }
  return result;
}
#endif

namespace detail {

/// A per-example type with a batch axis of `size` at `dim` (unchanged if `not_mapped`).
inline AbstractArray batched_type(AbstractArray t, std::int64_t dim, std::int64_t size) {
  if (dim != not_mapped) t.shape.insert(static_cast<std::size_t>(dim), size);
  return t;
}

/// The batched version of a sub-graph (a loop or branch body): a graph on
/// the batched inputs (batch axes `in_dims`, `size` examples) whose mapped
/// outputs have their batch axis first. Outputs with `force[i]` set are
/// batched even if they do not depend on the example (a loop carry that
/// other steps batch). `out_dims` gets each output's axis: 0 or `not_mapped`.
inline GraphRef batch_subgraph(const Graph& g, std::span<const std::int64_t> in_dims, std::int64_t size,
                               const std::vector<bool>& force, std::vector<std::int64_t>& out_dims) {
  TraceScope scope;
  std::vector<Array> inputs;
  for (std::size_t i = 0; i < g.inputs.size(); ++i)
    inputs.push_back(scope.input(batched_type(g.types[g.inputs[i]], in_dims[i], size)));
  Batched out = batch_graph(g, inputs, in_dims);
  out_dims.assign(out.values.size(), not_mapped);
  for (std::size_t i = 0; i < out.values.size(); ++i) {
    if (out.dims[i] == not_mapped && !(i < force.size() && force[i])) continue;
    out.values[i] = rule_ops().batch_first(out.values[i], out.dims[i], size);
    out_dims[i] = 0;
  }
  return std::make_shared<const Graph>(scope.finish(out.values));
}

/// The operands with each batch axis moved first, and their new axes (0,
/// or `not_mapped` for an operand shared by every example).
inline std::pair<std::vector<Array>, std::vector<std::int64_t>> batch_axes_first(const RuleOps& ops,
                                                                                 std::span<const Array> x,
                                                                                 BatchDims d) {
  std::pair<std::vector<Array>, std::vector<std::int64_t>> r;
  for (std::size_t i = 0; i < x.size(); ++i) {
    r.first.push_back(d[i] == not_mapped ? x[i] : ops.moveaxis(x[i], d[i], 0));
    r.second.push_back(d[i] == not_mapped ? not_mapped : 0);
  }
  return r;
}

/// The batched version of a graph whose outputs are cotangents of inputs
/// with batch axes `ct_dims` (0 or `not_mapped`): output i gets its batch
/// axis first when ct_dims[i] is 0, and is summed over the batch when the
/// input is shared by every example (`not_mapped`).
inline GraphRef batch_cotangent_graph(const Graph& g, std::span<const std::int64_t> in_dims, std::int64_t size,
                                      std::span<const std::int64_t> ct_dims) {
  TraceScope scope;
  std::vector<Array> inputs;
  for (std::size_t i = 0; i < g.inputs.size(); ++i)
    inputs.push_back(scope.input(batched_type(g.types[g.inputs[i]], in_dims[i], size)));
  Batched out = batch_graph(g, inputs, in_dims);
  const RuleOps& ops = rule_ops();
  for (std::size_t i = 0; i < out.values.size(); ++i) {
    if (ct_dims[i] != not_mapped) out.values[i] = ops.batch_first(out.values[i], out.dims[i], size);
    else if (out.dims[i] != not_mapped) out.values[i] = ops.reduce_sum(out.values[i], {out.dims[i]});
  }
  return std::make_shared<const Graph>(scope.finish(out.values));
}

}  // namespace detail

}  // namespace eqx
