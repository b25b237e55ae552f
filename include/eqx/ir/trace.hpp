#pragma once
// Tracing: running a function on abstract Arrays to record it as a Graph.
//
// A `TraceScope` pushes a graph trace on this thread's interpreter stack.
// While it is the innermost trace, every `bind` appends an equation to its
// graph and returns abstract Arrays (tracers) whose shape and dtype come
// from the primitive's shape rule. Inputs of an equation become:
//   - a tracer of this trace: its variable;
//   - a concrete Array (a closed-over weight, a literal): a graph constant;
//   - a tracer of an enclosing, still active trace: a captured constant, so
//     that re-binding the graph in that trace connects it to the outer value.
// Each trace has a level (its depth in the stack); a tracer of a trace that
// has finished is a leaked tracer and throws eqx::TraceError.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/config.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx {
namespace detail {

class GraphTrace;

/// What an abstract Array refers to: one variable of one trace.
struct Tracer {
  std::shared_ptr<GraphTrace> trace;
  Var var;
};

/// The interpreter that records equations into a Graph.
class GraphTrace final : public Interpreter, public std::enable_shared_from_this<GraphTrace> {
 public:
  GraphTrace(std::size_t level, bool merge_literals) : level_(level), merge_literals_(merge_literals) {}

  std::size_t level() const { return level_; }
  bool active() const { return active_; }
  Graph& graph() { return graph_; }

  /// A new graph input of type t, as an abstract Array.
  Array new_input(const AbstractArray& t);

  std::vector<Array> process(const Primitive& prim, std::span<const Array> inputs, const Params& params) override;

  /// The variable standing for `a` in this graph (see the file comment).
  Var var_of(const Array& a, const Primitive& prim, std::size_t input);

  void deactivate() { active_ = false; }

 private:
  Array make_tracer(Var v);

  std::size_t level_;
  bool merge_literals_;  // rank-0 constants of equal value share one variable
  bool active_ = true;
  Graph graph_;
  std::unordered_map<const Tracer*, Var> captured_;
  std::unordered_map<const void*, Var> consts_;
  std::map<std::pair<std::uint64_t, DType>, Var> scalars_;
};

}  // namespace detail

/// How a TraceScope records constants.
struct TraceOptions {
  /// Rank-0 constants of equal value become one graph constant (literals
  /// such as the 2 of `x * 2` are made afresh at each use). Off when every
  /// captured Array must stay its own constant: a closed-over scalar weight
  /// that happens to equal a literal is then not merged with it (what
  /// filter_closure_convert differentiates).
  bool merge_scalar_literals = true;
};

/// Records everything bound on this thread while it lives into a Graph.
/// Usage:
///   eqx::TraceScope scope;
///   eqx::Array x = scope.input({eqx::Shape{3}, eqx::float32});
///   eqx::Graph g = scope.finish({eqx::exp(x)});
class TraceScope {
 public:
  explicit TraceScope(TraceOptions options = {});
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;
  ~TraceScope();

  /// A new input of the graph, as an abstract Array of type t.
  Array input(const AbstractArray& t) { return trace_->new_input(t); }

  /// Ends the trace: `outputs` become the graph's outputs (concrete ones
  /// become constants, as in a function that returns a closed-over value).
  Graph finish(std::span<const Array> outputs);
  Graph finish(std::initializer_list<Array> outputs) { return finish(std::span<const Array>(outputs.begin(), outputs.size())); }

 private:
  void pop();

  std::shared_ptr<detail::GraphTrace> trace_;
};

}  // namespace eqx

