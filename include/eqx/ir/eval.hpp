#pragma once
// eval_graph: run a Graph by binding each of its equations in order.
//
// This is how transformed graphs run: with no trace active the primitives
// execute eagerly; inside a trace (a jit of a grad, a grad of a vmap) the
// equations are recorded again into the enclosing graph.

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx {

namespace detail {

/// Binds every equation of `g` on `inputs` (checked by the caller). With
/// `inline_calls`, call-like equations (Primitive::inlined_body) are
/// evaluated through their bodies instead of bound.
std::vector<Array> eval_equations(const Graph& g, std::span<const Array> inputs, bool inline_calls);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE std::vector<Array> eval_equations(const Graph& g, std::span<const Array> inputs, bool inline_calls) {
  std::vector<Array> env(g.types.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) env[g.inputs[i]] = inputs[i];
  for (std::size_t i = 0; i < g.constvars.size(); ++i) env[g.constvars[i]] = g.consts[i];
  std::vector<Array> args;
  for (const Equation& eq : g.equations) {
    args.clear();
    for (Var v : eq.inputs) args.push_back(env[v]);
    const Graph* body = inline_calls ? eq.prim->inlined_body(eq.params) : nullptr;
    std::vector<Array> outs = body ? eval_equations(*body, args, true)
                                   : eqx::bind(*eq.prim, args, eq.params);  // qualified: ADL would find std::bind
    for (std::size_t i = 0; i < outs.size(); ++i) env[eq.outputs[i]] = std::move(outs[i]);
  }
  std::vector<Array> result;
  result.reserve(g.outputs.size());
  for (Var v : g.outputs) result.push_back(env[v]);
  return result;
}
#endif

}  // namespace detail

/// Evaluates `graph` on `inputs` (one Array per graph input, of its type)
/// in the caller's context and returns its outputs.
/// Usage: `std::vector<eqx::Array> out = eqx::eval_graph(g, {x, y});`
inline std::vector<Array> eval_graph(const Graph& graph, std::span<const Array> inputs) {
  if (inputs.size() != graph.inputs.size())
    throw ValueError("eqx::eval_graph: the graph has " + std::to_string(graph.inputs.size()) + " inputs but " +
                     std::to_string(inputs.size()) + " Arrays were given");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const AbstractArray& want = graph.types[graph.inputs[i]];
    if (!inputs[i].has_value() || inputs[i].shape() != want.shape || inputs[i].dtype() != want.dtype)
      throw ShapeError("eqx::eval_graph: input " + std::to_string(i) + " should be " + want.str() + ", got " +
                       (inputs[i].has_value() ? AbstractArray{inputs[i].shape(), inputs[i].dtype()}.str()
                                              : std::string("an empty Array (None)")));
  }
  return detail::eval_equations(graph, inputs, false);
}

inline std::vector<Array> eval_graph(const Graph& graph, std::initializer_list<Array> inputs) {
  return eval_graph(graph, std::span<const Array>(inputs.begin(), inputs.size()));
}

namespace detail {
/// The eager kernel of a call-like primitive (checkpoint, custom rules):
/// evaluates `g` on copies of the operands and writes its outputs.
inline void eval_graph_on_views(const Graph& g, std::span<const View> in, std::span<const View> out) {
  std::vector<Array> args;
  args.reserve(in.size());
  for (const View& v : in) {
    Array a = ArrayAccess::allocate(*v.shape, v.dtype);
    copy_bytes(ArrayAccess::mutable_data(a), v.data, v.bytes());
    args.push_back(std::move(a));
  }
  std::vector<Array> results = eval_graph(g, args);
  for (std::size_t i = 0; i < out.size(); ++i) copy_bytes(out[i].data, results[i].raw_data(), out[i].bytes());
}
}  // namespace detail

}  // namespace eqx
