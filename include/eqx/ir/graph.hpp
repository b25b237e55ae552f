#pragma once
// Graph: a traced function as a list of equations in SSA form (a jaxpr).
//
//   { lambda c:f32[3] ; a:f32[3] b:f32[3]. let
//       d:f32[3] = mul a b
//       e:f32[3] = add d c
//     in (e) }
//
// Every value is a variable (`Var`, an index into `types`) assigned exactly
// once: by being an input, a constant, or an output of one equation. The
// transformations (jit, grad, vmap) read a Graph and write a new one, and
// `eval_graph` runs one by re-binding its equations.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx {

/// A value of a Graph: an index into Graph::types.
using Var = std::uint32_t;

/// One primitive application: `outputs = prim[params](inputs)`.
struct Equation {
  const Primitive* prim = nullptr;
  std::vector<Var> inputs;
  std::vector<Var> outputs;
  Params params;
};

/// A traced function in SSA form. Plain data, so that passes and
/// transformations are ordinary code over vectors.
struct Graph {
  std::vector<AbstractArray> types;  // shape and dtype of every Var
  std::vector<Var> inputs;           // the function's Array arguments, in order
  std::vector<Var> constvars;        // values captured at trace time ...
  std::vector<Array> consts;         // ... and their Arrays: concrete, or from an enclosing trace
  std::vector<Equation> equations;   // in an order where every input is defined first
  std::vector<Var> outputs;          // may repeat, and may be inputs or constants

  /// A new variable of type `t`.
  Var new_var(AbstractArray t) {
    types.push_back(std::move(t));
    return static_cast<Var>(types.size() - 1);
  }
  const AbstractArray& type(Var v) const { return types.at(v); }

  /// Types of the inputs / outputs, in order.
  std::vector<AbstractArray> input_types() const { return types_of(inputs); }
  std::vector<AbstractArray> output_types() const { return types_of(outputs); }

  /// A new constant variable holding `value`.
  Var add_const(const Array& value) {
    Var v = new_var({value.shape(), value.dtype()});
    constvars.push_back(v);
    consts.push_back(value);
    return v;
  }

 private:
  std::vector<AbstractArray> types_of(const std::vector<Var>& vs) const {
    std::vector<AbstractArray> out;
    out.reserve(vs.size());
    for (Var v : vs) out.push_back(types[v]);
    return out;
  }
};

namespace detail {

/// Where each Var of a graph comes from, for passes that need producers.
struct VarSources {
  static constexpr std::int32_t kInput = -1, kConst = -2, kUndefined = -3;
  std::vector<std::int32_t> producer;  // equation index, or kInput / kConst
  std::vector<std::int32_t> const_index;  // index into consts for constvars, else -1

  explicit VarSources(const Graph& g)
      : producer(g.types.size(), kUndefined), const_index(g.types.size(), -1) {
    for (Var v : g.inputs) producer[v] = kInput;
    for (std::size_t i = 0; i < g.constvars.size(); ++i) {
      producer[g.constvars[i]] = kConst;
      const_index[g.constvars[i]] = static_cast<std::int32_t>(i);
    }
    for (std::size_t e = 0; e < g.equations.size(); ++e)
      for (Var v : g.equations[e].outputs) producer[v] = static_cast<std::int32_t>(e);
  }
  /// The concrete constant behind v, or nullptr.
  const Array* concrete_const(const Graph& g, Var v) const {
    if (const_index[v] < 0) return nullptr;
    const Array& a = g.consts[static_cast<std::size_t>(const_index[v])];
    return a.is_abstract() ? nullptr : &a;
  }
};

}  // namespace detail
}  // namespace eqx