#if EQX_KERNELS_HERE(GRAPH)
namespace eqx {
namespace detail {

EQX_KERNEL_INLINE Array GraphTrace::new_input(const AbstractArray& t) {
  Var v = graph_.new_var(t);
  graph_.inputs.push_back(v);
  return make_tracer(v);
}

EQX_KERNEL_INLINE Array GraphTrace::make_tracer(Var v) {
  const AbstractArray& t = graph_.types[v];
  return ArrayAccess::abstract(t.shape, t.dtype, std::make_shared<const Tracer>(Tracer{shared_from_this(), v}));
}

EQX_KERNEL_INLINE std::vector<Array> GraphTrace::process(const Primitive& prim, std::span<const Array> inputs,
                                                        const Params& params) {
  Equation eq{&prim, {}, {}, params};
  std::vector<AbstractArray> in_types;
  eq.inputs.reserve(inputs.size());
  in_types.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].has_value())
      throw ValueError(input_error_prefix(prim) + "input " + std::to_string(i) +
                       " is an empty Array (None); a filtered-out leaf cannot be used in an operation");
    eq.inputs.push_back(var_of(inputs[i], prim, i));
    in_types.push_back(graph_.types[eq.inputs.back()]);
  }
  std::vector<AbstractArray> out_types = prim.shape_rule(in_types, params);
  std::vector<Array> outs;
  outs.reserve(out_types.size());
  for (auto& t : out_types) {
    Var v = graph_.new_var(std::move(t));
    eq.outputs.push_back(v);
    outs.push_back(make_tracer(v));
  }
  graph_.equations.push_back(std::move(eq));
  return outs;
}

EQX_KERNEL_INLINE Var GraphTrace::var_of(const Array& a, const Primitive& prim, std::size_t input) {
  if (const Tracer* t = ArrayAccess::tracer(a)) {
    if (t->trace.get() == this) return t->var;
    if (!t->trace->active() || t->trace->level() > level_) throw_leaked_tracer(prim, input);
    auto [it, fresh] = captured_.try_emplace(t, Var{});
    if (fresh) it->second = graph_.add_const(a);
    return it->second;
  }
  if (ArrayAccess::shape_only(a)) throw_shape_only_input(prim, input, a);
  if (a.ndim() == 0 && merge_literals_) {  // literals: one constant per distinct value
    std::uint64_t bits = 0;
    std::memcpy(&bits, a.raw_data(), itemsize(a.dtype()));
    auto [it, fresh] = scalars_.try_emplace({bits, a.dtype()}, Var{});
    if (fresh) it->second = graph_.add_const(a);
    return it->second;
  }
  auto [it, fresh] = consts_.try_emplace(ArrayAccess::storage_id(a), Var{});
  if (fresh) it->second = graph_.add_const(a);
  return it->second;
}
}  // namespace detail

EQX_KERNEL_INLINE TraceScope::TraceScope(TraceOptions options)
    : trace_(std::make_shared<detail::GraphTrace>(detail::interpreter_stack().size() + 1,
                                                  options.merge_scalar_literals)) {
  detail::interpreter_stack().push_back(trace_.get());
}

EQX_KERNEL_INLINE TraceScope::~TraceScope() { pop(); }

EQX_KERNEL_INLINE void TraceScope::pop() {
  if (!trace_->active()) return;
  auto& stack = detail::interpreter_stack();
  // Scopes nest (RAII), so this trace is the innermost one.
  if (!stack.empty() && stack.back() == trace_.get()) stack.pop_back();
  trace_->deactivate();
}

EQX_KERNEL_INLINE Graph TraceScope::finish(std::span<const Array> outputs) {
  static const struct OutputMarker final : Primitive {
    std::string_view name() const override { return "output"; }
    std::vector<AbstractArray> shape_rule(std::span<const AbstractArray>, const Params&) const override { return {}; }
    void kernel(std::span<const detail::View>, std::span<const detail::View>, const Params&) const override {}
  } marker;
  Graph& g = trace_->graph();
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].has_value())
      throw ValueError("eqx: output " + std::to_string(i) + " of the traced function is an empty Array (None)");
    g.outputs.push_back(trace_->var_of(outputs[i], marker, i));
  }
  pop();
  return std::move(g);
}
}  // namespace eqx
#endif  // EQX_KERNELS_HERE(GRAPH)
